//! Pod ports on the OVS bridge. The CNI server needs only these few operations, behind a trait so
//! tests can count or fail them; [`OvsdbPorts`] implements them over the agent's OVSDB client.

use crate::ovsdb::{
    self, Atom, Condition, Function, Mutation, Operation, Transact, Value, WaitUntil, row, selected,
};
use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

/// `external_ids` keys on Weft's pod ports (Port and Interface rows).
pub(crate) mod keys {
    /// Marks the port as made by the CNI server (value [`OWNER_CNI`]).
    pub(crate) const OWNER: &str = "weft.dev/owner";
    pub(crate) const OWNER_CNI: &str = "cni";
    pub(crate) const NETWORK: &str = "weft.dev/network";
    pub(crate) const POD_NAMESPACE: &str = "weft.dev/pod-namespace";
    pub(crate) const POD_NAME: &str = "weft.dev/pod-name";
    pub(crate) const POD_UID: &str = "weft.dev/pod-uid";
    pub(crate) const CONTAINER_ID: &str = "weft.dev/container-id";
    pub(crate) const IFNAME: &str = "weft.dev/ifname";
    pub(crate) const NETNS: &str = "weft.dev/netns";
    /// OVS convention (also read by other tools): the MAC of the pod end.
    pub(crate) const ATTACHED_MAC: &str = "attached-mac";
}

#[derive(Debug, thiserror::Error)]
pub enum PortError {
    #[error(transparent)]
    Ovsdb(#[from] ovsdb::Error),
    #[error("bridge {0} does not exist")]
    NoBridge(String),
    #[error("port {name}: {why}")]
    Port { name: String, why: String },
}

/// A port as listed by [`PortPlugger::ports_with`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortRecord {
    pub name: String,
    pub external_ids: BTreeMap<String, String>,
}

/// What the CNI server does to the bridge.
pub trait PortPlugger: Send + Sync + 'static {
    /// Adds port+interface `name` (a system device) to the bridge and returns its ofport once
    /// the switch assigned one. With `ofport`, that number is requested, and getting any other
    /// is an error (the caller may already have flows installed for it).
    fn add_port(
        &self,
        name: &str,
        external_ids: &BTreeMap<String, String>,
        ofport: Option<u32>,
    ) -> impl Future<Output = Result<u32, PortError>> + Send;
    /// Every interface's name and OpenFlow number (assigned, else requested), so numbers the
    /// agent picks never collide with them.
    fn port_numbers(&self) -> impl Future<Output = Result<Vec<(String, u32)>, PortError>> + Send;
    /// Removes port `name`; `Ok(false)` when there was none.
    fn del_port(&self, name: &str) -> impl Future<Output = Result<bool, PortError>> + Send;
    /// Ports whose `external_ids` has `key` = `value`.
    fn ports_with(
        &self,
        key: &str,
        value: &str,
    ) -> impl Future<Output = Result<Vec<PortRecord>, PortError>> + Send;
    /// Whether the bridge exists (STATUS).
    fn bridge_ready(&self) -> impl Future<Output = Result<bool, PortError>> + Send;
}

/// [`PortPlugger`] over OVSDB.
pub struct OvsdbPorts<T> {
    db: T,
    bridge: String,
    /// How long to wait for ovs-vswitchd to open the device and assign an ofport.
    pub ofport_timeout: Duration,
}

impl<T: Transact + Send + Sync + 'static> OvsdbPorts<T> {
    pub fn new(db: T, bridge: &str) -> Self {
        OvsdbPorts {
            db,
            bridge: bridge.to_string(),
            ofport_timeout: Duration::from_secs(10),
        }
    }
}

fn ids_value(ids: &BTreeMap<String, String>) -> Value {
    Value::map(ids.iter().map(|(k, v)| (k.as_str(), v.as_str())))
}

fn ids_of(v: Option<&Value>) -> BTreeMap<String, String> {
    match v {
        Some(Value::Map(pairs)) => pairs
            .iter()
            .filter_map(|(k, v)| Some((k.as_str()?.to_string(), v.as_str()?.to_string())))
            .collect(),
        _ => BTreeMap::new(),
    }
}

impl<T: Transact + Send + Sync + 'static> PortPlugger for OvsdbPorts<T> {
    async fn add_port(
        &self,
        name: &str,
        external_ids: &BTreeMap<String, String>,
        requested: Option<u32>,
    ) -> Result<u32, PortError> {
        let ids = ids_value(external_ids);
        let mut iface = row([("name", Value::from(name)), ("external_ids", ids.clone())]);
        if let Some(n) = requested {
            iface.insert("ofport_request".into(), Value::from(i64::from(n)));
        }
        let ops = [
            Operation::insert("Interface", iface, Some("iface")),
            Operation::insert(
                "Port",
                row([
                    ("name", Value::from(name)),
                    ("interfaces", Value::named_uuid("iface")),
                    ("external_ids", ids),
                ]),
                Some("port"),
            ),
            Operation::mutate(
                "Bridge",
                vec![Condition::eq("name", self.bridge.as_str())],
                vec![Mutation::insert(
                    "ports",
                    Value::Set(vec![Atom::NamedUuid("port".into())]),
                )],
            ),
            Operation::comment(&format!("weft-agent: add pod port {name}")),
        ];
        let res = self.db.transact(ovsdb_db(), &ops).await?;
        if res.get(2).and_then(|r| r.count) != Some(1) {
            // The unreferenced Port/Interface rows are garbage-collected by ovsdb-server.
            return Err(PortError::NoBridge(self.bridge.clone()));
        }
        // Wait for ovs-vswitchd to assign the ofport (an empty set until then).
        let cond = || vec![Condition::eq("name", name)];
        let wait = [
            Operation::wait(
                "Interface",
                cond(),
                WaitUntil::NotEqual,
                vec![row([("ofport", Value::empty_set())])],
                Some(self.ofport_timeout),
            ),
            Operation::select("Interface", cond(), Some(&["ofport", "error"])),
        ];
        let res = match self.db.transact(ovsdb_db(), &wait).await {
            Ok(r) => r,
            Err(ovsdb::Error::OperationFailed { op: "wait", .. }) => {
                return Err(PortError::Port {
                    name: name.into(),
                    why: format!("no ofport after {:?}", self.ofport_timeout),
                });
            }
            Err(e) => return Err(e.into()),
        };
        let row = selected(&res, 1).first();
        let ofport = row
            .and_then(|r| r.get("ofport"))
            .and_then(Value::as_integer)
            .unwrap_or(-1);
        if !weft_types::ports::is_port_number_i64(ofport) {
            let err = row
                .and_then(|r| r.get("error"))
                .and_then(Value::as_str)
                .unwrap_or("no error reported")
                .to_string();
            return Err(PortError::Port {
                name: name.into(),
                why: format!("ofport {ofport}: {err}"),
            });
        }
        if let Some(n) = requested.filter(|n| i64::from(*n) != ofport) {
            return Err(PortError::Port {
                name: name.into(),
                why: format!("requested OpenFlow port {n}, ovs-vswitchd assigned {ofport}"),
            });
        }
        Ok(ofport as u32)
    }

    async fn port_numbers(&self) -> Result<Vec<(String, u32)>, PortError> {
        let ops = [Operation::select(
            "Interface",
            vec![],
            Some(&["name", "ofport", "ofport_request"]),
        )];
        let res = self.db.transact(ovsdb_db(), &ops).await?;
        let number = |r: &crate::ovsdb::Row, col: &str| {
            r.get(col)
                .and_then(Value::as_integer)
                .and_then(|n| u32::try_from(n).ok())
        };
        Ok(selected(&res, 0)
            .iter()
            .filter_map(|r| {
                let name = r.get("name")?.as_str()?.to_string();
                Some((
                    name,
                    number(r, "ofport").or_else(|| number(r, "ofport_request"))?,
                ))
            })
            .collect())
    }

    async fn del_port(&self, name: &str) -> Result<bool, PortError> {
        let sel = [Operation::select(
            "Port",
            vec![Condition::eq("name", name)],
            Some(&["_uuid"]),
        )];
        let res = self.db.transact(ovsdb_db(), &sel).await?;
        let uuids: Vec<Atom> = selected(&res, 0)
            .iter()
            .filter_map(|r| r.get("_uuid").and_then(Value::as_uuid).cloned())
            .map(Atom::Uuid)
            .collect();
        if uuids.is_empty() {
            return Ok(false);
        }
        let mut ops = Vec::new();
        for u in &uuids {
            ops.push(Operation::mutate(
                "Bridge",
                vec![Condition::new(
                    "ports",
                    Function::Includes,
                    Value::Set(vec![u.clone()]),
                )],
                vec![Mutation::delete("ports", Value::Set(vec![u.clone()]))],
            ));
        }
        ops.push(Operation::comment(&format!(
            "weft-agent: delete pod port {name}"
        )));
        self.db.transact(ovsdb_db(), &ops).await?;
        Ok(true)
    }

    async fn ports_with(&self, key: &str, value: &str) -> Result<Vec<PortRecord>, PortError> {
        let ops = [Operation::select(
            "Port",
            vec![Condition::new(
                "external_ids",
                Function::Includes,
                Value::map([(key, value)]),
            )],
            Some(&["name", "external_ids"]),
        )];
        let res = self.db.transact(ovsdb_db(), &ops).await?;
        Ok(selected(&res, 0)
            .iter()
            .filter_map(|r| {
                Some(PortRecord {
                    name: r.get("name")?.as_str()?.to_string(),
                    external_ids: ids_of(r.get("external_ids")),
                })
            })
            .collect())
    }

    async fn bridge_ready(&self) -> Result<bool, PortError> {
        let ops = [Operation::select(
            "Bridge",
            vec![Condition::eq("name", self.bridge.as_str())],
            Some(&["_uuid"]),
        )];
        let res = self.db.transact(ovsdb_db(), &ops).await?;
        Ok(!selected(&res, 0).is_empty())
    }
}

fn ovsdb_db() -> &'static str {
    crate::bridge::DB
}
