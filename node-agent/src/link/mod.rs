//! The agent's link with the controller: register, receive the desired node configuration as a
//! stream, reconcile the tunnels to it, and report the node's ports.
//!
//! One task, one loop, level-triggered. Every configuration message is the full state, so after a
//! reconnect the first message simply replaces what the agent knew (a full resync), and the port
//! report is sent again in full. While the controller is away the last configuration stays in
//! force: tunnels are neither torn down nor rebuilt, so traffic keeps flowing. Before the first
//! configuration arrives nothing is changed, which is what makes an agent restart safe: the new
//! agent adopts the previous one's tunnels once it knows which are still wanted.

pub(crate) mod ports;
pub(crate) mod session;

use crate::bridge::{BridgeConfig, ensure_bridge};
use crate::metrics::Metrics;
use crate::ovsdb::{Event, Transact};
use crate::tunnels::{self, Defaults, Tunnels};
use ports::PortTable;
pub use session::{ControllerTarget, Session, SessionError, TlsFiles};
use std::collections::BTreeMap;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use weft_proto::agent::v1 as pb;

/// Settings of the controller link.
#[derive(Debug, Clone)]
pub struct LinkConfig {
    pub node_name: String,
    pub underlay_ip: IpAddr,
    /// Re-ensured before every reconcile (cheap when nothing changed).
    pub bridge: BridgeConfig,
    pub agent_version: String,
    pub target: ControllerTarget,
    /// Reconnect backoff: doubles from `backoff_initial` up to `backoff_max`.
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
    /// Full re-read and repair this often even when nothing was announced.
    pub resync_interval: Duration,
    /// Retry of a reconcile that left errors: doubles from 1 s up to this.
    pub retry_max: Duration,
}

impl LinkConfig {
    pub fn new(node_name: &str, underlay_ip: IpAddr, controller: &str) -> Self {
        LinkConfig {
            node_name: node_name.to_string(),
            underlay_ip,
            bridge: BridgeConfig::new(node_name),
            agent_version: env!("CARGO_PKG_VERSION").to_string(),
            target: ControllerTarget {
                url: controller.to_string(),
                tls: None,
            },
            backoff_initial: Duration::from_millis(200),
            backoff_max: Duration::from_secs(10),
            resync_interval: Duration::from_secs(30),
            retry_max: Duration::from_secs(30),
        }
    }
}

/// Interface name -> (peer node, error): tunnels the agent could not make or repair.
pub(crate) type Problems = BTreeMap<String, (String, String)>;

/// What the link is doing, for tests and logs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinkStatus {
    pub connected: bool,
    pub sessions: u64,
    /// Version of the last configuration reconciled.
    pub applied_version: Option<u64>,
    /// That reconcile left nothing to retry.
    pub converged: bool,
    pub problems: Problems,
    /// Port reports the controller accepted.
    pub reports_sent: u64,
}

type Connecting = Pin<Box<dyn Future<Output = Result<Session, SessionError>> + Send>>;

/// The controller link; see the module docs. Build with [`ControllerLink::new`], then `run`.
pub(crate) struct ControllerLink<T> {
    cfg: LinkConfig,
    tunnels: Tunnels<T>,
    db: T,
    metrics: Arc<Metrics>,
    events: mpsc::UnboundedReceiver<Event>,
    status: watch::Sender<LinkStatus>,
}

const FAR: Duration = Duration::from_secs(86400 * 365);
const REPORT_DEBOUNCE: Duration = Duration::from_millis(100);
const REPORT_TIMEOUT: Duration = Duration::from_secs(5);

async fn maybe<F: Future + Unpin>(f: Option<&mut F>) -> F::Output {
    match f {
        Some(f) => f.await,
        None => std::future::pending().await,
    }
}

/// The next configuration message (cancel safe: tonic's `Streaming::message` keeps partial data).
async fn next_config(s: Option<&mut Session>) -> Result<Option<pb::NodeConfig>, tonic::Status> {
    match s {
        Some(s) => s.stream.message().await,
        None => std::future::pending().await,
    }
}

impl<T: Transact + Clone + Send + Sync + 'static> ControllerLink<T> {
    /// `events` are the OVSDB client's events, with the port monitor ([`ports::MONITOR_ID`])
    /// already registered.
    pub(crate) fn new(
        cfg: LinkConfig,
        tunnels: Tunnels<T>,
        db: T,
        metrics: Arc<Metrics>,
        events: mpsc::UnboundedReceiver<Event>,
    ) -> Self {
        ControllerLink {
            cfg,
            tunnels,
            db,
            metrics,
            events,
            status: watch::Sender::new(LinkStatus::default()),
        }
    }

    pub(crate) fn status(&self) -> watch::Receiver<LinkStatus> {
        self.status.subscribe()
    }

    fn register_request(&self) -> pb::RegisterRequest {
        let dpid = crate::bridge::datapath_id(&self.cfg.node_name);
        pb::RegisterRequest {
            node_name: self.cfg.node_name.clone(),
            underlay_ip: self.cfg.underlay_ip.to_string(),
            datapath_id: dpid.get(),
            agent_version: self.cfg.agent_version.clone(),
        }
    }

    /// Runs until `shutdown` resolves. Leaves every port and device in place on return.
    pub(crate) async fn run(mut self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let register = self.register_request();
        let mut table = PortTable::default();
        let mut connecting: Option<Connecting> = None;
        let mut session: Option<Session> = None;
        let mut next_connect = Instant::now();
        let mut backoff = self.cfg.backoff_initial;
        let mut desired: Option<pb::NodeConfig> = None;
        let mut fresh_config = false;
        let mut defaults = Defaults::default();
        let mut problems = Problems::new();
        let mut reconcile_at: Option<Instant> = None;
        let mut retry = Duration::from_secs(1);
        let mut report_at: Option<Instant> = None;
        let mut last_report: Option<Vec<pb::PortState>> = None;
        let mut events_open = true;
        let mut resync = tokio::time::interval_at(
            Instant::now() + self.cfg.resync_interval,
            self.cfg.resync_interval,
        );
        resync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

        loop {
            let up = session.is_some();
            tokio::select! {
                biased;
                _ = &mut shutdown => break,
                res = maybe(connecting.as_mut()), if connecting.is_some() => {
                    connecting = None;
                    match res {
                        Ok(s) => {
                            tracing::info!(controller = %self.cfg.target.url, cluster = %s.reply.cluster, "controller session up");
                            defaults = Defaults {
                                vni: if s.reply.vni == 0 { defaults.vni } else { s.reply.vni },
                                port: u16::try_from(s.reply.vxlan_port).ok().filter(|p| *p != 0).unwrap_or(defaults.port),
                                mtu: if s.reply.underlay_mtu == 0 { defaults.mtu } else { s.reply.underlay_mtu },
                            };
                            session = Some(s);
                            backoff = self.cfg.backoff_initial;
                            last_report = None;
                            report_at = Some(Instant::now() + REPORT_DEBOUNCE);
                            self.metrics.controller_connected.store(true, Ordering::Relaxed);
                            self.metrics.controller_sessions.fetch_add(1, Ordering::Relaxed);
                            self.status.send_modify(|st| { st.connected = true; st.sessions += 1; });
                        }
                        Err(e) => {
                            tracing::warn!(controller = %self.cfg.target.url, error = %e, retry_in = ?backoff, "controller unreachable");
                            self.metrics.controller_failures.fetch_add(1, Ordering::Relaxed);
                            next_connect = Instant::now() + backoff;
                            backoff = (backoff * 2).min(self.cfg.backoff_max);
                        }
                    }
                }
                msg = next_config(session.as_mut()), if up => {
                    match msg {
                        Ok(Some(cfg)) => {
                            tracing::info!(version = cfg.version, peers = cfg.peers.len(), "node configuration received");
                            self.metrics.config_version.store(cfg.version, Ordering::Relaxed);
                            desired = Some(cfg);
                            fresh_config = true;
                            reconcile_at = Some(Instant::now());
                            retry = Duration::from_secs(1);
                        }
                        other => {
                            let reason = match other {
                                Err(s) => format!("stream error: {s}"),
                                _ => "stream ended by controller".to_string(),
                            };
                            tracing::warn!(controller = %self.cfg.target.url, %reason, retry_in = ?backoff, "controller session lost; keeping current tunnels");
                            session = None;
                            self.metrics.controller_connected.store(false, Ordering::Relaxed);
                            self.metrics.controller_failures.fetch_add(1, Ordering::Relaxed);
                            self.status.send_modify(|st| st.connected = false);
                            next_connect = Instant::now() + backoff;
                            backoff = (backoff * 2).min(self.cfg.backoff_max);
                        }
                    }
                }
                ev = self.events.recv(), if events_open => match ev {
                    Some(ev) => {
                        let c = table.apply(&ev);
                        if c.report {
                            self.metrics.set_ports(table.by_state());
                            report_at.get_or_insert(Instant::now() + REPORT_DEBOUNCE);
                        }
                        if c.reconcile && desired.is_some() {
                            let soon = Instant::now() + Duration::from_millis(200);
                            reconcile_at = Some(reconcile_at.map_or(soon, |t| t.min(soon)));
                        }
                    }
                    None => events_open = false,
                },
                _ = tokio::time::sleep_until(next_connect), if session.is_none() && connecting.is_none() => {
                    let target = self.cfg.target.clone();
                    let reg = register.clone();
                    connecting = Some(Box::pin(async move { session::open(&target, reg).await }));
                }
                _ = tokio::time::sleep_until(reconcile_at.unwrap_or_else(|| Instant::now() + FAR)), if reconcile_at.is_some() => {
                    reconcile_at = None;
                    let Some(cfg) = desired.as_ref() else { continue };
                    let (found, again) = self.reconcile(cfg, defaults, fresh_config).await;
                    fresh_config = false;
                    if found != problems {
                        problems = found;
                        report_at.get_or_insert(Instant::now() + REPORT_DEBOUNCE);
                    }
                    if again {
                        reconcile_at = Some(Instant::now() + retry);
                        retry = (retry * 2).min(self.cfg.retry_max);
                    } else {
                        retry = Duration::from_secs(1);
                    }
                    let version = cfg.version;
                    self.status.send_modify(|st| {
                        st.applied_version = Some(version);
                        st.converged = !again;
                        st.problems = problems.clone();
                    });
                }
                _ = resync.tick() => {
                    if desired.is_some() {
                        reconcile_at.get_or_insert(Instant::now());
                    }
                }
                _ = tokio::time::sleep_until(report_at.unwrap_or_else(|| Instant::now() + FAR)), if report_at.is_some() && up => {
                    report_at = None;
                    let ports = table.report(&problems);
                    if last_report.as_ref() == Some(&ports) {
                        continue;
                    }
                    let Some(s) = session.as_ref() else { continue };
                    let mut client = s.client.clone();
                    let req = pb::PortReport { node_name: self.cfg.node_name.clone(), ports: ports.clone() };
                    match tokio::time::timeout(REPORT_TIMEOUT, client.report_ports(req)).await {
                        Ok(Ok(_)) => {
                            tracing::debug!(ports = ports.len(), "ports reported");
                            last_report = Some(ports);
                            self.status.send_modify(|st| st.reports_sent += 1);
                        }
                        Ok(Err(status)) => {
                            tracing::warn!(%status, "port report refused; retrying");
                            report_at = Some(Instant::now() + Duration::from_secs(2));
                        }
                        Err(_) => {
                            tracing::warn!("port report timed out; retrying");
                            report_at = Some(Instant::now() + Duration::from_secs(2));
                        }
                    }
                }
            }
        }
        self.metrics
            .controller_connected
            .store(false, Ordering::Relaxed);
        tracing::info!("controller link stopped; tunnels left in place");
    }

    /// One reconcile: bridge, then tunnels. Returns the problems found and whether to retry.
    async fn reconcile(
        &self,
        cfg: &pb::NodeConfig,
        defaults: Defaults,
        fresh: bool,
    ) -> (Problems, bool) {
        let m = &self.metrics;
        m.reconciles.fetch_add(1, Ordering::Relaxed);
        let mut problems = Problems::new();
        let (want, invalid) = tunnels::desired(
            &self.cfg.node_name,
            self.cfg.underlay_ip,
            defaults,
            &cfg.peers,
        );
        m.tunnels_desired
            .store(want.len() as u64, Ordering::Relaxed);
        for i in &invalid {
            if fresh {
                tracing::warn!(peer = %i.peer, why = %i.why, version = cfg.version, "ignoring invalid peer");
            }
            if !i.name.is_empty() {
                problems.insert(i.name.clone(), (i.peer.clone(), i.why.clone()));
            }
        }
        if fresh {
            m.reconcile_errors
                .fetch_add(invalid.len() as u64, Ordering::Relaxed);
        }
        if let Err(e) = ensure_bridge(&self.db, &self.cfg.bridge).await {
            tracing::warn!(bridge = %self.cfg.bridge.name, error = %e, "ensuring bridge failed; will retry");
            m.reconcile_errors.fetch_add(1, Ordering::Relaxed);
            return (problems, true);
        }
        let out = match self.tunnels.reconcile(&want).await {
            Ok(o) => o,
            Err(e) => {
                tracing::warn!(error = %e, "reading tunnel state failed; will retry");
                m.reconcile_errors.fetch_add(1, Ordering::Relaxed);
                return (problems, true);
            }
        };
        for c in out.conflicts() {
            problems.insert(c.name.clone(), (c.peer.clone(), c.why.clone()));
        }
        for (name, e) in &out.failures {
            let peer = want.get(name).map(|s| s.peer.clone()).unwrap_or_default();
            problems.insert(name.clone(), (peer, e.clone()));
        }
        let errors = out.conflicts().len() + out.failures.len();
        m.reconcile_errors
            .fetch_add(errors as u64, Ordering::Relaxed);
        if !out.plan.actions.is_empty() || errors > 0 {
            tracing::info!(
                version = cfg.version,
                tunnels = want.len(),
                healthy = out.plan.healthy.len(),
                actions = out.plan.actions.len(),
                conflicts = out.conflicts().len(),
                failures = out.failures.len(),
                "tunnels reconciled"
            );
        }
        (problems, errors > 0)
    }
}
