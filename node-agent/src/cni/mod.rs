//! The agent's CNI server: `weft-cni` connects over a unix socket (gRPC, `weft.cni.v1.Cni`) and
//! the agent does the work: controller checks and IPAM, the veth pair, the pod end's name, MAC,
//! MTU, addresses and routes, the OVS port, and the wait for flows. See docs/cni.md.

mod add;
mod del;
#[cfg(test)]
mod fakes;
mod inverses;
mod ipam;
mod plan;
pub(crate) mod port_numbers;
pub mod ports;
pub(crate) mod seams;
pub(crate) mod state;
#[cfg(test)]
mod tests;
mod undo;

use crate::netlink::NetlinkError;
use ports::PortPlugger;
use seams::{KernelLinks, NodeControl, PodLinks};
use state::StateDir;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::UnixListener;
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Response, Status};
use weft_proto::agent::v1::node_control_client::NodeControlClient;
use weft_proto::cni::v1 as pb;
use weft_proto::cni::{CniError, ErrorCode};
use weft_proto::error_detail::ErrorReason;

pub(crate) use weft_proto::cni::v1::cni_server::CniServer;

/// Where and how the CNI server runs.
#[derive(Debug, Clone)]
pub struct CniConfig {
    pub node_name: String,
    /// The controller's NodeControl endpoint, e.g. `http://10.0.0.1:6640`.
    pub controller: String,
    /// Network namespace of the bridge (where host ends of veths live); `None` = the agent's own.
    pub host_netns: Option<PathBuf>,
    /// Per-attachment records (`/run/weft/cni`).
    pub state_dir: PathBuf,
    /// Bound on the wait for the controller to confirm flows (ADD fails with 105 after it).
    pub attach_timeout: Duration,
    /// Bound on every other controller call (ADD/DEL fail with 11 after it).
    pub controller_timeout: Duration,
    /// How often ports whose pod netns vanished are collected; `None` = never on its own.
    pub gc_interval: Option<Duration>,
    /// The bridge uses OVS's userspace datapath (`netdev`): pod ends get TX checksum offload off.
    pub userspace_datapath: bool,
    /// Where request counts and ADD timings go (the agent's `/metrics`).
    pub metrics: Arc<crate::metrics::Metrics>,
}

impl CniConfig {
    pub fn new(node_name: &str, controller: &str) -> Self {
        CniConfig {
            node_name: node_name.to_string(),
            controller: controller.to_string(),
            host_netns: None,
            state_dir: PathBuf::from("/run/weft/cni"),
            attach_timeout: Duration::from_secs(30),
            controller_timeout: Duration::from_secs(10),
            gc_interval: Some(Duration::from_secs(60)),
            userspace_datapath: false,
            metrics: Arc::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CniServerError {
    #[error("state directory {0}: {1}")]
    State(PathBuf, #[source] std::io::Error),
    #[error("socket {0}: {1}")]
    Socket(PathBuf, #[source] std::io::Error),
    #[error("controller endpoint {0:?}: {1}")]
    Controller(String, String),
    #[error(transparent)]
    Netlink(#[from] NetlinkError),
    #[error("serving: {0}")]
    Serve(#[from] tonic::transport::Error),
}

/// One attachment's lock.
type LockCell = Arc<tokio::sync::Mutex<()>>;

pub(crate) struct Inner<P, L, C> {
    pub cfg: CniConfig,
    pub ports: P,
    pub links: L,
    pub controller: C,
    pub state: StateDir,
    locks: Mutex<HashMap<(String, String), LockCell>>,
    /// Pod port numbers; loaded from the bridge on first use.
    numbers: tokio::sync::Mutex<Option<port_numbers::PortNumbers>>,
}

impl<P, L, C> Inner<P, L, C> {
    /// Serialises operations on one attachment (container id, ifname).
    pub(crate) async fn lock(&self, cid: &str, ifname: &str) -> AttachmentLock {
        let key = (cid.to_string(), ifname.to_string());
        let m = {
            let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
            locks.entry(key).or_default().clone()
        };
        AttachmentLock(m.lock_owned().await)
    }

    /// An OpenFlow port number for pod port `host_if`, free on the bridge.
    pub(crate) async fn take_port_number(&self, host_if: &str) -> Result<u32, CniError>
    where
        P: PortPlugger,
    {
        let mut numbers = self.numbers.lock().await;
        if numbers.is_none() {
            let existing = self.ports.port_numbers().await.map_err(|e| {
                CniError::new(ErrorCode::OvsFailed, format!("reading port numbers: {e}"))
            })?;
            *numbers = Some(port_numbers::PortNumbers::new(existing));
        }
        numbers
            .as_mut()
            .and_then(|n| n.take(host_if))
            .ok_or_else(|| CniError::new(ErrorCode::OvsFailed, "no free OpenFlow port number left"))
    }

    pub(crate) fn unlock_gc(&self) {
        let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
        locks.retain(|_, m| Arc::strong_count(m) > 1);
    }
}

pub(crate) struct AttachmentLock(#[allow(dead_code)] tokio::sync::OwnedMutexGuard<()>);

/// The CNI service; wrap it in [`CniServer`] or run it with [`serve`]. Production uses the
/// default kernel links and controller client; tests may bring their own seams.
pub struct CniService<P, L = KernelLinks, C = NodeControlClient<Channel>> {
    inner: Arc<Inner<P, L, C>>,
}

impl<P, L, C> Clone for CniService<P, L, C> {
    fn clone(&self) -> Self {
        CniService {
            inner: self.inner.clone(),
        }
    }
}

impl<P: PortPlugger> CniService<P> {
    /// Needs a tokio runtime (opens a netlink socket in the host namespace).
    pub async fn new(cfg: CniConfig, ports: P) -> Result<Self, CniServerError> {
        let channel = Endpoint::from_shared(cfg.controller.clone())
            .map_err(|e| CniServerError::Controller(cfg.controller.clone(), e.to_string()))?
            .connect_timeout(Duration::from_secs(2))
            .connect_lazy();
        Self::with_controller(cfg, ports, NodeControlClient::new(channel)).await
    }

    /// Like [`CniService::new`] with a controller client made by the caller (e.g. over mutual
    /// TLS, shared with the agent's controller link); `cfg.controller` is then only logged.
    pub(crate) async fn with_controller(
        cfg: CniConfig,
        ports: P,
        controller: NodeControlClient<Channel>,
    ) -> Result<Self, CniServerError> {
        let links = KernelLinks::new(cfg.host_netns.as_deref()).await?;
        CniService::from_parts(cfg, ports, links, controller)
    }
}

impl<P: PortPlugger, L: PodLinks, C: NodeControl> CniService<P, L, C> {
    /// A service over the given seams; fails only when the state directory cannot be made.
    pub(crate) fn from_parts(
        cfg: CniConfig,
        ports: P,
        links: L,
        controller: C,
    ) -> Result<Self, CniServerError> {
        let state = StateDir::new(&cfg.state_dir)
            .map_err(|e| CniServerError::State(cfg.state_dir.clone(), e))?;
        Ok(CniService {
            inner: Arc::new(Inner {
                cfg,
                ports,
                links,
                controller,
                state,
                locks: Mutex::new(HashMap::new()),
                numbers: tokio::sync::Mutex::new(None),
            }),
        })
    }

    /// Removes attachments whose pod netns or host link is gone (pods deleted without DEL).
    /// Returns how many were removed.
    pub async fn collect_orphans(&self) -> usize {
        del::collect_orphans(&self.inner).await
    }

    /// Runs [`CniService::collect_orphans`] every `gc_interval` until the service is dropped.
    pub(crate) fn spawn_gc(&self) -> Option<tokio::task::JoinHandle<()>> {
        let every = self.inner.cfg.gc_interval?;
        let weak = Arc::downgrade(&self.inner);
        Some(tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                let Some(inner) = weak.upgrade() else { return };
                let n = del::collect_orphans(&inner).await;
                if n > 0 {
                    tracing::info!(removed = n, "collected orphaned pod ports");
                }
            }
        }))
    }
}

/// Creates the socket's directory, removes a stale socket, binds, and restricts access to root.
pub fn bind(path: &Path) -> Result<UnixListener, CniServerError> {
    let err = |e| CniServerError::Socket(path.to_path_buf(), e);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(err(e)),
        _ => {}
    }
    let l = UnixListener::bind(path).map_err(err)?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(err)?;
    Ok(l)
}

pub async fn serve_listener<P: PortPlugger, L: PodLinks, C: NodeControl>(
    service: CniService<P, L, C>,
    listener: UnixListener,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> Result<(), CniServerError> {
    let gc = service.spawn_gc();
    let res = tonic::transport::Server::builder()
        .add_service(CniServer::new(service))
        .serve_with_incoming_shutdown(
            tokio_stream::wrappers::UnixListenerStream::new(listener),
            shutdown,
        )
        .await;
    if let Some(gc) = gc {
        gc.abort();
    }
    Ok(res?)
}

fn reply(r: Result<Option<pb::CniResult>, CniError>) -> Result<Response<pb::CniReply>, Status> {
    Ok(Response::new(match r {
        Ok(result) => pb::CniReply {
            result,
            error: None,
        },
        Err(e) => pb::CniReply {
            result: None,
            error: Some(e.into()),
        },
    }))
}

/// Whether the client that sent a request hung up before its answer: tonic drops the
/// request's future then, and with it the [`HangupMark`]. ADD checks it between steps and before
/// it commits.
#[derive(Debug, Clone, Default)]
pub(crate) struct Hangup(Arc<AtomicBool>);

impl Hangup {
    /// Held by the request's future; marks the hang-up when dropped.
    fn mark_on_drop(&self) -> HangupMark {
        HangupMark(self.clone())
    }

    /// `TryAgain` once the client is gone: nobody would learn of the work, so it is undone.
    pub(crate) fn check(&self) -> Result<(), CniError> {
        if self.0.load(Ordering::Acquire) {
            return Err(CniError::new(
                ErrorCode::TryAgain,
                "the client hung up before the request finished; undone",
            ));
        }
        Ok(())
    }
}

pub(crate) struct HangupMark(Hangup);

impl Drop for HangupMark {
    fn drop(&mut self) {
        (self.0).0.store(true, Ordering::Release);
    }
}

/// Runs `f` on its own task: a client that hangs up mid-ADD must not cancel the rollback.
async fn detached<P, L, C, F, Fut, T>(inner: &Arc<Inner<P, L, C>>, f: F) -> Result<T, CniError>
where
    P: Send + Sync + 'static,
    L: Send + Sync + 'static,
    C: Send + Sync + 'static,
    F: FnOnce(Arc<Inner<P, L, C>>) -> Fut,
    Fut: std::future::Future<Output = Result<T, CniError>> + Send + 'static,
    T: Send + 'static,
{
    let res = tokio::spawn(f(inner.clone())).await.unwrap_or_else(|e| {
        Err(CniError::new(
            ErrorCode::IoFailure,
            format!("agent task failed: {e}"),
        ))
    });
    inner.unlock_gc();
    res
}

impl<P, L, C> CniService<P, L, C> {
    /// Counts the request by outcome, then answers it.
    fn counted(
        &self,
        command: &'static str,
        res: Result<Option<pb::CniResult>, CniError>,
    ) -> Result<Response<pb::CniReply>, Status> {
        let code = res.as_ref().err().map_or(0, |e| e.code.value());
        self.inner.cfg.metrics.cni_request(command, code);
        reply(res)
    }
}

#[tonic::async_trait]
impl<P: PortPlugger, L: PodLinks, C: NodeControl> weft_proto::cni::v1::cni_server::Cni
    for CniService<P, L, C>
{
    async fn add(&self, r: Request<pb::CniRequest>) -> Result<Response<pb::CniReply>, Status> {
        let r = r.into_inner();
        let started = std::time::Instant::now();
        let hangup = Hangup::default();
        let _mark = hangup.mark_on_drop();
        let res = detached(&self.inner, |i| async move {
            add::add(&i, r, &hangup).await.map(Some)
        })
        .await;
        if res.is_ok() {
            self.inner.cfg.metrics.cni_add.observe(started.elapsed());
        }
        self.counted("ADD", res)
    }

    async fn check(&self, r: Request<pb::CniRequest>) -> Result<Response<pb::CniReply>, Status> {
        let r = r.into_inner();
        let res = detached(&self.inner, |i| async move {
            del::check(&i, r).await.map(|_| None)
        })
        .await;
        self.counted("CHECK", res)
    }

    async fn del(&self, r: Request<pb::CniRequest>) -> Result<Response<pb::CniReply>, Status> {
        let r = r.into_inner();
        let res = detached(&self.inner, |i| async move {
            del::del(&i, r).await.map(|_| None)
        })
        .await;
        self.counted("DEL", res)
    }

    async fn gc(&self, r: Request<pb::CniRequest>) -> Result<Response<pb::CniReply>, Status> {
        let r = r.into_inner();
        let res = detached(&self.inner, |i| async move {
            del::gc(&i, r).await.map(|_| None)
        })
        .await;
        self.counted("GC", res)
    }

    async fn status(&self, _r: Request<pb::CniRequest>) -> Result<Response<pb::CniReply>, Status> {
        let res = del::status(&self.inner).await.map(|_| None);
        self.counted("STATUS", res)
    }
}

/// Host end name: `wf` + 12 hex digits of FNV-1a over container id and interface (stable across
/// agent restarts and Rust versions, 14 bytes: within IFNAMSIZ).
pub fn host_ifname(container_id: &str, ifname: &str) -> String {
    format!("wf{:012x}", fnv1a(container_id, ifname) >> 16)
}

fn fnv1a(container_id: &str, ifname: &str) -> u64 {
    weft_types::hash::Fnv1a::new()
        .parts([container_id, ifname])
        .finish()
}

/// Maps a controller answer to a CNI error. A refusal carries its reason, mapped in
/// [`cni_code`]; a status without one never came from the controller's logic (it was not
/// reached, or did not answer in time), so the runtime should try again later.
pub fn controller_error(what: &str, s: &Status) -> CniError {
    use tonic::Code;
    let code = match weft_proto::error_detail::reason(s) {
        Some(reason) => cni_code(reason),
        None => match s.code() {
            Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled | Code::Aborted => {
                ErrorCode::TryAgain
            }
            _ => ErrorCode::ControllerError,
        },
    };
    CniError::new(code, format!("{what}: {}", s.message()))
}

/// The CNI code a container runtime gets for each reason the controller gives.
pub(crate) fn cni_code(reason: ErrorReason) -> ErrorCode {
    use ErrorReason as R;
    match reason {
        R::InvalidRequest => ErrorCode::InvalidConfig,
        R::UnknownNetwork => ErrorCode::UnknownNetwork,
        R::NamespaceNotAllowed => ErrorCode::NamespaceNotAllowed,
        R::AddressInUse => ErrorCode::AddressInUse,
        R::AddressRefused => ErrorCode::AddressRefused,
        R::SubnetFull => ErrorCode::SubnetFull,
        R::FlowsNotConfirmed => ErrorCode::FlowsNotConfirmed,
        // The node registers when its agent starts; an ADD that races it should be retried.
        R::UnknownNode | R::StateNotPersisted => ErrorCode::TryAgain,
        R::AlreadyExists
        | R::SegmentsExhausted
        | R::InUse
        | R::NotPrepared
        | R::NodeMismatch
        | R::Unspecified => ErrorCode::ControllerError,
    }
}

/// The request's `CNI_ARGS` again, for delegated plugins.
pub(crate) fn cni_args(r: &pb::CniRequest) -> String {
    let mut parts = vec!["IgnoreUnknown=1".to_string()];
    if let Some(p) = &r.pod {
        for (k, v) in [
            ("K8S_POD_NAMESPACE", &p.namespace),
            ("K8S_POD_NAME", &p.name),
            ("K8S_POD_UID", &p.uid),
            ("K8S_POD_INFRA_CONTAINER_ID", &r.infra_container_id),
        ] {
            if !v.is_empty() {
                parts.push(format!("{k}={v}"));
            }
        }
    }
    let mut extra: Vec<_> = r.extra_args.iter().collect();
    extra.sort();
    parts.extend(extra.into_iter().map(|(k, v)| format!("{k}={v}")));
    parts.join(";")
}
