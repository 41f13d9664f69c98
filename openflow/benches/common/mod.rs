//! The messages the benchmarks time, shared by `codec` (criterion) and `codec_rate` (the
//! figures `scripts/bench-openflow.sh` compares with os-ken).

use weft_openflow::Message;
use weft_openflow::wire::{
    FlowMod, FlowModFlags, FlowStats, Instruction, Match, MultipartReply, MultipartReplyBody,
    OxmField,
};

/// The FLOW_MOD of a typical Weft pipeline entry: match in_port, eth_src and metadata (masked),
/// then write_metadata and goto_table. Fields are in OXM field-number order (in_port = 0,
/// metadata = 2, eth_src = 4), the order os-ken serialises an `OFPMatch` in, so both encoders
/// produce the same bytes.
pub fn typical_flow_mod() -> FlowMod {
    let mut fm = FlowMod::add(
        0,
        100,
        Match::new(vec![
            OxmField::InPort(3),
            OxmField::Metadata {
                value: 0x0000_0001_0000_0000,
                mask: Some(0xffff_ffff_0000_0000),
            },
            OxmField::EthSrc {
                value: [0x02, 0, 0, 0, 0, 0x0a],
                mask: None,
            },
        ]),
        vec![
            Instruction::WriteMetadata {
                metadata: 0x2a,
                mask: 0xffff,
            },
            Instruction::GotoTable(1),
        ],
    );
    fm.cookie = 0x1234;
    fm
}

/// A FLOW multipart reply of `n` entries, each shaped like [`typical_flow_mod`].
#[allow(dead_code)] // used by `codec` only
pub fn flow_stats_reply(n: u32) -> Message {
    let entries = (0..n)
        .map(|i| {
            let fm = typical_flow_mod();
            FlowStats {
                table_id: (i % 8) as u8,
                duration_sec: i,
                duration_nsec: 1000 * i,
                priority: 100 + i as u16,
                idle_timeout: 0,
                hard_timeout: 0,
                flags: FlowModFlags(FlowModFlags::SEND_FLOW_REM),
                cookie: u64::from(i),
                packet_count: 10 * u64::from(i),
                byte_count: 1500 * u64::from(i),
                r#match: fm.r#match,
                instructions: fm.instructions,
            }
        })
        .collect();
    Message::MultipartReply(MultipartReply {
        flags: 0,
        body: MultipartReplyBody::Flow(entries),
    })
}
