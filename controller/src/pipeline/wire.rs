//! The generic OpenFlow form of flows and groups: what goes into a flow-mod or group-mod and what
//! comes back in flow-stats and group-desc replies. The typed forms ([`super::Key`],
//! [`super::Value`], [`super::Group`]) convert to and from these at the edges.

use weft_openflow::wire::{Bucket, GroupType, Instruction, Match, OxmField};

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

/// Rank of an OXM field in the order Open vSwitch reports matches (by OXM field number).
pub(crate) fn field_rank(f: &OxmField) -> u32 {
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

pub(crate) fn instruction_rank(i: &Instruction) -> u8 {
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
