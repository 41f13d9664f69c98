//! Weft's domain primitives, defined once: every crate (controller, agent, CNI plugin, CLI,
//! placement) uses these instead of its own copy, so a MAC or port rule cannot drift between them.
//!
//! No I/O and no heavy dependencies: the thin CNI binary links this too.

#![forbid(unsafe_code)]

mod dpid;
pub mod hash;
mod mac;
mod network;
pub mod ports;
pub mod vni;

pub use dpid::{DatapathId, DatapathIdError};
pub use mac::{MacAddr, MacParseError};
pub use network::{NetworkKey, NetworkKeyError, valid_dns_label};
