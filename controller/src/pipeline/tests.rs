use std::net::{Ipv4Addr, Ipv6Addr};

use weft_openflow::wire::{
    Action, Bucket, FlowModCommand, FlowModFlags, FlowStats, GroupType, Instruction, Match,
    OxmField,
};

use super::*;
use crate::diff::{diff, from_readback};

const MAC: [u8; 6] = [2, 0, 0, 0, 0, 9];

/// One of every key kind the pipeline writes, with the value it writes with it.
pub(super) fn samples() -> Vec<(Key, Value)> {
    let s = 7;
    vec![
        (Key::Miss { table: 0 }, Value::Drop),
        (Key::Miss { table: 2 }, Value::Drop),
        (
            Key::PodSource { port: 3, mac: MAC },
            Value::Classify { segment: s },
        ),
        (
            Key::TunnelSource {
                port: 1001,
                segment: 4094,
            },
            Value::Untag { segment: 4094 },
        ),
        (Key::PortAny { port: 3 }, Value::Admit { segment: s }),
        (Key::PodPort { port: 3 }, Value::Classify { segment: s }),
        (Key::PortOtherTypes { port: 3 }, Value::Admit { segment: s }),
        (Key::Guard { eth_type: 0x0806 }, Value::Drop),
        (
            Key::PortArp {
                port: 3,
                spa: Ipv4Addr::new(10, 0, 0, 2),
                sha: MAC,
            },
            Value::Admit { segment: s },
        ),
        (
            Key::PortArp {
                port: 3,
                spa: Ipv4Addr::UNSPECIFIED,
                sha: MAC,
            },
            Value::Admit { segment: s },
        ),
        (
            Key::PortIpv4 {
                port: 3,
                ip: Ipv4Addr::new(10, 0, 0, 2),
            },
            Value::Admit { segment: s },
        ),
        (
            Key::PortIpv6 {
                port: 3,
                ip: "fd00::2".parse().unwrap(),
            },
            Value::Admit { segment: s },
        ),
        (
            Key::PortIpv6 {
                port: 3,
                ip: Ipv6Addr::UNSPECIFIED,
            },
            Value::Admit { segment: s },
        ),
        (
            Key::PortIpv6LinkLocal { port: 3 },
            Value::Admit { segment: s },
        ),
        (
            Key::ToLocal {
                segment: s,
                mac: MAC,
            },
            Value::Output {
                segment: s,
                port: 3,
            },
        ),
        (
            Key::ToRemote {
                segment: s,
                mac: MAC,
            },
            Value::Tag {
                segment: s,
                tunnel: 1001,
            },
        ),
        (
            Key::Flood {
                segment: s,
                from_tunnel: false,
            },
            Value::Group {
                segment: s,
                group: flood_group(s),
            },
        ),
        (
            Key::Flood {
                segment: s,
                from_tunnel: true,
            },
            Value::Group {
                segment: s,
                group: local_flood_group(s),
            },
        ),
    ]
}

fn stats(key: &FlowKey, value: &FlowValue) -> FlowStats {
    FlowStats {
        table_id: key.table,
        duration_sec: 1,
        duration_nsec: 0,
        priority: key.priority,
        idle_timeout: 0,
        hard_timeout: 0,
        flags: FlowModFlags::default(),
        cookie: value.cookie,
        packet_count: 0,
        byte_count: 0,
        r#match: key.r#match.clone(),
        instructions: value.instructions.clone(),
    }
}

#[test]
fn every_kind_round_trips_through_the_wire_form() {
    for (k, v) in samples() {
        let (wk, wv) = (k.to_wire(), v.to_wire());
        assert_eq!(Key::from_wire(wk.clone()), k, "{wk:?}");
        assert_eq!(Value::from_wire(wv.clone()), v, "{wv:?}");
        // Already in the order a switch reports, so what we write is what we read back.
        assert_eq!(canonical_match(wk.r#match.clone()), wk.r#match);
        assert_eq!(
            canonical_instructions(wv.instructions.clone()),
            wv.instructions
        );
    }
}

#[test]
fn field_and_instruction_order_on_the_wire_does_not_matter() {
    for (k, v) in samples() {
        let (mut wk, mut wv) = (k.to_wire(), v.to_wire());
        wk.r#match.fields.reverse();
        wv.instructions.reverse();
        assert_eq!(Key::from_wire(wk), k);
        assert_eq!(Value::from_wire(wv), v);
    }
}

#[test]
fn the_wire_form_is_what_the_pipeline_always_wrote() {
    // ovs-ofctl's own syntax, one line per kind: the simulator and the OVS tests check the
    // semantics, this pins the exact form (a change here changes what every switch holds).
    let text = |k: &Key, v: &Value| crate::ovs_text::flow(&k.to_wire(), &v.to_wire()).unwrap();
    let s = samples();
    let expect = [
        "table=0,priority=0,cookie=0x5746000000000000 actions=drop",
        "table=2,priority=0,cookie=0x5746000000000000 actions=drop",
        "table=0,priority=100,cookie=0x5746000000000007,in_port=3,dl_src=02:00:00:00:00:09 \
         actions=write_metadata:0x7/0x10fff,goto_table:1",
        "table=0,priority=100,cookie=0x5746000000000ffe,in_port=1001,dl_vlan=4094 \
         actions=pop_vlan,write_metadata:0x10ffe/0x10fff,goto_table:2",
        "table=1,priority=100,cookie=0x5746000000000007,in_port=3 actions=goto_table:2",
        "table=0,priority=100,cookie=0x5746000000000007,in_port=3 \
         actions=write_metadata:0x7/0x10fff,goto_table:1",
        "table=1,priority=80,cookie=0x5746000000000007,in_port=3 actions=goto_table:2",
        "table=1,priority=90,cookie=0x5746000000000000,dl_type=0x0806 actions=drop",
        "table=1,priority=100,cookie=0x5746000000000007,in_port=3,dl_type=0x0806,\
         arp_spa=10.0.0.2,arp_sha=02:00:00:00:00:09 actions=goto_table:2",
        "table=1,priority=100,cookie=0x5746000000000007,in_port=3,dl_type=0x0806,\
         arp_spa=0.0.0.0,arp_sha=02:00:00:00:00:09 actions=goto_table:2",
        "table=1,priority=100,cookie=0x5746000000000007,in_port=3,dl_type=0x0800,\
         nw_src=10.0.0.2 actions=goto_table:2",
        "table=1,priority=100,cookie=0x5746000000000007,in_port=3,dl_type=0x86dd,\
         ipv6_src=fd00::2 actions=goto_table:2",
        "table=1,priority=100,cookie=0x5746000000000007,in_port=3,dl_type=0x86dd,\
         ipv6_src=:: actions=goto_table:2",
        "table=1,priority=100,cookie=0x5746000000000007,in_port=3,dl_type=0x86dd,\
         ipv6_src=fe80::/ffc0:: actions=goto_table:2",
        "table=2,priority=100,cookie=0x5746000000000007,metadata=0x7/0xfff,\
         dl_dst=02:00:00:00:00:09 actions=output:3",
        "table=2,priority=100,cookie=0x5746000000000007,metadata=0x7/0x10fff,\
         dl_dst=02:00:00:00:00:09 actions=push_vlan:0x8100,set_field:4103->vlan_vid,output:1001",
        "table=2,priority=50,cookie=0x5746000000000007,metadata=0x7/0x10fff,\
         dl_dst=01:00:00:00:00:00/01:00:00:00:00:00 actions=group:14",
        "table=2,priority=50,cookie=0x5746000000000007,metadata=0x10007/0x10fff,\
         dl_dst=01:00:00:00:00:00/01:00:00:00:00:00 actions=group:15",
    ];
    assert_eq!(s.len(), expect.len());
    for ((k, v), want) in s.iter().zip(expect) {
        assert_eq!(text(k, v), want);
    }
}

/// Wire flows close to ours but not exactly ours: each must stay `Other`.
#[test]
fn near_misses_stay_foreign() {
    use OxmField as F;
    let key = |table, priority, fields| FlowKey {
        table,
        priority,
        r#match: Match::new(fields),
    };
    let dst = |mask| F::EthDst { value: MAC, mask };
    let keys = [
        // a masked destination MAC
        key(
            2,
            100,
            vec![
                F::Metadata {
                    value: 7,
                    mask: Some(0xfff),
                },
                dst(Some([0xff; 6])),
            ],
        ),
        // the tunnel bit set where only the network is matched
        key(
            2,
            100,
            vec![
                F::Metadata {
                    value: 0x1_0007,
                    mask: Some(0xfff),
                },
                dst(None),
            ],
        ),
        // a mask that is neither of ours
        key(
            2,
            100,
            vec![
                F::Metadata {
                    value: 7,
                    mask: Some(0xffff),
                },
                dst(None),
            ],
        ),
        // the right match in the wrong table or at the wrong priority
        key(
            1,
            100,
            vec![
                F::Metadata {
                    value: 7,
                    mask: Some(0xfff),
                },
                dst(None),
            ],
        ),
        key(
            2,
            101,
            vec![
                F::Metadata {
                    value: 7,
                    mask: Some(0xfff),
                },
                dst(None),
            ],
        ),
        // an extra field
        key(
            0,
            100,
            vec![
                F::InPort(3),
                F::EthSrc {
                    value: MAC,
                    mask: None,
                },
                F::EthType(0x800),
            ],
        ),
        // untagged VLAN match, masked source MAC, wrong ethertype for ARP
        key(
            0,
            100,
            vec![
                F::InPort(3),
                F::VlanVid {
                    value: 7,
                    mask: None,
                },
            ],
        ),
        key(
            0,
            100,
            vec![
                F::InPort(3),
                F::EthSrc {
                    value: MAC,
                    mask: Some([0xff; 6]),
                },
            ],
        ),
        key(
            1,
            100,
            vec![
                F::InPort(3),
                F::EthType(0x0800),
                F::ArpSpa {
                    value: Ipv4Addr::LOCALHOST,
                    mask: None,
                },
                F::ArpSha {
                    value: MAC,
                    mask: None,
                },
            ],
        ),
        // some other IPv6 prefix
        key(
            1,
            100,
            vec![
                F::InPort(3),
                F::EthType(0x86dd),
                F::Ipv6Src {
                    value: "fd00::".parse().unwrap(),
                    mask: Some("ffff::".parse().unwrap()),
                },
            ],
        ),
        // a priority-0 entry with a match is not a table-miss entry
        key(0, 0, vec![F::InPort(3)]),
    ];
    for k in keys {
        assert!(matches!(Key::from_wire(k.clone()), Key::Other(_)), "{k:?}");
    }
    let value = |cookie, instructions| FlowValue {
        cookie,
        instructions,
    };
    let apply = |a: Vec<Action>| vec![Instruction::ApplyActions(a)];
    let values = [
        // not our cookie mark
        value(7, apply(vec![Action::output(3)])),
        value(0, vec![]),
        // output with a packet-in length, to a group with extra actions
        value(
            cookie(7),
            apply(vec![Action::Output {
                port: 3,
                max_len: 128,
            }]),
        ),
        value(cookie(7), apply(vec![Action::DecNwTtl, Action::Group(14)])),
        // tag with a segment other than the cookie's, or with 802.1ad
        value(cookie(7), apply(tag_with(0x8100, 8, 1001))),
        value(cookie(7), apply(tag_with(0x88a8, 7, 1001))),
        // classify into a table other than port security
        value(
            cookie(7),
            vec![
                Instruction::WriteMetadata {
                    metadata: 7,
                    mask: 0x1_0fff,
                },
                Instruction::GotoTable(2),
            ],
        ),
        value(cookie(7), vec![Instruction::GotoTable(3)]),
    ];
    for v in values {
        assert!(
            matches!(Value::from_wire(v.clone()), Value::Other(_)),
            "{v:?}"
        );
    }
}

fn tag_with(ethertype: u16, segment: u16, port: u32) -> Vec<Action> {
    vec![
        Action::PushVlan(ethertype),
        Action::SetField(OxmField::VlanVid {
            value: 0x1000 | segment,
            mask: None,
        }),
        Action::output(port),
    ]
}

#[test]
fn flood_groups_round_trip_and_foreign_groups_stay_foreign() {
    let all = Group::Flood(FloodGroup::new(7, vec![1, 2], vec![1001, 1002]));
    let local = Group::Flood(FloodGroup::new(7, vec![1, 2], vec![]));
    let empty = Group::Flood(FloodGroup::new(7, vec![], vec![]));
    for g in [&all, &local, &empty] {
        assert_eq!(&Group::from_wire(g.to_wire()), g);
    }
    // The local-only group carries no segment on the wire, so none is kept.
    assert_eq!(local, Group::Flood(FloodGroup::new(9, vec![1, 2], vec![])));
    let wire = all.to_wire();
    assert_eq!(wire.buckets[0].actions, vec![Action::output(1)]);
    assert_eq!(wire.buckets[3].actions, tag_with(0x8100, 7, 1002));

    let mut select = wire.clone();
    select.group_type = GroupType::Select;
    let mut reordered = wire.clone();
    reordered.buckets.swap(0, 3);
    let mut mixed = wire.clone();
    mixed.buckets[3] = Bucket::new(tag_with(0x8100, 8, 1002));
    let mut watched = wire.clone();
    watched.buckets[0].watch_port = 1;
    for g in [select, reordered, mixed, watched] {
        assert!(
            matches!(Group::from_wire(g.clone()), Group::Other(_)),
            "{g:?}"
        );
    }
}

fn one_flow(k: Key, v: Value) -> SwitchState {
    let mut st = SwitchState::default();
    st.flows.insert(k, v);
    st
}

#[test]
fn a_foreign_flow_read_back_is_deleted_strictly() {
    let foreign = FlowKey {
        table: 2,
        priority: 100,
        r#match: Match::new(vec![OxmField::TcpDst(80)]),
    };
    let value = FlowValue {
        cookie: 0x1234,
        instructions: vec![Instruction::GotoTable(3)],
    };
    let installed = from_readback(&[stats(&foreign, &value)], &[]);
    assert!(matches!(installed.flows.keys().next(), Some(Key::Other(_))));
    let d = diff(&installed, &SwitchState::default());
    assert!(d.flow_adds.is_empty());
    assert_eq!(d.flow_deletes.len(), 1);
    let del = &d.flow_deletes[0];
    assert_eq!(del.command, FlowModCommand::DeleteStrict);
    assert_eq!((del.table_id, del.priority), (2, 100));
    assert_eq!(del.r#match, foreign.r#match);
    assert!(del.instructions.is_empty());
}

/// The invariant the key/value split rests on: our match with someone else's instructions is
/// our key with a changed value, so the diff writes over it and deletes nothing (a strict
/// delete of the same OpenFlow identity would remove the flow just added).
#[test]
fn our_match_with_foreign_instructions_is_modified_not_deleted() {
    let key = Key::ToLocal {
        segment: 7,
        mac: MAC,
    };
    let want = Value::Output {
        segment: 7,
        port: 3,
    };
    let tampered = [
        FlowValue {
            cookie: cookie(7),
            instructions: vec![Instruction::ApplyActions(vec![
                Action::DecNwTtl,
                Action::output(9),
            ])],
        },
        // the right actions under a foreign cookie
        FlowValue {
            cookie: 0,
            ..want.to_wire()
        },
    ];
    for value in tampered {
        let installed = from_readback(&[stats(&key.to_wire(), &value)], &[]);
        let (k, v) = installed.flows.iter().next().unwrap();
        assert_eq!(k, &key);
        assert!(matches!(v, Value::Other(_)));
        let d = diff(&installed, &one_flow(key.clone(), want.clone()));
        assert!(d.flow_deletes.is_empty(), "{d:?}");
        assert_eq!(d.flow_adds.len(), 1);
        let add = &d.flow_adds[0];
        assert_eq!(add.command, FlowModCommand::Add);
        assert_eq!(add.r#match, key.to_wire().r#match);
        assert_eq!(add.instructions, want.instructions());
        assert_eq!(add.cookie, cookie(7));
    }
}

#[test]
fn a_switch_holding_exactly_our_flows_gets_no_message() {
    let mut st = SwitchState::default();
    st.flows.extend(samples());
    st.groups.insert(
        flood_group(7),
        Group::Flood(FloodGroup::new(7, vec![3], vec![1001])),
    );
    let wire = st.to_wire();
    let flows: Vec<FlowStats> = wire.flows.iter().map(|(k, v)| stats(k, v)).collect();
    let groups: Vec<_> = wire
        .groups
        .iter()
        .map(|(id, g)| weft_openflow::wire::GroupDesc {
            group_type: g.group_type,
            group_id: *id,
            buckets: g.buckets.clone(),
        })
        .collect();
    let installed = from_readback(&flows, &groups);
    assert_eq!(installed, st);
    assert!(diff(&installed, &st).is_empty());
}

/// What the desired state's memory budget rests on: a flow is a small plain map entry. A new variant with
/// a large payload would grow every flow of every switch; box it instead.
#[test]
fn a_flow_stays_small() {
    assert!(size_of::<Key>() <= 24, "Key is {} bytes", size_of::<Key>());
    assert!(
        size_of::<Value>() <= 16,
        "Value is {} bytes",
        size_of::<Value>()
    );
}
