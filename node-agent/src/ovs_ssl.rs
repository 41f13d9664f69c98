//! OVS's SSL settings, as `ovs-vsctl set-ssl` makes them: the `SSL` row the root `Open_vSwitch`
//! row points at, naming the private key, certificate and CA files ovs-vswitchd uses for every
//! `ssl:` controller target. Without them, a switch cannot reach a controller that only speaks
//! OpenFlow over TLS.

use crate::bridge::{BridgeError, DB};
use crate::ovsdb::{Condition, Operation, Row, Transact, Value, WaitUntil, row, selected};
use std::path::PathBuf;
use std::time::Duration;

/// The node's key, its certificate, and the cluster CA that the controller's certificate must
/// chain to; paths ovs-vswitchd can read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SslFiles {
    pub key: PathBuf,
    pub cert: PathBuf,
    pub ca: PathBuf,
}

impl SslFiles {
    fn columns(&self) -> [(&'static str, String); 3] {
        [
            ("private_key", self.key.display().to_string()),
            ("certificate", self.cert.display().to_string()),
            ("ca_cert", self.ca.display().to_string()),
        ]
    }
}

/// Points OVS at `files`; changes nothing when it already is. Returns whether it wrote.
pub async fn ensure_ssl<T: Transact>(db: &T, files: &SslFiles) -> Result<bool, BridgeError> {
    let ops = [
        Operation::select(DB, vec![], Some(&["_uuid", "ssl"])),
        Operation::select("SSL", vec![], None),
    ];
    let res = db.transact(DB, &ops).await?;
    let root = match selected(&res, 0) {
        [r] => r.clone(),
        [] => return Err(BridgeError::NoRootRow),
        _ => return Err(BridgeError::Unexpected("several Open_vSwitch rows".into())),
    };
    let root_uuid = root
        .get("_uuid")
        .and_then(Value::as_uuid)
        .cloned()
        .ok_or_else(|| BridgeError::Unexpected("root row without _uuid".into()))?;
    let current = root
        .get("ssl")
        .and_then(|v| v.as_set().first().and_then(|a| a.as_uuid()).cloned());
    let current_row = current.as_ref().and_then(|u| {
        selected(&res, 1)
            .iter()
            .find(|r| r.get("_uuid").and_then(Value::as_uuid) == Some(u))
    });
    if current_row.is_some_and(|r| matches(r, files)) {
        return Ok(false);
    }
    let ssl_now = root.get("ssl").cloned().unwrap_or_else(Value::empty_set);
    let new_row = row(files.columns().map(|(k, v)| (k, Value::from(v.as_str()))));
    let ops = [
        // Guard: nobody changed the setting since the read (then the next call retries).
        Operation::wait(
            DB,
            vec![Condition::uuid(&root_uuid)],
            WaitUntil::Equal,
            vec![row([("ssl", ssl_now)])],
            Some(Duration::ZERO),
        ),
        Operation::insert("SSL", new_row, Some("ssl")),
        Operation::update(
            DB,
            vec![Condition::uuid(&root_uuid)],
            row([("ssl", Value::named_uuid("ssl"))]),
        ),
        Operation::comment("weft-agent: OpenFlow TLS key, certificate and CA"),
    ];
    db.transact(DB, &ops).await?;
    tracing::info!(key = %files.key.display(), cert = %files.cert.display(), ca = %files.ca.display(), "OVS SSL settings written");
    Ok(true)
}

fn matches(r: &Row, files: &SslFiles) -> bool {
    files
        .columns()
        .iter()
        .all(|(k, v)| r.get(*k).and_then(Value::as_str) == Some(v.as_str()))
}
