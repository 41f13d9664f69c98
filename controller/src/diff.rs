//! Installed vs desired: the smallest set of OpenFlow changes that turns one into the other,
//! ordered so that no packet ever sees a half-built state even without bundles.
//!
//! Order: new groups, then changed groups, then new or changed flows (which may point at the new
//! groups), then deletions of flows nobody wants, then deletions of groups (no longer referenced).

use weft_openflow::wire::{
    FlowMod, FlowModCommand, FlowStats, GroupDesc, GroupMod, GroupModCommand, Match, Message,
};

use crate::pipeline::{FlowKey, FlowValue, Group, GroupValue, Key, SwitchState, Value};

/// What a switch holds, from its flow-stats and group-desc replies. Flows and groups that are
/// not exactly ours are kept as `Other` (and deleted by [`diff`]).
pub fn from_readback(flows: &[FlowStats], groups: &[GroupDesc]) -> SwitchState {
    SwitchState::from_wire(
        flows.iter().map(|f| {
            let key = FlowKey {
                table: f.table_id,
                priority: f.priority,
                r#match: f.r#match.clone(),
            };
            let value = FlowValue {
                cookie: f.cookie,
                instructions: f.instructions.clone(),
            };
            (key, value)
        }),
        groups.iter().map(|g| {
            let value = GroupValue {
                group_type: g.group_type,
                buckets: g.buckets.clone(),
            };
            (g.group_id, value)
        }),
    )
}

/// The changes for one switch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delta {
    pub group_adds: Vec<GroupMod>,
    pub group_modifies: Vec<GroupMod>,
    pub flow_adds: Vec<FlowMod>,
    pub flow_deletes: Vec<FlowMod>,
    pub group_deletes: Vec<GroupMod>,
}

impl Delta {
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn len(&self) -> usize {
        self.group_adds.len()
            + self.group_modifies.len()
            + self.flow_adds.len()
            + self.flow_deletes.len()
            + self.group_deletes.len()
    }

    /// The OpenFlow messages, in the safe order.
    pub fn into_messages(self) -> Vec<Message> {
        let mut out = Vec::with_capacity(self.len());
        out.extend(self.group_adds.into_iter().map(Message::GroupMod));
        out.extend(self.group_modifies.into_iter().map(Message::GroupMod));
        out.extend(self.flow_adds.into_iter().map(Message::FlowMod));
        out.extend(self.flow_deletes.into_iter().map(Message::FlowMod));
        out.extend(self.group_deletes.into_iter().map(Message::GroupMod));
        out
    }
}

fn flow_add(key: &Key, value: &Value) -> FlowMod {
    let mut fm = FlowMod::add(
        key.table(),
        key.priority(),
        Match::new(key.fields()),
        value.instructions(),
    );
    fm.cookie = value.cookie();
    fm
}

/// A strict delete: the key alone names the entry (no cookie, no instructions).
fn flow_delete(key: &Key) -> FlowMod {
    let mut fm = FlowMod::add(
        key.table(),
        key.priority(),
        Match::new(key.fields()),
        vec![],
    );
    fm.command = FlowModCommand::DeleteStrict;
    fm
}

fn group_mod(id: u32, g: &Group, command: GroupModCommand) -> GroupMod {
    let GroupValue {
        group_type,
        buckets,
    } = g.to_wire();
    GroupMod {
        command,
        group_type,
        group_id: id,
        buckets,
    }
}

/// The changes that turn `installed` into `desired`. Entries equal on both sides are not touched,
/// so a reconnecting switch that already holds the right state gets no message at all.
pub fn diff(installed: &SwitchState, desired: &SwitchState) -> Delta {
    let mut d = Delta::default();
    for (id, g) in &desired.groups {
        match installed.groups.get(id) {
            None => d.group_adds.push(group_mod(*id, g, GroupModCommand::Add)),
            Some(have) if have != g => {
                d.group_modifies
                    .push(group_mod(*id, g, GroupModCommand::Modify))
            }
            Some(_) => {}
        }
    }
    for (key, value) in &desired.flows {
        if installed.flows.get(key) != Some(value) {
            d.flow_adds.push(flow_add(key, value));
        }
    }
    for key in installed.flows.keys() {
        if !desired.flows.contains_key(key) {
            d.flow_deletes.push(flow_delete(key));
        }
    }
    for (id, g) in &installed.groups {
        if !desired.groups.contains_key(id) {
            let mut del = group_mod(*id, g, GroupModCommand::Delete);
            del.buckets.clear();
            d.group_deletes.push(del);
        }
    }
    // Grouped by table, higher priorities first: easier to read in logs.
    let order = |f: &FlowMod| (f.table_id, std::cmp::Reverse(f.priority));
    d.flow_adds.sort_by_key(order);
    d.flow_deletes.sort_by_key(order);
    d
}
