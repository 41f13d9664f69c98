//! `InterClusterLink`: joins a local `VirtualNetwork` to the same-named network of another cluster

// kube's printcolumn(...) lists repeat `type_ = ...`, which clippy mistakes for duplicated attributes.
#![allow(clippy::duplicated_attributes)]
//! through a gateway node.

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::Condition;

#[derive(
    CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq,
)]
#[kube(
    group = "weft.dev",
    version = "v1alpha1",
    kind = "InterClusterLink",
    namespaced,
    shortname = "icl",
    category = "weft",
    status = "InterClusterLinkStatus",
    derive = "Default",
    derive = "PartialEq",
    doc = "Joins a local VirtualNetwork to the same-named network of a remote cluster over VXLAN between gateway nodes; the controllers exchange endpoints over gRPC.",
    printcolumn(name = "Network", type_ = "string", json_path = ".spec.network"),
    printcolumn(name = "Remote", type_ = "string", json_path = ".spec.remote.cluster"),
    printcolumn(name = "Gateway", type_ = "string", json_path = ".spec.gatewayNode"),
    printcolumn(name = "State", type_ = "string", json_path = ".status.state"),
    printcolumn(name = "RTT-ms", type_ = "number", json_path = ".status.rttMillis"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[x_kube(validation = Rule::new("self.network == oldSelf.network").message("network is immutable: delete and recreate the link"))]
#[serde(rename_all = "camelCase")]
pub struct InterClusterLinkSpec {
    /// Name of the local `VirtualNetwork` (same namespace).
    #[schemars(regex(pattern = crate::DNS_LABEL_PATTERN), length(min = 1, max = 63))]
    pub network: String,
    /// Node whose agent terminates the link's VXLAN tunnel.
    #[schemars(length(min = 1, max = 253))]
    pub gateway_node: String,
    pub remote: RemoteCluster,
    /// Secret (same namespace) with `tls.crt`, `tls.key` and `ca.crt` for the controller peering.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_secret_ref: Option<SecretRef>,
}

/// The other end of a link.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct RemoteCluster {
    /// Remote cluster name (as its controller's `--cluster`).
    #[schemars(regex(pattern = crate::DNS_LABEL_PATTERN), length(min = 1, max = 63))]
    pub cluster: String,
    /// `host:port` of the remote gateway node's tunnel endpoint.
    #[schemars(regex(pattern = r"^[^\s/]+:[0-9]{1,5}$"), length(max = 260))]
    pub endpoint: String,
    /// `host:port` of the remote controller's peering gRPC API.
    #[schemars(regex(pattern = r"^[^\s/]+:[0-9]{1,5}$"), length(max = 260))]
    pub controller: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct SecretRef {
    #[schemars(regex(pattern = crate::DNS_LABEL_PATTERN), length(min = 1, max = 253))]
    pub name: String,
}

/// Up or down, as the last health probe found it.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum LinkState {
    #[default]
    Pending,
    Up,
    Down,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InterClusterLinkStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default)]
    pub conditions: Vec<Condition>,
    #[serde(default)]
    pub state: LinkState,
    /// Segment agreed with the remote controller for this link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segment: Option<u16>,
    /// Round-trip time of the last health probe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtt_millis: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// RFC 3339 time `state` last changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<String>,
}
