//! Ethernet addresses: parsed, printed and classified in one place.

use std::fmt;
use std::str::FromStr;

/// A 48-bit Ethernet address. Printed as `02:00:00:00:00:01`; parsed from that form with `:` or
/// `-` separators and either case. Serialized as that string.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct MacAddr(pub [u8; 6]);

/// Why a string is not a MAC address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid MAC address {0:?}: want six hex pairs such as 02:00:00:00:00:01")]
pub struct MacParseError(pub String);

impl MacAddr {
    pub const BROADCAST: MacAddr = MacAddr([0xff; 6]);

    pub const fn new(octets: [u8; 6]) -> Self {
        MacAddr(octets)
    }

    pub const fn octets(&self) -> [u8; 6] {
        self.0
    }

    /// The group bit is set (multicast or broadcast).
    pub const fn is_multicast(&self) -> bool {
        self.0[0] & 0x01 != 0
    }

    pub const fn is_unicast(&self) -> bool {
        !self.is_multicast()
    }

    pub fn is_broadcast(&self) -> bool {
        *self == Self::BROADCAST
    }

    pub fn is_zero(&self) -> bool {
        self.0 == [0; 6]
    }

    /// A locally administered unicast address from the low 40 bits of `h`: prefix `02`.
    pub fn local_unicast(h: u64) -> Self {
        let b = h.to_be_bytes();
        MacAddr([0x02, b[1], b[2], b[3], b[4], b[5]])
    }

    /// A unicast address a pod may own: not a group address and not all zeros.
    pub fn is_assignable(&self) -> bool {
        self.is_unicast() && !self.is_zero()
    }
}

impl From<[u8; 6]> for MacAddr {
    fn from(o: [u8; 6]) -> Self {
        MacAddr(o)
    }
}

impl From<MacAddr> for [u8; 6] {
    fn from(m: MacAddr) -> Self {
        m.0
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = &self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

impl fmt::Debug for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MacAddr({self})")
    }
}

impl FromStr for MacAddr {
    type Err = MacParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || MacParseError(s.to_string());
        let sep = if s.contains('-') { '-' } else { ':' };
        let mut out = [0u8; 6];
        let mut parts = s.split(sep);
        for o in &mut out {
            let p = parts.next().ok_or_else(bad)?;
            if p.len() != 2 || !p.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(bad());
            }
            *o = u8::from_str_radix(p, 16).map_err(|_| bad())?;
        }
        if parts.next().is_some() {
            return Err(bad());
        }
        Ok(MacAddr(out))
    }
}

impl serde::Serialize for MacAddr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Reads the string form, and also six numbers: records written before MACs had a type of
/// their own stored the bare bytes.
impl<'de> serde::Deserialize<'de> for MacAddr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = MacAddr;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a MAC address such as \"02:00:00:00:00:01\"")
            }

            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<MacAddr, E> {
                s.parse().map_err(E::custom)
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<MacAddr, A::Error> {
                let mut out = [0u8; 6];
                for (i, o) in out.iter_mut().enumerate() {
                    *o = seq
                        .next_element()?
                        .ok_or_else(|| serde::de::Error::invalid_length(i, &self))?;
                }
                if seq.next_element::<u8>()?.is_some() {
                    return Err(serde::de::Error::invalid_length(7, &self));
                }
                Ok(MacAddr(out))
            }
        }
        d.deserialize_any(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_both_separators_and_cases() {
        let want = MacAddr([0x02, 0xab, 0, 0, 0, 0x01]);
        assert_eq!("02:ab:00:00:00:01".parse(), Ok(want));
        assert_eq!("02-AB-00-00-00-01".parse(), Ok(want));
        assert_eq!(want.to_string(), "02:ab:00:00:00:01");
    }

    #[test]
    fn refuses_malformed() {
        for s in [
            "",
            "02:00:00:00:00",
            "02:00:00:00:00:01:02",
            "2:00:00:00:00:01",
            "002:00:00:00:00:1",
            "02:00:00:00:00:0g",
            "02:00-00:00:00:01",
            "+2:00:00:00:00:01",
            "02:00:00:00:00:01:",
        ] {
            assert!(s.parse::<MacAddr>().is_err(), "{s:?}");
        }
    }

    #[test]
    fn classifies() {
        assert!(MacAddr::BROADCAST.is_broadcast() && MacAddr::BROADCAST.is_multicast());
        assert!(MacAddr([0x01, 0, 0x5e, 0, 0, 1]).is_multicast());
        assert!(MacAddr([0x02, 0, 0, 0, 0, 1]).is_assignable());
        assert!(!MacAddr::default().is_assignable());
        let m = MacAddr::local_unicast(u64::MAX);
        assert!(m.is_assignable() && m.0[0] == 0x02);
    }

    #[test]
    fn serde_is_the_string_form() {
        let m = MacAddr([2, 0, 0, 0, 0, 0x0a]);
        assert_eq!(serde_json::to_string(&m).unwrap(), "\"02:00:00:00:00:0a\"");
        assert_eq!(
            serde_json::from_str::<MacAddr>("\"02:00:00:00:00:0a\"").unwrap(),
            m
        );
        assert!(serde_json::from_str::<MacAddr>("\"nope\"").is_err());
        assert_eq!(
            serde_json::from_str::<MacAddr>("[2,0,0,0,0,10]").unwrap(),
            m
        );
        assert!(serde_json::from_str::<MacAddr>("[2,0,0,0,0]").is_err());
        assert!(serde_json::from_str::<MacAddr>("[2,0,0,0,0,10,1]").is_err());
        assert!(serde_json::from_str::<MacAddr>("[2,0,0,0,0,256]").is_err());
    }

    proptest! {
        #[test]
        fn display_parse_round_trip(o in any::<[u8; 6]>()) {
            let m = MacAddr(o);
            prop_assert_eq!(m.to_string().parse::<MacAddr>(), Ok(m));
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,24}") {
            let _ = s.parse::<MacAddr>();
        }
    }
}
