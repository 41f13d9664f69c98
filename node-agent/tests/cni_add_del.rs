//! CNI ADD / CHECK / DEL against a real OVS sandbox, with traffic between two pods, and DEL in
//! every awkward situation (netns gone, interface gone, twice, after an agent restart).

mod cni_support;

use cni_support::{BRIDGE, Node, code, links, netns_path};
use serde_json::json;
use weft_agent::cni::host_ifname;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cni_add_check_del_with_traffic() {
    let Some(node) = Node::start("cni_add_check_del_with_traffic").await else {
        return;
    };
    let before = node.snapshot();
    let (p1, p2) = (node.pod(), node.pod());
    let conf = node.conf("1.0.0", "red/red");
    let r1 = node.cni("ADD", "c1", &netns_path(&p1), "net1", &conf).await;
    assert_eq!(r1.0, 0, "{}", r1.1);
    let mut conf2 = conf.clone();
    conf2["runtimeConfig"] = json!({"mac": "02:aa:bb:cc:dd:02", "ips": ["10.77.0.50/24"]});
    conf2["mtu"] = json!(1300);
    let r2 = node
        .cni("ADD", "c2", &netns_path(&p2), "eth9", &conf2)
        .await;
    assert_eq!(r2.0, 0, "{}", r2.1);

    // Result: host end + pod end, address with gateway on the pod end.
    let res = &r1.1;
    assert_eq!(res["cniVersion"], "1.0.0");
    assert_eq!(res["interfaces"][0]["name"], host_ifname("c1", "net1"));
    assert_eq!(res["interfaces"][1]["name"], "net1");
    assert_eq!(res["interfaces"][1]["sandbox"], netns_path(&p1));
    assert_eq!(res["ips"][0]["interface"], 1);
    assert_eq!(res["ips"][0]["gateway"], "10.77.0.1");
    let ip1 = res["ips"][0]["address"].as_str().unwrap().to_string();
    assert_eq!(r2.1["ips"][0]["address"], "10.77.0.50/24");
    assert_eq!(r2.1["interfaces"][1]["mac"], "02:aa:bb:cc:dd:02");

    // The pod ends as configured.
    let show = p2
        .exec(&["ip", "-o", "addr", "show", "dev", "eth9"])
        .unwrap();
    assert!(show.contains("10.77.0.50/24"), "{show}");
    let link = p2
        .exec(&["ip", "-o", "link", "show", "dev", "eth9"])
        .unwrap();
    assert!(
        link.contains("mtu 1300") && link.contains("02:aa:bb:cc:dd:02") && link.contains("UP"),
        "{link}"
    );
    let link1 = p1
        .exec(&["ip", "-o", "link", "show", "dev", "net1"])
        .unwrap();
    assert!(
        link1.contains("mtu 1400"),
        "network MTU from the controller: {link1}"
    );

    // OVS ports with external_ids; the controller saw the ofport.
    let port = host_ifname("c2", "eth9");
    assert!(node.ovs_ports().contains(&port));
    let ids = node.port_ids(&port);
    assert_eq!(
        ids.get("weft.dev/container-id").map(String::as_str),
        Some("c2")
    );
    assert_eq!(ids.get("weft.dev/ifname").map(String::as_str), Some("eth9"));
    assert_eq!(
        ids.get("weft.dev/network").map(String::as_str),
        Some("red/red")
    );
    assert_eq!(
        ids.get("weft.dev/pod-namespace").map(String::as_str),
        Some("red")
    );
    assert_eq!(
        ids.get("weft.dev/pod-uid").map(String::as_str),
        Some("uid-c2")
    );
    let res2 = node.ctl.reservations();
    let ofport: u32 = node
        .ovs
        .vsctl(&["get", "Interface", &port, "ofport"])
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(
        res2[&("c2".to_string(), "eth9".to_string())].ofport,
        Some(ofport)
    );

    // Traffic: the double installs no flows, so give the bridge NORMAL switching.
    node.ovs
        .ofctl(&["-O", "OpenFlow13", "add-flow", BRIDGE, "actions=NORMAL"])
        .unwrap();
    let rx = p2
        .run_in(|| std::net::UdpSocket::bind("10.77.0.50:7777"))
        .unwrap()
        .unwrap();
    rx.set_read_timeout(Some(std::time::Duration::from_millis(500)))
        .unwrap();
    let src = ip1.split('/').next().unwrap().to_string();
    let tx = p1
        .run_in(move || std::net::UdpSocket::bind((src.as_str(), 0)))
        .unwrap()
        .unwrap();
    let mut buf = [0u8; 16];
    let got = (0..10).find_map(|_| {
        tx.send_to(b"weft", "10.77.0.50:7777").unwrap();
        rx.recv_from(&mut buf).ok()
    });
    if got.is_none() {
        eprintln!("DEBUG neigh: {:?}", p1.exec(&["ip", "neigh"]));
        eprintln!(
            "DEBUG flows: {:?}",
            node.ovs.ofctl(&["-O", "OpenFlow13", "dump-flows", BRIDGE])
        );
        eprintln!(
            "DEBUG ports: {:?}",
            node.ovs.ofctl(&["-O", "OpenFlow13", "dump-ports", BRIDGE])
        );
        eprintln!("DEBUG show: {:?}", node.ovs.vsctl(&["show"]));
        eprintln!("DEBUG links: {:?}", node.ns.exec(&["ip", "-s", "link"]));
        eprintln!("DEBUG p2: {:?}", p2.exec(&["ip", "-s", "link"]));
    }
    let (n, from) = got.expect("UDP from pod 1 reaches pod 2 through weft0");
    assert_eq!(&buf[..n], b"weft");
    assert_eq!(from.ip().to_string(), ip1.split('/').next().unwrap());

    // CHECK passes with the prevResult the runtime would send, fails once something is off.
    let mut chk = conf.clone();
    chk["prevResult"] = res.clone();
    assert_eq!(
        node.cni("CHECK", "c1", &netns_path(&p1), "net1", &chk)
            .await
            .0,
        0
    );
    p1.exec(&["ip", "link", "set", "net1", "down"]).unwrap();
    let bad = node
        .cni("CHECK", "c1", &netns_path(&p1), "net1", &chk)
        .await;
    assert_eq!(
        cni_support::code(&bad),
        u64::from(weft_proto::cni::ErrorCode::CheckFailed.value())
    );
    p1.exec(&["ip", "link", "set", "net1", "up"]).unwrap();

    // DEL twice each: everything released.
    for _ in 0..2 {
        assert_eq!(
            node.cni("DEL", "c1", &netns_path(&p1), "net1", &conf)
                .await
                .0,
            0
        );
        assert_eq!(
            node.cni("DEL", "c2", &netns_path(&p2), "eth9", &conf2)
                .await
                .0,
            0
        );
    }
    assert_eq!(node.snapshot(), before);
    assert_eq!(links(&p1), ["lo".to_string()].into());
    assert_eq!(links(&p2), ["lo".to_string()].into());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cni_del_succeeds_when_things_are_already_gone() {
    let Some(mut node) = Node::start("cni_del_succeeds_when_things_are_already_gone").await else {
        return;
    };
    let before = node.snapshot();
    let conf = node.conf("0.4.0", "red/red");

    // Netns deleted before DEL (the veth dies with it).
    let p = node.pod();
    let path = netns_path(&p);
    assert_eq!(node.cni("ADD", "gone-ns", &path, "net1", &conf).await.0, 0);
    drop(p);
    assert_eq!(node.cni("DEL", "gone-ns", &path, "net1", &conf).await.0, 0);
    assert_eq!(node.cni("DEL", "gone-ns", "", "net1", &conf).await.0, 0);
    assert_eq!(node.snapshot(), before);

    // Interface deleted inside the pod before DEL.
    let p = node.pod();
    assert_eq!(
        node.cni("ADD", "gone-if", &netns_path(&p), "net1", &conf)
            .await
            .0,
        0
    );
    p.exec(&["ip", "link", "del", "net1"]).unwrap();
    assert_eq!(
        node.cni("DEL", "gone-if", &netns_path(&p), "net1", &conf)
            .await
            .0,
        0
    );
    assert_eq!(node.snapshot(), before);

    // Agent restart between ADD and DEL (state comes from disk and OVS).
    let p = node.pod();
    assert_eq!(
        node.cni("ADD", "restart", &netns_path(&p), "net1", &conf)
            .await
            .0,
        0
    );
    node.stop_agent().await;
    let down = node
        .cni("DEL", "restart", &netns_path(&p), "net1", &conf)
        .await;
    assert_eq!(cni_support::code(&down), 11, "agent down: try again");
    node.start_agent().await;
    assert_eq!(
        node.cni("DEL", "restart", &netns_path(&p), "net1", &conf)
            .await
            .0,
        0
    );
    assert_eq!(node.snapshot(), before);
    assert_eq!(links(&p), ["lo".to_string()].into());

    // Never added at all.
    assert_eq!(node.cni("DEL", "never", "", "net1", &conf).await.0, 0);
}

/// The agent picks pod port numbers itself (so the controller can install flows while the port
/// is being made): from the half of the range ovs-vswitchd leaves to controllers, never a number
/// another port holds, not reusing a freed number at once, and continuing after a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cni_pod_port_numbers_are_chosen_by_the_agent() {
    let Some(mut node) = Node::start("cni_pod_port_numbers_are_chosen_by_the_agent").await else {
        return;
    };
    let before = node.snapshot();
    // A port made by hand that holds the first number of the agent's range.
    node.ovs
        .vsctl(&[
            "add-port",
            BRIDGE,
            "byhand0",
            "--",
            "set",
            "Interface",
            "byhand0",
            "type=internal",
            "ofport_request=32768",
        ])
        .unwrap();
    let number = |node: &Node, port: &str| -> u32 {
        node.ovs
            .vsctl(&["get", "Interface", port, "ofport"])
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    assert_eq!(number(&node, "byhand0"), 32768);
    let conf = node.conf("1.0.0", "red/red");
    let add = async |node: &Node, cid: &str, p: &weft_testbed::NetNs| {
        let r = node.cni("ADD", cid, &netns_path(p), "net1", &conf).await;
        assert_eq!(r.0, 0, "{}", r.1);
        let n = number(node, &host_ifname(cid, "net1"));
        let told = node.ctl.reservations()[&(cid.to_string(), "net1".to_string())].ofport;
        assert_eq!(told, Some(n), "the controller got the port's real number");
        n
    };
    let (p1, p2, p3) = (node.pod(), node.pod(), node.pod());
    let n1 = add(&node, "c1", &p1).await;
    assert!(
        weft_types::ports::POD_PORTS.contains(&n1) && n1 > 32768,
        "{n1}"
    );
    assert_eq!(
        node.cni("DEL", "c1", &netns_path(&p1), "net1", &conf)
            .await
            .0,
        0
    );
    let n2 = add(&node, "c2", &p2).await;
    assert!(
        n2 > n1,
        "a freed number is not handed out again at once: {n1} then {n2}"
    );
    node.stop_agent().await;
    node.start_agent().await;
    let n3 = add(&node, "c3", &p3).await;
    assert!(n3 > n2, "a restarted agent continues after {n2}, got {n3}");
    for (cid, p) in [("c2", &p2), ("c3", &p3)] {
        assert_eq!(
            node.cni("DEL", cid, &netns_path(p), "net1", &conf).await.0,
            0
        );
    }
    node.ovs.vsctl(&["del-port", BRIDGE, "byhand0"]).unwrap();
    assert_eq!(node.snapshot(), before);
    // The agent's metrics counted every request and timed every ADD's steps.
    let m = node.metrics.render();
    assert!(
        m.contains("weft_agent_cni_requests_total{command=\"ADD\",code=\"0\"} 3\n")
            && m.contains("weft_agent_cni_requests_total{command=\"DEL\",code=\"0\"} 3\n")
            && m.contains("weft_agent_cni_add_step_seconds_count{step=\"attach\"} 3\n")
            && m.contains("weft_agent_cni_add_seconds_count 3\n"),
        "{m}"
    );
}

/// A number taken behind the agent's back (a port made by hand after the agent read the bridge)
/// makes ovs-vswitchd assign another one: the ADD fails (the controller may already have flows for
/// the requested number) and leaves nothing behind; the next ADD gets a free number.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cni_add_fails_cleanly_when_its_port_number_was_taken_by_hand() {
    let Some(node) =
        Node::start("cni_add_fails_cleanly_when_its_port_number_was_taken_by_hand").await
    else {
        return;
    };
    let conf = node.conf("1.0.0", "red/red");
    let (p1, p2) = (node.pod(), node.pod());
    let r = node.cni("ADD", "c1", &netns_path(&p1), "net1", &conf).await;
    assert_eq!(r.0, 0, "{}", r.1);
    let n1: u32 = node
        .ovs
        .vsctl(&["get", "Interface", &host_ifname("c1", "net1"), "ofport"])
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // The number the agent hands out next.
    node.ovs
        .vsctl(&[
            "add-port",
            BRIDGE,
            "byhand1",
            "--",
            "set",
            "Interface",
            "byhand1",
            "type=internal",
            &format!("ofport_request={}", n1 + 1),
        ])
        .unwrap();
    let before = node.snapshot();
    let failed = node.cni("ADD", "c2", &netns_path(&p2), "net1", &conf).await;
    assert_eq!(
        code(&failed),
        u64::from(weft_proto::cni::ErrorCode::OvsFailed.value()),
        "{}",
        failed.1
    );
    let msg = failed.1["msg"].as_str().unwrap_or_default();
    assert!(
        msg.contains(&format!("requested OpenFlow port {}", n1 + 1)),
        "{msg}"
    );
    assert_eq!(
        node.snapshot(),
        before,
        "the failed ADD left something behind"
    );
    assert!(links(&p2).iter().all(|l| l == "lo"), "{:?}", links(&p2));
    // Retried, it gets the next free number.
    let r = node.cni("ADD", "c2", &netns_path(&p2), "net1", &conf).await;
    assert_eq!(r.0, 0, "{}", r.1);
    for (cid, p) in [("c1", &p1), ("c2", &p2)] {
        assert_eq!(
            node.cni("DEL", cid, &netns_path(p), "net1", &conf).await.0,
            0
        );
    }
    node.ovs.vsctl(&["del-port", BRIDGE, "byhand1"]).unwrap();
}
