//! The declaration is the pipeline: the module doc's table, the typed flows and the goto targets
//! all follow from [`TABLES`].

use weft_openflow::wire::{Instruction, OxmField};

use super::tests::samples;
use super::*;

/// The `ovs-ofctl` name of a match field, as [`Table::matches`] lists them.
fn field_name(f: &OxmField) -> &'static str {
    use OxmField as F;
    match f {
        F::InPort(_) => "in_port",
        F::Metadata { .. } => "metadata",
        F::EthDst { .. } => "eth_dst",
        F::EthSrc { .. } => "eth_src",
        F::EthType(_) => "eth_type",
        F::VlanVid { .. } => "vlan_vid",
        F::ArpSpa { .. } => "arp_spa",
        F::ArpSha { .. } => "arp_sha",
        F::Ipv4Src { .. } => "ipv4_src",
        F::Ipv6Src { .. } => "ipv6_src",
        _ => "unknown",
    }
}

/// What the doc's "next" column says: where frames go after table `i`.
fn next_text(p: &Pipeline, i: u8) -> String {
    let name = |t: Option<u8>| t.map_or("-", |t| p.tables()[t as usize].name);
    let t = &p.tables()[i as usize];
    let (pods, tunnels) = (p.next(i, Ingress::Pods), p.next(i, Ingress::All));
    if t.ingress == Ingress::All && pods != tunnels {
        format!("{} (pods), {} (tunnels)", name(pods), name(tunnels))
    } else {
        name(pods).to_string()
    }
}

#[test]
fn the_module_doc_table_is_the_declaration() {
    let rows: Vec<Vec<&str>> = include_str!("mod.rs")
        .lines()
        .filter_map(|l| l.strip_prefix("//! | "))
        .filter(|l| l.chars().next().is_some_and(|c| c.is_ascii_digit()))
        .map(|l| l.trim_end_matches(" |").split(" | ").collect())
        .collect();
    assert_eq!(rows.len(), TABLES.len(), "one doc row per declared table");
    for (i, (row, t)) in rows.iter().zip(TABLES).enumerate() {
        let matches = t.matches.join(", ");
        let purpose = t.purpose.split_whitespace().collect::<Vec<_>>().join(" ");
        let next = next_text(&PIPELINE, i as u8);
        let want = [i.to_string().as_str(), t.name, &matches, &next, &purpose].map(String::from);
        assert_eq!(row.as_slice(), want.as_slice(), "doc row of table {i}");
    }
}

#[test]
fn every_flow_sits_in_its_declared_table_and_matches_only_declared_fields() {
    for (k, v) in samples() {
        let table = &TABLES[k.table() as usize];
        for f in k.fields() {
            assert!(
                table.matches.contains(&field_name(&f)),
                "{k:?} matches {f:?}, not declared for {}",
                table.name
            );
        }
        // Every goto goes to a later table of the list.
        for i in v.instructions() {
            if let Instruction::GotoTable(to) = i {
                assert!(
                    to > k.table() && (to as usize) < TABLES.len(),
                    "{k:?} -> {to}"
                );
            }
        }
    }
}

/// A stage between port security and forward, as ACLs or QoS will be: pods' frames go through
/// it, tunnel frames do not.
const EXTRA: Table = Table {
    name: "extra",
    matches: &[],
    ingress: Ingress::Pods,
    miss: Miss::Continue,
    purpose: "passes everything on",
};

#[test]
fn goto_targets_follow_the_list() {
    assert_eq!(
        (table::CLASSIFY, table::PORT_SECURITY, table::FORWARD),
        (0, 1, 2)
    );
    static WITH_EXTRA: &[Table] = &[CLASSIFY, PORT_SECURITY, EXTRA, FORWARD];
    let p = Pipeline::new(WITH_EXTRA).unwrap();
    let goto = |v: Value| v.instructions_in(&p).last().cloned();
    assert_eq!(
        goto(Value::Classify { segment: 7 }),
        Some(Instruction::GotoTable(1))
    );
    assert_eq!(
        goto(Value::Admit { segment: 7 }),
        Some(Instruction::GotoTable(2))
    );
    // Tunnel frames skip the pods-only tables.
    assert_eq!(
        goto(Value::Untag { segment: 7 }),
        Some(Instruction::GotoTable(3))
    );
    assert_eq!(p.miss(2), Value::Goto { to: 3 });
    assert_eq!(p.miss(3), Value::Drop);
    let fwd = Key::Flood {
        segment: 7,
        from_tunnel: false,
    };
    assert_eq!(fwd.table_in(&p), 3);
    // And the typed form parses back in that pipeline.
    let (k, v) = (Key::Miss { table: 2 }, p.miss(2));
    assert_eq!(Key::from_wire_in(k.to_wire_in(&p), &p), k);
    assert_eq!(Value::from_wire_in(v.to_wire_in(&p), &p), v);
}

#[test]
fn inconsistent_declarations_are_refused() {
    static MISSING: &[Table] = &[CLASSIFY, FORWARD];
    static TWICE: &[Table] = &[CLASSIFY, PORT_SECURITY, PORT_SECURITY, FORWARD];
    static LATE: &[Table] = &[PORT_SECURITY, CLASSIFY, FORWARD];
    static BACKWARDS: &[Table] = &[CLASSIFY, FORWARD, PORT_SECURITY];
    // Tunnel frames would have nowhere to go after classify.
    static NO_TUNNEL_PATH: &[Table] = &[
        CLASSIFY,
        PORT_SECURITY,
        Table {
            ingress: Ingress::Pods,
            ..FORWARD
        },
    ];
    assert_eq!(
        Pipeline::new(MISSING),
        Err(PipelineError::Missing("port security"))
    );
    assert_eq!(
        Pipeline::new(TWICE),
        Err(PipelineError::Duplicate("port security"))
    );
    assert_eq!(Pipeline::new(LATE), Err(PipelineError::ClassifyNotFirst));
    assert_eq!(Pipeline::new(BACKWARDS), Err(PipelineError::Order));
    assert_eq!(
        Pipeline::new(NO_TUNNEL_PATH),
        Err(PipelineError::NoNext("classify"))
    );
    assert!(Pipeline::new(TABLES).is_ok());
}
