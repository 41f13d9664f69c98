//! The node's Weft-owned OVS interfaces as the OVSDB monitor reports them: the source of the
//! `ReportPorts` message (name -> ofport, state, peer) and of the ports-by-state gauge.

use crate::cni::ports::keys;
use crate::ovsdb::{Event, TableUpdates, Uuid, Value};
use crate::tunnels::{OWNER_TUNNEL, PEER_KEY};
use std::collections::BTreeMap;
use weft_proto::agent::v1 as pb;

/// Monitor id of the agent's Interface monitor.
pub(crate) const MONITOR_ID: &str = "weft-agent-ports";
/// Columns it watches.
pub(crate) const COLUMNS: &[&str] = &["name", "ofport", "link_state", "error", "external_ids"];

#[derive(Debug, Clone, PartialEq, Eq)]
struct Iface {
    name: String,
    /// `None` until ovs-vswitchd assigns one; -1 when it failed to add the port.
    ofport: Option<i64>,
    link_state: String,
    error: String,
    owner: String,
    peer: String,
}

impl Iface {
    fn from_row(r: &crate::ovsdb::Row) -> Option<Iface> {
        let ids = r.get("external_ids");
        let id = |k: &str| {
            ids.and_then(|v| v.map_get(k))
                .and_then(|a| a.as_str())
                .unwrap_or("")
                .to_string()
        };
        let owner = id(keys::OWNER);
        if owner.is_empty() {
            return None;
        }
        let s = |c: &str| r.get(c).and_then(Value::as_str).unwrap_or("").to_string();
        Some(Iface {
            name: s("name"),
            ofport: r.get("ofport").and_then(Value::as_integer),
            link_state: s("link_state"),
            error: s("error"),
            peer: id(PEER_KEY),
            owner,
        })
    }

    fn kind(&self) -> &'static str {
        if self.owner == OWNER_TUNNEL {
            "tunnel"
        } else {
            "pod"
        }
    }

    fn state(&self) -> &'static str {
        match self.ofport {
            _ if !self.error.is_empty() => "error",
            Some(p) if p < 0 => "error",
            None => "pending",
            Some(_) if self.link_state == "up" => "up",
            Some(_) => "down",
        }
    }
}

/// What a monitor event meant for the agent.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Change {
    /// The port report differs from before.
    pub report: bool,
    /// A tunnel interface vanished or broke, or the database was re-read: reconcile.
    pub reconcile: bool,
}

/// Weft-owned interfaces (tunnels and pod ports) by row UUID.
#[derive(Debug, Default)]
pub(crate) struct PortTable {
    rows: BTreeMap<Uuid, Iface>,
}

impl PortTable {
    fn load(&mut self, updates: &TableUpdates, replace: bool) -> Change {
        let mut c = Change::default();
        if replace {
            self.rows.clear();
            c = Change {
                report: true,
                reconcile: true,
            };
        }
        let Some(rows) = updates.get("Interface") else {
            return c;
        };
        for (uuid, u) in rows {
            let new = u.new.as_ref().and_then(Iface::from_row);
            let old = self.rows.remove(uuid);
            let tunnel_broke = match (&old, &new) {
                (Some(o), None) => o.owner == OWNER_TUNNEL,
                (_, Some(n)) => n.owner == OWNER_TUNNEL && n.state() == "error",
                _ => false,
            };
            c.reconcile |= tunnel_broke;
            c.report |= old != new;
            if let Some(n) = new {
                self.rows.insert(uuid.clone(), n);
            }
        }
        c
    }

    /// Applies an event of the OVSDB client.
    pub(crate) fn apply(&mut self, ev: &Event) -> Change {
        match ev {
            Event::Initial {
                monitor_id,
                updates,
            } if monitor_id == MONITOR_ID => self.load(updates, true),
            Event::Update {
                monitor_id,
                updates,
            } if monitor_id == MONITOR_ID => self.load(updates, false),
            _ => Change::default(),
        }
    }

    /// Ports as the controller wants them, sorted by name. `problems` (interface name -> (peer,
    /// error)) adds the agent's own errors: tunnels it could not make have no row yet.
    pub(crate) fn report(
        &self,
        problems: &BTreeMap<String, (String, String)>,
    ) -> Vec<pb::PortState> {
        let mut out: BTreeMap<String, pb::PortState> = BTreeMap::new();
        for i in self.rows.values() {
            out.insert(
                i.name.clone(),
                pb::PortState {
                    name: i.name.clone(),
                    ofport: i.ofport.unwrap_or(-1),
                    link_state: i.link_state.clone(),
                    peer_node: i.peer.clone(),
                    error: i.error.clone(),
                },
            );
        }
        for (name, (peer, error)) in problems {
            let e = out.entry(name.clone()).or_insert_with(|| pb::PortState {
                name: name.clone(),
                ofport: -1,
                link_state: String::new(),
                peer_node: peer.clone(),
                error: String::new(),
            });
            e.error = if e.error.is_empty() {
                error.clone()
            } else {
                format!("{}; {error}", e.error)
            };
        }
        out.into_values().collect()
    }

    /// (kind, state) -> count, for the ports gauge.
    pub(crate) fn by_state(&self) -> BTreeMap<(String, String), u64> {
        let mut m = BTreeMap::new();
        for i in self.rows.values() {
            *m.entry((i.kind().to_string(), i.state().to_string()))
                .or_insert(0) += 1;
        }
        m
    }

    /// The ofport of a tunnel to `peer`, if assigned.
    #[cfg(test)]
    fn tunnel_ofport(&self, peer: &str) -> Option<i64> {
        self.rows
            .values()
            .find(|i| i.owner == OWNER_TUNNEL && i.peer == peer)
            .and_then(|i| i.ofport)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ovsdb::{RowUpdate, row};

    fn uuid(n: u8) -> Uuid {
        Uuid::parse(&format!("00000000-0000-0000-0000-0000000000{n:02x}")).unwrap()
    }

    fn iface(name: &str, owner: &str, peer: &str, ofport: Option<i64>) -> crate::ovsdb::Row {
        let mut r = row([
            ("name", Value::from(name)),
            ("link_state", "up".into()),
            (
                "external_ids",
                Value::map([(keys::OWNER, owner), (PEER_KEY, peer)]),
            ),
        ]);
        r.insert(
            "ofport".into(),
            ofport.map(Value::from).unwrap_or_else(Value::empty_set),
        );
        r
    }

    fn ev(initial: bool, rows: Vec<(u8, Option<crate::ovsdb::Row>)>) -> Event {
        let updates: TableUpdates = [(
            "Interface".to_string(),
            rows.into_iter()
                .map(|(n, new)| (uuid(n), RowUpdate { old: None, new }))
                .collect(),
        )]
        .into();
        let monitor_id = MONITOR_ID.to_string();
        if initial {
            Event::Initial {
                monitor_id,
                updates,
            }
        } else {
            Event::Update {
                monitor_id,
                updates,
            }
        }
    }

    #[test]
    fn tracks_owned_interfaces_and_reports_them() {
        let mut t = PortTable::default();
        let c = t.apply(&ev(
            true,
            vec![
                (1, Some(iface("wv1", OWNER_TUNNEL, "b", None))),
                (2, Some(iface("wf1", keys::OWNER_CNI, "", Some(3)))),
                (3, Some(row([("name", Value::from("foreign"))]))),
            ],
        ));
        assert!(c.report && c.reconcile);
        let r = t.report(&BTreeMap::new());
        assert_eq!(r.len(), 2);
        assert_eq!((r[0].name.as_str(), r[0].ofport), ("wf1", 3));
        assert_eq!((r[1].name.as_str(), r[1].ofport), ("wv1", -1));
        assert_eq!(r[1].peer_node, "b");
        assert_eq!(
            t.by_state(),
            [
                (("pod".to_string(), "up".to_string()), 1),
                (("tunnel".to_string(), "pending".to_string()), 1)
            ]
            .into()
        );

        // The tunnel gets its ofport: report changes, no reconcile needed.
        let c = t.apply(&ev(
            false,
            vec![(1, Some(iface("wv1", OWNER_TUNNEL, "b", Some(7))))],
        ));
        assert_eq!(
            c,
            Change {
                report: true,
                reconcile: false
            }
        );
        assert_eq!(t.tunnel_ofport("b"), Some(7));
        // Same row again: nothing changed.
        let c = t.apply(&ev(
            false,
            vec![(1, Some(iface("wv1", OWNER_TUNNEL, "b", Some(7))))],
        ));
        assert_eq!(c, Change::default());
        // The tunnel port vanished: reconcile.
        let c = t.apply(&ev(false, vec![(1, None)]));
        assert!(c.reconcile && c.report);
        // A pod port vanishing is the CNI's business.
        let c = t.apply(&ev(false, vec![(2, None)]));
        assert!(c.report && !c.reconcile);
        // Other monitors are ignored.
        let other = Event::Update {
            monitor_id: "x".into(),
            updates: TableUpdates::new(),
        };
        assert_eq!(t.apply(&other), Change::default());
    }

    #[test]
    fn problems_are_merged_into_the_report() {
        let mut t = PortTable::default();
        t.apply(&ev(
            true,
            vec![(1, Some(iface("wv1", OWNER_TUNNEL, "b", Some(-1))))],
        ));
        let problems: BTreeMap<String, (String, String)> = [
            ("wv1".to_string(), ("b".to_string(), "boom".to_string())),
            (
                "wv2".to_string(),
                ("c".to_string(), "bad address".to_string()),
            ),
        ]
        .into();
        let r = t.report(&problems);
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].error, "boom");
        assert_eq!((r[1].peer_node.as_str(), r[1].ofport), ("c", -1));
        assert_eq!(r[1].error, "bad address");
        assert_eq!(
            t.by_state(),
            [(("tunnel".to_string(), "error".to_string()), 1)].into()
        );
    }
}
