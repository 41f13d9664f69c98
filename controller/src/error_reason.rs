//! The one mapping from the controller's domain errors to wire reasons. Every API (the agent's,
//! the northbound) reports a refusal through the reason chosen here, so a caller several hops
//! away (a container runtime reading a CNI code) learns exactly what went wrong.

use tonic::Status;
use weft_proto::error_detail::{self, ErrorReason};

use crate::model::ModelError;
use crate::store::StoreError;

/// The reason of a model error. Exhaustive on purpose: a new error must choose its reason.
pub fn of_model(e: &ModelError) -> ErrorReason {
    use ErrorReason as R;
    match e {
        ModelError::BadName(_)
        | ModelError::BadCidr(_)
        | ModelError::GatewayWithoutSubnet
        | ModelError::GatewayOutsideSubnet { .. }
        | ModelError::ExcludeWithoutSubnet
        | ModelError::ExcludeOutsideSubnet(_)
        | ModelError::OverlappingExcludes(..)
        | ModelError::MtuOutOfRange(_) => R::InvalidRequest,
        ModelError::BadAddress(_)
        | ModelError::BadMac(_)
        | ModelError::IpOutsideSubnet(_)
        | ModelError::IpReserved(_) => R::AddressRefused,
        ModelError::DuplicateNetwork(_) => R::AlreadyExists,
        ModelError::UnknownNetwork(_) => R::UnknownNetwork,
        ModelError::UnknownNode(_) => R::UnknownNode,
        ModelError::NetworkInUse { .. }
        | ModelError::NodeInUse { .. }
        | ModelError::SpecStrandsPods { .. } => R::InUse,
        ModelError::SegmentsExhausted => R::SegmentsExhausted,
        ModelError::NamespaceNotAllowed { .. } => R::NamespaceNotAllowed,
        ModelError::DuplicateMac(..) | ModelError::DuplicateIp(..) => R::AddressInUse,
        ModelError::SubnetFull(_) => R::SubnetFull,
        ModelError::NotPrepared(_) => R::NotPrepared,
        ModelError::OtherNodesAttachment { .. } => R::NodeMismatch,
    }
}

/// The reason of a failed store update.
pub fn of_store(e: &StoreError) -> ErrorReason {
    match e {
        StoreError::Model(m) => of_model(m),
        StoreError::Persist(_) => ErrorReason::StateNotPersisted,
    }
}

/// A gRPC status for a failed store update, with its reason in the details.
pub fn status(e: StoreError) -> Status {
    error_detail::status(of_store(&e), e.to_string())
}

/// A gRPC status for a request the controller refuses before touching the model.
pub fn invalid(msg: impl Into<String>) -> Status {
    error_detail::status(ErrorReason::InvalidRequest, msg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::NetworkKey;

    #[test]
    fn persist_failures_say_retry() {
        let s = status(StoreError::Persist("disk full".into()));
        assert_eq!(s.code(), tonic::Code::Unavailable);
        assert_eq!(
            error_detail::reason(&s),
            Some(ErrorReason::StateNotPersisted)
        );
        assert!(s.message().contains("disk full"), "{}", s.message());
    }

    #[test]
    fn statuses_carry_the_model_reason_and_message() {
        let e = ModelError::UnknownNetwork(NetworkKey::new("a", "b"));
        let s = status(StoreError::Model(e.clone()));
        assert_eq!(error_detail::reason(&s), Some(ErrorReason::UnknownNetwork));
        assert_eq!(s.message(), e.to_string());
    }
}
