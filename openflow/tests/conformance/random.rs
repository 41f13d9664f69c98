//! Random replies through `ofp-print`: for the structural bodies OVS decodes without semantic
//! checks (port descriptions, flow/port statistics), random values must come out of OVS's
//! decoder as the same numbers and names our codec wrote.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use weft_openflow::wire::{
    Action, FlowModFlags, FlowStats, Instruction, Match, Message, MultipartReply,
    MultipartReplyBody as P, OxmField as F, PortDesc, PortStats,
};

use super::ofctl::Ofctl;

fn mac_text(m: &[u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// OVS's flow duration: seconds, and the nanoseconds as nine digits with trailing zeros cut
/// down to three.
fn duration_text(sec: u32, nsec: u32) -> String {
    let mut frac = format!("{nsec:09}");
    while frac.len() > 3 && frac.ends_with('0') {
        frac.pop();
    }
    format!("{sec}.{frac}s")
}

fn port_desc() -> impl Strategy<Value = PortDesc> {
    // Ordinary port numbers (OVS names the reserved ones) and names OVS prints verbatim.
    (1u32..0xff00, any::<[u8; 6]>(), "[a-z][a-z0-9-]{0,14}").prop_map(|(no, mac, name)| PortDesc {
        port_no: no,
        hw_addr: mac,
        name,
        config: 0,
        state: 0,
        curr: 0,
        advertised: 0,
        supported: 0,
        peer: 0,
        curr_speed: 0,
        max_speed: 0,
    })
}

fn flow_stats() -> impl Strategy<Value = FlowStats> {
    (
        (any::<u8>(), any::<u32>(), 1u32..1_000_000_000, 0u16..0x8000),
        (any::<u64>(), 0u64..u64::MAX, 0u64..u64::MAX),
        (1u32..0xff00, 1u32..0xff00),
    )
        .prop_map(
            |((table_id, sec, nsec, priority), (cookie, packets, bytes), (in_port, out))| {
                FlowStats {
                    table_id,
                    duration_sec: sec,
                    duration_nsec: nsec,
                    priority,
                    idle_timeout: 0,
                    hard_timeout: 0,
                    flags: FlowModFlags(0),
                    cookie,
                    packet_count: packets,
                    byte_count: bytes,
                    r#match: Match::new(vec![F::InPort(in_port)]),
                    instructions: vec![Instruction::ApplyActions(vec![Action::output(out)])],
                }
            },
        )
}

fn port_stats() -> impl Strategy<Value = PortStats> {
    // u64::MAX means "not available" and OVS prints it as "?".
    (1u32..0xff00, proptest::array::uniform12(0u64..u64::MAX)).prop_map(|(port_no, c)| PortStats {
        port_no,
        rx_packets: c[0],
        tx_packets: c[1],
        rx_bytes: c[2],
        tx_bytes: c[3],
        rx_dropped: c[4],
        tx_dropped: c[5],
        rx_errors: c[6],
        tx_errors: c[7],
        rx_frame_err: c[8],
        rx_over_err: c[9],
        rx_crc_err: c[10],
        collisions: c[11],
        duration_sec: 1,
        duration_nsec: 0,
    })
}

/// Emits, decodes with OVS, and checks that every expected text is in the output.
fn check(o: &Ofctl, body: P, expect: Vec<String>) -> Result<(), TestCaseError> {
    let msg = Message::MultipartReply(MultipartReply { flags: 0, body });
    let bytes = msg
        .to_bytes(1)
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    let out = o.ofp_print(&bytes).map_err(TestCaseError::fail)?;
    for e in expect {
        prop_assert!(out.contains(&e), "missing {:?} in:\n{}", e, out);
    }
    Ok(())
}

pub fn run(o: &Ofctl) {
    let mut runner = TestRunner::new(Config {
        cases: 32,
        ..Config::default()
    });
    let kinds = (
        proptest::collection::vec(port_desc(), 1..4),
        proptest::collection::vec(flow_stats(), 1..4),
        proptest::collection::vec(port_stats(), 1..3),
    );
    runner
        .run(&kinds, |(ports, flows, stats)| {
            let expect = ports
                .iter()
                .map(|p| format!("{}({}): addr:{}", p.port_no, p.name, mac_text(&p.hw_addr)))
                .collect();
            check(o, P::PortDesc(ports), expect)?;

            let expect = flows
                .iter()
                .map(|f| {
                    format!(
                        "cookie={:#x}, duration={}, table={}, n_packets={}, n_bytes={}, \
                         priority={},in_port={} actions=output:{}",
                        f.cookie,
                        duration_text(f.duration_sec, f.duration_nsec),
                        f.table_id,
                        f.packet_count,
                        f.byte_count,
                        f.priority,
                        match f.r#match.fields[0] {
                            F::InPort(p) => p,
                            _ => unreachable!(),
                        },
                        match &f.instructions[0] {
                            Instruction::ApplyActions(a) => match a[0] {
                                Action::Output { port, .. } => port,
                                _ => unreachable!(),
                            },
                            _ => unreachable!(),
                        },
                    )
                })
                .collect();
            check(o, P::Flow(flows), expect)?;

            let expect = stats
                .iter()
                .flat_map(|s| {
                    [
                        format!(
                            "rx pkts={}, bytes={}, drop={}, errs={}, frame={}, over={}, crc={}",
                            s.rx_packets,
                            s.rx_bytes,
                            s.rx_dropped,
                            s.rx_errors,
                            s.rx_frame_err,
                            s.rx_over_err,
                            s.rx_crc_err
                        ),
                        format!(
                            "tx pkts={}, bytes={}, drop={}, errs={}, coll={}",
                            s.tx_packets, s.tx_bytes, s.tx_dropped, s.tx_errors, s.collisions
                        ),
                    ]
                })
                .collect();
            check(o, P::PortStats(stats), expect)
        })
        .unwrap();
}
