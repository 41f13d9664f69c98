//! Addresses and MACs for attachments.
//!
//! Allocations live in the model (as [`Reservation`]s keyed by attachment), so they are persisted
//! with it and survive restarts. Asking again for the same attachment returns the same
//! reservation (CNI retries ADD). The network address, the IPv4 broadcast address, the gateway and
//! excluded ranges are never handed out; a static request is honoured or refused, never moved.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::model::{AttachmentId, Model, ModelError, Network, NetworkKey, PodRef, fmt_mac};

/// MAC and addresses held for one attachment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    pub network: NetworkKey,
    pub node: String,
    pub pod: PodRef,
    pub mac: [u8; 6],
    /// With the subnet's prefix length.
    pub ips: Vec<IpNet>,
}

/// What a caller asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReserveRequest {
    pub id: AttachmentId,
    pub network: NetworkKey,
    pub node: String,
    pub pod: PodRef,
    pub mac: Option<[u8; 6]>,
    /// Static addresses; prefix lengths are ignored (the subnet's is used).
    pub ips: Vec<IpAddr>,
}

/// Parses `02:00:00:00:00:01`.
pub fn parse_mac(s: &str) -> Result<[u8; 6], ModelError> {
    let mut out = [0u8; 6];
    let parts: Vec<&str> = s.split([':', '-']).collect();
    if parts.len() != 6 {
        return Err(ModelError::BadMac(s.to_string()));
    }
    for (o, p) in out.iter_mut().zip(parts) {
        if p.len() != 2 {
            return Err(ModelError::BadMac(s.to_string()));
        }
        *o = u8::from_str_radix(p, 16).map_err(|_| ModelError::BadMac(s.to_string()))?;
    }
    Ok(out)
}

/// A locally administered unicast MAC derived from the pod UID and interface, so a pod keeps its
/// MAC across agent restarts and CNI retries. `salt` resolves the rare collision.
pub fn stable_mac(pod_uid: &str, ifname: &str, salt: u32) -> [u8; 6] {
    // FNV-1a: tiny, stable across versions and platforms.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in pod_uid
        .bytes()
        .chain([0])
        .chain(ifname.bytes())
        .chain(salt.to_be_bytes())
    {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    let b = h.to_be_bytes();
    [0x02, b[1], b[2], b[3], b[4], b[5]]
}

fn to_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u32::from(a) as u128,
        IpAddr::V6(a) => u128::from(a),
    }
}

fn from_u128(v: u128, like: IpAddr) -> IpAddr {
    match like {
        IpAddr::V4(_) => IpAddr::V4((v as u32).into()),
        IpAddr::V6(_) => IpAddr::V6(v.into()),
    }
}

/// Why an address of a network's subnet is never handed out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reserved {
    NetworkAddress,
    Broadcast,
    Gateway,
    Excluded,
}

impl std::fmt::Display for Reserved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Reserved::NetworkAddress => "network address",
            Reserved::Broadcast => "broadcast address",
            Reserved::Gateway => "gateway",
            Reserved::Excluded => "excluded range",
        })
    }
}

/// Whether `net` keeps `ip` (inside `subnet`) for itself, whatever is allocated. The one rule for
/// handing addresses out and for checking that an edit leaves attached pods their addresses.
pub(crate) fn reserved_by_network(net: &Network, subnet: &IpNet, ip: IpAddr) -> Option<Reserved> {
    if ip == subnet.network() {
        Some(Reserved::NetworkAddress)
    } else if subnet.addr().is_ipv4() && ip == subnet.broadcast() && subnet.prefix_len() < 31 {
        Some(Reserved::Broadcast)
    } else if net.gateway == Some(ip) {
        Some(Reserved::Gateway)
    } else if net.exclude.iter().any(|e| e.contains(&ip)) {
        Some(Reserved::Excluded)
    } else {
        None
    }
}

/// Every address held on `key` by attachments other than `except`.
fn used(
    model: &Model,
    key: &NetworkKey,
    except: &AttachmentId,
) -> std::collections::BTreeSet<IpAddr> {
    model
        .reservations
        .of_network(key)
        .filter(|(id, _)| *id != except)
        .flat_map(|(_, r)| r.ips.iter().map(|n| n.addr()))
        .collect()
}

/// The lowest free address of the subnet.
fn first_free(
    net: &Network,
    subnet: &IpNet,
    used: &std::collections::BTreeSet<IpAddr>,
) -> Option<IpAddr> {
    let start = to_u128(subnet.network());
    let end = to_u128(subnet.broadcast());
    let mut v = start;
    while v <= end {
        let ip = from_u128(v, subnet.addr());
        // Jump over a whole excluded range at once.
        if let Some(e) = net.exclude.iter().find(|e| e.contains(&ip)) {
            v = to_u128(e.broadcast()).checked_add(1)?;
            continue;
        }
        if !used.contains(&ip) && reserved_by_network(net, subnet, ip).is_none() {
            return Some(ip);
        }
        v = v.checked_add(1)?;
    }
    None
}

/// Reserves (or returns the existing reservation of) MAC and addresses for an attachment.
pub fn reserve(model: &mut Model, req: ReserveRequest) -> Result<Reservation, ModelError> {
    let net = model
        .networks
        .get(&req.network)
        .ok_or_else(|| ModelError::UnknownNetwork(req.network.clone()))?
        .clone();
    if !net.allows(&req.pod.namespace) {
        return Err(ModelError::NamespaceNotAllowed {
            namespace: req.pod.namespace.clone(),
            network: req.network.clone(),
        });
    }
    if let Some(existing) = model.reservations.get(&req.id)
        && existing.network == req.network
        && req.mac.is_none_or(|m| m == existing.mac)
        && (req.ips.is_empty()
            || req
                .ips
                .iter()
                .all(|ip| existing.ips.iter().any(|n| n.addr() == *ip)))
    {
        return Ok(existing.clone());
    }
    let others = || {
        model
            .reservations
            .of_network(&req.network)
            .filter(|(id, _)| **id != req.id)
    };
    let mac = match req.mac {
        Some(m) => {
            if m[0] & 1 == 1 || m == [0; 6] {
                return Err(ModelError::BadMac(fmt_mac(&m)));
            }
            if others().any(|(_, r)| r.mac == m) {
                return Err(ModelError::DuplicateMac(fmt_mac(&m), req.network.clone()));
            }
            m
        }
        None => (0..)
            .map(|salt| stable_mac(&req.pod.uid, &req.id.ifname, salt))
            .find(|m| !others().any(|(_, r)| r.mac == *m))
            .unwrap_or([0x02, 0, 0, 0, 0, 1]),
    };
    let mut ips = Vec::new();
    if let Some(subnet) = net.subnet {
        let used = used(model, &req.network, &req.id);
        if req.ips.is_empty() {
            let ip = first_free(&net, &subnet, &used).ok_or(ModelError::SubnetFull(subnet))?;
            ips.push(
                IpNet::new(ip, subnet.prefix_len()).map_err(|_| ModelError::SubnetFull(subnet))?,
            );
        }
        for ip in &req.ips {
            if !subnet.contains(ip) {
                return Err(ModelError::IpOutsideSubnet(*ip));
            }
            if used.contains(ip) {
                return Err(ModelError::DuplicateIp(*ip, req.network.clone()));
            }
            if reserved_by_network(&net, &subnet, *ip).is_some() {
                return Err(ModelError::IpReserved(*ip));
            }
            ips.push(
                IpNet::new(*ip, subnet.prefix_len())
                    .map_err(|_| ModelError::IpOutsideSubnet(*ip))?,
            );
        }
    } else if !req.ips.is_empty() {
        // A layer-2 network has no IPAM: static addresses are the pod's own business, but we
        // still refuse duplicates so anti-spoofing stays meaningful.
        let used = used(model, &req.network, &req.id);
        for ip in &req.ips {
            if used.contains(ip) {
                return Err(ModelError::DuplicateIp(*ip, req.network.clone()));
            }
            let prefix = if ip.is_ipv4() { 32 } else { 128 };
            ips.push(IpNet::new(*ip, prefix).map_err(|_| ModelError::BadAddress(ip.to_string()))?);
        }
    }
    let r = Reservation {
        network: req.network,
        node: req.node,
        pod: req.pod,
        mac,
        ips,
    };
    model.reservations.insert(req.id, r.clone());
    Ok(r)
}

/// Releases an attachment's reservation (and its attachment); unknown ids are fine.
pub fn release(model: &mut Model, id: &AttachmentId) -> Option<Reservation> {
    model.attachments.remove(id);
    model.reservations.remove(id)
}

/// (used, total usable) addresses of a network, for the IPAM usage metric.
pub fn usage(model: &Model, key: &NetworkKey) -> Option<(u64, u64)> {
    let net = model.networks.get(key)?;
    let subnet = net.subnet?;
    let used = model
        .reservations
        .of_network(key)
        .map(|(_, r)| r.ips.len() as u64)
        .sum();
    let host_bits = subnet.max_prefix_len() - subnet.prefix_len();
    let total = if host_bits >= 64 {
        u64::MAX
    } else {
        1u64 << host_bits
    };
    Some((used, total))
}

#[cfg(test)]
mod tests {
    use super::*;
    use weft_api::VirtualNetworkSpec;

    fn model(spec: VirtualNetworkSpec) -> (Model, NetworkKey) {
        let mut m = Model::default();
        let key = NetworkKey::new("ns", "red");
        m.add_network(key.clone(), &spec).unwrap();
        (m, key)
    }

    fn req(key: &NetworkKey, c: &str) -> ReserveRequest {
        ReserveRequest {
            id: AttachmentId {
                container_id: c.into(),
                ifname: "net1".into(),
            },
            network: key.clone(),
            node: "n1".into(),
            pod: PodRef {
                namespace: "ns".into(),
                name: c.into(),
                uid: format!("uid-{c}"),
            },
            mac: None,
            ips: vec![],
        }
    }

    #[test]
    fn skips_network_gateway_excludes_and_broadcast_and_is_idempotent() {
        let (mut m, key) = model(VirtualNetworkSpec {
            subnet: Some("10.1.0.0/29".into()),
            gateway: Some("10.1.0.1".into()),
            exclude_ips: vec!["10.1.0.2/31".into()],
            ..Default::default()
        });
        let a = reserve(&mut m, req(&key, "a")).unwrap();
        assert_eq!(a.ips[0].to_string(), "10.1.0.4/29");
        assert_eq!(
            reserve(&mut m, req(&key, "a")).unwrap(),
            a,
            "retry must return the same"
        );
        let b = reserve(&mut m, req(&key, "b")).unwrap();
        assert_eq!(b.ips[0].to_string(), "10.1.0.5/29");
        assert_ne!(a.mac, b.mac);
        let c = reserve(&mut m, req(&key, "c")).unwrap();
        assert_eq!(c.ips[0].to_string(), "10.1.0.6/29");
        // .7 is the broadcast address: the subnet is full.
        assert!(matches!(
            reserve(&mut m, req(&key, "d")),
            Err(ModelError::SubnetFull(_))
        ));
        release(&mut m, &req(&key, "b").id);
        assert_eq!(
            reserve(&mut m, req(&key, "d")).unwrap().ips[0].to_string(),
            "10.1.0.5/29"
        );
    }

    #[test]
    fn static_requests_are_honoured_or_refused() {
        let (mut m, key) = model(VirtualNetworkSpec {
            subnet: Some("10.1.0.0/24".into()),
            gateway: Some("10.1.0.1".into()),
            ..Default::default()
        });
        let mut r = req(&key, "a");
        r.ips = vec!["10.1.0.50".parse().unwrap()];
        r.mac = Some(parse_mac("02:00:00:00:00:aa").unwrap());
        let a = reserve(&mut m, r.clone()).unwrap();
        assert_eq!(a.ips[0].to_string(), "10.1.0.50/24");
        let before = m.clone();
        let mut dup = req(&key, "b");
        dup.ips = r.ips.clone();
        assert!(matches!(
            reserve(&mut m, dup),
            Err(ModelError::DuplicateIp(..))
        ));
        let mut dup_mac = req(&key, "b");
        dup_mac.mac = r.mac;
        assert!(matches!(
            reserve(&mut m, dup_mac),
            Err(ModelError::DuplicateMac(..))
        ));
        let mut gw = req(&key, "b");
        gw.ips = vec!["10.1.0.1".parse().unwrap()];
        assert!(matches!(
            reserve(&mut m, gw),
            Err(ModelError::IpReserved(_))
        ));
        let mut outside = req(&key, "b");
        outside.ips = vec!["10.2.0.1".parse().unwrap()];
        assert!(matches!(
            reserve(&mut m, outside),
            Err(ModelError::IpOutsideSubnet(_))
        ));
        let mut other_ns = req(&key, "b");
        other_ns.pod.namespace = "other".into();
        assert!(matches!(
            reserve(&mut m, other_ns),
            Err(ModelError::NamespaceNotAllowed { .. })
        ));
        assert_eq!(m, before, "refusals must change nothing");
    }

    #[test]
    fn macs_are_stable_and_unicast() {
        let a = stable_mac("uid", "net1", 0);
        assert_eq!(a, stable_mac("uid", "net1", 0));
        assert_ne!(a, stable_mac("uid", "net2", 0));
        assert_eq!(a[0], 0x02);
        assert!(parse_mac("02:00:00:00:00").is_err());
        assert!(parse_mac("zz:00:00:00:00:00").is_err());
    }
}
