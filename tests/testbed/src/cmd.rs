//! Running external tools and small helpers shared by the sandbox and namespace guards.

use crate::{Error, Result};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Absolute path of a tool, searched in PATH and then the sbin/bin dirs that `cargo test`'s PATH
/// often lacks.
pub fn find_tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/bin", "/sbin", "/bin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

pub(crate) fn tool(name: &str) -> Result<PathBuf> {
    find_tool(name).ok_or_else(|| Error::ToolMissing(name.to_string()))
}

/// A command for `program`, prefixed by `ip netns exec <ns>` when a namespace is given.
pub(crate) fn command_in(netns: Option<&str>, program: &Path) -> Result<Command> {
    Ok(match netns {
        Some(ns) => {
            let mut c = Command::new(tool("ip")?);
            c.args(["netns", "exec", ns]).arg(program);
            c
        }
        None => Command::new(program),
    })
}

fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Runs a command to completion; non-zero exit becomes an error carrying stderr.
pub(crate) fn run(cmd: &mut Command) -> Result<String> {
    let what = describe(cmd);
    tracing::debug!(cmd = %what, "run");
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|source| Error::Io {
            what: format!("spawn `{what}`"),
            source,
        })?;
    if !out.status.success() {
        return Err(Error::Command {
            cmd: what,
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs `ip <args>` in the root namespace.
pub(crate) fn ip(args: &[&str]) -> Result<String> {
    run(Command::new(tool("ip")?).args(args))
}

/// The last `lines` lines of a file, for error messages; empty if unreadable.
pub(crate) fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    let start = all.len().saturating_sub(lines);
    all[start..].join("\n")
}

/// Polls `ready` every 50 ms until it returns `Ok(true)`, an error, or `timeout` passes.
pub(crate) fn wait_until(
    timeout: Duration,
    mut ready: impl FnMut() -> Result<bool>,
) -> Result<bool> {
    let deadline = Instant::now() + timeout;
    loop {
        if ready()? {
            return Ok(true);
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub(crate) fn pid_alive(pid: i32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

static IFNAME_COUNTER: AtomicU32 = AtomicU32::new(0);

/// An interface name unique to this process and call, within the kernel's 15-byte limit.
///
/// Needed for devices in the root namespace (e.g. netdev bridges of a root-namespace sandbox are
/// tap devices there), where parallel tests would otherwise clash on names like `br0`.
pub fn unique_ifname(prefix: &str) -> String {
    let n = IFNAME_COUNTER.fetch_add(1, Ordering::Relaxed);
    let suffix = format!("{:x}{n:x}", std::process::id() % 0x10_0000);
    let keep = 15usize.saturating_sub(suffix.len());
    let prefix: String = prefix
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(keep)
        .collect();
    format!("{prefix}{suffix}")
}
