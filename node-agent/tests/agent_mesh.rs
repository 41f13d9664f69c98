//! Agents on three node namespaces build a full mesh of VXLAN tunnels from the controller's
//! stream, traffic crosses them, and a peer that leaves loses its tunnels everywhere.
//! Needs root and Open vSwitch (skips otherwise, fails under WEFT_REQUIRE_PRIVILEGED=1).

mod agent_support;

use agent_support::{Fabric, Pod, ping, wire_pod_to_tunnel};
use weft_agent::tunnels::tunnel_ifname;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_mesh_carries_traffic_and_follows_peer_removal() {
    let Some(mut f) = Fabric::new("full_mesh_carries_traffic_and_follows_peer_removal", 3).await
    else {
        return;
    };
    f.start_all().await;
    f.wait_full_mesh(&[0, 1, 2]).await;

    // Devices carry exactly the controller's parameters and our marks.
    for (i, n) in f.nodes.iter().enumerate() {
        let devs = n.devices();
        let ports = n.tunnel_ports();
        for (j, peer) in f.nodes.iter().enumerate() {
            if i == j {
                continue;
            }
            let name = tunnel_ifname(&peer.name);
            let d = &devs[&name];
            assert_eq!(d.remote, peer.ip, "{}: {name}", n.name);
            assert_eq!(
                d.vni,
                agent_support::controller::pair_vni(4242, &n.name, &peer.name)
            );
            assert_eq!(d.mtu, 1500);
            assert_eq!(d.alias, format!("weft-tunnel {}", peer.name));
            assert_eq!(ports[&name].peer, peer.name);
        }
        let detail =
            n.ns.exec(&[
                "ip",
                "-d",
                "link",
                "show",
                &tunnel_ifname(&f.nodes[(i + 1) % 3].name),
            ])
            .unwrap();
        assert!(detail.contains("nolearning"), "{detail}");
        assert!(detail.contains("dstport 4789"), "{detail}");
        assert!(detail.contains(&format!("local {}", n.ip)), "{detail}");
    }

    // Each agent told the controller its tunnel ports with their ofports.
    for n in &f.nodes {
        let st = n
            .wait_status("reports", |s| s.converged && s.reports_sent > 0)
            .await;
        assert!(st.problems.is_empty(), "{:?}", st.problems);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let r = f.ctl.report(&n.name);
            let ok = r.len() == 2 && r.iter().all(|p| p.ofport > 0 && !p.peer_node.is_empty());
            if ok {
                for p in &r {
                    assert_eq!(p.ofport, n.ofport(&p.name));
                    assert_eq!(p.name, tunnel_ifname(&p.peer_node));
                }
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{}: report {r:?}",
                n.name
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        let m = n.metrics.render();
        assert!(
            m.contains("weft_agent_ports{kind=\"tunnel\",state=\"up\"} 2\n"),
            "{m}"
        );
        assert!(m.contains("weft_agent_controller_connected 1\n"), "{m}");
        assert!(m.contains("weft_agent_tunnels_desired 2\n"), "{m}");
    }
    let regs = f.ctl.registers();
    let a = regs.iter().find(|r| r.node_name == "node-a").unwrap();
    assert_eq!(a.underlay_ip, "10.200.0.1");
    assert_eq!(
        format!("{:016x}", a.datapath_id),
        weft_agent::bridge::datapath_id("node-a").to_string()
    );

    // Frames sent into a's tunnel to b come out of b's tunnel from a: ping across it.
    let pa = Pod::new(&f.nodes[0], "pa", "10.99.0.1");
    let pb = Pod::new(&f.nodes[1], "pb", "10.99.0.2");
    wire_pod_to_tunnel(&f.nodes[0], &pa, "node-b");
    wire_pod_to_tunnel(&f.nodes[1], &pb, "node-a");
    let (sent, got) = ping(&pa, &pb.ip, 3, "0.2");
    assert_eq!((sent, got), (3, 3), "ping a -> b through the tunnel");
    // ... and not through the tunnel to c: rewire b's pod to the tunnel towards c.
    wire_pod_to_tunnel(&f.nodes[1], &pb, "node-c");
    let (_, got) = ping(&pa, &pb.ip, 2, "0.2");
    assert_eq!(got, 0, "traffic must follow the flows, not leak");
    wire_pod_to_tunnel(&f.nodes[1], &pb, "node-a");

    // node-c leaves: its tunnels disappear on a and b; a-b keeps working untouched.
    let ab_before = f.nodes[0].devices()[&tunnel_ifname("node-b")].clone();
    f.nodes[2].stop_agent().await;
    f.ctl.remove_node("node-c");
    f.nodes[0].wait_mesh(&["node-b"]).await;
    f.nodes[1].wait_mesh(&["node-a"]).await;
    assert_eq!(
        f.nodes[0].devices()[&tunnel_ifname("node-b")],
        ab_before,
        "the a-b tunnel was not touched"
    );
    let (sent, got) = ping(&pa, &pb.ip, 3, "0.2");
    assert_eq!((sent, got), (3, 3));
    drop(pa);
    drop(pb);
}
