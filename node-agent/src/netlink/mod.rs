//! Kernel links over rtnetlink: veth pairs, moving a link into a namespace, names, MAC, MTU,
//! addresses and routes.
//!
//! A [`Netlink`] is bound to one network namespace: its socket is opened by a thread that joined
//! that namespace (a netlink socket keeps the namespace it was created in), so the async task that
//! uses it never switches namespaces itself.

use futures::TryStreamExt;
use rtnetlink::packet_route::address::{AddressAttribute, AddressMessage};
use rtnetlink::packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use rtnetlink::{Handle, LinkMessageBuilder, LinkUnspec, LinkVeth, RouteMessageBuilder};
use std::fs::File;
use std::net::IpAddr;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use tokio::task::JoinHandle;
use weft_types::MacAddr;

mod vxlan;
#[cfg(test)]
pub(crate) use vxlan::VxlanParams;
pub(crate) use vxlan::{LinkDetail, MAX_ALIAS, VxlanSpec};

const ENODEV: i32 = 19;
const EEXIST: i32 = 17;
const ENOENT: i32 = 2;
const ESRCH: i32 = 3;

#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    #[error("network namespace {path}: {source}")]
    Netns {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("netlink socket: {0}")]
    Socket(#[source] std::io::Error),
    #[error("{op}: {source}")]
    Request {
        op: String,
        #[source]
        source: rtnetlink::Error,
    },
    #[error("invalid argument: {0}")]
    Invalid(String),
}

impl NetlinkError {
    fn errno(&self) -> Option<i32> {
        match self {
            NetlinkError::Request {
                source: rtnetlink::Error::NetlinkError(m),
                ..
            } => Some(-m.raw_code()),
            _ => None,
        }
    }

    /// The link (or address, route) does not exist.
    pub(crate) fn is_not_found(&self) -> bool {
        matches!(self.errno(), Some(ENODEV | ENOENT | ESRCH))
    }

    /// A link of that name (or the address, route) already exists.
    pub(crate) fn is_exists(&self) -> bool {
        self.errno() == Some(EEXIST)
    }
}

fn req(op: impl Into<String>) -> impl FnOnce(rtnetlink::Error) -> NetlinkError {
    let op = op.into();
    move |source| NetlinkError::Request { op, source }
}

/// What we read back from a link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkInfo {
    pub index: u32,
    pub name: String,
    pub mac: Option<MacAddr>,
    pub mtu: u32,
    pub up: bool,
}

/// A netlink connection in one network namespace. Dropping it stops its connection task.
pub struct Netlink {
    handle: Handle,
    task: JoinHandle<()>,
}

impl Drop for Netlink {
    fn drop(&mut self) {
        // netlink-proto keeps the connection alive while unsolicited messages could still come.
        self.task.abort();
    }
}

/// Opens the namespace file (`/run/netns/x`, `/proc/<pid>/ns/net`).
pub(crate) fn open_netns(path: &Path) -> Result<File, NetlinkError> {
    File::open(path).map_err(|source| NetlinkError::Netns {
        path: path.to_path_buf(),
        source,
    })
}

impl Netlink {
    /// A connection in the caller's current network namespace. Needs a tokio runtime.
    pub(crate) fn current() -> Result<Self, NetlinkError> {
        let (conn, handle, _) = rtnetlink::new_connection().map_err(NetlinkError::Socket)?;
        let task = tokio::spawn(conn);
        Ok(Netlink { handle, task })
    }

    /// A connection whose socket lives in the namespace at `path`. Needs a tokio runtime.
    pub async fn in_netns(path: &Path) -> Result<Self, NetlinkError> {
        let ns = open_netns(path)?;
        Self::in_netns_file(ns, path).await
    }

    /// Like [`Netlink::in_netns`] with the namespace file already open.
    pub(crate) async fn in_netns_file(ns: File, path: &Path) -> Result<Self, NetlinkError> {
        let rt = tokio::runtime::Handle::current();
        let path = path.to_path_buf();
        let (tx, rx) = tokio::sync::oneshot::channel();
        // A short-lived thread joins the namespace, creates the socket there, and exits; the
        // socket stays in that namespace.
        std::thread::spawn(move || {
            let res = (|| {
                nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET).map_err(|e| {
                    NetlinkError::Netns {
                        path: path.clone(),
                        source: std::io::Error::from(e),
                    }
                })?;
                let _guard = rt.enter();
                rtnetlink::new_connection().map_err(NetlinkError::Socket)
            })();
            let _ = tx.send(res);
        });
        let (conn, handle, _) = rx
            .await
            .map_err(|_| NetlinkError::Socket(std::io::Error::other("setns thread died")))??;
        let task = tokio::spawn(conn);
        Ok(Netlink { handle, task })
    }

    /// The link called `name`, if any.
    pub(crate) async fn link(&self, name: &str) -> Result<Option<LinkInfo>, NetlinkError> {
        let mut s = self
            .handle
            .link()
            .get()
            .match_name(name.to_string())
            .execute();
        match s.try_next().await {
            Ok(Some(m)) => Ok(Some(link_info(&m))),
            Ok(None) => Ok(None),
            Err(e) => {
                let e = req(format!("get link {name}"))(e);
                if e.is_not_found() { Ok(None) } else { Err(e) }
            }
        }
    }

    /// Creates the veth pair `name` <-> `peer` with the peer made directly inside namespace
    /// `peer_ns` with its final name, MAC and MTU. Creating it there, rather than moving it,
    /// avoids the RCU grace period a namespace move waits for (tens of milliseconds).
    pub(crate) async fn add_veth_into(
        &self,
        name: &str,
        peer: &str,
        peer_ns: &File,
        peer_mac: Option<MacAddr>,
        mtu: Option<u32>,
    ) -> Result<(), NetlinkError> {
        use rtnetlink::packet_route::link::{InfoData, InfoVeth};
        let mut p = LinkMessageBuilder::<LinkUnspec>::new()
            .name(peer.to_string())
            .setns_by_fd(peer_ns.as_raw_fd());
        if let Some(m) = peer_mac {
            p = p.address(m.octets().to_vec());
        }
        let mut host = LinkVeth::new(name, peer);
        if let Some(m) = mtu.filter(|m| *m > 0) {
            p = p.mtu(m);
            host = host.mtu(m);
        }
        let msg = host
            .set_info_data(InfoData::Veth(InfoVeth::Peer(p.build())))
            .build();
        self.handle
            .link()
            .add(msg)
            .execute()
            .await
            .map_err(req(format!(
                "add veth {name} with peer {peer} in pod netns"
            )))
    }

    /// Brings link `index` up.
    pub(crate) async fn set_up(&self, index: u32) -> Result<(), NetlinkError> {
        let up = LinkMessageBuilder::<LinkUnspec>::new()
            .index(index)
            .up()
            .build();
        self.handle
            .link()
            .set(up)
            .execute()
            .await
            .map_err(req(format!("set link {index} up")))
    }

    /// Renames (the link must be down), sets MAC and MTU, then brings it up.
    pub(crate) async fn configure(
        &self,
        index: u32,
        name: Option<&str>,
        mac: Option<MacAddr>,
        mtu: Option<u32>,
    ) -> Result<(), NetlinkError> {
        let mut b = LinkMessageBuilder::<LinkUnspec>::new().index(index);
        if let Some(n) = name {
            b = b.name(n.to_string());
        }
        if let Some(m) = mac {
            b = b.address(m.octets().to_vec());
        }
        if let Some(m) = mtu.filter(|m| *m > 0) {
            b = b.mtu(m);
        }
        self.handle
            .link()
            .set(b.build())
            .execute()
            .await
            .map_err(req(format!("configure link {index}")))?;
        let up = LinkMessageBuilder::<LinkUnspec>::new()
            .index(index)
            .up()
            .build();
        self.handle
            .link()
            .set(up)
            .execute()
            .await
            .map_err(req(format!("set link {index} up")))
    }

    pub(crate) async fn del_link(&self, index: u32) -> Result<(), NetlinkError> {
        self.handle
            .link()
            .del(index)
            .execute()
            .await
            .map_err(req(format!("delete link {index}")))
    }

    /// Deletes the link called `name`; `Ok(false)` when there was none.
    pub(crate) async fn del_link_by_name(&self, name: &str) -> Result<bool, NetlinkError> {
        let Some(l) = self.link(name).await? else {
            return Ok(false);
        };
        match self.del_link(l.index).await {
            Ok(()) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }

    pub(crate) async fn add_address(
        &self,
        index: u32,
        ip: IpAddr,
        prefix: u8,
    ) -> Result<(), NetlinkError> {
        self.handle
            .address()
            .add(index, ip, prefix)
            .execute()
            .await
            .map_err(req(format!("add address {ip}/{prefix}")))
    }

    /// Addresses on link `index` (CIDR parts).
    pub(crate) async fn addresses(&self, index: u32) -> Result<Vec<(IpAddr, u8)>, NetlinkError> {
        let msgs: Vec<AddressMessage> = self
            .handle
            .address()
            .get()
            .set_link_index_filter(index)
            .execute()
            .try_collect()
            .await
            .map_err(req("list addresses"))?;
        Ok(msgs
            .iter()
            .filter(|m| m.header.index == index)
            .filter_map(|m| {
                m.attributes.iter().find_map(|a| match a {
                    AddressAttribute::Address(ip) => Some((*ip, m.header.prefix_len)),
                    _ => None,
                })
            })
            .collect())
    }

    /// A route to `dst/prefix` out of link `index`, via `gw` when given.
    pub(crate) async fn add_route(
        &self,
        index: u32,
        dst: IpAddr,
        prefix: u8,
        gw: Option<IpAddr>,
    ) -> Result<(), NetlinkError> {
        let bad = |e| NetlinkError::Invalid(format!("route {dst}/{prefix}: {e}"));
        let mut b = RouteMessageBuilder::<IpAddr>::new()
            .destination_prefix(dst, prefix)
            .map_err(bad)?
            .output_interface(index);
        if let Some(g) = gw {
            b = b.gateway(g).map_err(bad)?;
        }
        self.handle
            .route()
            .add(b.build())
            .execute()
            .await
            .map_err(req(format!("add route {dst}/{prefix}")))
    }
}

fn link_info(m: &LinkMessage) -> LinkInfo {
    let mut info = LinkInfo {
        index: m.header.index,
        name: String::new(),
        mac: None,
        mtu: 0,
        up: m.header.flags.contains(LinkFlags::Up),
    };
    for a in &m.attributes {
        match a {
            LinkAttribute::IfName(n) => info.name = n.clone(),
            LinkAttribute::Mtu(v) => info.mtu = *v,
            LinkAttribute::Address(b) if b.len() == 6 => {
                let mut mac = [0u8; 6];
                mac.copy_from_slice(b);
                info.mac = Some(MacAddr(mac));
            }
            _ => {}
        }
    }
    info
}

/// `10.1.0.5/24` (or a bare address: host prefix) -> parts.
pub(crate) fn parse_cidr(s: &str) -> Option<(IpAddr, u8)> {
    match s.split_once('/') {
        Some((a, p)) => {
            let ip: IpAddr = a.parse().ok()?;
            let p: u8 = p.parse().ok()?;
            let max = if ip.is_ipv4() { 32 } else { 128 };
            (p <= max).then_some((ip, p))
        }
        None => {
            let ip: IpAddr = s.parse().ok()?;
            Some((ip, if ip.is_ipv4() { 32 } else { 128 }))
        }
    }
}

/// Turns off TX checksum offload on `ifname` inside namespace `ns` (`ethtool -K <if> tx off`).
///
/// Needed with OVS's userspace (`netdev`) datapath: it reads veth frames through AF_PACKET, where
/// a checksum left for "hardware" is never filled in, so the receiver drops TCP/UDP.
pub(crate) async fn disable_tx_checksum(ns: &File, ifname: &str) -> Result<(), NetlinkError> {
    let ns = ns
        .try_clone()
        .map_err(|e| NetlinkError::Socket(std::io::Error::other(format!("dup netns fd: {e}"))))?;
    let name = ifname.to_string();
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let res = nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET)
            .map_err(std::io::Error::from)
            .and_then(|_| ethtool_tx_off(&name));
        let _ = tx.send(res);
    });
    rx.await
        .map_err(|_| NetlinkError::Socket(std::io::Error::other("ethtool thread died")))?
        .map_err(|e| NetlinkError::Invalid(format!("ethtool tx off {ifname}: {e}")))
}

fn ethtool_tx_off(ifname: &str) -> std::io::Result<()> {
    const SIOCETHTOOL: libc::c_ulong = 0x8946;
    const ETHTOOL_STXCSUM: u32 = 0x17;
    #[repr(C)]
    struct EthtoolValue {
        cmd: u32,
        data: u32,
    }
    #[repr(C)]
    struct IfReq {
        name: [u8; libc::IFNAMSIZ],
        data: *mut libc::c_void,
        _pad: [u8; 16],
    }
    let bytes = ifname.as_bytes();
    if bytes.is_empty() || bytes.len() >= libc::IFNAMSIZ {
        return Err(std::io::Error::other("bad interface name"));
    }
    let mut value = EthtoolValue {
        cmd: ETHTOOL_STXCSUM,
        data: 0,
    };
    let mut req = IfReq {
        name: [0; libc::IFNAMSIZ],
        data: (&mut value as *mut EthtoolValue).cast(),
        _pad: [0; 16],
    };
    req.name[..bytes.len()].copy_from_slice(bytes);
    // SAFETY: plain socket(2); the fd is closed below on every path.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `req` is a properly sized, NUL-terminated ifreq whose data pointer refers to
    // `value`, which outlives the call; SIOCETHTOOL only reads/writes those two structs.
    let rc = unsafe { libc::ioctl(fd, SIOCETHTOOL as _, &mut req as *mut IfReq) };
    let err = std::io::Error::last_os_error();
    // SAFETY: fd is a socket we own.
    unsafe { libc::close(fd) };
    if rc < 0 { Err(err) } else { Ok(()) }
}
