//! Restarts must not cost packets: the controller reconciles a reconnecting switch without
//! flushing it, and an agent restart leaves existing ports and tunnels alone.

use std::time::Duration;

use weft_tests::{Lab, ping_counts};

/// Pings every 10 ms for `secs` from `pod` to `ip` while `disturb` runs; returns ping's output.
fn ping_through(lab: &Lab, pod: &str, ip: &str, secs: u32, disturb: impl FnOnce()) -> String {
    let count = (secs * 100).to_string();
    let child = lab.spawn(
        pod,
        &["ping", "-i", "0.01", "-c", &count, "-W", "1", "-q", ip],
    );
    std::thread::sleep(Duration::from_secs(1));
    disturb();
    let out = child.wait_with_output().expect("ping");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn two_pods(lab: &Lab, subnet: &str) -> String {
    lab.net("red", Some(subnet));
    lab.pod("a", "node1", "red", None);
    let b = lab.pod("b", "node2", "red", None);
    let ip_b = Lab::ip_of(&b, 0);
    assert!(lab.ping("a", &ip_b, 2), "control ping");
    ip_b
}

#[test]
fn controller_restart_during_10ms_ping_loses_nothing() {
    let Some(lab) = Lab::up("controller_restart", 2) else {
        return;
    };
    let ip_b = two_pods(&lab, "10.6.0.0/24");
    let flows_before = lab.flows("node1");
    let out = ping_through(&lab, "a", &ip_b, 8, || {
        lab.ok(&["lab", "restart", "controller"]);
        // Wait until both switches are back and reconciled before the ping ends.
        for _ in 0..100 {
            let s = lab.json(&["lab", "status"]);
            if s["controller"]["switchesConnected"].as_u64() == Some(2) {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    let (sent, got) = ping_counts(&out).unwrap_or_else(|| panic!("ping output: {out}"));
    assert_eq!(sent, 800, "{out}");
    assert_eq!(
        got,
        sent,
        "lost {} of {sent} pings across a controller restart",
        sent - got
    );
    // Reconciled, not flushed and rebuilt: the same flows (ignoring counters) are installed.
    let strip = |s: &str| -> Vec<String> {
        let mut v: Vec<String> = s
            .lines()
            .filter(|l| l.contains("cookie="))
            .map(|l| {
                l.split(", ")
                    .filter(|f| {
                        !f.starts_with("duration=")
                            && !f.starts_with("n_packets=")
                            && !f.starts_with("n_bytes=")
                            && !f.starts_with("idle_age=")
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .collect();
        v.sort();
        v
    };
    assert_eq!(strip(&flows_before), strip(&lab.flows("node1")));
    assert!(lab.ping("b", &Lab::ip_of(&lab.json(&["pod", "list"])[0], 0), 2));
}

#[test]
fn agent_restart_loses_nothing_for_existing_pods() {
    let Some(lab) = Lab::up("agent_restart", 2) else {
        return;
    };
    let ip_b = two_pods(&lab, "10.7.0.0/24");
    let out = ping_through(&lab, "a", &ip_b, 6, || {
        lab.ok(&["lab", "restart", "agent", "--node", "node1"]);
    });
    let (sent, got) = ping_counts(&out).unwrap_or_else(|| panic!("ping output: {out}"));
    assert_eq!(sent, 600, "{out}");
    assert_eq!(
        got,
        sent,
        "lost {} of {sent} pings across an agent restart",
        sent - got
    );
    // The restarted agent still serves CNI: a new pod on its node works.
    lab.pod("c", "node1", "red", None);
    assert!(lab.ping("c", &ip_b, 2));
}

#[test]
fn agent_crash_loses_nothing_for_existing_pods() {
    let Some(lab) = Lab::up("agent_crash", 2) else {
        return;
    };
    let ip_b = two_pods(&lab, "10.8.0.0/24");
    let out = ping_through(&lab, "a", &ip_b, 6, || {
        lab.ok(&["lab", "restart", "agent", "--node", "node2", "--kill"]);
    });
    let (sent, got) = ping_counts(&out).unwrap_or_else(|| panic!("ping output: {out}"));
    assert_eq!(
        got,
        sent,
        "lost {} of {sent} pings across an agent SIGKILL",
        sent - got
    );
}
