//! The inverse of every ADD step, written once: ADD's rollback and DEL/GC call the same
//! functions. Each accepts "already gone", so running one twice, or after a crash, is harmless.

use weft_proto::agent::v1 as agent;
use weft_proto::cni::{CniError, ErrorCode};
use weft_proto::common::v1 as common;

use super::Inner;
use super::ipam::{self, IpamCall};
use super::ports::PortPlugger;

/// What releasing a delegated IPAM lease needs, owned so a rollback can hold it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Lease {
    pub plugin: String,
    pub cni_path: Vec<String>,
    pub config: Vec<u8>,
    pub container_id: String,
    pub ifname: String,
    pub cni_args: String,
}

impl<P: PortPlugger> Inner<P> {
    /// Removes the OVS port of the attachment (absent is fine).
    pub(crate) async fn delete_port(&self, host_if: &str) -> Result<(), CniError> {
        self.ports
            .del_port(host_if)
            .await
            .map(|_existed| ())
            .map_err(|e| CniError::new(ErrorCode::OvsFailed, e.to_string()))
    }

    /// Removes the veth pair: deleting the host end removes the pod end too, in whatever
    /// namespace it is.
    pub(crate) async fn delete_veth(&self, host_if: &str) -> Result<(), CniError> {
        self.host
            .del_link_by_name(host_if)
            .await
            .map(|_existed| ())
            .map_err(|e| CniError::new(ErrorCode::LinkFailed, e.to_string()))
    }

    /// Returns a delegated IPAM lease (nothing to do without a plugin).
    pub(crate) async fn release_lease(&self, lease: &Lease) -> Result<(), CniError> {
        if lease.plugin.is_empty() {
            return Ok(());
        }
        let call = IpamCall {
            plugin: &lease.plugin,
            cni_path: &lease.cni_path,
            config: &lease.config,
            container_id: &lease.container_id,
            netns: "",
            ifname: &lease.ifname,
            cni_args: &lease.cni_args,
        };
        ipam::run("DEL", &call).await.map(|_| ())
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
        match tokio::time::timeout(to, self.controller.clone().detach(req)).await {
            Err(_) => Err(CniError::new(
                ErrorCode::TryAgain,
                format!("controller did not answer Detach within {to:?}"),
            )),
            Ok(Err(s)) => Err(super::controller_error("Detach", &s)),
            Ok(Ok(_)) => Ok(()),
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
