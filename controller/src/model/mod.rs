//! The controller's model of one cluster: nodes, networks and attachments.
//!
//! Everything a switch's desired state depends on lives here, so the pipeline can be a pure
//! function of it. Validation happens on the way in: a [`Model`] only ever holds consistent data.

use std::collections::BTreeMap;
use std::net::IpAddr;

use imbl::OrdMap;
use serde::{Deserialize, Serialize};
use weft_api::VirtualNetworkSpec;

mod collections;
mod error;
mod network;

pub use collections::{Attachments, Reservations};
pub use error::ModelError;
pub use network::{MTU_RANGE, Network};

/// 802.1Q ids usable as segments (0 and 4095 are reserved).
pub const SEGMENT_RANGE: std::ops::RangeInclusive<u16> = 1..=4094;

/// `<namespace>/<name>` of a network.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct NetworkKey {
    pub namespace: String,
    pub name: String,
}

impl NetworkKey {
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        NetworkKey {
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    /// Parses `ns/name`.
    pub fn parse(s: &str) -> Result<Self, ModelError> {
        match s.split_once('/') {
            Some((ns, name)) if valid_dns_label(ns) && valid_dns_label(name) => {
                Ok(NetworkKey::new(ns, name))
            }
            _ => Err(ModelError::BadName(s.to_string())),
        }
    }
}

impl std::fmt::Display for NetworkKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// RFC 1123 label, as Kubernetes names namespaces and most objects.
pub fn valid_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// A node as its agent registered it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    pub name: String,
    pub underlay_ip: IpAddr,
    pub datapath_id: u64,
    /// OpenFlow port of the tunnel towards each peer node, as the agent reported it.
    pub tunnel_ports: BTreeMap<String, u32>,
}

/// Who a pod attachment belongs to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PodRef {
    pub namespace: String,
    pub name: String,
    pub uid: String,
}

/// One pod interface on one network: `(container id, interface)` identifies it, as CNI does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    pub id: AttachmentId,
    pub network: NetworkKey,
    pub node: String,
    pub ofport: u32,
    pub mac: [u8; 6],
    pub ips: Vec<IpAddr>,
    pub pod: PodRef,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AttachmentId {
    pub container_id: String,
    pub ifname: String,
}

/// Formats a MAC the usual way.
pub fn fmt_mac(m: &[u8; 6]) -> String {
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        m[0], m[1], m[2], m[3], m[4], m[5]
    )
}

/// The whole model of a cluster. Every map is persistent: a clone shares all of it and a write
/// copies only the path to what it changes, so the store can keep each version immutable and
/// still make a CNI ADD cost O(change), not O(attachments in the cluster).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Model {
    pub nodes: OrdMap<String, Node>,
    pub networks: OrdMap<NetworkKey, Network>,
    pub attachments: Attachments,
    /// IPAM: MAC and addresses held per attachment (before and while it is attached).
    pub reservations: Reservations,
}

impl Model {
    /// The lowest free segment.
    pub fn free_segment(&self) -> Result<u16, ModelError> {
        let used: std::collections::BTreeSet<u16> =
            self.networks.values().map(|n| n.segment).collect();
        SEGMENT_RANGE
            .clone()
            .find(|s| !used.contains(s))
            .ok_or(ModelError::SegmentsExhausted)
    }

    /// Validates and adds a network with the lowest free segment; returns it.
    pub fn add_network(
        &mut self,
        key: NetworkKey,
        spec: &VirtualNetworkSpec,
    ) -> Result<&Network, ModelError> {
        if self.networks.contains_key(&key) {
            return Err(ModelError::DuplicateNetwork(key));
        }
        let net = Network::from_spec(key.clone(), spec, self.free_segment()?)?;
        Ok(self.networks.entry(key).or_insert(net))
    }

    /// Removes a network; refused while attachments use it unless `force` (which removes them).
    pub fn remove_network(&mut self, key: &NetworkKey, force: bool) -> Result<Network, ModelError> {
        if !self.networks.contains_key(key) {
            return Err(ModelError::UnknownNetwork(key.clone()));
        }
        let users = self.attachments.count_of_network(key);
        if users > 0 && !force {
            return Err(ModelError::NetworkInUse {
                network: key.clone(),
                count: users,
            });
        }
        let ids: Vec<AttachmentId> = self
            .attachments
            .of_network(key)
            .map(|a| a.id.clone())
            .collect();
        for id in &ids {
            self.attachments.remove(id);
        }
        let ids: Vec<AttachmentId> = self
            .reservations
            .of_network(key)
            .map(|(id, _)| id.clone())
            .collect();
        for id in &ids {
            self.reservations.remove(id);
        }
        self.networks
            .remove(key)
            .ok_or_else(|| ModelError::UnknownNetwork(key.clone()))
    }

    /// The attachments of network `key`, in id order.
    pub fn attachments_of<'a>(
        &'a self,
        key: &'a NetworkKey,
    ) -> impl Iterator<Item = &'a Attachment> + 'a {
        self.attachments.of_network(key)
    }

    /// Adds or replaces an attachment after checking it against its network. Returns the
    /// attachments it evicted: one port number belongs to one attachment per node, and a node's
    /// agent gives a number to a new port only once the old port is gone, so an attachment still
    /// holding it is stale (its DEL never reached the controller) and its flows would otherwise
    /// classify the new pod's traffic too.
    pub fn attach(&mut self, a: Attachment) -> Result<Vec<AttachmentId>, ModelError> {
        let net = self
            .networks
            .get(&a.network)
            .ok_or_else(|| ModelError::UnknownNetwork(a.network.clone()))?;
        if !self.nodes.contains_key(&a.node) {
            return Err(ModelError::UnknownNode(a.node.clone()));
        }
        if !net.allows(&a.pod.namespace) {
            return Err(ModelError::NamespaceNotAllowed {
                namespace: a.pod.namespace.clone(),
                network: a.network.clone(),
            });
        }
        if a.mac[0] & 1 == 1 || a.mac == [0; 6] {
            return Err(ModelError::BadMac(fmt_mac(&a.mac)));
        }
        // Duplicates among the network's members, stale holders among the node's ports.
        for other in self
            .attachments
            .of_network(&a.network)
            .filter(|o| o.id != a.id)
        {
            if other.mac == a.mac {
                return Err(ModelError::DuplicateMac(fmt_mac(&a.mac), a.network.clone()));
            }
            if let Some(ip) = a.ips.iter().find(|ip| other.ips.contains(ip)) {
                return Err(ModelError::DuplicateIp(*ip, a.network.clone()));
            }
        }
        if let Some(subnet) = net.subnet
            && let Some(ip) = a.ips.iter().find(|ip| !subnet.contains(*ip))
        {
            return Err(ModelError::IpOutsideSubnet(*ip));
        }
        let stale: Vec<AttachmentId> = self
            .attachments
            .on_node(&a.node)
            .filter(|o| o.id != a.id && o.ofport == a.ofport)
            .map(|o| o.id.clone())
            .collect();
        for id in &stale {
            self.attachments.remove(id);
            self.reservations.remove(id);
        }
        self.attachments.insert(a);
        Ok(stale)
    }

    /// Forgets a node for good (as deleting a Kubernetes Node does): its record and, only with
    /// `force`, its attachments and their reservations. Returns the node and how many
    /// attachments went with it. The other nodes' tunnel ports to it stay as their agents
    /// reported them (the agents remove those tunnels, seeing the node gone from their
    /// configuration, and report again); with no member left there, no flow uses them, and a
    /// node that registers again finds them in place.
    pub fn remove_node(&mut self, name: &str, force: bool) -> Result<(Node, usize), ModelError> {
        if !self.nodes.contains_key(name) {
            return Err(ModelError::UnknownNode(name.to_string()));
        }
        let count = self.attachments.count_on_node(name);
        if count > 0 && !force {
            return Err(ModelError::NodeInUse {
                node: name.to_string(),
                count,
            });
        }
        let ids: Vec<AttachmentId> = self
            .attachments
            .on_node(name)
            .map(|a| a.id.clone())
            .collect();
        for id in &ids {
            self.attachments.remove(id);
        }
        // Reservations not yet attached are not indexed by node: a rare operation may scan them.
        let ids: Vec<AttachmentId> = self
            .reservations
            .iter()
            .filter(|(_, r)| r.node == name)
            .map(|(id, _)| id.clone())
            .collect();
        for id in &ids {
            self.reservations.remove(id);
        }
        let node = self
            .nodes
            .remove(name)
            .ok_or_else(|| ModelError::UnknownNode(name.to_string()))?;
        Ok((node, count))
    }

    pub fn detach(&mut self, id: &AttachmentId) -> Option<Attachment> {
        self.attachments.remove(id)
    }
}

#[cfg(test)]
mod tests;
