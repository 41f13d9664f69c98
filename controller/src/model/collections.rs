//! The model's two big collections, attachments and reservations, each with the indexes the
//! hot paths need (members of a network, ports of a node), kept in step on every insert and
//! remove. Persistent maps: cloning the model shares them, a write copies only the path to what
//! it changes and a diff skips what two versions share, so a versioned store pays O(change) per
//! write however many attachments the cluster holds.

use imbl::{OrdMap, OrdSet};

use super::{Attachment, AttachmentId, NetworkKey};
use crate::ipam::Reservation;

/// Attachment ids grouped by a key (a network, a node).
#[derive(Debug, Clone)]
struct Groups<K: Ord + Clone>(OrdMap<K, OrdSet<AttachmentId>>);

/// Derived `Default` would demand `K: Default`.
impl<K: Ord + Clone> Default for Groups<K> {
    fn default() -> Self {
        Groups(OrdMap::new())
    }
}

impl<K: Ord + Clone> Groups<K> {
    fn add(&mut self, key: &K, id: &AttachmentId) {
        self.0.entry(key.clone()).or_default().insert(id.clone());
    }

    fn remove(&mut self, key: &K, id: &AttachmentId) {
        let now_empty = self.0.get_mut(key).is_some_and(|ids| {
            ids.remove(id);
            ids.is_empty()
        });
        if now_empty {
            self.0.remove(key);
        }
    }

    fn ids<'a>(&'a self, key: &K) -> impl Iterator<Item = &'a AttachmentId> + 'a {
        self.0.get(key).into_iter().flat_map(|ids| ids.iter())
    }

    fn count(&self, key: &K) -> usize {
        self.0.get(key).map_or(0, OrdSet::len)
    }
}

/// Every attachment by id, and the ids per network and per node.
#[derive(Debug, Clone, Default)]
pub struct Attachments {
    all: OrdMap<AttachmentId, Attachment>,
    by_network: Groups<NetworkKey>,
    by_node: Groups<String>,
}

/// Equal content; the indexes follow from it.
impl PartialEq for Attachments {
    fn eq(&self, other: &Self) -> bool {
        self.all == other.all
    }
}
impl Eq for Attachments {}

impl Attachments {
    /// Puts `a` in place (replacing the attachment of the same id) without the checks of
    /// [`super::Model::attach`]; returns the one it replaced.
    pub fn insert(&mut self, a: Attachment) -> Option<Attachment> {
        let old = self.remove(&a.id);
        self.by_network.add(&a.network, &a.id);
        self.by_node.add(&a.node, &a.id);
        self.all.insert(a.id.clone(), a);
        old
    }

    pub fn remove(&mut self, id: &AttachmentId) -> Option<Attachment> {
        let old = self.all.remove(id)?;
        self.by_network.remove(&old.network, id);
        self.by_node.remove(&old.node, id);
        Some(old)
    }

    pub fn get(&self, id: &AttachmentId) -> Option<&Attachment> {
        self.all.get(id)
    }

    pub fn contains_key(&self, id: &AttachmentId) -> bool {
        self.all.contains_key(id)
    }

    pub fn len(&self) -> usize {
        self.all.len()
    }

    pub fn is_empty(&self) -> bool {
        self.all.is_empty()
    }

    /// All attachments, in id order.
    pub fn values(&self) -> impl Iterator<Item = &Attachment> {
        self.all.values()
    }

    pub fn keys(&self) -> impl Iterator<Item = &AttachmentId> {
        self.all.keys()
    }

    /// The attachments of network `key`, in id order: O(its members), not O(all).
    pub fn of_network<'a>(&'a self, key: &NetworkKey) -> impl Iterator<Item = &'a Attachment> + 'a {
        self.by_network.ids(key).filter_map(|id| self.all.get(id))
    }

    /// The attachments on `node`, in id order.
    pub fn on_node<'a>(&'a self, node: &str) -> impl Iterator<Item = &'a Attachment> + 'a {
        self.by_node
            .0
            .get(node)
            .into_iter()
            .flat_map(|ids| ids.iter())
            .filter_map(|id| self.all.get(id))
    }

    pub fn count_on_node(&self, node: &str) -> usize {
        self.by_node.0.get(node).map_or(0, OrdSet::len)
    }

    pub fn count_of_network(&self, key: &NetworkKey) -> usize {
        self.by_network.count(key)
    }

    /// The map itself, for diffs between versions.
    pub(crate) fn map(&self) -> &OrdMap<AttachmentId, Attachment> {
        &self.all
    }
}

impl std::ops::Index<&AttachmentId> for Attachments {
    type Output = Attachment;
    fn index(&self, id: &AttachmentId) -> &Attachment {
        &self.all[id]
    }
}

/// Every reservation by attachment id, and the ids per network.
#[derive(Debug, Clone, Default)]
pub struct Reservations {
    all: OrdMap<AttachmentId, Reservation>,
    by_network: Groups<NetworkKey>,
}

impl PartialEq for Reservations {
    fn eq(&self, other: &Self) -> bool {
        self.all == other.all
    }
}
impl Eq for Reservations {}

impl Reservations {
    pub fn insert(&mut self, id: AttachmentId, r: Reservation) -> Option<Reservation> {
        let old = self.remove(&id);
        self.by_network.add(&r.network, &id);
        self.all.insert(id, r);
        old
    }

    pub fn remove(&mut self, id: &AttachmentId) -> Option<Reservation> {
        let old = self.all.remove(id)?;
        self.by_network.remove(&old.network, id);
        Some(old)
    }

    pub fn get(&self, id: &AttachmentId) -> Option<&Reservation> {
        self.all.get(id)
    }

    pub fn contains_key(&self, id: &AttachmentId) -> bool {
        self.all.contains_key(id)
    }

    pub fn len(&self) -> usize {
        self.all.len()
    }

    pub fn is_empty(&self) -> bool {
        self.all.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&AttachmentId, &Reservation)> {
        self.all.iter()
    }

    pub fn values(&self) -> impl Iterator<Item = &Reservation> {
        self.all.values()
    }

    /// The reservations on network `key`, in id order: O(its members), not O(all).
    pub fn of_network<'a>(
        &'a self,
        key: &NetworkKey,
    ) -> impl Iterator<Item = (&'a AttachmentId, &'a Reservation)> + 'a {
        self.by_network
            .ids(key)
            .filter_map(|id| self.all.get(id).map(|r| (id, r)))
    }

    /// Changes one reservation in place (not its network).
    pub(crate) fn update(&mut self, id: &AttachmentId, f: impl FnOnce(&mut Reservation)) {
        if let Some(r) = self.all.get_mut(id) {
            let network = r.network.clone();
            f(r);
            r.network = network;
        }
    }

    pub(crate) fn map(&self) -> &OrdMap<AttachmentId, Reservation> {
        &self.all
    }
}

impl std::ops::Index<&AttachmentId> for Reservations {
    type Output = Reservation;
    fn index(&self, id: &AttachmentId) -> &Reservation {
        &self.all[id]
    }
}
