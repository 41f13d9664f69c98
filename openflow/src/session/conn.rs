//! The per-switch task: owns the framed stream, routes what arrives, writes what callers send,
//! and keeps the connection alive (or declares it dead).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_util::codec::Framed;

use super::handle::{BatchReport, SwitchHandle};
use super::{SessionConfig, SessionError, SwitchEvent, Transport};
use crate::codec::{Frame, OfCodec, Outgoing};
use crate::wire::{self, ErrorMsg, Message, MultipartReply};

/// Bytes of a bad message echoed back in our ERROR, as OpenFlow asks (at least 64).
const ERROR_DATA_LEN: usize = 64;

/// A caller's order to the task. Xids are allocated by the handle, so they are known up front.
pub(super) enum Command {
    /// Write messages; nothing is awaited.
    Send {
        msgs: Vec<Outgoing>,
    },
    /// Write one request and route its reply (or error) back.
    Request {
        out: Outgoing,
        reply: oneshot::Sender<Result<Message, SessionError>>,
    },
    /// Write messages then a barrier; report which of them the switch rejected.
    Batch {
        msgs: Vec<Outgoing>,
        barrier_xid: u32,
        reply: oneshot::Sender<Result<BatchReport, SessionError>>,
    },
    Close,
}

enum Pending {
    Request {
        since: Instant,
        partial: Option<MultipartReply>,
        reply: oneshot::Sender<Result<Message, SessionError>>,
    },
    /// A message of a batch; its ERROR, if any, goes to the batch's barrier entry.
    Member { barrier: u32, index: usize },
    Barrier {
        since: Instant,
        xids: Vec<u32>,
        errors: Vec<(usize, ErrorMsg)>,
        reply: oneshot::Sender<Result<BatchReport, SessionError>>,
    },
}

/// Starts the task for an already-negotiated connection.
pub(super) fn spawn<T: Transport>(
    framed: Framed<T, OfCodec>,
    peer: SocketAddr,
    config: SessionConfig,
) -> (SwitchHandle, mpsc::Receiver<SwitchEvent>) {
    let (cmd_tx, cmd_rx) = mpsc::channel(256);
    let (ev_tx, ev_rx) = mpsc::channel(config.event_capacity.max(1));
    let handle = SwitchHandle {
        tx: cmd_tx,
        peer,
        dpid: Arc::new(AtomicU64::new(0)),
        next_xid: Arc::new(AtomicU32::new(1)),
        next_bundle: Arc::new(AtomicU32::new(1)),
    };
    let task = Conn {
        framed,
        peer,
        config,
        cmds: cmd_rx,
        events: ev_tx,
        pending: HashMap::new(),
        last_rx: Instant::now(),
        echo_xid: 0x8000_0000,
        dropped_events: 0,
    };
    tokio::spawn(task.run());
    (handle, ev_rx)
}

struct Conn<T> {
    framed: Framed<T, OfCodec>,
    peer: SocketAddr,
    config: SessionConfig,
    cmds: mpsc::Receiver<Command>,
    events: mpsc::Sender<SwitchEvent>,
    pending: HashMap<u32, Pending>,
    last_rx: Instant,
    /// Our echo requests use their own xid range so they never collide with callers' xids.
    echo_xid: u32,
    dropped_events: u64,
}

impl<T: Transport> Conn<T> {
    async fn run(mut self) {
        let tick_every = (self.config.echo_interval / 2)
            .min(self.config.dead_after / 4)
            .max(Duration::from_millis(10));
        let mut tick = tokio::time::interval(tick_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let reason = loop {
            tokio::select! {
                frame = self.framed.next() => match frame {
                    None => break "switch closed the connection".to_string(),
                    Some(Err(e)) => break format!("framing: {e}"),
                    Some(Ok(frame)) => {
                        self.last_rx = Instant::now();
                        let limit = self.config.dead_after;
                        match tokio::time::timeout(limit, self.on_frame(frame)).await {
                            Ok(Ok(())) => {}
                            Ok(Err(e)) => break format!("write failed: {e}"),
                            Err(_) => break format!("write blocked for {limit:?}: switch not reading"),
                        }
                    }
                },
                cmd = self.cmds.recv() => match cmd {
                    None | Some(Command::Close) => break "closed by the controller".to_string(),
                    Some(cmd) => {
                        let limit = self.config.dead_after;
                        match tokio::time::timeout(limit, self.on_command(cmd)).await {
                            Ok(Ok(())) => {}
                            Ok(Err(e)) => break format!("write failed: {e}"),
                            Err(_) => break format!("write blocked for {limit:?}: switch not reading"),
                        }
                    }
                },
                _ = tick.tick() => {
                    let limit = self.config.dead_after;
                    match tokio::time::timeout(limit, self.on_tick()).await {
                        Ok(Ok(())) => {}
                        Ok(Err(reason)) => break reason,
                        Err(_) => break format!("write blocked for {limit:?}: switch not reading"),
                    }
                }
            }
        };
        self.shutdown(reason).await;
    }

    async fn on_tick(&mut self) -> Result<(), String> {
        let idle = self.last_rx.elapsed();
        if idle >= self.config.dead_after {
            return Err(format!(
                "switch silent for {:?} (dead-peer timeout {:?})",
                idle, self.config.dead_after
            ));
        }
        if idle >= self.config.echo_interval {
            self.echo_xid = self.echo_xid.wrapping_add(1) | 0x8000_0000;
            let out = Outgoing {
                xid: self.echo_xid,
                message: Message::EchoRequest(Vec::new()),
            };
            self.framed.send(out).await.map_err(|e| e.to_string())?;
        }
        // Expire requests the switch never answered.
        let limit = self.config.request_timeout;
        let expired: Vec<u32> = self
            .pending
            .iter()
            .filter_map(|(xid, p)| match p {
                Pending::Request { since, .. } | Pending::Barrier { since, .. }
                    if since.elapsed() >= limit =>
                {
                    Some(*xid)
                }
                _ => None,
            })
            .collect();
        for xid in expired {
            self.fail(xid, SessionError::Timeout("reply from switch"));
        }
        Ok(())
    }

    async fn on_command(&mut self, cmd: Command) -> Result<(), SessionError> {
        match cmd {
            Command::Send { msgs } => {
                for m in msgs {
                    self.framed.feed(m).await?;
                }
                self.framed.flush().await?;
            }
            Command::Request { out, reply } => {
                let xid = out.xid;
                if let Err(e) = self.framed.send(out).await {
                    let err = SessionError::from(e);
                    let _ = reply.send(Err(err.clone()));
                    return Err(err);
                }
                self.pending.insert(
                    xid,
                    Pending::Request {
                        since: Instant::now(),
                        partial: None,
                        reply,
                    },
                );
            }
            Command::Batch {
                msgs,
                barrier_xid,
                reply,
            } => {
                let xids: Vec<u32> = msgs.iter().map(|m| m.xid).collect();
                // Register before writing: the switch may answer before the write returns.
                for (index, xid) in xids.iter().enumerate() {
                    self.pending.insert(
                        *xid,
                        Pending::Member {
                            barrier: barrier_xid,
                            index,
                        },
                    );
                }
                self.pending.insert(
                    barrier_xid,
                    Pending::Barrier {
                        since: Instant::now(),
                        xids,
                        errors: Vec::new(),
                        reply,
                    },
                );
                for m in msgs {
                    if let Err(e) = self.framed.feed(m).await {
                        // An unencodable message fails the batch, not the session.
                        let err = SessionError::from(e);
                        self.fail(barrier_xid, err.clone());
                        if matches!(err, SessionError::Encode(_)) {
                            return Ok(());
                        }
                        return Err(err);
                    }
                }
                let barrier = Outgoing {
                    xid: barrier_xid,
                    message: Message::BarrierRequest,
                };
                self.framed.send(barrier).await?;
            }
            Command::Close => {}
        }
        Ok(())
    }

    async fn on_frame(&mut self, frame: Frame) -> Result<(), SessionError> {
        let xid = frame.header.xid;
        let msg = match frame.message {
            Ok(m) => m,
            Err(e) => {
                return self
                    .on_garbage(xid, frame.header.msg_type, &frame.raw, e)
                    .await;
            }
        };
        match msg {
            Message::EchoRequest(data) => {
                let out = Outgoing {
                    xid,
                    message: Message::EchoReply(data),
                };
                self.framed.send(out).await?;
            }
            Message::EchoReply(_) | Message::Hello(_) => {}
            Message::Error(error) => self.on_error(xid, error),
            Message::BarrierReply => match self.pending.remove(&xid) {
                Some(Pending::Barrier {
                    xids,
                    errors,
                    reply,
                    ..
                }) => {
                    for x in &xids {
                        self.pending.remove(x);
                    }
                    let _ = reply.send(Ok(BatchReport { xids, errors }));
                }
                Some(Pending::Request { reply, .. }) => {
                    let _ = reply.send(Ok(Message::BarrierReply));
                }
                Some(other) => {
                    self.pending.insert(xid, other);
                }
                None => tracing::debug!(peer = %self.peer, xid, "barrier reply nobody waits for"),
            },
            Message::PortStatus(p) => self.emit_event(SwitchEvent::PortStatus(p)),
            Message::PacketIn(p) => self.emit_event(SwitchEvent::PacketIn(p)),
            Message::FlowRemoved(f) => self.emit_event(SwitchEvent::FlowRemoved(f)),
            Message::MultipartReply(part) => self.on_multipart(xid, part),
            reply => match self.pending.remove(&xid) {
                Some(Pending::Request { reply: tx, .. }) => {
                    let _ = tx.send(Ok(reply));
                }
                Some(other) => {
                    self.pending.insert(xid, other);
                }
                None => tracing::debug!(
                    peer = %self.peer, xid, msg_type = reply.msg_type(),
                    "unsolicited message ignored"
                ),
            },
        }
        Ok(())
    }

    fn on_multipart(&mut self, xid: u32, part: MultipartReply) {
        let Some(Pending::Request { partial, .. }) = self.pending.get_mut(&xid) else {
            tracing::debug!(peer = %self.peer, xid, "multipart reply nobody waits for");
            return;
        };
        let more = part.more();
        let merged = match partial.take() {
            None => Ok(part),
            Some(mut acc) => acc.body.append(part.body).map(|()| {
                acc.flags = part.flags;
                acc
            }),
        };
        match (merged, more) {
            (Ok(acc), true) => *partial = Some(acc),
            (Ok(acc), false) => {
                if let Some(Pending::Request { reply, .. }) = self.pending.remove(&xid) {
                    let _ = reply.send(Ok(Message::MultipartReply(acc)));
                }
            }
            (Err(e), _) => self.fail(xid, SessionError::Encode(e)),
        }
    }

    fn on_error(&mut self, xid: u32, error: ErrorMsg) {
        match self.pending.remove(&xid) {
            Some(Pending::Request { reply, .. }) => {
                let _ = reply.send(Err(SessionError::Switch(error)));
            }
            Some(Pending::Member { barrier, index }) => {
                if let Some(Pending::Barrier { errors, .. }) = self.pending.get_mut(&barrier) {
                    errors.push((index, error));
                }
            }
            Some(Pending::Barrier {
                xids,
                errors,
                reply,
                ..
            }) => {
                // The barrier itself failed: report what we know and fail the batch.
                for x in &xids {
                    self.pending.remove(x);
                }
                tracing::warn!(peer = %self.peer, xid, known_errors = errors.len(), "barrier rejected");
                let _ = reply.send(Err(SessionError::Switch(error)));
            }
            None => {
                tracing::warn!(peer = %self.peer, xid, error = %error, "unsolicited error from switch");
                self.emit_event(SwitchEvent::Error { xid, error });
            }
        }
    }

    /// A frame that framed correctly but did not parse: answer with an ERROR (so the switch
    /// knows) and carry on; one bad message must not cost the whole session.
    async fn on_garbage(
        &mut self,
        xid: u32,
        msg_type: u8,
        raw: &[u8],
        e: wire::Error,
    ) -> Result<(), SessionError> {
        tracing::warn!(peer = %self.peer, xid, msg_type, error = %e, "undecodable message from switch");
        if self.pending.contains_key(&xid) {
            self.fail(
                xid,
                SessionError::Unexpected {
                    stage: "reply",
                    got: format!("undecodable message: {e}"),
                },
            );
        }
        let code = match e {
            wire::Error::BadVersion(_) => 0,
            wire::Error::Unknown {
                what: "message type",
                ..
            } => 1,
            _ => 6, // BAD_LEN covers truncated and inconsistent bodies
        };
        let out = Outgoing {
            xid,
            message: Message::Error(ErrorMsg {
                code: wire::ErrorCode::from_wire(1, code),
                data: raw[..raw.len().min(ERROR_DATA_LEN)].to_vec(),
            }),
        };
        self.framed.send(out).await?;
        Ok(())
    }

    fn emit_event(&mut self, ev: SwitchEvent) {
        if let Err(mpsc::error::TrySendError::Full(_)) = self.events.try_send(ev) {
            self.dropped_events += 1;
            tracing::warn!(peer = %self.peer, dropped = self.dropped_events, "event queue full, event dropped");
        }
    }

    /// Fails whatever waits on `xid` (and, for a batch, its members).
    fn fail(&mut self, xid: u32, err: SessionError) {
        match self.pending.remove(&xid) {
            Some(Pending::Request { reply, .. }) => {
                let _ = reply.send(Err(err));
            }
            Some(Pending::Barrier { xids, reply, .. }) => {
                for x in &xids {
                    self.pending.remove(x);
                }
                let _ = reply.send(Err(err));
            }
            Some(Pending::Member { barrier, .. }) => self.fail(barrier, err),
            None => {}
        }
    }

    async fn shutdown(mut self, reason: String) {
        tracing::info!(peer = %self.peer, %reason, "switch session ended");
        let xids: Vec<u32> = self.pending.keys().copied().collect();
        for xid in xids {
            self.fail(xid, SessionError::Closed(reason.clone()));
        }
        self.cmds.close();
        while let Ok(cmd) = self.cmds.try_recv() {
            match cmd {
                Command::Request { reply, .. } => {
                    let _ = reply.send(Err(SessionError::Closed(reason.clone())));
                }
                Command::Batch { reply, .. } => {
                    let _ = reply.send(Err(SessionError::Closed(reason.clone())));
                }
                Command::Send { .. } | Command::Close => {}
            }
        }
        let _ = tokio::time::timeout(Duration::from_secs(1), self.framed.close()).await;
        // The receiver may be gone or full; a closed channel tells consumers the same thing.
        let _ = self.events.try_send(SwitchEvent::Disconnected { reason });
    }
}
