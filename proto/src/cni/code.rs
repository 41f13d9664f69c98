//! CNI error codes: the specification's (1-7, 11, 50, 51) and Weft's own (100+).
//!
//! Every code is listed with its meaning in docs/cni.md; a test keeps the two in step.

macro_rules! error_codes {
    ($( $(#[$doc:meta])* $name:ident = $value:literal, )+) => {
        /// A CNI error code. Codes this version does not know (a newer agent's) are kept as
        /// `Other`, so a plugin passes them on unchanged.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $( $(#[$doc])* $name, )+
            Other(u32),
        }

        impl ErrorCode {
            /// Every named code, in numeric order.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$name),+];

            pub const fn value(self) -> u32 {
                match self {
                    $( ErrorCode::$name => $value, )+
                    ErrorCode::Other(v) => v,
                }
            }
        }

        impl From<u32> for ErrorCode {
            fn from(v: u32) -> Self {
                match v {
                    $( $value => ErrorCode::$name, )+
                    other => ErrorCode::Other(other),
                }
            }
        }
    };
}

error_codes! {
    /// Incompatible CNI version (or a command the configuration's version does not have).
    IncompatibleVersion = 1,
    /// Unsupported field in the network configuration.
    UnsupportedField = 2,
    /// Container unknown or does not exist.
    UnknownContainer = 3,
    /// Invalid necessary environment variables (CNI_COMMAND, CNI_NETNS, CNI_IFNAME, ...).
    InvalidEnvironment = 4,
    /// I/O failure.
    IoFailure = 5,
    /// Failed to decode content (stdin is not a JSON object, bad prevResult).
    Decode = 6,
    /// Invalid network configuration.
    InvalidConfig = 7,
    /// Try again later (agent or controller unreachable).
    TryAgain = 11,
    /// STATUS: the plugin cannot serve ADD now.
    NotAvailable = 50,
    /// STATUS: the plugin cannot serve ADD now for lack of resources.
    NotAvailableResources = 51,
    /// The network is unknown to the controller.
    UnknownNetwork = 100,
    /// The pod's namespace may not use the network.
    NamespaceNotAllowed = 101,
    /// The requested MAC or IP is already used by another attachment of the network.
    AddressInUse = 102,
    /// The requested MAC or IP is refused (outside the subnet, reserved, multicast MAC, ...).
    AddressRefused = 103,
    /// The network's subnet has no free address.
    SubnetFull = 104,
    /// The controller did not confirm the port's flows in time.
    FlowsNotConfirmed = 105,
    /// The delegated IPAM plugin failed or is missing.
    IpamFailed = 106,
    /// CNI_IFNAME already exists in the pod's network namespace.
    InterfaceExists = 107,
    /// Creating or configuring the veth pair failed (netlink).
    LinkFailed = 108,
    /// Plugging the port into the OVS bridge failed.
    OvsFailed = 109,
    /// The controller refused or failed the request for another reason.
    ControllerError = 110,
    /// CHECK found the attachment missing or different from what ADD made.
    CheckFailed = 111,
}

impl From<ErrorCode> for u32 {
    fn from(c: ErrorCode) -> Self {
        c.value()
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.value())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_and_unknown_ones_are_kept() {
        for c in ErrorCode::ALL {
            assert_eq!(ErrorCode::from(c.value()), *c);
        }
        assert_eq!(ErrorCode::from(4242), ErrorCode::Other(4242));
        assert_eq!(ErrorCode::Other(4242).value(), 4242);
        let mut v: Vec<u32> = ErrorCode::ALL.iter().map(|c| c.value()).collect();
        v.dedup();
        assert_eq!(
            v.len(),
            ErrorCode::ALL.len(),
            "codes are distinct and sorted"
        );
    }

    #[test]
    fn docs_list_every_code() {
        let doc = include_str!("../../../docs/cni.md");
        for c in ErrorCode::ALL {
            let row = format!("| {} |", c.value());
            assert!(
                doc.contains(&row),
                "docs/cni.md has no row for code {c} ({c:?})"
            );
        }
    }
}
