//! Keeps every connected switch equal to its desired state.
//!
//! Per switch: on connect, read back what it holds (flow stats and group descriptions) and apply
//! only the difference — a reconnecting switch is never flushed, so traffic keeps flowing across
//! controller restarts. Then follow the model: on every change (bursts coalesced) compute the new
//! desired state (only when the change concerns this switch: see [`crate::changes`]) and push
//! the delta, in one atomic bundle where the switch supports bundles,
//! confirmed by barrier, and report the model version the switch now holds. A periodic read-back
//! repairs anything changed behind our back (a flow deleted by hand comes back).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use weft_openflow::session::{SessionError, Switch, SwitchEvent, SwitchHandle, SwitchListener};
use weft_openflow::wire::{FlowStatsRequest, Message};

use crate::diff::{self, Delta};
use crate::model::NetworkKey;
use crate::node_trust::NodeTrust;
use crate::pipeline::{Index, SwitchState};
use crate::store::{ModelStore, Snapshot};

/// Tunables of the reconcile loop.
#[derive(Debug, Clone)]
pub struct ReconcileOptions {
    /// After a model change, wait this long for more changes before computing. Zero by default:
    /// bursts coalesce anyway, since changes that arrive while a push is in flight are taken
    /// together by the next round (the watch channel keeps only the latest model), and a wait
    /// here would add to every CNI ADD.
    pub coalesce: Duration,
    /// Read the switch back and repair differences this often.
    pub resync_every: Duration,
    /// Whether a switch must prove, by certificate, that it is the node its datapath id names.
    pub switch_trust: NodeTrust,
}

impl Default for ReconcileOptions {
    fn default() -> Self {
        ReconcileOptions {
            coalesce: Duration::ZERO,
            resync_every: Duration::from_secs(30),
            switch_trust: NodeTrust::Certificates,
        }
    }
}

/// Counters the metrics endpoint exports.
#[derive(Debug, Default)]
pub struct SouthboundStats {
    pub switches_connected: AtomicU64,
    pub flow_mods_sent: AtomicU64,
    /// Of `flow_mods_sent`, the deletes: a reconnect or restart that finds valid flows must add
    /// none here (tests watch it).
    pub flow_deletes_sent: AtomicU64,
    pub group_mods_sent: AtomicU64,
    pub reconciles: AtomicU64,
    /// Of `reconciles`, those whose model change did not concern the switch: no recomputation.
    pub reconciles_skipped: AtomicU64,
    pub reconcile_errors: AtomicU64,
    /// Agent-API calls refused because the caller may not act for the node it named.
    pub agent_calls_refused: AtomicU64,
    /// Switches refused because their certificate does not name the node of their datapath id.
    pub switches_refused: AtomicU64,
    /// Sum of reconcile durations in microseconds (with `reconciles`, gives the mean).
    pub reconcile_micros: AtomicU64,
    /// Flows per switch as last reconciled, for the gauge (node -> count).
    pub flows_per_switch: std::sync::Mutex<std::collections::BTreeMap<String, usize>>,
}

/// Accepts switches forever; each gets its own handshake and reconcile task.
pub async fn serve(
    listener: SwitchListener,
    store: Arc<ModelStore>,
    opts: ReconcileOptions,
    stats: Arc<SouthboundStats>,
) {
    loop {
        let accepted = match listener.accept().await {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let (store, opts, stats) = (store.clone(), opts.clone(), stats.clone());
        tokio::spawn(async move {
            let peer = accepted.peer;
            match accepted.handshake().await {
                Ok(sw) => {
                    stats.switches_connected.fetch_add(1, Ordering::Relaxed);
                    let r = serve_switch(sw, &store, &opts, &stats).await;
                    stats.switches_connected.fetch_sub(1, Ordering::Relaxed);
                    if let Err(e) = r {
                        tracing::info!(%peer, error = %e, "switch session ended");
                    }
                }
                Err(e) => tracing::warn!(%peer, error = %e, "switch handshake failed"),
            }
        });
    }
}

/// Which registered node owns this datapath id.
fn node_of(snap: &Snapshot, dpid: u64) -> Option<String> {
    snap.model
        .nodes
        .values()
        .find(|n| n.datapath_id == dpid)
        .map(|n| n.name.clone())
}

/// What the switch holds now.
pub async fn read_back(h: &SwitchHandle) -> Result<SwitchState, SessionError> {
    let flows = h.flow_stats(FlowStatsRequest::all()).await?;
    let groups = h.group_desc().await?;
    Ok(diff::from_readback(&flows, &groups))
}

/// Whether the switch takes bundles: open one and discard it.
pub async fn supports_bundles(h: &SwitchHandle) -> bool {
    h.bundle_discard(Vec::new()).await.is_ok()
}

/// Sends a delta: as one atomic bundle when possible, else as a barrier-closed batch.
pub async fn push(h: &SwitchHandle, delta: Delta, bundles: bool) -> Result<(), SessionError> {
    let msgs: Vec<Message> = delta.into_messages();
    if bundles {
        h.bundle_commit(msgs).await
    } else {
        h.batch(msgs).await?.into_result()
    }
}

/// Reconciles one switch until its session ends.
pub async fn serve_switch(
    mut sw: Switch,
    store: &ModelStore,
    opts: &ReconcileOptions,
    stats: &SouthboundStats,
) -> Result<(), SessionError> {
    let dpid = sw.datapath_id();
    let h = sw.handle.clone();
    let mut rx: watch::Receiver<Snapshot> = store.subscribe();

    // A switch may connect before its agent registered the node: wait for it.
    let node = loop {
        if let Some(n) = node_of(&rx.borrow_and_update(), dpid) {
            break n;
        }
        tracing::info!(
            dpid = format_args!("{dpid:016x}"),
            "switch of an unregistered node, waiting"
        );
        tokio::select! {
            r = rx.changed() => if r.is_err() { return Ok(()) },
            _ = h.closed() => return Err(SessionError::Closed("before its node registered".into())),
        }
    };
    // Before anything of the node's reaches the switch: it must be that node.
    if let Err(e) = opts.switch_trust.switch(sw.peer_cert.as_deref(), &node) {
        tracing::warn!(%node, peer = %sw.peer, dpid = format_args!("{dpid:016x}"), error = %e, "switch refused");
        stats.switches_refused.fetch_add(1, Ordering::Relaxed);
        h.close().await;
        return Err(SessionError::Closed(format!("refused: {e}")));
    }
    let bundles = supports_bundles(&h).await;
    tracing::info!(%node, dpid = format_args!("{dpid:016x}"), bundles, "reconciling switch");
    let result = reconcile_loop(&mut sw, &node, &mut rx, store, opts, stats, bundles).await;
    store.unconfirm(&node);
    result
}

async fn reconcile_loop(
    sw: &mut Switch,
    node: &str,
    rx: &mut watch::Receiver<Snapshot>,
    store: &ModelStore,
    opts: &ReconcileOptions,
    stats: &SouthboundStats,
    bundles: bool,
) -> Result<(), SessionError> {
    let h = sw.handle.clone();
    // What the switch holds. After a successful push it is the desired state itself, shared
    // rather than copied: a switch's state is the bulk of a controller's memory.
    let mut installed = Arc::new(read_back(&h).await?);
    // The desired state as last computed: model version, state, and the networks with members
    // on this node (what decides whether a later change concerns this switch).
    let mut computed: Option<(u64, Arc<SwitchState>, BTreeSet<NetworkKey>)> = None;
    let mut next_resync = Instant::now() + opts.resync_every;
    loop {
        let snap = rx.borrow_and_update().clone();
        let started = Instant::now();
        let still_valid = computed.as_ref().is_some_and(|(held, _, mine)| {
            snap.changes
                .since(*held, snap.version)
                .is_some_and(|c| !c.touches(node, mine))
        });
        let desired = match computed.as_mut() {
            Some((held, desired, _)) if still_valid => {
                stats.reconciles_skipped.fetch_add(1, Ordering::Relaxed);
                *held = snap.version;
                &*desired
            }
            _ => {
                let idx = Index::for_node(&snap.model, node);
                let c = computed.insert((
                    snap.version,
                    Arc::new(idx.switch_state(node)),
                    idx.networks_on(node),
                ));
                &c.1
            }
        };
        let delta = diff::diff(&installed, desired);
        let flow_deletes = delta.flow_deletes.len();
        let (flow_mods, group_mods) = (
            delta.flow_adds.len() + delta.flow_deletes.len(),
            delta.group_adds.len() + delta.group_modifies.len() + delta.group_deletes.len(),
        );
        let pushed = if delta.is_empty() {
            Ok(())
        } else {
            push(&h, delta, bundles).await
        };
        match pushed {
            Ok(()) => {
                stats
                    .flow_mods_sent
                    .fetch_add(flow_mods as u64, Ordering::Relaxed);
                stats
                    .flow_deletes_sent
                    .fetch_add(flow_deletes as u64, Ordering::Relaxed);
                stats
                    .group_mods_sent
                    .fetch_add(group_mods as u64, Ordering::Relaxed);
                if let Ok(mut m) = stats.flows_per_switch.lock() {
                    m.insert(node.to_string(), desired.flows.len());
                }
                // Equal in content now; sharing the desired state also drops a read-back copy.
                installed = desired.clone();
                store.confirm(node, snap.version);
                tracing::debug!(
                    node,
                    version = snap.version,
                    flow_mods,
                    group_mods,
                    "switch reconciled"
                );
            }
            Err(SessionError::Closed(reason)) => return Err(SessionError::Closed(reason)),
            Err(e) => {
                // The switch refused part of the change; with bundles nothing was applied. Read it
                // back and try again at the next trigger (or resync).
                stats.reconcile_errors.fetch_add(1, Ordering::Relaxed);
                tracing::error!(node, version = snap.version, error = %e, "switch rejected changes");
                installed = Arc::new(read_back(&h).await?);
            }
        }
        stats.reconciles.fetch_add(1, Ordering::Relaxed);
        stats
            .reconcile_micros
            .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);

        // Wait for the next reason to reconcile.
        loop {
            tokio::select! {
                r = rx.changed() => {
                    if r.is_err() {
                        return Ok(());
                    }
                    if !opts.coalesce.is_zero() {
                        tokio::time::sleep(opts.coalesce).await;
                    }
                    break;
                }
                _ = tokio::time::sleep_until(next_resync.into()) => {
                    next_resync = Instant::now() + opts.resync_every;
                    installed = Arc::new(read_back(&h).await?);
                    break;
                }
                ev = sw.events.recv() => match ev {
                    None | Some(SwitchEvent::Disconnected { .. }) => {
                        return Err(SessionError::Closed("switch disconnected".into()));
                    }
                    Some(SwitchEvent::PortStatus(p)) => {
                        tracing::debug!(node, port = %p.desc.name, reason = ?p.reason, "port status");
                    }
                    Some(SwitchEvent::Error { xid, error }) => {
                        tracing::warn!(node, xid, %error, "unsolicited switch error");
                    }
                    Some(_) => {}
                },
            }
        }
    }
}
