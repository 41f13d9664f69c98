//! `weft-cni`: called by the container runtime (via Multus) for each Weft network of a pod.
//! Reads the network configuration on stdin and `CNI_*` variables, forwards the call to the
//! local `weft-agent`, prints the CNI result or error object.

use std::collections::HashMap;
use std::io::{Read, Write};

use weft_proto::cni::{CniError, ErrorCode};

fn main() {
    let env: HashMap<String, String> = std::env::vars_os()
        .map(|(k, v)| {
            (
                k.to_string_lossy().into_owned(),
                v.to_string_lossy().into_owned(),
            )
        })
        .collect();
    let mut stdin = Vec::new();
    let out = match std::io::stdin().take(16 << 20).read_to_end(&mut stdin) {
        Ok(_) => weft_cni::run(&env, &stdin, &weft_cni::client::UnixAgent::default()),
        Err(e) => {
            let err = CniError::new(ErrorCode::IoFailure, format!("reading stdin: {e}"));
            weft_cni::Output {
                stdout: err.to_json(weft_cni::LATEST_VERSION).to_string(),
                exit_code: 1,
            }
        }
    };
    let mut so = std::io::stdout().lock();
    let _ = so.write_all(out.stdout.as_bytes());
    let _ = so.flush();
    std::process::exit(out.exit_code);
}
