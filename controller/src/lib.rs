//! `weft-controller`: intents -> desired flows and groups per switch -> difference -> OpenFlow.
//!
//! The core is pure: [`model`] holds the cluster, [`pipeline`] declares the tables and turns the
//! model into each switch's desired state (in a compact typed form), [`diff`] computes the
//! changes against what a switch holds, and [`sim`] is the table simulator the tests use to prove isolation and
//! reachability.

pub mod agent_api;
pub mod changes;
pub mod diff;
pub mod error_reason;
pub mod ipam;
pub mod k8s;
pub mod metrics;
pub mod model;
pub mod node_trust;
pub mod northbound;
pub mod ovs_text;
pub mod persist;
pub mod pipeline;
pub mod sim;
pub mod southbound;
pub mod store;
