//! Tunnel port benchmarks (not a test; no timing asserts). Prints one JSON line per measurement.
//!
//! 1. Bring up N peers' tunnels from scratch (kernel VXLAN device + OVS port with an ofport):
//!    the agent's reconciler (rtnetlink, one OVSDB transaction, one wait) against the shell way
//!    (`ip link add` + `ip link set up` per device, then `ovs-vsctl add-port` per port, or all
//!    ports in one chained `ovs-vsctl` call).
//! 2. Add one port to a bridge that already has M ports: one OVSDB transaction (a `mutate` that
//!    inserts one element into the bridge's port set) against `ovs-vsctl add-port`, which reads
//!    the whole database and rewrites the set. Measured against ovsdb-server alone (the database
//!    cost) and with ovs-vswitchd (until the port has an ofport).
//!
//! `cargo bench -p weft-agent --bench tunnel_ports` (root and Open vSwitch).
//! Env: WEFT_BENCH_PEERS (default 100), WEFT_BENCH_PORTS (default 1000), WEFT_BENCH_RUNS (3),
//! WEFT_BENCH_ADDS (20).

use serde_json::json;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use weft_agent::bridge::{BridgeConfig, DB, ensure_bridge};
use weft_agent::netlink::Netlink;
use weft_agent::ovsdb::{
    Atom, Client, ClientOptions, Condition, Endpoint, Mutation, Operation, Value, WaitUntil, row,
};
use weft_agent::tunnels::{TunnelSpec, Tunnels, tunnel_ifname};
use weft_testbed::{NetNs, OvsSandbox};

const BRIDGE: &str = "weft0";

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

fn specs(n: usize) -> BTreeMap<String, TunnelSpec> {
    (0..n)
        .map(|i| {
            let peer = format!("peer-{i}");
            let s = TunnelSpec {
                name: tunnel_ifname(&peer),
                peer,
                local: "10.201.0.1".parse().unwrap(),
                remote: IpAddr::from([10, 201, 1 + (i / 250) as u8, (i % 250) as u8 + 1]),
                vni: 1000 + i as u32,
                port: 4789,
                mtu: 1500,
            };
            (s.name.clone(), s)
        })
        .collect()
}

/// A node namespace (underlay address on `lo`) with OVS (netdev) and the bridge.
async fn node() -> (NetNs, OvsSandbox, Client) {
    let ns = NetNs::new("wbench-tun").unwrap();
    ns.exec(&["ip", "addr", "add", "10.201.0.1/32", "dev", "lo"])
        .unwrap();
    let ovs = OvsSandbox::start_in_netns(&ns).unwrap();
    let (db, _events) = Client::start(Endpoint::Unix(ovs.db_sock()), ClientOptions::default());
    let mut cfg = BridgeConfig::new("bench");
    cfg.datapath_type = "netdev".into();
    ensure_bridge(&db, &cfg).await.unwrap();
    (ns, ovs, db)
}

fn shell_up(ns: &NetNs, ovs: &OvsSandbox, want: &BTreeMap<String, TunnelSpec>, chained: bool) {
    for s in want.values() {
        ns.exec(&[
            "ip",
            "link",
            "add",
            &s.name,
            "type",
            "vxlan",
            "id",
            &s.vni.to_string(),
            "local",
            &s.local.to_string(),
            "remote",
            &s.remote.to_string(),
            "dstport",
            "4789",
            "nolearning",
        ])
        .unwrap();
        ns.exec(&["ip", "link", "set", &s.name, "up"]).unwrap();
    }
    let port_args = |s: &TunnelSpec| -> Vec<String> {
        vec![
            "add-port".into(),
            BRIDGE.into(),
            s.name.clone(),
            "--".into(),
            "set".into(),
            "Port".into(),
            s.name.clone(),
            "external_ids:weft.dev/owner=tunnel".into(),
            format!("external_ids:weft.dev/peer={}", s.peer),
        ]
    };
    if chained {
        let mut args: Vec<String> = Vec::new();
        for s in want.values() {
            if !args.is_empty() {
                args.push("--".into());
            }
            args.extend(port_args(s));
        }
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        ovs.vsctl(&refs).unwrap();
    } else {
        for s in want.values() {
            let a = port_args(s);
            let refs: Vec<&str> = a.iter().map(String::as_str).collect();
            ovs.vsctl(&refs).unwrap();
        }
    }
}

fn shell_down(ns: &NetNs, ovs: &OvsSandbox, want: &BTreeMap<String, TunnelSpec>) {
    for s in want.values() {
        let _ = ovs.vsctl(&["--if-exists", "del-port", BRIDGE, &s.name]);
        let _ = ns.exec(&["ip", "link", "del", &s.name]);
    }
}

async fn bench_from_scratch(peers: usize, runs: usize) {
    let (ns, ovs, db) = node().await;
    let nl = Netlink::in_netns(&PathBuf::from(format!("/run/netns/{}", ns.name())))
        .await
        .unwrap();
    let tunnels = Tunnels::new(nl, db, BRIDGE);
    let want = specs(peers);
    let names: Vec<String> = want.keys().cloned().collect();
    let mut weft = Vec::new();
    for _ in 0..runs {
        let start = Instant::now();
        let out = tunnels.reconcile(&want).await.unwrap();
        assert!(out.failures.is_empty(), "{:?}", out.failures);
        let ofports = tunnels
            .wait_ofports(&names, Duration::from_secs(60))
            .await
            .unwrap();
        weft.push(ms(start.elapsed()));
        assert!(ofports.values().all(|p| *p > 0), "{ofports:?}");
        tunnels.reconcile(&BTreeMap::new()).await.unwrap();
    }
    println!(
        "{}",
        json!({"bench": "tunnels_from_scratch", "impl": "weft (rtnetlink + 1 OVSDB transaction)",
               "peers": peers, "median_ms": median(weft.clone()), "runs_ms": weft})
    );
    for (label, chained) in [
        ("ip + ovs-vsctl add-port per port", false),
        ("ip per device + one chained ovs-vsctl", true),
    ] {
        let mut t = Vec::new();
        for _ in 0..runs {
            let start = Instant::now();
            shell_up(&ns, &ovs, &want, chained);
            t.push(ms(start.elapsed()));
            shell_down(&ns, &ovs, &want);
        }
        println!(
            "{}",
            json!({"bench": "tunnels_from_scratch", "impl": label, "peers": peers,
                   "median_ms": median(t.clone()), "runs_ms": t})
        );
    }
    drop(tunnels);
    drop(ovs);
    drop(ns);
}

/// Fills the bridge with `m` patch ports (no kernel devices) in one transaction.
async fn fill(db: &Client, m: usize) {
    if m == 0 {
        return;
    }
    let mut ops = Vec::new();
    let mut refs = Vec::new();
    for i in 0..m {
        let (iface, port) = (format!("i{i}"), format!("p{i}"));
        let name = format!("fill{i}");
        ops.push(Operation::insert(
            "Interface",
            row([
                ("name", Value::from(name.as_str())),
                ("type", "patch".into()),
                ("options", Value::map([("peer", format!("fillpeer{i}"))])),
            ]),
            Some(&iface),
        ));
        ops.push(Operation::insert(
            "Port",
            row([
                ("name", Value::from(name.as_str())),
                ("interfaces", Value::named_uuid(&iface)),
            ]),
            Some(&port),
        ));
        refs.push(Atom::NamedUuid(port));
    }
    ops.push(Operation::mutate(
        "Bridge",
        vec![Condition::eq("name", BRIDGE)],
        vec![Mutation::insert("ports", Value::Set(refs))],
    ));
    db.transact(DB, &ops).await.unwrap();
}

async fn add_one(db: &Client, name: &str, internal: bool, wait: bool) {
    let mut iface = row([("name", Value::from(name))]);
    if internal {
        iface.insert("type".into(), "internal".into());
    }
    let ops = [
        Operation::insert("Interface", iface, Some("i")),
        Operation::insert(
            "Port",
            row([
                ("name", Value::from(name)),
                ("interfaces", Value::named_uuid("i")),
            ]),
            Some("p"),
        ),
        Operation::mutate(
            "Bridge",
            vec![Condition::eq("name", BRIDGE)],
            vec![Mutation::insert("ports", Value::named_uuid("p"))],
        ),
    ];
    db.transact(DB, &ops).await.unwrap();
    if wait {
        let w = [Operation::wait(
            "Interface",
            vec![Condition::eq("name", name)],
            WaitUntil::NotEqual,
            vec![row([("ofport", Value::empty_set())])],
            Some(Duration::from_secs(30)),
        )];
        db.transact(DB, &w).await.unwrap();
    }
}

async fn bench_add_one(ports: usize, adds: usize, with_vswitchd: bool) {
    let (ns, ovs, db) = if with_vswitchd {
        let (ns, ovs, db) = node().await;
        (Some(ns), ovs, db)
    } else {
        let ovs = OvsSandbox::start_db_only().unwrap();
        let (db, _ev) = Client::start(Endpoint::Unix(ovs.db_sock()), ClientOptions::default());
        ovs.vsctl(&["add-br", BRIDGE]).unwrap();
        (None, ovs, db)
    };
    fill(&db, ports).await;
    if with_vswitchd {
        // Let vswitchd finish configuring the fill: a write waits for it to catch up.
        let mut synced = false;
        for n in 0..12 {
            synced = ovs
                .vsctl(&[
                    "set",
                    "Open_vSwitch",
                    ".",
                    &format!("external_ids:bench-sync={n}"),
                ])
                .is_ok();
            if synced {
                break;
            }
        }
        assert!(synced, "ovs-vswitchd did not catch up with the fill");
    }
    let mut weft = Vec::new();
    let mut vsctl = Vec::new();
    for i in 0..adds {
        let name = format!("wadd{i}");
        let start = Instant::now();
        add_one(&db, &name, with_vswitchd, with_vswitchd).await;
        weft.push(ms(start.elapsed()));
        let name = format!("vadd{i}");
        let start = Instant::now();
        if with_vswitchd {
            ovs.vsctl(&[
                "add-port",
                BRIDGE,
                &name,
                "--",
                "set",
                "Interface",
                &name,
                "type=internal",
            ])
            .unwrap();
        } else {
            ovs.vsctl(&["add-port", BRIDGE, &name]).unwrap();
        }
        vsctl.push(ms(start.elapsed()));
    }
    let mode = if with_vswitchd {
        "ovsdb-server + ovs-vswitchd (until ofport)"
    } else {
        "ovsdb-server only"
    };
    for (label, t) in [
        ("weft (1 OVSDB transaction)", weft),
        ("ovs-vsctl add-port", vsctl),
    ] {
        println!(
            "{}",
            json!({"bench": "add_one_port", "impl": label, "mode": mode, "existing_ports": ports,
                   "median_ms": median(t.clone()), "runs_ms": t})
        );
    }
    drop(db);
    drop(ovs);
    drop(ns);
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return; // `cargo test --benches` probes harness=false benches; nothing to run.
    }
    if !weft_testbed::privileged_or_skip("tunnel_ports bench") {
        return;
    }
    let peers = env_or("WEFT_BENCH_PEERS", 100);
    let ports = env_or("WEFT_BENCH_PORTS", 1000);
    let runs = env_or("WEFT_BENCH_RUNS", 3).max(1);
    let adds = env_or("WEFT_BENCH_ADDS", 20).max(1);
    bench_from_scratch(peers, runs).await;
    // The empty bridge is the baseline that shows how each way grows with the bridge's size.
    bench_add_one(0, adds, false).await;
    bench_add_one(ports, adds, false).await;
    bench_add_one(ports, adds, true).await;
}
