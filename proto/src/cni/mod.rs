//! The CNI contract as both `weft-cni` and the agent's CNI server speak it: the spec's error
//! codes and error object, its input rules, and result JSON; plus the gRPC form between the two
//! (`proto/cni.proto`).

mod code;
mod error;
pub mod result;
mod validate;

pub use code::ErrorCode;
pub use error::CniError;
pub use validate::{valid_container_id, valid_ifname, version_tuple};

pub mod v1 {
    tonic::include_proto!("weft.cni.v1");
}
