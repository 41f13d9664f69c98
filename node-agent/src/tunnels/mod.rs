//! Node-to-node tunnels: one kernel VXLAN device per peer node, plugged into the bridge.
//!
//! The controller streams the desired peer set; [`desired`] validates it into [`TunnelSpec`]s,
//! [`plan::plan`] compares them with what the kernel and OVSDB hold (a pure function, unit
//! tested), and [`apply`] reads the actual state and carries the plan out. Ownership is marked
//! on both sides so a restarted agent can tell its own leftovers from foreign objects: the
//! kernel device's alias starts with [`ALIAS_PREFIX`], the OVS Port and Interface carry
//! `weft.dev/owner=tunnel` and `weft.dev/peer=<node>` in `external_ids`. Anything without these
//! marks is never modified, even when it has the name a tunnel wants.

pub(crate) mod apply;
pub mod plan;

pub use apply::{ApplyOutcome, Tunnels};

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use weft_proto::agent::v1 as pb;

/// Alias prefix of our kernel devices (`weft-tunnel <peer>`).
pub(crate) const ALIAS_PREFIX: &str = "weft-tunnel";
/// `external_ids` value of `weft.dev/owner` on tunnel ports.
pub(crate) const OWNER_TUNNEL: &str = "tunnel";
/// `external_ids` key naming the peer node of a tunnel port.
pub(crate) const PEER_KEY: &str = "weft.dev/peer";
/// Largest VNI (24 bits).
pub(crate) const MAX_VNI: u32 = 0x00ff_ffff;

/// Fallbacks for peer fields the controller left at zero (taken from `RegisterReply`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Defaults {
    pub vni: u32,
    pub port: u16,
    pub mtu: u32,
}

impl Default for Defaults {
    fn default() -> Self {
        Defaults {
            vni: 4242,
            port: 4789,
            mtu: 1500,
        }
    }
}

/// One wanted tunnel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TunnelSpec {
    pub peer: String,
    /// Interface (and OVS port) name, see [`tunnel_ifname`].
    pub name: String,
    pub local: IpAddr,
    pub remote: IpAddr,
    pub vni: u32,
    pub port: u16,
    pub mtu: u32,
}

impl TunnelSpec {
    /// The kernel alias marking the device as ours (truncated to the kernel's limit).
    pub(crate) fn alias(&self) -> String {
        alias_for(&self.peer)
    }
}

pub(crate) fn alias_for(peer: &str) -> String {
    let mut a = format!("{ALIAS_PREFIX} {peer}");
    if a.len() > crate::netlink::MAX_ALIAS {
        let mut cut = crate::netlink::MAX_ALIAS;
        while !a.is_char_boundary(cut) {
            cut -= 1;
        }
        a.truncate(cut);
    }
    a
}

/// Whether a kernel alias marks a device as one of our tunnels.
pub(crate) fn is_our_alias(alias: Option<&str>) -> bool {
    alias.is_some_and(|a| a == ALIAS_PREFIX || a.starts_with(&format!("{ALIAS_PREFIX} ")))
}

/// Tunnel device name: `wv` + 12 hex digits of the 64-bit FNV-1a of the peer name (14 bytes,
/// within the 15-byte limit). Deterministic, so a restarted agent finds its devices by name and
/// every node names the tunnel to a given peer the same way.
pub fn tunnel_ifname(peer: &str) -> String {
    format!("wv{:012x}", weft_types::hash::fnv1a(peer) >> 16)
}

/// A peer the controller sent that cannot become a tunnel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Invalid {
    pub peer: String,
    /// The name its tunnel would have had (empty when the peer name itself is unusable).
    pub name: String,
    pub why: String,
}

/// Validates the controller's peer list into tunnel specs keyed by interface name. Invalid
/// peers are returned separately (to be logged and reported) and never affect the others.
pub(crate) fn desired(
    own_node: &str,
    local: IpAddr,
    defaults: Defaults,
    peers: &[pb::Peer],
) -> (BTreeMap<String, TunnelSpec>, Vec<Invalid>) {
    let mut out = BTreeMap::new();
    let mut invalid = Vec::new();
    let mut seen = BTreeSet::new();
    // The kernel demultiplexes VXLAN by (VNI, port): one device per pair.
    let mut keys: BTreeMap<(u32, u16), String> = BTreeMap::new();
    for p in peers {
        let name = if p.node_name.is_empty() {
            String::new()
        } else {
            tunnel_ifname(&p.node_name)
        };
        let mut bad = |why: String| {
            invalid.push(Invalid {
                peer: p.node_name.clone(),
                name: name.clone(),
                why,
            })
        };
        if p.node_name.is_empty() {
            bad("empty node name".into());
            continue;
        }
        if p.node_name == own_node {
            bad("peer is this node".into());
            continue;
        }
        if !seen.insert(p.node_name.clone()) {
            bad("peer listed twice".into());
            continue;
        }
        let remote: IpAddr = match p.underlay_ip.parse() {
            Ok(a) => a,
            Err(_) => {
                bad(format!(
                    "underlay address {:?} is not an IP address",
                    p.underlay_ip
                ));
                continue;
            }
        };
        if remote.is_ipv4() != local.is_ipv4() {
            let fam = |a: &IpAddr| if a.is_ipv4() { "IPv4" } else { "IPv6" };
            bad(format!(
                "underlay address {remote} is {} but this node's underlay ({local}) is {}",
                fam(&remote),
                fam(&local)
            ));
            continue;
        }
        if remote.is_unspecified() || remote.is_multicast() || remote == local {
            bad(format!(
                "underlay address {remote} is not a usable unicast peer"
            ));
            continue;
        }
        let vni = if p.vni == 0 { defaults.vni } else { p.vni };
        if vni == 0 || vni > MAX_VNI {
            bad(format!("VNI {vni} outside 1..={MAX_VNI}"));
            continue;
        }
        let port = match p.vxlan_port {
            0 => defaults.port,
            n => match u16::try_from(n) {
                Ok(n) => n,
                Err(_) => {
                    bad(format!("VXLAN port {n} outside 1..=65535"));
                    continue;
                }
            },
        };
        let mtu = if p.mtu == 0 { defaults.mtu } else { p.mtu };
        if !(68..=65535).contains(&mtu) {
            bad(format!("MTU {mtu} outside 68..=65535"));
            continue;
        }
        if let Some(other) = out.get(&name).map(|s: &TunnelSpec| s.peer.clone()) {
            bad(format!("interface name {name} collides with peer {other}"));
            continue;
        }
        if let Some(other) = keys.get(&(vni, port)) {
            bad(format!(
                "VNI {vni} on port {port} is already the tunnel to {other} (the kernel allows one \
                 VXLAN device per VNI and port)"
            ));
            continue;
        }
        keys.insert((vni, port), p.node_name.clone());
        out.insert(
            name.clone(),
            TunnelSpec {
                peer: p.node_name.clone(),
                name,
                local,
                remote,
                vni,
                port,
                mtu,
            },
        );
    }
    (out, invalid)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(name: &str, ip: &str) -> pb::Peer {
        // Distinct per name, as the controller's per-pair VNIs are.
        let vni = 1000
            + name
                .bytes()
                .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)))
                % 100_000;
        pb::Peer {
            node_name: name.into(),
            underlay_ip: ip.into(),
            vni,
            vxlan_port: 0,
            mtu: 0,
        }
    }

    #[test]
    fn names_are_short_stable_distinct_and_valid() {
        let a = tunnel_ifname("node-a");
        assert_eq!(a.len(), 14);
        assert!(a.starts_with("wv"));
        assert_eq!(a, tunnel_ifname("node-a"));
        let all: BTreeSet<String> = (0..5000).map(|i| tunnel_ifname(&format!("n{i}"))).collect();
        assert_eq!(all.len(), 5000);
        assert!(weft_proto::cni::valid_ifname(&a));
        // Never clashes with the CNI's pod port prefix.
        assert!(!a.starts_with("wf"));
    }

    #[test]
    fn alias_marks_and_truncates() {
        assert!(is_our_alias(Some("weft-tunnel node-b")));
        assert!(is_our_alias(Some("weft-tunnel")));
        assert!(!is_our_alias(Some("weft-tunnelx")));
        assert!(!is_our_alias(None));
        let long = "é".repeat(200);
        let a = alias_for(&long);
        assert!(a.len() <= crate::netlink::MAX_ALIAS);
        assert!(is_our_alias(Some(&a)));
    }

    #[test]
    fn desired_applies_defaults_and_rejects_bad_peers_alone() {
        let local: IpAddr = "10.0.0.1".parse().unwrap();
        let mut big = peer("big", "10.0.0.9");
        big.vni = MAX_VNI + 1;
        let mut odd = peer("odd", "10.0.0.8");
        odd.vxlan_port = 70000;
        let mut tiny = peer("tiny", "10.0.0.7");
        tiny.mtu = 20;
        let mut ok = peer("b", "10.0.0.2");
        ok.mtu = 1400;
        ok.vni = 0;
        let peers = vec![
            ok,
            peer("c", "10.0.0.3"),
            peer("me", "10.0.0.4"),
            peer("v6", "fd00::2"),
            peer("junk", "ten.zero"),
            peer("mc", "239.1.1.1"),
            peer("self-ip", "10.0.0.1"),
            peer("", "10.0.0.5"),
            peer("c", "10.0.0.6"),
            big,
            odd,
            tiny,
        ];
        let (want, invalid) = desired("me", local, Defaults::default(), &peers);
        assert_eq!(
            want.values()
                .map(|s| s.peer.as_str())
                .collect::<Vec<_>>()
                .len(),
            2
        );
        let b = &want[&tunnel_ifname("b")];
        assert_eq!((b.vni, b.port, b.mtu), (4242, 4789, 1400));
        assert_eq!(b.remote, "10.0.0.2".parse::<IpAddr>().unwrap());
        let bad: BTreeSet<&str> = invalid.iter().map(|i| i.peer.as_str()).collect();
        for p in [
            "me", "v6", "junk", "mc", "self-ip", "", "c", "big", "odd", "tiny",
        ] {
            assert!(bad.contains(p), "{p} should be invalid: {invalid:?}");
        }
        let v6 = invalid.iter().find(|i| i.peer == "v6").unwrap();
        assert!(v6.why.contains("IPv6"), "{}", v6.why);
        assert_eq!(v6.name, tunnel_ifname("v6"));
    }

    #[test]
    fn tunnels_sharing_a_vni_and_port_are_refused() {
        let local: IpAddr = "10.0.0.1".parse().unwrap();
        let mut b = peer("b", "10.0.0.2");
        b.vni = 7;
        let mut c = peer("c", "10.0.0.3");
        c.vni = 7;
        let mut d = peer("d", "10.0.0.4");
        d.vni = 7;
        d.vxlan_port = 8472;
        let (want, invalid) = desired("a", local, Defaults::default(), &[b, c, d]);
        assert_eq!(want.len(), 2);
        assert_eq!(invalid.len(), 1);
        assert_eq!(invalid[0].peer, "c");
        assert!(invalid[0].why.contains("tunnel to b"), "{}", invalid[0].why);
    }

    #[test]
    fn ipv6_underlay_is_supported() {
        let local: IpAddr = "fd00::1".parse().unwrap();
        let (want, invalid) = desired("a", local, Defaults::default(), &[peer("b", "fd00::2")]);
        assert!(invalid.is_empty());
        assert_eq!(want.len(), 1);
    }
}
