//! Monitors against a real ovsdb-server: Interface ofport/link_state/error updates written by a
//! real ovs-vswitchd, and monitors surviving an ovsdb-server restart.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use tokio::sync::mpsc::UnboundedReceiver;
use weft_agent::ovsdb::{
    Client, ClientOptions, Condition, Endpoint, Event, MonitorRequest, Mutation, Operation, Row,
    TableUpdates, Uuid, Value, row,
};
use weft_testbed::{NetNs, OvsSandbox, privileged_or_skip};

const DB: &str = "Open_vSwitch";

/// Interface rows as the consumer sees them, built only from monitor events.
#[derive(Default)]
struct Cache {
    rows: BTreeMap<Uuid, Row>,
}

impl Cache {
    fn apply(&mut self, updates: &TableUpdates, initial: bool) {
        if initial {
            self.rows.clear();
        }
        for (uuid, change) in updates.get("Interface").into_iter().flatten() {
            match &change.new {
                Some(new) => {
                    let row = self.rows.entry(uuid.clone()).or_default();
                    row.extend(new.clone());
                }
                None => {
                    self.rows.remove(uuid);
                }
            }
        }
    }

    fn by_name(&self, name: &str) -> Option<&Row> {
        self.rows
            .values()
            .find(|r| r.get("name").and_then(Value::as_str) == Some(name))
    }
}

/// Feeds events into `cache` until `done` holds or the deadline passes.
async fn until(
    events: &mut UnboundedReceiver<Event>,
    cache: &mut Cache,
    what: &str,
    done: impl Fn(&Cache) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done(cache) {
        let left = deadline.saturating_duration_since(Instant::now());
        let ev = tokio::time::timeout(left, events.recv())
            .await
            .unwrap_or_else(|_| panic!("timed out waiting for {what}"));
        match ev {
            Some(Event::Initial { updates, .. }) => cache.apply(&updates, true),
            Some(Event::Update { updates, .. }) => cache.apply(&updates, false),
            Some(_) => {}
            None => panic!("event stream ended waiting for {what}"),
        }
    }
}

fn iface_port(name: &str, typ: &str) -> [Operation; 2] {
    [
        Operation::insert(
            "Interface",
            row([("name", Value::from(name)), ("type", typ.into())]),
            Some(&format!("if_{name}")),
        ),
        Operation::insert(
            "Port",
            row([
                ("name", Value::from(name)),
                ("interfaces", Value::named_uuid(&format!("if_{name}"))),
            ]),
            Some(&format!("port_{name}")),
        ),
    ]
}

#[tokio::test]
async fn monitor_reports_ofport_link_state_and_error() {
    if !privileged_or_skip("monitor_reports_ofport_link_state_and_error") {
        return;
    }
    let ns = NetNs::new("wtmon").unwrap();
    let sb = OvsSandbox::start_in_netns(&ns).unwrap();
    let (client, mut events) =
        Client::start(Endpoint::Unix(sb.db_sock()), ClientOptions::default());
    let initial = client
        .monitor(
            DB,
            "ifaces",
            vec![MonitorRequest::new(
                "Interface",
                &["name", "ofport", "link_state", "error"],
            )],
        )
        .await
        .unwrap();
    assert!(initial.get("Interface").is_none_or(|t| t.is_empty()));

    // A netdev bridge with an internal port and a port on a device that does not exist, all in
    // one transaction with named-uuid references.
    let mut ops = Vec::new();
    ops.extend(iface_port("br0", "internal"));
    ops.extend(iface_port("p0", "internal"));
    ops.extend(iface_port("ghost0", ""));
    ops.push(Operation::insert(
        "Bridge",
        row([
            ("name", Value::from("br0")),
            ("datapath_type", "netdev".into()),
            ("fail_mode", "secure".into()),
            (
                "ports",
                Value::Set(
                    ["br0", "p0", "ghost0"]
                        .iter()
                        .map(|n| weft_agent::ovsdb::Atom::NamedUuid(format!("port_{n}")))
                        .collect(),
                ),
            ),
        ]),
        Some("br"),
    ));
    ops.push(Operation::mutate(
        DB,
        vec![],
        vec![Mutation::insert("bridges", Value::named_uuid("br"))],
    ));
    client.transact(DB, &ops).await.unwrap();

    let mut cache = Cache::default();
    until(&mut events, &mut cache, "p0 ofport and ghost0 error", |c| {
        let p0 = c.by_name("p0").and_then(|r| r.get("ofport")?.as_integer());
        let ghost_err = c.by_name("ghost0").and_then(|r| r.get("error")?.as_str());
        p0.is_some_and(|p| p > 0) && ghost_err.is_some()
    })
    .await;
    let p0 = cache.by_name("p0").unwrap();
    let vsctl_ofport = sb.vsctl(&["get", "Interface", "p0", "ofport"]).unwrap();
    assert_eq!(
        p0["ofport"].as_integer(),
        vsctl_ofport.trim().parse::<i64>().ok()
    );
    let ghost = cache.by_name("ghost0").unwrap();
    assert_eq!(ghost["ofport"].as_integer(), Some(-1));
    assert!(
        ghost["error"].as_str().unwrap().contains("ghost0"),
        "{:?}",
        ghost["error"]
    );
    // The internal port exists as a device in the node's namespace.
    assert!(ns.exec(&["ip", "link", "show", "p0"]).is_ok());

    // Bringing the device up is reported as link_state "up".
    ns.exec(&["ip", "link", "set", "p0", "up"]).unwrap();
    until(&mut events, &mut cache, "p0 link_state up", |c| {
        c.by_name("p0")
            .and_then(|r| r.get("link_state")?.as_str().map(|s| s == "up"))
            .unwrap_or(false)
    })
    .await;

    // Deleting the port (a mutate on the bridge's set) is a delete in the monitor.
    let br = client
        .transact(
            DB,
            &[Operation::select(
                "Port",
                vec![Condition::eq("name", "p0")],
                Some(&["_uuid"]),
            )],
        )
        .await
        .unwrap();
    let port_uuid = br[0].rows.as_ref().unwrap()[0]["_uuid"]
        .as_uuid()
        .unwrap()
        .clone();
    client
        .transact(
            DB,
            &[Operation::mutate(
                "Bridge",
                vec![Condition::eq("name", "br0")],
                vec![Mutation::delete("ports", Value::uuid(port_uuid))],
            )],
        )
        .await
        .unwrap();
    until(&mut events, &mut cache, "p0 removed", |c| {
        c.by_name("p0").is_none()
    })
    .await;
    drop(client);
    drop(sb);
}

#[tokio::test]
async fn client_reconnects_and_reissues_monitors() {
    if !privileged_or_skip("client_reconnects_and_reissues_monitors") {
        return;
    }
    let mut sb = OvsSandbox::start_db_only().unwrap();
    sb.vsctl(&["add-br", "brX"]).unwrap();
    let (client, mut events) = Client::start(
        Endpoint::Unix(sb.db_sock()),
        ClientOptions {
            backoff_initial: Duration::from_millis(50),
            backoff_max: Duration::from_millis(400),
            ..ClientOptions::default()
        },
    );
    let req = vec![MonitorRequest::new("Bridge", &["name"])];
    let initial = client.monitor(DB, "bridges", req).await.unwrap();
    assert_eq!(initial["Bridge"].len(), 1);
    // The first session: Connected, then the monitor's contents also arrive as an event.
    assert_eq!(events.recv().await, Some(Event::Connected));
    match events.recv().await {
        Some(Event::Initial { updates, .. }) => assert_eq!(updates, initial),
        other => panic!("{other:?}"),
    }

    sb.restart_ovsdb().unwrap();

    // Expect: Disconnected, Connected, then the monitor's full contents again.
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    let reissued = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let ev = tokio::time::timeout(left, events.recv())
            .await
            .expect("no reconnect")
            .unwrap();
        match ev {
            Event::Disconnected { .. } => seen.push("disconnected"),
            Event::Connected => seen.push("connected"),
            Event::Initial {
                monitor_id,
                updates,
            } if seen.contains(&"connected") => {
                assert_eq!(monitor_id, "bridges");
                break updates;
            }
            _ => {}
        }
    };
    assert_eq!(seen, ["disconnected", "connected"]);
    let names: Vec<_> = reissued["Bridge"]
        .values()
        .filter_map(|u| u.new.as_ref()?.get("name")?.as_str().map(str::to_string))
        .collect();
    assert_eq!(names, ["brX"]);

    // The re-issued monitor is live: a change made by another client shows up.
    sb.vsctl(&["add-br", "brY"]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let ev = tokio::time::timeout(left, events.recv())
            .await
            .expect("no update after reconnect")
            .unwrap();
        if let Event::Update { updates, .. } = ev {
            let new_names: Vec<_> = updates["Bridge"]
                .values()
                .filter_map(|u| u.new.as_ref()?.get("name")?.as_str())
                .collect();
            if new_names.contains(&"brY") {
                break;
            }
        }
    }
    // Requests work on the new session, and cancelling stops updates.
    assert!(client.list_dbs().await.unwrap().contains(&DB.to_string()));
    client.monitor_cancel("bridges").await.unwrap();
    sb.vsctl(&["add-br", "brZ"]).unwrap();
    client
        .transact(DB, &[Operation::comment("sync")])
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    while let Ok(ev) = events.try_recv() {
        assert!(
            !matches!(ev, Event::Update { .. }),
            "update after cancel: {ev:?}"
        );
    }
}
