//! The OVS sandbox starts real daemons, drives them, and leaves nothing behind.

use std::path::Path;
use weft_testbed::{NetNs, OvsSandbox, privileged_or_skip, unique_ifname};

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

fn link_exists_root(name: &str) -> bool {
    std::process::Command::new(weft_testbed::find_tool("ip").unwrap())
        .args(["link", "show", "dev", name])
        .output()
        .unwrap()
        .status
        .success()
}

#[test]
fn db_only_starts_answers_and_cleans_up() {
    if !privileged_or_skip("db_only_starts_answers_and_cleans_up") {
        return;
    }
    let sb = OvsSandbox::start_db_only().unwrap();
    assert!(sb.db_sock().exists());
    assert!(sb.vswitchd_pid().is_none());
    // --no-wait is implied without vswitchd, so this returns instead of hanging.
    sb.vsctl(&["init"]).unwrap();
    let uuid = sb.vsctl(&["get", "Open_vSwitch", ".", "_uuid"]).unwrap();
    assert_eq!(uuid.trim().len(), 36, "unexpected uuid {uuid:?}");
    let dir = sb.rundir().to_path_buf();
    let pid = sb.ovsdb_pid().unwrap();
    assert!(alive(pid));
    drop(sb);
    assert!(!dir.exists(), "temp dir {dir:?} left behind");
    assert!(!alive(pid), "ovsdb-server {pid} still running");
}

#[test]
fn netdev_bridge_in_root_namespace() {
    if !privileged_or_skip("netdev_bridge_in_root_namespace") {
        return;
    }
    let sb = OvsSandbox::start().unwrap();
    let br = unique_ifname("wtb");
    sb.add_bridge_netdev(&br).unwrap();
    let show = sb.vsctl(&["show"]).unwrap();
    assert!(show.contains(&format!("Bridge {br}")), "{show}");
    assert!(show.contains("datapath_type: netdev"), "{show}");
    assert_eq!(
        sb.vsctl(&["get", "Bridge", &br, "fail_mode"])
            .unwrap()
            .trim(),
        "secure"
    );
    let flows = sb.ofctl(&["-O", "OpenFlow13", "dump-flows", &br]).unwrap();
    assert!(flows.contains("OFPST_FLOW reply (OF1.3)"), "{flows}");
    assert!(
        !flows.contains("actions="),
        "secure bridge should start empty: {flows}"
    );
    sb.ofctl(&[
        "-O",
        "OpenFlow13",
        "add-flow",
        &br,
        "priority=7,actions=drop",
    ])
    .unwrap();
    let flows = sb.ofctl(&["-O", "OpenFlow13", "dump-flows", &br]).unwrap();
    assert!(flows.contains("priority=7"), "{flows}");
    // OpenFlow 1.0 is not enabled on the bridge, so this must fail.
    assert!(sb.ofctl(&["-O", "OpenFlow10", "dump-flows", &br]).is_err());
    assert!(link_exists_root(&br));
    let (dir, p1, p2) = (
        sb.rundir().to_path_buf(),
        sb.ovsdb_pid().unwrap(),
        sb.vswitchd_pid().unwrap(),
    );
    drop(sb);
    assert!(!dir.exists());
    assert!(!alive(p1) && !alive(p2));
    assert!(!link_exists_root(&br), "bridge tap {br} left behind");
}

#[test]
fn killed_vswitchd_taps_are_removed_on_drop() {
    if !privileged_or_skip("killed_vswitchd_taps_are_removed_on_drop") {
        return;
    }
    let mut sb = OvsSandbox::start().unwrap();
    let br = unique_ifname("wtk");
    let port = unique_ifname("wtp");
    sb.add_bridge_netdev(&br).unwrap();
    sb.vsctl(&[
        "add-port",
        &br,
        &port,
        "--",
        "set",
        "Interface",
        &port,
        "type=internal",
    ])
    .unwrap();
    let ofport = sb.vsctl(&["get", "Interface", &port, "ofport"]).unwrap();
    assert!(ofport.trim().parse::<i64>().unwrap() > 0, "{ofport}");
    let pid = sb.vswitchd_pid().unwrap();
    sb.kill_vswitchd().unwrap();
    assert!(!alive(pid));
    assert!(sb.appctl_vswitchd(&["version"]).is_err());
    // The db still answers (vsctl now runs with --no-wait).
    assert!(sb.vsctl(&["list-br"]).unwrap().contains(&br));
    assert!(
        link_exists_root(&port),
        "persistent tap should outlive vswitchd"
    );
    drop(sb);
    assert!(!link_exists_root(&br) && !link_exists_root(&port));
}

#[test]
fn sandbox_inside_a_namespace() {
    if !privileged_or_skip("sandbox_inside_a_namespace") {
        return;
    }
    let ns = NetNs::new("wtsb").unwrap();
    let sb = OvsSandbox::start_in_netns(&ns).unwrap();
    assert_eq!(sb.netns(), Some(ns.name()));
    sb.add_bridge_netdev("br0").unwrap();
    sb.vsctl(&[
        "add-port",
        "br0",
        "p0",
        "--",
        "set",
        "Interface",
        "p0",
        "type=internal",
    ])
    .unwrap();
    let links = ns.exec(&["ip", "-o", "link", "show"]).unwrap();
    assert!(
        links.contains(": br0:") && links.contains(": p0:"),
        "{links}"
    );
    let flows = sb
        .ofctl(&["-O", "OpenFlow13", "dump-flows", "br0"])
        .unwrap();
    assert!(flows.contains("OF1.3"), "{flows}");
    let v = sb.appctl_vswitchd(&["version"]).unwrap();
    assert!(v.contains("ovs-vswitchd"), "{v}");
    let pid = sb.vswitchd_pid().unwrap();
    assert!(
        ns.pids().contains(&(pid as i32)),
        "vswitchd not in the namespace"
    );
    drop(sb);
    assert!(!alive(pid));
    assert!(ns.pids().is_empty());
}

#[test]
fn restarted_ovsdb_keeps_its_data() {
    if !privileged_or_skip("restarted_ovsdb_keeps_its_data") {
        return;
    }
    let mut sb = OvsSandbox::start_db_only().unwrap();
    sb.vsctl(&[
        "init",
        "--",
        "set",
        "Open_vSwitch",
        ".",
        "external_ids:k=v1",
    ])
    .unwrap();
    let old = sb.ovsdb_pid().unwrap();
    sb.restart_ovsdb().unwrap();
    assert!(!alive(old));
    assert_ne!(sb.ovsdb_pid(), Some(old));
    let v = sb
        .vsctl(&["get", "Open_vSwitch", ".", "external_ids:k"])
        .unwrap();
    assert_eq!(v.trim(), "v1");
}
