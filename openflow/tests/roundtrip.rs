//! Round-trip properties of the whole-message codec, over the strategies of
//! `weft_openflow::wire::strategies` (every message kind, body, OXM field, action and
//! instruction): `parse(emit(x)) == x`, the header length equals the bytes, `emit(parse(b)) == b`,
//! and bad input (truncations, random bytes, mutated messages) is refused without a panic.

use std::collections::BTreeSet;

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};
use weft_openflow::wire::strategies::{self as st};
use weft_openflow::wire::{
    Action, Header, Instruction, Message, MultipartReplyBody, MultipartRequestBody, OxmField,
};

/// Emits `m`, checks the header, parses it back and checks both directions of the round trip.
fn check_round_trip(m: &Message, xid: u32) -> Result<Vec<u8>, TestCaseError> {
    let bytes = m
        .to_bytes(xid)
        .map_err(|e| TestCaseError::fail(format!("emit failed: {e}")))?;
    let header = Header::parse(&bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(header.length as usize, bytes.len(), "length field");
    prop_assert_eq!(header.xid, xid);
    prop_assert_eq!(header.msg_type, m.msg_type());
    let (h2, back) = Message::parse(&bytes).map_err(|e| {
        TestCaseError::fail(format!("parse of our own bytes failed: {e}\n{bytes:02x?}"))
    })?;
    prop_assert_eq!(h2, header);
    prop_assert_eq!(&back, m);
    let again = back
        .to_bytes(xid)
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(&again, &bytes, "emit(parse(bytes)) != bytes");
    Ok(bytes)
}

/// What a successful parse of untrusted bytes must satisfy: it re-emits, and the re-emitted
/// bytes parse to the same message (the fuzz oracle).
fn check_stable(m: &Message, xid: u32) -> Result<(), TestCaseError> {
    let bytes = m
        .to_bytes(xid)
        .map_err(|e| TestCaseError::fail(format!("parsed message does not re-emit: {e}")))?;
    let (_, back) = Message::parse(&bytes)
        .map_err(|e| TestCaseError::fail(format!("re-emitted bytes do not parse: {e}")))?;
    prop_assert_eq!(&back, m);
    Ok(())
}

fn set_len(bytes: &mut [u8]) {
    let len = bytes.len() as u16;
    bytes[2..4].copy_from_slice(&len.to_be_bytes());
}

proptest! {
    #![proptest_config(Config { cases: 2048, ..Config::default() })]

    #[test]
    fn every_message_round_trips(m in st::message(), xid in any::<u32>()) {
        check_round_trip(&m, xid)?;
    }
}

proptest! {
    #![proptest_config(Config { cases: 256, ..Config::default() })]

    // Focused runs on the large bodies, so each gets many cases of its own.
    #[test]
    fn flow_mods_round_trip(f in st::flow_mod(), xid in any::<u32>()) {
        check_round_trip(&Message::FlowMod(f), xid)?;
    }

    #[test]
    fn group_mods_round_trip(g in st::group_mod(), xid in any::<u32>()) {
        check_round_trip(&Message::GroupMod(g), xid)?;
    }

    #[test]
    fn multipart_requests_round_trip(m in st::multipart_request(), xid in any::<u32>()) {
        check_round_trip(&Message::MultipartRequest(m), xid)?;
    }

    #[test]
    fn multipart_replies_round_trip(m in st::multipart_reply(), xid in any::<u32>()) {
        check_round_trip(&Message::MultipartReply(m), xid)?;
    }

    #[test]
    fn bundles_round_trip(c in st::bundle_control(), a in st::bundle_add(), xid in any::<u32>()) {
        check_round_trip(&Message::BundleControl(c), xid)?;
        check_round_trip(&Message::BundleAdd(a), xid)?;
    }

    #[test]
    fn errors_round_trip(e in st::error_msg(), xid in any::<u32>()) {
        check_round_trip(&Message::Error(e), xid)?;
    }

    #[test]
    fn packet_in_and_out_round_trip(i in st::packet_in(), o in st::packet_out()) {
        check_round_trip(&Message::PacketIn(i), 1)?;
        check_round_trip(&Message::PacketOut(o), 2)?;
    }

    /// A cut-off message is refused as it stands; with its length field patched to the cut it
    /// parses only to something else (or the cut removed nothing but padding), and never panics.
    #[test]
    fn truncations_are_refused(m in st::message(), xid in any::<u32>()) {
        let bytes = check_round_trip(&m, xid)?;
        for n in 0..bytes.len() {
            prop_assert!(Message::parse(&bytes[..n]).is_err(), "prefix of {} parsed", n);
            if n < 8 {
                continue;
            }
            let mut cut = bytes[..n].to_vec();
            set_len(&mut cut);
            if let Ok((_, back)) = Message::parse(&cut) {
                check_stable(&back, xid)?;
                if back == m {
                    prop_assert!(
                        bytes[n..].iter().all(|&b| b == 0),
                        "cut at {} lost non-padding bytes yet parsed to the same message", n
                    );
                }
            }
        }
    }

    /// Valid messages with a few bytes changed: no panic; whatever parses is stable.
    #[test]
    fn mutated_messages_never_panic(
        m in st::message(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        fix_len in any::<bool>(),
    ) {
        let mut bytes = check_round_trip(&m, 7)?;
        for (at, v) in edits {
            let i = at.index(bytes.len());
            bytes[i] = v;
        }
        if fix_len {
            set_len(&mut bytes);
        }
        if let Ok((_, back)) = Message::parse(&bytes) {
            check_stable(&back, 7)?;
        }
    }

    /// Random bytes behind a plausible header (1.3, any type, correct length): no panic, and
    /// what parses is stable.
    #[test]
    fn random_bodies_never_panic(
        typ in 0u8..32,
        body in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        let mut bytes = vec![4, typ, 0, 0, 0, 0, 0, 9];
        bytes.extend_from_slice(&body);
        set_len(&mut bytes);
        if let Ok((_, back)) = Message::parse(&bytes) {
            check_stable(&back, 9)?;
        }
    }

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        if let Ok((_, back)) = Message::parse(&bytes) {
            check_stable(&back, 9)?;
        }
    }
}

/// Names of what a message contains, to check that the strategies reach every kind.
fn kinds(m: &Message, out: &mut BTreeSet<String>) {
    let mut add = |s: String| {
        out.insert(s);
    };
    let name = format!("{m:?}");
    add(format!(
        "msg:{}",
        name.split(['(', ' ', '{']).next().unwrap_or("")
    ));
    let mut actions: Vec<&Action> = Vec::new();
    let mut matches: Vec<&OxmField> = Vec::new();
    let mut insts: Vec<&Instruction> = Vec::new();
    match m {
        Message::FlowMod(f) => {
            matches.extend(&f.r#match.fields);
            insts.extend(&f.instructions);
        }
        Message::PacketOut(p) => actions.extend(&p.actions),
        Message::GroupMod(g) => g.buckets.iter().for_each(|b| actions.extend(&b.actions)),
        Message::MultipartRequest(r) => add(format!(
            "req:{}",
            match &r.body {
                MultipartRequestBody::Desc => "desc",
                MultipartRequestBody::Flow(_) => "flow",
                MultipartRequestBody::Aggregate(_) => "aggregate",
                MultipartRequestBody::Table => "table",
                MultipartRequestBody::PortStats { .. } => "port_stats",
                MultipartRequestBody::Group { .. } => "group",
                MultipartRequestBody::GroupDesc => "group_desc",
                MultipartRequestBody::PortDesc => "port_desc",
                MultipartRequestBody::Other { .. } => "other",
            }
        )),
        Message::MultipartReply(r) => {
            add(format!("rep:{}", r.body.typ()));
            if r.more() {
                add("rep:more".into());
            }
            if let MultipartReplyBody::Flow(v) = &r.body {
                v.iter().for_each(|s| insts.extend(&s.instructions));
            }
        }
        Message::BundleAdd(a) => kinds(&a.message, out),
        _ => {}
    }
    for i in insts {
        let n = format!("{i:?}");
        out.insert(format!(
            "inst:{}",
            n.split(['(', ' ', '{']).next().unwrap_or("")
        ));
        if let Instruction::WriteActions(a) | Instruction::ApplyActions(a) = i {
            actions.extend(a);
        }
    }
    for a in actions {
        let n = format!("{a:?}");
        out.insert(format!(
            "act:{}",
            n.split(['(', ' ', '{']).next().unwrap_or("")
        ));
        if let Action::SetField(f) = a {
            matches.push(f);
        }
    }
    for f in matches {
        let n = format!("{f:?}");
        out.insert(format!(
            "oxm:{}",
            n.split(['(', ' ', '{']).next().unwrap_or("")
        ));
    }
}

/// The strategies are only as good as what they reach: 3000 draws must contain every message
/// variant, every multipart kind (and the MORE flag), every instruction, action and OXM field.
#[test]
fn strategies_reach_every_kind() {
    let mut runner = TestRunner::deterministic();
    let strategy = st::message();
    let mut seen = BTreeSet::new();
    for _ in 0..3000 {
        let m = strategy.new_tree(&mut runner).unwrap().current();
        kinds(&m, &mut seen);
    }
    let msgs = [
        "Hello",
        "Error",
        "EchoRequest",
        "EchoReply",
        "Experimenter",
        "FeaturesRequest",
        "FeaturesReply",
        "GetConfigRequest",
        "GetConfigReply",
        "SetConfig",
        "PacketIn",
        "FlowRemoved",
        "PortStatus",
        "PacketOut",
        "FlowMod",
        "GroupMod",
        "PortMod",
        "TableMod",
        "MultipartRequest",
        "MultipartReply",
        "BarrierRequest",
        "BarrierReply",
        "RoleRequest",
        "RoleReply",
        "MeterMod",
        "BundleControl",
        "BundleAdd",
    ];
    let reqs = [
        "desc",
        "flow",
        "aggregate",
        "table",
        "port_stats",
        "group",
        "group_desc",
        "port_desc",
        "other",
    ];
    let reps = ["0", "1", "2", "3", "4", "6", "7", "13", "more"];
    let insts = [
        "GotoTable",
        "WriteMetadata",
        "WriteActions",
        "ApplyActions",
        "ClearActions",
        "Meter",
        "Experimenter",
        "Unknown",
    ];
    let acts = [
        "Output",
        "Group",
        "PushVlan",
        "PopVlan",
        "SetField",
        "SetQueue",
        "DecNwTtl",
        "Experimenter",
        "Unknown",
    ];
    let oxms = [
        "InPort",
        "Metadata",
        "EthDst",
        "EthSrc",
        "EthType",
        "VlanVid",
        "VlanPcp",
        "IpProto",
        "Ipv4Src",
        "Ipv4Dst",
        "TcpSrc",
        "TcpDst",
        "UdpSrc",
        "UdpDst",
        "Icmpv4Type",
        "Icmpv4Code",
        "ArpOp",
        "ArpSpa",
        "ArpTpa",
        "ArpSha",
        "ArpTha",
        "Ipv6Src",
        "Ipv6Dst",
        "Icmpv6Type",
        "Icmpv6Code",
        "Ipv6NdTarget",
        "TunnelId",
        "Opaque",
    ];
    let want = msgs
        .iter()
        .map(|k| format!("msg:{k}"))
        .chain(reqs.iter().map(|k| format!("req:{k}")))
        .chain(reps.iter().map(|k| format!("rep:{k}")))
        .chain(insts.iter().map(|k| format!("inst:{k}")))
        .chain(acts.iter().map(|k| format!("act:{k}")))
        .chain(oxms.iter().map(|k| format!("oxm:{k}")));
    let missing: Vec<String> = want.filter(|k| !seen.contains(k)).collect();
    assert!(missing.is_empty(), "strategies never produced: {missing:?}");
}

/// The oracle can fail: a basic-class OXM kept opaque under a field number that has a typed
/// variant parses back typed, so it is not canonical and the round trip must say so.
#[test]
fn round_trip_check_catches_non_canonical_values() {
    use weft_openflow::wire::{FlowMod, Match, OxmOpaque};
    let opaque_in_port = OxmField::Opaque(OxmOpaque {
        class: 0x8000,
        field: 0,
        has_mask: false,
        payload: vec![0, 0, 0, 3],
    });
    let m = Message::FlowMod(FlowMod::add(0, 1, Match::new(vec![opaque_in_port]), vec![]));
    assert!(check_round_trip(&m, 1).is_err());
    let typed = Message::FlowMod(FlowMod::add(
        0,
        1,
        Match::new(vec![OxmField::InPort(3)]),
        vec![],
    ));
    assert!(check_round_trip(&typed, 1).is_ok());
}
