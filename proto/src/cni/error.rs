//! The spec's error object.

use serde_json::{Value, json};

use super::ErrorCode;
use super::v1 as pb;

/// A CNI error (`code`, `msg`, `details`), as the agent answers it and the plugin prints it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("CNI error {code}: {msg}")]
pub struct CniError {
    pub code: ErrorCode,
    pub msg: String,
    pub details: String,
}

impl CniError {
    pub fn new(code: ErrorCode, msg: impl Into<String>) -> Self {
        CniError {
            code,
            msg: msg.into(),
            details: String::new(),
        }
    }

    pub fn with_details(mut self, details: impl Into<String>) -> Self {
        self.details = details.into();
        self
    }

    /// The JSON error object for configuration version `version`.
    pub fn to_json(&self, version: &str) -> Value {
        let mut v = json!({"cniVersion": version, "code": self.code.value(), "msg": self.msg});
        if !self.details.is_empty() {
            v["details"] = json!(self.details);
        }
        v
    }
}

impl From<pb::CniError> for CniError {
    fn from(e: pb::CniError) -> Self {
        CniError {
            code: e.code.into(),
            msg: e.msg,
            details: e.details,
        }
    }
}

impl From<CniError> for pb::CniError {
    fn from(e: CniError) -> Self {
        pb::CniError {
            code: e.code.value(),
            msg: e.msg,
            details: e.details,
        }
    }
}
