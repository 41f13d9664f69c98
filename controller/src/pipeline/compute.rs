//! The desired flows and groups of each switch as a pure function of the [`Model`]: which
//! typed flows of the declared tables every attachment and network contributes.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use foldhash::fast::RandomState as FastHash;

use super::flows::{ETH_ARP, ETH_IPV4, ETH_IPV6};
use super::{
    FloodGroup, FlowMap, Group, Key, PIPELINE, Pipeline, SwitchState, Value, flood_group,
    local_flood_group,
};
use crate::model::{Attachment, Model, Network, NetworkKey};
use weft_api::PortSecurity;

/// A member of a network: the attachment and the dense number of its node, so the hot loops
/// compare integers instead of node names.
#[derive(Clone, Copy)]
struct Member<'m> {
    node: usize,
    att: &'m Attachment,
}

impl<'m> Member<'m> {
    /// Attachments of unregistered nodes still count as members (usize::MAX: no switch, no
    /// tunnel).
    fn of(node_ids: &HashMap<&str, usize, FastHash>, att: &'m Attachment) -> Self {
        let node = node_ids
            .get(att.node.as_str())
            .copied()
            .unwrap_or(usize::MAX);
        Member { node, att }
    }
}

/// Node name -> dense number (its rank in the model's node order).
fn node_numbers(model: &Model) -> HashMap<&str, usize, FastHash> {
    model
        .nodes
        .keys()
        .enumerate()
        .map(|(i, n)| (n.as_str(), i))
        .collect()
}

/// Attachments grouped the ways the pipeline needs, built once per computation.
pub struct Index<'m> {
    model: &'m Model,
    /// Node name -> dense number (its rank in the model's node order).
    node_ids: HashMap<&'m str, usize, FastHash>,
    by_network: HashMap<&'m NetworkKey, Vec<Member<'m>>, FastHash>,
    by_node: HashMap<&'m str, Vec<&'m Attachment>, FastHash>,
}

impl<'m> Index<'m> {
    pub fn new(model: &'m Model) -> Self {
        let node_ids = node_numbers(model);
        let mut by_network: HashMap<&NetworkKey, Vec<Member>, FastHash> = HashMap::default();
        let mut by_node: HashMap<&str, Vec<&Attachment>, FastHash> = HashMap::default();
        for a in model.attachments.values() {
            if model.networks.contains_key(&a.network) {
                by_network
                    .entry(&a.network)
                    .or_default()
                    .push(Member::of(&node_ids, a));
                by_node.entry(a.node.as_str()).or_default().push(a);
            }
        }
        Index {
            model,
            node_ids,
            by_network,
            by_node,
        }
    }

    /// An index holding only what `node`'s switch needs (its attachments and the members of its
    /// networks), read from the model's own indexes: O(those attachments), not O(all).
    /// [`Index::switch_state`] and [`Index::networks_on`] give the same answers for `node` as on
    /// a full index; other nodes' answers are incomplete.
    pub fn for_node(model: &'m Model, node: &str) -> Self {
        let node_ids = node_numbers(model);
        let mut by_node: HashMap<&str, Vec<&Attachment>, FastHash> = HashMap::default();
        let mut local: HashMap<&NetworkKey, Vec<Member>, FastHash> = HashMap::default();
        for a in model.attachments.on_node(node) {
            if model.networks.contains_key(&a.network) {
                by_node.entry(a.node.as_str()).or_default().push(a);
                local.entry(&a.network).or_default();
            }
        }
        for (key, members) in local.iter_mut() {
            members.extend(
                model
                    .attachments
                    .of_network(key)
                    .map(|a| Member::of(&node_ids, a)),
            );
        }
        Index {
            model,
            node_ids,
            by_network: local,
            by_node,
        }
    }

    /// `node`'s tunnel port to each peer, indexed by the peer's dense number.
    fn tunnels_of(&self, node: &str) -> Vec<Option<u32>> {
        let mut t = vec![None; self.node_ids.len()];
        if let Some(n) = self.model.nodes.get(node) {
            for (peer, port) in &n.tunnel_ports {
                if let Some(i) = self.node_ids.get(peer.as_str()) {
                    t[*i] = Some(*port);
                }
            }
        }
        t
    }

    /// The desired state of `node`'s switch.
    pub fn switch_state(&self, node: &str) -> SwitchState {
        self.switch_state_in(node, &PIPELINE)
    }

    /// The desired state of `node`'s switch in pipeline `p`: the table-miss entry of each of its
    /// tables, plus the flows of Weft's own tables.
    pub fn switch_state_in(&self, node: &str, p: &Pipeline) -> SwitchState {
        let local = self.by_node.get(node).map(Vec::as_slice).unwrap_or(&[]);
        let mut networks: Vec<&NetworkKey> = local.iter().map(|a| &a.network).collect();
        networks.sort_unstable();
        networks.dedup();
        let members = |key: &NetworkKey| self.by_network.get(key).map_or(0, Vec::len);
        // Sized up front: growing a multi-million-entry map rehashes it several times.
        let estimate = p.tables().len() + 3
            + local.len() * 5
            // Per network: a forward flow per member, up to one tunnel classifier per member's
            // node, and the two flood flows.
            + networks.iter().map(|k| 2 * members(k) + 2).sum::<usize>();
        let mut st = SwitchState {
            flows: FlowMap::with_capacity_and_hasher(estimate, FastHash::default()),
            groups: BTreeMap::new(),
        };
        for table in 0..p.tables().len() as u8 {
            st.flows.insert(Key::Miss { table }, p.miss(table));
        }
        // Shared by every port with address checks; ports without them admit all at a higher
        // priority, so these never see their frames.
        for eth_type in [ETH_ARP, ETH_IPV4, ETH_IPV6] {
            st.flows.insert(Key::Guard { eth_type }, Value::Drop);
        }
        for a in local {
            if let Some(net) = self.model.networks.get(&a.network) {
                port_flows(&mut st, net, a);
            }
        }
        let Some(me) = self.node_ids.get(node).copied() else {
            return st;
        };
        let tunnels = self.tunnels_of(node);
        for key in networks {
            let Some(net) = self.model.networks.get(key) else {
                continue;
            };
            let members = self.by_network.get(key).map(Vec::as_slice).unwrap_or(&[]);
            network_flows(&mut st, net, me, members, &tunnels);
        }
        st
    }

    /// Desired state of every registered node's switch.
    pub fn all_switches(&self) -> BTreeMap<String, SwitchState> {
        self.model
            .nodes
            .keys()
            .map(|n| (n.clone(), self.switch_state(n)))
            .collect()
    }

    /// Networks with a member on `node`.
    pub fn networks_on(&self, node: &str) -> std::collections::BTreeSet<NetworkKey> {
        self.by_node
            .get(node)
            .map(|v| v.iter().map(|a| a.network.clone()).collect())
            .unwrap_or_default()
    }
}

/// Convenience: the desired state of one switch.
pub fn desired_state(model: &Model, node: &str) -> SwitchState {
    Index::new(model).switch_state(node)
}

/// Tables 0 and 1 for one local attachment.
fn port_flows(st: &mut SwitchState, net: &Network, a: &Attachment) {
    let (segment, port) = (net.segment, a.ofport);
    let source = match net.port_security {
        PortSecurity::Off => Key::PodPort { port },
        PortSecurity::Strict | PortSecurity::MacOnly => Key::PodSource { port, mac: a.mac },
    };
    st.flows.insert(source, Value::Classify { segment });
    let mut admit = |k: Key| st.flows.insert(k, Value::Admit { segment });
    if net.port_security != PortSecurity::Strict || net.subnet.is_none() || a.ips.is_empty() {
        // Nothing (more) to check: the MAC check in classify, if any, is all there is.
        admit(Key::PortAny { port });
        return;
    }
    // Below the guards: every EtherType that has no addresses to check.
    admit(Key::PortOtherTypes { port });
    let sha = a.mac;
    let mut v4 = false;
    let mut v6 = false;
    for ip in &a.ips {
        match *ip {
            IpAddr::V4(ip) => {
                v4 = true;
                admit(Key::PortArp { port, spa: ip, sha });
                admit(Key::PortIpv4 { port, ip });
            }
            IpAddr::V6(ip) => {
                v6 = true;
                admit(Key::PortIpv6 { port, ip });
            }
        }
    }
    if v4 {
        // ARP probes (RFC 5227) carry sender IP 0.0.0.0.
        let spa = std::net::Ipv4Addr::UNSPECIFIED;
        admit(Key::PortArp { port, spa, sha });
    }
    if v6 {
        // Link-local addresses and duplicate address detection (source ::) are needed for
        // neighbour discovery to work at all.
        admit(Key::PortIpv6LinkLocal { port });
        let ip = std::net::Ipv6Addr::UNSPECIFIED;
        admit(Key::PortIpv6 { port, ip });
    }
}

/// Table 0 tunnel classification, table 2 forwarding and the flood groups of one network on
/// node number `me`, which has at least one member of it; `tunnels` maps peer numbers to ports.
fn network_flows(
    st: &mut SwitchState,
    net: &Network,
    me: usize,
    members: &[Member<'_>],
    tunnels: &[Option<u32>],
) {
    let segment = net.segment;
    let mut local_ports = Vec::new();
    // Tunnel ports of the nodes holding remote members (one port per peer node).
    let mut remote_nodes: Vec<u32> = Vec::new();
    for &Member { node, att: m } in members {
        let mac = m.mac;
        if node == me {
            local_ports.push(m.ofport);
            // Local destinations are reachable from pods and from tunnels alike.
            let out = Value::Output {
                segment,
                port: m.ofport,
            };
            st.flows.insert(Key::ToLocal { segment, mac }, out);
        } else if let Some(tunnel) = tunnels.get(node).copied().flatten() {
            // Deduplicated after the loop: a linear search here made this quadratic.
            remote_nodes.push(tunnel);
            // Remote destinations only for frames from local pods: a tunnel frame never
            // goes back into a tunnel.
            let out = Value::Tag { segment, tunnel };
            st.flows.insert(Key::ToRemote { segment, mac }, out);
        }
    }
    local_ports.sort_unstable();
    local_ports.dedup();
    remote_nodes.sort_unstable();
    remote_nodes.dedup();

    for &port in &remote_nodes {
        let k = Key::TunnelSource { port, segment };
        st.flows.insert(k, Value::Untag { segment });
    }

    for from_tunnel in [false, true] {
        let group = if from_tunnel {
            local_flood_group(segment)
        } else {
            flood_group(segment)
        };
        let k = Key::Flood {
            segment,
            from_tunnel,
        };
        st.flows.insert(k, Value::Group { segment, group });
    }

    let all = FloodGroup::new(segment, local_ports.clone(), remote_nodes);
    st.groups.insert(flood_group(segment), Group::Flood(all));
    let local = FloodGroup::new(segment, local_ports, Vec::new());
    st.groups
        .insert(local_flood_group(segment), Group::Flood(local));
}
