//! The exact OpenFlow bytes the controller sends to switches, pinned for a fixed set of seeded
//! random models. A refactoring of the pipeline must leave every byte as it was; only a change
//! of behaviour may change them, and then the golden file is regenerated on purpose
//! (`WEFT_BLESS=1 cargo test -p weft-controller --test wire_golden`) and the diff reviewed.
//!
//! The models come from a self-contained generator (not the proptest strategies), so changing
//! those strategies cannot silently change what is pinned here.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use weft_controller::diff::diff;
use weft_controller::model::{Attachment, AttachmentId, Model, NetworkKey, Node, PodRef};
use weft_controller::pipeline::Index;
use weft_controller::pipeline::{Key, SwitchState};

const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/wire_bytes.txt");
/// The same models without the flows that let every EtherType through (the shared guards and
/// the per-port "other EtherTypes" entries): what the pipeline wrote before those existed, so
/// adding them provably changed nothing else.
const GOLDEN_ADDRESS_CHECKS_ONLY: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/golden/wire_bytes_address_checks_only.txt"
);
const CASES: u64 = 48;

/// xorshift64*: deterministic across platforms and crate versions.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Network kinds: pure layer 2, IPv4, IPv6.
fn subnet(kind: u64, n: usize) -> Option<String> {
    match kind {
        0 => None,
        1 => Some(format!("10.{n}.0.0/16")),
        _ => Some(format!("fd00:{n}::/64")),
    }
}

fn model(seed: u64) -> Model {
    let mut r = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let nodes = 1 + r.below(6) as usize;
    let networks = 1 + r.below(6) as usize;
    let mut m = Model::default();
    for i in 0..nodes {
        let tunnel_ports = (0..nodes)
            .filter(|j| *j != i)
            .map(|j| (format!("node-{j}"), 1000 + j as u32))
            .collect();
        let name = format!("node-{i}");
        let node = Node {
            name: name.clone(),
            underlay_ip: IpAddr::V4(Ipv4Addr::new(192, 0, 2, i as u8 + 1)),
            datapath_id: i as u64 + 1,
            tunnel_ports,
        };
        m.nodes.insert(name, node);
    }
    let kinds: Vec<u64> = (0..networks).map(|_| r.below(3)).collect();
    for (n, kind) in kinds.iter().enumerate() {
        let spec = weft_api::VirtualNetworkSpec {
            subnet: subnet(*kind, n),
            ..Default::default()
        };
        m.add_network(NetworkKey::new("ns", format!("net-{n}")), &spec)
            .expect("generated network is valid");
    }
    let mut next_port = vec![1u32; nodes];
    let mut per_net = vec![0u16; networks];
    for i in 0..r.below(40) as usize {
        let (node, net) = (
            r.below(nodes as u64) as usize,
            r.below(networks as u64) as usize,
        );
        let k = per_net[net];
        per_net[net] += 1;
        // Sometimes two addresses, sometimes none even with a subnet.
        let count = r.below(3);
        let ips = (0..count)
            .map(|j| match kinds[net] {
                2 => IpAddr::V6(Ipv6Addr::new(
                    0xfd00,
                    net as u16,
                    0,
                    0,
                    0,
                    j as u16,
                    0,
                    k + 2,
                )),
                _ => IpAddr::V4(Ipv4Addr::new(10, net as u8, j as u8, k as u8 + 2)),
            })
            .collect();
        let a = Attachment {
            id: AttachmentId {
                container_id: format!("c{i}"),
                ifname: "net1".into(),
            },
            network: NetworkKey::new("ns", format!("net-{net}")),
            node: format!("node-{node}"),
            ofport: next_port[node],
            mac: [0x02, 0, 0, net as u8, (k >> 8) as u8, k as u8 + 1],
            ips,
            pod: PodRef {
                namespace: "ns".into(),
                name: format!("pod{i}"),
                uid: format!("uid{i}"),
            },
        };
        next_port[node] += 1;
        m.attach(a).expect("generated attachment is valid");
    }
    m
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ *b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The messages of the change from `from` to `to`, each encoded, sorted (a flow map's order is
/// not part of the contract, the bytes of each message are).
fn messages(from: &SwitchState, to: &SwitchState) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = diff(from, to)
        .into_messages()
        .into_iter()
        .map(|msg| {
            let mut buf = Vec::new();
            msg.emit(0, &mut buf).expect("our messages encode");
            buf
        })
        .collect();
    out.sort();
    out
}

/// One line per (case, node, transition): message count, total bytes and a hash of them all.
fn line(out: &mut String, case: u64, node: &str, what: &str, msgs: &[Vec<u8>]) {
    let mut all = Vec::new();
    for m in msgs {
        all.extend_from_slice(&(m.len() as u32).to_be_bytes());
        all.extend_from_slice(m);
    }
    let total: usize = msgs.iter().map(Vec::len).sum();
    let _ = writeln!(
        out,
        "{case} {node} {what} msgs={} bytes={total} fnv={:016x}",
        msgs.len(),
        fnv1a(&all)
    );
}

fn record(keep: impl Fn(&Key) -> bool) -> String {
    let mut out = String::new();
    for case in 0..CASES {
        let m = model(case);
        let index = Index::new(&m);
        // The same model with its first attachment gone: deletes and group changes too.
        let mut less = m.clone();
        if let Some(id) = m.attachments.keys().next() {
            less.detach(id);
        }
        let less_index = Index::new(&less);
        for node in m.nodes.keys() {
            let mut full = index.switch_state(node);
            full.flows.retain(|k, _| keep(k));
            line(
                &mut out,
                case,
                node,
                "install",
                &messages(&SwitchState::default(), &full),
            );
            let mut after = less_index.switch_state(node);
            after.flows.retain(|k, _| keep(k));
            line(&mut out, case, node, "detach", &messages(&full, &after));
        }
    }
    out
}

fn compare(golden: &str, got: &str) {
    if std::env::var_os("WEFT_BLESS").is_some() {
        std::fs::create_dir_all(std::path::Path::new(golden).parent().expect("has a parent"))
            .expect("create golden dir");
        std::fs::write(golden, got).expect("write golden file");
    }
    let want = std::fs::read_to_string(golden).expect("golden file (bless with WEFT_BLESS=1)");
    // Line by line, so a failure names the case and node that changed.
    for (g, w) in got.lines().zip(want.lines()) {
        assert_eq!(g, w);
    }
    assert_eq!(got.lines().count(), want.lines().count());
    // The generator must exercise something: flows on many switches.
    assert!(got.lines().filter(|l| !l.contains("msgs=0 ")).count() > CASES as usize);
}

#[test]
fn the_bytes_sent_to_switches_are_the_pinned_ones() {
    compare(GOLDEN, &record(|_| true));
}

#[test]
fn without_the_ethertype_flows_the_bytes_are_the_address_checks_of_before() {
    let others = |k: &Key| matches!(k, Key::Guard { .. } | Key::PortOtherTypes { .. });
    let all = record(|_| true);
    compare(GOLDEN_ADDRESS_CHECKS_ONLY, &record(|k| !others(k)));
    assert_ne!(
        all,
        record(|k| !others(k)),
        "the generator has Strict ports with addresses"
    );
}
