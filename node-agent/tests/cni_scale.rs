//! 50 ADDs in parallel on one node: all succeed with unique addresses and MACs, then 50 DELs in
//! parallel leave the node exactly as before.

mod cni_support;

use cni_support::{Node, netns_path};
use std::collections::BTreeSet;
use std::sync::Arc;

const PODS: usize = 50;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cni_fifty_parallel_adds_then_dels() {
    let Some(node) = Node::start("cni_fifty_parallel_adds_then_dels").await else {
        return;
    };
    let node = Arc::new(node);
    let before = node.snapshot();
    let pods: Vec<_> = (0..PODS).map(|_| node.pod()).collect();
    let paths: Vec<String> = pods.iter().map(netns_path).collect();
    let conf = node.conf("1.0.0", "red/red");

    let mut tasks = Vec::new();
    for (i, path) in paths.iter().enumerate() {
        let (node, path, conf) = (node.clone(), path.clone(), conf.clone());
        tasks.push(tokio::spawn(async move {
            node.cni("ADD", &format!("par{i}"), &path, "net1", &conf)
                .await
        }));
    }
    let mut ips = BTreeSet::new();
    let mut macs = BTreeSet::new();
    for t in tasks {
        let (rc, res) = t.await.unwrap();
        assert_eq!(rc, 0, "{res}");
        ips.insert(res["ips"][0]["address"].as_str().unwrap().to_string());
        macs.insert(res["interfaces"][1]["mac"].as_str().unwrap().to_string());
    }
    assert_eq!(ips.len(), PODS, "addresses unique");
    assert_eq!(macs.len(), PODS, "MACs unique");
    assert_eq!(node.ovs_ports().len(), before.ovs_ports.len() + PODS);
    assert_eq!(node.ctl.reservations().len(), PODS);
    assert!(node.ctl.reservations().values().all(|r| r.ofport.is_some()));

    let mut tasks = Vec::new();
    for (i, path) in paths.iter().enumerate() {
        let (node, path, conf) = (node.clone(), path.clone(), conf.clone());
        tasks.push(tokio::spawn(async move {
            node.cni("DEL", &format!("par{i}"), &path, "net1", &conf)
                .await
        }));
    }
    for t in tasks {
        let (rc, res) = t.await.unwrap();
        assert_eq!(rc, 0, "{res}");
    }
    assert_eq!(node.snapshot(), before);
    for p in &pods {
        assert_eq!(cni_support::links(p), ["lo".to_string()].into());
    }
}
