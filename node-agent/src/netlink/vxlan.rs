//! VXLAN devices and the link details the tunnel reconciler compares: kind, alias and the VXLAN
//! parameters as the kernel reports them (not as we asked for them), so a device someone changed
//! behind our back is seen as it is.

use super::{LinkInfo, Netlink, NetlinkError, link_info, req};
use futures::TryStreamExt;
use rtnetlink::LinkVxlan;
use rtnetlink::packet_route::link::{
    InfoData, InfoKind, InfoVxlan, LinkAttribute, LinkInfo as NlLinkInfo, LinkMessage,
};
use rtnetlink::{LinkMessageBuilder, LinkUnspec};
use std::net::IpAddr;

/// The kernel's limit on `IFLA_IFALIAS` (IFALIASZ - 1).
pub(crate) const MAX_ALIAS: usize = 255;

/// The VXLAN parameters of a device, as read back from the kernel.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct VxlanParams {
    pub vni: u32,
    pub local: Option<IpAddr>,
    /// The unicast remote (`group` in netlink terms when it is not multicast).
    pub remote: Option<IpAddr>,
    pub port: u16,
    pub learning: bool,
}

/// One link with what the tunnel reconciler needs to judge it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LinkDetail {
    pub info: LinkInfo,
    /// `vxlan`, `veth`, `dummy`, ...; `None` for links without a kind (e.g. physical NICs, lo).
    pub kind: Option<String>,
    pub alias: Option<String>,
    /// Set when `kind` is `vxlan`.
    pub vxlan: Option<VxlanParams>,
}

/// What [`Netlink::add_vxlan`] creates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct VxlanSpec {
    pub name: String,
    pub vni: u32,
    pub local: IpAddr,
    pub remote: IpAddr,
    pub port: u16,
    pub mtu: u32,
    /// Written to `IFLA_IFALIAS`; marks the device as ours across agent restarts.
    pub alias: String,
}

fn detail(m: &LinkMessage) -> LinkDetail {
    let mut d = LinkDetail {
        info: link_info(m),
        kind: None,
        alias: None,
        vxlan: None,
    };
    for a in &m.attributes {
        match a {
            LinkAttribute::IfAlias(s) if !s.is_empty() => d.alias = Some(s.clone()),
            LinkAttribute::LinkInfo(infos) => {
                for i in infos {
                    match i {
                        NlLinkInfo::Kind(k) => d.kind = Some(k.to_string()),
                        NlLinkInfo::Data(InfoData::Vxlan(attrs)) => {
                            d.vxlan = Some(vxlan_params(attrs));
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    if d.kind.as_deref() != Some(&InfoKind::Vxlan.to_string()) {
        d.vxlan = None;
    }
    d
}

fn vxlan_params(attrs: &[InfoVxlan]) -> VxlanParams {
    let mut p = VxlanParams::default();
    for a in attrs {
        match a {
            InfoVxlan::Id(v) => p.vni = *v,
            InfoVxlan::Local(a) => p.local = Some(IpAddr::V4(*a)),
            InfoVxlan::Local6(a) => p.local = Some(IpAddr::V6(*a)),
            InfoVxlan::Group(a) if !a.is_unspecified() => p.remote = Some(IpAddr::V4(*a)),
            InfoVxlan::Group6(a) if !a.is_unspecified() => p.remote = Some(IpAddr::V6(*a)),
            InfoVxlan::Port(v) => p.port = *v,
            InfoVxlan::Learning(v) => p.learning = *v,
            _ => {}
        }
    }
    p
}

impl Netlink {
    /// Every link of the namespace with kind, alias and VXLAN parameters.
    pub(crate) async fn links_detailed(&self) -> Result<Vec<LinkDetail>, NetlinkError> {
        let msgs: Vec<LinkMessage> = self
            .handle
            .link()
            .get()
            .execute()
            .try_collect()
            .await
            .map_err(req("list links"))?;
        Ok(msgs.iter().map(detail).collect())
    }

    /// Creates a point-to-point VXLAN device (no learning: the controller's flows know every
    /// MAC, and a learning device would answer from a stale FDB), then sets its alias and brings
    /// it up. Returns its interface index. Fails with [`NetlinkError::is_exists`] when a link of
    /// that name exists. A device left half-made (created, alias or up failed) is deleted again,
    /// so a retry starts clean.
    pub(crate) async fn add_vxlan(&self, spec: &VxlanSpec) -> Result<u32, NetlinkError> {
        let mut b = LinkVxlan::new(&spec.name, spec.vni)
            .port(spec.port)
            .learning(false);
        b = match (spec.local, spec.remote) {
            (IpAddr::V4(l), IpAddr::V4(r)) => b.local(l).remote(r),
            (IpAddr::V6(l), IpAddr::V6(r)) => b.local6(l).remote6(r),
            _ => {
                return Err(NetlinkError::Invalid(format!(
                    "vxlan {}: local {} and remote {} differ in address family",
                    spec.name, spec.local, spec.remote
                )));
            }
        };
        if spec.alias.len() > MAX_ALIAS {
            return Err(NetlinkError::Invalid(format!(
                "alias of {} longer than {MAX_ALIAS} bytes",
                spec.name
            )));
        }
        let msg = b.mtu(spec.mtu).build();
        self.handle
            .link()
            .add(msg)
            .execute()
            .await
            .map_err(req(format!("add vxlan {}", spec.name)))?;
        let finish = async {
            let link = self.link(&spec.name).await?.ok_or_else(|| {
                NetlinkError::Invalid(format!("vxlan {} vanished after creation", spec.name))
            })?;
            // The kernel ignores IFLA_IFALIAS on creation; set it (and up) on the new link.
            let set = LinkMessageBuilder::<LinkUnspec>::new()
                .index(link.index)
                .alias(spec.alias.clone())
                .up()
                .build();
            self.handle
                .link()
                .set(set)
                .execute()
                .await
                .map_err(req(format!("set alias and up on {}", spec.name)))?;
            Ok::<u32, NetlinkError>(link.index)
        };
        match finish.await {
            Ok(i) => Ok(i),
            Err(e) => {
                let _ = self.del_link_by_name(&spec.name).await;
                Err(e)
            }
        }
    }

    /// Sets MTU (when given) and brings link `index` up, in place.
    pub(crate) async fn set_mtu_up(
        &self,
        index: u32,
        mtu: Option<u32>,
    ) -> Result<(), NetlinkError> {
        let mut b = LinkMessageBuilder::<LinkUnspec>::new().index(index).up();
        if let Some(m) = mtu {
            b = b.mtu(m);
        }
        self.handle
            .link()
            .set(b.build())
            .execute()
            .await
            .map_err(req(format!("set mtu/up on link {index}")))
    }
}
