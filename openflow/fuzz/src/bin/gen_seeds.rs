//! Writes the seed corpus: every sample message as emitted by our codec for `decode_message`,
//! and short streams of several messages (behind a chunking control byte) for `framer`.
//!
//! Run from `openflow/fuzz`: `cargo run --bin gen_seeds` (stable is enough).

use std::path::Path;

use weft_openflow_fuzz::samples;

fn main() -> std::io::Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let dm = root.join("decode_message");
    let fr = root.join("framer");
    std::fs::create_dir_all(&dm)?;
    std::fs::create_dir_all(&fr)?;
    let msgs = samples::messages();
    let mut encoded = Vec::new();
    for (i, (name, m)) in msgs.iter().enumerate() {
        let bytes = m
            .to_bytes(i as u32 + 1)
            .map_err(|e| std::io::Error::other(format!("{name}: {e}")))?;
        std::fs::write(dm.join(format!("seed-{name}")), &bytes)?;
        encoded.push(bytes);
    }
    // Framer streams: a session start, a flow batch, a stats read, and one ending mid-frame.
    let pick = |names: &[&str]| -> Vec<u8> {
        let mut s = Vec::new();
        for n in names {
            if let Some(i) = msgs.iter().position(|(name, _)| name == n) {
                s.extend_from_slice(&encoded[i]);
            }
        }
        s
    };
    let streams: [(&str, u8, Vec<u8>); 5] = [
        (
            "handshake",
            1,
            pick(&[
                "hello",
                "features_reply",
                "mp_reply_port_desc",
                "echo_request",
            ]),
        ),
        (
            "flow_batch",
            7,
            pick(&["flow_mod_typical", "flow_mod_all_fields", "barrier_request"]),
        ),
        (
            "bundle",
            42,
            pick(&["bundle_open", "bundle_add", "bundle_commit_props"]),
        ),
        (
            "stats",
            200,
            pick(&["mp_reply_flow", "mp_reply_table", "port_status"]),
        ),
        ("truncated", 3, {
            let mut s = pick(&["packet_in", "group_mod"]);
            s.truncate(s.len() - 5);
            s
        }),
    ];
    for (name, ctrl, stream) in streams {
        let mut data = vec![ctrl];
        data.extend_from_slice(&stream);
        std::fs::write(fr.join(format!("seed-{name}")), data)?;
    }
    println!("{} decode seeds, {} framer seeds", msgs.len(), 5);
    Ok(())
}
