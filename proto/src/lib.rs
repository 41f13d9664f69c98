//! Protobuf messages and tonic clients/servers of Weft's gRPC APIs, one module per package, and
//! the CNI contract that the plugin and the agent's CNI server share ([`cni`]).
//! Each `.proto` file in `proto/proto/` is compiled by `build.rs`.

/// Messages every API shares (`proto/common.proto`).
pub mod common {
    pub mod v1 {
        tonic::include_proto!("weft.common.v1");
    }
}

/// Node agent <-> controller (`proto/agent.proto`).
pub mod agent {
    pub mod v1 {
        tonic::include_proto!("weft.agent.v1");
    }
}

/// Northbound API of a controller (`proto/northbound.proto`).
pub mod northbound {
    pub mod v1 {
        tonic::include_proto!("weft.northbound.v1");
    }
}

pub mod cni;
pub mod error_detail;
