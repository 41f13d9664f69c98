//! One session with the controller: connect (optionally with mutual TLS), Register, and open the
//! WatchNodeConfig stream.

use std::path::PathBuf;
use std::time::Duration;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use weft_proto::agent::v1 as pb;
use weft_proto::agent::v1::node_control_client::NodeControlClient;

/// How long one connect, Register or stream open may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("controller endpoint {url:?}: {why}")]
    Endpoint { url: String, why: String },
    #[error("TLS material {path}: {source}")]
    TlsFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("connect: {0}")]
    Connect(#[source] tonic::transport::Error),
    #[error("{call}: {status}")]
    Call {
        call: &'static str,
        status: tonic::Status,
    },
    #[error("{0}: no answer within {CALL_TIMEOUT:?}")]
    Timeout(&'static str),
}

/// TLS files for the controller connection. With `cert` and `key` the agent presents a client
/// certificate (mutual TLS).
#[derive(Debug, Clone, Default)]
pub struct TlsFiles {
    /// CA bundle the controller's certificate must chain to.
    pub ca: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// Name to verify in the controller's certificate (default: the URL's host).
    pub domain: Option<String>,
}

impl TlsFiles {
    fn read(p: &PathBuf) -> Result<Vec<u8>, SessionError> {
        std::fs::read(p).map_err(|source| SessionError::TlsFile {
            path: p.clone(),
            source,
        })
    }

    /// Builds tonic's TLS settings, reading the files now (so a rotated certificate is picked up
    /// on the next reconnect).
    pub(crate) fn load(&self) -> Result<ClientTlsConfig, SessionError> {
        let mut tls = ClientTlsConfig::new();
        if let Some(ca) = &self.ca {
            tls = tls.ca_certificate(Certificate::from_pem(Self::read(ca)?));
        }
        if let (Some(c), Some(k)) = (&self.cert, &self.key) {
            tls = tls.identity(Identity::from_pem(Self::read(c)?, Self::read(k)?));
        }
        if let Some(d) = &self.domain {
            tls = tls.domain_name(d.clone());
        }
        Ok(tls)
    }
}

/// Where the controller is.
#[derive(Debug, Clone)]
pub struct ControllerTarget {
    /// `http://host:port` or `https://host:port`.
    pub url: String,
    pub tls: Option<TlsFiles>,
}

impl ControllerTarget {
    /// A channel connected now if the controller answers within `wait`, else a lazy one: the
    /// first pod ADD on a node should not pay for the connection (tens of ms with TLS or a slow
    /// network). Either way it reconnects on its own later.
    pub(crate) async fn channel_warm(&self, wait: Duration) -> Result<Channel, SessionError> {
        let ep = self.endpoint()?;
        match tokio::time::timeout(wait, ep.connect()).await {
            Ok(Ok(ch)) => Ok(ch),
            Ok(Err(e)) => {
                tracing::debug!(url = %self.url, error = %e, "controller not reachable yet; CNI channel connects on first use");
                Ok(ep.connect_lazy())
            }
            Err(_) => Ok(ep.connect_lazy()),
        }
    }

    fn endpoint(&self) -> Result<Endpoint, SessionError> {
        let bad = |why: String| SessionError::Endpoint {
            url: self.url.clone(),
            why,
        };
        let mut ep = Endpoint::from_shared(self.url.clone())
            .map_err(|e| bad(e.to_string()))?
            .connect_timeout(Duration::from_secs(3))
            // Notice a controller that vanished without closing the connection.
            .http2_keep_alive_interval(Duration::from_secs(10))
            .keep_alive_timeout(Duration::from_secs(5))
            .keep_alive_while_idle(true);
        if let Some(t) = &self.tls {
            ep = ep.tls_config(t.load()?).map_err(|e| bad(e.to_string()))?;
        }
        Ok(ep)
    }
}

/// A registered agent with its configuration stream.
pub struct Session {
    pub client: NodeControlClient<Channel>,
    pub stream: tonic::Streaming<pb::NodeConfig>,
    pub reply: pb::RegisterReply,
}

async fn bounded<T>(
    call: &'static str,
    f: impl std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
) -> Result<T, SessionError> {
    match tokio::time::timeout(CALL_TIMEOUT, f).await {
        Err(_) => Err(SessionError::Timeout(call)),
        Ok(Err(status)) => Err(SessionError::Call { call, status }),
        Ok(Ok(r)) => Ok(r.into_inner()),
    }
}

/// Connects, registers and opens the configuration stream.
pub(crate) async fn open(
    target: &ControllerTarget,
    register: pb::RegisterRequest,
) -> Result<Session, SessionError> {
    let channel = tokio::time::timeout(CALL_TIMEOUT, target.endpoint()?.connect())
        .await
        .map_err(|_| SessionError::Timeout("connect"))?
        .map_err(SessionError::Connect)?;
    let mut client = NodeControlClient::new(channel);
    let node_name = register.node_name.clone();
    let reply = bounded("Register", client.register(register)).await?;
    let stream = bounded(
        "WatchNodeConfig",
        client.watch_node_config(pb::WatchNodeConfigRequest { node_name }),
    )
    .await?;
    Ok(Session {
        client,
        stream,
        reply,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An agent starting while the controller is down still gets a channel (it connects on first
    /// use), and does not wait longer than asked.
    #[tokio::test]
    async fn warm_channel_falls_back_to_lazy_when_nobody_answers() {
        // A port on loopback nobody listens on: connection refused.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap();
        let target = ControllerTarget {
            url: format!("http://127.0.0.1:{port}"),
            tls: None,
        };
        let start = std::time::Instant::now();
        let ch = target.channel_warm(Duration::from_millis(500)).await;
        assert!(ch.is_ok());
        assert!(start.elapsed() < Duration::from_secs(2));
        let bad = ControllerTarget {
            url: "not a url".into(),
            tls: None,
        };
        assert!(bad.channel_warm(Duration::from_millis(100)).await.is_err());
    }
}
