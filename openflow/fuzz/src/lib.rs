//! Oracles shared by the fuzz targets, the seed generator and the corpus regression tests.
//!
//! Both oracles panic on a violation, which libFuzzer reports as a crash. They also measure the
//! largest single allocation made while the codec runs (see [`TrackingAlloc`]), so a buffer sized
//! from an unchecked length field fails even when it stays under libFuzzer's malloc limit.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use bytes::{Bytes, BytesMut};
use tokio_util::codec::Decoder;
use weft_openflow::codec::{FrameError, OfCodec};
use weft_openflow::wire::{HEADER_LEN, MAX_MESSAGE_LEN};
use weft_openflow::{Header, Message};

pub mod samples;

/// System allocator that remembers the largest single request made while tracking is on.
/// Each fuzz target installs it with `#[global_allocator]`.
pub struct TrackingAlloc;

// Per thread, so parallel unit tests do not see each other's allocations. Const-initialised
// cells without destructors: reading them never allocates.
thread_local! {
    static TRACKING: Cell<bool> = const { Cell::new(false) };
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    if TRACKING.try_with(Cell::get).unwrap_or(false) {
        let _ = LARGEST.try_with(|l| l.set(l.get().max(size)));
    }
}

// SAFETY: every call is forwarded unchanged to `System`; only a size is recorded.
unsafe impl GlobalAlloc for TrackingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Runs `f` and returns its result with the largest single allocation it made. Only meaningful
/// when [`TrackingAlloc`] is the global allocator (otherwise the size is 0).
pub fn largest_alloc<R>(f: impl FnOnce() -> R) -> (R, usize) {
    LARGEST.set(0);
    TRACKING.set(true);
    let r = f();
    TRACKING.set(false);
    (r, LARGEST.get())
}

/// The most a parse of `input_len` bytes may allocate in one block. Decoded structures are larger
/// than their wire form (a 4-byte OXM TLV becomes a 40-byte enum) and vectors grow by doubling,
/// so the factor is generous; a buffer sized from a claimed length instead of the bytes present
/// still exceeds it on short inputs.
pub fn parse_alloc_bound(input_len: usize) -> usize {
    32 * input_len + 4096
}

/// Round-trip oracle for `Message::parse`: whatever parses must re-emit, and the re-emitted bytes
/// must parse back to the same message and header, and re-emit byte-identically.
pub fn check_message(data: &[u8]) {
    let (parsed, largest) = largest_alloc(|| Message::parse(data));
    assert!(
        largest <= parse_alloc_bound(data.len()),
        "parse of {} bytes allocated {largest} bytes in one block",
        data.len()
    );
    let Ok((header, msg)) = parsed else { return };
    assert_eq!(header.length as usize, data.len());
    assert_eq!(header.msg_type, msg.msg_type(), "type byte vs variant");
    let bytes = match msg.to_bytes(header.xid) {
        Ok(b) => b,
        Err(e) => panic!("parsed message does not re-emit: {e}\n{msg:?}"),
    };
    let (header2, msg2) = match Message::parse(&bytes) {
        Ok(v) => v,
        Err(e) => panic!("re-emitted message does not parse: {e}\n{msg:?}\n{bytes:02x?}"),
    };
    assert_eq!(msg2, msg, "parse(emit(parse(x))) != parse(x)");
    assert_eq!(header2.xid, header.xid);
    assert_eq!(header2.msg_type, header.msg_type);
    assert_eq!(header2.length as usize, bytes.len());
    let bytes2 = msg2
        .to_bytes(header.xid)
        .expect("emitted once, emits again");
    assert_eq!(bytes2, bytes, "emit is not deterministic");
}

/// What the framer produced from one stream.
#[derive(Debug, PartialEq)]
struct Framed {
    frames: Vec<(Header, Bytes, Result<Message, weft_openflow::Error>)>,
    /// `Some(len)` if framing stopped on a header length below 8.
    bad_length: Option<u16>,
}

/// A small deterministic generator of chunk sizes, seeded from the control byte.
struct Chunks(u32);

impl Chunks {
    fn next(&mut self) -> usize {
        // xorshift32
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.0 = x;
        match x % 8 {
            0 => 1,
            1..=3 => (x >> 8) as usize % 16 + 1,
            4..=6 => (x >> 8) as usize % 256 + 1,
            _ => (x >> 8) as usize % 4096 + 1,
        }
    }
}

/// Largest single allocation a `decode` call may make: `BytesMut` may double a buffer that holds
/// less than one maximal frame, and parsing the frame is bounded like [`check_message`].
fn decode_alloc_bound(buffered: usize) -> usize {
    (2 * (MAX_MESSAGE_LEN + HEADER_LEN)).max(parse_alloc_bound(buffered))
}

/// Feeds `stream` to the framer in chunks (`chunks = None`: all at once), calling `decode` until
/// it wants more bytes, as `FramedRead` does, and checks each step.
fn frame(stream: &[u8], mut chunks: Option<Chunks>) -> Framed {
    let mut src = BytesMut::new();
    let mut fed = 0usize;
    let mut consumed = 0usize;
    let mut out = Framed {
        frames: Vec::new(),
        bad_length: None,
    };
    loop {
        let before = src.len();
        let (res, largest) = largest_alloc(|| OfCodec.decode(&mut src));
        assert!(
            largest <= decode_alloc_bound(before),
            "decode with {before} bytes buffered allocated {largest} bytes in one block"
        );
        match res {
            Ok(Some(f)) => {
                let len = f.raw.len();
                assert!(len >= HEADER_LEN, "frame shorter than a header");
                assert_eq!(len, f.header.length as usize);
                assert!(consumed + len <= fed, "frame consumed bytes never fed");
                assert_eq!(&f.raw[..], &stream[consumed..consumed + len]);
                assert_eq!(f.header.version, f.raw[0]);
                assert_eq!(f.header.msg_type, f.raw[1]);
                assert_eq!(f.header.xid.to_be_bytes(), f.raw[4..8]);
                consumed += len;
                assert_eq!(src.len(), fed - consumed, "bytes lost or invented");
                out.frames.push((f.header, f.raw, f.message));
            }
            Ok(None) => {
                assert_eq!(src.len(), fed - consumed, "bytes lost or invented");
                // Waiting is only right when no complete frame is buffered.
                if src.len() >= HEADER_LEN {
                    let want = u16::from_be_bytes([src[2], src[3]]) as usize;
                    assert!(src.len() < want, "complete frame buffered but not returned");
                }
                assert!(
                    src.capacity() <= 4 * (MAX_MESSAGE_LEN + HEADER_LEN) + 8192,
                    "buffer grew to {} bytes",
                    src.capacity()
                );
                if fed == stream.len() {
                    return out;
                }
                let n = chunks.as_mut().map_or(stream.len(), Chunks::next);
                let end = (fed + n).min(stream.len());
                src.extend_from_slice(&stream[fed..end]);
                fed = end;
            }
            Err(FrameError::BadLength(l)) => {
                assert!((l as usize) < HEADER_LEN);
                assert_eq!(stream[consumed + 2..consumed + 4], l.to_be_bytes());
                out.bad_length = Some(l);
                return out;
            }
            Err(e) => panic!("decode failed with {e}"),
        }
    }
}

/// Framer oracle. The first byte seeds the chunk sizes, the rest is the byte stream. Framing the
/// stream in those chunks must give exactly the frames (and the same final error) as framing it
/// in one piece, and every frame must be the next `length` bytes of the stream.
pub fn check_framer(data: &[u8]) {
    let Some((&ctrl, stream)) = data.split_first() else {
        return;
    };
    let whole = frame(stream, None);
    let split = frame(stream, Some(Chunks((u32::from(ctrl) * 0x0101_0101) | 1)));
    assert_eq!(whole, split, "chunk boundaries changed the frames");
}

#[cfg(test)]
#[global_allocator]
static ALLOC: TrackingAlloc = TrackingAlloc;

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn corpus(target: &str) -> Vec<Vec<u8>> {
        named_corpus(target).into_iter().map(|(_, d)| d).collect()
    }

    fn named_corpus(target: &str) -> Vec<(String, Vec<u8>)> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("corpus")
            .join(target);
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            out.push((name, std::fs::read(e.path()).unwrap()));
        }
        out
    }

    #[test]
    fn messages_captured_from_ovs_ofctl_parse() {
        let captured: Vec<_> = named_corpus("decode_message")
            .into_iter()
            .filter(|(n, _)| n.starts_with("ofctl-"))
            .collect();
        assert!(captured.len() >= 10);
        for (name, bytes) in captured {
            if let Err(e) = Message::parse(&bytes) {
                panic!("{name}: {e}");
            }
        }
    }

    /// The corpus holds named seeds (`seed-*` from our codec, `ofctl-*` from ovs-ofctl), which
    /// must all parse, and inputs the fuzzer found (named by their SHA-1), most of them invalid.
    #[test]
    fn committed_decode_corpus_passes_the_oracle() {
        let files = named_corpus("decode_message");
        assert!(files.len() < 300, "minimise the corpus");
        let seeds = files.iter().filter(|(n, _)| n.starts_with("seed-")).count();
        assert!(seeds >= 40);
        for (name, bytes) in &files {
            if name.starts_with("seed-") {
                assert!(Message::parse(bytes).is_ok(), "{name}");
            }
            check_message(bytes);
        }
    }

    #[test]
    fn committed_framer_corpus_passes_the_oracle() {
        let files = corpus("framer");
        assert!(!files.is_empty() && files.len() < 300);
        files.iter().for_each(|f| check_framer(f));
    }

    #[test]
    fn every_sample_parses_and_round_trips() {
        for (name, m) in samples::messages() {
            let bytes = m.to_bytes(7).unwrap();
            let (_, back) = Message::parse(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(back, m, "{name}");
            check_message(&bytes);
        }
    }

    #[test]
    fn allocation_tracking_sees_a_large_buffer() {
        let (_, largest) = largest_alloc(|| vec![0u8; 1 << 20]);
        assert!(largest >= 1 << 20);
        assert!(largest > parse_alloc_bound(100));
    }

    #[test]
    fn framer_oracle_catches_a_reordered_stream() {
        let a = Message::BarrierRequest.to_bytes(1).unwrap();
        let b = Message::EchoRequest(vec![1, 2, 3]).to_bytes(2).unwrap();
        let s1 = [a.clone(), b.clone()].concat();
        let s2 = [b, a].concat();
        assert_ne!(frame(&s1, None), frame(&s2, None));
        assert_eq!(frame(&s1, None), frame(&s1, Some(Chunks(3))));
    }
}
