//! A switch's flows and groups as the controller holds them: typed and compact ([`Key`],
//! [`Value`], [`Group`]), converted to the generic OpenFlow form ([`FlowKey`], [`FlowValue`],
//! [`GroupValue`]) only where OpenFlow is spoken or interpreted (flow-mods, read-back,
//! `ovs-ofctl` text, the simulator).
//!
//! Why: a controller holds every switch's desired state, which at 1,000 nodes and 100,000
//! attachments is 5.6 million flows; in the generic form (match and instruction vectors) that
//! was ~420 bytes and several allocations per flow; typed, a flow is a 40-byte map entry with
//! no allocation (~80 bytes per flow held, counting the map's spare room and the groups:
//! `benches/desired_state.rs`).

use std::collections::{BTreeMap, HashMap};

use foldhash::fast::RandomState as FastHash;

use super::{FlowKey, FlowValue, Group, GroupValue, Key, PIPELINE, Pipeline, Value};

/// Flow table of one switch. foldhash rather than SipHash: keys are ours (no flooding risk) and
/// hashing dominated the full computation.
pub type FlowMap = HashMap<Key, Value, FastHash>;

/// The flows and groups of one switch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SwitchState {
    pub flows: FlowMap,
    pub groups: BTreeMap<u32, Group>,
}

impl SwitchState {
    /// Number of flows carrying the given network's cookie.
    pub fn flows_of(&self, segment: u16) -> usize {
        let c = super::cookie(segment);
        self.flows.values().filter(|v| v.cookie() == c).count()
    }

    /// Every flow and group in OpenFlow form.
    pub fn to_wire(&self) -> WireState {
        self.to_wire_in(&PIPELINE)
    }

    pub fn to_wire_in(&self, p: &Pipeline) -> WireState {
        WireState {
            flows: self
                .flows
                .iter()
                .map(|(k, v)| (k.to_wire_in(p), v.to_wire_in(p)))
                .collect(),
            groups: self
                .groups
                .iter()
                .map(|(id, g)| (*id, g.to_wire()))
                .collect(),
        }
    }

    /// Parses flows and groups in OpenFlow form (read back from a switch); whatever is not
    /// exactly ours is kept as `Other`, so nothing is lost and nothing fails.
    pub fn from_wire(
        flows: impl IntoIterator<Item = (FlowKey, FlowValue)>,
        groups: impl IntoIterator<Item = (u32, GroupValue)>,
    ) -> SwitchState {
        SwitchState::from_wire_in(flows, groups, &PIPELINE)
    }

    pub fn from_wire_in(
        flows: impl IntoIterator<Item = (FlowKey, FlowValue)>,
        groups: impl IntoIterator<Item = (u32, GroupValue)>,
        p: &Pipeline,
    ) -> SwitchState {
        SwitchState {
            flows: flows
                .into_iter()
                .map(|(k, v)| (Key::from_wire_in(k, p), Value::from_wire_in(v, p)))
                .collect(),
            groups: groups
                .into_iter()
                .map(|(id, g)| (id, Group::from_wire(g)))
                .collect(),
        }
    }
}

/// One switch's flows and groups in OpenFlow form: what the simulator interprets (converted
/// once per switch, not per packet).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WireState {
    pub flows: Vec<(FlowKey, FlowValue)>,
    pub groups: BTreeMap<u32, GroupValue>,
}
