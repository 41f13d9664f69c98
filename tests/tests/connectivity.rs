//! Reachability and isolation on a lab fabric: cross-node ping and TCP, isolation across networks
//! (unicast, ARP, broadcast), one subnet in two networks, anti-spoofing, path MTU.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use weft_tests::{Lab, drain, tcp_echo_server, tcp_roundtrip, udp_broadcast, udp_listener};

fn addr(ip: &str, port: u16) -> SocketAddr {
    format!("{ip}:{port}").parse().unwrap()
}

#[test]
fn cross_node_ping_and_tcp_within_a_network() {
    let Some(lab) = Lab::up("cross_node_ping_and_tcp", 2) else {
        return;
    };
    let t = Instant::now();
    lab.net("red", Some("10.1.0.0/24"));
    let a = lab.pod("a", "node1", "red", None);
    let b = lab.pod("b", "node2", "red", None);
    let (ip_a, ip_b) = (Lab::ip_of(&a, 0), Lab::ip_of(&b, 0));
    assert_ne!(ip_a, ip_b);
    assert!(lab.ping("a", &ip_b, 3), "a -> b across nodes");
    assert!(lab.ping("b", &ip_a, 3), "b -> a across nodes");

    // 4 MiB through a TCP echo: segments, ACKs, both directions, all across the tunnel.
    tcp_echo_server(&lab, "b", addr(&ip_b, 5001), "b", 1);
    let payload: Vec<u8> = (0..4 << 20).map(|i: u32| (i % 251) as u8).collect();
    let back = tcp_roundtrip(&lab, "a", addr(&ip_b, 5001), payload.clone()).unwrap();
    assert_eq!(&back[..2], b"b:");
    assert!(
        back[2..] == payload[..],
        "echo differs ({} bytes back)",
        back.len()
    );
    eprintln!("checks took {:.1} s", t.elapsed().as_secs_f64());
}

#[test]
fn networks_are_isolated_for_unicast_arp_and_broadcast() {
    let Some(lab) = Lab::up("isolation", 2) else {
        return;
    };
    // Same subnet on purpose: IP routing cannot explain a failure, only layer 2 isolation can.
    lab.net("red", Some("10.2.0.0/24"));
    lab.net("blue", Some("10.2.0.0/24"));
    lab.pod("r1", "node1", "red", Some("10.2.0.11/24"));
    lab.pod("r2", "node2", "red", Some("10.2.0.12/24"));
    lab.pod("b1", "node2", "blue", Some("10.2.0.21/24"));
    lab.pod("b2", "node1", "blue", Some("10.2.0.22/24"));

    // Positive controls first, so a broken fabric does not pass as "isolated".
    assert!(lab.ping("r1", "10.2.0.12", 2));
    assert!(lab.ping("b1", "10.2.0.22", 2));
    // Unicast, across nodes and on the same node.
    assert!(
        lab.unreachable("r1", "10.2.0.21", 2),
        "red -> blue across nodes"
    );
    assert!(
        lab.unreachable("r1", "10.2.0.22", 2),
        "red -> blue on one node"
    );
    assert!(
        lab.unreachable("b1", "10.2.0.12", 2),
        "blue -> red on one node"
    );

    // ARP: a red pod asking for a blue address gets no answer; asking for a red one does.
    let arp = |pod: &str, ip: &str| {
        lab.exec(pod, &["arping", "-c", "2", "-w", "2", "-I", "net1", ip])
            .status
            .success()
    };
    assert!(arp("r1", "10.2.0.12"), "ARP within red");
    assert!(
        !arp("r1", "10.2.0.21"),
        "ARP red -> blue across nodes answered"
    );
    assert!(
        !arp("r1", "10.2.0.22"),
        "ARP red -> blue on one node answered"
    );
    // ...and the blue pods never learnt a red MAC.
    let neigh =
        String::from_utf8_lossy(&lab.exec("b2", &["ip", "neigh", "show"]).stdout).into_owned();
    assert!(
        !neigh.contains("10.2.0.11") || neigh.contains("FAILED") || neigh.contains("INCOMPLETE"),
        "blue pod has a neighbour entry for a red pod: {neigh}"
    );

    // Broadcast: from r1, reaches r2 only.
    let port = 6767;
    let listeners: Vec<_> = ["r2", "b1", "b2"]
        .iter()
        .map(|p| (*p, udp_listener(&lab, p, port)))
        .collect();
    udp_broadcast(&lab, "r1", "net1", port, b"hello red");
    for (pod, sock) in &listeners {
        let got = drain(sock, Duration::from_millis(800));
        if *pod == "r2" {
            assert!(
                got.iter().any(|m| m == b"hello red"),
                "r2 missed the red broadcast"
            );
        } else {
            assert!(got.is_empty(), "{pod} (blue) got a red broadcast: {got:?}");
        }
    }
}

#[test]
fn same_subnet_and_addresses_in_two_networks_work_independently() {
    let Some(lab) = Lab::up("same_subnet", 2) else {
        return;
    };
    lab.net("red", Some("10.3.0.0/24"));
    lab.net("blue", Some("10.3.0.0/24"));
    // Identical addresses in both networks, placed crosswise on the nodes.
    lab.pod("ra", "node1", "red", Some("10.3.0.5/24"));
    lab.pod("rb", "node2", "red", Some("10.3.0.6/24"));
    lab.pod("ba", "node2", "blue", Some("10.3.0.5/24"));
    lab.pod("bb", "node1", "blue", Some("10.3.0.6/24"));
    tcp_echo_server(&lab, "rb", addr("10.3.0.6", 7000), "rb", 1);
    tcp_echo_server(&lab, "bb", addr("10.3.0.6", 7000), "bb", 1);
    let r = tcp_roundtrip(&lab, "ra", addr("10.3.0.6", 7000), b"x".to_vec()).unwrap();
    let b = tcp_roundtrip(&lab, "ba", addr("10.3.0.6", 7000), b"y".to_vec()).unwrap();
    assert_eq!(r, b"rb:x", "red's 10.3.0.6 must be rb");
    assert_eq!(b, b"bb:y", "blue's 10.3.0.6 must be bb");
    assert!(lab.ping("rb", "10.3.0.5", 2));
    assert!(lab.ping("bb", "10.3.0.5", 2));
}

#[test]
fn spoofed_mac_or_ip_gets_nothing_through_and_nobody_else_is_affected() {
    let Some(lab) = Lab::up("spoofing", 2) else {
        return;
    };
    lab.net("red", Some("10.4.0.0/24"));
    lab.pod("good", "node1", "red", Some("10.4.0.10/24"));
    lab.pod("peer", "node2", "red", Some("10.4.0.20/24"));
    lab.pod("evil", "node1", "red", Some("10.4.0.30/24"));
    lab.pod("other", "node2", "red", Some("10.4.0.40/24"));
    assert!(
        lab.ping("evil", "10.4.0.20", 2),
        "control: evil reaches peer before spoofing"
    );

    // A forged source IP (another pod's address is the nastiest case).
    lab.exec("evil", &["ip", "addr", "flush", "dev", "net1"]);
    lab.exec(
        "evil",
        &["ip", "addr", "add", "10.4.0.10/24", "dev", "net1"],
    );
    assert!(
        lab.unreachable("evil", "10.4.0.20", 3),
        "forged IP got through"
    );
    assert!(
        lab.ping("good", "10.4.0.20", 3),
        "the real owner of the IP must keep working"
    );
    assert!(lab.ping("other", "10.4.0.20", 2), "bystanders unaffected");

    // Back to its own IP, then a forged MAC.
    lab.exec("evil", &["ip", "addr", "flush", "dev", "net1"]);
    lab.exec(
        "evil",
        &["ip", "addr", "add", "10.4.0.30/24", "dev", "net1"],
    );
    assert!(
        lab.ping("evil", "10.4.0.20", 3),
        "evil with its own addresses works again"
    );
    lab.exec(
        "evil",
        &["ip", "link", "set", "net1", "address", "02:de:ad:be:ef:01"],
    );
    lab.exec("peer", &["ip", "neigh", "flush", "all"]);
    assert!(
        lab.unreachable("evil", "10.4.0.20", 3),
        "forged MAC got through"
    );
    assert!(lab.ping("good", "10.4.0.20", 2), "bystanders unaffected");
    assert!(lab.ping("other", "10.4.0.10", 2), "bystanders unaffected");
}

#[test]
fn path_mtu_largest_unfragmented_ping_passes_one_byte_more_does_not() {
    let Some(lab) = Lab::up("path_mtu", 2) else {
        return;
    };
    lab.net("red", Some("10.5.0.0/24"));
    lab.pod("a", "node1", "red", Some("10.5.0.1/24"));
    lab.pod("b", "node2", "red", Some("10.5.0.2/24"));
    let link = lab.exec("a", &["ip", "-j", "link", "show", "net1"]);
    let v: serde_json::Value = serde_json::from_slice(&link.stdout).unwrap();
    let mtu = v[0]["mtu"].as_u64().unwrap();
    // Underlay 1500 - VXLAN (50) - our 802.1Q tag (4).
    assert_eq!(mtu, 1446, "pod MTU");
    let max = (mtu - 28).to_string();
    let over = (mtu - 27).to_string();
    let ping = |size: &str| {
        lab.exec(
            "a",
            &[
                "ping", "-M", "do", "-s", size, "-c", "3", "-i", "0.2", "-W", "1", "-q", "10.5.0.2",
            ],
        )
    };
    let ok = ping(&max);
    assert!(
        ok.status.success(),
        "{max}-byte payload: {}",
        String::from_utf8_lossy(&ok.stdout)
    );
    let too_big = ping(&over);
    assert!(
        !too_big.status.success(),
        "{over}-byte payload with DF passed"
    );
    // And the other way round, through the other node's tunnel end.
    let back = lab.exec(
        "b",
        &[
            "ping", "-M", "do", "-s", &max, "-c", "3", "-i", "0.2", "-W", "1", "-q", "10.5.0.1",
        ],
    );
    assert!(back.status.success());
}
