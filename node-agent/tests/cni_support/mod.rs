//! Test node for the CNI server: an OVS sandbox in its own netns with bridge `weft0`, the agent's
//! CNI server in this process (its netlink socket in the node netns), a controller double on
//! loopback, and pods as namespaces. Invocations go through the real `weft-cni` code path
//! (the `weft-cni` binary, talking to the agent's unix socket).

#![allow(dead_code)]

pub mod controller;

use controller::{Double, Net};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use weft_agent::cni::ports::OvsdbPorts;
use weft_agent::cni::{CniConfig, CniService};
use weft_agent::ovsdb::{Client, ClientOptions, Endpoint};
use weft_testbed::{NetNs, OvsSandbox};

pub const BRIDGE: &str = "weft0";

pub type Service = CniService<OvsdbPorts<Client>>;

struct Agent {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
    service: Service,
}

/// Field order is drop order: agent, controller, OVS, then the namespace.
pub struct Node {
    agent: Option<Agent>,
    ctl_stop: Option<tokio::sync::oneshot::Sender<()>>,
    pub ctl: Double,
    pub ctl_addr: SocketAddr,
    pub ovs: OvsSandbox,
    pub dir: tempfile::TempDir,
    pub ns: NetNs,
    pub attach_timeout: Duration,
    /// What the agent's `/metrics` would show (shared across agent restarts, as in the daemon).
    pub metrics: std::sync::Arc<weft_agent::metrics::Metrics>,
}

pub fn netns_path(ns: &NetNs) -> String {
    format!("/run/netns/{}", ns.name())
}

/// Interface names in a namespace.
pub fn links(ns: &NetNs) -> BTreeSet<String> {
    ns.exec(&["ip", "-o", "link", "show"])
        .unwrap()
        .lines()
        .filter_map(|l| l.split(':').nth(1))
        .map(|n| n.trim().split('@').next().unwrap_or("").to_string())
        .collect()
}

/// Everything an attachment could leave behind on the node.
#[derive(Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub node_links: BTreeSet<String>,
    pub ovs_ports: BTreeSet<String>,
    pub reservations: usize,
    pub records: usize,
}

impl Node {
    /// `None` (after printing why) when the machine cannot run privileged tests.
    pub async fn start(test: &str) -> Option<Node> {
        if !weft_testbed::privileged_or_skip(test) {
            return None;
        }
        let ns = NetNs::new("wcni-node").unwrap();
        let ovs = OvsSandbox::start_in_netns(&ns).unwrap();
        ovs.add_bridge_netdev(BRIDGE).unwrap();
        let ctl = Double::default();
        ctl.add_network(
            "red/red",
            Net {
                subnet: Some(("10.77.0.0".parse().unwrap(), 24)),
                allowed: vec!["red".into()],
                mtu: 1400,
            },
        );
        ctl.add_network(
            "red/l2",
            Net {
                subnet: None,
                allowed: vec!["red".into()],
                mtu: 0,
            },
        );
        let (ctl_addr, ctl_stop) = ctl.serve().await;
        let mut node = Node {
            agent: None,
            ctl_stop: Some(ctl_stop),
            ctl,
            ctl_addr,
            ovs,
            dir: tempfile::tempdir().unwrap(),
            ns,
            attach_timeout: Duration::from_secs(5),
            metrics: Default::default(),
        };
        node.start_agent().await;
        Some(node)
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("cni.sock")
    }

    pub fn config(&self) -> CniConfig {
        let mut cfg = CniConfig::new("node-a", &format!("http://{}", self.ctl_addr));
        cfg.host_netns = Some(PathBuf::from(netns_path(&self.ns)));
        cfg.state_dir = self.dir.path().join("state");
        cfg.attach_timeout = self.attach_timeout;
        cfg.controller_timeout = Duration::from_secs(5);
        cfg.gc_interval = None;
        cfg.userspace_datapath = true;
        cfg.metrics = self.metrics.clone();
        cfg
    }

    pub async fn start_agent(&mut self) {
        let (db, _events) =
            Client::start(Endpoint::Unix(self.ovs.db_sock()), ClientOptions::default());
        let service = CniService::new(self.config(), OvsdbPorts::new(db, BRIDGE))
            .await
            .unwrap();
        let listener = weft_agent::cni::bind(&self.socket()).unwrap();
        let (stop, rx) = tokio::sync::oneshot::channel::<()>();
        let svc = service.clone();
        let task = tokio::spawn(async move {
            weft_agent::cni::serve_listener(svc, listener, async {
                let _ = rx.await;
            })
            .await
            .unwrap();
        });
        self.agent = Some(Agent {
            stop,
            task,
            service,
        });
    }

    pub async fn stop_agent(&mut self) {
        if let Some(a) = self.agent.take() {
            let _ = a.stop.send(());
            let _ = a.task.await;
        }
    }

    pub fn service(&self) -> &Service {
        &self.agent.as_ref().unwrap().service
    }

    /// A fresh pod namespace.
    pub fn pod(&self) -> NetNs {
        NetNs::new("wcni-pod").unwrap()
    }

    pub fn conf(&self, version: &str, network: &str) -> Value {
        json!({"cniVersion": version, "name": network.split('/').nth(1).unwrap_or(network), "type": "weft", "network": network})
    }

    /// Runs one CNI command through the `weft-cni` binary, as a runtime calls it, over the agent
    /// socket.
    pub async fn cni(
        &self,
        cmd: &str,
        cid: &str,
        netns: &str,
        ifname: &str,
        conf: &Value,
    ) -> (i32, Value) {
        self.cni_at(
            &self.socket().display().to_string(),
            cmd,
            cid,
            netns,
            ifname,
            conf,
        )
        .await
    }

    pub async fn cni_at(
        &self,
        socket: &str,
        cmd: &str,
        cid: &str,
        netns: &str,
        ifname: &str,
        conf: &Value,
    ) -> (i32, Value) {
        let mut env: HashMap<String, String> = [
            ("CNI_COMMAND", cmd),
            ("CNI_CONTAINERID", cid),
            ("CNI_NETNS", netns),
            ("CNI_IFNAME", ifname),
            ("CNI_PATH", "/usr/lib/cni:/opt/cni/bin"),
            ("WEFT_CNI_SOCKET", socket),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        env.insert(
            "CNI_ARGS".into(),
            format!(
                "IgnoreUnknown=1;K8S_POD_NAMESPACE=red;K8S_POD_NAME=pod-{cid};K8S_POD_UID=uid-{cid}"
            ),
        );
        let stdin = conf.to_string().into_bytes();
        let out = tokio::task::spawn_blocking(move || run_plugin(&env, &stdin))
            .await
            .unwrap();
        let v = if out.stdout.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&out.stdout).unwrap()
        };
        (out.status.code().unwrap_or(-1), v)
    }

    pub fn ovs_ports(&self) -> BTreeSet<String> {
        self.ovs
            .vsctl(&["list-ports", BRIDGE])
            .unwrap()
            .lines()
            .map(String::from)
            .collect()
    }

    /// external_ids of a port.
    pub fn port_ids(&self, port: &str) -> BTreeMap<String, String> {
        let out = self
            .ovs
            .vsctl(&["--format=json", "get", "Port", port, "external_ids"])
            .unwrap();
        // `{"k"="v", ...}` in ovs-vsctl's own syntax.
        out.trim()
            .trim_start_matches('{')
            .trim_end_matches('}')
            .split(", ")
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| {
                (
                    k.trim_matches('"').to_string(),
                    v.trim_matches('"').to_string(),
                )
            })
            .collect()
    }

    pub fn records(&self) -> usize {
        std::fs::read_dir(self.dir.path().join("state"))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            node_links: links(&self.ns),
            ovs_ports: self.ovs_ports(),
            reservations: self.ctl.reservations().len(),
            records: self.records(),
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(a) = self.agent.take() {
            let _ = a.stop.send(());
            a.task.abort();
        }
        if let Some(s) = self.ctl_stop.take() {
            let _ = s.send(());
        }
    }
}

/// Runs the plugin binary with exactly `env` (nothing inherited) and `stdin`.
fn run_plugin(env: &HashMap<String, String>, stdin: &[u8]) -> std::process::Output {
    use std::io::Write;
    static BIN: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    let bin = BIN.get_or_init(weft_cni_binary);
    let mut child = std::process::Command::new(bin)
        .env_clear()
        .envs(env)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

/// Error code of a failed invocation (panics on success).
pub fn code(out: &(i32, Value)) -> u64 {
    assert_ne!(out.0, 0, "expected failure, got {}", out.1);
    out.1["code"].as_u64().unwrap()
}

/// Builds (if needed) the `weft-cni` binary into the target dir and profile of the running test
/// or bench, and returns its path.
pub fn weft_cni_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe
        .parent()
        .and_then(std::path::Path::parent)
        .unwrap()
        .to_path_buf();
    let target_dir = profile_dir.parent().unwrap();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut build = std::process::Command::new(cargo);
    build
        .args([
            "build",
            "-q",
            "-p",
            "weft-cni",
            "--bin",
            "weft-cni",
            "--target-dir",
        ])
        .arg(target_dir);
    if profile_dir.file_name().is_some_and(|n| n == "release") {
        build.arg("--release");
    }
    let out = build.output().unwrap();
    assert!(
        out.status.success(),
        "building weft-cni: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    profile_dir.join("weft-cni")
}
