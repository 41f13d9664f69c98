use std::collections::BTreeMap;

use weft_api::VirtualNetworkSpec;

use super::*;

fn spec(subnet: &str) -> VirtualNetworkSpec {
    VirtualNetworkSpec {
        subnet: Some(subnet.into()),
        ..Default::default()
    }
}

#[test]
fn validation_names_the_problem() {
    let k = NetworkKey::new("ns", "red");
    let bad = |s: VirtualNetworkSpec| Network::from_spec(k.clone(), &s, 1).unwrap_err();
    assert_eq!(
        bad(spec("10.1.0.0/33")),
        ModelError::BadCidr("10.1.0.0/33".into())
    );
    assert!(matches!(
        bad(VirtualNetworkSpec {
            gateway: Some("10.2.0.1".into()),
            ..spec("10.1.0.0/24")
        }),
        ModelError::GatewayOutsideSubnet { .. }
    ));
    assert!(matches!(
        bad(VirtualNetworkSpec {
            exclude_ips: vec!["10.1.0.0/28".into(), "10.1.0.8".into()],
            ..spec("10.1.0.0/24")
        }),
        ModelError::OverlappingExcludes(..)
    ));
    assert_eq!(
        bad(VirtualNetworkSpec {
            mtu: Some(100),
            ..spec("10.1.0.0/24")
        }),
        ModelError::MtuOutOfRange(100)
    );
    let ok = Network::from_spec(
        k.clone(),
        &VirtualNetworkSpec {
            gateway: Some("10.1.0.1".into()),
            exclude_ips: vec!["10.1.0.0/28".into(), "10.1.0.100".into()],
            mtu: Some(1450),
            ..spec("10.1.0.7/24")
        },
        5,
    )
    .unwrap();
    assert_eq!(ok.subnet.unwrap().to_string(), "10.1.0.0/24");
    assert_eq!(ok.exclude.len(), 2);
}

#[test]
fn duplicate_network_and_segment_reuse() {
    let mut m = Model::default();
    let a = NetworkKey::new("ns", "a");
    let b = NetworkKey::new("ns", "b");
    assert_eq!(
        m.add_network(a.clone(), &spec("10.1.0.0/24"))
            .unwrap()
            .segment,
        1
    );
    assert_eq!(
        m.add_network(b.clone(), &VirtualNetworkSpec::default())
            .unwrap()
            .segment,
        2
    );
    assert_eq!(
        m.add_network(a.clone(), &VirtualNetworkSpec::default())
            .unwrap_err(),
        ModelError::DuplicateNetwork(a.clone())
    );
    m.remove_network(&a, false).unwrap();
    let c = NetworkKey::new("ns", "c");
    assert_eq!(
        m.add_network(c, &VirtualNetworkSpec::default())
            .unwrap()
            .segment,
        1
    );
}

#[test]
fn attach_checks_namespace_mac_and_ip_uniqueness() {
    let mut m = Model::default();
    m.nodes.insert(
        "n1".into(),
        Node {
            name: "n1".into(),
            underlay_ip: "192.0.2.1".parse().unwrap(),
            datapath_id: 1,
            tunnel_ports: BTreeMap::new(),
        },
    );
    let key = NetworkKey::new("ns", "red");
    m.add_network(key.clone(), &spec("10.1.0.0/24")).unwrap();
    let att = |c: &str, ns: &str, mac: u8, ip: &str| Attachment {
        id: AttachmentId {
            container_id: c.into(),
            ifname: "net1".into(),
        },
        network: key.clone(),
        node: "n1".into(),
        ofport: u32::from(mac),
        mac: [2, 0, 0, 0, 0, mac],
        ips: vec![ip.parse().unwrap()],
        pod: PodRef {
            namespace: ns.into(),
            name: c.into(),
            uid: c.into(),
        },
    };
    m.attach(att("a", "ns", 1, "10.1.0.2")).unwrap();
    assert!(matches!(
        m.attach(att("b", "other", 2, "10.1.0.3")),
        Err(ModelError::NamespaceNotAllowed { .. })
    ));
    assert!(matches!(
        m.attach(att("b", "ns", 1, "10.1.0.3")),
        Err(ModelError::DuplicateMac(..))
    ));
    assert!(matches!(
        m.attach(att("b", "ns", 2, "10.1.0.2")),
        Err(ModelError::DuplicateIp(..))
    ));
    assert!(matches!(
        m.attach(att("b", "ns", 2, "10.9.0.2")),
        Err(ModelError::IpOutsideSubnet(..))
    ));
    m.attach(att("b", "ns", 2, "10.1.0.3")).unwrap();
    assert!(matches!(
        m.remove_network(&key, false),
        Err(ModelError::NetworkInUse { count: 2, .. })
    ));
    m.remove_network(&key, true).unwrap();
    assert!(m.attachments.is_empty());
}

#[test]
fn a_reused_port_number_evicts_the_stale_attachment_on_that_node_only() {
    let mut m = Model::default();
    for (n, dpid) in [("n1", 1), ("n2", 2)] {
        m.nodes.insert(
            n.into(),
            Node {
                name: n.into(),
                underlay_ip: "192.0.2.1".parse().unwrap(),
                datapath_id: dpid,
                tunnel_ports: BTreeMap::new(),
            },
        );
    }
    let key = NetworkKey::new("ns", "red");
    m.add_network(key.clone(), &VirtualNetworkSpec::default())
        .unwrap();
    let att = |c: &str, node: &str, ofport: u32, mac: u8| Attachment {
        id: AttachmentId {
            container_id: c.into(),
            ifname: "net1".into(),
        },
        network: key.clone(),
        node: node.into(),
        ofport,
        mac: [2, 0, 0, 0, 0, mac],
        ips: vec![],
        pod: PodRef {
            namespace: "ns".into(),
            name: c.into(),
            uid: c.into(),
        },
    };
    assert!(m.attach(att("old", "n1", 40000, 1)).unwrap().is_empty());
    // Same number on another node: a different port, nothing evicted.
    assert!(m.attach(att("other", "n2", 40000, 2)).unwrap().is_empty());
    // Re-attaching the same attachment is not an eviction.
    assert!(m.attach(att("old", "n1", 40000, 1)).unwrap().is_empty());
    let evicted = m.attach(att("new", "n1", 40000, 3)).unwrap();
    assert_eq!(evicted.len(), 1);
    assert_eq!(evicted[0].container_id, "old");
    let left: Vec<&str> = m
        .attachments
        .keys()
        .map(|id| id.container_id.as_str())
        .collect();
    assert_eq!(left, ["new", "other"]);
}

/// Network ns/red (10.1.0.0/24) with pod ns/p1 attached at 10.1.0.9 and pod other/p2, from an
/// allowed namespace, prepared at 10.1.0.10 (its ADD under way).
fn red_with_pods() -> (Model, NetworkKey) {
    let mut m = Model::default();
    m.nodes.insert(
        "n1".into(),
        Node {
            name: "n1".into(),
            underlay_ip: "192.0.2.1".parse().unwrap(),
            datapath_id: 1,
            tunnel_ports: BTreeMap::new(),
        },
    );
    let key = NetworkKey::new("ns", "red");
    let spec = VirtualNetworkSpec {
        allowed_namespaces: vec!["other".into()],
        ..spec("10.1.0.0/24")
    };
    m.add_network(key.clone(), &spec).unwrap();
    for (c, ns, ip) in [("c1", "ns", "10.1.0.9"), ("c2", "other", "10.1.0.10")] {
        let id = AttachmentId {
            container_id: c.into(),
            ifname: "net1".into(),
        };
        let pod = PodRef {
            namespace: ns.into(),
            name: format!("p{}", &c[1..]),
            uid: c.into(),
        };
        let r = crate::ipam::reserve(
            &mut m,
            crate::ipam::ReserveRequest {
                id: id.clone(),
                network: key.clone(),
                node: "n1".into(),
                pod: pod.clone(),
                mac: None,
                ips: vec![ip.parse().unwrap()],
            },
        )
        .unwrap();
        if c == "c1" {
            m.attach(Attachment {
                id,
                network: key.clone(),
                node: "n1".into(),
                ofport: 7,
                mac: r.mac,
                ips: r.ips.iter().map(|n| n.addr()).collect(),
                pod,
            })
            .unwrap();
        }
    }
    (m, key)
}

#[test]
fn update_network_keeps_the_segment_and_follows_a_wider_prefix() {
    let (mut m, key) = red_with_pods();
    let seg = m.networks[&key].segment;
    let wider = VirtualNetworkSpec {
        mtu: Some(1400),
        gateway: Some("10.1.0.1".into()),
        allowed_namespaces: vec!["other".into()],
        ..spec("10.1.0.0/16")
    };
    let net = m.update_network(&key, &wider).unwrap();
    assert_eq!((net.segment, net.mtu), (seg, Some(1400)));
    assert_eq!(net.spec(), wider);
    let prefixes: Vec<String> = m
        .reservations
        .values()
        .map(|r| r.ips[0].to_string())
        .collect();
    assert_eq!(prefixes, ["10.1.0.9/16", "10.1.0.10/16"]);
    // The same spec again is no change at all.
    let before = m.clone();
    m.update_network(&key, &wider).unwrap();
    assert_eq!(m, before);
}

#[test]
fn update_network_refuses_stranding_pods_names_them_and_changes_nothing() {
    let (mut m, key) = red_with_pods();
    let before = m.clone();
    let refused = |m: &mut Model, s: VirtualNetworkSpec| match m.update_network(&key, &s) {
        Err(ModelError::SpecStrandsPods { network, pods }) => {
            assert_eq!(network, key);
            pods
        }
        other => panic!("expected a refusal, got {other:?}"),
    };
    // Elsewhere: both pods lose their address (the prepared one counts too).
    let moved = VirtualNetworkSpec {
        allowed_namespaces: vec!["other".into()],
        ..spec("10.2.0.0/24")
    };
    assert_eq!(
        refused(&mut m, moved),
        [
            "ns/p1 (net1): 10.1.0.9 is outside the new subnet",
            "other/p2 (net1): 10.1.0.10 is outside the new subnet"
        ]
    );
    // Its address becomes the gateway, or excluded; its namespace is no longer allowed.
    let taken = VirtualNetworkSpec {
        gateway: Some("10.1.0.9".into()),
        exclude_ips: vec!["10.1.0.8/30".into()],
        ..spec("10.1.0.0/24")
    };
    let pods = refused(&mut m, taken);
    assert_eq!(pods.len(), 3, "{pods:?}");
    assert!(pods[0].starts_with("ns/p1 (net1): 10.1.0.9 is the new spec's gateway"));
    assert!(pods[1].contains("10.1.0.10 is the new spec's excluded range"));
    assert!(pods[2].contains("namespace other no longer allowed"));
    // Invalid on its own: the validation error, not a refusal.
    assert_eq!(
        m.update_network(&key, &spec("10.1.0.0/40")).unwrap_err(),
        ModelError::BadCidr("10.1.0.0/40".into())
    );
    assert_eq!(m, before, "a refused edit changed the model");
    let unknown = NetworkKey::new("ns", "nope");
    assert_eq!(
        m.update_network(&unknown, &spec("10.1.0.0/24"))
            .unwrap_err(),
        ModelError::UnknownNetwork(unknown)
    );
}

#[test]
fn the_indexes_follow_inserts_replacements_and_removals() {
    let (x, y) = (NetworkKey::new("ns", "x"), NetworkKey::new("ns", "y"));
    let att = |c: &str, net: &NetworkKey, node: &str| Attachment {
        id: AttachmentId {
            container_id: c.into(),
            ifname: "net1".into(),
        },
        network: net.clone(),
        node: node.into(),
        ofport: 1,
        mac: [2, 0, 0, 0, 0, 1],
        ips: vec![],
        pod: PodRef {
            namespace: "ns".into(),
            name: c.into(),
            uid: c.into(),
        },
    };
    let mut m = Model::default();
    for (c, net, node) in [("a", &x, "n1"), ("b", &x, "n2"), ("c", &y, "n1")] {
        assert!(m.attachments.insert(att(c, net, node)).is_none());
    }
    let ids = |it: &mut dyn Iterator<Item = &Attachment>| -> Vec<String> {
        it.map(|a| a.id.container_id.clone()).collect()
    };
    assert_eq!(ids(&mut m.attachments_of(&x)), ["a", "b"]);
    assert_eq!(ids(&mut m.attachments.on_node("n1")), ["a", "c"]);
    // Moving "a" to network y on node n2 moves it in both indexes.
    let before = m.clone();
    assert!(m.attachments.insert(att("a", &y, "n2")).is_some());
    assert_eq!(ids(&mut m.attachments_of(&x)), ["b"]);
    assert_eq!(ids(&mut m.attachments_of(&y)), ["a", "c"]);
    assert_eq!(ids(&mut m.attachments.on_node("n1")), ["c"]);
    assert_eq!(m.attachments.count_on_node("n2"), 2);
    // The earlier version is untouched (shared, not mutated).
    assert_eq!(ids(&mut before.attachments_of(&x)), ["a", "b"]);
    m.detach(&att("b", &x, "n2").id);
    assert_eq!(m.attachments.count_of_network(&x), 0);
    assert_eq!(m.attachments.len(), 2);
    // The change between two versions names only what differs.
    let c = crate::changes::Change::between(&before, &m);
    assert_eq!(
        c.networks,
        std::collections::BTreeSet::from([x.clone(), y.clone()])
    );
    assert_eq!(
        c.nodes,
        std::collections::BTreeSet::from(["n1".to_string(), "n2".to_string()])
    );
    assert!(crate::changes::Change::between(&m, &m.clone()).is_empty());
}
