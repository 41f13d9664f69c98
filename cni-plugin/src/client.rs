//! gRPC over the agent's unix socket.

use crate::{Agent, Command};
use hyper_util::rt::TokioIo;
use std::time::Duration;
use tokio::net::UnixStream;
use tonic::transport::{Endpoint, Uri};
use weft_proto::cni::v1 as pb;
use weft_proto::cni::v1::cni_client::CniClient;

/// Connects to the agent for each call; `timeout` bounds the whole call (ADD waits for flows).
pub struct UnixAgent {
    pub connect_timeout: Duration,
    pub timeout: Duration,
}

impl Default for UnixAgent {
    fn default() -> Self {
        UnixAgent {
            connect_timeout: Duration::from_secs(2),
            timeout: Duration::from_secs(120),
        }
    }
}

async fn call(
    socket: String,
    command: Command,
    req: pb::CniRequest,
    connect_timeout: Duration,
) -> Result<pb::CniReply, String> {
    // The URI is required by tonic but unused: the connector always dials the socket.
    let channel = Endpoint::from_static("http://weft-agent.local")
        .connect_timeout(connect_timeout)
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let socket = socket.clone();
            async move { UnixStream::connect(socket).await.map(TokioIo::new) }
        }))
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let mut c = CniClient::new(channel);
    let reply = match command {
        Command::Add => c.add(req).await,
        Command::Del => c.del(req).await,
        Command::Check => c.check(req).await,
        Command::Gc => c.gc(req).await,
        Command::Status => c.status(req).await,
        Command::Version => return Err("VERSION is answered locally".into()),
    };
    reply
        .map(|r| r.into_inner())
        .map_err(|s| format!("{:?}: {}", s.code(), s.message()))
}

impl Agent for UnixAgent {
    fn call(
        &self,
        socket: &str,
        command: Command,
        request: pb::CniRequest,
    ) -> Result<pb::CniReply, String> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("tokio runtime: {e}"))?;
        let fut = call(socket.to_string(), command, request, self.connect_timeout);
        rt.block_on(async {
            tokio::time::timeout(self.timeout, fut)
                .await
                .unwrap_or_else(|_| Err(format!("no answer within {:?}", self.timeout)))
        })
    }
}
