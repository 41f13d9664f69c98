//! Protobuf messages and tonic clients/servers of Weft's gRPC APIs, one module per package.
//! Each `.proto` file in `proto/proto/` is compiled by `build.rs`.

/// Node agent <-> controller (`proto/agent.proto`).
pub mod agent {
    pub mod v1 {
        tonic::include_proto!("weft.agent.v1");
    }

    /// The VNI of the tunnel between nodes `a` and `b`: the kernel demultiplexes VXLAN by (VNI, UDP
    /// port) alone, so each of a node's per-peer devices needs its own VNI, and both ends of a pair
    /// must agree. FNV-1a over the cluster's base VNI and the sorted pair, folded to 24 bits (0 is
    /// avoided). Two pairs of one node can collide (about N^2/2^25 per node of N peers); the agent
    /// then reports the later peer's tunnel as failed instead of breaking the other.
    pub fn pair_vni(base: u32, a: &str, b: &str) -> u32 {
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let bytes = base
            .to_be_bytes()
            .into_iter()
            .chain(lo.bytes())
            .chain([0u8])
            .chain(hi.bytes());
        for byte in bytes {
            h ^= u64::from(byte);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        let v = ((h ^ (h >> 24) ^ (h >> 48)) & 0x00ff_ffff) as u32;
        v.max(1)
    }
}

/// Northbound API of a controller (`proto/northbound.proto`).
pub mod northbound {
    pub mod v1 {
        tonic::include_proto!("weft.northbound.v1");
    }
}

/// weft-cni <-> weft-agent CNI server (`proto/cni.proto`).
pub mod cni {
    pub mod v1 {
        tonic::include_proto!("weft.cni.v1");
    }
}
