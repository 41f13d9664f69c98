//! GROUP_MOD and the group description/statistics bodies.

use super::{Action, Error, Put, Reader, Result, wire_enum};

wire_enum! {
    /// `ofp_group_mod_command`.
    pub enum GroupModCommand: u16 {
        Add = 0,
        Modify = 1,
        Delete = 2,
    }
}

wire_enum! {
    /// `ofp_group_type`.
    pub enum GroupType: u8 {
        All = 0,
        Select = 1,
        Indirect = 2,
        FastFailover = 3,
    }
}

/// One bucket of a group.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Bucket {
    pub weight: u16,
    pub watch_port: u32,
    pub watch_group: u32,
    pub actions: Vec<Action>,
}

impl Bucket {
    /// A bucket for ALL/INDIRECT groups: no weight, no liveness watch.
    pub fn new(actions: Vec<Action>) -> Bucket {
        Bucket {
            weight: 0,
            watch_port: super::port_no::ANY,
            watch_group: super::group_no::ANY,
            actions,
        }
    }

    fn parse(r: &mut Reader<'_>) -> Result<Bucket> {
        let len = r.u16()? as usize;
        if len < 16 || !len.is_multiple_of(8) {
            return Err(Error::BadLength {
                what: "bucket",
                len,
            });
        }
        let mut b = r.sub(len - 2, "bucket")?;
        let weight = b.u16()?;
        let watch_port = b.u32()?;
        let watch_group = b.u32()?;
        b.skip(4)?;
        Ok(Bucket {
            weight,
            watch_port,
            watch_group,
            actions: Action::parse_list(&mut b)?,
        })
    }

    fn emit(&self, buf: &mut Vec<u8>) -> Result<()> {
        let start = buf.len();
        buf.put_u16(0);
        buf.put_u16(self.weight);
        buf.put_u32(self.watch_port);
        buf.put_u32(self.watch_group);
        buf.put_zeros(4);
        Action::emit_list(&self.actions, buf)?;
        super::patch_len(buf, start, 0)
    }

    pub(crate) fn parse_list(r: &mut Reader<'_>) -> Result<Vec<Bucket>> {
        let mut out = Vec::new();
        while !r.is_empty() {
            out.push(Bucket::parse(r)?);
        }
        Ok(out)
    }

    pub(crate) fn emit_list(list: &[Bucket], buf: &mut Vec<u8>) -> Result<()> {
        list.iter().try_for_each(|b| b.emit(buf))
    }
}

/// GROUP_MOD.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GroupMod {
    pub command: GroupModCommand,
    pub group_type: GroupType,
    pub group_id: u32,
    pub buckets: Vec<Bucket>,
}

impl GroupMod {
    pub(crate) fn parse(r: &mut Reader<'_>) -> Result<GroupMod> {
        let command = r.u16()?.into();
        let group_type = r.u8()?.into();
        r.skip(1)?;
        let group_id = r.u32()?;
        Ok(GroupMod {
            command,
            group_type,
            group_id,
            buckets: Bucket::parse_list(r)?,
        })
    }

    pub(crate) fn emit(&self, buf: &mut Vec<u8>) -> Result<()> {
        buf.put_u16(self.command.into());
        buf.put_u8(self.group_type.into());
        buf.put_zeros(1);
        buf.put_u32(self.group_id);
        Bucket::emit_list(&self.buckets, buf)
    }
}

/// One entry of a GROUP_DESC multipart reply: a group as installed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GroupDesc {
    pub group_type: GroupType,
    pub group_id: u32,
    pub buckets: Vec<Bucket>,
}

impl GroupDesc {
    pub(crate) fn parse(r: &mut Reader<'_>) -> Result<GroupDesc> {
        let len = r.u16()? as usize;
        if len < 8 {
            return Err(Error::BadLength {
                what: "group desc",
                len,
            });
        }
        let mut b = r.sub(len - 2, "group desc")?;
        let group_type = b.u8()?.into();
        b.skip(1)?;
        let group_id = b.u32()?;
        Ok(GroupDesc {
            group_type,
            group_id,
            buckets: Bucket::parse_list(&mut b)?,
        })
    }

    pub(crate) fn emit(&self, buf: &mut Vec<u8>) -> Result<()> {
        let start = buf.len();
        buf.put_u16(0);
        buf.put_u8(self.group_type.into());
        buf.put_zeros(1);
        buf.put_u32(self.group_id);
        Bucket::emit_list(&self.buckets, buf)?;
        super::patch_len(buf, start, 0)
    }
}

/// Per-bucket counters of a GROUP statistics entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BucketCounter {
    pub packet_count: u64,
    pub byte_count: u64,
}

/// One entry of a GROUP multipart reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupStats {
    pub group_id: u32,
    pub ref_count: u32,
    pub packet_count: u64,
    pub byte_count: u64,
    pub duration_sec: u32,
    pub duration_nsec: u32,
    pub buckets: Vec<BucketCounter>,
}

impl GroupStats {
    pub(crate) fn parse(r: &mut Reader<'_>) -> Result<GroupStats> {
        let len = r.u16()? as usize;
        if len < 40 || !(len - 40).is_multiple_of(16) {
            return Err(Error::BadLength {
                what: "group stats",
                len,
            });
        }
        let mut b = r.sub(len - 2, "group stats")?;
        b.skip(2)?;
        let group_id = b.u32()?;
        let ref_count = b.u32()?;
        b.skip(4)?;
        let packet_count = b.u64()?;
        let byte_count = b.u64()?;
        let duration_sec = b.u32()?;
        let duration_nsec = b.u32()?;
        let mut buckets = Vec::with_capacity(b.remaining() / 16);
        while !b.is_empty() {
            buckets.push(BucketCounter {
                packet_count: b.u64()?,
                byte_count: b.u64()?,
            });
        }
        Ok(GroupStats {
            group_id,
            ref_count,
            packet_count,
            byte_count,
            duration_sec,
            duration_nsec,
            buckets,
        })
    }

    pub(crate) fn emit(&self, buf: &mut Vec<u8>) -> Result<()> {
        let start = buf.len();
        buf.put_u16(0);
        buf.put_zeros(2);
        buf.put_u32(self.group_id);
        buf.put_u32(self.ref_count);
        buf.put_zeros(4);
        buf.put_u64(self.packet_count);
        buf.put_u64(self.byte_count);
        buf.put_u32(self.duration_sec);
        buf.put_u32(self.duration_nsec);
        for c in &self.buckets {
            buf.put_u64(c.packet_count);
            buf.put_u64(c.byte_count);
        }
        super::patch_len(buf, start, 0)
    }
}
