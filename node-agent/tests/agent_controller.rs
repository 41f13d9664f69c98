//! The agent's controller link: a controller that goes away (tunnels stay, nothing is rebuilt)
//! and comes back on the same address (re-register, resync to the new state), streams cut
//! mid-way, and mutual TLS. Needs root and Open vSwitch.

mod agent_support;

use agent_support::Fabric;
use std::time::Duration;
use weft_agent::link::TlsFiles;
use weft_agent::tunnels::tunnel_ifname;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_down_then_up_reconnects_and_resyncs() {
    let Some(mut f) = Fabric::new("controller_down_then_up_reconnects_and_resyncs", 3).await else {
        return;
    };
    f.start_all().await;
    f.wait_full_mesh(&[0, 1, 2]).await;
    let addr = f.addr();
    let before: Vec<_> = f.nodes.iter().map(|n| n.devices()).collect();

    // The controller dies; node-c leaves while it is away.
    f.nodes[2].stop_agent().await;
    drop(f.server.take());
    for n in &f.nodes[..2] {
        n.wait_status("disconnected", |s| !s.connected).await;
    }
    f.ctl.remove_node("node-c");
    tokio::time::sleep(Duration::from_secs(2)).await;
    for (i, n) in f.nodes[..2].iter().enumerate() {
        assert_eq!(
            n.devices(),
            before[i],
            "{}: tunnels changed while the controller was away",
            n.name
        );
        let m = n.metrics.render();
        assert!(m.contains("weft_agent_controller_connected 0\n"), "{m}");
        assert!(
            !m.contains("weft_agent_controller_failures_total 0\n"),
            "{m}"
        );
    }

    // It comes back on the same address: both agents re-register and converge on the new state.
    let registers = f.ctl.registers().len();
    f.server = Some(f.ctl.serve(addr).await);
    for n in &f.nodes[..2] {
        n.wait_status("reconnected", |s| s.connected && s.sessions == 2)
            .await;
    }
    f.nodes[0].wait_mesh(&["node-b"]).await;
    f.nodes[1].wait_mesh(&["node-a"]).await;
    assert!(f.ctl.registers().len() >= registers + 2);
    let ab = tunnel_ifname("node-b");
    assert_eq!(
        f.nodes[0].devices()[&ab],
        before[0][&ab],
        "a-b kept its device"
    );
    // The full port report was sent again on the new session.
    for n in &f.nodes[..2] {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while f.ctl.report(&n.name).len() != 1 {
            assert!(
                std::time::Instant::now() < deadline,
                "{}: {:?}",
                n.name,
                f.ctl.report(&n.name)
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(
            n.metrics
                .render()
                .contains("weft_agent_controller_sessions_total 2\n")
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_cut_mid_way_are_resumed_without_rebuilding() {
    let Some(mut f) = Fabric::new("streams_cut_mid_way_are_resumed_without_rebuilding", 2).await
    else {
        return;
    };
    // The first stream of each agent ends with an error right after its first message.
    f.ctl.drop_next_streams(2);
    f.start_all().await;
    f.wait_full_mesh(&[0, 1]).await;
    for n in &f.nodes {
        n.wait_status("resumed", |s| s.connected && s.sessions >= 2 && s.converged)
            .await;
    }
    let before: Vec<_> = f
        .nodes
        .iter()
        .map(|n| (n.devices(), n.tunnel_ports()))
        .collect();
    let reports: Vec<u64> = f.nodes.iter().map(|n| n.status().reports_sent).collect();

    // Cut every stream again: the agents come back, resync, and rebuild nothing.
    f.ctl.cut_streams();
    for n in &f.nodes {
        n.wait_status("resumed again", |s| {
            s.connected && s.sessions >= 3 && s.converged
        })
        .await;
    }
    for (i, n) in f.nodes.iter().enumerate() {
        assert_eq!((n.devices(), n.tunnel_ports()), before[i], "{}", n.name);
        let st = n
            .wait_status("report resent", |s| s.reports_sent > reports[i])
            .await;
        assert!(st.problems.is_empty());
    }
}

/// CA, server and client certificates for mutual TLS.
struct Pki {
    dir: tempfile::TempDir,
    ca: String,
    server: (String, String),
}

fn pki() -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issue = |name: &str| {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec![name.to_string()])
            .unwrap()
            .signed_by(&key, &ca, &ca_key)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    };
    let dir = tempfile::tempdir().unwrap();
    let (client_cert, client_key) = issue("node-a");
    std::fs::write(dir.path().join("ca.pem"), ca.pem()).unwrap();
    std::fs::write(dir.path().join("client.pem"), client_cert).unwrap();
    std::fs::write(dir.path().join("client.key"), client_key).unwrap();
    Pki {
        ca: ca.pem(),
        server: issue("controller.weft.test"),
        dir,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_to_the_controller() {
    use tonic::transport::{Certificate, Identity, ServerTlsConfig};
    let Some(mut f) = Fabric::new("mutual_tls_to_the_controller", 2).await else {
        return;
    };
    let pki = pki();
    let tls = ServerTlsConfig::new()
        .identity(Identity::from_pem(&pki.server.0, &pki.server.1))
        .client_ca_root(Certificate::from_pem(&pki.ca));
    let server = f.ctl.serve_tls("127.0.0.1:0".parse().unwrap(), tls).await;
    let url = format!("https://{}", server.addr);
    let files = |client: bool| TlsFiles {
        ca: Some(pki.dir.path().join("ca.pem")),
        cert: client.then(|| pki.dir.path().join("client.pem")),
        key: client.then(|| pki.dir.path().join("client.key")),
        domain: Some("controller.weft.test".into()),
    };

    // Without a client certificate the controller refuses the agent: it keeps retrying and
    // changes nothing.
    let mut cfg = f.nodes[1].config(&url);
    cfg.link.target.tls = Some(files(false));
    f.nodes[1].start_agent_with(cfg).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let st = f.nodes[1].status();
    assert!(!st.connected && st.sessions == 0, "{st:?}");
    assert!(f.ctl.registers().is_empty());
    assert!(
        !f.nodes[1]
            .metrics
            .render()
            .contains("weft_agent_controller_failures_total 0\n")
    );
    f.nodes[1].stop_agent().await;

    for n in &mut f.nodes {
        let mut cfg = n.config(&url);
        cfg.link.target.tls = Some(files(true));
        n.start_agent_with(cfg).await;
    }
    f.wait_full_mesh(&[0, 1]).await;
    assert_eq!(f.ctl.registers().len(), 2);
    drop(server);
}
