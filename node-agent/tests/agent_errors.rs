//! Bad input and failures around the agent: peers with unusable addresses, tunnel names taken by
//! foreign links and ports, an OVSDB server restart and a bridge deleted behind the agent's back.
//! Each is reported (link status, port report to the controller, metrics), changes nothing it
//! should not, and is retried. Needs root and Open vSwitch.

mod agent_support;

use agent_support::{BRIDGE, Fabric, Pod, ping, wire_pod_to_tunnel};
use std::time::Duration;
use weft_agent::tunnels::tunnel_ifname;
use weft_proto::agent::v1 as pb;

fn peer(name: &str, ip: &str, vni: u32) -> pb::Peer {
    pb::Peer {
        node_name: name.into(),
        underlay_ip: ip.into(),
        vni,
        vxlan_port: 4789,
        mtu: 1500,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_peers_and_foreign_names_are_reported_and_retried() {
    let Some(mut f) = Fabric::new("bad_peers_and_foreign_names_are_reported_and_retried", 2).await
    else {
        return;
    };
    let (ac, av6, ajunk) = (
        tunnel_ifname("node-c"),
        tunnel_ifname("v6-node"),
        tunnel_ifname("junk"),
    );
    // On a: a foreign link holding the name of the tunnel to node-c.
    let a = &f.nodes[0];
    a.ns.exec(&["ip", "link", "add", &ac, "type", "bridge"])
        .unwrap();
    // ... and a foreign VXLAN device holding the VNI and port of the tunnel to node-d.
    a.ns.exec(&[
        "ip",
        "link",
        "add",
        "fvx80",
        "type",
        "vxlan",
        "id",
        "80",
        "local",
        "10.200.0.1",
        "remote",
        "10.200.0.80",
        "dstport",
        "4789",
    ])
    .unwrap();
    let ad = tunnel_ifname("node-d");
    let foreign_index =
        a.ns.exec(&["cat", &format!("/sys/class/net/{ac}/ifindex")])
            .unwrap();
    // On b: a foreign OVS port (a patch port: no kernel link) holding the name of the tunnel
    // to node-a.
    let b = &f.nodes[1];
    let ba = tunnel_ifname("node-a");
    b.ovs.add_bridge_netdev(BRIDGE).unwrap();
    b.ovs
        .vsctl(&[
            "add-port",
            BRIDGE,
            &ba,
            "--",
            "set",
            "Interface",
            &ba,
            "type=patch",
            "options:peer=nowhere",
        ])
        .unwrap();
    let foreign_port = b.ovs.vsctl(&["get", "Port", &ba, "_uuid"]).unwrap();
    f.ctl.update(|m| {
        m.extra.insert(
            "node-a".into(),
            vec![
                peer("node-c", "10.200.0.3", 77),
                peer("v6-node", "fd00::5", 78),
                peer("junk", "not-an-ip", 79),
                peer("node-d", "10.200.0.4", 80),
            ],
        );
    });
    f.start_all().await;
    f.nodes[0].wait_mesh(&["node-b"]).await;

    let st = f.nodes[0]
        .wait_status("problems", |s| s.problems.len() == 4)
        .await;
    assert!(!st.converged);
    assert_eq!(st.problems[&ac].0, "node-c");
    assert!(
        st.problems[&ac].1.contains("foreign bridge link"),
        "{:?}",
        st.problems
    );
    assert!(st.problems[&av6].1.contains("IPv6"), "{:?}", st.problems);
    assert!(
        st.problems[&ajunk].1.contains("not an IP address"),
        "{:?}",
        st.problems
    );
    assert!(
        st.problems[&ad].1.contains("VNI 80 on UDP port 4789"),
        "{:?}",
        st.problems
    );
    // The foreign link is untouched.
    let a = &f.nodes[0];
    assert_eq!(
        a.ns.exec(&["cat", &format!("/sys/class/net/{ac}/ifindex")])
            .unwrap(),
        foreign_index
    );
    assert!(
        a.ns.exec(&["ip", "-d", "link", "show", &ac])
            .unwrap()
            .contains("bridge")
    );
    // The controller hears about all of it next to the working tunnel.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let r = f.ctl.report("node-a");
        let by_name = |n: &str| r.iter().find(|p| p.name == n).cloned();
        let ok = by_name(&ac).is_some_and(|p| p.peer_node == "node-c" && !p.error.is_empty())
            && by_name(&av6).is_some_and(|p| p.ofport == -1 && p.error.contains("IPv6"))
            && by_name(&ajunk).is_some()
            && by_name(&tunnel_ifname("node-b"))
                .is_some_and(|p| p.ofport > 0 && p.error.is_empty());
        if ok {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "report {r:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let m = a.metrics.render();
    assert!(!m.contains("weft_agent_reconcile_errors_total 0\n"), "{m}");

    // b: conflict reported, the foreign port untouched, no tunnel to a.
    let st = f.nodes[1]
        .wait_status("conflict", |s| !s.problems.is_empty())
        .await;
    assert!(
        st.problems[&ba].1.contains("foreign OVS port"),
        "{:?}",
        st.problems
    );
    assert_eq!(
        f.nodes[1]
            .ovs
            .vsctl(&["get", "Port", &ba, "_uuid"])
            .unwrap(),
        foreign_port
    );
    assert!(f.nodes[1].devices().is_empty());

    // The foreign objects go away: the retries build the missing tunnels.
    f.nodes[0].ns.exec(&["ip", "link", "del", &ac]).unwrap();
    f.nodes[0].ns.exec(&["ip", "link", "del", "fvx80"]).unwrap();
    f.nodes[1].ovs.vsctl(&["del-port", BRIDGE, &ba]).unwrap();
    f.nodes[0].wait_mesh(&["node-b", "node-c", "node-d"]).await;
    f.nodes[1].wait_mesh(&["node-a"]).await;
    let st = f.nodes[0]
        .wait_status("only bad peers left", |s| s.problems.len() == 2)
        .await;
    assert!(!st.problems.contains_key(&ac) && !st.problems.contains_key(&ad));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ovsdb_restart_and_deleted_bridge_are_repaired() {
    let Some(mut f) = Fabric::new("ovsdb_restart_and_deleted_bridge_are_repaired", 2).await else {
        return;
    };
    f.start_all().await;
    f.wait_full_mesh(&[0, 1]).await;
    let pa = Pod::new(&f.nodes[0], "pa", "10.99.0.1");
    let pb = Pod::new(&f.nodes[1], "pb", "10.99.0.2");
    wire_pod_to_tunnel(&f.nodes[0], &pa, "node-b");
    wire_pod_to_tunnel(&f.nodes[1], &pb, "node-a");
    assert_eq!(ping(&pa, &pb.ip, 2, "0.2"), (2, 2));
    let ab = tunnel_ifname("node-b");
    let dev_before = f.nodes[0].devices()[&ab].clone();
    let port_before = f.nodes[0].tunnel_ports()[&ab].clone();

    // ovsdb-server dies and comes back: the agent reconnects, re-reads, and changes nothing.
    f.nodes[0].ovs.restart_ovsdb().unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    f.nodes[0].wait_mesh(&["node-b"]).await;
    assert_eq!(f.nodes[0].tunnel_ports()[&ab], port_before);

    // Someone deletes the bridge: the agent recreates it and re-plugs the same kernel device.
    f.nodes[0].ovs.vsctl(&["del-br", BRIDGE]).unwrap();
    f.nodes[0].wait_mesh(&["node-b"]).await;
    let a = &f.nodes[0];
    assert_eq!(a.devices()[&ab], dev_before, "kernel device kept");
    assert_ne!(
        a.tunnel_ports()[&ab].uuid,
        port_before.uuid,
        "port re-created"
    );
    let fail_mode = a
        .ovs
        .vsctl(&["get", "Bridge", BRIDGE, "fail_mode"])
        .unwrap();
    assert_eq!(fail_mode.trim(), "secure");
    // With the pod port back and flows re-installed (the controller's job), traffic flows.
    a.ovs.vsctl(&["add-port", BRIDGE, &pa.port]).unwrap();
    wire_pod_to_tunnel(&f.nodes[0], &pa, "node-b");
    assert_eq!(ping(&pa, &pb.ip, 3, "0.2"), (3, 3));
}
