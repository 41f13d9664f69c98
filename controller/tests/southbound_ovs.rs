//! The controller against real Open vSwitch (issue 5 acceptance).
//!
//! Two node namespaces each run their own `ovs-vswitchd` (userspace datapath, own run directory;
//! two netdev datapaths cannot share a namespace) with one bridge; a veth pair between the bridges
//! stands in for the node-to-node tunnel (the agent's VXLAN devices are tested in node-agent). A
//! pod namespace hangs off each. The controller runs in-process on its own runtime with one
//! listening socket in each node namespace (the switch dials its own loopback); networks are
//! created through the REST router, attachments through the agent API.
//!
//! Checked: each bridge's flows equal the desired set (`ovs-ofctl diff-flows` against the desired
//! flows written in OVS's own syntax, so OVS parses both sides); a controller restart in the middle
//! of a 10 ms ping loses nothing and sends no flow deletes; a flow removed by hand comes back on
//! the next resync.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use weft_controller::node_trust::NodeTrust;

use http_body_util::BodyExt;
use tower::ServiceExt;
use weft_controller::agent_api::{FabricSettings, NodeControlService};
use weft_controller::northbound::{Api, rest};
use weft_controller::ovs_text;
use weft_controller::persist::RedbStore;
use weft_controller::pipeline::Index;
use weft_controller::southbound::{self, ReconcileOptions, SouthboundStats};
use weft_controller::store::ModelStore;
use weft_openflow::session::{SessionConfig, SwitchListener};
use weft_proto::agent::v1 as pb;
use weft_proto::agent::v1::node_control_server::NodeControl;
use weft_testbed::{NetNs, OvsSandbox, privileged_or_skip, veth_pair};

const NODES: [(&str, &str, u64); 2] = [("node-a", "wa", 0xa1), ("node-b", "wb", 0xb2)];
const TRUNK_PORT: u32 = 100;
const POD_PORT: u32 = 5;

/// One in-process controller: everything runs on its own runtime so that stopping it drops every
/// task and socket at once, as a process exit would.
struct Controller {
    rt: Option<tokio::runtime::Runtime>,
    store: Arc<ModelStore>,
    stats: Arc<SouthboundStats>,
    agents: NodeControlService,
    api: Api,
}

impl Controller {
    fn start(nodes: &[&NetNs], port: u16, state: &Path) -> Controller {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let db = RedbStore::open(state).unwrap();
        let (model, version) = db.load().unwrap();
        let store = Arc::new(ModelStore::new(model, version, Some(Box::new(db))));
        let stats = Arc::new(SouthboundStats::default());
        let session = SessionConfig {
            echo_interval: Duration::from_millis(500),
            dead_after: Duration::from_secs(3),
            ..SessionConfig::default()
        };
        // Plain TCP switches in namespaces of the test's own: the certificate checks have their
        // own tests.
        let opts = ReconcileOptions {
            resync_every: Duration::from_secs(1),
            switch_trust: NodeTrust::AnyCaller,
            ..ReconcileOptions::default()
        };
        for ns in nodes {
            let std_listener = ns
                .run_in(move || std::net::TcpListener::bind(("127.0.0.1", port)))
                .unwrap()
                .unwrap();
            let listener = {
                let _g = rt.enter();
                SwitchListener::from_std(std_listener, session.clone()).unwrap()
            };
            rt.spawn(southbound::serve(
                listener,
                store.clone(),
                opts.clone(),
                stats.clone(),
            ));
        }
        let settings = FabricSettings {
            confirm_timeout: Duration::from_secs(10),
            ..FabricSettings::default()
        };
        Controller {
            rt: Some(rt),
            agents: NodeControlService::new(store.clone(), settings).trusting(NodeTrust::AnyCaller),
            api: Api {
                store: store.clone(),
            },
            store,
            stats,
        }
    }

    fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.rt.as_ref().unwrap().block_on(f)
    }

    /// POST/GET on the northbound REST router; returns status and body.
    fn rest(&self, method: &str, uri: &str, body: &str) -> (u16, String) {
        let req = http::Request::builder()
            .method(method)
            .uri(uri)
            .header("content-type", "application/json")
            .body(axum::body::Body::from(body.to_string()))
            .unwrap();
        let router = rest::router(self.api.clone());
        self.block_on(async move {
            let resp = router.oneshot(req).await.unwrap();
            let status = resp.status().as_u16();
            let bytes = resp.into_body().collect().await.unwrap().to_bytes();
            (status, String::from_utf8_lossy(&bytes).into_owned())
        })
    }

    /// Waits until every node's switch has confirmed the current model version.
    fn wait_reconciled(&self, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let version = self.store.snapshot().version;
            let confirmed = self.store.confirmed();
            if NODES
                .iter()
                .all(|(n, _, _)| confirmed.get(*n).is_some_and(|v| *v >= version))
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "switches did not confirm version {version}: {confirmed:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the controller like a crash would: tasks and sockets dropped, nothing said to the
    /// switches. Returns once the state file is released.
    fn stop(mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_timeout(Duration::from_secs(2));
        }
    }
}

/// `ovs-ofctl diff-flows BRIDGE FILE` between what the bridge holds and the desired flows
/// of `node`; empty when they are equal.
fn diff_flows(sb: &OvsSandbox, bridge: &str, store: &ModelStore, node: &str, dir: &Path) -> String {
    let snap = store.snapshot();
    let desired = Index::new(&snap.model).switch_state(node);
    let text = ovs_text::flows(&desired).unwrap();
    let file = dir.join(format!("desired-{bridge}.txt"));
    std::fs::write(&file, text).unwrap();
    sb.ofctl(&[
        "-O",
        "OpenFlow13",
        "diff-flows",
        bridge,
        file.to_str().unwrap(),
    ])
    .unwrap_or_else(|e| format!("diff-flows failed: {e}"))
}

fn wait_until(within: Duration, what: &str, mut f: impl FnMut() -> Option<String>) {
    let deadline = Instant::now() + within;
    loop {
        match f() {
            None => return,
            Some(why) if Instant::now() > deadline => panic!("{what}: {why}"),
            Some(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

struct Pod {
    ns: NetNs,
    ip: String,
}

fn attach(
    ctl: &Controller,
    node: &str,
    host: &NetNs,
    name: &str,
    sb: &OvsSandbox,
    br: &str,
) -> Pod {
    let ns = NetNs::new(&format!("sbp{}", &name[3..])).unwrap();
    let host_if = format!("h{}{}", name, std::process::id() % 10000);
    veth_pair(&ns, "eth0", host, &host_if).unwrap();
    sb.vsctl(&[
        "add-port",
        br,
        &host_if,
        "--",
        "set",
        "interface",
        &host_if,
        &format!("ofport_request={POD_PORT}"),
    ])
    .unwrap();
    let id = weft_proto::common::v1::AttachmentId {
        container_id: format!("ctr-{name}"),
        ifname: "net1".into(),
    };
    let pod = weft_proto::common::v1::PodRef {
        namespace: "tenant".into(),
        name: name.into(),
        uid: format!("uid-{name}"),
    };
    let prep = ctl
        .block_on(
            ctl.agents
                .prepare_attachment(tonic::Request::new(pb::PrepareRequest {
                    node_name: node.into(),
                    network: "tenant/red".into(),
                    id: Some(id.clone()),
                    pod: Some(pod.clone()),
                    mac: String::new(),
                    ips: vec![],
                })),
        )
        .unwrap()
        .into_inner();
    ns.exec(&["ip", "link", "set", "eth0", "address", &prep.mac])
        .unwrap();
    ns.exec(&["ip", "addr", "add", &prep.ips[0], "dev", "eth0"])
        .unwrap();
    // The netdev datapath does not fill in checksums a veth left for offload.
    let _ = ns.exec(&["ethtool", "-K", "eth0", "tx", "off"]);
    ctl.block_on(ctl.agents.attach(tonic::Request::new(pb::AttachRequest {
        node_name: node.into(),
        network: "tenant/red".into(),
        id: Some(id),
        pod: Some(pod),
        ofport: POD_PORT,
    })))
    .unwrap_or_else(|e| {
        let log = std::fs::read_to_string(sb.rundir().join("ovs-vswitchd.log")).unwrap_or_default();
        panic!(
            "attach on {node} not confirmed: {e}\n{}\n{}",
            sb.vsctl(&["show"]).unwrap_or_default(),
            log.lines().rev().take(30).collect::<Vec<_>>().join("\n")
        )
    });
    let ip = prep.ips[0].split('/').next().unwrap().to_string();
    Pod { ns, ip }
}

#[test]
fn intents_become_exact_flows_and_a_controller_restart_loses_nothing() {
    if !privileged_or_skip("controller against real ovs-vswitchd") {
        return;
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    let tmp = std::env::temp_dir().join(format!("weft-sb-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let _cleanup = Cleanup(tmp.clone());
    let state: PathBuf = tmp.join("controller.redb");

    // Two node namespaces, a switch in each, one trunk between them.
    let mut switches = BTreeMap::new();
    for (node, br, dpid) in NODES {
        let ns = NetNs::new(&format!("sb{}", &node[5..])).unwrap();
        let sb = OvsSandbox::start_in_netns(&ns).unwrap();
        sb.add_bridge_netdev(br).unwrap();
        sb.vsctl(&[
            "set",
            "bridge",
            br,
            &format!("other_config:datapath-id={dpid:016x}"),
        ])
        .unwrap();
        switches.insert(node, (sb, br, ns));
    }
    let port = switches["node-a"]
        .2
        .run_in(|| std::net::TcpListener::bind("127.0.0.1:0").map(|l| l.local_addr()))
        .unwrap()
        .unwrap()
        .unwrap()
        .port();
    let trunk = |n: &str| format!("t{}{}", &n[5..], std::process::id() % 10000);
    veth_pair(
        &switches["node-a"].2,
        &trunk("node-a"),
        &switches["node-b"].2,
        &trunk("node-b"),
    )
    .unwrap();
    for (node, (sb, br, ns)) in &switches {
        let t = trunk(node);
        sb.vsctl(&[
            "add-port",
            br,
            &t,
            "--",
            "set",
            "interface",
            &t,
            &format!("ofport_request={TRUNK_PORT}"),
        ])
        .unwrap();
        let _ = ns.exec(&["ethtool", "-K", &t, "tx", "off"]);
    }
    let node_ns: Vec<&NetNs> = switches.values().map(|(_, _, ns)| ns).collect();

    let ctl = Controller::start(&node_ns, port, &state);
    for (node, (sb, br, _)) in &switches {
        sb.vsctl(&["set-controller", br, &format!("tcp:127.0.0.1:{port}")])
            .unwrap();
        // Reconnect fast after the controller restarts (default backoff is up to 8 s).
        sb.vsctl(&["--", "set", "controller", br, "max_backoff=1000"])
            .unwrap();
        let dpid = NODES.iter().find(|(n, _, _)| n == node).unwrap().2;
        ctl.block_on(
            ctl.agents
                .register(tonic::Request::new(pb::RegisterRequest {
                    node_name: node.to_string(),
                    underlay_ip: "192.0.2.1".into(),
                    datapath_id: dpid,
                    agent_version: "test".into(),
                })),
        )
        .unwrap();
        let peer = NODES.iter().find(|(n, _, _)| n != node).unwrap().0;
        ctl.block_on(ctl.agents.report_ports(tonic::Request::new(pb::PortReport {
            node_name: node.to_string(),
            ports: vec![pb::PortState {
                name: trunk(node),
                ofport: TRUNK_PORT as i64,
                link_state: "up".into(),
                peer_node: peer.into(),
                error: String::new(),
            }],
        })))
        .unwrap();
    }

    // Bad northbound input changes nothing; a good create works.
    let before = ctl.store.snapshot().version;
    let (code, body) = ctl.rest(
        "POST",
        "/v1/networks",
        r#"{"namespace":"tenant","name":"red","spec":{"subnet":"10.77.0.0/33"}}"#,
    );
    assert_eq!(code, 400, "{body}");
    assert_eq!(ctl.store.snapshot().version, before);
    let (code, body) = ctl.rest(
        "POST",
        "/v1/networks",
        r#"{"namespace":"tenant","name":"red","spec":{"subnet":"10.77.0.0/24"}}"#,
    );
    assert!(code == 200 || code == 201, "create: {code} {body}");

    let (sb_a, br_a, ns_a) = &switches["node-a"];
    let (sb_b, br_b, ns_b) = &switches["node-b"];
    let p1 = attach(&ctl, "node-a", ns_a, "pod1", sb_a, br_a);
    let p2 = attach(&ctl, "node-b", ns_b, "pod2", sb_b, br_b);
    ctl.wait_reconciled(Duration::from_secs(15));

    for (node, (sb, br, _)) in &switches {
        let d = diff_flows(sb, br, &ctl.store, node, &tmp);
        assert!(
            d.trim().is_empty(),
            "{node}: switch differs from the desired flows:\n{d}"
        );
        let dump = sb.ofctl(&["-O", "OpenFlow13", "dump-flows", br]).unwrap();
        assert!(
            dump.lines().count() > 8,
            "suspiciously few flows on {node}:\n{dump}"
        );
    }
    let ping = |n: u32| {
        p1.ns.exec(&[
            "ping",
            "-c",
            &n.to_string(),
            "-i",
            "0.01",
            "-W",
            "1",
            &p2.ip,
        ])
    };
    ping(3).expect("pods on one network reach each other across switches");

    // Controller restart during a 10 ms ping: zero lost, no flow deleted.
    let pinger = p1
        .ns
        .command("ping")
        .unwrap()
        .args(["-c", "400", "-i", "0.01", "-W", "1", &p2.ip])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(800));
    ctl.stop();
    std::thread::sleep(Duration::from_millis(300));
    let ctl = Controller::start(&node_ns, port, &state);
    ctl.wait_reconciled(Duration::from_secs(15));
    let out = pinger.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("400 packets transmitted, 400 received"),
        "packets lost across the controller restart:\n{text}"
    );
    assert_eq!(
        ctl.stats
            .flow_deletes_sent
            .load(std::sync::atomic::Ordering::Relaxed),
        0,
        "the restarted controller deleted flows"
    );
    assert_eq!(
        ctl.stats
            .flow_mods_sent
            .load(std::sync::atomic::Ordering::Relaxed),
        0,
        "the restarted controller changed valid flows"
    );
    assert!(
        ctl.stats
            .reconciles
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 2
    );

    // A flow removed by hand comes back on the next resync.
    let p2_mac = ctl
        .store
        .snapshot()
        .model
        .attachments
        .values()
        .find(|a| a.node == "node-b")
        .map(|a| a.mac)
        .unwrap();
    let mac = p2_mac
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":");
    sb_a.ofctl(&[
        "-O",
        "OpenFlow13",
        "del-flows",
        br_a,
        &format!("table=2,dl_dst={mac}"),
    ])
    .unwrap();
    let d = diff_flows(sb_a, br_a, &ctl.store, "node-a", &tmp);
    assert!(
        !d.trim().is_empty(),
        "the hand deletion did not show in diff-flows"
    );
    wait_until(Duration::from_secs(10), "removed flow not restored", || {
        let d = diff_flows(sb_a, br_a, &ctl.store, "node-a", &tmp);
        (!d.trim().is_empty()).then_some(d)
    });
    ping(3).expect("traffic flows again after the repair");

    // A change that concerns no switch (a new network nobody is attached to) is confirmed by
    // every switch without recomputing, and leaves the switches exact.
    let skipped = |c: &Controller| {
        c.stats
            .reconciles_skipped
            .load(std::sync::atomic::Ordering::Relaxed)
    };
    let before = skipped(&ctl);
    let (code, body) = ctl.rest(
        "POST",
        "/v1/networks",
        r#"{"namespace":"tenant","name":"blue","spec":{"subnet":"10.78.0.0/24"}}"#,
    );
    assert!(code == 200 || code == 201, "create: {code} {body}");
    ctl.wait_reconciled(Duration::from_secs(15));
    assert!(
        skipped(&ctl) >= before + switches.len() as u64,
        "switches recomputed for a change that did not concern them: {} -> {}",
        before,
        skipped(&ctl)
    );
    for (node, (sb, br, _)) in &switches {
        let d = diff_flows(sb, br, &ctl.store, node, &tmp);
        assert!(d.trim().is_empty(), "{node} after a skipped change:\n{d}");
    }
    ctl.stop();
}

/// Removes the test's temp dir, also when the test fails.
struct Cleanup(PathBuf);
impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
