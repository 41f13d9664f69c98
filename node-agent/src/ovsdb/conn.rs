//! One JSON-RPC session with an OVSDB server.

use super::Error;
use super::framing::JsonSplitter;
use super::monitor::{Event, MonitorRequest, TableUpdates, parse_table_updates, requests_to_json};
use super::ops::{Operation, OperationResult, parse_transact_result};
use serde_json::{Value as Json, json};
use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

/// Where the server listens: `unix:/path/db.sock` or `tcp:host:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Unix(PathBuf),
    Tcp(String),
}

impl FromStr for Endpoint {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        if let Some(p) = s.strip_prefix("unix:").filter(|p| !p.is_empty()) {
            Ok(Endpoint::Unix(PathBuf::from(p)))
        } else if let Some(a) = s.strip_prefix("tcp:").filter(|a| a.contains(':')) {
            Ok(Endpoint::Tcp(a.to_string()))
        } else {
            Err(Error::InvalidEndpoint(s.to_string()))
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Unix(p) => write!(f, "unix:{}", p.display()),
            Endpoint::Tcp(a) => write!(f, "tcp:{a}"),
        }
    }
}

/// Session settings.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// Largest single message accepted from the server; a full vswitch db with thousands of ports
    /// is a few MiB, so the default leaves ample room while bounding memory.
    pub max_message: usize,
    /// Send an `echo` after this long without traffic; give up after twice as long.
    pub keepalive: Option<Duration>,
    pub connect_timeout: Duration,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            max_message: 64 << 20,
            keepalive: Some(Duration::from_secs(5)),
            connect_timeout: Duration::from_secs(5),
        }
    }
}

type Reply = oneshot::Sender<Result<Json, Error>>;

enum Pending {
    Caller { method: String, reply: Reply },
    Keepalive,
}

struct Request {
    method: String,
    params: Json,
    reply: Reply,
}

/// Handle to a session. Clones share it; the session ends when the last handle is dropped or the
/// server goes away, after which every call fails with a connection error.
#[derive(Clone, Debug)]
pub struct Connection {
    requests: mpsc::UnboundedSender<Request>,
}

impl Connection {
    /// Connects and starts the session task. Events (monitor updates, then a final
    /// `Disconnected`) arrive on the returned receiver.
    pub async fn connect(
        endpoint: &Endpoint,
        opts: &ConnectOptions,
    ) -> Result<(Connection, mpsc::UnboundedReceiver<Event>), Error> {
        let connect_err = |e: std::io::Error| Error::Connect {
            endpoint: endpoint.to_string(),
            source: e.into(),
        };
        let timeout = || {
            connect_err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "connect timed out",
            ))
        };
        match endpoint {
            Endpoint::Unix(path) => {
                let s = tokio::time::timeout(
                    opts.connect_timeout,
                    tokio::net::UnixStream::connect(path),
                )
                .await
                .map_err(|_| timeout())?
                .map_err(connect_err)?;
                Ok(Self::from_stream(s, opts))
            }
            Endpoint::Tcp(addr) => {
                let s = tokio::time::timeout(
                    opts.connect_timeout,
                    tokio::net::TcpStream::connect(addr),
                )
                .await
                .map_err(|_| timeout())?
                .map_err(connect_err)?;
                let _ = s.set_nodelay(true);
                Ok(Self::from_stream(s, opts))
            }
        }
    }

    /// Runs a session over an already connected stream.
    pub fn from_stream<S>(
        stream: S,
        opts: &ConnectOptions,
    ) -> (Connection, mpsc::UnboundedReceiver<Event>)
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (req_tx, req_rx) = mpsc::unbounded_channel();
        let (ev_tx, ev_rx) = mpsc::unbounded_channel();
        let (reader, writer) = tokio::io::split(stream);
        let (out_tx, out_rx) = mpsc::unbounded_channel::<Vec<u8>>();
        let writer_task = tokio::spawn(write_loop(writer, out_rx));
        let session = Session {
            splitter: JsonSplitter::new(opts.max_message),
            pending: HashMap::new(),
            next_id: 0,
            out: out_tx,
            events: ev_tx,
            last_rx: Instant::now(),
        };
        tokio::spawn(session.run(reader, req_rx, writer_task, opts.keepalive));
        (Connection { requests: req_tx }, ev_rx)
    }

    /// True once the session has ended.
    pub fn is_closed(&self) -> bool {
        self.requests.is_closed()
    }

    /// Sends a raw JSON-RPC request and waits for its `result`.
    pub(crate) async fn request(&self, method: &str, params: Json) -> Result<Json, Error> {
        let (reply, rx) = oneshot::channel();
        self.requests
            .send(Request {
                method: method.to_string(),
                params,
                reply,
            })
            .map_err(|_| Error::Disconnected("session ended".into()))?;
        rx.await
            .map_err(|_| Error::Disconnected("session ended".into()))?
    }

    pub async fn list_dbs(&self) -> Result<Vec<String>, Error> {
        let r = self.request("list_dbs", json!([])).await?;
        r.as_array()
            .and_then(|a| a.iter().map(|d| d.as_str().map(str::to_string)).collect())
            .ok_or_else(|| Error::UnexpectedReply(format!("list_dbs: {r}")))
    }

    /// The database schema as JSON (RFC 7047 section 3.2).
    pub async fn get_schema(&self, db: &str) -> Result<Json, Error> {
        let r = self.request("get_schema", json!([db])).await?;
        if r.get("tables").is_some_and(Json::is_object) {
            Ok(r)
        } else {
            Err(Error::UnexpectedReply(format!("get_schema: {r}")))
        }
    }

    /// Runs `ops` atomically. Any failed operation aborts the transaction and is returned as
    /// [`Error::OperationFailed`].
    pub async fn transact(
        &self,
        db: &str,
        ops: &[Operation],
    ) -> Result<Vec<OperationResult>, Error> {
        let mut params = vec![json!(db)];
        params.extend(ops.iter().map(Operation::to_json));
        let r = self.request("transact", Json::Array(params)).await?;
        parse_transact_result(ops, &r)
    }

    /// Starts a monitor and returns the initial contents; later changes arrive as
    /// [`Event::Update`] with this `monitor_id`.
    pub(crate) async fn monitor(
        &self,
        db: &str,
        monitor_id: &str,
        requests: &[MonitorRequest],
    ) -> Result<TableUpdates, Error> {
        let r = self
            .request(
                "monitor",
                json!([db, monitor_id, requests_to_json(requests)]),
            )
            .await?;
        parse_table_updates(&r)
    }

    pub(crate) async fn monitor_cancel(&self, monitor_id: &str) -> Result<(), Error> {
        self.request("monitor_cancel", json!([monitor_id])).await?;
        Ok(())
    }

    /// Round-trips an `echo`, checking the server returns what we sent.
    pub async fn echo(&self) -> Result<(), Error> {
        let sent = json!(["weft-echo"]);
        let r = self.request("echo", sent.clone()).await?;
        if r == sent {
            Ok(())
        } else {
            Err(Error::UnexpectedReply(format!("echo returned {r}")))
        }
    }
}

async fn write_loop<W: AsyncWrite>(
    w: W,
    mut rx: mpsc::UnboundedReceiver<Vec<u8>>,
) -> Result<(), Error> {
    tokio::pin!(w);
    while let Some(buf) = rx.recv().await {
        w.write_all(&buf)
            .await
            .map_err(|e| Error::io("write to server", e))?;
    }
    let _ = w.shutdown().await;
    Ok(())
}

struct Session {
    splitter: JsonSplitter,
    pending: HashMap<u64, Pending>,
    next_id: u64,
    out: mpsc::UnboundedSender<Vec<u8>>,
    events: mpsc::UnboundedSender<Event>,
    last_rx: Instant,
}

impl Session {
    async fn run<R: AsyncRead>(
        mut self,
        reader: R,
        mut requests: mpsc::UnboundedReceiver<Request>,
        mut writer: tokio::task::JoinHandle<Result<(), Error>>,
        keepalive: Option<Duration>,
    ) {
        tokio::pin!(reader);
        let mut buf = vec![0u8; 64 * 1024];
        let tick_every = keepalive.map_or(Duration::from_secs(3600), |k| k / 2);
        let mut tick = tokio::time::interval(tick_every);
        let err = loop {
            tokio::select! {
                req = requests.recv() => match req {
                    Some(r) => self.send_request(r),
                    None => break Error::Disconnected("all handles dropped".into()),
                },
                n = reader.read(&mut buf) => match n {
                    Ok(0) if self.splitter.has_partial() => {
                        break Error::Malformed("connection closed mid-message".into())
                    }
                    Ok(0) => break Error::Disconnected("server closed the connection".into()),
                    Ok(n) => {
                        self.last_rx = Instant::now();
                        self.splitter.extend(&buf[..n]);
                        if let Err(e) = self.drain() {
                            break e;
                        }
                    }
                    Err(e) => break Error::io("read from server", e),
                },
                _ = tick.tick(), if keepalive.is_some() => {
                    let k = keepalive.unwrap_or_default();
                    let idle = self.last_rx.elapsed();
                    if idle >= 2 * k {
                        break Error::KeepaliveTimeout(2 * k);
                    } else if idle >= k {
                        self.send(Pending::Keepalive, "echo", json!(["weft-keepalive"]));
                    }
                },
                res = &mut writer => break match res {
                    Ok(Err(e)) => e,
                    _ => Error::Disconnected("writer stopped".into()),
                },
            }
        };
        tracing::debug!(error = %err, "ovsdb session ended");
        writer.abort();
        for (_, p) in self.pending.drain() {
            if let Pending::Caller { reply, .. } = p {
                let _ = reply.send(Err(err.clone()));
            }
        }
        requests.close();
        while let Ok(r) = requests.try_recv() {
            let _ = r.reply.send(Err(err.clone()));
        }
        let _ = self.events.send(Event::Disconnected {
            reason: err.to_string(),
        });
    }

    fn send_request(&mut self, r: Request) {
        let pending = Pending::Caller {
            method: r.method.clone(),
            reply: r.reply,
        };
        self.send(pending, &r.method, r.params);
    }

    fn send(&mut self, pending: Pending, method: &str, params: Json) {
        self.next_id += 1;
        let id = self.next_id;
        let msg = json!({"method": method, "params": params, "id": id});
        self.pending.insert(id, pending);
        self.write(&msg);
    }

    fn write(&self, msg: &Json) {
        // Serializing a serde_json::Value cannot fail; a closed writer surfaces via its task.
        if let Ok(bytes) = serde_json::to_vec(msg) {
            let _ = self.out.send(bytes);
        }
    }

    fn drain(&mut self) -> Result<(), Error> {
        while let Some(msg) = self.splitter.next_message()? {
            self.handle(msg)?;
        }
        Ok(())
    }

    fn handle(&mut self, msg: Json) -> Result<(), Error> {
        let id = msg.get("id").cloned().unwrap_or(Json::Null);
        if let Some(method) = msg.get("method").and_then(Json::as_str) {
            let params = msg.get("params").cloned().unwrap_or(Json::Null);
            return self.handle_server_call(method, params, id);
        }
        if msg.get("result").is_none() && msg.get("error").is_none() {
            return Err(Error::Malformed(format!(
                "neither request nor response: {msg}"
            )));
        }
        let Some(pending) = id.as_u64().and_then(|i| self.pending.remove(&i)) else {
            tracing::warn!(%id, "ovsdb reply for unknown request id");
            return Ok(());
        };
        let Pending::Caller { method, reply } = pending else {
            return Ok(()); // keepalive answered; receiving it already refreshed last_rx
        };
        let result = match msg.get("error") {
            Some(e) if !e.is_null() => Err(Error::Rpc {
                method,
                error: e.as_str().map_or_else(|| e.to_string(), str::to_string),
            }),
            _ => Ok(msg.get("result").cloned().unwrap_or(Json::Null)),
        };
        let _ = reply.send(result);
        Ok(())
    }

    fn handle_server_call(&mut self, method: &str, params: Json, id: Json) -> Result<(), Error> {
        match method {
            "echo" => self.write(&json!({"id": id, "result": params, "error": null})),
            "update" => {
                let (Some(mid), Some(updates)) = (params.get(0), params.get(1)) else {
                    return Err(Error::Malformed(format!("bad update params: {params}")));
                };
                let monitor_id = mid.as_str().map_or_else(|| mid.to_string(), str::to_string);
                let updates = parse_table_updates(updates)?;
                let _ = self.events.send(Event::Update {
                    monitor_id,
                    updates,
                });
            }
            other if !id.is_null() => {
                tracing::warn!(method = other, "ovsdb server called an unknown method");
                self.write(&json!({"id": id, "result": null, "error": "unknown method"}));
            }
            other => tracing::debug!(method = other, "ignoring ovsdb notification"),
        }
        Ok(())
    }
}
