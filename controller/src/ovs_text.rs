//! Flows in `ovs-ofctl` syntax: lets tests and benchmarks hand the desired flows to Open vSwitch's
//! own parser (`ovs-ofctl diff-flows`, `add-flows`), an independent check of what we install.

use std::fmt::Write as _;

use weft_openflow::wire::{Action, Instruction, OFPVID_PRESENT, OxmField};

use crate::pipeline::{FlowKey, FlowValue, SwitchState};

/// A field, instruction or action the pipeline never writes, so it has no text form here.
#[derive(Debug, thiserror::Error)]
#[error("no ovs-ofctl text form for {0}")]
pub struct Unsupported(String);

fn mac(m: &[u8; 6]) -> String {
    weft_types::MacAddr(*m).to_string()
}

/// Every flow of a switch, one `add-flow` line each: a file for `ovs-ofctl add-flows` or
/// `diff-flows`.
pub fn flows(st: &SwitchState) -> Result<String, Unsupported> {
    let mut text = String::with_capacity(st.flows.len() * 100);
    for (k, v) in &st.flows {
        text.push_str(&flow(&k.to_wire(), &v.to_wire())?);
        text.push('\n');
    }
    Ok(text)
}

/// One flow as an `ovs-ofctl add-flow` line (OpenFlow 1.3 semantics, `-O OpenFlow13`).
pub fn flow(key: &FlowKey, value: &FlowValue) -> Result<String, Unsupported> {
    let mut s = format!(
        "table={},priority={},cookie={:#x}",
        key.table, key.priority, value.cookie
    );
    for f in &key.r#match.fields {
        let _ = match f {
            OxmField::InPort(p) => write!(s, ",in_port={p}"),
            OxmField::Metadata { value, mask } => match mask {
                Some(m) => write!(s, ",metadata={value:#x}/{m:#x}"),
                None => write!(s, ",metadata={value:#x}"),
            },
            OxmField::EthDst { value, mask } => match mask {
                Some(m) => write!(s, ",dl_dst={}/{}", mac(value), mac(m)),
                None => write!(s, ",dl_dst={}", mac(value)),
            },
            OxmField::EthSrc { value, mask: None } => write!(s, ",dl_src={}", mac(value)),
            OxmField::EthType(t) => write!(s, ",dl_type={t:#06x}"),
            OxmField::VlanVid { value, mask: None } if value & OFPVID_PRESENT != 0 => {
                write!(s, ",dl_vlan={}", value & !OFPVID_PRESENT)
            }
            OxmField::ArpSpa { value, mask: None } => write!(s, ",arp_spa={value}"),
            OxmField::ArpSha { value, mask: None } => write!(s, ",arp_sha={}", mac(value)),
            OxmField::Ipv4Src { value, mask: None } => write!(s, ",nw_src={value}"),
            OxmField::Ipv6Src { value, mask } => match mask {
                Some(m) => write!(s, ",ipv6_src={value}/{m}"),
                None => write!(s, ",ipv6_src={value}"),
            },
            other => return Err(Unsupported(format!("{other:?}"))),
        };
    }
    let mut acts = Vec::new();
    for i in &value.instructions {
        match i {
            Instruction::ApplyActions(a) => {
                for a in a {
                    acts.push(action(a)?);
                }
            }
            Instruction::WriteMetadata { metadata, mask } => {
                acts.push(format!("write_metadata:{metadata:#x}/{mask:#x}"))
            }
            Instruction::GotoTable(t) => acts.push(format!("goto_table:{t}")),
            other => return Err(Unsupported(format!("{other:?}"))),
        }
    }
    if acts.is_empty() {
        acts.push("drop".into());
    }
    Ok(format!("{s} actions={}", acts.join(",")))
}

fn action(a: &Action) -> Result<String, Unsupported> {
    Ok(match a {
        Action::Output { port, .. } => format!("output:{port}"),
        Action::Group(g) => format!("group:{g}"),
        Action::PushVlan(t) => format!("push_vlan:{t:#06x}"),
        Action::PopVlan => "pop_vlan".into(),
        Action::SetField(OxmField::VlanVid { value, mask: None }) => {
            format!("set_field:{value}->vlan_vid")
        }
        other => return Err(Unsupported(format!("{other:?}"))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::priority;
    use weft_openflow::wire::Match;

    #[test]
    fn forward_flow_reads_like_ovs_writes_it() {
        let key = FlowKey {
            table: 2,
            priority: priority::ENDPOINT,
            r#match: Match::new(vec![
                OxmField::Metadata {
                    value: 7,
                    mask: Some(0x1_0fff),
                },
                OxmField::EthDst {
                    value: [2, 0, 0, 0, 0, 9],
                    mask: None,
                },
            ]),
        };
        let value = FlowValue {
            cookie: 0x5746_0000_0000_0007,
            instructions: vec![Instruction::ApplyActions(vec![
                Action::PushVlan(0x8100),
                Action::SetField(OxmField::VlanVid {
                    value: OFPVID_PRESENT | 7,
                    mask: None,
                }),
                Action::output(100),
            ])],
        };
        assert_eq!(
            flow(&key, &value).unwrap(),
            "table=2,priority=100,cookie=0x5746000000000007,metadata=0x7/0x10fff,\
             dl_dst=02:00:00:00:00:09 actions=push_vlan:0x8100,set_field:4103->vlan_vid,output:100"
        );
    }

    #[test]
    fn unknown_fields_are_refused_not_dropped() {
        let key = FlowKey {
            table: 0,
            priority: 1,
            r#match: Match::new(vec![OxmField::TcpDst(80)]),
        };
        let value = FlowValue {
            cookie: 0,
            instructions: vec![],
        };
        assert!(flow(&key, &value).is_err());
    }
}
