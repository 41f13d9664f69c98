//! The agent-facing gRPC service (`weft.agent.v1.NodeControl`): node registration, the desired
//! node configuration stream, port reports, and the attachment lifecycle whose `Attach` answers
//! only once every affected switch confirmed its flows.

use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::Stream;
use tonic::{Request, Response, Status};
use weft_proto::agent::v1 as pb;
use weft_proto::agent::v1::node_control_server::NodeControl;
use weft_proto::common::v1 as common;
use weft_proto::error_detail::{self, ErrorReason};

use crate::error_reason::{self, status};
use crate::ipam::{self, ReserveRequest};
use crate::model::{Attachment, AttachmentId, Model, ModelError, NetworkKey, Node, PodRef};
use crate::node_trust::{NodeTrust, Refusal};
use crate::southbound::SouthboundStats;
use crate::store::{ModelStore, StoreError};

/// Cluster-wide settings agents need.
#[derive(Debug, Clone)]
pub struct FabricSettings {
    pub cluster: String,
    pub vni: u32,
    pub vxlan_port: u32,
    pub underlay_mtu: u32,
    /// How long `Attach` waits for switches to confirm.
    pub confirm_timeout: Duration,
}

impl Default for FabricSettings {
    fn default() -> Self {
        FabricSettings {
            cluster: "weft".into(),
            vni: 4242,
            vxlan_port: 4789,
            underlay_mtu: 1500,
            confirm_timeout: Duration::from_secs(10),
        }
    }
}

impl FabricSettings {
    /// Pod MTU when a network sets none: VXLAN (50 bytes) plus our 802.1Q tag (4).
    pub fn default_pod_mtu(&self) -> u32 {
        self.underlay_mtu.saturating_sub(54)
    }
}

#[derive(Clone)]
pub struct NodeControlService {
    store: Arc<ModelStore>,
    settings: FabricSettings,
    trust: NodeTrust,
    stats: Arc<SouthboundStats>,
}

impl NodeControlService {
    /// Callers must prove their node with a certificate; see [`NodeControlService::trusting`].
    pub fn new(store: Arc<ModelStore>, settings: FabricSettings) -> Self {
        NodeControlService {
            store,
            settings,
            trust: NodeTrust::Certificates,
            stats: Arc::default(),
        }
    }

    pub fn trusting(mut self, trust: NodeTrust) -> Self {
        self.trust = trust;
        self
    }

    /// Counts refused calls where the metrics endpoint reads them.
    pub fn counting_in(mut self, stats: Arc<SouthboundStats>) -> Self {
        self.stats = stats;
        self
    }

    /// Refuses a call whose caller may not act for `node`, logged and counted.
    fn authorize<T>(&self, rpc: &'static str, req: &Request<T>, node: &str) -> Result<(), Status> {
        self.trust
            .agent(req, node)
            .map_err(|e| self.refused(rpc, node, e))
    }

    /// A failed update as a status; one that touched another node's attachment is a refusal
    /// too, logged and counted like the others.
    fn update_failed(&self, rpc: &'static str, node: &str, e: StoreError) -> Status {
        if matches!(
            e,
            StoreError::Model(ModelError::OtherNodesAttachment { .. })
        ) {
            tracing::warn!(rpc, %node, error = %e, "agent call refused");
            self.stats
                .agent_calls_refused
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        status(e)
    }

    fn refused(&self, rpc: &'static str, node: &str, e: Refusal) -> Status {
        tracing::warn!(rpc, %node, error = %e, "agent call refused");
        self.stats
            .agent_calls_refused
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        e.status()
    }

    fn node_config(&self, model: &Model, version: u64, node: &str) -> pb::NodeConfig {
        let peers = model
            .nodes
            .values()
            .filter(|n| n.name != node)
            .map(|n| pb::Peer {
                node_name: n.name.clone(),
                underlay_ip: n.underlay_ip.to_string(),
                vni: pair_vni(self.settings.vni, node, &n.name),
                vxlan_port: self.settings.vxlan_port,
                mtu: self.settings.underlay_mtu,
            })
            .collect();
        pb::NodeConfig { version, peers }
    }
}

/// The per-pair VNI: computed the same way by the agent's tests and the controller.
pub use weft_types::vni::pair_vni;

fn bad(msg: impl Into<String>) -> Status {
    error_reason::invalid(msg)
}

fn attachment_id(id: Option<common::AttachmentId>) -> Result<AttachmentId, Status> {
    let id = id.ok_or_else(|| bad("attachment id missing"))?;
    if id.container_id.is_empty() || id.ifname.is_empty() {
        return Err(bad("attachment id needs container_id and ifname"));
    }
    Ok(AttachmentId {
        container_id: id.container_id,
        ifname: id.ifname,
    })
}

fn pod_ref(p: Option<common::PodRef>) -> Result<PodRef, Status> {
    let p = p.ok_or_else(|| bad("pod missing"))?;
    if p.namespace.is_empty() {
        return Err(bad("pod namespace missing"));
    }
    Ok(PodRef {
        namespace: p.namespace,
        name: p.name,
        uid: p.uid,
    })
}

/// Accepts `10.1.0.5` or `10.1.0.5/24` (the prefix is the subnet's business).
fn parse_ip(s: &str) -> Result<IpAddr, Status> {
    let addr = s.split('/').next().unwrap_or(s);
    addr.parse()
        .map_err(|_| bad(format!("invalid IP address {s:?}")))
}

fn network_key(s: &str) -> Result<NetworkKey, Status> {
    NetworkKey::parse(s).map_err(|e| status(ModelError::from(e).into()))
}

type ConfigStream = Pin<Box<dyn Stream<Item = Result<pb::NodeConfig, Status>> + Send>>;

#[tonic::async_trait]
impl NodeControl for NodeControlService {
    async fn register(
        &self,
        req: Request<pb::RegisterRequest>,
    ) -> Result<Response<pb::RegisterReply>, Status> {
        self.authorize("Register", &req, &req.get_ref().node_name)?;
        let r = req.into_inner();
        self.trust
            .datapath(&r.node_name, r.datapath_id)
            .map_err(|e| self.refused("Register", &r.node_name, e))?;
        if !crate::model::valid_dns_label(&r.node_name) && !r.node_name.contains('.') {
            return Err(bad(format!("invalid node name {:?}", r.node_name)));
        }
        let underlay_ip: IpAddr = r
            .underlay_ip
            .parse()
            .map_err(|_| bad(format!("invalid underlay address {:?}", r.underlay_ip)))?;
        self.store
            .update(|m| {
                let tunnel_ports = m
                    .nodes
                    .get(&r.node_name)
                    .map(|n| n.tunnel_ports.clone())
                    .unwrap_or_default();
                m.nodes.insert(
                    r.node_name.clone(),
                    Node {
                        name: r.node_name.clone(),
                        underlay_ip,
                        datapath_id: r.datapath_id,
                        tunnel_ports,
                    },
                );
                Ok(())
            })
            .map_err(status)?;
        tracing::info!(node = %r.node_name, %underlay_ip, dpid = format_args!("{:016x}", r.datapath_id), version = %r.agent_version, "node registered");
        Ok(Response::new(pb::RegisterReply {
            cluster: self.settings.cluster.clone(),
            vni: self.settings.vni,
            vxlan_port: self.settings.vxlan_port,
            underlay_mtu: self.settings.underlay_mtu,
        }))
    }

    type WatchNodeConfigStream = ConfigStream;

    async fn watch_node_config(
        &self,
        req: Request<pb::WatchNodeConfigRequest>,
    ) -> Result<Response<ConfigStream>, Status> {
        self.authorize("WatchNodeConfig", &req, &req.get_ref().node_name)?;
        let node = req.into_inner().node_name;
        if !self.store.snapshot().model.nodes.contains_key(&node) {
            return Err(status(ModelError::UnknownNode(node).into()));
        }
        let mut rx = self.store.subscribe();
        let (tx, out) = tokio::sync::mpsc::channel(4);
        let this = self.clone();
        tokio::spawn(async move {
            let mut last: Option<Vec<pb::Peer>> = None;
            loop {
                let snap = rx.borrow_and_update().clone();
                if !snap.model.nodes.contains_key(&node) {
                    // The node was deleted: end the stream so a live agent registers again.
                    let gone = error_detail::status(
                        ErrorReason::UnknownNode,
                        format!("node {node} was removed"),
                    );
                    let _ = tx.send(Err(gone)).await;
                    return;
                }
                let cfg = this.node_config(&snap.model, snap.version, &node);
                if last.as_ref() != Some(&cfg.peers) {
                    last = Some(cfg.peers.clone());
                    if tx.send(Ok(cfg)).await.is_err() {
                        return; // the agent went away
                    }
                }
                if rx.changed().await.is_err() {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(out),
        )))
    }

    async fn report_ports(
        &self,
        req: Request<pb::PortReport>,
    ) -> Result<Response<pb::Ack>, Status> {
        self.authorize("ReportPorts", &req, &req.get_ref().node_name)?;
        let r = req.into_inner();
        let tunnels: std::collections::BTreeMap<String, u32> = r
            .ports
            .iter()
            .filter(|p| !p.peer_node.is_empty() && weft_types::ports::is_port_number_i64(p.ofport))
            .map(|p| (p.peer_node.clone(), p.ofport as u32))
            .collect();
        // Durable although agents report again on reconnect: after a restart, switches may
        // reconnect before their agents, and a model without the tunnels would remove their
        // flows.
        self.store
            .update(|m| {
                let n = m
                    .nodes
                    .get_mut(&r.node_name)
                    .ok_or_else(|| ModelError::UnknownNode(r.node_name.clone()))?;
                n.tunnel_ports = tunnels;
                Ok(())
            })
            .map_err(status)?;
        Ok(Response::new(pb::Ack {}))
    }

    async fn prepare_attachment(
        &self,
        req: Request<pb::PrepareRequest>,
    ) -> Result<Response<pb::PrepareReply>, Status> {
        self.authorize("PrepareAttachment", &req, &req.get_ref().node_name)?;
        let r = req.into_inner();
        let mac = match r.mac.as_str() {
            "" => None,
            m => Some(ipam::parse_mac(m).map_err(|e| status(e.into()))?),
        };
        let ips = r
            .ips
            .iter()
            .map(|s| parse_ip(s))
            .collect::<Result<Vec<_>, _>>()?;
        let request = ReserveRequest {
            id: attachment_id(r.id)?,
            network: network_key(&r.network)?,
            node: r.node_name,
            pod: pod_ref(r.pod)?,
            mac,
            ips,
        };
        let key = request.network.clone();
        let started = std::time::Instant::now();
        let (res, version) = self
            .store
            // A reservation lost in a crash is harmless: the agent's Attach then fails as "not
            // prepared", the ADD is rolled back and retried, so no address is used twice. Not
            // syncing it halves the disk syncs per CNI ADD.
            .update_relaxed(|m| ipam::reserve(m, request))
            .map_err(status)?;
        tracing::debug!(
            network = %key,
            version,
            commit_us = started.elapsed().as_micros() as u64,
            "attachment prepared"
        );
        let snap = self.store.snapshot();
        let net = snap
            .model
            .networks
            .get(&key)
            .ok_or_else(|| status(ModelError::UnknownNetwork(key.clone()).into()))?;
        Ok(Response::new(pb::PrepareReply {
            mac: crate::model::fmt_mac(&res.mac),
            ips: res.ips.iter().map(|n| n.to_string()).collect(),
            gateway: net.gateway.map(|g| g.to_string()).unwrap_or_default(),
            mtu: net.mtu.unwrap_or(self.settings.default_pod_mtu()),
        }))
    }

    async fn attach(
        &self,
        req: Request<pb::AttachRequest>,
    ) -> Result<Response<pb::AttachReply>, Status> {
        self.authorize("Attach", &req, &req.get_ref().node_name)?;
        let r = req.into_inner();
        let id = attachment_id(r.id)?;
        let network = network_key(&r.network)?;
        let pod = pod_ref(r.pod)?;
        if !weft_types::ports::is_port_number(r.ofport) {
            return Err(bad(format!("invalid ofport {}", r.ofport)));
        }
        let node = r.node_name.clone();
        let started = std::time::Instant::now();
        let (affected, version) = self
            .store
            .update(|m| {
                let not_prepared =
                    || ModelError::NotPrepared(format!("{}/{}", id.container_id, id.ifname));
                let res = m.reservations.get(&id).cloned().ok_or_else(not_prepared)?;
                if res.network != network {
                    return Err(not_prepared());
                }
                owned_by(m, &id, &node)?;
                let stale = m.attach(Attachment {
                    id: id.clone(),
                    network: network.clone(),
                    node: node.clone(),
                    ofport: r.ofport,
                    mac: res.mac,
                    ips: res.ips.iter().map(|n| n.addr()).collect(),
                    pod,
                })?;
                for s in &stale {
                    tracing::warn!(
                        node = %node,
                        ofport = r.ofport,
                        stale = %format_args!("{}/{}", s.container_id, s.ifname),
                        "port number reused: dropped the attachment that still held it"
                    );
                }
                let mut nodes: Vec<String> =
                    m.attachments_of(&network).map(|a| a.node.clone()).collect();
                nodes.sort();
                nodes.dedup();
                Ok(nodes)
            })
            .map_err(|e| self.update_failed("Attach", &node, e))?;
        let committed = started.elapsed();
        // Wait for the attaching node and every other node whose switch is connected.
        let connected = self.store.confirmed();
        let wait: Vec<String> = affected
            .into_iter()
            .filter(|n| *n == node || connected.contains_key(n))
            .collect();
        self.store
            .wait_confirmed(&wait, version, self.settings.confirm_timeout)
            .await
            .map_err(|e| error_detail::status(ErrorReason::FlowsNotConfirmed, e.to_string()))?;
        tracing::debug!(
            %node,
            version,
            switches = wait.len(),
            commit_us = committed.as_micros() as u64,
            total_us = started.elapsed().as_micros() as u64,
            "attachment confirmed"
        );
        Ok(Response::new(pb::AttachReply { version }))
    }

    async fn detach(&self, req: Request<pb::DetachRequest>) -> Result<Response<pb::Ack>, Status> {
        self.authorize("Detach", &req, &req.get_ref().node_name)?;
        let r = req.into_inner();
        let id = attachment_id(r.id)?;
        self.store
            .update(|m| {
                owned_by(m, &id, &r.node_name)?;
                ipam::release(m, &id);
                Ok(())
            })
            .map_err(|e| self.update_failed("Detach", &r.node_name, e))?;
        Ok(Response::new(pb::Ack {}))
    }
}

/// Refuses to change an attachment (or reservation) that another node holds: a node's agent
/// acts only for its own pods.
fn owned_by(m: &Model, id: &AttachmentId, node: &str) -> Result<(), ModelError> {
    let owner = m
        .attachments
        .get(id)
        .map(|a| a.node.as_str())
        .or_else(|| m.reservations.get(id).map(|r| r.node.as_str()));
    match owner {
        Some(owner) if owner != node => Err(ModelError::OtherNodesAttachment {
            attachment: format!("{}/{}", id.container_id, id.ifname),
            owner: owner.to_string(),
            node: node.to_string(),
        }),
        _ => Ok(()),
    }
}
