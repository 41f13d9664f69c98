//! Network namespace guard.

use crate::cmd::{self, ip, pid_alive, run, tool};
use crate::{Error, Result};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A named network namespace (`ip netns add`) with `lo` up. `Drop` kills every process left in it
/// and deletes it.
#[derive(Debug)]
pub struct NetNs {
    name: String,
}

impl NetNs {
    /// Creates `<prefix>-<pid>-<counter>`, unique across parallel tests and test binaries.
    /// Namespaces of the same prefix left behind by a test process that no longer exists
    /// (e.g. one killed by SIGKILL) are deleted first.
    pub fn new(prefix: &str) -> Result<Self> {
        remove_stale(prefix);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("{prefix}-{}-{n}", std::process::id());
        ip(&["netns", "add", &name])?;
        let ns = NetNs { name };
        ns.exec(&["ip", "link", "set", "lo", "up"])?;
        Ok(ns)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// A `Command` that runs `program` inside the namespace (`ip netns exec`). The program is
    /// resolved to an absolute path when found, since `cargo test`'s PATH may lack sbin dirs.
    pub fn command(&self, program: &str) -> Result<Command> {
        let resolved = cmd::find_tool(program).unwrap_or_else(|| program.into());
        cmd::command_in(Some(&self.name), &resolved)
    }

    /// Runs `args[0]` with the rest as arguments inside the namespace; returns stdout.
    pub fn exec(&self, args: &[&str]) -> Result<String> {
        let (program, rest) = args.split_first().ok_or_else(|| Error::Command {
            cmd: format!("ip netns exec {}", self.name),
            status: "not run".into(),
            stderr: "empty command".into(),
        })?;
        run(self.command(program)?.args(rest))
    }

    /// Starts a long-running process inside the namespace (stdin null, output inherited), and
    /// returns once it is in there: `ip netns exec` enters the namespace after it started, so
    /// without the wait a caller (or this namespace's drop, which kills what runs inside) could
    /// look before it arrived. Whatever is still running when the namespace is dropped gets
    /// killed.
    pub fn spawn(&self, args: &[&str]) -> Result<Child> {
        let (program, rest) = args.split_first().ok_or_else(|| Error::Command {
            cmd: format!("ip netns exec {}", self.name),
            status: "not run".into(),
            stderr: "empty command".into(),
        })?;
        let mut child = self
            .command(program)?
            .args(rest)
            .stdin(Stdio::null())
            .spawn()
            .map_err(|source| Error::Io {
                what: format!("spawn `{}` in netns {}", args.join(" "), self.name),
                source,
            })?;
        use std::os::unix::fs::MetadataExt;
        let target = std::fs::metadata(format!("/run/netns/{}", self.name)).map(|m| m.ino());
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while let Ok(want) = target {
            let here = std::fs::metadata(format!("/proc/{}/ns/net", child.id())).map(|m| m.ino());
            let exited = matches!(child.try_wait(), Ok(Some(_)));
            if here.ok() == Some(want) || exited || std::time::Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        Ok(child)
    }

    /// Runs `f` on a fresh thread that has joined this namespace, and returns its result.
    ///
    /// Sockets created inside `f` stay bound to the namespace after the thread ends, so a test can
    /// send real traffic between namespaces with std sockets and no external tools.
    pub fn run_in<R: Send + 'static>(&self, f: impl FnOnce() -> R + Send + 'static) -> Result<R> {
        let path = format!("/run/netns/{}", self.name);
        let file = std::fs::File::open(&path).map_err(|source| Error::Io {
            what: format!("open {path}"),
            source,
        })?;
        let handle = std::thread::spawn(move || {
            use std::os::fd::AsRawFd;
            // SAFETY: setns on a valid namespace fd only changes this thread's network namespace.
            let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
            if rc != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(f())
        });
        let joined = handle.join().map_err(|_| Error::Io {
            what: format!("thread in netns {}", self.name),
            source: std::io::Error::other("panicked"),
        })?;
        joined.map_err(|source| Error::Io {
            what: format!("setns into {}", self.name),
            source,
        })
    }

    /// Pids of processes whose network namespace is this one.
    pub fn pids(&self) -> Vec<i32> {
        ip(&["netns", "pids", &self.name])
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect()
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        for _ in 0..40 {
            let pids = self.pids();
            if pids.is_empty() {
                break;
            }
            for pid in pids {
                // SAFETY: kill(2) with a valid signal number has no memory-safety preconditions.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        if let Err(e) = ip(&["netns", "del", &self.name]) {
            eprintln!("testbed: deleting netns {}: {e}", self.name);
        }
    }
}

/// Deletes `<prefix>-<pid>-<n>` namespaces whose creating process is gone.
fn remove_stale(prefix: &str) {
    let Ok(list) = ip(&["netns", "list"]) else {
        return;
    };
    for name in list.lines().filter_map(|l| l.split_whitespace().next()) {
        let Some(rest) = name.strip_prefix(prefix).and_then(|r| r.strip_prefix('-')) else {
            continue;
        };
        let mut parts = rest.split('-');
        let (Some(pid), Some(n), None) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        let (Ok(pid), Ok(_)) = (pid.parse::<i32>(), n.parse::<u32>()) else {
            continue;
        };
        if !pid_alive(pid) {
            let _ = ip(&["netns", "del", name]);
        }
    }
}

/// Creates a veth pair with `a_if` in namespace `a` and `b_if` in `b`, both up.
pub fn veth_pair(a: &NetNs, a_if: &str, b: &NetNs, b_if: &str) -> Result<()> {
    run(Command::new(tool("ip")?).args([
        "link", "add", a_if, "netns", &a.name, "type", "veth", "peer", "name", b_if, "netns",
        &b.name,
    ]))?;
    a.exec(&["ip", "link", "set", a_if, "up"])?;
    b.exec(&["ip", "link", "set", b_if, "up"])?;
    Ok(())
}
