//! `lab demo`: the README's first command. Three nodes, two networks on the *same* subnet, four
//! pods; pings show that a network spans nodes and that networks are isolated at layer 2 (the
//! addresses would route if isolation leaked).

use std::time::Instant;

use anyhow::{Context, Result};

use super::LabState;
use crate::net::{self, CreateArgs};
use crate::pod::{self, RunArgs};
use crate::sys;

const LAB: &str = "demo";

struct DemoPod {
    name: &'static str,
    node: &'static str,
    net: &'static str,
    ip: &'static str,
}

const PODS: &[DemoPod] = &[
    DemoPod {
        name: "red-1",
        node: "node1",
        net: "red",
        ip: "10.1.0.11/24",
    },
    DemoPod {
        name: "red-2",
        node: "node2",
        net: "red",
        ip: "10.1.0.12/24",
    },
    DemoPod {
        name: "blue-1",
        node: "node3",
        net: "blue",
        ip: "10.1.0.21/24",
    },
    DemoPod {
        name: "blue-2",
        node: "node1",
        net: "blue",
        ip: "10.1.0.22/24",
    },
];

/// (from, to, expected to reach)
const CHECKS: &[(&str, &str, bool)] = &[
    ("red-1", "red-2", true),
    ("blue-1", "blue-2", true),
    ("red-1", "blue-1", false),
    ("blue-2", "red-2", false),
    ("red-2", "blue-2", false),
];

/// Result of pinging from a pod: reached, and the average RTT when it did.
pub fn ping(lab: &str, from: &str, to_ip: &str, count: u32) -> Result<(bool, Option<f64>)> {
    let ping = sys::tool("ping").context(
        "`ping` is not installed (apt-get install iputils-ping; scripts/install-deps.sh does)",
    )?;
    let l = LabState::load(lab)?;
    let p = l.pods.get(from).context("no such pod")?;
    let out = sys::in_netns(&p.ns, &ping)?
        .args([
            "-c",
            &count.to_string(),
            "-i",
            "0.2",
            "-W",
            "1",
            "-q",
            to_ip,
        ])
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let avg = text
        .lines()
        .find(|l| l.contains("min/avg/max"))
        .and_then(|l| l.split('=').nth(1))
        .and_then(|v| v.trim().split('/').nth(1))
        .and_then(|v| v.parse().ok());
    Ok((out.status.success(), avg))
}

pub fn demo(keep: bool, nodes: u32) -> Result<bool> {
    super::up::preflight()?;
    if super::lab_dir(LAB).exists() {
        println!("removing the demo lab left from an earlier run");
        super::down::down(LAB, true)?;
    }
    let t = Instant::now();
    println!(
        "building lab {LAB:?}: {nodes} nodes (each: own ovsdb-server + ovs-vswitchd, netdev datapath, weft-agent),"
    );
    println!(
        "  an underlay bridge, and weft-controller in standalone mode, each in its own network namespace ..."
    );
    let lab = super::up::up(LAB, nodes, 1500, false)?;
    println!(
        "  up in {:.1} s: {} switches connected to the controller, VXLAN mesh complete",
        t.elapsed().as_secs_f64(),
        lab.nodes.len()
    );
    let result = run_checks(&lab);
    if !matches!(result, Ok(true)) {
        println!(
            "\nlab kept for inspection (logs in {}); remove it with: weftctl lab down --lab {LAB}",
            lab.dir().display()
        );
    } else if keep {
        println!(
            "\nlab kept. Try: weftctl lab status --lab {LAB}; weftctl pod exec red-1 --lab {LAB} -- ping 10.1.0.12"
        );
        println!("remove it with: weftctl lab down --lab {LAB}");
    } else {
        super::down::down(LAB, true)?;
        println!("\nlab removed (namespaces, daemons, files)");
    }
    result
}

fn run_checks(lab: &LabState) -> Result<bool> {
    println!("\ntwo networks on the same subnet 10.1.0.0/24, isolated from each other:");
    for net in ["red", "blue"] {
        let v = net::create(
            lab,
            &CreateArgs {
                name: net,
                namespace: "default",
                subnet: Some("10.1.0.0/24"),
                gateway: None,
                mtu: None,
                allowed_namespaces: &[],
                port_security: None,
            },
        )?;
        println!(
            "  network {:<5} subnet {}  segment {}",
            net,
            v["spec"]["subnet"].as_str().unwrap_or("-"),
            v["segment"]
        );
    }
    println!("\nfour pods, attached by weft-cni exactly as Multus calls it:");
    for p in PODS {
        let pod = pod::run(
            &lab.name,
            &RunArgs {
                name: p.name,
                node: p.node,
                namespace: "default",
                nets: &[p.net.to_string()],
                ips: &[p.ip.to_string()],
                macs: &[],
            },
        )?;
        let a = &pod.attachments[0];
        println!(
            "  pod {:<6} on {}  {} net1 {} {}  (CNI ADD {:.0} ms)",
            p.name,
            p.node,
            p.net,
            a.ips.join(","),
            a.mac,
            a.add_ms
        );
    }
    println!("\nping:");
    let mut all_ok = true;
    for (from, to, expect) in CHECKS {
        let src = PODS
            .iter()
            .find(|p| p.name == *from)
            .context("demo table")?;
        let dst = PODS.iter().find(|p| p.name == *to).context("demo table")?;
        let ip = dst.ip.split('/').next().unwrap_or(dst.ip);
        let (reached, rtt) = ping(&lab.name, from, ip, if *expect { 3 } else { 2 })?;
        let ok = reached == *expect;
        all_ok &= ok;
        let what = match (reached, rtt) {
            (true, Some(r)) => format!("reachable, {r:.2} ms"),
            (true, None) => "reachable".into(),
            (false, _) if src.net != dst.net => "no answer (different network)".into(),
            (false, _) => "no answer".into(),
        };
        println!(
            "  {} {:<6} ({}, {:<4}) -> {:<6} ({}, {:<4}) {:<9}  {}",
            if ok { "ok  " } else { "FAIL" },
            from,
            src.node,
            src.net,
            to,
            dst.node,
            dst.net,
            ip,
            what
        );
    }
    if all_ok {
        println!("\nsame network: reachable across nodes; different networks: isolated.");
    } else {
        println!(
            "\nsome checks did not go as expected; logs are in {}",
            lab.dir().display()
        );
    }
    Ok(all_ok)
}
