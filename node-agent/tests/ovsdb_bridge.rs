//! `ensure_bridge` against a real ovsdb-server (and vswitchd): creates weft0, repairs drift,
//! changes nothing when run again, and retries when the bridge changes under it.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use weft_agent::bridge::{BridgeConfig, BridgeError, DB, Ensured, datapath_id, ensure_bridge};
use weft_agent::ovsdb::{
    Condition, ConnectOptions, Connection, Endpoint, Error, Mutation, Operation, OperationResult,
    Transact, Uuid, Value,
};
use weft_testbed::{NetNs, OvsSandbox, privileged_or_skip};

async fn connect(sb: &OvsSandbox) -> Connection {
    let ep = Endpoint::Unix(sb.db_sock());
    Connection::connect(&ep, &ConnectOptions::default())
        .await
        .unwrap()
        .0
}

fn config() -> BridgeConfig {
    BridgeConfig {
        datapath_type: "netdev".into(),
        controllers: vec!["tcp:127.0.0.1:6653".into()],
        inactivity_probe: Duration::from_millis(3000),
        ..BridgeConfig::new("node-a")
    }
}

/// Every row's (table, uuid, _version): any write to any of these rows changes it.
async fn versions(conn: &Connection) -> Vec<(String, String, String)> {
    let tables = ["Open_vSwitch", "Bridge", "Port", "Interface", "Controller"];
    let ops: Vec<_> = tables
        .iter()
        .map(|t| Operation::select(t, vec![], Some(&["_uuid", "_version"])))
        .collect();
    let res = conn.transact(DB, &ops).await.unwrap();
    let mut out = Vec::new();
    for (t, r) in tables.iter().zip(res) {
        for row in r.rows.unwrap() {
            out.push((
                t.to_string(),
                row["_uuid"].as_uuid().unwrap().to_string(),
                row["_version"].as_uuid().unwrap().to_string(),
            ));
        }
    }
    out.sort();
    out
}

fn get(sb: &OvsSandbox, table: &str, rec: &str, col: &str) -> String {
    sb.vsctl(&["get", table, rec, col])
        .unwrap()
        .trim()
        .trim_matches('"')
        .to_string()
}

/// Whether the Port named weft0 exists and is in the bridge's `ports`.
fn local_port_in_bridge(sb: &OvsSandbox) -> bool {
    let Ok(port) = sb.vsctl(&["get", "Port", "weft0", "_uuid"]) else {
        return false;
    };
    get(sb, "Bridge", "weft0", "ports").contains(port.trim())
}

#[tokio::test]
async fn creates_weft0_and_second_run_changes_nothing() {
    if !privileged_or_skip("creates_weft0_and_second_run_changes_nothing") {
        return;
    }
    let sb = OvsSandbox::start_db_only().unwrap();
    sb.vsctl(&["init"]).unwrap();
    let conn = connect(&sb).await;
    let cfg = config();
    let (uuid, outcome) = ensure_bridge(&conn, &cfg).await.unwrap();
    assert_eq!(outcome, Ensured::Created);
    assert_eq!(get(&sb, "Bridge", "weft0", "_uuid"), uuid.to_string());
    assert_eq!(get(&sb, "Bridge", "weft0", "fail_mode"), "secure");
    assert_eq!(
        get(&sb, "Bridge", "weft0", "protocols"),
        "[OpenFlow13, OpenFlow14]"
    );
    assert_eq!(get(&sb, "Bridge", "weft0", "datapath_type"), "netdev");
    assert_eq!(
        get(&sb, "Bridge", "weft0", "other_config:datapath-id"),
        datapath_id("node-a").to_string()
    );
    assert_eq!(
        sb.vsctl(&["get-controller", "weft0"]).unwrap().trim(),
        "tcp:127.0.0.1:6653"
    );
    assert_eq!(get(&sb, "Controller", "weft0", "inactivity_probe"), "3000");
    assert_eq!(get(&sb, "Interface", "weft0", "type"), "internal");
    assert!(local_port_in_bridge(&sb));

    let before = versions(&conn).await;
    let (uuid2, outcome) = ensure_bridge(&conn, &cfg).await.unwrap();
    assert_eq!(outcome, Ensured::Unchanged);
    assert_eq!(uuid2, uuid);
    assert_eq!(versions(&conn).await, before, "second run wrote to the db");
}

#[tokio::test]
async fn repairs_drift_and_keeps_foreign_settings() {
    if !privileged_or_skip("repairs_drift_and_keeps_foreign_settings") {
        return;
    }
    let sb = OvsSandbox::start_db_only().unwrap();
    sb.vsctl(&["init"]).unwrap();
    let conn = connect(&sb).await;
    let mut cfg = config();
    let (uuid, _) = ensure_bridge(&conn, &cfg).await.unwrap();
    let ctl_uuid = get(&sb, "Bridge", "weft0", "controller");

    sb.vsctl(&[
        "set",
        "Bridge",
        "weft0",
        "fail_mode=standalone",
        "protocols=OpenFlow10",
        "other_config:datapath-id=0000000000000001",
        "other_config:someone-else=keep-me",
        "--",
        "set",
        "Controller",
        "weft0",
        "inactivity_probe=1",
    ])
    .unwrap();
    let (uuid2, outcome) = ensure_bridge(&conn, &cfg).await.unwrap();
    assert_eq!(uuid2, uuid);
    let Ensured::Updated(changed) = outcome else {
        panic!("expected Updated, got {outcome:?}");
    };
    for c in ["fail_mode", "protocols", "datapath-id", "inactivity_probe"] {
        assert!(changed.contains(&c), "{c} not in {changed:?}");
    }
    assert!(!changed.contains(&"controller"), "{changed:?}");
    assert_eq!(get(&sb, "Bridge", "weft0", "fail_mode"), "secure");
    assert_eq!(
        get(&sb, "Bridge", "weft0", "other_config:datapath-id"),
        datapath_id("node-a").to_string()
    );
    assert_eq!(
        get(&sb, "Bridge", "weft0", "other_config:someone-else"),
        "keep-me"
    );
    assert_eq!(get(&sb, "Controller", "weft0", "inactivity_probe"), "3000");
    // The controller row was fixed in place, not replaced.
    assert_eq!(get(&sb, "Bridge", "weft0", "controller"), ctl_uuid);
    assert_eq!(
        ensure_bridge(&conn, &cfg).await.unwrap().1,
        Ensured::Unchanged
    );

    // A new controller target replaces the old row; the old one is garbage-collected.
    cfg.controllers = vec!["tcp:127.0.0.1:6654".into(), "tcp:127.0.0.1:6655".into()];
    let (_, outcome) = ensure_bridge(&conn, &cfg).await.unwrap();
    assert_eq!(outcome, Ensured::Updated(vec!["controller"]));
    let targets = sb.vsctl(&["get-controller", "weft0"]).unwrap();
    let mut targets: Vec<_> = targets.lines().collect();
    targets.sort();
    assert_eq!(targets, ["tcp:127.0.0.1:6654", "tcp:127.0.0.1:6655"]);
    let rows = sb
        .vsctl(&["--columns=target", "list", "Controller"])
        .unwrap();
    assert_eq!(rows.matches("target").count(), 2, "{rows}");

    // A deleted local port is put back.
    // (ovs-vsctl refuses to delete a bridge's local port, so remove it with a raw mutate.)
    let port = get(&sb, "Port", "weft0", "_uuid");
    let port = Uuid::parse(&port).unwrap();
    conn.transact(
        DB,
        &[Operation::mutate(
            "Bridge",
            vec![Condition::eq("name", "weft0")],
            vec![Mutation::delete("ports", Value::uuid(port))],
        )],
    )
    .await
    .unwrap();
    assert!(!local_port_in_bridge(&sb));
    let (_, outcome) = ensure_bridge(&conn, &cfg).await.unwrap();
    assert_eq!(outcome, Ensured::Updated(vec!["local_port"]));
    assert!(local_port_in_bridge(&sb));
}

#[tokio::test]
async fn uninitialised_db_is_a_clear_error() {
    if !privileged_or_skip("uninitialised_db_is_a_clear_error") {
        return;
    }
    let sb = OvsSandbox::start_db_only().unwrap();
    let conn = connect(&sb).await;
    let err = ensure_bridge(&conn, &config()).await.unwrap_err();
    assert!(matches!(err, BridgeError::NoRootRow), "{err:?}");
    assert!(sb.vsctl(&["list-br"]).unwrap().trim().is_empty());
}

/// Passes transactions through, but before the first write changes the bridge behind the
/// agent's back, as another client could.
struct Meddler<'a> {
    conn: Connection,
    sb: &'a OvsSandbox,
    calls: AtomicU32,
}

impl Transact for Meddler<'_> {
    async fn transact(&self, db: &str, ops: &[Operation]) -> Result<Vec<OperationResult>, Error> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        if n == 1 {
            self.sb
                .vsctl(&["set", "Bridge", "weft0", "datapath_type=system"])
                .unwrap();
        }
        self.conn.transact(db, ops).await
    }
}

#[tokio::test]
async fn concurrent_change_aborts_the_write_and_is_retried() {
    if !privileged_or_skip("concurrent_change_aborts_the_write_and_is_retried") {
        return;
    }
    let sb = OvsSandbox::start_db_only().unwrap();
    sb.vsctl(&["init"]).unwrap();
    let conn = connect(&sb).await;
    ensure_bridge(&conn, &config()).await.unwrap();
    sb.vsctl(&["set", "Bridge", "weft0", "fail_mode=standalone"])
        .unwrap();
    let meddler = Meddler {
        conn: conn.clone(),
        sb: &sb,
        calls: AtomicU32::new(0),
    };
    let (_, outcome) = ensure_bridge(&meddler, &config()).await.unwrap();
    // read, aborted write (the wait saw the meddling), read again, write that fixes both.
    assert_eq!(meddler.calls.load(Ordering::SeqCst), 4);
    assert_eq!(
        outcome,
        Ensured::Updated(vec!["fail_mode", "datapath_type"])
    );
    assert_eq!(get(&sb, "Bridge", "weft0", "fail_mode"), "secure");
    assert_eq!(get(&sb, "Bridge", "weft0", "datapath_type"), "netdev");
}

#[tokio::test]
async fn vswitchd_runs_the_bridge_with_our_dpid_and_versions() {
    if !privileged_or_skip("vswitchd_runs_the_bridge_with_our_dpid_and_versions") {
        return;
    }
    let ns = NetNs::new("wtbr").unwrap();
    let sb = OvsSandbox::start_in_netns(&ns).unwrap();
    let conn = connect(&sb).await;
    let cfg = config();
    assert_eq!(
        ensure_bridge(&conn, &cfg).await.unwrap().1,
        Ensured::Created
    );
    // Wait until vswitchd has applied the configuration.
    let dpid = datapath_id("node-a").to_string();
    let mut shown = String::new();
    for _ in 0..100 {
        shown = sb
            .ofctl(&["-O", "OpenFlow13", "show", "weft0"])
            .unwrap_or_default();
        if shown.contains(&format!("dpid:{dpid}")) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(shown.contains(&format!("dpid:{dpid}")), "{shown}");
    sb.ofctl(&["-O", "OpenFlow14", "dump-flows", "weft0"])
        .unwrap();
    assert!(
        sb.ofctl(&["-O", "OpenFlow10", "dump-flows", "weft0"])
            .is_err()
    );
    assert!(ns.exec(&["ip", "link", "show", "weft0"]).is_ok());
    // vswitchd writes status columns, but our settings are stable: nothing to do.
    assert_eq!(
        ensure_bridge(&conn, &cfg).await.unwrap().1,
        Ensured::Unchanged
    );
    let dpid_col = sb
        .vsctl(&["get", "Bridge", "weft0", "datapath_id"])
        .unwrap();
    assert_eq!(dpid_col.trim().trim_matches('"'), dpid);
}

#[tokio::test]
async fn ssl_settings_are_written_once_and_repaired() {
    if !privileged_or_skip("ssl_settings_are_written_once_and_repaired") {
        return;
    }
    let sb = OvsSandbox::start_db_only().unwrap();
    sb.vsctl(&["init"]).unwrap();
    let conn = connect(&sb).await;
    let files = weft_agent::bridge::SslFiles {
        key: "/etc/weft/node.key".into(),
        cert: "/etc/weft/node.pem".into(),
        ca: "/etc/weft/ca.pem".into(),
    };
    let cfg = BridgeConfig {
        ssl: Some(files.clone()),
        controllers: vec!["ssl:127.0.0.1:6653".into()],
        ..config()
    };
    let (_, first) = ensure_bridge(&conn, &cfg).await.unwrap();
    assert_eq!(first, Ensured::Created);
    let shown = sb.vsctl(&["get-ssl"]).unwrap();
    for want in [
        "Private key: /etc/weft/node.key",
        "Certificate: /etc/weft/node.pem",
        "CA Certificate: /etc/weft/ca.pem",
    ] {
        assert!(shown.contains(want), "{shown}");
    }
    let before = versions(&conn).await;
    assert_eq!(
        ensure_bridge(&conn, &cfg).await.unwrap().1,
        Ensured::Unchanged
    );
    assert_eq!(versions(&conn).await, before, "a second run writes nothing");
    // Someone points OVS elsewhere: the next run puts it back.
    sb.vsctl(&["set-ssl", "/tmp/k", "/tmp/c", "/tmp/ca"])
        .unwrap();
    assert_eq!(
        ensure_bridge(&conn, &cfg).await.unwrap().1,
        Ensured::Updated(vec!["ssl"])
    );
    assert!(
        sb.vsctl(&["get-ssl"])
            .unwrap()
            .contains("/etc/weft/node.key")
    );
}
