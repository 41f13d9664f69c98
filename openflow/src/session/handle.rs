//! [`SwitchHandle`]: the cheap, cloneable way to talk to one switch.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use tokio::sync::{mpsc, oneshot};

use super::SessionError;
use super::conn::Command;
use crate::codec::Outgoing;
use crate::wire::{
    BundleAdd, BundleControl, BundleCtrlType, BundleFlags, ErrorMsg, FlowStats, FlowStatsRequest,
    GroupDesc, Message, MultipartReplyBody, MultipartRequest, MultipartRequestBody, PortDesc,
};

/// Outcome of a batch closed by a barrier: the xids used, and the messages the switch rejected
/// (by index in the batch). Messages without an error were applied before the barrier reply.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchReport {
    pub xids: Vec<u32>,
    pub errors: Vec<(usize, ErrorMsg)>,
}

impl BatchReport {
    /// `Ok` when the switch accepted every message, else the first rejection.
    pub fn into_result(self) -> Result<(), SessionError> {
        match self.errors.into_iter().min_by_key(|(i, _)| *i) {
            None => Ok(()),
            Some((index, error)) => Err(SessionError::Rejected { index, error }),
        }
    }
}

/// Talks to one switch through its session task. Clones share the session.
#[derive(Clone)]
pub struct SwitchHandle {
    pub(super) tx: mpsc::Sender<Command>,
    pub(super) peer: SocketAddr,
    pub(super) dpid: Arc<AtomicU64>,
    pub(super) next_xid: Arc<AtomicU32>,
    pub(super) next_bundle: Arc<AtomicU32>,
}

impl std::fmt::Debug for SwitchHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SwitchHandle")
            .field("peer", &self.peer)
            .field("dpid", &format_args!("{:016x}", self.datapath_id()))
            .finish()
    }
}

impl SwitchHandle {
    pub fn datapath_id(&self) -> u64 {
        self.dpid.load(Ordering::Relaxed)
    }

    pub(super) fn set_datapath_id(&self, dpid: u64) {
        self.dpid.store(dpid, Ordering::Relaxed);
    }

    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// True once the session has ended.
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }

    /// Resolves when the session ends, for whatever reason.
    pub async fn closed(&self) {
        self.tx.closed().await
    }

    /// Ends the session.
    pub async fn close(&self) {
        let _ = self.tx.send(Command::Close).await;
    }

    /// A fresh xid. Our own echo requests use the top half of the range; callers the bottom.
    fn xid(&self) -> u32 {
        self.next_xid.fetch_add(1, Ordering::Relaxed) & 0x7fff_ffff
    }

    async fn command(&self, cmd: Command) -> Result<(), SessionError> {
        self.tx
            .send(cmd)
            .await
            .map_err(|_| SessionError::Closed("session task has ended".into()))
    }

    /// Writes one message without waiting for anything; returns its xid.
    pub async fn send(&self, message: Message) -> Result<u32, SessionError> {
        let xid = self.xid();
        self.command(Command::Send {
            msgs: vec![Outgoing { xid, message }],
        })
        .await?;
        Ok(xid)
    }

    /// Sends a request and waits for its reply (a multipart reply arrives merged across its
    /// MORE parts); an ERROR from the switch becomes [`SessionError::Switch`].
    pub async fn request(&self, message: Message) -> Result<Message, SessionError> {
        let (reply, rx) = oneshot::channel();
        let out = Outgoing {
            xid: self.xid(),
            message,
        };
        self.command(Command::Request { out, reply }).await?;
        rx.await
            .map_err(|_| SessionError::Closed("session ended before the reply".into()))?
    }

    /// Sends the messages followed by a barrier and waits for the barrier reply, collecting the
    /// errors of any message the switch rejected.
    pub async fn batch(&self, messages: Vec<Message>) -> Result<BatchReport, SessionError> {
        let msgs = messages
            .into_iter()
            .map(|message| Outgoing {
                xid: self.xid(),
                message,
            })
            .collect();
        let (reply, rx) = oneshot::channel();
        self.command(Command::Batch {
            msgs,
            barrier_xid: self.xid(),
            reply,
        })
        .await?;
        rx.await
            .map_err(|_| SessionError::Closed("session ended before the barrier reply".into()))?
    }

    /// Waits until the switch has processed everything sent before.
    pub async fn barrier(&self) -> Result<(), SessionError> {
        self.batch(Vec::new()).await?.into_result()
    }

    /// One multipart request, its reply parts merged.
    pub async fn multipart(
        &self,
        body: MultipartRequestBody,
    ) -> Result<MultipartReplyBody, SessionError> {
        match self
            .request(Message::MultipartRequest(MultipartRequest::new(body)))
            .await?
        {
            Message::MultipartReply(r) => Ok(r.body),
            other => Err(SessionError::Unexpected {
                stage: "multipart",
                got: format!("message type {}", other.msg_type()),
            }),
        }
    }

    pub async fn flow_stats(&self, req: FlowStatsRequest) -> Result<Vec<FlowStats>, SessionError> {
        match self.multipart(MultipartRequestBody::Flow(req)).await? {
            MultipartReplyBody::Flow(v) => Ok(v),
            other => Err(unexpected_body("flow stats", &other)),
        }
    }

    pub async fn group_desc(&self) -> Result<Vec<GroupDesc>, SessionError> {
        match self.multipart(MultipartRequestBody::GroupDesc).await? {
            MultipartReplyBody::GroupDesc(v) => Ok(v),
            other => Err(unexpected_body("group desc", &other)),
        }
    }

    pub async fn port_desc(&self) -> Result<Vec<PortDesc>, SessionError> {
        match self.multipart(MultipartRequestBody::PortDesc).await? {
            MultipartReplyBody::PortDesc(v) => Ok(v),
            other => Err(unexpected_body("port desc", &other)),
        }
    }

    /// Applies `messages` atomically in one bundle (ONF extension 230 on OpenFlow 1.3):
    /// either the switch commits all of them or none. A rejected message discards the bundle.
    pub async fn bundle_commit(&self, messages: Vec<Message>) -> Result<(), SessionError> {
        self.bundle(messages, true).await
    }

    /// Opens a bundle, adds `messages` and discards it: nothing is applied. Useful to validate a
    /// change set against the switch without applying it.
    pub async fn bundle_discard(&self, messages: Vec<Message>) -> Result<(), SessionError> {
        self.bundle(messages, false).await
    }

    async fn bundle(&self, messages: Vec<Message>, commit: bool) -> Result<(), SessionError> {
        let id = self.next_bundle.fetch_add(1, Ordering::Relaxed);
        let flags = BundleFlags::ATOMIC | BundleFlags::ORDERED;
        self.bundle_ctrl(
            id,
            BundleCtrlType::OpenRequest,
            flags,
            BundleCtrlType::OpenReply,
        )
        .await?;
        let adds = messages
            .into_iter()
            .map(|m| {
                Message::BundleAdd(BundleAdd {
                    bundle_id: id,
                    flags: BundleFlags(flags),
                    message: Box::new(m),
                    properties: Vec::new(),
                })
            })
            .collect();
        let added = self.batch(adds).await.and_then(BatchReport::into_result);
        if let Err(e) = added {
            let _ = self
                .bundle_ctrl(
                    id,
                    BundleCtrlType::DiscardRequest,
                    flags,
                    BundleCtrlType::DiscardReply,
                )
                .await;
            return Err(e);
        }
        if commit {
            self.bundle_ctrl(
                id,
                BundleCtrlType::CommitRequest,
                flags,
                BundleCtrlType::CommitReply,
            )
            .await
        } else {
            self.bundle_ctrl(
                id,
                BundleCtrlType::DiscardRequest,
                flags,
                BundleCtrlType::DiscardReply,
            )
            .await
        }
    }

    async fn bundle_ctrl(
        &self,
        id: u32,
        ctrl: BundleCtrlType,
        flags: u16,
        want: BundleCtrlType,
    ) -> Result<(), SessionError> {
        let msg = Message::BundleControl(BundleControl::new(id, ctrl, flags));
        match self.request(msg).await? {
            Message::BundleControl(r) if r.ctrl_type == want && r.bundle_id == id => Ok(()),
            other => Err(SessionError::Unexpected {
                stage: "bundle control",
                got: format!("{other:?}"),
            }),
        }
    }
}

fn unexpected_body(stage: &'static str, body: &MultipartReplyBody) -> SessionError {
    SessionError::Unexpected {
        stage,
        got: format!("multipart reply of type {}", body.typ()),
    }
}
