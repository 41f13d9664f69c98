//! The controller side of an OpenFlow 1.3 switch session.
//!
//! A [`SwitchListener`] accepts switch connections (plain TCP or rustls TLS) and runs the
//! handshake: HELLO version negotiation by bitmap, FEATURES (datapath id), SET_CONFIG and
//! PORT_DESC. Each accepted [`Switch`] is served by its own task, so bad bytes from one switch can
//! only ever close that switch's session. The task answers echo requests, sends its own echoes
//! when the switch is idle and declares the switch dead when nothing arrives for
//! [`SessionConfig::dead_after`], allocates xids and routes replies, errors and barrier replies
//! back to the caller that is waiting for them. Everything else the switch sends (PORT_STATUS,
//! PACKET_IN, FLOW_REMOVED, unsolicited errors) arrives as a [`SwitchEvent`].

mod conn;
mod handle;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_util::codec::Framed;

use crate::codec::{FrameError, OfCodec, Outgoing};
use crate::wire::{
    self, ErrorMsg, FeaturesReply, FlowRemoved, Hello, Message, OFP_VERSION_1_3, PacketIn,
    PortDesc, PortStatus,
};

pub use handle::{BatchReport, SwitchHandle};

/// Timeouts and limits of a session.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Send an ECHO_REQUEST when the switch has been silent this long.
    pub echo_interval: Duration,
    /// Declare the switch dead when nothing at all arrived for this long.
    pub dead_after: Duration,
    /// Bound on the whole handshake (HELLO to PORT_DESC).
    pub handshake_timeout: Duration,
    /// Bound on waiting for one reply or barrier.
    pub request_timeout: Duration,
    /// `miss_send_len` sent in SET_CONFIG.
    pub miss_send_len: u16,
    /// Capacity of the event channel; events beyond it are dropped and counted.
    pub event_capacity: usize,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            echo_interval: Duration::from_secs(5),
            dead_after: Duration::from_secs(15),
            handshake_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            miss_send_len: 128,
            event_capacity: 4096,
        }
    }
}

/// What can go wrong in a session.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SessionError {
    #[error("i/o: {0}")]
    Io(String),
    #[error("TLS handshake: {0}")]
    Tls(String),
    #[error("switch speaks no OpenFlow 1.3 (its HELLO: {0:?})")]
    Incompatible(Hello),
    #[error("unexpected message during {stage}: {got}")]
    Unexpected { stage: &'static str, got: String },
    #[error("switch sent an undecodable stream: {0}")]
    Framing(String),
    #[error("switch answered with error {0}")]
    Switch(ErrorMsg),
    #[error("switch rejected message {index} of the batch: {error}")]
    Rejected { index: usize, error: ErrorMsg },
    #[error("timed out waiting for {0}")]
    Timeout(&'static str),
    #[error("session closed: {0}")]
    Closed(String),
    #[error("cannot encode: {0}")]
    Encode(#[from] wire::Error),
}

impl From<std::io::Error> for SessionError {
    fn from(e: std::io::Error) -> Self {
        SessionError::Io(e.to_string())
    }
}

impl From<FrameError> for SessionError {
    fn from(e: FrameError) -> Self {
        match e {
            FrameError::Io(e) => SessionError::Io(e.to_string()),
            FrameError::BadLength(_) => SessionError::Framing(e.to_string()),
            FrameError::Encode(e) => SessionError::Encode(e),
        }
    }
}

/// What a switch tells the controller without being asked.
#[derive(Debug, Clone, PartialEq)]
pub enum SwitchEvent {
    PortStatus(PortStatus),
    PacketIn(PacketIn),
    FlowRemoved(FlowRemoved),
    /// An ERROR that matches no outstanding request.
    Error {
        xid: u32,
        error: ErrorMsg,
    },
    /// The session ended; no more events follow.
    Disconnected {
        reason: String,
    },
}

/// A connected, handshaken switch.
pub struct Switch {
    pub handle: SwitchHandle,
    pub events: mpsc::Receiver<SwitchEvent>,
    pub features: FeaturesReply,
    /// Ports as reported by PORT_DESC at connect time; later changes arrive as events.
    pub ports: Vec<PortDesc>,
    pub peer: SocketAddr,
    /// The switch's TLS certificate (DER, the leaf), when it connected over TLS with one: who
    /// the switch is, for the controller to check against the datapath id it claims.
    pub peer_cert: Option<Vec<u8>>,
}

impl Switch {
    pub fn datapath_id(&self) -> u64 {
        self.features.datapath_id
    }
}

/// Byte streams a session can run over.
pub trait Transport: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Transport for T {}

/// Accepts switch connections.
pub struct SwitchListener {
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    config: SessionConfig,
}

impl SwitchListener {
    /// Listens for plain TCP connections.
    pub async fn bind(addr: SocketAddr, config: SessionConfig) -> Result<Self, SessionError> {
        Ok(SwitchListener {
            listener: TcpListener::bind(addr).await?,
            tls: None,
            config,
        })
    }

    /// Serves an already-bound listener, e.g. one created inside another network namespace
    /// (the socket stays in the namespace it was made in). Must be called within a tokio runtime.
    pub fn from_std(
        listener: std::net::TcpListener,
        config: SessionConfig,
    ) -> Result<Self, SessionError> {
        listener.set_nonblocking(true)?;
        Ok(SwitchListener {
            listener: TcpListener::from_std(listener)?,
            tls: None,
            config,
        })
    }

    /// Listens for TLS connections (OVS `ssl:` controller targets).
    pub async fn bind_tls(
        addr: SocketAddr,
        tls: Arc<rustls::ServerConfig>,
        config: SessionConfig,
    ) -> Result<Self, SessionError> {
        Ok(SwitchListener {
            listener: TcpListener::bind(addr).await?,
            tls: Some(tokio_rustls::TlsAcceptor::from(tls)),
            config,
        })
    }

    pub fn local_addr(&self) -> Result<SocketAddr, SessionError> {
        Ok(self.listener.local_addr()?)
    }

    /// Accepts the next TCP connection. The handshake is not run yet: run it with
    /// [`Accepted::handshake`], typically in a task of its own so a slow or hostile peer cannot
    /// hold up the accept loop.
    pub async fn accept(&self) -> Result<Accepted, SessionError> {
        let (stream, peer) = self.listener.accept().await?;
        stream.set_nodelay(true)?;
        Ok(Accepted {
            stream,
            peer,
            tls: self.tls.clone(),
            config: self.config.clone(),
        })
    }

    /// Accepts connections until one completes the handshake; failed peers are logged and
    /// skipped. Convenient for tests and single-switch tools.
    pub async fn accept_switch(&self) -> Result<Switch, SessionError> {
        loop {
            let accepted = self.accept().await?;
            let peer = accepted.peer;
            match accepted.handshake().await {
                Ok(sw) => return Ok(sw),
                Err(e) => tracing::warn!(%peer, error = %e, "switch handshake failed"),
            }
        }
    }
}

/// A TCP connection that has not been through the OpenFlow handshake yet.
pub struct Accepted {
    stream: TcpStream,
    pub peer: SocketAddr,
    tls: Option<tokio_rustls::TlsAcceptor>,
    config: SessionConfig,
}

impl Accepted {
    /// TLS (when configured), then the OpenFlow handshake, all within the handshake timeout.
    pub async fn handshake(self) -> Result<Switch, SessionError> {
        let limit = self.config.handshake_timeout;
        let fut = async move {
            match self.tls {
                Some(acceptor) => {
                    let tls = acceptor
                        .accept(self.stream)
                        .await
                        .map_err(|e| SessionError::Tls(e.to_string()))?;
                    let cert = tls
                        .get_ref()
                        .1
                        .peer_certificates()
                        .and_then(|c| c.first())
                        .map(|c| c.to_vec());
                    let mut sw = start(tls, self.peer, self.config).await?;
                    sw.peer_cert = cert;
                    Ok(sw)
                }
                None => start(self.stream, self.peer, self.config).await,
            }
        };
        tokio::time::timeout(limit, fut)
            .await
            .map_err(|_| SessionError::Timeout("handshake"))?
    }
}

/// Runs the OpenFlow handshake on any byte stream and starts the session task.
pub async fn start<T: Transport>(
    io: T,
    peer: SocketAddr,
    config: SessionConfig,
) -> Result<Switch, SessionError> {
    use futures::{SinkExt, StreamExt};

    let mut framed = Framed::new(io, OfCodec);
    framed
        .send(Outgoing {
            xid: 0,
            message: Message::Hello(Hello::with_versions(&[OFP_VERSION_1_3])),
        })
        .await?;
    let theirs = {
        let frame = framed
            .next()
            .await
            .ok_or_else(|| SessionError::Closed("peer closed before HELLO".into()))??;
        match frame.message {
            Ok(Message::Hello(h)) => h,
            Ok(Message::Error(e)) => return Err(SessionError::Switch(e)),
            Ok(other) => {
                return Err(SessionError::Unexpected {
                    stage: "hello",
                    got: format!("{:?}", other.msg_type()),
                });
            }
            Err(e) => {
                return Err(SessionError::Unexpected {
                    stage: "hello",
                    got: e.to_string(),
                });
            }
        }
    };
    // The negotiated version is the highest both sides announce; we only announce 1.3.
    if !theirs.supports(OFP_VERSION_1_3) {
        let err = ErrorMsg {
            code: wire::ErrorCode::from_wire(0, 0), // HELLO_FAILED / INCOMPATIBLE
            data: b"weft speaks OpenFlow 1.3 only".to_vec(),
        };
        let _ = framed
            .send(Outgoing {
                xid: 0,
                message: Message::Error(err),
            })
            .await;
        return Err(SessionError::Incompatible(theirs));
    }

    let (handle, events) = conn::spawn(framed, peer, config.clone());
    let features = match handle.request(Message::FeaturesRequest).await? {
        Message::FeaturesReply(f) => f,
        other => {
            return Err(SessionError::Unexpected {
                stage: "features",
                got: format!("type {}", other.msg_type()),
            });
        }
    };
    handle.set_datapath_id(features.datapath_id);
    handle
        .send(Message::SetConfig(wire::SwitchConfig {
            flags: 0,
            miss_send_len: config.miss_send_len,
        }))
        .await?;
    let ports = handle.port_desc().await?;
    tracing::info!(
        %peer,
        dpid = format_args!("{:016x}", features.datapath_id),
        ports = ports.len(),
        "switch connected"
    );
    Ok(Switch {
        handle,
        events,
        features,
        ports,
        peer,
        peer_cert: None,
    })
}
