//! Ensures the node's integration bridge (`weft0`) exists with the configuration Weft needs.
//!
//! One read transaction looks at the bridge, its local port and its controllers; if everything
//! already matches, nothing is written (so running it twice changes nothing, not even a row
//! version). Otherwise one write transaction creates or repairs exactly what differs, guarded by
//! `wait` operations on the values read, so a concurrent change aborts it and it is retried from
//! a fresh read instead of overwriting someone else's edit.

pub use crate::ovs_ssl::SslFiles;
use crate::ovsdb::{
    self, Atom, Condition, Mutation, Operation, Row, Transact, Uuid, Value, WaitUntil, row,
    selected,
};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use weft_types::DatapathId;

/// The vswitch database name.
pub const DB: &str = "Open_vSwitch";
const ATTEMPTS: u32 = 5;
const VALID_PROTOCOLS: &[&str] = &[
    "OpenFlow10",
    "OpenFlow11",
    "OpenFlow12",
    "OpenFlow13",
    "OpenFlow14",
    "OpenFlow15",
];

/// Desired bridge settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeConfig {
    pub name: String,
    /// Source of the datapath id (see [`datapath_id`]).
    pub node_name: String,
    /// `system` (kernel module) or `netdev` (userspace, where the kernel has no OVS module).
    pub datapath_type: String,
    /// Controller targets, e.g. `tcp:10.0.0.1:6653`.
    pub controllers: Vec<String>,
    pub inactivity_probe: Duration,
    /// OpenFlow 1.3 for the pipeline, 1.4 for bundles.
    pub protocols: Vec<String>,
    /// Key, certificate and CA for `ssl:` controller targets; `None` leaves OVS's SSL settings
    /// alone.
    pub ssl: Option<SslFiles>,
}

impl BridgeConfig {
    pub fn new(node_name: &str) -> Self {
        BridgeConfig {
            name: "weft0".into(),
            node_name: node_name.into(),
            datapath_type: "system".into(),
            controllers: Vec::new(),
            inactivity_probe: Duration::from_secs(5),
            protocols: vec!["OpenFlow13".into(), "OpenFlow14".into()],
            ssl: None,
        }
    }

    fn validate(&self) -> Result<(), BridgeError> {
        let bad = |m: String| Err(BridgeError::InvalidConfig(m));
        if self.name.is_empty() || self.name.len() > 15 {
            return bad(format!("bridge name {:?} must be 1-15 bytes", self.name));
        }
        if let Some(p) = self
            .protocols
            .iter()
            .find(|p| !VALID_PROTOCOLS.contains(&p.as_str()))
        {
            return bad(format!("unknown OpenFlow protocol {p:?}"));
        }
        if self.controllers.iter().any(|c| c.trim().is_empty()) {
            return bad("empty controller target".into());
        }
        if i64::try_from(self.inactivity_probe.as_millis()).is_err() {
            return bad("inactivity probe too large".into());
        }
        Ok(())
    }

    fn probe_ms(&self) -> i64 {
        i64::try_from(self.inactivity_probe.as_millis()).unwrap_or(i64::MAX)
    }
}

/// The bridge's `other_config:datapath-id` (16 hex digits): see [`DatapathId::for_node`].
pub fn datapath_id(node_name: &str) -> DatapathId {
    DatapathId::for_node(node_name)
}

/// What [`ensure_bridge`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ensured {
    Created,
    /// Names of the settings that were repaired.
    Updated(Vec<&'static str>),
    Unchanged,
}

#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    #[error(transparent)]
    Ovsdb(#[from] ovsdb::Error),
    #[error("the Open_vSwitch table has no row; is the database initialised?")]
    NoRootRow,
    #[error("bridge {0} kept changing concurrently; gave up after {1} attempts")]
    Conflict(String, u32),
    #[error("unexpected database content: {0}")]
    Unexpected(String),
    #[error("invalid bridge config: {0}")]
    InvalidConfig(String),
}

/// Creates or repairs the bridge; returns its row UUID and what was done.
pub async fn ensure_bridge<T: Transact>(
    db: &T,
    cfg: &BridgeConfig,
) -> Result<(Uuid, Ensured), BridgeError> {
    cfg.validate()?;
    let ssl_written = match &cfg.ssl {
        Some(files) => crate::ovs_ssl::ensure_ssl(db, files).await?,
        None => false,
    };
    for attempt in 1..=ATTEMPTS {
        let seen = read(db, cfg).await?;
        let (ops, outcome) = plan(cfg, &seen)?;
        let outcome = match outcome {
            Ensured::Unchanged if ssl_written => Ensured::Updated(vec!["ssl"]),
            Ensured::Updated(mut v) if ssl_written => {
                v.push("ssl");
                Ensured::Updated(v)
            }
            o => o,
        };
        if ops.is_empty() {
            let uuid = seen.bridge_uuid()?.ok_or(BridgeError::NoRootRow)?;
            return Ok((uuid, outcome));
        }
        match db.transact(DB, &ops).await {
            Ok(results) => {
                let uuid = match seen.bridge_uuid()? {
                    Some(u) => u,
                    // The Bridge insert's result carries the new UUID.
                    None => results
                        .iter()
                        .zip(&ops)
                        .find(|(_, op)| {
                            matches!(op, Operation::Insert { table, .. } if table == "Bridge")
                        })
                        .and_then(|(r, _)| r.uuid.clone())
                        .ok_or_else(|| BridgeError::Unexpected("no UUID for new bridge".into()))?,
                };
                tracing::info!(bridge = %cfg.name, ?outcome, "bridge ensured");
                return Ok((uuid, outcome));
            }
            Err(ovsdb::Error::OperationFailed { op: "wait", .. }) => {
                tracing::info!(bridge = %cfg.name, attempt, "bridge changed concurrently; retrying");
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(BridgeError::Conflict(cfg.name.clone(), ATTEMPTS))
}

/// What the read transaction found.
struct Seen {
    root: Uuid,
    bridge: Option<Row>,
    /// Controller rows by UUID (all of them; the bridge's are picked by reference).
    controllers: BTreeMap<Uuid, Row>,
    /// The Port named like the bridge, if any.
    local_port: Option<Uuid>,
}

impl Seen {
    fn bridge_uuid(&self) -> Result<Option<Uuid>, BridgeError> {
        self.bridge
            .as_ref()
            .map(|b| {
                b.get("_uuid")
                    .and_then(Value::as_uuid)
                    .cloned()
                    .ok_or_else(|| BridgeError::Unexpected("bridge row without _uuid".into()))
            })
            .transpose()
    }
}

const BRIDGE_COLUMNS: &[&str] = &[
    "fail_mode",
    "protocols",
    "datapath_type",
    "other_config",
    "controller",
    "ports",
];

async fn read<T: Transact>(db: &T, cfg: &BridgeConfig) -> Result<Seen, BridgeError> {
    let mut bridge_cols = vec!["_uuid"];
    bridge_cols.extend_from_slice(BRIDGE_COLUMNS);
    let ops = [
        Operation::select(DB, vec![], Some(&["_uuid"])),
        Operation::select(
            "Bridge",
            vec![Condition::eq("name", cfg.name.as_str())],
            Some(&bridge_cols),
        ),
        Operation::select(
            "Controller",
            vec![],
            Some(&["_uuid", "target", "inactivity_probe"]),
        ),
        Operation::select(
            "Port",
            vec![Condition::eq("name", cfg.name.as_str())],
            Some(&["_uuid"]),
        ),
    ];
    let res = db.transact(DB, &ops).await?;
    let rows = |i: usize| selected(&res, i).to_vec();
    let uuid_of = |r: &Row| -> Result<Uuid, BridgeError> {
        r.get("_uuid")
            .and_then(Value::as_uuid)
            .cloned()
            .ok_or_else(|| BridgeError::Unexpected("row without _uuid".into()))
    };
    let root = match rows(0).as_slice() {
        [r] => uuid_of(r)?,
        [] => return Err(BridgeError::NoRootRow),
        _ => return Err(BridgeError::Unexpected("several Open_vSwitch rows".into())),
    };
    let mut bridges = rows(1);
    if bridges.len() > 1 {
        return Err(BridgeError::Unexpected(format!(
            "several bridges named {}",
            cfg.name
        )));
    }
    let controllers = rows(2)
        .into_iter()
        .map(|r| Ok((uuid_of(&r)?, r)))
        .collect::<Result<_, BridgeError>>()?;
    let local_port = rows(3).first().map(uuid_of).transpose()?;
    Ok(Seen {
        root,
        bridge: bridges.pop(),
        controllers,
        local_port,
    })
}

fn desired_protocols(cfg: &BridgeConfig) -> Value {
    Value::set(cfg.protocols.iter().map(String::as_str))
}

fn str_set(v: Option<&Value>) -> BTreeSet<String> {
    v.map(|v| {
        v.as_set()
            .iter()
            .filter_map(|a| a.as_str().map(str::to_string))
            .collect()
    })
    .unwrap_or_default()
}

/// The bridge's own internal port (as `ovs-vsctl add-br` creates it), referable as `local_port`.
fn named_local_port(cfg: &BridgeConfig) -> [Operation; 2] {
    let name = cfg.name.as_str();
    [
        Operation::insert(
            "Interface",
            row([("name", Value::from(name)), ("type", "internal".into())]),
            Some("local_iface"),
        ),
        Operation::insert(
            "Port",
            row([
                ("name", Value::from(name)),
                ("interfaces", Value::named_uuid("local_iface")),
            ]),
            Some("local_port"),
        ),
    ]
}

fn controller_insert(target: &str, probe_ms: i64, i: usize) -> Operation {
    Operation::insert(
        "Controller",
        row([
            ("target", Value::from(target)),
            ("inactivity_probe", Value::from(probe_ms)),
        ]),
        Some(&format!("ctl{i}")),
    )
}

/// The write transaction (empty when nothing differs) and what it will change.
fn plan(cfg: &BridgeConfig, seen: &Seen) -> Result<(Vec<Operation>, Ensured), BridgeError> {
    let dpid = datapath_id(&cfg.node_name).to_string();
    let probe = cfg.probe_ms();
    let Some(bridge) = &seen.bridge else {
        if seen.local_port.is_some() {
            return Err(BridgeError::Unexpected(format!(
                "a port named {} exists outside the bridge",
                cfg.name
            )));
        }
        let mut ops = vec![Operation::wait(
            "Bridge",
            vec![Condition::eq("name", cfg.name.as_str())],
            WaitUntil::Equal,
            vec![],
            Some(Duration::ZERO),
        )];
        ops.extend(named_local_port(cfg));
        let mut ctl_refs = Vec::new();
        for (i, target) in cfg.controllers.iter().enumerate() {
            ops.push(controller_insert(target, probe, i));
            ctl_refs.push(Atom::NamedUuid(format!("ctl{i}")));
        }
        ops.push(Operation::insert(
            "Bridge",
            row([
                ("name", Value::from(cfg.name.as_str())),
                ("ports", Value::named_uuid("local_port")),
                ("fail_mode", "secure".into()),
                ("protocols", desired_protocols(cfg)),
                ("datapath_type", cfg.datapath_type.as_str().into()),
                ("other_config", Value::map([("datapath-id", dpid.as_str())])),
                ("controller", Value::Set(ctl_refs)),
            ]),
            Some("bridge"),
        ));
        ops.push(Operation::mutate(
            DB,
            vec![Condition::uuid(&seen.root)],
            vec![Mutation::insert("bridges", Value::named_uuid("bridge"))],
        ));
        ops.push(Operation::comment(&format!(
            "weft-agent: create bridge {}",
            cfg.name
        )));
        return Ok((ops, Ensured::Created));
    };

    let uuid = seen
        .bridge_uuid()?
        .ok_or_else(|| BridgeError::Unexpected("bridge row without _uuid".into()))?;
    let mut changed = Vec::new();
    let mut update = Row::new();
    let mut ops = Vec::new();
    let col = |c: &str| bridge.get(c);

    if col("fail_mode").and_then(Value::as_str) != Some("secure") {
        update.insert("fail_mode".into(), "secure".into());
        changed.push("fail_mode");
    }
    let want: BTreeSet<String> = cfg.protocols.iter().cloned().collect();
    if str_set(col("protocols")) != want {
        update.insert("protocols".into(), desired_protocols(cfg));
        changed.push("protocols");
    }
    if col("datapath_type").and_then(Value::as_str) != Some(cfg.datapath_type.as_str()) {
        update.insert("datapath_type".into(), cfg.datapath_type.as_str().into());
        changed.push("datapath_type");
    }

    // Controllers: reuse rows whose target is wanted (fixing their probe), insert missing ones,
    // and point the bridge at exactly that set; dropped rows are garbage-collected by OVSDB.
    let current: Vec<Uuid> = col("controller")
        .map(|v| {
            v.as_set()
                .iter()
                .filter_map(Atom::as_uuid)
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    let mut refs = Vec::new();
    let mut ctl_changed = false;
    for (i, target) in cfg.controllers.iter().enumerate() {
        let existing = current.iter().find(|u| {
            seen.controllers
                .get(*u)
                .and_then(|r| r.get("target")?.as_str())
                == Some(target.as_str())
        });
        match existing {
            Some(u) if !refs.contains(&Atom::Uuid(u.clone())) => {
                let row = &seen.controllers[u];
                let have = row.get("inactivity_probe").and_then(Value::as_integer);
                if have != Some(probe) {
                    ops.push(Operation::wait(
                        "Controller",
                        vec![Condition::uuid(u)],
                        WaitUntil::Equal,
                        vec![pick(row, &["inactivity_probe"])],
                        Some(Duration::ZERO),
                    ));
                    ops.push(Operation::update(
                        "Controller",
                        vec![Condition::uuid(u)],
                        row_of("inactivity_probe", probe.into()),
                    ));
                    changed.push("inactivity_probe");
                }
                refs.push(Atom::Uuid(u.clone()));
            }
            _ => {
                ops.push(controller_insert(target, probe, i));
                refs.push(Atom::NamedUuid(format!("ctl{i}")));
                ctl_changed = true;
            }
        }
    }
    if refs.len() != current.len() {
        ctl_changed = true;
    }
    if ctl_changed {
        update.insert("controller".into(), Value::Set(refs));
        changed.push("controller");
    }

    let mut mutations = Vec::new();
    let dpid_now = col("other_config")
        .and_then(|v| v.map_get("datapath-id"))
        .and_then(Atom::as_str);
    if dpid_now != Some(dpid.as_str()) {
        mutations.push(Mutation::delete(
            "other_config",
            Value::set(["datapath-id"]),
        ));
        mutations.push(Mutation::insert(
            "other_config",
            Value::map([("datapath-id", dpid.as_str())]),
        ));
        changed.push("datapath-id");
    }
    let ports: Vec<&Uuid> = col("ports")
        .map(|v| v.as_set().iter().filter_map(Atom::as_uuid).collect())
        .unwrap_or_default();
    match &seen.local_port {
        Some(p) if ports.contains(&p) => {}
        Some(_) => {
            return Err(BridgeError::Unexpected(format!(
                "a port named {} exists outside the bridge",
                cfg.name
            )));
        }
        None => {
            ops.extend(named_local_port(cfg));
            mutations.push(Mutation::insert("ports", Value::named_uuid("local_port")));
            changed.push("local_port");
        }
    }

    if changed.is_empty() {
        return Ok((Vec::new(), Ensured::Unchanged));
    }
    // Guard: the bridge still has exactly what we read.
    let mut guarded = vec![Operation::wait(
        "Bridge",
        vec![Condition::uuid(&uuid)],
        WaitUntil::Equal,
        vec![pick(bridge, BRIDGE_COLUMNS)],
        Some(Duration::ZERO),
    )];
    guarded.append(&mut ops);
    if !update.is_empty() {
        guarded.push(Operation::update(
            "Bridge",
            vec![Condition::uuid(&uuid)],
            update,
        ));
    }
    if !mutations.is_empty() {
        guarded.push(Operation::mutate(
            "Bridge",
            vec![Condition::uuid(&uuid)],
            mutations,
        ));
    }
    guarded.push(Operation::comment(&format!(
        "weft-agent: repair bridge {} ({})",
        cfg.name,
        changed.join(", ")
    )));
    Ok((guarded, Ensured::Updated(changed)))
}

fn pick(r: &Row, cols: &[&str]) -> Row {
    cols.iter()
        .map(|c| {
            (
                c.to_string(),
                r.get(*c).cloned().unwrap_or_else(Value::empty_set),
            )
        })
        .collect()
}

fn row_of(col: &str, v: Value) -> Row {
    let mut r = Row::new();
    r.insert(col.to_string(), v);
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datapath_id_is_deterministic_16_hex_and_spread() {
        // FNV-1a 64 reference values: "" is the offset basis, "a" is af63dc4c8601ec8c.
        assert_eq!(datapath_id("").to_string(), "cbf29ce484222325");
        assert_eq!(datapath_id("a").to_string(), "af63dc4c8601ec8c");
        let ids: BTreeSet<String> = (0..1000)
            .map(|i| datapath_id(&format!("node-{i}")).to_string())
            .collect();
        assert_eq!(ids.len(), 1000);
        assert!(ids.iter().all(|d| d.len() == 16
            && d.chars().all(|c| c.is_ascii_hexdigit())
            && d != "0000000000000000"));
        assert_eq!(datapath_id("node-7"), datapath_id("node-7"));
    }

    #[test]
    fn config_is_validated() {
        let mut c = BridgeConfig::new("n1");
        assert!(c.validate().is_ok());
        c.name = "a-name-that-is-too-long".into();
        assert!(c.validate().is_err());
        let mut c = BridgeConfig::new("n1");
        c.protocols.push("OpenFlow99".into());
        assert!(c.validate().is_err());
    }
}
