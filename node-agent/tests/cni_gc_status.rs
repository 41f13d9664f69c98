//! GC (cni.dev/valid-attachments), the agent's own orphan collection, and STATUS.

mod cni_support;

use cni_support::{BRIDGE, Node, code, netns_path};
use serde_json::json;
use weft_proto::cni::ErrorCode;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cni_gc_keeps_only_valid_attachments() {
    let Some(node) = Node::start("cni_gc_keeps_only_valid_attachments").await else {
        return;
    };
    let before = node.snapshot();
    let pods: Vec<_> = (0..3).map(|_| node.pod()).collect();
    let conf = node.conf("1.1.0", "red/red");
    for (i, p) in pods.iter().enumerate() {
        assert_eq!(
            node.cni("ADD", &format!("gc{i}"), &netns_path(p), "net1", &conf)
                .await
                .0,
            0
        );
    }
    // Another network's attachment is out of this GC's scope.
    let other = node.pod();
    let l2 = node.conf("1.1.0", "red/l2");
    assert_eq!(
        node.cni("ADD", "other", &netns_path(&other), "net1", &l2)
            .await
            .0,
        0
    );

    let mut gc = conf.clone();
    gc["cni.dev/valid-attachments"] = json!([{"containerID": "gc1", "ifname": "net1"}]);
    assert_eq!(node.cni("GC", "", "", "", &gc).await.0, 0);
    let left: Vec<_> = node
        .ctl
        .reservations()
        .into_keys()
        .map(|(c, _)| c)
        .collect();
    assert_eq!(left, vec!["gc1".to_string(), "other".to_string()]);
    assert_eq!(node.ovs_ports().len(), before.ovs_ports.len() + 2);
    assert_eq!(cni_support::links(&pods[0]), ["lo".to_string()].into());

    assert_eq!(
        node.cni("DEL", "gc1", &netns_path(&pods[1]), "net1", &conf)
            .await
            .0,
        0
    );
    assert_eq!(
        node.cni("DEL", "other", &netns_path(&other), "net1", &l2)
            .await
            .0,
        0
    );
    assert_eq!(node.snapshot(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cni_agent_collects_ports_of_vanished_pods() {
    let Some(node) = Node::start("cni_agent_collects_ports_of_vanished_pods").await else {
        return;
    };
    let before = node.snapshot();
    let conf = node.conf("1.0.0", "red/red");
    let keep = node.pod();
    assert_eq!(
        node.cni("ADD", "keep", &netns_path(&keep), "net1", &conf)
            .await
            .0,
        0
    );
    let gone = node.pod();
    assert_eq!(
        node.cni("ADD", "gone", &netns_path(&gone), "net1", &conf)
            .await
            .0,
        0
    );
    drop(gone); // the pod died without a DEL
    assert_eq!(node.service().collect_orphans().await, 1);
    let left: Vec<_> = node
        .ctl
        .reservations()
        .into_keys()
        .map(|(c, _)| c)
        .collect();
    assert_eq!(left, vec!["keep".to_string()]);
    assert_eq!(node.service().collect_orphans().await, 0);
    assert_eq!(
        node.cni("DEL", "keep", &netns_path(&keep), "net1", &conf)
            .await
            .0,
        0
    );
    assert_eq!(node.snapshot(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cni_status_reports_what_add_needs() {
    let Some(node) = Node::start("cni_status_reports_what_add_needs").await else {
        return;
    };
    let conf = node.conf("1.1.0", "red/red");
    assert_eq!(
        node.cni("STATUS", "", "", "", &conf).await,
        (0, serde_json::Value::Null)
    );
    let down = node
        .cni_at("/run/weft-no-such.sock", "STATUS", "", "", "", &conf)
        .await;
    assert_eq!(
        code(&down),
        u64::from(ErrorCode::NotAvailable.value()),
        "agent down"
    );
    node.ovs.vsctl(&["del-br", BRIDGE]).unwrap();
    let out = node.cni("STATUS", "", "", "", &conf).await;
    assert_eq!(
        code(&out),
        u64::from(ErrorCode::NotAvailable.value()),
        "bridge gone: {}",
        out.1
    );
    node.ovs.add_bridge_netdev(BRIDGE).unwrap();
    assert_eq!(node.cni("STATUS", "", "", "", &conf).await.0, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cni_status_fails_without_controller() {
    let Some(mut node) = Node::start("cni_status_fails_without_controller").await else {
        return;
    };
    // Point the agent at a port nothing listens on.
    node.stop_agent().await;
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    node.ctl_addr = l.local_addr().unwrap();
    drop(l);
    node.start_agent().await;
    let conf = node.conf("1.1.0", "red/red");
    let out = node.cni("STATUS", "", "", "", &conf).await;
    assert_eq!(
        code(&out),
        u64::from(ErrorCode::NotAvailable.value()),
        "{}",
        out.1
    );
    let pod = node.pod();
    let add = node
        .cni("ADD", "no-ctl", &netns_path(&pod), "net1", &conf)
        .await;
    assert_eq!(
        code(&add),
        u64::from(ErrorCode::TryAgain.value()),
        "{}",
        add.1
    );
    assert_eq!(cni_support::links(&pod), ["lo".to_string()].into());
}
