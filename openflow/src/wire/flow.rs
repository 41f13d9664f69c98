//! FLOW_MOD, FLOW_REMOVED and the flow/aggregate statistics bodies.

use super::{Error, Instruction, Match, Put, Reader, Result, wire_enum};

wire_enum! {
    /// `ofp_flow_mod_command`.
    pub enum FlowModCommand: u8 {
        Add = 0,
        Modify = 1,
        ModifyStrict = 2,
        Delete = 3,
        DeleteStrict = 4,
    }
}

/// `ofp_flow_mod_flags` bits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct FlowModFlags(pub u16);

impl FlowModFlags {
    pub const SEND_FLOW_REM: u16 = 1 << 0;
    pub const CHECK_OVERLAP: u16 = 1 << 1;
    pub const RESET_COUNTS: u16 = 1 << 2;
    pub const NO_PKT_COUNTS: u16 = 1 << 3;
    pub const NO_BYT_COUNTS: u16 = 1 << 4;
}

/// FLOW_MOD: add, change or remove flow entries.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FlowMod {
    pub cookie: u64,
    /// For modify/delete: which cookie bits must match (0 = any cookie).
    pub cookie_mask: u64,
    pub table_id: u8,
    pub command: FlowModCommand,
    pub idle_timeout: u16,
    pub hard_timeout: u16,
    pub priority: u16,
    pub buffer_id: u32,
    /// For delete: only entries that output to this port (`ANY` = no restriction).
    pub out_port: u32,
    /// For delete: only entries that output to this group (`ANY` = no restriction).
    pub out_group: u32,
    pub flags: FlowModFlags,
    pub r#match: Match,
    pub instructions: Vec<Instruction>,
}

impl FlowMod {
    /// An ADD with no timeouts, no buffer and no restrictions, for the given table and priority.
    pub fn add(table_id: u8, priority: u16, m: Match, instructions: Vec<Instruction>) -> FlowMod {
        FlowMod {
            cookie: 0,
            cookie_mask: 0,
            table_id,
            command: FlowModCommand::Add,
            idle_timeout: 0,
            hard_timeout: 0,
            priority,
            buffer_id: super::NO_BUFFER,
            out_port: super::port_no::ANY,
            out_group: super::group_no::ANY,
            flags: FlowModFlags::default(),
            r#match: m,
            instructions,
        }
    }

    /// A non-strict DELETE of every entry in `table_id` (or all tables with `table_no::ALL`)
    /// whose cookie matches `cookie` under `cookie_mask`.
    pub fn delete_by_cookie(table_id: u8, cookie: u64, cookie_mask: u64) -> FlowMod {
        FlowMod {
            cookie,
            cookie_mask,
            command: FlowModCommand::Delete,
            ..FlowMod::add(table_id, 0, Match::default(), Vec::new())
        }
    }

    pub(crate) fn parse(r: &mut Reader<'_>) -> Result<FlowMod> {
        let cookie = r.u64()?;
        let cookie_mask = r.u64()?;
        let table_id = r.u8()?;
        let command = FlowModCommand::from(r.u8()?);
        let idle_timeout = r.u16()?;
        let hard_timeout = r.u16()?;
        let priority = r.u16()?;
        let buffer_id = r.u32()?;
        let out_port = r.u32()?;
        let out_group = r.u32()?;
        let flags = FlowModFlags(r.u16()?);
        r.skip(2)?;
        let m = Match::parse(r)?;
        let instructions = Instruction::parse_list(r)?;
        Ok(FlowMod {
            cookie,
            cookie_mask,
            table_id,
            command,
            idle_timeout,
            hard_timeout,
            priority,
            buffer_id,
            out_port,
            out_group,
            flags,
            r#match: m,
            instructions,
        })
    }

    pub(crate) fn emit(&self, buf: &mut Vec<u8>) -> Result<()> {
        buf.put_u64(self.cookie);
        buf.put_u64(self.cookie_mask);
        buf.put_u8(self.table_id);
        buf.put_u8(self.command.into());
        buf.put_u16(self.idle_timeout);
        buf.put_u16(self.hard_timeout);
        buf.put_u16(self.priority);
        buf.put_u32(self.buffer_id);
        buf.put_u32(self.out_port);
        buf.put_u32(self.out_group);
        buf.put_u16(self.flags.0);
        buf.put_zeros(2);
        self.r#match.emit(buf)?;
        Instruction::emit_list(&self.instructions, buf)
    }
}

wire_enum! {
    /// `ofp_flow_removed_reason`.
    pub enum FlowRemovedReason: u8 {
        IdleTimeout = 0,
        HardTimeout = 1,
        Delete = 2,
        GroupDelete = 3,
    }
}

/// FLOW_REMOVED: the switch tells that an entry (with SEND_FLOW_REM) went away.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowRemoved {
    pub cookie: u64,
    pub priority: u16,
    pub reason: FlowRemovedReason,
    pub table_id: u8,
    pub duration_sec: u32,
    pub duration_nsec: u32,
    pub idle_timeout: u16,
    pub hard_timeout: u16,
    pub packet_count: u64,
    pub byte_count: u64,
    pub r#match: Match,
}

impl FlowRemoved {
    pub(crate) fn parse(r: &mut Reader<'_>) -> Result<FlowRemoved> {
        Ok(FlowRemoved {
            cookie: r.u64()?,
            priority: r.u16()?,
            reason: r.u8()?.into(),
            table_id: r.u8()?,
            duration_sec: r.u32()?,
            duration_nsec: r.u32()?,
            idle_timeout: r.u16()?,
            hard_timeout: r.u16()?,
            packet_count: r.u64()?,
            byte_count: r.u64()?,
            r#match: Match::parse(r)?,
        })
    }

    pub(crate) fn emit(&self, buf: &mut Vec<u8>) -> Result<()> {
        buf.put_u64(self.cookie);
        buf.put_u16(self.priority);
        buf.put_u8(self.reason.into());
        buf.put_u8(self.table_id);
        buf.put_u32(self.duration_sec);
        buf.put_u32(self.duration_nsec);
        buf.put_u16(self.idle_timeout);
        buf.put_u16(self.hard_timeout);
        buf.put_u64(self.packet_count);
        buf.put_u64(self.byte_count);
        self.r#match.emit(buf)
    }
}

/// Body of a FLOW or AGGREGATE multipart request: which entries to report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowStatsRequest {
    pub table_id: u8,
    pub out_port: u32,
    pub out_group: u32,
    pub cookie: u64,
    pub cookie_mask: u64,
    pub r#match: Match,
}

impl FlowStatsRequest {
    /// Every entry of every table.
    pub fn all() -> FlowStatsRequest {
        FlowStatsRequest {
            table_id: super::table_no::ALL,
            out_port: super::port_no::ANY,
            out_group: super::group_no::ANY,
            cookie: 0,
            cookie_mask: 0,
            r#match: Match::default(),
        }
    }

    pub(crate) fn parse(r: &mut Reader<'_>) -> Result<FlowStatsRequest> {
        let table_id = r.u8()?;
        r.skip(3)?;
        let out_port = r.u32()?;
        let out_group = r.u32()?;
        r.skip(4)?;
        Ok(FlowStatsRequest {
            table_id,
            out_port,
            out_group,
            cookie: r.u64()?,
            cookie_mask: r.u64()?,
            r#match: Match::parse(r)?,
        })
    }

    pub(crate) fn emit(&self, buf: &mut Vec<u8>) -> Result<()> {
        buf.put_u8(self.table_id);
        buf.put_zeros(3);
        buf.put_u32(self.out_port);
        buf.put_u32(self.out_group);
        buf.put_zeros(4);
        buf.put_u64(self.cookie);
        buf.put_u64(self.cookie_mask);
        self.r#match.emit(buf)
    }
}

/// One entry of a FLOW multipart reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowStats {
    pub table_id: u8,
    pub duration_sec: u32,
    pub duration_nsec: u32,
    pub priority: u16,
    pub idle_timeout: u16,
    pub hard_timeout: u16,
    pub flags: FlowModFlags,
    pub cookie: u64,
    pub packet_count: u64,
    pub byte_count: u64,
    pub r#match: Match,
    pub instructions: Vec<Instruction>,
}

impl FlowStats {
    pub(crate) fn parse(r: &mut Reader<'_>) -> Result<FlowStats> {
        let len = r.u16()? as usize;
        if len < 56 {
            return Err(Error::BadLength {
                what: "flow stats entry",
                len,
            });
        }
        let mut b = r.sub(len - 2, "flow stats entry")?;
        let table_id = b.u8()?;
        b.skip(1)?;
        let duration_sec = b.u32()?;
        let duration_nsec = b.u32()?;
        let priority = b.u16()?;
        let idle_timeout = b.u16()?;
        let hard_timeout = b.u16()?;
        let flags = FlowModFlags(b.u16()?);
        b.skip(4)?;
        let cookie = b.u64()?;
        let packet_count = b.u64()?;
        let byte_count = b.u64()?;
        let m = Match::parse(&mut b)?;
        let instructions = Instruction::parse_list(&mut b)?;
        Ok(FlowStats {
            table_id,
            duration_sec,
            duration_nsec,
            priority,
            idle_timeout,
            hard_timeout,
            flags,
            cookie,
            packet_count,
            byte_count,
            r#match: m,
            instructions,
        })
    }

    pub(crate) fn emit(&self, buf: &mut Vec<u8>) -> Result<()> {
        let start = buf.len();
        buf.put_u16(0);
        buf.put_u8(self.table_id);
        buf.put_zeros(1);
        buf.put_u32(self.duration_sec);
        buf.put_u32(self.duration_nsec);
        buf.put_u16(self.priority);
        buf.put_u16(self.idle_timeout);
        buf.put_u16(self.hard_timeout);
        buf.put_u16(self.flags.0);
        buf.put_zeros(4);
        buf.put_u64(self.cookie);
        buf.put_u64(self.packet_count);
        buf.put_u64(self.byte_count);
        self.r#match.emit(buf)?;
        Instruction::emit_list(&self.instructions, buf)?;
        super::patch_len(buf, start, 0)
    }
}

/// AGGREGATE multipart reply body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AggregateStats {
    pub packet_count: u64,
    pub byte_count: u64,
    pub flow_count: u32,
}

impl AggregateStats {
    pub(crate) fn parse(r: &mut Reader<'_>) -> Result<AggregateStats> {
        let s = AggregateStats {
            packet_count: r.u64()?,
            byte_count: r.u64()?,
            flow_count: r.u32()?,
        };
        r.skip(4)?;
        Ok(s)
    }

    pub(crate) fn emit(&self, buf: &mut Vec<u8>) {
        buf.put_u64(self.packet_count);
        buf.put_u64(self.byte_count);
        buf.put_u32(self.flow_count);
        buf.put_zeros(4);
    }
}
