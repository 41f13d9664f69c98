//! proptest strategies for every [`Message`] and every body the codec knows (feature
//! `arbitrary`, or in this crate's tests).
//!
//! Every strategy yields only *canonical* values: those for which `parse(emit(x)) == x`. The few
//! representable values that are not canonical, and why they are left out here:
//!
//! * a `wire_enum` given as `Other(n)` where `n` has a name (it parses back as the name): every
//!   enum is built with `From<repr>` instead;
//! * `ErrorCode::Unknown` with a type that has a name or with `0xffff` (experimenter): built with
//!   [`ErrorCode::from_wire`];
//! * a masked OXM value with bits set where its mask is 0 (both parse and emit clear them, as
//!   switches refuse them with OFPBMC_BAD_WILDCARDS): the field strategy clears them;
//! * an [`OxmOpaque`](super::OxmOpaque) in the basic class with a field number that has a typed
//!   variant (it parses back typed): the field strategy keeps opaque TLVs in other classes;
//! * an `Other`/`Unknown` multipart type, action, instruction, meter band or HELLO element whose
//!   type number has a typed variant;
//! * fixed-size strings (port names, DESC) with a NUL or longer than the field minus its
//!   terminator (the wire form cannot carry them; `emit` cuts them);
//! * an `Experimenter` message or bundle inner message that the codec refuses to emit (see
//!   [`Message::emit`]).

use proptest::collection::vec;
use proptest::prelude::*;

pub use super::action::strategies::{action, actions, aligned_bytes};
pub use super::instruction::strategies::{instruction, instructions};
pub use super::oxm::strategies::{match_, opaque, oxm_field};

mod multipart;
pub use multipart::*;

use super::bundle::ONF_EXPERIMENTER_ID;
use super::{
    Bucket, BundleAdd, BundleControl, BundleCtrlType, BundleFlags, BundleProperty, ControllerRole,
    ErrorCode, ErrorMsg, Experimenter, FeaturesReply, FlowMod, FlowModCommand, FlowModFlags,
    FlowRemoved, FlowRemovedReason, GroupMod, GroupModCommand, GroupType, Hello, HelloElement,
    Message, MeterBand, MeterMod, MeterModCommand, PacketIn, PacketInReason, PacketOut, PortDesc,
    PortMod, PortReason, PortStatus, Role, SwitchConfig, TableMod,
};

/// Arbitrary bytes, at most `max` of them.
pub fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 0..=max)
}

/// A string that fits a NUL-terminated field of `size` bytes unchanged: no NUL, at most
/// `size - 1` bytes of UTF-8, cut at a character boundary.
pub fn fixed_str(size: usize) -> impl Strategy<Value = String> {
    let max_chars = size - 1;
    proptest::string::string_regex(&format!("[^\u{0}]{{0,{max_chars}}}"))
        .expect("valid regex")
        .prop_map(move |mut s| {
            let mut n = s.len().min(size - 1);
            while !s.is_char_boundary(n) {
                n -= 1;
            }
            s.truncate(n);
            s
        })
}

pub fn mac() -> impl Strategy<Value = [u8; 6]> {
    any::<[u8; 6]>()
}

/// Every error type with codes covering all named ones and some unnamed; experimenter errors;
/// unknown types.
pub fn error_code() -> impl Strategy<Value = ErrorCode> {
    prop_oneof![
        4 => (0u16..=13, 0u16..20).prop_map(|(t, c)| ErrorCode::from_wire(t, c)),
        1 => (0u16..=13, any::<u16>()).prop_map(|(t, c)| ErrorCode::from_wire(t, c)),
        1 => (any::<u16>(), any::<u32>())
            .prop_map(|(exp_type, experimenter)| ErrorCode::Experimenter { exp_type, experimenter }),
        1 => (14u16..0xffff, any::<u16>()).prop_map(|(t, c)| ErrorCode::from_wire(t, c)),
    ]
}

pub fn error_msg() -> impl Strategy<Value = ErrorMsg> {
    (error_code(), bytes(80)).prop_map(|(code, data)| ErrorMsg { code, data })
}

pub fn hello_element() -> impl Strategy<Value = HelloElement> {
    prop_oneof![
        3 => vec(any::<u32>(), 0..4).prop_map(HelloElement::VersionBitmap),
        1 => (any::<u16>().prop_filter("type 1 is the version bitmap", |t| *t != 1), bytes(16))
            .prop_map(|(typ, data)| HelloElement::Unknown { typ, data }),
    ]
}

/// HELLO of any version (HELLO is accepted in every version), with or without elements.
pub fn hello() -> impl Strategy<Value = Hello> {
    prop_oneof![
        vec(any::<u8>(), 1..6).prop_map(|v| Hello::with_versions(&v)),
        (any::<u8>(), vec(hello_element(), 0..4))
            .prop_map(|(version, elements)| Hello { version, elements }),
    ]
}

/// EXPERIMENTER other than the ONF bundle messages (those are their own variants).
pub fn experimenter() -> impl Strategy<Value = Experimenter> {
    (
        prop_oneof![Just(ONF_EXPERIMENTER_ID), Just(0x0000_2320), any::<u32>()],
        any::<u32>(),
        bytes(32),
    )
        .prop_filter(
            "ONF bundle types are BundleControl/BundleAdd",
            |(e, t, _)| *e != ONF_EXPERIMENTER_ID || !(2300..=2301).contains(t),
        )
        .prop_map(|(experimenter, exp_type, data)| Experimenter {
            experimenter,
            exp_type,
            data,
        })
}

pub fn features_reply() -> impl Strategy<Value = FeaturesReply> {
    (
        any::<u64>(),
        any::<u32>(),
        any::<u8>(),
        any::<u8>(),
        any::<u32>(),
        any::<u32>(),
    )
        .prop_map(
            |(datapath_id, n_buffers, n_tables, auxiliary_id, capabilities, reserved)| {
                FeaturesReply {
                    datapath_id,
                    n_buffers,
                    n_tables,
                    auxiliary_id,
                    capabilities,
                    reserved,
                }
            },
        )
}

pub fn switch_config() -> impl Strategy<Value = SwitchConfig> {
    (any::<u16>(), any::<u16>()).prop_map(|(flags, miss_send_len)| SwitchConfig {
        flags,
        miss_send_len,
    })
}

pub fn packet_in() -> impl Strategy<Value = PacketIn> {
    (
        any::<u32>(),
        any::<u16>(),
        (0u8..5).prop_map(PacketInReason::from),
        any::<u8>(),
        any::<u64>(),
        match_(),
        bytes(64),
    )
        .prop_map(
            |(buffer_id, total_len, reason, table_id, cookie, m, data)| PacketIn {
                buffer_id,
                total_len,
                reason,
                table_id,
                cookie,
                r#match: m,
                data,
            },
        )
}

pub fn packet_out() -> impl Strategy<Value = PacketOut> {
    (any::<u32>(), any::<u32>(), actions(), bytes(64)).prop_map(
        |(buffer_id, in_port, actions, data)| PacketOut {
            buffer_id,
            in_port,
            actions,
            data,
        },
    )
}

pub fn flow_mod() -> impl Strategy<Value = FlowMod> {
    (
        (any::<u64>(), any::<u64>(), any::<u8>()),
        (0u8..7).prop_map(FlowModCommand::from),
        (any::<u16>(), any::<u16>(), any::<u16>()),
        (any::<u32>(), any::<u32>(), any::<u32>()),
        any::<u16>().prop_map(FlowModFlags),
        match_(),
        instructions(),
    )
        .prop_map(
            |(
                (cookie, cookie_mask, table_id),
                command,
                (idle_timeout, hard_timeout, priority),
                (buffer_id, out_port, out_group),
                flags,
                m,
                instructions,
            )| FlowMod {
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
            },
        )
}

pub fn flow_removed() -> impl Strategy<Value = FlowRemoved> {
    (
        (
            any::<u64>(),
            any::<u16>(),
            (0u8..6).prop_map(FlowRemovedReason::from),
        ),
        (any::<u8>(), any::<u32>(), any::<u32>()),
        (any::<u16>(), any::<u16>(), any::<u64>(), any::<u64>()),
        match_(),
    )
        .prop_map(
            |(
                (cookie, priority, reason),
                (table_id, duration_sec, duration_nsec),
                (idle_timeout, hard_timeout, packet_count, byte_count),
                m,
            )| FlowRemoved {
                cookie,
                priority,
                reason,
                table_id,
                duration_sec,
                duration_nsec,
                idle_timeout,
                hard_timeout,
                packet_count,
                byte_count,
                r#match: m,
            },
        )
}

pub fn port_desc() -> impl Strategy<Value = PortDesc> {
    ((any::<u32>(), mac(), fixed_str(16)), any::<[u32; 8]>()).prop_map(
        |((port_no, hw_addr, name), v)| PortDesc {
            port_no,
            hw_addr,
            name,
            config: v[0],
            state: v[1],
            curr: v[2],
            advertised: v[3],
            supported: v[4],
            peer: v[5],
            curr_speed: v[6],
            max_speed: v[7],
        },
    )
}

pub fn port_status() -> impl Strategy<Value = PortStatus> {
    ((0u8..5).prop_map(PortReason::from), port_desc())
        .prop_map(|(reason, desc)| PortStatus { reason, desc })
}

pub fn port_mod() -> impl Strategy<Value = PortMod> {
    (
        any::<u32>(),
        mac(),
        any::<u32>(),
        any::<u32>(),
        any::<u32>(),
    )
        .prop_map(|(port_no, hw_addr, config, mask, advertise)| PortMod {
            port_no,
            hw_addr,
            config,
            mask,
            advertise,
        })
}

pub fn table_mod() -> impl Strategy<Value = TableMod> {
    (any::<u8>(), any::<u32>()).prop_map(|(table_id, config)| TableMod { table_id, config })
}

pub fn bucket() -> impl Strategy<Value = Bucket> {
    (any::<u16>(), any::<u32>(), any::<u32>(), actions()).prop_map(
        |(weight, watch_port, watch_group, actions)| Bucket {
            weight,
            watch_port,
            watch_group,
            actions,
        },
    )
}

/// Every group type (and an unnamed one) and every command.
pub fn group_type() -> impl Strategy<Value = GroupType> {
    (0u8..6).prop_map(GroupType::from)
}

pub fn group_mod() -> impl Strategy<Value = GroupMod> {
    (
        (0u16..5).prop_map(GroupModCommand::from),
        group_type(),
        any::<u32>(),
        vec(bucket(), 0..4),
    )
        .prop_map(|(command, group_type, group_id, buckets)| GroupMod {
            command,
            group_type,
            group_id,
            buckets,
        })
}

pub fn meter_band() -> impl Strategy<Value = MeterBand> {
    prop_oneof![
        (any::<u32>(), any::<u32>())
            .prop_map(|(rate, burst_size)| MeterBand::Drop { rate, burst_size }),
        (any::<u32>(), any::<u32>(), any::<u8>()).prop_map(|(rate, burst_size, prec_level)| {
            MeterBand::DscpRemark {
                rate,
                burst_size,
                prec_level,
            }
        }),
        (
            any::<u32>(),
            any::<u32>(),
            any::<u32>(),
            aligned_bytes(0, 2)
        )
            .prop_map(
                |(rate, burst_size, experimenter, data)| MeterBand::Experimenter {
                    rate,
                    burst_size,
                    experimenter,
                    data,
                }
            ),
        (
            any::<u16>().prop_filter("typed bands", |t| ![1, 2, 0xffff].contains(t)),
            any::<u32>(),
            any::<u32>(),
            aligned_bytes(12, 2)
        )
            .prop_map(|(typ, rate, burst_size, body)| MeterBand::Unknown {
                typ,
                rate,
                burst_size,
                body,
            }),
    ]
}

pub fn meter_mod() -> impl Strategy<Value = MeterMod> {
    (
        (0u16..5).prop_map(MeterModCommand::from),
        any::<u16>(),
        any::<u32>(),
        vec(meter_band(), 0..4),
    )
        .prop_map(|(command, flags, meter_id, bands)| MeterMod {
            command,
            flags,
            meter_id,
            bands,
        })
}

pub fn role() -> impl Strategy<Value = Role> {
    (
        prop_oneof![4 => 0u32..4, 1 => any::<u32>()].prop_map(ControllerRole::from),
        any::<u64>(),
    )
        .prop_map(|(role, generation_id)| Role {
            role,
            generation_id,
        })
}

pub fn bundle_property() -> impl Strategy<Value = BundleProperty> {
    (any::<u16>(), bytes(12)).prop_map(|(typ, data)| BundleProperty { typ, data })
}

pub fn bundle_control() -> impl Strategy<Value = BundleControl> {
    (
        any::<u32>(),
        (0u16..10).prop_map(BundleCtrlType::from),
        any::<u16>().prop_map(BundleFlags),
        vec(bundle_property(), 0..3),
    )
        .prop_map(|(bundle_id, ctrl_type, flags, properties)| BundleControl {
            bundle_id,
            ctrl_type,
            flags,
            properties,
        })
}

/// A BUNDLE_ADD around any message that may travel in a bundle (no bundle message, no
/// experimenter message of the ONF id: the codec refuses those as inner messages).
pub fn bundle_add() -> impl Strategy<Value = BundleAdd> {
    (
        any::<u32>(),
        any::<u16>().prop_map(BundleFlags),
        plain_message().prop_filter(
            "ONF experimenter cannot be nested",
            |m| !matches!(m, Message::Experimenter(e) if e.experimenter == ONF_EXPERIMENTER_ID),
        ),
        vec(bundle_property(), 0..3),
    )
        .prop_map(|(bundle_id, flags, message, properties)| BundleAdd {
            bundle_id,
            flags,
            message: Box::new(message),
            properties,
        })
}

/// Every message except the two bundle messages.
pub fn plain_message() -> impl Strategy<Value = Message> {
    prop_oneof![
        hello().prop_map(Message::Hello),
        error_msg().prop_map(Message::Error),
        bytes(64).prop_map(Message::EchoRequest),
        bytes(64).prop_map(Message::EchoReply),
        experimenter().prop_map(Message::Experimenter),
        Just(Message::FeaturesRequest),
        features_reply().prop_map(Message::FeaturesReply),
        Just(Message::GetConfigRequest),
        switch_config().prop_map(Message::GetConfigReply),
        switch_config().prop_map(Message::SetConfig),
        packet_in().prop_map(Message::PacketIn),
        flow_removed().prop_map(Message::FlowRemoved),
        port_status().prop_map(Message::PortStatus),
        packet_out().prop_map(Message::PacketOut),
        flow_mod().prop_map(Message::FlowMod),
        group_mod().prop_map(Message::GroupMod),
        port_mod().prop_map(Message::PortMod),
        table_mod().prop_map(Message::TableMod),
        multipart_request().prop_map(Message::MultipartRequest),
        multipart_reply().prop_map(Message::MultipartReply),
        Just(Message::BarrierRequest),
        Just(Message::BarrierReply),
        role().prop_map(Message::RoleRequest),
        role().prop_map(Message::RoleReply),
        meter_mod().prop_map(Message::MeterMod),
    ]
}

/// Every message, bundles included.
pub fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        25 => plain_message(),
        1 => bundle_control().prop_map(Message::BundleControl),
        1 => bundle_add().prop_map(Message::BundleAdd),
    ]
}
