//! `weft-cni`: the CNI contract (stdin + `CNI_*` variables in, JSON result or error object out),
//! with the actual work forwarded to the node's `weft-agent` over a unix socket.
//!
//! [`run`] is the whole plugin minus I/O, so tests drive it with any environment and stdin.

pub mod client;
pub mod parse;

pub use parse::{Command, Invocation, LATEST_VERSION, SUPPORTED_VERSIONS};

use serde_json::{Value, json};
use std::collections::HashMap;
use weft_proto::cni::v1 as pb;
use weft_proto::cni::{CniError, ErrorCode, result};

/// What the plugin prints and how it exits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    pub stdout: String,
    pub exit_code: i32,
}

impl Output {
    fn ok(v: Option<Value>) -> Self {
        Output {
            stdout: v.map(|v| v.to_string()).unwrap_or_default(),
            exit_code: 0,
        }
    }

    fn err(version: &str, e: &CniError) -> Self {
        Output {
            stdout: e.to_json(version).to_string(),
            exit_code: 1,
        }
    }
}

/// The agent as the plugin sees it. `Err` means it could not be reached or did not answer.
pub trait Agent {
    fn call(
        &self,
        socket: &str,
        command: Command,
        request: pb::CniRequest,
    ) -> Result<pb::CniReply, String>;
}

/// Runs one CNI invocation.
pub fn run(env: &HashMap<String, String>, stdin: &[u8], agent: &dyn Agent) -> Output {
    if let Ok(Command::Version) = parse::command(env) {
        let supported: Vec<&str> = SUPPORTED_VERSIONS.to_vec();
        return Output::ok(Some(
            json!({"cniVersion": LATEST_VERSION, "supportedVersions": supported}),
        ));
    }
    let inv = match parse::parse(env, stdin) {
        Ok(inv) => inv,
        Err((version, e)) => return Output::err(&version, &e),
    };
    let prev = inv.request.prev_result.clone();
    let reply = match agent.call(&inv.socket, inv.command, inv.request) {
        Ok(r) => r,
        Err(why) => {
            let code = if inv.command == Command::Status {
                ErrorCode::NotAvailable
            } else {
                ErrorCode::TryAgain
            };
            let e = CniError::new(code, format!("weft-agent unreachable at {}", inv.socket))
                .with_details(why);
            return Output::err(&inv.version, &e);
        }
    };
    if let Some(e) = reply.error.filter(|e| e.code != 0) {
        return Output::err(&inv.version, &CniError::from(e));
    }
    match inv.command {
        Command::Add => {
            let Some(ours) = reply.result else {
                let e = CniError::new(
                    ErrorCode::IoFailure,
                    "weft-agent answered ADD without a result",
                );
                return Output::err(&inv.version, &e);
            };
            let merged = result::amend(prev, ours);
            Output::ok(Some(result::render(&merged, &inv.version)))
        }
        _ => Output::ok(None),
    }
}
