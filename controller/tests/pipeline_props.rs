//! Property tests of the pipeline over random fabrics, checked with the table simulator:
//! reachability within a network (unicast, ARP, broadcast), isolation between networks (even when
//! MACs repeat across networks), anti-spoofing, exactly-once flooding and tunnel split horizon.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;
use weft_api::{PortSecurity, VirtualNetworkSpec};
use weft_controller::model::{Attachment, AttachmentId, Model, NetworkKey, Node, PodRef};
use weft_controller::pipeline::{
    CLASSIFY, FORWARD, Group, Index, Ingress, Key, Miss, PIPELINE, PORT_SECURITY, Pipeline,
    SwitchState, Table, Value, WireState,
};
use weft_controller::sim::{Packet, Trace, run_fabric, wire_fabric};

/// One random fabric: node count, per network (has IPv4 subnet, has IPv6) and its port
/// security, attachments as (node, network).
#[derive(Debug, Clone)]
struct Fabric {
    nodes: usize,
    networks: Vec<(bool, bool)>,
    modes: Vec<PortSecurity>,
    attachments: Vec<(usize, usize)>,
}

fn mode() -> impl Strategy<Value = PortSecurity> {
    prop_oneof![
        2 => Just(PortSecurity::Strict),
        1 => Just(PortSecurity::MacOnly),
        1 => Just(PortSecurity::Off),
    ]
}

fn fabric() -> impl Strategy<Value = Fabric> {
    (
        1usize..=8,
        prop::collection::vec((any::<bool>(), any::<bool>(), mode()), 1..=10),
    )
        .prop_flat_map(|(nodes, networks)| {
            let n_nets = networks.len();
            (
                Just(nodes),
                Just(networks),
                prop::collection::vec((0..nodes, 0..n_nets), 0..=60),
            )
        })
        .prop_map(|(nodes, networks, attachments)| Fabric {
            nodes,
            modes: networks.iter().map(|n| n.2).collect(),
            networks: networks.iter().map(|n| (n.0, n.1)).collect(),
            attachments,
        })
}

/// EtherTypes CNFs speak besides ARP and IP: PTP, eCPRI, PPPoE discovery and session, MPLS,
/// LLDP, and one nobody registered.
const OTHER_TYPES: [u16; 7] = [0x88f7, 0xaefe, 0x8863, 0x8864, 0x8847, 0x88cc, 0x9999];

fn node_name(i: usize) -> String {
    format!("node-{i}")
}

/// Tunnel port on node `from` towards node `to`.
fn tunnel_port(to: usize) -> u32 {
    1000 + to as u32
}

/// MACs restart for every network, so the same MAC appears on several networks: isolation must
/// hold anyway.
fn mac(index_in_net: usize) -> [u8; 6] {
    [
        0x02,
        0,
        0,
        0,
        (index_in_net >> 8) as u8,
        index_in_net as u8 + 1,
    ]
}

fn build(f: &Fabric) -> Model {
    let mut m = Model::default();
    for i in 0..f.nodes {
        let tunnel_ports = (0..f.nodes)
            .filter(|j| *j != i)
            .map(|j| (node_name(j), tunnel_port(j)))
            .collect();
        m.nodes.insert(
            node_name(i),
            Node {
                name: node_name(i),
                underlay_ip: IpAddr::V4(Ipv4Addr::new(192, 0, 2, i as u8 + 1)),
                datapath_id: i as u64 + 1,
                tunnel_ports,
            },
        );
    }
    for (n, (v4, v6)) in f.networks.iter().enumerate() {
        let subnet = match (v4, v6) {
            (true, _) => Some(format!("10.{n}.0.0/16")),
            (false, true) => Some(format!("fd00:{n}::/64")),
            (false, false) => None,
        };
        let spec = VirtualNetworkSpec {
            subnet,
            port_security: f.modes[n],
            ..Default::default()
        };
        m.add_network(NetworkKey::new("ns", format!("net-{n}")), &spec)
            .unwrap();
    }
    let mut next_port = vec![1u32; f.nodes];
    let mut per_net = vec![0usize; f.networks.len()];
    for (i, (node, net)) in f.attachments.iter().enumerate() {
        let k = per_net[*net];
        per_net[*net] += 1;
        let (v4, v6) = f.networks[*net];
        let ips = if v4 {
            vec![IpAddr::V4(Ipv4Addr::new(
                10,
                *net as u8,
                (k >> 8) as u8,
                k as u8 + 2,
            ))]
        } else if v6 {
            vec![IpAddr::V6(Ipv6Addr::new(
                0xfd00,
                *net as u16,
                0,
                0,
                0,
                0,
                0,
                k as u16 + 2,
            ))]
        } else {
            vec![]
        };
        let a = Attachment {
            id: AttachmentId {
                container_id: format!("c{i}"),
                ifname: "net1".into(),
            },
            network: NetworkKey::new("ns", format!("net-{net}")),
            node: node_name(*node),
            ofport: next_port[*node],
            mac: mac(k),
            ips,
            pod: PodRef {
                namespace: "ns".into(),
                name: format!("pod{i}"),
                uid: format!("uid{i}"),
            },
        };
        next_port[*node] += 1;
        m.attach(a).unwrap();
    }
    m
}

/// A frame `a` may legitimately send to `dst_mac`.
fn legit(a: &Attachment, dst_mac: [u8; 6]) -> Packet {
    match a.ips.first() {
        Some(IpAddr::V4(ip)) if dst_mac == [0xff; 6] => Packet::arp_request(a.mac, *ip),
        Some(IpAddr::V4(ip)) => Packet::ipv4(a.mac, dst_mac, *ip),
        Some(IpAddr::V6(ip)) => Packet::ipv6(a.mac, dst_mac, *ip),
        None => Packet::ethernet(a.mac, dst_mac, 0x88b5),
    }
}

fn send(
    m: &Model,
    sw: &BTreeMap<String, WireState>,
    a: &Attachment,
    p: Packet,
) -> Result<Trace, TestCaseError> {
    let t =
        run_fabric(m, sw, &a.node, a.ofport, p).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert!(
        !t.tunnel_to_tunnel,
        "a tunnel frame went back into a tunnel"
    );
    Ok(t)
}

/// The typed state of a switch and its OpenFlow form are the same thing: every flow and group
/// converts to the wire and parses back to itself (nothing lost, nothing merged, nothing
/// foreign), so what the simulator checks below is what the controller holds and diffs.
fn round_trips(node: &str, st: &SwitchState, p: &Pipeline) -> Result<(), TestCaseError> {
    prop_assert!(!st.flows.keys().any(|k| matches!(k, Key::Other(_))));
    prop_assert!(!st.flows.values().any(|v| matches!(v, Value::Other(_))));
    prop_assert!(!st.groups.values().any(|g| matches!(g, Group::Other(_))));
    let wire = st.to_wire_in(p);
    let back = SwitchState::from_wire_in(wire.flows, wire.groups, p);
    prop_assert_eq!(&back, st, "round trip on {}", node);
    Ok(())
}

/// Where a frame went, sorted.
fn reached(t: &Trace) -> Vec<(&str, u32)> {
    let mut got: Vec<(&str, u32)> = t
        .deliveries
        .iter()
        .map(|d| (d.node.as_str(), d.port))
        .collect();
    got.sort();
    got
}

/// A foreign source MAC or address: dropped where the mode checks it, delivered (to the
/// network's members only) where it does not.
fn spoofing(
    m: &Model,
    sw: &BTreeMap<String, WireState>,
    a: &Attachment,
    mode: PortSecurity,
    want: &[(&str, u32)],
) -> Result<(), TestCaseError> {
    let mut spoof = legit(a, [0xff; 6]);
    spoof.eth_src = [0x02, 0xee, 0, 0, 0, 1];
    if let Some(sha) = spoof.arp_sha.as_mut() {
        *sha = spoof.eth_src;
    }
    let t = send(m, sw, a, spoof)?;
    match mode {
        PortSecurity::Off => prop_assert_eq!(reached(&t), want, "Off refused a foreign MAC"),
        _ => prop_assert!(t.deliveries.is_empty(), "MAC spoof passed in {:?}", mode),
    }
    let fakes = match a.ips.first() {
        Some(IpAddr::V4(_)) => {
            let fake = Ipv4Addr::new(172, 31, 255, 254);
            vec![
                Packet::ipv4(a.mac, [0xff; 6], fake),
                Packet::arp_request(a.mac, fake),
            ]
        }
        Some(IpAddr::V6(_)) => {
            let fake = Ipv6Addr::new(0xfd99, 0, 0, 0, 0, 0, 0, 1);
            vec![Packet::ipv6(a.mac, [0xff; 6], fake)]
        }
        None => vec![],
    };
    for p in fakes {
        let t = send(m, sw, a, p.clone())?;
        match mode {
            PortSecurity::Strict => {
                prop_assert!(t.deliveries.is_empty(), "address spoof passed: {:?}", p)
            }
            _ => prop_assert_eq!(reached(&t), want, "{:?} refused {:?}", mode, p),
        }
    }
    Ok(())
}

/// Every other EtherType from the pod's own MAC reaches the members (broadcast and unicast),
/// in every mode; 802.1Q-tagged frames, whatever their tags, reach the members unchanged and
/// nobody else.
fn other_types_and_tags(
    m: &Model,
    sw: &BTreeMap<String, WireState>,
    a: &Attachment,
    peers: &[&&Attachment],
    want: &[(&str, u32)],
    segments: &[u16],
) -> Result<(), TestCaseError> {
    for (i, ty) in OTHER_TYPES.iter().enumerate() {
        let p = Packet::ethernet(a.mac, [0xff; 6], *ty);
        let t = send(m, sw, a, p.clone())?;
        prop_assert_eq!(reached(&t), want, "EtherType {:#06x} broadcast", ty);
        if let Some(b) = peers.get(i % peers.len().max(1)) {
            let t = send(m, sw, a, Packet::ethernet(a.mac, b.mac, *ty))?;
            prop_assert_eq!(reached(&t), vec![(b.node.as_str(), b.ofport)]);
        }
    }
    // Tagged with its own or another network's segment, singly or doubly, legit or other
    // EtherType: the tag never picks the network, the port does.
    let own = m.networks[&a.network].segment;
    let other = segments.iter().copied().find(|s| *s != own).unwrap_or(4000);
    let tags = [vec![other], vec![own], vec![other, 4000], vec![0]];
    for vlans in tags {
        for mut p in [
            legit(a, [0xff; 6]),
            Packet::ethernet(a.mac, [0xff; 6], 0x88f7),
        ] {
            p.vlans = vlans.clone();
            let t = send(m, sw, a, p.clone())?;
            prop_assert_eq!(reached(&t), want, "tagged {:?}", p);
            for d in &t.deliveries {
                prop_assert_eq!(&d.packet, &p, "a tagged frame arrived changed");
            }
        }
    }
    Ok(())
}

fn check(f: &Fabric) -> Result<(), TestCaseError> {
    check_in(f, &PIPELINE)
}

/// Every property, for the switches of pipeline `p`.
fn check_in(f: &Fabric, p: &Pipeline) -> Result<(), TestCaseError> {
    let m = build(f);
    let index = Index::new(&m);
    let mut sw = BTreeMap::new();
    for node in m.nodes.keys() {
        let st = index.switch_state_in(node, p);
        round_trips(node, &st, p)?;
        sw.insert(node.clone(), st.to_wire_in(p));
    }
    let atts: Vec<&Attachment> = m.attachments.values().collect();
    let by_port: BTreeMap<(&str, u32), &Attachment> = atts
        .iter()
        .map(|a| ((a.node.as_str(), a.ofport), *a))
        .collect();

    let segments: Vec<u16> = m.networks.values().map(|n| n.segment).collect();
    for a in &atts {
        let peers: Vec<&&Attachment> = atts
            .iter()
            .filter(|b| b.network == a.network && b.id != a.id)
            .collect();

        // Broadcast: every other member exactly once, untouched, nobody else.
        let bcast = legit(a, [0xff; 6]);
        let t = send(&m, &sw, a, bcast.clone())?;
        let mut got: Vec<(&str, u32)> = t
            .deliveries
            .iter()
            .map(|d| (d.node.as_str(), d.port))
            .collect();
        got.sort();
        let mut want: Vec<(&str, u32)> =
            peers.iter().map(|b| (b.node.as_str(), b.ofport)).collect();
        want.sort();
        prop_assert_eq!(&got, &want, "broadcast from {:?}", a.id);
        for d in &t.deliveries {
            prop_assert_eq!(&d.packet, &bcast, "broadcast arrived modified");
        }

        // Unicast to each member: exactly one copy, at the right port, untagged.
        for b in &peers {
            let p = legit(a, b.mac);
            let t = send(&m, &sw, a, p.clone())?;
            prop_assert_eq!(t.deliveries.len(), 1, "unicast {:?} -> {:?}", a.id, b.id);
            let d = &t.deliveries[0];
            prop_assert_eq!((d.node.as_str(), d.port), (b.node.as_str(), b.ofport));
            prop_assert_eq!(&d.packet, &p);
        }

        // Unicast to members of other networks: never crosses (a MAC that also exists on a's
        // own network reaches that member, which is correct).
        for c in atts.iter().filter(|c| c.network != a.network).take(12) {
            let t = send(&m, &sw, a, legit(a, c.mac))?;
            for d in &t.deliveries {
                let owner = by_port.get(&(d.node.as_str(), d.port));
                prop_assert!(
                    owner.is_some_and(|o| o.network == a.network),
                    "{:?} reached {:?} on another network",
                    a.id,
                    owner.map(|o| &o.id)
                );
            }
        }

        let mode = m.networks[&a.network].port_security;
        spoofing(&m, &sw, a, mode, &want)?;
        other_types_and_tags(&m, &sw, a, &peers, &want, &segments)?;
    }

    // Frames arriving from a tunnel (also stale or misdirected ones) reach only local members of
    // their segment and never re-enter a tunnel (split horizon).
    for (ni, n) in m.nodes.keys().enumerate() {
        for pi in (0..f.nodes).filter(|p| *p != ni) {
            for net in m.networks.values() {
                let local: BTreeSet<(&str, u32)> = atts
                    .iter()
                    .filter(|b| &b.node == n && b.network == net.key)
                    .map(|b| (b.node.as_str(), b.ofport))
                    .collect();
                let members = atts.iter().filter(|b| b.network == net.key);
                let dsts = members.map(|b| b.mac).chain([[0xff; 6]]);
                for dst in dsts {
                    let mut p = Packet::ethernet([0x02, 0xaa, 0, 0, 0, 1], dst, 0x88b5);
                    p.vlans = vec![net.segment];
                    let t = run_fabric(&m, &sw, n, tunnel_port(pi), p)
                        .map_err(|e| TestCaseError::fail(e.to_string()))?;
                    prop_assert!(
                        !t.tunnel_to_tunnel,
                        "tunnel frame re-entered a tunnel at {}",
                        n
                    );
                    for d in &t.deliveries {
                        prop_assert!(local.contains(&(d.node.as_str(), d.port)));
                        prop_assert!(d.packet.vlans.is_empty());
                    }
                    // Only a peer with members of the network can send its frames.
                    let peer_member = atts
                        .iter()
                        .any(|b| b.node == node_name(pi) && b.network == net.key);
                    if dst == [0xff; 6] && peer_member {
                        prop_assert_eq!(t.deliveries.len(), local.len());
                    }
                }
            }
        }
    }

    // Frames entering from a port nobody owns go nowhere.
    for n in m.nodes.keys() {
        let p = Packet::ethernet([0x02, 9, 9, 9, 9, 9], [0xff; 6], 0x0806);
        let t = run_fabric(&m, &sw, n, 4000, p).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert!(t.deliveries.is_empty());
    }

    // Every attachment port appears in exactly one network's flows.
    let mut seen = BTreeSet::new();
    for a in &atts {
        prop_assert!(seen.insert((a.node.as_str(), a.ofport)));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("WEFT_FABRIC_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(500),
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_fabrics_are_reachable_isolated_and_loop_free(f in fabric()) {
        check(&f)?;
    }
}

/// A stage inserted between port security and forward, the way ACLs, QoS or mirroring will
/// come: one entry in the table list plus its flows (here only its table-miss entry, which
/// passes everything on).
const PASS_THROUGH: Table = Table {
    name: "pass-through",
    matches: &[],
    ingress: Ingress::Pods,
    miss: Miss::Continue,
    purpose: "every frame goes on to the next table",
};

static WITH_PASS_THROUGH: &[Table] = &[CLASSIFY, PORT_SECURITY, PASS_THROUGH, FORWARD];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(100))]

    #[test]
    fn an_inserted_pass_through_table_keeps_every_property(f in fabric()) {
        let p = Pipeline::new(WITH_PASS_THROUGH).map_err(|e| TestCaseError::fail(e.to_string()))?;
        check_in(&f, &p)?;
        // It really is in the path: port security hands frames to it, forward moved to 3.
        use weft_openflow::wire::Instruction;
        let m = build(&f);
        let index = Index::new(&m);
        for node in m.nodes.keys().filter(|n| m.attachments.values().any(|a| &a.node == *n)) {
            let wire = index.switch_state_in(node, &p).to_wire_in(&p);
            let gotos = |table: u8| -> Vec<u8> {
                wire.flows
                    .iter()
                    .filter(|(k, _)| k.table == table)
                    .flat_map(|(_, v)| v.instructions.iter())
                    .filter_map(|i| match i {
                        Instruction::GotoTable(t) => Some(*t),
                        _ => None,
                    })
                    .collect()
            };
            prop_assert!(!gotos(1).is_empty() && gotos(1).iter().all(|t| *t == 2));
            prop_assert_eq!(gotos(2), vec![3]);
            prop_assert!(wire.flows.iter().any(|(k, _)| k.table == 3 && k.priority > 0));
        }
    }
}

#[test]
fn a_tagged_frame_from_a_tunnel_reaches_only_local_members_of_its_segment() {
    let f = Fabric {
        nodes: 3,
        networks: vec![(true, false), (false, false)],
        modes: vec![PortSecurity::Strict; 2],
        attachments: vec![(0, 0), (1, 0), (2, 0), (1, 1), (2, 1)],
    };
    let m = build(&f);
    let sw = wire_fabric(&Index::new(&m).all_switches());
    let seg0 = m.networks[&NetworkKey::new("ns", "net-0")].segment;
    // A broadcast tagged with network 0's segment arrives at node-1 from node-0's tunnel.
    let mut p = Packet::ethernet([2, 0, 0, 0, 0, 1], [0xff; 6], 0x0806);
    p.vlans = vec![seg0];
    let t = run_fabric(&m, &sw, "node-1", tunnel_port(0), p).unwrap();
    let ports: Vec<_> = t
        .deliveries
        .iter()
        .map(|d| (d.node.as_str(), d.port))
        .collect();
    assert_eq!(ports, vec![("node-1", 1)]);
    assert!(t.deliveries[0].packet.vlans.is_empty(), "tag not popped");
    assert!(!t.tunnel_to_tunnel);
    // With an unknown tag: dropped.
    let mut p = Packet::ethernet([2, 0, 0, 0, 0, 1], [0xff; 6], 0x0806);
    p.vlans = vec![4000];
    let t = run_fabric(&m, &sw, "node-1", tunnel_port(0), p).unwrap();
    assert!(t.deliveries.is_empty());
}

/// Applies a delta to a state the way a switch would: in OpenFlow form, parsed back like a
/// read-back.
fn apply(st: &mut SwitchState, d: &weft_controller::diff::Delta) {
    use weft_controller::pipeline::{FlowKey, FlowValue, GroupValue};
    let key = |f: &weft_openflow::wire::FlowMod| {
        Key::from_wire(FlowKey {
            table: f.table_id,
            priority: f.priority,
            r#match: f.r#match.clone(),
        })
    };
    for g in d.group_adds.iter().chain(&d.group_modifies) {
        let value = GroupValue {
            group_type: g.group_type,
            buckets: g.buckets.clone(),
        };
        st.groups.insert(g.group_id, Group::from_wire(value));
    }
    for g in &d.group_deletes {
        st.groups.remove(&g.group_id);
    }
    for f in &d.flow_adds {
        let value = FlowValue {
            cookie: f.cookie,
            instructions: f.instructions.clone(),
        };
        st.flows.insert(key(f), Value::from_wire(value));
    }
    for f in &d.flow_deletes {
        st.flows.remove(&key(f));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(100))]

    /// What a switch task does after a change (the southbound reconciler): it keeps its desired
    /// state when the change does not touch its switch, else recomputes it from its own index
    /// and pushes the diff. A kept state must equal a recomputation, and applying the diff must
    /// turn the old state into the new one.
    #[test]
    fn a_switch_the_change_skips_keeps_its_state_and_a_diff_reaches_the_new_one(f in fabric(), pick in any::<prop::sample::Index>()) {
        let old = build(&f);
        prop_assume!(!old.attachments.is_empty());
        let victim = pick.get(&old.attachments.keys().cloned().collect::<Vec<_>>()).clone();
        let mut new = old.clone();
        new.detach(&victim);
        let change = weft_controller::changes::Change::between(&old, &new);
        for node in old.nodes.keys() {
            let own = Index::for_node(&old, node);
            let before = own.switch_state(node);
            let after = Index::for_node(&new, node).switch_state(node);
            if !change.touches(node, &own.networks_on(node)) {
                prop_assert_eq!(&before, &after, "skipped {} but its state changed", node);
            }
            let mut pushed = before.clone();
            apply(&mut pushed, &weft_controller::diff::diff(&before, &after));
            prop_assert_eq!(&pushed, &after);
            prop_assert!(weft_controller::diff::diff(&after, &after).is_empty());
        }
    }

    /// The per-node index a switch task builds gives that switch exactly what the full index
    /// gives it.
    #[test]
    fn a_per_node_index_gives_the_same_switch_state(f in fabric()) {
        let m = build(&f);
        let full = Index::new(&m);
        for node in m.nodes.keys() {
            let own = Index::for_node(&m, node);
            prop_assert_eq!(own.switch_state(node), full.switch_state(node), "on {}", node);
            prop_assert_eq!(own.networks_on(node), full.networks_on(node));
        }
    }
}
