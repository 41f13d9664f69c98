//! `lab up`, `lab node add`, `lab node rm`: building the fabric.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::daemons::{self, start_agent, start_controller, start_ovs};
use super::{LabState, NodeState, binary, ctl_ns, lab_dir, node_ns, underlay_ns, validate_name};
use crate::sys::{self, ip, netns_add, veth};

/// How long the tunnel mesh may take to form after the last agent started.
const MESH_TIMEOUT: Duration = Duration::from_secs(30);

/// Everything `up` needs to refuse early with a clear message rather than half-build a lab.
pub fn preflight() -> Result<()> {
    sys::require_root()?;
    sys::require_tools()?;
    for b in ["weft-controller", "weft-agent", "weft-cni"] {
        binary(b)?;
    }
    Ok(())
}

/// Builds lab `name` with `nodes` nodes. On failure, removes what it made (unless `keep_failed`)
/// and returns the error with the failing daemon's log tail.
pub fn up(name: &str, nodes: u32, underlay_mtu: u32, keep_failed: bool) -> Result<LabState> {
    validate_name("lab", name)?;
    preflight()?;
    if !(1..=64).contains(&nodes) {
        bail!("--nodes must be 1..64");
    }
    if !(1280..=9000).contains(&underlay_mtu) {
        bail!("--underlay-mtu must be 1280..9000");
    }
    if lab_dir(name).join("state.json").exists()
        || sys::netns_list().iter().any(|n| super::is_lab_ns(name, n))
    {
        bail!("lab {name:?} already exists: `weftctl lab down --name {name}` first");
    }
    let guard = super::lock(name)?;
    let mut lab = LabState::new(name, underlay_mtu);
    lab.save()?;
    let built = build(&mut lab, nodes);
    if let Err(e) = built {
        drop(guard);
        if !keep_failed {
            let _ = super::down::down(name, true);
        }
        return Err(e.context(format!("building lab {name}")));
    }
    Ok(lab)
}

fn build(lab: &mut LabState, nodes: u32) -> Result<()> {
    let un = underlay_ns(&lab.name);
    netns_add(&un)?;
    ip(&["-n", &un, "link", "add", "br0", "type", "bridge"])?;
    let mtu = lab.underlay_mtu.to_string();
    ip(&["-n", &un, "link", "set", "br0", "mtu", &mtu, "up"])?;

    let cn = ctl_ns(&lab.name);
    netns_add(&cn)?;
    veth(&cn, "eth0", &un, "ctl")?;
    ip(&["-n", &un, "link", "set", "ctl", "master", "br0"])?;
    let cidr = format!("{}/24", lab.controller_ip());
    ip(&["-n", &cn, "addr", "add", &cidr, "dev", "eth0"])?;
    lab.save()?;
    let r = start_controller(lab);
    lab.save()?;
    r?;
    for _ in 0..nodes {
        add_node_unlocked(lab)?;
    }
    daemons::wait_mesh(lab, MESH_TIMEOUT)?;
    Ok(())
}

/// Adds the next node (`node<N>`): namespace, underlay link, OVS, agent. Saves the state after
/// each step so `down` finds everything even if a later step fails.
fn add_node_unlocked(lab: &mut LabState) -> Result<String> {
    let index = lab.next_node_index;
    lab.next_node_index += 1;
    let name = format!("node{index}");
    let ns = node_ns(&lab.name, &name);
    let ip_addr = lab.node_ip(index)?;
    lab.nodes.insert(
        name.clone(),
        NodeState {
            name: name.clone(),
            index,
            ns: ns.clone(),
            ip: ip_addr,
            ovsdb_pid: 0,
            vswitchd_pid: 0,
            agent_pid: 0,
        },
    );
    lab.save()?;
    std::fs::create_dir_all(lab.node_dir(&name))?;
    netns_add(&ns)?;
    let un = underlay_ns(&lab.name);
    let port = format!("n{index}");
    veth(&ns, "eth0", &un, &port)?;
    let mtu = lab.underlay_mtu.to_string();
    ip(&["-n", &ns, "link", "set", "eth0", "mtu", &mtu])?;
    ip(&[
        "-n", &un, "link", "set", &port, "mtu", &mtu, "master", "br0",
    ])?;
    ip(&[
        "-n",
        &ns,
        "addr",
        "add",
        &format!("{ip_addr}/24"),
        "dev",
        "eth0",
    ])?;
    // Save after each start, failed or not: a failed start may still have left a pid to kill.
    let r = start_ovs(lab, &name).with_context(|| format!("Open vSwitch on {name}"));
    lab.save()?;
    r?;
    let r = start_agent(lab, &name);
    lab.save()?;
    r?;
    Ok(name)
}

/// `lab node add`: one more node in a running lab; waits until the mesh includes it.
pub fn add_node(lab_name: &str) -> Result<(String, Duration)> {
    sys::require_root()?;
    let _guard = super::lock(lab_name)?;
    let mut lab = LabState::load(lab_name)?;
    let start = Instant::now();
    let name = add_node_unlocked(&mut lab)?;
    daemons::wait_mesh(&lab, MESH_TIMEOUT)?;
    Ok((name, start.elapsed()))
}

/// `lab node rm`: stops the node's agent and OVS and deletes its namespace. Refuses while pods
/// run there (remove them first, or pass `force` to drop them with the node, as a node crash
/// would).
pub fn remove_node(lab_name: &str, node: &str, force: bool) -> Result<()> {
    sys::require_root()?;
    let _guard = super::lock(lab_name)?;
    let mut lab = LabState::load(lab_name)?;
    let n = lab.node(node)?.clone();
    let pods: Vec<String> = lab
        .pods
        .values()
        .filter(|p| p.node == node)
        .map(|p| p.name.clone())
        .collect();
    if !pods.is_empty() && !force {
        bail!(
            "pods run on {node}: {} (weftctl pod rm them, or --force)",
            pods.join(", ")
        );
    }
    for p in &pods {
        if let Some(pod) = lab.pods.remove(p) {
            sys::netns_destroy(&pod.ns, Duration::from_secs(1))?;
        }
    }
    // The agent first (a live agent would register the node again), then the controller
    // forgets it: with `force`, together with the attachments of the pods just destroyed.
    daemons::stop(&mut lab, daemons::Component::Agent, Some(node), false)?;
    lab.save()?;
    forget_node(&lab, node, force)?;
    daemons::stop(&mut lab, daemons::Component::Ovs, Some(node), false)?;
    sys::netns_destroy(&n.ns, Duration::from_secs(2))?;
    let _ = ip(&[
        "-n",
        &underlay_ns(&lab.name),
        "link",
        "del",
        &format!("n{}", n.index),
    ]);
    let _ = std::fs::remove_dir_all(lab.node_dir(node));
    lab.nodes.remove(node);
    lab.save()
}

/// Tells the controller the node is gone for good (as deleting a Kubernetes Node would), so it
/// drops the node's tunnels and flows from every other switch.
fn forget_node(lab: &LabState, node: &str, force: bool) -> Result<()> {
    let r = crate::http::request(
        &lab.ctl_ns(),
        lab.rest_addr(),
        "DELETE",
        &format!("/v1/nodes/{node}?force={force}"),
        None,
    )?;
    match r.status {
        200 | 204 => Ok(()),
        // Already forgotten (a retry after an earlier failure).
        404 if !r.error_message().contains("no such endpoint") => Ok(()),
        404 if r.error_message().contains("no such endpoint") => bail!(
            "node {node} removed from the lab, but this controller has no node removal API \
             (DELETE /v1/nodes/{{name}}): other switches keep its tunnels and flows"
        ),
        s => bail!(
            "controller refused to forget node {node}: {} ({s})",
            r.error_message()
        ),
    }
}
