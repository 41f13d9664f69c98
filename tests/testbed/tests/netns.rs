//! Namespace guards: created, usable, and removed with everything left inside.

use std::path::Path;
use std::time::Duration;
use weft_testbed::{NetNs, privileged_or_skip, veth_pair};

fn netns_listed(name: &str) -> bool {
    let out = std::process::Command::new(weft_testbed::find_tool("ip").unwrap())
        .args(["netns", "list"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .any(|l| l.split_whitespace().next() == Some(name))
}

#[test]
fn netns_created_and_removed_with_its_processes() {
    if !privileged_or_skip("netns_created_and_removed_with_its_processes") {
        return;
    }
    let ns = NetNs::new("wtns").unwrap();
    let other = NetNs::new("wtns").unwrap();
    assert_ne!(ns.name(), other.name());
    let name = ns.name().to_string();
    assert!(netns_listed(&name));
    let lo = ns.exec(&["ip", "-o", "link", "show", "lo"]).unwrap();
    assert!(lo.contains("UP"), "lo not up: {lo}");
    let err = ns.exec(&["ip", "link", "show", "nosuchdev0"]).unwrap_err();
    assert!(
        err.to_string().contains("nosuchdev0"),
        "stderr missing: {err}"
    );
    let mut child = ns.spawn(&["sleep", "600"]).unwrap();
    let pid = child.id();
    assert!(ns.pids().contains(&(pid as i32)));
    drop(ns);
    // Drop killed it; reap so the pid disappears from /proc.
    let status = child.wait().unwrap();
    assert!(!status.success());
    assert!(!Path::new(&format!("/proc/{pid}")).exists());
    assert!(!netns_listed(&name));
    assert!(netns_listed(other.name()));
}

#[test]
fn veth_pair_connects_two_namespaces() {
    if !privileged_or_skip("veth_pair_connects_two_namespaces") {
        return;
    }
    let a = NetNs::new("wtva").unwrap();
    let b = NetNs::new("wtvb").unwrap();
    veth_pair(&a, "va0", &b, "vb0").unwrap();
    a.exec(&["ip", "addr", "add", "10.77.0.1/30", "dev", "va0"])
        .unwrap();
    b.exec(&["ip", "addr", "add", "10.77.0.2/30", "dev", "vb0"])
        .unwrap();
    let rx = b
        .run_in(|| std::net::UdpSocket::bind("10.77.0.2:4789"))
        .unwrap()
        .unwrap();
    let tx = a
        .run_in(|| std::net::UdpSocket::bind("10.77.0.1:0"))
        .unwrap()
        .unwrap();
    rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    tx.send_to(b"over the veth", "10.77.0.2:4789").unwrap();
    let mut buf = [0u8; 64];
    let (n, from) = rx.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"over the veth");
    assert_eq!(from.ip().to_string(), "10.77.0.1");
    // The address exists only inside the namespaces, not in the root namespace.
    assert!(std::net::UdpSocket::bind("10.77.0.2:0").is_err());
}
