//! The `VirtualNetwork` reconciler: level-triggered and idempotent. Each pass puts the spec into the
//! model (or says why not), makes the NAD right, and writes conditions; deletion waits, with a
//! finalizer, until no pod is attached.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::ObjectReference;
use kube::api::{Api, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use kube_runtime::controller::{Action, Controller};
use kube_runtime::events::{Event, EventType};
use kube_runtime::reflector::ObjectRef;
use kube_runtime::watcher;
use serde_json::{Value, json};
use weft_api::conditions as c;
use weft_api::{Condition, NetworkAttachmentDefinition, VirtualNetwork, VirtualNetworkStatus};

use super::convert;
use super::nad::{self, NadOutcome};
use super::{Context, K8sError, call};
use crate::model::{Model, NetworkKey};
use crate::store::Snapshot;

fn key_of(vn: &VirtualNetwork) -> Result<NetworkKey, K8sError> {
    let ns = vn.namespace().ok_or(K8sError::Incomplete("namespace"))?;
    Ok(NetworkKey::new(ns, vn.name_any()))
}

fn cond(type_: &str, ok: bool, reason: &str, message: impl Into<String>) -> Condition {
    Condition {
        type_: type_.into(),
        status: if ok { "True" } else { "False" }.into(),
        reason: reason.into(),
        message: message.into(),
        ..Default::default()
    }
}

fn now() -> String {
    k8s_openapi::jiff::Timestamp::now().to_string()
}

/// New conditions with `lastTransitionTime` kept from `old` where the status did not change.
pub fn merge_conditions(
    old: &[Condition],
    new: Vec<Condition>,
    generation: Option<i64>,
) -> Vec<Condition> {
    new.into_iter()
        .map(|mut n| {
            n.observed_generation = generation;
            n.last_transition_time = match old.iter().find(|o| o.type_ == n.type_) {
                Some(o) if o.status == n.status && !o.last_transition_time.is_empty() => {
                    o.last_transition_time.clone()
                }
                _ => now(),
            };
            n
        })
        .collect()
}

fn find<'a>(conds: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conds.iter().find(|c| c.type_ == type_)
}

fn is_true(conds: &[Condition], type_: &str) -> bool {
    find(conds, type_).is_some_and(|c| c.status == "True")
}

/// Entry point for the `Controller`.
pub async fn reconcile(vn: Arc<VirtualNetwork>, ctx: Arc<Context>) -> Result<Action, K8sError> {
    let key = key_of(&vn)?;
    let out = if vn.meta().deletion_timestamp.is_some() {
        cleanup(&vn, &ctx, &key).await
    } else {
        apply(&vn, &ctx, &key).await
    };
    if out.is_ok()
        && let Ok(mut f) = ctx.failures.lock()
    {
        f.remove(&key);
    }
    out
}

/// Retry delay after the `n`th failure in a row: doubling from `base`, capped at `max`.
pub fn backoff_delay(n: u32, (base, max): (Duration, Duration)) -> Duration {
    base.saturating_mul(1u32 << n.saturating_sub(1).min(20))
        .min(max)
}

/// Entry point for the `Controller` on errors: logs by kind, retries with backoff.
pub fn error_policy(vn: Arc<VirtualNetwork>, err: &K8sError, ctx: Arc<Context>) -> Action {
    let key = key_of(&vn).unwrap_or_else(|_| NetworkKey::new("", vn.name_any()));
    let n = match ctx.failures.lock() {
        Ok(mut f) => {
            let n = f.entry(key.clone()).or_insert(0);
            *n = n.saturating_add(1);
            *n
        }
        Err(_) => 1,
    };
    let delay = backoff_delay(n, ctx.opts.backoff);
    if err.is_transient() {
        tracing::warn!(network = %key, attempt = n, retry_in = ?delay, error = %err, "reconcile failed");
    } else {
        tracing::error!(network = %key, attempt = n, retry_in = ?delay, error = %err, "reconcile failed");
    }
    Action::requeue(delay)
}

fn reference(vn: &VirtualNetwork) -> ObjectReference {
    vn.object_ref(&())
}

async fn publish(ctx: &Context, vn: &VirtualNetwork, type_: EventType, reason: &str, note: String) {
    let ev = Event {
        type_,
        reason: reason.into(),
        note: Some(note),
        action: "Reconcile".into(),
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&ev, &reference(vn)).await {
        tracing::debug!(network = %vn.name_any(), reason, error = %e, "event not published");
    }
}

async fn set_finalizers(
    vn: &VirtualNetwork,
    ctx: &Context,
    finalizers: Vec<String>,
) -> Result<(), K8sError> {
    let api: Api<VirtualNetwork> =
        Api::namespaced(ctx.client.clone(), &vn.namespace().unwrap_or_default());
    // The resourceVersion makes this a compare-and-swap: a 409 means someone else changed the list.
    let patch =
        json!({"metadata": {"finalizers": finalizers, "resourceVersion": vn.resource_version()}});
    call(
        format!("update finalizers of VirtualNetwork {}", vn.name_any()),
        ctx.opts.api_timeout,
        api.patch(
            &vn.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        ),
    )
    .await
    .map(|_| ())
}

/// Writes `status` if it differs from what the object has. Fields that disappeared are sent as
/// `null` so the merge patch removes them.
async fn write_status(
    vn: &VirtualNetwork,
    ctx: &Context,
    status: &VirtualNetworkStatus,
) -> Result<bool, K8sError> {
    if vn.status.as_ref() == Some(status) {
        return Ok(false);
    }
    let mut new = serde_json::to_value(status).unwrap_or(Value::Null);
    if let (Some(old), Value::Object(n)) = (
        vn.status
            .as_ref()
            .and_then(|s| serde_json::to_value(s).ok()),
        &mut new,
    ) && let Value::Object(o) = old
    {
        for k in o.keys() {
            n.entry(k.clone()).or_insert(Value::Null);
        }
    }
    let api: Api<VirtualNetwork> =
        Api::namespaced(ctx.client.clone(), &vn.namespace().unwrap_or_default());
    call(
        format!("update status of VirtualNetwork {}", vn.name_any()),
        ctx.opts.api_timeout,
        api.patch_status(
            &vn.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&json!({"status": new})),
        ),
    )
    .await?;
    Ok(true)
}

async fn apply(vn: &VirtualNetwork, ctx: &Context, key: &NetworkKey) -> Result<Action, K8sError> {
    if !vn.finalizers().iter().any(|f| f == weft_api::FINALIZER) {
        let mut f = vn.finalizers().to_vec();
        f.push(weft_api::FINALIZER.into());
        set_finalizers(vn, ctx, f).await?;
        // The patch changes the object: the watch brings it back with the finalizer.
        return Ok(Action::await_change());
    }
    let (outcome, _) = ctx
        .store
        .update(|m| Ok(convert::upsert_network(m, key, &vn.spec)))?;
    let snap = ctx.store.snapshot();
    let segment = snap.model.networks.get(key).map(|n| n.segment);
    let old = vn.status.clone().unwrap_or_default();

    let mut conds = Vec::new();
    conds.push(match (&outcome, segment) {
        (_, Some(s)) => cond(
            c::SEGMENT_ALLOCATED,
            true,
            c::REASON_ALLOCATED,
            format!("segment {s}"),
        ),
        (Err(e), None) => cond(c::SEGMENT_ALLOCATED, false, e.reason(), e.to_string()),
        (Ok(_), None) => cond(
            c::SEGMENT_ALLOCATED,
            false,
            "Unknown",
            "network vanished from the model",
        ),
    });
    let nad_result = match segment {
        Some(_) => Some(nad::ensure(&ctx.client, vn, ctx.opts.api_timeout).await),
        None => None,
    };
    let nad_name = format!("{}/{}", key.namespace, key.name);
    let nad_cond = match &nad_result {
        None => cond(
            c::NAD_SYNCED,
            false,
            "WaitingForValidSpec",
            "no NetworkAttachmentDefinition until the spec is accepted",
        ),
        Some(Ok(NadOutcome::NameTaken)) => cond(
            c::NAD_SYNCED,
            false,
            "NameTaken",
            format!(
                "a NetworkAttachmentDefinition {nad_name} exists that Weft does not own; delete it or rename the network"
            ),
        ),
        Some(Ok(_)) => cond(
            c::NAD_SYNCED,
            true,
            c::REASON_SYNCED,
            format!("NetworkAttachmentDefinition {nad_name} is in place"),
        ),
        Some(Err(e)) => cond(c::NAD_SYNCED, false, c::REASON_NAD_FAILED, e.to_string()),
    };
    let nad_ok = nad_cond.status == "True";
    let attachments = snap.model.attachments_of(key).count();
    conds.push(match &outcome {
        Err(e) if segment.is_some() => cond(
            c::READY,
            false,
            e.reason(),
            format!("spec refused: {e}; the network keeps running its previous spec (status.appliedSpec)"),
        ),
        Err(e) => cond(c::READY, false, e.reason(), format!("spec refused: {e}")),
        Ok(_) if !nad_ok => cond(c::READY, false, &nad_cond.reason.clone(), nad_cond.message.clone()),
        Ok(s) => cond(c::READY, true, c::REASON_READY, format!("segment {s}, {attachments} attachment(s)")),
    });
    conds.insert(1, nad_cond);

    let mut status = convert::model_status(&snap.model, key).unwrap_or_default();
    status.observed_generation = vn.metadata.generation;
    status.conditions = merge_conditions(&old.conditions, conds, vn.metadata.generation);
    write_status(vn, ctx, &status).await?;

    // Events for transitions only, so a resync does not repeat them.
    if let Some(s) = segment
        && !is_true(&old.conditions, c::SEGMENT_ALLOCATED)
    {
        publish(
            ctx,
            vn,
            EventType::Normal,
            "SegmentAllocated",
            format!("segment {s}"),
        )
        .await;
    }
    match &nad_result {
        Some(Ok(NadOutcome::Created)) if is_true(&old.conditions, c::NAD_SYNCED) => {
            publish(
                ctx,
                vn,
                EventType::Normal,
                "AttachmentDefinitionRestored",
                format!("NetworkAttachmentDefinition {nad_name} was deleted; recreated"),
            )
            .await
        }
        Some(Ok(NadOutcome::Created)) => {
            publish(
                ctx,
                vn,
                EventType::Normal,
                "AttachmentDefinitionCreated",
                format!("NetworkAttachmentDefinition {nad_name}"),
            )
            .await
        }
        Some(Ok(NadOutcome::Restored)) => {
            publish(
                ctx,
                vn,
                EventType::Normal,
                "AttachmentDefinitionRestored",
                format!("NetworkAttachmentDefinition {nad_name} was edited; restored"),
            )
            .await
        }
        _ => {}
    }
    if let Err(e) = &outcome {
        let was = find(&old.conditions, c::READY).map(|c| (c.reason.as_str(), c.message.as_str()));
        let ready = find(&status.conditions, c::READY);
        if was != ready.map(|c| (c.reason.as_str(), c.message.as_str())) {
            publish(ctx, vn, EventType::Warning, "SpecRefused", e.to_string()).await;
        }
    }
    if let Some(Err(e)) = nad_result {
        return Err(e);
    }
    Ok(Action::requeue(ctx.opts.resync))
}

/// `ns/pod (ifname) on node`, for messages.
fn describe_users(model: &Model, key: &NetworkKey) -> Vec<String> {
    let mut users: Vec<String> = model
        .attachments_of(key)
        .map(|a| {
            format!(
                "{}/{} ({}) on {}",
                a.pod.namespace, a.pod.name, a.id.ifname, a.node
            )
        })
        .collect();
    users.sort();
    users
}

async fn cleanup(vn: &VirtualNetwork, ctx: &Context, key: &NetworkKey) -> Result<Action, K8sError> {
    if !vn.finalizers().iter().any(|f| f == weft_api::FINALIZER) {
        return Ok(Action::await_change());
    }
    let snap: Snapshot = ctx.store.snapshot();
    let users = describe_users(&snap.model, key);
    if !users.is_empty() {
        let shown: Vec<&str> = users.iter().take(10).map(String::as_str).collect();
        let more = users.len().saturating_sub(shown.len());
        let message = format!(
            "deletion waits for {} pod interface(s) to detach: {}{}; delete those pods or remove their network annotation",
            users.len(),
            shown.join(", "),
            if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            }
        );
        let old = vn.status.clone().unwrap_or_default();
        let mut conds: Vec<Condition> = old
            .conditions
            .iter()
            .filter(|c| c.type_ != c::READY)
            .cloned()
            .collect();
        conds.push(cond(
            c::READY,
            false,
            c::REASON_DELETION_BLOCKED,
            message.clone(),
        ));
        let mut status = convert::model_status(&snap.model, key).unwrap_or_else(|| old.clone());
        status.observed_generation = old.observed_generation;
        status.conditions = merge_conditions(&old.conditions, conds, vn.metadata.generation);
        write_status(vn, ctx, &status).await?;
        if find(&old.conditions, c::READY).map(|c| c.reason.as_str())
            != Some(c::REASON_DELETION_BLOCKED)
        {
            publish(ctx, vn, EventType::Warning, "DeletionBlocked", message).await;
        }
        // Detaches re-trigger this network; the requeue is a safety net.
        return Ok(Action::requeue(Duration::from_secs(30)));
    }
    let (segment, _) = ctx.store.update(|m| {
        if m.networks.contains_key(key) {
            m.remove_network(key, false).map(|n| Some(n.segment))
        } else {
            Ok(None)
        }
    })?;
    nad::remove(&ctx.client, vn, ctx.opts.api_timeout).await?;
    let rest: Vec<String> = vn
        .finalizers()
        .iter()
        .filter(|f| *f != weft_api::FINALIZER)
        .cloned()
        .collect();
    set_finalizers(vn, ctx, rest).await?;
    tracing::info!(network = %key, ?segment, "network deleted");
    publish(
        ctx,
        vn,
        EventType::Normal,
        "Deleted",
        match segment {
            Some(s) => format!("segment {s} and its addresses released"),
            None => "nothing was allocated".into(),
        },
    )
    .await;
    Ok(Action::await_change())
}

/// Networks whose model-derived status changed with each new model version (attachments came or
/// went, a segment was released), so the reconciler updates their status and resumes a blocked
/// deletion without waiting for the resync.
pub fn model_triggers(
    mut rx: tokio::sync::watch::Receiver<Snapshot>,
) -> impl Stream<Item = ObjectRef<VirtualNetwork>> + Send + 'static {
    async_stream(move |tx| async move {
        // The first snapshot only sets the baseline: the controller's initial list reconciles
        // every network anyway.
        let mut last: Option<HashMap<NetworkKey, Option<VirtualNetworkStatus>>> = None;
        loop {
            let snap = rx.borrow_and_update().clone();
            let now: HashMap<NetworkKey, Option<VirtualNetworkStatus>> = snap
                .model
                .networks
                .keys()
                .map(|k| (k.clone(), convert::model_status(&snap.model, k)))
                .collect();
            if let Some(last) = &last {
                let changed = now
                    .iter()
                    .filter(|(k, st)| last.get(*k) != Some(*st))
                    .map(|(k, _)| k)
                    .chain(last.keys().filter(|k| !now.contains_key(*k)));
                for k in changed {
                    if tx
                        .send(ObjectRef::new(&k.name).within(&k.namespace))
                        .is_err()
                    {
                        return;
                    }
                }
            }
            last = Some(now);
            if rx.changed().await.is_err() {
                return;
            }
        }
    })
}

/// A stream fed by a spawned task through an unbounded channel.
fn async_stream<T, F, Fut>(f: F) -> impl Stream<Item = T> + Send + 'static
where
    T: Send + 'static,
    F: FnOnce(tokio::sync::mpsc::UnboundedSender<T>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(f(tx));
    tokio_stream::wrappers::UnboundedReceiverStream::new(rx)
}

/// Runs the `VirtualNetwork` controller until the stream ends (never, in practice).
pub async fn run(ctx: Arc<Context>) {
    let vns: Api<VirtualNetwork> = Api::all(ctx.client.clone());
    let nads: Api<NetworkAttachmentDefinition> = Api::all(ctx.client.clone());
    Controller::new(vns, watcher::Config::default())
        .owns(nads, watcher::Config::default())
        .reconcile_on(model_triggers(ctx.store.subscribe()))
        .run(reconcile, error_policy, ctx)
        .for_each(|r| async move {
            if let Ok((obj, _)) = r {
                tracing::debug!(network = %obj.name, "reconciled");
            }
        })
        .await;
}
