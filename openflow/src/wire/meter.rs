//! METER_MOD: rate limiters that QoS will use.

use super::{Error, Put, Reader, Result, wire_enum};

wire_enum! {
    /// `ofp_meter_mod_command`.
    pub enum MeterModCommand: u16 {
        Add = 0,
        Modify = 1,
        Delete = 2,
    }
}

/// A meter band: what happens to packets above `rate`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MeterBand {
    Drop {
        rate: u32,
        burst_size: u32,
    },
    DscpRemark {
        rate: u32,
        burst_size: u32,
        prec_level: u8,
    },
    Experimenter {
        rate: u32,
        burst_size: u32,
        experimenter: u32,
        data: Vec<u8>,
    },
    Unknown {
        typ: u16,
        rate: u32,
        burst_size: u32,
        body: Vec<u8>,
    },
}

impl MeterBand {
    fn parse(r: &mut Reader<'_>) -> Result<MeterBand> {
        let typ = r.u16()?;
        let len = r.u16()? as usize;
        if len < 16 || !len.is_multiple_of(8) {
            return Err(Error::BadLength {
                what: "meter band",
                len,
            });
        }
        let mut b = r.sub(len - 4, "meter band")?;
        let rate = b.u32()?;
        let burst_size = b.u32()?;
        Ok(match typ {
            1 if len == 16 => MeterBand::Drop { rate, burst_size },
            2 if len == 16 => MeterBand::DscpRemark {
                rate,
                burst_size,
                prec_level: b.u8()?,
            },
            0xffff => MeterBand::Experimenter {
                rate,
                burst_size,
                experimenter: b.u32()?,
                data: b.take_rest().to_vec(),
            },
            1 | 2 => {
                return Err(Error::BadLength {
                    what: "meter band",
                    len,
                });
            }
            typ => MeterBand::Unknown {
                typ,
                rate,
                burst_size,
                body: b.take_rest().to_vec(),
            },
        })
    }

    fn emit(&self, buf: &mut Vec<u8>) -> Result<()> {
        let start = buf.len();
        match self {
            MeterBand::Drop { rate, burst_size } => {
                head(buf, 1, *rate, *burst_size);
                buf.put_zeros(4);
            }
            MeterBand::DscpRemark {
                rate,
                burst_size,
                prec_level,
            } => {
                head(buf, 2, *rate, *burst_size);
                buf.put_u8(*prec_level);
                buf.put_zeros(3);
            }
            MeterBand::Experimenter {
                rate,
                burst_size,
                experimenter,
                data,
            } => {
                head(buf, 0xffff, *rate, *burst_size);
                buf.put_u32(*experimenter);
                buf.extend_from_slice(data);
            }
            MeterBand::Unknown {
                typ,
                rate,
                burst_size,
                body,
            } => {
                head(buf, *typ, *rate, *burst_size);
                buf.extend_from_slice(body);
            }
        }
        let len = buf.len() - start;
        if !len.is_multiple_of(8) {
            return Err(Error::BadLength {
                what: "meter band",
                len,
            });
        }
        super::patch_len(buf, start, 2)
    }
}

fn head(buf: &mut Vec<u8>, typ: u16, rate: u32, burst: u32) {
    buf.put_u16(typ);
    buf.put_u16(0);
    buf.put_u32(rate);
    buf.put_u32(burst);
}

/// METER_MOD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeterMod {
    pub command: MeterModCommand,
    /// `OFPMF_*`: KBPS = 1, PKTPS = 2, BURST = 4, STATS = 8.
    pub flags: u16,
    pub meter_id: u32,
    pub bands: Vec<MeterBand>,
}

impl MeterMod {
    pub(crate) fn parse(r: &mut Reader<'_>) -> Result<MeterMod> {
        let command = r.u16()?.into();
        let flags = r.u16()?;
        let meter_id = r.u32()?;
        let mut bands = Vec::new();
        while !r.is_empty() {
            bands.push(MeterBand::parse(r)?);
        }
        Ok(MeterMod {
            command,
            flags,
            meter_id,
            bands,
        })
    }

    pub(crate) fn emit(&self, buf: &mut Vec<u8>) -> Result<()> {
        buf.put_u16(self.command.into());
        buf.put_u16(self.flags);
        buf.put_u32(self.meter_id);
        self.bands.iter().try_for_each(|b| b.emit(buf))
    }
}
