//! What changed between model versions, so a switch reconciler can tell in a few set lookups
//! whether a new version concerns its switch at all. Without it every switch recomputed its whole
//! desired state (index included) on every change anywhere in the fabric: at 1,000 nodes that is
//! a thousand recomputations where a new attachment touches a couple of dozen switches.

use std::collections::{BTreeSet, VecDeque};

use imbl::OrdMap;
use imbl::ordmap::DiffItem;

use crate::model::{Model, NetworkKey};

/// How many versions of history a snapshot carries; a reconciler further behind recomputes all.
pub const HISTORY: usize = 64;

/// The difference between two consecutive model versions, as far as flows are concerned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Change {
    /// Nodes whose record changed (tunnels, datapath), that were added or removed, or that
    /// gained, lost or changed an attachment.
    pub nodes: BTreeSet<String>,
    /// Networks added, removed or changed, or whose members changed.
    pub networks: BTreeSet<NetworkKey>,
}

impl Change {
    /// What turned `old` into `new`. The maps are persistent and `new` is derived from `old`, so
    /// the diff skips every part they share: O(change), whatever the model's size.
    pub fn between(old: &Model, new: &Model) -> Change {
        let mut c = Change::default();
        walk(&old.nodes, &new.nodes, |name, _, _| {
            c.nodes.insert(name.clone());
        });
        walk(&old.networks, &new.networks, |key, _, _| {
            c.networks.insert(key.clone());
        });
        walk(old.attachments.map(), new.attachments.map(), |_, a, b| {
            for att in a.into_iter().chain(b) {
                c.nodes.insert(att.node.clone());
                c.networks.insert(att.network.clone());
            }
        });
        c
    }

    /// Nothing a switch cares about changed.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty() && self.networks.is_empty()
    }

    fn merge(&mut self, other: &Change) {
        self.nodes.extend(other.nodes.iter().cloned());
        self.networks.extend(other.networks.iter().cloned());
    }

    /// Whether the change can alter the flows of `node`'s switch, whose local members belong to
    /// the networks `local_networks` (before the change).
    pub fn touches(&self, node: &str, local_networks: &BTreeSet<NetworkKey>) -> bool {
        // A change of the node itself covers new local networks (a new attachment here names
        // this node) and changed tunnels.
        self.nodes.contains(node) || self.networks.iter().any(|k| local_networks.contains(k))
    }
}

/// Calls `f` for every key whose entry differs between the two maps (old value, new value),
/// skipping the subtrees they share.
pub(crate) fn walk<K: Ord + Clone, V: PartialEq + Clone>(
    old: &OrdMap<K, V>,
    new: &OrdMap<K, V>,
    mut f: impl FnMut(&K, Option<&V>, Option<&V>),
) {
    for d in old.diff(new) {
        match d {
            DiffItem::Add(k, v) => f(k, None, Some(v)),
            DiffItem::Update {
                old: (k, a),
                new: (_, b),
            } => f(k, Some(a), Some(b)),
            DiffItem::Remove(k, v) => f(k, Some(v), None),
        }
    }
}

/// The changes of the last [`HISTORY`] versions; cheap to clone into every snapshot.
#[derive(Debug, Clone, Default)]
pub struct ChangeLog {
    /// (version the change produced, change), oldest first.
    entries: VecDeque<(u64, std::sync::Arc<Change>)>,
}

impl ChangeLog {
    /// Records the change that produced `version`.
    pub fn push(&mut self, version: u64, change: Change) {
        if self.entries.len() == HISTORY {
            self.entries.pop_front();
        }
        self.entries
            .push_back((version, std::sync::Arc::new(change)));
    }

    /// Everything that changed after version `from` up to and including `to`, or `None` when the
    /// history does not reach back that far (then the caller must assume everything changed).
    pub fn since(&self, from: u64, to: u64) -> Option<Change> {
        if from >= to {
            return Some(Change::default());
        }
        let oldest = self.entries.front().map(|(v, _)| *v)?;
        if oldest > from + 1 {
            return None;
        }
        let mut out = Change::default();
        let mut seen = from;
        for (v, c) in self.entries.iter().filter(|(v, _)| *v > from && *v <= to) {
            if *v != seen + 1 {
                return None;
            }
            seen = *v;
            out.merge(c);
        }
        (seen == to).then_some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Attachment, AttachmentId, Network, Node, PodRef};
    use std::collections::BTreeMap;
    use std::net::{IpAddr, Ipv4Addr};
    use weft_api::VirtualNetworkSpec;

    fn att(id: &str, node: &str, net: &NetworkKey) -> Attachment {
        Attachment {
            id: AttachmentId {
                container_id: id.into(),
                ifname: "net1".into(),
            },
            network: net.clone(),
            node: node.into(),
            ofport: 1,
            mac: [2, 0, 0, 0, 0, 1],
            ips: vec![],
            pod: PodRef {
                namespace: "ns".into(),
                name: id.into(),
                uid: id.into(),
            },
        }
    }

    fn model() -> (Model, NetworkKey, NetworkKey) {
        let mut m = Model::default();
        for n in ["a", "b", "c"] {
            m.nodes.insert(
                n.into(),
                Node {
                    name: n.into(),
                    underlay_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
                    datapath_id: 1,
                    tunnel_ports: BTreeMap::new(),
                },
            );
        }
        let (x, y) = (NetworkKey::new("ns", "x"), NetworkKey::new("ns", "y"));
        for (k, s) in [(&x, 1), (&y, 2)] {
            let net = Network::from_spec(k.clone(), &VirtualNetworkSpec::default(), s).unwrap();
            m.networks.insert(k.clone(), net);
        }
        let a = att("p1", "a", &x);
        m.attachments.insert(a);
        (m, x, y)
    }

    #[test]
    fn a_new_attachment_names_its_node_and_network_only() {
        let (old, x, y) = model();
        let mut new = old.clone();
        let a = att("p2", "b", &x);
        new.attachments.insert(a);
        let c = Change::between(&old, &new);
        assert_eq!(c.nodes, BTreeSet::from(["b".to_string()]));
        assert_eq!(c.networks, BTreeSet::from([x.clone()]));
        // a has a member of x: touched. c has none: untouched. b gained one: touched.
        assert!(c.touches("a", &BTreeSet::from([x.clone()])));
        assert!(c.touches("b", &BTreeSet::new()));
        assert!(!c.touches("c", &BTreeSet::from([y])));
        assert_eq!(Change::between(&new, &new), Change::default());
    }

    #[test]
    fn removals_and_node_records_count() {
        let (old, x, _) = model();
        let mut new = old.clone();
        new.attachments = Default::default();
        new.nodes.remove("c");
        if let Some(n) = new.nodes.get_mut("a") {
            n.tunnel_ports.insert("b".into(), 7);
        }
        let c = Change::between(&old, &new);
        assert_eq!(c.nodes, BTreeSet::from(["a".to_string(), "c".to_string()]));
        assert_eq!(c.networks, BTreeSet::from([x]));
    }

    #[test]
    fn history_unions_consecutive_changes_and_admits_gaps() {
        let mut log = ChangeLog::default();
        let ch = |n: &str| Change {
            nodes: BTreeSet::from([n.to_string()]),
            networks: BTreeSet::new(),
        };
        log.push(5, ch("a"));
        log.push(6, ch("b"));
        log.push(7, ch("c"));
        let c = log.since(4, 7).unwrap();
        assert_eq!(c.nodes.len(), 3);
        assert_eq!(log.since(5, 6).unwrap().nodes, ch("b").nodes);
        assert_eq!(log.since(7, 7), Some(Change::default()));
        // Version 4 is not recorded: from 3 the history is incomplete.
        assert_eq!(log.since(3, 7), None);
        // Asked for a version beyond what is recorded.
        assert_eq!(log.since(6, 9), None);
        for v in 8..8 + HISTORY as u64 {
            log.push(v, ch("d"));
        }
        assert_eq!(log.since(6, 8 + HISTORY as u64 - 1), None);
    }
}
