//! Cases for the messages a controller sends: control messages, group/port/table/meter
//! modifications, multipart requests and bundles.

use weft_openflow::wire::{
    Action, BadRequestCode, Bucket, BundleAdd, BundleControl, BundleCtrlType, BundleFlags,
    BundleProperty, ControllerRole, ErrorCode, ErrorMsg, FlowMod, FlowModFailedCode,
    FlowStatsRequest, GroupMod, GroupModCommand, GroupType, Hello, Instruction, Match, Message,
    MeterBand, MeterMod, MeterModCommand, MultipartRequest, MultipartRequestBody as Q,
    OxmField as F, PacketOut, PortMod, Role, SwitchConfig, TableMod, group_no, port_no,
};

use super::ofctl::{Case, case};

/// A broadcast ARP request from 02:00:00:00:00:01 (192.0.2.1) for 192.0.2.2.
pub fn arp_frame() -> Vec<u8> {
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&[2, 0, 0, 0, 0, 1, 0x08, 0x06]);
    f.extend_from_slice(&[0, 1, 0x08, 0, 6, 4, 0, 1]);
    f.extend_from_slice(&[2, 0, 0, 0, 0, 1, 192, 0, 2, 1]);
    f.extend_from_slice(&[0, 0, 0, 0, 0, 0, 192, 0, 2, 2]);
    f
}

fn bucket(weight: u16, watch_port: u32, actions: Vec<Action>) -> Bucket {
    Bucket {
        weight,
        watch_port,
        watch_group: group_no::ANY,
        actions,
    }
}

fn group(command: GroupModCommand, group_type: GroupType, id: u32, b: Vec<Bucket>) -> Message {
    Message::GroupMod(GroupMod {
        command,
        group_type,
        group_id: id,
        buckets: b,
    })
}

pub fn control_cases() -> Vec<Case> {
    // The failed request an ERROR echoes: the first bytes of a FLOW_MOD.
    let failed = Message::BarrierRequest.to_bytes(0x77).unwrap();
    vec![
        case(
            "hello with version bitmap 1.0 and 1.3",
            Message::Hello(Hello::with_versions(&[0x01, 0x04])),
            &["version bitmap: 0x01, 0x04"],
        ),
        case(
            "error bad_request/bad_type with data",
            Message::Error(ErrorMsg {
                code: ErrorCode::BadRequest(BadRequestCode::BadType),
                data: failed.clone(),
            }),
            &["OFPBRC_BAD_TYPE", "OFPT_BARRIER_REQUEST", "xid=0x77"],
        ),
        case(
            "error flow_mod_failed/table_full",
            Message::Error(ErrorMsg {
                code: ErrorCode::FlowModFailed(FlowModFailedCode::TableFull),
                data: failed,
            }),
            &["OFPFMFC_TABLE_FULL"],
        ),
        case(
            "echo request with payload",
            Message::EchoRequest(b"weft".to_vec()),
            &["4 bytes of payload"],
        ),
        case(
            "echo reply with payload",
            Message::EchoReply(vec![1, 2, 3]),
            &["3 bytes of payload"],
        ),
        case("features request", Message::FeaturesRequest, &[]),
        case("get_config request", Message::GetConfigRequest, &[]),
        case(
            "set_config",
            Message::SetConfig(SwitchConfig {
                flags: 0,
                miss_send_len: 128,
            }),
            &["frags=normal", "miss_send_len=128"],
        ),
        case("barrier request", Message::BarrierRequest, &[]),
        case(
            "role request master",
            Message::RoleRequest(Role {
                role: ControllerRole::Master,
                generation_id: 5,
            }),
            // OVS 3.1 calls the master role "primary".
            &["role=primary", "generation_id=5"],
        ),
        case(
            "packet_out from the controller with an ARP frame",
            Message::PacketOut(PacketOut {
                buffer_id: weft_openflow::wire::NO_BUFFER,
                in_port: port_no::CONTROLLER,
                actions: vec![Action::output(3)],
                data: arp_frame(),
            }),
            &[
                "in_port=CONTROLLER",
                "actions=output:3",
                "data_len=42",
                "arp,",
                "dl_src=02:00:00:00:00:01",
                "arp_spa=192.0.2.1,arp_tpa=192.0.2.2",
            ],
        ),
    ]
}

pub fn modification_cases() -> Vec<Case> {
    vec![
        case(
            "group_mod add all with two buckets",
            group(
                GroupModCommand::Add,
                GroupType::All,
                1,
                vec![
                    Bucket::new(vec![Action::output(1)]),
                    Bucket::new(vec![Action::output(2)]),
                ],
            ),
            &["ADD group_id=1,type=all,bucket=actions=output:1,bucket=actions=output:2"],
        ),
        case(
            "group_mod add select with weights",
            group(
                GroupModCommand::Add,
                GroupType::Select,
                2,
                vec![
                    bucket(10, port_no::ANY, vec![Action::output(1)]),
                    bucket(20, port_no::ANY, vec![Action::output(2)]),
                ],
            ),
            &[
                "group_id=2,type=select",
                "bucket=weight:10,actions=output:1",
                "bucket=weight:20,actions=output:2",
            ],
        ),
        case(
            "group_mod modify indirect",
            group(
                GroupModCommand::Modify,
                GroupType::Indirect,
                3,
                vec![Bucket::new(vec![
                    Action::PushVlan(0x8100),
                    Action::output(4),
                ])],
            ),
            &[
                "MOD group_id=3,type=indirect",
                "bucket=actions=push_vlan:0x8100,output:4",
            ],
        ),
        case(
            "group_mod add fast_failover with watch ports",
            group(
                GroupModCommand::Add,
                GroupType::FastFailover,
                4,
                vec![
                    bucket(0, 1, vec![Action::output(1)]),
                    bucket(0, 2, vec![Action::output(2)]),
                ],
            ),
            &[
                "group_id=4,type=ff",
                "bucket=watch_port:1,actions=output:1",
                "bucket=watch_port:2,actions=output:2",
            ],
        ),
        case(
            "group_mod delete",
            group(GroupModCommand::Delete, GroupType::All, 4, vec![]),
            &["DEL group_id=4"],
        ),
        case(
            "port_mod: set port 3 down",
            Message::PortMod(PortMod {
                port_no: 3,
                hw_addr: [2, 0, 0, 0, 0, 3],
                config: 1,
                mask: 1,
                advertise: 0,
            }),
            &[
                "port: 3",
                "addr:02:00:00:00:00:03",
                "config: PORT_DOWN",
                "mask:   PORT_DOWN",
            ],
        ),
        case(
            "table_mod",
            Message::TableMod(TableMod {
                table_id: 2,
                config: 0,
            }),
            &["table_id=2"],
        ),
        case(
            "meter_mod add with drop and dscp_remark bands",
            Message::MeterMod(MeterMod {
                command: MeterModCommand::Add,
                flags: 1 | 4 | 8, // KBPS | BURST | STATS
                meter_id: 1,
                bands: vec![
                    MeterBand::Drop {
                        rate: 1000,
                        burst_size: 100,
                    },
                    MeterBand::DscpRemark {
                        rate: 2000,
                        burst_size: 200,
                        prec_level: 1,
                    },
                ],
            }),
            &[
                "ADD meter=1 kbps burst stats bands=",
                "type=drop rate=1000 burst_size=100",
                "type=dscp_remark rate=2000 burst_size=200 prec_level=1",
            ],
        ),
        case(
            "meter_mod delete",
            Message::MeterMod(MeterMod {
                command: MeterModCommand::Delete,
                flags: 0,
                meter_id: 7,
                bands: vec![],
            }),
            &["DEL meter=7"],
        ),
    ]
}

fn mp(body: Q) -> Message {
    Message::MultipartRequest(MultipartRequest::new(body))
}

pub fn multipart_request_cases() -> Vec<Case> {
    let flows = FlowStatsRequest {
        table_id: 1,
        out_port: 3,
        r#match: Match::new(vec![F::InPort(2)]),
        ..FlowStatsRequest::all()
    };
    // ofp-print shows table, out_port and match of these requests, not the cookie.
    let aggregate = FlowStatsRequest {
        table_id: 2,
        cookie: 0x10,
        cookie_mask: 0xf0,
        r#match: Match::new(vec![F::EthType(0x0806)]),
        ..FlowStatsRequest::all()
    };
    vec![
        case("multipart desc request", mp(Q::Desc), &[]),
        case(
            "multipart flow request for table 1, in_port=2, out_port 3",
            mp(Q::Flow(flows)),
            &["table=1 out_port=3 in_port=2"],
        ),
        case(
            "multipart aggregate request for arp in table 2",
            mp(Q::Aggregate(aggregate)),
            &["table=2 arp"],
        ),
        case("multipart table request", mp(Q::Table), &[]),
        case(
            "multipart port stats request for port 3",
            mp(Q::PortStats { port_no: 3 }),
            &["port_no=3"],
        ),
        case(
            "multipart port stats request for all ports",
            mp(Q::PortStats {
                port_no: port_no::ANY,
            }),
            &["port_no=ANY"],
        ),
        case(
            "multipart group request",
            mp(Q::Group { group_id: 5 }),
            &["group_id=5"],
        ),
        case("multipart group desc request", mp(Q::GroupDesc), &[]),
        case("multipart port desc request", mp(Q::PortDesc), &[]),
    ]
}

pub fn bundle_cases() -> Vec<Case> {
    let flags = BundleFlags::ATOMIC | BundleFlags::ORDERED;
    let ctrl = |t| Message::BundleControl(BundleControl::new(1, t, flags));
    let flow = FlowMod::add(
        2,
        50,
        Match::new(vec![F::InPort(1)]),
        vec![Instruction::GotoTable(3)],
    );
    vec![
        case(
            "bundle open request",
            ctrl(BundleCtrlType::OpenRequest),
            &["bundle_id=0x1", "type=OPEN_REQUEST", "flags=atomic ordered"],
        ),
        // Properties are not printed by OVS; the message must still decode cleanly.
        case(
            "bundle open request with a property",
            Message::BundleControl(BundleControl {
                properties: vec![BundleProperty {
                    typ: 0xffff,
                    data: vec![0, 0, 0x23, 0x20, 0, 0, 0, 1],
                }],
                ..BundleControl::new(9, BundleCtrlType::OpenRequest, BundleFlags::ATOMIC)
            }),
            &["bundle_id=0x9", "type=OPEN_REQUEST", "flags=atomic"],
        ),
        case(
            "bundle close request",
            ctrl(BundleCtrlType::CloseRequest),
            &["type=CLOSE_REQUEST"],
        ),
        case(
            "bundle commit request",
            ctrl(BundleCtrlType::CommitRequest),
            &["type=COMMIT_REQUEST"],
        ),
        case(
            "bundle discard request",
            ctrl(BundleCtrlType::DiscardRequest),
            &["type=DISCARD_REQUEST"],
        ),
        case(
            "bundle add with a flow_mod",
            Message::BundleAdd(BundleAdd {
                bundle_id: 1,
                flags: BundleFlags(flags),
                message: Box::new(Message::FlowMod(flow)),
                properties: vec![],
            }),
            &[
                "bundle_id=0x1",
                "flags=atomic ordered",
                "OFPT_FLOW_MOD (OF1.3)",
                "ADD table:2 priority=50,in_port=1 actions=goto_table:3",
            ],
        ),
        case(
            "bundle add with a group_mod",
            Message::BundleAdd(BundleAdd {
                bundle_id: 2,
                flags: BundleFlags(BundleFlags::ATOMIC),
                message: Box::new(group(
                    GroupModCommand::Add,
                    GroupType::All,
                    8,
                    vec![Bucket::new(vec![Action::output(1)])],
                )),
                properties: vec![],
            }),
            &[
                "bundle_id=0x2",
                "OFPT_GROUP_MOD (OF1.3)",
                "group_id=8,type=all,bucket=actions=output:1",
            ],
        ),
        // OVS 3.1 does not look at bundle properties (it prints the same without them); this
        // checks that the padded inner message before them still decodes.
        case(
            "bundle add with an unaligned packet_out and a property after its padding",
            Message::BundleAdd(BundleAdd {
                bundle_id: 3,
                flags: BundleFlags(BundleFlags::ATOMIC),
                message: Box::new(Message::PacketOut(PacketOut {
                    buffer_id: weft_openflow::wire::NO_BUFFER,
                    in_port: port_no::CONTROLLER,
                    actions: vec![Action::output(2)],
                    data: arp_frame(),
                })),
                properties: vec![BundleProperty {
                    typ: 0xffff,
                    data: vec![0, 0, 0x23, 0x20, 0, 0, 0, 1],
                }],
            }),
            &[
                "bundle_id=0x3",
                "OFPT_PACKET_OUT (OF1.3)",
                "in_port=CONTROLLER actions=output:2 data_len=42",
            ],
        ),
    ]
}
