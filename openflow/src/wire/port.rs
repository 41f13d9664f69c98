//! Port description, PORT_STATUS, PORT_MOD and port statistics.

use super::{Error, Put, Reader, Result, emit_fixed_str, parse_fixed_str, wire_enum};

const PORT_NAME_LEN: usize = 16;

/// `ofp_port`: one port as the switch describes it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PortDesc {
    pub port_no: u32,
    pub hw_addr: [u8; 6],
    /// At most 15 bytes on the wire.
    pub name: String,
    /// `OFPPC_*` bits (e.g. PORT_DOWN = 1).
    pub config: u32,
    /// `OFPPS_*` bits (LINK_DOWN = 1, BLOCKED = 2, LIVE = 4).
    pub state: u32,
    pub curr: u32,
    pub advertised: u32,
    pub supported: u32,
    pub peer: u32,
    pub curr_speed: u32,
    pub max_speed: u32,
}

impl PortDesc {
    pub const LEN: usize = 64;
    pub const STATE_LINK_DOWN: u32 = 1;

    pub(crate) fn parse(r: &mut Reader<'_>) -> Result<PortDesc> {
        let port_no = r.u32()?;
        r.skip(4)?;
        let hw_addr = r.array()?;
        r.skip(2)?;
        let name = parse_fixed_str(r.bytes(PORT_NAME_LEN)?);
        Ok(PortDesc {
            port_no,
            hw_addr,
            name,
            config: r.u32()?,
            state: r.u32()?,
            curr: r.u32()?,
            advertised: r.u32()?,
            supported: r.u32()?,
            peer: r.u32()?,
            curr_speed: r.u32()?,
            max_speed: r.u32()?,
        })
    }

    pub(crate) fn emit(&self, buf: &mut Vec<u8>) {
        buf.put_u32(self.port_no);
        buf.put_zeros(4);
        buf.extend_from_slice(&self.hw_addr);
        buf.put_zeros(2);
        emit_fixed_str(buf, &self.name, PORT_NAME_LEN);
        for v in [
            self.config,
            self.state,
            self.curr,
            self.advertised,
            self.supported,
            self.peer,
            self.curr_speed,
            self.max_speed,
        ] {
            buf.put_u32(v);
        }
    }

    pub(crate) fn parse_list(r: &mut Reader<'_>) -> Result<Vec<PortDesc>> {
        if !r.remaining().is_multiple_of(Self::LEN) {
            return Err(Error::BadLength {
                what: "port description list",
                len: r.remaining(),
            });
        }
        let mut out = Vec::with_capacity(r.remaining() / Self::LEN);
        while !r.is_empty() {
            out.push(PortDesc::parse(r)?);
        }
        Ok(out)
    }
}

wire_enum! {
    /// `ofp_port_reason`.
    pub enum PortReason: u8 {
        Add = 0,
        Delete = 1,
        Modify = 2,
    }
}

/// PORT_STATUS: a port was added, removed or changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortStatus {
    pub reason: PortReason,
    pub desc: PortDesc,
}

impl PortStatus {
    pub(crate) fn parse(r: &mut Reader<'_>) -> Result<PortStatus> {
        let reason = r.u8()?.into();
        r.skip(7)?;
        Ok(PortStatus {
            reason,
            desc: PortDesc::parse(r)?,
        })
    }

    pub(crate) fn emit(&self, buf: &mut Vec<u8>) {
        buf.put_u8(self.reason.into());
        buf.put_zeros(7);
        self.desc.emit(buf);
    }
}

/// PORT_MOD: change a port's administrative configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortMod {
    pub port_no: u32,
    pub hw_addr: [u8; 6],
    pub config: u32,
    /// Which `config` bits to change.
    pub mask: u32,
    pub advertise: u32,
}

impl PortMod {
    pub(crate) fn parse(r: &mut Reader<'_>) -> Result<PortMod> {
        let port_no = r.u32()?;
        r.skip(4)?;
        let hw_addr = r.array()?;
        r.skip(2)?;
        let m = PortMod {
            port_no,
            hw_addr,
            config: r.u32()?,
            mask: r.u32()?,
            advertise: r.u32()?,
        };
        r.skip(4)?;
        Ok(m)
    }

    pub(crate) fn emit(&self, buf: &mut Vec<u8>) {
        buf.put_u32(self.port_no);
        buf.put_zeros(4);
        buf.extend_from_slice(&self.hw_addr);
        buf.put_zeros(2);
        buf.put_u32(self.config);
        buf.put_u32(self.mask);
        buf.put_u32(self.advertise);
        buf.put_zeros(4);
    }
}

/// One entry of a PORT_STATS multipart reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortStats {
    pub port_no: u32,
    pub rx_packets: u64,
    pub tx_packets: u64,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    pub rx_dropped: u64,
    pub tx_dropped: u64,
    pub rx_errors: u64,
    pub tx_errors: u64,
    pub rx_frame_err: u64,
    pub rx_over_err: u64,
    pub rx_crc_err: u64,
    pub collisions: u64,
    pub duration_sec: u32,
    pub duration_nsec: u32,
}

impl PortStats {
    pub const LEN: usize = 112;

    pub(crate) fn parse(r: &mut Reader<'_>) -> Result<PortStats> {
        let port_no = r.u32()?;
        r.skip(4)?;
        Ok(PortStats {
            port_no,
            rx_packets: r.u64()?,
            tx_packets: r.u64()?,
            rx_bytes: r.u64()?,
            tx_bytes: r.u64()?,
            rx_dropped: r.u64()?,
            tx_dropped: r.u64()?,
            rx_errors: r.u64()?,
            tx_errors: r.u64()?,
            rx_frame_err: r.u64()?,
            rx_over_err: r.u64()?,
            rx_crc_err: r.u64()?,
            collisions: r.u64()?,
            duration_sec: r.u32()?,
            duration_nsec: r.u32()?,
        })
    }

    pub(crate) fn emit(&self, buf: &mut Vec<u8>) {
        buf.put_u32(self.port_no);
        buf.put_zeros(4);
        for v in [
            self.rx_packets,
            self.tx_packets,
            self.rx_bytes,
            self.tx_bytes,
            self.rx_dropped,
            self.tx_dropped,
            self.rx_errors,
            self.tx_errors,
            self.rx_frame_err,
            self.rx_over_err,
            self.rx_crc_err,
            self.collisions,
        ] {
            buf.put_u64(v);
        }
        buf.put_u32(self.duration_sec);
        buf.put_u32(self.duration_nsec);
    }
}
