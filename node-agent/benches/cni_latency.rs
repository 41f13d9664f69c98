//! CNI ADD/DEL latency (not a test): the real `weft-cni` binary exec'd per call as a runtime does,
//! against the agent's CNI server, OVS (netdev) and a controller double that confirms at once;
//! and, in the same run, Debian's `bridge` plugin (host-local IPAM) into a Linux bridge as the
//! baseline. Sequential and 50-in-parallel. Prints one JSON line per (plugin, op, mode).
//!
//! `cargo bench -p weft-agent --bench cni_latency` (root, OVS and containernetworking-plugins).
//! Env: WEFT_BENCH_N (sequential calls, default 100), WEFT_BENCH_PAR (default 50).

#[path = "../tests/cni_support/mod.rs"]
mod cni_support;

use cni_support::{Node, netns_path};
use serde_json::{Value, json};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use weft_testbed::NetNs;

struct Plugin {
    name: &'static str,
    bin: PathBuf,
    conf: Value,
    /// Run the plugin process inside this netns (the bridge plugin makes its bridge there).
    netns: Option<String>,
    env: Vec<(String, String)>,
}

async fn call(p: &Plugin, cmd: &str, cid: &str, pod: &str) -> Duration {
    let mut c = std::process::Command::new(&p.bin);
    c.env_clear()
        .env("CNI_COMMAND", cmd)
        .env("CNI_CONTAINERID", cid)
        .env("CNI_NETNS", pod)
        .env("CNI_IFNAME", "net1")
        .env("CNI_PATH", "/usr/lib/cni")
        .env(
            "CNI_ARGS",
            format!("IgnoreUnknown=1;K8S_POD_NAMESPACE=red;K8S_POD_NAME={cid};K8S_POD_UID=u{cid}"),
        )
        .envs(p.env.iter().cloned())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    if let Some(ns) = &p.netns {
        let f = std::fs::File::open(ns).unwrap();
        // SAFETY: setns in the forked child before exec only changes that child's namespace.
        unsafe {
            c.pre_exec(move || {
                nix::sched::setns(&f, nix::sched::CloneFlags::CLONE_NEWNET)
                    .map_err(std::io::Error::from)
            });
        }
    }
    let start = Instant::now();
    let mut child = tokio::process::Command::from(c).spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(p.conf.to_string().as_bytes())
        .await
        .unwrap();
    drop(stdin);
    let out = child.wait_with_output().await.unwrap();
    let took = start.elapsed();
    assert!(
        out.status.success(),
        "{} {cmd} {cid}: {}",
        p.name,
        String::from_utf8_lossy(&out.stdout)
    );
    took
}

fn pct(v: &mut [Duration], p: f64) -> f64 {
    v.sort();
    let i = ((v.len() as f64 * p).ceil() as usize).clamp(1, v.len()) - 1;
    v[i].as_secs_f64() * 1000.0
}

fn report(plugin: &str, op: &str, mode: &str, mut v: Vec<Duration>) {
    let line = json!({"plugin": plugin, "op": op, "mode": mode, "n": v.len(),
        "p50_ms": (pct(&mut v, 0.50) * 100.0).round() / 100.0,
        "p99_ms": (pct(&mut v, 0.99) * 100.0).round() / 100.0,
        "max_ms": (pct(&mut v, 1.0) * 100.0).round() / 100.0});
    println!("{line}");
}

async fn run(p: Arc<Plugin>, n_seq: usize, n_par: usize) {
    // Sequential.
    let pods: Vec<NetNs> = (0..n_seq)
        .map(|_| NetNs::new("wbench-pod").unwrap())
        .collect();
    let (mut add, mut del) = (Vec::new(), Vec::new());
    for (i, pod) in pods.iter().enumerate() {
        add.push(call(&p, "ADD", &format!("s{i}"), &netns_path(pod)).await);
    }
    for (i, pod) in pods.iter().enumerate() {
        del.push(call(&p, "DEL", &format!("s{i}"), &netns_path(pod)).await);
    }
    report(p.name, "ADD", "sequential", add);
    report(p.name, "DEL", "sequential", del);
    drop(pods);
    // Parallel: all at once.
    let pods: Vec<NetNs> = (0..n_par)
        .map(|_| NetNs::new("wbench-pod").unwrap())
        .collect();
    for op in ["ADD", "DEL"] {
        let tasks: Vec<_> = pods
            .iter()
            .enumerate()
            .map(|(i, pod)| {
                let (p, path) = (p.clone(), netns_path(pod));
                tokio::spawn(async move { call(&p, op, &format!("p{i}"), &path).await })
            })
            .collect();
        let mut v = Vec::new();
        for t in tasks {
            v.push(t.await.unwrap());
        }
        report(p.name, op, &format!("parallel{n_par}"), v);
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return; // `cargo test --benches` probes; this bench only runs under `cargo bench`.
    }
    if std::env::var_os("WEFT_BENCH_TRACE").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter("weft_agent=debug")
            .with_writer(std::io::stderr)
            .init();
    }
    let Some(node) = Node::start("cni_latency").await else {
        return;
    };
    let env_n = |k: &str, d: usize| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let (n_seq, n_par) = (env_n("WEFT_BENCH_N", 100), env_n("WEFT_BENCH_PAR", 50));
    let leases = tempfile::tempdir().unwrap();
    let weft = Plugin {
        name: "weft",
        bin: cni_support::weft_cni_binary(),
        conf: json!({"cniVersion": "1.0.0", "name": "red", "type": "weft", "network": "red/red"}),
        netns: None,
        env: vec![(
            "WEFT_CNI_SOCKET".into(),
            node.socket().display().to_string(),
        )],
    };
    let bridge = Plugin {
        name: "bridge",
        bin: Path::new("/usr/lib/cni/bridge").to_path_buf(),
        conf: json!({"cniVersion": "1.0.0", "name": "br", "type": "bridge", "bridge": "wbench0",
                     "ipam": {"type": "host-local", "dataDir": leases.path(),
                              "ranges": [[{"subnet": "10.90.0.0/16"}]]}}),
        netns: Some(netns_path(&node.ns)),
        env: vec![],
    };
    assert!(bridge.bin.exists(), "install containernetworking-plugins");
    println!(
        "{}",
        json!({"setup": "single node (OVS netdev in a netns, controller double confirms immediately); 3-node lab not used", "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0)})
    );
    run(Arc::new(weft), n_seq, n_par).await;
    run(Arc::new(bridge), n_seq, n_par).await;
}
