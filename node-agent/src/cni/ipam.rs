//! Delegated IPAM: runs the standard IPAM plugin named by the network configuration's `ipam.type`
//! (e.g. `host-local`), found on `CNI_PATH`, exactly as a runtime would.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use weft_proto::cni::v1 as pb;
use weft_proto::cni::{CniError, ErrorCode};

/// One IPAM call's inputs.
pub(crate) struct IpamCall<'a> {
    pub plugin: &'a str,
    pub cni_path: &'a [String],
    pub config: &'a [u8],
    pub container_id: &'a str,
    pub netns: &'a str,
    pub ifname: &'a str,
    pub cni_args: &'a str,
}

const TIMEOUT: Duration = Duration::from_secs(30);

fn fail(msg: impl Into<String>) -> CniError {
    CniError::new(ErrorCode::IpamFailed, msg)
}

fn find(plugin: &str, path: &[String]) -> Option<PathBuf> {
    path.iter()
        .map(|d| PathBuf::from(d).join(plugin))
        .find(|p| p.is_file())
}

/// Runs `command` (ADD or DEL). ADD returns the plugin's result.
pub(crate) async fn run(
    command: &str,
    c: &IpamCall<'_>,
) -> Result<Option<pb::CniResult>, CniError> {
    let bin = find(c.plugin, c.cni_path).ok_or_else(|| {
        fail(format!(
            "IPAM plugin {:?} not found in CNI_PATH {:?}",
            c.plugin, c.cni_path
        ))
    })?;
    let mut child = tokio::process::Command::new(&bin)
        .env_clear()
        .env("CNI_COMMAND", command)
        .env("CNI_CONTAINERID", c.container_id)
        .env("CNI_NETNS", c.netns)
        .env("CNI_IFNAME", c.ifname)
        .env("CNI_ARGS", c.cni_args)
        .env("CNI_PATH", c.cni_path.join(":"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| fail(format!("starting {}: {e}", bin.display())))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(c.config)
            .await
            .map_err(|e| fail(format!("writing to {}: {e}", c.plugin)))?;
    }
    let out = tokio::time::timeout(TIMEOUT, child.wait_with_output())
        .await
        .map_err(|_| {
            fail(format!(
                "{} {command} took longer than {TIMEOUT:?}",
                c.plugin
            ))
        })?
        .map_err(|e| fail(format!("{} {command}: {e}", c.plugin)))?;
    let stdout: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    if !out.status.success() {
        let msg = stdout.get("msg").and_then(|m| m.as_str()).unwrap_or("");
        let code = stdout.get("code").and_then(|m| m.as_u64()).unwrap_or(0);
        return Err(fail(format!(
            "{} {command} failed (code {code}): {msg}",
            c.plugin
        ))
        .with_details(String::from_utf8_lossy(&out.stderr).into_owned()));
    }
    if command != "ADD" {
        return Ok(None);
    }
    weft_proto::cni::result::parse_result(&stdout)
        .map(Some)
        .map_err(|e| fail(format!("{} returned an unusable result: {e}", c.plugin)))
}
