//! A controller double for agent tests: a real tonic NodeControl server that behaves like the
//! controller's (registered nodes form a full mesh, each WatchNodeConfig stream sends the full
//! peer set on every change) and can be told to add bad peers, drop streams mid-way, or go away
//! and come back on the same port.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use tokio::sync::watch;
use tonic::transport::ServerTlsConfig;
use tonic::{Request, Response, Status};
use weft_proto::agent::v1 as pb;
use weft_proto::agent::v1::node_control_server::{NodeControl, NodeControlServer};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Model {
    pub version: u64,
    /// node -> underlay IP.
    pub nodes: BTreeMap<String, String>,
    /// Extra peers sent to one node (bad input tests).
    pub extra: BTreeMap<String, Vec<pb::Peer>>,
    pub mtu: u32,
}

#[derive(Default)]
struct Recorded {
    registers: Vec<pb::RegisterRequest>,
    /// node -> last report.
    reports: BTreeMap<String, Vec<pb::PortState>>,
    /// Streams to end with an error right after their first message (one per count).
    drop_streams: usize,
}

#[derive(Clone)]
pub struct Ctl {
    model: watch::Sender<Model>,
    rec: Arc<Mutex<Recorded>>,
    /// Bumped to cut every open stream (the controller "dies").
    kill: watch::Sender<u64>,
}

impl Default for Ctl {
    fn default() -> Self {
        Ctl {
            model: watch::Sender::new(Model {
                mtu: 1500,
                ..Model::default()
            }),
            rec: Arc::default(),
            kill: watch::Sender::new(0),
        }
    }
}

/// A running server; dropping it (or [`Server::stop`]) closes the listener and cuts every stream.
pub struct Server {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
    ctl: Ctl,
}

impl Server {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn stop(self) {}
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
        self.ctl.kill.send_modify(|k| *k += 1);
    }
}

impl Ctl {
    pub fn update(&self, f: impl FnOnce(&mut Model)) {
        self.model.send_modify(|m| {
            f(m);
            m.version += 1;
        });
    }

    pub fn remove_node(&self, node: &str) {
        self.update(|m| {
            m.nodes.remove(node);
        });
    }

    pub fn registers(&self) -> Vec<pb::RegisterRequest> {
        self.rec.lock().unwrap().registers.clone()
    }

    pub fn report(&self, node: &str) -> Vec<pb::PortState> {
        self.rec
            .lock()
            .unwrap()
            .reports
            .get(node)
            .cloned()
            .unwrap_or_default()
    }

    /// The next `n` streams end with an error after their first message.
    pub fn drop_next_streams(&self, n: usize) {
        self.rec.lock().unwrap().drop_streams = n;
    }

    fn config(m: &Model, node: &str) -> pb::NodeConfig {
        let mut peers: Vec<pb::Peer> = m
            .nodes
            .iter()
            .filter(|(n, _)| n.as_str() != node)
            .map(|(n, ip)| pb::Peer {
                node_name: n.clone(),
                underlay_ip: ip.clone(),
                vni: pair_vni(4242, node, n),
                vxlan_port: 4789,
                mtu: m.mtu,
            })
            .collect();
        peers.extend(m.extra.get(node).cloned().unwrap_or_default());
        pb::NodeConfig {
            version: m.version,
            peers,
        }
    }

    /// Ends every open WatchNodeConfig stream with an error (the server stays up).
    pub fn cut_streams(&self) {
        self.kill.send_modify(|k| *k += 1);
    }

    /// Serves on `addr` (127.0.0.1:0 for a fresh port).
    pub async fn serve(&self, addr: SocketAddr) -> Server {
        self.serve_inner(addr, None).await
    }

    /// Serves over TLS (mutual when `tls` names a client CA).
    pub async fn serve_tls(&self, addr: SocketAddr, tls: ServerTlsConfig) -> Server {
        self.serve_inner(addr, Some(tls)).await
    }

    async fn serve_inner(&self, addr: SocketAddr, tls: Option<ServerTlsConfig>) -> Server {
        let l = tokio::net::TcpListener::bind(addr).await.unwrap();
        let addr = l.local_addr().unwrap();
        let svc = NodeControlServer::new(self.clone());
        let mut builder = tonic::transport::Server::builder();
        if let Some(tls) = tls {
            builder = builder.tls_config(tls).unwrap();
        }
        let task = tokio::spawn(async move {
            let _ = builder
                .add_service(svc)
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(l))
                .await;
        });
        Server {
            addr,
            task,
            ctl: self.clone(),
        }
    }
}

/// The controller's per-pair VNI, from the shared contract.
pub use weft_types::vni::pair_vni;

type Stream = Pin<Box<dyn futures::Stream<Item = Result<pb::NodeConfig, Status>> + Send>>;

#[tonic::async_trait]
impl NodeControl for Ctl {
    async fn register(
        &self,
        r: Request<pb::RegisterRequest>,
    ) -> Result<Response<pb::RegisterReply>, Status> {
        let r = r.into_inner();
        self.rec.lock().unwrap().registers.push(r.clone());
        let known = self.model.borrow().nodes.get(&r.node_name) == Some(&r.underlay_ip);
        if !known {
            self.update(|m| {
                m.nodes.insert(r.node_name.clone(), r.underlay_ip.clone());
            });
        }
        Ok(Response::new(pb::RegisterReply {
            cluster: "test".into(),
            vni: 4242,
            vxlan_port: 4789,
            underlay_mtu: 1500,
        }))
    }

    type WatchNodeConfigStream = Stream;

    async fn watch_node_config(
        &self,
        r: Request<pb::WatchNodeConfigRequest>,
    ) -> Result<Response<Stream>, Status> {
        let node = r.into_inner().node_name;
        let mut rx = self.model.subscribe();
        let mut kill = self.kill.subscribe();
        let drop_after_first = {
            let mut rec = self.rec.lock().unwrap();
            let d = rec.drop_streams > 0;
            rec.drop_streams = rec.drop_streams.saturating_sub(1);
            d
        };
        let (tx, out) = tokio::sync::mpsc::channel(4);
        tokio::spawn(async move {
            let mut last: Option<Vec<pb::Peer>> = None;
            loop {
                let cfg = Ctl::config(&rx.borrow_and_update(), &node);
                if last.as_ref() != Some(&cfg.peers) {
                    last = Some(cfg.peers.clone());
                    if tx.send(Ok(cfg)).await.is_err() {
                        return;
                    }
                    if drop_after_first {
                        let _ = tx.send(Err(Status::unavailable("dropped by test"))).await;
                        return;
                    }
                }
                tokio::select! {
                    r = rx.changed() => if r.is_err() { return },
                    _ = kill.changed() => {
                        let _ = tx.send(Err(Status::unavailable("controller gone"))).await;
                        return;
                    }
                }
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(out),
        )))
    }

    async fn report_ports(&self, r: Request<pb::PortReport>) -> Result<Response<pb::Ack>, Status> {
        let r = r.into_inner();
        self.rec
            .lock()
            .unwrap()
            .reports
            .insert(r.node_name, r.ports);
        Ok(Response::new(pb::Ack {}))
    }

    async fn prepare_attachment(
        &self,
        _r: Request<pb::PrepareRequest>,
    ) -> Result<Response<pb::PrepareReply>, Status> {
        Err(Status::unimplemented("not in agent tests"))
    }

    async fn attach(
        &self,
        _r: Request<pb::AttachRequest>,
    ) -> Result<Response<pb::AttachReply>, Status> {
        Err(Status::unimplemented("not in agent tests"))
    }

    async fn detach(&self, _r: Request<pb::DetachRequest>) -> Result<Response<pb::Ack>, Status> {
        Err(Status::unimplemented("not in agent tests"))
    }
}
