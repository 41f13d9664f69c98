//! CNI ADD: every step registers its inverse, so a failure anywhere leaves nothing behind.

use super::inverses::{Lease, logged};
use super::ipam::{self, IpamCall};
use super::ports::{PortPlugger, keys};
use super::state::Record;
use super::undo::Undo;
use super::{Inner, cni_args, controller_error, host_ifname};
use crate::netlink::{Netlink, NetlinkError, open_netns, parse_cidr};
use futures::FutureExt;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use weft_proto::agent::v1 as agent;
use weft_proto::cni::v1 as pb;
use weft_proto::cni::{CniError, ErrorCode};
use weft_proto::common::v1 as common;
use weft_types::MacAddr;

fn link_err(e: NetlinkError) -> CniError {
    CniError::new(ErrorCode::LinkFailed, e.to_string())
}

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

pub(crate) fn pod_ref(r: &pb::CniRequest) -> common::PodRef {
    r.pod.clone().unwrap_or_default()
}

pub(crate) async fn add<P: PortPlugger>(
    inner: &Arc<Inner<P>>,
    r: pb::CniRequest,
) -> Result<pb::CniResult, CniError> {
    let mut steps = Steps::new();
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
    let mut undo = Undo::new();
    // Without delegated IPAM, the controller's Prepare needs nothing from the pod: ask it while
    // the pod's netns is opened and checked. A netns problem is still the error reported first,
    // and a reservation made meanwhile is released by the rollback.
    let (opened, prepared) = if r.ipam_type.is_empty() {
        let ((opened, netns_took), (prepared, prepare_took)) = tokio::join!(
            timed(open_pod(&r)),
            timed(prepare(inner, &r, r.ips.clone()))
        );
        steps.record("netns", netns_took);
        steps.record("prepare", prepare_took);
        if prepared.is_ok() {
            push_detach(inner, &r, &mut undo);
        }
        (opened, Some(prepared))
    } else {
        (open_pod(&r).await, None)
    };
    let prepared = match (opened, prepared) {
        (Ok(pod), Some(Ok(p))) => Ok((pod, Some(p))),
        (Ok(pod), None) => Ok((pod, None)),
        (Err(e), _) | (_, Some(Err(e))) => Err(e),
    };
    steps.mark("netns_prepare");
    let res = match prepared {
        Ok(((ns, pod), prep)) => plumb(inner, &r, &ns, &pod, prep, &mut undo, &mut steps).await,
        Err(e) => Err(e),
    };
    match res {
        Ok(res) => {
            undo.commit();
            Ok(res)
        }
        Err(e) => {
            tracing::info!(container = %r.container_id, ifname = %r.ifname, code = e.code.value(), msg = %e.msg, "ADD failed; rolling back");
            undo.rollback().await;
            Err(e)
        }
    }
}

/// The pod's netns, opened, with a netlink socket inside it; fails if `CNI_IFNAME` exists there.
async fn open_pod(r: &pb::CniRequest) -> Result<(std::fs::File, Netlink), CniError> {
    let netns_path = Path::new(&r.netns);
    let bad_netns =
        |e: NetlinkError| CniError::new(ErrorCode::InvalidEnvironment, format!("CNI_NETNS: {e}"));
    let ns = open_netns(netns_path).map_err(bad_netns)?;
    let ns_for_socket = ns
        .try_clone()
        .map_err(|e| CniError::new(ErrorCode::IoFailure, format!("dup netns fd: {e}")))?;
    let pod = Netlink::in_netns_file(ns_for_socket, netns_path)
        .await
        .map_err(bad_netns)?;
    if pod.link(&r.ifname).await.map_err(link_err)?.is_some() {
        return Err(CniError::new(
            ErrorCode::InterfaceExists,
            format!("interface {} already exists in {}", r.ifname, r.netns),
        ));
    }
    Ok((ns, pod))
}

/// PrepareAttachment: the controller checks the namespace and reserves MAC and addresses.
async fn prepare<P: PortPlugger>(
    inner: &Arc<Inner<P>>,
    r: &pb::CniRequest,
    requested_ips: Vec<String>,
) -> Result<agent::PrepareReply, CniError> {
    let to = inner.cfg.controller_timeout;
    let req = agent::PrepareRequest {
        node_name: inner.cfg.node_name.clone(),
        network: r.network.clone(),
        id: Some(attachment_id(r)),
        pod: Some(pod_ref(r)),
        mac: r.mac.clone(),
        ips: requested_ips,
    };
    match tokio::time::timeout(to, inner.controller.clone().prepare_attachment(req)).await {
        Err(_) => Err(CniError::new(
            ErrorCode::TryAgain,
            format!("controller did not answer PrepareAttachment within {to:?}"),
        )),
        Ok(Err(s)) => Err(controller_error("PrepareAttachment", &s)),
        Ok(Ok(p)) => Ok(p.into_inner()),
    }
}

async fn plumb<P: PortPlugger>(
    inner: &Arc<Inner<P>>,
    r: &pb::CniRequest,
    ns: &std::fs::File,
    pod: &Netlink,
    prepared: Option<agent::PrepareReply>,
    undo: &mut Undo,
    steps: &mut Steps,
) -> Result<pb::CniResult, CniError> {
    let args = cni_args(r);
    // 1. Delegated IPAM, if the network configuration asks for it.
    let mut delegated: Option<pb::CniResult> = None;
    if !r.ipam_type.is_empty() {
        let call = IpamCall {
            plugin: &r.ipam_type,
            cni_path: &r.cni_path,
            config: &r.ipam_config,
            container_id: &r.container_id,
            netns: &r.netns,
            ifname: &r.ifname,
            cni_args: &args,
        };
        delegated = ipam::run("ADD", &call).await?;
        let lease = Lease {
            plugin: r.ipam_type.clone(),
            cni_path: r.cni_path.clone(),
            config: r.ipam_config.clone(),
            container_id: r.container_id.clone(),
            ifname: r.ifname.clone(),
            cni_args: args.clone(),
        };
        let i = inner.clone();
        undo.push("ipam release", move || {
            async move { logged("ipam release", i.release_lease(&lease).await) }.boxed()
        });
    }
    steps.mark("ipam");
    let requested_ips: Vec<String> = match &delegated {
        Some(d) => d.ips.iter().map(|ip| ip.address.clone()).collect(),
        None => r.ips.clone(),
    };

    // 2. Controller: namespace check, MAC and addresses (done already without delegated IPAM).
    let ctl = inner.controller.clone();
    let prep = match prepared {
        Some(p) => p,
        None => {
            let p = prepare(inner, r, requested_ips).await?;
            push_detach(inner, r, undo);
            steps.mark("prepare");
            p
        }
    };
    let mac: MacAddr = prep.mac.parse().map_err(|_| {
        CniError::new(
            ErrorCode::ControllerError,
            format!("controller gave an invalid MAC {:?}", prep.mac),
        )
    })?;
    let addrs: Vec<String> = match &delegated {
        Some(d) => d.ips.iter().map(|ip| ip.address.clone()).collect(),
        None => prep.ips.clone(),
    };
    let parsed: Vec<(std::net::IpAddr, u8)> = addrs
        .iter()
        .map(|a| {
            parse_cidr(a).ok_or_else(|| {
                CniError::new(ErrorCode::ControllerError, format!("invalid address {a:?}"))
            })
        })
        .collect::<Result<_, _>>()?;
    let mtu = if r.mtu > 0 { r.mtu } else { prep.mtu };

    // 3. The veth pair; deleting the host end later removes both ends wherever they are.
    let host_if = host_ifname(&r.container_id, &r.ifname);
    // Leftovers of an earlier attempt with the same identity (e.g. an agent killed mid-ADD).
    inner
        .host
        .del_link_by_name(&host_if)
        .await
        .map_err(link_err)?;
    steps.mark("stale_check");
    // The pod end is born in the pod netns with its final name, MAC and MTU.
    inner
        .host
        .add_veth_into(&host_if, &r.ifname, ns, Some(mac), Some(mtu))
        .await
        .map_err(|e| {
            if e.is_exists() {
                CniError::new(
                    ErrorCode::InterfaceExists,
                    format!("interface {} appeared in {}", r.ifname, r.netns),
                )
            } else {
                link_err(e)
            }
        })?;
    {
        let i = inner.clone();
        let name = host_if.clone();
        undo.push("delete veth", move || {
            async move { logged("delete veth", i.delete_veth(&name).await) }.boxed()
        });
    }
    steps.mark("add_veth");
    // The host end's MTU is set before ovs-vswitchd opens the device.
    let host = inner
        .host
        .link(&host_if)
        .await
        .map_err(link_err)?
        .ok_or_else(|| CniError::new(ErrorCode::LinkFailed, format!("{host_if} vanished")))?;
    inner
        .host
        .configure(host.index, None, None, Some(mtu))
        .await
        .map_err(link_err)?;
    steps.mark("host_mtu");

    // 4. The record DEL/CHECK/GC rely on.
    let pod_args = r.pod.clone().unwrap_or_default();
    let record = Record {
        container_id: r.container_id.clone(),
        ifname: r.ifname.clone(),
        netns: r.netns.clone(),
        network: r.network.clone(),
        host_if: host_if.clone(),
        mac: mac.to_string(),
        ips: addrs.clone(),
        mtu,
        pod_namespace: pod_args.namespace.clone(),
        pod_name: pod_args.name.clone(),
        pod_uid: pod_args.uid.clone(),
        ipam_type: r.ipam_type.clone(),
        ipam_config: String::from_utf8_lossy(&r.ipam_config).into_owned(),
        cni_path: r.cni_path.clone(),
        cni_args: args,
    };
    inner.state.save(&record).map_err(|e| {
        CniError::new(
            ErrorCode::IoFailure,
            format!("saving attachment record: {e}"),
        )
    })?;
    {
        let i = inner.clone();
        let (cid, ifname) = (r.container_id.clone(), r.ifname.clone());
        undo.push("forget record", move || {
            async move { logged("forget record", i.forget(&cid, &ifname)) }.boxed()
        });
    }
    steps.mark("record");

    // 5. The port's OpenFlow number, chosen here so the controller can install its flows while
    // ovs-vswitchd is still opening the device (see port_numbers for why that is safe).
    let ofport = inner.take_port_number(&host_if).await?;
    {
        let i = inner.clone();
        let name = host_if.clone();
        undo.push("release port number", move || {
            async move { i.release_port_number(&name).await }.boxed()
        });
    }
    steps.mark("port_number");

    // 6. At once: the pod end's addresses and routes, the OVS port, and the attachment, which
    // returns once flows are confirmed on every affected switch (bounded).
    let ids: BTreeMap<String, String> = [
        (keys::OWNER, keys::OWNER_CNI),
        (keys::NETWORK, r.network.as_str()),
        (keys::POD_NAMESPACE, pod_args.namespace.as_str()),
        (keys::POD_NAME, pod_args.name.as_str()),
        (keys::POD_UID, pod_args.uid.as_str()),
        (keys::CONTAINER_ID, r.container_id.as_str()),
        (keys::IFNAME, r.ifname.as_str()),
        (keys::NETNS, r.netns.as_str()),
        (keys::ATTACHED_MAC, prep.mac.as_str()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let attach = agent::AttachRequest {
        node_name: inner.cfg.node_name.clone(),
        network: r.network.clone(),
        id: Some(attachment_id(r)),
        pod: Some(pod_ref(r)),
        ofport,
        mac: prep.mac.clone(),
        ips: addrs.clone(),
    };
    let wait = inner.cfg.attach_timeout;
    let mut ctl_attach = ctl.clone();
    let (configured, port, attached) = tokio::join!(
        timed(configure_pod(
            inner,
            r,
            ns,
            pod,
            &parsed,
            delegated.as_ref()
        )),
        timed(inner.ports.add_port(&host_if, &ids, Some(ofport))),
        timed(tokio::time::timeout(wait, ctl_attach.attach(attach))),
    );
    {
        // Registered even on failure: a timed-out add may still have created the row.
        let i = inner.clone();
        let name = host_if.clone();
        undo.push("delete port", move || {
            async move { logged("delete port", i.delete_port(&name).await) }.boxed()
        });
    }
    steps.record("pod_config", configured.1);
    steps.record("ovs_port", port.1);
    steps.record("attach", attached.1);
    steps.mark("parallel");
    let routes = configured.0?;
    port.0
        .map_err(|e| CniError::new(ErrorCode::OvsFailed, e.to_string()))?;
    match attached.0 {
        Err(_) => {
            return Err(CniError::new(
                ErrorCode::FlowsNotConfirmed,
                format!("controller did not confirm flows for {host_if} within {wait:?}"),
            ));
        }
        Ok(Err(s)) => return Err(controller_error("Attach", &s)),
        Ok(Ok(_)) => {}
    }
    tracing::debug!(container = %r.container_id, ifname = %r.ifname, steps_us = ?steps.done, "ADD done");
    inner.cfg.metrics.cni_add_steps(&steps.done);

    let gateway_for = |addr: &str| -> String {
        if let Some(d) = &delegated {
            return d
                .ips
                .iter()
                .find(|i| i.address == addr)
                .map(|i| i.gateway.clone())
                .unwrap_or_default();
        }
        let ip = addr.split('/').next().unwrap_or("");
        if !prep.gateway.is_empty()
            && same_family(
                &prep.gateway,
                &ip.parse().unwrap_or(std::net::IpAddr::from([0, 0, 0, 0])),
            )
        {
            prep.gateway.clone()
        } else {
            String::new()
        }
    };
    Ok(pb::CniResult {
        interfaces: vec![
            pb::Interface {
                name: host_if,
                mac: host.mac.map(|m| m.to_string()).unwrap_or_default(),
                sandbox: String::new(),
                mtu,
            },
            pb::Interface {
                name: r.ifname.clone(),
                mac: mac.to_string(),
                sandbox: r.netns.clone(),
                mtu,
            },
        ],
        ips: addrs
            .iter()
            .map(|a| pb::IpConfig {
                address: a.clone(),
                gateway: gateway_for(a),
                interface: 1,
            })
            .collect(),
        routes,
        dns: delegated.and_then(|d| d.dns),
    })
}

/// Inside the pod: the interface up, its addresses and routes. Returns the routes for the result.
async fn configure_pod(
    inner: &Inner<impl PortPlugger>,
    r: &pb::CniRequest,
    ns: &std::fs::File,
    pod: &Netlink,
    addrs: &[(std::net::IpAddr, u8)],
    delegated: Option<&pb::CniResult>,
) -> Result<Vec<pb::Route>, CniError> {
    let in_pod = pod
        .link(&r.ifname)
        .await
        .map_err(link_err)?
        .ok_or_else(|| {
            CniError::new(
                ErrorCode::LinkFailed,
                format!("{} not found in pod netns after creation", r.ifname),
            )
        })?;
    pod.set_up(in_pod.index).await.map_err(link_err)?;
    if inner.cfg.userspace_datapath {
        crate::netlink::disable_tx_checksum(ns, &r.ifname)
            .await
            .map_err(link_err)?;
    }
    for (ip, prefix) in addrs {
        pod.add_address(in_pod.index, *ip, *prefix)
            .await
            .map_err(link_err)?;
    }
    let routes = delegated.map(|d| d.routes.clone()).unwrap_or_default();
    for rt in &routes {
        let (dst, plen) = parse_cidr(&rt.dst).ok_or_else(|| {
            CniError::new(
                ErrorCode::IpamFailed,
                format!("route destination {:?}", rt.dst),
            )
        })?;
        let gw = match rt.gw.as_str() {
            "" => delegated
                .and_then(|d| {
                    d.ips
                        .iter()
                        .find(|i| !i.gateway.is_empty() && same_family(&i.gateway, &dst))
                })
                .and_then(|i| i.gateway.parse().ok()),
            g => Some(g.parse().map_err(|_| {
                CniError::new(ErrorCode::IpamFailed, format!("route gateway {g:?}"))
            })?),
        };
        pod.add_route(in_pod.index, dst, plen, gw)
            .await
            .map_err(link_err)?;
    }
    Ok(routes)
}

/// Runs `f` and says how long it took (the concurrent steps of an ADD are timed each alone).
async fn timed<T>(f: impl std::future::Future<Output = T>) -> (T, std::time::Duration) {
    let start = std::time::Instant::now();
    let out = f.await;
    (out, start.elapsed())
}

/// Per-step durations of one ADD, logged at debug level for latency work.
struct Steps {
    last: std::time::Instant,
    done: Vec<(&'static str, u128)>,
}

impl Steps {
    fn new() -> Self {
        Steps {
            last: std::time::Instant::now(),
            done: Vec::new(),
        }
    }
    /// A step that ran alongside others, timed on its own.
    fn record(&mut self, step: &'static str, took: std::time::Duration) {
        self.done.push((step, took.as_micros()));
    }
    fn mark(&mut self, step: &'static str) {
        let now = std::time::Instant::now();
        self.done.push((step, (now - self.last).as_micros()));
        self.last = now;
    }
}

fn same_family(a: &str, b: &std::net::IpAddr) -> bool {
    a.parse::<std::net::IpAddr>()
        .is_ok_and(|a| a.is_ipv4() == b.is_ipv4())
}

fn push_detach<P: PortPlugger>(inner: &Arc<Inner<P>>, r: &pb::CniRequest, undo: &mut Undo) {
    let i = inner.clone();
    let (cid, ifname) = (r.container_id.clone(), r.ifname.clone());
    undo.push("detach", move || {
        async move { logged("detach", i.detach(&cid, &ifname).await) }.boxed()
    });
}
