//! In-memory seams for the CNI server's unit tests: one shared "world" of pod namespaces, veth
//! pairs, OVS ports and controller reservations, where any operation can be made to fail once.

use super::ports::{PortError, PortPlugger, PortRecord};
use super::seams::{NodeControl, PodConfig, PodLinks};
use crate::netlink::LinkInfo;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::Notify;
use tonic::Status;
use weft_proto::agent::v1 as agent;
use weft_proto::cni::{CniError, ErrorCode};
use weft_types::MacAddr;

/// A veth pair, keyed by its host end.
#[derive(Debug, Clone)]
pub(super) struct Veth {
    pub netns: String,
    pub ifname: String,
    pub mac: MacAddr,
    pub up: bool,
    pub config: PodConfig,
}

#[derive(Debug, Default)]
pub(super) struct State {
    pub namespaces: BTreeSet<String>,
    pub veths: BTreeMap<String, Veth>,
    /// OVS ports: name -> (external_ids, ofport).
    pub ports: BTreeMap<String, (BTreeMap<String, String>, u32)>,
    pub reserved: BTreeSet<(String, String)>,
    pub attached: BTreeSet<(String, String)>,
    /// Operations that fail the next time they run.
    pub fail_once: BTreeSet<&'static str>,
    pub calls: Vec<&'static str>,
}

#[derive(Debug, Default)]
pub(super) struct World {
    state: Mutex<State>,
    /// When set, Attach waits for it (after signalling `attach_entered`).
    pub attach_gate: Mutex<Option<Arc<Notify>>>,
    pub attach_entered: Notify,
}

impl World {
    pub(crate) fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn fail_once(&self, op: &'static str) {
        self.state().fail_once.insert(op);
    }

    /// Records the call; true when it is to fail.
    fn call(&self, op: &'static str) -> bool {
        let mut s = self.state();
        s.calls.push(op);
        s.fail_once.remove(op)
    }
}

fn injected(op: &str, code: ErrorCode) -> CniError {
    CniError::new(code, format!("injected failure of {op}"))
}

fn link_info(name: &str, v: &Veth) -> LinkInfo {
    LinkInfo {
        index: 7,
        name: name.to_string(),
        mac: Some(v.mac),
        mtu: 1450,
        up: v.up,
    }
}

pub(super) struct FakeLinks(pub Arc<World>);
pub(super) struct FakePorts(pub Arc<World>);
pub(super) struct FakeController(pub Arc<World>);

impl PodLinks for FakeLinks {
    type Pod = String;

    async fn open_pod(&self, netns: &str) -> Result<String, CniError> {
        if self.0.call("open_pod") || !self.0.state().namespaces.contains(netns) {
            return Err(CniError::new(
                ErrorCode::InvalidEnvironment,
                format!("CNI_NETNS: no namespace {netns}"),
            ));
        }
        Ok(netns.to_string())
    }

    fn netns_exists(&self, netns: &str) -> bool {
        self.0.state().namespaces.contains(netns)
    }

    async fn pod_link(&self, pod: &String, ifname: &str) -> Result<Option<LinkInfo>, CniError> {
        if self.0.call("pod_link") {
            return Err(injected("pod_link", ErrorCode::LinkFailed));
        }
        let s = self.0.state();
        Ok(s.veths
            .values()
            .find(|v| &v.netns == pod && v.ifname == ifname)
            .map(|v| link_info(ifname, v)))
    }

    async fn pod_addresses(
        &self,
        pod: &String,
        ifname: &str,
    ) -> Result<Vec<(IpAddr, u8)>, CniError> {
        let s = self.0.state();
        Ok(s.veths
            .values()
            .find(|v| &v.netns == pod && v.ifname == ifname)
            .map(|v| v.config.addresses.clone())
            .unwrap_or_default())
    }

    async fn create_veth(
        &self,
        host_if: &str,
        pod: &String,
        ifname: &str,
        mac: MacAddr,
        _mtu: u32,
    ) -> Result<LinkInfo, CniError> {
        if self.0.call("create_veth") {
            return Err(injected("create_veth", ErrorCode::LinkFailed));
        }
        let mut s = self.0.state();
        if s.veths.contains_key(host_if) {
            return Err(CniError::new(ErrorCode::LinkFailed, "host end exists"));
        }
        let v = Veth {
            netns: pod.clone(),
            ifname: ifname.to_string(),
            mac,
            up: false,
            config: PodConfig::default(),
        };
        s.veths.insert(host_if.to_string(), v);
        let host = Veth {
            mac: MacAddr([0x0a, 0, 0, 0, 0, 1]),
            up: true,
            ..s.veths[host_if].clone()
        };
        Ok(link_info(host_if, &host))
    }

    async fn configure_pod(
        &self,
        pod: &String,
        ifname: &str,
        config: &PodConfig,
    ) -> Result<(), CniError> {
        if self.0.call("configure_pod") {
            return Err(injected("configure_pod", ErrorCode::LinkFailed));
        }
        let mut s = self.0.state();
        let v = s
            .veths
            .values_mut()
            .find(|v| &v.netns == pod && v.ifname == ifname)
            .ok_or_else(|| CniError::new(ErrorCode::LinkFailed, "no pod end"))?;
        v.up = true;
        v.config = config.clone();
        Ok(())
    }

    async fn host_link(&self, host_if: &str) -> Result<Option<LinkInfo>, CniError> {
        let s = self.0.state();
        Ok(s.veths.get(host_if).map(|v| link_info(host_if, v)))
    }

    async fn delete_veth(&self, host_if: &str) -> Result<bool, CniError> {
        if self.0.call("delete_veth") {
            return Err(injected("delete_veth", ErrorCode::LinkFailed));
        }
        Ok(self.0.state().veths.remove(host_if).is_some())
    }
}

fn port_failure(op: &str) -> PortError {
    PortError::Port {
        name: op.to_string(),
        why: "injected failure".into(),
    }
}

impl PortPlugger for FakePorts {
    async fn add_port(
        &self,
        name: &str,
        external_ids: &BTreeMap<String, String>,
        ofport: Option<u32>,
    ) -> Result<u32, PortError> {
        let n = ofport.unwrap_or(1);
        // Like OVSDB after a timed-out wait: the row exists although the call failed.
        let fail = self.0.call("add_port");
        self.0
            .state()
            .ports
            .insert(name.to_string(), (external_ids.clone(), n));
        if fail {
            return Err(port_failure("add_port"));
        }
        Ok(n)
    }

    async fn port_numbers(&self) -> Result<Vec<(String, u32)>, PortError> {
        if self.0.call("port_numbers") {
            return Err(port_failure("port_numbers"));
        }
        let s = self.0.state();
        Ok(s.ports.iter().map(|(k, (_, n))| (k.clone(), *n)).collect())
    }

    async fn del_port(&self, name: &str) -> Result<bool, PortError> {
        if self.0.call("del_port") {
            return Err(port_failure("del_port"));
        }
        Ok(self.0.state().ports.remove(name).is_some())
    }

    async fn ports_with(&self, key: &str, value: &str) -> Result<Vec<PortRecord>, PortError> {
        let s = self.0.state();
        Ok(s.ports
            .iter()
            .filter(|(_, (ids, _))| ids.get(key).is_some_and(|v| v == value))
            .map(|(name, (ids, _))| PortRecord {
                name: name.clone(),
                external_ids: ids.clone(),
            })
            .collect())
    }

    async fn bridge_ready(&self) -> Result<bool, PortError> {
        Ok(true)
    }
}

fn key(id: Option<&weft_proto::common::v1::AttachmentId>) -> (String, String) {
    id.map(|i| (i.container_id.clone(), i.ifname.clone()))
        .unwrap_or_default()
}

impl NodeControl for FakeController {
    async fn prepare(&self, r: agent::PrepareRequest) -> Result<agent::PrepareReply, Status> {
        if self.0.call("prepare") {
            return Err(Status::unavailable("injected failure of prepare"));
        }
        let ips = if r.ips.is_empty() {
            vec!["10.1.0.5/24".to_string()]
        } else {
            r.ips
        };
        self.0.state().reserved.insert(key(r.id.as_ref()));
        Ok(agent::PrepareReply {
            mac: "02:00:00:00:00:05".into(),
            ips,
            gateway: "10.1.0.1".into(),
            mtu: 1450,
        })
    }

    async fn attach(&self, r: agent::AttachRequest) -> Result<(), Status> {
        let gate = self
            .0
            .attach_gate
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if let Some(gate) = gate {
            self.0.attach_entered.notify_one();
            gate.notified().await;
        }
        if self.0.call("attach") {
            return Err(Status::failed_precondition("injected failure of attach"));
        }
        let k = key(r.id.as_ref());
        let mut s = self.0.state();
        if !s.reserved.contains(&k) {
            return Err(Status::failed_precondition("not prepared"));
        }
        s.attached.insert(k);
        Ok(())
    }

    async fn detach(&self, r: agent::DetachRequest) -> Result<(), Status> {
        if self.0.call("detach") {
            return Err(Status::unavailable("injected failure of detach"));
        }
        let k = key(r.id.as_ref());
        let mut s = self.0.state();
        s.reserved.remove(&k);
        s.attached.remove(&k);
        Ok(())
    }
}
