//! Restart safety: a restarted agent adopts its tunnels. Healthy ones keep their interface
//! index and OVS port while a ping crosses them; a broken one (wrong remote) is recreated alone,
//! a wrong MTU or a down device is fixed in place, leftovers nobody wants are removed, and
//! foreign objects are not touched. Needs root and Open vSwitch.

mod agent_support;

use agent_support::{BRIDGE, Fabric, Pod, ping, wire_pod_to_tunnel};
use std::time::Duration;
use weft_agent::tunnels::tunnel_ifname;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_adopts_healthy_repairs_broken_and_removes_leftovers() {
    let Some(mut f) = Fabric::new(
        "restart_adopts_healthy_repairs_broken_and_removes_leftovers",
        3,
    )
    .await
    else {
        return;
    };
    f.start_all().await;
    f.wait_full_mesh(&[0, 1, 2]).await;
    let url = f.url();
    let (ab, ac) = (tunnel_ifname("node-b"), tunnel_ifname("node-c"));
    let pa = Pod::new(&f.nodes[0], "pa", "10.99.0.1");
    let pb = Pod::new(&f.nodes[1], "pb", "10.99.0.2");
    let pc = Pod::new(&f.nodes[2], "pc", "10.99.0.3");
    wire_pod_to_tunnel(&f.nodes[0], &pa, "node-b");
    wire_pod_to_tunnel(&f.nodes[1], &pb, "node-a");
    wire_pod_to_tunnel(&f.nodes[2], &pc, "node-a");
    assert_eq!(ping(&pa, &pb.ip, 2, "0.2"), (2, 2));

    let a = &f.nodes[0];
    let devs_before = a.devices();
    let ports_before = a.tunnel_ports();
    let flows_before = a
        .ovs
        .ofctl(&["-O", "OpenFlow13", "dump-flows", BRIDGE])
        .unwrap();

    // Ping a -> b for ~6 s across the restart.
    let pinger = {
        let mut cmd = pa.ns.command("ping").unwrap();
        cmd.args(["-c", "60", "-i", "0.1", "-W", "2", &pb.ip]);
        std::thread::spawn(move || {
            String::from_utf8_lossy(&cmd.output().unwrap().stdout).to_string()
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    f.nodes[0].stop_agent().await;

    // While it is down: break the tunnel to c, leave a leftover tunnel of ours to a node that
    // no longer exists, and put a foreign VXLAN device and a foreign OVS port next to them.
    let a = &f.nodes[0];
    a.ns.exec(&[
        "ip",
        "link",
        "set",
        &ac,
        "type",
        "vxlan",
        "remote",
        "10.200.0.99",
    ])
    .unwrap();
    let z = tunnel_ifname("node-z");
    a.ns.exec(&[
        "ip",
        "link",
        "add",
        &z,
        "type",
        "vxlan",
        "id",
        "999",
        "local",
        "10.200.0.1",
        "remote",
        "10.200.0.50",
        "dstport",
        "4789",
        "nolearning",
    ])
    .unwrap();
    a.ns.exec(&["ip", "link", "set", &z, "alias", "weft-tunnel node-z"])
        .unwrap();
    a.ovs
        .vsctl(&[
            "add-port",
            BRIDGE,
            &z,
            "--",
            "set",
            "Port",
            &z,
            "external_ids:weft.dev/owner=tunnel",
            "external_ids:weft.dev/peer=node-z",
        ])
        .unwrap();
    a.ns.exec(&[
        "ip",
        "link",
        "add",
        "foreignvx",
        "type",
        "vxlan",
        "id",
        "998",
        "local",
        "10.200.0.1",
        "remote",
        "10.200.0.51",
        "dstport",
        "4789",
    ])
    .unwrap();
    a.ovs
        .vsctl(&[
            "add-port",
            BRIDGE,
            "foreignp",
            "--",
            "set",
            "Interface",
            "foreignp",
            "type=internal",
        ])
        .unwrap();
    let foreign_index =
        a.ns.exec(&["cat", "/sys/class/net/foreignvx/ifindex"])
            .unwrap();
    assert!(a.devices().contains_key(&z));

    f.nodes[0].start_agent(&url).await;
    let st = f.nodes[0]
        .wait_status("converged", |s| s.converged && s.applied_version.is_some())
        .await;
    assert!(st.problems.is_empty(), "{:?}", st.problems);
    f.nodes[0].wait_mesh(&["node-b", "node-c"]).await;

    let out = tokio::task::spawn_blocking(move || pinger.join().unwrap())
        .await
        .unwrap();
    assert!(
        out.contains("60 packets transmitted, 60 received"),
        "ping across the agent restart lost packets:\n{out}"
    );

    let a = &f.nodes[0];
    let devs = a.devices();
    let ports = a.tunnel_ports();
    // Healthy: same ifindex, same OVS port row and ofport.
    assert_eq!(devs[&ab], devs_before[&ab], "healthy tunnel device changed");
    assert_eq!(ports[&ab], ports_before[&ab], "healthy tunnel port changed");
    // Broken: recreated with the right remote.
    assert_eq!(devs[&ac].remote, "10.200.0.3");
    assert_ne!(
        devs[&ac].index, devs_before[&ac].index,
        "broken tunnel recreated"
    );
    // Leftover: gone, device and port. Foreign: untouched.
    assert!(!devs.contains_key(&z) && !ports.contains_key(&z));
    assert!(a.ovs.vsctl(&["get", "Port", &z, "name"]).is_err());
    assert_eq!(
        a.ns.exec(&["cat", "/sys/class/net/foreignvx/ifindex"])
            .unwrap(),
        foreign_index
    );
    assert!(
        a.ovs
            .vsctl(&["list-ports", BRIDGE])
            .unwrap()
            .lines()
            .any(|l| l == "foreignp")
    );
    // The agent never touches flows.
    assert_eq!(
        a.ovs
            .ofctl(&["-O", "OpenFlow13", "dump-flows", BRIDGE])
            .unwrap()
            .lines()
            .count(),
        flows_before.lines().count()
    );

    // The repaired tunnel carries traffic: a's pod now talks to c's.
    wire_pod_to_tunnel(&f.nodes[0], &pa, "node-c");
    assert_eq!(ping(&pa, &pc.ip, 3, "0.2"), (3, 3));

    // b: a wrong MTU and a down device are fixed in place (same ifindex and port).
    let ba = tunnel_ifname("node-a");
    let b_before = (
        f.nodes[1].devices()[&ba].clone(),
        f.nodes[1].tunnel_ports()[&ba].clone(),
    );
    f.nodes[1].stop_agent().await;
    let b = &f.nodes[1];
    b.ns.exec(&["ip", "link", "set", &ba, "mtu", "1400"])
        .unwrap();
    b.ns.exec(&["ip", "link", "set", &ba, "down"]).unwrap();
    f.nodes[1].start_agent(&url).await;
    f.nodes[1].wait_mesh(&["node-a", "node-c"]).await;
    let b = &f.nodes[1];
    let d = b.devices()[&ba].clone();
    assert_eq!((d.index, d.mtu, d.up), (b_before.0.index, 1500, true));
    assert_eq!(b.tunnel_ports()[&ba], b_before.1);
    drop((pa, pb, pc));
}
