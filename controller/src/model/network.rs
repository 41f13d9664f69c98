//! A network as a user asks for it and as the model holds it once validated.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use weft_api::{PortSecurity, VirtualNetworkSpec};

use super::{ModelError, NetworkKey, SEGMENT_RANGE, valid_dns_label};

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
