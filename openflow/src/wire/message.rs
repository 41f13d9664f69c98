//! The `Message` enum: one variant per OpenFlow 1.3 message Weft speaks, and the dispatch between
//! the header's type byte and the typed bodies.

use super::bundle::{ONF_EXPERIMENTER_ID, ONFT_BUNDLE_ADD_MESSAGE, ONFT_BUNDLE_CONTROL};
use super::{
    BundleAdd, BundleControl, Error, ErrorMsg, Experimenter, FeaturesReply, FlowMod, FlowRemoved,
    GroupMod, HEADER_LEN, Header, Hello, MAX_MESSAGE_LEN, MeterMod, MultipartReply,
    MultipartRequest, OFP_VERSION_1_3, PacketIn, PacketOut, PortMod, PortStatus, Put, Reader,
    Result, Role, SwitchConfig, TableMod,
};

/// `ofp_type` values.
pub struct MsgType;

impl MsgType {
    pub const HELLO: u8 = 0;
    pub const ERROR: u8 = 1;
    pub const ECHO_REQUEST: u8 = 2;
    pub const ECHO_REPLY: u8 = 3;
    pub const EXPERIMENTER: u8 = 4;
    pub const FEATURES_REQUEST: u8 = 5;
    pub const FEATURES_REPLY: u8 = 6;
    pub const GET_CONFIG_REQUEST: u8 = 7;
    pub const GET_CONFIG_REPLY: u8 = 8;
    pub const SET_CONFIG: u8 = 9;
    pub const PACKET_IN: u8 = 10;
    pub const FLOW_REMOVED: u8 = 11;
    pub const PORT_STATUS: u8 = 12;
    pub const PACKET_OUT: u8 = 13;
    pub const FLOW_MOD: u8 = 14;
    pub const GROUP_MOD: u8 = 15;
    pub const PORT_MOD: u8 = 16;
    pub const TABLE_MOD: u8 = 17;
    pub const MULTIPART_REQUEST: u8 = 18;
    pub const MULTIPART_REPLY: u8 = 19;
    pub const BARRIER_REQUEST: u8 = 20;
    pub const BARRIER_REPLY: u8 = 21;
    pub const ROLE_REQUEST: u8 = 24;
    pub const ROLE_REPLY: u8 = 25;
    pub const METER_MOD: u8 = 29;
}

/// One OpenFlow message, without its xid (which travels beside it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Hello(Hello),
    Error(ErrorMsg),
    EchoRequest(Vec<u8>),
    EchoReply(Vec<u8>),
    Experimenter(Experimenter),
    FeaturesRequest,
    FeaturesReply(FeaturesReply),
    GetConfigRequest,
    GetConfigReply(SwitchConfig),
    SetConfig(SwitchConfig),
    PacketIn(PacketIn),
    FlowRemoved(FlowRemoved),
    PortStatus(PortStatus),
    PacketOut(PacketOut),
    FlowMod(FlowMod),
    GroupMod(GroupMod),
    PortMod(PortMod),
    TableMod(TableMod),
    MultipartRequest(MultipartRequest),
    MultipartReply(MultipartReply),
    BarrierRequest,
    BarrierReply,
    RoleRequest(Role),
    RoleReply(Role),
    MeterMod(MeterMod),
    /// ONF extension 230 BUNDLE_CONTROL (an EXPERIMENTER message on the wire).
    BundleControl(BundleControl),
    /// ONF extension 230 BUNDLE_ADD_MESSAGE (an EXPERIMENTER message on the wire).
    BundleAdd(BundleAdd),
}

impl Message {
    /// Parses one complete message: `buf` must hold exactly the bytes the header's length names.
    ///
    /// HELLO and ERROR are accepted in any version (they carry version negotiation and its
    /// failure); everything else must be OpenFlow 1.3.
    pub fn parse(buf: &[u8]) -> Result<(Header, Message)> {
        let header = Header::parse(buf)?;
        if header.length as usize != buf.len() {
            return Err(Error::BadLength {
                what: "message (header length differs from buffer)",
                len: header.length as usize,
            });
        }
        if header.version != OFP_VERSION_1_3
            && header.msg_type != MsgType::HELLO
            && header.msg_type != MsgType::ERROR
        {
            return Err(Error::BadVersion(header.version));
        }
        let mut r = Reader::new(&buf[HEADER_LEN..], "message body");
        let msg = Message::parse_body(header, &mut r)?;
        if !r.is_empty() {
            return Err(Error::BadLength {
                what: "message (trailing bytes)",
                len: header.length as usize,
            });
        }
        Ok((header, msg))
    }

    fn parse_body(h: Header, r: &mut Reader<'_>) -> Result<Message> {
        Ok(match h.msg_type {
            MsgType::HELLO => Message::Hello(Hello::parse(h.version, r)?),
            MsgType::ERROR => Message::Error(ErrorMsg::parse(r)?),
            MsgType::ECHO_REQUEST => Message::EchoRequest(r.take_rest().to_vec()),
            MsgType::ECHO_REPLY => Message::EchoReply(r.take_rest().to_vec()),
            MsgType::EXPERIMENTER => {
                let mut peek = r.clone();
                let experimenter = peek.u32()?;
                let exp_type = peek.u32()?;
                if experimenter == ONF_EXPERIMENTER_ID && exp_type == ONFT_BUNDLE_CONTROL {
                    *r = peek;
                    Message::BundleControl(BundleControl::parse(r)?)
                } else if experimenter == ONF_EXPERIMENTER_ID && exp_type == ONFT_BUNDLE_ADD_MESSAGE
                {
                    *r = peek;
                    Message::BundleAdd(BundleAdd::parse(r)?)
                } else {
                    Message::Experimenter(Experimenter::parse(r)?)
                }
            }
            MsgType::FEATURES_REQUEST => Message::FeaturesRequest,
            MsgType::FEATURES_REPLY => Message::FeaturesReply(FeaturesReply::parse(r)?),
            MsgType::GET_CONFIG_REQUEST => Message::GetConfigRequest,
            MsgType::GET_CONFIG_REPLY => Message::GetConfigReply(SwitchConfig::parse(r)?),
            MsgType::SET_CONFIG => Message::SetConfig(SwitchConfig::parse(r)?),
            MsgType::PACKET_IN => Message::PacketIn(PacketIn::parse(r)?),
            MsgType::FLOW_REMOVED => Message::FlowRemoved(FlowRemoved::parse(r)?),
            MsgType::PORT_STATUS => Message::PortStatus(PortStatus::parse(r)?),
            MsgType::PACKET_OUT => Message::PacketOut(PacketOut::parse(r)?),
            MsgType::FLOW_MOD => Message::FlowMod(FlowMod::parse(r)?),
            MsgType::GROUP_MOD => Message::GroupMod(GroupMod::parse(r)?),
            MsgType::PORT_MOD => Message::PortMod(PortMod::parse(r)?),
            MsgType::TABLE_MOD => Message::TableMod(TableMod::parse(r)?),
            MsgType::MULTIPART_REQUEST => Message::MultipartRequest(MultipartRequest::parse(r)?),
            MsgType::MULTIPART_REPLY => Message::MultipartReply(MultipartReply::parse(r)?),
            MsgType::BARRIER_REQUEST => Message::BarrierRequest,
            MsgType::BARRIER_REPLY => Message::BarrierReply,
            MsgType::ROLE_REQUEST => Message::RoleRequest(Role::parse(r)?),
            MsgType::ROLE_REPLY => Message::RoleReply(Role::parse(r)?),
            MsgType::METER_MOD => Message::MeterMod(MeterMod::parse(r)?),
            other => {
                return Err(Error::Unknown {
                    what: "message type",
                    value: other as u32,
                });
            }
        })
    }

    /// The header type byte of this message.
    pub fn msg_type(&self) -> u8 {
        match self {
            Message::Hello(_) => MsgType::HELLO,
            Message::Error(_) => MsgType::ERROR,
            Message::EchoRequest(_) => MsgType::ECHO_REQUEST,
            Message::EchoReply(_) => MsgType::ECHO_REPLY,
            Message::Experimenter(_) | Message::BundleControl(_) | Message::BundleAdd(_) => {
                MsgType::EXPERIMENTER
            }
            Message::FeaturesRequest => MsgType::FEATURES_REQUEST,
            Message::FeaturesReply(_) => MsgType::FEATURES_REPLY,
            Message::GetConfigRequest => MsgType::GET_CONFIG_REQUEST,
            Message::GetConfigReply(_) => MsgType::GET_CONFIG_REPLY,
            Message::SetConfig(_) => MsgType::SET_CONFIG,
            Message::PacketIn(_) => MsgType::PACKET_IN,
            Message::FlowRemoved(_) => MsgType::FLOW_REMOVED,
            Message::PortStatus(_) => MsgType::PORT_STATUS,
            Message::PacketOut(_) => MsgType::PACKET_OUT,
            Message::FlowMod(_) => MsgType::FLOW_MOD,
            Message::GroupMod(_) => MsgType::GROUP_MOD,
            Message::PortMod(_) => MsgType::PORT_MOD,
            Message::TableMod(_) => MsgType::TABLE_MOD,
            Message::MultipartRequest(_) => MsgType::MULTIPART_REQUEST,
            Message::MultipartReply(_) => MsgType::MULTIPART_REPLY,
            Message::BarrierRequest => MsgType::BARRIER_REQUEST,
            Message::BarrierReply => MsgType::BARRIER_REPLY,
            Message::RoleRequest(_) => MsgType::ROLE_REQUEST,
            Message::RoleReply(_) => MsgType::ROLE_REPLY,
            Message::MeterMod(_) => MsgType::METER_MOD,
        }
    }

    /// Appends the whole message (header included) to `buf`. On error `buf` is left as it was.
    pub fn emit(&self, xid: u32, buf: &mut Vec<u8>) -> Result<()> {
        let start = buf.len();
        let res = self.emit_unchecked(xid, buf);
        if res.is_err() {
            buf.truncate(start);
        }
        res
    }

    fn emit_unchecked(&self, xid: u32, buf: &mut Vec<u8>) -> Result<()> {
        let start = buf.len();
        let version = match self {
            Message::Hello(h) => h.version,
            _ => OFP_VERSION_1_3,
        };
        Header {
            version,
            msg_type: self.msg_type(),
            length: 0,
            xid,
        }
        .emit(buf);
        match self {
            Message::Hello(h) => h.emit(buf)?,
            Message::Error(e) => e.emit(buf),
            Message::EchoRequest(d) | Message::EchoReply(d) => buf.extend_from_slice(d),
            Message::Experimenter(e) => {
                // These would parse back as bundle messages, so they have only that form.
                if e.experimenter == ONF_EXPERIMENTER_ID
                    && (e.exp_type == ONFT_BUNDLE_CONTROL || e.exp_type == ONFT_BUNDLE_ADD_MESSAGE)
                {
                    return Err(Error::Malformed(
                        "ONF bundle experimenter type outside Message::BundleControl/BundleAdd",
                    ));
                }
                e.emit(buf)
            }
            Message::FeaturesRequest
            | Message::GetConfigRequest
            | Message::BarrierRequest
            | Message::BarrierReply => {}
            Message::FeaturesReply(f) => f.emit(buf),
            Message::GetConfigReply(c) | Message::SetConfig(c) => c.emit(buf),
            Message::PacketIn(p) => p.emit(buf)?,
            Message::FlowRemoved(f) => f.emit(buf)?,
            Message::PortStatus(p) => p.emit(buf),
            Message::PacketOut(p) => p.emit(buf)?,
            Message::FlowMod(f) => f.emit(buf)?,
            Message::GroupMod(g) => g.emit(buf)?,
            Message::PortMod(p) => p.emit(buf),
            Message::TableMod(t) => t.emit(buf),
            Message::MultipartRequest(m) => m.emit(buf)?,
            Message::MultipartReply(m) => m.emit(buf)?,
            Message::RoleRequest(r) | Message::RoleReply(r) => r.emit(buf),
            Message::MeterMod(m) => m.emit(buf)?,
            Message::BundleControl(b) => {
                buf.put_u32(ONF_EXPERIMENTER_ID);
                buf.put_u32(ONFT_BUNDLE_CONTROL);
                b.emit(buf)?;
            }
            Message::BundleAdd(b) => {
                buf.put_u32(ONF_EXPERIMENTER_ID);
                buf.put_u32(ONFT_BUNDLE_ADD_MESSAGE);
                b.emit(xid, buf)?;
            }
        }
        let len = buf.len() - start;
        if len > MAX_MESSAGE_LEN {
            return Err(Error::TooLong(len));
        }
        super::patch_len(buf, start, 2)
    }

    /// Convenience: the message as a fresh byte vector.
    pub fn to_bytes(&self, xid: u32) -> Result<Vec<u8>> {
        let mut buf = Vec::with_capacity(64);
        self.emit(xid, &mut buf)?;
        Ok(buf)
    }
}
