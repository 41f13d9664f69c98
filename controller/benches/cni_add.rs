//! One CNI ADD as the agent makes it (PrepareAttachment + Attach over gRPC against the
//! controller's NodeControl service, Attach answering once a real OVS switch confirmed the flows)
//! in a cluster of 100 attachments and in one of 100,000, in the same run. The attaching node and
//! its network look the same in both (same members, same flows); only the rest of the cluster
//! grows, so the ratio shows what the cluster's size costs one ADD. Also the store's own
//! per-write time at both sizes. One JSON line per figure.
//!
//! Needs root and Open vSwitch (it starts ovsdb-server/ovs-vswitchd in a namespace it creates and
//! removes; gRPC runs over a unix socket in a temporary directory). Run:
//! `cargo bench -p weft-controller --bench cni_add` (`WEFT_ADD_ROUNDS=50` for a quicker run).

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use weft_controller::node_trust::NodeTrust;

use hyper_util::rt::TokioIo;
use tokio::net::{UnixListener, UnixStream};
use tonic::transport::{Endpoint, Server, Uri};
use weft_api::VirtualNetworkSpec;
use weft_controller::agent_api::{FabricSettings, NodeControlService};
use weft_controller::ipam::{self, ReserveRequest};
use weft_controller::model::{Attachment, AttachmentId, Model, NetworkKey, Node, PodRef};
use weft_controller::persist::RedbStore;
use weft_controller::southbound::{self, ReconcileOptions, SouthboundStats};
use weft_controller::store::{ModelStore, Persist};
use weft_openflow::session::{SessionConfig, SwitchListener};
use weft_proto::agent::v1 as pb;
use weft_proto::agent::v1::node_control_client::NodeControlClient;
use weft_proto::agent::v1::node_control_server::NodeControlServer;
use weft_testbed::{NetNs, OvsSandbox, privileged_unavailable_reason};

const NODE: &str = "bench";
const DPID: u64 = 0xbe;
const NET: &str = "bench/net";
/// Members of the attaching network: local ones, and ones on another node.
const LOCAL_MEMBERS: usize = 20;
const REMOTE_MEMBERS: usize = 30;
/// Attachments per other network and per other node.
const PER_NETWORK: usize = 100;
const PER_NODE: usize = 100;

fn node(name: &str, dpid: u64) -> Node {
    Node {
        name: name.into(),
        underlay_ip: IpAddr::V4(Ipv4Addr::new(192, 0, 2, (dpid % 250) as u8 + 1)),
        datapath_id: dpid,
        tunnel_ports: Default::default(),
    }
}

fn attachment(i: usize, network: &NetworkKey, node: &str, ip: IpAddr, ofport: u32) -> Attachment {
    Attachment {
        id: AttachmentId {
            container_id: format!("c{i}"),
            ifname: "net1".into(),
        },
        network: network.clone(),
        node: node.into(),
        ofport,
        mac: [2, 0, (i >> 16) as u8, (i >> 8) as u8, i as u8, 1],
        ips: vec![ip],
        pod: PodRef {
            namespace: network.namespace.clone(),
            name: format!("p{i}"),
            uid: format!("u{i}"),
        },
    }
}

/// `total` attachments: the attaching network's members, the rest in networks of
/// [`PER_NETWORK`] on nodes of [`PER_NODE`].
fn cluster(total: usize) -> Model {
    let mut m = Model::default();
    m.nodes.insert(NODE.into(), node(NODE, DPID));
    let bench = NetworkKey::parse(NET).expect("valid key");
    let spec = |subnet: String| VirtualNetworkSpec {
        subnet: Some(subnet),
        ..Default::default()
    };
    m.add_network(bench.clone(), &spec("10.255.0.0/16".into()))
        .expect("network");
    m.nodes.insert("peer".into(), node("peer", 1));
    let mut i = 0;
    for k in 0..LOCAL_MEMBERS + REMOTE_MEMBERS {
        let (on, port) = match k < LOCAL_MEMBERS {
            true => (NODE, 1000 + k as u32),
            false => ("peer", 1000 + k as u32),
        };
        let ip = IpAddr::V4(Ipv4Addr::new(10, 255, 1, k as u8 + 1));
        m.attachments.insert(attachment(i, &bench, on, ip, port));
        i += 1;
    }
    let rest = total.saturating_sub(i);
    for k in 0..rest {
        let (net, nd) = (k / PER_NETWORK, k / PER_NODE);
        let key = NetworkKey::new("tenant", format!("n{net}"));
        if !m.networks.contains_key(&key) {
            let subnet = format!("10.{}.{}.0/24", net >> 8, net & 0xff);
            m.add_network(key.clone(), &spec(subnet)).expect("network");
        }
        let name = format!("node{nd}");
        if !m.nodes.contains_key(&name) {
            m.nodes
                .insert(name.clone(), node(&name, 0x1000 + nd as u64));
        }
        let ip = IpAddr::V4(Ipv4Addr::new(
            10,
            (net >> 8) as u8,
            net as u8,
            (k % PER_NETWORK) as u8 + 2,
        ));
        m.attachments
            .insert(attachment(i, &key, &name, ip, 10 + (k % PER_NODE) as u32));
        i += 1;
    }
    m
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// The store alone, without persistence: one reservation and one attach, undone untimed.
fn store_writes(model: &Model, rounds: usize) -> (Duration, Duration) {
    let store = ModelStore::new(model.clone(), 1, None);
    let net = NetworkKey::parse(NET).expect("valid key");
    let (mut prep, mut att) = (Vec::new(), Vec::new());
    for r in 0..rounds {
        let id = AttachmentId {
            container_id: format!("w{r}"),
            ifname: "net1".into(),
        };
        let pod = PodRef {
            namespace: "bench".into(),
            name: format!("w{r}"),
            uid: format!("w{r}"),
        };
        let req = ReserveRequest {
            id: id.clone(),
            network: net.clone(),
            node: NODE.into(),
            pod: pod.clone(),
            mac: None,
            ips: vec![],
        };
        let t = Instant::now();
        let (res, _) = store
            .update_relaxed(|m| ipam::reserve(m, req))
            .expect("reserve");
        prep.push(t.elapsed());
        let a = Attachment {
            id: id.clone(),
            network: net.clone(),
            node: NODE.into(),
            ofport: 3000,
            mac: res.mac,
            ips: res.ips.iter().map(|n| n.addr()).collect(),
            pod,
        };
        let t = Instant::now();
        store.update(|m| m.attach(a).map(|_| ())).expect("attach");
        att.push(t.elapsed());
        store
            .update(|m| {
                ipam::release(m, &id);
                Ok(())
            })
            .expect("release");
    }
    (median(prep), median(att))
}

struct Fabric {
    rt: tokio::runtime::Runtime,
    store: Arc<ModelStore>,
    client: NodeControlClient<tonic::transport::Channel>,
}

/// A controller holding `model` (persisted in a fresh redb file, as standalone mode does), its
/// southbound listening in `ns` for the switch, NodeControl on a unix socket in `dir`.
fn start(model: Model, ns: &NetNs, dir: &Path, sb: &OvsSandbox) -> anyhow::Result<Fabric> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let db_path = dir.join("state.redb");
    let _ = std::fs::remove_file(&db_path);
    let db = RedbStore::open(&db_path)?;
    db.save(1, &Model::default(), &model, true)
        .map_err(anyhow::Error::msg)?;
    let store = Arc::new(ModelStore::new(model, 1, Some(Box::new(db))));
    let std_listener = ns.run_in(|| std::net::TcpListener::bind("127.0.0.1:0"))??;
    let port = std_listener.local_addr()?.port();
    let listener = {
        let _g = rt.enter();
        SwitchListener::from_std(std_listener, SessionConfig::default())?
    };
    let stats = Arc::new(SouthboundStats::default());
    rt.spawn(southbound::serve(
        listener,
        store.clone(),
        ReconcileOptions {
            switch_trust: NodeTrust::AnyCaller,
            ..ReconcileOptions::default()
        },
        stats,
    ));
    let socket = dir.join("agent.sock");
    let _ = std::fs::remove_file(&socket);
    let uds = {
        let _g = rt.enter();
        UnixListener::bind(&socket)?
    };
    let service = NodeControlService::new(store.clone(), FabricSettings::default())
        .trusting(NodeTrust::AnyCaller);
    rt.spawn(
        Server::builder()
            .add_service(NodeControlServer::new(service))
            .serve_with_incoming(tokio_stream::wrappers::UnixListenerStream::new(uds)),
    );
    let client = rt.block_on(async {
        let channel = Endpoint::from_static("http://controller.local")
            .connect_with_connector(tower::service_fn(move |_: Uri| {
                let socket = socket.clone();
                async move { UnixStream::connect(socket).await.map(TokioIo::new) }
            }))
            .await?;
        anyhow::Ok(NodeControlClient::new(channel))
    })?;
    sb.vsctl(&["set-controller", "br0", &format!("tcp:127.0.0.1:{port}")])?;
    let f = Fabric { rt, store, client };
    f.wait_confirmed(Duration::from_secs(60))?;
    Ok(f)
}

impl Fabric {
    fn wait_confirmed(&self, within: Duration) -> anyhow::Result<()> {
        let version = self.store.snapshot().version;
        self.rt
            .block_on(
                self.store
                    .wait_confirmed(&[NODE.to_string()], version, within),
            )
            .map_err(anyhow::Error::from)
    }

    /// One ADD (timed) and its DEL (not timed, confirmed before the next ADD).
    fn add(&mut self, r: usize) -> anyhow::Result<Duration> {
        let id = weft_proto::common::v1::AttachmentId {
            container_id: format!("add{r}"),
            ifname: "net1".into(),
        };
        let pod = weft_proto::common::v1::PodRef {
            namespace: "bench".into(),
            name: format!("add{r}"),
            uid: format!("add-uid{r}"),
        };
        let client = &mut self.client;
        let took = self.rt.block_on(async {
            let t = Instant::now();
            client
                .prepare_attachment(pb::PrepareRequest {
                    node_name: NODE.into(),
                    network: NET.into(),
                    id: Some(id.clone()),
                    pod: Some(pod.clone()),
                    mac: String::new(),
                    ips: vec![],
                })
                .await?;
            client
                .attach(pb::AttachRequest {
                    node_name: NODE.into(),
                    network: NET.into(),
                    id: Some(id.clone()),
                    pod: Some(pod),
                    ofport: 2000,
                })
                .await?;
            let took = t.elapsed();
            client
                .detach(pb::DetachRequest {
                    node_name: NODE.into(),
                    id: Some(id),
                })
                .await?;
            anyhow::Ok(took)
        })?;
        self.wait_confirmed(Duration::from_secs(10))?;
        Ok(took)
    }
}

fn main() -> anyhow::Result<()> {
    if std::env::args().any(|a| a == "--list") {
        return Ok(());
    }
    if let Some(why) = privileged_unavailable_reason() {
        println!(r#"{{"figure":"cni_add_cluster_size","skipped":{why:?}}}"#);
        return Ok(());
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rounds: usize = std::env::var("WEFT_ADD_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let dir = std::env::temp_dir().join(format!("weft-cni-add-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let ns = NetNs::new("wadd")?;
    let sb = OvsSandbox::start_in_netns(&ns)?;
    sb.add_bridge_netdev("br0")?;
    sb.vsctl(&[
        "set",
        "bridge",
        "br0",
        &format!("other_config:datapath-id={DPID:016x}"),
    ])?;

    let mut medians = Vec::new();
    for total in [100usize, 100_000] {
        let model = cluster(total);
        let (prep_w, attach_w) = store_writes(&model, rounds);
        println!(
            r#"{{"figure":"store_write","attachments":{},"reserve_median_us":{:.1},"attach_median_us":{:.1}}}"#,
            model.attachments.len(),
            us(prep_w),
            us(attach_w)
        );
        let mut fabric = start(model, &ns, &dir, &sb)?;
        // Warm up: connection, first pushes, allocator.
        for r in 0..10 {
            fabric.add(1_000_000 + r)?;
        }
        let times = (0..rounds)
            .map(|r| fabric.add(r))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let m = median(times);
        println!(
            r#"{{"figure":"cni_add","attachments":{total},"rounds":{rounds},"median_us":{:.0}}}"#,
            us(m)
        );
        medians.push(m);
        let _ = sb.vsctl(&["del-controller", "br0"]);
        fabric.rt.shutdown_timeout(Duration::from_secs(2));
    }
    let ratio = medians[1].as_secs_f64() / medians[0].as_secs_f64();
    println!(
        r#"{{"figure":"cni_add_cluster_size","median_100_us":{:.0},"median_100k_us":{:.0},"ratio":{ratio:.3},"target":1.3,"pass":{}}}"#,
        us(medians[0]),
        us(medians[1]),
        ratio <= 1.3
    );
    drop(sb);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
