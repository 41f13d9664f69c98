//! Session behaviour against a scripted fake server (no root needed): bad bytes give typed
//! errors, replies are correlated by id, the server's echo is answered, keepalive detects a dead
//! peer.

use serde_json::{Value as Json, json};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use weft_agent::ovsdb::{ConnectOptions, Connection, Error, Event, JsonSplitter};

fn pair(
    opts: ConnectOptions,
) -> (
    Connection,
    tokio::sync::mpsc::UnboundedReceiver<Event>,
    Peer,
) {
    let (ours, theirs) = tokio::io::duplex(1 << 16);
    let (conn, events) = Connection::from_stream(ours, &opts);
    (
        conn,
        events,
        Peer {
            io: theirs,
            split: JsonSplitter::new(1 << 20),
        },
    )
}

fn no_keepalive() -> ConnectOptions {
    ConnectOptions {
        keepalive: None,
        ..ConnectOptions::default()
    }
}

/// The fake server's end.
struct Peer {
    io: DuplexStream,
    split: JsonSplitter,
}

impl Peer {
    async fn recv(&mut self) -> Json {
        loop {
            if let Some(m) = self.split.next_message().unwrap() {
                return m;
            }
            let mut buf = [0u8; 4096];
            let n = tokio::time::timeout(Duration::from_secs(5), self.io.read(&mut buf))
                .await
                .expect("client sent nothing")
                .unwrap();
            assert!(n > 0, "client closed");
            self.split.extend(&buf[..n]);
        }
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.io.write_all(bytes).await.unwrap();
    }
}

async fn expect_disconnected(events: &mut tokio::sync::mpsc::UnboundedReceiver<Event>) -> String {
    let ev = tokio::time::timeout(Duration::from_secs(5), events.recv())
        .await
        .unwrap();
    match ev {
        Some(Event::Disconnected { reason }) => reason,
        other => panic!("expected Disconnected, got {other:?}"),
    }
}

#[tokio::test]
async fn garbage_from_server_is_malformed_not_a_panic() {
    let (conn, mut events, mut peer) = pair(no_keepalive());
    let call = tokio::spawn({
        let conn = conn.clone();
        async move { conn.list_dbs().await }
    });
    let req = peer.recv().await;
    assert_eq!(req["method"], "list_dbs");
    peer.send(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
    let err = call.await.unwrap().unwrap_err();
    assert!(matches!(err, Error::Malformed(_)), "{err:?}");
    assert!(err.is_connection_error());
    assert!(expect_disconnected(&mut events).await.contains("malformed"));
    // Later calls fail fast instead of hanging.
    let err = conn.echo().await.unwrap_err();
    assert!(err.is_connection_error(), "{err:?}");
}

#[tokio::test]
async fn invalid_json_inside_an_object_is_malformed() {
    let (conn, _events, mut peer) = pair(no_keepalive());
    let call = tokio::spawn(async move { conn.list_dbs().await });
    let req = peer.recv().await;
    let id = req["id"].clone();
    peer.send(format!(r#"{{"id":{id},"result":[tru]}}"#).as_bytes())
        .await;
    let err = call.await.unwrap().unwrap_err();
    assert!(matches!(err, Error::Malformed(_)), "{err:?}");
}

#[tokio::test]
async fn oversize_message_is_rejected() {
    let (conn, _events, mut peer) = pair(ConnectOptions {
        max_message: 1024,
        ..no_keepalive()
    });
    let call = tokio::spawn(async move { conn.list_dbs().await });
    let req = peer.recv().await;
    let huge = format!(
        r#"{{"id":{},"result":["{}"]}}"#,
        req["id"],
        "x".repeat(4096)
    );
    peer.send(huge.as_bytes()).await;
    let err = call.await.unwrap().unwrap_err();
    assert!(
        matches!(err, Error::MessageTooLarge { limit: 1024 }),
        "{err:?}"
    );
}

#[tokio::test]
async fn truncated_message_then_eof() {
    let (conn, mut events, mut peer) = pair(no_keepalive());
    let call = tokio::spawn(async move { conn.list_dbs().await });
    let req = peer.recv().await;
    peer.send(format!(r#"{{"id":{},"result":["Open_"#, req["id"]).as_bytes())
        .await;
    drop(peer);
    let err = call.await.unwrap().unwrap_err();
    assert!(matches!(err, Error::Malformed(_)), "{err:?}");
    expect_disconnected(&mut events).await;
}

#[tokio::test]
async fn replies_are_matched_by_id_out_of_order() {
    let (conn, _events, mut peer) = pair(no_keepalive());
    let a = tokio::spawn({
        let c = conn.clone();
        async move { c.get_schema("A").await }
    });
    let first = peer.recv().await;
    let b = tokio::spawn({
        let c = conn.clone();
        async move { c.get_schema("B").await }
    });
    let second = peer.recv().await;
    assert_ne!(first["id"], second["id"]);
    // Answer the second request first, each with its own db name.
    for req in [&second, &first] {
        let name = req["params"][0].clone();
        let reply = json!({"id": req["id"], "error": null,
                           "result": {"name": name, "version": "1.0.0", "tables": {}}});
        peer.send(reply.to_string().as_bytes()).await;
    }
    assert_eq!(a.await.unwrap().unwrap()["name"], first["params"][0]);
    assert_eq!(b.await.unwrap().unwrap()["name"], "B");
    // A reply carrying an error becomes Error::Rpc.
    let c = tokio::spawn(async move { conn.list_dbs().await });
    let req = peer.recv().await;
    peer.send(
        json!({"id": req["id"], "result": null, "error": "not allowed"})
            .to_string()
            .as_bytes(),
    )
    .await;
    match c.await.unwrap() {
        Err(Error::Rpc { method, error }) => assert_eq!(
            (method.as_str(), error.as_str()),
            ("list_dbs", "not allowed")
        ),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn answers_server_echo_and_delivers_updates() {
    let (_conn, mut events, mut peer) = pair(no_keepalive());
    peer.send(br#"{"method":"echo","params":["ping",7],"id":"srv-1"}"#)
        .await;
    let reply = peer.recv().await;
    assert_eq!(reply["id"], "srv-1");
    assert_eq!(reply["result"], json!(["ping", 7]));
    assert!(reply["error"].is_null());
    let uuid = "5f8a4c47-8bc8-4d6e-9b1c-3b2d5c8e1a77";
    let update = json!({"method": "update", "id": null, "params": ["ifaces",
        {"Interface": {uuid: {"new": {"name": "p0", "ofport": 4}}}}]});
    peer.send(update.to_string().as_bytes()).await;
    match events.recv().await {
        Some(Event::Update {
            monitor_id,
            updates,
        }) => {
            assert_eq!(monitor_id, "ifaces");
            let row = updates["Interface"].values().next().unwrap();
            assert_eq!(row.new.as_ref().unwrap()["ofport"].as_integer(), Some(4));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn keepalive_detects_a_silent_server() {
    let (conn, mut events, mut peer) = pair(ConnectOptions {
        keepalive: Some(Duration::from_millis(100)),
        ..ConnectOptions::default()
    });
    let call = tokio::spawn(async move { conn.list_dbs().await });
    let req = peer.recv().await;
    assert_eq!(req["method"], "list_dbs");
    // We stay silent; the client must probe with its own echo, then give up.
    let probe = peer.recv().await;
    assert_eq!(probe["method"], "echo");
    let err = tokio::time::timeout(Duration::from_secs(5), call)
        .await
        .expect("keepalive never fired")
        .unwrap()
        .unwrap_err();
    assert!(matches!(err, Error::KeepaliveTimeout(_)), "{err:?}");
    expect_disconnected(&mut events).await;
}

#[tokio::test]
async fn keepalive_answered_keeps_the_session() {
    let (conn, _events, mut peer) = pair(ConnectOptions {
        keepalive: Some(Duration::from_millis(100)),
        ..ConnectOptions::default()
    });
    for _ in 0..3 {
        let probe = peer.recv().await;
        assert_eq!(probe["method"], "echo");
        peer.send(
            json!({"id": probe["id"], "result": probe["params"], "error": null})
                .to_string()
                .as_bytes(),
        )
        .await;
    }
    assert!(!conn.is_closed());
}
