//! The flow pipeline, written down in one place: what every table of a node's `weft0` bridge
//! does, and the desired flows and groups of each switch as a pure function of the [`Model`].
//!
//! | table | name | does |
//! |---|---|---|
//! | 0 | classify | pod port + its own MAC -> metadata = network, next. Tunnel port + the network's VLAN tag -> pop the tag, metadata = network + "from tunnel", straight to forward. Anything else: drop. |
//! | 1 | port security | per pod port: ARP whose sender IP and MAC are the pod's own, IPv4/IPv6 from the pod's own addresses (plus link-local and DAD for IPv6, ARP probes for IPv4) -> next; anything else: drop. Networks without IPAM check only the MAC (in table 0). |
//! | 2 | forward | (network, destination MAC) -> the local port, or tag + the tunnel to the owning node (only for frames not from a tunnel: split horizon). Broadcast/multicast -> the network's flood group (from a tunnel: the local-only flood group). Unknown unicast: drop. |
//!
//! Metadata bits 0..12 carry the network's segment, bit 16 "came from a tunnel". Cookies carry
//! Weft's mark in the top 16 bits and the segment in the low 16, so one network's flows can be
//! read or removed alone; shared flows (the table-miss drops) use segment 0.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use foldhash::fast::RandomState as FastHash;

use weft_openflow::wire::{
    Action, Bucket, GroupType, Instruction, Match, OFPVID_PRESENT, OxmField,
};

use crate::model::{Attachment, Model, Network, NetworkKey};

/// Table numbers, named.
pub mod table {
    pub const CLASSIFY: u8 = 0;
    pub const PORT_SECURITY: u8 = 1;
    pub const FORWARD: u8 = 2;
    /// Every table Weft writes, in pipeline order.
    pub const ALL: [u8; 3] = [CLASSIFY, PORT_SECURITY, FORWARD];
}

/// Priorities, named so the layering reads in one place.
pub mod priority {
    pub const MISS: u16 = 0;
    pub const FLOOD: u16 = 50;
    pub const ENDPOINT: u16 = 100;
}

/// Metadata bits holding the network (its segment).
pub const META_NET_MASK: u64 = 0xfff;
/// Metadata bit: the frame entered through a tunnel.
pub const META_FROM_TUNNEL: u64 = 1 << 16;
const META_MASK: u64 = META_NET_MASK | META_FROM_TUNNEL;

/// Top 16 bits of every cookie Weft writes ("WF").
pub const COOKIE_MARK: u64 = 0x5746 << 48;
pub const COOKIE_MARK_MASK: u64 = 0xffff << 48;
/// Cookie bits holding the segment.
pub const COOKIE_SEGMENT_MASK: u64 = 0xffff;

/// The cookie of a network's flows (segment 0 = shared flows).
pub fn cookie(segment: u16) -> u64 {
    COOKIE_MARK | segment as u64
}

/// Flood group of a network: every member, local or behind a tunnel.
pub fn flood_group(segment: u16) -> u32 {
    (segment as u32) << 1
}

/// Flood group for frames that came from a tunnel: local members only (split horizon).
pub fn local_flood_group(segment: u16) -> u32 {
    ((segment as u32) << 1) | 1
}

/// What identifies a flow entry in a table (OpenFlow's "strict" identity).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FlowKey {
    pub table: u8,
    pub priority: u16,
    /// Fields in [`canonical_match`] order.
    pub r#match: Match,
}

/// What a flow entry does.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FlowValue {
    pub cookie: u64,
    /// Instructions in [`canonical_instructions`] order.
    pub instructions: Vec<Instruction>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GroupValue {
    pub group_type: GroupType,
    pub buckets: Vec<Bucket>,
}

/// Flow table of one switch. foldhash rather than SipHash: keys are ours (no flooding risk) and
/// hashing dominated the full computation.
pub type FlowMap = HashMap<FlowKey, FlowValue, FastHash>;

/// The flows and groups of one switch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SwitchState {
    pub flows: FlowMap,
    pub groups: BTreeMap<u32, GroupValue>,
}

impl SwitchState {
    fn flow(
        &mut self,
        table: u8,
        priority: u16,
        fields: Vec<OxmField>,
        cookie: u64,
        ins: Vec<Instruction>,
    ) {
        // The pipeline writes fields and instructions in canonical order already; sorting them
        // anyway was a measurable part of the full computation. Debug builds (the tests) check.
        debug_assert!(fields.is_sorted_by_key(field_rank), "{fields:?}");
        debug_assert!(ins.is_sorted_by_key(instruction_rank), "{ins:?}");
        let key = FlowKey {
            table,
            priority,
            r#match: Match::new(fields),
        };
        self.flows.insert(
            key,
            FlowValue {
                cookie,
                instructions: ins,
            },
        );
    }

    /// Number of flows carrying the given network's cookie.
    pub fn flows_of(&self, segment: u16) -> usize {
        self.flows
            .values()
            .filter(|v| v.cookie == cookie(segment))
            .count()
    }
}

/// Rank of an OXM field in the order Open vSwitch reports matches (by OXM field number).
fn field_rank(f: &OxmField) -> u32 {
    use OxmField as F;
    match f {
        F::InPort(_) => 0,
        F::Metadata { .. } => 2,
        F::EthDst { .. } => 3,
        F::EthSrc { .. } => 4,
        F::EthType(_) => 5,
        F::VlanVid { .. } => 6,
        F::VlanPcp(_) => 7,
        F::IpProto(_) => 10,
        F::Ipv4Src { .. } => 11,
        F::Ipv4Dst { .. } => 12,
        F::TcpSrc(_) => 13,
        F::TcpDst(_) => 14,
        F::UdpSrc(_) => 15,
        F::UdpDst(_) => 16,
        F::Icmpv4Type(_) => 19,
        F::Icmpv4Code(_) => 20,
        F::ArpOp(_) => 21,
        F::ArpSpa { .. } => 22,
        F::ArpTpa { .. } => 23,
        F::ArpSha { .. } => 24,
        F::ArpTha { .. } => 25,
        F::Ipv6Src { .. } => 26,
        F::Ipv6Dst { .. } => 27,
        F::Icmpv6Type(_) => 29,
        F::Icmpv6Code(_) => 30,
        F::Ipv6NdTarget(_) => 31,
        F::TunnelId { .. } => 38,
        F::Opaque(o) => ((o.class as u32) << 8) | o.field as u32,
    }
}

/// Sorts match fields into one order, so a match read back from a switch compares equal to the
/// one we wrote whatever order either side used.
pub fn canonical_match(mut m: Match) -> Match {
    m.fields.sort_by_key(field_rank);
    m
}

fn instruction_rank(i: &Instruction) -> u8 {
    match i {
        Instruction::Meter(_) => 0,
        Instruction::ApplyActions(_) => 1,
        Instruction::ClearActions => 2,
        Instruction::WriteActions(_) => 3,
        Instruction::WriteMetadata { .. } => 4,
        Instruction::GotoTable(_) => 5,
        Instruction::Experimenter { .. } | Instruction::Unknown { .. } => 6,
    }
}

/// Sorts instructions into OpenFlow's execution order (which is how Open vSwitch reports them).
pub fn canonical_instructions(mut ins: Vec<Instruction>) -> Vec<Instruction> {
    ins.sort_by_key(instruction_rank);
    ins
}

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
    /// networks): two passes over the attachments instead of grouping them all, which is what a
    /// switch task recomputing alone needs (at 100,000 attachments, a few ms instead of tens).
    /// [`Index::switch_state`] and [`Index::networks_on`] give the same answers for `node` as on
    /// a full index; other nodes' answers are incomplete.
    pub fn for_node(model: &'m Model, node: &str) -> Self {
        let node_ids = node_numbers(model);
        let mut by_node: HashMap<&str, Vec<&Attachment>, FastHash> = HashMap::default();
        let mut local: HashMap<&NetworkKey, Vec<Member>, FastHash> = HashMap::default();
        for a in model.attachments.values() {
            if a.node == node && model.networks.contains_key(&a.network) {
                by_node.entry(a.node.as_str()).or_default().push(a);
                local.entry(&a.network).or_default();
            }
        }
        for a in model.attachments.values() {
            if let Some(members) = local.get_mut(&a.network) {
                members.push(Member::of(&node_ids, a));
            }
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
        let local = self.by_node.get(node).map(Vec::as_slice).unwrap_or(&[]);
        let mut networks: Vec<&NetworkKey> = local.iter().map(|a| &a.network).collect();
        networks.sort_unstable();
        networks.dedup();
        let members = |key: &NetworkKey| self.by_network.get(key).map_or(0, Vec::len);
        // Sized up front: growing a multi-million-entry map rehashes it several times.
        let estimate = table::ALL.len()
            + local.len() * 5
            // Per network: a forward flow per member, up to one tunnel classifier per member's
            // node, and the two flood flows.
            + networks.iter().map(|k| 2 * members(k) + 2).sum::<usize>();
        let mut st = SwitchState {
            flows: FlowMap::with_capacity_and_hasher(estimate, FastHash::default()),
            groups: BTreeMap::new(),
        };
        for t in table::ALL {
            st.flow(t, priority::MISS, vec![], cookie(0), vec![]);
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

    /// The flows and groups one network contributes to `node`'s switch (empty when the node has
    /// no member of it). A switch's state is the table-miss flows plus these, per network, so a
    /// change to one network can be recomputed alone.
    pub fn network_state(&self, node: &str, key: &NetworkKey) -> SwitchState {
        let mut st = SwitchState::default();
        let (Some(net), Some(me)) = (self.model.networks.get(key), self.node_ids.get(node)) else {
            return st;
        };
        let members = self.by_network.get(key).map(Vec::as_slice).unwrap_or(&[]);
        let mut local = false;
        for m in members.iter().filter(|m| m.node == *me) {
            local = true;
            port_flows(&mut st, net, m.att);
        }
        if local {
            // Only the peers holding members are looked up: a full tunnel table per call would
            // cost more than the network's flows.
            let ports = self.model.nodes.get(node).map(|n| &n.tunnel_ports);
            let mut tunnels = vec![None; self.node_ids.len()];
            for m in members.iter().filter(|m| m.node != *me) {
                if let Some(t) = tunnels.get_mut(m.node) {
                    *t = ports.and_then(|p| p.get(m.att.node.as_str())).copied();
                }
            }
            network_flows(&mut st, net, *me, members, &tunnels);
        }
        st
    }

    /// Networks with a member on `node`.
    pub fn networks_on(&self, node: &str) -> std::collections::BTreeSet<NetworkKey> {
        self.by_node
            .get(node)
            .map(|v| v.iter().map(|a| a.network.clone()).collect())
            .unwrap_or_default()
    }

    /// Nodes with at least one member of `key`.
    pub fn nodes_of(&self, key: &NetworkKey) -> Vec<&'m str> {
        let mut v: Vec<&str> = self
            .by_network
            .get(key)
            .map(|m| m.iter().map(|m| m.att.node.as_str()).collect())
            .unwrap_or_default();
        v.sort_unstable();
        v.dedup();
        v
    }
}

/// The per-switch changes one network's change causes: only nodes that had or have members of it
/// are touched, and only that network's flows are computed.
pub fn network_delta(
    old: &Index<'_>,
    new: &Index<'_>,
    key: &NetworkKey,
) -> BTreeMap<String, crate::diff::Delta> {
    let mut nodes = old.nodes_of(key);
    nodes.extend(new.nodes_of(key));
    nodes.sort_unstable();
    nodes.dedup();
    nodes
        .into_iter()
        .map(|n| {
            let d = crate::diff::diff(&old.network_state(n, key), &new.network_state(n, key));
            (n.to_string(), d)
        })
        .filter(|(_, d)| !d.is_empty())
        .collect()
}

/// Convenience: the desired state of one switch.
pub fn desired_state(model: &Model, node: &str) -> SwitchState {
    Index::new(model).switch_state(node)
}

fn meta(segment: u16, from_tunnel: bool) -> u64 {
    segment as u64 | if from_tunnel { META_FROM_TUNNEL } else { 0 }
}

fn tag_actions(segment: u16, tunnel_port: u32) -> Vec<Action> {
    vec![
        Action::PushVlan(0x8100),
        Action::SetField(OxmField::VlanVid {
            value: OFPVID_PRESENT | segment,
            mask: None,
        }),
        Action::output(tunnel_port),
    ]
}

/// Tables 0 and 1 for one local attachment.
fn port_flows(st: &mut SwitchState, net: &Network, a: &Attachment) {
    let c = cookie(net.segment);
    st.flow(
        table::CLASSIFY,
        priority::ENDPOINT,
        vec![
            OxmField::InPort(a.ofport),
            OxmField::EthSrc {
                value: a.mac,
                mask: None,
            },
        ],
        c,
        vec![
            Instruction::WriteMetadata {
                metadata: meta(net.segment, false),
                mask: META_MASK,
            },
            Instruction::GotoTable(table::PORT_SECURITY),
        ],
    );
    let next = || vec![Instruction::GotoTable(table::FORWARD)];
    if net.subnet.is_none() || a.ips.is_empty() {
        // Pure layer 2: the MAC check in classify is all there is to check.
        st.flow(
            table::PORT_SECURITY,
            priority::ENDPOINT,
            vec![OxmField::InPort(a.ofport)],
            c,
            next(),
        );
        return;
    }
    let port = OxmField::InPort(a.ofport);
    let sha = OxmField::ArpSha {
        value: a.mac,
        mask: None,
    };
    let mut v4 = false;
    let mut v6 = false;
    for ip in &a.ips {
        match ip {
            IpAddr::V4(ip) => {
                v4 = true;
                let spa = OxmField::ArpSpa {
                    value: *ip,
                    mask: None,
                };
                let arp = vec![port.clone(), OxmField::EthType(0x0806), spa, sha.clone()];
                st.flow(table::PORT_SECURITY, priority::ENDPOINT, arp, c, next());
                let src = OxmField::Ipv4Src {
                    value: *ip,
                    mask: None,
                };
                let ipv4 = vec![port.clone(), OxmField::EthType(0x0800), src];
                st.flow(table::PORT_SECURITY, priority::ENDPOINT, ipv4, c, next());
            }
            IpAddr::V6(ip) => {
                v6 = true;
                let src = OxmField::Ipv6Src {
                    value: *ip,
                    mask: None,
                };
                let ipv6 = vec![port.clone(), OxmField::EthType(0x86dd), src];
                st.flow(table::PORT_SECURITY, priority::ENDPOINT, ipv6, c, next());
            }
        }
    }
    if v4 {
        // ARP probes (RFC 5227) carry sender IP 0.0.0.0.
        let probe = vec![
            port.clone(),
            OxmField::EthType(0x0806),
            OxmField::ArpSpa {
                value: std::net::Ipv4Addr::UNSPECIFIED,
                mask: None,
            },
            sha,
        ];
        st.flow(table::PORT_SECURITY, priority::ENDPOINT, probe, c, next());
    }
    if v6 {
        // Link-local addresses and duplicate address detection (source ::) are needed for
        // neighbour discovery to work at all.
        let ll = OxmField::Ipv6Src {
            value: std::net::Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0),
            mask: Some(std::net::Ipv6Addr::new(0xffc0, 0, 0, 0, 0, 0, 0, 0)),
        };
        let unspec = OxmField::Ipv6Src {
            value: std::net::Ipv6Addr::UNSPECIFIED,
            mask: None,
        };
        for src in [ll, unspec] {
            let f = vec![port.clone(), OxmField::EthType(0x86dd), src];
            st.flow(table::PORT_SECURITY, priority::ENDPOINT, f, c, next());
        }
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
    let s = net.segment;
    let c = cookie(s);
    let mut local_ports = Vec::new();
    // Tunnel ports of the nodes holding remote members (one port per peer node).
    let mut remote_nodes: Vec<u32> = Vec::new();
    for &Member { node, att: m } in members {
        let dst = OxmField::EthDst {
            value: m.mac,
            mask: None,
        };
        if node == me {
            local_ports.push(m.ofport);
            // Local destinations are reachable from pods and from tunnels alike.
            let f = vec![
                OxmField::Metadata {
                    value: meta(s, false),
                    mask: Some(META_NET_MASK),
                },
                dst,
            ];
            let out = vec![Instruction::ApplyActions(vec![Action::output(m.ofport)])];
            st.flow(table::FORWARD, priority::ENDPOINT, f, c, out);
        } else if let Some(t) = tunnels.get(node).copied().flatten() {
            // Deduplicated after the loop: a linear search here made this quadratic.
            remote_nodes.push(t);
            // Remote destinations only for frames from local pods: a tunnel frame never
            // goes back into a tunnel.
            let f = vec![
                OxmField::Metadata {
                    value: meta(s, false),
                    mask: Some(META_MASK),
                },
                dst,
            ];
            let out = vec![Instruction::ApplyActions(tag_actions(s, t))];
            st.flow(table::FORWARD, priority::ENDPOINT, f, c, out);
        }
    }
    local_ports.sort_unstable();
    local_ports.dedup();
    remote_nodes.sort_unstable();
    remote_nodes.dedup();

    for t in &remote_nodes {
        let f = vec![
            OxmField::InPort(*t),
            OxmField::VlanVid {
                value: OFPVID_PRESENT | s,
                mask: None,
            },
        ];
        let ins = vec![
            Instruction::ApplyActions(vec![Action::PopVlan]),
            Instruction::WriteMetadata {
                metadata: meta(s, true),
                mask: META_MASK,
            },
            Instruction::GotoTable(table::FORWARD),
        ];
        st.flow(table::CLASSIFY, priority::ENDPOINT, f, c, ins);
    }

    let multicast = OxmField::EthDst {
        value: [1, 0, 0, 0, 0, 0],
        mask: Some([1, 0, 0, 0, 0, 0]),
    };
    for from_tunnel in [false, true] {
        let group = if from_tunnel {
            local_flood_group(s)
        } else {
            flood_group(s)
        };
        let f = vec![
            OxmField::Metadata {
                value: meta(s, from_tunnel),
                mask: Some(META_MASK),
            },
            multicast.clone(),
        ];
        let ins = vec![Instruction::ApplyActions(vec![Action::Group(group)])];
        st.flow(table::FORWARD, priority::FLOOD, f, c, ins);
    }

    let local_buckets: Vec<Bucket> = local_ports
        .iter()
        .map(|p| Bucket::new(vec![Action::output(*p)]))
        .collect();
    let mut all_buckets = local_buckets.clone();
    all_buckets.extend(remote_nodes.iter().map(|t| Bucket::new(tag_actions(s, *t))));
    st.groups.insert(
        flood_group(s),
        GroupValue {
            group_type: GroupType::All,
            buckets: all_buckets,
        },
    );
    st.groups.insert(
        local_flood_group(s),
        GroupValue {
            group_type: GroupType::All,
            buckets: local_buckets,
        },
    );
}
