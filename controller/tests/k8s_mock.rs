//! Error paths the emulator cannot show, against a scripted API server (tower-test): 409 on the
//! status write, 5xx and timeouts retried with growing backoff, 403 reported with its fix, and a
//! lost or unrenewable lease ending leadership.

use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use kube::Client;
use kube::client::Body;
use kube_runtime::controller::Action;
use serde_json::{Value, json};
use tower_test::mock::{Handle, SendResponse};
use weft_api::{VirtualNetwork, VirtualNetworkSpec};
use weft_controller::k8s::leader::{Elector, LeadershipLost, LeaseConfig};
use weft_controller::k8s::reconcile::{error_policy, reconcile};
use weft_controller::k8s::{Context, K8sError, Options};
use weft_controller::model::Model;
use weft_controller::store::ModelStore;

/// What the scripted server answers: a status and a body, or nothing at all (a hung server).
enum Reply {
    Json(u16, Value),
    /// The request's own body back (what a create returns).
    Echo(u16),
    Hang,
}

fn status(code: u16, reason: &str, message: &str) -> Reply {
    Reply::Json(
        code,
        json!({"apiVersion": "v1", "kind": "Status", "status": "Failure", "code": code,
               "reason": reason, "message": message}),
    )
}

/// A request the server saw: method, path, JSON body.
type Seen = (String, String, Value);

/// Answers requests in order from `script` (method and a path fragment each must match); Events
/// are accepted whenever they come. Returns what it saw once the script is done.
async fn serve(
    mut handle: Handle<Request<Body>, Response<Body>>,
    script: Vec<(&'static str, &'static str, Reply)>,
) -> (Vec<Seen>, Vec<SendResponse<Response<Body>>>) {
    let mut seen = Vec::new();
    let mut hung = Vec::new();
    let mut script = script.into_iter();
    while let Some((req, send)) = handle.next_request().await {
        let method = req.method().to_string();
        let path = req.uri().to_string();
        let bytes = req.into_body().collect_bytes().await.unwrap_or_default();
        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let echo = bytes.to_vec();
        if path.contains("/apis/events.k8s.io/") {
            send.send_response(
                Response::builder()
                    .status(201)
                    .body(Body::from(bytes.to_vec()))
                    .unwrap(),
            );
            continue;
        }
        seen.push((method.clone(), path.clone(), body));
        let Some((m, frag, reply)) = script.next() else {
            panic!("unexpected request {method} {path}");
        };
        assert_eq!(
            (method.as_str(), path.contains(frag)),
            (m, true),
            "{method} {path}, expected {m} *{frag}*"
        );
        match reply {
            Reply::Json(code, v) => send.send_response(
                Response::builder()
                    .status(code)
                    .body(Body::from(serde_json::to_vec(&v).unwrap()))
                    .unwrap(),
            ),
            Reply::Echo(code) => send.send_response(
                Response::builder()
                    .status(code)
                    .body(Body::from(echo))
                    .unwrap(),
            ),
            Reply::Hang => hung.push(send),
        }
        if script.len() == 0 {
            break;
        }
    }
    (seen, hung)
}

fn opts() -> Options {
    Options {
        api_timeout: Duration::from_millis(300),
        backoff: (Duration::from_millis(100), Duration::from_secs(1)),
        ..Options::default()
    }
}

fn network() -> Arc<VirtualNetwork> {
    let mut vn = VirtualNetwork::new(
        "red",
        VirtualNetworkSpec {
            subnet: Some("10.1.0.0/24".into()),
            ..Default::default()
        },
    );
    vn.metadata.namespace = Some("ns".into());
    vn.metadata.uid = Some("uid-red".into());
    vn.metadata.generation = Some(1);
    vn.metadata.resource_version = Some("5".into());
    vn.metadata.finalizers = Some(vec![weft_api::FINALIZER.into()]);
    Arc::new(vn)
}

fn setup() -> (Arc<Context>, Handle<Request<Body>, Response<Body>>) {
    let (svc, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = Client::new(svc, "default");
    let store = Arc::new(ModelStore::new(Model::default(), 0, None));
    (Context::new(client, store, opts()), handle)
}

fn nad_in_sync() -> Reply {
    Reply::Json(
        200,
        json!({"apiVersion": "k8s.cni.cncf.io/v1", "kind": "NetworkAttachmentDefinition",
               "metadata": {"name": "red", "namespace": "ns", "uid": "uid-nad",
                            "labels": {"app.kubernetes.io/managed-by": "weft-controller"},
                            "ownerReferences": [{"apiVersion": "weft.dev/v1alpha1", "kind": "VirtualNetwork",
                                                 "name": "red", "uid": "uid-red", "controller": true}]},
               "spec": {"config": weft_api::nad_config("ns", "red")}}),
    )
}

fn vn_json() -> Reply {
    Reply::Json(200, serde_json::to_value(&*network()).unwrap())
}

#[tokio::test]
async fn status_conflict_is_retried_and_then_succeeds() {
    let (ctx, handle) = setup();
    let server = tokio::spawn(serve(
        handle,
        vec![
            (
                "GET",
                "/network-attachment-definitions/red",
                status(404, "NotFound", "not found"),
            ),
            ("POST", "/network-attachment-definitions", Reply::Echo(201)),
            (
                "PATCH",
                "/virtualnetworks/red/status",
                status(409, "Conflict", "the object has been modified"),
            ),
            ("GET", "/network-attachment-definitions/red", nad_in_sync()),
            ("PATCH", "/virtualnetworks/red/status", vn_json()),
        ],
    ));
    let err = reconcile(network(), ctx.clone()).await.unwrap_err();
    assert!(matches!(err, K8sError::Conflict { .. }), "{err}");
    assert!(err.is_transient());
    assert_eq!(
        error_policy(network(), &err, ctx.clone()),
        Action::requeue(Duration::from_millis(100))
    );
    // The retry finds the NAD in place and writes status.
    let ok = reconcile(network(), ctx.clone()).await.unwrap();
    assert_eq!(ok, Action::requeue(ctx.opts.resync));
    let (seen, _) = server.await.unwrap();
    let status = &seen[4].2["status"];
    assert_eq!(status["segment"], 1);
    let ready = status["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Ready")
        .unwrap();
    assert_eq!(ready["status"], "True");
    // The created NAD carried the owner reference.
    assert_eq!(
        seen[1].2["metadata"]["ownerReferences"][0]["uid"],
        "uid-red"
    );
    // Success resets the backoff.
    assert_eq!(
        error_policy(network(), &err, ctx),
        Action::requeue(Duration::from_millis(100))
    );
}

#[tokio::test]
async fn server_errors_and_timeouts_back_off_exponentially() {
    let (ctx, handle) = setup();
    let server = tokio::spawn(serve(
        handle,
        vec![
            (
                "GET",
                "/network-attachment-definitions/red",
                status(503, "ServiceUnavailable", "etcd leader changed"),
            ),
            ("PATCH", "/virtualnetworks/red/status", vn_json()),
            ("GET", "/network-attachment-definitions/red", Reply::Hang),
            ("PATCH", "/virtualnetworks/red/status", vn_json()),
            (
                "GET",
                "/network-attachment-definitions/red",
                status(500, "InternalError", "boom"),
            ),
            ("PATCH", "/virtualnetworks/red/status", vn_json()),
        ],
    ));
    let mut delays = Vec::new();
    let mut kinds = Vec::new();
    for _ in 0..3 {
        let err = reconcile(network(), ctx.clone()).await.unwrap_err();
        assert!(err.is_transient(), "{err}");
        kinds.push(match err {
            K8sError::Unavailable { .. } => "unavailable",
            K8sError::Timeout { .. } => "timeout",
            _ => "other",
        });
        delays.push(error_policy(network(), &err, ctx.clone()));
    }
    assert_eq!(kinds, ["unavailable", "timeout", "unavailable"]);
    assert_eq!(
        delays,
        [100, 200, 400].map(|ms| Action::requeue(Duration::from_millis(ms)))
    );
    let (seen, _hung) = server.await.unwrap();
    // The status still told the user what is wrong while retrying.
    let nad = seen[1].2["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "AttachmentDefinitionSynced")
        .unwrap()
        .clone();
    assert_eq!(nad["status"], "False");
    assert!(nad["message"].as_str().unwrap().contains("503"), "{nad}");
}

#[tokio::test]
async fn forbidden_is_reported_with_the_fix() {
    let (ctx, handle) = setup();
    let server = tokio::spawn(serve(
        handle,
        vec![
            (
                "GET",
                "/network-attachment-definitions/red",
                status(
                    403,
                    "Forbidden",
                    "network-attachment-definitions.k8s.cni.cncf.io \"red\" is forbidden: User \"system:serviceaccount:weft-system:weft-controller\" cannot get resource",
                ),
            ),
            ("PATCH", "/virtualnetworks/red/status", vn_json()),
        ],
    ));
    let err = reconcile(network(), ctx.clone()).await.unwrap_err();
    assert!(matches!(err, K8sError::Forbidden { .. }));
    assert!(!err.is_transient());
    let msg = err.to_string();
    assert!(
        msg.contains("cannot get resource") && msg.contains("ClusterRole"),
        "{msg}"
    );
    let (seen, _) = server.await.unwrap();
    let conds = seen[1].2["status"]["conditions"]
        .as_array()
        .unwrap()
        .clone();
    let ready = conds.iter().find(|c| c["type"] == "Ready").unwrap();
    assert_eq!(ready["status"], "False");
    assert!(
        ready["message"].as_str().unwrap().contains("ClusterRole"),
        "{ready}"
    );
}

fn lease(holder: &str, rv: &str) -> Reply {
    Reply::Json(
        200,
        json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
               "metadata": {"name": "weft-controller", "namespace": "weft-system", "resourceVersion": rv},
               "spec": {"holderIdentity": holder, "leaseDurationSeconds": 15,
                        "renewTime": k8s_openapi::jiff::Timestamp::now().to_string(),
                        "leaseTransitions": 1}}),
    )
}

fn elector(client: Client) -> Elector {
    Elector::new(
        client,
        LeaseConfig {
            retry_period: Duration::from_millis(20),
            renew_deadline: Duration::from_millis(300),
            api_timeout: Duration::from_millis(100),
            ..LeaseConfig::new("weft-system", "weft-controller", "me")
        },
    )
}

#[tokio::test]
async fn lease_taken_over_drops_leadership() {
    let (svc, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let server = tokio::spawn(serve(
        handle,
        vec![
            ("GET", "/leases/weft-controller", lease("me", "1")),
            ("PATCH", "/leases/weft-controller", lease("me", "2")),
            ("GET", "/leases/weft-controller", lease("other", "3")),
        ],
    ));
    let mut e = elector(Client::new(svc, "default"));
    let lost = tokio::time::timeout(Duration::from_secs(5), e.hold())
        .await
        .unwrap();
    assert!(
        matches!(lost, LeadershipLost::TakenOver(ref by) if by == "other"),
        "{lost}"
    );
    let (seen, _) = server.await.unwrap();
    // The renewal was a compare-and-swap on the version it read.
    assert_eq!(seen[1].2["metadata"]["resourceVersion"], "1");
    assert_eq!(seen[1].2["spec"]["holderIdentity"], "me");
}

#[tokio::test]
async fn unrenewable_lease_drops_leadership_before_it_expires() {
    let (svc, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let script: Vec<_> = (0..40)
        .map(|i| {
            (
                "GET",
                "/leases/weft-controller",
                if i % 2 == 0 {
                    status(500, "InternalError", "etcd down")
                } else {
                    Reply::Hang
                },
            )
        })
        .collect();
    let _server = tokio::spawn(serve(handle, script));
    let mut e = elector(Client::new(svc, "default"));
    let t0 = std::time::Instant::now();
    let lost = tokio::time::timeout(Duration::from_secs(5), e.hold())
        .await
        .unwrap();
    assert!(matches!(lost, LeadershipLost::RenewFailed { .. }), "{lost}");
    // Gave up after the renew deadline, well before a 15 s lease could expire for others.
    assert!(
        t0.elapsed() >= Duration::from_millis(300) && t0.elapsed() < Duration::from_secs(3),
        "{:?}",
        t0.elapsed()
    );
}
