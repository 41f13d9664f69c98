//! ERROR messages: the type and code as enums, the offending bytes kept.

use super::{Put, Reader, Result, wire_enum};

const OFPET_EXPERIMENTER: u16 = 0xffff;

wire_enum! { pub enum HelloFailedCode: u16 { Incompatible = 0, Eperm = 1 } }
wire_enum! { pub enum BadRequestCode: u16 {
    BadVersion = 0, BadType = 1, BadMultipart = 2, BadExperimenter = 3, BadExpType = 4, Eperm = 5,
    BadLen = 6, BufferEmpty = 7, BufferUnknown = 8, BadTableId = 9, IsSlave = 10, BadPort = 11,
    BadPacket = 12, MultipartBufferOverflow = 13,
} }
wire_enum! { pub enum BadActionCode: u16 {
    BadType = 0, BadLen = 1, BadExperimenter = 2, BadExpType = 3, BadOutPort = 4, BadArgument = 5,
    Eperm = 6, TooMany = 7, BadQueue = 8, BadOutGroup = 9, MatchInconsistent = 10,
    UnsupportedOrder = 11, BadTag = 12, BadSetType = 13, BadSetLen = 14, BadSetArgument = 15,
} }
wire_enum! { pub enum BadInstructionCode: u16 {
    UnknownInst = 0, UnsupInst = 1, BadTableId = 2, UnsupMetadata = 3, UnsupMetadataMask = 4,
    BadExperimenter = 5, BadExpType = 6, BadLen = 7, Eperm = 8,
} }
wire_enum! { pub enum BadMatchCode: u16 {
    BadType = 0, BadLen = 1, BadTag = 2, BadDlAddrMask = 3, BadNwAddrMask = 4, BadWildcards = 5,
    BadField = 6, BadValue = 7, BadMask = 8, BadPrereq = 9, DupField = 10, Eperm = 11,
} }
wire_enum! { pub enum FlowModFailedCode: u16 {
    Unknown = 0, TableFull = 1, BadTableId = 2, Overlap = 3, Eperm = 4, BadTimeout = 5,
    BadCommand = 6, BadFlags = 7,
} }
wire_enum! { pub enum GroupModFailedCode: u16 {
    GroupExists = 0, InvalidGroup = 1, WeightUnsupported = 2, OutOfGroups = 3, OutOfBuckets = 4,
    ChainingUnsupported = 5, WatchUnsupported = 6, Loop = 7, UnknownGroup = 8, ChainedGroup = 9,
    BadType = 10, BadCommand = 11, BadBucket = 12, BadWatch = 13, Eperm = 14,
} }
wire_enum! { pub enum PortModFailedCode: u16 {
    BadPort = 0, BadHwAddr = 1, BadConfig = 2, BadAdvertise = 3, Eperm = 4,
} }
wire_enum! { pub enum TableModFailedCode: u16 { BadTable = 0, BadConfig = 1, Eperm = 2 } }
wire_enum! { pub enum QueueOpFailedCode: u16 { BadPort = 0, BadQueue = 1, Eperm = 2 } }
wire_enum! { pub enum SwitchConfigFailedCode: u16 { BadFlags = 0, BadLen = 1, Eperm = 2 } }
wire_enum! { pub enum RoleRequestFailedCode: u16 { Stale = 0, Unsup = 1, BadRole = 2 } }
wire_enum! { pub enum MeterModFailedCode: u16 {
    Unknown = 0, MeterExists = 1, InvalidMeter = 2, UnknownMeter = 3, BadCommand = 4,
    BadFlags = 5, BadRate = 6, BadBurst = 7, BadBand = 8, BadBandValue = 9, OutOfMeters = 10,
    OutOfBands = 11,
} }
wire_enum! { pub enum TableFeaturesFailedCode: u16 {
    BadTable = 0, BadMetadata = 1, BadType = 2, BadLen = 3, BadArgument = 4, Eperm = 5,
} }

/// `ofp_error_type` together with its code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    HelloFailed(HelloFailedCode),
    BadRequest(BadRequestCode),
    BadAction(BadActionCode),
    BadInstruction(BadInstructionCode),
    BadMatch(BadMatchCode),
    FlowModFailed(FlowModFailedCode),
    GroupModFailed(GroupModFailedCode),
    PortModFailed(PortModFailedCode),
    TableModFailed(TableModFailedCode),
    QueueOpFailed(QueueOpFailedCode),
    SwitchConfigFailed(SwitchConfigFailedCode),
    RoleRequestFailed(RoleRequestFailedCode),
    MeterModFailed(MeterModFailedCode),
    TableFeaturesFailed(TableFeaturesFailedCode),
    /// `OFPET_EXPERIMENTER`; Open vSwitch reports bundle errors on OpenFlow 1.3 this way
    /// (ONF experimenter id, `exp_type` 2300 and up).
    Experimenter {
        exp_type: u16,
        experimenter: u32,
    },
    /// A type this codec has no name for.
    Unknown {
        typ: u16,
        code: u16,
    },
}

impl ErrorCode {
    /// Builds the typed code from the wire pair (not for `OFPET_EXPERIMENTER`).
    pub fn from_wire(typ: u16, code: u16) -> ErrorCode {
        match typ {
            0 => ErrorCode::HelloFailed(code.into()),
            1 => ErrorCode::BadRequest(code.into()),
            2 => ErrorCode::BadAction(code.into()),
            3 => ErrorCode::BadInstruction(code.into()),
            4 => ErrorCode::BadMatch(code.into()),
            5 => ErrorCode::FlowModFailed(code.into()),
            6 => ErrorCode::GroupModFailed(code.into()),
            7 => ErrorCode::PortModFailed(code.into()),
            8 => ErrorCode::TableModFailed(code.into()),
            9 => ErrorCode::QueueOpFailed(code.into()),
            10 => ErrorCode::SwitchConfigFailed(code.into()),
            11 => ErrorCode::RoleRequestFailed(code.into()),
            12 => ErrorCode::MeterModFailed(code.into()),
            13 => ErrorCode::TableFeaturesFailed(code.into()),
            typ => ErrorCode::Unknown { typ, code },
        }
    }

    /// The wire `(type, code)` pair; experimenter errors give `(0xffff, exp_type)`.
    pub fn to_wire(self) -> (u16, u16) {
        match self {
            ErrorCode::HelloFailed(c) => (0, c.into()),
            ErrorCode::BadRequest(c) => (1, c.into()),
            ErrorCode::BadAction(c) => (2, c.into()),
            ErrorCode::BadInstruction(c) => (3, c.into()),
            ErrorCode::BadMatch(c) => (4, c.into()),
            ErrorCode::FlowModFailed(c) => (5, c.into()),
            ErrorCode::GroupModFailed(c) => (6, c.into()),
            ErrorCode::PortModFailed(c) => (7, c.into()),
            ErrorCode::TableModFailed(c) => (8, c.into()),
            ErrorCode::QueueOpFailed(c) => (9, c.into()),
            ErrorCode::SwitchConfigFailed(c) => (10, c.into()),
            ErrorCode::RoleRequestFailed(c) => (11, c.into()),
            ErrorCode::MeterModFailed(c) => (12, c.into()),
            ErrorCode::TableFeaturesFailed(c) => (13, c.into()),
            ErrorCode::Experimenter { exp_type, .. } => (OFPET_EXPERIMENTER, exp_type),
            ErrorCode::Unknown { typ, code } => (typ, code),
        }
    }
}

/// ERROR message. `data` holds (at least the first 64 bytes of) the request that failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorMsg {
    pub code: ErrorCode,
    pub data: Vec<u8>,
}

impl ErrorMsg {
    pub(crate) fn parse(r: &mut Reader<'_>) -> Result<ErrorMsg> {
        let typ = r.u16()?;
        let code = r.u16()?;
        let code = if typ == OFPET_EXPERIMENTER {
            ErrorCode::Experimenter {
                exp_type: code,
                experimenter: r.u32()?,
            }
        } else {
            ErrorCode::from_wire(typ, code)
        };
        Ok(ErrorMsg {
            code,
            data: r.take_rest().to_vec(),
        })
    }

    pub(crate) fn emit(&self, buf: &mut Vec<u8>) {
        let (typ, code) = self.code.to_wire();
        buf.put_u16(typ);
        buf.put_u16(code);
        if let ErrorCode::Experimenter { experimenter, .. } = self.code {
            buf.put_u32(experimenter);
        }
        buf.extend_from_slice(&self.data);
    }

    /// The xid of the failed request, when the echoed data holds its header.
    pub fn failed_xid(&self) -> Option<u32> {
        let b = self.data.get(4..8)?;
        Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
}

impl std::fmt::Display for ErrorMsg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_codes_get_names_and_unknown_ones_are_kept() {
        assert_eq!(
            ErrorCode::from_wire(5, 1),
            ErrorCode::FlowModFailed(FlowModFailedCode::TableFull)
        );
        assert_eq!(
            ErrorCode::from_wire(1, 99),
            ErrorCode::BadRequest(BadRequestCode::Other(99))
        );
        assert_eq!(
            ErrorCode::from_wire(40, 2),
            ErrorCode::Unknown { typ: 40, code: 2 }
        );
        for typ in 0..20u16 {
            for code in 0..20u16 {
                assert_eq!(ErrorCode::from_wire(typ, code).to_wire(), (typ, code));
            }
        }
    }
}
