//! The northbound API: networks and attachments for orchestrators (OSM, the placement service,
//! `weftctl`). The operations live here once; [`rest`] serves them as JSON over HTTP (with an
//! OpenAPI document) and [`grpc`] as `weft.northbound.v1.NetworkService`.

pub mod grpc;
pub mod rest;

use serde::{Deserialize, Serialize};

use weft_api::VirtualNetworkSpec;

use crate::model::{Model, ModelError, Network, NetworkKey, fmt_mac};
use crate::store::{ModelStore, Snapshot, StoreError};

/// How often an edit is recomputed when the network changed under it before giving up.
const EDIT_ATTEMPTS: usize = 8;

/// A network as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkView {
    pub namespace: String,
    pub name: String,
    pub spec: VirtualNetworkSpec,
    pub segment: u16,
    pub attachments: usize,
    /// Every connected switch holding members of this network has confirmed the current model.
    pub ready: bool,
}

/// Body of a create request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateNetwork {
    pub namespace: String,
    pub name: String,
    #[serde(default)]
    pub spec: VirtualNetworkSpec,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AttachmentView {
    pub container_id: String,
    pub ifname: String,
    pub network: String,
    pub node: String,
    pub ofport: u32,
    pub mac: String,
    pub ips: Vec<String>,
    pub pod_namespace: String,
    pub pod_name: String,
    pub pod_uid: String,
}

/// What went wrong, in a form both transports map to their status codes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    BadRequest(String),
    NotFound(String),
    Conflict(String),
    Forbidden(String),
    Exhausted(String),
    Unavailable(String),
}

impl ApiError {
    pub fn message(&self) -> &str {
        match self {
            ApiError::BadRequest(m)
            | ApiError::NotFound(m)
            | ApiError::Conflict(m)
            | ApiError::Forbidden(m)
            | ApiError::Exhausted(m)
            | ApiError::Unavailable(m) => m,
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Persist(m) => ApiError::Unavailable(format!("state not persisted: {m}")),
            StoreError::Model(e) => {
                let m = e.to_string();
                match e {
                    ModelError::UnknownNetwork(_) | ModelError::UnknownNode(_) => {
                        ApiError::NotFound(m)
                    }
                    ModelError::DuplicateNetwork(_)
                    | ModelError::NetworkInUse { .. }
                    | ModelError::NodeInUse { .. }
                    | ModelError::DuplicateMac(..)
                    | ModelError::DuplicateIp(..)
                    | ModelError::SpecStrandsPods { .. } => ApiError::Conflict(m),
                    ModelError::NamespaceNotAllowed { .. } => ApiError::Forbidden(m),
                    ModelError::SegmentsExhausted | ModelError::SubnetFull(_) => {
                        ApiError::Exhausted(m)
                    }
                    _ => ApiError::BadRequest(m),
                }
            }
        }
    }
}

fn view(
    snap: &Snapshot,
    confirmed: &std::collections::BTreeMap<String, u64>,
    key: &NetworkKey,
) -> Option<NetworkView> {
    let m: &Model = &snap.model;
    let n = m.networks.get(key)?;
    let members: Vec<_> = m.attachments_of(key).collect();
    let ready = members
        .iter()
        .all(|a| confirmed.get(&a.node).is_none_or(|v| *v >= snap.version));
    Some(NetworkView {
        namespace: key.namespace.clone(),
        name: key.name.clone(),
        spec: n.spec(),
        segment: n.segment,
        attachments: members.len(),
        ready,
    })
}

/// A node as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeView {
    pub name: String,
    pub underlay_ip: String,
    pub datapath_id: String,
    /// Peer node -> OpenFlow port of the tunnel to it.
    pub tunnels: std::collections::BTreeMap<String, u32>,
    pub attachments: usize,
    /// Its switch is connected and holds the current model.
    pub ready: bool,
}

/// The operations, over a model store.
#[derive(Clone)]
pub struct Api {
    pub store: std::sync::Arc<ModelStore>,
}

impl Api {
    pub fn create(&self, req: CreateNetwork) -> Result<NetworkView, ApiError> {
        let key = NetworkKey::new(req.namespace, req.name);
        self.store
            .update(|m| m.add_network(key.clone(), &req.spec).map(|_| ()))?;
        self.get(&key)
    }

    /// Edits network `key`: `edit` turns the spec it runs into the new one (a transport's patch
    /// semantics). The edit is computed outside the store's writer and applied only if the spec
    /// did not change meanwhile (else computed again), so a slow or failing edit never holds
    /// other writers up. A refused edit changes nothing.
    pub fn update(
        &self,
        key: &NetworkKey,
        edit: impl Fn(&VirtualNetworkSpec) -> Result<VirtualNetworkSpec, ApiError>,
    ) -> Result<NetworkView, ApiError> {
        for _ in 0..EDIT_ATTEMPTS {
            let base = self
                .store
                .snapshot()
                .model
                .networks
                .get(key)
                .map(Network::spec)
                .ok_or_else(|| ApiError::NotFound(format!("network {key} does not exist")))?;
            let spec = edit(&base)?;
            let (applied, _) = self.store.update(|m| {
                if m.networks.get(key).map(Network::spec).as_ref() != Some(&base) {
                    return Ok(false);
                }
                m.update_network(key, &spec).map(|_| true)
            })?;
            if applied {
                return self.get(key);
            }
        }
        Err(ApiError::Conflict(format!(
            "network {key} kept changing during the edit; try again"
        )))
    }

    /// Returns how many attachments a forced delete removed.
    pub fn delete(&self, key: &NetworkKey, force: bool) -> Result<usize, ApiError> {
        let (removed, _) = self.store.update(|m| {
            let n = m.attachments_of(key).count();
            m.remove_network(key, force).map(|_| n)
        })?;
        Ok(removed)
    }

    /// Forgets a node; returns how many attachments a forced delete removed.
    pub fn delete_node(&self, name: &str, force: bool) -> Result<usize, ApiError> {
        let (removed, _) = self
            .store
            .update(|m| m.remove_node(name, force).map(|(_, n)| n))?;
        Ok(removed)
    }

    pub fn nodes(&self) -> Vec<NodeView> {
        let snap = self.store.snapshot();
        let confirmed = self.store.confirmed();
        snap.model
            .nodes
            .values()
            .map(|n| NodeView {
                name: n.name.clone(),
                underlay_ip: n.underlay_ip.to_string(),
                datapath_id: format!("{:016x}", n.datapath_id),
                tunnels: n.tunnel_ports.clone(),
                attachments: snap.model.attachments.count_on_node(&n.name),
                ready: confirmed.get(&n.name).is_some_and(|v| *v >= snap.version),
            })
            .collect()
    }

    pub fn get(&self, key: &NetworkKey) -> Result<NetworkView, ApiError> {
        let snap = self.store.snapshot();
        view(&snap, &self.store.confirmed(), key)
            .ok_or_else(|| ApiError::NotFound(format!("network {key} does not exist")))
    }

    pub fn list(&self, namespace: Option<&str>) -> Vec<NetworkView> {
        let snap = self.store.snapshot();
        let confirmed = self.store.confirmed();
        snap.model
            .networks
            .keys()
            .filter(|k| namespace.is_none_or(|ns| k.namespace == ns))
            .filter_map(|k| view(&snap, &confirmed, k))
            .collect()
    }

    pub fn attachments(
        &self,
        network: Option<&NetworkKey>,
    ) -> Result<Vec<AttachmentView>, ApiError> {
        let snap = self.store.snapshot();
        if let Some(k) = network
            && !snap.model.networks.contains_key(k)
        {
            return Err(ApiError::NotFound(format!("network {k} does not exist")));
        }
        let of: Box<dyn Iterator<Item = &crate::model::Attachment>> = match network {
            Some(k) => Box::new(snap.model.attachments.of_network(k)),
            None => Box::new(snap.model.attachments.values()),
        };
        Ok(of
            .map(|a| AttachmentView {
                container_id: a.id.container_id.clone(),
                ifname: a.id.ifname.clone(),
                network: a.network.to_string(),
                node: a.node.clone(),
                ofport: a.ofport,
                mac: fmt_mac(&a.mac),
                ips: a.ips.iter().map(|i| i.to_string()).collect(),
                pod_namespace: a.pod.namespace.clone(),
                pod_name: a.pod.name.clone(),
                pod_uid: a.pod.uid.clone(),
            })
            .collect())
    }
}
