//! Protobuf messages and tonic clients/servers of Weft's gRPC APIs, one module per package.
//! Each `.proto` file in `proto/proto/` is compiled by `build.rs`.

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

/// weft-cni <-> weft-agent CNI server (`proto/cni.proto`).
pub mod cni {
    pub mod v1 {
        tonic::include_proto!("weft.cni.v1");
    }
}
