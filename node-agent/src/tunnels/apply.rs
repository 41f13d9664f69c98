//! The I/O edges of tunnel reconciliation: read the kernel's links and the bridge's ports, plan,
//! and carry the plan out. One failing tunnel never stops the others: each action's error is
//! recorded under its interface name and the next reconcile tries again.

use super::plan::{Action, Conflict, Observed, ObservedPort, Plan, plan};
use super::{OWNER_TUNNEL, PEER_KEY, TunnelSpec};
use crate::bridge::DB;
use crate::cni::ports::keys;
use crate::netlink::{Netlink, NetlinkError, VxlanSpec};
use crate::ovsdb::{
    self, Atom, Condition, Function, Mutation, Operation, Row, Transact, Uuid, Value, WaitUntil,
    row, selected,
};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum TunnelError {
    #[error(transparent)]
    Netlink(#[from] NetlinkError),
    #[error(transparent)]
    Ovsdb(#[from] ovsdb::Error),
    #[error("bridge {0} does not exist")]
    NoBridge(String),
}

/// What one reconcile did.
#[derive(Debug, Clone, Default)]
pub struct ApplyOutcome {
    /// The plan that was carried out.
    pub plan: Plan,
    /// Interface name -> why its change failed (retried on the next reconcile).
    pub failures: BTreeMap<String, String>,
}

impl ApplyOutcome {
    pub(crate) fn conflicts(&self) -> &[Conflict] {
        &self.plan.conflicts
    }
}

/// Tunnel devices in one network namespace and their ports on one bridge.
pub struct Tunnels<T> {
    netlink: Netlink,
    db: T,
    bridge: String,
}

fn uuid_of(r: &Row) -> Option<Uuid> {
    r.get("_uuid").and_then(Value::as_uuid).cloned()
}

fn str_map(v: Option<&Value>) -> BTreeMap<String, String> {
    match v {
        Some(Value::Map(pairs)) => pairs
            .iter()
            .filter_map(|(k, v)| Some((k.as_str()?.to_string(), v.as_str()?.to_string())))
            .collect(),
        _ => BTreeMap::new(),
    }
}

fn tunnel_ids(spec: &TunnelSpec) -> Value {
    Value::map([(keys::OWNER, OWNER_TUNNEL), (PEER_KEY, spec.peer.as_str())])
}

impl<T: Transact> Tunnels<T> {
    pub fn new(netlink: Netlink, db: T, bridge: &str) -> Self {
        Tunnels {
            netlink,
            db,
            bridge: bridge.to_string(),
        }
    }

    /// Reads every link of the namespace and every port of the database.
    pub(crate) async fn observe(&self) -> Result<Observed, TunnelError> {
        let ops = [
            Operation::select(
                "Bridge",
                vec![Condition::eq("name", self.bridge.as_str())],
                Some(&["_uuid", "ports"]),
            ),
            Operation::select(
                "Port",
                vec![],
                Some(&["_uuid", "name", "interfaces", "external_ids"]),
            ),
            Operation::select("Interface", vec![], Some(&["_uuid", "name", "type"])),
        ];
        let res = self.db.transact(DB, &ops).await?;
        let bridge = selected(&res, 0)
            .first()
            .ok_or_else(|| TunnelError::NoBridge(self.bridge.clone()))?;
        let in_bridge: BTreeSet<Uuid> = bridge
            .get("ports")
            .map(|v| {
                v.as_set()
                    .iter()
                    .filter_map(Atom::as_uuid)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        let ifaces: BTreeMap<Uuid, (String, String)> = selected(&res, 2)
            .iter()
            .filter_map(|r| {
                let name = r.get("name")?.as_str()?.to_string();
                let kind = r
                    .get("type")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                Some((uuid_of(r)?, (name, kind)))
            })
            .collect();
        let mut seen = Observed::default();
        for r in selected(&res, 1) {
            let (Some(uuid), Some(name)) = (uuid_of(r), r.get("name").and_then(Value::as_str))
            else {
                continue;
            };
            let port_ifaces = r
                .get("interfaces")
                .map(|v| {
                    v.as_set()
                        .iter()
                        .filter_map(Atom::as_uuid)
                        .filter_map(|u| ifaces.get(u).cloned())
                        .collect()
                })
                .unwrap_or_default();
            seen.ports.insert(
                name.to_string(),
                ObservedPort {
                    in_bridge: in_bridge.contains(&uuid),
                    uuid,
                    name: name.to_string(),
                    external_ids: str_map(r.get("external_ids")),
                    ifaces: port_ifaces,
                },
            );
        }
        seen.links = self
            .netlink
            .links_detailed()
            .await?
            .into_iter()
            .map(|l| (l.info.name.clone(), l))
            .collect();
        Ok(seen)
    }

    /// Makes the tunnels match `want`. `Err` only when the current state could not be read;
    /// failures of single tunnels are in [`ApplyOutcome::failures`].
    pub async fn reconcile(
        &self,
        want: &BTreeMap<String, TunnelSpec>,
    ) -> Result<ApplyOutcome, TunnelError> {
        let seen = self.observe().await?;
        let plan = plan(want, &seen);
        for c in &plan.conflicts {
            tracing::warn!(tunnel = %c.name, peer = %c.peer, why = %c.why, "tunnel name conflict");
        }
        let failures = self.execute(&plan).await;
        Ok(ApplyOutcome { plan, failures })
    }

    async fn execute(&self, plan: &Plan) -> BTreeMap<String, String> {
        let mut failed: BTreeMap<String, String> = BTreeMap::new();
        let del_ports: Vec<(&str, &Uuid, &str)> = plan
            .actions
            .iter()
            .filter_map(|a| match a {
                Action::DeletePort { name, uuid, reason } => {
                    Some((name.as_str(), uuid, reason.as_str()))
                }
                _ => None,
            })
            .collect();
        self.delete_ports(&del_ports, &mut failed).await;

        for a in &plan.actions {
            let name = a.name().to_string();
            if failed.contains_key(&name) {
                continue;
            }
            let res = match a {
                Action::DeleteDevice { index, reason, .. } => {
                    tracing::info!(tunnel = %name, index, %reason, "deleting tunnel device");
                    match self.netlink.del_link(*index).await {
                        Err(e) if !e.is_not_found() => Err(e.to_string()),
                        _ => Ok(()),
                    }
                }
                Action::CreateDevice { spec, reason } => {
                    tracing::info!(tunnel = %name, peer = %spec.peer, remote = %spec.remote, vni = spec.vni, %reason, "creating tunnel device");
                    self.create_device(spec).await
                }
                Action::FixDevice { index, mtu, .. } => {
                    tracing::info!(tunnel = %name, index, ?mtu, "repairing tunnel device in place");
                    self.netlink
                        .set_mtu_up(*index, *mtu)
                        .await
                        .map_err(|e| e.to_string())
                }
                Action::DeletePort { .. } | Action::AddPort { .. } => Ok(()),
            };
            if let Err(e) = res {
                tracing::warn!(tunnel = %name, error = %e, "tunnel device change failed");
                failed.insert(name, e);
            }
        }

        let add: Vec<&TunnelSpec> = plan
            .actions
            .iter()
            .filter_map(|a| match a {
                Action::AddPort { spec } if !failed.contains_key(&spec.name) => Some(spec),
                _ => None,
            })
            .collect();
        self.add_ports(&add, &mut failed).await;
        failed
    }

    async fn create_device(&self, spec: &TunnelSpec) -> Result<(), String> {
        let res = self
            .netlink
            .add_vxlan(&VxlanSpec {
                name: spec.name.clone(),
                vni: spec.vni,
                local: spec.local,
                remote: spec.remote,
                port: spec.port,
                mtu: spec.mtu,
                alias: spec.alias(),
            })
            .await;
        match res {
            Ok(_) => Ok(()),
            // EEXIST means either the name or the (VNI, port) pair is taken; say which.
            Err(e) if e.is_exists() => match self.netlink.link(&spec.name).await {
                Ok(Some(_)) => Err(format!(
                    "a link named {} appeared concurrently: {e}",
                    spec.name
                )),
                _ => Err(format!(
                    "VNI {} on UDP port {} is already used by another VXLAN device in this \
                     namespace: {e}",
                    spec.vni, spec.port
                )),
            },
            Err(e) => Err(e.to_string()),
        }
    }

    /// Removes ports from whichever bridge holds them: one transaction, or one per port when
    /// the batch fails, so one bad port does not block the rest.
    async fn delete_ports(
        &self,
        ports: &[(&str, &Uuid, &str)],
        failed: &mut BTreeMap<String, String>,
    ) {
        if ports.is_empty() {
            return;
        }
        let op = |uuid: &Uuid| {
            let set = Value::Set(vec![Atom::Uuid(uuid.clone())]);
            Operation::mutate(
                "Bridge",
                vec![Condition::new("ports", Function::Includes, set.clone())],
                vec![Mutation::delete("ports", set)],
            )
        };
        for (name, uuid, reason) in ports {
            tracing::info!(tunnel = %name, port = %uuid, %reason, "removing tunnel port");
        }
        let mut ops: Vec<Operation> = ports.iter().map(|(_, u, _)| op(u)).collect();
        ops.push(Operation::comment("weft-agent: remove tunnel ports"));
        if ports.len() > 1 && self.db.transact(DB, &ops).await.is_ok() {
            return;
        }
        for (name, uuid, _) in ports {
            let ops = [
                op(uuid),
                Operation::comment("weft-agent: remove tunnel port"),
            ];
            if let Err(e) = self.db.transact(DB, &ops).await {
                tracing::warn!(tunnel = %name, error = %e, "removing tunnel port failed");
                failed.insert(name.to_string(), e.to_string());
            }
        }
    }

    fn add_ops(specs: &[&TunnelSpec], bridge: &str) -> Vec<Operation> {
        let mut ops = Vec::new();
        let mut refs = Vec::new();
        for (i, s) in specs.iter().enumerate() {
            let (iface, port) = (format!("iface{i}"), format!("port{i}"));
            ops.push(Operation::insert(
                "Interface",
                row([
                    ("name", Value::from(s.name.as_str())),
                    ("external_ids", tunnel_ids(s)),
                ]),
                Some(&iface),
            ));
            ops.push(Operation::insert(
                "Port",
                row([
                    ("name", Value::from(s.name.as_str())),
                    ("interfaces", Value::named_uuid(&iface)),
                    ("external_ids", tunnel_ids(s)),
                ]),
                Some(&port),
            ));
            refs.push(Atom::NamedUuid(port));
        }
        ops.push(Operation::mutate(
            "Bridge",
            vec![Condition::eq("name", bridge)],
            vec![Mutation::insert("ports", Value::Set(refs))],
        ));
        ops.push(Operation::comment("weft-agent: add tunnel ports"));
        ops
    }

    /// Plugs tunnel devices into the bridge with our `external_ids`: all in one transaction (one
    /// `mutate` of the bridge's port set, whatever its size), or one per port when that fails.
    async fn add_ports(&self, specs: &[&TunnelSpec], failed: &mut BTreeMap<String, String>) {
        if specs.is_empty() {
            return;
        }
        for s in specs {
            tracing::info!(tunnel = %s.name, peer = %s.peer, bridge = %self.bridge, "plugging tunnel port");
        }
        if specs.len() > 1 && self.add_batch(specs).await.is_ok() {
            return;
        }
        for s in specs {
            if let Err(e) = self.add_batch(std::slice::from_ref(s)).await {
                tracing::warn!(tunnel = %s.name, error = %e, "plugging tunnel port failed");
                failed.insert(s.name.clone(), e);
            }
        }
    }

    async fn add_batch(&self, chunk: &[&TunnelSpec]) -> Result<(), String> {
        let ops = Self::add_ops(chunk, &self.bridge);
        let res = self
            .db
            .transact(DB, &ops)
            .await
            .map_err(|e| e.to_string())?;
        // The bridge mutate follows the two inserts per port.
        match res.get(chunk.len() * 2).and_then(|r| r.count) {
            Some(1) => Ok(()),
            _ => Err(format!("bridge {} does not exist", self.bridge)),
        }
    }

    /// Waits until ovs-vswitchd has assigned an ofport (or -1 on failure) to each named
    /// interface, and returns them. Used by benchmarks and tests; the agent itself learns
    /// ofports from its OVSDB monitor.
    pub async fn wait_ofports(
        &self,
        names: &[String],
        timeout: Duration,
    ) -> Result<BTreeMap<String, i64>, TunnelError> {
        let mut ops: Vec<Operation> = names
            .iter()
            .map(|n| {
                Operation::wait(
                    "Interface",
                    vec![Condition::eq("name", n.as_str())],
                    WaitUntil::NotEqual,
                    vec![row([("ofport", Value::empty_set())])],
                    Some(timeout),
                )
            })
            .collect();
        ops.push(Operation::select(
            "Interface",
            vec![],
            Some(&["name", "ofport"]),
        ));
        let res = self.db.transact(DB, &ops).await?;
        let want: BTreeSet<&String> = names.iter().collect();
        Ok(selected(&res, names.len())
            .iter()
            .filter_map(|r| {
                let n = r.get("name")?.as_str()?.to_string();
                want.contains(&n)
                    .then(|| (n, r.get("ofport").and_then(Value::as_integer).unwrap_or(-1)))
            })
            .collect())
    }
}
