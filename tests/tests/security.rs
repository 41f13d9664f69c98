//! A lab built with the defaults is secured: from a node's namespace, a plaintext OpenFlow HELLO
//! to the controller gets no OpenFlow answer, plaintext gRPC gets nothing, a certificate from
//! another CA gets no TLS session, and node1's own certificate cannot act for node2. Traffic
//! between pods carries on throughout.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};
use weft_proto::agent::v1 as pb;
use weft_proto::agent::v1::node_control_client::NodeControlClient;
use weft_proto::error_detail::{self, ErrorReason};
use weft_security::{Ca, Principal};
use weft_tests::{Lab, in_netns};

/// A plaintext OFPT_HELLO (OpenFlow 1.3, xid 1).
const HELLO: [u8; 8] = [4, 0, 0, 8, 0, 0, 0, 1];

/// What the controller sends back to a plaintext HELLO within a second (empty: nothing).
fn answer_to_plain_hello(ns: &str, controller: String) -> Vec<u8> {
    in_netns(ns, move || {
        let mut s = TcpStream::connect((controller.as_str(), 6653)).expect("connect 6653");
        s.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
        s.write_all(&HELLO).unwrap();
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf);
        buf
    })
}

/// `Register` for `node` from namespace `ns`, over `url` with the given TLS (or none).
fn register(
    ns: &str,
    url: String,
    tls: Option<ClientTlsConfig>,
    node: &'static str,
) -> Result<(), tonic::Status> {
    in_netns(ns, move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let mut ep = Channel::from_shared(url).unwrap();
            if let Some(t) = tls {
                ep = ep.tls_config(t).unwrap();
            }
            let mut c =
                NodeControlClient::new(ep.connect_timeout(Duration::from_secs(2)).connect_lazy());
            c.register(pb::RegisterRequest {
                node_name: node.into(),
                underlay_ip: "10.255.0.99".into(),
                datapath_id: weft_types::DatapathId::for_node(node).0,
                agent_version: "attacker".into(),
            })
            .await
            .map(|_| ())
        })
    })
}

#[test]
fn a_default_lab_refuses_everyone_who_is_not_the_node() {
    let Some(lab) = Lab::up("security", 2) else {
        return;
    };
    lab.net("sec", Some("10.70.0.0/24"));
    let a = lab.pod("a", "node1", "sec", None);
    let b = lab.pod("b", "node2", "sec", None);
    let b_ip = Lab::ip_of(&b, 0);
    assert!(lab.ping("a", &b_ip, 2), "pods talk before the attacks");
    let _ = a;

    let status = lab.json(&["lab", "status"]);
    let controller = status["controller"]["address"]
        .as_str()
        .unwrap()
        .to_string();
    let pki = std::path::Path::new(status["dir"].as_str().unwrap()).join("pki");
    let read = |f: &str| std::fs::read(pki.join(f)).unwrap();
    let node1 = lab.node_ns("node1");
    let url = format!("https://{controller}:7070");

    // OpenFlow: no HELLO (nor anything else of OpenFlow) for a plaintext peer.
    let got = answer_to_plain_hello(&node1, controller.clone());
    assert!(
        !got.starts_with(&[4, 0]),
        "a plaintext peer got an OpenFlow HELLO: {got:?}"
    );

    // gRPC in plaintext: no service.
    let plain = register(&node1, format!("http://{controller}:7070"), None, "node1");
    assert!(plain.is_err(), "plaintext gRPC was served");

    // A certificate for node1 from another CA: no TLS session.
    let stranger = Ca::new("not the lab's").unwrap();
    let forged = stranger
        .issue(&Principal::Node("node1".into()), &[], &[])
        .unwrap();
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(read("ca.pem")))
        .identity(Identity::from_pem(forged.cert_pem, forged.key_pem));
    let s = register(&node1, url.clone(), Some(tls), "node1").unwrap_err();
    assert!(refused_by_tls(&s), "{s:?}");

    // node1's real certificate, acting for node2.
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(read("ca.pem")))
        .identity(Identity::from_pem(read("node1.pem"), read("node1.key")));
    let s = register(&node1, url, Some(tls), "node2").unwrap_err();
    assert_eq!(s.code(), tonic::Code::PermissionDenied, "{s:?}");
    assert_eq!(error_detail::reason(&s), Some(ErrorReason::NodeMismatch));

    let status = lab.json(&["lab", "status"]);
    assert_eq!(status["controller"]["agentCallsRefused"], 1, "{status}");
    assert_eq!(status["controller"]["switchesRefused"], 0, "{status}");
    assert!(
        lab.log_tail("controller", None)
            .contains("agent call refused"),
        "the refusal is logged"
    );
    // node2 kept its underlay address and its pod its connectivity.
    assert!(lab.ping("a", &b_ip, 2), "pods talk after the attacks");
}

/// The call never reached the service: the connection failed (the TLS layer refused it; with
/// TLS 1.3 the client may see only the closed connection), no gRPC status came back.
fn refused_by_tls(s: &tonic::Status) -> bool {
    std::error::Error::source(s).is_some() && error_detail::reason(s).is_none()
}
