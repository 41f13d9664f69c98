//! VXLAN network identifiers shared by both ends of a tunnel.

use crate::hash::Fnv1a;

/// The VNI of the tunnel between nodes `a` and `b`: the kernel demultiplexes VXLAN by (VNI, UDP
/// port) alone, so each of a node's per-peer devices needs its own VNI, and both ends of a pair
/// must agree. FNV-1a over the cluster's base VNI and the sorted pair, folded to 24 bits (0 is
/// avoided). Two pairs of one node can collide (about N^2/2^25 per node of N peers); the agent
/// then reports the later peer's tunnel as failed instead of breaking the other.
pub fn pair_vni(base: u32, a: &str, b: &str) -> u32 {
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    let h = Fnv1a::new()
        .bytes(base.to_be_bytes())
        .parts([lo, hi])
        .finish();
    let v = ((h ^ (h >> 24) ^ (h >> 48)) & 0x00ff_ffff) as u32;
    v.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_never_change() {
        // Both ends of every existing tunnel computed these; a different value would cut them.
        assert_eq!(pair_vni(4242, "node-a", "node-b"), 7_627_058);
        assert_eq!(pair_vni(4242, "b", "a"), 1_894_670);
    }

    #[test]
    fn symmetric_24_bit_and_spread() {
        assert_eq!(pair_vni(4242, "a", "b"), pair_vni(4242, "b", "a"));
        assert_ne!(pair_vni(4242, "a", "b"), pair_vni(4243, "a", "b"));
        let mut seen = std::collections::BTreeSet::new();
        for i in 1..200 {
            let v = pair_vni(4242, "node-0", &format!("node-{i}"));
            assert!((1..1 << 24).contains(&v));
            seen.insert(v);
        }
        assert!(seen.len() > 195);
    }
}
