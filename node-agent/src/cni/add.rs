//! CNI ADD as a sequence of steps. Each step returns its value and registers its inverse (the
//! functions in `inverses`, which DEL and GC call too), so a failure anywhere, or a client that
//! hung up before the end, leaves nothing behind.

use super::inverses::{Lease, logged};
use super::ipam::{self, IpamCall};
use super::plan::{Plan, plan, requested_ips};
use super::ports::{PortPlugger, keys};
use super::seams::{NodeControl, PodLinks};
use super::state::Record;
use super::undo::Undo;
use super::{Hangup, Inner, cni_args, controller_error};
use futures::FutureExt;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use weft_proto::agent::v1 as agent;
use weft_proto::cni::v1 as pb;
use weft_proto::cni::{CniError, ErrorCode};
use weft_proto::common::v1 as common;

/// Checks what the plugin checked too: the socket is reachable by anything on the node.
pub(crate) fn validate(r: &pb::CniRequest, need_netns: bool) -> Result<(), CniError> {
    let env = |m: String| CniError::new(ErrorCode::InvalidEnvironment, m);
    if !weft_proto::cni::valid_container_id(&r.container_id) {
        return Err(env(format!("invalid container id {:?}", r.container_id)));
    }
    if !weft_proto::cni::valid_ifname(&r.ifname) {
        return Err(env(format!("invalid interface name {:?}", r.ifname)));
    }
    if need_netns && !r.netns.starts_with('/') {
        return Err(env(format!("invalid netns path {:?}", r.netns)));
    }
    Ok(())
}

pub(crate) fn attachment_id(r: &pb::CniRequest) -> common::AttachmentId {
    common::AttachmentId {
        container_id: r.container_id.clone(),
        ifname: r.ifname.clone(),
    }
}

fn pod_ref(r: &pb::CniRequest) -> common::PodRef {
    r.pod.clone().unwrap_or_default()
}

pub(crate) async fn add<P: PortPlugger, L: PodLinks, C: NodeControl>(
    inner: &Arc<Inner<P, L, C>>,
    r: pb::CniRequest,
    hangup: &Hangup,
) -> Result<pb::CniResult, CniError> {
    validate(&r, true)?;
    if r.network.is_empty() {
        return Err(CniError::new(ErrorCode::InvalidConfig, "no network named"));
    }
    let _lock = inner.lock(&r.container_id, &r.ifname).await;
    if inner.state.load(&r.container_id, &r.ifname).is_some() {
        return Err(CniError::new(
            ErrorCode::InterfaceExists,
            format!(
                "attachment {}/{} exists; DEL it first",
                r.container_id, r.ifname
            ),
        ));
    }
    let mut add = Add {
        inner,
        r: &r,
        undo: Undo::new(),
        steps: Steps::new(),
    };
    let res = add.run(hangup).await;
    // The last word is the client's: an attachment nobody heard about would never be deleted.
    let res = res.and_then(|ok| hangup.check().map(|()| ok));
    match res {
        Ok(res) => {
            add.undo.commit();
            tracing::debug!(container = %r.container_id, ifname = %r.ifname, steps_us = ?add.steps.done, "ADD done");
            inner.cfg.metrics.cni_add_steps(&add.steps.done);
            Ok(res)
        }
        Err(e) => {
            tracing::info!(container = %r.container_id, ifname = %r.ifname, code = e.code.value(), msg = %e.msg, "ADD failed; rolling back");
            add.undo.rollback().await;
            Err(e)
        }
    }
}

/// One ADD in progress: the request, the inverses of the steps done so far, their timings.
struct Add<'a, P, L, C> {
    inner: &'a Arc<Inner<P, L, C>>,
    r: &'a pb::CniRequest,
    undo: Undo,
    steps: Steps,
}

impl<P: PortPlugger, L: PodLinks, C: NodeControl> Add<'_, P, L, C> {
    async fn run(&mut self, hangup: &Hangup) -> Result<pb::CniResult, CniError> {
        let (pod, prepared) = self.open_pod_and_prepare().await?;
        hangup.check()?;
        let delegated = self.delegated_ipam().await?;
        let prep = match prepared {
            Some(p) => p,
            None => {
                self.prepare(requested_ips(self.r, delegated.as_ref()))
                    .await?
            }
        };
        let userspace = self.inner.cfg.userspace_datapath;
        let plan = plan(self.r, &prep, delegated.as_ref(), userspace)?;
        hangup.check()?;
        let host = self.create_veth(&pod, &plan).await?;
        self.save_record(&plan)?;
        let ofport = self.take_port_number(&plan.host_if).await?;
        hangup.check()?;
        self.plug_and_attach(&pod, &plan, ofport).await?;
        Ok(plan.result(self.r, host.mac))
    }

    /// Registers `inverse` (given the server's state) to run if the ADD does not commit.
    fn on_undo<F, Fut>(&mut self, what: &'static str, inverse: F)
    where
        F: FnOnce(Arc<Inner<P, L, C>>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), CniError>> + Send + 'static,
    {
        let inner = self.inner.clone();
        self.undo.push(what, move || {
            async move { logged(what, inverse(inner).await) }.boxed()
        });
    }

    /// Opens the pod's netns (`CNI_IFNAME` must not exist there). Without delegated IPAM the
    /// controller's Prepare needs nothing from the pod, so it runs meanwhile; a netns problem is
    /// still the error reported first, and a reservation made meanwhile is rolled back.
    async fn open_pod_and_prepare(
        &mut self,
    ) -> Result<(L::Pod, Option<agent::PrepareReply>), CniError> {
        let (opened, prepared) = if self.r.ipam_type.is_empty() {
            let ((opened, netns_took), (prepared, prepare_took)) = tokio::join!(
                timed(self.open_pod()),
                timed(prepare_call(self.inner, self.r, self.r.ips.clone()))
            );
            self.steps.record("netns", netns_took);
            self.steps.record("prepare", prepare_took);
            if prepared.is_ok() {
                self.on_undo_detach();
            }
            (opened, Some(prepared))
        } else {
            (self.open_pod().await, None)
        };
        self.steps.mark("netns_prepare");
        let pod = opened?;
        Ok((pod, prepared.transpose()?))
    }

    async fn open_pod(&self) -> Result<L::Pod, CniError> {
        let links = &self.inner.links;
        let pod = links.open_pod(&self.r.netns).await?;
        if links.pod_link(&pod, &self.r.ifname).await?.is_some() {
            return Err(CniError::new(
                ErrorCode::InterfaceExists,
                format!(
                    "interface {} already exists in {}",
                    self.r.ifname, self.r.netns
                ),
            ));
        }
        Ok(pod)
    }

    /// Delegated IPAM, when the network configuration names a plugin.
    async fn delegated_ipam(&mut self) -> Result<Option<pb::CniResult>, CniError> {
        let r = self.r;
        if r.ipam_type.is_empty() {
            return Ok(None);
        }
        let lease = Lease::of_request(r);
        let call = IpamCall {
            netns: &r.netns,
            ..lease.call()
        };
        let result = ipam::run("ADD", &call).await?;
        self.on_undo("ipam release", move |i| async move {
            i.release_lease(&lease).await
        });
        self.steps.mark("ipam");
        Ok(result)
    }

    /// PrepareAttachment after delegated IPAM: the controller checks the namespace and
    /// reserves the MAC and the plugin's addresses.
    async fn prepare(&mut self, ips: Vec<String>) -> Result<agent::PrepareReply, CniError> {
        let p = prepare_call(self.inner, self.r, ips).await?;
        self.on_undo_detach();
        self.steps.mark("prepare");
        Ok(p)
    }

    fn on_undo_detach(&mut self) {
        let (cid, ifname) = (self.r.container_id.clone(), self.r.ifname.clone());
        self.on_undo(
            "detach",
            move |i| async move { i.detach(&cid, &ifname).await },
        );
    }

    /// The veth pair, after removing a leftover of an earlier attempt with the same identity
    /// (an agent killed mid-ADD). Returns the host end.
    async fn create_veth(
        &mut self,
        pod: &L::Pod,
        plan: &Plan,
    ) -> Result<crate::netlink::LinkInfo, CniError> {
        let links = &self.inner.links;
        links.delete_veth(&plan.host_if).await?;
        self.steps.mark("stale_check");
        let host = links
            .create_veth(&plan.host_if, pod, &self.r.ifname, plan.mac, plan.mtu)
            .await?;
        let name = plan.host_if.clone();
        self.on_undo(
            "delete veth",
            move |i| async move { i.delete_veth(&name).await },
        );
        self.steps.mark("add_veth");
        Ok(host)
    }

    /// The record DEL, CHECK and GC rely on.
    fn save_record(&mut self, plan: &Plan) -> Result<(), CniError> {
        let r = self.r;
        let pod = pod_ref(r);
        let record = Record {
            container_id: r.container_id.clone(),
            ifname: r.ifname.clone(),
            netns: r.netns.clone(),
            network: r.network.clone(),
            host_if: plan.host_if.clone(),
            mac: plan.mac.to_string(),
            ips: plan.addresses.clone(),
            mtu: plan.mtu,
            pod_namespace: pod.namespace,
            pod_name: pod.name,
            pod_uid: pod.uid,
            ipam_type: r.ipam_type.clone(),
            ipam_config: String::from_utf8_lossy(&r.ipam_config).into_owned(),
            cni_path: r.cni_path.clone(),
            cni_args: cni_args(r),
        };
        self.inner.state.save(&record).map_err(|e| {
            CniError::new(
                ErrorCode::IoFailure,
                format!("saving attachment record: {e}"),
            )
        })?;
        let (cid, ifname) = (r.container_id.clone(), r.ifname.clone());
        self.on_undo(
            "forget record",
            move |i| async move { i.forget(&cid, &ifname) },
        );
        self.steps.mark("record");
        Ok(())
    }

    /// The port's OpenFlow number, chosen here so the controller can install its flows while
    /// ovs-vswitchd is still opening the device (see `port_numbers` for why that is safe).
    async fn take_port_number(&mut self, host_if: &str) -> Result<u32, CniError> {
        let n = self.inner.take_port_number(host_if).await?;
        let name = host_if.to_string();
        self.on_undo("release port number", move |i| async move {
            i.release_port_number(&name).await;
            Ok(())
        });
        self.steps.mark("port_number");
        Ok(n)
    }

    /// At once: the pod end's addresses and routes, the OVS port, and the attachment, which
    /// returns once flows are confirmed on every affected switch (bounded).
    async fn plug_and_attach(
        &mut self,
        pod: &L::Pod,
        plan: &Plan,
        ofport: u32,
    ) -> Result<(), CniError> {
        let (inner, r) = (self.inner, self.r);
        let ids = port_ids(r, plan);
        let attach = agent::AttachRequest {
            node_name: inner.cfg.node_name.clone(),
            network: r.network.clone(),
            id: Some(attachment_id(r)),
            pod: Some(pod_ref(r)),
            ofport,
        };
        let wait = inner.cfg.attach_timeout;
        let (configured, port, attached) = tokio::join!(
            timed(inner.links.configure_pod(pod, &r.ifname, &plan.pod)),
            timed(inner.ports.add_port(&plan.host_if, &ids, Some(ofport))),
            timed(tokio::time::timeout(wait, inner.controller.attach(attach))),
        );
        // Registered even on failure: a timed-out add may still have created the row.
        let name = plan.host_if.clone();
        self.on_undo(
            "delete port",
            move |i| async move { i.delete_port(&name).await },
        );
        self.steps.record("pod_config", configured.1);
        self.steps.record("ovs_port", port.1);
        self.steps.record("attach", attached.1);
        self.steps.mark("parallel");
        configured.0?;
        port.0
            .map_err(|e| CniError::new(ErrorCode::OvsFailed, e.to_string()))?;
        match attached.0 {
            Err(_) => Err(CniError::new(
                ErrorCode::FlowsNotConfirmed,
                format!(
                    "controller did not confirm flows for {} within {wait:?}",
                    plan.host_if
                ),
            )),
            Ok(Err(s)) => Err(controller_error("Attach", &s)),
            Ok(Ok(())) => Ok(()),
        }
    }
}

/// PrepareAttachment: the controller checks the namespace and reserves MAC and addresses.
async fn prepare_call<P, L, C: NodeControl>(
    inner: &Inner<P, L, C>,
    r: &pb::CniRequest,
    ips: Vec<String>,
) -> Result<agent::PrepareReply, CniError> {
    let to = inner.cfg.controller_timeout;
    let req = agent::PrepareRequest {
        node_name: inner.cfg.node_name.clone(),
        network: r.network.clone(),
        id: Some(attachment_id(r)),
        pod: Some(pod_ref(r)),
        mac: r.mac.clone(),
        ips,
    };
    match tokio::time::timeout(to, inner.controller.prepare(req)).await {
        Err(_) => Err(CniError::new(
            ErrorCode::TryAgain,
            format!("controller did not answer PrepareAttachment within {to:?}"),
        )),
        Ok(Err(s)) => Err(controller_error("PrepareAttachment", &s)),
        Ok(Ok(p)) => Ok(p),
    }
}

/// The OVS port's `external_ids`: who made it and for which pod, so GC can find it later.
fn port_ids(r: &pb::CniRequest, plan: &Plan) -> BTreeMap<String, String> {
    let pod = pod_ref(r);
    let mac = plan.mac.to_string();
    [
        (keys::OWNER, keys::OWNER_CNI),
        (keys::NETWORK, r.network.as_str()),
        (keys::POD_NAMESPACE, pod.namespace.as_str()),
        (keys::POD_NAME, pod.name.as_str()),
        (keys::POD_UID, pod.uid.as_str()),
        (keys::CONTAINER_ID, r.container_id.as_str()),
        (keys::IFNAME, r.ifname.as_str()),
        (keys::NETNS, r.netns.as_str()),
        (keys::ATTACHED_MAC, mac.as_str()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// Runs `f` and says how long it took (the concurrent steps of an ADD are timed each alone).
async fn timed<T>(f: impl Future<Output = T>) -> (T, Duration) {
    let start = Instant::now();
    let out = f.await;
    (out, start.elapsed())
}

/// Per-step durations of one ADD, logged at debug level and summed in the agent's metrics.
struct Steps {
    last: Instant,
    done: Vec<(&'static str, u128)>,
}

impl Steps {
    fn new() -> Self {
        Steps {
            last: Instant::now(),
            done: Vec::new(),
        }
    }
    /// A step that ran alongside others, timed on its own.
    fn record(&mut self, step: &'static str, took: Duration) {
        self.done.push((step, took.as_micros()));
    }
    fn mark(&mut self, step: &'static str) {
        let now = Instant::now();
        self.done.push((step, (now - self.last).as_micros()));
        self.last = now;
    }
}
