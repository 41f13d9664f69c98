//! Kubernetes mode: intents from `VirtualNetwork` resources, Multus `NetworkAttachmentDefinition`s
//! written back, state kept in the API server instead of a database file.
//!
//! The same [`ModelStore`] as standalone mode sits in the middle; only where intents come from and
//! where state is kept differ:
//!
//! - [`reconcile`]: a kube-runtime `Controller` puts each `VirtualNetwork` into the model, owns its
//!   NAD ([`nad`]), writes status conditions and guards deletion with a finalizer while pods are
//!   attached. Model changes (agents attaching pods) re-trigger the affected networks.
//! - [`convert`]: spec and status mapping; the status records segment and attachments so a newly
//!   elected leader rebuilds the exact model and the switches keep their flows.
//! - [`gc`]: attachments whose pod no longer exists (by UID) are collected, in case a CNI DEL
//!   never came.
//! - [`leader`]: a `coordination.k8s.io` Lease; only the leader serves switches and agents.

pub mod convert;
pub mod gc;
pub mod leader;
pub mod nad;
pub mod reconcile;
pub mod runtime;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use kube::Client;
use kube::api::{Api, ListParams};
use kube_runtime::events::{Recorder, Reporter};
use weft_api::VirtualNetwork;

use crate::model::{Model, NetworkKey};
use crate::store::{ModelStore, StoreError};

/// Why a call to the API server or the model failed, classified so the reconciler knows whether
/// to retry soon, back off, or tell the operator to fix RBAC.
#[derive(Debug, thiserror::Error)]
pub enum K8sError {
    #[error(
        "{what}: forbidden ({message}); the weft-controller ServiceAccount lacks this permission: check the ClusterRole in deploy/base/rbac-controller.yaml"
    )]
    Forbidden { what: String, message: String },
    #[error("{what}: conflict ({message}); retrying with fresh state")]
    Conflict { what: String, message: String },
    #[error("{what}: API server unavailable ({message}); retrying with backoff")]
    Unavailable { what: String, message: String },
    #[error("{what}: no answer from the API server within {after:?}; retrying with backoff")]
    Timeout { what: String, after: Duration },
    #[error("{what}: {source}")]
    Api {
        what: String,
        #[source]
        source: kube::Error,
    },
    #[error("model: {0}")]
    Store(#[from] StoreError),
    #[error("resource has no {0}")]
    Incomplete(&'static str),
}

impl K8sError {
    /// Errors that go away by themselves (retry with backoff) rather than needing a fix.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            K8sError::Conflict { .. } | K8sError::Unavailable { .. } | K8sError::Timeout { .. }
        )
    }

    /// Sorts a client error: 403, 409, 429/5xx and transport failures get their own variants.
    pub fn classify(what: impl Into<String>, e: kube::Error) -> Self {
        let what = what.into();
        match e {
            kube::Error::Api(s) if s.code == 403 => K8sError::Forbidden {
                what,
                message: s.message,
            },
            kube::Error::Api(s) if s.code == 409 => K8sError::Conflict {
                what,
                message: s.message,
            },
            kube::Error::Api(s) if s.code == 429 || s.code >= 500 => K8sError::Unavailable {
                what,
                message: format!("{} {}", s.code, s.message),
            },
            e @ (kube::Error::HyperError(_) | kube::Error::Service(_)) => K8sError::Unavailable {
                what,
                message: e.to_string(),
            },
            source => K8sError::Api { what, source },
        }
    }

    /// The HTTP status code of an API error, if that is what it was.
    pub fn is_not_found(e: &kube::Error) -> bool {
        matches!(e, kube::Error::Api(s) if s.code == 404)
    }
}

/// Runs one API call with a deadline and classifies its failure.
pub async fn call<T>(
    what: impl Into<String>,
    limit: Duration,
    fut: impl Future<Output = Result<T, kube::Error>>,
) -> Result<T, K8sError> {
    let what = what.into();
    match tokio::time::timeout(limit, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(K8sError::classify(what, e)),
        Err(_) => Err(K8sError::Timeout { what, after: limit }),
    }
}

/// Settings of Kubernetes mode.
#[derive(Debug, Clone)]
pub struct Options {
    /// Deadline of each API call.
    pub api_timeout: Duration,
    /// Reconcile every network this often even without changes (repairs anything missed).
    pub resync: Duration,
    /// Seconds between orphan sweeps.
    pub gc_interval: Duration,
    /// First and largest retry delay after a failed reconcile.
    pub backoff: (Duration, Duration),
    /// Name of this controller instance in Events (the pod name).
    pub instance: String,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            api_timeout: Duration::from_secs(20),
            resync: Duration::from_secs(300),
            gc_interval: Duration::from_secs(60),
            backoff: (Duration::from_millis(500), Duration::from_secs(300)),
            instance: "weft-controller".into(),
        }
    }
}

/// What every reconcile needs.
pub struct Context {
    pub client: Client,
    pub store: Arc<ModelStore>,
    pub recorder: Recorder,
    pub opts: Options,
    /// Failed attempts in a row per network, for the retry backoff.
    pub failures: std::sync::Mutex<std::collections::HashMap<NetworkKey, u32>>,
}

impl Context {
    pub fn new(client: Client, store: Arc<ModelStore>, opts: Options) -> Arc<Self> {
        let recorder = Recorder::new(
            client.clone(),
            Reporter {
                controller: weft_api::MANAGER.into(),
                instance: Some(opts.instance.clone()),
            },
        );
        Arc::new(Context {
            client,
            store,
            recorder,
            opts,
            failures: Default::default(),
        })
    }
}

/// The model as the API server records it: every `VirtualNetwork` with a segment in its status,
/// with its attachments. A new leader starts from this, so its first flows equal the old
/// leader's and no switch is flushed.
pub async fn load_model(client: &Client, limit: Duration) -> Result<Model, K8sError> {
    let api: Api<VirtualNetwork> = Api::all(client.clone());
    let list = call(
        "list VirtualNetworks",
        limit,
        api.list(&ListParams::default()),
    )
    .await?;
    let mut model = Model::default();
    let mut restored = 0usize;
    for vn in list.items {
        let (Some(ns), Some(name)) = (vn.metadata.namespace.clone(), vn.metadata.name.clone())
        else {
            continue;
        };
        let key = NetworkKey::new(ns, name);
        if let Some(status) = &vn.status
            && convert::restore_into(&mut model, &key, status).is_some()
        {
            restored += 1;
        }
    }
    tracing::info!(
        networks = restored,
        attachments = model.attachments.len(),
        "model restored from VirtualNetwork status"
    );
    Ok(model)
}
