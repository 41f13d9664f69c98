//! Network identity.

use std::fmt;
use std::str::FromStr;

/// `<namespace>/<name>` of a virtual network: how every API (CNI config, agent, northbound,
/// peering) names one.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct NetworkKey {
    pub namespace: String,
    pub name: String,
}

/// Why a string does not name a network.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid network name {0:?}: want <namespace>/<name>, both RFC 1123 labels")]
pub struct NetworkKeyError(pub String);

impl NetworkKey {
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        NetworkKey {
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    /// Parses `ns/name`; both parts must be RFC 1123 labels.
    pub fn parse(s: &str) -> Result<Self, NetworkKeyError> {
        match s.split_once('/') {
            Some((ns, name)) if valid_dns_label(ns) && valid_dns_label(name) => {
                Ok(NetworkKey::new(ns, name))
            }
            _ => Err(NetworkKeyError(s.to_string())),
        }
    }

    /// Both parts are RFC 1123 labels (a key built with [`NetworkKey::new`] need not be).
    pub fn is_valid(&self) -> bool {
        valid_dns_label(&self.namespace) && valid_dns_label(&self.name)
    }
}

impl FromStr for NetworkKey {
    type Err = NetworkKeyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        NetworkKey::parse(s)
    }
}

impl fmt::Display for NetworkKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// RFC 1123 label, as Kubernetes names namespaces and most objects.
pub fn valid_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_display() {
        let k = NetworkKey::parse("tenant-a/red").unwrap();
        assert_eq!(k, NetworkKey::new("tenant-a", "red"));
        assert_eq!(k.to_string(), "tenant-a/red");
        for bad in ["red", "/red", "a/", "A/red", "a/red/x", "-a/red", "a/red-"] {
            assert!(NetworkKey::parse(bad).is_err(), "{bad}");
        }
        assert!(!NetworkKey::new("a", "B").is_valid());
    }

    #[test]
    fn labels_are_limited_to_63_bytes() {
        assert!(valid_dns_label(&"a".repeat(63)));
        assert!(!valid_dns_label(&"a".repeat(64)));
    }
}
