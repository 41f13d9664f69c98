//! A small OpenFlow 1.3 table simulator: "a packet with these headers enters port P of this
//! switch: where does it leave, and how?" — and the same across a fabric of switches joined by
//! tunnels. It interprets exactly the subset of OpenFlow the pipeline uses and refuses anything
//! else, so a test can never pass because the simulator guessed.
//!
//! Semantics follow Open vSwitch: table-miss drops, output to the ingress port is dropped, each
//! bucket of an ALL group acts on its own copy of the packet.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};

use weft_openflow::wire::{Action, GroupType, Instruction, OFPVID_PRESENT, OxmField, port_no};

use crate::model::Model;
use crate::pipeline::{FlowKey, FlowValue, SwitchState, WireState};

/// Headers the pipeline looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    pub eth_src: [u8; 6],
    pub eth_dst: [u8; 6],
    /// 802.1Q VLAN ids, outermost first (a pod may send tagged frames; a tunnel adds one).
    pub vlans: Vec<u16>,
    /// Ethertype of the payload inside all tags.
    pub eth_type: u16,
    pub arp_spa: Option<Ipv4Addr>,
    pub arp_sha: Option<[u8; 6]>,
    pub ipv4_src: Option<Ipv4Addr>,
    pub ipv6_src: Option<Ipv6Addr>,
}

impl Packet {
    pub fn ethernet(src: [u8; 6], dst: [u8; 6], eth_type: u16) -> Packet {
        Packet {
            eth_src: src,
            eth_dst: dst,
            vlans: Vec::new(),
            eth_type,
            arp_spa: None,
            arp_sha: None,
            ipv4_src: None,
            ipv6_src: None,
        }
    }

    /// A broadcast ARP request from `mac`/`spa`.
    pub fn arp_request(mac: [u8; 6], spa: Ipv4Addr) -> Packet {
        Packet {
            arp_spa: Some(spa),
            arp_sha: Some(mac),
            ..Packet::ethernet(mac, [0xff; 6], 0x0806)
        }
    }

    pub fn ipv4(src_mac: [u8; 6], dst_mac: [u8; 6], src: Ipv4Addr) -> Packet {
        Packet {
            ipv4_src: Some(src),
            ..Packet::ethernet(src_mac, dst_mac, 0x0800)
        }
    }

    /// The EtherType OXM `eth_type` matches: Open vSwitch (with its default `vlan-limit` of 1)
    /// parses through one tag, so behind a second tag it sees 802.1Q itself, and no ARP or IP
    /// fields either.
    pub fn oxm_eth_type(&self) -> u16 {
        if self.vlans.len() >= 2 {
            0x8100
        } else {
            self.eth_type
        }
    }

    pub fn ipv6(src_mac: [u8; 6], dst_mac: [u8; 6], src: Ipv6Addr) -> Packet {
        Packet {
            ipv6_src: Some(src),
            ..Packet::ethernet(src_mac, dst_mac, 0x86dd)
        }
    }
}

/// One copy of the packet leaving the switch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    pub port: u32,
    pub packet: Packet,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SimError {
    #[error("table {table}: {count} flows of priority {priority} match: the pipeline is ambiguous")]
    Ambiguous {
        table: u8,
        priority: u16,
        count: usize,
    },
    #[error("unsupported by the simulator: {0}")]
    Unsupported(String),
    #[error("group {0} does not exist")]
    UnknownGroup(u32),
    #[error("goto_table {to} from table {from} does not go forward")]
    BadGoto { from: u8, to: u8 },
    #[error("pop_vlan or set vlan_vid on an untagged frame")]
    NoTag,
    #[error("frame still travelling after {0} switches: a loop")]
    Loop(usize),
}

struct Ctx {
    in_port: u32,
    metadata: u64,
}

fn masked_eq<const N: usize>(v: [u8; N], want: [u8; N], mask: Option<[u8; N]>) -> bool {
    let m = mask.unwrap_or([0xff; N]);
    (0..N).all(|i| v[i] & m[i] == want[i] & m[i])
}

fn field_matches(f: &OxmField, c: &Ctx, p: &Packet) -> Result<bool, SimError> {
    use OxmField as F;
    Ok(match f {
        F::InPort(x) => c.in_port == *x,
        F::Metadata { value, mask } => {
            let m = mask.unwrap_or(u64::MAX);
            c.metadata & m == value & m
        }
        F::EthDst { value, mask } => masked_eq(p.eth_dst, *value, *mask),
        F::EthSrc { value, mask } => masked_eq(p.eth_src, *value, *mask),
        F::EthType(t) => p.oxm_eth_type() == *t,
        F::VlanVid { value, mask } => {
            let have = p.vlans.first().map_or(0, |v| OFPVID_PRESENT | v);
            let m = mask.unwrap_or(0x1fff);
            have & m == value & m
        }
        F::ArpSpa { value, mask } => {
            p.oxm_eth_type() == 0x0806
                && p.arp_spa.is_some_and(|a| {
                    masked_eq(a.octets(), value.octets(), mask.map(|m| m.octets()))
                })
        }
        F::ArpSha { value, mask } => {
            p.oxm_eth_type() == 0x0806 && p.arp_sha.is_some_and(|a| masked_eq(a, *value, *mask))
        }
        F::Ipv4Src { value, mask } => {
            p.oxm_eth_type() == 0x0800
                && p.ipv4_src.is_some_and(|a| {
                    masked_eq(a.octets(), value.octets(), mask.map(|m| m.octets()))
                })
        }
        F::Ipv6Src { value, mask } => {
            p.oxm_eth_type() == 0x86dd
                && p.ipv6_src.is_some_and(|a| {
                    masked_eq(a.octets(), value.octets(), mask.map(|m| m.octets()))
                })
        }
        other => return Err(SimError::Unsupported(format!("match on {other:?}"))),
    })
}

/// The single highest-priority entry of `table` matching the packet.
fn lookup<'s>(
    st: &'s WireState,
    table: u8,
    c: &Ctx,
    p: &Packet,
) -> Result<Option<&'s FlowValue>, SimError> {
    let mut best: Option<(&FlowKey, &FlowValue)> = None;
    let mut ties = 0;
    for (k, v) in st.flows.iter().filter(|(k, _)| k.table == table) {
        let mut ok = true;
        for f in &k.r#match.fields {
            if !field_matches(f, c, p)? {
                ok = false;
                break;
            }
        }
        if !ok {
            continue;
        }
        match best {
            Some((bk, _)) if bk.priority > k.priority => {}
            Some((bk, _)) if bk.priority == k.priority => ties += 1,
            _ => {
                best = Some((k, v));
                ties = 0;
            }
        }
    }
    if let (Some((k, _)), true) = (best, ties > 0) {
        return Err(SimError::Ambiguous {
            table,
            priority: k.priority,
            count: ties + 1,
        });
    }
    Ok(best.map(|(_, v)| v))
}

fn apply(
    st: &WireState,
    actions: &[Action],
    c: &Ctx,
    p: &mut Packet,
    out: &mut Vec<Output>,
    depth: usize,
) -> Result<(), SimError> {
    for a in actions {
        match a {
            Action::Output { port, .. } => {
                let to = if *port == port_no::IN_PORT {
                    c.in_port
                } else if *port == c.in_port {
                    continue; // OpenFlow never sends a frame back where it came from
                } else if *port > port_no::MAX {
                    return Err(SimError::Unsupported(format!("output to {port:#x}")));
                } else {
                    *port
                };
                out.push(Output {
                    port: to,
                    packet: p.clone(),
                });
            }
            Action::Group(g) => {
                if depth > 8 {
                    return Err(SimError::Unsupported("group chain deeper than 8".into()));
                }
                let grp = st.groups.get(g).ok_or(SimError::UnknownGroup(*g))?;
                if grp.group_type != GroupType::All {
                    return Err(SimError::Unsupported(format!(
                        "group type {:?}",
                        grp.group_type
                    )));
                }
                for b in &grp.buckets {
                    let mut copy = p.clone();
                    apply(st, &b.actions, c, &mut copy, out, depth + 1)?;
                }
            }
            // A new outermost tag, also on a tagged frame (OpenFlow 1.3 push semantics).
            Action::PushVlan(0x8100) => p.vlans.insert(0, 0),
            Action::PopVlan => {
                if p.vlans.is_empty() {
                    return Err(SimError::NoTag);
                }
                p.vlans.remove(0);
            }
            Action::SetField(OxmField::VlanVid { value, mask: None }) => {
                match p.vlans.first_mut() {
                    Some(v) => *v = value & 0xfff,
                    None => return Err(SimError::NoTag),
                }
            }
            Action::SetField(OxmField::EthDst { value, mask: None }) => p.eth_dst = *value,
            Action::SetField(OxmField::EthSrc { value, mask: None }) => p.eth_src = *value,
            Action::DecNwTtl | Action::SetQueue(_) => {}
            other => return Err(SimError::Unsupported(format!("action {other:?}"))),
        }
    }
    Ok(())
}

/// Runs one packet through one switch's pipeline from table 0.
pub fn run(st: &WireState, in_port: u32, packet: Packet) -> Result<Vec<Output>, SimError> {
    let mut c = Ctx {
        in_port,
        metadata: 0,
    };
    let mut p = packet;
    let mut out = Vec::new();
    let mut action_set: Vec<Action> = Vec::new();
    let mut table = 0u8;
    loop {
        let Some(entry) = lookup(st, table, &c, &p)? else {
            return Ok(out); // table miss: drop
        };
        let mut next = None;
        for ins in &entry.instructions {
            match ins {
                Instruction::ApplyActions(a) => apply(st, a, &c, &mut p, &mut out, 0)?,
                Instruction::ClearActions => action_set.clear(),
                Instruction::WriteActions(a) => action_set.extend(a.iter().cloned()),
                Instruction::WriteMetadata { metadata, mask } => {
                    c.metadata = (c.metadata & !mask) | (metadata & mask)
                }
                Instruction::GotoTable(t) if *t > table => next = Some(*t),
                Instruction::GotoTable(t) => {
                    return Err(SimError::BadGoto {
                        from: table,
                        to: *t,
                    });
                }
                other => return Err(SimError::Unsupported(format!("instruction {other:?}"))),
            }
        }
        match next {
            Some(t) => table = t,
            None => {
                apply(st, &action_set, &c, &mut p, &mut out, 0)?;
                return Ok(out);
            }
        }
    }
}

/// A packet that left the fabric at a non-tunnel port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub node: String,
    pub port: u32,
    pub packet: Packet,
}

/// What happened to one injected packet across the fabric.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Trace {
    pub deliveries: Vec<Delivery>,
    /// Switch traversals in total (1 = it never left the first switch).
    pub hops: usize,
    /// A frame that entered a switch from a tunnel left it through a tunnel.
    pub tunnel_to_tunnel: bool,
}

/// Every switch's state in the OpenFlow form the simulator interprets: convert once, then run
/// as many packets as needed.
pub fn wire_fabric(switches: &BTreeMap<String, SwitchState>) -> BTreeMap<String, WireState> {
    switches
        .iter()
        .map(|(n, st)| (n.clone(), st.to_wire()))
        .collect()
}

/// Follows a packet through every switch it reaches over the model's tunnels.
pub fn run_fabric(
    model: &Model,
    switches: &BTreeMap<String, WireState>,
    node: &str,
    in_port: u32,
    packet: Packet,
) -> Result<Trace, SimError> {
    // (node, port) of each tunnel end -> (peer node, peer's port for the reverse direction).
    let mut tunnel_peer: BTreeMap<(&str, u32), (&str, u32)> = BTreeMap::new();
    for (name, n) in &model.nodes {
        for (peer, port) in &n.tunnel_ports {
            if let Some(back) = model.nodes.get(peer).and_then(|p| p.tunnel_ports.get(name)) {
                tunnel_peer.insert((name.as_str(), *port), (peer.as_str(), *back));
            }
        }
    }
    let mut trace = Trace::default();
    let mut queue = vec![(node.to_string(), in_port, packet)];
    while let Some((n, port, p)) = queue.pop() {
        trace.hops += 1;
        if trace.hops > 64 {
            return Err(SimError::Loop(trace.hops));
        }
        let Some(st) = switches.get(&n) else { continue };
        let from_tunnel = tunnel_peer.contains_key(&(n.as_str(), port));
        for o in run(st, port, p)? {
            match tunnel_peer.get(&(n.as_str(), o.port)) {
                Some((peer, peer_port)) => {
                    trace.tunnel_to_tunnel |= from_tunnel;
                    queue.push((peer.to_string(), *peer_port, o.packet));
                }
                None => trace.deliveries.push(Delivery {
                    node: n.clone(),
                    port: o.port,
                    packet: o.packet,
                }),
            }
        }
    }
    Ok(trace)
}
