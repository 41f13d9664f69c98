//! `lab down`: removes every namespace, process, link and file of a lab, whatever state it is in.
//!
//! It trusts nothing: pids come from `state.json`, from OVS pidfiles, from the processes inside
//! the lab's namespaces and from any process whose command line names the lab's directory; the
//! namespaces come from the namespace list by name. Links all live inside lab namespaces and go
//! with them.

use std::path::Path;
use std::time::Duration;

use anyhow::Result;
use serde::Serialize;

use super::{LabState, known_labs, lab_dir, owner_of};
use crate::sys::{self, kill_all, netns_pids, pid_alive};

#[derive(Debug, Default, Serialize)]
pub struct DownReport {
    pub lab: String,
    pub namespaces: Vec<String>,
    pub processes: usize,
    pub dir_removed: bool,
}

/// Pids of processes whose command line mentions `needle` (e.g. the lab dir with a trailing `/`).
fn pids_mentioning(needle: &str) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let me = std::process::id() as i32;
    dir.filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()))
        .filter(|pid| *pid != me)
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| String::from_utf8_lossy(&c).contains(needle))
                .unwrap_or(false)
        })
        .collect()
}

fn pidfiles(dir: &Path) -> Vec<i32> {
    let Ok(nodes) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut pids = Vec::new();
    for n in nodes.filter_map(|e| e.ok()) {
        for f in ["ovs-vswitchd.pid", "ovsdb-server.pid"] {
            if let Ok(t) = std::fs::read_to_string(n.path().join("ovs").join(f))
                && let Ok(p) = t.trim().parse()
            {
                pids.push(p);
            }
        }
    }
    pids
}

/// Tears lab `name` down. `quiet` skips nothing; it only exists so callers can decide on output.
pub fn down(name: &str, _quiet: bool) -> Result<DownReport> {
    sys::require_root()?;
    let dir = lab_dir(name);
    let mut report = DownReport {
        lab: name.to_string(),
        ..DownReport::default()
    };
    let guard = if dir.exists() {
        Some(super::lock(name)?)
    } else {
        None
    };
    let state = LabState::load(name).ok();

    // Agents first (they would react to their switch vanishing), then the controller.
    let mut first: Vec<i32> = Vec::new();
    if let Some(s) = &state {
        first.extend(s.nodes.values().map(|n| n.agent_pid));
        first.push(s.controller_pid);
    }
    // Only kill recorded pids that still look like ours: a pid may have been reused.
    let dir_needle = format!("{}/", dir.display());
    let ours = pids_mentioning(&dir_needle);
    first.retain(|p| ours.contains(p));
    report.processes += first.iter().filter(|p| pid_alive(**p)).count();
    kill_all(&first, Duration::from_secs(2));

    let mut labs = known_labs();
    if !labs.iter().any(|l| l == name) {
        labs.push(name.to_string());
    }
    let namespaces: Vec<String> = sys::netns_list()
        .into_iter()
        .filter(|ns| owner_of(ns, &labs) == Some(name))
        .collect();
    let mut rest: Vec<i32> = pidfiles(&dir)
        .into_iter()
        .filter(|p| ours.contains(p))
        .collect();
    rest.extend(pids_mentioning(&dir_needle));
    for ns in &namespaces {
        rest.extend(netns_pids(ns));
    }
    rest.sort_unstable();
    rest.dedup();
    report.processes += rest.iter().filter(|p| pid_alive(**p)).count();
    kill_all(&rest, Duration::from_secs(2));

    // Pods first, the underlay last: nothing depends on the order, but it reads well in logs.
    let mut errors = Vec::new();
    let mut ordered = namespaces.clone();
    ordered.sort_by_key(|n| (!n.contains("-pod-"), n.ends_with("-underlay"), n.clone()));
    for ns in ordered {
        match sys::netns_destroy(&ns, Duration::from_secs(1)) {
            Ok(()) => report.namespaces.push(ns),
            Err(e) => errors.push(format!("{ns}: {e:#}")),
        }
    }
    drop(guard);
    if dir.exists() {
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => report.dir_removed = true,
            Err(e) => errors.push(format!("{}: {e}", dir.display())),
        }
    }
    if !errors.is_empty() {
        anyhow::bail!("lab {name}: could not remove {}", errors.join("; "));
    }
    Ok(report)
}
