//! Every domain error of the controller, walked to the CNI error a container runtime receives:
//! the controller's one mapping to a wire reason, a gRPC status through its HTTP/2 form, the
//! agent's one mapping to a CNI code, and the JSON the plugin prints.

use std::net::IpAddr;

use serde_json::Value;
use weft_agent::cni::controller_error;
use weft_controller::error_reason;
use weft_controller::model::{ModelError, NetworkKey};
use weft_controller::store::StoreError;
use weft_proto::cni::ErrorCode;

fn key() -> NetworkKey {
    NetworkKey::new("red", "net")
}

/// Fails to compile when a variant is added, so the table below must grow with the enum.
fn covered(e: &ModelError) {
    match e {
        ModelError::BadName(_)
        | ModelError::BadCidr(_)
        | ModelError::BadAddress(_)
        | ModelError::GatewayWithoutSubnet
        | ModelError::GatewayOutsideSubnet { .. }
        | ModelError::ExcludeWithoutSubnet
        | ModelError::ExcludeOutsideSubnet(_)
        | ModelError::OverlappingExcludes(..)
        | ModelError::MtuOutOfRange(_)
        | ModelError::DuplicateNetwork(_)
        | ModelError::UnknownNetwork(_)
        | ModelError::UnknownNode(_)
        | ModelError::NetworkInUse { .. }
        | ModelError::NodeInUse { .. }
        | ModelError::SegmentsExhausted
        | ModelError::NamespaceNotAllowed { .. }
        | ModelError::DuplicateMac(..)
        | ModelError::BadMac(_)
        | ModelError::DuplicateIp(..)
        | ModelError::IpOutsideSubnet(_)
        | ModelError::IpReserved(_)
        | ModelError::SubnetFull(_)
        | ModelError::NotPrepared(_)
        | ModelError::OtherNodesAttachment { .. }
        | ModelError::SpecStrandsPods { .. } => {}
    }
}

fn table() -> Vec<(ModelError, ErrorCode)> {
    let ip: IpAddr = "10.1.0.9".parse().unwrap();
    let net = "10.1.0.0/24".parse().unwrap();
    let half = "10.1.0.0/25".parse().unwrap();
    use ErrorCode as C;
    vec![
        // A malformed network name is a configuration error, not an address refusal.
        (ModelError::BadName("Red/x".into()), C::InvalidConfig),
        (ModelError::BadCidr("10.1/33".into()), C::InvalidConfig),
        (
            ModelError::BadAddress("10.1.0.999".into()),
            C::AddressRefused,
        ),
        (ModelError::GatewayWithoutSubnet, C::InvalidConfig),
        (
            ModelError::GatewayOutsideSubnet {
                gateway: "10.2.0.1".parse().unwrap(),
                subnet: net,
            },
            C::InvalidConfig,
        ),
        (ModelError::ExcludeWithoutSubnet, C::InvalidConfig),
        (ModelError::ExcludeOutsideSubnet(net), C::InvalidConfig),
        (ModelError::OverlappingExcludes(net, half), C::InvalidConfig),
        (ModelError::MtuOutOfRange(100), C::InvalidConfig),
        (ModelError::DuplicateNetwork(key()), C::ControllerError),
        (ModelError::UnknownNetwork(key()), C::UnknownNetwork),
        // The ADD raced the agent's registration: retrying will work.
        (ModelError::UnknownNode("node-a".into()), C::TryAgain),
        (
            ModelError::NetworkInUse {
                network: key(),
                count: 2,
            },
            C::ControllerError,
        ),
        (
            ModelError::NodeInUse {
                node: "node-a".into(),
                count: 1,
            },
            C::ControllerError,
        ),
        (ModelError::SegmentsExhausted, C::ControllerError),
        (
            ModelError::NamespaceNotAllowed {
                namespace: "blue".into(),
                network: key(),
            },
            C::NamespaceNotAllowed,
        ),
        (
            ModelError::DuplicateMac("02:00:00:00:00:01".into(), key()),
            C::AddressInUse,
        ),
        (
            ModelError::BadMac("01:00:5e:00:00:01".into()),
            C::AddressRefused,
        ),
        (ModelError::DuplicateIp(ip, key()), C::AddressInUse),
        (ModelError::IpOutsideSubnet(ip), C::AddressRefused),
        (ModelError::IpReserved(ip), C::AddressRefused),
        (ModelError::SubnetFull(net), C::SubnetFull),
        (
            ModelError::NotPrepared("c1/net1".into()),
            C::ControllerError,
        ),
        (
            ModelError::OtherNodesAttachment {
                attachment: "c1/net1".into(),
                owner: "node2".into(),
                node: "node1".into(),
            },
            C::ControllerError,
        ),
        (
            ModelError::SpecStrandsPods {
                network: key(),
                pods: vec!["red/p1 (net1): 10.1.0.9 is outside the new subnet".into()],
            },
            C::ControllerError,
        ),
    ]
}

/// What the runtime reads: the CNI error object the plugin prints for an agent error.
fn runtime_sees(status: tonic::Status) -> Value {
    // Through the HTTP/2 form, as the status travels between controller and agent.
    let wire = status.into_http::<()>();
    let status = tonic::Status::from_header_map(wire.headers()).expect("a status header");
    controller_error("PrepareAttachment", &status).to_json("1.0.0")
}

#[test]
fn every_domain_error_reaches_the_runtime_with_its_code_and_message() {
    let rows = table();
    for (e, want) in &rows {
        covered(e);
        let out = runtime_sees(error_reason::status(StoreError::Model(e.clone())));
        assert_eq!(out["code"], want.value(), "{e:?}: {out}");
        let msg = out["msg"].as_str().unwrap_or_default();
        assert_eq!(msg, format!("PrepareAttachment: {e}"), "{e:?}");
    }
    // One row per variant: the match above lists 25.
    let mut names: Vec<String> = rows
        .iter()
        .map(|(e, _)| {
            format!("{e:?}")
                .split(['(', ' '])
                .next()
                .unwrap()
                .to_string()
        })
        .collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 25, "{names:?}");
}

#[test]
fn a_namespace_refusal_says_so() {
    let e = ModelError::NamespaceNotAllowed {
        namespace: "blue".into(),
        network: key(),
    };
    let out = runtime_sees(error_reason::status(StoreError::Model(e)));
    assert_eq!(out["code"], ErrorCode::NamespaceNotAllowed.value());
    let msg = out["msg"].as_str().unwrap();
    assert!(
        msg.contains("namespace blue may not use network red/net"),
        "{msg}"
    );
}

#[test]
fn an_unpersisted_change_and_an_unreachable_controller_mean_try_again() {
    let out = runtime_sees(error_reason::status(StoreError::Persist(
        "disk full".into(),
    )));
    assert_eq!(out["code"], ErrorCode::TryAgain.value(), "{out}");
    assert!(out["msg"].as_str().unwrap().contains("disk full"));
    // What tonic reports when the connection fails: no reason, code Unavailable.
    let down = tonic::Status::unavailable("tcp connect error: Connection refused");
    assert_eq!(runtime_sees(down)["code"], ErrorCode::TryAgain.value());
    let slow = tonic::Status::deadline_exceeded("Timeout expired");
    assert_eq!(runtime_sees(slow)["code"], ErrorCode::TryAgain.value());
}

#[test]
fn an_unexplained_failure_is_a_controller_error() {
    let out = runtime_sees(tonic::Status::internal("boom"));
    assert_eq!(out["code"], ErrorCode::ControllerError.value());
}
