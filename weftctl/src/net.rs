//! `weftctl net`: networks, through the controller's REST API (inside the lab's controller
//! namespace).

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::http;
use crate::lab::LabState;
use crate::output::Table;

/// `ns/name`, or `name` in `default_ns`.
pub fn split_key(name: &str, default_ns: &str) -> (String, String) {
    match name.split_once('/') {
        Some((ns, n)) => (ns.to_string(), n.to_string()),
        None => (default_ns.to_string(), name.to_string()),
    }
}

/// What the switch checks on a pod's frames (the network's `portSecurity`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum PortSecurity {
    /// The pod's own MAC on every frame, its own addresses on ARP and IP (the default).
    Strict,
    /// The pod's own MAC on every frame, no address checks.
    MacOnly,
    /// Any source MAC and address, for pods that forward others' frames.
    Off,
}

impl PortSecurity {
    /// The API's spelling.
    fn api_name(self) -> &'static str {
        match self {
            PortSecurity::Strict => "Strict",
            PortSecurity::MacOnly => "MacOnly",
            PortSecurity::Off => "Off",
        }
    }
}

pub struct CreateArgs<'a> {
    pub name: &'a str,
    pub namespace: &'a str,
    pub subnet: Option<&'a str>,
    pub gateway: Option<&'a str>,
    pub mtu: Option<u32>,
    pub allowed_namespaces: &'a [String],
    /// Absent: the controller's default (`Strict`).
    pub port_security: Option<PortSecurity>,
}

fn api(lab: &LabState, method: &str, path: &str, body: Option<&Value>) -> Result<http::Response> {
    http::request(&lab.ctl_ns(), lab.rest_addr(), method, path, body).with_context(|| {
        format!(
            "the controller of lab {} does not answer (is it running? `weftctl lab status --name {}`)",
            lab.name, lab.name
        )
    })
}

pub fn create(lab: &LabState, a: &CreateArgs) -> Result<Value> {
    let (namespace, name) = split_key(a.name, a.namespace);
    let mut spec = serde_json::Map::new();
    if let Some(s) = a.subnet {
        spec.insert("subnet".into(), json!(s));
    }
    if let Some(g) = a.gateway {
        spec.insert("gateway".into(), json!(g));
    }
    if let Some(m) = a.mtu {
        spec.insert("mtu".into(), json!(m));
    }
    if !a.allowed_namespaces.is_empty() {
        spec.insert("allowedNamespaces".into(), json!(a.allowed_namespaces));
    }
    if let Some(p) = a.port_security {
        spec.insert("portSecurity".into(), json!(p.api_name()));
    }
    let body = json!({"namespace": namespace, "name": name, "spec": spec});
    let r = api(lab, "POST", "/v1/networks", Some(&body))?;
    if r.status != 201 {
        bail!(
            "creating network {namespace}/{name}: {} ({})",
            r.error_message(),
            r.status
        );
    }
    r.json()
}

/// A spec field `net update --clear` can remove.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SpecField {
    Subnet,
    Gateway,
    Mtu,
    ExcludeIps,
    AllowedNamespaces,
}

impl SpecField {
    /// The field's name in the API's JSON.
    fn json_name(self) -> &'static str {
        match self {
            SpecField::Subnet => "subnet",
            SpecField::Gateway => "gateway",
            SpecField::Mtu => "mtu",
            SpecField::ExcludeIps => "excludeIps",
            SpecField::AllowedNamespaces => "allowedNamespaces",
        }
    }
}

/// What `net update` changes: given fields replace the network's, `clear` removes fields.
pub struct UpdateArgs<'a> {
    pub name: &'a str,
    pub namespace: &'a str,
    pub subnet: Option<&'a str>,
    pub gateway: Option<&'a str>,
    pub mtu: Option<u32>,
    pub exclude_ips: Option<&'a [String]>,
    pub allowed_namespaces: Option<&'a [String]>,
    pub clear: &'a [SpecField],
}

/// The JSON merge patch of an update (`null` removes a field, absent fields stay as they are).
pub fn update_patch(a: &UpdateArgs) -> Result<Value> {
    let mut patch = serde_json::Map::new();
    let mut set = |k: &str, v: Value| patch.insert(k.to_string(), v);
    if let Some(s) = a.subnet {
        set("subnet", json!(s));
    }
    if let Some(g) = a.gateway {
        set("gateway", json!(g));
    }
    if let Some(m) = a.mtu {
        set("mtu", json!(m));
    }
    if let Some(e) = a.exclude_ips {
        set("excludeIps", json!(e));
    }
    if let Some(n) = a.allowed_namespaces {
        set("allowedNamespaces", json!(n));
    }
    for f in a.clear {
        if set(f.json_name(), Value::Null).is_some() {
            bail!(
                "--clear {} conflicts with a new value for it",
                f.json_name()
            );
        }
    }
    if patch.is_empty() {
        bail!("nothing to change: give at least one field or --clear");
    }
    Ok(Value::Object(patch))
}

/// Edits a network; the controller refuses (409, naming them) edits that strand attached pods.
pub fn update(lab: &LabState, a: &UpdateArgs) -> Result<Value> {
    let (namespace, name) = split_key(a.name, a.namespace);
    let patch = update_patch(a)?;
    let path = format!("/v1/networks/{namespace}/{name}");
    let r = api(lab, "PATCH", &path, Some(&patch))?;
    match r.status {
        200 => r.json(),
        409 => bail!(
            "network {namespace}/{name} not changed: {}",
            r.error_message()
        ),
        s => bail!(
            "updating network {namespace}/{name}: {} ({s})",
            r.error_message()
        ),
    }
}

/// Deletes a network; the controller refuses (409) while pods use it, unless `force`.
pub fn delete(lab: &LabState, name: &str, namespace: &str, force: bool) -> Result<Value> {
    let (namespace, name) = split_key(name, namespace);
    let path = format!("/v1/networks/{namespace}/{name}?force={force}");
    let r = api(lab, "DELETE", &path, None)?;
    match r.status {
        200 => r.json(),
        409 => bail!(
            "network {namespace}/{name} is in use: {} (remove its pods first, or --force)",
            r.error_message()
        ),
        s => bail!(
            "deleting network {namespace}/{name}: {} ({s})",
            r.error_message()
        ),
    }
}

pub fn list(lab: &LabState) -> Result<Value> {
    let r = api(lab, "GET", "/v1/networks", None)?;
    if r.status != 200 {
        bail!("listing networks: {} ({})", r.error_message(), r.status);
    }
    r.json()
}

pub fn get(lab: &LabState, name: &str, namespace: &str) -> Result<Option<Value>> {
    let (namespace, name) = split_key(name, namespace);
    let r = api(
        lab,
        "GET",
        &format!("/v1/networks/{namespace}/{name}"),
        None,
    )?;
    match r.status {
        200 => Ok(Some(r.json()?)),
        404 => Ok(None),
        s => bail!(
            "reading network {namespace}/{name}: {} ({s})",
            r.error_message()
        ),
    }
}

/// Attachments the controller knows, optionally of one network.
pub fn attachments(lab: &LabState, network: Option<(&str, &str)>) -> Result<Value> {
    let path = match network {
        Some((ns, n)) => format!("/v1/networks/{ns}/{n}/attachments"),
        None => "/v1/attachments".into(),
    };
    let r = api(lab, "GET", &path, None)?;
    if r.status != 200 {
        bail!("listing attachments: {} ({})", r.error_message(), r.status);
    }
    r.json()
}

fn cell(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) if s.is_empty() => "-".into(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => if *b { "yes" } else { "no" }.into(),
        other => other.to_string(),
    }
}

pub fn render_networks(v: &Value) -> String {
    let mut t = Table::new(&[
        "NETWORK", "SUBNET", "GATEWAY", "MTU", "SEGMENT", "PODS", "READY",
    ]);
    for n in v.as_array().into_iter().flatten() {
        t.row(vec![
            format!("{}/{}", cell(&n["namespace"]), cell(&n["name"])),
            cell(&n["spec"]["subnet"]),
            cell(&n["spec"]["gateway"]),
            cell(&n["spec"]["mtu"]),
            cell(&n["segment"]),
            cell(&n["attachments"]),
            cell(&n["ready"]),
        ]);
    }
    if t.is_empty() {
        return "no networks\n".into();
    }
    t.render()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_default_to_namespace() {
        assert_eq!(
            split_key("red", "default"),
            ("default".into(), "red".into())
        );
        assert_eq!(split_key("a/red", "default"), ("a".into(), "red".into()));
    }

    fn args<'a>(clear: &'a [SpecField], excludes: Option<&'a [String]>) -> UpdateArgs<'a> {
        UpdateArgs {
            name: "ns/red",
            namespace: "default",
            subnet: None,
            gateway: None,
            mtu: Some(1400),
            exclude_ips: excludes,
            allowed_namespaces: None,
            clear,
        }
    }

    #[test]
    fn update_patch_sets_given_fields_and_nulls_cleared_ones() {
        let excludes = ["10.1.0.9".to_string()];
        let p = update_patch(&args(&[SpecField::Gateway], Some(&excludes))).unwrap();
        assert_eq!(
            p,
            json!({"mtu": 1400, "excludeIps": ["10.1.0.9"], "gateway": null})
        );
        let clash = update_patch(&args(&[SpecField::Mtu], None)).unwrap_err();
        assert!(clash.to_string().contains("conflicts"), "{clash}");
        let mut none = args(&[], None);
        none.mtu = None;
        assert!(update_patch(&none).is_err());
    }

    #[test]
    fn renders_network_rows() {
        let v = json!([{"namespace":"default","name":"red","spec":{"subnet":"10.1.0.0/24"},
            "segment":1,"attachments":2,"ready":true}]);
        let out = render_networks(&v);
        assert!(out.contains("default/red"), "{out}");
        assert!(out.contains("10.1.0.0/24"), "{out}");
        assert_eq!(render_networks(&json!([])), "no networks\n");
    }
}
