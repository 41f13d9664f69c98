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
