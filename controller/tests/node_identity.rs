//! Agents and switches must be the node they act for. The controller's agent API (mutual TLS)
//! and OpenFlow listener (TLS) run on loopback with certificates from a test CA; a client holding
//! node1's certificate tries each attack that worked while any caller could claim any node. Each
//! is refused, counted, and changes nothing.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use tokio_util::codec::Framed;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity, Server, ServerTlsConfig};
use weft_api::VirtualNetworkSpec;
use weft_controller::agent_api::{FabricSettings, NodeControlService};
use weft_controller::model::{Model, NetworkKey};
use weft_controller::southbound::{self, ReconcileOptions, SouthboundStats};
use weft_controller::store::ModelStore;
use weft_openflow::codec::{OfCodec, Outgoing};
use weft_openflow::session::{SessionConfig, SwitchListener};
use weft_openflow::wire::{FeaturesReply, Hello, Message, MultipartReply, MultipartReplyBody};
use weft_proto::agent::v1 as pb;
use weft_proto::agent::v1::node_control_client::NodeControlClient;
use weft_proto::agent::v1::node_control_server::NodeControlServer;
use weft_proto::common::v1 as common;
use weft_proto::error_detail::{self, ErrorReason};
use weft_security::{Ca, Issued, Principal};
use weft_types::DatapathId;

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

struct Pki {
    ca: Ca,
    controller: Issued,
}

fn pki() -> Pki {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let ca = Ca::new("test cluster CA").unwrap();
    let controller = ca
        .issue(&Principal::Controller("c1".into()), &[], &[LOOPBACK])
        .unwrap();
    Pki { ca, controller }
}

fn node_cert(ca: &Ca, node: &str) -> Issued {
    ca.issue(&Principal::Node(node.into()), &[], &[]).unwrap()
}

fn store() -> Arc<ModelStore> {
    let store = Arc::new(ModelStore::new(Model::default(), 0, None));
    let spec = VirtualNetworkSpec {
        subnet: Some("10.1.0.0/24".into()),
        ..Default::default()
    };
    store
        .update(|m| {
            m.add_network(NetworkKey::new("ns", "net"), &spec)
                .map(|_| ())
        })
        .unwrap();
    store
}

/// The agent API over mutual TLS on loopback, as the controller binary serves it.
async fn serve_agent_api(pki: &Pki, svc: NodeControlService) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind((LOOPBACK, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let tls = ServerTlsConfig::new()
        .identity(Identity::from_pem(
            &pki.controller.cert_pem,
            &pki.controller.key_pem,
        ))
        .client_ca_root(Certificate::from_pem(pki.ca.cert_pem()))
        .client_auth_optional(true);
    let server = Server::builder()
        .tls_config(tls)
        .unwrap()
        .add_service(NodeControlServer::new(svc))
        .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener));
    tokio::spawn(server);
    addr
}

async fn client(pki: &Pki, addr: SocketAddr, cert: Option<&Issued>) -> NodeControlClient<Channel> {
    let mut tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pki.ca.cert_pem()));
    if let Some(c) = cert {
        tls = tls.identity(Identity::from_pem(&c.cert_pem, &c.key_pem));
    }
    let ch = Channel::from_shared(format!("https://{addr}"))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect_lazy();
    NodeControlClient::new(ch)
}

fn register(node: &str, underlay: &str) -> pb::RegisterRequest {
    pb::RegisterRequest {
        node_name: node.into(),
        underlay_ip: underlay.into(),
        datapath_id: DatapathId::for_node(node).0,
        agent_version: "test".into(),
    }
}

fn id(cid: &str) -> common::AttachmentId {
    common::AttachmentId {
        container_id: cid.into(),
        ifname: "net1".into(),
    }
}

fn pod(name: &str) -> common::PodRef {
    common::PodRef {
        namespace: "ns".into(),
        name: name.into(),
        uid: format!("uid-{name}"),
    }
}

fn refused_as_other_node(r: Result<impl std::fmt::Debug, tonic::Status>, what: &str) {
    let s = r.expect_err(what);
    assert_eq!(s.code(), tonic::Code::PermissionDenied, "{what}: {s:?}");
    assert_eq!(
        error_detail::reason(&s),
        Some(ErrorReason::NodeMismatch),
        "{what}"
    );
}

#[tokio::test]
async fn a_node_certificate_acts_for_its_node_only() {
    let pki = pki();
    let store = store();
    let stats = Arc::new(SouthboundStats::default());
    let settings = FabricSettings {
        confirm_timeout: Duration::from_millis(100),
        ..FabricSettings::default()
    };
    let svc = NodeControlService::new(store.clone(), settings).counting_in(stats.clone());
    let addr = serve_agent_api(&pki, svc).await;
    let (n1, n2) = (node_cert(&pki.ca, "node1"), node_cert(&pki.ca, "node2"));
    let mut node1 = client(&pki, addr, Some(&n1)).await;
    let mut node2 = client(&pki, addr, Some(&n2)).await;

    // Each node does its own work.
    node1
        .register(register("node1", "192.0.2.1"))
        .await
        .unwrap();
    node2
        .register(register("node2", "192.0.2.2"))
        .await
        .unwrap();
    node2
        .report_ports(pb::PortReport {
            node_name: "node2".into(),
            ports: vec![pb::PortState {
                name: "vx-node1".into(),
                ofport: 7,
                peer_node: "node1".into(),
                ..Default::default()
            }],
        })
        .await
        .unwrap();
    node2
        .prepare_attachment(pb::PrepareRequest {
            node_name: "node2".into(),
            network: "ns/net".into(),
            id: Some(id("victim")),
            pod: Some(pod("victim")),
            ..Default::default()
        })
        .await
        .unwrap();
    // No switch confirms in this test: Attach commits, then reports the flows unconfirmed.
    let attached = node2
        .attach(pb::AttachRequest {
            node_name: "node2".into(),
            network: "ns/net".into(),
            id: Some(id("victim")),
            pod: Some(pod("victim")),
            ofport: 40000,
        })
        .await;
    assert_eq!(
        attached.map_err(|s| error_detail::reason(&s)).unwrap_err(),
        Some(ErrorReason::FlowsNotConfirmed)
    );
    let before = store.snapshot();
    assert!(before.model.attachments.get(&victim()).is_some());

    // (a) Register as node2 with another underlay address.
    refused_as_other_node(
        node1.register(register("node2", "192.0.2.66")).await,
        "register as node2",
    );
    // ...or as itself with node2's datapath id, to be served node2's flows.
    let mut stolen = register("node1", "192.0.2.1");
    stolen.datapath_id = DatapathId::for_node("node2").0;
    refused_as_other_node(node1.register(stolen).await, "node1 with node2's dpid");
    // (b) Detach node2's attachment, in node2's name or its own.
    for claimed in ["node2", "node1"] {
        let r = node1
            .detach(pb::DetachRequest {
                node_name: claimed.into(),
                id: Some(id("victim")),
            })
            .await;
        refused_as_other_node(r, &format!("detach as {claimed}"));
    }
    // (c) Prepare and attach on node2, taking the victim's port number.
    refused_as_other_node(
        node1
            .prepare_attachment(pb::PrepareRequest {
                node_name: "node2".into(),
                network: "ns/net".into(),
                id: Some(id("thief")),
                pod: Some(pod("thief")),
                ..Default::default()
            })
            .await,
        "prepare on node2",
    );
    refused_as_other_node(
        node1
            .attach(pb::AttachRequest {
                node_name: "node2".into(),
                network: "ns/net".into(),
                id: Some(id("victim")),
                pod: Some(pod("victim")),
                ofport: 40000,
            })
            .await,
        "attach on node2",
    );
    // (d) Report node2's tunnel on another port.
    refused_as_other_node(
        node1
            .report_ports(pb::PortReport {
                node_name: "node2".into(),
                ports: vec![pb::PortState {
                    name: "vx-node1".into(),
                    ofport: 999,
                    peer_node: "node1".into(),
                    ..Default::default()
                }],
            })
            .await,
        "report node2's ports",
    );
    // Reading node2's configuration is node2's too.
    refused_as_other_node(
        node1
            .watch_node_config(pb::WatchNodeConfigRequest {
                node_name: "node2".into(),
            })
            .await,
        "watch node2",
    );

    let after = store.snapshot();
    assert_eq!(
        after.version, before.version,
        "no refused call changed the model"
    );
    let n2 = &after.model.nodes["node2"];
    assert_eq!(n2.underlay_ip.to_string(), "192.0.2.2");
    assert_eq!(n2.tunnel_ports.get("node1"), Some(&7));
    assert!(after.model.attachments.get(&victim()).is_some());
    assert_eq!(stats.agent_calls_refused.load(Ordering::Relaxed), 8);

    // Without a certificate: unauthenticated. With one from another CA: no TLS session at all.
    let mut anon = client(&pki, addr, None).await;
    let s = anon
        .register(register("node1", "192.0.2.1"))
        .await
        .unwrap_err();
    assert_eq!(s.code(), tonic::Code::Unauthenticated, "{s:?}");
    let stranger = node_cert(&Ca::new("other CA").unwrap(), "node1");
    let mut forged = client(&pki, addr, Some(&stranger)).await;
    let s = forged
        .register(register("node1", "192.0.2.1"))
        .await
        .unwrap_err();
    assert!(refused_by_tls(&s), "{s:?}");
    assert_eq!(store.snapshot().version, before.version);

    // node2 itself may detach its pod.
    node2
        .detach(pb::DetachRequest {
            node_name: "node2".into(),
            id: Some(id("victim")),
        })
        .await
        .unwrap();
    assert!(store.snapshot().model.attachments.get(&victim()).is_none());
}

fn victim() -> weft_controller::model::AttachmentId {
    weft_controller::model::AttachmentId {
        container_id: "victim".into(),
        ifname: "net1".into(),
    }
}

/// A fake switch over TLS with `cert`, claiming `dpid`: does the handshake, then returns the
/// type numbers of every message the controller sends until it closes the session or goes quiet.
async fn fake_switch(addr: SocketAddr, pki: &Pki, cert: &Issued, dpid: u64) -> (Vec<u8>, bool) {
    let tls = weft_security::tls::client_config(
        pki.ca.cert_pem().as_bytes(),
        cert.cert_pem.as_bytes(),
        cert.key_pem.as_bytes(),
    )
    .unwrap();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::IpAddress(LOOPBACK.into());
    let io = tokio_rustls::TlsConnector::from(tls)
        .connect(name, tcp)
        .await
        .unwrap();
    let mut sw = Framed::new(io, OfCodec);
    let send = |xid, message| Outgoing { xid, message };
    sw.send(send(0, Message::Hello(Hello::with_versions(&[4]))))
        .await
        .unwrap();
    let mut after_handshake = Vec::new();
    let mut handshaken = false;
    loop {
        let next = tokio::time::timeout(Duration::from_secs(2), sw.next()).await;
        let Ok(Some(Ok(f))) = next else {
            // Closed (or silent for 2 s, which a served switch never is: it is read back).
            return (after_handshake, matches!(next, Ok(None) | Ok(Some(Err(_)))));
        };
        let xid = f.header.xid;
        let Ok(m) = f.message else { continue };
        if handshaken {
            after_handshake.push(m.msg_type());
        }
        match m {
            Message::FeaturesRequest => {
                let features = FeaturesReply {
                    datapath_id: dpid,
                    n_buffers: 0,
                    n_tables: 254,
                    auxiliary_id: 0,
                    capabilities: 0,
                    reserved: 0,
                };
                sw.send(send(xid, Message::FeaturesReply(features)))
                    .await
                    .unwrap();
            }
            Message::MultipartRequest(_) if !handshaken => {
                handshaken = true;
                let reply = MultipartReply {
                    flags: 0,
                    body: MultipartReplyBody::PortDesc(Vec::new()),
                };
                sw.send(send(xid, Message::MultipartReply(reply)))
                    .await
                    .unwrap();
            }
            Message::EchoRequest(d) => sw.send(send(xid, Message::EchoReply(d))).await.unwrap(),
            _ => {}
        }
    }
}

#[tokio::test]
async fn a_switch_gets_only_its_own_node_flows() {
    let pki = pki();
    let store = store();
    for node in ["node1", "node2"] {
        store
            .update(|m| {
                m.nodes.insert(
                    node.into(),
                    weft_controller::model::Node {
                        name: node.into(),
                        underlay_ip: LOOPBACK,
                        datapath_id: DatapathId::for_node(node).0,
                        tunnel_ports: Default::default(),
                    },
                );
                Ok(())
            })
            .unwrap();
    }
    let server = weft_security::tls::server_config(
        pki.controller.cert_pem.as_bytes(),
        pki.controller.key_pem.as_bytes(),
        pki.ca.cert_pem().as_bytes(),
    )
    .unwrap();
    let listener = SwitchListener::bind_tls((LOOPBACK, 0).into(), server, SessionConfig::default())
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let stats = Arc::new(SouthboundStats::default());
    tokio::spawn(southbound::serve(
        listener,
        store,
        ReconcileOptions::default(),
        stats.clone(),
    ));
    let n1 = node_cert(&pki.ca, "node1");

    // (e) node1's certificate, node2's datapath id: the session closes before any request for
    // the pipeline (no read-back, no flow).
    let (sent, closed) = fake_switch(addr, &pki, &n1, DatapathId::for_node("node2").0).await;
    assert!(closed, "the impostor's session was closed");
    assert!(sent.is_empty(), "the impostor was sent {sent:?}");
    assert_eq!(stats.switches_refused.load(Ordering::Relaxed), 1);

    // The same certificate with its own datapath id is served: read back, then its flows.
    let (sent, _) = fake_switch(addr, &pki, &n1, DatapathId::for_node("node1").0).await;
    assert!(!sent.is_empty(), "node1's own switch is served");
    assert_eq!(stats.switches_refused.load(Ordering::Relaxed), 1);
}

/// The call never reached the service: the connection failed (the TLS layer refused it; with
/// TLS 1.3 the client may see only the closed connection), no gRPC status came back.
fn refused_by_tls(s: &tonic::Status) -> bool {
    std::error::Error::source(s).is_some() && error_detail::reason(s).is_none()
}
