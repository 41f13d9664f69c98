//! PACKET_IN and PACKET_OUT.

use super::{Action, Error, Match, Put, Reader, Result, wire_enum};

wire_enum! {
    /// `ofp_packet_in_reason`.
    pub enum PacketInReason: u8 {
        NoMatch = 0,
        Action = 1,
        InvalidTtl = 2,
    }
}

/// PACKET_IN: a packet the switch hands to the controller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PacketIn {
    pub buffer_id: u32,
    pub total_len: u16,
    pub reason: PacketInReason,
    pub table_id: u8,
    pub cookie: u64,
    pub r#match: Match,
    pub data: Vec<u8>,
}

impl PacketIn {
    pub(crate) fn parse(r: &mut Reader<'_>) -> Result<PacketIn> {
        let buffer_id = r.u32()?;
        let total_len = r.u16()?;
        let reason = r.u8()?.into();
        let table_id = r.u8()?;
        let cookie = r.u64()?;
        let m = Match::parse(r)?;
        r.skip(2)?;
        Ok(PacketIn {
            buffer_id,
            total_len,
            reason,
            table_id,
            cookie,
            r#match: m,
            data: r.take_rest().to_vec(),
        })
    }

    pub(crate) fn emit(&self, buf: &mut Vec<u8>) -> Result<()> {
        buf.put_u32(self.buffer_id);
        buf.put_u16(self.total_len);
        buf.put_u8(self.reason.into());
        buf.put_u8(self.table_id);
        buf.put_u64(self.cookie);
        self.r#match.emit(buf)?;
        buf.put_zeros(2);
        buf.extend_from_slice(&self.data);
        Ok(())
    }
}

/// PACKET_OUT: the controller sends a packet through the switch's actions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PacketOut {
    pub buffer_id: u32,
    pub in_port: u32,
    pub actions: Vec<Action>,
    pub data: Vec<u8>,
}

impl PacketOut {
    pub(crate) fn parse(r: &mut Reader<'_>) -> Result<PacketOut> {
        let buffer_id = r.u32()?;
        let in_port = r.u32()?;
        let actions_len = r.u16()? as usize;
        r.skip(6)?;
        if !actions_len.is_multiple_of(8) {
            return Err(Error::BadLength {
                what: "packet-out actions",
                len: actions_len,
            });
        }
        let mut a = r.sub(actions_len, "packet-out actions")?;
        let actions = Action::parse_list(&mut a)?;
        Ok(PacketOut {
            buffer_id,
            in_port,
            actions,
            data: r.take_rest().to_vec(),
        })
    }

    pub(crate) fn emit(&self, buf: &mut Vec<u8>) -> Result<()> {
        buf.put_u32(self.buffer_id);
        buf.put_u32(self.in_port);
        let len_at = buf.len();
        buf.put_u16(0);
        buf.put_zeros(6);
        let start = buf.len();
        Action::emit_list(&self.actions, buf)?;
        let len = buf.len() - start;
        let len = u16::try_from(len).map_err(|_| Error::TooLong(len))?;
        buf.patch_u16(len_at, len);
        buf.extend_from_slice(&self.data);
        Ok(())
    }
}
