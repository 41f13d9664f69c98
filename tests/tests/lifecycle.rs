//! Things coming and going: nodes joining and leaving a running lab, pods removed, networks
//! deleted.

use weft_tests::Lab;

fn count_attachments(lab: &Lab, net: &str) -> usize {
    let v = lab.json(&["net", "show", net]);
    v["attachments"].as_array().map(Vec::len).unwrap_or(0)
}

#[test]
fn node_added_to_a_running_lab_gets_tunnels_flows_and_reaches_old_pods() {
    let Some(lab) = Lab::up("node_add", 2) else {
        return;
    };
    lab.net("red", Some("10.9.0.0/24"));
    let a = lab.pod("a", "node1", "red", None);
    let ip_a = Lab::ip_of(&a, 0);
    let added = lab.json(&["lab", "node", "add"]);
    assert_eq!(added["node"], "node3");
    for (node, tunnels) in lab.tunnels() {
        assert_eq!(
            tunnels, 2,
            "{node} must have a tunnel to each of the 2 others"
        );
    }
    let c = lab.pod("c", "node3", "red", None);
    assert!(
        lab.ping("c", &ip_a, 3),
        "pod on the new node reaches an old one"
    );
    assert!(lab.ping("a", &Lab::ip_of(&c, 0), 2));
    // node1 now forwards to c's MAC through a tunnel.
    let mac_c = c["attachments"][0]["mac"].as_str().unwrap().to_string();
    assert!(
        lab.flows("node1").contains(&mac_c),
        "node1 has no flow for the new pod's MAC {mac_c}"
    );
}

#[test]
fn node_removed_its_tunnels_and_flows_disappear_everywhere() {
    let Some(lab) = Lab::up("node_rm", 3) else {
        return;
    };
    lab.net("red", Some("10.10.0.0/24"));
    let a = lab.pod("a", "node1", "red", None);
    let c = lab.pod("c", "node3", "red", None);
    let mac_c = c["attachments"][0]["mac"].as_str().unwrap().to_string();
    assert!(lab.flows("node1").contains(&mac_c));
    // Refused while a pod runs there, and nothing changes.
    let refused = lab.run(&["lab", "node", "rm", "node3"]);
    assert!(
        !refused.status.success(),
        "node rm with a pod on it succeeded"
    );
    assert!(lab.flows("node1").contains(&mac_c));
    // Forced, as a node crash would: the pod's flows go with the node.
    let rm = lab.run(&["lab", "node", "rm", "node3", "--force"]);
    assert!(
        rm.status.success(),
        "{}",
        String::from_utf8_lossy(&rm.stderr)
    );
    let mut waited = 0;
    loop {
        let t = lab.tunnels();
        if t.iter().all(|(_, n)| *n == 1) || waited > 100 {
            assert!(
                t.iter().all(|(_, n)| *n == 1),
                "tunnels to node3 remain after 10 s: {t:?}"
            );
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        waited += 1;
    }
    for node in ["node1", "node2"] {
        let flows = lab.flows(node);
        assert!(!flows.contains(&mac_c), "{node} still forwards to {mac_c}");
    }
    // The pod's attachment (and address) went with the node; the rest still works.
    assert_eq!(count_attachments(&lab, "red"), 1);
    lab.pod("b", "node2", "red", None);
    assert!(lab.ping("b", &Lab::ip_of(&a, 0), 3));
}

#[test]
fn pod_removed_releases_flows_and_address() {
    let Some(lab) = Lab::up("pod_rm", 2) else {
        return;
    };
    lab.net("red", Some("10.11.0.0/24"));
    lab.pod("a", "node1", "red", None);
    let flows_before = lab.flows("node2").lines().count();
    let b = lab.pod("b", "node2", "red", None);
    let ip_b = Lab::ip_of(&b, 0);
    let mac_b = b["attachments"][0]["mac"].as_str().unwrap().to_string();
    assert!(lab.flows("node1").contains(&mac_b));
    assert_eq!(count_attachments(&lab, "red"), 2);

    lab.ok(&["pod", "rm", "b"]);
    assert_eq!(count_attachments(&lab, "red"), 1);
    assert!(
        !lab.flows("node1").contains(&mac_b),
        "node1 still forwards to b"
    );
    assert!(
        !lab.flows("node2").contains(&mac_b),
        "node2 still has b's port flows"
    );
    assert_eq!(lab.flows("node2").lines().count(), flows_before);
    assert!(!std::path::Path::new(&format!("/run/netns/{}", lab.pod_ns("b"))).exists());
    // The address is free again: a new pod may ask for it explicitly.
    let again = lab.pod("b2", "node2", "red", Some(&format!("{ip_b}/24")));
    assert_eq!(Lab::ip_of(&again, 0), ip_b);
}

#[test]
fn network_delete_refused_while_in_use_clean_after() {
    let Some(lab) = Lab::up("net_delete", 1) else {
        return;
    };
    lab.net("red", Some("10.12.0.0/24"));
    lab.pod("a", "node1", "red", None);
    let out = lab.run(&["net", "delete", "red"]);
    assert!(
        !out.status.success(),
        "delete of a network in use succeeded"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("in use"), "{err}");
    assert_eq!(lab.json(&["net", "list"]).as_array().unwrap().len(), 1);

    lab.ok(&["pod", "rm", "a"]);
    lab.ok(&["net", "delete", "red"]);
    assert_eq!(lab.json(&["net", "list"]), serde_json::json!([]));
    // Nothing of the network is left on the switch: no flow carries its cookie's segment.
    let flows = lab.flows("node1");
    assert!(
        !flows.contains("10.12.0."),
        "flows of the deleted network remain:\n{flows}"
    );
}
