//! Each OVSDB operation against a real ovsdb-server with the vswitch schema.

use std::time::Duration;
use weft_agent::ovsdb::{
    Condition, ConnectOptions, Connection, Endpoint, Error, Mutation, Operation, Row, Uuid, Value,
    WaitUntil, row,
};
use weft_testbed::{OvsSandbox, privileged_or_skip};

const DB: &str = "Open_vSwitch";

async fn connect(sb: &OvsSandbox) -> Connection {
    let ep = Endpoint::Unix(sb.db_sock());
    let (conn, _events) = Connection::connect(&ep, &ConnectOptions::default())
        .await
        .unwrap();
    conn
}

/// Root row plus a bridge referenced from it (unreferenced bridges are garbage-collected).
async fn create_bridge(conn: &Connection, name: &str) -> Uuid {
    let ops = [
        Operation::insert(DB, Row::new(), Some("root")),
        Operation::insert(
            "Bridge",
            row([("name", Value::from(name)), ("fail_mode", "secure".into())]),
            Some("br"),
        ),
        Operation::mutate(
            DB,
            vec![Condition::named_uuid("root")],
            vec![Mutation::insert("bridges", Value::named_uuid("br"))],
        ),
    ];
    let res = conn.transact(DB, &ops).await.unwrap();
    assert!(res[0].uuid.is_some());
    assert_eq!(res[2].count, Some(1));
    res[1].uuid.clone().unwrap()
}

async fn select_bridge(conn: &Connection, name: &str) -> Vec<Row> {
    let res = conn
        .transact(
            DB,
            &[Operation::select(
                "Bridge",
                vec![Condition::eq("name", name)],
                None,
            )],
        )
        .await
        .unwrap();
    res[0].rows.clone().unwrap()
}

#[tokio::test]
async fn list_dbs_schema_and_echo() {
    if !privileged_or_skip("list_dbs_schema_and_echo") {
        return;
    }
    let sb = OvsSandbox::start_db_only().unwrap();
    let conn = connect(&sb).await;
    let dbs = conn.list_dbs().await.unwrap();
    assert!(dbs.iter().any(|d| d == DB), "{dbs:?}");
    let schema = conn.get_schema(DB).await.unwrap();
    assert_eq!(schema["name"], DB);
    assert!(schema["tables"]["Interface"]["columns"]["ofport"].is_object());
    conn.echo().await.unwrap();
    // A database that does not exist is a server-side error, not a hang or a panic.
    let err = conn.get_schema("NoSuchDb").await.unwrap_err();
    assert!(matches!(err, Error::Rpc { .. }), "{err:?}");
}

#[tokio::test]
async fn insert_select_update_mutate_delete_comment() {
    if !privileged_or_skip("insert_select_update_mutate_delete_comment") {
        return;
    }
    let sb = OvsSandbox::start_db_only().unwrap();
    let conn = connect(&sb).await;
    let uuid = create_bridge(&conn, "brA").await;
    let rows = select_bridge(&conn, "brA").await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["_uuid"].as_uuid(), Some(&uuid));
    assert_eq!(rows[0]["fail_mode"].as_str(), Some("secure"));
    // The server agrees (read back with ovs-vsctl, an independent client).
    assert_eq!(
        sb.vsctl(&["get", "Bridge", "brA", "fail_mode"])
            .unwrap()
            .trim(),
        "secure"
    );

    let res = conn
        .transact(
            DB,
            &[
                Operation::update(
                    "Bridge",
                    vec![Condition::uuid(&uuid)],
                    row([("fail_mode", Value::from("standalone"))]),
                ),
                Operation::mutate(
                    "Bridge",
                    vec![Condition::eq("name", "brA")],
                    vec![Mutation::insert(
                        "other_config",
                        Value::map([("datapath-id", "00000000000000aa")]),
                    )],
                ),
                Operation::comment("weft test"),
            ],
        )
        .await
        .unwrap();
    assert_eq!(res[0].count, Some(1));
    assert_eq!(res[1].count, Some(1));
    let rows = select_bridge(&conn, "brA").await;
    assert_eq!(rows[0]["fail_mode"].as_str(), Some("standalone"));
    let dpid = rows[0]["other_config"]
        .map_get("datapath-id")
        .and_then(|a| a.as_str());
    assert_eq!(dpid, Some("00000000000000aa"));

    // Port + Interface in one transaction, linked by named-uuid, added with a set mutation.
    let res = conn
        .transact(
            DB,
            &[
                Operation::insert(
                    "Interface",
                    row([("name", Value::from("p1")), ("type", "internal".into())]),
                    Some("if"),
                ),
                Operation::insert(
                    "Port",
                    row([
                        ("name", Value::from("p1")),
                        ("interfaces", Value::named_uuid("if")),
                    ]),
                    Some("port"),
                ),
                Operation::mutate(
                    "Bridge",
                    vec![Condition::uuid(&uuid)],
                    vec![Mutation::insert("ports", Value::named_uuid("port"))],
                ),
            ],
        )
        .await
        .unwrap();
    let port_uuid = res[1].uuid.clone().unwrap();
    let ports = sb.vsctl(&["list-ports", "brA"]).unwrap();
    assert_eq!(ports.trim(), "p1");

    // Removing the reference garbage-collects the port; a key-set delete drops the config key.
    let res = conn
        .transact(
            DB,
            &[
                Operation::mutate(
                    "Bridge",
                    vec![Condition::uuid(&uuid)],
                    vec![
                        Mutation::delete("ports", Value::uuid(port_uuid)),
                        Mutation::delete("other_config", Value::set(["datapath-id"])),
                    ],
                ),
                Operation::select("Port", vec![], Some(&["name"])),
            ],
        )
        .await
        .unwrap();
    assert_eq!(res[0].count, Some(1));
    assert!(sb.vsctl(&["list-ports", "brA"]).unwrap().trim().is_empty());
    let rows = select_bridge(&conn, "brA").await;
    assert!(rows[0]["other_config"].map_get("datapath-id").is_none());

    let res = conn
        .transact(
            DB,
            &[
                Operation::mutate(
                    DB,
                    vec![],
                    vec![Mutation::delete("bridges", Value::uuid(uuid.clone()))],
                ),
                Operation::delete("Bridge", vec![Condition::uuid(&uuid)]),
            ],
        )
        .await
        .unwrap();
    assert_eq!(res[1].count, Some(1));
    assert!(select_bridge(&conn, "brA").await.is_empty());
}

#[tokio::test]
async fn failed_wait_aborts_the_transaction() {
    if !privileged_or_skip("failed_wait_aborts_the_transaction") {
        return;
    }
    let sb = OvsSandbox::start_db_only().unwrap();
    let conn = connect(&sb).await;
    let uuid = create_bridge(&conn, "brW").await;
    let before = select_bridge(&conn, "brW").await;

    // The wait expects fail_mode=standalone, which is false: the update after it must not happen.
    let ops = [
        Operation::wait(
            "Bridge",
            vec![Condition::uuid(&uuid)],
            WaitUntil::Equal,
            vec![row([("fail_mode", "standalone")])],
            Some(Duration::ZERO),
        ),
        Operation::update(
            "Bridge",
            vec![Condition::uuid(&uuid)],
            row([("datapath_type", "netdev")]),
        ),
    ];
    let err = conn.transact(DB, &ops).await.unwrap_err();
    match &err {
        Error::OperationFailed {
            index, op, error, ..
        } => {
            assert_eq!((*index, *op, error.as_str()), (0, "wait", "timed out"));
        }
        other => panic!("expected OperationFailed, got {other:?}"),
    }
    assert_eq!(
        select_bridge(&conn, "brW").await,
        before,
        "aborted transaction changed the db"
    );

    // `until: !=` against the current value fails the same way...
    let ne = Operation::wait(
        "Bridge",
        vec![Condition::uuid(&uuid)],
        WaitUntil::NotEqual,
        vec![row([("fail_mode", "secure")])],
        Some(Duration::from_millis(50)),
    );
    let err = conn.transact(DB, &[ne, ops[1].clone()]).await.unwrap_err();
    assert!(
        matches!(err, Error::OperationFailed { index: 0, .. }),
        "{err:?}"
    );
    assert_eq!(select_bridge(&conn, "brW").await, before);

    // ...and a wait that holds lets the transaction commit.
    let ok = Operation::wait(
        "Bridge",
        vec![Condition::uuid(&uuid)],
        WaitUntil::Equal,
        vec![row([("fail_mode", "secure")])],
        None,
    );
    conn.transact(DB, &[ok, ops[1].clone()]).await.unwrap();
    let after = select_bridge(&conn, "brW").await;
    assert_eq!(after[0]["datapath_type"].as_str(), Some("netdev"));
}

#[tokio::test]
async fn commit_failure_is_typed_and_changes_nothing() {
    if !privileged_or_skip("commit_failure_is_typed_and_changes_nothing") {
        return;
    }
    let sb = OvsSandbox::start_db_only().unwrap();
    let conn = connect(&sb).await;
    let uuid = create_bridge(&conn, "brC").await;
    // A port pointing at an Interface row that does not exist violates referential integrity.
    let ghost = Uuid::parse("00000000-0000-0000-0000-000000000001").unwrap();
    let ops = [
        Operation::insert(
            "Port",
            row([
                ("name", Value::from("ghost")),
                ("interfaces", Value::uuid(ghost)),
            ]),
            Some("p"),
        ),
        Operation::mutate(
            "Bridge",
            vec![Condition::uuid(&uuid)],
            vec![Mutation::insert("ports", Value::named_uuid("p"))],
        ),
    ];
    let err = conn.transact(DB, &ops).await.unwrap_err();
    match &err {
        Error::CommitFailed { error, .. } => {
            assert_eq!(error, "referential integrity violation")
        }
        other => panic!("expected CommitFailed, got {other:?}"),
    }
    assert!(sb.vsctl(&["list-ports", "brC"]).unwrap().trim().is_empty());
    // A bad column is rejected per operation.
    let err = conn
        .transact(
            DB,
            &[Operation::update(
                "Bridge",
                vec![],
                row([("no_such_column", 1i64)]),
            )],
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::OperationFailed {
                index: 0,
                op: "update",
                ..
            }
        ),
        "{err:?}"
    );
}
