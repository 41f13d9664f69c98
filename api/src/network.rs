//! `VirtualNetwork`: an isolated layer-2 network pods join through Multus.

// kube's printcolumn(...) lists repeat `type_ = ...`, which clippy mistakes for duplicated attributes.
#![allow(clippy::duplicated_attributes)]

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::Condition;

/// The network a user asks for. The controller validates it with the same rules as networks made
/// through the northbound API and reports problems in the `Ready` condition.
#[derive(
    CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq,
)]
#[kube(
    group = "weft.dev",
    version = "v1alpha1",
    kind = "VirtualNetwork",
    namespaced,
    shortname = "vnet",
    category = "weft",
    status = "VirtualNetworkStatus",
    derive = "Default",
    derive = "PartialEq",
    doc = "An isolated layer-2 virtual network. The controller gives it a segment and a Multus NetworkAttachmentDefinition of the same name, so pods join it with a k8s.v1.cni.cncf.io/networks annotation.",
    printcolumn(name = "Segment", type_ = "integer", json_path = ".status.segment"),
    printcolumn(name = "Subnet", type_ = "string", json_path = ".spec.subnet"),
    printcolumn(
        name = "Attachments",
        type_ = "integer",
        json_path = ".status.attachmentCount"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Reason",
        type_ = "string",
        priority = 1,
        json_path = ".status.conditions[?(@.type==\"Ready\")].reason"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[x_kube(validation = Rule::new("!has(self.gateway) || has(self.subnet)").message("gateway needs a subnet"))]
#[x_kube(validation = Rule::new("!has(self.gateway) || !has(self.subnet) || !isCIDR(self.subnet) || !isIP(self.gateway) || cidr(self.subnet).containsIP(self.gateway)").message("gateway must be inside subnet"))]
#[x_kube(validation = Rule::new("!has(self.excludeIps) || has(self.subnet)").message("excludeIps need a subnet"))]
#[x_kube(validation = Rule::new("!has(self.excludeIps) || !has(self.subnet) || !isCIDR(self.subnet) || self.excludeIps.all(e, isCIDR(e) ? cidr(self.subnet).containsCIDR(e) : (!isIP(e) || cidr(self.subnet).containsIP(e)))").message("every excludeIps entry must be inside subnet"))]
#[serde(rename_all = "camelCase")]
pub struct VirtualNetworkSpec {
    /// IPv4 or IPv6 CIDR the controller hands addresses from. Absent: pure layer 2 (no IPAM, no
    /// address anti-spoofing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = crate::CIDR_PATTERN), length(max = 64))]
    #[x_kube(validation = Rule::new("isCIDR(self)").message("subnet must be a CIDR such as 10.1.0.0/24"))]
    pub subnet: Option<String>,
    /// Gateway address inside the subnet; never handed to a pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = crate::IP_PATTERN), length(max = 64))]
    #[x_kube(validation = Rule::new("isIP(self)").message("gateway must be an IP address"))]
    pub gateway: Option<String>,
    /// Addresses or CIDRs inside the subnet that are never handed out.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64), inner(regex(pattern = crate::IP_OR_CIDR_PATTERN), length(max = 64)))]
    #[x_kube(validation = Rule::new("self.all(e, isIP(e) || isCIDR(e))").message("excludeIps entries must be addresses or CIDRs"))]
    pub exclude_ips: Vec<String>,
    /// Pod interface MTU. Default: the underlay MTU less 54 bytes of VXLAN and tag overhead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1280, max = 9000))]
    pub mtu: Option<u32>,
    /// Namespaces (besides the network's own) whose pods may attach; `*` allows all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(max = 256),
        inner(
            regex(pattern = r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?|\*)$"),
            length(max = 63)
        )
    )]
    pub allowed_namespaces: Vec<String>,
    /// What a pod may send: `Strict` (default) checks the source MAC of every frame and the
    /// addresses of ARP, IPv4 and IPv6; `MacOnly` checks only the MAC; `Off` admits any source
    /// (for pods that forward others' frames, such as routers and firewalls). Frames of every
    /// EtherType pass, and never leave the network, in every mode.
    #[serde(default, skip_serializing_if = "PortSecurity::is_default")]
    pub port_security: PortSecurity,
}

/// How much of a pod's frames the switch checks (see [`VirtualNetworkSpec::port_security`]).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum PortSecurity {
    /// The pod's own MAC on every frame; its own addresses on ARP, IPv4 and IPv6.
    #[default]
    Strict,
    /// The pod's own MAC on every frame, no address checks.
    MacOnly,
    /// Any source MAC and address. Forwarding to a MAC still needs it declared on the network.
    Off,
}

impl PortSecurity {
    pub fn is_default(&self) -> bool {
        *self == PortSecurity::Strict
    }

    /// The command-line and log spelling: `strict`, `mac-only`, `off`.
    pub fn as_str(&self) -> &'static str {
        match self {
            PortSecurity::Strict => "strict",
            PortSecurity::MacOnly => "mac-only",
            PortSecurity::Off => "off",
        }
    }
}

impl std::str::FromStr for PortSecurity {
    type Err = UnknownPortSecurity;

    /// Accepts the command-line spelling and the API's (`Strict`, `MacOnly`, `Off`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "strict" | "Strict" => Ok(PortSecurity::Strict),
            "mac-only" | "MacOnly" => Ok(PortSecurity::MacOnly),
            "off" | "Off" => Ok(PortSecurity::Off),
            _ => Err(UnknownPortSecurity(s.to_string())),
        }
    }
}

/// A port-security mode that is none of `Strict`, `MacOnly`, `Off`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown port security {0:?}: use strict, mac-only or off")]
pub struct UnknownPortSecurity(pub String);

/// What the controller observed and did.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VirtualNetworkStatus {
    /// `metadata.generation` of the spec the status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`, `SegmentAllocated`, `AttachmentDefinitionSynced`.
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// 802.1Q id of the network inside node-to-node tunnels (per cluster).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segment: Option<u16>,
    /// The spec the data plane runs. Differs from `spec` while an edit is refused (see the
    /// `Ready` condition); a restarted or newly elected controller resumes from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied_spec: Option<VirtualNetworkSpec>,
    /// Number of pod interfaces on the network.
    #[serde(default)]
    pub attachment_count: u32,
    /// Every pod interface on the network. Also the controller's durable record of attachments
    /// in Kubernetes mode: a new leader restores them from here, so switches keep their flows.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<AttachmentStatus>,
    /// Addresses held by pods (attached or being attached).
    #[serde(default)]
    pub allocated_ips: u64,
    /// Addresses still free in the subnet (absent without a subnet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub available_ips: Option<u64>,
}

/// One pod interface on a network.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AttachmentStatus {
    /// `namespace/name` of the pod.
    pub pod: String,
    pub pod_uid: String,
    pub node: String,
    /// Interface name inside the pod (`net1`, ...).
    pub interface: String,
    pub container_id: String,
    #[schemars(regex(pattern = crate::MAC_PATTERN))]
    pub mac: String,
    #[serde(default)]
    pub ips: Vec<String>,
    /// OpenFlow port of the pod's veth on the node's bridge.
    pub ofport: u32,
}

/// Condition types and reasons the controller writes, in one place so tools and tests agree.
pub mod conditions {
    pub const READY: &str = "Ready";
    pub const SEGMENT_ALLOCATED: &str = "SegmentAllocated";
    pub const NAD_SYNCED: &str = "AttachmentDefinitionSynced";

    /// Everything is in place.
    pub const REASON_READY: &str = "Ready";
    pub const REASON_ALLOCATED: &str = "Allocated";
    pub const REASON_SYNCED: &str = "Synced";
    /// The spec is invalid; the message says why.
    pub const REASON_INVALID_SPEC: &str = "InvalidSpec";
    /// The spec is valid but conflicts with attached pods (e.g. a subnet that drops their addresses).
    pub const REASON_SPEC_CONFLICT: &str = "SpecConflictsWithAttachments";
    pub const REASON_SEGMENTS_EXHAUSTED: &str = "SegmentsExhausted";
    /// Writing the NetworkAttachmentDefinition failed.
    pub const REASON_NAD_FAILED: &str = "ApplyFailed";
    /// Deletion waits for pods to detach; the message lists them.
    pub const REASON_DELETION_BLOCKED: &str = "DeletionBlockedByAttachments";
}
