//! MULTIPART request/reply: statistics and descriptions, possibly split over several replies.

use super::{
    AggregateStats, Error, FlowStats, FlowStatsRequest, GroupDesc, GroupStats, PortDesc, PortStats,
    Put, Reader, Result, TableStats, emit_fixed_str, parse_fixed_str,
};

/// Flag on a reply (or request) saying that more parts with the same xid follow.
pub const MULTIPART_MORE: u16 = 1;

mod typ {
    pub const DESC: u16 = 0;
    pub const FLOW: u16 = 1;
    pub const AGGREGATE: u16 = 2;
    pub const TABLE: u16 = 3;
    pub const PORT_STATS: u16 = 4;
    pub const GROUP: u16 = 6;
    pub const GROUP_DESC: u16 = 7;
    pub const PORT_DESC: u16 = 13;
}

/// MULTIPART_REQUEST.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MultipartRequest {
    pub flags: u16,
    pub body: MultipartRequestBody,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MultipartRequestBody {
    Desc,
    Flow(FlowStatsRequest),
    Aggregate(FlowStatsRequest),
    Table,
    /// Statistics of one port, or of all with `port_no::ANY`.
    PortStats {
        port_no: u32,
    },
    /// Statistics of one group, or of all with `group_no::ALL`.
    Group {
        group_id: u32,
    },
    GroupDesc,
    PortDesc,
    /// A multipart type this codec has no variant for.
    Other {
        typ: u16,
        body: Vec<u8>,
    },
}

impl MultipartRequest {
    pub fn new(body: MultipartRequestBody) -> MultipartRequest {
        MultipartRequest { flags: 0, body }
    }

    pub(crate) fn parse(r: &mut Reader<'_>) -> Result<MultipartRequest> {
        let t = r.u16()?;
        let flags = r.u16()?;
        r.skip(4)?;
        let body = match t {
            typ::DESC => MultipartRequestBody::Desc,
            typ::FLOW => MultipartRequestBody::Flow(FlowStatsRequest::parse(r)?),
            typ::AGGREGATE => MultipartRequestBody::Aggregate(FlowStatsRequest::parse(r)?),
            typ::TABLE => MultipartRequestBody::Table,
            typ::PORT_STATS => {
                let port_no = r.u32()?;
                r.skip(4)?;
                MultipartRequestBody::PortStats { port_no }
            }
            typ::GROUP => {
                let group_id = r.u32()?;
                r.skip(4)?;
                MultipartRequestBody::Group { group_id }
            }
            typ::GROUP_DESC => MultipartRequestBody::GroupDesc,
            typ::PORT_DESC => MultipartRequestBody::PortDesc,
            typ => MultipartRequestBody::Other {
                typ,
                body: r.take_rest().to_vec(),
            },
        };
        if !r.is_empty() {
            return Err(Error::BadLength {
                what: "multipart request body",
                len: r.remaining(),
            });
        }
        Ok(MultipartRequest { flags, body })
    }

    pub(crate) fn emit(&self, buf: &mut Vec<u8>) -> Result<()> {
        let t = match &self.body {
            MultipartRequestBody::Desc => typ::DESC,
            MultipartRequestBody::Flow(_) => typ::FLOW,
            MultipartRequestBody::Aggregate(_) => typ::AGGREGATE,
            MultipartRequestBody::Table => typ::TABLE,
            MultipartRequestBody::PortStats { .. } => typ::PORT_STATS,
            MultipartRequestBody::Group { .. } => typ::GROUP,
            MultipartRequestBody::GroupDesc => typ::GROUP_DESC,
            MultipartRequestBody::PortDesc => typ::PORT_DESC,
            MultipartRequestBody::Other { typ, .. } => *typ,
        };
        buf.put_u16(t);
        buf.put_u16(self.flags);
        buf.put_zeros(4);
        match &self.body {
            MultipartRequestBody::Flow(f) | MultipartRequestBody::Aggregate(f) => f.emit(buf)?,
            MultipartRequestBody::PortStats { port_no } => {
                buf.put_u32(*port_no);
                buf.put_zeros(4);
            }
            MultipartRequestBody::Group { group_id } => {
                buf.put_u32(*group_id);
                buf.put_zeros(4);
            }
            MultipartRequestBody::Other { body, .. } => buf.extend_from_slice(body),
            MultipartRequestBody::Desc
            | MultipartRequestBody::Table
            | MultipartRequestBody::GroupDesc
            | MultipartRequestBody::PortDesc => {}
        }
        Ok(())
    }
}

/// DESC reply: who made the switch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desc {
    pub mfr_desc: String,
    pub hw_desc: String,
    pub sw_desc: String,
    pub serial_num: String,
    pub dp_desc: String,
}

const DESC_STR_LEN: usize = 256;
const SERIAL_NUM_LEN: usize = 32;

impl Desc {
    fn parse(r: &mut Reader<'_>) -> Result<Desc> {
        Ok(Desc {
            mfr_desc: parse_fixed_str(r.bytes(DESC_STR_LEN)?),
            hw_desc: parse_fixed_str(r.bytes(DESC_STR_LEN)?),
            sw_desc: parse_fixed_str(r.bytes(DESC_STR_LEN)?),
            serial_num: parse_fixed_str(r.bytes(SERIAL_NUM_LEN)?),
            dp_desc: parse_fixed_str(r.bytes(DESC_STR_LEN)?),
        })
    }

    fn emit(&self, buf: &mut Vec<u8>) {
        emit_fixed_str(buf, &self.mfr_desc, DESC_STR_LEN);
        emit_fixed_str(buf, &self.hw_desc, DESC_STR_LEN);
        emit_fixed_str(buf, &self.sw_desc, DESC_STR_LEN);
        emit_fixed_str(buf, &self.serial_num, SERIAL_NUM_LEN);
        emit_fixed_str(buf, &self.dp_desc, DESC_STR_LEN);
    }
}

/// MULTIPART_REPLY. Check [`MultipartReply::more`] and merge parts with
/// [`MultipartReplyBody::append`] until a part without the MORE flag arrives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MultipartReply {
    pub flags: u16,
    pub body: MultipartReplyBody,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MultipartReplyBody {
    Desc(Desc),
    Flow(Vec<FlowStats>),
    Aggregate(AggregateStats),
    Table(Vec<TableStats>),
    PortStats(Vec<PortStats>),
    Group(Vec<GroupStats>),
    GroupDesc(Vec<GroupDesc>),
    PortDesc(Vec<PortDesc>),
    Other { typ: u16, body: Vec<u8> },
}

impl MultipartReply {
    pub fn more(&self) -> bool {
        self.flags & MULTIPART_MORE != 0
    }

    pub(crate) fn parse(r: &mut Reader<'_>) -> Result<MultipartReply> {
        let t = r.u16()?;
        let flags = r.u16()?;
        r.skip(4)?;
        fn list<T>(r: &mut Reader<'_>, f: impl Fn(&mut Reader<'_>) -> Result<T>) -> Result<Vec<T>> {
            let mut out = Vec::new();
            while !r.is_empty() {
                out.push(f(r)?);
            }
            Ok(out)
        }
        let body = match t {
            typ::DESC => MultipartReplyBody::Desc(Desc::parse(r)?),
            typ::FLOW => MultipartReplyBody::Flow(list(r, FlowStats::parse)?),
            typ::AGGREGATE => MultipartReplyBody::Aggregate(AggregateStats::parse(r)?),
            typ::TABLE => MultipartReplyBody::Table(list(r, TableStats::parse)?),
            typ::PORT_STATS => MultipartReplyBody::PortStats(list(r, PortStats::parse)?),
            typ::GROUP => MultipartReplyBody::Group(list(r, GroupStats::parse)?),
            typ::GROUP_DESC => MultipartReplyBody::GroupDesc(list(r, GroupDesc::parse)?),
            typ::PORT_DESC => MultipartReplyBody::PortDesc(PortDesc::parse_list(r)?),
            typ => MultipartReplyBody::Other {
                typ,
                body: r.take_rest().to_vec(),
            },
        };
        if !r.is_empty() {
            return Err(Error::BadLength {
                what: "multipart reply body",
                len: r.remaining(),
            });
        }
        Ok(MultipartReply { flags, body })
    }

    pub(crate) fn emit(&self, buf: &mut Vec<u8>) -> Result<()> {
        buf.put_u16(self.body.typ());
        buf.put_u16(self.flags);
        buf.put_zeros(4);
        match &self.body {
            MultipartReplyBody::Desc(d) => d.emit(buf),
            MultipartReplyBody::Flow(v) => v.iter().try_for_each(|e| e.emit(buf))?,
            MultipartReplyBody::Aggregate(a) => a.emit(buf),
            MultipartReplyBody::Table(v) => v.iter().for_each(|e| e.emit(buf)),
            MultipartReplyBody::PortStats(v) => v.iter().for_each(|e| e.emit(buf)),
            MultipartReplyBody::Group(v) => v.iter().try_for_each(|e| e.emit(buf))?,
            MultipartReplyBody::GroupDesc(v) => v.iter().try_for_each(|e| e.emit(buf))?,
            MultipartReplyBody::PortDesc(v) => v.iter().for_each(|e| e.emit(buf)),
            MultipartReplyBody::Other { body, .. } => buf.extend_from_slice(body),
        }
        Ok(())
    }
}

impl MultipartReplyBody {
    /// The wire multipart type of this body.
    pub fn typ(&self) -> u16 {
        match self {
            MultipartReplyBody::Desc(_) => typ::DESC,
            MultipartReplyBody::Flow(_) => typ::FLOW,
            MultipartReplyBody::Aggregate(_) => typ::AGGREGATE,
            MultipartReplyBody::Table(_) => typ::TABLE,
            MultipartReplyBody::PortStats(_) => typ::PORT_STATS,
            MultipartReplyBody::Group(_) => typ::GROUP,
            MultipartReplyBody::GroupDesc(_) => typ::GROUP_DESC,
            MultipartReplyBody::PortDesc(_) => typ::PORT_DESC,
            MultipartReplyBody::Other { typ, .. } => *typ,
        }
    }

    /// Appends the entries of a following part of the same reply. Parts of another type, or of a
    /// single-valued body (DESC, AGGREGATE), cannot be merged.
    pub fn append(&mut self, next: MultipartReplyBody) -> Result<()> {
        use MultipartReplyBody as B;
        match (self, next) {
            (B::Flow(a), B::Flow(b)) => a.extend(b),
            (B::Table(a), B::Table(b)) => a.extend(b),
            (B::PortStats(a), B::PortStats(b)) => a.extend(b),
            (B::Group(a), B::Group(b)) => a.extend(b),
            (B::GroupDesc(a), B::GroupDesc(b)) => a.extend(b),
            (B::PortDesc(a), B::PortDesc(b)) => a.extend(b),
            (B::Other { typ: t1, body: a }, B::Other { typ: t2, body: b }) if *t1 == t2 => {
                a.extend(b)
            }
            _ => return Err(Error::Malformed("multipart reply parts of different kinds")),
        }
        Ok(())
    }
}
