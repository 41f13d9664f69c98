//! Benchmark (c) of issue 5: pushing 100,000 flows into one real OVS bridge through the
//! controller's southbound path (`southbound::push`: one atomic bundle over the session), against
//! `ovs-ofctl --bundle add-flows` of the same flows in the same run. One JSON line per figure.
//!
//! Needs root and Open vSwitch (it starts its own ovsdb-server/ovs-vswitchd in a namespace it
//! creates and removes). Run: `cargo bench -p weft-controller --bench push_ovs`
//! (`WEFT_PUSH_FLOWS=20000` for a quicker run). Target: controller rate >= 0.9 x ovs-ofctl.

use std::time::{Duration, Instant};

use weft_controller::diff::{self, Delta};
use weft_controller::ovs_text;
use weft_controller::pipeline::{FlowMap, Key, SwitchState, Value};
use weft_controller::southbound;
use weft_openflow::session::{SessionConfig, SwitchListener};
use weft_testbed::{NetNs, OvsSandbox, privileged_unavailable_reason};

/// `n` forward-table flows shaped like the pipeline's (network + destination MAC -> port).
fn flows(n: usize) -> SwitchState {
    let mut flows = FlowMap::default();
    for i in 0..n {
        let segment = (i % 4000 + 1) as u16;
        let mac = [2, 0, (i >> 16) as u8, (i >> 8) as u8, i as u8, 1];
        let port = (i % 200 + 1) as u32;
        flows.insert(
            Key::ToLocal { segment, mac },
            Value::Output { segment, port },
        );
    }
    SwitchState {
        flows,
        groups: Default::default(),
    }
}

fn flow_count(sb: &OvsSandbox) -> usize {
    sb.ofctl(&["-O", "OpenFlow13", "--no-stats", "dump-flows", "br0"])
        .map(|o| o.lines().filter(|l| l.contains("actions=")).count())
        .unwrap_or(0)
}

fn clear(sb: &OvsSandbox) {
    let _ = sb.ofctl(&["-O", "OpenFlow13", "del-flows", "br0"]);
}

fn main() -> anyhow::Result<()> {
    if std::env::args().any(|a| a == "--list") {
        return Ok(());
    }
    if let Some(why) = privileged_unavailable_reason() {
        println!(r#"{{"figure":"push_100k_flows","skipped":{:?}}}"#, why);
        return Ok(());
    }
    let n: usize = std::env::var("WEFT_PUSH_FLOWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let rounds: usize = std::env::var("WEFT_PUSH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let desired = flows(n);
    let dir = std::env::temp_dir().join(format!("weft-push-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let file = dir.join("flows.txt");
    let text = ovs_text::flows(&desired)?;
    std::fs::write(&file, text)?;

    let ns = NetNs::new("wpush")?;
    let sb = OvsSandbox::start_in_netns(&ns)?;
    sb.add_bridge_netdev("br0")?;
    let rt = tokio::runtime::Runtime::new()?;
    let std_listener = ns.run_in(|| std::net::TcpListener::bind("127.0.0.1:0"))??;
    let port = std_listener.local_addr()?.port();
    let config = SessionConfig {
        dead_after: Duration::from_secs(60),
        ..SessionConfig::default()
    };
    let listener = {
        let _g = rt.enter();
        SwitchListener::from_std(std_listener, config)?
    };
    sb.vsctl(&["set-controller", "br0", &format!("tcp:127.0.0.1:{port}")])?;
    let sw = rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(20), listener.accept_switch()).await
    })??;
    let h = sw.handle.clone();
    let bundles = rt.block_on(southbound::supports_bundles(&h));

    let mut best_ctl = f64::MAX;
    let mut best_ofctl = f64::MAX;
    for _ in 0..rounds {
        // Through the controller: the same delta computation and push the reconciler uses.
        clear(&sb);
        let delta: Delta = diff::diff(&SwitchState::default(), &desired);
        let t = Instant::now();
        rt.block_on(southbound::push(&h, delta, bundles))?;
        best_ctl = best_ctl.min(t.elapsed().as_secs_f64());
        anyhow::ensure!(
            flow_count(&sb) == n,
            "controller push left a different flow count"
        );

        clear(&sb);
        let t = Instant::now();
        sb.ofctl(&[
            "-O",
            "OpenFlow13",
            "--bundle",
            "add-flows",
            "br0",
            file.to_str().unwrap_or_default(),
        ])?;
        best_ofctl = best_ofctl.min(t.elapsed().as_secs_f64());
        anyhow::ensure!(
            flow_count(&sb) == n,
            "ovs-ofctl left a different flow count"
        );
    }
    let (ctl_rate, ofctl_rate) = (n as f64 / best_ctl, n as f64 / best_ofctl);
    println!(
        r#"{{"figure":"push_flows_controller","flows":{n},"bundles":{bundles},"best_of":{rounds},"seconds":{best_ctl:.3},"flows_per_s":{ctl_rate:.0}}}"#
    );
    println!(
        r#"{{"figure":"push_flows_ovs_ofctl_bundle","flows":{n},"best_of":{rounds},"seconds":{best_ofctl:.3},"flows_per_s":{ofctl_rate:.0}}}"#
    );
    let ratio = ctl_rate / ofctl_rate;
    println!(
        r#"{{"figure":"push_flows_ratio","controller_over_ovs_ofctl":{ratio:.2},"target":0.9,"pass":{}}}"#,
        ratio >= 0.9
    );
    drop(h);
    drop(sw);
    rt.shutdown_timeout(Duration::from_secs(1));
    drop(sb);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
