//! The other direction: messages that `ovs-ofctl` encodes from its own text syntax must parse
//! with our codec to the typed values we expect, and our emit of those values must give OVS's
//! bytes exactly (so OVS's encoder agrees with ours field by field, padding included).

use std::net::Ipv6Addr;

use weft_openflow::wire::{
    Action, BadRequestCode, Bucket, ErrorCode, ErrorMsg, FlowMod, GroupMod, GroupModCommand,
    GroupType, Hello, Instruction, Match, Message, OFPVID_PRESENT, OxmField as F, port_no,
};

use super::fields::v4;
use super::ofctl::Ofctl;

fn v6(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

fn flow(table: u8, priority: u16, fields: Vec<F>, instructions: Vec<Instruction>) -> Message {
    Message::FlowMod(FlowMod::add(
        table,
        priority,
        Match::new(fields),
        instructions,
    ))
}

fn apply(actions: Vec<Action>) -> Vec<Instruction> {
    vec![Instruction::ApplyActions(actions)]
}

/// OXM order is the encoder's choice: compare matches as sorted lists, the rest exactly.
fn sorted(m: &Message) -> Message {
    let mut m = m.clone();
    if let Message::FlowMod(f) = &mut m {
        f.r#match.fields.sort_by_key(|x| format!("{x:?}"));
    }
    m
}

/// `(ovs-ofctl arguments, the message they must encode)`.
fn cases() -> Vec<(Vec<&'static str>, Message)> {
    let (mac8, mac9) = ([2, 0, 0, 0, 0, 8], [2, 0, 0, 0, 0, 9]);
    vec![
        (
            vec![
                "parse-flow",
                "table=1,priority=5,in_port=3,dl_src=02:00:00:00:00:01,metadata=0x5/0xff,\
                 actions=output:7",
            ],
            flow(
                1,
                5,
                vec![
                    F::InPort(3),
                    F::EthSrc {
                        value: [2, 0, 0, 0, 0, 1],
                        mask: None,
                    },
                    F::Metadata {
                        value: 5,
                        mask: Some(0xff),
                    },
                ],
                apply(vec![Action::output(7)]),
            ),
        ),
        (
            vec![
                "parse-flow",
                "priority=7,tcp,nw_src=10.0.0.0/8,tp_dst=80,\
                 actions=write_metadata:0x5/0xff,goto_table:2",
            ],
            flow(
                0,
                7,
                vec![
                    F::EthType(0x0800),
                    F::IpProto(6),
                    F::Ipv4Src {
                        value: v4("10.0.0.0"),
                        mask: Some(v4("255.0.0.0")),
                    },
                    F::TcpDst(80),
                ],
                vec![
                    Instruction::WriteMetadata {
                        metadata: 5,
                        mask: 0xff,
                    },
                    Instruction::GotoTable(2),
                ],
            ),
        ),
        (
            vec![
                "parse-flow",
                "table=2,priority=9,icmp6,ipv6_src=2001:db8::/32,icmp_type=136,icmp_code=0,\
                 nd_target=2001:db8::7,actions=meter:4,clear_actions,\
                 write_actions(set_queue:2,group:3),goto_table:5",
            ],
            flow(
                2,
                9,
                vec![
                    F::EthType(0x86dd),
                    F::IpProto(58),
                    F::Ipv6Src {
                        value: v6("2001:db8::"),
                        mask: Some(v6("ffff:ffff::")),
                    },
                    F::Icmpv6Type(136),
                    F::Icmpv6Code(0),
                    F::Ipv6NdTarget(v6("2001:db8::7")),
                ],
                vec![
                    Instruction::Meter(4),
                    Instruction::ClearActions,
                    Instruction::WriteActions(vec![Action::SetQueue(2), Action::Group(3)]),
                    Instruction::GotoTable(5),
                ],
            ),
        ),
        (
            vec![
                "parse-flow",
                "arp,dl_vlan=7,dl_vlan_pcp=2,arp_op=2,arp_spa=192.0.2.0/24,arp_tpa=192.0.2.9,\
                 arp_sha=02:00:00:00:00:08,arp_tha=02:00:00:00:00:09,tun_id=0x10/0xff,\
                 actions=pop_vlan,set_field:02:00:00:00:00:03->eth_src,output:CONTROLLER",
            ],
            flow(
                0,
                0x8000,
                vec![
                    F::TunnelId {
                        value: 0x10,
                        mask: Some(0xff),
                    },
                    F::EthType(0x0806),
                    F::VlanVid {
                        value: OFPVID_PRESENT | 7,
                        mask: None,
                    },
                    F::VlanPcp(2),
                    F::ArpOp(2),
                    F::ArpSpa {
                        value: v4("192.0.2.0"),
                        mask: Some(v4("255.255.255.0")),
                    },
                    F::ArpTpa {
                        value: v4("192.0.2.9"),
                        mask: None,
                    },
                    F::ArpSha {
                        value: mac8,
                        mask: None,
                    },
                    F::ArpTha {
                        value: mac9,
                        mask: None,
                    },
                ],
                apply(vec![
                    Action::PopVlan,
                    Action::SetField(F::EthSrc {
                        value: [2, 0, 0, 0, 0, 3],
                        mask: None,
                    }),
                    Action::Output {
                        port: port_no::CONTROLLER,
                        max_len: 0xffff,
                    },
                ]),
            ),
        ),
        (
            vec![
                "parse-flow",
                "udp,nw_dst=203.0.113.0/24,tp_src=68,tp_dst=67,\
                 actions=dec_ttl,push_vlan:0x8100,set_field:4100->vlan_vid,output:3",
            ],
            flow(
                0,
                0x8000,
                vec![
                    F::EthType(0x0800),
                    F::IpProto(17),
                    F::Ipv4Dst {
                        value: v4("203.0.113.0"),
                        mask: Some(v4("255.255.255.0")),
                    },
                    F::UdpSrc(68),
                    F::UdpDst(67),
                ],
                apply(vec![
                    Action::DecNwTtl,
                    Action::PushVlan(0x8100),
                    Action::SetField(F::VlanVid {
                        value: OFPVID_PRESENT | 4,
                        mask: None,
                    }),
                    Action::output(3),
                ]),
            ),
        ),
        (
            vec![
                "parse-flow",
                "tcp6,ipv6_dst=2001:db8::1,tp_src=22,actions=set_queue:1,output:2",
            ],
            flow(
                0,
                0x8000,
                vec![
                    F::EthType(0x86dd),
                    F::IpProto(6),
                    F::Ipv6Dst {
                        value: v6("2001:db8::1"),
                        mask: None,
                    },
                    F::TcpSrc(22),
                ],
                apply(vec![Action::SetQueue(1), Action::output(2)]),
            ),
        ),
        (
            vec![
                "parse-flow",
                "icmp,icmp_type=8,icmp_code=0,dl_dst=01:00:00:00:00:00/01:00:00:00:00:00,\
                 actions=output:1",
            ],
            flow(
                0,
                0x8000,
                vec![
                    F::EthDst {
                        value: [1, 0, 0, 0, 0, 0],
                        mask: Some([1, 0, 0, 0, 0, 0]),
                    },
                    F::EthType(0x0800),
                    F::IpProto(1),
                    F::Icmpv4Type(8),
                    F::Icmpv4Code(0),
                ],
                apply(vec![Action::output(1)]),
            ),
        ),
        (
            vec![
                "parse-group",
                "group_id=1,type=all,bucket=output:1,bucket=output:2",
            ],
            Message::GroupMod(GroupMod {
                command: GroupModCommand::Add,
                group_type: GroupType::All,
                group_id: 1,
                buckets: vec![
                    Bucket::new(vec![Action::output(1)]),
                    Bucket::new(vec![Action::output(2)]),
                ],
            }),
        ),
        (
            vec![
                "parse-group",
                "group_id=2,type=select,bucket=weight:10,output:1,\
                 bucket=weight:20,actions=push_vlan:0x8100,set_field:4100->vlan_vid,output:2",
            ],
            Message::GroupMod(GroupMod {
                command: GroupModCommand::Add,
                group_type: GroupType::Select,
                group_id: 2,
                buckets: vec![
                    Bucket {
                        weight: 10,
                        ..Bucket::new(vec![Action::output(1)])
                    },
                    Bucket {
                        weight: 20,
                        ..Bucket::new(vec![
                            Action::PushVlan(0x8100),
                            Action::SetField(F::VlanVid {
                                value: OFPVID_PRESENT | 4,
                                mask: None,
                            }),
                            Action::output(2),
                        ])
                    },
                ],
            }),
        ),
        (
            vec![
                "parse-group",
                "group_id=3,type=ff,bucket=watch_port:1,output:1,bucket=watch_port:2,output:2",
            ],
            Message::GroupMod(GroupMod {
                command: GroupModCommand::Add,
                group_type: GroupType::FastFailover,
                group_id: 3,
                buckets: vec![
                    Bucket {
                        watch_port: 1,
                        ..Bucket::new(vec![Action::output(1)])
                    },
                    Bucket {
                        watch_port: 2,
                        ..Bucket::new(vec![Action::output(2)])
                    },
                ],
            }),
        ),
        (
            vec!["encode-hello", "0x12"],
            Message::Hello(Hello::with_versions(&[0x01, 0x04])),
        ),
        (
            vec![
                "encode-error-reply",
                "OFPBRC_BAD_TYPE",
                "04 14 00 08 00 00 00 07",
            ],
            Message::Error(ErrorMsg {
                code: ErrorCode::BadRequest(BadRequestCode::BadType),
                data: vec![4, 0x14, 0, 8, 0, 0, 0, 7],
            }),
        ),
        (
            // Bundle errors on 1.3 travel as experimenter errors of the ONF id.
            vec![
                "encode-error-reply",
                "OFPBFC_BAD_ID",
                "04 14 00 08 00 00 00 07",
            ],
            Message::Error(ErrorMsg {
                code: ErrorCode::Experimenter {
                    exp_type: 2302,
                    experimenter: 0x4f4e_4600,
                },
                data: vec![4, 0x14, 0, 8, 0, 0, 0, 7],
            }),
        ),
    ]
}

/// Parses each OVS encoding, compares with the expected value, re-emits and compares bytes.
/// Fails with every mismatch at once.
pub fn check_all(o: &Ofctl) {
    let mut failures = Vec::new();
    for (args, want) in cases() {
        let bytes = match o.encode(&args) {
            Ok(b) => b,
            Err(e) => {
                failures.push(format!("{args:?}: {e}"));
                continue;
            }
        };
        let xid = u32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
        match Message::parse(&bytes) {
            Err(e) => failures.push(format!("{args:?}: our parser refuses OVS's bytes: {e}")),
            Ok((_, got)) => {
                if sorted(&got) != sorted(&want) {
                    failures.push(format!("{args:?}:\n  parsed {got:?}\n  wanted {want:?}"));
                }
                match got.to_bytes(xid) {
                    Ok(again) if again == bytes => {}
                    Ok(again) => failures.push(format!(
                        "{args:?}: re-emit differs\n  ovs {}\n  ours {}",
                        super::ofctl::hex(&bytes),
                        super::ofctl::hex(&again)
                    )),
                    Err(e) => failures.push(format!("{args:?}: re-emit failed: {e}")),
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
