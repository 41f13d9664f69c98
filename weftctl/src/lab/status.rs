//! `lab status` and `lab list`: what runs, what is connected, what exists.

use std::collections::BTreeMap;

use anyhow::Result;
use serde_json::{Value, json};

use super::daemons::{ofctl, switch_connected, tunnel_ports};
use super::{BRIDGE, LabState, known_labs};
use crate::http;
use crate::output::Table;
use crate::sys::pid_alive;

/// Parses Prometheus text: `name value` and `name{labels} value` lines, keyed by the full series.
pub fn parse_metrics(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            Some((k.trim().to_string(), v.trim().parse().ok()?))
        })
        .collect()
}

/// The controller's metrics, or `None` when it does not answer.
pub fn controller_metrics(lab: &LabState) -> Option<BTreeMap<String, f64>> {
    let r = http::request(&lab.ctl_ns(), lab.metrics_addr(), "GET", "/metrics", None).ok()?;
    (r.status == 200).then(|| parse_metrics(&r.body))
}

/// Flows on a node's bridge (`dump-aggregate`), `None` when OVS does not answer.
pub fn flow_count(lab: &LabState, node: &str) -> Option<u64> {
    let out = ofctl(lab, node, &["dump-aggregate", BRIDGE]).ok()?;
    out.split_whitespace()
        .find_map(|w| w.strip_prefix("flow_count="))
        .and_then(|n| n.parse().ok())
}

fn running(pid: i32) -> &'static str {
    if pid_alive(pid) { "running" } else { "stopped" }
}

/// Everything `lab status` shows, as JSON.
pub fn collect(lab: &LabState) -> Value {
    let metrics = controller_metrics(lab);
    let networks = http::request(&lab.ctl_ns(), lab.rest_addr(), "GET", "/v1/networks", None)
        .ok()
        .filter(|r| r.status == 200)
        .and_then(|r| r.json().ok())
        .unwrap_or(Value::Array(Vec::new()));
    // Gauges are whole numbers; show them as such.
    let m = |k: &str| {
        metrics
            .as_ref()
            .and_then(|m| m.get(k).copied())
            .map(|v| v as u64)
    };
    let nodes: Vec<Value> = lab
        .nodes
        .values()
        .map(|n| {
            let ovs_up = pid_alive(n.vswitchd_pid) && pid_alive(n.ovsdb_pid);
            json!({
                "name": n.name,
                "underlayIp": n.ip.to_string(),
                "agent": running(n.agent_pid),
                "agentPid": n.agent_pid,
                "ovs": if ovs_up { "running" } else { "stopped" },
                "switchConnected": ovs_up && switch_connected(lab, &n.name),
                "tunnels": if ovs_up { tunnel_ports(lab, &n.name).len() } else { 0 },
                "flows": if ovs_up { flow_count(lab, &n.name) } else { None },
            })
        })
        .collect();
    let pods: Vec<Value> = lab.pods.values().map(pod_json).collect();
    json!({
        "lab": lab.name,
        "underlay": format!("10.255.{}.0/24", lab.octet),
        "dir": lab.dir().display().to_string(),
        "controller": {
            "state": running(lab.controller_pid),
            "pid": lab.controller_pid,
            "address": lab.controller_ip().to_string(),
            "api": metrics.is_some(),
            "switchesConnected": m("weft_switches_connected"),
            "modelVersion": m("weft_model_version"),
            "agentCallsRefused": m("weft_agent_calls_refused_total"),
            "switchesRefused": m("weft_switches_refused_total"),
        },
        "nodes": nodes,
        "networks": networks,
        "pods": pods,
    })
}

pub fn pod_json(p: &super::PodState) -> Value {
    json!({
        "name": p.name,
        "namespace": p.namespace,
        "node": p.node,
        "netns": p.ns,
        "uid": p.uid,
        "containerId": p.container_id,
        "attachments": p.attachments.iter().map(|a| json!({
            "network": a.network,
            "ifname": a.ifname,
            "mac": a.mac,
            "ips": a.ips,
            "addMs": a.add_ms,
        })).collect::<Vec<_>>(),
    })
}

fn s(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => if *b { "yes" } else { "no" }.into(),
        other => other.to_string(),
    }
}

pub fn render(v: &Value) -> String {
    let c = &v["controller"];
    let mut out = format!(
        "lab {}  underlay {}  dir {}\ncontroller {} ({}, pid {}): API {}, {} switches connected, model version {}\n\n",
        s(&v["lab"]),
        s(&v["underlay"]),
        s(&v["dir"]),
        s(&c["state"]),
        s(&c["address"]),
        s(&c["pid"]),
        if c["api"].as_bool() == Some(true) {
            "up"
        } else {
            "down"
        },
        s(&c["switchesConnected"]),
        s(&c["modelVersion"]),
    );
    let mut t = Table::new(&[
        "NODE", "UNDERLAY", "AGENT", "OVS", "SWITCH", "TUNNELS", "FLOWS",
    ]);
    for n in v["nodes"].as_array().into_iter().flatten() {
        t.row(vec![
            s(&n["name"]),
            s(&n["underlayIp"]),
            s(&n["agent"]),
            s(&n["ovs"]),
            if n["switchConnected"].as_bool() == Some(true) {
                "connected".into()
            } else {
                "disconnected".into()
            },
            s(&n["tunnels"]),
            s(&n["flows"]),
        ]);
    }
    out.push_str(&t.render());
    out.push('\n');
    out.push_str(&crate::net::render_networks(&v["networks"]));
    out.push('\n');
    out.push_str(&crate::pod::render_pods(&v["pods"]));
    out
}

/// `lab list`: labs on this machine.
pub fn list() -> (Value, String) {
    let mut t = Table::new(&["LAB", "NODES", "PODS", "CONTROLLER", "UNDERLAY"]);
    let mut all = Vec::new();
    for name in known_labs() {
        match LabState::load(&name) {
            Ok(l) => {
                t.row(vec![
                    name.clone(),
                    l.nodes.len().to_string(),
                    l.pods.len().to_string(),
                    running(l.controller_pid).into(),
                    format!("10.255.{}.0/24", l.octet),
                ]);
                all.push(
                    json!({"lab": name, "nodes": l.nodes.len(), "pods": l.pods.len(),
                    "controller": running(l.controller_pid)}),
                );
            }
            Err(_) => {
                t.row(vec![
                    name.clone(),
                    "?".into(),
                    "?".into(),
                    "broken".into(),
                    "-".into(),
                ]);
                all.push(json!({"lab": name, "broken": true}));
            }
        }
    }
    (Value::Array(all), t.render())
}

pub fn get(lab: &str) -> Result<LabState> {
    LabState::load(lab)
}
