//! OpenFlow 1.3 wire format, in the smoltcp `wire/` style: one typed representation per message,
//! `parse` from bytes and `emit` into a buffer as two plain functions, every length checked, no
//! panics on input.
//!
//! Parsing never trusts a length field: every read goes through `Reader`, which refuses to read
//! past the end of the message and never allocates more than the input already holds.

mod action;
mod bundle;
mod control;
mod error_msg;
mod flow;
mod group;
mod instruction;
mod message;
mod meter;
mod multipart;
mod oxm;
mod packet;
mod port;
#[cfg(any(test, feature = "arbitrary"))]
pub mod strategies;
mod table;

pub use action::{Action, CONTROLLER_MAX_LEN_NO_BUFFER};
pub use bundle::{BundleAdd, BundleControl, BundleCtrlType, BundleFlags, BundleProperty};
pub use control::{
    ControllerRole, Experimenter, FeaturesReply, Hello, HelloElement, Role, SwitchConfig,
};
pub use error_msg::{
    BadActionCode, BadInstructionCode, BadMatchCode, BadRequestCode, ErrorCode, ErrorMsg,
    FlowModFailedCode, GroupModFailedCode, HelloFailedCode, MeterModFailedCode, PortModFailedCode,
    QueueOpFailedCode, RoleRequestFailedCode, SwitchConfigFailedCode, TableFeaturesFailedCode,
    TableModFailedCode,
};
pub use flow::{
    AggregateStats, FlowMod, FlowModCommand, FlowModFlags, FlowRemoved, FlowRemovedReason,
    FlowStats, FlowStatsRequest,
};
pub use group::{
    Bucket, BucketCounter, GroupDesc, GroupMod, GroupModCommand, GroupStats, GroupType,
};
pub use instruction::Instruction;
pub use message::{Message, MsgType};
pub use meter::{MeterBand, MeterMod, MeterModCommand};
pub use multipart::{
    Desc, MULTIPART_MORE, MultipartReply, MultipartReplyBody, MultipartRequest,
    MultipartRequestBody,
};
pub use oxm::{Match, OFPVID_PRESENT, OXM_CLASS_OPENFLOW_BASIC, OxmField, OxmOpaque};
pub use packet::{PacketIn, PacketInReason, PacketOut};
pub use port::{PortDesc, PortMod, PortReason, PortStats, PortStatus};
pub use table::{TableMod, TableStats};

/// Wire version byte of OpenFlow 1.3, the only version this codec speaks after HELLO.
pub const OFP_VERSION_1_3: u8 = 0x04;
/// Length of the fixed OpenFlow header (`ofp_header`).
pub const HEADER_LEN: usize = 8;
/// Largest message the 16-bit length field can describe.
pub const MAX_MESSAGE_LEN: usize = u16::MAX as usize;

/// Reserved port numbers (`ofp_port_no`).
pub mod port_no {
    pub const MAX: u32 = 0xffff_ff00;
    pub const IN_PORT: u32 = 0xffff_fff8;
    pub const TABLE: u32 = 0xffff_fff9;
    pub const NORMAL: u32 = 0xffff_fffa;
    pub const FLOOD: u32 = 0xffff_fffb;
    pub const ALL: u32 = 0xffff_fffc;
    pub const CONTROLLER: u32 = 0xffff_fffd;
    pub const LOCAL: u32 = 0xffff_fffe;
    pub const ANY: u32 = 0xffff_ffff;
}

/// Reserved group numbers (`ofp_group`).
pub mod group_no {
    pub const MAX: u32 = 0xffff_ff00;
    pub const ALL: u32 = 0xffff_fffc;
    pub const ANY: u32 = 0xffff_ffff;
}

/// Reserved table numbers.
pub mod table_no {
    pub const MAX: u8 = 0xfe;
    pub const ALL: u8 = 0xff;
}

/// Buffer id meaning "no buffer" (`OFP_NO_BUFFER`).
pub const NO_BUFFER: u32 = 0xffff_ffff;

/// Everything that can be wrong with bytes handed to the codec, or with a value to emit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("truncated {what}: need {need} bytes, {have} left")]
    Truncated {
        what: &'static str,
        need: usize,
        have: usize,
    },
    #[error("bad length {len} in {what}")]
    BadLength { what: &'static str, len: usize },
    #[error("unsupported OpenFlow version {0:#04x} (this codec speaks 1.3 = 0x04)")]
    BadVersion(u8),
    #[error("unknown {what} {value:#x}")]
    Unknown { what: &'static str, value: u32 },
    #[error("message of {0} bytes does not fit the 16-bit OpenFlow length field")]
    TooLong(usize),
    #[error("malformed {0}")]
    Malformed(&'static str),
}

/// Result type of the codec.
pub type Result<T> = core::result::Result<T, Error>;

/// The fixed header in front of every OpenFlow message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Header {
    pub version: u8,
    pub msg_type: u8,
    pub length: u16,
    pub xid: u32,
}

impl Header {
    /// Parses the 8 header bytes; does not check that the rest of the message is present.
    pub fn parse(buf: &[u8]) -> Result<Header> {
        let mut r = Reader::new(buf, "header");
        let version = r.u8()?;
        let msg_type = r.u8()?;
        let length = r.u16()?;
        let xid = r.u32()?;
        if (length as usize) < HEADER_LEN {
            return Err(Error::BadLength {
                what: "header",
                len: length as usize,
            });
        }
        Ok(Header {
            version,
            msg_type,
            length,
            xid,
        })
    }

    pub fn emit(&self, buf: &mut Vec<u8>) {
        buf.push(self.version);
        buf.push(self.msg_type);
        buf.extend_from_slice(&self.length.to_be_bytes());
        buf.extend_from_slice(&self.xid.to_be_bytes());
    }
}

/// A bounds-checked big-endian cursor over input bytes.
#[derive(Debug, Clone)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8], what: &'static str) -> Self {
        Reader { buf, what }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The bytes not read yet, without consuming them.
    pub(crate) fn rest(&self) -> &'a [u8] {
        self.buf
    }

    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.buf.len() {
            return Err(Error::Truncated {
                what: self.what,
                need: n,
                have: self.buf.len(),
            });
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    /// A reader over the next `n` bytes, which are consumed from this one.
    pub(crate) fn sub(&mut self, n: usize, what: &'static str) -> Result<Reader<'a>> {
        let bytes = self.bytes(n)?;
        Ok(Reader::new(bytes, what))
    }

    pub(crate) fn skip(&mut self, n: usize) -> Result<()> {
        self.bytes(n).map(|_| ())
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let b = self.bytes(N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(b);
        Ok(out)
    }

    pub(crate) fn u8(&mut self) -> Result<u8> {
        Ok(self.array::<1>()?[0])
    }

    pub(crate) fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    pub(crate) fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    pub(crate) fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    /// Everything left, consumed.
    pub(crate) fn take_rest(&mut self) -> &'a [u8] {
        let rest = self.buf;
        self.buf = &[];
        rest
    }
}

/// Appends big-endian integers to an output buffer.
pub(crate) trait Put {
    fn put_u8(&mut self, v: u8);
    fn put_u16(&mut self, v: u16);
    fn put_u32(&mut self, v: u32);
    fn put_u64(&mut self, v: u64);
    fn put_zeros(&mut self, n: usize);
    /// Writes `v` at `at`, for lengths that are only known once the body is written.
    fn patch_u16(&mut self, at: usize, v: u16);
}

impl Put for Vec<u8> {
    #[inline]
    fn put_u8(&mut self, v: u8) {
        self.push(v);
    }
    #[inline]
    fn put_u16(&mut self, v: u16) {
        self.extend_from_slice(&v.to_be_bytes());
    }
    #[inline]
    fn put_u32(&mut self, v: u32) {
        self.extend_from_slice(&v.to_be_bytes());
    }
    #[inline]
    fn put_u64(&mut self, v: u64) {
        self.extend_from_slice(&v.to_be_bytes());
    }
    #[inline]
    fn put_zeros(&mut self, n: usize) {
        self.resize(self.len() + n, 0);
    }
    #[inline]
    fn patch_u16(&mut self, at: usize, v: u16) {
        self[at..at + 2].copy_from_slice(&v.to_be_bytes());
    }
}

/// Patches the 16-bit length of a structure that starts at `start` and has `len_at` as the offset
/// of its length field; fails when the structure outgrew the field.
pub(crate) fn patch_len(buf: &mut Vec<u8>, start: usize, len_at: usize) -> Result<()> {
    let len = buf.len() - start;
    let len16 = u16::try_from(len).map_err(|_| Error::TooLong(len))?;
    buf.patch_u16(start + len_at, len16);
    Ok(())
}

/// Number of padding bytes that round `len` up to a multiple of 8.
#[inline]
pub(crate) fn pad8(len: usize) -> usize {
    (8 - len % 8) % 8
}

/// Reads a NUL-padded fixed-size string field (port names, descriptions).
///
/// The last byte is the terminator even if the peer put a character there, and each byte that
/// is not UTF-8 becomes one `?`: the string never grows, so it re-emits into the same field and
/// parses back unchanged (a lossy U+FFFD would take three bytes and be cut on re-emit).
pub(crate) fn parse_fixed_str(bytes: &[u8]) -> String {
    let bytes = &bytes[..bytes.len().saturating_sub(1)];
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    let mut out = String::with_capacity(end);
    for chunk in bytes[..end].utf8_chunks() {
        out.push_str(chunk.valid());
        out.extend(chunk.invalid().iter().map(|_| '?'));
    }
    out
}

/// Writes `s` into a fixed-size NUL-padded field, truncated (at a character boundary) so a
/// terminating NUL always fits.
pub(crate) fn emit_fixed_str(buf: &mut Vec<u8>, s: &str, size: usize) {
    let mut n = s.len().min(size - 1);
    while !s.is_char_boundary(n) {
        n -= 1;
    }
    buf.extend_from_slice(&s.as_bytes()[..n]);
    buf.put_zeros(size - n);
}

/// Defines an enum over a 16- or 8-bit wire code that keeps unknown values instead of failing.
macro_rules! wire_enum {
    ($(#[$m:meta])* $vis:vis enum $name:ident : $repr:ty { $($(#[$vm:meta])* $var:ident = $val:expr),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        $vis enum $name {
            $($(#[$vm])* $var,)*
            /// A value this codec has no name for, kept as received.
            Other($repr),
        }
        impl From<$repr> for $name {
            fn from(v: $repr) -> Self {
                match v {
                    $($val => $name::$var,)*
                    other => $name::Other(other),
                }
            }
        }
        impl From<$name> for $repr {
            fn from(v: $name) -> $repr {
                match v {
                    $($name::$var => $val,)*
                    $name::Other(other) => other,
                }
            }
        }
        impl $name {
            /// Canonical form: a known value given as `Other` becomes its named variant.
            #[allow(dead_code)]
            pub fn normalized(self) -> Self {
                <$repr>::from(self).into()
            }
        }
    };
}
pub(crate) use wire_enum;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_refuses_to_read_past_the_end() {
        let mut r = Reader::new(&[1, 2, 3], "t");
        assert_eq!(r.u16().ok(), Some(0x0102));
        assert_eq!(
            r.u16(),
            Err(Error::Truncated {
                what: "t",
                need: 2,
                have: 1
            })
        );
        assert_eq!(r.u8().ok(), Some(3));
        assert!(r.is_empty());
    }

    #[test]
    fn header_refuses_length_below_eight() {
        assert!(matches!(
            Header::parse(&[4, 0, 0, 7, 0, 0, 0, 1]),
            Err(Error::BadLength { .. })
        ));
        let h = Header::parse(&[4, 0, 0, 8, 0, 0, 0, 1]).ok();
        assert_eq!(h.map(|h| h.xid), Some(1));
    }

    #[test]
    fn fixed_strings_are_truncated_to_fit_a_nul() {
        let mut buf = Vec::new();
        emit_fixed_str(&mut buf, "abcdefghijklmnopqrstuvwxyz", 16);
        assert_eq!(buf.len(), 16);
        assert_eq!(buf[15], 0);
        assert_eq!(parse_fixed_str(&buf), "abcdefghijklmno");
    }

    // Found by the decode_message fuzz target: a port name with bytes that are not UTF-8 (or
    // with no NUL) parsed to a string that re-emitted differently, so parse(emit(parse(x)))
    // differed from parse(x).
    #[test]
    fn fixed_strings_from_the_wire_survive_a_round_trip() {
        let fields: [&[u8]; 4] = [
            b"p1\x0f\xff\xff\xff\xff\xff\xff\xff\0\0\0\0\0\0",
            b"abcdefghijklmnop",
            b"caf\xc3\xa9\xc3\0\0\0\0\0\0\0\0\0",
            b"\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2",
        ];
        for field in fields {
            let s = parse_fixed_str(field);
            assert!(s.len() < field.len(), "{s:?} leaves no room for the NUL");
            let mut buf = Vec::new();
            emit_fixed_str(&mut buf, &s, field.len());
            assert_eq!(parse_fixed_str(&buf), s);
        }
        assert_eq!(parse_fixed_str(fields[0]), "p1\x0f???????");
        assert_eq!(parse_fixed_str(fields[2]), "caf\u{e9}?");
    }

    #[test]
    fn over_long_strings_are_cut_at_a_character_boundary() {
        let mut buf = Vec::new();
        emit_fixed_str(
            &mut buf,
            "\u{20ac}\u{20ac}\u{20ac}\u{20ac}\u{20ac}\u{20ac}",
            16,
        );
        assert_eq!(buf.len(), 16);
        assert_eq!(
            parse_fixed_str(&buf),
            "\u{20ac}\u{20ac}\u{20ac}\u{20ac}\u{20ac}"
        );
    }
}
