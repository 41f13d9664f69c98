//! Why the model refused a change.

use std::net::IpAddr;

use ipnet::IpNet;

use super::NetworkKey;

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
    /// A node's agent may only change its own node's attachments.
    #[error("attachment {attachment} belongs to node {owner}, not {node}")]
    OtherNodesAttachment {
        attachment: String,
        owner: String,
        node: String,
    },
    /// An edit that would take an attached pod's address or its namespace's permission away;
    /// `pods` names each one (`ns/pod (ifname): why`).
    #[error("the new spec of {network} strands attached pods: {}; detach them first or keep the old values", .pods.join(", "))]
    SpecStrandsPods {
        network: NetworkKey,
        pods: Vec<String>,
    },
}
