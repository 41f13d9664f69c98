//! OpenFlow 1.3 for Weft: the wire codec ([`wire`]), stream framing ([`codec`]) and the
//! controller side of a switch session ([`session`]).

pub mod codec;
pub mod session;
pub mod wire;

pub use wire::{Error, Header, Message, Result};
