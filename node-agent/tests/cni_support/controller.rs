//! A controller double: a real tonic NodeControl server with in-memory IPAM that can be told to
//! refuse, delay or fail, so the agent's error paths run against the real gRPC client.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tonic::{Request, Response, Status};
use weft_proto::agent::v1 as pb;
use weft_proto::agent::v1::node_control_server::{NodeControl, NodeControlServer};
use weft_proto::error_detail::{self, ErrorReason};

#[derive(Debug, Clone)]
pub struct Net {
    /// `None` = layer 2 only.
    pub subnet: Option<(Ipv4Addr, u8)>,
    pub allowed: Vec<String>,
    pub mtu: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    pub network: String,
    pub mac: String,
    pub ips: Vec<String>,
    pub ofport: Option<u32>,
}

/// Behaviour switches for error-path tests.
#[derive(Debug, Clone, Default)]
pub struct Knobs {
    pub attach_delay: Option<Duration>,
    pub attach_fail: Option<String>,
    pub prepare_unavailable: bool,
}

#[derive(Default)]
pub struct State {
    pub networks: BTreeMap<String, Net>,
    pub reservations: BTreeMap<(String, String), Reservation>,
    pub knobs: Knobs,
    pub next_mac: u32,
}

#[derive(Clone, Default)]
pub struct Double(pub Arc<Mutex<State>>);

impl Double {
    pub fn add_network(&self, name: &str, net: Net) {
        self.0
            .lock()
            .unwrap()
            .networks
            .insert(name.to_string(), net);
    }
    pub fn reservations(&self) -> BTreeMap<(String, String), Reservation> {
        self.0.lock().unwrap().reservations.clone()
    }
    pub fn set_knobs(&self, k: Knobs) {
        self.0.lock().unwrap().knobs = k;
    }

    /// Serves on 127.0.0.1 (an ephemeral port); returns the address and a stop handle.
    pub async fn serve(&self) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let svc = NodeControlServer::new(self.clone());
        tokio::spawn(async move {
            tonic::transport::Server::builder()
                .add_service(svc)
                .serve_with_incoming_shutdown(
                    tokio_stream::wrappers::TcpListenerStream::new(l),
                    async {
                        let _ = rx.await;
                    },
                )
                .await
                .unwrap();
        });
        (addr, tx)
    }
}

fn key(id: Option<weft_proto::common::v1::AttachmentId>) -> Result<(String, String), Status> {
    let id = id.ok_or_else(|| Status::invalid_argument("no id"))?;
    Ok((id.container_id, id.ifname))
}

fn parse_ip(s: &str) -> Result<Ipv4Addr, Status> {
    s.split('/')
        .next()
        .unwrap_or("")
        .parse()
        .map_err(|_| Status::invalid_argument(format!("bad ip {s}")))
}

fn in_subnet(ip: Ipv4Addr, (base, plen): (Ipv4Addr, u8)) -> bool {
    let mask = if plen == 0 {
        0
    } else {
        u32::MAX << (32 - plen)
    };
    u32::from(ip) & mask == u32::from(base) & mask
}

type Stream = Pin<Box<dyn futures::Stream<Item = Result<pb::NodeConfig, Status>> + Send>>;

#[tonic::async_trait]
impl NodeControl for Double {
    type WatchNodeConfigStream = Stream;

    async fn register(
        &self,
        _: Request<pb::RegisterRequest>,
    ) -> Result<Response<pb::RegisterReply>, Status> {
        Err(Status::unimplemented("double"))
    }
    async fn watch_node_config(
        &self,
        _: Request<pb::WatchNodeConfigRequest>,
    ) -> Result<Response<Stream>, Status> {
        Err(Status::unimplemented("double"))
    }
    async fn report_ports(&self, _: Request<pb::PortReport>) -> Result<Response<pb::Ack>, Status> {
        Err(Status::unimplemented("double"))
    }

    async fn prepare_attachment(
        &self,
        r: Request<pb::PrepareRequest>,
    ) -> Result<Response<pb::PrepareReply>, Status> {
        let r = r.into_inner();
        let k = key(r.id)?;
        let mut st = self.0.lock().unwrap();
        if st.knobs.prepare_unavailable {
            return Err(Status::unavailable("double: controller busy"));
        }
        let net = st.networks.get(&r.network).cloned().ok_or_else(|| {
            error_detail::status(
                ErrorReason::UnknownNetwork,
                format!("network {}", r.network),
            )
        })?;
        let ns = r
            .pod
            .as_ref()
            .map(|p| p.namespace.clone())
            .unwrap_or_default();
        if !net.allowed.contains(&ns) {
            return Err(error_detail::status(
                ErrorReason::NamespaceNotAllowed,
                format!("namespace {ns} may not use {}", r.network),
            ));
        }
        if let Some(res) = st.reservations.get(&k) {
            return Ok(Response::new(pb::PrepareReply {
                mac: res.mac.clone(),
                ips: res.ips.clone(),
                gateway: String::new(),
                mtu: net.mtu,
            }));
        }
        let others: Vec<&Reservation> = st
            .reservations
            .values()
            .filter(|x| x.network == r.network)
            .collect();
        let used_ips: BTreeSet<Ipv4Addr> = others
            .iter()
            .flat_map(|x| x.ips.iter())
            .filter_map(|s| parse_ip(s).ok())
            .collect();
        let mac = if r.mac.is_empty() {
            st.next_mac += 1;
            format!(
                "02:00:00:{:02x}:{:02x}:{:02x}",
                (st.next_mac >> 16) as u8,
                (st.next_mac >> 8) as u8,
                st.next_mac as u8
            )
        } else {
            if others.iter().any(|x| x.mac == r.mac) {
                return Err(error_detail::status(
                    ErrorReason::AddressInUse,
                    format!("MAC {} in use", r.mac),
                ));
            }
            r.mac.clone()
        };
        let mut ips = Vec::new();
        for s in &r.ips {
            let ip = parse_ip(s)?;
            if used_ips.contains(&ip) {
                return Err(error_detail::status(
                    ErrorReason::AddressInUse,
                    format!("IP {ip} in use"),
                ));
            }
            match net.subnet {
                Some(sn) if !in_subnet(ip, sn) => {
                    return Err(error_detail::status(
                        ErrorReason::AddressRefused,
                        format!("{ip} outside subnet"),
                    ));
                }
                Some((_, p)) if !s.contains('/') => ips.push(format!("{ip}/{p}")),
                _ => ips.push(if s.contains('/') {
                    s.clone()
                } else {
                    format!("{ip}/32")
                }),
            }
        }
        if ips.is_empty()
            && let Some((base, p)) = net.subnet
        {
            let ip = (2..(1u32 << (32 - p)) - 1)
                .map(|n| Ipv4Addr::from(u32::from(base) + n))
                .find(|ip| !used_ips.contains(ip))
                .ok_or_else(|| error_detail::status(ErrorReason::SubnetFull, "subnet full"))?;
            ips.push(format!("{ip}/{p}"));
        }
        st.reservations.insert(
            k,
            Reservation {
                network: r.network,
                mac: mac.clone(),
                ips: ips.clone(),
                ofport: None,
            },
        );
        let gateway = net
            .subnet
            .map(|(b, _)| Ipv4Addr::from(u32::from(b) + 1).to_string())
            .unwrap_or_default();
        Ok(Response::new(pb::PrepareReply {
            mac,
            ips,
            gateway,
            mtu: net.mtu,
        }))
    }

    async fn attach(
        &self,
        r: Request<pb::AttachRequest>,
    ) -> Result<Response<pb::AttachReply>, Status> {
        let r = r.into_inner();
        let k = key(r.id)?;
        let knobs = self.0.lock().unwrap().knobs.clone();
        if let Some(d) = knobs.attach_delay {
            tokio::time::sleep(d).await;
        }
        if let Some(m) = knobs.attach_fail {
            return Err(Status::internal(m));
        }
        let mut st = self.0.lock().unwrap();
        let res = st
            .reservations
            .get_mut(&k)
            .ok_or_else(|| error_detail::status(ErrorReason::NotPrepared, "not prepared"))?;
        if r.ofport == 0 {
            return Err(Status::invalid_argument("ofport 0"));
        }
        res.ofport = Some(r.ofport);
        Ok(Response::new(pb::AttachReply { version: 1 }))
    }

    async fn detach(&self, r: Request<pb::DetachRequest>) -> Result<Response<pb::Ack>, Status> {
        let k = key(r.into_inner().id)?;
        self.0.lock().unwrap().reservations.remove(&k);
        Ok(Response::new(pb::Ack {}))
    }
}
