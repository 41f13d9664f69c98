//! OVSDB client (RFC 7047 JSON-RPC) on tokio.
//!
//! * [`Connection`]: one session over a unix socket or TCP: request/response correlation,
//!   answering the server's `echo`, our own `echo` keepalive, `update` notifications as [`Event`]s.
//! * [`Client`]: a `Connection` that is re-established with backoff, re-issuing its monitors.
//! * [`Operation`], [`Value`] and friends: typed `transact` operations and OVSDB data encoding.
//!
//! The agent talks to ovsdb-server directly instead of running `ovs-vsctl`, which costs a process
//! per call and rewrites whole sets (a bridge's `ports`) where a `mutate` inserts one element.

mod client;
mod conn;
mod framing;
mod monitor;
mod ops;
mod value;

pub use client::{Client, ClientOptions};
pub use conn::{ConnectOptions, Connection, Endpoint};
pub use framing::JsonSplitter;
pub use monitor::{Event, MonitorRequest, RowUpdate, TableUpdates};
pub use ops::{
    Condition, Function, Mutation, Mutator, Operation, OperationResult, WaitUntil, selected,
};
pub use value::{Atom, Row, Uuid, Value, row};

use std::sync::Arc;
use std::time::Duration;

/// OVSDB client errors. `Clone` so one connection failure can be handed to every pending request.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    #[error("connect to {endpoint}: {source}")]
    Connect {
        endpoint: String,
        #[source]
        source: Arc<std::io::Error>,
    },
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: Arc<std::io::Error>,
    },
    #[error("invalid OVSDB endpoint {0:?} (expected unix:PATH or tcp:HOST:PORT)")]
    InvalidEndpoint(String),
    #[error("malformed data from server: {0}")]
    Malformed(String),
    #[error("message from server larger than {limit} bytes")]
    MessageTooLarge { limit: usize },
    #[error("unexpected reply: {0}")]
    UnexpectedReply(String),
    #[error("invalid OVSDB value: {0}")]
    InvalidValue(String),
    #[error("server error for {method}: {error}")]
    Rpc { method: String, error: String },
    /// Operation `index` failed, which aborted the whole transaction (nothing was committed).
    #[error("transaction aborted: operation {index} ({op}) failed: {error}{}", fmt_details(.details))]
    OperationFailed {
        index: usize,
        op: &'static str,
        error: String,
        details: Option<String>,
    },
    /// Every operation succeeded but the commit did not (e.g. a constraint violation).
    #[error("transaction commit failed: {error}{}", fmt_details(.details))]
    CommitFailed {
        error: String,
        details: Option<String>,
    },
    #[error("connection closed: {0}")]
    Disconnected(String),
    #[error("server did not answer keepalive within {0:?}")]
    KeepaliveTimeout(Duration),
    #[error("timed out: {0}")]
    Timeout(String),
}

fn fmt_details(d: &Option<String>) -> String {
    d.as_ref().map(|d| format!(" ({d})")).unwrap_or_default()
}

impl Error {
    pub(crate) fn io(what: impl Into<String>, e: std::io::Error) -> Self {
        Error::Io {
            what: what.into(),
            source: Arc::new(e),
        }
    }

    /// True for errors of the session rather than of one request; the client reconnects.
    pub fn is_connection_error(&self) -> bool {
        matches!(
            self,
            Error::Connect { .. }
                | Error::Io { .. }
                | Error::Malformed(_)
                | Error::MessageTooLarge { .. }
                | Error::Disconnected(_)
                | Error::KeepaliveTimeout(_)
        )
    }
}

/// Anything that can run a transaction: a single [`Connection`] or the reconnecting [`Client`].
/// Lets higher layers (bridge setup) be written once and tested against either.
pub trait Transact {
    fn transact(
        &self,
        db: &str,
        ops: &[Operation],
    ) -> impl std::future::Future<Output = Result<Vec<OperationResult>, Error>> + Send;
}

impl Transact for Connection {
    async fn transact(&self, db: &str, ops: &[Operation]) -> Result<Vec<OperationResult>, Error> {
        Connection::transact(self, db, ops).await
    }
}

impl Transact for Client {
    async fn transact(&self, db: &str, ops: &[Operation]) -> Result<Vec<OperationResult>, Error> {
        Client::transact(self, db, ops).await
    }
}
