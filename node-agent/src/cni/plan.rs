//! What an ADD builds, decided from the request, the controller's reservation and the delegated
//! IPAM result before any link exists: no I/O here, so every rule is a tested function.

use super::host_ifname;
use super::seams::{PodConfig, RouteSpec};
use crate::netlink::parse_cidr;
use std::net::IpAddr;
use weft_proto::agent::v1 as agent;
use weft_proto::cni::v1 as pb;
use weft_proto::cni::{CniError, ErrorCode};
use weft_types::MacAddr;

/// One attachment's names, MAC, MTU, pod configuration and the result it will report.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Plan {
    pub host_if: String,
    pub mac: MacAddr,
    pub mtu: u32,
    /// The pod's addresses in CIDR form, as the controller and the record know them.
    pub addresses: Vec<String>,
    pub pod: PodConfig,
    ips: Vec<pb::IpConfig>,
    routes: Vec<pb::Route>,
    dns: Option<pb::Dns>,
}

/// The addresses to ask the controller to reserve: the plugin's when IPAM is delegated, else
/// those the runtime asked for (`ips` capability), if any.
pub(crate) fn requested_ips(r: &pb::CniRequest, delegated: Option<&pb::CniResult>) -> Vec<String> {
    match delegated {
        Some(d) => d.ips.iter().map(|ip| ip.address.clone()).collect(),
        None => r.ips.clone(),
    }
}

pub(crate) fn plan(
    r: &pb::CniRequest,
    prep: &agent::PrepareReply,
    delegated: Option<&pb::CniResult>,
    userspace_datapath: bool,
) -> Result<Plan, CniError> {
    let mac: MacAddr = prep.mac.parse().map_err(|_| {
        CniError::new(
            ErrorCode::ControllerError,
            format!("controller gave an invalid MAC {:?}", prep.mac),
        )
    })?;
    let (addresses, bad_address) = match delegated {
        Some(d) => (requested_ips(r, Some(d)), ErrorCode::IpamFailed),
        None => (prep.ips.clone(), ErrorCode::ControllerError),
    };
    let parsed = addresses
        .iter()
        .map(|a| {
            parse_cidr(a)
                .ok_or_else(|| CniError::new(bad_address, format!("invalid address {a:?}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let routes = delegated.map(|d| d.routes.clone()).unwrap_or_default();
    let route_specs = routes
        .iter()
        .map(|rt| route_spec(rt, delegated))
        .collect::<Result<Vec<_>, _>>()?;
    let ips = addresses
        .iter()
        .map(|a| pb::IpConfig {
            address: a.clone(),
            gateway: gateway_for(a, prep, delegated),
            interface: 1,
        })
        .collect();
    Ok(Plan {
        host_if: host_ifname(&r.container_id, &r.ifname),
        mac,
        mtu: if r.mtu > 0 { r.mtu } else { prep.mtu },
        addresses,
        pod: PodConfig {
            addresses: parsed,
            routes: route_specs,
            tx_checksum_off: userspace_datapath,
        },
        ips,
        routes,
        dns: delegated.and_then(|d| d.dns.clone()),
    })
}

/// A delegated route; one without a gateway goes via the plugin's gateway of the same family.
fn route_spec(rt: &pb::Route, delegated: Option<&pb::CniResult>) -> Result<RouteSpec, CniError> {
    let (dst, prefix) = parse_cidr(&rt.dst).ok_or_else(|| {
        CniError::new(
            ErrorCode::IpamFailed,
            format!("route destination {:?}", rt.dst),
        )
    })?;
    let gateway =
        match rt.gw.as_str() {
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
    Ok(RouteSpec {
        dst,
        prefix,
        gateway,
    })
}

/// The gateway reported for `address`: the plugin's for it, else the network's when it is of
/// the same family.
fn gateway_for(
    address: &str,
    prep: &agent::PrepareReply,
    delegated: Option<&pb::CniResult>,
) -> String {
    if let Some(d) = delegated {
        return d
            .ips
            .iter()
            .find(|i| i.address == address)
            .map(|i| i.gateway.clone())
            .unwrap_or_default();
    }
    let same = parse_cidr(address).is_some_and(|(ip, _)| same_family(&prep.gateway, &ip));
    if same {
        prep.gateway.clone()
    } else {
        String::new()
    }
}

fn same_family(a: &str, b: &IpAddr) -> bool {
    a.parse::<IpAddr>()
        .is_ok_and(|a| a.is_ipv4() == b.is_ipv4())
}

impl Plan {
    /// The CNI result: host end first, then the pod end, which every address is on.
    pub(crate) fn result(self, r: &pb::CniRequest, host_mac: Option<MacAddr>) -> pb::CniResult {
        pb::CniResult {
            interfaces: vec![
                pb::Interface {
                    name: self.host_if,
                    mac: host_mac.map(|m| m.to_string()).unwrap_or_default(),
                    sandbox: String::new(),
                    mtu: self.mtu,
                },
                pb::Interface {
                    name: r.ifname.clone(),
                    mac: self.mac.to_string(),
                    sandbox: r.netns.clone(),
                    mtu: self.mtu,
                },
            ],
            ips: self.ips,
            routes: self.routes,
            dns: self.dns,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> pb::CniRequest {
        pb::CniRequest {
            container_id: "c1".into(),
            ifname: "net1".into(),
            netns: "/run/netns/p".into(),
            network: "default/blue".into(),
            ..Default::default()
        }
    }

    fn prepared(ips: &[&str], gateway: &str) -> agent::PrepareReply {
        agent::PrepareReply {
            mac: "02:00:00:00:00:05".into(),
            ips: ips.iter().map(|s| s.to_string()).collect(),
            gateway: gateway.into(),
            mtu: 1450,
        }
    }

    fn ip(address: &str, gateway: &str) -> pb::IpConfig {
        pb::IpConfig {
            address: address.into(),
            gateway: gateway.into(),
            interface: 1,
        }
    }

    #[test]
    fn controller_gateway_only_for_addresses_of_its_family() {
        let p = plan(
            &request(),
            &prepared(&["10.1.0.5/24", "fd00::5/64"], "10.1.0.1"),
            None,
            false,
        )
        .unwrap();
        assert_eq!(
            p.ips,
            vec![ip("10.1.0.5/24", "10.1.0.1"), ip("fd00::5/64", "")]
        );
        assert_eq!(p.mtu, 1450);
        assert!(p.pod.routes.is_empty());
        assert_eq!(p.host_if, host_ifname("c1", "net1"));
    }

    #[test]
    fn runtime_mtu_wins_and_userspace_turns_checksum_off() {
        let mut r = request();
        r.mtu = 1400;
        let p = plan(&r, &prepared(&[], ""), None, true).unwrap();
        assert_eq!(p.mtu, 1400);
        assert!(p.pod.tx_checksum_off);
    }

    #[test]
    fn delegated_routes_take_the_plugin_gateway_of_their_family() {
        let d = pb::CniResult {
            ips: vec![ip("10.9.0.5/24", "10.9.0.1"), ip("fd09::5/64", "fd09::1")],
            routes: vec![
                pb::Route {
                    dst: "0.0.0.0/0".into(),
                    gw: String::new(),
                },
                pb::Route {
                    dst: "::/0".into(),
                    gw: String::new(),
                },
                pb::Route {
                    dst: "192.168.7.0/24".into(),
                    gw: "10.9.0.254".into(),
                },
            ],
            ..Default::default()
        };
        // The controller's own addresses do not matter once IPAM is delegated.
        let p = plan(
            &request(),
            &prepared(&["10.1.0.5/24"], "10.1.0.1"),
            Some(&d),
            false,
        )
        .unwrap();
        assert_eq!(p.addresses, vec!["10.9.0.5/24", "fd09::5/64"]);
        assert_eq!(p.ips, d.ips);
        let gws: Vec<_> = p.pod.routes.iter().map(|r| r.gateway).collect();
        assert_eq!(
            gws,
            vec![
                "10.9.0.1".parse().ok(),
                "fd09::1".parse().ok(),
                "10.9.0.254".parse().ok()
            ]
        );
    }

    #[test]
    fn bad_inputs_get_the_code_of_whoever_gave_them() {
        let mut bad_mac = prepared(&[], "");
        bad_mac.mac = "zz".into();
        let e = plan(&request(), &bad_mac, None, false).unwrap_err();
        assert_eq!(e.code, ErrorCode::ControllerError);

        let e = plan(&request(), &prepared(&["10.1.0.500/24"], ""), None, false).unwrap_err();
        assert_eq!(e.code, ErrorCode::ControllerError);

        let d = pb::CniResult {
            ips: vec![ip("10.9.0.5/24", "")],
            routes: vec![pb::Route {
                dst: "10.0.0.0/8".into(),
                gw: "not-an-ip".into(),
            }],
            ..Default::default()
        };
        let e = plan(&request(), &prepared(&[], ""), Some(&d), false).unwrap_err();
        assert_eq!(e.code, ErrorCode::IpamFailed);
        assert!(e.msg.contains("not-an-ip"), "{}", e.msg);
    }
}
