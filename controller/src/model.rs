//! The controller's model of one cluster: nodes, networks and attachments.
//!
//! Everything a switch's desired state depends on lives here, so the pipeline can be a pure
//! function of it. Validation happens on the way in: a [`Model`] only ever holds consistent data.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// Smallest and largest MTU a network may ask for (IPv6 minimum .. jumbo frames).
pub const MTU_RANGE: std::ops::RangeInclusive<u32> = 1280..=9000;
/// 802.1Q ids usable as segments (0 and 4095 are reserved).
pub const SEGMENT_RANGE: std::ops::RangeInclusive<u16> = 1..=4094;

pub use weft_types::{NetworkKey, valid_dns_label};

/// What a user asks for when creating a network.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NetworkSpec {
    /// CIDR; absent = pure layer 2 (no IPAM, no IP anti-spoofing).
    #[serde(default)]
    pub subnet: Option<String>,
    #[serde(default)]
    pub gateway: Option<String>,
    /// Addresses or CIDRs IPAM never hands out.
    #[serde(default)]
    pub exclude_ips: Vec<String>,
    #[serde(default)]
    pub mtu: Option<u32>,
    /// Namespaces whose pods may attach; empty = the network's own namespace only.
    #[serde(default)]
    pub allowed_namespaces: Vec<String>,
}

/// A validated network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Network {
    pub key: NetworkKey,
    /// 802.1Q id inside tunnels; also the network's id in metadata and cookies.
    pub segment: u16,
    pub subnet: Option<IpNet>,
    pub gateway: Option<IpAddr>,
    pub exclude: Vec<IpNet>,
    pub mtu: Option<u32>,
    pub allowed_namespaces: Vec<String>,
}

impl Network {
    /// Validates a spec. The segment is assigned by the caller (see [`Model::add_network`]).
    pub fn from_spec(
        key: NetworkKey,
        spec: &NetworkSpec,
        segment: u16,
    ) -> Result<Self, ModelError> {
        if !valid_dns_label(&key.namespace) || !valid_dns_label(&key.name) {
            return Err(ModelError::BadName(key.to_string()));
        }
        let subnet = spec
            .subnet
            .as_deref()
            .map(|s| {
                s.parse::<IpNet>()
                    .map_err(|_| ModelError::BadCidr(s.to_string()))
                    .map(|n| n.trunc())
            })
            .transpose()?;
        let gateway = spec
            .gateway
            .as_deref()
            .map(|g| {
                g.parse::<IpAddr>()
                    .map_err(|_| ModelError::BadAddress(g.to_string()))
            })
            .transpose()?;
        match (subnet, gateway) {
            (None, Some(_)) => return Err(ModelError::GatewayWithoutSubnet),
            (Some(net), Some(gw)) if !net.contains(&gw) => {
                return Err(ModelError::GatewayOutsideSubnet {
                    gateway: gw,
                    subnet: net,
                });
            }
            _ => {}
        }
        let mut exclude = Vec::new();
        for e in &spec.exclude_ips {
            let net = match e.parse::<IpNet>() {
                Ok(n) => n.trunc(),
                Err(_) => e
                    .parse::<IpAddr>()
                    .map(IpNet::from)
                    .map_err(|_| ModelError::BadCidr(e.clone()))?,
            };
            let Some(subnet) = subnet else {
                return Err(ModelError::ExcludeWithoutSubnet);
            };
            if !subnet.contains(&net) {
                return Err(ModelError::ExcludeOutsideSubnet(net));
            }
            if let Some(other) = exclude
                .iter()
                .find(|o: &&IpNet| o.contains(&net) || net.contains(*o))
            {
                return Err(ModelError::OverlappingExcludes(*other, net));
            }
            exclude.push(net);
        }
        if let Some(mtu) = spec.mtu
            && !MTU_RANGE.contains(&mtu)
        {
            return Err(ModelError::MtuOutOfRange(mtu));
        }
        for ns in &spec.allowed_namespaces {
            if ns != "*" && !valid_dns_label(ns) {
                return Err(ModelError::BadName(ns.clone()));
            }
        }
        if !SEGMENT_RANGE.contains(&segment) {
            return Err(ModelError::SegmentsExhausted);
        }
        Ok(Network {
            key,
            segment,
            subnet,
            gateway,
            exclude,
            mtu: spec.mtu,
            allowed_namespaces: spec.allowed_namespaces.clone(),
        })
    }

    /// Whether pods of `namespace` may attach (`*` allows every namespace).
    pub fn allows(&self, namespace: &str) -> bool {
        namespace == self.key.namespace
            || self
                .allowed_namespaces
                .iter()
                .any(|n| n == "*" || n == namespace)
    }
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

/// Why a change to the model was refused. Each message says what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    #[error("invalid name {0:?}: use lowercase letters, digits and '-', at most 63 characters")]
    BadName(String),
    #[error("invalid CIDR {0:?}")]
    BadCidr(String),
    #[error("invalid IP address {0:?}")]
    BadAddress(String),
    #[error("a gateway needs a subnet")]
    GatewayWithoutSubnet,
    #[error("gateway {gateway} is outside subnet {subnet}")]
    GatewayOutsideSubnet { gateway: IpAddr, subnet: IpNet },
    #[error("excluded IPs need a subnet")]
    ExcludeWithoutSubnet,
    #[error("excluded range {0} is outside the subnet")]
    ExcludeOutsideSubnet(IpNet),
    #[error("excluded ranges {0} and {1} overlap")]
    OverlappingExcludes(IpNet, IpNet),
    #[error("MTU {0} outside 1280..=9000")]
    MtuOutOfRange(u32),
    #[error("network {0} already exists")]
    DuplicateNetwork(NetworkKey),
    #[error("network {0} does not exist")]
    UnknownNetwork(NetworkKey),
    #[error("node {0} is not registered")]
    UnknownNode(String),
    #[error("network {network} still has {count} attachment(s); detach them or delete with force")]
    NetworkInUse { network: NetworkKey, count: usize },
    #[error("node {node} still has {count} attachment(s); remove its pods or delete with force")]
    NodeInUse { node: String, count: usize },
    #[error("all 4094 segments are in use")]
    SegmentsExhausted,
    #[error("namespace {namespace} may not use network {network}")]
    NamespaceNotAllowed {
        namespace: String,
        network: NetworkKey,
    },
    #[error("MAC {0} is already used on network {1}")]
    DuplicateMac(String, NetworkKey),
    #[error("MAC {0} is not a unicast address")]
    BadMac(String),
    #[error("address {0} is already used on network {1}")]
    DuplicateIp(IpAddr, NetworkKey),
    #[error("address {0} is outside the network's subnet")]
    IpOutsideSubnet(IpAddr),
    #[error("address {0} is the network's own (network, broadcast, gateway or excluded)")]
    IpReserved(IpAddr),
    #[error("no free address left in {0}")]
    SubnetFull(IpNet),
    #[error("attachment {0} has no reservation on this network: prepare it first")]
    NotPrepared(String),
}

impl From<weft_types::NetworkKeyError> for ModelError {
    fn from(e: weft_types::NetworkKeyError) -> Self {
        ModelError::BadName(e.0)
    }
}

/// Formats a MAC the usual way.
pub fn fmt_mac(m: &[u8; 6]) -> String {
    weft_types::MacAddr(*m).to_string()
}

/// The whole model of a cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Model {
    pub nodes: BTreeMap<String, Node>,
    pub networks: BTreeMap<NetworkKey, Network>,
    pub attachments: BTreeMap<AttachmentId, Attachment>,
    /// IPAM: MAC and addresses held per attachment (before and while it is attached).
    #[serde(default)]
    pub reservations: BTreeMap<AttachmentId, crate::ipam::Reservation>,
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
        spec: &NetworkSpec,
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
        let users = self.attachments_of(key).count();
        if users > 0 && !force {
            return Err(ModelError::NetworkInUse {
                network: key.clone(),
                count: users,
            });
        }
        self.attachments.retain(|_, a| &a.network != key);
        self.reservations.retain(|_, r| &r.network != key);
        self.networks
            .remove(key)
            .ok_or_else(|| ModelError::UnknownNetwork(key.clone()))
    }

    pub fn attachments_of<'a>(
        &'a self,
        key: &'a NetworkKey,
    ) -> impl Iterator<Item = &'a Attachment> + 'a {
        self.attachments.values().filter(move |a| &a.network == key)
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
        // One pass over the attachments: duplicates on the network, stale holders of the port.
        let mut stale: Vec<AttachmentId> = Vec::new();
        for other in self.attachments.values().filter(|o| o.id != a.id) {
            if other.network == a.network {
                if other.mac == a.mac {
                    return Err(ModelError::DuplicateMac(fmt_mac(&a.mac), a.network.clone()));
                }
                if let Some(ip) = a.ips.iter().find(|ip| other.ips.contains(ip)) {
                    return Err(ModelError::DuplicateIp(*ip, a.network.clone()));
                }
            }
            if other.node == a.node && other.ofport == a.ofport {
                stale.push(other.id.clone());
            }
        }
        if let Some(subnet) = net.subnet
            && let Some(ip) = a.ips.iter().find(|ip| !subnet.contains(*ip))
        {
            return Err(ModelError::IpOutsideSubnet(*ip));
        }
        for id in &stale {
            self.attachments.remove(id);
            self.reservations.remove(id);
        }
        self.attachments.insert(a.id.clone(), a);
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
        let count = self.attachments.values().filter(|a| a.node == name).count();
        if count > 0 && !force {
            return Err(ModelError::NodeInUse {
                node: name.to_string(),
                count,
            });
        }
        self.attachments.retain(|_, a| a.node != name);
        self.reservations.retain(|_, r| r.node != name);
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
mod tests {
    use super::*;

    fn spec(subnet: &str) -> NetworkSpec {
        NetworkSpec {
            subnet: Some(subnet.into()),
            ..Default::default()
        }
    }

    #[test]
    fn validation_names_the_problem() {
        let k = NetworkKey::new("ns", "red");
        let bad = |s: NetworkSpec| Network::from_spec(k.clone(), &s, 1).unwrap_err();
        assert_eq!(
            bad(spec("10.1.0.0/33")),
            ModelError::BadCidr("10.1.0.0/33".into())
        );
        assert!(matches!(
            bad(NetworkSpec {
                gateway: Some("10.2.0.1".into()),
                ..spec("10.1.0.0/24")
            }),
            ModelError::GatewayOutsideSubnet { .. }
        ));
        assert!(matches!(
            bad(NetworkSpec {
                exclude_ips: vec!["10.1.0.0/28".into(), "10.1.0.8".into()],
                ..spec("10.1.0.0/24")
            }),
            ModelError::OverlappingExcludes(..)
        ));
        assert_eq!(
            bad(NetworkSpec {
                mtu: Some(100),
                ..spec("10.1.0.0/24")
            }),
            ModelError::MtuOutOfRange(100)
        );
        let ok = Network::from_spec(
            k.clone(),
            &NetworkSpec {
                gateway: Some("10.1.0.1".into()),
                exclude_ips: vec!["10.1.0.0/28".into(), "10.1.0.100".into()],
                mtu: Some(1450),
                ..spec("10.1.0.7/24")
            },
            5,
        )
        .unwrap();
        assert_eq!(ok.subnet.unwrap().to_string(), "10.1.0.0/24");
        assert_eq!(ok.exclude.len(), 2);
    }

    #[test]
    fn duplicate_network_and_segment_reuse() {
        let mut m = Model::default();
        let a = NetworkKey::new("ns", "a");
        let b = NetworkKey::new("ns", "b");
        assert_eq!(
            m.add_network(a.clone(), &spec("10.1.0.0/24"))
                .unwrap()
                .segment,
            1
        );
        assert_eq!(
            m.add_network(b.clone(), &NetworkSpec::default())
                .unwrap()
                .segment,
            2
        );
        assert_eq!(
            m.add_network(a.clone(), &NetworkSpec::default())
                .unwrap_err(),
            ModelError::DuplicateNetwork(a.clone())
        );
        m.remove_network(&a, false).unwrap();
        let c = NetworkKey::new("ns", "c");
        assert_eq!(
            m.add_network(c, &NetworkSpec::default()).unwrap().segment,
            1
        );
    }

    #[test]
    fn attach_checks_namespace_mac_and_ip_uniqueness() {
        let mut m = Model::default();
        m.nodes.insert(
            "n1".into(),
            Node {
                name: "n1".into(),
                underlay_ip: "192.0.2.1".parse().unwrap(),
                datapath_id: 1,
                tunnel_ports: BTreeMap::new(),
            },
        );
        let key = NetworkKey::new("ns", "red");
        m.add_network(key.clone(), &spec("10.1.0.0/24")).unwrap();
        let att = |c: &str, ns: &str, mac: u8, ip: &str| Attachment {
            id: AttachmentId {
                container_id: c.into(),
                ifname: "net1".into(),
            },
            network: key.clone(),
            node: "n1".into(),
            ofport: u32::from(mac),
            mac: [2, 0, 0, 0, 0, mac],
            ips: vec![ip.parse().unwrap()],
            pod: PodRef {
                namespace: ns.into(),
                name: c.into(),
                uid: c.into(),
            },
        };
        m.attach(att("a", "ns", 1, "10.1.0.2")).unwrap();
        assert!(matches!(
            m.attach(att("b", "other", 2, "10.1.0.3")),
            Err(ModelError::NamespaceNotAllowed { .. })
        ));
        assert!(matches!(
            m.attach(att("b", "ns", 1, "10.1.0.3")),
            Err(ModelError::DuplicateMac(..))
        ));
        assert!(matches!(
            m.attach(att("b", "ns", 2, "10.1.0.2")),
            Err(ModelError::DuplicateIp(..))
        ));
        assert!(matches!(
            m.attach(att("b", "ns", 2, "10.9.0.2")),
            Err(ModelError::IpOutsideSubnet(..))
        ));
        m.attach(att("b", "ns", 2, "10.1.0.3")).unwrap();
        assert!(matches!(
            m.remove_network(&key, false),
            Err(ModelError::NetworkInUse { count: 2, .. })
        ));
        m.remove_network(&key, true).unwrap();
        assert!(m.attachments.is_empty());
    }

    #[test]
    fn a_reused_port_number_evicts_the_stale_attachment_on_that_node_only() {
        let mut m = Model::default();
        for (n, dpid) in [("n1", 1), ("n2", 2)] {
            m.nodes.insert(
                n.into(),
                Node {
                    name: n.into(),
                    underlay_ip: "192.0.2.1".parse().unwrap(),
                    datapath_id: dpid,
                    tunnel_ports: BTreeMap::new(),
                },
            );
        }
        let key = NetworkKey::new("ns", "red");
        m.add_network(key.clone(), &NetworkSpec::default()).unwrap();
        let att = |c: &str, node: &str, ofport: u32, mac: u8| Attachment {
            id: AttachmentId {
                container_id: c.into(),
                ifname: "net1".into(),
            },
            network: key.clone(),
            node: node.into(),
            ofport,
            mac: [2, 0, 0, 0, 0, mac],
            ips: vec![],
            pod: PodRef {
                namespace: "ns".into(),
                name: c.into(),
                uid: c.into(),
            },
        };
        assert!(m.attach(att("old", "n1", 40000, 1)).unwrap().is_empty());
        // Same number on another node: a different port, nothing evicted.
        assert!(m.attach(att("other", "n2", 40000, 2)).unwrap().is_empty());
        // Re-attaching the same attachment is not an eviction.
        assert!(m.attach(att("old", "n1", 40000, 1)).unwrap().is_empty());
        let evicted = m.attach(att("new", "n1", 40000, 3)).unwrap();
        assert_eq!(evicted.len(), 1);
        assert_eq!(evicted[0].container_id, "old");
        let left: Vec<&str> = m
            .attachments
            .keys()
            .map(|id| id.container_id.as_str())
            .collect();
        assert_eq!(left, ["new", "other"]);
    }
}
