//! CNI results: decoding a `prevResult` of any supported version, amending it with ours, and
//! rendering in the configuration's version (0.3.x/0.4.0 carry `ips[].version`, 1.1.0 adds
//! `interfaces[].mtu`).

use serde_json::{Map, Value, json};
use std::net::IpAddr;

use super::v1 as pb;
use super::version_tuple;

/// Why a result object could not be decoded; the message names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ResultError(pub String);

fn str_field(o: &Map<String, Value>, k: &str) -> Result<String, ResultError> {
    match o.get(k) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(v) => Err(ResultError(format!("{k}: expected a string, got {v}"))),
    }
}

fn list<'a>(o: &'a Map<String, Value>, k: &str) -> Result<&'a [Value], ResultError> {
    match o.get(k) {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(a)) => Ok(a),
        Some(v) => Err(ResultError(format!("{k}: expected a list, got {v}"))),
    }
}

fn object<'a>(v: &'a Value, what: &str) -> Result<&'a Map<String, Value>, ResultError> {
    v.as_object()
        .ok_or_else(|| ResultError(format!("{what}: expected an object, got {v}")))
}

fn strings(o: &Map<String, Value>, k: &str) -> Result<Vec<String>, ResultError> {
    list(o, k)?
        .iter()
        .map(|v| {
            v.as_str()
                .map(String::from)
                .ok_or_else(|| ResultError(format!("{k}: {v} is not a string")))
        })
        .collect()
}

/// Decodes a CNI result object (`prevResult`) of version 0.3.0 or later.
pub fn parse_result(v: &Value) -> Result<pb::CniResult, ResultError> {
    let o = object(v, "result")?;
    let mut r = pb::CniResult::default();
    for i in list(o, "interfaces")? {
        let i = object(i, "interface")?;
        r.interfaces.push(pb::Interface {
            name: str_field(i, "name")?,
            mac: str_field(i, "mac")?,
            sandbox: str_field(i, "sandbox")?,
            mtu: i
                .get("mtu")
                .and_then(Value::as_u64)
                .and_then(|m| u32::try_from(m).ok())
                .unwrap_or(0),
        });
    }
    for ip in list(o, "ips")? {
        let ip = object(ip, "ip")?;
        let address = str_field(ip, "address")?;
        if address
            .split_once('/')
            .is_none_or(|(a, _)| a.parse::<IpAddr>().is_err())
        {
            return Err(ResultError(format!("ips: address {address:?} is not CIDR")));
        }
        let interface = match ip.get("interface") {
            None | Some(Value::Null) => -1,
            Some(v) => v
                .as_u64()
                .and_then(|n| i32::try_from(n).ok())
                .filter(|n| (*n as usize) < r.interfaces.len())
                .ok_or_else(|| ResultError(format!("ips: interface index {v} out of range")))?,
        };
        r.ips.push(pb::IpConfig {
            address,
            gateway: str_field(ip, "gateway")?,
            interface,
        });
    }
    for rt in list(o, "routes")? {
        let rt = object(rt, "route")?;
        r.routes.push(pb::Route {
            dst: str_field(rt, "dst")?,
            gw: str_field(rt, "gw")?,
        });
    }
    if let Some(d) = o.get("dns").filter(|d| !d.is_null()) {
        let d = object(d, "dns")?;
        r.dns = Some(pb::Dns {
            nameservers: strings(d, "nameservers")?,
            domain: str_field(d, "domain")?,
            search: strings(d, "search")?,
            options: strings(d, "options")?,
        });
    }
    Ok(r)
}

/// `prev` followed by `ours`; our interface indices shift past prev's interfaces. DNS: prev's
/// unless it has none.
pub fn amend(prev: Option<pb::CniResult>, ours: pb::CniResult) -> pb::CniResult {
    let Some(mut out) = prev else {
        return ours;
    };
    let shift = out.interfaces.len() as i32;
    out.interfaces.extend(ours.interfaces);
    out.ips.extend(ours.ips.into_iter().map(|mut ip| {
        if ip.interface >= 0 {
            ip.interface += shift;
        }
        ip
    }));
    out.routes.extend(ours.routes);
    if out.dns.is_none() {
        out.dns = ours.dns;
    }
    out
}

/// The result JSON for configuration version `version`.
pub fn render(r: &pb::CniResult, version: &str) -> Value {
    let vt = version_tuple(version).unwrap_or((1, 1, 0));
    let legacy = vt < (1, 0, 0);
    let with_mtu = vt >= (1, 1, 0);
    let interfaces: Vec<Value> = r
        .interfaces
        .iter()
        .map(|i| {
            let mut o = Map::new();
            o.insert("name".into(), json!(i.name));
            if !i.mac.is_empty() {
                o.insert("mac".into(), json!(i.mac));
            }
            if !i.sandbox.is_empty() {
                o.insert("sandbox".into(), json!(i.sandbox));
            }
            if with_mtu && i.mtu != 0 {
                o.insert("mtu".into(), json!(i.mtu));
            }
            Value::Object(o)
        })
        .collect();
    let ips: Vec<Value> = r
        .ips
        .iter()
        .map(|ip| {
            let mut o = Map::new();
            if legacy {
                let v6 = ip
                    .address
                    .split('/')
                    .next()
                    .is_some_and(|a| a.contains(':'));
                o.insert("version".into(), json!(if v6 { "6" } else { "4" }));
            }
            if ip.interface >= 0 {
                o.insert("interface".into(), json!(ip.interface));
            }
            o.insert("address".into(), json!(ip.address));
            if !ip.gateway.is_empty() {
                o.insert("gateway".into(), json!(ip.gateway));
            }
            Value::Object(o)
        })
        .collect();
    let routes: Vec<Value> = r
        .routes
        .iter()
        .map(|rt| {
            if rt.gw.is_empty() {
                json!({"dst": rt.dst})
            } else {
                json!({"dst": rt.dst, "gw": rt.gw})
            }
        })
        .collect();
    let mut dns = Map::new();
    if let Some(d) = &r.dns {
        if !d.nameservers.is_empty() {
            dns.insert("nameservers".into(), json!(d.nameservers));
        }
        if !d.domain.is_empty() {
            dns.insert("domain".into(), json!(d.domain));
        }
        if !d.search.is_empty() {
            dns.insert("search".into(), json!(d.search));
        }
        if !d.options.is_empty() {
            dns.insert("options".into(), json!(d.options));
        }
    }
    let mut out = Map::new();
    out.insert("cniVersion".into(), json!(version));
    out.insert("interfaces".into(), Value::Array(interfaces));
    out.insert("ips".into(), Value::Array(ips));
    if !routes.is_empty() {
        out.insert("routes".into(), Value::Array(routes));
    }
    out.insert("dns".into(), Value::Object(dns));
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_prev_result_round_trips_with_shifted_indices() {
        let prev = json!({
            "cniVersion": "0.4.0",
            "interfaces": [{"name": "eth0", "mac": "aa:bb:cc:dd:ee:ff", "sandbox": "/x"}],
            "ips": [{"version": "4", "address": "10.0.0.2/24", "interface": 0}],
            "dns": {"nameservers": ["1.1.1.1"]}
        });
        let prev = parse_result(&prev).unwrap();
        let ours = pb::CniResult {
            interfaces: vec![pb::Interface {
                name: "net1".into(),
                ..Default::default()
            }],
            ips: vec![pb::IpConfig {
                address: "fd00::5/64".into(),
                gateway: String::new(),
                interface: 0,
            }],
            ..Default::default()
        };
        let out = render(&amend(Some(prev), ours), "0.4.0");
        assert_eq!(out["ips"][1]["interface"], 1);
        assert_eq!(out["ips"][1]["version"], "6");
        assert_eq!(out["ips"][0]["version"], "4");
        assert_eq!(out["dns"]["nameservers"][0], "1.1.1.1");
        let v1 = render(&parse_result(&out).unwrap(), "1.0.0");
        assert!(v1["ips"][0].get("version").is_none());
    }

    #[test]
    fn bad_interface_index_is_refused() {
        let prev = json!({"ips": [{"address": "10.0.0.2/24", "interface": 3}]});
        assert!(parse_result(&prev).is_err());
    }
}
