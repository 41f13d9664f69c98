//! OpenFlow datapath ids.

use std::fmt;
use std::str::FromStr;

use crate::hash::fnv1a;

/// A switch's 64-bit datapath id, printed as OVS writes `other_config:datapath-id`: 16 hex
/// digits.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DatapathId(pub u64);

/// Why a string is not a datapath id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid datapath id {0:?}: want 16 hex digits")]
pub struct DatapathIdError(pub String);

impl DatapathId {
    /// The datapath id of a node's bridge: the FNV-1a of the node name. Deterministic, so a node
    /// keeps it across agent restarts and bridge re-creation, and the controller can predict it.
    /// Zero is not valid for OVS, so it maps to 1.
    pub fn for_node(node_name: &str) -> Self {
        DatapathId(fnv1a(node_name).max(1))
    }

    pub const fn get(self) -> u64 {
        self.0
    }
}

impl From<u64> for DatapathId {
    fn from(v: u64) -> Self {
        DatapathId(v)
    }
}

impl fmt::Display for DatapathId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl fmt::Debug for DatapathId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatapathId({self})")
    }
}

impl FromStr for DatapathId {
    type Err = DatapathIdError;

    /// 16 hex digits, with or without a `0x` prefix (OVS prints both forms).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let digits = s.strip_prefix("0x").unwrap_or(s);
        if digits.is_empty() || digits.len() > 16 || !digits.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return Err(DatapathIdError(s.to_string()));
        }
        u64::from_str_radix(digits, 16)
            .map(DatapathId)
            .map_err(|_| DatapathIdError(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_ids_are_stable() {
        // Persisted in every bridge: these values must never change.
        assert_eq!(DatapathId::for_node("").to_string(), "cbf29ce484222325");
        assert_eq!(DatapathId::for_node("a").to_string(), "af63dc4c8601ec8c");
    }

    #[test]
    fn parses_what_it_prints() {
        let d = DatapathId(0xab);
        assert_eq!(d.to_string(), "00000000000000ab");
        assert_eq!("00000000000000ab".parse(), Ok(d));
        assert_eq!("0xab".parse(), Ok(d));
        for bad in ["", "0x", "g", "00000000000000000", "-1"] {
            assert!(bad.parse::<DatapathId>().is_err(), "{bad}");
        }
    }
}
