//! A network as a user asks for it and as the model holds it once validated.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use weft_api::{PortSecurity, VirtualNetworkSpec};

use super::{Model, ModelError, NetworkKey, SEGMENT_RANGE, valid_dns_label};

/// Smallest and largest MTU a network may ask for (IPv6 minimum .. jumbo frames).
pub const MTU_RANGE: std::ops::RangeInclusive<u32> = 1280..=9000;

/// A validated network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Network {
    pub key: NetworkKey,
    /// 802.1Q id inside tunnels; also the network's id in metadata and cookies.
    pub segment: u16,
    pub subnet: Option<IpNet>,
    pub gateway: Option<IpAddr>,
    pub exclude: Vec<IpNet>,
    pub mtu: Option<u32>,
    pub allowed_namespaces: Vec<String>,
    /// State files written before port security was configurable load as `Strict`, what those
    /// networks ran.
    #[serde(default)]
    pub port_security: PortSecurity,
}

impl Network {
    /// Validates a spec. The segment is assigned by the caller (see [`super::Model::add_network`]).
    pub fn from_spec(
        key: NetworkKey,
        spec: &VirtualNetworkSpec,
        segment: u16,
    ) -> Result<Self, ModelError> {
        if !valid_dns_label(&key.namespace) || !valid_dns_label(&key.name) {
            return Err(ModelError::BadName(key.to_string()));
        }
        let subnet = spec
            .subnet
            .as_deref()
            .map(|s| {
                s.parse::<IpNet>()
                    .map_err(|_| ModelError::BadCidr(s.to_string()))
                    .map(|n| n.trunc())
            })
            .transpose()?;
        let gateway = spec
            .gateway
            .as_deref()
            .map(|g| {
                g.parse::<IpAddr>()
                    .map_err(|_| ModelError::BadAddress(g.to_string()))
            })
            .transpose()?;
        match (subnet, gateway) {
            (None, Some(_)) => return Err(ModelError::GatewayWithoutSubnet),
            (Some(net), Some(gw)) if !net.contains(&gw) => {
                return Err(ModelError::GatewayOutsideSubnet {
                    gateway: gw,
                    subnet: net,
                });
            }
            _ => {}
        }
        let mut exclude = Vec::new();
        for e in &spec.exclude_ips {
            let net = match e.parse::<IpNet>() {
                Ok(n) => n.trunc(),
                Err(_) => e
                    .parse::<IpAddr>()
                    .map(IpNet::from)
                    .map_err(|_| ModelError::BadCidr(e.clone()))?,
            };
            let Some(subnet) = subnet else {
                return Err(ModelError::ExcludeWithoutSubnet);
            };
            if !subnet.contains(&net) {
                return Err(ModelError::ExcludeOutsideSubnet(net));
            }
            if let Some(other) = exclude
                .iter()
                .find(|o: &&IpNet| o.contains(&net) || net.contains(*o))
            {
                return Err(ModelError::OverlappingExcludes(*other, net));
            }
            exclude.push(net);
        }
        if let Some(mtu) = spec.mtu
            && !MTU_RANGE.contains(&mtu)
        {
            return Err(ModelError::MtuOutOfRange(mtu));
        }
        for ns in &spec.allowed_namespaces {
            if ns != "*" && !valid_dns_label(ns) {
                return Err(ModelError::BadName(ns.clone()));
            }
        }
        if !SEGMENT_RANGE.contains(&segment) {
            return Err(ModelError::SegmentsExhausted);
        }
        Ok(Network {
            key,
            segment,
            subnet,
            gateway,
            exclude,
            mtu: spec.mtu,
            allowed_namespaces: spec.allowed_namespaces.clone(),
            port_security: spec.port_security,
        })
    }

    /// Whether pods of `namespace` may attach (`*` allows every namespace).
    pub fn allows(&self, namespace: &str) -> bool {
        namespace == self.key.namespace
            || self
                .allowed_namespaces
                .iter()
                .any(|n| n == "*" || n == namespace)
    }
}

impl Network {
    /// The spec this network runs, in canonical form (subnet truncated, excludes as CIDRs), as
    /// the northbound and `status.appliedSpec` show it.
    pub fn spec(&self) -> VirtualNetworkSpec {
        VirtualNetworkSpec {
            subnet: self.subnet.map(|s| s.to_string()),
            gateway: self.gateway.map(|g| g.to_string()),
            exclude_ips: self.exclude.iter().map(|e| e.to_string()).collect(),
            mtu: self.mtu,
            allowed_namespaces: self.allowed_namespaces.clone(),
            port_security: self.port_security,
        }
    }
}

impl Model {
    /// Replaces the spec of network `key`, keeping its segment. Refused (model unchanged, so the
    /// data plane keeps the previous spec) when a pod holding an address on it would lose it:
    /// outside the new subnet, or now reserved by the network, or its namespace no longer
    /// allowed. Prepared pods count too: their ADD is under way.
    pub fn update_network(
        &mut self,
        key: &NetworkKey,
        spec: &VirtualNetworkSpec,
    ) -> Result<&Network, ModelError> {
        let old = self
            .networks
            .get(key)
            .ok_or_else(|| ModelError::UnknownNetwork(key.clone()))?;
        let new = Network::from_spec(key.clone(), spec, old.segment)?;
        if &new != old {
            let pods = self.stranded_by(&new);
            if !pods.is_empty() {
                return Err(ModelError::SpecStrandsPods {
                    network: key.clone(),
                    pods,
                });
            }
            self.replace_network(new);
        }
        self.networks
            .get(key)
            .ok_or_else(|| ModelError::UnknownNetwork(key.clone()))
    }

    /// Every pod on `new`'s network that `new` would strand, sorted, with the reason: pods
    /// holding a reservation (attached or being attached) and attachments without one.
    fn stranded_by(&self, new: &Network) -> Vec<String> {
        let reserved = self.reservations.of_network(&new.key).map(|(id, r)| {
            (
                id,
                &r.pod,
                r.ips.iter().map(|n| n.addr()).collect::<Vec<_>>(),
            )
        });
        let unreserved = self
            .attachments_of(&new.key)
            .filter(|a| !self.reservations.contains_key(&a.id))
            .map(|a| (&a.id, &a.pod, a.ips.clone()));
        let mut out = Vec::new();
        for (id, pod, ips) in reserved.chain(unreserved) {
            let who = format!("{}/{} ({})", pod.namespace, pod.name, id.ifname);
            if !new.allows(&pod.namespace) {
                out.push(format!(
                    "{who}: namespace {} no longer allowed",
                    pod.namespace
                ));
            }
            for ip in ips {
                if let Some(why) = address_problem(new, ip) {
                    out.push(format!("{who}: {ip} {why}"));
                }
            }
        }
        out.sort();
        out
    }

    /// Puts an accepted edit in place. Reservations carry the subnet's prefix length, so they
    /// follow a prefix change.
    fn replace_network(&mut self, new: Network) {
        if let Some(subnet) = new.subnet {
            let ids: Vec<_> = self
                .reservations
                .of_network(&new.key)
                .map(|(id, _)| id.clone())
                .collect();
            for id in &ids {
                self.reservations.update(id, |r| {
                    for ip in r.ips.iter_mut() {
                        if let Ok(n) = IpNet::new(ip.addr(), subnet.prefix_len()) {
                            *ip = n;
                        }
                    }
                });
            }
        }
        self.networks.insert(new.key.clone(), new);
    }
}

/// Why a pod's address would not fit `net`, or `None` when it does: the rule IPAM applies when
/// it hands addresses out, so an edit never keeps what a new pod would be refused.
fn address_problem(net: &Network, ip: IpAddr) -> Option<String> {
    let subnet = net.subnet?;
    if !subnet.contains(&ip) {
        return Some("is outside the new subnet".into());
    }
    crate::ipam::reserved_by_network(net, &subnet, ip).map(|why| format!("is the new spec's {why}"))
}
