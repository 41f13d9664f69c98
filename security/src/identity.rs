//! The principals Weft knows and their URI form, after SPIFFE IDs: `spiffe://weft/<kind>/<name>`.

use std::fmt;
use std::str::FromStr;

/// The trust domain of every Weft identity.
pub const TRUST_DOMAIN: &str = "weft";

/// Who holds a certificate.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Principal {
    /// A node's agent and switch: may act only for that node.
    Node(String),
    /// A cluster's controller (serving agents and switches, peering with other controllers).
    Controller(String),
    /// An operator or orchestrator using the northbound API.
    User(String),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrincipalError {
    #[error(
        "{0:?} is not a Weft identity (want spiffe://{TRUST_DOMAIN}/<node|controller|user>/<name>)"
    )]
    NotWeft(String),
    #[error("unknown kind {0:?} (want node, controller or user)")]
    UnknownKind(String),
    #[error("invalid name {0:?}: 1-253 bytes of lowercase letters, digits, '-' and '.'")]
    InvalidName(String),
}

impl Principal {
    pub fn kind(&self) -> &'static str {
        match self {
            Principal::Node(_) => "node",
            Principal::Controller(_) => "controller",
            Principal::User(_) => "user",
        }
    }

    pub fn name(&self) -> &str {
        match self {
            Principal::Node(n) | Principal::Controller(n) | Principal::User(n) => n,
        }
    }

    /// The node this principal may act for, if it is a node.
    pub fn node(&self) -> Option<&str> {
        match self {
            Principal::Node(n) => Some(n),
            _ => None,
        }
    }

    /// The URI that goes into the certificate's subject alternative names.
    pub fn uri(&self) -> String {
        self.to_string()
    }
}

/// Kubernetes node names: DNS subdomains (RFC 1123), which every kind of name here follows.
fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 253
        && n.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

impl FromStr for Principal {
    type Err = PrincipalError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let not = || PrincipalError::NotWeft(s.to_string());
        let rest = s
            .strip_prefix("spiffe://")
            .and_then(|r| r.strip_prefix(TRUST_DOMAIN))
            .and_then(|r| r.strip_prefix('/'))
            .ok_or_else(not)?;
        let (kind, name) = rest.split_once('/').ok_or_else(not)?;
        if !valid_name(name) {
            return Err(PrincipalError::InvalidName(name.to_string()));
        }
        let name = name.to_string();
        match kind {
            "node" => Ok(Principal::Node(name)),
            "controller" => Ok(Principal::Controller(name)),
            "user" => Ok(Principal::User(name)),
            other => Err(PrincipalError::UnknownKind(other.to_string())),
        }
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "spiffe://{TRUST_DOMAIN}/{}/{}", self.kind(), self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_what_it_prints_and_nothing_else() {
        let p: Principal = "spiffe://weft/node/node1".parse().unwrap();
        assert_eq!(p, Principal::Node("node1".into()));
        assert_eq!(p.node(), Some("node1"));
        assert_eq!(
            Principal::User("osm".into()).uri(),
            "spiffe://weft/user/osm"
        );
        for bad in [
            "spiffe://other/node/node1",
            "spiffe://weft/node",
            "https://weft/node/node1",
            "spiffe://weftx/node/node1",
            "spiffe://weft/node/Node1",
            "spiffe://weft/node/node1/extra",
            "spiffe://weft/node/",
            "spiffe://weft/robot/x",
        ] {
            assert!(bad.parse::<Principal>().is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn round_trips(kind in 0..3u8, name in "[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?(\\.[a-z0-9]{1,5}){0,2}") {
            let p = match kind {
                0 => Principal::Node(name),
                1 => Principal::Controller(name),
                _ => Principal::User(name),
            };
            prop_assert_eq!(p.uri().parse::<Principal>(), Ok(p));
        }

        #[test]
        fn never_panics(s in "\\PC{0,80}") {
            let _ = s.parse::<Principal>();
        }
    }
}
