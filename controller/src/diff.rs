//! Installed vs desired: the smallest set of OpenFlow changes that turns one into the other,
//! ordered so that no packet ever sees a half-built state even without bundles.
//!
//! Order: new groups, then changed groups, then new or changed flows (which may point at the new
//! groups), then deletions of flows nobody wants, then deletions of groups (no longer referenced).

use weft_openflow::wire::{
    FlowMod, FlowModCommand, FlowStats, GroupDesc, GroupMod, GroupModCommand, Message,
};

use crate::pipeline::{
    FlowKey, FlowValue, GroupValue, SwitchState, canonical_instructions, canonical_match,
};

/// What a switch holds, from its flow-stats and group-desc replies.
pub fn from_readback(flows: &[FlowStats], groups: &[GroupDesc]) -> SwitchState {
    let mut st = SwitchState::default();
    for f in flows {
        st.flows.insert(
            FlowKey {
                table: f.table_id,
                priority: f.priority,
                r#match: canonical_match(f.r#match.clone()),
            },
            FlowValue {
                cookie: f.cookie,
                instructions: canonical_instructions(f.instructions.clone()),
            },
        );
    }
    for g in groups {
        st.groups.insert(
            g.group_id,
            GroupValue {
                group_type: g.group_type,
                buckets: g.buckets.clone(),
            },
        );
    }
    st
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

fn flow_mod(key: &FlowKey, value: &FlowValue, command: FlowModCommand) -> FlowMod {
    let mut fm = FlowMod::add(
        key.table,
        key.priority,
        key.r#match.clone(),
        value.instructions.clone(),
    );
    fm.command = command;
    fm.cookie = value.cookie;
    fm
}

fn group_mod(id: u32, g: &GroupValue, command: GroupModCommand) -> GroupMod {
    GroupMod {
        command,
        group_type: g.group_type,
        group_id: id,
        buckets: g.buckets.clone(),
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
            d.flow_adds.push(flow_mod(key, value, FlowModCommand::Add));
        }
    }
    for (key, value) in &installed.flows {
        if !desired.flows.contains_key(key) {
            let mut del = flow_mod(key, value, FlowModCommand::DeleteStrict);
            del.instructions.clear();
            del.cookie = 0;
            d.flow_deletes.push(del);
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
