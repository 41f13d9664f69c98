//! The CNI server's two other seams beside [`super::ports::PortPlugger`]: kernel links (the veth
//! pair and the pod end's configuration) and the controller's NodeControl API. Production uses
//! [`KernelLinks`] and the tonic client; unit tests use fakes, so every step of ADD and DEL can be
//! failed in turn without root.

use crate::netlink::{LinkInfo, Netlink, NetlinkError, open_netns};
use std::fs::File;
use std::future::Future;
use std::net::IpAddr;
use std::path::Path;
use tonic::Status;
use tonic::transport::Channel;
use weft_proto::agent::v1 as agent;
use weft_proto::agent::v1::node_control_client::NodeControlClient;
use weft_proto::cni::{CniError, ErrorCode};
use weft_types::MacAddr;

/// What the pod end gets once it exists: addresses, routes, and the checksum fix for
/// userspace datapaths.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodConfig {
    pub addresses: Vec<(IpAddr, u8)>,
    pub routes: Vec<RouteSpec>,
    /// OVS's userspace datapath reads veths through AF_PACKET, where a checksum left to
    /// "hardware" is never filled in.
    pub tx_checksum_off: bool,
}

/// One route inside the pod, out of the pod interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteSpec {
    pub dst: IpAddr,
    pub prefix: u8,
    pub gateway: Option<IpAddr>,
}

/// Links in the host namespace and inside pods. Errors are CNI errors already: each
/// implementation decides which code a failure of its own is.
pub trait PodLinks: Send + Sync + 'static {
    /// An opened pod network namespace.
    type Pod: Send + Sync + 'static;

    /// Opens the namespace at `netns` (`InvalidEnvironment` when it cannot be).
    fn open_pod(&self, netns: &str) -> impl Future<Output = Result<Self::Pod, CniError>> + Send;
    /// Whether the namespace file still exists (the agent's own GC).
    fn netns_exists(&self, netns: &str) -> bool;
    /// The interface `ifname` inside the pod, if any.
    fn pod_link(
        &self,
        pod: &Self::Pod,
        ifname: &str,
    ) -> impl Future<Output = Result<Option<LinkInfo>, CniError>> + Send;
    /// Addresses on the pod interface `ifname` (CIDR parts).
    fn pod_addresses(
        &self,
        pod: &Self::Pod,
        ifname: &str,
    ) -> impl Future<Output = Result<Vec<(IpAddr, u8)>, CniError>> + Send;
    /// Creates the veth pair: `host_if` in the host namespace, `ifname` born inside the pod
    /// with its final MAC and MTU; the host end gets the MTU too, before OVS opens it. Returns
    /// the host end. `InterfaceExists` when `ifname` appeared in the pod meanwhile.
    fn create_veth(
        &self,
        host_if: &str,
        pod: &Self::Pod,
        ifname: &str,
        mac: MacAddr,
        mtu: u32,
    ) -> impl Future<Output = Result<LinkInfo, CniError>> + Send;
    /// Brings the pod interface up and gives it `config`.
    fn configure_pod(
        &self,
        pod: &Self::Pod,
        ifname: &str,
        config: &PodConfig,
    ) -> impl Future<Output = Result<(), CniError>> + Send;
    /// The host end `host_if`, if it exists.
    fn host_link(
        &self,
        host_if: &str,
    ) -> impl Future<Output = Result<Option<LinkInfo>, CniError>> + Send;
    /// Deletes the pair by its host end (the pod end goes with it, wherever it is);
    /// `Ok(false)` when there was none.
    fn delete_veth(&self, host_if: &str) -> impl Future<Output = Result<bool, CniError>> + Send;
}

/// The controller calls the CNI server makes. Timeouts are the caller's.
pub trait NodeControl: Send + Sync + 'static {
    fn prepare(
        &self,
        r: agent::PrepareRequest,
    ) -> impl Future<Output = Result<agent::PrepareReply, Status>> + Send;
    /// Returns once the controller confirmed the attachment's flows on every affected switch.
    fn attach(&self, r: agent::AttachRequest) -> impl Future<Output = Result<(), Status>> + Send;
    /// Unknown attachments are fine.
    fn detach(&self, r: agent::DetachRequest) -> impl Future<Output = Result<(), Status>> + Send;
}

impl NodeControl for NodeControlClient<Channel> {
    // Fully qualified: the trait's methods share the client's names.
    async fn prepare(&self, r: agent::PrepareRequest) -> Result<agent::PrepareReply, Status> {
        let reply = NodeControlClient::prepare_attachment(&mut self.clone(), r).await?;
        Ok(reply.into_inner())
    }

    async fn attach(&self, r: agent::AttachRequest) -> Result<(), Status> {
        NodeControlClient::attach(&mut self.clone(), r)
            .await
            .map(|_| ())
    }

    async fn detach(&self, r: agent::DetachRequest) -> Result<(), Status> {
        NodeControlClient::detach(&mut self.clone(), r)
            .await
            .map(|_| ())
    }
}

/// [`PodLinks`] over rtnetlink: one socket in the host (bridge) namespace, one per opened pod.
pub struct KernelLinks {
    host: Netlink,
}

/// A pod namespace opened by [`KernelLinks`]: its file (to create links in it) and a netlink
/// socket inside it.
pub struct KernelPod {
    file: File,
    netlink: Netlink,
}

impl KernelLinks {
    /// Needs a tokio runtime. `host_netns`: where the bridge is; `None` = the agent's own.
    pub(crate) async fn new(host_netns: Option<&Path>) -> Result<Self, NetlinkError> {
        let host = match host_netns {
            Some(p) => Netlink::in_netns(p).await?,
            None => Netlink::current()?,
        };
        Ok(KernelLinks { host })
    }
}

fn link_err(e: NetlinkError) -> CniError {
    CniError::new(ErrorCode::LinkFailed, e.to_string())
}

impl PodLinks for KernelLinks {
    type Pod = KernelPod;

    async fn open_pod(&self, netns: &str) -> Result<KernelPod, CniError> {
        let path = Path::new(netns);
        let bad = |e: NetlinkError| {
            CniError::new(ErrorCode::InvalidEnvironment, format!("CNI_NETNS: {e}"))
        };
        let file = open_netns(path).map_err(bad)?;
        let for_socket = file
            .try_clone()
            .map_err(|e| CniError::new(ErrorCode::IoFailure, format!("dup netns fd: {e}")))?;
        let netlink = Netlink::in_netns_file(for_socket, path)
            .await
            .map_err(bad)?;
        Ok(KernelPod { file, netlink })
    }

    fn netns_exists(&self, netns: &str) -> bool {
        Path::new(netns).exists()
    }

    async fn pod_link(&self, pod: &KernelPod, ifname: &str) -> Result<Option<LinkInfo>, CniError> {
        pod.netlink.link(ifname).await.map_err(link_err)
    }

    async fn pod_addresses(
        &self,
        pod: &KernelPod,
        ifname: &str,
    ) -> Result<Vec<(IpAddr, u8)>, CniError> {
        let link = pod.netlink.link(ifname).await.map_err(link_err)?;
        match link {
            Some(l) => pod.netlink.addresses(l.index).await.map_err(link_err),
            None => Ok(Vec::new()),
        }
    }

    async fn create_veth(
        &self,
        host_if: &str,
        pod: &KernelPod,
        ifname: &str,
        mac: MacAddr,
        mtu: u32,
    ) -> Result<LinkInfo, CniError> {
        self.host
            .add_veth_into(host_if, ifname, &pod.file, Some(mac), Some(mtu))
            .await
            .map_err(|e| {
                if e.is_exists() {
                    CniError::new(
                        ErrorCode::InterfaceExists,
                        format!("interface {ifname} appeared in the pod netns"),
                    )
                } else {
                    link_err(e)
                }
            })?;
        let host = self
            .host
            .link(host_if)
            .await
            .map_err(link_err)?
            .ok_or_else(|| CniError::new(ErrorCode::LinkFailed, format!("{host_if} vanished")))?;
        self.host
            .configure(host.index, None, None, Some(mtu))
            .await
            .map_err(link_err)?;
        Ok(host)
    }

    async fn configure_pod(
        &self,
        pod: &KernelPod,
        ifname: &str,
        config: &PodConfig,
    ) -> Result<(), CniError> {
        let link = pod
            .netlink
            .link(ifname)
            .await
            .map_err(link_err)?
            .ok_or_else(|| {
                CniError::new(
                    ErrorCode::LinkFailed,
                    format!("{ifname} not found in pod netns after creation"),
                )
            })?;
        pod.netlink.set_up(link.index).await.map_err(link_err)?;
        if config.tx_checksum_off {
            crate::netlink::disable_tx_checksum(&pod.file, ifname)
                .await
                .map_err(link_err)?;
        }
        for (ip, prefix) in &config.addresses {
            pod.netlink
                .add_address(link.index, *ip, *prefix)
                .await
                .map_err(link_err)?;
        }
        for r in &config.routes {
            pod.netlink
                .add_route(link.index, r.dst, r.prefix, r.gateway)
                .await
                .map_err(link_err)?;
        }
        Ok(())
    }

    async fn host_link(&self, host_if: &str) -> Result<Option<LinkInfo>, CniError> {
        self.host.link(host_if).await.map_err(link_err)
    }

    async fn delete_veth(&self, host_if: &str) -> Result<bool, CniError> {
        self.host.del_link_by_name(host_if).await.map_err(link_err)
    }
}
