//! Actions (`ofp_action_*`). Each is a TLV whose length is a multiple of 8.

use super::{Error, OxmField, Put, Reader, Result, pad8};

/// `max_len` asking the switch to send the whole packet to the controller.
pub const CONTROLLER_MAX_LEN_NO_BUFFER: u16 = 0xffff;

mod typ {
    pub const OUTPUT: u16 = 0;
    pub const PUSH_VLAN: u16 = 17;
    pub const POP_VLAN: u16 = 18;
    pub const SET_QUEUE: u16 = 21;
    pub const GROUP: u16 = 22;
    pub const DEC_NW_TTL: u16 = 24;
    pub const SET_FIELD: u16 = 25;
    pub const EXPERIMENTER: u16 = 0xffff;
}

/// One action.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Action {
    Output {
        port: u32,
        max_len: u16,
    },
    Group(u32),
    /// Push an 802.1Q (0x8100) or 802.1ad (0x88a8) tag with this ethertype.
    PushVlan(u16),
    PopVlan,
    SetField(OxmField),
    SetQueue(u32),
    DecNwTtl,
    Experimenter {
        experimenter: u32,
        data: Vec<u8>,
    },
    /// An action type this codec has no variant for, body kept as received (after type/len).
    Unknown {
        typ: u16,
        body: Vec<u8>,
    },
}

impl Action {
    /// Shorthand for an output action without a packet-in length limit.
    pub fn output(port: u32) -> Action {
        Action::Output { port, max_len: 0 }
    }

    pub(crate) fn parse(r: &mut Reader<'_>) -> Result<Action> {
        let typ = r.u16()?;
        let len = r.u16()? as usize;
        if len < 8 || !len.is_multiple_of(8) {
            return Err(Error::BadLength {
                what: "action",
                len,
            });
        }
        let mut b = r.sub(len - 4, "action body")?;
        let fixed = |want: usize| {
            if len == want {
                Ok(())
            } else {
                Err(Error::BadLength {
                    what: "action",
                    len,
                })
            }
        };
        let action = match typ {
            typ::OUTPUT => {
                fixed(16)?;
                let port = b.u32()?;
                let max_len = b.u16()?;
                Action::Output { port, max_len }
            }
            typ::GROUP => {
                fixed(8)?;
                Action::Group(b.u32()?)
            }
            typ::PUSH_VLAN => {
                fixed(8)?;
                Action::PushVlan(b.u16()?)
            }
            typ::POP_VLAN => {
                fixed(8)?;
                Action::PopVlan
            }
            typ::SET_QUEUE => {
                fixed(8)?;
                Action::SetQueue(b.u32()?)
            }
            typ::DEC_NW_TTL => {
                fixed(8)?;
                Action::DecNwTtl
            }
            typ::SET_FIELD => {
                let f = OxmField::parse(&mut b)?;
                // What follows the TLV is padding to 8 bytes; it must not hide another field.
                if b.remaining() >= 8 {
                    return Err(Error::BadLength {
                        what: "set_field action",
                        len,
                    });
                }
                Action::SetField(f)
            }
            typ::EXPERIMENTER => {
                let experimenter = b.u32()?;
                Action::Experimenter {
                    experimenter,
                    data: b.take_rest().to_vec(),
                }
            }
            other => Action::Unknown {
                typ: other,
                body: b.take_rest().to_vec(),
            },
        };
        Ok(action)
    }

    pub(crate) fn emit(&self, buf: &mut Vec<u8>) -> Result<()> {
        let start = buf.len();
        match self {
            Action::Output { port, max_len } => {
                head(buf, typ::OUTPUT, 16);
                buf.put_u32(*port);
                buf.put_u16(*max_len);
                buf.put_zeros(6);
            }
            Action::Group(g) => {
                head(buf, typ::GROUP, 8);
                buf.put_u32(*g);
            }
            Action::PushVlan(ethertype) => {
                head(buf, typ::PUSH_VLAN, 8);
                buf.put_u16(*ethertype);
                buf.put_zeros(2);
            }
            Action::PopVlan => {
                head(buf, typ::POP_VLAN, 8);
                buf.put_zeros(4);
            }
            Action::SetQueue(q) => {
                head(buf, typ::SET_QUEUE, 8);
                buf.put_u32(*q);
            }
            Action::DecNwTtl => {
                head(buf, typ::DEC_NW_TTL, 8);
                buf.put_zeros(4);
            }
            Action::SetField(f) => {
                head(buf, typ::SET_FIELD, 0);
                f.emit(buf)?;
                let len = buf.len() - start;
                buf.put_zeros(pad8(len));
                super::patch_len(buf, start, 2)?;
            }
            Action::Experimenter { experimenter, data } => {
                if (8 + data.len()) % 8 != 0 {
                    return Err(Error::BadLength {
                        what: "experimenter action",
                        len: 8 + data.len(),
                    });
                }
                head(buf, typ::EXPERIMENTER, 0);
                buf.put_u32(*experimenter);
                buf.extend_from_slice(data);
                super::patch_len(buf, start, 2)?;
            }
            Action::Unknown { typ, body } => {
                if (4 + body.len()) % 8 != 0 {
                    return Err(Error::BadLength {
                        what: "opaque action",
                        len: 4 + body.len(),
                    });
                }
                head(buf, *typ, 0);
                buf.extend_from_slice(body);
                super::patch_len(buf, start, 2)?;
            }
        }
        Ok(())
    }

    /// Parses a list of actions filling `r` completely.
    pub(crate) fn parse_list(r: &mut Reader<'_>) -> Result<Vec<Action>> {
        let mut out = Vec::new();
        while !r.is_empty() {
            out.push(Action::parse(r)?);
        }
        Ok(out)
    }

    pub(crate) fn emit_list(actions: &[Action], buf: &mut Vec<u8>) -> Result<()> {
        actions.iter().try_for_each(|a| a.emit(buf))
    }
}

fn head(buf: &mut Vec<u8>, typ: u16, len: u16) {
    buf.put_u16(typ);
    buf.put_u16(len);
}

#[cfg(any(test, feature = "arbitrary"))]
pub mod strategies {
    //! proptest strategies for actions.
    use super::*;
    use crate::wire::oxm::strategies::oxm_field;
    use proptest::prelude::*;

    /// Byte strings whose length plus `fixed` is a multiple of 8, as TLV bodies must be.
    pub fn aligned_bytes(fixed: usize, max_words: usize) -> impl Strategy<Value = Vec<u8>> {
        (0..=max_words).prop_flat_map(move |words| {
            let len = words * 8 + (8 - fixed % 8) % 8;
            proptest::collection::vec(any::<u8>(), len..=len)
        })
    }

    pub fn action() -> impl Strategy<Value = Action> {
        prop_oneof![
            (any::<u32>(), any::<u16>())
                .prop_map(|(port, max_len)| Action::Output { port, max_len }),
            any::<u32>().prop_map(Action::Group),
            prop_oneof![Just(0x8100u16), Just(0x88a8u16)].prop_map(Action::PushVlan),
            Just(Action::PopVlan),
            oxm_field().prop_map(Action::SetField),
            any::<u32>().prop_map(Action::SetQueue),
            Just(Action::DecNwTtl),
            (any::<u32>(), aligned_bytes(8, 2))
                .prop_map(|(experimenter, data)| Action::Experimenter { experimenter, data }),
            (
                prop_oneof![
                    Just(11u16),
                    Just(12),
                    Just(15),
                    Just(16),
                    Just(23),
                    Just(26),
                    Just(27)
                ],
                aligned_bytes(4, 2)
            )
                .prop_map(|(typ, body)| Action::Unknown { typ, body }),
        ]
    }

    pub fn actions() -> impl Strategy<Value = Vec<Action>> {
        proptest::collection::vec(action(), 0..5)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn actions_round_trip(actions in strategies::actions()) {
            let mut buf = Vec::new();
            Action::emit_list(&actions, &mut buf).unwrap();
            prop_assert_eq!(buf.len() % 8, 0);
            let back = Action::parse_list(&mut Reader::new(&buf, "t")).unwrap();
            prop_assert_eq!(back, actions);
        }
    }

    #[test]
    fn output_has_the_spec_layout() {
        let mut buf = Vec::new();
        Action::Output {
            port: 3,
            max_len: 0xffe5,
        }
        .emit(&mut buf)
        .unwrap();
        assert_eq!(buf, [0, 0, 0, 16, 0, 0, 0, 3, 0xff, 0xe5, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn short_or_unaligned_action_length_is_refused() {
        for len in [0u8, 4, 12] {
            let bytes = [0, 22, 0, len, 0, 0, 0, 1, 0, 0, 0, 0];
            assert!(Action::parse(&mut Reader::new(&bytes, "t")).is_err());
        }
    }
}
