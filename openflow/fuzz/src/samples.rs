//! One or more realistic instances of every message kind, every OXM field, instruction and
//! action the codec knows: the seeds the fuzzer mutates.

use std::net::{Ipv4Addr, Ipv6Addr};

use weft_openflow::Message;
use weft_openflow::wire::*;

const MAC_A: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x0a];
const MAC_B: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x0b];
const MASK_MCAST: [u8; 6] = [0x01, 0, 0, 0, 0, 0];

/// The FLOW_MOD the benchmarks use: the shape of most Weft pipeline entries.
pub fn typical_flow_mod() -> FlowMod {
    let mut fm = FlowMod::add(
        0,
        100,
        Match::new(vec![
            OxmField::InPort(3),
            OxmField::EthSrc {
                value: MAC_A,
                mask: None,
            },
            OxmField::Metadata {
                value: 0x0000_0001_0000_0000,
                mask: Some(0xffff_ffff_0000_0000),
            },
        ]),
        vec![
            Instruction::WriteMetadata {
                metadata: 0x2a,
                mask: 0xffff,
            },
            Instruction::GotoTable(1),
        ],
    );
    fm.cookie = 0x1234;
    fm
}

fn every_oxm_field() -> Vec<OxmField> {
    // Masked values carry no bits outside their mask: the codec clears those (as OVS demands),
    // and the samples must round-trip exactly.
    let v4 = Ipv4Addr::new(10, 1, 2, 3);
    let net4 = Ipv4Addr::new(10, 1, 2, 0);
    let m24 = Some(Ipv4Addr::new(255, 255, 255, 0));
    let v6 = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1);
    let net6 = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 0);
    let m64 = Some(Ipv6Addr::from(u128::MAX << 64));
    vec![
        OxmField::InPort(1),
        OxmField::Metadata {
            value: 7,
            mask: None,
        },
        OxmField::EthDst {
            value: MASK_MCAST,
            mask: Some(MASK_MCAST),
        },
        OxmField::EthSrc {
            value: MAC_A,
            mask: None,
        },
        OxmField::EthType(0x0800),
        OxmField::VlanVid {
            value: OFPVID_PRESENT | 100,
            mask: Some(0x1fff),
        },
        OxmField::VlanPcp(3),
        OxmField::IpProto(6),
        OxmField::Ipv4Src {
            value: net4,
            mask: m24,
        },
        OxmField::Ipv4Dst {
            value: v4,
            mask: None,
        },
        OxmField::TcpSrc(1234),
        OxmField::TcpDst(80),
        OxmField::UdpSrc(5353),
        OxmField::UdpDst(53),
        OxmField::Icmpv4Type(8),
        OxmField::Icmpv4Code(0),
        OxmField::ArpOp(1),
        OxmField::ArpSpa {
            value: v4,
            mask: None,
        },
        OxmField::ArpTpa {
            value: net4,
            mask: m24,
        },
        OxmField::ArpSha {
            value: MAC_A,
            mask: None,
        },
        OxmField::ArpTha {
            value: MAC_B,
            mask: Some([0xff; 6]),
        },
        OxmField::Ipv6Src {
            value: net6,
            mask: m64,
        },
        OxmField::Ipv6Dst {
            value: v6,
            mask: None,
        },
        OxmField::Icmpv6Type(135),
        OxmField::Icmpv6Code(0),
        OxmField::Ipv6NdTarget(v6),
        OxmField::TunnelId {
            value: 0x10,
            mask: Some(0xff),
        },
        OxmField::Opaque(OxmOpaque {
            class: 0x0001,
            field: 33,
            has_mask: false,
            payload: vec![0, 0, 0, 5],
        }),
    ]
}

fn every_action() -> Vec<Action> {
    vec![
        Action::Output {
            port: port_no::CONTROLLER,
            max_len: CONTROLLER_MAX_LEN_NO_BUFFER,
        },
        Action::output(2),
        Action::Group(1),
        Action::PushVlan(0x8100),
        Action::PopVlan,
        Action::SetField(OxmField::VlanVid {
            value: OFPVID_PRESENT | 7,
            mask: None,
        }),
        Action::SetField(OxmField::EthDst {
            value: MAC_B,
            mask: None,
        }),
        Action::SetQueue(4),
        Action::DecNwTtl,
        Action::Experimenter {
            experimenter: 0x2320,
            data: vec![0, 1, 2, 3, 4, 5, 6, 7],
        },
    ]
}

fn every_instruction() -> Vec<Instruction> {
    vec![
        Instruction::Meter(1),
        Instruction::ApplyActions(every_action()),
        Instruction::ClearActions,
        Instruction::WriteActions(vec![Action::output(port_no::IN_PORT)]),
        Instruction::WriteMetadata {
            metadata: 1,
            mask: 1,
        },
        Instruction::GotoTable(9),
    ]
}

fn flow_stats(i: u64) -> FlowStats {
    let fm = typical_flow_mod();
    FlowStats {
        table_id: (i % 4) as u8,
        duration_sec: i as u32,
        duration_nsec: 500,
        priority: 100 + i as u16,
        idle_timeout: 0,
        hard_timeout: 0,
        flags: FlowModFlags(FlowModFlags::SEND_FLOW_REM),
        cookie: i,
        packet_count: 10 * i,
        byte_count: 1000 * i,
        r#match: fm.r#match,
        instructions: fm.instructions,
    }
}

/// A FLOW multipart reply with `n` entries shaped like [`typical_flow_mod`].
pub fn flow_stats_reply(n: u64) -> Message {
    Message::MultipartReply(MultipartReply {
        flags: 0,
        body: MultipartReplyBody::Flow((0..n).map(flow_stats).collect()),
    })
}

fn port(no: u32, name: &str) -> PortDesc {
    PortDesc {
        port_no: no,
        hw_addr: MAC_A,
        name: name.to_string(),
        config: 0,
        state: 4,
        curr: 0x2840,
        advertised: 0,
        supported: 0,
        peer: 0,
        curr_speed: 10_000_000,
        max_speed: 0,
    }
}

/// `(name, message)` pairs covering every message kind.
pub fn messages() -> Vec<(&'static str, Message)> {
    let mut fm_all = FlowMod::add(3, 10, Match::new(every_oxm_field()), every_instruction());
    fm_all.idle_timeout = 30;
    fm_all.flags = FlowModFlags(FlowModFlags::SEND_FLOW_REM | FlowModFlags::CHECK_OVERLAP);
    let flow_req = FlowStatsRequest::all();
    let group = GroupMod {
        command: GroupModCommand::Add,
        group_type: GroupType::All,
        group_id: 1,
        buckets: vec![
            Bucket::new(vec![Action::output(1)]),
            Bucket::new(vec![Action::PushVlan(0x8100), Action::output(2)]),
        ],
    };
    let bundle_flow = Message::FlowMod(typical_flow_mod());
    vec![
        ("hello", Message::Hello(Hello::with_versions(&[1, 4]))),
        (
            "hello_unknown_elem",
            Message::Hello(Hello {
                version: 5,
                elements: vec![HelloElement::Unknown {
                    typ: 9,
                    data: vec![1, 2, 3],
                }],
            }),
        ),
        (
            "error",
            Message::Error(ErrorMsg {
                code: ErrorCode::from_wire(5, 3),
                data: vec![4, 14, 0, 8, 0, 0, 0, 1],
            }),
        ),
        (
            "error_experimenter",
            Message::Error(ErrorMsg {
                code: ErrorCode::Experimenter {
                    exp_type: 2300,
                    experimenter: 0x4f4e_4600,
                },
                data: vec![],
            }),
        ),
        ("echo_request", Message::EchoRequest(b"keepalive".to_vec())),
        ("echo_reply", Message::EchoReply(vec![])),
        (
            "experimenter",
            Message::Experimenter(Experimenter {
                experimenter: 0x2320,
                exp_type: 16,
                data: vec![1, 2, 3, 4],
            }),
        ),
        ("features_request", Message::FeaturesRequest),
        (
            "features_reply",
            Message::FeaturesReply(FeaturesReply {
                datapath_id: 0xa,
                n_buffers: 0,
                n_tables: 254,
                auxiliary_id: 0,
                capabilities: 0x4f,
                reserved: 0,
            }),
        ),
        ("get_config_request", Message::GetConfigRequest),
        (
            "get_config_reply",
            Message::GetConfigReply(SwitchConfig {
                flags: 0,
                miss_send_len: 128,
            }),
        ),
        (
            "set_config",
            Message::SetConfig(SwitchConfig {
                flags: 0,
                miss_send_len: 0xffff,
            }),
        ),
        (
            "packet_in",
            Message::PacketIn(PacketIn {
                buffer_id: NO_BUFFER,
                total_len: 60,
                reason: PacketInReason::Action,
                table_id: 2,
                cookie: 9,
                r#match: Match::new(vec![OxmField::InPort(1)]),
                data: vec![0xff; 60],
            }),
        ),
        (
            "flow_removed",
            Message::FlowRemoved(FlowRemoved {
                cookie: 1,
                priority: 5,
                reason: FlowRemovedReason::IdleTimeout,
                table_id: 0,
                duration_sec: 30,
                duration_nsec: 0,
                idle_timeout: 30,
                hard_timeout: 0,
                packet_count: 2,
                byte_count: 120,
                r#match: Match::new(vec![OxmField::EthType(0x0806)]),
            }),
        ),
        (
            "port_status",
            Message::PortStatus(PortStatus {
                reason: PortReason::Modify,
                desc: port(1, "veth-a"),
            }),
        ),
        (
            "packet_out",
            Message::PacketOut(PacketOut {
                buffer_id: NO_BUFFER,
                in_port: port_no::CONTROLLER,
                actions: vec![Action::output(port_no::TABLE)],
                data: vec![0xaa; 42],
            }),
        ),
        ("flow_mod_typical", Message::FlowMod(typical_flow_mod())),
        ("flow_mod_all_fields", Message::FlowMod(fm_all)),
        (
            "flow_mod_delete",
            Message::FlowMod(FlowMod::delete_by_cookie(table_no::ALL, 0x10, u64::MAX)),
        ),
        ("group_mod", Message::GroupMod(group)),
        (
            "port_mod",
            Message::PortMod(PortMod {
                port_no: 1,
                hw_addr: MAC_A,
                config: 1,
                mask: 1,
                advertise: 0,
            }),
        ),
        (
            "table_mod",
            Message::TableMod(TableMod {
                table_id: 0,
                config: 3,
            }),
        ),
        (
            "meter_mod",
            Message::MeterMod(MeterMod {
                command: MeterModCommand::Add,
                flags: 1 | 4,
                meter_id: 1,
                bands: vec![
                    MeterBand::Drop {
                        rate: 1000,
                        burst_size: 100,
                    },
                    MeterBand::DscpRemark {
                        rate: 500,
                        burst_size: 50,
                        prec_level: 1,
                    },
                ],
            }),
        ),
        (
            "mp_req_desc",
            Message::MultipartRequest(MultipartRequest::new(MultipartRequestBody::Desc)),
        ),
        (
            "mp_req_flow",
            Message::MultipartRequest(MultipartRequest::new(MultipartRequestBody::Flow(
                flow_req.clone(),
            ))),
        ),
        (
            "mp_req_aggregate",
            Message::MultipartRequest(MultipartRequest::new(MultipartRequestBody::Aggregate(
                flow_req,
            ))),
        ),
        (
            "mp_req_port_stats",
            Message::MultipartRequest(MultipartRequest::new(MultipartRequestBody::PortStats {
                port_no: port_no::ANY,
            })),
        ),
        (
            "mp_req_group",
            Message::MultipartRequest(MultipartRequest::new(MultipartRequestBody::Group {
                group_id: group_no::ALL,
            })),
        ),
        (
            "mp_req_port_desc",
            Message::MultipartRequest(MultipartRequest::new(MultipartRequestBody::PortDesc)),
        ),
        (
            "mp_reply_desc",
            Message::MultipartReply(MultipartReply {
                flags: 0,
                body: MultipartReplyBody::Desc(Desc {
                    mfr_desc: "Nicira, Inc.".into(),
                    hw_desc: "Open vSwitch".into(),
                    sw_desc: "3.1.0".into(),
                    serial_num: "None".into(),
                    dp_desc: "br-int".into(),
                }),
            }),
        ),
        ("mp_reply_flow", flow_stats_reply(3)),
        (
            "mp_reply_aggregate",
            Message::MultipartReply(MultipartReply {
                flags: 0,
                body: MultipartReplyBody::Aggregate(AggregateStats {
                    packet_count: 1,
                    byte_count: 2,
                    flow_count: 3,
                }),
            }),
        ),
        (
            "mp_reply_table",
            Message::MultipartReply(MultipartReply {
                flags: MULTIPART_MORE,
                body: MultipartReplyBody::Table(vec![TableStats {
                    table_id: 0,
                    active_count: 5,
                    lookup_count: 100,
                    matched_count: 90,
                }]),
            }),
        ),
        (
            "mp_reply_port_stats",
            Message::MultipartReply(MultipartReply {
                flags: 0,
                body: MultipartReplyBody::PortStats(vec![PortStats {
                    port_no: 1,
                    rx_packets: 1,
                    tx_packets: 2,
                    rx_bytes: 3,
                    tx_bytes: 4,
                    rx_dropped: 0,
                    tx_dropped: 0,
                    rx_errors: 0,
                    tx_errors: 0,
                    rx_frame_err: 0,
                    rx_over_err: 0,
                    rx_crc_err: 0,
                    collisions: 0,
                    duration_sec: 9,
                    duration_nsec: 1,
                }]),
            }),
        ),
        (
            "mp_reply_group",
            Message::MultipartReply(MultipartReply {
                flags: 0,
                body: MultipartReplyBody::Group(vec![GroupStats {
                    group_id: 1,
                    ref_count: 1,
                    packet_count: 5,
                    byte_count: 500,
                    duration_sec: 3,
                    duration_nsec: 0,
                    buckets: vec![BucketCounter {
                        packet_count: 5,
                        byte_count: 500,
                    }],
                }]),
            }),
        ),
        (
            "mp_reply_group_desc",
            Message::MultipartReply(MultipartReply {
                flags: 0,
                body: MultipartReplyBody::GroupDesc(vec![GroupDesc {
                    group_type: GroupType::Select,
                    group_id: 2,
                    buckets: vec![Bucket::new(vec![Action::output(3)])],
                }]),
            }),
        ),
        (
            "mp_reply_port_desc",
            Message::MultipartReply(MultipartReply {
                flags: 0,
                body: MultipartReplyBody::PortDesc(vec![port(1, "p1"), port(0xfffffffe, "br")]),
            }),
        ),
        ("barrier_request", Message::BarrierRequest),
        ("barrier_reply", Message::BarrierReply),
        (
            "role_request",
            Message::RoleRequest(Role {
                role: ControllerRole::Master,
                generation_id: 1,
            }),
        ),
        (
            "role_reply",
            Message::RoleReply(Role {
                role: ControllerRole::Equal,
                generation_id: 0,
            }),
        ),
        (
            "bundle_open",
            Message::BundleControl(BundleControl::new(
                1,
                BundleCtrlType::OpenRequest,
                BundleFlags::ATOMIC | BundleFlags::ORDERED,
            )),
        ),
        (
            "bundle_commit_props",
            Message::BundleControl(BundleControl {
                properties: vec![BundleProperty {
                    typ: 0xffff,
                    data: vec![0, 0, 0x23, 0x20, 0, 0, 0, 1],
                }],
                ..BundleControl::new(1, BundleCtrlType::CommitRequest, 0)
            }),
        ),
        (
            "bundle_add",
            Message::BundleAdd(BundleAdd {
                bundle_id: 1,
                flags: BundleFlags(BundleFlags::ATOMIC),
                message: Box::new(bundle_flow),
                properties: vec![],
            }),
        ),
    ]
}
