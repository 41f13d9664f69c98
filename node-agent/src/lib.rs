//! `weft-agent`: the node agent. Owns the node's Open vSwitch configuration (over OVSDB) and
//! kernel links; the controller owns the flows.

pub mod agent;
pub mod bridge;
pub mod cni;
pub mod link;
pub mod metrics;
pub mod netlink;
pub mod ovs_ssl;
pub mod ovsdb;
pub mod tunnels;
