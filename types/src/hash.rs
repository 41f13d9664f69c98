//! The stable hash Weft derives ids from (datapath ids, device names, MACs, VNIs).
//!
//! 64-bit FNV-1a: tiny, the same on every platform and Rust version (std's hashers promise
//! neither), and it spreads short similar names (`node-1`, `node-2`) well. The ids it makes are
//! persisted in OVS, the kernel and the controller's state, so its output must never change.

const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const PRIME: u64 = 0x0000_0100_0000_01b3;

/// An FNV-1a state; feed it bytes in a fixed order, then [`Fnv1a::finish`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fnv1a(u64);

impl Default for Fnv1a {
    fn default() -> Self {
        Fnv1a(OFFSET)
    }
}

impl Fnv1a {
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts from the offset basis XOR `seed`, for families of independent hashes.
    pub fn seeded(seed: u64) -> Self {
        Fnv1a(OFFSET ^ seed)
    }

    pub fn bytes(mut self, data: impl AsRef<[u8]>) -> Self {
        for b in data.as_ref() {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(PRIME);
        }
        self
    }

    /// Parts joined by a 0 byte, so `("ab", "c")` and `("a", "bc")` hash differently.
    pub fn parts<I, P>(self, parts: I) -> Self
    where
        I: IntoIterator<Item = P>,
        P: AsRef<[u8]>,
    {
        let mut h = self;
        for (i, p) in parts.into_iter().enumerate() {
            if i > 0 {
                h = h.bytes([0u8]);
            }
            h = h.bytes(p);
        }
        h
    }

    pub fn finish(self) -> u64 {
        self.0
    }
}

/// FNV-1a of one byte string.
pub fn fnv1a(data: impl AsRef<[u8]>) -> u64 {
    Fnv1a::new().bytes(data).finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vectors() {
        // From the FNV reference test suite.
        assert_eq!(fnv1a(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a("a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a("foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn parts_are_separated() {
        let a = Fnv1a::new().parts(["ab", "c"]).finish();
        let b = Fnv1a::new().parts(["a", "bc"]).finish();
        assert_ne!(a, b);
        assert_eq!(a, fnv1a(b"ab\0c"));
    }

    #[test]
    fn seeded_differs() {
        assert_ne!(Fnv1a::seeded(1).bytes("x").finish(), fnv1a("x"));
        assert_eq!(Fnv1a::seeded(0).bytes("x").finish(), fnv1a("x"));
    }
}
