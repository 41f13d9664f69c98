//! The live model: one writer at a time, every change versioned and published to watchers (the
//! per-switch reconcilers, agent streams, northbound watches), optionally persisted first.
//!
//! Confirmations travel the other way: each switch reconciler reports the model version its
//! switch now holds, and callers (CNI ADD through the agent) can wait for "flows installed".

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use crate::changes::{Change, ChangeLog};
use crate::model::{Model, ModelError};

/// An immutable view of the model at one version.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub version: u64,
    pub model: Arc<Model>,
    /// What the last versions changed, so reconcilers skip versions that do not concern them.
    pub changes: ChangeLog,
}

/// Where the model is kept across restarts (standalone: redb; in a cluster: the API server).
pub trait Persist: Send + Sync + 'static {
    /// Stores `new` as `version`; `old` is what the previous call stored, so only the
    /// difference needs writing. Without `durable` the write may be lost in a crash until the
    /// next durable one (no disk sync of its own).
    fn save(&self, version: u64, old: &Model, new: &Model, durable: bool) -> Result<(), String>;
}

/// Why an update did not happen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("could not persist the model: {0}")]
    Persist(String),
}

/// Why a wait for confirmation ended without it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfirmError {
    #[error("switches of {0:?} did not confirm version {1} in time")]
    Timeout(Vec<String>, u64),
}

pub struct ModelStore {
    tx: watch::Sender<Snapshot>,
    /// Serialises writers, so read-modify-write is atomic.
    write: Mutex<()>,
    persist: Option<Box<dyn Persist>>,
    /// node -> model version its switch holds.
    confirmed: watch::Sender<BTreeMap<String, u64>>,
}

impl ModelStore {
    pub fn new(initial: Model, version: u64, persist: Option<Box<dyn Persist>>) -> Self {
        let (tx, _) = watch::channel(Snapshot {
            version,
            model: Arc::new(initial),
            changes: ChangeLog::default(),
        });
        let (confirmed, _) = watch::channel(BTreeMap::new());
        ModelStore {
            tx,
            write: Mutex::new(()),
            persist,
            confirmed,
        }
    }

    pub fn snapshot(&self) -> Snapshot {
        self.tx.borrow().clone()
    }

    pub fn subscribe(&self) -> watch::Receiver<Snapshot> {
        self.tx.subscribe()
    }

    /// Applies `f` to a copy of the model; on success persists and publishes it as a new version.
    /// On error nothing changes. A closure that changes nothing publishes nothing.
    pub fn update<T>(
        &self,
        f: impl FnOnce(&mut Model) -> Result<T, ModelError>,
    ) -> Result<(T, u64), StoreError> {
        self.update_with(true, f)
    }

    /// [`ModelStore::update`] for changes a crash may lose without harm (the caller's protocol
    /// repeats or fails them safely): persisted without a disk sync of their own, which on a
    /// slow disk is most of an update's latency.
    pub fn update_relaxed<T>(
        &self,
        f: impl FnOnce(&mut Model) -> Result<T, ModelError>,
    ) -> Result<(T, u64), StoreError> {
        self.update_with(false, f)
    }

    fn update_with<T>(
        &self,
        durable: bool,
        f: impl FnOnce(&mut Model) -> Result<T, ModelError>,
    ) -> Result<(T, u64), StoreError> {
        let _guard = self.write.lock().unwrap_or_else(|p| p.into_inner());
        let cur = self.snapshot();
        // Persistent maps: the copy shares everything, `f` copies only what it writes, and the
        // change is found by a diff that skips the shared parts. A write costs O(change).
        let mut model = (*cur.model).clone();
        let out = f(&mut model)?;
        let change = Change::between(&cur.model, &model);
        // Reservations alone (a prepared ADD) change no flows but are state all the same.
        if change.is_empty() && model.reservations == cur.model.reservations {
            return Ok((out, cur.version));
        }
        let version = cur.version + 1;
        if let Some(p) = &self.persist {
            p.save(version, &cur.model, &model, durable)
                .map_err(StoreError::Persist)?;
        }
        let mut changes = cur.changes.clone();
        changes.push(version, change);
        self.tx.send_replace(Snapshot {
            version,
            model: Arc::new(model),
            changes,
        });
        Ok((out, version))
    }

    /// A switch reconciler reports that `node`'s switch holds the flows of `version`.
    pub fn confirm(&self, node: &str, version: u64) {
        self.confirmed.send_modify(|m| {
            let v = m.entry(node.to_string()).or_insert(0);
            *v = (*v).max(version);
        });
    }

    /// Forgets a node's confirmation (its switch disconnected).
    pub fn unconfirm(&self, node: &str) {
        self.confirmed.send_modify(|m| {
            m.remove(node);
        });
    }

    pub fn confirmed(&self) -> BTreeMap<String, u64> {
        self.confirmed.borrow().clone()
    }

    /// Waits until every node in `nodes` confirmed at least `version`.
    pub async fn wait_confirmed(
        &self,
        nodes: &[String],
        version: u64,
        limit: Duration,
    ) -> Result<(), ConfirmError> {
        let mut rx = self.confirmed.subscribe();
        let pending = |m: &BTreeMap<String, u64>| -> Vec<String> {
            nodes
                .iter()
                .filter(|n| m.get(*n).is_none_or(|v| *v < version))
                .cloned()
                .collect()
        };
        let wait = rx.wait_for(|m| pending(m).is_empty());
        match tokio::time::timeout(limit, wait).await {
            Ok(Ok(_)) => Ok(()),
            _ => Err(ConfirmError::Timeout(
                pending(&self.confirmed.borrow()),
                version,
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::NetworkKey;
    use weft_api::VirtualNetworkSpec;

    #[test]
    fn failed_updates_change_nothing_and_noops_keep_the_version() {
        let s = ModelStore::new(Model::default(), 0, None);
        let key = NetworkKey::new("ns", "a");
        let (_, v) = s
            .update(|m| {
                m.add_network(key.clone(), &VirtualNetworkSpec::default())
                    .map(|_| ())
            })
            .unwrap();
        assert_eq!(v, 1);
        let err = s
            .update(|m| {
                m.add_network(key.clone(), &VirtualNetworkSpec::default())
                    .map(|_| ())
            })
            .unwrap_err();
        assert!(matches!(
            err,
            StoreError::Model(ModelError::DuplicateNetwork(_))
        ));
        assert_eq!(s.snapshot().version, 1);
        let (_, v) = s.update(|_| Ok(())).unwrap();
        assert_eq!(v, 1);
    }

    /// A prepared ADD changes only a reservation: no flows, but state that must be published
    /// and persisted all the same.
    #[test]
    fn a_reservation_alone_is_a_new_version() {
        let s = ModelStore::new(Model::default(), 0, None);
        let key = NetworkKey::new("ns", "a");
        s.update(|m| {
            m.add_network(key.clone(), &VirtualNetworkSpec::default())
                .map(|_| ())
        })
        .unwrap();
        let id = crate::model::AttachmentId {
            container_id: "c".into(),
            ifname: "net1".into(),
        };
        let req = crate::ipam::ReserveRequest {
            id: id.clone(),
            network: key.clone(),
            node: "n1".into(),
            pod: crate::model::PodRef {
                namespace: "ns".into(),
                name: "p".into(),
                uid: "u".into(),
            },
            mac: None,
            ips: vec![],
        };
        let (_, v) = s.update(|m| crate::ipam::reserve(m, req.clone())).unwrap();
        assert_eq!(v, 2);
        let snap = s.snapshot();
        assert!(snap.model.reservations.contains_key(&id));
        assert_eq!(snap.changes.since(1, 2), Some(Change::default()));
        // The same reservation again (a CNI retry) changes nothing.
        let (_, v) = s.update(|m| crate::ipam::reserve(m, req)).unwrap();
        assert_eq!(v, 2);
    }

    #[tokio::test]
    async fn waiting_for_confirmation() {
        let s = Arc::new(ModelStore::new(Model::default(), 0, None));
        let s2 = s.clone();
        let waiter = tokio::spawn(async move {
            s2.wait_confirmed(&["a".into(), "b".into()], 3, Duration::from_secs(5))
                .await
        });
        s.confirm("a", 3);
        s.confirm("b", 2);
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished());
        s.confirm("b", 4);
        waiter.await.unwrap().unwrap();
        let err = s
            .wait_confirmed(&["c".into()], 1, Duration::from_millis(20))
            .await
            .unwrap_err();
        assert_eq!(err, ConfirmError::Timeout(vec!["c".into()], 1));
    }
}
