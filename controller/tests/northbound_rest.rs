//! The REST northbound: happy paths, and bad input that must get a clear 4xx and change nothing.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;
use weft_controller::model::{Attachment, AttachmentId, Model, NetworkKey, Node, PodRef};
use weft_controller::northbound::{Api, rest};
use weft_controller::store::ModelStore;

fn api() -> Api {
    Api {
        store: Arc::new(ModelStore::new(Model::default(), 0, None)),
    }
}

async fn call(api: &Api, method: &str, uri: &str, body: &str) -> (StatusCode, Value) {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let resp = rest::router(api.clone()).oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let v = serde_json::from_slice(&bytes)
        .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (status, v)
}

#[tokio::test]
async fn create_get_list_delete() {
    let a = api();
    let body = json!({"namespace": "ran", "name": "n3", "spec": {"subnet": "10.3.0.0/24", "gateway": "10.3.0.1", "mtu": 1400}});
    let (s, v) = call(&a, "POST", "/v1/networks", &body.to_string()).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["segment"], 1);
    assert_eq!(v["spec"]["subnet"], "10.3.0.0/24");
    let (s, v) = call(&a, "GET", "/v1/networks/ran/n3", "").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["spec"]["mtu"], 1400);
    let (s, v) = call(&a, "GET", "/v1/networks?namespace=ran", "").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v.as_array().unwrap().len(), 1);
    let (s, v) = call(&a, "GET", "/v1/networks?namespace=other", "").await;
    assert_eq!((s, v), (StatusCode::OK, json!([])));
    let (s, _) = call(&a, "DELETE", "/v1/networks/ran/n3", "").await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = call(&a, "GET", "/v1/networks/ran/n3", "").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn port_security_is_set_shown_and_defaults_to_strict() {
    let a = api();
    let off = json!({"namespace": "ns", "name": "fw", "spec": {"portSecurity": "Off"}});
    let (s, v) = call(&a, "POST", "/v1/networks", &off.to_string()).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["spec"]["portSecurity"], "Off");
    let key = NetworkKey::new("ns", "fw");
    let mode = a.store.snapshot().model.networks[&key].port_security;
    assert_eq!(mode, weft_api::PortSecurity::Off);
    let plain = json!({"namespace": "ns", "name": "red"});
    let (s, v) = call(&a, "POST", "/v1/networks", &plain.to_string()).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let key = NetworkKey::new("ns", "red");
    let mode = a.store.snapshot().model.networks[&key].port_security;
    assert_eq!(mode, weft_api::PortSecurity::Strict);
}

#[tokio::test]
async fn bad_input_is_a_clear_4xx_and_changes_nothing() {
    let a = api();
    let ok = json!({"namespace": "ns", "name": "red", "spec": {"subnet": "10.1.0.0/24"}});
    assert_eq!(
        call(&a, "POST", "/v1/networks", &ok.to_string()).await.0,
        StatusCode::CREATED
    );
    let before = a.store.snapshot();

    let cases: Vec<(&str, &str, String, StatusCode, &str)> = vec![
        ("POST", "/v1/networks", "{not json".into(), StatusCode::BAD_REQUEST, "invalid request body"),
        ("POST", "/v1/networks", json!({"namespace": "ns"}).to_string(), StatusCode::BAD_REQUEST, "missing field"),
        ("POST", "/v1/networks", json!({"namespace": "ns", "name": "x", "spec": {"subnet": "10.0.0.0/99"}}).to_string(), StatusCode::BAD_REQUEST, "invalid CIDR"),
        ("POST", "/v1/networks", json!({"namespace": "ns", "name": "x", "spec": {"subnet": "10.0.0.0/24", "gateway": "10.9.0.1"}}).to_string(), StatusCode::BAD_REQUEST, "outside subnet"),
        ("POST", "/v1/networks", json!({"namespace": "ns", "name": "x", "spec": {"mtu": 70000}}).to_string(), StatusCode::BAD_REQUEST, "MTU"),
        ("POST", "/v1/networks", json!({"namespace": "ns", "name": "x", "spec": {"colour": "blue"}}).to_string(), StatusCode::BAD_REQUEST, "unknown field"),
        ("POST", "/v1/networks", json!({"namespace": "NS!", "name": "x"}).to_string(), StatusCode::BAD_REQUEST, "invalid name"),
        ("POST", "/v1/networks", json!({"namespace": "ns", "name": "x", "spec": {"portSecurity": "Loose"}}).to_string(), StatusCode::BAD_REQUEST, "unknown variant"),
        ("POST", "/v1/networks", ok.to_string(), StatusCode::CONFLICT, "already exists"),
        ("GET", "/v1/networks/ns/nope", String::new(), StatusCode::NOT_FOUND, "does not exist"),
        ("DELETE", "/v1/networks/ns/nope", String::new(), StatusCode::NOT_FOUND, "does not exist"),
        ("DELETE", "/v1/networks/ns/red?force=maybe", String::new(), StatusCode::BAD_REQUEST, "force"),
        ("GET", "/v1/nothing-here", String::new(), StatusCode::NOT_FOUND, "no such endpoint"),
    ];
    for (method, uri, body, want, text) in cases {
        let (s, v) = call(&a, method, uri, &body).await;
        assert_eq!(s, want, "{method} {uri} {body}: {v}");
        let msg = v["error"]["message"].as_str().unwrap_or_default();
        assert!(
            msg.contains(text),
            "{method} {uri}: message {msg:?} lacks {text:?}"
        );
        assert_eq!(
            a.store.snapshot().version,
            before.version,
            "{method} {uri} changed the model"
        );
    }
}

/// Network ns/red with one attachment on node n1 (n2 is a second node with a tunnel to n1).
fn red_with_one_pod() -> Api {
    let a = api();
    a.store
        .update(|m: &mut Model| {
            m.add_network(
                NetworkKey::new("ns", "red"),
                &weft_api::VirtualNetworkSpec {
                    subnet: Some("10.1.0.0/24".into()),
                    ..Default::default()
                },
            )?;
            for (name, peer) in [("n1", "n2"), ("n2", "n1")] {
                m.nodes.insert(
                    name.into(),
                    Node {
                        name: name.into(),
                        underlay_ip: "192.0.2.1".parse().unwrap(),
                        datapath_id: 1,
                        tunnel_ports: [(peer.to_string(), 9)].into(),
                    },
                );
            }
            m.attach(Attachment {
                id: AttachmentId {
                    container_id: "c1".into(),
                    ifname: "net1".into(),
                },
                network: NetworkKey::new("ns", "red"),
                node: "n1".into(),
                ofport: 3,
                mac: [2, 0, 0, 0, 0, 1],
                ips: vec!["10.1.0.2".parse().unwrap()],
                pod: PodRef {
                    namespace: "ns".into(),
                    name: "p".into(),
                    uid: "u".into(),
                },
            })
        })
        .unwrap();
    a
}

#[tokio::test]
async fn delete_with_attachments_is_refused_unless_forced() {
    let a = red_with_one_pod();
    let (s, v) = call(&a, "DELETE", "/v1/networks/ns/red", "").await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("1 attachment")
    );
    let (_, v) = call(&a, "GET", "/v1/networks/ns/red/attachments", "").await;
    assert_eq!(v[0]["ips"], json!(["10.1.0.2"]));
    let (s, v) = call(&a, "DELETE", "/v1/networks/ns/red?force=true", "").await;
    assert_eq!((s, v), (StatusCode::OK, json!({"attachmentsRemoved": 1})));
    assert!(a.store.snapshot().model.attachments.is_empty());
}

#[tokio::test]
async fn node_delete_is_refused_while_pods_are_on_it_unless_forced() {
    let a = red_with_one_pod();
    let (s, v) = call(&a, "GET", "/v1/nodes", "").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v[0]["name"], "n1");
    assert_eq!(v[0]["attachments"], 1);
    assert_eq!(v[1]["tunnels"], json!({"n1": 9}));

    let (s, v) = call(&a, "DELETE", "/v1/nodes/nope", "").await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    let version = a.store.snapshot().version;
    let (s, v) = call(&a, "DELETE", "/v1/nodes/n1", "").await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("force"));
    let (s, _) = call(&a, "DELETE", "/v1/nodes/n1?force=maybe", "").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(
        a.store.snapshot().version,
        version,
        "a refused delete changed the model"
    );

    let (s, v) = call(&a, "DELETE", "/v1/nodes/n1?force=true", "").await;
    assert_eq!((s, v), (StatusCode::OK, json!({"attachmentsRemoved": 1})));
    let m = a.store.snapshot().model;
    assert!(m.attachments.is_empty() && m.reservations.is_empty());
    assert_eq!(m.nodes.keys().collect::<Vec<_>>(), ["n2"]);
    // The network itself stays.
    let (s, v) = call(&a, "GET", "/v1/networks/ns/red", "").await;
    assert_eq!((s, &v["attachments"]), (StatusCode::OK, &json!(0)));
}

#[test]
fn openapi_document_covers_every_route() {
    let doc: Value = serde_json::from_str(rest::OPENAPI).unwrap();
    assert_eq!(doc["openapi"], "3.0.3");
    for (method, path) in rest::ROUTES {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} missing from openapi.json"
        );
    }
    let documented: usize = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|p| p.as_object().unwrap().len())
        .sum();
    assert_eq!(
        documented,
        rest::ROUTES.len(),
        "openapi.json documents routes that do not exist"
    );
}

#[tokio::test]
async fn patch_merges_into_the_spec_and_keeps_the_segment() {
    let a = red_with_one_pod();
    let body = json!({"mtu": 1400, "subnet": "10.1.0.0/16", "allowedNamespaces": ["*"]});
    let (s, v) = call(&a, "PATCH", "/v1/networks/ns/red", &body.to_string()).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["segment"], 1);
    assert_eq!(v["spec"]["mtu"], 1400);
    assert_eq!(v["spec"]["subnet"], "10.1.0.0/16");
    // null removes a field; fields not named stay.
    let (s, v) = call(&a, "PATCH", "/v1/networks/ns/red", r#"{"mtu": null}"#).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(v["spec"].get("mtu").is_none(), "{v}");
    assert_eq!(v["spec"]["allowedNamespaces"], json!(["*"]));
    let (_, v) = call(&a, "GET", "/v1/networks/ns/red", "").await;
    assert_eq!(v["spec"]["subnet"], "10.1.0.0/16");
}

#[tokio::test]
async fn a_patch_that_strands_pods_is_a_409_naming_them_and_changes_nothing() {
    let a = red_with_one_pod();
    let before = a.store.snapshot();
    let cases: Vec<(&str, String, StatusCode, &str)> = vec![
        (
            "/v1/networks/ns/red",
            json!({"subnet": "10.2.0.0/24"}).to_string(),
            StatusCode::CONFLICT,
            "ns/p (net1): 10.1.0.2 is outside the new subnet",
        ),
        (
            "/v1/networks/ns/red",
            json!({"gateway": "10.1.0.2"}).to_string(),
            StatusCode::CONFLICT,
            "10.1.0.2 is the new spec's gateway",
        ),
        (
            "/v1/networks/ns/red",
            json!({"mtu": 70000}).to_string(),
            StatusCode::BAD_REQUEST,
            "MTU",
        ),
        (
            "/v1/networks/ns/red",
            json!({"colour": "blue"}).to_string(),
            StatusCode::BAD_REQUEST,
            "unknown field colour",
        ),
        (
            "/v1/networks/ns/red",
            json!({"mtu": "big"}).to_string(),
            StatusCode::BAD_REQUEST,
            "invalid request body",
        ),
        (
            "/v1/networks/ns/red",
            "[1]".into(),
            StatusCode::BAD_REQUEST,
            "JSON object",
        ),
        (
            "/v1/networks/ns/nope",
            json!({"mtu": 1400}).to_string(),
            StatusCode::NOT_FOUND,
            "does not exist",
        ),
    ];
    for (uri, body, want, text) in cases {
        let (s, v) = call(&a, "PATCH", uri, &body).await;
        assert_eq!(s, want, "PATCH {uri} {body}: {v}");
        let msg = v["error"]["message"].as_str().unwrap_or_default();
        assert!(
            msg.contains(text),
            "PATCH {uri} {body}: {msg:?} lacks {text:?}"
        );
        let now = a.store.snapshot();
        assert_eq!(
            now.version, before.version,
            "PATCH {body} changed the model"
        );
        assert_eq!(now.model, before.model);
    }
}
