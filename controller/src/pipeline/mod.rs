//! The flow pipeline, written down in one place: the ordered declaration of the tables of a
//! node's `weft0` bridge ([`TABLES`]), the layout of metadata, cookies and groups, the typed
//! flows each table holds ([`Key`], [`Value`], [`Group`]) and the desired state of every switch
//! as a pure function of the [`crate::model::Model`] ([`Index`]).
//!
//! | table | name | matches | next | does |
//! |---|---|---|---|---|
//! | 0 | classify | in_port, eth_src, vlan_vid | port security (pods), forward (tunnels) | pod port + its own MAC (any MAC with port security Off) -> metadata = network, whatever the frame's EtherType or 802.1Q tags. Tunnel port + the network's VLAN tag -> pop the tag, metadata = network + "from tunnel". Anything else: drop. |
//! | 1 | port security | in_port, eth_type, arp_spa, arp_sha, ipv4_src, ipv6_src | forward | per pod port, mode Strict: ARP whose sender IP and MAC are the pod's own, IPv4/IPv6 from the pod's own addresses (plus link-local and DAD for IPv6, ARP probes for IPv4) -> next; other ARP/IPv4/IPv6: drop; every other EtherType (PTP, eCPRI, PPPoE, MPLS, LLDP...) -> next. MacOnly and Off, or no addresses to check: everything -> next (the MAC, if checked, was checked in classify). |
//! | 2 | forward | metadata, eth_dst | - | (network, destination MAC) -> the local port, or tag + the tunnel to the owning node (only for frames not from a tunnel: split horizon). Broadcast/multicast -> the network's flood group (from a tunnel: the local-only flood group). Unknown unicast: drop. |
//!
//! The table numbers are the positions in [`TABLES`] and every goto is "the next table of the
//! list that sees this frame" ([`Ingress`]), so a new stage (inter-cluster link tables, ACLs,
//! QoS, mirroring) is one entry in that list plus its flows. A test checks this doc table
//! against the declaration.
//!
//! Metadata bits 0..12 carry the network's segment, bit 16 "came from a tunnel". Cookies carry
//! Weft's mark in the top 16 bits and the segment in the low 16, so one network's flows can be
//! read or removed alone; shared flows (the table-miss entries and port security's guards) use
//! segment 0.
//!
//! Port security's layers, per port of a `Strict` network with addresses: the address checks
//! (priority `ENDPOINT`) admit, the shared guards below them drop the rest of ARP, IPv4 and
//! IPv6, and a per-port entry below those admits every other EtherType. A frame's 802.1Q tags
//! never pick its network: the port does, and a tunnel adds its own outer tag.

mod compute;
mod flows;
mod group;
mod state;
mod wire;

#[cfg(test)]
mod table_tests;
#[cfg(test)]
mod tests;

pub use compute::{Index, desired_state};
pub use flows::{Key, Value};
pub use group::{FloodGroup, Group};
pub use state::{FlowMap, SwitchState, WireState};
pub use wire::{FlowKey, FlowValue, GroupValue, canonical_instructions, canonical_match};

/// Which frames go through a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ingress {
    /// Only frames sent by a local pod (a tunnel frame was checked by its sender's switch).
    Pods,
    /// Frames from local pods and from tunnels.
    All,
}

/// What a table does with a frame none of its flows match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Miss {
    Drop,
    /// On to the next table: for stages that only act on some frames (mirroring, QoS).
    Continue,
}

/// One table of the pipeline (Faucet's `ValveTableConfig` in spirit): the list of these is the
/// pipeline, and every table number and goto target is derived from its order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Table {
    pub name: &'static str,
    /// The match fields its flows use (`ovs-ofctl` names), checked against the typed flows.
    pub matches: &'static [&'static str],
    pub ingress: Ingress,
    pub miss: Miss,
    pub purpose: &'static str,
}

pub const CLASSIFY: Table = Table {
    name: "classify",
    matches: &["in_port", "eth_src", "vlan_vid"],
    ingress: Ingress::All,
    miss: Miss::Drop,
    purpose: "pod port + its own MAC (any MAC with port security Off) -> metadata = network, \
              whatever the frame's EtherType or 802.1Q tags. Tunnel port + the network's VLAN tag \
              -> pop the tag, metadata = network + \"from tunnel\". Anything else: drop.",
};

pub const PORT_SECURITY: Table = Table {
    name: "port security",
    matches: &[
        "in_port", "eth_type", "arp_spa", "arp_sha", "ipv4_src", "ipv6_src",
    ],
    ingress: Ingress::Pods,
    miss: Miss::Drop,
    purpose: "per pod port, mode Strict: ARP whose sender IP and MAC are the pod's own, \
              IPv4/IPv6 from the pod's own addresses (plus link-local and DAD for IPv6, ARP \
              probes for IPv4) -> next; other ARP/IPv4/IPv6: drop; every other EtherType (PTP, \
              eCPRI, PPPoE, MPLS, LLDP...) -> next. MacOnly and Off, or no addresses to check: \
              everything -> next (the MAC, if checked, was checked in classify).",
};

pub const FORWARD: Table = Table {
    name: "forward",
    matches: &["metadata", "eth_dst"],
    ingress: Ingress::All,
    miss: Miss::Drop,
    purpose: "(network, destination MAC) -> the local port, or tag + the tunnel to the owning \
              node (only for frames not from a tunnel: split horizon). Broadcast/multicast -> \
              the network's flood group (from a tunnel: the local-only flood group). Unknown \
              unicast: drop.",
};

/// The pipeline, in order. Table `i` of a switch is `TABLES[i]`.
pub const TABLES: &[Table] = &[CLASSIFY, PORT_SECURITY, FORWARD];

/// The pipeline every switch runs, resolved at compile time (a bad declaration fails the build).
pub const PIPELINE: Pipeline = match Pipeline::new(TABLES) {
    Ok(p) => p,
    Err(_) => panic!("the table declaration is inconsistent"),
};

/// Table numbers, named (derived from [`TABLES`]).
pub mod table {
    use super::PIPELINE;
    pub const CLASSIFY: u8 = PIPELINE.classify;
    pub const PORT_SECURITY: u8 = PIPELINE.port_security;
    pub const FORWARD: u8 = PIPELINE.forward;
}

/// Why a table declaration cannot be a pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PipelineError {
    #[error("table {0:?} is missing")]
    Missing(&'static str),
    #[error("table {0:?} is declared twice")]
    Duplicate(&'static str),
    #[error("classify must be table 0 (OpenFlow starts every packet there)")]
    ClassifyNotFirst,
    #[error("port security must come before forward")]
    Order,
    #[error("more than 255 tables")]
    TooMany,
    #[error("no table after {0:?} sees its frames")]
    NoNext(&'static str),
}

/// A table declaration with the numbers Weft's own flows use resolved once, so the typed flows
/// convert to OpenFlow without searching the list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pipeline {
    tables: &'static [Table],
    classify: u8,
    port_security: u8,
    forward: u8,
    /// Where a pod's frame goes after classify.
    after_classify_pod: u8,
    /// Where a tunnel's frame goes after classify.
    after_classify_tunnel: u8,
    /// Where an admitted frame goes after port security.
    after_port_security: u8,
}

const fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// Position of the table called `name`.
const fn position(tables: &[Table], name: &'static str) -> Result<usize, PipelineError> {
    let (mut i, mut found) = (0, None);
    while i < tables.len() {
        if same(tables[i].name, name) {
            if found.is_some() {
                return Err(PipelineError::Duplicate(name));
            }
            found = Some(i);
        }
        i += 1;
    }
    match found {
        Some(i) => Ok(i),
        None => Err(PipelineError::Missing(name)),
    }
}

/// The first table after `after` that frames of `ingress` go through.
const fn next_of(tables: &[Table], after: usize, ingress: Ingress) -> Result<u8, PipelineError> {
    let mut i = after + 1;
    while i < tables.len() {
        if matches!(tables[i].ingress, Ingress::All) || matches!(ingress, Ingress::Pods) {
            return Ok(i as u8);
        }
        i += 1;
    }
    Err(PipelineError::NoNext(tables[after].name))
}

impl Pipeline {
    /// Checks a declaration and resolves its numbers.
    pub const fn new(tables: &'static [Table]) -> Result<Pipeline, PipelineError> {
        if tables.len() > 255 {
            return Err(PipelineError::TooMany);
        }
        let mut i = 0;
        while i < tables.len() {
            if let Err(e) = position(tables, tables[i].name) {
                return Err(e);
            }
            i += 1;
        }
        let (classify, port_security, forward) = match (
            position(tables, CLASSIFY.name),
            position(tables, PORT_SECURITY.name),
            position(tables, FORWARD.name),
        ) {
            (Ok(c), Ok(p), Ok(f)) => (c, p, f),
            (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => return Err(e),
        };
        if classify != 0 {
            return Err(PipelineError::ClassifyNotFirst);
        }
        if port_security > forward {
            return Err(PipelineError::Order);
        }
        let nexts = (
            next_of(tables, classify, Ingress::Pods),
            next_of(tables, classify, Ingress::All),
            next_of(tables, port_security, Ingress::Pods),
        );
        let (after_classify_pod, after_classify_tunnel, after_port_security) = match nexts {
            (Ok(a), Ok(b), Ok(c)) => (a, b, c),
            (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => return Err(e),
        };
        Ok(Pipeline {
            tables,
            classify: classify as u8,
            port_security: port_security as u8,
            forward: forward as u8,
            after_classify_pod,
            after_classify_tunnel,
            after_port_security,
        })
    }

    pub fn tables(&self) -> &'static [Table] {
        self.tables
    }

    /// The table a frame of `ingress` goes to after table `after`; `None` after the last one it
    /// sees.
    pub fn next(&self, after: u8, ingress: Ingress) -> Option<u8> {
        if after as usize >= self.tables.len() {
            return None;
        }
        next_of(self.tables, after as usize, ingress).ok()
    }

    /// The table-miss entry of table `number`.
    fn miss(&self, number: u8) -> Value {
        let t = &self.tables[number as usize];
        match (t.miss, self.next(number, t.ingress)) {
            (Miss::Continue, Some(to)) => Value::Goto { to },
            _ => Value::Drop,
        }
    }
}

/// Priorities, named so the layering reads in one place.
pub mod priority {
    pub const MISS: u16 = 0;
    pub const FLOOD: u16 = 50;
    /// Port security: any EtherType from a port whose MAC classify checked ...
    pub const OTHER_TYPES: u16 = 80;
    /// ... but not ARP, IPv4 or IPv6 that no address check (at `ENDPOINT`) admitted.
    pub const GUARD: u16 = 90;
    pub const ENDPOINT: u16 = 100;
}

/// Metadata bits holding the network (its segment).
pub const META_NET_MASK: u64 = 0xfff;
/// Metadata bit: the frame entered through a tunnel.
pub const META_FROM_TUNNEL: u64 = 1 << 16;
/// Both: the network and where the frame came from.
pub const META_MASK: u64 = META_NET_MASK | META_FROM_TUNNEL;

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
