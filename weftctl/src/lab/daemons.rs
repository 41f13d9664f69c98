//! The lab's daemons: per-node Open vSwitch and `weft-agent`, and the controller.
//!
//! Every daemon runs inside its namespace (`ip netns exec`), in its own process group (so a
//! Ctrl-C of `weftctl` does not reach it), with its log in the lab dir. Pids go to `state.json`.

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::{
    AGENT_METRICS_PORT, BRIDGE, CONTROLLER_GRPC_PORT, CONTROLLER_METRICS_PORT,
    CONTROLLER_REST_PORT, LabState, OPENFLOW_PORT, binary,
};
use crate::http;
use crate::sys::{self, in_netns, kill_all, pid_alive, tail, tool, wait_until};

const READY: Duration = Duration::from_secs(30);
const STOP_GRACE: Duration = Duration::from_secs(3);

/// Starts `program args` detached inside `ns`, stdout+stderr appended to `log`; returns its pid.
fn spawn_detached(ns: &str, program: &Path, args: &[String], log: &Path) -> Result<i32> {
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("opening {}", log.display()))?;
    let err = out.try_clone()?;
    let child = in_netns(ns, program)?
        .args(args)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0)
        .spawn()
        .with_context(|| format!("starting {} in {ns}", program.display()))?;
    // Not waited for: it outlives this command. `ip netns exec` execs the program, so this is the
    // daemon's own pid.
    Ok(child.id() as i32)
}

/// Environment that points the OVS tools at a node's private run dir.
fn ovs_env(c: &mut Command, dir: &Path) {
    c.env("OVS_RUNDIR", dir)
        .env("OVS_DBDIR", dir)
        .env("OVS_LOGDIR", dir)
        .env("OVS_SYSCONFDIR", dir);
}

fn ovs_tool(ns: &str, dir: &Path, name: &str) -> Result<Command> {
    let mut c = in_netns(ns, &tool(name)?)?;
    ovs_env(&mut c, dir);
    Ok(c)
}

/// `ovs-vsctl` against a node's ovsdb-server.
pub fn vsctl(lab: &LabState, node: &str, args: &[&str]) -> Result<String> {
    let n = lab.node(node)?;
    let dir = lab.ovs_dir(node);
    let mut c = ovs_tool(&n.ns, &dir, "ovs-vsctl")?;
    c.arg(format!("--db=unix:{}", dir.join("db.sock").display()))
        .arg("--timeout=10")
        .args(args);
    sys::run(&mut c)
}

/// `ovs-ofctl -O OpenFlow13 <args>` on a node (bridge names resolve through its run dir).
pub fn ofctl(lab: &LabState, node: &str, args: &[&str]) -> Result<String> {
    let n = lab.node(node)?;
    let mut c = ovs_tool(&n.ns, &lab.ovs_dir(node), "ovs-ofctl")?;
    c.arg("-O").arg("OpenFlow13").args(args);
    sys::run(&mut c)
}

/// Runs an OVS daemon with `--detach`: the command returns once the daemon is ready. Output goes
/// to a file, not a pipe: a pipe held open by the daemon would block the wait forever.
fn run_detaching(c: &mut Command, out: &Path) -> Result<()> {
    let f = append(out)?;
    let status = c
        .stdin(Stdio::null())
        .stdout(f.try_clone()?)
        .stderr(f)
        .status()
        .context("spawning")?;
    if !status.success() {
        bail!("exited with {status}: {}", tail(out, 10));
    }
    Ok(())
}

fn pidfile(path: &Path) -> Result<i32> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    text.trim()
        .parse()
        .with_context(|| format!("bad pid in {}", path.display()))
}

/// ovsdb-server and ovs-vswitchd for `node`, each `--detach`ed (they return once ready).
pub fn start_ovs(lab: &mut LabState, node: &str) -> Result<()> {
    let ns = lab.node(node)?.ns.clone();
    let dir = lab.ovs_dir(node);
    std::fs::create_dir_all(&dir)?;
    let schema = std::env::var_os("OVS_PKGDATADIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/share/openvswitch"))
        .join("vswitch.ovsschema");
    let db = dir.join("conf.db");
    if !db.exists() {
        sys::run(
            Command::new(tool("ovsdb-tool")?)
                .arg("create")
                .arg(&db)
                .arg(&schema),
        )?;
    }
    let log = |n: &str| format!("--log-file={}", dir.join(n).display());
    let mut c = ovs_tool(&ns, &dir, "ovsdb-server")?;
    c.arg(&db)
        .arg(format!("--remote=punix:{}", dir.join("db.sock").display()))
        .arg(format!(
            "--unixctl={}",
            dir.join("ovsdb-server.ctl").display()
        ))
        .arg(format!(
            "--pidfile={}",
            dir.join("ovsdb-server.pid").display()
        ))
        .arg(log("ovsdb-server.log"))
        .args(["-vconsole:off", "--detach", "--no-chdir"]);
    run_detaching(&mut c, &dir.join("ovsdb-server.stderr")).context("starting ovsdb-server")?;
    let ovsdb_pid = pidfile(&dir.join("ovsdb-server.pid"))?;
    lab.nodes.get_mut(node).context("node vanished")?.ovsdb_pid = ovsdb_pid;
    vsctl(lab, node, &["--no-wait", "init"])?;
    let mut c = ovs_tool(&ns, &dir, "ovs-vswitchd")?;
    c.arg(format!("unix:{}", dir.join("db.sock").display()))
        .arg(format!(
            "--unixctl={}",
            dir.join("ovs-vswitchd.ctl").display()
        ))
        .arg(format!(
            "--pidfile={}",
            dir.join("ovs-vswitchd.pid").display()
        ))
        .arg(log("ovs-vswitchd.log"))
        .args(["-vconsole:off", "--detach", "--no-chdir"]);
    run_detaching(&mut c, &dir.join("ovs-vswitchd.stderr")).with_context(|| {
        format!(
            "starting ovs-vswitchd\n{}",
            tail(&dir.join("ovs-vswitchd.log"), 15)
        )
    })?;
    let vswitchd_pid = pidfile(&dir.join("ovs-vswitchd.pid"))?;
    lab.nodes
        .get_mut(node)
        .context("node vanished")?
        .vswitchd_pid = vswitchd_pid;
    Ok(())
}

/// The controller, standalone, state file in the lab dir. Waits for its REST API.
pub fn start_controller(lab: &mut LabState) -> Result<()> {
    let ns = lab.ctl_ns();
    let bin = binary("weft-controller")?;
    let dir = lab.dir();
    let tls = super::pki::controller(lab)?;
    let args = vec![
        format!("--tls-cert={}", tls.cert.display()),
        format!("--tls-key={}", tls.key.display()),
        format!("--tls-ca={}", tls.ca.display()),
        format!("--openflow-listen=0.0.0.0:{OPENFLOW_PORT}"),
        format!("--grpc-listen=0.0.0.0:{CONTROLLER_GRPC_PORT}"),
        format!("--http-listen=127.0.0.1:{CONTROLLER_REST_PORT}"),
        format!("--metrics-listen=127.0.0.1:{CONTROLLER_METRICS_PORT}"),
        format!("--state-file={}", dir.join("controller.redb").display()),
        format!("--cluster={}", lab.name),
        format!("--underlay-mtu={}", lab.underlay_mtu),
    ];
    let log = dir.join("controller.log");
    let pid = spawn_detached(&ns, &bin, &args, &log)?;
    lab.controller_pid = pid;
    let start = Instant::now();
    let ok = wait_until(READY, || {
        pid_alive(pid)
            && http::request(&ns, lab.rest_addr(), "GET", "/healthz", None)
                .is_ok_and(|r| r.status == 200)
    });
    if !ok {
        bail!(
            "weft-controller not ready after {:?} (alive: {}); log {}:\n{}",
            start.elapsed(),
            pid_alive(pid),
            log.display(),
            tail(&log, 20)
        );
    }
    Ok(())
}

/// `weft-agent` for `node`. Waits for its CNI socket and its switch's OpenFlow connection.
pub fn start_agent(lab: &mut LabState, node: &str) -> Result<()> {
    let n = lab.node(node)?.clone();
    let bin = binary("weft-agent")?;
    let dir = lab.node_dir(node);
    let sock = lab.cni_socket(node);
    let _ = std::fs::remove_file(&sock);
    let tls = super::pki::node(lab, node)?;
    let args = vec![
        format!("--node-name={node}"),
        format!(
            "--controller=https://{}:{CONTROLLER_GRPC_PORT}",
            lab.controller_ip()
        ),
        format!("--tls-cert={}", tls.cert.display()),
        format!("--tls-key={}", tls.key.display()),
        format!("--tls-ca={}", tls.ca.display()),
        format!("--underlay-ip={}", n.ip),
        format!(
            "--ovsdb=unix:{}",
            lab.ovs_dir(node).join("db.sock").display()
        ),
        format!("--bridge={BRIDGE}"),
        "--datapath-type=netdev".to_string(),
        format!(
            "--openflow-target=ssl:{}:{OPENFLOW_PORT}",
            lab.controller_ip()
        ),
        format!("--cni-socket={}", sock.display()),
        format!("--cni-state-dir={}", dir.join("cni").display()),
        format!("--metrics-listen=127.0.0.1:{AGENT_METRICS_PORT}"),
    ];
    let log = dir.join("agent.log");
    let pid = spawn_detached(&n.ns, &bin, &args, &log)?;
    lab.nodes.get_mut(node).context("node vanished")?.agent_pid = pid;
    let start = Instant::now();
    // Ready = serving CNI and the node's switch reconciled by the controller. (OVS's own
    // `is_connected` column is rate-limited to one update per ~5 s, too slow to wait on.)
    let ok = wait_until(READY, || {
        pid_alive(pid) && sock.exists() && switch_reconciled(lab, node)
    });
    if !ok {
        bail!(
            "weft-agent on {node} not ready after {:?} (alive: {}, CNI socket: {}, switch reconciled: {}); log {}:\n{}",
            start.elapsed(),
            pid_alive(pid),
            sock.exists(),
            switch_reconciled(lab, node),
            log.display(),
            tail(&log, 20)
        );
    }
    Ok(())
}

/// Whether the controller has reconciled `node`'s switch at least once (its metrics list the
/// node's flow count).
pub fn switch_reconciled(lab: &LabState, node: &str) -> bool {
    let series = format!("weft_switch_flows{{node=\"{node}\"}}");
    super::status::controller_metrics(lab).is_some_and(|m| m.contains_key(&series))
}

/// Whether `weft0` on `node` has an OpenFlow connection to the controller (as OVS reports it,
/// updated every few seconds).
pub fn switch_connected(lab: &LabState, node: &str) -> bool {
    vsctl(
        lab,
        node,
        &[
            "--format=csv",
            "--data=bare",
            "--no-headings",
            "--columns=is_connected",
            "list",
            "Controller",
        ],
    )
    .is_ok_and(|o| o.lines().any(|l| l.trim() == "true"))
}

/// Tunnel ports on `node`'s bridge that OVS has given an OpenFlow port number: interfaces the
/// agent marked `weft.dev/owner=tunnel` (with `weft.dev/peer=<node>`).
pub fn tunnel_ports(lab: &LabState, node: &str) -> Vec<String> {
    vsctl(
        lab,
        node,
        &[
            "--format=csv",
            "--data=bare",
            "--no-headings",
            "--columns=name,ofport",
            "find",
            "Interface",
            "external_ids:weft.dev/owner=tunnel",
        ],
    )
    .map(|o| {
        o.lines()
            .filter_map(|l| l.split_once(','))
            .filter(|(_, port)| port.trim().parse::<i64>().is_ok_and(|p| p > 0))
            .map(|(name, _)| name.trim().to_string())
            .collect()
    })
    .unwrap_or_default()
}

/// Waits until every node has a tunnel port per other node.
pub fn wait_mesh(lab: &LabState, timeout: Duration) -> Result<()> {
    let want = lab.nodes.len().saturating_sub(1);
    let ok = wait_until(timeout, || {
        lab.nodes.keys().all(|n| tunnel_ports(lab, n).len() == want)
    });
    if !ok {
        let have: Vec<String> = lab
            .nodes
            .keys()
            .map(|n| format!("{n}: {}", tunnel_ports(lab, n).len()))
            .collect();
        bail!(
            "tunnel mesh incomplete after {timeout:?}: want {want} per node, have {}",
            have.join(", ")
        );
    }
    Ok(())
}

/// What `lab restart` / `lab stop` act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Component {
    Controller,
    Agent,
    Ovs,
}

/// Stops a daemon (TERM, then KILL); `kill` skips the grace period (a crash).
pub fn stop(lab: &mut LabState, what: Component, node: Option<&str>, kill: bool) -> Result<()> {
    let grace = if kill { Duration::ZERO } else { STOP_GRACE };
    match what {
        Component::Controller => {
            kill_all(&[lab.controller_pid], grace);
            lab.controller_pid = 0;
        }
        Component::Agent | Component::Ovs => {
            let node = node.context("which node? (--node)")?;
            let n = lab.nodes.get_mut(node).context("no such node")?;
            if what == Component::Agent {
                kill_all(&[n.agent_pid], grace);
                n.agent_pid = 0;
            } else {
                kill_all(&[n.vswitchd_pid, n.ovsdb_pid], grace);
                n.vswitchd_pid = 0;
                n.ovsdb_pid = 0;
            }
        }
    }
    Ok(())
}

/// Starts a stopped daemon again with the same arguments and state.
pub fn start(lab: &mut LabState, what: Component, node: Option<&str>) -> Result<()> {
    match what {
        Component::Controller => start_controller(lab),
        Component::Agent => start_agent(lab, node.context("which node? (--node)")?),
        Component::Ovs => start_ovs(lab, node.context("which node? (--node)")?),
    }
}

/// A log file of the lab, for `lab logs`.
pub fn log_path(lab: &LabState, what: Component, node: Option<&str>) -> Result<PathBuf> {
    Ok(match what {
        Component::Controller => lab.dir().join("controller.log"),
        Component::Agent => lab
            .node_dir(node.context("which node? (--node)")?)
            .join("agent.log"),
        Component::Ovs => lab
            .ovs_dir(node.context("which node? (--node)")?)
            .join("ovs-vswitchd.log"),
    })
}

/// Opens a file for appending (used for logs of one-shot helpers).
pub fn append(path: &Path) -> Result<File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))
}
