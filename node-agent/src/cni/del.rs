//! CNI DEL (idempotent), CHECK, GC, STATUS, and the agent's own collection of orphaned ports.

use super::add::validate;
use super::inverses::Lease;
use super::ports::{PortPlugger, keys};
use super::seams::{NodeControl, PodLinks};
use super::{Inner, host_ifname};
use crate::netlink::parse_cidr;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;
use weft_proto::cni::v1 as pb;
use weft_proto::cni::{CniError, ErrorCode};

pub(crate) async fn del<P: PortPlugger, L: PodLinks, C: NodeControl>(
    inner: &Arc<Inner<P, L, C>>,
    r: pb::CniRequest,
) -> Result<(), CniError> {
    validate(&r, false)?;
    let _lock = inner.lock(&r.container_id, &r.ifname).await;
    let rec = inner.state.load(&r.container_id, &r.ifname);
    // The runtime passes the same configuration as for ADD; the record covers a runtime that
    // does not (or an agent GC).
    let mut lease = Lease::of_request(&r);
    if lease.plugin.is_empty() {
        let recorded = rec.as_ref().filter(|x| !x.ipam_type.is_empty());
        lease.plugin = recorded.map(|x| x.ipam_type.clone()).unwrap_or_default();
        lease.config = recorded
            .map(|x| x.ipam_config.clone().into_bytes())
            .unwrap_or_default();
    }
    if lease.cni_path.is_empty() {
        lease.cni_path = rec.map(|x| x.cni_path).unwrap_or_default();
    }
    teardown(inner, lease).await
}

/// Removes port, veth, IPAM lease, controller attachment and record. Each step tolerates "already
/// gone"; a real failure stops here so the runtime's retry can finish the job.
async fn teardown<P: PortPlugger, L: PodLinks, C: NodeControl>(
    inner: &Arc<Inner<P, L, C>>,
    lease: Lease,
) -> Result<(), CniError> {
    let (cid, ifname) = (lease.container_id.as_str(), lease.ifname.as_str());
    let host_if = host_ifname(cid, ifname);
    inner.delete_port(&host_if).await?;
    inner.release_port_number(&host_if).await;
    inner.delete_veth(&host_if).await?;
    inner.release_lease(&lease).await?;
    inner.detach(cid, ifname).await?;
    inner.forget(cid, ifname)
}

/// Attachments (container id, ifname) this node has: records plus ports (a port without a
/// record is still ours to remove).
async fn known<P: PortPlugger, L, C>(
    inner: &Inner<P, L, C>,
    key: &str,
    value: &str,
) -> Result<BTreeSet<(String, String)>, CniError> {
    let mut ids: BTreeSet<(String, String)> = inner
        .state
        .all()
        .into_iter()
        .filter(|r| key != keys::NETWORK || r.network == value)
        .map(|r| (r.container_id, r.ifname))
        .collect();
    let ports = inner
        .ports
        .ports_with(key, value)
        .await
        .map_err(|e| CniError::new(ErrorCode::OvsFailed, e.to_string()))?;
    for p in ports {
        if let (Some(c), Some(i)) = (
            p.external_ids.get(keys::CONTAINER_ID),
            p.external_ids.get(keys::IFNAME),
        ) && weft_proto::cni::valid_container_id(c)
            && weft_proto::cni::valid_ifname(i)
        {
            ids.insert((c.clone(), i.clone()));
        }
    }
    Ok(ids)
}

/// GC: removes every attachment of this network not in `cni.dev/valid-attachments`.
pub(crate) async fn gc<P: PortPlugger, L: PodLinks, C: NodeControl>(
    inner: &Arc<Inner<P, L, C>>,
    r: pb::CniRequest,
) -> Result<(), CniError> {
    let valid: BTreeSet<(String, String)> = r
        .valid_attachments
        .iter()
        .map(|a| (a.container_id.clone(), a.ifname.clone()))
        .collect();
    let mut first_err = None;
    for (cid, ifname) in known(inner, keys::NETWORK, &r.network).await? {
        if valid.contains(&(cid.clone(), ifname.clone())) {
            continue;
        }
        let _lock = inner.lock(&cid, &ifname).await;
        let rec = inner.state.load(&cid, &ifname);
        let t = match &rec {
            Some(rec) => Lease::of_record(rec),
            None => Lease {
                plugin: r.ipam_type.clone(),
                config: r.ipam_config.clone(),
                cni_path: r.cni_path.clone(),
                cni_args: "IgnoreUnknown=1".into(),
                ..Lease::bare(&cid, &ifname)
            },
        };
        tracing::info!(container = %cid, %ifname, network = %r.network, "GC: removing attachment");
        if let Err(e) = teardown(inner, t).await {
            first_err.get_or_insert(e);
        }
    }
    first_err.map_or(Ok(()), Err)
}

/// The agent's own GC: attachments whose netns file or host link has vanished.
pub(crate) async fn collect_orphans<P: PortPlugger, L: PodLinks, C: NodeControl>(
    inner: &Arc<Inner<P, L, C>>,
) -> usize {
    let ids = match known(inner, keys::OWNER, keys::OWNER_CNI).await {
        Ok(ids) => ids,
        Err(e) => {
            tracing::warn!(error = %e, "orphan GC: cannot list ports");
            return 0;
        }
    };
    let mut removed = 0;
    for (cid, ifname) in ids {
        let _lock = inner.lock(&cid, &ifname).await;
        let rec = inner.state.load(&cid, &ifname);
        let host_if = host_ifname(&cid, &ifname);
        let link_gone = matches!(inner.links.host_link(&host_if).await, Ok(None));
        let netns_gone = rec
            .as_ref()
            .is_some_and(|r| !inner.links.netns_exists(&r.netns));
        if !(link_gone || netns_gone) {
            continue;
        }
        let t = rec
            .as_ref()
            .map_or_else(|| Lease::bare(&cid, &ifname), Lease::of_record);
        match teardown(inner, t).await {
            Ok(()) => removed += 1,
            Err(e) => tracing::warn!(container = %cid, %ifname, error = %e, "orphan GC failed"),
        }
    }
    inner.unlock_gc();
    removed
}

/// CHECK: the attachment is as ADD left it (record, port, host link, pod interface with its MAC,
/// state and addresses, and every address prevResult lists for it).
pub(crate) async fn check<P: PortPlugger, L: PodLinks, C: NodeControl>(
    inner: &Arc<Inner<P, L, C>>,
    r: pb::CniRequest,
) -> Result<(), CniError> {
    validate(&r, true)?;
    let _lock = inner.lock(&r.container_id, &r.ifname).await;
    let fail = |m: String| CniError::new(ErrorCode::CheckFailed, m);
    let rec = inner
        .state
        .load(&r.container_id, &r.ifname)
        .ok_or_else(|| fail(format!("no attachment {}/{}", r.container_id, r.ifname)))?;
    if rec.netns != r.netns {
        return Err(fail(format!(
            "attachment was made in {}, not {}",
            rec.netns, r.netns
        )));
    }
    let ports = inner
        .ports
        .ports_with(keys::CONTAINER_ID, &r.container_id)
        .await
        .map_err(|e| CniError::new(ErrorCode::OvsFailed, e.to_string()))?;
    if !ports.iter().any(|p| p.name == rec.host_if) {
        return Err(fail(format!("OVS port {} missing", rec.host_if)));
    }
    let host = inner
        .links
        .host_link(&rec.host_if)
        .await
        .map_err(|e| fail(e.msg))?;
    if !host.is_some_and(|h| h.up) {
        return Err(fail(format!("host link {} missing or down", rec.host_if)));
    }
    let pod = inner.links.open_pod(&r.netns).await?;
    let link = inner
        .links
        .pod_link(&pod, &r.ifname)
        .await
        .map_err(|e| fail(e.msg))?
        .ok_or_else(|| fail(format!("{} missing in {}", r.ifname, r.netns)))?;
    if !link.up {
        return Err(fail(format!("{} is down", r.ifname)));
    }
    // A later plugin in a chain (e.g. tuning) may change MAC or MTU: the final result, passed
    // as prevResult, is what the interface must match; without one, what ADD set.
    let prev_if = r.prev_result.as_ref().and_then(|p| {
        p.interfaces
            .iter()
            .find(|i| i.name == r.ifname && (i.sandbox.is_empty() || i.sandbox == r.netns))
    });
    let want_mac = prev_if
        .map(|i| i.mac.to_ascii_lowercase())
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| rec.mac.clone());
    let have_mac = link.mac.map(|m| m.to_string()).unwrap_or_default();
    if have_mac != want_mac {
        return Err(fail(format!(
            "{} has MAC {have_mac}, expected {want_mac}",
            r.ifname
        )));
    }
    if let Some(mtu) = prev_if.map(|i| i.mtu).filter(|m| *m > 0)
        && link.mtu != mtu
    {
        return Err(fail(format!(
            "{} has MTU {}, expected {mtu}",
            r.ifname, link.mtu
        )));
    }
    let have = inner
        .links
        .pod_addresses(&pod, &r.ifname)
        .await
        .map_err(|e| fail(e.msg))?;
    let mut want: Vec<String> = rec.ips.clone();
    if let Some(prev) = &r.prev_result {
        for ip in &prev.ips {
            let ours = usize::try_from(ip.interface)
                .ok()
                .and_then(|i| prev.interfaces.get(i))
                .is_some_and(|i| {
                    i.name == r.ifname && (i.sandbox.is_empty() || i.sandbox == r.netns)
                });
            if ours {
                want.push(ip.address.clone());
            }
        }
    }
    for a in want {
        let Some(cidr) = parse_cidr(&a) else {
            return Err(fail(format!("bad address {a:?}")));
        };
        if !have.contains(&cidr) {
            return Err(fail(format!("{} lacks address {a}", r.ifname)));
        }
    }
    Ok(())
}

/// STATUS: ADD can be served (agent up, bridge present, controller reachable).
pub(crate) async fn status<P: PortPlugger, L, C>(
    inner: &Arc<Inner<P, L, C>>,
) -> Result<(), CniError> {
    let na = |m: String| CniError::new(ErrorCode::NotAvailable, m);
    match inner.ports.bridge_ready().await {
        Ok(true) => {}
        Ok(false) => return Err(na("OVS bridge missing".into())),
        Err(e) => return Err(na(format!("OVSDB: {e}"))),
    }
    let ep = tonic::transport::Endpoint::from_shared(inner.cfg.controller.clone())
        .map_err(|e| na(format!("controller endpoint: {e}")))?
        .connect_timeout(Duration::from_secs(1));
    match tokio::time::timeout(Duration::from_secs(2), ep.connect()).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(na(format!(
            "controller {} unreachable: {e}",
            inner.cfg.controller
        ))),
        Err(_) => Err(na(format!(
            "controller {} unreachable: timeout",
            inner.cfg.controller
        ))),
    }
}
