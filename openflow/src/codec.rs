//! Framing of OpenFlow messages on a byte stream, as a `tokio_util` [`Decoder`]/[`Encoder`].
//!
//! The decoder never trusts the length field beyond its 16 bits: it reserves at most
//! [`MAX_MESSAGE_LEN`] bytes, and a length below the header size means the stream has lost its
//! framing, which is reported as [`FrameError::BadLength`] (the session then closes the
//! connection). A frame whose body does not parse is still delivered, with the parse error, so
//! the session can answer with an OpenFlow ERROR and keep going.

use bytes::{Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use crate::wire::{self, HEADER_LEN, Header, MAX_MESSAGE_LEN, Message};

/// One framed message as received.
#[derive(Debug, Clone)]
pub struct Frame {
    pub header: Header,
    /// The typed message, or why its body could not be parsed.
    pub message: Result<Message, wire::Error>,
    /// The whole message as received (header included): echoed in ERROR replies.
    pub raw: Bytes,
}

/// Why the stream cannot be framed any further.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("header length {0} is below the 8-byte header: stream framing lost")]
    BadLength(u16),
    #[error("cannot encode message: {0}")]
    Encode(#[from] wire::Error),
}

/// The OpenFlow frame codec. Stateless; one per connection.
#[derive(Debug, Default, Clone, Copy)]
pub struct OfCodec;

impl Decoder for OfCodec {
    type Item = Frame;
    type Error = FrameError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        if src.len() < HEADER_LEN {
            src.reserve(HEADER_LEN - src.len());
            return Ok(None);
        }
        let length = u16::from_be_bytes([src[2], src[3]]);
        let len = length as usize;
        if len < HEADER_LEN {
            return Err(FrameError::BadLength(length));
        }
        if src.len() < len {
            // `len` is at most 65535, so this reservation is bounded whatever the peer sends.
            src.reserve(len - src.len());
            return Ok(None);
        }
        let raw = src.split_to(len).freeze();
        let header = Header {
            version: raw[0],
            msg_type: raw[1],
            length,
            xid: u32::from_be_bytes([raw[4], raw[5], raw[6], raw[7]]),
        };
        let message = Message::parse(&raw).map(|(_, m)| m);
        Ok(Some(Frame {
            header,
            message,
            raw,
        }))
    }
}

/// An outgoing message with the xid it travels under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    pub xid: u32,
    pub message: Message,
}

impl Encoder<Outgoing> for OfCodec {
    type Error = FrameError;

    fn encode(&mut self, item: Outgoing, dst: &mut BytesMut) -> Result<(), FrameError> {
        let mut buf = Vec::with_capacity(64);
        item.message.emit(item.xid, &mut buf)?;
        debug_assert!(buf.len() <= MAX_MESSAGE_LEN);
        dst.extend_from_slice(&buf);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Hello;

    fn encoded(msgs: &[Message]) -> BytesMut {
        let mut out = BytesMut::new();
        for (i, m) in msgs.iter().enumerate() {
            OfCodec
                .encode(
                    Outgoing {
                        xid: i as u32,
                        message: m.clone(),
                    },
                    &mut out,
                )
                .unwrap();
        }
        out
    }

    #[test]
    fn frames_split_at_any_byte_boundary() {
        let msgs = vec![
            Message::Hello(Hello::with_versions(&[4])),
            Message::EchoRequest(b"ping".to_vec()),
            Message::BarrierRequest,
        ];
        let all = encoded(&msgs);
        for cut in 0..all.len() {
            let mut src = BytesMut::from(&all[..cut]);
            let mut got = Vec::new();
            while let Some(f) = OfCodec.decode(&mut src).unwrap() {
                got.push(f.message.unwrap());
            }
            src.extend_from_slice(&all[cut..]);
            while let Some(f) = OfCodec.decode(&mut src).unwrap() {
                got.push(f.message.unwrap());
            }
            assert_eq!(got, msgs, "cut at {cut}");
            assert!(src.is_empty());
        }
    }

    #[test]
    fn length_below_header_is_a_framing_error() {
        for len in 0u16..8 {
            let mut src = BytesMut::from(&[4u8, 2, (len >> 8) as u8, len as u8, 0, 0, 0, 1][..]);
            assert!(matches!(
                OfCodec.decode(&mut src),
                Err(FrameError::BadLength(l)) if l == len
            ));
        }
    }

    #[test]
    fn huge_length_waits_without_allocating_more_than_the_field_allows() {
        let mut src = BytesMut::from(&[4u8, 2, 0xff, 0xff, 0, 0, 0, 1][..]);
        assert!(OfCodec.decode(&mut src).unwrap().is_none());
        assert!(src.capacity() <= MAX_MESSAGE_LEN + HEADER_LEN);
    }

    #[test]
    fn unparseable_body_is_delivered_with_its_error() {
        // A FEATURES_REPLY that is far too short for its body.
        let mut src = BytesMut::from(&[4u8, 6, 0, 10, 0, 0, 0, 7, 1, 2][..]);
        let f = OfCodec.decode(&mut src).unwrap().unwrap();
        assert_eq!(f.header.xid, 7);
        assert!(f.message.is_err());
        assert_eq!(f.raw.len(), 10);
        assert!(src.is_empty());
    }
}
