//! Weft's Kubernetes API (group `weft.dev`, version `v1alpha1`) as Rust types, and the Multus
//! `NetworkAttachmentDefinition` the controller writes for every network.
//!
//! The CRD manifests in `deploy/crds/` are generated from these types (`weft-crdgen`), so the
//! schema the API server enforces and the types the controller reads cannot drift apart; a test
//! fails when the committed YAML is stale.
//!
//! Validation is layered: the schema (patterns, ranges, CEL rules) rejects what the API server
//! can judge on its own, and the controller checks the rest against the cluster's state (for
//! example that a new subnet still holds every attached pod's address) and reports it in status.

pub mod crdgen;
mod link;
mod nad;
mod network;

pub use link::{
    InterClusterLink, InterClusterLinkSpec, InterClusterLinkStatus, LinkState, RemoteCluster,
    SecretRef,
};
pub use nad::{
    NAD_NETWORKS_ANNOTATION, NetworkAttachmentDefinition, NetworkAttachmentDefinitionSpec,
    nad_config,
};
pub use network::{
    AttachmentStatus, PortSecurity, UnknownPortSecurity, VirtualNetwork, VirtualNetworkSpec,
    VirtualNetworkStatus, conditions,
};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// API group of Weft's own resources.
pub const GROUP: &str = "weft.dev";
/// The finalizer the controller puts on every `VirtualNetwork` it has taken into its model.
pub const FINALIZER: &str = "weft.dev/cleanup";
/// Field manager name for server-side apply and label value for objects Weft creates.
pub const MANAGER: &str = "weft-controller";

/// One condition, as `metav1.Condition` shapes it (own type so the schema is explicit and the API
/// crate needs no k8s-openapi schema feature).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// `Ready`, `SegmentAllocated`, `AttachmentDefinitionSynced`, ...
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// CamelCase machine-readable reason.
    pub reason: String,
    /// What happened and, when something is wrong, what to do about it.
    #[serde(default)]
    pub message: String,
    /// RFC 3339 time of the last change of `status`.
    #[serde(default)]
    pub last_transition_time: String,
    /// The `metadata.generation` this condition was computed for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// Regular expression for an IPv4 or IPv6 CIDR (shape only; CEL `isCIDR` checks the value).
pub const CIDR_PATTERN: &str = r"^[0-9a-fA-F.:]+/[0-9]{1,3}$";
/// Regular expression for an IPv4 or IPv6 address (shape only; CEL `isIP` checks the value).
pub const IP_PATTERN: &str = r"^[0-9a-fA-F.:]+$";
/// An address or a CIDR.
pub const IP_OR_CIDR_PATTERN: &str = r"^[0-9a-fA-F.:]+(/[0-9]{1,3})?$";
/// A colon-separated MAC address.
pub const MAC_PATTERN: &str = r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$";
/// RFC 1123 label (namespace and object names).
pub const DNS_LABEL_PATTERN: &str = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";
