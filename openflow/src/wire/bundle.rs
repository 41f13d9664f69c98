//! Bundles: a batch of modifications the switch applies all at once or not at all.
//!
//! Open vSwitch 3.1 accepts bundles on a connection that negotiated OpenFlow 1.3 through the ONF
//! extension 230: EXPERIMENTER messages with experimenter id `0x4F4E4600` and `exp_type` 2300
//! (BUNDLE_CONTROL) or 2301 (BUNDLE_ADD_MESSAGE), whose bodies are those of OpenFlow 1.4's
//! `ofp_bundle_ctrl_msg` and `ofp_bundle_add_msg`. So Weft stays on 1.3 and needs no 1.4
//! negotiation. The inner message of an ADD must carry the xid of the outer one.

use super::{Error, HEADER_LEN, Header, Message, Put, Reader, Result, pad8, wire_enum};

/// ONF's experimenter id ("ONF\0").
pub const ONF_EXPERIMENTER_ID: u32 = 0x4f4e_4600;
pub const ONFT_BUNDLE_CONTROL: u32 = 2300;
pub const ONFT_BUNDLE_ADD_MESSAGE: u32 = 2301;

wire_enum! {
    /// `ofp_bundle_ctrl_type`.
    pub enum BundleCtrlType: u16 {
        OpenRequest = 0,
        OpenReply = 1,
        CloseRequest = 2,
        CloseReply = 3,
        CommitRequest = 4,
        CommitReply = 5,
        DiscardRequest = 6,
        DiscardReply = 7,
    }
}

/// `ofp_bundle_flags` bits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct BundleFlags(pub u16);

impl BundleFlags {
    pub const ATOMIC: u16 = 1;
    pub const ORDERED: u16 = 2;
}

/// A bundle property TLV, kept opaque.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleProperty {
    pub typ: u16,
    pub data: Vec<u8>,
}

fn parse_props(r: &mut Reader<'_>) -> Result<Vec<BundleProperty>> {
    let mut out = Vec::new();
    while !r.is_empty() {
        let typ = r.u16()?;
        let len = r.u16()? as usize;
        if len < 4 {
            return Err(Error::BadLength {
                what: "bundle property",
                len,
            });
        }
        let data = r.bytes(len - 4)?.to_vec();
        r.skip(pad8(len).min(r.remaining()))?;
        out.push(BundleProperty { typ, data });
    }
    Ok(out)
}

fn emit_props(props: &[BundleProperty], buf: &mut Vec<u8>) -> Result<()> {
    for p in props {
        let start = buf.len();
        buf.put_u16(p.typ);
        buf.put_u16(0);
        buf.extend_from_slice(&p.data);
        let len = buf.len() - start;
        super::patch_len(buf, start, 2)?;
        buf.put_zeros(pad8(len));
    }
    Ok(())
}

/// BUNDLE_CONTROL: open, close, commit or discard a bundle (requests and replies).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleControl {
    pub bundle_id: u32,
    pub ctrl_type: BundleCtrlType,
    pub flags: BundleFlags,
    pub properties: Vec<BundleProperty>,
}

impl BundleControl {
    pub fn new(bundle_id: u32, ctrl_type: BundleCtrlType, flags: u16) -> BundleControl {
        BundleControl {
            bundle_id,
            ctrl_type,
            flags: BundleFlags(flags),
            properties: Vec::new(),
        }
    }

    pub(crate) fn parse(r: &mut Reader<'_>) -> Result<BundleControl> {
        let bundle_id = r.u32()?;
        let ctrl_type = r.u16()?.into();
        let flags = BundleFlags(r.u16()?);
        Ok(BundleControl {
            bundle_id,
            ctrl_type,
            flags,
            properties: parse_props(r)?,
        })
    }

    pub(crate) fn emit(&self, buf: &mut Vec<u8>) -> Result<()> {
        buf.put_u32(self.bundle_id);
        buf.put_u16(self.ctrl_type.into());
        buf.put_u16(self.flags.0);
        emit_props(&self.properties, buf)
    }
}

/// BUNDLE_ADD_MESSAGE: one message (a FLOW_MOD, GROUP_MOD, ...) added to an open bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleAdd {
    pub bundle_id: u32,
    pub flags: BundleFlags,
    pub message: Box<Message>,
    pub properties: Vec<BundleProperty>,
}

impl BundleAdd {
    pub(crate) fn parse(r: &mut Reader<'_>) -> Result<BundleAdd> {
        let bundle_id = r.u32()?;
        r.skip(2)?;
        let flags = BundleFlags(r.u16()?);
        let inner = Header::parse(r.rest())?;
        let inner_bytes = r.bytes(inner.length as usize)?;
        // Refuse bundles inside bundles before parsing, so input cannot drive deep recursion.
        let mut peek = Reader::new(inner_bytes, "bundle inner message");
        peek.skip(HEADER_LEN)?;
        if inner.msg_type == super::message::MsgType::EXPERIMENTER
            && peek.u32().ok() == Some(ONF_EXPERIMENTER_ID)
        {
            return Err(Error::Malformed("bundle message nested in a bundle"));
        }
        let (_, message) = Message::parse(inner_bytes)?;
        let pad = pad8(inner.length as usize).min(r.remaining());
        r.skip(pad)?;
        Ok(BundleAdd {
            bundle_id,
            flags,
            message: Box::new(message),
            properties: parse_props(r)?,
        })
    }

    pub(crate) fn emit(&self, xid: u32, buf: &mut Vec<u8>) -> Result<()> {
        // `parse` refuses these (no nesting), so emitting them would make bytes we cannot read.
        let nested = match &*self.message {
            Message::BundleControl(_) | Message::BundleAdd(_) => true,
            Message::Experimenter(e) => e.experimenter == ONF_EXPERIMENTER_ID,
            _ => false,
        };
        if nested {
            return Err(Error::Malformed("bundle message nested in a bundle"));
        }
        buf.put_u32(self.bundle_id);
        buf.put_zeros(2);
        buf.put_u16(self.flags.0);
        let start = buf.len();
        self.message.emit(xid, buf)?;
        if !self.properties.is_empty() {
            let len = buf.len() - start;
            buf.put_zeros(pad8(len));
            emit_props(&self.properties, buf)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Experimenter;

    // Values with no canonical wire form are refused by emit: an EXPERIMENTER that would parse
    // back as a bundle message, and bundles (or ONF experimenters) inside BUNDLE_ADD, which parse
    // refuses.
    #[test]
    fn emit_refuses_what_parse_would_read_differently() {
        let onf_bundle = Experimenter {
            experimenter: ONF_EXPERIMENTER_ID,
            exp_type: ONFT_BUNDLE_CONTROL,
            data: vec![0; 8],
        };
        assert!(
            Message::Experimenter(onf_bundle.clone())
                .to_bytes(1)
                .is_err()
        );
        let other = Experimenter {
            exp_type: 7,
            ..onf_bundle
        };
        assert!(Message::Experimenter(other.clone()).to_bytes(1).is_ok());
        for inner in [
            Message::Experimenter(other),
            Message::BundleControl(BundleControl::new(1, BundleCtrlType::OpenRequest, 0)),
        ] {
            let add = BundleAdd {
                bundle_id: 1,
                flags: BundleFlags(0),
                message: Box::new(inner),
                properties: vec![],
            };
            let mut buf = vec![0xaa];
            assert!(Message::BundleAdd(add).emit(1, &mut buf).is_err());
            assert_eq!(buf, [0xaa], "a failed emit leaves the buffer as it was");
        }
        let ok = BundleAdd {
            bundle_id: 1,
            flags: BundleFlags(BundleFlags::ATOMIC),
            message: Box::new(Message::BarrierRequest),
            properties: vec![],
        };
        assert!(Message::BundleAdd(ok).to_bytes(1).is_ok());
    }
}
