//! `weftctl`: the command line in front of the northbound API and the lab.

mod http;
mod lab;
mod net;
mod output;
mod pod;
mod sys;

use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};
use serde_json::json;

use lab::daemons::Component;
use output::{Format, emit};

#[derive(Parser, Debug)]
#[command(name = "weftctl", version, about = "Weft: networks, pods and the lab")]
struct Cli {
    /// Output format.
    #[arg(short = 'o', long, global = true, value_enum, default_value_t = Format::Table)]
    output: Format,
    /// Lab to act on (default `weft`; `demo` for `lab demo`).
    #[arg(long = "lab", visible_alias = "name", global = true, env = "WEFT_LAB")]
    lab: Option<String>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// A whole fabric in network namespaces on this machine.
    #[command(subcommand)]
    Lab(LabCmd),
    /// Virtual networks.
    #[command(subcommand)]
    Net(NetCmd),
    /// Lab pods (network namespaces attached with weft-cni).
    #[command(subcommand)]
    Pod(PodCmd),
}

#[derive(Subcommand, Debug)]
enum LabCmd {
    /// Build a lab: underlay, controller, N nodes with OVS and weft-agent.
    Up {
        #[arg(long, default_value_t = 3)]
        nodes: u32,
        #[arg(long, default_value_t = 1500)]
        underlay_mtu: u32,
        /// Leave a half-built lab in place when something fails (for debugging).
        #[arg(long)]
        keep_failed: bool,
    },
    /// Remove every namespace, process and file of a lab (works after crashes too).
    Down,
    /// Nodes, switches, networks, pods.
    Status,
    /// Labs on this machine.
    List,
    /// Build a 3-node lab, show reachability and isolation, tear it down.
    Demo {
        /// Keep the lab afterwards.
        #[arg(long)]
        keep: bool,
        #[arg(long, default_value_t = 3)]
        nodes: u32,
    },
    /// Add or remove nodes of a running lab.
    #[command(subcommand)]
    Node(NodeCmd),
    /// Stop a daemon (SIGTERM, or SIGKILL with --kill: a crash).
    Stop {
        component: Component,
        #[arg(long)]
        node: Option<String>,
        #[arg(long)]
        kill: bool,
    },
    /// Start a stopped daemon again.
    Start {
        component: Component,
        #[arg(long)]
        node: Option<String>,
    },
    /// Stop and start a daemon.
    Restart {
        component: Component,
        #[arg(long)]
        node: Option<String>,
        #[arg(long)]
        kill: bool,
    },
    /// Print the end of a daemon's log.
    Logs {
        component: Component,
        #[arg(long)]
        node: Option<String>,
        #[arg(long, default_value_t = 40)]
        lines: usize,
    },
}

#[derive(Subcommand, Debug)]
enum NodeCmd {
    /// Add the next node (`node<N>`); waits until tunnels to it are up.
    Add,
    /// Remove a node (refused while pods run there unless --force).
    Rm {
        node: String,
        #[arg(long)]
        force: bool,
    },
}

#[derive(Subcommand, Debug)]
enum NetCmd {
    /// Create a network (`NAME` or `NAMESPACE/NAME`).
    Create {
        name: String,
        #[arg(long)]
        subnet: Option<String>,
        #[arg(long)]
        gateway: Option<String>,
        #[arg(long)]
        mtu: Option<u32>,
        #[arg(long, default_value = "default")]
        namespace: String,
        /// Other namespaces whose pods may attach (repeatable).
        #[arg(long = "allow-namespace")]
        allow: Vec<String>,
        /// What the switch checks on the pods' frames (default: strict).
        #[arg(long, value_enum)]
        port_security: Option<net::PortSecurity>,
    },
    /// Delete a network (refused while pods use it unless --force).
    Delete {
        name: String,
        #[arg(long, default_value = "default")]
        namespace: String,
        #[arg(long)]
        force: bool,
    },
    /// Change a network's spec (`NAME` or `NAMESPACE/NAME`); refused while it would take an
    /// attached pod's address or namespace permission away.
    Update {
        name: String,
        #[arg(long, default_value = "default")]
        namespace: String,
        #[arg(long)]
        subnet: Option<String>,
        #[arg(long)]
        gateway: Option<String>,
        #[arg(long)]
        mtu: Option<u32>,
        /// Addresses or CIDRs never handed out, comma-separated (replaces the list).
        #[arg(long, value_delimiter = ',')]
        exclude_ips: Option<Vec<String>>,
        /// Other namespaces whose pods may attach, comma-separated (replaces the list).
        #[arg(long, value_delimiter = ',')]
        allowed_namespaces: Option<Vec<String>>,
        /// Remove a field (repeatable).
        #[arg(long, value_enum)]
        clear: Vec<net::SpecField>,
    },
    /// List networks.
    List,
    /// One network and its attachments.
    Show {
        name: String,
        #[arg(long, default_value = "default")]
        namespace: String,
    },
}

#[derive(Subcommand, Debug)]
enum PodCmd {
    /// Create a pod on a node, attached to networks as net1, net2, ...
    Run {
        name: String,
        #[arg(long)]
        node: String,
        /// Networks, comma-separated (`red,blue` or `ns/red`).
        #[arg(long, value_delimiter = ',', required = true)]
        net: Vec<String>,
        /// Static addresses per network, comma-separated in network order (CIDR; several for one
        /// network joined with `+`; empty = the controller's choice).
        #[arg(long, value_delimiter = ',')]
        ip: Vec<String>,
        /// Static MACs per network, comma-separated in network order.
        #[arg(long, value_delimiter = ',')]
        mac: Vec<String>,
        /// Kubernetes namespace of the pod.
        #[arg(long, default_value = "default")]
        namespace: String,
    },
    /// Run a command inside a pod.
    Exec {
        name: String,
        #[arg(last = true, required = true)]
        cmd: Vec<String>,
    },
    /// Remove a pod (CNI DEL for each network, then its namespace).
    Rm {
        name: String,
        #[arg(long)]
        force: bool,
    },
    /// List pods.
    List,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("weftctl: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    let fmt = cli.output;
    let lab_name = |default: &str| cli.lab.clone().unwrap_or_else(|| default.to_string());
    match cli.cmd {
        Cmd::Lab(c) => lab_cmd(c, fmt, lab_name("weft"), lab_name("demo")),
        Cmd::Net(c) => net_cmd(c, fmt, &lab_name("weft")),
        Cmd::Pod(c) => pod_cmd(c, fmt, &lab_name("weft")),
    }
}

fn lab_cmd(c: LabCmd, fmt: Format, name: String, demo_name: String) -> Result<ExitCode> {
    match c {
        LabCmd::Up {
            nodes,
            underlay_mtu,
            keep_failed,
        } => {
            let start = std::time::Instant::now();
            let lab = lab::up::up(&name, nodes, underlay_mtu, keep_failed)?;
            let secs = start.elapsed().as_secs_f64();
            emit(
                fmt,
                &json!({"lab": name, "nodes": lab.nodes.len(), "seconds": secs}),
                || {
                    format!(
                        "lab {name} up in {secs:.1} s: {} nodes, controller at {} (in {}); `weftctl lab status --lab {name}`\n",
                        lab.nodes.len(),
                        lab.controller_ip(),
                        lab.ctl_ns()
                    )
                },
            );
        }
        LabCmd::Down => {
            let r = lab::down::down(&name, false)?;
            emit(fmt, &serde_json::to_value(&r)?, || {
                format!(
                    "lab {name} removed: {} namespaces, {} processes{}\n",
                    r.namespaces.len(),
                    r.processes,
                    if r.dir_removed { ", its directory" } else { "" }
                )
            });
        }
        LabCmd::Status => {
            sys::require_root()?;
            let lab = lab::status::get(&name)?;
            let v = lab::status::collect(&lab);
            emit(fmt, &v, || lab::status::render(&v));
        }
        LabCmd::List => {
            let (v, t) = lab::status::list();
            emit(fmt, &v, || t);
        }
        LabCmd::Demo { keep, nodes } => {
            if demo_name != "demo" {
                anyhow::bail!("the demo always uses the lab name `demo`");
            }
            let ok = lab::demo::demo(keep, nodes)?;
            return Ok(if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            });
        }
        LabCmd::Node(NodeCmd::Add) => {
            let (node, took) = lab::up::add_node(&name)?;
            let secs = took.as_secs_f64();
            emit(fmt, &json!({"node": node, "seconds": secs}), || {
                format!("node {node} added in {secs:.1} s\n")
            });
        }
        LabCmd::Node(NodeCmd::Rm { node, force }) => {
            lab::up::remove_node(&name, &node, force)?;
            emit(fmt, &json!({"removed": node}), || {
                format!("node {node} removed\n")
            });
        }
        LabCmd::Stop {
            component,
            node,
            kill,
        } => daemon_op(&name, component, node.as_deref(), Some(kill), false)?,
        LabCmd::Start { component, node } => {
            daemon_op(&name, component, node.as_deref(), None, true)?
        }
        LabCmd::Restart {
            component,
            node,
            kill,
        } => daemon_op(&name, component, node.as_deref(), Some(kill), true)?,
        LabCmd::Logs {
            component,
            node,
            lines,
        } => {
            let lab = lab::LabState::load(&name)?;
            let path = lab::daemons::log_path(&lab, component, node.as_deref())?;
            println!("{}", sys::tail(&path, lines));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn daemon_op(
    name: &str,
    what: Component,
    node: Option<&str>,
    stop_kill: Option<bool>,
    start: bool,
) -> Result<()> {
    sys::require_root()?;
    let _guard = lab::lock(name)?;
    let mut lab = lab::LabState::load(name)?;
    if let Some(kill) = stop_kill {
        lab::daemons::stop(&mut lab, what, node, kill)?;
        lab.save()?;
    }
    if start {
        let r = lab::daemons::start(&mut lab, what, node);
        lab.save()?;
        r?;
    }
    Ok(())
}

fn net_cmd(c: NetCmd, fmt: Format, lab_name: &str) -> Result<ExitCode> {
    sys::require_root()?;
    let lab = lab::LabState::load(lab_name)?;
    match c {
        NetCmd::Create {
            name,
            subnet,
            gateway,
            mtu,
            namespace,
            allow,
            port_security,
        } => {
            let v = net::create(
                &lab,
                &net::CreateArgs {
                    name: &name,
                    namespace: &namespace,
                    subnet: subnet.as_deref(),
                    gateway: gateway.as_deref(),
                    mtu,
                    allowed_namespaces: &allow,
                    port_security,
                },
            )?;
            emit(fmt, &v, || {
                format!(
                    "network {}/{} created (segment {})\n",
                    v["namespace"].as_str().unwrap_or("?"),
                    v["name"].as_str().unwrap_or("?"),
                    v["segment"]
                )
            });
        }
        NetCmd::Delete {
            name,
            namespace,
            force,
        } => {
            let v = net::delete(&lab, &name, &namespace, force)?;
            emit(fmt, &v, || format!("network {name} deleted\n"));
        }
        NetCmd::Update {
            name,
            namespace,
            subnet,
            gateway,
            mtu,
            exclude_ips,
            allowed_namespaces,
            clear,
        } => {
            let v = net::update(
                &lab,
                &net::UpdateArgs {
                    name: &name,
                    namespace: &namespace,
                    subnet: subnet.as_deref(),
                    gateway: gateway.as_deref(),
                    mtu,
                    exclude_ips: exclude_ips.as_deref(),
                    allowed_namespaces: allowed_namespaces.as_deref(),
                    clear: &clear,
                },
            )?;
            emit(fmt, &v, || net::render_networks(&json!([v])));
        }
        NetCmd::List => {
            let v = net::list(&lab)?;
            emit(fmt, &v, || net::render_networks(&v));
        }
        NetCmd::Show { name, namespace } => {
            let (ns, n) = net::split_key(&name, &namespace);
            let Some(v) = net::get(&lab, &n, &ns)? else {
                anyhow::bail!("network {ns}/{n} does not exist");
            };
            let atts = net::attachments(&lab, Some((&ns, &n)))?;
            let all = json!({"network": v, "attachments": atts});
            emit(fmt, &all, || {
                let mut t = output::Table::new(&["POD", "NODE", "IFNAME", "MAC", "IPS", "OFPORT"]);
                for a in atts.as_array().into_iter().flatten() {
                    let s = |k: &str| a[k].as_str().unwrap_or("-").to_string();
                    t.row(vec![
                        format!("{}/{}", s("podNamespace"), s("podName")),
                        s("node"),
                        s("ifname"),
                        s("mac"),
                        a["ips"]
                            .as_array()
                            .map(|i| {
                                i.iter()
                                    .filter_map(|x| x.as_str())
                                    .collect::<Vec<_>>()
                                    .join(",")
                            })
                            .unwrap_or_default(),
                        a["ofport"].to_string(),
                    ]);
                }
                format!("{}\n{}", net::render_networks(&json!([v])), t.render())
            });
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn pod_cmd(c: PodCmd, fmt: Format, lab_name: &str) -> Result<ExitCode> {
    match c {
        PodCmd::Run {
            name,
            node,
            net,
            ip,
            mac,
            namespace,
        } => {
            let p = pod::run(
                lab_name,
                &pod::RunArgs {
                    name: &name,
                    node: &node,
                    namespace: &namespace,
                    nets: &net,
                    ips: &ip,
                    macs: &mac,
                },
            )?;
            let v = lab::status::pod_json(&p);
            emit(fmt, &v, || pod::render_pods(&json!([v])));
        }
        PodCmd::Exec { name, cmd } => {
            let code = pod::exec(lab_name, &name, &cmd)?;
            return Ok(ExitCode::from(code.clamp(0, 255) as u8));
        }
        PodCmd::Rm { name, force } => {
            pod::rm(lab_name, &name, force)?;
            emit(fmt, &json!({"removed": name}), || {
                format!("pod {name} removed\n")
            });
        }
        PodCmd::List => {
            let lab = lab::LabState::load(lab_name)?;
            let v: Vec<_> = lab.pods.values().map(lab::status::pod_json).collect();
            let v = serde_json::Value::Array(v);
            emit(fmt, &v, || pod::render_pods(&v));
        }
    }
    Ok(ExitCode::SUCCESS)
}
