//! Instructions (`ofp_instruction_*`) attached to flow entries.

use super::{Action, Error, Put, Reader, Result};

mod typ {
    pub const GOTO_TABLE: u16 = 1;
    pub const WRITE_METADATA: u16 = 2;
    pub const WRITE_ACTIONS: u16 = 3;
    pub const APPLY_ACTIONS: u16 = 4;
    pub const CLEAR_ACTIONS: u16 = 5;
    pub const METER: u16 = 6;
    pub const EXPERIMENTER: u16 = 0xffff;
}

/// One instruction.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Instruction {
    GotoTable(u8),
    WriteMetadata {
        metadata: u64,
        mask: u64,
    },
    WriteActions(Vec<Action>),
    ApplyActions(Vec<Action>),
    ClearActions,
    Meter(u32),
    Experimenter {
        experimenter: u32,
        data: Vec<u8>,
    },
    /// An instruction type this codec has no variant for, body kept as received.
    Unknown {
        typ: u16,
        body: Vec<u8>,
    },
}

impl Instruction {
    pub(crate) fn parse(r: &mut Reader<'_>) -> Result<Instruction> {
        let typ = r.u16()?;
        let len = r.u16()? as usize;
        if len < 8 || !len.is_multiple_of(8) {
            return Err(Error::BadLength {
                what: "instruction",
                len,
            });
        }
        let mut b = r.sub(len - 4, "instruction body")?;
        let fixed = |want: usize| {
            if len == want {
                Ok(())
            } else {
                Err(Error::BadLength {
                    what: "instruction",
                    len,
                })
            }
        };
        Ok(match typ {
            typ::GOTO_TABLE => {
                fixed(8)?;
                Instruction::GotoTable(b.u8()?)
            }
            typ::WRITE_METADATA => {
                fixed(24)?;
                b.skip(4)?;
                let metadata = b.u64()?;
                let mask = b.u64()?;
                Instruction::WriteMetadata { metadata, mask }
            }
            typ::WRITE_ACTIONS | typ::APPLY_ACTIONS => {
                b.skip(4)?;
                let actions = Action::parse_list(&mut b)?;
                if typ == typ::WRITE_ACTIONS {
                    Instruction::WriteActions(actions)
                } else {
                    Instruction::ApplyActions(actions)
                }
            }
            typ::CLEAR_ACTIONS => {
                fixed(8)?;
                Instruction::ClearActions
            }
            typ::METER => {
                fixed(8)?;
                Instruction::Meter(b.u32()?)
            }
            typ::EXPERIMENTER => {
                let experimenter = b.u32()?;
                Instruction::Experimenter {
                    experimenter,
                    data: b.take_rest().to_vec(),
                }
            }
            other => Instruction::Unknown {
                typ: other,
                body: b.take_rest().to_vec(),
            },
        })
    }

    pub(crate) fn emit(&self, buf: &mut Vec<u8>) -> Result<()> {
        let start = buf.len();
        match self {
            Instruction::GotoTable(t) => {
                buf.put_u16(typ::GOTO_TABLE);
                buf.put_u16(8);
                buf.put_u8(*t);
                buf.put_zeros(3);
            }
            Instruction::WriteMetadata { metadata, mask } => {
                buf.put_u16(typ::WRITE_METADATA);
                buf.put_u16(24);
                buf.put_zeros(4);
                buf.put_u64(*metadata);
                buf.put_u64(*mask);
            }
            Instruction::WriteActions(actions) | Instruction::ApplyActions(actions) => {
                let t = if matches!(self, Instruction::WriteActions(_)) {
                    typ::WRITE_ACTIONS
                } else {
                    typ::APPLY_ACTIONS
                };
                buf.put_u16(t);
                buf.put_u16(0);
                buf.put_zeros(4);
                Action::emit_list(actions, buf)?;
                super::patch_len(buf, start, 2)?;
            }
            Instruction::ClearActions => {
                buf.put_u16(typ::CLEAR_ACTIONS);
                buf.put_u16(8);
                buf.put_zeros(4);
            }
            Instruction::Meter(m) => {
                buf.put_u16(typ::METER);
                buf.put_u16(8);
                buf.put_u32(*m);
            }
            Instruction::Experimenter { experimenter, data } => {
                if (8 + data.len()) % 8 != 0 {
                    return Err(Error::BadLength {
                        what: "experimenter instruction",
                        len: 8 + data.len(),
                    });
                }
                buf.put_u16(typ::EXPERIMENTER);
                buf.put_u16(0);
                buf.put_u32(*experimenter);
                buf.extend_from_slice(data);
                super::patch_len(buf, start, 2)?;
            }
            Instruction::Unknown { typ, body } => {
                if (4 + body.len()) % 8 != 0 {
                    return Err(Error::BadLength {
                        what: "opaque instruction",
                        len: 4 + body.len(),
                    });
                }
                buf.put_u16(*typ);
                buf.put_u16(0);
                buf.extend_from_slice(body);
                super::patch_len(buf, start, 2)?;
            }
        }
        Ok(())
    }

    pub(crate) fn parse_list(r: &mut Reader<'_>) -> Result<Vec<Instruction>> {
        let mut out = Vec::new();
        while !r.is_empty() {
            out.push(Instruction::parse(r)?);
        }
        Ok(out)
    }

    pub(crate) fn emit_list(list: &[Instruction], buf: &mut Vec<u8>) -> Result<()> {
        list.iter().try_for_each(|i| i.emit(buf))
    }
}

#[cfg(any(test, feature = "arbitrary"))]
pub mod strategies {
    //! proptest strategies for instructions.
    use super::*;
    use crate::wire::action::strategies::{actions, aligned_bytes};
    use proptest::prelude::*;

    pub fn instruction() -> impl Strategy<Value = Instruction> {
        prop_oneof![
            any::<u8>().prop_map(Instruction::GotoTable),
            (any::<u64>(), any::<u64>())
                .prop_map(|(metadata, mask)| Instruction::WriteMetadata { metadata, mask }),
            actions().prop_map(Instruction::WriteActions),
            actions().prop_map(Instruction::ApplyActions),
            Just(Instruction::ClearActions),
            any::<u32>().prop_map(Instruction::Meter),
            (any::<u32>(), aligned_bytes(8, 2))
                .prop_map(|(experimenter, data)| Instruction::Experimenter { experimenter, data }),
            (7u16..0xfff0, aligned_bytes(4, 2))
                .prop_map(|(typ, body)| Instruction::Unknown { typ, body }),
        ]
    }

    pub fn instructions() -> impl Strategy<Value = Vec<Instruction>> {
        proptest::collection::vec(instruction(), 0..4)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn instructions_round_trip(list in strategies::instructions()) {
            let mut buf = Vec::new();
            Instruction::emit_list(&list, &mut buf).unwrap();
            let back = Instruction::parse_list(&mut Reader::new(&buf, "t")).unwrap();
            prop_assert_eq!(back, list);
        }
    }

    #[test]
    fn goto_table_has_the_spec_layout() {
        let mut buf = Vec::new();
        Instruction::GotoTable(2).emit(&mut buf).unwrap();
        assert_eq!(buf, [0, 1, 0, 8, 2, 0, 0, 0]);
    }
}
