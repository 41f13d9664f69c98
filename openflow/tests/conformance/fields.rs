//! FLOW_MOD cases covering every OXM field, instruction and action of the codec, and every
//! FLOW_MOD command. Matches carry their prerequisites (OVS refuses `tcp_dst` without
//! `ip_proto=6`, for instance), as a controller must.

use std::net::{Ipv4Addr, Ipv6Addr};

use weft_openflow::wire::{
    Action, FlowMod, FlowModCommand, FlowModFlags, Instruction, Match, Message, OFPVID_PRESENT,
    OxmField as F, port_no,
};

use super::ofctl::{Case, case};

const MAC1: [u8; 6] = [2, 0, 0, 0, 0, 1];
const MAC2: [u8; 6] = [2, 0, 0, 0, 0, 2];

pub fn v4(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn v6(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

fn out(port: u32) -> Action {
    Action::output(port)
}

/// ADD in table 1 at priority 100 applying `actions`.
fn add(fields: Vec<F>, actions: Vec<Action>) -> Message {
    Message::FlowMod(FlowMod::add(
        1,
        100,
        Match::new(fields),
        vec![Instruction::ApplyActions(actions)],
    ))
}

fn add_insts(fields: Vec<F>, instructions: Vec<Instruction>) -> Message {
    Message::FlowMod(FlowMod::add(1, 100, Match::new(fields), instructions))
}

const IP: F = F::EthType(0x0800);
const IPV6: F = F::EthType(0x86dd);

pub fn oxm_cases() -> Vec<Case> {
    vec![
        case(
            "oxm in_port, metadata masked, eth_src exact, eth_dst masked",
            add(
                vec![
                    F::InPort(3),
                    F::Metadata {
                        value: 5,
                        mask: Some(0xff),
                    },
                    F::EthSrc {
                        value: MAC1,
                        mask: None,
                    },
                    F::EthDst {
                        value: [1, 0, 0x5e, 0, 0, 0],
                        mask: Some([0xff, 0xff, 0xff, 0x80, 0, 0]),
                    },
                ],
                vec![out(7)],
            ),
            &[
                "table:1",
                "priority=100",
                "in_port=3",
                "metadata=0x5/0xff",
                "dl_src=02:00:00:00:00:01",
                "dl_dst=01:00:5e:00:00:00/ff:ff:ff:80:00:00",
                "actions=output:7",
            ],
        ),
        case(
            "oxm eth_src masked, eth_dst exact, metadata exact",
            add(
                vec![
                    F::Metadata {
                        value: 0x1234_5678_9abc_def0,
                        mask: None,
                    },
                    F::EthSrc {
                        value: MAC1,
                        mask: Some([0xff, 0xff, 0xff, 0, 0, 0]),
                    },
                    F::EthDst {
                        value: MAC2,
                        mask: None,
                    },
                ],
                vec![out(1)],
            ),
            &[
                "metadata=0x123456789abcdef0",
                "dl_src=02:00:00:00:00:00/ff:ff:ff:00:00:00",
                "dl_dst=02:00:00:00:00:02",
            ],
        ),
        case(
            "oxm vlan_vid exact with present bit, vlan_pcp",
            add(
                vec![
                    F::VlanVid {
                        value: OFPVID_PRESENT | 5,
                        mask: None,
                    },
                    F::VlanPcp(3),
                ],
                vec![out(2)],
            ),
            &["dl_vlan=5", "dl_vlan_pcp=3"],
        ),
        case(
            "oxm vlan_vid masked: any tagged packet",
            add(
                vec![F::VlanVid {
                    value: OFPVID_PRESENT,
                    mask: Some(OFPVID_PRESENT),
                }],
                vec![out(2)],
            ),
            &["vlan_tci=0x1000/0x1000"],
        ),
        case(
            "oxm vlan_vid 0: untagged only",
            add(
                vec![F::VlanVid {
                    value: 0,
                    mask: None,
                }],
                vec![out(2)],
            ),
            &["vlan_tci=0x0000/0x1fff"],
        ),
        case(
            "oxm eth_type, ip_proto tcp, ipv4_src masked, ipv4_dst exact, tcp_src/dst",
            add(
                vec![
                    IP,
                    F::IpProto(6),
                    F::Ipv4Src {
                        value: v4("198.51.0.0"),
                        mask: Some(v4("255.255.0.0")),
                    },
                    F::Ipv4Dst {
                        value: v4("203.0.113.9"),
                        mask: None,
                    },
                    F::TcpSrc(1234),
                    F::TcpDst(80),
                ],
                vec![out(4)],
            ),
            &[
                "tcp,",
                "nw_src=198.51.0.0/16",
                "nw_dst=203.0.113.9",
                "tp_src=1234",
                "tp_dst=80",
            ],
        ),
        case(
            "oxm ipv4_dst masked (non-CIDR), ip_proto udp, udp_src/dst",
            add(
                vec![
                    IP,
                    F::IpProto(17),
                    F::Ipv4Dst {
                        value: v4("203.0.0.7"),
                        mask: Some(v4("255.0.255.255")),
                    },
                    F::UdpSrc(68),
                    F::UdpDst(67),
                ],
                vec![out(4)],
            ),
            &[
                "udp,",
                "nw_dst=203.0.0.7/255.0.255.255",
                "tp_src=68",
                "tp_dst=67",
            ],
        ),
        case(
            "oxm icmpv4 type and code",
            add(
                vec![IP, F::IpProto(1), F::Icmpv4Type(8), F::Icmpv4Code(0)],
                vec![out(4)],
            ),
            &["icmp,", "icmp_type=8", "icmp_code=0"],
        ),
        case(
            "oxm arp op, spa masked, tpa, sha, tha masked",
            add(
                vec![
                    F::EthType(0x0806),
                    F::ArpOp(1),
                    F::ArpSpa {
                        value: v4("192.0.2.0"),
                        mask: Some(v4("255.255.255.0")),
                    },
                    F::ArpTpa {
                        value: v4("192.0.2.1"),
                        mask: None,
                    },
                    F::ArpSha {
                        value: MAC1,
                        mask: None,
                    },
                    F::ArpTha {
                        value: MAC2,
                        mask: Some([0xff, 0xff, 0, 0, 0, 0]),
                    },
                ],
                vec![out(4)],
            ),
            &[
                "arp,",
                "arp_op=1",
                "arp_spa=192.0.2.0/24",
                "arp_tpa=192.0.2.1",
                "arp_sha=02:00:00:00:00:01",
                "arp_tha=02:00:00:00:00:00/ff:ff:00:00:00:00",
            ],
        ),
        case(
            "oxm ipv6_src exact, ipv6_dst masked, tcp over ipv6",
            add(
                vec![
                    IPV6,
                    F::IpProto(6),
                    F::Ipv6Src {
                        value: v6("2001:db8::1"),
                        mask: None,
                    },
                    F::Ipv6Dst {
                        value: v6("2001:db8:1::"),
                        mask: Some(v6("ffff:ffff:ffff:ffff::")),
                    },
                    F::TcpDst(443),
                ],
                vec![out(4)],
            ),
            &[
                "tcp6,",
                "ipv6_src=2001:db8::1",
                "ipv6_dst=2001:db8:1::/64",
                "tp_dst=443",
            ],
        ),
        case(
            "oxm ipv6_src masked, icmpv6 neighbour solicitation with nd_target",
            add(
                vec![
                    IPV6,
                    F::IpProto(58),
                    F::Ipv6Src {
                        value: v6("fe80::"),
                        mask: Some(v6("ffc0::")),
                    },
                    F::Icmpv6Type(135),
                    F::Icmpv6Code(0),
                    F::Ipv6NdTarget(v6("2001:db8::2")),
                ],
                vec![out(4)],
            ),
            &[
                "icmp6,",
                "ipv6_src=fe80::/10",
                "icmp_type=135",
                "icmp_code=0",
                "nd_target=2001:db8::2",
            ],
        ),
        case(
            "oxm tunnel_id masked",
            add(
                vec![F::TunnelId {
                    value: 0x500,
                    mask: Some(0xff00),
                }],
                vec![out(4)],
            ),
            &["tun_id=0x500/0xff00"],
        ),
        case(
            "oxm tunnel_id exact",
            add(
                vec![F::TunnelId {
                    value: 0x1_0000_0001,
                    mask: None,
                }],
                vec![out(4)],
            ),
            &["tun_id=0x100000001"],
        ),
    ]
}

pub fn instruction_and_action_cases() -> Vec<Case> {
    vec![
        case(
            "instructions write_metadata and goto_table",
            add_insts(
                vec![F::InPort(1)],
                vec![
                    Instruction::WriteMetadata {
                        metadata: 0x5,
                        mask: 0xff,
                    },
                    Instruction::GotoTable(2),
                ],
            ),
            &["in_port=1", "actions=write_metadata:0x5/0xff,goto_table:2"],
        ),
        case(
            "instructions clear_actions and write_actions",
            add_insts(
                vec![],
                vec![
                    Instruction::ClearActions,
                    Instruction::WriteActions(vec![Action::Group(9), out(3)]),
                ],
            ),
            &["actions=clear_actions,write_actions(group:9,output:3)"],
        ),
        case(
            "instructions meter then apply_actions",
            add_insts(
                vec![],
                vec![
                    Instruction::Meter(3),
                    Instruction::ApplyActions(vec![out(5)]),
                ],
            ),
            &["actions=meter:3,output:5"],
        ),
        case(
            "actions push_vlan, set_field vlan_vid, output",
            add(
                vec![F::InPort(2)],
                vec![
                    Action::PushVlan(0x8100),
                    Action::SetField(F::VlanVid {
                        value: OFPVID_PRESENT | 4,
                        mask: None,
                    }),
                    out(7),
                ],
            ),
            &["actions=push_vlan:0x8100,set_field:4100->vlan_vid,output:7"],
        ),
        case(
            "actions pop_vlan, set_queue, group",
            add(
                vec![F::VlanVid {
                    value: OFPVID_PRESENT | 10,
                    mask: None,
                }],
                vec![Action::PopVlan, Action::SetQueue(3), Action::Group(1)],
            ),
            &["dl_vlan=10", "actions=pop_vlan,set_queue:3,group:1"],
        ),
        case(
            "actions dec_nw_ttl, set_field eth/ipv4/tcp, output to controller with max_len",
            add(
                vec![IP, F::IpProto(6)],
                vec![
                    Action::DecNwTtl,
                    Action::SetField(F::EthDst {
                        value: MAC2,
                        mask: None,
                    }),
                    Action::SetField(F::Ipv4Src {
                        value: v4("192.0.2.5"),
                        mask: None,
                    }),
                    Action::SetField(F::TcpDst(8080)),
                    Action::Output {
                        port: port_no::CONTROLLER,
                        max_len: 128,
                    },
                ],
            ),
            &[
                "tcp",
                "dec_ttl",
                "set_field:02:00:00:00:00:02->eth_dst",
                "set_field:192.0.2.5->ip_src",
                "set_field:8080->tcp_dst",
                "CONTROLLER:128",
            ],
        ),
        case(
            "actions set_field tunnel_id, output to in_port",
            add(
                vec![F::InPort(4)],
                vec![
                    Action::SetField(F::TunnelId {
                        value: 0x42,
                        mask: None,
                    }),
                    out(port_no::IN_PORT),
                ],
            ),
            &["set_field:0x42->tun_id", "IN_PORT"],
        ),
    ]
}

/// A FLOW_MOD with everything but the command set, to show each command and field.
fn with_command(command: FlowModCommand) -> FlowMod {
    FlowMod {
        cookie: 0x5,
        cookie_mask: 0xff,
        table_id: 3,
        command,
        idle_timeout: 10,
        hard_timeout: 20,
        priority: 300,
        buffer_id: weft_openflow::wire::NO_BUFFER,
        out_port: port_no::ANY,
        out_group: weft_openflow::wire::group_no::ANY,
        flags: FlowModFlags(FlowModFlags::SEND_FLOW_REM | FlowModFlags::CHECK_OVERLAP),
        r#match: Match::new(vec![F::InPort(6)]),
        instructions: vec![Instruction::ApplyActions(vec![out(8)])],
    }
}

pub fn flow_mod_command_cases() -> Vec<Case> {
    let add = FlowMod {
        cookie_mask: 0,
        ..with_command(FlowModCommand::Add)
    };
    let delete = FlowMod {
        out_port: 8,
        instructions: vec![],
        ..with_command(FlowModCommand::Delete)
    };
    let delete_strict = FlowMod {
        out_group: 4,
        instructions: vec![],
        ..with_command(FlowModCommand::DeleteStrict)
    };
    vec![
        case(
            "flow_mod add with cookie, timeouts and flags",
            Message::FlowMod(add),
            &[
                "ADD table:3",
                "priority=300,in_port=6",
                "cookie:0x5",
                "idle:10",
                "hard:20",
                "send_flow_rem",
                "check_overlap",
                "actions=output:8",
            ],
        ),
        case(
            "flow_mod modify with cookie mask",
            Message::FlowMod(with_command(FlowModCommand::Modify)),
            &["MOD table:3", "cookie:0x5/0xff", "actions=output:8"],
        ),
        case(
            "flow_mod modify_strict",
            Message::FlowMod(with_command(FlowModCommand::ModifyStrict)),
            &["MOD_STRICT table:3", "priority=300,in_port=6"],
        ),
        case(
            "flow_mod delete by out_port",
            Message::FlowMod(delete),
            &["DEL table:3", "out_port:8", "in_port=6"],
        ),
        case(
            "flow_mod delete_strict by out_group",
            Message::FlowMod(delete_strict),
            // ofp-print does not show out_group; the round-trip tests cover it.
            &["DEL_STRICT table:3", "priority=300,in_port=6"],
        ),
        case(
            "flow_mod delete everything by cookie in all tables",
            Message::FlowMod(FlowMod::delete_by_cookie(
                weft_openflow::wire::table_no::ALL,
                0x100,
                0xf00,
            )),
            &["DEL", "cookie:0x100/0xf00"],
        ),
    ]
}
