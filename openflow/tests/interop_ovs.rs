//! Interop against a real `ovs-vswitchd` (userspace netdev datapath), started by the test in its
//! own network namespace with its own run directory and database.
//!
//! The bridge connects to our listener, negotiates 1.3; the session installs flows across several
//! tables and an ALL group in a bundle that commits atomically; a discarded bundle and a bundle with
//! a rejected message change nothing; `ovs-ofctl dump-flows/dump-groups` show exactly what we
//! installed; our flow-stats read-back (merged across MORE parts) equals what was installed;
//! killing the switch is noticed within the keepalive window.

use std::collections::BTreeSet;
use std::time::Duration;

use weft_openflow::session::{SessionConfig, SessionError, Switch, SwitchEvent, SwitchListener};
use weft_openflow::wire::{
    Action, Bucket, FlowMod, FlowStats, FlowStatsRequest, GroupMod, GroupModCommand, GroupType,
    Instruction, Match, Message, OFPVID_PRESENT, OxmField, table_no,
};
use weft_testbed::{NetNs, OvsSandbox, privileged_or_skip};

const DPID: u64 = 0x0000_00ab_cdef_0001;

/// Binds a TCP listener inside `ns`, so the switch in that namespace reaches it on its own
/// loopback.
fn listen_in(ns: &NetNs) -> std::net::TcpListener {
    ns.run_in(|| std::net::TcpListener::bind("127.0.0.1:0"))
        .expect("thread in netns")
        .expect("bind in netns")
}

fn config() -> SessionConfig {
    SessionConfig {
        echo_interval: Duration::from_millis(500),
        dead_after: Duration::from_secs(2),
        ..SessionConfig::default()
    }
}

fn mac(last: u8) -> [u8; 6] {
    [0x02, 0, 0, 0, 0, last]
}

fn with_cookie(mut f: FlowMod, cookie: u64) -> FlowMod {
    f.cookie = cookie;
    f
}

/// The pipeline-shaped flows the test installs: classify, port security, forward.
fn flows() -> Vec<FlowMod> {
    let net = 7u64;
    vec![
        with_cookie(
            FlowMod::add(
                0,
                100,
                Match::new(vec![
                    OxmField::InPort(1),
                    OxmField::EthSrc {
                        value: mac(1),
                        mask: None,
                    },
                ]),
                vec![
                    Instruction::WriteMetadata {
                        metadata: net,
                        mask: 0xffff,
                    },
                    Instruction::GotoTable(1),
                ],
            ),
            0x7_0000_0001,
        ),
        with_cookie(
            FlowMod::add(
                0,
                100,
                Match::new(vec![
                    OxmField::InPort(3),
                    OxmField::VlanVid {
                        value: OFPVID_PRESENT | 70,
                        mask: None,
                    },
                ]),
                vec![
                    Instruction::ApplyActions(vec![Action::PopVlan]),
                    Instruction::WriteMetadata {
                        metadata: net | 0x1_0000,
                        mask: 0x1_ffff,
                    },
                    Instruction::GotoTable(2),
                ],
            ),
            0x7_0000_0002,
        ),
        with_cookie(
            FlowMod::add(
                1,
                200,
                Match::new(vec![
                    OxmField::InPort(1),
                    OxmField::EthType(0x0806),
                    OxmField::ArpSpa {
                        value: "10.1.0.1".parse().unwrap(),
                        mask: None,
                    },
                    OxmField::ArpSha {
                        value: mac(1),
                        mask: None,
                    },
                ]),
                vec![Instruction::GotoTable(2)],
            ),
            0x7_0000_0003,
        ),
        with_cookie(
            FlowMod::add(
                1,
                200,
                Match::new(vec![
                    OxmField::InPort(1),
                    OxmField::EthType(0x0800),
                    OxmField::Ipv4Src {
                        value: "10.1.0.1".parse().unwrap(),
                        mask: None,
                    },
                ]),
                vec![Instruction::GotoTable(2)],
            ),
            0x7_0000_0004,
        ),
        with_cookie(
            FlowMod::add(
                2,
                300,
                Match::new(vec![
                    OxmField::Metadata {
                        value: net,
                        mask: Some(0xffff),
                    },
                    OxmField::EthDst {
                        value: mac(2),
                        mask: None,
                    },
                ]),
                vec![Instruction::ApplyActions(vec![Action::output(2)])],
            ),
            0x7_0000_0005,
        ),
        with_cookie(
            FlowMod::add(
                2,
                250,
                Match::new(vec![
                    OxmField::Metadata {
                        value: net,
                        mask: Some(0xffff),
                    },
                    OxmField::EthDst {
                        value: [1, 0, 0, 0, 0, 0],
                        mask: Some([1, 0, 0, 0, 0, 0]),
                    },
                ]),
                vec![Instruction::ApplyActions(vec![Action::Group(1)])],
            ),
            0x7_0000_0006,
        ),
    ]
}

fn group() -> GroupMod {
    GroupMod {
        command: GroupModCommand::Add,
        group_type: GroupType::All,
        group_id: 1,
        buckets: vec![
            Bucket::new(vec![Action::output(1)]),
            Bucket::new(vec![Action::output(2)]),
            Bucket::new(vec![
                Action::PushVlan(0x8100),
                Action::SetField(OxmField::VlanVid {
                    value: OFPVID_PRESENT | 70,
                    mask: None,
                }),
                Action::output(3),
            ]),
        ],
    }
}

/// `ovs-ofctl dump-flows` lines without the counters that change over time.
fn dump_flows(sb: &OvsSandbox) -> BTreeSet<String> {
    let out = sb
        .ofctl(&["-O", "OpenFlow13", "--no-stats", "dump-flows", "br0"])
        .unwrap();
    out.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("OFPST_FLOW") && !l.contains("reply"))
        .map(str::to_string)
        .collect()
}

/// A flow entry reduced to what was installed, with fields and instructions in a canonical order
/// (a switch may reorder both).
fn canonical(
    table: u8,
    priority: u16,
    cookie: u64,
    m: &Match,
    ins: &[Instruction],
) -> (u8, u16, u64, Vec<String>, Vec<String>) {
    let mut fields: Vec<String> = m.fields.iter().map(|f| format!("{f:?}")).collect();
    fields.sort();
    let mut ins: Vec<String> = ins.iter().map(|i| format!("{i:?}")).collect();
    ins.sort();
    (table, priority, cookie, fields, ins)
}

async fn wait_disconnect(sw: &mut Switch, within: Duration) -> String {
    tokio::time::timeout(within, async {
        loop {
            match sw.events.recv().await {
                Some(SwitchEvent::Disconnected { reason }) => return reason,
                Some(_) => continue,
                None => return "event channel closed".to_string(),
            }
        }
    })
    .await
    .expect("switch death not noticed within the keepalive window")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_ovs_connects_takes_bundles_and_reads_back_exactly() {
    if !privileged_or_skip("openflow interop with ovs-vswitchd") {
        return;
    }
    let ns = NetNs::new("ofi").unwrap();
    let listener = SwitchListener::from_std(listen_in(&ns), config()).unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut sb = OvsSandbox::start_in_netns(&ns).unwrap();
    sb.add_bridge_netdev("br0").unwrap();
    sb.vsctl(&[
        "set",
        "bridge",
        "br0",
        &format!("other_config:datapath-id={DPID:016x}"),
    ])
    .unwrap();
    sb.vsctl(&["set-controller", "br0", &format!("tcp:127.0.0.1:{port}")])
        .unwrap();

    let mut sw = tokio::time::timeout(Duration::from_secs(20), listener.accept_switch())
        .await
        .expect("switch never connected")
        .unwrap();
    assert_eq!(sw.datapath_id(), DPID);
    assert!(
        sw.ports.iter().any(|p| p.name == "br0"),
        "PORT_DESC lacks the bridge port: {:?}",
        sw.ports
    );
    let h = sw.handle.clone();

    // Start clean (fail_mode=secure keeps whatever is there across reconnects; a fresh db has none).
    h.batch(vec![Message::FlowMod(FlowMod::delete_by_cookie(
        table_no::ALL,
        0,
        0,
    ))])
    .await
    .unwrap()
    .into_result()
    .unwrap();

    // One atomic bundle: the group and all flows.
    let mut msgs = vec![Message::GroupMod(group())];
    msgs.extend(flows().into_iter().map(Message::FlowMod));
    h.bundle_commit(msgs).await.unwrap();

    let installed = dump_flows(&sb);
    let expected: BTreeSet<String> = [
        "cookie=0x700000001, priority=100,in_port=1,dl_src=02:00:00:00:00:01 actions=write_metadata:0x7/0xffff,goto_table:1",
        "cookie=0x700000002, priority=100,in_port=3,dl_vlan=70 actions=pop_vlan,write_metadata:0x10007/0x1ffff,goto_table:2",
        "cookie=0x700000003, table=1, priority=200,arp,in_port=1,arp_spa=10.1.0.1,arp_sha=02:00:00:00:00:01 actions=goto_table:2",
        "cookie=0x700000004, table=1, priority=200,ip,in_port=1,nw_src=10.1.0.1 actions=goto_table:2",
        "cookie=0x700000005, table=2, priority=300,metadata=0x7/0xffff,dl_dst=02:00:00:00:00:02 actions=output:2",
        "cookie=0x700000006, table=2, priority=250,metadata=0x7/0xffff,dl_dst=01:00:00:00:00:00/01:00:00:00:00:00 actions=group:1",
    ]
    .into_iter()
    .map(str::to_string)
    .collect();
    assert_eq!(
        installed, expected,
        "dump-flows differs from what we installed"
    );

    let groups = sb
        .ofctl(&["-O", "OpenFlow13", "dump-groups", "br0"])
        .unwrap();
    let group_lines: Vec<&str> = groups
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("group_id="))
        .collect();
    assert_eq!(
        group_lines,
        [
            "group_id=1,type=all,bucket=actions=output:1,bucket=actions=output:2,bucket=actions=push_vlan:0x8100,set_field:4166->vlan_vid,output:3"
        ],
        "dump-groups differs: {groups}"
    );
    assert_eq!(h.group_desc().await.unwrap()[0].buckets, group().buckets);

    // Our own read-back equals what was installed.
    let read: BTreeSet<_> = h
        .flow_stats(FlowStatsRequest::all())
        .await
        .unwrap()
        .iter()
        .map(|s: &FlowStats| {
            canonical(
                s.table_id,
                s.priority,
                s.cookie,
                &s.r#match,
                &s.instructions,
            )
        })
        .collect();
    let want: BTreeSet<_> = flows()
        .iter()
        .map(|f| {
            canonical(
                f.table_id,
                f.priority,
                f.cookie,
                &f.r#match,
                &f.instructions,
            )
        })
        .collect();
    assert_eq!(read, want);

    // A discarded bundle changes nothing.
    let extra = with_cookie(
        FlowMod::add(
            3,
            1,
            Match::default(),
            vec![Instruction::ApplyActions(vec![])],
        ),
        0x9,
    );
    h.bundle_discard(vec![Message::FlowMod(extra.clone())])
        .await
        .unwrap();
    assert_eq!(dump_flows(&sb), expected, "discarded bundle left traces");

    // A bundle with one rejected message (goto to an earlier table) applies none of its messages.
    let bad = FlowMod::add(5, 1, Match::default(), vec![Instruction::GotoTable(4)]);
    let err = h
        .bundle_commit(vec![Message::FlowMod(extra), Message::FlowMod(bad)])
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            SessionError::Rejected { index: 1, .. } | SessionError::Switch(_)
        ),
        "unexpected error: {err}"
    );
    assert_eq!(
        dump_flows(&sb),
        expected,
        "rejected bundle was partly applied"
    );

    // Enough flows that OVS must split the stats reply over several MORE parts.
    let many: Vec<Message> = (0..1500u32)
        .map(|i| {
            Message::FlowMod(with_cookie(
                FlowMod::add(
                    6,
                    10,
                    Match::new(vec![OxmField::InPort(1000 + i)]),
                    vec![Instruction::ApplyActions(vec![Action::output(2)])],
                ),
                0xbb,
            ))
        })
        .collect();
    h.batch(many).await.unwrap().into_result().unwrap();
    let mut req = FlowStatsRequest::all();
    req.table_id = 6;
    let stats = h.flow_stats(req).await.unwrap();
    assert_eq!(stats.len(), 1500);
    let ports: BTreeSet<u32> = stats
        .iter()
        .filter_map(|s| match s.r#match.fields.as_slice() {
            [OxmField::InPort(p)] => Some(*p),
            _ => None,
        })
        .collect();
    assert_eq!(ports, (1000..2500).collect());

    // Killing the switch is noticed within the keepalive window.
    sb.kill_vswitchd().unwrap();
    let reason = wait_disconnect(&mut sw, config().dead_after + Duration::from_secs(3)).await;
    assert!(!reason.is_empty());
    assert!(h.is_closed());
    assert!(matches!(h.barrier().await, Err(SessionError::Closed(_))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_switch_is_declared_dead_by_the_echo_keepalive() {
    if !privileged_or_skip("openflow keepalive against a stopped ovs-vswitchd") {
        return;
    }
    let ns = NetNs::new("ofk").unwrap();
    let listener = SwitchListener::from_std(listen_in(&ns), config()).unwrap();
    let port = listener.local_addr().unwrap().port();
    let sb = OvsSandbox::start_in_netns(&ns).unwrap();
    sb.add_bridge_netdev("br0").unwrap();
    sb.vsctl(&["set-controller", "br0", &format!("tcp:127.0.0.1:{port}")])
        .unwrap();
    let mut sw = tokio::time::timeout(Duration::from_secs(20), listener.accept_switch())
        .await
        .expect("switch never connected")
        .unwrap();
    // SIGSTOP keeps the TCP connection open but silences the switch: only echo can tell.
    let pid = sb.vswitchd_pid().expect("vswitchd running") as libc::pid_t;
    // SAFETY: plain signal delivery to the vswitchd this test started.
    let stop = |sig| unsafe { libc::kill(pid, sig) };
    assert_eq!(stop(libc::SIGSTOP), 0);
    let reason = wait_disconnect(&mut sw, config().dead_after + Duration::from_secs(3)).await;
    assert_eq!(stop(libc::SIGCONT), 0);
    assert!(reason.contains("silent"), "reason: {reason}");
}
