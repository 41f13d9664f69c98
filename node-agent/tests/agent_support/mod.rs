//! A small fabric for agent tests: node namespaces joined by an underlay namespace (a Linux
//! bridge), each node with its own OVS sandbox (netdev datapath) and the agent running in this
//! process with its netlink socket in the node namespace, all driven by a controller double.

#![allow(dead_code)]

pub mod controller;

use controller::{Ctl, Server};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use weft_agent::agent::{Agent, AgentConfig, AgentError};
use weft_agent::link::{LinkConfig, LinkStatus};
use weft_agent::metrics::Metrics;
use weft_agent::ovsdb::Endpoint;
use weft_agent::tunnels::tunnel_ifname;
use weft_testbed::{NetNs, OvsSandbox, veth_pair};

pub const BRIDGE: &str = "weft0";

struct Running {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), AgentError>>,
    status: watch::Receiver<LinkStatus>,
}

/// Field order is drop order: agent, OVS, then the namespace.
pub struct Node {
    pub name: String,
    pub ip: String,
    agent: Option<Running>,
    pub metrics: Arc<Metrics>,
    pub ovs: OvsSandbox,
    pub ns: NetNs,
}

/// A tunnel device as `ip -d link` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dev {
    pub index: u32,
    pub remote: String,
    pub vni: u32,
    pub mtu: u32,
    pub alias: String,
    pub up: bool,
}

/// A tunnel port as OVSDB shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OvsPort {
    pub uuid: String,
    pub ofport: i64,
    pub peer: String,
}

pub fn netns_path(ns: &NetNs) -> PathBuf {
    PathBuf::from(format!("/run/netns/{}", ns.name()))
}

impl Node {
    pub fn config(&self, controller: &str) -> AgentConfig {
        let mut link = LinkConfig::new(&self.name, self.ip.parse().unwrap(), controller);
        link.bridge.datapath_type = "netdev".into();
        link.backoff_initial = Duration::from_millis(100);
        link.backoff_max = Duration::from_millis(800);
        AgentConfig {
            link,
            ovsdb: Endpoint::Unix(self.ovs.db_sock()),
            netns: Some(netns_path(&self.ns)),
            cni: None,
        }
    }

    pub async fn start_agent(&mut self, controller: &str) {
        self.start_agent_with(self.config(controller)).await
    }

    pub async fn start_agent_with(&mut self, cfg: AgentConfig) {
        assert!(self.agent.is_none(), "agent already running");
        let agent = Agent::setup(cfg, self.metrics.clone()).await.unwrap();
        let status = agent.status();
        let (stop, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(agent.run(async {
            let _ = rx.await;
        }));
        self.agent = Some(Running { stop, task, status });
    }

    /// Stops the agent the way SIGTERM does (everything stays in place).
    pub async fn stop_agent(&mut self) {
        if let Some(a) = self.agent.take() {
            let _ = a.stop.send(());
            a.task.await.unwrap().unwrap();
        }
    }

    pub fn status(&self) -> LinkStatus {
        self.agent.as_ref().unwrap().status.borrow().clone()
    }

    /// Waits until `f` holds for the link status.
    pub async fn wait_status(&self, what: &str, f: impl Fn(&LinkStatus) -> bool) -> LinkStatus {
        let mut rx = self.agent.as_ref().unwrap().status.clone();
        let res = tokio::time::timeout(Duration::from_secs(30), rx.wait_for(|s| f(s)))
            .await
            .map(|r| r.map(|s| s.clone()));
        match res {
            Ok(Ok(s)) => s,
            _ => panic!("{}: {what} not reached: {:?}", self.name, *rx.borrow()),
        }
    }

    /// Tunnel devices in the node namespace (links whose alias marks them ours), by name.
    pub fn devices(&self) -> BTreeMap<String, Dev> {
        let out = self.ns.exec(&["ip", "-d", "-o", "link", "show"]).unwrap();
        out.lines()
            .filter_map(|l| {
                let mut f = l.split_whitespace();
                let index = f.next()?.trim_end_matches(':').parse().ok()?;
                let name = f
                    .next()?
                    .trim_end_matches(':')
                    .split('@')
                    .next()?
                    .to_string();
                if !l.contains(" vxlan id ") || !l.contains("alias weft-tunnel") {
                    return None;
                }
                let word_after = |w: &str| -> Option<String> {
                    let t: Vec<&str> = l.split_whitespace().collect();
                    t.iter()
                        .position(|x| *x == w)
                        .and_then(|i| t.get(i + 1))
                        .map(|s| s.to_string())
                };
                let alias = l
                    .split("alias ")
                    .nth(1)
                    .map(|a| a.trim().to_string())
                    .unwrap_or_default();
                Some((
                    name,
                    Dev {
                        index,
                        remote: word_after("remote").unwrap_or_default(),
                        vni: word_after("id")?.parse().ok()?,
                        mtu: word_after("mtu")?.parse().ok()?,
                        alias,
                        up: l.contains(",UP") || l.contains("<UP"),
                    },
                ))
            })
            .collect()
    }

    /// Tunnel ports (external_ids weft.dev/owner=tunnel) by name.
    pub fn tunnel_ports(&self) -> BTreeMap<String, OvsPort> {
        let out = self
            .ovs
            .vsctl(&[
                "--format=csv",
                "--data=bare",
                "--no-headings",
                "--columns=name,_uuid,external_ids",
                "find",
                "Port",
                "external_ids:weft.dev/owner=tunnel",
            ])
            .unwrap();
        out.lines()
            .filter_map(|l| {
                let mut f = l.splitn(3, ',');
                let name = f.next()?.trim().to_string();
                let uuid = f.next()?.trim().to_string();
                let ids = f.next().unwrap_or("");
                let peer = ids
                    .trim_matches('"')
                    .split_whitespace()
                    .find_map(|kv| {
                        kv.strip_prefix("\"weft.dev/peer\"=")
                            .or(kv.strip_prefix("weft.dev/peer="))
                    })
                    .unwrap_or("")
                    .trim_matches('"')
                    .to_string();
                let ofport = self
                    .ovs
                    .vsctl(&["get", "Interface", &name, "ofport"])
                    .ok()?
                    .trim()
                    .parse()
                    .ok()?;
                Some((name.clone(), OvsPort { uuid, ofport, peer }))
            })
            .collect()
    }

    pub fn ofport(&self, iface: &str) -> i64 {
        self.ovs
            .vsctl(&["get", "Interface", iface, "ofport"])
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }

    /// Waits until this node has exactly the tunnels to `peers`, each device up with an ofport.
    pub async fn wait_mesh(&self, peers: &[&str]) {
        let want: BTreeSet<String> = peers.iter().map(|p| tunnel_ifname(p)).collect();
        let start = Instant::now();
        loop {
            let devs = self.devices();
            let ports = self.tunnel_ports();
            let ok = devs.keys().cloned().collect::<BTreeSet<_>>() == want
                && ports.keys().cloned().collect::<BTreeSet<_>>() == want
                && devs.values().all(|d| d.up)
                && ports.values().all(|p| p.ofport > 0);
            if ok {
                return;
            }
            if start.elapsed() > Duration::from_secs(30) {
                panic!(
                    "{}: mesh to {peers:?} not built: devices {devs:?} ports {ports:?} status {:?}",
                    self.name,
                    self.agent.as_ref().map(|a| a.status.borrow().clone())
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Field order is drop order: nodes before the underlay they hang off.
pub struct Fabric {
    pub nodes: Vec<Node>,
    pub underlay: NetNs,
    pub ctl: Ctl,
    pub server: Option<Server>,
}

pub fn node_name(i: usize) -> String {
    format!("node-{}", (b'a' + i as u8) as char)
}

impl Fabric {
    /// `None` (after printing why) when privileged tests cannot run here. Agents not started.
    pub async fn new(test: &str, n: usize) -> Option<Fabric> {
        if !weft_testbed::privileged_or_skip(test) {
            return None;
        }
        let underlay = NetNs::new("wag-ul").unwrap();
        underlay
            .exec(&["ip", "link", "add", "br0", "type", "bridge"])
            .unwrap();
        underlay.exec(&["ip", "link", "set", "br0", "up"]).unwrap();
        let mut nodes = Vec::new();
        for i in 0..n {
            let ns = NetNs::new("wag-node").unwrap();
            let port = format!("n{i}");
            veth_pair(&ns, "ul0", &underlay, &port).unwrap();
            underlay
                .exec(&["ip", "link", "set", &port, "master", "br0"])
                .unwrap();
            let ip = format!("10.200.0.{}", i + 1);
            ns.exec(&["ip", "addr", "add", &format!("{ip}/24"), "dev", "ul0"])
                .unwrap();
            let ovs = OvsSandbox::start_in_netns(&ns).unwrap();
            nodes.push(Node {
                name: node_name(i),
                ip,
                agent: None,
                metrics: Arc::new(Metrics::default()),
                ovs,
                ns,
            });
        }
        let ctl = Ctl::default();
        let server = ctl.serve("127.0.0.1:0".parse().unwrap()).await;
        Some(Fabric {
            nodes,
            underlay,
            ctl,
            server: Some(server),
        })
    }

    pub fn url(&self) -> String {
        self.server.as_ref().unwrap().url()
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.as_ref().unwrap().addr
    }

    pub async fn start_all(&mut self) {
        let url = self.url();
        for n in &mut self.nodes {
            n.start_agent(&url).await;
        }
    }

    pub fn names(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.name.clone()).collect()
    }

    /// Waits for a full mesh among nodes `idx`.
    pub async fn wait_full_mesh(&self, idx: &[usize]) {
        for &i in idx {
            let peers: Vec<&str> = idx
                .iter()
                .filter(|j| **j != i)
                .map(|j| self.nodes[*j].name.as_str())
                .collect();
            self.nodes[i].wait_mesh(&peers).await;
        }
    }
}

/// A "pod" for traffic tests: a namespace whose `eth0` is a veth to `node`'s bridge.
pub struct Pod {
    pub ns: NetNs,
    /// The node-side veth name, plugged into the bridge.
    pub port: String,
    pub ip: String,
}

impl Pod {
    pub fn new(node: &Node, port: &str, ip: &str) -> Pod {
        let ns = NetNs::new("wag-pod").unwrap();
        veth_pair(&ns, "eth0", &node.ns, port).unwrap();
        ns.exec(&["ip", "addr", "add", &format!("{ip}/24"), "dev", "eth0"])
            .unwrap();
        node.ovs.vsctl(&["add-port", BRIDGE, port]).unwrap();
        Pod {
            ns,
            port: port.to_string(),
            ip: ip.to_string(),
        }
    }
}

/// Static flows on `node`: everything from the pod goes into the tunnel to `peer` and
/// everything from that tunnel to the pod (replacing the node's flows).
pub fn wire_pod_to_tunnel(node: &Node, pod: &Pod, peer: &str) {
    let tun = node.ofport(&tunnel_ifname(peer));
    let pod_port = node.ofport(&pod.port);
    node.ovs
        .ofctl(&["-O", "OpenFlow13", "del-flows", BRIDGE])
        .unwrap();
    for flow in [
        format!("in_port={pod_port},actions=output:{tun}"),
        format!("in_port={tun},actions=output:{pod_port}"),
    ] {
        node.ovs
            .ofctl(&["-O", "OpenFlow13", "add-flow", BRIDGE, &flow])
            .unwrap();
    }
}

/// `ping -c count -i interval` from `from` to `to`; returns (sent, received).
pub fn ping(from: &Pod, to: &str, count: u32, interval: &str) -> (u32, u32) {
    let out = from
        .ns
        .command("ping")
        .unwrap()
        .args(["-c", &count.to_string(), "-i", interval, "-W", "2", to])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let line = text
        .lines()
        .find(|l| l.contains("packets transmitted"))
        .unwrap_or("");
    let num = |w: &str| -> u32 {
        let t: Vec<&str> = line.split_whitespace().collect();
        t.iter()
            .position(|x| x.starts_with(w))
            .and_then(|i| i.checked_sub(1))
            .and_then(|i| t[i].parse().ok())
            .unwrap_or(0)
    };
    (num("packets"), num("received"))
}
