//! CNI error codes: the specification's (1-7, 11, 50, 51) and Weft's own (100+).
//! Every code is listed with its meaning in docs/cni.md; keep the two in step.

/// Incompatible CNI version (or a command the configuration's version does not have).
pub const INCOMPATIBLE_VERSION: u32 = 1;
/// Unsupported field in the network configuration.
pub const UNSUPPORTED_FIELD: u32 = 2;
/// Container unknown or does not exist.
pub const UNKNOWN_CONTAINER: u32 = 3;
/// Invalid necessary environment variables (CNI_COMMAND, CNI_NETNS, CNI_IFNAME, ...).
pub const INVALID_ENVIRONMENT: u32 = 4;
/// I/O failure.
pub const IO_FAILURE: u32 = 5;
/// Failed to decode content (stdin is not a JSON object, bad prevResult).
pub const DECODE: u32 = 6;
/// Invalid network configuration.
pub const INVALID_CONFIG: u32 = 7;
/// Try again later (agent or controller unreachable).
pub const TRY_AGAIN: u32 = 11;
/// STATUS: the plugin cannot serve ADD now.
pub const NOT_AVAILABLE: u32 = 50;
/// STATUS: the plugin cannot serve ADD now for lack of resources.
pub const NOT_AVAILABLE_RESOURCES: u32 = 51;

/// The network is unknown to the controller.
pub const UNKNOWN_NETWORK: u32 = 100;
/// The pod's namespace may not use the network.
pub const NAMESPACE_NOT_ALLOWED: u32 = 101;
/// The requested MAC or IP is already used by another attachment of the network.
pub const ADDRESS_IN_USE: u32 = 102;
/// The requested MAC or IP is refused (outside the subnet, reserved, multicast MAC, ...).
pub const ADDRESS_REFUSED: u32 = 103;
/// The network's subnet has no free address.
pub const SUBNET_FULL: u32 = 104;
/// The controller did not confirm the port's flows in time.
pub const FLOWS_NOT_CONFIRMED: u32 = 105;
/// The delegated IPAM plugin failed or is missing.
pub const IPAM_FAILED: u32 = 106;
/// CNI_IFNAME already exists in the pod's network namespace.
pub const INTERFACE_EXISTS: u32 = 107;
/// Creating or configuring the veth pair failed (netlink).
pub const LINK_FAILED: u32 = 108;
/// Plugging the port into the OVS bridge failed.
pub const OVS_FAILED: u32 = 109;
/// The controller refused or failed the request for another reason.
pub const CONTROLLER_ERROR: u32 = 110;
/// CHECK found the attachment missing or different from what ADD made.
pub const CHECK_FAILED: u32 = 111;
