//! CNI DEL (idempotent), CHECK, GC, STATUS, and the agent's own collection of orphaned ports.

use super::add::validate;
use super::inverses::Lease;
use super::ports::{PortPlugger, keys};
use super::state::Record;
use super::{Inner, cni_args, host_ifname};
use crate::netlink::{Netlink, parse_cidr};
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use weft_proto::cni::v1 as pb;
use weft_proto::cni::{CniError, ErrorCode};

/// What a teardown needs; from the request, the record, or both.
struct Teardown {
    container_id: String,
    ifname: String,
    ipam_type: String,
    ipam_config: Vec<u8>,
    cni_path: Vec<String>,
    cni_args: String,
}

pub(crate) async fn del<P: PortPlugger>(
    inner: &Arc<Inner<P>>,
    r: pb::CniRequest,
) -> Result<(), CniError> {
    validate(&r, false)?;
    let _lock = inner.lock(&r.container_id, &r.ifname).await;
    let rec = inner.state.load(&r.container_id, &r.ifname);
    // The runtime passes the same configuration as for ADD; the record covers a runtime that
    // does not (or an agent GC).
    let (ipam_type, ipam_config) = if !r.ipam_type.is_empty() {
        (r.ipam_type.clone(), r.ipam_config.clone())
    } else if let Some(rec) = rec.as_ref().filter(|x| !x.ipam_type.is_empty()) {
        (rec.ipam_type.clone(), rec.ipam_config.clone().into_bytes())
    } else {
        (String::new(), Vec::new())
    };
    let cni_path = if r.cni_path.is_empty() {
        rec.as_ref().map(|x| x.cni_path.clone()).unwrap_or_default()
    } else {
        r.cni_path.clone()
    };
    teardown(
        inner,
        Teardown {
            container_id: r.container_id.clone(),
            ifname: r.ifname.clone(),
            ipam_type,
            ipam_config,
            cni_path,
            cni_args: cni_args(&r),
        },
    )
    .await
}

/// Removes port, veth, IPAM lease, controller attachment and record. Each step tolerates "already
/// gone"; a real failure stops here so the runtime's retry can finish the job.
async fn teardown<P: PortPlugger>(inner: &Arc<Inner<P>>, t: Teardown) -> Result<(), CniError> {
    let host_if = host_ifname(&t.container_id, &t.ifname);
    inner.delete_port(&host_if).await?;
    inner.release_port_number(&host_if).await;
    inner.delete_veth(&host_if).await?;
    inner.release_lease(&t.lease()).await?;
    inner.detach(&t.container_id, &t.ifname).await?;
    inner.forget(&t.container_id, &t.ifname)
}

impl Teardown {
    fn lease(&self) -> Lease {
        Lease {
            plugin: self.ipam_type.clone(),
            cni_path: self.cni_path.clone(),
            config: self.ipam_config.clone(),
            container_id: self.container_id.clone(),
            ifname: self.ifname.clone(),
            cni_args: self.cni_args.clone(),
        }
    }
}

fn teardown_of(rec: &Record) -> Teardown {
    Teardown {
        container_id: rec.container_id.clone(),
        ifname: rec.ifname.clone(),
        ipam_type: rec.ipam_type.clone(),
        ipam_config: rec.ipam_config.clone().into_bytes(),
        cni_path: rec.cni_path.clone(),
        cni_args: rec.cni_args.clone(),
    }
}

/// Attachments (container id, ifname) this node has: records plus ports (a port without a
/// record is still ours to remove).
async fn known<P: PortPlugger>(
    inner: &Inner<P>,
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
pub(crate) async fn gc<P: PortPlugger>(
    inner: &Arc<Inner<P>>,
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
            Some(rec) => teardown_of(rec),
            None => Teardown {
                container_id: cid.clone(),
                ifname: ifname.clone(),
                ipam_type: r.ipam_type.clone(),
                ipam_config: r.ipam_config.clone(),
                cni_path: r.cni_path.clone(),
                cni_args: "IgnoreUnknown=1".into(),
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
pub(crate) async fn collect_orphans<P: PortPlugger>(inner: &Arc<Inner<P>>) -> usize {
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
        let link_gone = matches!(inner.host.link(&host_if).await, Ok(None));
        let netns_gone = rec.as_ref().is_some_and(|r| !Path::new(&r.netns).exists());
        if !(link_gone || netns_gone) {
            continue;
        }
        let t = rec.as_ref().map(teardown_of).unwrap_or(Teardown {
            container_id: cid.clone(),
            ifname: ifname.clone(),
            ipam_type: String::new(),
            ipam_config: Vec::new(),
            cni_path: Vec::new(),
            cni_args: String::new(),
        });
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
pub(crate) async fn check<P: PortPlugger>(
    inner: &Arc<Inner<P>>,
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
        .host
        .link(&rec.host_if)
        .await
        .map_err(|e| fail(e.to_string()))?;
    if !host.is_some_and(|h| h.up) {
        return Err(fail(format!("host link {} missing or down", rec.host_if)));
    }
    let pod = Netlink::in_netns(Path::new(&r.netns))
        .await
        .map_err(|e| CniError::new(ErrorCode::InvalidEnvironment, format!("CNI_NETNS: {e}")))?;
    let link = pod
        .link(&r.ifname)
        .await
        .map_err(|e| fail(e.to_string()))?
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
    let have = pod
        .addresses(link.index)
        .await
        .map_err(|e| fail(e.to_string()))?;
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
pub(crate) async fn status<P: PortPlugger>(inner: &Arc<Inner<P>>) -> Result<(), CniError> {
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
