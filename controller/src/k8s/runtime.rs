//! Kubernetes mode as the binary runs it: stand by until elected, rebuild the model from the API
//! server, then run the reconciler, the orphan collector and the lease renewal side by side.

use std::sync::Arc;

use kube::Client;

use super::leader::{Elector, LeadershipLost, LeaseConfig};
use super::{Context, K8sError, Options, gc, load_model, reconcile};
use crate::store::ModelStore;

/// Where the lease lives and who this replica is.
#[derive(Debug, Clone)]
pub struct Identity {
    /// Namespace of the Lease (the controller's own).
    pub namespace: String,
    /// Lease name, shared by all replicas.
    pub lease: String,
    /// This replica (its pod name).
    pub name: String,
}

/// A leader's running Kubernetes side.
pub struct Running {
    ctx: Arc<Context>,
    elector: Elector,
}

/// Why Kubernetes mode stopped.
#[derive(Debug, thiserror::Error)]
pub enum Stopped {
    #[error("leadership lost: {0}")]
    Lost(#[from] LeadershipLost),
    #[error("the VirtualNetwork controller stopped")]
    ControllerEnded,
}

/// Waits until this replica leads, then loads the model the previous leader recorded. Nothing
/// listens before this returns, so a standby is not Ready and gets no traffic.
pub async fn start(
    client: Client,
    who: Identity,
    opts: Options,
) -> Result<(Arc<ModelStore>, Running), K8sError> {
    let mut elector = Elector::new(
        client.clone(),
        LeaseConfig::new(&who.namespace, &who.lease, &who.name),
    );
    elector.acquire().await;
    tracing::info!(identity = %who.name, "leading; loading state from the API server");
    let model = load_model(&client, opts.api_timeout).await?;
    let store = Arc::new(ModelStore::new(model, 0, None));
    let ctx = Context::new(client, store.clone(), opts);
    Ok((store, Running { ctx, elector }))
}

impl Running {
    /// Runs until leadership is lost (the caller should exit: switches keep their flows and the
    /// next leader resumes from the same state).
    pub async fn run(&mut self) -> Stopped {
        let ctx = self.ctx.clone();
        tokio::select! {
            lost = self.elector.hold() => Stopped::Lost(lost),
            _ = reconcile::run(ctx.clone()) => Stopped::ControllerEnded,
            _ = gc::run(ctx) => Stopped::ControllerEnded,
        }
    }

    /// Hands the lease over at shutdown so a standby takes over at once.
    pub async fn release(&mut self) {
        if let Err(e) = self.elector.release().await {
            tracing::warn!(error = %e, "could not release the lease; the standby waits for it to expire");
        }
    }
}
