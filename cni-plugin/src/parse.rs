//! The CNI contract's input side: `CNI_*` variables and the network configuration on stdin,
//! parsed into a [`pb::CniRequest`]. Every malformed input becomes a [`CniError`], never a panic.

use serde_json::{Map, Value};
use std::collections::HashMap;
use std::net::IpAddr;
use weft_proto::cni::result::parse_result;
use weft_proto::cni::v1 as pb;
use weft_proto::cni::{CniError, ErrorCode, valid_container_id, valid_ifname, version_tuple};
use weft_proto::common::v1::{AttachmentId, PodRef};
use weft_types::MacAddr;

/// The versions this plugin speaks. Results are rendered in the configuration's version.
pub const SUPPORTED_VERSIONS: &[&str] = &["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];
/// The newest version: used for VERSION output and errors raised before a version is known.
pub const LATEST_VERSION: &str = "1.1.0";
/// Where the agent listens unless `socketPath` or `WEFT_CNI_SOCKET` says otherwise.
pub const DEFAULT_SOCKET: &str = "/run/weft/cni.sock";

/// A CNI command (`CNI_COMMAND`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Add,
    Del,
    Check,
    Version,
    Status,
    Gc,
}

impl Command {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "ADD" => Command::Add,
            "DEL" => Command::Del,
            "CHECK" => Command::Check,
            "VERSION" => Command::Version,
            "STATUS" => Command::Status,
            "GC" => Command::Gc,
            _ => return None,
        })
    }

    /// The oldest configuration version that has this command.
    fn min_version(self) -> (u32, u32, u32) {
        match self {
            Command::Check => (0, 4, 0),
            Command::Status | Command::Gc => (1, 1, 0),
            _ => (0, 0, 0),
        }
    }
}

/// A parsed invocation, ready to send to the agent.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub command: Command,
    /// The configuration's cniVersion (validated against [`SUPPORTED_VERSIONS`]).
    pub version: String,
    pub socket: String,
    pub request: pb::CniRequest,
}

fn env_err(msg: impl Into<String>) -> CniError {
    CniError::new(ErrorCode::InvalidEnvironment, msg)
}

fn config_err(msg: impl Into<String>) -> CniError {
    CniError::new(ErrorCode::InvalidConfig, msg)
}

/// The command alone, for callers that must know it before anything else parses.
pub fn command(env: &HashMap<String, String>) -> Result<Command, CniError> {
    match env.get("CNI_COMMAND").map(String::as_str) {
        None | Some("") => Err(env_err("required env variable CNI_COMMAND missing")),
        Some(c) => Command::parse(c).ok_or_else(|| env_err(format!("unknown CNI_COMMAND {c:?}"))),
    }
}

/// `CNI_ARGS` taken apart: the pod, its infra container id, and the other entries.
struct CniArgs {
    pod: PodRef,
    infra_container_id: String,
    extra: HashMap<String, String>,
}

/// Parses `CNI_ARGS` (`K=V;K=V`). Malformed pairs are refused unless `IgnoreUnknown` is true.
fn parse_cni_args(raw: &str) -> Result<CniArgs, CniError> {
    let pairs: Vec<&str> = raw.split(';').filter(|p| !p.is_empty()).collect();
    let ignore_unknown = pairs.iter().any(|p| {
        p.split_once('=').is_some_and(|(k, v)| {
            k == "IgnoreUnknown" && (v == "1" || v.eq_ignore_ascii_case("true"))
        })
    });
    let mut pod = PodRef::default();
    let mut infra_container_id = String::new();
    let mut extra = HashMap::new();
    for p in pairs {
        let Some((k, v)) = p.split_once('=') else {
            if ignore_unknown {
                continue;
            }
            return Err(env_err(format!("CNI_ARGS: invalid pair {p:?}")));
        };
        match k {
            "K8S_POD_NAMESPACE" => pod.namespace = v.to_string(),
            "K8S_POD_NAME" => pod.name = v.to_string(),
            "K8S_POD_UID" => pod.uid = v.to_string(),
            "K8S_POD_INFRA_CONTAINER_ID" => infra_container_id = v.to_string(),
            "IgnoreUnknown" => {}
            _ => {
                extra.insert(k.to_string(), v.to_string());
            }
        }
    }
    Ok(CniArgs {
        pod,
        infra_container_id,
        extra,
    })
}

/// A MAC in the canonical lower-case `02:00:00:00:00:01` form (`-` separators accepted).
pub fn parse_mac(s: &str) -> Option<String> {
    s.parse::<MacAddr>().ok().map(|m| m.to_string())
}

/// A bare address or a CIDR with a valid prefix length for its family.
pub fn valid_ip_or_cidr(s: &str) -> bool {
    match s.split_once('/') {
        None => s.parse::<IpAddr>().is_ok(),
        Some((a, p)) => match (a.parse::<IpAddr>(), p.parse::<u8>()) {
            (Ok(IpAddr::V4(_)), Ok(n)) => n <= 32,
            (Ok(IpAddr::V6(_)), Ok(n)) => n <= 128,
            _ => false,
        },
    }
}

fn opt_str<'a>(o: &'a Map<String, Value>, key: &str) -> Result<Option<&'a str>, CniError> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(config_err(format!("{key} must be a string"))),
    }
}

/// `mac`/`ips` from an object such as `runtimeConfig` or `args.cni`.
fn mac_ips(o: &Map<String, Value>, what: &str) -> Result<(Option<String>, Vec<String>), CniError> {
    let mac = match opt_str(o, "mac")? {
        None | Some("") => None,
        Some(m) => {
            Some(parse_mac(m).ok_or_else(|| config_err(format!("{what}.mac {m:?} is not a MAC")))?)
        }
    };
    let ips = match o.get("ips") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| match v.as_str() {
                Some(s) if valid_ip_or_cidr(s) => Ok(s.to_string()),
                _ => Err(config_err(format!("{what}.ips: {v} is not an IP address"))),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(config_err(format!("{what}.ips must be a list"))),
    };
    Ok((mac, ips))
}

/// Fields of other plugins (e.g. `bridge`) that ask for behaviour Weft does not have.
const UNSUPPORTED_TRUE_FIELDS: &[&str] = &[
    "isGateway",
    "isDefaultGateway",
    "ipMasq",
    "hairpinMode",
    "promiscMode",
];

/// Parses one invocation. `VERSION` is handled by the caller before this (it needs no config).
pub fn parse(
    env: &HashMap<String, String>,
    stdin: &[u8],
) -> Result<Invocation, (String, CniError)> {
    let latest = || LATEST_VERSION.to_string();
    let command = command(env).map_err(|e| (latest(), e))?;
    let get = |k: &str| env.get(k).map(String::as_str).unwrap_or("");

    // The configuration first, so errors carry its version when it has a valid one.
    let conf: Value = serde_json::from_slice(stdin).map_err(|e| {
        (
            latest(),
            CniError::new(
                ErrorCode::Decode,
                format!("network configuration is not JSON: {e}"),
            ),
        )
    })?;
    let Value::Object(conf) = conf else {
        return Err((
            latest(),
            CniError::new(
                ErrorCode::Decode,
                "network configuration is not a JSON object",
            ),
        ));
    };
    let version = match conf.get("cniVersion") {
        Some(Value::String(v)) => v.clone(),
        None => return Err((latest(), config_err("cniVersion missing"))),
        Some(_) => return Err((latest(), config_err("cniVersion must be a string"))),
    };
    if !SUPPORTED_VERSIONS.contains(&version.as_str()) {
        return Err((
            latest(),
            CniError::new(
                ErrorCode::IncompatibleVersion,
                format!("cniVersion {version:?} not supported"),
            )
            .with_details(format!("supported: {}", SUPPORTED_VERSIONS.join(", "))),
        ));
    }
    let v = version.clone();
    let fail = move |e: CniError| (v.clone(), e);
    let vt = version_tuple(&version).unwrap_or((0, 0, 0));
    if vt < command.min_version() {
        return Err(fail(CniError::new(
            ErrorCode::IncompatibleVersion,
            format!("cniVersion {version} does not have {command:?}"),
        )));
    }

    // Environment.
    let needs_container = matches!(command, Command::Add | Command::Del | Command::Check);
    let mut req = pb::CniRequest {
        cni_version: version.clone(),
        ..Default::default()
    };
    if needs_container {
        let id = get("CNI_CONTAINERID");
        if id.is_empty() {
            return Err(fail(env_err(
                "required env variable CNI_CONTAINERID missing",
            )));
        }
        if !valid_container_id(id) {
            return Err(fail(env_err(format!("invalid CNI_CONTAINERID {id:?}"))));
        }
        let ifname = get("CNI_IFNAME");
        if ifname.is_empty() {
            return Err(fail(env_err("required env variable CNI_IFNAME missing")));
        }
        if !valid_ifname(ifname) {
            return Err(fail(env_err(format!("invalid CNI_IFNAME {ifname:?}"))));
        }
        let netns = get("CNI_NETNS");
        if netns.is_empty() && command != Command::Del {
            return Err(fail(env_err("required env variable CNI_NETNS missing")));
        }
        if !netns.is_empty() && !netns.starts_with('/') {
            return Err(fail(env_err(format!(
                "CNI_NETNS {netns:?} is not an absolute path"
            ))));
        }
        req.container_id = id.to_string();
        req.ifname = ifname.to_string();
        req.netns = netns.to_string();
    }
    let args = parse_cni_args(get("CNI_ARGS")).map_err(&fail)?;
    req.pod = Some(args.pod);
    req.infra_container_id = args.infra_container_id;
    req.extra_args = args.extra;
    req.cni_path = get("CNI_PATH")
        .split(':')
        .filter(|p| !p.is_empty())
        .map(String::from)
        .collect();

    // Configuration fields.
    let name = opt_str(&conf, "name").map_err(&fail)?.unwrap_or("");
    if name.is_empty() {
        return Err(fail(config_err("name missing")));
    }
    req.config_name = name.to_string();
    opt_str(&conf, "type").map_err(&fail)?;
    let network = opt_str(&conf, "network").map_err(&fail)?.unwrap_or(name);
    req.network = if network.contains('/') {
        network.to_string()
    } else {
        let ns = req.pod.as_ref().map(|p| p.namespace.as_str()).unwrap_or("");
        format!("{}/{network}", if ns.is_empty() { "default" } else { ns })
    };
    if network.starts_with('/') || network.ends_with('/') || network.matches('/').count() > 1 {
        return Err(fail(config_err(format!(
            "network {network:?} is not <namespace>/<name>"
        ))));
    }
    for f in UNSUPPORTED_TRUE_FIELDS {
        if conf.get(*f) == Some(&Value::Bool(true)) {
            return Err(fail(CniError::new(
                ErrorCode::UnsupportedField,
                format!("unsupported field {f}: true"),
            )));
        }
    }
    req.mtu = match conf.get("mtu") {
        None | Some(Value::Null) => 0,
        Some(v) => match v.as_u64() {
            Some(m) if (68..=65535).contains(&m) => m as u32,
            _ => return Err(fail(config_err(format!("mtu {v} out of range 68..=65535")))),
        },
    };

    // Requested addresses: runtimeConfig (Multus capabilities) wins over args.cni.
    let mut mac = None;
    let mut ips = Vec::new();
    if let Some(args) = conf.get("args") {
        let cni = args.as_object().and_then(|a| a.get("cni"));
        match cni {
            None | Some(Value::Null) => {}
            Some(Value::Object(o)) => (mac, ips) = mac_ips(o, "args.cni").map_err(&fail)?,
            Some(_) => return Err(fail(config_err("args.cni must be an object"))),
        }
    }
    match conf.get("runtimeConfig") {
        None | Some(Value::Null) => {}
        Some(Value::Object(o)) => {
            let (m, i) = mac_ips(o, "runtimeConfig").map_err(&fail)?;
            mac = m.or(mac);
            if !i.is_empty() {
                ips = i;
            }
        }
        Some(_) => return Err(fail(config_err("runtimeConfig must be an object"))),
    }
    req.mac = mac.unwrap_or_default();
    req.ips = ips;

    match conf.get("ipam") {
        None | Some(Value::Null) => {}
        Some(Value::Object(o)) if o.is_empty() => {}
        Some(Value::Object(o)) => match o.get("type").and_then(Value::as_str) {
            Some(t) if !t.is_empty() && !t.contains('/') && t != "." && t != ".." => {
                req.ipam_type = t.to_string();
                req.ipam_config = stdin.to_vec();
            }
            _ => return Err(fail(config_err("ipam.type missing or invalid"))),
        },
        Some(_) => return Err(fail(config_err("ipam must be an object"))),
    }
    match conf.get("prevResult") {
        None | Some(Value::Null) => {}
        Some(v) => {
            req.prev_result =
                Some(parse_result(v).map_err(|m| {
                    fail(CniError::new(ErrorCode::Decode, format!("prevResult: {m}")))
                })?)
        }
    }
    match conf.get("cni.dev/valid-attachments") {
        None | Some(Value::Null) => {}
        Some(Value::Array(a)) => {
            for item in a {
                let o = item.as_object();
                let field = |k: &str| o.and_then(|o| o.get(k)).and_then(Value::as_str);
                match (field("containerID"), field("ifname")) {
                    (Some(c), Some(i)) => req.valid_attachments.push(AttachmentId {
                        container_id: c.to_string(),
                        ifname: i.to_string(),
                    }),
                    _ => {
                        return Err(fail(config_err(format!(
                            "cni.dev/valid-attachments: bad entry {item}"
                        ))));
                    }
                }
            }
        }
        Some(_) => return Err(fail(config_err("cni.dev/valid-attachments must be a list"))),
    }

    let socket = match env.get("WEFT_CNI_SOCKET").filter(|s| !s.is_empty()) {
        Some(s) => s.clone(),
        None => opt_str(&conf, "socketPath")
            .map_err(&fail)?
            .filter(|s| !s.is_empty())
            .unwrap_or(DEFAULT_SOCKET)
            .to_string(),
    };
    Ok(Invocation {
        command,
        version,
        socket,
        request: req,
    })
}
