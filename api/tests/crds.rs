//! The committed CRDs match the types, and the CEL rules in them accept and refuse what they say.

use std::path::PathBuf;

use kube::CustomResourceExt;
use kube::core::cel::{ScopeContext, Validator, analyze_rule, compile_schema};
use serde_json::{Value, json};
use weft_api::{InterClusterLink, VirtualNetwork};

fn crds_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/crds")
}

/// Fails when `deploy/crds/` is stale. `WEFT_UPDATE_CRDS=1` rewrites the files instead (same as
/// `cargo run -p weft-api --bin weft-crdgen`).
#[test]
fn crds_are_current() {
    let update = std::env::var_os("WEFT_UPDATE_CRDS").is_some_and(|v| v == "1");
    let mut stale = Vec::new();
    for (name, yaml) in weft_api::crdgen::render_all().unwrap() {
        let path = crds_dir().join(&name);
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        if committed != yaml {
            if update {
                std::fs::write(&path, &yaml).unwrap();
            } else {
                stale.push(path.display().to_string());
            }
        }
    }
    assert!(
        stale.is_empty(),
        "CRD manifests out of date: {stale:?}\nregenerate with: cargo run -p weft-api --bin weft-crdgen"
    );
}

fn schema_of(
    crd: &k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
) -> Value {
    serde_json::to_value(
        crd.spec.versions[0]
            .schema
            .as_ref()
            .and_then(|s| s.open_api_v3_schema.as_ref())
            .unwrap(),
    )
    .unwrap()
}

fn vnet(spec: Value) -> Value {
    json!({"apiVersion": "weft.dev/v1alpha1", "kind": "VirtualNetwork",
           "metadata": {"name": "red", "namespace": "ns"}, "spec": spec})
}

/// Messages of the rules `spec` breaks (empty: accepted).
fn broken(spec: Value) -> Vec<String> {
    let schema = schema_of(&VirtualNetwork::crd());
    match Validator::new().validate(&schema, &vnet(spec), None) {
        Ok(()) => vec![],
        Err(errs) => errs.iter().map(|e| e.message.clone()).collect(),
    }
}

#[test]
fn every_rule_compiles_and_fits_the_cost_budget() {
    for crd in [VirtualNetwork::crd(), InterClusterLink::crd()] {
        let schema = schema_of(&crd);
        let compiled = compile_schema(&schema);
        let mut rules = Vec::new();
        collect_rules(&schema, &mut rules);
        assert!(!rules.is_empty());
        fn walk(c: &kube::core::cel::CompiledSchema, errs: &mut Vec<String>) {
            errs.extend(c.compilation_errors().iter().map(|e| e.to_string()));
            c.properties.values().for_each(|p| walk(p, errs));
            if let Some(i) = &c.items {
                walk(i, errs);
            }
        }
        let mut errs = Vec::new();
        walk(&compiled, &mut errs);
        assert!(errs.is_empty(), "CEL compile errors: {errs:?}");
        for rule in rules {
            let warnings = analyze_rule(&rule, &compiled, ScopeContext::CrdValidation);
            // Only the cost estimate counts: the scope check flags comprehension variables
            // (`e` in `all(e, ...)`) although the API server accepts them.
            let serious: Vec<_> = warnings
                .iter()
                .filter(|w| matches!(w.kind, kube::core::cel::WarningKind::CostExceeded))
                .collect();
            assert!(serious.is_empty(), "{rule}: {serious:?}");
        }
    }
}

fn collect_rules(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            if let Some(Value::Array(rules)) = m.get("x-kubernetes-validations") {
                out.extend(
                    rules
                        .iter()
                        .filter_map(|r| r["rule"].as_str().map(String::from)),
                );
            }
            m.values().for_each(|c| collect_rules(c, out));
        }
        Value::Array(a) => a.iter().for_each(|c| collect_rules(c, out)),
        _ => {}
    }
}

#[test]
fn valid_networks_pass() {
    assert!(broken(json!({})).is_empty(), "pure L2 network");
    assert!(
        broken(json!({"subnet": "10.1.0.0/24", "gateway": "10.1.0.1",
                      "excludeIps": ["10.1.0.0/28", "10.1.0.100"], "mtu": 1450,
                      "allowedNamespaces": ["team-b", "*"]}))
        .is_empty()
    );
    assert!(broken(json!({"subnet": "fd00:1::/64", "gateway": "fd00:1::1"})).is_empty());
}

#[test]
fn cel_rules_refuse_inconsistent_specs_with_their_message() {
    assert_eq!(
        broken(json!({"subnet": "10.1.0.0/24", "gateway": "10.2.0.1"})),
        ["gateway must be inside subnet"]
    );
    assert_eq!(
        broken(json!({"gateway": "10.2.0.1"})),
        ["gateway needs a subnet"]
    );
    assert_eq!(
        broken(json!({"excludeIps": ["10.1.0.5"]})),
        ["excludeIps need a subnet"]
    );
    assert_eq!(
        broken(json!({"subnet": "10.1.0.0/24", "excludeIps": ["10.1.0.5", "10.9.0.0/28"]})),
        ["every excludeIps entry must be inside subnet"]
    );
    assert!(
        broken(json!({"subnet": "10.1.0.0/33"}))
            .contains(&"subnet must be a CIDR such as 10.1.0.0/24".to_string())
    );
    assert!(
        broken(json!({"subnet": "10.1.0.0/24", "excludeIps": ["nonsense"]}))
            .contains(&"excludeIps entries must be addresses or CIDRs".to_string())
    );
}

#[test]
fn link_network_is_immutable() {
    let schema = schema_of(&InterClusterLink::crd());
    let link = |net: &str| {
        json!({"apiVersion": "weft.dev/v1alpha1", "kind": "InterClusterLink",
               "metadata": {"name": "l", "namespace": "ns"},
               "spec": {"network": net, "gatewayNode": "node-1",
                        "remote": {"cluster": "east", "endpoint": "gw.east:4789",
                                   "controller": "ctl.east:7443"}}})
    };
    assert!(
        Validator::new()
            .validate(&schema, &link("red"), None)
            .is_ok()
    );
    assert!(
        Validator::new()
            .validate(&schema, &link("red"), Some(&link("red")))
            .is_ok()
    );
    let errs = Validator::new()
        .validate(&schema, &link("blue"), Some(&link("red")))
        .unwrap_err();
    assert!(
        errs.iter()
            .any(|e| e.message.contains("network is immutable")),
        "{errs}"
    );
}

#[test]
fn printer_columns_cover_segment_subnet_attachments_ready_age() {
    let crd = VirtualNetwork::crd();
    let cols: Vec<String> = crd.spec.versions[0]
        .additional_printer_columns
        .iter()
        .flatten()
        .map(|c| c.name.clone())
        .collect();
    for want in ["Segment", "Subnet", "Attachments", "Ready", "Age"] {
        assert!(cols.contains(&want.to_string()), "{cols:?}");
    }
    assert!(
        crd.spec.versions[0]
            .subresources
            .as_ref()
            .unwrap()
            .status
            .is_some()
    );
    assert_eq!(crd.spec.names.short_names, Some(vec!["vnet".to_string()]));
}
