//! Every bad ADD gets its CNI error code and leaves nothing behind: no link in the node or the
//! pod namespace, no OVS port, no reservation in the controller, no record, no IPAM lease.

mod cni_support;

use cni_support::controller::{Knobs, Net};
use cni_support::{Node, code, links, netns_path};
use serde_json::{Value, json};
use std::time::Duration;
use weft_proto::cni::ErrorCode;

/// Runs ADD and checks the code and that node and pod look exactly as before.
async fn refused(node: &Node, pod: &weft_testbed::NetNs, cid: &str, conf: &Value, want: ErrorCode) {
    let before = node.snapshot();
    let pod_before = links(pod);
    let out = node.cni("ADD", cid, &netns_path(pod), "net1", conf).await;
    assert_eq!(code(&out), u64::from(want.value()), "{cid}: {}", out.1);
    assert_eq!(node.snapshot(), before, "{cid}: node changed");
    assert_eq!(links(pod), pod_before, "{cid}: pod changed");
}

fn with(mut conf: Value, patch: Value) -> Value {
    for (k, v) in patch.as_object().unwrap() {
        conf[k] = v.clone();
    }
    conf
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cni_refusals_leave_nothing_behind() {
    let Some(node) = Node::start("cni_refusals_leave_nothing_behind").await else {
        return;
    };
    node.ctl.add_network(
        "blue/blue",
        Net {
            subnet: Some(("10.78.0.0".parse().unwrap(), 24)),
            allowed: vec!["blue".into()],
            mtu: 0,
        },
    );
    let pod = node.pod();
    let red = node.conf("1.0.0", "red/red");

    refused(
        &node,
        &pod,
        "unknown-net",
        &node.conf("1.0.0", "red/nope"),
        ErrorCode::UnknownNetwork,
    )
    .await;
    refused(
        &node,
        &pod,
        "wrong-ns",
        &node.conf("1.0.0", "blue/blue"),
        ErrorCode::NamespaceNotAllowed,
    )
    .await;
    let outside = with(
        red.clone(),
        json!({"runtimeConfig": {"ips": ["10.99.0.5/24"]}}),
    );
    refused(&node, &pod, "outside", &outside, ErrorCode::AddressRefused).await;

    // A first pod holds a MAC and an IP; a second asking for either is refused.
    let holder = node.pod();
    let held = with(
        red.clone(),
        json!({"runtimeConfig": {"mac": "02:00:00:00:aa:01", "ips": ["10.77.0.60/24"]}}),
    );
    assert_eq!(
        node.cni("ADD", "holder", &netns_path(&holder), "net1", &held)
            .await
            .0,
        0
    );
    let same_mac = with(
        red.clone(),
        json!({"runtimeConfig": {"mac": "02:00:00:00:aa:01"}}),
    );
    refused(&node, &pod, "dup-mac", &same_mac, ErrorCode::AddressInUse).await;
    let same_ip = with(
        red.clone(),
        json!({"runtimeConfig": {"ips": ["10.77.0.60/24"]}}),
    );
    refused(&node, &pod, "dup-ip", &same_ip, ErrorCode::AddressInUse).await;
    assert_eq!(
        node.cni("DEL", "holder", &netns_path(&holder), "net1", &held)
            .await
            .0,
        0
    );

    // The interface name is taken inside the pod.
    pod.exec(&[
        "ip", "link", "add", "net1", "type", "veth", "peer", "name", "net1p",
    ])
    .unwrap();
    refused(&node, &pod, "if-taken", &red, ErrorCode::InterfaceExists).await;
    pod.exec(&["ip", "link", "del", "net1"]).unwrap();

    // Delegated IPAM that fails: missing plugin, and host-local with an unusable config.
    let missing = with(red.clone(), json!({"ipam": {"type": "no-such-ipam"}}));
    refused(&node, &pod, "ipam-missing", &missing, ErrorCode::IpamFailed).await;
    let broken = with(red.clone(), json!({"ipam": {"type": "host-local"}}));
    if std::path::Path::new("/usr/lib/cni/host-local").exists() {
        refused(&node, &pod, "ipam-broken", &broken, ErrorCode::IpamFailed).await;
    }

    // Netns that does not exist.
    let before = node.snapshot();
    let out = node
        .cni("ADD", "no-ns", "/run/netns/weft-no-such-ns", "net1", &red)
        .await;
    assert_eq!(code(&out), u64::from(ErrorCode::InvalidEnvironment.value()));
    assert_eq!(node.snapshot(), before);

    // Plugin-side refusals never reach the agent.
    let out = node
        .cni("ADD", "c", &netns_path(&pod), "much-too-long-ifname", &red)
        .await;
    assert_eq!(code(&out), u64::from(ErrorCode::InvalidEnvironment.value()));
    assert_eq!(node.snapshot(), before);

    // Agent unreachable.
    let out = node
        .cni_at(
            "/run/weft-no-such.sock",
            "ADD",
            "c",
            &netns_path(&pod),
            "net1",
            &red,
        )
        .await;
    assert_eq!(code(&out), u64::from(ErrorCode::TryAgain.value()));
    assert_eq!(node.snapshot(), before);

    // Pod is still just loopback, and every refused attempt left the state dir empty.
    assert_eq!(links(&pod), ["lo".to_string()].into());
    assert_eq!(node.records(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cni_controller_failures_roll_back_every_step() {
    let Some(mut node) = Node::start("cni_controller_failures_roll_back_every_step").await else {
        return;
    };
    let pod = node.pod();
    let red = node.conf("1.1.0", "red/red");

    node.ctl.set_knobs(Knobs {
        prepare_unavailable: true,
        ..Default::default()
    });
    refused(&node, &pod, "ctl-busy", &red, ErrorCode::TryAgain).await;

    node.ctl.set_knobs(Knobs {
        attach_fail: Some("switch said no".into()),
        ..Default::default()
    });
    refused(
        &node,
        &pod,
        "attach-fails",
        &red,
        ErrorCode::ControllerError,
    )
    .await;

    // Flows never confirmed: bounded wait, then 105 and a full rollback.
    node.stop_agent().await;
    node.attach_timeout = Duration::from_millis(500);
    node.start_agent().await;
    node.ctl.set_knobs(Knobs {
        attach_delay: Some(Duration::from_secs(3)),
        ..Default::default()
    });
    refused(
        &node,
        &pod,
        "attach-slow",
        &red,
        ErrorCode::FlowsNotConfirmed,
    )
    .await;

    // Delegated IPAM (host-local) whose lease must be returned when a later step fails.
    if std::path::Path::new("/usr/lib/cni/host-local").exists() {
        let leases = tempfile::tempdir().unwrap();
        let conf = with(
            node.conf("1.0.0", "red/l2"),
            json!({"ipam": {"type": "host-local", "dataDir": leases.path(),
                            "ranges": [[{"subnet": "10.79.0.0/24"}]]}}),
        );
        node.ctl.set_knobs(Knobs {
            attach_fail: Some("nope".into()),
            ..Default::default()
        });
        refused(
            &node,
            &pod,
            "ipam-rollback",
            &conf,
            ErrorCode::ControllerError,
        )
        .await;
        let lease_files = walk(leases.path());
        assert!(
            !lease_files.iter().any(|f| f.contains("10.79.0.")),
            "host-local lease left behind: {lease_files:?}"
        );
        // And with a healthy controller the delegated address is what the pod gets.
        node.ctl.set_knobs(Knobs::default());
        let out = node
            .cni("ADD", "ipam-ok", &netns_path(&pod), "net1", &conf)
            .await;
        assert_eq!(out.0, 0, "{}", out.1);
        let addr = out.1["ips"][0]["address"].as_str().unwrap().to_string();
        assert!(
            addr.starts_with("10.79.0.") && addr.ends_with("/24"),
            "{addr}"
        );
        let ip = addr.trim_end_matches("/24").to_string();
        let show = pod
            .exec(&["ip", "-o", "addr", "show", "dev", "net1"])
            .unwrap();
        assert!(show.contains(&addr), "{show}");
        assert!(walk(leases.path()).iter().any(|f| f.ends_with(&ip)));
        assert_eq!(
            node.cni("DEL", "ipam-ok", &netns_path(&pod), "net1", &conf)
                .await
                .0,
            0
        );
        assert!(
            !walk(leases.path()).iter().any(|f| f.ends_with(&ip)),
            "lease released by DEL"
        );
    }
    assert_eq!(links(&pod), ["lo".to_string()].into());
}

fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        if e.path().is_dir() {
            out.extend(walk(&e.path()));
        } else {
            out.push(e.path().display().to_string());
        }
    }
    out
}
