//! Running `ovs-ofctl` as the independent decoder (and encoder) the conformance cases check
//! against.

use std::path::PathBuf;
use std::process::Command;

use weft_openflow::wire::Message;

/// What `ovs-ofctl ofp-print` prints when it cannot decode a message, or only part of it:
/// `***decode error: OFPBRC_BAD_LEN***`, `(***truncated to 11 bytes from 12***)`,
/// `(***only uses 8 bytes out of 11***)`, and warnings such as "received OFPT_FLOW_MOD with
/// incorrect length" on stderr (checked separately).
const ERROR_MARKERS: [&str; 5] = ["***", "decode error", "truncated", "only uses", "bad "];

/// `ovs-ofctl`, or `None` after printing why the test is skipped. With
/// `WEFT_REQUIRE_PRIVILEGED=1` (CI) a missing tool fails the test instead.
pub fn ofctl_or_skip(test: &str) -> Option<Ofctl> {
    match weft_testbed::find_tool("ovs-ofctl") {
        Some(path) => Some(Ofctl(path)),
        None => {
            if std::env::var("WEFT_REQUIRE_PRIVILEGED").as_deref() == Ok("1") {
                panic!("{test}: WEFT_REQUIRE_PRIVILEGED=1 but ovs-ofctl is not installed");
            }
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "skipped: {test}: ovs-ofctl (Open vSwitch) is not installed"
            );
            None
        }
    }
}

pub struct Ofctl(PathBuf);

/// One message, the xid to send it with, and texts its decoded form must contain.
pub struct Case {
    pub name: &'static str,
    pub msg: Message,
    pub expect: Vec<String>,
}

pub fn case(name: &'static str, msg: Message, expect: &[&str]) -> Case {
    Case {
        name,
        msg,
        expect: expect.iter().map(|s| s.to_string()).collect(),
    }
}

/// Hex as ofp-print takes it: one argument, bytes separated by spaces.
pub fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

impl Ofctl {
    fn run(&self, args: &[&str]) -> Result<(String, String), String> {
        let out = Command::new(&self.0)
            .args(args)
            .output()
            .map_err(|e| format!("running ovs-ofctl: {e}"))?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        if !out.status.success() {
            return Err(format!(
                "ovs-ofctl {args:?} exited with {}\n{stdout}{stderr}",
                out.status
            ));
        }
        Ok((stdout, stderr))
    }

    /// `ovs-ofctl ofp-print <hex>`: stdout, or why the decode failed.
    pub fn ofp_print(&self, bytes: &[u8]) -> Result<String, String> {
        let (stdout, stderr) = self.run(&["ofp-print", &hex(bytes)])?;
        if !stderr.trim().is_empty() {
            return Err(format!(
                "ovs-ofctl complained on stderr: {stderr}\n{stdout}"
            ));
        }
        if let Some(m) = ERROR_MARKERS.iter().find(|m| stdout.contains(*m)) {
            return Err(format!("decode error marker {m:?} in:\n{stdout}"));
        }
        Ok(stdout)
    }

    /// Emits the case with xid `xid`, has OVS decode it, checks the header line (type name,
    /// OF1.3, xid) and every expected text. Returns a description of what went wrong.
    pub fn check(&self, c: &Case, xid: u32, type_name: &str) -> Result<(), String> {
        let bytes = c
            .msg
            .to_bytes(xid)
            .map_err(|e| format!("{}: emit failed: {e}", c.name))?;
        let out = self
            .ofp_print(&bytes)
            .map_err(|e| format!("{}: {e}\nbytes: {}", c.name, hex(&bytes)))?;
        if std::env::var_os("WEFT_CONFORMANCE_SHOW").is_some() {
            eprintln!("--- {}\n{out}", c.name);
        }
        let head = format!("{type_name} (OF1.3) (xid={xid:#x})");
        let mut missing: Vec<&str> = c
            .expect
            .iter()
            .map(String::as_str)
            .filter(|e| !out.contains(e))
            .collect();
        if !out.starts_with(&head) {
            missing.insert(0, &head);
        }
        if missing.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "{}: ofp-print output lacks {missing:?}:\n{out}",
                c.name
            ))
        }
    }

    /// The bytes OVS itself encodes for `ovs-ofctl -O OpenFlow13 -mmmmmm <args>` (a FLOW_MOD for
    /// `parse-flow`, a GROUP_MOD for `parse-group`, a HELLO for `encode-hello`, an ERROR for
    /// `encode-error-reply`), read from its hex dump.
    pub fn encode(&self, args: &[&str]) -> Result<Vec<u8>, String> {
        let mut all = vec!["-O", "OpenFlow13", "-mmmmmm"];
        all.extend_from_slice(args);
        let (stdout, _) = self.run(&all)?;
        let mut bytes = Vec::new();
        for line in stdout.lines() {
            // "00000000  04 0e 00 60 00 00 00 01-00 00 ... |...`....|"
            let Some((offset, rest)) = line.split_once("  ") else {
                continue;
            };
            let Ok(offset) = usize::from_str_radix(offset, 16) else {
                continue;
            };
            // Some commands print the message twice (encoded, then decoded): keep the first.
            if offset != bytes.len() {
                break;
            }
            let hexpart = rest.split('|').next().unwrap_or("");
            for tok in hexpart.split([' ', '-']).filter(|t| !t.is_empty()) {
                let b = u8::from_str_radix(tok, 16)
                    .map_err(|e| format!("bad hex {tok:?} in {line:?}: {e}"))?;
                bytes.push(b);
            }
        }
        if bytes.is_empty() {
            return Err(format!("no hex dump in ovs-ofctl output:\n{stdout}"));
        }
        Ok(bytes)
    }
}

/// Runs every case through [`Ofctl::check`] (xids 1, 2, ...) and fails with all problems at once.
pub fn run_all(ofctl: &Ofctl, type_of: impl Fn(&Message) -> &'static str, cases: &[Case]) {
    let mut names = std::collections::BTreeSet::new();
    let failures: Vec<String> = cases
        .iter()
        .enumerate()
        .filter_map(|(i, c)| {
            assert!(names.insert(c.name), "duplicate case name {}", c.name);
            ofctl.check(c, i as u32 + 1, type_of(&c.msg)).err()
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}

/// The name ofp-print puts in front of each message kind.
pub fn type_name(m: &Message) -> &'static str {
    use weft_openflow::wire::{MultipartReplyBody as P, MultipartRequestBody as Q};
    match m {
        Message::Hello(_) => "OFPT_HELLO",
        Message::Error(_) => "OFPT_ERROR",
        Message::EchoRequest(_) => "OFPT_ECHO_REQUEST",
        Message::EchoReply(_) => "OFPT_ECHO_REPLY",
        Message::Experimenter(_) => "OFPT_EXPERIMENTER",
        Message::FeaturesRequest => "OFPT_FEATURES_REQUEST",
        Message::FeaturesReply(_) => "OFPT_FEATURES_REPLY",
        Message::GetConfigRequest => "OFPT_GET_CONFIG_REQUEST",
        Message::GetConfigReply(_) => "OFPT_GET_CONFIG_REPLY",
        Message::SetConfig(_) => "OFPT_SET_CONFIG",
        Message::PacketIn(_) => "OFPT_PACKET_IN",
        Message::FlowRemoved(_) => "OFPT_FLOW_REMOVED",
        Message::PortStatus(_) => "OFPT_PORT_STATUS",
        Message::PacketOut(_) => "OFPT_PACKET_OUT",
        Message::FlowMod(_) => "OFPT_FLOW_MOD",
        Message::GroupMod(_) => "OFPT_GROUP_MOD",
        Message::PortMod(_) => "OFPT_PORT_MOD",
        Message::TableMod(_) => "OFPT_TABLE_MOD",
        Message::BarrierRequest => "OFPT_BARRIER_REQUEST",
        Message::BarrierReply => "OFPT_BARRIER_REPLY",
        Message::RoleRequest(_) => "OFPT_ROLE_REQUEST",
        Message::RoleReply(_) => "OFPT_ROLE_REPLY",
        Message::MeterMod(_) => "OFPT_METER_MOD",
        Message::BundleControl(_) => "ONFT_BUNDLE_CONTROL",
        Message::BundleAdd(_) => "ONFT_BUNDLE_ADD_MESSAGE",
        Message::MultipartRequest(r) => match r.body {
            Q::Desc => "OFPST_DESC request",
            Q::Flow(_) => "OFPST_FLOW request",
            Q::Aggregate(_) => "OFPST_AGGREGATE request",
            Q::Table => "OFPST_TABLE request",
            Q::PortStats { .. } => "OFPST_PORT request",
            Q::Group { .. } => "OFPST_GROUP request",
            Q::GroupDesc => "OFPST_GROUP_DESC request",
            Q::PortDesc => "OFPST_PORT_DESC request",
            Q::Other { .. } => "OFPST_",
        },
        Message::MultipartReply(r) => match r.body {
            P::Desc(_) => "OFPST_DESC reply",
            P::Flow(_) => "OFPST_FLOW reply",
            P::Aggregate(_) => "OFPST_AGGREGATE reply",
            P::Table(_) => "OFPST_TABLE reply",
            P::PortStats(_) => "OFPST_PORT reply",
            P::Group(_) => "OFPST_GROUP reply",
            P::GroupDesc(_) => "OFPST_GROUP_DESC reply",
            P::PortDesc(_) => "OFPST_PORT_DESC reply",
            P::Other { .. } => "OFPST_",
        },
    }
}
