//! The whole agent as one value: OVSDB client, bridge, port monitor, tunnels, controller link
//! and CNI server. `weft-agent` builds one from its flags; tests build several in one process,
//! each bound to its own node namespace, and stop and start them to test restarts.

use crate::bridge::{self, ensure_bridge};
use crate::cni::ports::OvsdbPorts;
use crate::cni::{self, CniConfig, CniServerError, CniService};
use crate::link::{ControllerLink, LinkConfig, LinkStatus, SessionError, ports};
use crate::metrics::{Metrics, Timed};
use crate::netlink::{Netlink, NetlinkError};
use crate::ovsdb::{Client, ClientOptions, Endpoint, MonitorRequest};
use crate::tunnels::Tunnels;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::UnixListener;
use tokio::sync::watch;
use weft_proto::agent::v1::node_control_client::NodeControlClient;

/// The OVSDB handle every part of the agent shares.
pub(crate) type Db = Timed<Client>;

/// Where the CNI server listens and keeps its records.
#[derive(Debug, Clone)]
pub struct CniSettings {
    pub socket: PathBuf,
    pub state_dir: PathBuf,
    /// Orphan collection period; `None` = only on GC requests.
    pub gc_interval: Option<Duration>,
}

#[derive(Debug, Clone)]
pub struct AgentConfig {
    pub link: LinkConfig,
    pub ovsdb: Endpoint,
    /// Network namespace holding the bridge and the tunnel devices; `None` = the agent's own.
    pub netns: Option<PathBuf>,
    pub cni: Option<CniSettings>,
}

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(transparent)]
    Netlink(#[from] NetlinkError),
    #[error(transparent)]
    Cni(#[from] CniServerError),
    #[error(transparent)]
    Controller(#[from] SessionError),
    #[error("CNI server task: {0}")]
    Task(String),
}

/// A set-up agent, ready to [`Agent::run`].
pub struct Agent {
    link: ControllerLink<Db>,
    cni: Option<(CniService<OvsdbPorts<Db>>, UnixListener)>,
    status: watch::Receiver<LinkStatus>,
}

/// Retries `f` with backoff (100 ms doubling to 5 s) until it succeeds, logging each failure.
async fn retry<T, E: std::fmt::Display, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut wait = Duration::from_millis(100);
    loop {
        match f().await {
            Ok(v) => return v,
            Err(e) => {
                tracing::warn!(error = %e, retry_in = ?wait, "{what} failed");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(5));
            }
        }
    }
}

impl Agent {
    /// Connects to OVSDB, ensures the bridge and starts the port monitor (retrying each until
    /// it works: ovsdb-server may start after the agent), opens netlink in the node namespace
    /// and binds the CNI socket. Changes nothing else: tunnels wait for the controller.
    pub async fn setup(cfg: AgentConfig, metrics: Arc<Metrics>) -> Result<Agent, AgentError> {
        let (client, events) = Client::start(cfg.ovsdb.clone(), ClientOptions::default());
        let db = Timed::new(client.clone(), metrics.clone());
        let (_, outcome) = retry("ensuring bridge", || ensure_bridge(&db, &cfg.link.bridge)).await;
        tracing::info!(bridge = %cfg.link.bridge.name, ?outcome, dpid = %bridge::datapath_id(&cfg.link.node_name), "bridge ready");
        retry("starting the OVSDB port monitor", || {
            client.monitor(
                bridge::DB,
                ports::MONITOR_ID,
                vec![MonitorRequest::new("Interface", ports::COLUMNS)],
            )
        })
        .await;
        let netlink = match &cfg.netns {
            Some(p) => Netlink::in_netns(p).await?,
            None => Netlink::current()?,
        };
        let tunnels = Tunnels::new(netlink, db.clone(), &cfg.link.bridge.name);
        let cni = match &cfg.cni {
            None => None,
            Some(c) => {
                let mut cc = CniConfig::new(&cfg.link.node_name, &cfg.link.target.url);
                cc.host_netns = cfg.netns.clone();
                cc.state_dir = c.state_dir.clone();
                cc.gc_interval = c.gc_interval;
                cc.userspace_datapath = cfg.link.bridge.datapath_type == "netdev";
                cc.metrics = metrics.clone();
                let channel = cfg
                    .link
                    .target
                    .channel_warm(std::time::Duration::from_secs(1))
                    .await?;
                let controller = NodeControlClient::new(channel);
                let ports = OvsdbPorts::new(db.clone(), &cfg.link.bridge.name);
                let svc = CniService::with_controller(cc, ports, controller).await?;
                let listener = cni::bind(&c.socket)?;
                tracing::info!(socket = %c.socket.display(), "CNI server listening");
                Some((svc, listener))
            }
        };
        let link = ControllerLink::new(cfg.link, tunnels, db.clone(), metrics, events);
        let status = link.status();
        Ok(Agent { link, cni, status })
    }

    /// The controller link's progress (connected, applied version, problems).
    pub fn status(&self) -> watch::Receiver<LinkStatus> {
        self.status.clone()
    }

    /// Serves until `shutdown` resolves; leaves bridge, tunnels and pod ports in place.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> Result<(), AgentError> {
        let (stop_tx, stop_rx) = watch::channel(false);
        let stopped = |mut rx: watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        let mut cni_task = self.cni.map(|(svc, listener)| {
            let stop = stopped(stop_rx.clone());
            tokio::spawn(async move { cni::serve_listener(svc, listener, stop).await })
        });
        let link = self.link.run(stopped(stop_rx.clone()));
        tokio::pin!(link);
        tokio::pin!(shutdown);
        let mut result = Ok(());
        let mut link_done = false;
        tokio::select! {
            _ = &mut shutdown => tracing::info!("shutting down"),
            _ = &mut link => link_done = true,
            r = async {
                match cni_task.as_mut() {
                    Some(t) => t.await,
                    None => std::future::pending().await,
                }
            } => {
                cni_task = None;
                result = match r {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(e)) => Err(AgentError::Cni(e)),
                    Err(e) => Err(AgentError::Task(e.to_string())),
                };
            }
        }
        let _ = stop_tx.send(true);
        if !link_done {
            link.await;
        }
        if let Some(t) = cni_task {
            match t.await {
                Ok(Err(e)) if result.is_ok() => result = Err(AgentError::Cni(e)),
                Err(e) if result.is_ok() => result = Err(AgentError::Task(e.to_string())),
                _ => {}
            }
        }
        result
    }
}
