//! proptest strategies producing every OXM shape the codec knows, in canonical form (masked
//! values have no bits outside their mask; opaque TLVs never name a typed basic field).
use super::*;
use proptest::prelude::*;

fn mac() -> impl Strategy<Value = [u8; 6]> {
    any::<[u8; 6]>()
}
fn v4() -> impl Strategy<Value = Ipv4Addr> {
    any::<u32>().prop_map(Ipv4Addr::from)
}
fn v6() -> impl Strategy<Value = Ipv6Addr> {
    any::<u128>().prop_map(Ipv6Addr::from)
}

/// Opaque fields never collide with a typed variant, so round trips are exact.
pub fn opaque() -> impl Strategy<Value = OxmOpaque> {
    (
        prop_oneof![Just(0x0000u16), Just(0x0001u16), Just(0x8001u16)],
        0u8..128,
        any::<bool>(),
        proptest::collection::vec(any::<u8>(), 0..24),
    )
        .prop_map(|(class, field, has_mask, payload)| OxmOpaque {
            class,
            field,
            has_mask,
            payload,
        })
}

pub fn oxm_field() -> impl Strategy<Value = OxmField> {
    prop_oneof![
        any::<u32>().prop_map(OxmField::InPort),
        (any::<u64>(), any::<Option<u64>>()).prop_map(|(value, mask)| OxmField::Metadata {
            value: apply_mask(value, mask),
            mask,
        }),
        (mac(), proptest::option::of(mac())).prop_map(|(value, mask)| OxmField::EthDst {
            value: apply_mask(value, mask),
            mask,
        }),
        (mac(), proptest::option::of(mac())).prop_map(|(value, mask)| OxmField::EthSrc {
            value: apply_mask(value, mask),
            mask,
        }),
        any::<u16>().prop_map(OxmField::EthType),
        (0u16..0x2000, proptest::option::of(0u16..0x2000)).prop_map(|(value, mask)| {
            OxmField::VlanVid {
                value: apply_mask(value, mask),
                mask,
            }
        }),
        (0u8..8).prop_map(OxmField::VlanPcp),
        any::<u8>().prop_map(OxmField::IpProto),
        (v4(), proptest::option::of(v4())).prop_map(|(value, mask)| OxmField::Ipv4Src {
            value: apply_mask(value, mask),
            mask,
        }),
        (v4(), proptest::option::of(v4())).prop_map(|(value, mask)| OxmField::Ipv4Dst {
            value: apply_mask(value, mask),
            mask,
        }),
        any::<u16>().prop_map(OxmField::TcpSrc),
        any::<u16>().prop_map(OxmField::TcpDst),
        any::<u16>().prop_map(OxmField::UdpSrc),
        any::<u16>().prop_map(OxmField::UdpDst),
        any::<u8>().prop_map(OxmField::Icmpv4Type),
        any::<u8>().prop_map(OxmField::Icmpv4Code),
        any::<u16>().prop_map(OxmField::ArpOp),
        (v4(), proptest::option::of(v4())).prop_map(|(value, mask)| OxmField::ArpSpa {
            value: apply_mask(value, mask),
            mask,
        }),
        (v4(), proptest::option::of(v4())).prop_map(|(value, mask)| OxmField::ArpTpa {
            value: apply_mask(value, mask),
            mask,
        }),
        (mac(), proptest::option::of(mac())).prop_map(|(value, mask)| OxmField::ArpSha {
            value: apply_mask(value, mask),
            mask,
        }),
        (mac(), proptest::option::of(mac())).prop_map(|(value, mask)| OxmField::ArpTha {
            value: apply_mask(value, mask),
            mask,
        }),
        (v6(), proptest::option::of(v6())).prop_map(|(value, mask)| OxmField::Ipv6Src {
            value: apply_mask(value, mask),
            mask,
        }),
        (v6(), proptest::option::of(v6())).prop_map(|(value, mask)| OxmField::Ipv6Dst {
            value: apply_mask(value, mask),
            mask,
        }),
        any::<u8>().prop_map(OxmField::Icmpv6Type),
        any::<u8>().prop_map(OxmField::Icmpv6Code),
        v6().prop_map(OxmField::Ipv6NdTarget),
        (any::<u64>(), any::<Option<u64>>()).prop_map(|(value, mask)| OxmField::TunnelId {
            value: apply_mask(value, mask),
            mask,
        }),
        opaque().prop_map(OxmField::Opaque),
    ]
}

pub fn match_() -> impl Strategy<Value = Match> {
    proptest::collection::vec(oxm_field(), 0..8).prop_map(Match::new)
}
