//! Cases for messages a switch sends and Weft only parses: built as typed values, emitted by our
//! codec, and OVS must print the same field values our parser reads back (the round trip is
//! checked too, so what OVS decodes and what we decode are one value).

use weft_openflow::wire::{
    Action, AggregateStats, Bucket, BucketCounter, ControllerRole, Desc, ErrorCode, ErrorMsg,
    FeaturesReply, FlowModFlags, FlowRemoved, FlowRemovedReason, FlowStats, GroupDesc, GroupStats,
    GroupType, Instruction, MULTIPART_MORE, Match, Message, MultipartReply,
    MultipartReplyBody as P, OxmField as F, PacketIn, PacketInReason, PortDesc, PortReason,
    PortStats, PortStatus, Role, SwitchConfig, TableStats,
};

use super::messages::arp_frame;
use super::ofctl::{Case, case};

fn reply(flags: u16, body: P) -> Message {
    Message::MultipartReply(MultipartReply { flags, body })
}

pub fn port(no: u32, name: &str) -> PortDesc {
    PortDesc {
        port_no: no,
        hw_addr: [2, 0, 0, 0, 0, no as u8],
        name: name.to_string(),
        config: 0,
        state: 4,    // LIVE
        curr: 0x840, // 10GB_FD | COPPER
        advertised: 0,
        supported: 0,
        peer: 0,
        curr_speed: 10_000_000,
        max_speed: 0,
    }
}

fn flow_stats(table_id: u8, priority: u16, port: u32, out: u32) -> FlowStats {
    FlowStats {
        table_id,
        duration_sec: 12,
        duration_nsec: 500_000_000,
        priority,
        idle_timeout: 0,
        hard_timeout: 0,
        flags: FlowModFlags(0),
        cookie: 0xabc,
        packet_count: 3,
        byte_count: 180,
        r#match: Match::new(vec![F::InPort(port)]),
        instructions: vec![Instruction::ApplyActions(vec![Action::output(out)])],
    }
}

pub fn reply_cases() -> Vec<Case> {
    vec![
        case(
            "features reply",
            Message::FeaturesReply(FeaturesReply {
                datapath_id: 0x0000_0000_0000_00a1,
                n_buffers: 0,
                n_tables: 254,
                auxiliary_id: 0,
                capabilities: 0x4f,
                reserved: 0,
            }),
            &[
                "dpid:00000000000000a1",
                "n_tables:254, n_buffers:0",
                "FLOW_STATS TABLE_STATS PORT_STATS GROUP_STATS QUEUE_STATS",
            ],
        ),
        case(
            "get_config reply",
            Message::GetConfigReply(SwitchConfig {
                flags: 0,
                miss_send_len: 0xffff,
            }),
            &["frags=normal", "miss_send_len=65535"],
        ),
        case(
            "packet_in by action with match and frame",
            Message::PacketIn(PacketIn {
                buffer_id: weft_openflow::wire::NO_BUFFER,
                total_len: 42,
                reason: PacketInReason::Action,
                table_id: 2,
                cookie: 0x5,
                r#match: Match::new(vec![
                    F::InPort(3),
                    F::Metadata {
                        value: 7,
                        mask: None,
                    },
                ]),
                data: arp_frame(),
            }),
            &[
                "table_id=2",
                "cookie=0x5",
                "total_len=42",
                "in_port=3",
                "metadata=0x7",
                "(via action)",
                "data_len=42",
                "arp_spa=192.0.2.1",
            ],
        ),
        case(
            "flow_removed after idle timeout",
            Message::FlowRemoved(FlowRemoved {
                cookie: 0x9,
                priority: 100,
                reason: FlowRemovedReason::IdleTimeout,
                table_id: 1,
                duration_sec: 30,
                duration_nsec: 0,
                idle_timeout: 10,
                hard_timeout: 0,
                packet_count: 4,
                byte_count: 400,
                r#match: Match::new(vec![F::InPort(2)]),
            }),
            &[
                "priority=100,in_port=2",
                "reason=idle",
                "table_id=1",
                "cookie:0x9",
                "duration30s",
                "idle10",
                "pkts4",
                "bytes400",
            ],
        ),
        case(
            "port_status add",
            Message::PortStatus(PortStatus {
                reason: PortReason::Add,
                desc: port(3, "p3"),
            }),
            &["ADD:", "3(p3): addr:02:00:00:00:00:03", "10GB-FD COPPER"],
        ),
        case(
            "port_status link down",
            Message::PortStatus(PortStatus {
                reason: PortReason::Modify,
                desc: PortDesc {
                    state: PortDesc::STATE_LINK_DOWN,
                    ..port(4, "veth-a")
                },
            }),
            &["MOD:", "4(veth-a)", "state:      LINK_DOWN"],
        ),
        case(
            "error from a bundle (experimenter type)",
            Message::Error(ErrorMsg {
                code: ErrorCode::Experimenter {
                    exp_type: 2302, // ONFBFC_BAD_ID (2300 is UNKNOWN, 2301 EPERM)
                    experimenter: 0x4f4e_4600,
                },
                data: Message::BarrierRequest.to_bytes(3).unwrap(),
            }),
            &["OFPBFC_BAD_ID"],
        ),
        case(
            "role reply",
            Message::RoleReply(Role {
                role: ControllerRole::Equal,
                generation_id: 0,
            }),
            &["role=equal"],
        ),
        case("barrier reply", Message::BarrierReply, &[]),
        case(
            "multipart desc reply",
            reply(
                0,
                P::Desc(Desc {
                    mfr_desc: "Weft".into(),
                    hw_desc: "hw".into(),
                    sw_desc: "3.1.0".into(),
                    serial_num: "none".into(),
                    dp_desc: "br-int".into(),
                }),
            ),
            &[
                "Manufacturer: Weft",
                "Hardware: hw",
                "Software: 3.1.0",
                "Serial Num: none",
                "DP Description: br-int",
            ],
        ),
        case(
            "multipart flow reply, two entries, MORE set",
            reply(
                MULTIPART_MORE,
                P::Flow(vec![flow_stats(0, 10, 1, 2), flow_stats(4, 20, 3, 4)]),
            ),
            &[
                "flags=[more]",
                "cookie=0xabc, duration=12.500s, table=0, n_packets=3, n_bytes=180, priority=10,in_port=1 actions=output:2",
                "table=4, n_packets=3, n_bytes=180, priority=20,in_port=3 actions=output:4",
            ],
        ),
        case(
            "multipart aggregate reply",
            reply(
                0,
                P::Aggregate(AggregateStats {
                    packet_count: 11,
                    byte_count: 2200,
                    flow_count: 3,
                }),
            ),
            &["packet_count=11", "byte_count=2200", "flow_count=3"],
        ),
        case(
            "multipart table reply",
            reply(
                0,
                P::Table(vec![TableStats {
                    table_id: 0,
                    active_count: 5,
                    lookup_count: 100,
                    matched_count: 90,
                }]),
            ),
            &["table 0:", "active=5, lookup=100, matched=90"],
        ),
        case(
            "multipart port stats reply",
            reply(
                0,
                P::PortStats(vec![PortStats {
                    port_no: 3,
                    rx_packets: 10,
                    tx_packets: 20,
                    rx_bytes: 1000,
                    tx_bytes: 2000,
                    rx_dropped: 1,
                    tx_dropped: 2,
                    rx_errors: 0,
                    tx_errors: 0,
                    rx_frame_err: 0,
                    rx_over_err: 0,
                    rx_crc_err: 0,
                    collisions: 0,
                    duration_sec: 5,
                    duration_nsec: 0,
                }]),
            ),
            &[
                "port  3: rx pkts=10, bytes=1000, drop=1",
                "tx pkts=20, bytes=2000, drop=2",
                "duration=5s",
            ],
        ),
        case(
            "multipart group reply",
            reply(
                0,
                P::Group(vec![GroupStats {
                    group_id: 1,
                    ref_count: 2,
                    packet_count: 30,
                    byte_count: 3000,
                    duration_sec: 7,
                    duration_nsec: 0,
                    buckets: vec![
                        BucketCounter {
                            packet_count: 10,
                            byte_count: 1000,
                        },
                        BucketCounter {
                            packet_count: 20,
                            byte_count: 2000,
                        },
                    ],
                }]),
            ),
            &[
                "group_id=1,duration=7s,ref_count=2,packet_count=30,byte_count=3000",
                "bucket0:packet_count=10,byte_count=1000",
                "bucket1:packet_count=20,byte_count=2000",
            ],
        ),
        case(
            "multipart group desc reply",
            reply(
                0,
                P::GroupDesc(vec![GroupDesc {
                    group_type: GroupType::All,
                    group_id: 1,
                    buckets: vec![
                        Bucket::new(vec![Action::output(1)]),
                        Bucket::new(vec![Action::output(2)]),
                    ],
                }]),
            ),
            &["group_id=1,type=all,bucket=actions=output:1,bucket=actions=output:2"],
        ),
        case(
            "multipart port desc reply",
            reply(0, P::PortDesc(vec![port(1, "p1"), port(2, "p2")])),
            &[
                "1(p1): addr:02:00:00:00:00:01",
                "2(p2): addr:02:00:00:00:00:02",
                "speed: 10000 Mbps now",
            ],
        ),
    ]
}
