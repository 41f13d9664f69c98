//! Leader election on a `coordination.k8s.io/v1` Lease, as client-go does it: the holder renews
//! every `retry_period`; a candidate takes the lease over once it has seen no renewal for
//! `lease_duration` (measured on its own clock, so clock skew between nodes does not matter);
//! every write carries the `resourceVersion` it read, so two candidates cannot both win.
//!
//! Only the leader serves switches and agents. When leadership is lost the process exits and
//! restarts as a standby: switches run `fail_mode=secure` and keep their flows, and the next
//! leader rebuilds the same model from the API server, so nothing is flushed.

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::Client;
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
use serde_json::json;

use super::{K8sError, call};

#[derive(Debug, Clone)]
pub struct LeaseConfig {
    pub namespace: String,
    pub name: String,
    /// This candidate's name (the pod name).
    pub identity: String,
    /// How long a lease stays valid without renewal.
    pub lease_duration: Duration,
    /// The holder gives up if it could not renew for this long (less than `lease_duration`, so
    /// it stops before anyone else may start).
    pub renew_deadline: Duration,
    /// Time between attempts to acquire or renew.
    pub retry_period: Duration,
    pub api_timeout: Duration,
}

impl LeaseConfig {
    pub fn new(namespace: &str, name: &str, identity: &str) -> Self {
        LeaseConfig {
            namespace: namespace.into(),
            name: name.into(),
            identity: identity.into(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
            api_timeout: Duration::from_secs(5),
        }
    }
}

/// Why leadership ended.
#[derive(Debug, thiserror::Error)]
pub enum LeadershipLost {
    #[error("lease taken over by {0}")]
    TakenOver(String),
    #[error("could not renew the lease for {after:?}: {error}")]
    RenewFailed { after: Duration, error: K8sError },
}

/// One candidate.
pub struct Elector {
    api: Api<Lease>,
    cfg: LeaseConfig,
    /// The lease record last seen and when (our clock): (holder, renewTime, transitions).
    observed: Option<((String, String, i32), Instant)>,
}

fn micro_now() -> MicroTime {
    MicroTime(k8s_openapi::jiff::Timestamp::now())
}

impl Elector {
    pub fn new(client: Client, cfg: LeaseConfig) -> Self {
        Elector {
            api: Api::namespaced(client, &cfg.namespace),
            cfg,
            observed: None,
        }
    }

    pub fn identity(&self) -> &str {
        &self.cfg.identity
    }

    /// The Lease holds whole seconds: round up, never promise less than configured.
    fn duration_secs(&self) -> i32 {
        let d = self.cfg.lease_duration;
        let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
        i32::try_from(secs).unwrap_or(i32::MAX)
    }

    /// One attempt. `Ok(true)`: we hold the lease now; `Ok(false)`: someone else validly does.
    pub async fn try_acquire_or_renew(&mut self) -> Result<bool, K8sError> {
        let t = self.cfg.api_timeout;
        let what = format!("Lease {}/{}", self.cfg.namespace, self.cfg.name);
        let Some(lease) = call(format!("get {what}"), t, self.api.get_opt(&self.cfg.name)).await?
        else {
            let now = micro_now();
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.cfg.name.clone()),
                    namespace: Some(self.cfg.namespace.clone()),
                    ..Default::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(self.cfg.identity.clone()),
                    lease_duration_seconds: Some(self.duration_secs()),
                    acquire_time: Some(now.clone()),
                    renew_time: Some(now),
                    lease_transitions: Some(0),
                    ..Default::default()
                }),
            };
            return match call(
                format!("create {what}"),
                t,
                self.api.create(&PostParams::default(), &lease),
            )
            .await
            {
                Ok(_) => Ok(true),
                Err(K8sError::Conflict { .. }) => Ok(false),
                Err(e) => Err(e),
            };
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.clone().unwrap_or_default();
        let record = (
            holder.clone(),
            spec.renew_time
                .as_ref()
                .map(|t| t.0.to_string())
                .unwrap_or_default(),
            spec.lease_transitions.unwrap_or(0),
        );
        if self.observed.as_ref().map(|(r, _)| r) != Some(&record) {
            self.observed = Some((record, Instant::now()));
        }
        let valid_for = spec
            .lease_duration_seconds
            .and_then(|s| u64::try_from(s).ok())
            .map(Duration::from_secs)
            .unwrap_or(self.cfg.lease_duration);
        let seen_at = self
            .observed
            .as_ref()
            .map(|(_, at)| *at)
            .unwrap_or_else(Instant::now);
        let ours = holder == self.cfg.identity;
        if !holder.is_empty() && !ours && seen_at.elapsed() < valid_for {
            return Ok(false);
        }
        let now = micro_now();
        let mut new = json!({
            "holderIdentity": self.cfg.identity,
            "leaseDurationSeconds": self.duration_secs(),
            "renewTime": now,
        });
        if !ours {
            new["acquireTime"] = json!(now);
            new["leaseTransitions"] = json!(spec.lease_transitions.unwrap_or(0).saturating_add(1));
        }
        let patch =
            json!({"metadata": {"resourceVersion": lease.metadata.resource_version}, "spec": new});
        call(
            format!("{} {what}", if ours { "renew" } else { "take over" }),
            t,
            self.api.patch(
                &self.cfg.name,
                &PatchParams::default(),
                &Patch::Merge(&patch),
            ),
        )
        .await?;
        if !ours {
            tracing::info!(lease = %what, identity = %self.cfg.identity, previous = %holder, "acquired leadership");
        }
        Ok(true)
    }

    /// Waits until this candidate holds the lease.
    pub async fn acquire(&mut self) {
        let mut logged = false;
        loop {
            match self.try_acquire_or_renew().await {
                Ok(true) => return,
                Ok(false) if !logged => {
                    logged = true;
                    tracing::info!(identity = %self.cfg.identity, lease = %self.cfg.name, "standing by: another replica leads");
                }
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "leader election attempt failed"),
            }
            tokio::time::sleep(self.cfg.retry_period).await;
        }
    }

    /// Renews the lease until it is lost; returns why.
    pub async fn hold(&mut self) -> LeadershipLost {
        let mut last_ok = Instant::now();
        loop {
            tokio::time::sleep(self.cfg.retry_period).await;
            match self.try_acquire_or_renew().await {
                Ok(true) => last_ok = Instant::now(),
                Ok(false) => {
                    let by = self
                        .observed
                        .as_ref()
                        .map(|((h, _, _), _)| h.clone())
                        .unwrap_or_default();
                    return LeadershipLost::TakenOver(by);
                }
                Err(error) if last_ok.elapsed() >= self.cfg.renew_deadline => {
                    return LeadershipLost::RenewFailed {
                        after: last_ok.elapsed(),
                        error,
                    };
                }
                Err(e) => tracing::warn!(error = %e, "lease renewal failed; retrying"),
            }
        }
    }

    /// Gives the lease up (on shutdown) so a standby takes over at once instead of after
    /// `lease_duration`.
    pub async fn release(&mut self) -> Result<(), K8sError> {
        let t = self.cfg.api_timeout;
        let Some(lease) = call("get Lease", t, self.api.get_opt(&self.cfg.name)).await? else {
            return Ok(());
        };
        if lease.spec.and_then(|s| s.holder_identity).as_deref() != Some(self.cfg.identity.as_str())
        {
            return Ok(());
        }
        let patch = json!({"metadata": {"resourceVersion": lease.metadata.resource_version},
                           "spec": {"holderIdentity": null, "leaseDurationSeconds": 1}});
        call(
            "release Lease",
            t,
            self.api.patch(
                &self.cfg.name,
                &PatchParams::default(),
                &Patch::Merge(&patch),
            ),
        )
        .await?;
        tracing::info!(identity = %self.cfg.identity, "released leadership");
        Ok(())
    }
}
