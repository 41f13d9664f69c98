//! OXM (OpenFlow Extensible Match) TLVs and `ofp_match`.
//!
//! Fields Weft uses get a typed variant; any other class or field is kept byte-for-byte as
//! [`OxmOpaque`], so a flow read back from a switch can be compared and re-emitted unchanged.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::{Error, Put, Reader, Result, pad8};

/// The OpenFlow basic OXM class.
pub const OXM_CLASS_OPENFLOW_BASIC: u16 = 0x8000;
/// `OFPVID_PRESENT`: set in `vlan_vid` when the packet carries an 802.1Q tag.
pub const OFPVID_PRESENT: u16 = 0x1000;
/// `ofp_match.type` for OXM matches, the only kind OpenFlow 1.3 defines in use.
const OFPMT_OXM: u16 = 1;

/// One OXM TLV. Maskable fields carry `mask: Option<_>`; `None` is emitted without the HASMASK bit.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum OxmField {
    InPort(u32),
    Metadata {
        value: u64,
        mask: Option<u64>,
    },
    EthDst {
        value: [u8; 6],
        mask: Option<[u8; 6]>,
    },
    EthSrc {
        value: [u8; 6],
        mask: Option<[u8; 6]>,
    },
    EthType(u16),
    /// VLAN id including the [`OFPVID_PRESENT`] bit (0 = untagged).
    VlanVid {
        value: u16,
        mask: Option<u16>,
    },
    VlanPcp(u8),
    IpProto(u8),
    Ipv4Src {
        value: Ipv4Addr,
        mask: Option<Ipv4Addr>,
    },
    Ipv4Dst {
        value: Ipv4Addr,
        mask: Option<Ipv4Addr>,
    },
    TcpSrc(u16),
    TcpDst(u16),
    UdpSrc(u16),
    UdpDst(u16),
    Icmpv4Type(u8),
    Icmpv4Code(u8),
    ArpOp(u16),
    ArpSpa {
        value: Ipv4Addr,
        mask: Option<Ipv4Addr>,
    },
    ArpTpa {
        value: Ipv4Addr,
        mask: Option<Ipv4Addr>,
    },
    ArpSha {
        value: [u8; 6],
        mask: Option<[u8; 6]>,
    },
    ArpTha {
        value: [u8; 6],
        mask: Option<[u8; 6]>,
    },
    Ipv6Src {
        value: Ipv6Addr,
        mask: Option<Ipv6Addr>,
    },
    Ipv6Dst {
        value: Ipv6Addr,
        mask: Option<Ipv6Addr>,
    },
    Icmpv6Type(u8),
    Icmpv6Code(u8),
    Ipv6NdTarget(Ipv6Addr),
    TunnelId {
        value: u64,
        mask: Option<u64>,
    },
    /// Any field of another class, or a basic field without a typed variant.
    Opaque(OxmOpaque),
}

/// An OXM TLV kept as received.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OxmOpaque {
    pub class: u16,
    pub field: u8,
    pub has_mask: bool,
    /// Value followed by the mask when `has_mask`.
    pub payload: Vec<u8>,
}

/// OpenFlow basic field numbers.
mod f {
    pub const IN_PORT: u8 = 0;
    pub const METADATA: u8 = 2;
    pub const ETH_DST: u8 = 3;
    pub const ETH_SRC: u8 = 4;
    pub const ETH_TYPE: u8 = 5;
    pub const VLAN_VID: u8 = 6;
    pub const VLAN_PCP: u8 = 7;
    pub const IP_PROTO: u8 = 10;
    pub const IPV4_SRC: u8 = 11;
    pub const IPV4_DST: u8 = 12;
    pub const TCP_SRC: u8 = 13;
    pub const TCP_DST: u8 = 14;
    pub const UDP_SRC: u8 = 15;
    pub const UDP_DST: u8 = 16;
    pub const ICMPV4_TYPE: u8 = 19;
    pub const ICMPV4_CODE: u8 = 20;
    pub const ARP_OP: u8 = 21;
    pub const ARP_SPA: u8 = 22;
    pub const ARP_TPA: u8 = 23;
    pub const ARP_SHA: u8 = 24;
    pub const ARP_THA: u8 = 25;
    pub const IPV6_SRC: u8 = 26;
    pub const IPV6_DST: u8 = 27;
    pub const ICMPV6_TYPE: u8 = 29;
    pub const ICMPV6_CODE: u8 = 30;
    pub const IPV6_ND_TARGET: u8 = 31;
    pub const TUNNEL_ID: u8 = 38;
}

/// Fixed-size field values, read and written big-endian.
trait FieldValue: Sized + Copy {
    const SIZE: usize;
    fn read(r: &mut Reader<'_>) -> Result<Self>;
    fn write(self, buf: &mut Vec<u8>);
    /// Bitwise AND, to clear value bits the mask wildcards.
    fn and(self, mask: Self) -> Self;
}

/// The value with the bits its mask wildcards cleared. OpenFlow 1.3 requires them to be zero
/// (switches refuse the match with OFPBMC_BAD_WILDCARDS), so parse and emit both apply it: the
/// typed value has one form, the one on the wire.
fn apply_mask<T: FieldValue>(value: T, mask: Option<T>) -> T {
    mask.map_or(value, |m| value.and(m))
}

impl FieldValue for u8 {
    const SIZE: usize = 1;
    fn read(r: &mut Reader<'_>) -> Result<Self> {
        r.u8()
    }
    fn write(self, buf: &mut Vec<u8>) {
        buf.put_u8(self)
    }
    fn and(self, mask: Self) -> Self {
        self & mask
    }
}
impl FieldValue for u16 {
    const SIZE: usize = 2;
    fn read(r: &mut Reader<'_>) -> Result<Self> {
        r.u16()
    }
    fn write(self, buf: &mut Vec<u8>) {
        buf.put_u16(self)
    }
    fn and(self, mask: Self) -> Self {
        self & mask
    }
}
impl FieldValue for u32 {
    const SIZE: usize = 4;
    fn read(r: &mut Reader<'_>) -> Result<Self> {
        r.u32()
    }
    fn write(self, buf: &mut Vec<u8>) {
        buf.put_u32(self)
    }
    fn and(self, mask: Self) -> Self {
        self & mask
    }
}
impl FieldValue for u64 {
    const SIZE: usize = 8;
    fn read(r: &mut Reader<'_>) -> Result<Self> {
        r.u64()
    }
    fn write(self, buf: &mut Vec<u8>) {
        buf.put_u64(self)
    }
    fn and(self, mask: Self) -> Self {
        self & mask
    }
}
impl FieldValue for [u8; 6] {
    const SIZE: usize = 6;
    fn read(r: &mut Reader<'_>) -> Result<Self> {
        r.array()
    }
    fn write(self, buf: &mut Vec<u8>) {
        buf.extend_from_slice(&self)
    }
    fn and(self, mask: Self) -> Self {
        core::array::from_fn(|i| self[i] & mask[i])
    }
}
impl FieldValue for Ipv4Addr {
    const SIZE: usize = 4;
    fn read(r: &mut Reader<'_>) -> Result<Self> {
        Ok(Ipv4Addr::from(r.array::<4>()?))
    }
    fn write(self, buf: &mut Vec<u8>) {
        buf.extend_from_slice(&self.octets())
    }
    fn and(self, mask: Self) -> Self {
        Ipv4Addr::from(u32::from(self) & u32::from(mask))
    }
}
impl FieldValue for Ipv6Addr {
    const SIZE: usize = 16;
    fn read(r: &mut Reader<'_>) -> Result<Self> {
        Ok(Ipv6Addr::from(r.array::<16>()?))
    }
    fn write(self, buf: &mut Vec<u8>) {
        buf.extend_from_slice(&self.octets())
    }
    fn and(self, mask: Self) -> Self {
        Ipv6Addr::from(u128::from(self) & u128::from(mask))
    }
}

/// Reads an exact (unmaskable) field, checking the TLV length.
fn exact<T: FieldValue>(r: &mut Reader<'_>, has_mask: bool, len: usize) -> Result<T> {
    if has_mask || len != T::SIZE {
        return Err(Error::Malformed("OXM field length or mask"));
    }
    T::read(r)
}

/// Reads a maskable field: value, then a mask of the same size when HASMASK is set.
fn maskable<T: FieldValue>(
    r: &mut Reader<'_>,
    has_mask: bool,
    len: usize,
) -> Result<(T, Option<T>)> {
    let want = if has_mask { 2 * T::SIZE } else { T::SIZE };
    if len != want {
        return Err(Error::Malformed("OXM field length"));
    }
    let value = T::read(r)?;
    let mask = if has_mask { Some(T::read(r)?) } else { None };
    Ok((apply_mask(value, mask), mask))
}

impl OxmField {
    /// Parses one TLV from the front of `r`.
    pub(crate) fn parse(r: &mut Reader<'_>) -> Result<OxmField> {
        let class = r.u16()?;
        let fm = r.u8()?;
        let len = r.u8()? as usize;
        let field = fm >> 1;
        let m = fm & 1 == 1;
        let mut p = r.sub(len, "OXM payload")?;
        if class != OXM_CLASS_OPENFLOW_BASIC {
            return Ok(OxmField::Opaque(OxmOpaque {
                class,
                field,
                has_mask: m,
                payload: p.take_rest().to_vec(),
            }));
        }
        let p = &mut p;
        Ok(match field {
            f::IN_PORT => OxmField::InPort(exact(p, m, len)?),
            f::METADATA => {
                let (value, mask) = maskable(p, m, len)?;
                OxmField::Metadata { value, mask }
            }
            f::ETH_DST => {
                let (value, mask) = maskable(p, m, len)?;
                OxmField::EthDst { value, mask }
            }
            f::ETH_SRC => {
                let (value, mask) = maskable(p, m, len)?;
                OxmField::EthSrc { value, mask }
            }
            f::ETH_TYPE => OxmField::EthType(exact(p, m, len)?),
            f::VLAN_VID => {
                let (value, mask) = maskable(p, m, len)?;
                OxmField::VlanVid { value, mask }
            }
            f::VLAN_PCP => OxmField::VlanPcp(exact(p, m, len)?),
            f::IP_PROTO => OxmField::IpProto(exact(p, m, len)?),
            f::IPV4_SRC => {
                let (value, mask) = maskable(p, m, len)?;
                OxmField::Ipv4Src { value, mask }
            }
            f::IPV4_DST => {
                let (value, mask) = maskable(p, m, len)?;
                OxmField::Ipv4Dst { value, mask }
            }
            f::TCP_SRC => OxmField::TcpSrc(exact(p, m, len)?),
            f::TCP_DST => OxmField::TcpDst(exact(p, m, len)?),
            f::UDP_SRC => OxmField::UdpSrc(exact(p, m, len)?),
            f::UDP_DST => OxmField::UdpDst(exact(p, m, len)?),
            f::ICMPV4_TYPE => OxmField::Icmpv4Type(exact(p, m, len)?),
            f::ICMPV4_CODE => OxmField::Icmpv4Code(exact(p, m, len)?),
            f::ARP_OP => OxmField::ArpOp(exact(p, m, len)?),
            f::ARP_SPA => {
                let (value, mask) = maskable(p, m, len)?;
                OxmField::ArpSpa { value, mask }
            }
            f::ARP_TPA => {
                let (value, mask) = maskable(p, m, len)?;
                OxmField::ArpTpa { value, mask }
            }
            f::ARP_SHA => {
                let (value, mask) = maskable(p, m, len)?;
                OxmField::ArpSha { value, mask }
            }
            f::ARP_THA => {
                let (value, mask) = maskable(p, m, len)?;
                OxmField::ArpTha { value, mask }
            }
            f::IPV6_SRC => {
                let (value, mask) = maskable(p, m, len)?;
                OxmField::Ipv6Src { value, mask }
            }
            f::IPV6_DST => {
                let (value, mask) = maskable(p, m, len)?;
                OxmField::Ipv6Dst { value, mask }
            }
            f::ICMPV6_TYPE => OxmField::Icmpv6Type(exact(p, m, len)?),
            f::ICMPV6_CODE => OxmField::Icmpv6Code(exact(p, m, len)?),
            f::IPV6_ND_TARGET => OxmField::Ipv6NdTarget(exact(p, m, len)?),
            f::TUNNEL_ID => {
                let (value, mask) = maskable(p, m, len)?;
                OxmField::TunnelId { value, mask }
            }
            _ => OxmField::Opaque(OxmOpaque {
                class,
                field,
                has_mask: m,
                payload: p.take_rest().to_vec(),
            }),
        })
    }

    /// Appends the TLV to `buf`.
    pub(crate) fn emit(&self, buf: &mut Vec<u8>) -> Result<()> {
        fn exact<T: FieldValue>(buf: &mut Vec<u8>, field: u8, v: T) {
            buf.put_u16(OXM_CLASS_OPENFLOW_BASIC);
            buf.put_u8(field << 1);
            buf.put_u8(T::SIZE as u8);
            v.write(buf);
        }
        fn masked<T: FieldValue>(buf: &mut Vec<u8>, field: u8, v: T, mask: Option<T>) {
            buf.put_u16(OXM_CLASS_OPENFLOW_BASIC);
            match mask {
                None => {
                    buf.put_u8(field << 1);
                    buf.put_u8(T::SIZE as u8);
                    v.write(buf);
                }
                Some(mask) => {
                    buf.put_u8(field << 1 | 1);
                    buf.put_u8(2 * T::SIZE as u8);
                    v.and(mask).write(buf);
                    mask.write(buf);
                }
            }
        }
        match *self {
            OxmField::InPort(v) => exact(buf, f::IN_PORT, v),
            OxmField::Metadata { value, mask } => masked(buf, f::METADATA, value, mask),
            OxmField::EthDst { value, mask } => masked(buf, f::ETH_DST, value, mask),
            OxmField::EthSrc { value, mask } => masked(buf, f::ETH_SRC, value, mask),
            OxmField::EthType(v) => exact(buf, f::ETH_TYPE, v),
            OxmField::VlanVid { value, mask } => masked(buf, f::VLAN_VID, value, mask),
            OxmField::VlanPcp(v) => exact(buf, f::VLAN_PCP, v),
            OxmField::IpProto(v) => exact(buf, f::IP_PROTO, v),
            OxmField::Ipv4Src { value, mask } => masked(buf, f::IPV4_SRC, value, mask),
            OxmField::Ipv4Dst { value, mask } => masked(buf, f::IPV4_DST, value, mask),
            OxmField::TcpSrc(v) => exact(buf, f::TCP_SRC, v),
            OxmField::TcpDst(v) => exact(buf, f::TCP_DST, v),
            OxmField::UdpSrc(v) => exact(buf, f::UDP_SRC, v),
            OxmField::UdpDst(v) => exact(buf, f::UDP_DST, v),
            OxmField::Icmpv4Type(v) => exact(buf, f::ICMPV4_TYPE, v),
            OxmField::Icmpv4Code(v) => exact(buf, f::ICMPV4_CODE, v),
            OxmField::ArpOp(v) => exact(buf, f::ARP_OP, v),
            OxmField::ArpSpa { value, mask } => masked(buf, f::ARP_SPA, value, mask),
            OxmField::ArpTpa { value, mask } => masked(buf, f::ARP_TPA, value, mask),
            OxmField::ArpSha { value, mask } => masked(buf, f::ARP_SHA, value, mask),
            OxmField::ArpTha { value, mask } => masked(buf, f::ARP_THA, value, mask),
            OxmField::Ipv6Src { value, mask } => masked(buf, f::IPV6_SRC, value, mask),
            OxmField::Ipv6Dst { value, mask } => masked(buf, f::IPV6_DST, value, mask),
            OxmField::Icmpv6Type(v) => exact(buf, f::ICMPV6_TYPE, v),
            OxmField::Icmpv6Code(v) => exact(buf, f::ICMPV6_CODE, v),
            OxmField::Ipv6NdTarget(v) => exact(buf, f::IPV6_ND_TARGET, v),
            OxmField::TunnelId { value, mask } => masked(buf, f::TUNNEL_ID, value, mask),
            OxmField::Opaque(ref o) => {
                let len = u8::try_from(o.payload.len()).map_err(|_| Error::BadLength {
                    what: "opaque OXM payload",
                    len: o.payload.len(),
                })?;
                if o.field > 0x7f {
                    return Err(Error::Malformed("OXM field number above 127"));
                }
                buf.put_u16(o.class);
                buf.put_u8(o.field << 1 | o.has_mask as u8);
                buf.put_u8(len);
                buf.extend_from_slice(&o.payload);
            }
        }
        Ok(())
    }
}

/// `ofp_match` of type OXM: a list of fields, all of which must match.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Match {
    pub fields: Vec<OxmField>,
}

impl Match {
    pub fn new(fields: Vec<OxmField>) -> Self {
        Match { fields }
    }

    /// Parses an `ofp_match` including its padding to 8 bytes.
    pub(crate) fn parse(r: &mut Reader<'_>) -> Result<Match> {
        let typ = r.u16()?;
        let len = r.u16()? as usize;
        if typ != OFPMT_OXM {
            return Err(Error::Unknown {
                what: "match type",
                value: typ as u32,
            });
        }
        if len < 4 {
            return Err(Error::BadLength { what: "match", len });
        }
        let mut body = r.sub(len - 4, "match fields")?;
        r.skip(pad8(len))?;
        let mut fields = Vec::new();
        while !body.is_empty() {
            fields.push(OxmField::parse(&mut body)?);
        }
        Ok(Match { fields })
    }

    /// Appends the match, padded to 8 bytes.
    pub(crate) fn emit(&self, buf: &mut Vec<u8>) -> Result<()> {
        let start = buf.len();
        buf.put_u16(OFPMT_OXM);
        buf.put_u16(0);
        for f in &self.fields {
            f.emit(buf)?;
        }
        let len = buf.len() - start;
        super::patch_len(buf, start, 2)?;
        buf.put_zeros(pad8(len));
        Ok(())
    }
}

#[cfg(any(test, feature = "arbitrary"))]
pub mod strategies;

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn match_round_trips(m in strategies::match_()) {
            let mut buf = Vec::new();
            m.emit(&mut buf).unwrap();
            prop_assert_eq!(buf.len() % 8, 0);
            let mut r = Reader::new(&buf, "test");
            let back = Match::parse(&mut r).unwrap();
            prop_assert!(r.is_empty());
            prop_assert_eq!(back, m);
        }

        #[test]
        fn match_parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            let _ = Match::parse(&mut Reader::new(&bytes, "fuzz"));
        }
    }

    #[test]
    fn eth_type_has_the_spec_layout() {
        let mut buf = Vec::new();
        OxmField::EthType(0x0806).emit(&mut buf).unwrap();
        assert_eq!(buf, [0x80, 0x00, 0x0a, 0x02, 0x08, 0x06]);
    }

    // Found by the conformance test: a masked field whose value had bits outside the mask
    // (eth_src 02:00:00:00:00:01/ff:ff:ff:00:00:00) was sent as is, and Open vSwitch refused the
    // whole FLOW_MOD with OFPBMC_BAD_WILDCARDS. Those bits are now cleared on emit and on parse.
    #[test]
    fn wildcarded_value_bits_are_cleared() {
        let f = OxmField::EthSrc {
            value: [2, 0, 0, 0, 0, 1],
            mask: Some([0xff, 0xff, 0xff, 0, 0, 0]),
        };
        let mut buf = Vec::new();
        f.emit(&mut buf).unwrap();
        assert_eq!(&buf[4..10], &[2, 0, 0, 0, 0, 0]);
        let ip = OxmField::Ipv4Src {
            value: Ipv4Addr::new(10, 1, 2, 3),
            mask: Some(Ipv4Addr::new(255, 0, 0, 0)),
        };
        buf.clear();
        ip.emit(&mut buf).unwrap();
        assert_eq!(&buf[4..8], &[10, 0, 0, 0]);
        // A peer's TLV with such bits parses to the cleared value.
        let wire = [
            0x80, 0x00, 0x05, 0x10, 0, 0, 0, 0, 0, 0, 0x12, 0x34, 0, 0, 0, 0, 0, 0, 0xff, 0,
        ];
        assert_eq!(
            OxmField::parse(&mut Reader::new(&wire, "t")),
            Ok(OxmField::Metadata {
                value: 0x1200,
                mask: Some(0xff00)
            })
        );
        // Exact values are untouched.
        buf.clear();
        OxmField::Metadata {
            value: 0x1234,
            mask: None,
        }
        .emit(&mut buf)
        .unwrap();
        assert_eq!(&buf[4..], &[0, 0, 0, 0, 0, 0, 0x12, 0x34]);
    }

    #[test]
    fn wrong_length_for_a_typed_field_is_refused() {
        // eth_type with length 3
        let bytes = [0x80, 0x00, 0x0a, 0x03, 0x08, 0x06, 0x00];
        assert_eq!(
            OxmField::parse(&mut Reader::new(&bytes, "t")),
            Err(Error::Malformed("OXM field length or mask"))
        );
    }
}
