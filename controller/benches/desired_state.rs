//! Desired-state benchmarks, one JSON line per figure:
//! - the full computation for 1,000 nodes, 4,000 networks, 100,000 attachments: time and peak
//!   memory (targets: < 1 s, < 1 GiB: a controller restart recomputes every switch);
//! - one attachment added: what the switch tasks do with it (which of them recompute, and what
//!   one recomputation costs).
//!
//! Run: `cargo bench -p weft-controller --bench desired_state` (WEFT_BENCH_SCALE=0.1 for a quick run).

use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

use weft_api::VirtualNetworkSpec;
use weft_controller::changes::Change;
use weft_controller::model::{Attachment, AttachmentId, Model, Network, NetworkKey, Node, PodRef};
use weft_controller::pipeline::Index;

/// The allocator the controller binary uses.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Deterministic pseudo-random numbers (no dependency, same fabric every run).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) as usize) % n
    }
}

fn kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn attachment(i: usize, node: usize, net: usize, k: usize) -> Attachment {
    Attachment {
        id: AttachmentId {
            container_id: format!("c{i}"),
            ifname: "net1".into(),
        },
        network: NetworkKey::new("ns", format!("n{net}")),
        node: format!("node{node}"),
        ofport: (i / 1000 + 1 + i % 1000) as u32,
        mac: [
            2,
            (i >> 24) as u8,
            (i >> 16) as u8,
            (i >> 8) as u8,
            i as u8,
            1,
        ],
        ips: vec![IpAddr::V4(Ipv4Addr::new(
            10,
            (net >> 8) as u8,
            net as u8,
            (k + 2) as u8,
        ))],
        pod: PodRef {
            namespace: "ns".into(),
            name: format!("p{i}"),
            uid: format!("u{i}"),
        },
    }
}

/// `f` for every switch, the switches split into one chunk per thread (as the controller's
/// switch tasks spread over the runtime's cores); results in node order.
fn each_switch<T: Send>(names: &[&String], threads: usize, f: impl Fn(&str) -> T + Sync) -> Vec<T> {
    std::thread::scope(|s| {
        let workers: Vec<_> = names
            .chunks(names.len().div_ceil(threads))
            .map(|chunk| {
                let f = &f;
                s.spawn(move || chunk.iter().map(|n| f(n)).collect::<Vec<_>>())
            })
            .collect();
        workers
            .into_iter()
            .filter_map(|w| w.join().ok())
            .flatten()
            .collect()
    })
}

fn build(nodes: usize, networks: usize, attachments: usize) -> Model {
    let mut m = Model::default();
    for i in 0..nodes {
        let tunnel_ports = (0..nodes)
            .filter(|j| *j != i)
            .map(|j| (format!("node{j}"), 10_000 + j as u32))
            .collect();
        m.nodes.insert(
            format!("node{i}"),
            Node {
                name: format!("node{i}"),
                underlay_ip: IpAddr::V4(Ipv4Addr::new(192, 0, (i >> 8) as u8, i as u8)),
                datapath_id: i as u64 + 1,
                tunnel_ports,
            },
        );
    }
    for n in 0..networks {
        let key = NetworkKey::new("ns", format!("n{n}"));
        let spec = VirtualNetworkSpec {
            subnet: Some(format!("10.{}.{}.0/24", n >> 8, n & 0xff)),
            ..Default::default()
        };
        let net = Network::from_spec(key.clone(), &spec, (n % 4094 + 1) as u16).expect("valid");
        m.networks.insert(key, net);
    }
    let mut rng = Lcg(42);
    let mut per_net = vec![0usize; networks];
    for i in 0..attachments {
        let (node, net) = (rng.next(nodes), rng.next(networks));
        let k = per_net[net];
        per_net[net] += 1;
        let a = attachment(i, node, net, k % 250);
        m.attachments.insert(a);
    }
    m
}

fn main() {
    let scale: f64 = std::env::var("WEFT_BENCH_SCALE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1.0);
    let (nodes, networks, atts) = (
        (1000.0 * scale) as usize,
        (4000.0 * scale) as usize,
        (100_000.0 * scale) as usize,
    );
    let model = build(nodes.max(2), networks.max(1), atts.max(1));
    let base_rss = kib("VmRSS:");

    // Every switch's desired state, computed the way the controller does it: each switch's
    // session task computes its own state on the multi-threaded runtime (so switches spread over
    // the cores) and drops it once handed over.
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let names: Vec<&String> = model.nodes.keys().collect();
    // Five runs, median reported: the machines here are shared and one run can be twice another.
    let full_run = || {
        let t = Instant::now();
        let idx = Index::new(&model);
        let counts = each_switch(&names, threads, |n| {
            let st = idx.switch_state(n);
            (st.flows.len(), st.groups.len())
        })
        .into_iter()
        .fold((0, 0), |(f, g), (a, b)| (f + a, g + b));
        (t.elapsed(), counts)
    };
    let mut runs: Vec<_> = (0..5).map(|_| full_run()).collect();
    runs.sort_by_key(|(d, _)| *d);
    let (full, (flows, groups)) = runs[runs.len() / 2];
    let runs_s: Vec<String> = runs
        .iter()
        .map(|(d, _)| format!("{:.3}", d.as_secs_f64()))
        .collect();
    let peak = kib("VmHWM:");

    // The same, with every switch's state kept (a controller's switch tasks each hold theirs):
    // time until all exist, and the memory they take together.
    let before = kib("VmRSS:");
    let t = Instant::now();
    let idx = Index::new(&model);
    let held = each_switch(&names, threads, |n| idx.switch_state(n));
    let held_time = t.elapsed();
    let held_rss = kib("VmRSS:").saturating_sub(before);
    let held_flows: usize = held.iter().map(|st| st.flows.len()).sum();
    drop(held);
    println!(
        r#"{{"figure":"full_desired_state_held","flows":{held_flows},"seconds":{:.3},"states_mib":{:.0},"bytes_per_flow":{:.0},"target_mib":1024,"pass":{},"note":"all switch states kept, as the switch tasks keep theirs"}}"#,
        held_time.as_secs_f64(),
        held_rss as f64 / 1024.0,
        held_rss as f64 * 1024.0 / held_flows.max(1) as f64,
        held_rss < 1024 * 1024
    );
    println!(
        r#"{{"figure":"full_desired_state","nodes":{nodes},"networks":{networks},"attachments":{atts},"flows":{flows},"groups":{groups},"threads":{threads},"seconds":{:.3},"runs":[{}],"target_seconds":1.0,"pass":{}}}"#,
        full.as_secs_f64(),
        runs_s.join(","),
        full.as_secs_f64() < 1.0
    );
    println!(
        r#"{{"figure":"full_desired_state_peak_rss","model_rss_mib":{:.0},"peak_rss_mib":{:.0},"target_mib":1024,"pass":{}}}"#,
        base_rss as f64 / 1024.0,
        peak as f64 / 1024.0,
        peak < 1024 * 1024
    );

    // One attachment added.
    let mut new = model.clone();
    new.attachments.insert(attachment(atts + 1, 0, 0, 200));
    let t = Instant::now();
    let _new_idx = Index::new(&new);
    let rebuild = t.elapsed();
    // What a switch task builds when the change concerns it: the index of its own part.
    let t = Instant::now();
    let own = Index::for_node(&new, "node0");
    let _ = own.switch_state("node0");
    let own_switch = t.elapsed();
    println!(
        r#"{{"figure":"index_rebuild","note":"full attachment index (all switches)","ms":{:.1}}}"#,
        rebuild.as_secs_f64() * 1e3
    );
    println!(
        r#"{{"figure":"switch_recompute","note":"one switch task after a change that concerns it: per-node index and its whole desired state","ms":{:.2}}}"#,
        own_switch.as_secs_f64() * 1e3
    );

    // What the reconcilers do with that change: the store works out once what changed, and each
    // switch task recomputes only when the change concerns its switch.
    let t = Instant::now();
    let change = Change::between(&model, &new);
    let detect = t.elapsed();
    let recompute = model
        .nodes
        .keys()
        .filter(|n| change.touches(n, &idx.networks_on(n)))
        .count();
    println!(
        r#"{{"figure":"change_detection","ms":{:.2},"switches":{},"switches_recomputing":{recompute}}}"#,
        detect.as_secs_f64() * 1e3,
        model.nodes.len()
    );
}
