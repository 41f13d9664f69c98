//! Session behaviour against a scripted switch on loopback: handshake, multipart merging, batch
//! error routing, keepalive, garbage and disconnects, TLS.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_util::codec::Framed;
use weft_openflow::codec::{OfCodec, Outgoing};
use weft_openflow::session::{SessionConfig, SessionError, SwitchEvent, SwitchListener};
use weft_openflow::wire::{
    ErrorCode, ErrorMsg, FeaturesReply, FlowStats, FlowStatsRequest, Hello, HelloElement, Match,
    Message, MultipartReply, MultipartReplyBody, MultipartRequestBody, PortDesc, PortReason,
    PortStatus,
};

type Fake = Framed<TcpStream, OfCodec>;

fn fast() -> SessionConfig {
    SessionConfig {
        echo_interval: Duration::from_millis(100),
        dead_after: Duration::from_millis(400),
        handshake_timeout: Duration::from_secs(5),
        request_timeout: Duration::from_secs(5),
        ..SessionConfig::default()
    }
}

fn port(no: u32, name: &str) -> PortDesc {
    PortDesc {
        port_no: no,
        hw_addr: [2, 0, 0, 0, 0, no as u8],
        name: name.to_string(),
        config: 0,
        state: 4, // OFPPS_LIVE
        curr: 0,
        advertised: 0,
        supported: 0,
        peer: 0,
        curr_speed: 0,
        max_speed: 0,
    }
}

async fn send<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    fake: &mut Framed<T, OfCodec>,
    xid: u32,
    message: Message,
) {
    fake.send(Outgoing { xid, message }).await.unwrap();
}

async fn recv(fake: &mut Fake) -> (u32, Message) {
    let f = tokio::time::timeout(Duration::from_secs(5), fake.next())
        .await
        .expect("controller said nothing")
        .expect("stream ended")
        .unwrap();
    (f.header.xid, f.message.unwrap())
}

/// Receives, answering echo requests, until a non-echo message arrives.
async fn recv_skip_echo(fake: &mut Fake) -> (u32, Message) {
    loop {
        match recv(fake).await {
            (xid, Message::EchoRequest(d)) => send(fake, xid, Message::EchoReply(d)).await,
            other => return other,
        }
    }
}

/// Plays the switch side of the handshake; PORT_DESC comes in two parts joined by MORE.
async fn fake_handshake(fake: &mut Fake, dpid: u64) {
    send(fake, 1, Message::Hello(Hello::with_versions(&[1, 4, 5]))).await;
    let (_, hello) = recv(fake).await;
    assert!(matches!(hello, Message::Hello(h) if h.supports(4) && !h.supports(1)));
    let (xid, m) = recv(fake).await;
    assert_eq!(m, Message::FeaturesRequest);
    let features = FeaturesReply {
        datapath_id: dpid,
        n_buffers: 0,
        n_tables: 254,
        auxiliary_id: 0,
        capabilities: 0,
        reserved: 0,
    };
    send(fake, xid, Message::FeaturesReply(features)).await;
    let (_, m) = recv(fake).await;
    assert!(matches!(m, Message::SetConfig(c) if c.miss_send_len == 128));
    let (xid, m) = recv(fake).await;
    assert!(
        matches!(m, Message::MultipartRequest(ref r) if r.body == MultipartRequestBody::PortDesc)
    );
    let part = |flags, ports| {
        Message::MultipartReply(MultipartReply {
            flags,
            body: MultipartReplyBody::PortDesc(ports),
        })
    };
    send(fake, xid, part(1, vec![port(1, "p1")])).await;
    send(fake, xid, part(0, vec![port(2, "p2"), port(3, "p3")])).await;
}

async fn pair(config: SessionConfig) -> (weft_openflow::session::Switch, Fake) {
    let listener = SwitchListener::bind("127.0.0.1:0".parse().unwrap(), config)
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let fake = tokio::spawn(async move {
        let mut fake = Framed::new(TcpStream::connect(addr).await.unwrap(), OfCodec);
        fake_handshake(&mut fake, 0xabcd).await;
        fake
    });
    let sw = listener.accept_switch().await.unwrap();
    (sw, fake.await.unwrap())
}

fn flow_stat(cookie: u64) -> FlowStats {
    FlowStats {
        table_id: 0,
        duration_sec: 1,
        duration_nsec: 2,
        priority: 100,
        idle_timeout: 0,
        hard_timeout: 0,
        flags: Default::default(),
        cookie,
        packet_count: 0,
        byte_count: 0,
        r#match: Match::default(),
        instructions: vec![],
    }
}

#[tokio::test]
async fn handshake_learns_dpid_and_merges_port_desc_parts() {
    let (sw, _fake) = pair(fast()).await;
    assert_eq!(sw.datapath_id(), 0xabcd);
    assert_eq!(sw.handle.datapath_id(), 0xabcd);
    let names: Vec<_> = sw.ports.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["p1", "p2", "p3"]);
}

#[tokio::test]
async fn multipart_more_parts_are_merged_and_errors_route_to_their_request() {
    let (sw, mut fake) = pair(fast()).await;
    let h = sw.handle.clone();
    let stats = tokio::spawn(async move { h.flow_stats(FlowStatsRequest::all()).await });
    let (xid, _) = recv_skip_echo(&mut fake).await;
    for (i, more) in [(0u64, 1u16), (1, 1), (2, 0)] {
        let reply = MultipartReply {
            flags: more,
            body: MultipartReplyBody::Flow(vec![flow_stat(i * 10), flow_stat(i * 10 + 1)]),
        };
        send(&mut fake, xid, Message::MultipartReply(reply)).await;
    }
    let got = stats.await.unwrap().unwrap();
    let cookies: Vec<u64> = got.iter().map(|f| f.cookie).collect();
    assert_eq!(cookies, [0, 1, 10, 11, 20, 21]);

    let h = sw.handle.clone();
    let req = tokio::spawn(async move { h.request(Message::GetConfigRequest).await });
    let (xid, _) = recv_skip_echo(&mut fake).await;
    let err = ErrorMsg {
        code: ErrorCode::from_wire(1, 1),
        data: vec![],
    };
    send(&mut fake, xid, Message::Error(err.clone())).await;
    match req.await.unwrap() {
        Err(SessionError::Switch(e)) => assert_eq!(e, err),
        other => panic!("expected the switch error, got {other:?}"),
    }
}

#[tokio::test]
async fn batch_reports_which_message_failed_once_the_barrier_returns() {
    let (sw, mut fake) = pair(fast()).await;
    let h = sw.handle.clone();
    let batch = tokio::spawn(async move {
        h.batch(vec![
            Message::EchoReply(vec![1]),
            Message::EchoReply(vec![2]),
            Message::EchoReply(vec![3]),
        ])
        .await
    });
    let mut xids = Vec::new();
    for _ in 0..3 {
        xids.push(recv_skip_echo(&mut fake).await.0);
    }
    let (bxid, m) = recv_skip_echo(&mut fake).await;
    assert_eq!(m, Message::BarrierRequest);
    let err = ErrorMsg {
        code: ErrorCode::from_wire(5, 1),
        data: vec![],
    };
    send(&mut fake, xids[1], Message::Error(err.clone())).await;
    send(&mut fake, bxid, Message::BarrierReply).await;
    let report = batch.await.unwrap().unwrap();
    assert_eq!(report.xids, xids);
    assert_eq!(report.errors, vec![(1, err)]);
    assert!(matches!(
        report.into_result(),
        Err(SessionError::Rejected { index: 1, .. })
    ));
}

#[tokio::test]
async fn port_status_arrives_as_an_event() {
    let (mut sw, mut fake) = pair(fast()).await;
    let ps = PortStatus {
        reason: PortReason::Add,
        desc: port(9, "new"),
    };
    send(&mut fake, 0, Message::PortStatus(ps.clone())).await;
    let ev = tokio::time::timeout(Duration::from_secs(5), sw.events.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ev, SwitchEvent::PortStatus(ps));
}

#[tokio::test]
async fn echo_keeps_a_quiet_switch_alive_and_a_silent_one_is_declared_dead() {
    let (mut sw, mut fake) = pair(fast()).await;
    // Answer echoes for well over dead_after: the session must stay up.
    let until = tokio::time::Instant::now() + Duration::from_millis(1000);
    let mut echoes = 0;
    while tokio::time::Instant::now() < until {
        if let Ok(Some(Ok(f))) = tokio::time::timeout(Duration::from_millis(50), fake.next()).await
            && let Ok(Message::EchoRequest(d)) = f.message
        {
            echoes += 1;
            send(&mut fake, f.header.xid, Message::EchoReply(d)).await;
        }
    }
    assert!(echoes >= 3, "controller sent only {echoes} echo requests");
    assert!(!sw.handle.is_closed());
    // Now go silent (keep the socket open): noticed within dead_after plus a tick.
    // Generous bound (dead_after is 400 ms) so a loaded CI machine does not flake.
    let ev = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match sw.events.recv().await {
                Some(SwitchEvent::Disconnected { reason }) => return reason,
                Some(_) => continue,
                None => return "channel closed".to_string(),
            }
        }
    })
    .await
    .expect("dead switch not noticed");
    assert!(ev.contains("silent"), "reason: {ev}");
    assert!(sw.handle.is_closed());
    drop(fake);
}

#[tokio::test]
async fn garbage_gets_an_error_reply_and_a_broken_frame_ends_only_that_session() {
    let config = fast();
    let listener = SwitchListener::bind("127.0.0.1:0".parse().unwrap(), config)
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let connect = |dpid| async move {
        let mut fake = Framed::new(TcpStream::connect(addr).await.unwrap(), OfCodec);
        fake_handshake(&mut fake, dpid).await;
        fake
    };
    let fa = tokio::spawn(connect(1));
    let mut sw_a = listener.accept_switch().await.unwrap();
    let mut fake_a = fa.await.unwrap();
    let fb = tokio::spawn(connect(2));
    let sw_b = listener.accept_switch().await.unwrap();
    let mut fake_b = fb.await.unwrap();

    // A FEATURES_REPLY whose body is cut short: framed fine, does not parse.
    let raw = [4u8, 6, 0, 12, 0, 0, 0, 77, 1, 2, 3, 4];
    fake_a.get_mut().try_write(&raw).unwrap();
    let (xid, m) = recv_skip_echo(&mut fake_a).await;
    assert_eq!(xid, 77);
    match m {
        Message::Error(e) => {
            assert_eq!(e.code, ErrorCode::from_wire(1, 6));
            assert_eq!(e.data, raw);
        }
        other => panic!("expected an ERROR, got {other:?}"),
    }
    // Still usable.
    let h = sw_a.handle.clone();
    let r = tokio::spawn(async move { h.request(Message::GetConfigRequest).await });
    let (xid, _) = recv_skip_echo(&mut fake_a).await;
    send(&mut fake_a, xid, Message::BarrierReply).await;
    assert_eq!(r.await.unwrap().unwrap(), Message::BarrierReply);

    // A header length below 8: framing is lost, the session closes.
    fake_a
        .get_mut()
        .try_write(&[4u8, 2, 0, 3, 0, 0, 0, 1])
        .unwrap();
    let reason = tokio::time::timeout(Duration::from_secs(3), async {
        loop {
            if let Some(SwitchEvent::Disconnected { reason }) = sw_a.events.recv().await {
                return reason;
            }
        }
    })
    .await
    .unwrap();
    assert!(reason.contains("framing"), "reason: {reason}");

    // The other switch's session is untouched.
    let h = sw_b.handle.clone();
    let r = tokio::spawn(async move { h.barrier().await });
    let (xid, m) = recv_skip_echo(&mut fake_b).await;
    assert_eq!(m, Message::BarrierRequest);
    send(&mut fake_b, xid, Message::BarrierReply).await;
    r.await.unwrap().unwrap();
    assert!(!sw_b.handle.is_closed());
}

#[tokio::test]
async fn a_switch_without_1_3_is_refused_with_hello_failed() {
    let listener = SwitchListener::bind("127.0.0.1:0".parse().unwrap(), fast())
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let fake = tokio::spawn(async move {
        let mut fake = Framed::new(TcpStream::connect(addr).await.unwrap(), OfCodec);
        let hello = Hello {
            version: 1,
            elements: vec![HelloElement::VersionBitmap(vec![0b10])],
        };
        send(&mut fake, 1, Message::Hello(hello)).await;
        let _ours = recv(&mut fake).await;
        recv(&mut fake).await
    });
    let accepted = listener.accept().await.unwrap();
    let Err(err) = accepted.handshake().await else {
        panic!("handshake with a 1.0-only switch succeeded");
    };
    assert!(matches!(err, SessionError::Incompatible(_)), "{err}");
    let (_, m) = fake.await.unwrap();
    assert!(matches!(m, Message::Error(e) if e.code == ErrorCode::from_wire(0, 0)));
}

/// A cluster CA, the controller's listener certificate, and a switch certificate for `node7`.
struct Pki {
    ca: weft_security::Ca,
    server: Arc<rustls::ServerConfig>,
}

fn pki() -> Pki {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let ca = weft_security::Ca::new("test CA").unwrap();
    let ctl = ca
        .issue(
            &weft_security::Principal::Controller("c1".into()),
            &["localhost".into()],
            &[],
        )
        .unwrap();
    let server = weft_security::tls::server_config(
        ctl.cert_pem.as_bytes(),
        ctl.key_pem.as_bytes(),
        ca.cert_pem().as_bytes(),
    )
    .unwrap();
    Pki { ca, server }
}

/// A switch's TLS client config with a certificate for `node` from `issuer`, trusting `pki`'s CA.
fn switch_tls(pki: &Pki, issuer: &weft_security::Ca, node: &str) -> Arc<rustls::ClientConfig> {
    let leaf = issuer
        .issue(&weft_security::Principal::Node(node.into()), &[], &[])
        .unwrap();
    weft_security::tls::client_config(
        pki.ca.cert_pem().as_bytes(),
        leaf.cert_pem.as_bytes(),
        leaf.key_pem.as_bytes(),
    )
    .unwrap()
}

#[tokio::test]
async fn a_switch_from_another_ca_is_refused_before_openflow() {
    let pki = pki();
    let listener =
        SwitchListener::bind_tls("127.0.0.1:0".parse().unwrap(), pki.server.clone(), fast())
            .await
            .unwrap();
    let addr = listener.local_addr().unwrap();
    let stranger = weft_security::Ca::new("other CA").unwrap();
    let client = switch_tls(&pki, &stranger, "node7");
    let fake = tokio::spawn(async move {
        let tcp = TcpStream::connect(addr).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let tls = tokio_rustls::TlsConnector::from(client)
            .connect(name, tcp)
            .await;
        // TLS 1.3 clients learn of the refusal on their first read.
        match tls {
            Err(_) => true,
            Ok(tls) => {
                let mut fake = Framed::new(tls, OfCodec);
                !matches!(fake.next().await, Some(Ok(_)))
            }
        }
    });
    let accepted = listener.accept().await.unwrap();
    assert!(matches!(
        accepted.handshake().await,
        Err(SessionError::Tls(_))
    ));
    assert!(fake.await.unwrap(), "the stranger got no OpenFlow message");
}

#[tokio::test]
async fn session_runs_over_mutual_tls_and_knows_the_switch() {
    let pki = pki();
    let listener =
        SwitchListener::bind_tls("127.0.0.1:0".parse().unwrap(), pki.server.clone(), fast())
            .await
            .unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let client = switch_tls(&pki, &pki.ca, "node7");
    let fake = tokio::spawn(async move {
        let tcp = TcpStream::connect(addr).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let tls = tokio_rustls::TlsConnector::from(client)
            .connect(name, tcp)
            .await
            .unwrap();
        let mut fake = Framed::new(tls, OfCodec);
        send(&mut fake, 1, Message::Hello(Hello::with_versions(&[4]))).await;
        let mut dpid_sent = false;
        loop {
            let Some(Ok(f)) = fake.next().await else {
                return dpid_sent;
            };
            let xid = f.header.xid;
            match f.message.unwrap() {
                Message::FeaturesRequest => {
                    dpid_sent = true;
                    let features = FeaturesReply {
                        datapath_id: 7,
                        n_buffers: 0,
                        n_tables: 1,
                        auxiliary_id: 0,
                        capabilities: 0,
                        reserved: 0,
                    };
                    send(&mut fake, xid, Message::FeaturesReply(features)).await;
                }
                Message::MultipartRequest(_) => {
                    let reply = MultipartReply {
                        flags: 0,
                        body: MultipartReplyBody::PortDesc(vec![port(1, "tls1")]),
                    };
                    send(&mut fake, xid, Message::MultipartReply(reply)).await;
                }
                Message::EchoRequest(d) => send(&mut fake, xid, Message::EchoReply(d)).await,
                _ => {}
            }
        }
    });
    let sw = listener.accept_switch().await.unwrap();
    assert_eq!(sw.datapath_id(), 7);
    assert_eq!(sw.ports[0].name, "tls1");
    let cert = sw.peer_cert.as_deref().expect("the switch's certificate");
    assert_eq!(
        weft_security::principal_of(cert),
        Ok(weft_security::Principal::Node("node7".into()))
    );
    sw.handle.close().await;
    assert!(fake.await.unwrap());
}
