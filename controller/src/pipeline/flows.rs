//! Typed flows: the few shapes the pipeline writes, each as a small plain value.
//!
//! A controller holds every switch's desired state (millions of flows at scale); the generic
//! OpenFlow form costs 3–4 heap allocations and ~400 bytes per flow, these forms none and 40.
//! The generic form ([`FlowKey`], [`FlowValue`]) is built only at the edges: flow-mods, the
//! `ovs-ofctl` text, the simulator; read-back flows are parsed back into the typed form.
//!
//! Parsing is exact: a wire flow becomes a typed one only if that typed flow writes back to the
//! very same wire form (checked by re-encoding), anything else stays [`Key::Other`] /
//! [`Value::Other`]. So typed equality is wire equality, and a flow changed on the switch is
//! never mistaken for ours. The key is parsed from (table, priority, match) alone, never from
//! the instructions: one OpenFlow identity always gives one typed key, so a flow with our match
//! and foreign actions is a changed value of our key (the diff overwrites it), not a foreign key
//! (whose strict delete would also remove the flow we add over it).

use std::net::{Ipv4Addr, Ipv6Addr};

use weft_openflow::wire::{Action, Instruction, Match, OFPVID_PRESENT, OxmField};

use super::wire::{FlowKey, FlowValue, canonical_instructions, canonical_match};
use super::{
    COOKIE_SEGMENT_MASK, META_FROM_TUNNEL, META_MASK, META_NET_MASK, PIPELINE, Pipeline, cookie,
    priority,
};

/// Ethertypes the port-security table checks the addresses of.
pub(crate) const ETH_ARP: u16 = 0x0806;
pub(crate) const ETH_IPV4: u16 = 0x0800;
pub(crate) const ETH_IPV6: u16 = 0x86dd;
/// 802.1Q, the tag inside tunnels.
const ETH_VLAN: u16 = 0x8100;
/// The group bit of a destination MAC: broadcast and multicast.
const MULTICAST: [u8; 6] = [1, 0, 0, 0, 0, 0];
const LINK_LOCAL: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0);
const LINK_LOCAL_MASK: Ipv6Addr = Ipv6Addr::new(0xffc0, 0, 0, 0, 0, 0, 0, 0);

/// Metadata of a frame of network `segment`.
pub(crate) fn meta(segment: u16, from_tunnel: bool) -> u64 {
    segment as u64 | if from_tunnel { META_FROM_TUNNEL } else { 0 }
}

/// Tag a frame with `segment` and send it into `tunnel`.
pub(crate) fn tag_actions(segment: u16, tunnel: u32) -> Vec<Action> {
    vec![
        Action::PushVlan(ETH_VLAN),
        Action::SetField(OxmField::VlanVid {
            value: OFPVID_PRESENT | segment,
            mask: None,
        }),
        Action::output(tunnel),
    ]
}

/// Segment carried in the low bits of a VLAN id, metadata or cookie (exactness is checked by
/// re-encoding, so truncation here cannot make a foreign flow ours).
fn low12(v: u64) -> u16 {
    (v & META_NET_MASK) as u16
}

/// A flow's identity (table, priority, match) in typed form.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Key {
    /// The table-miss entry of `table`: priority 0, empty match.
    Miss { table: u8 },
    /// Classify: a frame from pod port `port` with the pod's own source MAC.
    PodSource { port: u32, mac: [u8; 6] },
    /// Classify: any frame from pod port `port` (port security `Off`: any source MAC).
    PodPort { port: u32 },
    /// Classify: a frame from tunnel port `port` tagged with `segment`.
    TunnelSource { port: u32, segment: u16 },
    /// Port security: anything from `port` (no addresses to check, or not asked to).
    PortAny { port: u32 },
    /// Port security, below the address checks and the guards: any other EtherType from
    /// `port` (PTP, eCPRI, PPPoE, MPLS, LLDP...), whose MAC classify checked.
    PortOtherTypes { port: u32 },
    /// Port security, shared by all ports: ARP, IPv4 or IPv6 that no address check admitted.
    Guard { eth_type: u16 },
    /// Port security: ARP from `port` with sender IP `spa` and sender MAC `sha`.
    PortArp {
        port: u32,
        spa: Ipv4Addr,
        sha: [u8; 6],
    },
    /// Port security: IPv4 from `port` with source `ip`.
    PortIpv4 { port: u32, ip: Ipv4Addr },
    /// Port security: IPv6 from `port` with source `ip` (also `::`, for DAD).
    PortIpv6 { port: u32, ip: Ipv6Addr },
    /// Port security: IPv6 from `port` with a link-local source (fe80::/10).
    PortIpv6LinkLocal { port: u32 },
    /// Forward: destination `mac` on `segment`, from a pod or a tunnel.
    ToLocal { segment: u16, mac: [u8; 6] },
    /// Forward: destination `mac` on `segment`, from a pod only (split horizon).
    ToRemote { segment: u16, mac: [u8; 6] },
    /// Forward: broadcast/multicast on `segment`, from a pod or from a tunnel.
    Flood { segment: u16, from_tunnel: bool },
    /// Anything else read back from a switch, in canonical order.
    Other(Box<FlowKey>),
}

impl Key {
    /// The table number in [`PIPELINE`].
    pub fn table(&self) -> u8 {
        self.table_in(&PIPELINE)
    }

    /// The table number in pipeline `p` (tests build pipelines with extra tables).
    pub fn table_in(&self, p: &Pipeline) -> u8 {
        match self {
            Key::Miss { table } => *table,
            Key::PodSource { .. } | Key::PodPort { .. } | Key::TunnelSource { .. } => p.classify,
            Key::PortAny { .. }
            | Key::PortOtherTypes { .. }
            | Key::Guard { .. }
            | Key::PortArp { .. }
            | Key::PortIpv4 { .. }
            | Key::PortIpv6 { .. }
            | Key::PortIpv6LinkLocal { .. } => p.port_security,
            Key::ToLocal { .. } | Key::ToRemote { .. } | Key::Flood { .. } => p.forward,
            Key::Other(k) => k.table,
        }
    }

    pub fn priority(&self) -> u16 {
        match self {
            Key::Miss { .. } => priority::MISS,
            Key::Flood { .. } => priority::FLOOD,
            Key::Guard { .. } => priority::GUARD,
            Key::PortOtherTypes { .. } => priority::OTHER_TYPES,
            Key::Other(k) => k.priority,
            _ => priority::ENDPOINT,
        }
    }

    /// The match fields, in canonical order.
    pub fn fields(&self) -> Vec<OxmField> {
        use OxmField as F;
        match self {
            Key::Miss { .. } => vec![],
            Key::PodSource { port, mac } => vec![
                F::InPort(*port),
                F::EthSrc {
                    value: *mac,
                    mask: None,
                },
            ],
            Key::PodPort { port } | Key::PortAny { port } | Key::PortOtherTypes { port } => {
                vec![F::InPort(*port)]
            }
            Key::Guard { eth_type } => vec![F::EthType(*eth_type)],
            Key::TunnelSource { port, segment } => vec![
                F::InPort(*port),
                F::VlanVid {
                    value: OFPVID_PRESENT | segment,
                    mask: None,
                },
            ],
            Key::PortArp { port, spa, sha } => vec![
                F::InPort(*port),
                F::EthType(ETH_ARP),
                F::ArpSpa {
                    value: *spa,
                    mask: None,
                },
                F::ArpSha {
                    value: *sha,
                    mask: None,
                },
            ],
            Key::PortIpv4 { port, ip } => vec![
                F::InPort(*port),
                F::EthType(ETH_IPV4),
                F::Ipv4Src {
                    value: *ip,
                    mask: None,
                },
            ],
            Key::PortIpv6 { port, ip } => vec![
                F::InPort(*port),
                F::EthType(ETH_IPV6),
                F::Ipv6Src {
                    value: *ip,
                    mask: None,
                },
            ],
            Key::PortIpv6LinkLocal { port } => vec![
                F::InPort(*port),
                F::EthType(ETH_IPV6),
                F::Ipv6Src {
                    value: LINK_LOCAL,
                    mask: Some(LINK_LOCAL_MASK),
                },
            ],
            Key::ToLocal { segment, mac } | Key::ToRemote { segment, mac } => {
                // Local ports are reachable from tunnels too, so only the network bits count.
                let mask = match self {
                    Key::ToLocal { .. } => META_NET_MASK,
                    _ => META_MASK,
                };
                vec![
                    F::Metadata {
                        value: meta(*segment, false),
                        mask: Some(mask),
                    },
                    F::EthDst {
                        value: *mac,
                        mask: None,
                    },
                ]
            }
            Key::Flood {
                segment,
                from_tunnel,
            } => vec![
                F::Metadata {
                    value: meta(*segment, *from_tunnel),
                    mask: Some(META_MASK),
                },
                F::EthDst {
                    value: MULTICAST,
                    mask: Some(MULTICAST),
                },
            ],
            Key::Other(k) => k.r#match.fields.clone(),
        }
    }

    /// The OpenFlow form.
    pub fn to_wire(&self) -> FlowKey {
        self.to_wire_in(&PIPELINE)
    }

    pub fn to_wire_in(&self, p: &Pipeline) -> FlowKey {
        match self {
            Key::Other(k) => (**k).clone(),
            _ => FlowKey {
                table: self.table_in(p),
                priority: self.priority(),
                r#match: Match::new(self.fields()),
            },
        }
    }

    /// Parses a flow's identity, read back or from a flow-mod; never fails (anything that is
    /// not exactly one of ours is [`Key::Other`]).
    pub fn from_wire(key: FlowKey) -> Key {
        Key::from_wire_in(key, &PIPELINE)
    }

    pub fn from_wire_in(key: FlowKey, p: &Pipeline) -> Key {
        let key = FlowKey {
            r#match: canonical_match(key.r#match),
            ..key
        };
        match Key::candidate(&key, p) {
            Some(k) if k.to_wire_in(p) == key => k,
            _ => Key::Other(Box::new(key)),
        }
    }

    /// The typed key `key` would be if it is one of ours (shape only; values checked by the
    /// caller's re-encoding).
    fn candidate(key: &FlowKey, p: &Pipeline) -> Option<Key> {
        use OxmField as F;
        let fields = key.r#match.fields.as_slice();
        if key.priority == priority::MISS {
            return fields.is_empty().then_some(Key::Miss { table: key.table });
        }
        let t = key.table;
        Some(match fields {
            [F::InPort(port), F::EthSrc { value, .. }] if t == p.classify => Key::PodSource {
                port: *port,
                mac: *value,
            },
            [F::InPort(port), F::VlanVid { value, .. }] if t == p.classify => Key::TunnelSource {
                port: *port,
                segment: low12(*value as u64),
            },
            [F::InPort(port)] if t == p.classify => Key::PodPort { port: *port },
            [F::InPort(port)] if t == p.port_security => match key.priority {
                priority::OTHER_TYPES => Key::PortOtherTypes { port: *port },
                _ => Key::PortAny { port: *port },
            },
            [F::EthType(eth_type)] if t == p.port_security => Key::Guard {
                eth_type: *eth_type,
            },
            [
                F::InPort(port),
                F::EthType(_),
                F::ArpSpa { value: spa, .. },
                F::ArpSha { value: sha, .. },
            ] if t == p.port_security => Key::PortArp {
                port: *port,
                spa: *spa,
                sha: *sha,
            },
            [F::InPort(port), F::EthType(_), F::Ipv4Src { value, .. }] if t == p.port_security => {
                Key::PortIpv4 {
                    port: *port,
                    ip: *value,
                }
            }
            [F::InPort(port), F::EthType(_), F::Ipv6Src { value, mask }]
                if t == p.port_security =>
            {
                match mask {
                    None => Key::PortIpv6 {
                        port: *port,
                        ip: *value,
                    },
                    Some(_) => Key::PortIpv6LinkLocal { port: *port },
                }
            }
            [
                F::Metadata { value, mask },
                F::EthDst {
                    value: mac,
                    mask: m,
                },
            ] if t == p.forward => {
                let segment = low12(*value);
                match (key.priority, m) {
                    (priority::FLOOD, _) => Key::Flood {
                        segment,
                        from_tunnel: value & META_FROM_TUNNEL != 0,
                    },
                    _ if *mask == Some(META_NET_MASK) => Key::ToLocal { segment, mac: *mac },
                    _ => Key::ToRemote { segment, mac: *mac },
                }
            }
            _ => return None,
        })
    }
}

/// What a flow does (cookie and instructions) in typed form.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Value {
    /// No instructions, the shared cookie: the table-miss drop.
    Drop,
    /// The shared cookie, on to table `to`: the table-miss entry of a pass-through table.
    Goto { to: u8 },
    /// A pod's frame: metadata = its network, on to the next table for pods.
    Classify { segment: u16 },
    /// Passed port security: on to the next table.
    Admit { segment: u16 },
    /// A tunnel frame: pop the tag, metadata = network + "from tunnel", on to the next table
    /// for tunnel frames.
    Untag { segment: u16 },
    /// Out of local port `port`.
    Output { segment: u16, port: u32 },
    /// Tagged with the segment, into `tunnel`.
    Tag { segment: u16, tunnel: u32 },
    /// To group `group` (a flood group).
    Group { segment: u16, group: u32 },
    /// Anything else read back from a switch, instructions in canonical order.
    Other(Box<FlowValue>),
}

impl Value {
    pub fn cookie(&self) -> u64 {
        match self {
            Value::Drop | Value::Goto { .. } => cookie(0),
            Value::Classify { segment }
            | Value::Admit { segment }
            | Value::Untag { segment }
            | Value::Output { segment, .. }
            | Value::Tag { segment, .. }
            | Value::Group { segment, .. } => cookie(*segment),
            Value::Other(v) => v.cookie,
        }
    }

    /// The instructions in [`PIPELINE`], in canonical order.
    pub fn instructions(&self) -> Vec<Instruction> {
        self.instructions_in(&PIPELINE)
    }

    /// The instructions in pipeline `p`: goto targets are the next tables of its list.
    pub fn instructions_in(&self, p: &Pipeline) -> Vec<Instruction> {
        use Instruction as I;
        match self {
            Value::Drop => vec![],
            Value::Goto { to } => vec![I::GotoTable(*to)],
            Value::Classify { segment } => vec![
                I::WriteMetadata {
                    metadata: meta(*segment, false),
                    mask: META_MASK,
                },
                I::GotoTable(p.after_classify_pod),
            ],
            Value::Admit { .. } => vec![I::GotoTable(p.after_port_security)],
            Value::Untag { segment } => vec![
                I::ApplyActions(vec![Action::PopVlan]),
                I::WriteMetadata {
                    metadata: meta(*segment, true),
                    mask: META_MASK,
                },
                I::GotoTable(p.after_classify_tunnel),
            ],
            Value::Output { port, .. } => vec![I::ApplyActions(vec![Action::output(*port)])],
            Value::Tag { segment, tunnel } => vec![I::ApplyActions(tag_actions(*segment, *tunnel))],
            Value::Group { group, .. } => vec![I::ApplyActions(vec![Action::Group(*group)])],
            Value::Other(v) => v.instructions.clone(),
        }
    }

    /// The OpenFlow form.
    pub fn to_wire(&self) -> FlowValue {
        self.to_wire_in(&PIPELINE)
    }

    pub fn to_wire_in(&self, p: &Pipeline) -> FlowValue {
        match self {
            Value::Other(v) => (**v).clone(),
            _ => FlowValue {
                cookie: self.cookie(),
                instructions: self.instructions_in(p),
            },
        }
    }

    /// Parses what a flow does; never fails (see [`Key::from_wire`]).
    pub fn from_wire(value: FlowValue) -> Value {
        Value::from_wire_in(value, &PIPELINE)
    }

    pub fn from_wire_in(value: FlowValue, p: &Pipeline) -> Value {
        let value = FlowValue {
            cookie: value.cookie,
            instructions: canonical_instructions(value.instructions),
        };
        match Value::candidate(&value) {
            Some(v) if v.to_wire_in(p) == value => v,
            _ => Value::Other(Box::new(value)),
        }
    }

    fn candidate(value: &FlowValue) -> Option<Value> {
        use Instruction as I;
        let segment = (value.cookie & COOKIE_SEGMENT_MASK) as u16;
        Some(match value.instructions.as_slice() {
            [] => Value::Drop,
            [I::WriteMetadata { metadata, .. }, I::GotoTable(_)] => Value::Classify {
                segment: low12(*metadata),
            },
            // Segment 0 is no network's: the shared cookie.
            [I::GotoTable(to)] if segment == 0 => Value::Goto { to: *to },
            [I::GotoTable(_)] => Value::Admit { segment },
            [
                I::ApplyActions(_),
                I::WriteMetadata { metadata, .. },
                I::GotoTable(_),
            ] => Value::Untag {
                segment: low12(*metadata),
            },
            [I::ApplyActions(actions)] => match actions.as_slice() {
                [Action::Output { port, .. }] => Value::Output {
                    segment,
                    port: *port,
                },
                [Action::Group(group)] => Value::Group {
                    segment,
                    group: *group,
                },
                [_, _, Action::Output { port, .. }] => Value::Tag {
                    segment,
                    tunnel: *port,
                },
                _ => return None,
            },
            _ => return None,
        })
    }
}
