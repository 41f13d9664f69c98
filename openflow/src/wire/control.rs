//! Small controller/switch messages: HELLO, EXPERIMENTER, FEATURES, switch config, ROLE.

use super::{Error, Put, Reader, Result, pad8, wire_enum};

/// HELLO element carrying the bitmap of supported versions.
const HELLO_ELEM_VERSIONBITMAP: u16 = 1;

/// HELLO. Its header version is the highest version the sender speaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    pub version: u8,
    pub elements: Vec<HelloElement>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HelloElement {
    /// Bit `n` of word `n / 32` set = wire version `n` supported.
    VersionBitmap(Vec<u32>),
    Unknown {
        typ: u16,
        data: Vec<u8>,
    },
}

impl Hello {
    /// A HELLO announcing exactly `versions` (wire version bytes) in a bitmap.
    pub fn with_versions(versions: &[u8]) -> Hello {
        let max = versions.iter().copied().max().unwrap_or(0);
        let mut words = vec![0u32; max as usize / 32 + 1];
        for &v in versions {
            words[v as usize / 32] |= 1 << (v % 32);
        }
        Hello {
            version: max,
            elements: vec![HelloElement::VersionBitmap(words)],
        }
    }

    /// Whether the peer supports wire version `v`: by its bitmap when it sent one, else by the
    /// header version (OpenFlow's "the lower of the two header versions" rule).
    pub fn supports(&self, v: u8) -> bool {
        for e in &self.elements {
            if let HelloElement::VersionBitmap(words) = e {
                return words
                    .get(v as usize / 32)
                    .is_some_and(|w| w & (1 << (v % 32)) != 0);
            }
        }
        v <= self.version
    }

    pub(crate) fn parse(version: u8, r: &mut Reader<'_>) -> Result<Hello> {
        let mut elements = Vec::new();
        while !r.is_empty() {
            let typ = r.u16()?;
            let len = r.u16()? as usize;
            if len < 4 {
                return Err(Error::BadLength {
                    what: "hello element",
                    len,
                });
            }
            let mut b = r.sub(len - 4, "hello element")?;
            // Padding after the last element may be missing on some implementations.
            let pad = pad8(len).min(r.remaining());
            r.skip(pad)?;
            if typ == HELLO_ELEM_VERSIONBITMAP {
                if !(len - 4).is_multiple_of(4) {
                    return Err(Error::BadLength {
                        what: "hello version bitmap",
                        len,
                    });
                }
                let mut words = Vec::with_capacity((len - 4) / 4);
                while !b.is_empty() {
                    words.push(b.u32()?);
                }
                elements.push(HelloElement::VersionBitmap(words));
            } else {
                elements.push(HelloElement::Unknown {
                    typ,
                    data: b.take_rest().to_vec(),
                });
            }
        }
        Ok(Hello { version, elements })
    }

    pub(crate) fn emit(&self, buf: &mut Vec<u8>) -> Result<()> {
        for e in &self.elements {
            let start = buf.len();
            match e {
                HelloElement::VersionBitmap(words) => {
                    buf.put_u16(HELLO_ELEM_VERSIONBITMAP);
                    buf.put_u16(0);
                    words.iter().for_each(|w| buf.put_u32(*w));
                }
                HelloElement::Unknown { typ, data } => {
                    buf.put_u16(*typ);
                    buf.put_u16(0);
                    buf.extend_from_slice(data);
                }
            }
            let len = buf.len() - start;
            super::patch_len(buf, start, 2)?;
            buf.put_zeros(pad8(len));
        }
        Ok(())
    }
}

/// EXPERIMENTER message (other than the ONF bundle messages, which have their own types).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Experimenter {
    pub experimenter: u32,
    pub exp_type: u32,
    pub data: Vec<u8>,
}

impl Experimenter {
    pub(crate) fn parse(r: &mut Reader<'_>) -> Result<Experimenter> {
        Ok(Experimenter {
            experimenter: r.u32()?,
            exp_type: r.u32()?,
            data: r.take_rest().to_vec(),
        })
    }

    pub(crate) fn emit(&self, buf: &mut Vec<u8>) {
        buf.put_u32(self.experimenter);
        buf.put_u32(self.exp_type);
        buf.extend_from_slice(&self.data);
    }
}

/// FEATURES_REPLY: who the switch is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeaturesReply {
    pub datapath_id: u64,
    pub n_buffers: u32,
    pub n_tables: u8,
    pub auxiliary_id: u8,
    pub capabilities: u32,
    pub reserved: u32,
}

impl FeaturesReply {
    pub(crate) fn parse(r: &mut Reader<'_>) -> Result<FeaturesReply> {
        let datapath_id = r.u64()?;
        let n_buffers = r.u32()?;
        let n_tables = r.u8()?;
        let auxiliary_id = r.u8()?;
        r.skip(2)?;
        Ok(FeaturesReply {
            datapath_id,
            n_buffers,
            n_tables,
            auxiliary_id,
            capabilities: r.u32()?,
            reserved: r.u32()?,
        })
    }

    pub(crate) fn emit(&self, buf: &mut Vec<u8>) {
        buf.put_u64(self.datapath_id);
        buf.put_u32(self.n_buffers);
        buf.put_u8(self.n_tables);
        buf.put_u8(self.auxiliary_id);
        buf.put_zeros(2);
        buf.put_u32(self.capabilities);
        buf.put_u32(self.reserved);
    }
}

/// GET_CONFIG_REPLY / SET_CONFIG body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SwitchConfig {
    /// `OFPC_FRAG_*` handling of IP fragments.
    pub flags: u16,
    /// Bytes of a table-miss packet sent to the controller.
    pub miss_send_len: u16,
}

impl SwitchConfig {
    pub(crate) fn parse(r: &mut Reader<'_>) -> Result<SwitchConfig> {
        Ok(SwitchConfig {
            flags: r.u16()?,
            miss_send_len: r.u16()?,
        })
    }

    pub(crate) fn emit(&self, buf: &mut Vec<u8>) {
        buf.put_u16(self.flags);
        buf.put_u16(self.miss_send_len);
    }
}

wire_enum! {
    /// `ofp_controller_role`.
    pub enum ControllerRole: u32 {
        NoChange = 0,
        Equal = 1,
        Master = 2,
        Slave = 3,
    }
}

/// ROLE_REQUEST / ROLE_REPLY body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Role {
    pub role: ControllerRole,
    pub generation_id: u64,
}

impl Role {
    pub(crate) fn parse(r: &mut Reader<'_>) -> Result<Role> {
        let role = ControllerRole::from(r.u32()?);
        r.skip(4)?;
        Ok(Role {
            role,
            generation_id: r.u64()?,
        })
    }

    pub(crate) fn emit(&self, buf: &mut Vec<u8>) {
        buf.put_u32(self.role.into());
        buf.put_zeros(4);
        buf.put_u64(self.generation_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hello_bitmap_says_which_versions() {
        let h = Hello::with_versions(&[0x01, 0x04]);
        assert!(h.supports(0x04));
        assert!(h.supports(0x01));
        assert!(!h.supports(0x05));
        assert!(!h.supports(0x40));
        let mut buf = Vec::new();
        h.emit(&mut buf).unwrap();
        assert_eq!(buf, [0, 1, 0, 8, 0, 0, 0, 0x12]);
    }

    #[test]
    fn hello_without_bitmap_falls_back_to_header_version() {
        let h = Hello {
            version: 0x04,
            elements: vec![],
        };
        assert!(h.supports(0x04));
        assert!(h.supports(0x01));
        assert!(!h.supports(0x05));
    }
}
