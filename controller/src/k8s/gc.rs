//! Orphan collection: an attachment (or a reservation made for one) whose pod no longer exists is
//! released, in case the CNI DEL never came (node lost, kubelet restarted mid-teardown). Pods are
//! matched by UID, so a pod recreated under the same name does not keep its predecessor's
//! addresses; a pod is judged gone only after the watch cache misses it and a direct read
//! confirms it, so a lagging watch cannot release a live pod's address.

use std::collections::HashSet;
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use kube::core::PartialObjectMeta;
use kube_runtime::WatchStreamExt;
use kube_runtime::reflector::{self, Store};
use kube_runtime::watcher::{self, Event};

use super::{Context, K8sError, call};
use crate::ipam;
use crate::model::{AttachmentId, PodRef};

/// Reservations (attached or not) whose pod UID is not in `live`.
pub fn candidates(
    model: &crate::model::Model,
    live: &HashSet<String>,
) -> Vec<(AttachmentId, PodRef)> {
    model
        .reservations
        .iter()
        .filter(|(_, r)| !live.contains(&r.pod.uid))
        .map(|(id, r)| (id.clone(), r.pod.clone()))
        .collect()
}

/// One sweep: releases every reservation whose pod is confirmed gone. Returns how many.
pub async fn sweep(ctx: &Context, live: &HashSet<String>) -> Result<usize, K8sError> {
    let snap = ctx.store.snapshot();
    let mut dead = Vec::new();
    for (id, pod) in candidates(&snap.model, live) {
        let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &pod.namespace);
        let found = call(
            format!("get pod {}/{}", pod.namespace, pod.name),
            ctx.opts.api_timeout,
            api.get_metadata_opt(&pod.name),
        )
        .await?;
        let alive = found.is_some_and(|p| {
            pod.uid.is_empty() || p.metadata.uid.as_deref() == Some(pod.uid.as_str())
        });
        if !alive {
            dead.push((id, pod));
        }
    }
    if dead.is_empty() {
        return Ok(0);
    }
    ctx.store.update(|m| {
        for (id, _) in &dead {
            ipam::release(m, id);
        }
        Ok(())
    })?;
    for (id, pod) in &dead {
        tracing::info!(
            pod = %format!("{}/{}", pod.namespace, pod.name), pod_uid = %pod.uid,
            container = %id.container_id, ifname = %id.ifname,
            "released attachment of a pod that no longer exists"
        );
    }
    Ok(dead.len())
}

fn live_uids(store: &Store<PartialObjectMeta<Pod>>) -> HashSet<String> {
    store
        .state()
        .iter()
        .filter_map(|p| p.metadata.uid.clone())
        .collect()
}

/// Watches pod metadata cluster-wide and sweeps after every pod deletion and every
/// `gc_interval`. Runs until the watch stream ends.
pub async fn run(ctx: Arc<Context>) {
    // Metadata only: UIDs are all this needs, and pods are the biggest objects in a cluster.
    let pods: Api<PartialObjectMeta<Pod>> = Api::all(ctx.client.clone());
    let (reader, writer) = reflector::store();
    let deleted = Arc::new(tokio::sync::Notify::new());
    let notify = deleted.clone();
    let watch = reflector::reflector(writer, watcher::watcher(pods, watcher::Config::default()))
        .default_backoff()
        .for_each(move |ev| {
            if let Ok(Event::Delete(_)) = ev {
                notify.notify_one();
            }
            futures::future::ready(())
        });
    let sweeper = async {
        if reader.wait_until_ready().await.is_err() {
            return;
        }
        loop {
            match sweep(&ctx, &live_uids(&reader)).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(released = n, "orphan sweep"),
                Err(e) => tracing::warn!(error = %e, "orphan sweep failed"),
            }
            tokio::select! {
                _ = deleted.notified() => {}
                _ = tokio::time::sleep(ctx.opts.gc_interval) => {}
            }
        }
    };
    tokio::select! {
        _ = watch => tracing::warn!("pod watch ended"),
        _ = sweeper => {}
    }
}
