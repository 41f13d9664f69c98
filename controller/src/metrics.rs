//! Prometheus metrics of the controller, rendered in the text exposition format at scrape time
//! from the live counters and the current model (nothing to keep in sync).

use std::fmt::Write;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::ipam;
use crate::southbound::SouthboundStats;
use crate::store::ModelStore;

fn metric(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// A metric with one unlabelled value: header and sample, the name written once.
fn scalar(out: &mut String, name: &str, kind: &str, help: &str, value: impl std::fmt::Display) {
    metric(out, name, kind, help);
    let _ = writeln!(out, "{name} {value}");
}

/// Escapes a label value per the exposition format.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

pub fn render(store: &ModelStore, stats: &SouthboundStats) -> String {
    let mut o = String::new();
    let snap = store.snapshot();
    scalar(
        &mut o,
        "weft_model_version",
        "gauge",
        "Version of the controller's model.",
        snap.version,
    );
    scalar(
        &mut o,
        "weft_switches_connected",
        "gauge",
        "Switches with a live OpenFlow session.",
        stats.switches_connected.load(Ordering::Relaxed),
    );
    scalar(
        &mut o,
        "weft_agent_calls_refused_total",
        "counter",
        "Agent-API calls refused: the caller's certificate does not name the node it acted for.",
        stats.agent_calls_refused.load(Ordering::Relaxed),
    );
    scalar(
        &mut o,
        "weft_switches_refused_total",
        "counter",
        "Switches refused: their certificate does not name the node of their datapath id.",
        stats.switches_refused.load(Ordering::Relaxed),
    );
    scalar(
        &mut o,
        "weft_flow_mods_sent_total",
        "counter",
        "FLOW_MOD messages sent to switches.",
        stats.flow_mods_sent.load(Ordering::Relaxed),
    );
    scalar(
        &mut o,
        "weft_flow_deletes_sent_total",
        "counter",
        "Of the FLOW_MODs sent, the deletes (a restart with valid flows sends none).",
        stats.flow_deletes_sent.load(Ordering::Relaxed),
    );
    scalar(
        &mut o,
        "weft_group_mods_sent_total",
        "counter",
        "GROUP_MOD messages sent to switches.",
        stats.group_mods_sent.load(Ordering::Relaxed),
    );
    scalar(
        &mut o,
        "weft_reconciles_skipped_total",
        "counter",
        "Reconciles whose model change did not concern the switch (nothing recomputed).",
        stats.reconciles_skipped.load(Ordering::Relaxed),
    );
    scalar(
        &mut o,
        "weft_reconcile_errors_total",
        "counter",
        "Reconciles a switch rejected.",
        stats.reconcile_errors.load(Ordering::Relaxed),
    );
    metric(
        &mut o,
        "weft_reconcile_seconds",
        "summary",
        "Time to compute and push one switch's delta.",
    );
    let _ = writeln!(
        o,
        "weft_reconcile_seconds_sum {}",
        stats.reconcile_micros.load(Ordering::Relaxed) as f64 / 1e6
    );
    let _ = writeln!(
        o,
        "weft_reconcile_seconds_count {}",
        stats.reconciles.load(Ordering::Relaxed)
    );
    metric(
        &mut o,
        "weft_switch_flows",
        "gauge",
        "Flows installed per switch at the last reconcile.",
    );
    if let Ok(m) = stats.flows_per_switch.lock() {
        for (node, n) in m.iter() {
            let _ = writeln!(o, "weft_switch_flows{{node=\"{}\"}} {n}", label(node));
        }
    }
    scalar(
        &mut o,
        "weft_networks",
        "gauge",
        "Networks in the model.",
        snap.model.networks.len(),
    );
    scalar(
        &mut o,
        "weft_attachments",
        "gauge",
        "Attachments in the model.",
        snap.model.attachments.len(),
    );
    metric(
        &mut o,
        "weft_ipam_used_addresses",
        "gauge",
        "Addresses held per network.",
    );
    let mut sizes = String::new();
    for key in snap.model.networks.keys() {
        if let Some((used, total)) = ipam::usage(&snap.model, key) {
            let l = label(&key.to_string());
            let _ = writeln!(o, "weft_ipam_used_addresses{{network=\"{l}\"}} {used}");
            let _ = writeln!(sizes, "weft_ipam_size_addresses{{network=\"{l}\"}} {total}");
        }
    }
    metric(
        &mut o,
        "weft_ipam_size_addresses",
        "gauge",
        "Addresses in each network's subnet.",
    );
    o.push_str(&sizes);
    o
}

/// Serves `/metrics` on `addr` until the process ends.
pub async fn serve(
    addr: std::net::SocketAddr,
    store: Arc<ModelStore>,
    stats: Arc<SouthboundStats>,
) -> std::io::Result<()> {
    use axum::routing::get;
    let app = axum::Router::new().route(
        "/metrics",
        get(move || {
            let (store, stats) = (store.clone(), stats.clone());
            async move {
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "text/plain; version=0.0.4",
                    )],
                    render(&store, &stats),
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind(addr).await?;
    axum::serve(listener, app).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Model, NetworkKey};
    use weft_api::VirtualNetworkSpec;

    #[test]
    fn renders_counters_and_ipam_usage() {
        let store = ModelStore::new(Model::default(), 0, None);
        store
            .update(|m| {
                m.add_network(
                    NetworkKey::new("ns", "a\"b"),
                    &VirtualNetworkSpec {
                        subnet: Some("10.0.0.0/30".into()),
                        ..Default::default()
                    },
                )
                .map(|_| ())
            })
            .unwrap_err(); // invalid name: quotes are refused by validation
        store
            .update(|m| {
                m.add_network(
                    NetworkKey::new("ns", "a"),
                    &VirtualNetworkSpec {
                        subnet: Some("10.0.0.0/30".into()),
                        ..Default::default()
                    },
                )
                .map(|_| ())
            })
            .unwrap();
        let stats = SouthboundStats::default();
        stats.flow_mods_sent.store(42, Ordering::Relaxed);
        let text = render(&store, &stats);
        assert!(text.contains("weft_flow_mods_sent_total 42\n"));
        assert!(text.contains("weft_ipam_size_addresses{network=\"ns/a\"} 4\n"));
        assert!(text.contains("weft_ipam_used_addresses{network=\"ns/a\"} 0\n"));
        assert!(text.contains("weft_model_version 1\n"));
        assert_eq!(label("a\"b\\"), "a\\\"b\\\\");
    }
}
