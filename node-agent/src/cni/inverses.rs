//! The inverse of every ADD step, written once: ADD's rollback and DEL/GC call the same
//! functions. Each accepts "already gone", so running one twice, or after a crash, is harmless.

use weft_proto::agent::v1 as agent;
use weft_proto::cni::v1 as pb;
use weft_proto::cni::{CniError, ErrorCode};
use weft_proto::common::v1 as common;

use super::Inner;
use super::ipam::{self, IpamCall};
use super::ports::PortPlugger;
use super::seams::{NodeControl, PodLinks};
use super::state::Record;

/// One attachment's identity and what releasing its delegated IPAM lease needs (no `plugin`:
/// no lease), owned so a rollback can hold it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Lease {
    pub plugin: String,
    pub cni_path: Vec<String>,
    pub config: Vec<u8>,
    pub container_id: String,
    pub ifname: String,
    pub cni_args: String,
}

impl Lease {
    /// As the request gives it.
    pub(crate) fn of_request(r: &pb::CniRequest) -> Self {
        Lease {
            plugin: r.ipam_type.clone(),
            cni_path: r.cni_path.clone(),
            config: r.ipam_config.clone(),
            container_id: r.container_id.clone(),
            ifname: r.ifname.clone(),
            cni_args: super::cni_args(r),
        }
    }

    /// As ADD recorded it.
    pub(crate) fn of_record(rec: &Record) -> Self {
        Lease {
            plugin: rec.ipam_type.clone(),
            cni_path: rec.cni_path.clone(),
            config: rec.ipam_config.clone().into_bytes(),
            container_id: rec.container_id.clone(),
            ifname: rec.ifname.clone(),
            cni_args: rec.cni_args.clone(),
        }
    }

    /// An attachment known only by its identity (a port without a record).
    pub(crate) fn bare(container_id: &str, ifname: &str) -> Self {
        Lease {
            container_id: container_id.to_string(),
            ifname: ifname.to_string(),
            ..Lease::default()
        }
    }

    /// The plugin call for this lease (no netns: DEL must work after the pod is gone).
    pub(crate) fn call(&self) -> IpamCall<'_> {
        IpamCall {
            plugin: &self.plugin,
            cni_path: &self.cni_path,
            config: &self.config,
            container_id: &self.container_id,
            netns: "",
            ifname: &self.ifname,
            cni_args: &self.cni_args,
        }
    }
}

impl<P: PortPlugger, L: PodLinks, C: NodeControl> Inner<P, L, C> {
    /// Removes the OVS port of the attachment (absent is fine).
    pub(crate) async fn delete_port(&self, host_if: &str) -> Result<(), CniError> {
        self.ports
            .del_port(host_if)
            .await
            .map(|_existed| ())
            .map_err(|e| CniError::new(ErrorCode::OvsFailed, e.to_string()))
    }

    /// Gives back the OpenFlow port number `host_if` held (if any).
    pub(crate) async fn release_port_number(&self, host_if: &str) {
        if let Some(n) = self.numbers.lock().await.as_mut() {
            n.release(host_if);
        }
    }

    /// Removes the veth pair: deleting the host end removes the pod end too, in whatever
    /// namespace it is.
    pub(crate) async fn delete_veth(&self, host_if: &str) -> Result<(), CniError> {
        self.links.delete_veth(host_if).await.map(|_existed| ())
    }

    /// Returns a delegated IPAM lease (nothing to do without a plugin).
    pub(crate) async fn release_lease(&self, lease: &Lease) -> Result<(), CniError> {
        if lease.plugin.is_empty() {
            return Ok(());
        }
        ipam::run("DEL", &lease.call()).await.map(|_| ())
    }

    /// Tells the controller the attachment is gone (unknown attachments are fine), bounded by
    /// the controller timeout.
    pub(crate) async fn detach(&self, container_id: &str, ifname: &str) -> Result<(), CniError> {
        let req = agent::DetachRequest {
            node_name: self.cfg.node_name.clone(),
            id: Some(common::AttachmentId {
                container_id: container_id.to_string(),
                ifname: ifname.to_string(),
            }),
        };
        let to = self.cfg.controller_timeout;
        match tokio::time::timeout(to, self.controller.detach(req)).await {
            Err(_) => Err(CniError::new(
                ErrorCode::TryAgain,
                format!("controller did not answer Detach within {to:?}"),
            )),
            Ok(Err(s)) => Err(super::controller_error("Detach", &s)),
            Ok(Ok(())) => Ok(()),
        }
    }

    /// Drops the attachment's record on disk.
    pub(crate) fn forget(&self, container_id: &str, ifname: &str) -> Result<(), CniError> {
        self.state
            .remove(container_id, ifname)
            .map_err(|e| CniError::new(ErrorCode::IoFailure, format!("removing record: {e}")))
    }
}

/// Runs an inverse during rollback: a failure is logged, and the rest of the rollback goes on
/// (the runtime's DEL, or GC, finishes what is left).
pub(crate) fn logged(step: &'static str, r: Result<(), CniError>) {
    if let Err(e) = r {
        tracing::warn!(step, code = e.code.value(), error = %e.msg, "rollback step failed");
    }
}
