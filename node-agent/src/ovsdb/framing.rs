//! Splits the OVSDB byte stream into JSON-RPC messages.
//!
//! OVSDB sends JSON objects back to back with no length prefix or delimiter, so the reader tracks
//! brace depth and string/escape state incrementally (each byte is looked at once) and hands a
//! complete object to serde_json. A message that grows past the limit is an error, not an
//! unbounded allocation.

use super::Error;
use bytes::{Buf, BytesMut};
use serde_json::Value as Json;

/// Incremental splitter state over a growing buffer.
#[derive(Debug)]
pub struct JsonSplitter {
    buf: BytesMut,
    /// Bytes of `buf` already scanned for the current message.
    scanned: usize,
    depth: usize,
    in_string: bool,
    escaped: bool,
    max_message: usize,
}

impl JsonSplitter {
    pub fn new(max_message: usize) -> Self {
        JsonSplitter {
            buf: BytesMut::with_capacity(8192),
            scanned: 0,
            depth: 0,
            in_string: false,
            escaped: false,
            max_message,
        }
    }

    /// Space to read into; the caller appends bytes with `extend`.
    pub fn extend(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The next complete message, `Ok(None)` if more bytes are needed.
    pub fn next_message(&mut self) -> Result<Option<Json>, Error> {
        // Whitespace between messages is allowed; anything else outside an object is not.
        if self.depth == 0 {
            let skip = self.buf[self.scanned..]
                .iter()
                .take_while(|b| b.is_ascii_whitespace())
                .count();
            self.buf.advance(self.scanned + skip);
            self.scanned = 0;
        }
        while self.scanned < self.buf.len() {
            let b = self.buf[self.scanned];
            self.scanned += 1;
            if self.in_string {
                if self.escaped {
                    self.escaped = false;
                } else if b == b'\\' {
                    self.escaped = true;
                } else if b == b'"' {
                    self.in_string = false;
                }
                continue;
            }
            match b {
                b'"' if self.depth > 0 => self.in_string = true,
                b'{' | b'[' if self.depth > 0 || b == b'{' => self.depth += 1,
                b'}' | b']' if self.depth > 0 => {
                    self.depth -= 1;
                    if self.depth == 0 {
                        let msg = self.buf.split_to(self.scanned);
                        self.scanned = 0;
                        return serde_json::from_slice(&msg)
                            .map(Some)
                            .map_err(|e| Error::Malformed(format!("invalid JSON: {e}")));
                    }
                }
                _ if self.depth == 0 && !b.is_ascii_whitespace() => {
                    return Err(Error::Malformed(format!(
                        "expected a JSON object, got byte 0x{b:02x}"
                    )));
                }
                _ => {}
            }
            if self.scanned > self.max_message {
                return Err(Error::MessageTooLarge {
                    limit: self.max_message,
                });
            }
        }
        if self.buf.len() > self.max_message {
            return Err(Error::MessageTooLarge {
                limit: self.max_message,
            });
        }
        Ok(None)
    }

    /// True while part of a message is buffered (EOF then means a truncated message).
    pub(crate) fn has_partial(&self) -> bool {
        self.depth > 0
            || self.buf[self.scanned..]
                .iter()
                .any(|b| !b.is_ascii_whitespace())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn feed_all(split: &mut JsonSplitter, data: &[u8], chunk: usize) -> Vec<Json> {
        let mut out = Vec::new();
        for c in data.chunks(chunk) {
            split.extend(c);
            while let Some(m) = split.next_message().unwrap() {
                out.push(m);
            }
        }
        out
    }

    #[test]
    fn splits_back_to_back_objects_at_any_chunking() {
        let data = br#"{"id":1,"s":"a}\"{[b"} {"id":[2,{"x":"]"}]}
{"method":"echo","params":[],"id":"e"}"#;
        for chunk in [1, 2, 3, 7, 64, 1000] {
            let mut s = JsonSplitter::new(1 << 20);
            let msgs = feed_all(&mut s, data, chunk);
            assert_eq!(msgs.len(), 3, "chunk {chunk}");
            assert_eq!(msgs[0]["s"], json!("a}\"{[b"));
            assert_eq!(msgs[1]["id"][1]["x"], json!("]"));
            assert_eq!(msgs[2]["method"], json!("echo"));
            assert!(!s.has_partial());
        }
    }

    #[test]
    fn oversize_message_is_an_error() {
        let mut s = JsonSplitter::new(100);
        s.extend(br#"{"a":""#);
        s.extend(&[b'x'; 200]);
        assert!(matches!(
            s.next_message(),
            Err(Error::MessageTooLarge { limit: 100 })
        ));
    }

    #[test]
    fn garbage_is_malformed() {
        let mut s = JsonSplitter::new(100);
        s.extend(b"HTTP/1.1 400\r\n");
        assert!(matches!(s.next_message(), Err(Error::Malformed(_))));
        let mut s = JsonSplitter::new(100);
        s.extend(b"{\"a\":tru}");
        assert!(matches!(s.next_message(), Err(Error::Malformed(_))));
    }

    #[test]
    fn partial_message_is_reported() {
        let mut s = JsonSplitter::new(100);
        s.extend(b"  {\"a\":");
        assert!(s.next_message().unwrap().is_none());
        assert!(s.has_partial());
    }
}
