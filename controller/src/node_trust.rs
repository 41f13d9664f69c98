//! Which node a caller is. Agents and switches prove it with a certificate from the cluster CA
//! that names the node (`spiffe://weft/node/<name>`, see `weft_security`); that node is then the
//! only one they may register, attach, detach or report for, and the only one whose flows a
//! switch receives. Without this, anyone on the underlay could move a node's tunnels, evict pods
//! or receive another node's whole pipeline.

use tonic::{Request, Status};
use weft_proto::error_detail::{self, ErrorReason};
use weft_security::{Principal, principal_of, principal_of_chain};
use weft_types::DatapathId;

/// How much the agent API and the OpenFlow listener trust a caller's claim to be a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NodeTrust {
    /// A certificate naming the node is required (the default).
    #[default]
    Certificates,
    /// Any caller may act for any node: only for plaintext labs and tests, by explicit choice.
    AnyCaller,
}

/// Why a caller may not act for a node.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("no usable certificate: {0}")]
    NoIdentity(String),
    #[error("{who} may not act for node {node}")]
    OtherNode { who: String, node: String },
    #[error("node {node} must use datapath id {want}, not {got:016x}")]
    WrongDatapath {
        node: String,
        want: DatapathId,
        got: u64,
    },
}

impl Refusal {
    /// The gRPC status an agent gets: the one reason for "not your node".
    pub(crate) fn status(&self) -> Status {
        match self {
            Refusal::NoIdentity(_) => Status::unauthenticated(self.to_string()),
            _ => error_detail::status(ErrorReason::NodeMismatch, self.to_string()),
        }
    }
}

fn may_act_for(who: Principal, node: &str) -> Result<(), Refusal> {
    match who.node() {
        Some(n) if n == node => Ok(()),
        _ => Err(Refusal::OtherNode {
            who: who.uri(),
            node: node.to_string(),
        }),
    }
}

impl NodeTrust {
    /// Whether the agent-API caller of `req` may act for `node`.
    pub(crate) fn agent<T>(self, req: &Request<T>, node: &str) -> Result<(), Refusal> {
        if self == NodeTrust::AnyCaller {
            return Ok(());
        }
        let certs = req
            .peer_certs()
            .ok_or_else(|| Refusal::NoIdentity("the client presented no certificate".into()))?;
        let who = principal_of_chain(&certs).map_err(|e| Refusal::NoIdentity(e.to_string()))?;
        may_act_for(who, node)
    }

    /// Whether a switch with this certificate (DER) may get `node`'s flows.
    pub(crate) fn switch(self, peer_cert: Option<&[u8]>, node: &str) -> Result<(), Refusal> {
        if self == NodeTrust::AnyCaller {
            return Ok(());
        }
        let cert = peer_cert
            .ok_or_else(|| Refusal::NoIdentity("the switch presented no certificate".into()))?;
        let who = principal_of(cert).map_err(|e| Refusal::NoIdentity(e.to_string()))?;
        may_act_for(who, node)
    }

    /// Under certificates, a node's datapath id is the one its name gives: otherwise a node
    /// could register another's id and have its own switch served that node's flows.
    pub(crate) fn datapath(self, node: &str, dpid: u64) -> Result<(), Refusal> {
        let want = DatapathId::for_node(node);
        if self == NodeTrust::Certificates && want.0 != dpid {
            return Err(Refusal::WrongDatapath {
                node: node.to_string(),
                want,
                got: dpid,
            });
        }
        Ok(())
    }
}
