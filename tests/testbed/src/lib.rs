//! Test bed: Open vSwitch sandboxes and network namespaces that clean up after themselves.
//!
//! Tests in several crates start real components through this crate. Everything it creates (temp
//! dirs, daemons, namespaces, tap devices) is owned by a guard whose `Drop` removes it, so a
//! panicking test still leaves the machine clean.
//!
//! Tests that need root and Open vSwitch begin with [`privileged_or_skip`].

mod cmd;
mod netns;
mod ovs;

pub use cmd::{find_tool, unique_ifname};
pub use netns::{NetNs, veth_pair};
pub use ovs::OvsSandbox;

use std::path::PathBuf;
use std::time::Duration;

/// Errors from starting or driving test components. Command failures carry the command's stderr.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("command `{cmd}` failed ({status}): {stderr}")]
    Command {
        cmd: String,
        status: String,
        stderr: String,
    },
    #[error("{what} not ready after {waited:?}: {detail}")]
    NotReady {
        what: String,
        waited: Duration,
        detail: String,
    },
    #[error("{what} exited early ({status}): {detail}")]
    Exited {
        what: String,
        status: String,
        detail: String,
    },
    #[error("tool `{0}` not found in PATH, /usr/sbin, /usr/bin, /sbin")]
    ToolMissing(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Tools a privileged test needs; all ship with Open vSwitch and iproute2.
const PRIVILEGED_TOOLS: &[&str] = &[
    "ovs-vswitchd",
    "ovsdb-server",
    "ovsdb-tool",
    "ovs-vsctl",
    "ovs-ofctl",
    "ovs-appctl",
    "ip",
];

/// Why privileged tests cannot run here, or `None` when they can.
pub fn privileged_unavailable_reason() -> Option<String> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    if euid != 0 {
        return Some(format!("needs root (euid is {euid})"));
    }
    let missing: Vec<&str> = PRIVILEGED_TOOLS
        .iter()
        .copied()
        .filter(|t| find_tool(t).is_none())
        .collect();
    if !missing.is_empty() {
        return Some(format!("missing tools: {}", missing.join(", ")));
    }
    None
}

/// True when this test may use root, namespaces and Open vSwitch. Otherwise prints
/// `skipped: <test>: <reason>` and returns false, or panics with the reason when
/// `WEFT_REQUIRE_PRIVILEGED=1` (CI sets it so a broken setup fails instead of silently skipping).
pub fn privileged_or_skip(test: &str) -> bool {
    match privileged_unavailable_reason() {
        None => true,
        Some(reason) => {
            if std::env::var("WEFT_REQUIRE_PRIVILEGED").as_deref() == Ok("1") {
                panic!("{test}: WEFT_REQUIRE_PRIVILEGED=1 but {reason}");
            }
            // Written to the stderr handle directly: the test harness captures `println!`
            // output of passing tests, and a skip must stay visible.
            use std::io::Write;
            let _ = writeln!(std::io::stderr(), "skipped: {test}: {reason}");
            false
        }
    }
}

/// Path of the vswitch schema shipped with Open vSwitch.
pub fn vswitch_schema() -> PathBuf {
    let dir = std::env::var_os("OVS_PKGDATADIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/share/openvswitch"));
    dir.join("vswitch.ovsschema")
}
