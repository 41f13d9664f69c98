//! Typed groups: a flood group is a list of local ports and a list of tunnels, not a bucket
//! (with its own action list) per member. Parsing is exact in the same way as for flows.

use weft_openflow::wire::{Action, Bucket, GroupType, OFPVID_PRESENT, OxmField};

use super::flows::tag_actions;
use super::wire::GroupValue;

/// A group in typed form.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Group {
    Flood(FloodGroup),
    /// Anything else read back from a switch.
    Other(Box<GroupValue>),
}

/// An ALL group: one bucket `[output p]` per local port, then one bucket
/// `[push_vlan, set vlan_vid, output t]` per tunnel. Fields are private so that the one
/// canonical form (see [`FloodGroup::new`]) is the only one there is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FloodGroup {
    segment: u16,
    ports: Box<[u32]>,
    tunnels: Box<[u32]>,
}

impl FloodGroup {
    /// Buckets in the order given. Without tunnels the segment appears nowhere on the wire, so
    /// it is not kept either (a local-only group read back must equal the one computed).
    pub fn new(segment: u16, ports: Vec<u32>, tunnels: Vec<u32>) -> FloodGroup {
        FloodGroup {
            segment: if tunnels.is_empty() { 0 } else { segment },
            ports: ports.into_boxed_slice(),
            tunnels: tunnels.into_boxed_slice(),
        }
    }

    pub fn ports(&self) -> &[u32] {
        &self.ports
    }

    pub fn tunnels(&self) -> &[u32] {
        &self.tunnels
    }
}

impl Group {
    /// The OpenFlow form.
    pub fn to_wire(&self) -> GroupValue {
        match self {
            Group::Flood(f) => {
                let local = f
                    .ports
                    .iter()
                    .map(|p| Bucket::new(vec![Action::output(*p)]));
                let remote = f
                    .tunnels
                    .iter()
                    .map(|t| Bucket::new(tag_actions(f.segment, *t)));
                GroupValue {
                    group_type: GroupType::All,
                    buckets: local.chain(remote).collect(),
                }
            }
            Group::Other(g) => (**g).clone(),
        }
    }

    /// Parses a group read back from a switch; never fails (anything that is not exactly a
    /// flood group is [`Group::Other`]).
    pub fn from_wire(g: GroupValue) -> Group {
        match Group::candidate(&g) {
            Some(typed) if typed.to_wire() == g => typed,
            _ => Group::Other(Box::new(g)),
        }
    }

    fn candidate(g: &GroupValue) -> Option<Group> {
        if g.group_type != GroupType::All {
            return None;
        }
        let (mut ports, mut tunnels, mut segment) = (Vec::new(), Vec::new(), 0);
        for b in &g.buckets {
            match b.actions.as_slice() {
                [Action::Output { port, .. }] => ports.push(*port),
                [
                    Action::PushVlan(_),
                    Action::SetField(OxmField::VlanVid { value, .. }),
                    Action::Output { port, .. },
                ] => {
                    segment = value & !OFPVID_PRESENT;
                    tunnels.push(*port);
                }
                _ => return None,
            }
        }
        Some(Group::Flood(FloodGroup::new(segment, ports, tunnels)))
    }
}
