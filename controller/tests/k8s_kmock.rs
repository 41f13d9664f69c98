//! Kubernetes mode against the kmock API emulator (plain HTTP on 127.0.0.1): the reconciler, the
//! orphan collector and leader election, talking to an API server over a real kube-rs client.

mod k8s_common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_common::{Emulator, eventually};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::json;
use weft_api::conditions as c;
use weft_api::{NetworkAttachmentDefinition, VirtualNetwork, VirtualNetworkSpec};
use weft_controller::ipam::{self, ReserveRequest};
use weft_controller::k8s::leader::{Elector, LeaseConfig};
use weft_controller::k8s::{Context, Options, gc, load_model, reconcile};
use weft_controller::model::{Attachment, AttachmentId, Model, NetworkKey, Node, PodRef};
use weft_controller::store::ModelStore;

const NS: &str = "team-a";
const WAIT: Duration = Duration::from_secs(15);

fn model_with_node() -> Model {
    let mut m = Model::default();
    m.nodes.insert(
        "node-1".into(),
        Node {
            name: "node-1".into(),
            underlay_ip: "192.0.2.1".parse().unwrap(),
            datapath_id: 1,
            tunnel_ports: Default::default(),
        },
    );
    m
}

fn opts() -> Options {
    Options {
        api_timeout: Duration::from_secs(5),
        resync: Duration::from_secs(60),
        gc_interval: Duration::from_millis(300),
        backoff: (Duration::from_millis(100), Duration::from_secs(2)),
        instance: "test".into(),
    }
}

/// Port numbers for [`attach`]: one per attachment, as an agent gives them.
static NEXT_OFPORT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(10);

/// Attaches a pod interface the way the agent does (prepare, then attach).
fn attach(store: &ModelStore, net: &str, pod: &str, uid: &str, container: &str) -> AttachmentId {
    let id = AttachmentId {
        container_id: container.into(),
        ifname: "net1".into(),
    };
    let key = NetworkKey::new(NS, net);
    let pod = PodRef {
        namespace: NS.into(),
        name: pod.into(),
        uid: uid.into(),
    };
    store
        .update(|m| {
            let r = ipam::reserve(
                m,
                ReserveRequest {
                    id: id.clone(),
                    network: key.clone(),
                    node: "node-1".into(),
                    pod: pod.clone(),
                    mac: None,
                    ips: vec![],
                },
            )?;
            m.attach(Attachment {
                id: id.clone(),
                network: key.clone(),
                node: "node-1".into(),
                ofport: NEXT_OFPORT.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
                mac: r.mac,
                ips: r.ips.iter().map(|n| n.addr()).collect(),
                pod: pod.clone(),
            })
        })
        .unwrap();
    id
}

async fn ready(api: &Api<VirtualNetwork>, name: &str) -> Option<(String, String, String)> {
    let vn = api.get_opt(name).await.ok()??;
    let st = vn.status?;
    let r = st.conditions.iter().find(|x| x.type_ == c::READY)?;
    Some((r.status.clone(), r.reason.clone(), r.message.clone()))
}

async fn start_controller(
    client: &Client,
    model: Model,
) -> (Arc<ModelStore>, tokio::task::JoinHandle<()>) {
    let store = Arc::new(ModelStore::new(model, 0, None));
    let ctx = Context::new(client.clone(), store.clone(), opts());
    (store, tokio::spawn(reconcile::run(ctx)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn virtual_network_lifecycle() {
    let Some(emu) = Emulator::start() else { return };
    let client = emu.client();
    let (store, ctl) = start_controller(&client, model_with_node()).await;
    let vns: Api<VirtualNetwork> = Api::namespaced(client.clone(), NS);
    let nads: Api<NetworkAttachmentDefinition> = Api::namespaced(client.clone(), NS);

    // Create -> finalizer, segment, NAD with the right config and owner, Ready.
    let vn = VirtualNetwork::new(
        "red",
        VirtualNetworkSpec {
            subnet: Some("10.1.0.0/24".into()),
            gateway: Some("10.1.0.1".into()),
            ..Default::default()
        },
    );
    vns.create(&PostParams::default(), &vn).await.unwrap();
    eventually("Ready=True", WAIT, || async {
        ready(&vns, "red").await.filter(|r| r.0 == "True")
    })
    .await;
    let vn = vns.get("red").await.unwrap();
    assert_eq!(vn.finalizers(), [weft_api::FINALIZER]);
    let st = vn.status.clone().unwrap();
    assert_eq!(st.segment, Some(1));
    for t in [c::SEGMENT_ALLOCATED, c::NAD_SYNCED, c::READY] {
        let cond = st.conditions.iter().find(|x| x.type_ == t).unwrap();
        assert_eq!(cond.status, "True", "{cond:?}");
        assert!(!cond.last_transition_time.is_empty());
    }
    assert_eq!(st.available_ips, Some(253));
    let nad = nads.get("red").await.unwrap();
    let config: serde_json::Value = serde_json::from_str(&nad.spec.config).unwrap();
    assert_eq!(
        config,
        json!({"cniVersion":"1.0.0","type":"weft","network":"team-a/red","capabilities":{"mac":true,"ips":true}})
    );
    let owner = &nad.owner_references()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str()),
        ("VirtualNetwork", "red")
    );
    assert_eq!(Some(&owner.uid), vn.metadata.uid.as_ref());
    assert_eq!(owner.controller, Some(true));

    // An invalid subnet: refused with the model's message, the old spec keeps running.
    let edit = |subnet: &str, gw: &str| json!({"spec": {"subnet": subnet, "gateway": gw}});
    vns.patch(
        "red",
        &PatchParams::default(),
        &Patch::Merge(&edit("10.1.0.0/33", "10.1.0.1")),
    )
    .await
    .unwrap();
    let r = eventually("Ready=False InvalidSpec", WAIT, || async {
        ready(&vns, "red")
            .await
            .filter(|r| r.1 == c::REASON_INVALID_SPEC)
    })
    .await;
    assert_eq!(r.0, "False");
    assert!(r.2.contains("invalid CIDR \"10.1.0.0/33\""), "{}", r.2);
    let vn = vns.get("red").await.unwrap();
    let st = vn.status.unwrap();
    assert_eq!(st.observed_generation, vn.metadata.generation);
    assert_eq!(
        st.applied_spec.unwrap().subnet.as_deref(),
        Some("10.1.0.0/24")
    );
    // A valid edit is taken.
    vns.patch(
        "red",
        &PatchParams::default(),
        &Patch::Merge(&edit("10.1.0.0/16", "10.1.0.1")),
    )
    .await
    .unwrap();
    eventually("new subnet applied", WAIT, || async {
        let st = vns.get("red").await.ok()?.status?;
        (st.applied_spec?.subnet.as_deref() == Some("10.1.0.0/16")
            && st
                .conditions
                .iter()
                .any(|x| x.type_ == c::READY && x.status == "True"))
        .then_some(())
    })
    .await;

    // A NAD deleted by hand comes back; one edited by hand is restored.
    let old_uid = nads.get("red").await.unwrap().metadata.uid;
    nads.delete("red", &DeleteParams::default()).await.unwrap();
    eventually("NAD recreated", WAIT, || async {
        nads.get_opt("red")
            .await
            .ok()?
            .filter(|n| n.metadata.uid != old_uid)
    })
    .await;
    nads.patch(
        "red",
        &PatchParams::default(),
        &Patch::Merge(&json!({"spec": {"config": "{\"type\":\"bridge\"}"}})),
    )
    .await
    .unwrap();
    eventually("NAD config restored", WAIT, || async {
        let n = nads.get("red").await.ok()?;
        n.spec.config.contains("\"weft\"").then_some(())
    })
    .await;

    // A pod attaches: status lists it.
    let id = attach(&store, "red", "p1", "uid-p1", "c1");
    let st = eventually("attachment in status", WAIT, || async {
        vns.get("red")
            .await
            .ok()?
            .status
            .filter(|s| s.attachment_count == 1)
    })
    .await;
    assert_eq!(st.attachments[0].pod, "team-a/p1");
    assert_eq!(st.attachments[0].ips, ["10.1.0.2"]);
    assert_eq!(st.allocated_ips, 1);

    // A subnet that would strand it is refused, naming the pod.
    vns.patch(
        "red",
        &PatchParams::default(),
        &Patch::Merge(&edit("10.2.0.0/24", "10.2.0.1")),
    )
    .await
    .unwrap();
    let r = eventually("SpecConflictsWithAttachments", WAIT, || async {
        ready(&vns, "red")
            .await
            .filter(|r| r.1 == c::REASON_SPEC_CONFLICT)
    })
    .await;
    assert!(
        r.2.contains("team-a/p1 (net1): 10.1.0.2 is outside the new subnet"),
        "{}",
        r.2
    );
    vns.patch(
        "red",
        &PatchParams::default(),
        &Patch::Merge(&edit("10.1.0.0/16", "10.1.0.1")),
    )
    .await
    .unwrap();

    // A new leader would rebuild exactly this model from the API server.
    eventually("status settled", WAIT, || async {
        ready(&vns, "red").await.filter(|r| r.0 == "True")
    })
    .await;
    let restored = load_model(&client, Duration::from_secs(5)).await.unwrap();
    let live = store.snapshot().model;
    assert_eq!(restored.networks, live.networks);
    assert_eq!(restored.attachments, live.attachments);
    assert_eq!(restored.reservations, live.reservations);

    // Delete while attached: the finalizer holds and the condition names the pod.
    vns.delete("red", &DeleteParams::default()).await.unwrap();
    let r = eventually("deletion blocked", WAIT, || async {
        ready(&vns, "red")
            .await
            .filter(|r| r.1 == c::REASON_DELETION_BLOCKED)
    })
    .await;
    assert!(
        r.2.contains("1 pod interface(s)") && r.2.contains("team-a/p1 (net1) on node-1"),
        "{}",
        r.2
    );
    assert!(nads.get_opt("red").await.unwrap().is_some());
    assert!(
        store
            .snapshot()
            .model
            .networks
            .contains_key(&NetworkKey::new(NS, "red"))
    );

    // After the detach everything is gone: resource, NAD, segment.
    store
        .update(|m| {
            ipam::release(m, &id);
            Ok(())
        })
        .unwrap();
    eventually("network gone", WAIT, || async {
        vns.get_opt("red").await.ok()?.is_none().then_some(())
    })
    .await;
    assert!(nads.get_opt("red").await.unwrap().is_none());
    assert!(store.snapshot().model.networks.is_empty());
    ctl.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orphans_are_collected_by_pod_uid() {
    let Some(emu) = Emulator::start() else { return };
    let client = emu.client();
    let (store, ctl) = start_controller(&client, model_with_node()).await;
    let vns: Api<VirtualNetwork> = Api::namespaced(client.clone(), NS);
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    vns.create(
        &PostParams::default(),
        &VirtualNetwork::new(
            "blue",
            VirtualNetworkSpec {
                subnet: Some("10.3.0.0/24".into()),
                ..Default::default()
            },
        ),
    )
    .await
    .unwrap();
    eventually("Ready", WAIT, || async {
        ready(&vns, "blue").await.filter(|r| r.0 == "True")
    })
    .await;
    let mut pod = Pod::default();
    pod.metadata.name = Some("alive".into());
    pod.metadata.labels = Some(BTreeMap::from([("app".into(), "x".into())]));
    let pod = pods.create(&PostParams::default(), &pod).await.unwrap();
    let uid = pod.metadata.uid.clone().unwrap();
    let alive = attach(&store, "blue", "alive", &uid, "c-alive");
    // Same name as a live pod but an old UID: a predecessor whose DEL never came.
    let stale = attach(&store, "blue", "alive", "uid-of-predecessor", "c-stale");
    let ghost = attach(&store, "blue", "ghost", "uid-ghost", "c-ghost");
    let ctx = Context::new(client.clone(), store.clone(), opts());
    let gc_task = tokio::spawn(gc::run(ctx));

    eventually("orphans released", WAIT, || async {
        let m = store.snapshot().model;
        (!m.attachments.contains_key(&ghost) && !m.attachments.contains_key(&stale)).then_some(())
    })
    .await;
    let m = store.snapshot().model;
    assert!(
        m.attachments.contains_key(&alive),
        "a live pod keeps its attachment"
    );
    assert!(!m.reservations.contains_key(&ghost));
    // Status follows the model.
    eventually("status shows one attachment", WAIT, || async {
        vns.get("blue")
            .await
            .ok()?
            .status
            .filter(|s| s.attachment_count == 1)
    })
    .await;
    // The pod goes without a CNI DEL: collected too.
    pods.delete("alive", &DeleteParams::default())
        .await
        .unwrap();
    eventually("deleted pod's attachment released", WAIT, || async {
        store.snapshot().model.attachments.is_empty().then_some(())
    })
    .await;
    gc_task.abort();
    ctl.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_leader_at_a_time_and_fast_handover() {
    let Some(emu) = Emulator::start() else { return };
    let client = emu.client();
    let cfg = |id: &str| LeaseConfig {
        lease_duration: Duration::from_millis(1500), // 2 s in the Lease (whole seconds)
        renew_deadline: Duration::from_millis(1000),
        retry_period: Duration::from_millis(100),
        ..LeaseConfig::new("weft-system", "weft-controller", id)
    };
    let mut a = Elector::new(client.clone(), cfg("a"));
    let mut b = Elector::new(client.clone(), cfg("b"));
    assert!(a.try_acquire_or_renew().await.unwrap());
    assert!(
        !b.try_acquire_or_renew().await.unwrap(),
        "b must stand by while a renews"
    );
    assert!(a.try_acquire_or_renew().await.unwrap(), "a renews");
    assert!(!b.try_acquire_or_renew().await.unwrap());

    // a stops renewing (crashed): b takes over only after the lease duration.
    let t0 = std::time::Instant::now();
    tokio::time::timeout(Duration::from_secs(10), b.acquire())
        .await
        .unwrap();
    assert!(
        t0.elapsed() >= Duration::from_millis(1400),
        "took over after {:?}",
        t0.elapsed()
    );
    assert!(!a.try_acquire_or_renew().await.unwrap(), "a lost the lease");
    let leases: Api<k8s_openapi::api::coordination::v1::Lease> =
        Api::namespaced(client.clone(), "weft-system");
    let l = leases.get("weft-controller").await.unwrap().spec.unwrap();
    assert_eq!(l.holder_identity.as_deref(), Some("b"));
    assert_eq!(l.lease_transitions, Some(1));

    // a keeps trying in hold(): it must report the loss.
    let lost = tokio::time::timeout(Duration::from_secs(5), a.hold())
        .await
        .unwrap();
    assert!(lost.to_string().contains("taken over by b"), "{lost}");

    // b releases on shutdown: a takes over at once, not after the lease duration.
    b.release().await.unwrap();
    let t0 = std::time::Instant::now();
    tokio::time::timeout(Duration::from_secs(5), a.acquire())
        .await
        .unwrap();
    assert!(
        t0.elapsed() < Duration::from_millis(1000),
        "{:?}",
        t0.elapsed()
    );
}
