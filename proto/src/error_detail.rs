//! The machine-readable reason of an error status: a [`ErrorDetail`] encoded in the status
//! details. Servers build statuses only through [`status`], so the gRPC code always follows the
//! reason; clients read the reason back with [`reason`].

use prost::Message;
use tonic::{Code, Status};

pub use crate::common::v1::{ErrorDetail, ErrorReason};

/// The gRPC code that goes with a reason, for clients that only look at codes.
pub fn grpc_code(reason: ErrorReason) -> Code {
    use ErrorReason as R;
    match reason {
        R::Unspecified => Code::Unknown,
        R::InvalidRequest | R::AddressRefused => Code::InvalidArgument,
        R::UnknownNetwork | R::UnknownNode => Code::NotFound,
        R::AlreadyExists | R::AddressInUse => Code::AlreadyExists,
        R::NamespaceNotAllowed | R::NodeMismatch => Code::PermissionDenied,
        R::SubnetFull | R::SegmentsExhausted => Code::ResourceExhausted,
        R::InUse | R::NotPrepared => Code::FailedPrecondition,
        R::FlowsNotConfirmed => Code::DeadlineExceeded,
        R::StateNotPersisted => Code::Unavailable,
    }
}

/// An error status carrying `reason`.
pub fn status(reason: ErrorReason, message: impl Into<String>) -> Status {
    let detail = ErrorDetail {
        reason: reason as i32,
    };
    Status::with_details(
        grpc_code(reason),
        message.into(),
        detail.encode_to_vec().into(),
    )
}

/// The reason a status carries; `None` when it has none (a proxy, an older server, a transport
/// error) or the value is not one this version knows.
pub fn reason(status: &Status) -> Option<ErrorReason> {
    let detail = ErrorDetail::decode(status.details()).ok()?;
    match ErrorReason::try_from(detail.reason).ok()? {
        ErrorReason::Unspecified => None,
        r => Some(r),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_survives_the_status() {
        let s = status(ErrorReason::AddressInUse, "taken");
        assert_eq!(s.code(), Code::AlreadyExists);
        assert_eq!(s.message(), "taken");
        assert_eq!(reason(&s), Some(ErrorReason::AddressInUse));
    }

    #[test]
    fn plain_or_garbled_statuses_have_none() {
        assert_eq!(reason(&Status::unavailable("down")), None);
        let junk = Status::with_details(Code::Internal, "x", vec![0xff, 0xff].into());
        assert_eq!(reason(&junk), None);
        let future = ErrorDetail { reason: 9999 }.encode_to_vec();
        assert_eq!(
            reason(&Status::with_details(Code::Internal, "x", future.into())),
            None
        );
    }
}
