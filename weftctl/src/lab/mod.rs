//! The lab: a whole Weft fabric in network namespaces on one machine.
//!
//! Layout of lab `L` (every address lives inside these namespaces; the root namespace only holds
//! the namespace files and `/run/weft-lab/L/`):
//!
//! - `weft-L-underlay`: Linux bridge `br0` joining one veth per node and the controller;
//! - `weft-L-ctl`: `weft-controller` (standalone, state file in the lab dir), `eth0` = `.1`;
//! - `weft-L-nodeN`: ovsdb-server + ovs-vswitchd (netdev datapath, run dir in the lab dir) and
//!   `weft-agent`, `eth0` = `.(10+N)`;
//! - `weft-L-pod-P`: a pod, attached through the real `weft-cni` binary.
//!
//! `state.json` records what was made; `down` also scans namespaces and processes by name, so it
//! cleans up after a crash of anything, this tool included.

pub mod daemons;
pub mod demo;
pub mod down;
pub mod pki;
pub mod status;
pub mod up;

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::sys::FileLock;

/// Where labs keep their state (tmpfs: a reboot forgets labs, as it forgets their namespaces).
pub const ROOT: &str = "/run/weft-lab";
pub const CONTROLLER_REST_PORT: u16 = 8080;
pub const CONTROLLER_METRICS_PORT: u16 = 9090;
pub const CONTROLLER_GRPC_PORT: u16 = 7070;
pub const OPENFLOW_PORT: u16 = 6653;
pub const AGENT_METRICS_PORT: u16 = 9091;
pub const BRIDGE: &str = "weft0";

/// One node: its namespace, underlay address and daemons.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeState {
    pub name: String,
    pub index: u32,
    pub ns: String,
    pub ip: Ipv4Addr,
    #[serde(default)]
    pub ovsdb_pid: i32,
    #[serde(default)]
    pub vswitchd_pid: i32,
    #[serde(default)]
    pub agent_pid: i32,
}

/// One attachment of a pod, as `weft-cni` ADD returned it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PodAttachment {
    pub network: String,
    pub ifname: String,
    pub mac: String,
    pub ips: Vec<String>,
    /// Wall time of the `weft-cni` ADD call.
    pub add_ms: f64,
    /// The NAD-style configuration passed on stdin (DEL passes it again, as a runtime does).
    pub config: serde_json::Value,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PodState {
    pub name: String,
    pub namespace: String,
    pub node: String,
    pub ns: String,
    pub uid: String,
    pub container_id: String,
    pub attachments: Vec<PodAttachment>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LabState {
    pub name: String,
    /// Underlay is `10.255.<octet>.0/24`; only ever configured inside lab namespaces.
    pub octet: u8,
    pub created_ms: u64,
    pub underlay_mtu: u32,
    #[serde(default)]
    pub controller_pid: i32,
    pub next_node_index: u32,
    pub nodes: BTreeMap<String, NodeState>,
    pub pods: BTreeMap<String, PodState>,
}

/// Lab names become namespace and directory names: short DNS labels.
pub fn validate_name(kind: &str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 32
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if !ok {
        bail!(
            "{kind} name {name:?}: use 1-32 of a-z, 0-9 and '-', not starting or ending with '-'"
        );
    }
    Ok(())
}

pub fn lab_dir(lab: &str) -> PathBuf {
    Path::new(ROOT).join(lab)
}

pub fn ns_prefix(lab: &str) -> String {
    format!("weft-{lab}-")
}

pub fn underlay_ns(lab: &str) -> String {
    format!("weft-{lab}-underlay")
}

pub fn ctl_ns(lab: &str) -> String {
    format!("weft-{lab}-ctl")
}

pub fn node_ns(lab: &str, node: &str) -> String {
    format!("weft-{lab}-{node}")
}

pub fn pod_ns(lab: &str, pod: &str) -> String {
    format!("weft-{lab}-pod-{pod}")
}

/// Whether `ns` has a role name this tool gives (`underlay`, `ctl`, `nodeN`, `pod-*`) in `lab`.
pub fn is_lab_ns(lab: &str, ns: &str) -> bool {
    let Some(role) = ns.strip_prefix(&ns_prefix(lab)) else {
        return false;
    };
    role == "underlay"
        || role == "ctl"
        || role.strip_prefix("pod-").is_some_and(|p| !p.is_empty())
        || role
            .strip_prefix("node")
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// The lab a namespace belongs to, among `labs`: the longest name that claims it, so lab `a`
/// never takes `weft-a-pod-underlay` from a lab called `a-pod`.
pub fn owner_of<'a>(ns: &str, labs: &'a [String]) -> Option<&'a str> {
    labs.iter()
        .filter(|l| is_lab_ns(l, ns))
        .max_by_key(|l| l.len())
        .map(String::as_str)
}

/// FNV-1a of the lab name picks the underlay's third octet, so labs differ in addresses too
/// (which matters once labs are joined for inter-cluster tests).
pub fn octet_for(lab: &str) -> u8 {
    let mut h: u32 = 0x811c_9dc5;
    for b in lab.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    (h % 250) as u8 + 1
}

impl LabState {
    pub fn new(name: &str, underlay_mtu: u32) -> LabState {
        LabState {
            name: name.to_string(),
            octet: octet_for(name),
            created_ms: crate::sys::now_ms(),
            underlay_mtu,
            controller_pid: 0,
            next_node_index: 1,
            nodes: BTreeMap::new(),
            pods: BTreeMap::new(),
        }
    }

    pub fn dir(&self) -> PathBuf {
        lab_dir(&self.name)
    }

    pub fn controller_ip(&self) -> Ipv4Addr {
        Ipv4Addr::new(10, 255, self.octet, 1)
    }

    pub fn node_ip(&self, index: u32) -> Result<Ipv4Addr> {
        let host = 10 + index;
        if host > 254 {
            bail!("a lab holds at most 244 nodes");
        }
        Ok(Ipv4Addr::new(10, 255, self.octet, host as u8))
    }

    pub fn ctl_ns(&self) -> String {
        ctl_ns(&self.name)
    }

    /// REST API address, reachable from inside the controller namespace.
    pub fn rest_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], CONTROLLER_REST_PORT))
    }

    pub fn metrics_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], CONTROLLER_METRICS_PORT))
    }

    pub fn node(&self, name: &str) -> Result<&NodeState> {
        self.nodes.get(name).with_context(|| {
            let known: Vec<&str> = self.nodes.keys().map(String::as_str).collect();
            format!(
                "lab {} has no node {name:?} (nodes: {})",
                self.name,
                known.join(", ")
            )
        })
    }

    pub fn node_dir(&self, node: &str) -> PathBuf {
        self.dir().join(node)
    }

    pub fn ovs_dir(&self, node: &str) -> PathBuf {
        self.node_dir(node).join("ovs")
    }

    pub fn cni_socket(&self, node: &str) -> PathBuf {
        self.node_dir(node).join("cni.sock")
    }

    pub fn state_path(&self) -> PathBuf {
        self.dir().join("state.json")
    }

    pub fn save(&self) -> Result<()> {
        let path = self.state_path();
        let tmp = path.with_extension("json.tmp");
        let text = serde_json::to_string_pretty(self)?;
        std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
        Ok(())
    }

    pub fn load(lab: &str) -> Result<LabState> {
        let path = lab_dir(lab).join("state.json");
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "lab {lab:?} does not exist (no {}); `weftctl lab up --name {lab}` makes it",
                path.display()
            )
        })?;
        serde_json::from_str(&text).with_context(|| format!("reading {}", path.display()))
    }
}

/// Serialises commands that change one lab (two `pod run`s at once must not lose a record).
pub fn lock(lab: &str) -> Result<FileLock> {
    let dir = lab_dir(lab);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    FileLock::acquire(&dir.join("lock"))
}

/// Names of labs with a directory under [`ROOT`].
pub fn known_labs() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(ROOT)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| e.path().is_dir())
                .filter_map(|e| e.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Where the Weft binaries are: `$WEFT_BIN_DIR`, else next to this executable, else PATH.
pub fn binary(name: &str) -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("WEFT_BIN_DIR") {
        let p = PathBuf::from(dir).join(name);
        if p.is_file() {
            return Ok(p);
        }
    }
    if let Some(p) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(|d| d.join(name)))
        .filter(|p| p.is_file())
    {
        return Ok(p);
    }
    crate::sys::find_tool(name).with_context(|| {
        format!("{name} not found next to weftctl, in $WEFT_BIN_DIR or PATH: build it with `cargo build --release --bins`")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_roles_and_owners() {
        assert!(is_lab_ns("a", "weft-a-underlay"));
        assert!(is_lab_ns("a", "weft-a-node12"));
        assert!(is_lab_ns("a", "weft-a-pod-x"));
        assert!(!is_lab_ns("a", "weft-a-nodex"));
        assert!(!is_lab_ns("a", "weft-a-b-ctl"));
        assert!(!is_lab_ns("a", "weft-ab-ctl"));
        let labs = vec!["a".to_string(), "a-pod".to_string()];
        assert_eq!(owner_of("weft-a-pod-underlay", &labs), Some("a-pod"));
        assert_eq!(owner_of("weft-a-pod-web", &labs), Some("a"));
        assert_eq!(owner_of("weft-b-ctl", &labs), None);
    }

    #[test]
    fn names_are_checked() {
        assert!(validate_name("lab", "demo-1").is_ok());
        for bad in ["", "-a", "a-", "A", "a_b", &"x".repeat(33)] {
            assert!(validate_name("lab", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn octet_is_stable_and_in_range() {
        let o = octet_for("demo");
        assert_eq!(o, octet_for("demo"));
        assert!((1..=250).contains(&o));
    }
}
