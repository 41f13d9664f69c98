//! One small JSON file per attachment under the agent's state directory: what DEL, CHECK and
//! garbage collection need to know after the fact (netns, delegated IPAM config, addresses).
//! Written atomically (temp file + rename).

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Record {
    pub container_id: String,
    pub ifname: String,
    pub netns: String,
    pub network: String,
    pub host_if: String,
    pub mac: String,
    /// CIDR form.
    pub ips: Vec<String>,
    pub mtu: u32,
    pub pod_namespace: String,
    pub pod_name: String,
    pub pod_uid: String,
    /// Delegated IPAM plugin type and the configuration it was called with.
    pub ipam_type: String,
    pub ipam_config: String,
    pub cni_path: Vec<String>,
    pub cni_args: String,
}

pub(crate) struct StateDir {
    dir: PathBuf,
}

impl StateDir {
    pub(crate) fn new(dir: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        Ok(StateDir {
            dir: dir.to_path_buf(),
        })
    }

    /// Container ids and interface names are validated (no `/`, no `..`) before they get here.
    fn path(&self, container_id: &str, ifname: &str) -> PathBuf {
        self.dir.join(format!("{container_id}_{ifname}.json"))
    }

    pub(crate) fn save(&self, r: &Record) -> std::io::Result<()> {
        let path = self.path(&r.container_id, &r.ifname);
        let tmp = path.with_extension("tmp");
        let data = serde_json::to_vec(r).map_err(std::io::Error::other)?;
        std::fs::write(&tmp, data)?;
        std::fs::rename(&tmp, &path)
    }

    pub(crate) fn load(&self, container_id: &str, ifname: &str) -> Option<Record> {
        let data = std::fs::read(self.path(container_id, ifname)).ok()?;
        serde_json::from_slice(&data).ok()
    }

    pub(crate) fn remove(&self, container_id: &str, ifname: &str) -> std::io::Result<()> {
        match std::fs::remove_file(self.path(container_id, ifname)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Every readable record (unreadable files are skipped: they hold nothing we could use).
    pub(crate) fn all(&self) -> Vec<Record> {
        let Ok(rd) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        rd.filter_map(|e| e.ok())
            .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
            .filter_map(|e| serde_json::from_slice(&std::fs::read(e.path()).ok()?).ok())
            .collect()
    }
}
