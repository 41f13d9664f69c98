//! Prometheus metrics of the agent, rendered in the text exposition format at scrape time.
//!
//! Counters are plain atomics updated where things happen; the port gauge is replaced as a whole
//! whenever the OVSDB monitor reports a change. [`Timed`] wraps any OVSDB [`Transact`] so every
//! transaction (bridge, tunnels, CNI ports) lands in one latency histogram.

use crate::ovsdb::{self, Operation, OperationResult, Transact};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Upper bounds (seconds) of the OVSDB latency buckets: a local transaction takes well under a
/// millisecond, one that waits for ovs-vswitchd up to seconds.
const LATENCY_BOUNDS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// A cumulative histogram with fixed buckets.
pub struct Histogram {
    bounds: &'static [f64],
    buckets: Vec<AtomicU64>,
    sum_nanos: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    pub(crate) fn new(bounds: &'static [f64]) -> Self {
        Histogram {
            bounds,
            buckets: bounds.iter().map(|_| AtomicU64::new(0)).collect(),
            sum_nanos: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }

    pub(crate) fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        if let Some(i) = self.bounds.iter().position(|b| secs <= *b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    fn render(&self, o: &mut String, name: &str) {
        let mut cumulative = 0;
        for (b, n) in self.bounds.iter().zip(&self.buckets) {
            cumulative += n.load(Ordering::Relaxed);
            let _ = writeln!(o, "{name}_bucket{{le=\"{b}\"}} {cumulative}");
        }
        let count = self.count();
        let _ = writeln!(o, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let sum = self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        let _ = writeln!(o, "{name}_sum {sum}");
        let _ = writeln!(o, "{name}_count {count}");
    }
}

/// Everything the agent exports.
pub struct Metrics {
    pub ovsdb_transactions: Histogram,
    pub ovsdb_errors: AtomicU64,
    pub reconciles: AtomicU64,
    /// Tunnels that could not be made or repaired (invalid peers, name conflicts, failed
    /// actions) plus reconciles that could not read the current state.
    pub reconcile_errors: AtomicU64,
    pub controller_connected: AtomicBool,
    /// Sessions established (Register + WatchNodeConfig succeeded).
    pub controller_sessions: AtomicU64,
    /// Connection attempts that failed and sessions that were lost.
    pub controller_failures: AtomicU64,
    pub config_version: AtomicU64,
    pub tunnels_desired: AtomicU64,
    /// (kind, state) -> number of ports; replaced on every change.
    ports: Mutex<BTreeMap<(String, String), u64>>,
    /// CNI requests by (command, CNI error code; 0 = success).
    cni_requests: Mutex<BTreeMap<(&'static str, u32), u64>>,
    /// Time the agent spends on a successful ADD (from request to flows confirmed).
    pub cni_add: Histogram,
    /// Successful ADDs' time per step: (count, microseconds), to see where an ADD goes.
    cni_add_steps: Mutex<BTreeMap<&'static str, (u64, u64)>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            ovsdb_transactions: Histogram::new(LATENCY_BOUNDS),
            ovsdb_errors: AtomicU64::new(0),
            reconciles: AtomicU64::new(0),
            reconcile_errors: AtomicU64::new(0),
            controller_connected: AtomicBool::new(false),
            controller_sessions: AtomicU64::new(0),
            controller_failures: AtomicU64::new(0),
            config_version: AtomicU64::new(0),
            tunnels_desired: AtomicU64::new(0),
            ports: Mutex::new(BTreeMap::new()),
            cni_requests: Mutex::new(BTreeMap::new()),
            cni_add: Histogram::new(LATENCY_BOUNDS),
            cni_add_steps: Mutex::new(BTreeMap::new()),
        }
    }
}

fn header(o: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(o, "# HELP {name} {help}");
    let _ = writeln!(o, "# TYPE {name} {kind}");
}

fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Metrics {
    /// Replaces the port gauge.
    pub(crate) fn set_ports(&self, by_state: BTreeMap<(String, String), u64>) {
        *self.ports.lock().unwrap_or_else(|e| e.into_inner()) = by_state;
    }

    pub(crate) fn ports(&self) -> BTreeMap<(String, String), u64> {
        self.ports.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Counts one CNI request and its outcome (0 = success, else the CNI error code).
    pub(crate) fn cni_request(&self, command: &'static str, code: u32) {
        let mut m = self.cni_requests.lock().unwrap_or_else(|e| e.into_inner());
        *m.entry((command, code)).or_default() += 1;
    }

    /// Adds one successful ADD's step durations (microseconds).
    pub(crate) fn cni_add_steps(&self, steps: &[(&'static str, u128)]) {
        let mut m = self.cni_add_steps.lock().unwrap_or_else(|e| e.into_inner());
        for (step, us) in steps {
            let e = m.entry(step).or_default();
            e.0 += 1;
            e.1 += u64::try_from(*us).unwrap_or(u64::MAX);
        }
    }

    fn render_cni(&self, o: &mut String) {
        header(
            o,
            "weft_agent_cni_requests_total",
            "counter",
            "CNI requests by command and result (0 = success, else the CNI error code).",
        );
        for ((cmd, code), n) in self
            .cni_requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            let _ = writeln!(
                o,
                "weft_agent_cni_requests_total{{command=\"{cmd}\",code=\"{code}\"}} {n}"
            );
        }
        header(
            o,
            "weft_agent_cni_add_seconds",
            "histogram",
            "Agent time of successful ADDs, from request to flows confirmed.",
        );
        self.cni_add.render(o, "weft_agent_cni_add_seconds");
        header(
            o,
            "weft_agent_cni_add_step_seconds",
            "summary",
            "Time of successful ADDs per step (netns and prepare run at once, netns_prepare is their span; so do pod_config, ovs_port and attach, span parallel).",
        );
        for (step, (count, us)) in self
            .cni_add_steps
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            let secs = *us as f64 / 1e6;
            let _ = writeln!(
                o,
                "weft_agent_cni_add_step_seconds_sum{{step=\"{step}\"}} {secs}"
            );
            let _ = writeln!(
                o,
                "weft_agent_cni_add_step_seconds_count{{step=\"{step}\"}} {count}"
            );
        }
    }

    pub fn render(&self) -> String {
        let mut o = String::new();
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        header(
            &mut o,
            "weft_agent_ovsdb_transaction_seconds",
            "histogram",
            "Latency of OVSDB transactions (bridge, tunnel and pod ports).",
        );
        self.ovsdb_transactions
            .render(&mut o, "weft_agent_ovsdb_transaction_seconds");
        let counters = [
            (
                "weft_agent_ovsdb_transaction_errors_total",
                "OVSDB transactions that failed.",
                &self.ovsdb_errors,
            ),
            (
                "weft_agent_reconciles_total",
                "Tunnel reconciles run.",
                &self.reconciles,
            ),
            (
                "weft_agent_reconcile_errors_total",
                "Tunnel errors: invalid peers, name conflicts, failed changes, unreadable state.",
                &self.reconcile_errors,
            ),
            (
                "weft_agent_controller_sessions_total",
                "Controller sessions established.",
                &self.controller_sessions,
            ),
            (
                "weft_agent_controller_failures_total",
                "Failed controller connection attempts and lost sessions.",
                &self.controller_failures,
            ),
        ];
        for (name, help, v) in counters {
            header(&mut o, name, "counter", help);
            let _ = writeln!(o, "{name} {}", load(v));
        }
        header(
            &mut o,
            "weft_agent_controller_connected",
            "gauge",
            "1 while a controller session is up.",
        );
        let _ = writeln!(
            o,
            "weft_agent_controller_connected {}",
            u8::from(self.controller_connected.load(Ordering::Relaxed))
        );
        header(
            &mut o,
            "weft_agent_config_version",
            "gauge",
            "Version of the last node configuration received.",
        );
        let _ = writeln!(
            o,
            "weft_agent_config_version {}",
            load(&self.config_version)
        );
        header(
            &mut o,
            "weft_agent_tunnels_desired",
            "gauge",
            "Tunnels the controller wants (valid peers).",
        );
        let _ = writeln!(
            o,
            "weft_agent_tunnels_desired {}",
            load(&self.tunnels_desired)
        );
        header(
            &mut o,
            "weft_agent_ports",
            "gauge",
            "Weft-owned OVS ports by kind (tunnel, pod) and state (up, down, error, pending).",
        );
        for ((kind, state), n) in self.ports() {
            let _ = writeln!(
                o,
                "weft_agent_ports{{kind=\"{}\",state=\"{}\"}} {n}",
                label(&kind),
                label(&state)
            );
        }
        self.render_cni(&mut o);
        o
    }
}

/// Serves `/metrics` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    metrics: Arc<Metrics>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::routing::get;
    let app = axum::Router::new().route(
        "/metrics",
        get(move || {
            let m = metrics.clone();
            async move {
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "text/plain; version=0.0.4",
                    )],
                    m.render(),
                )
            }
        }),
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// A [`Transact`] that records each transaction's latency and failure.
#[derive(Clone)]
pub(crate) struct Timed<T> {
    inner: T,
    metrics: Arc<Metrics>,
}

impl<T> Timed<T> {
    pub(crate) fn new(inner: T, metrics: Arc<Metrics>) -> Self {
        Timed { inner, metrics }
    }
}

impl<T: Transact + Sync> Transact for Timed<T> {
    async fn transact(
        &self,
        db: &str,
        ops: &[Operation],
    ) -> Result<Vec<OperationResult>, ovsdb::Error> {
        let start = Instant::now();
        let res = self.inner.transact(db, ops).await;
        self.metrics.ovsdb_transactions.observe(start.elapsed());
        if res.is_err() {
            self.metrics.ovsdb_errors.fetch_add(1, Ordering::Relaxed);
        }
        res
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_is_cumulative_and_renders() {
        let h = Histogram::new(&[0.001, 0.01]);
        h.observe(Duration::from_micros(500));
        h.observe(Duration::from_millis(5));
        h.observe(Duration::from_secs(1));
        let mut o = String::new();
        h.render(&mut o, "x");
        assert!(o.contains("x_bucket{le=\"0.001\"} 1\n"), "{o}");
        assert!(o.contains("x_bucket{le=\"0.01\"} 2\n"), "{o}");
        assert!(o.contains("x_bucket{le=\"+Inf\"} 3\n"), "{o}");
        assert!(o.contains("x_count 3\n"));
    }

    #[test]
    fn renders_ports_and_connection_state() {
        let m = Metrics::default();
        m.set_ports([(("tunnel".to_string(), "up".to_string()), 2)].into());
        m.controller_connected.store(true, Ordering::Relaxed);
        m.reconcile_errors.fetch_add(3, Ordering::Relaxed);
        let t = m.render();
        assert!(t.contains("weft_agent_ports{kind=\"tunnel\",state=\"up\"} 2\n"));
        assert!(t.contains("weft_agent_controller_connected 1\n"));
        assert!(t.contains("weft_agent_reconcile_errors_total 3\n"));
        assert!(t.contains("# TYPE weft_agent_ovsdb_transaction_seconds histogram\n"));
    }

    #[test]
    fn renders_cni_requests_and_add_steps() {
        let m = Metrics::default();
        m.cni_request("ADD", 0);
        m.cni_request("ADD", 0);
        m.cni_request("ADD", 100);
        m.cni_add_steps(&[("prepare", 1500), ("attach", 4000)]);
        m.cni_add_steps(&[("prepare", 500)]);
        m.cni_add.observe(Duration::from_millis(12));
        let t = m.render();
        assert!(
            t.contains("weft_agent_cni_requests_total{command=\"ADD\",code=\"0\"} 2\n"),
            "{t}"
        );
        assert!(t.contains("weft_agent_cni_requests_total{command=\"ADD\",code=\"100\"} 1\n"));
        assert!(t.contains("weft_agent_cni_add_step_seconds_sum{step=\"prepare\"} 0.002\n"));
        assert!(t.contains("weft_agent_cni_add_step_seconds_count{step=\"prepare\"} 2\n"));
        assert!(t.contains("weft_agent_cni_add_seconds_bucket{le=\"0.025\"} 1\n"));
        assert!(t.contains("weft_agent_cni_add_seconds_bucket{le=\"0.01\"} 0\n"));
    }
}
