//! Talking to the operating system: external tools, network namespaces, processes, locks.
//!
//! Everything runs external tools (`ip`, OVS) rather than netlink directly: the lab is a thin
//! orchestrator and these are the tools an operator would use to inspect it too.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// Tools the lab runs; all ship with Open vSwitch and iproute2.
pub const OVS_TOOLS: &[&str] = &[
    "ovs-vswitchd",
    "ovsdb-server",
    "ovsdb-tool",
    "ovs-vsctl",
    "ovs-ofctl",
    "ovs-appctl",
];

/// Absolute path of a tool: PATH first, then the sbin/bin dirs a non-login root shell may lack.
pub fn find_tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/bin", "/sbin", "/bin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

pub fn tool(name: &str) -> Result<PathBuf> {
    find_tool(name).with_context(|| format!("`{name}` not found in PATH, /usr/sbin, /usr/bin"))
}

/// Refuses to go on unless root: namespaces, veths and OVS daemons all need it.
pub fn require_root() -> Result<()> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    if euid != 0 {
        bail!(
            "the lab needs root (it creates network namespaces and runs Open vSwitch); \
             you are uid {euid}: run with sudo"
        );
    }
    Ok(())
}

/// Says which tools are missing and how to get them.
pub fn require_tools() -> Result<()> {
    let missing: Vec<&str> = OVS_TOOLS
        .iter()
        .copied()
        .filter(|t| find_tool(t).is_none())
        .collect();
    if !missing.is_empty() {
        bail!(
            "Open vSwitch is not installed (missing {}): run scripts/install-deps.sh, \
             or apt-get install openvswitch-switch",
            missing.join(", ")
        );
    }
    if find_tool("ip").is_none() {
        bail!("`ip` (iproute2) is not installed: apt-get install iproute2");
    }
    Ok(())
}

fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Runs a command to completion; a non-zero exit becomes an error carrying stderr.
pub fn run(cmd: &mut Command) -> Result<String> {
    let what = describe(cmd);
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running `{what}`"))?;
    if !out.status.success() {
        bail!(
            "`{what}` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `ip <args>` in the root namespace (only ever to manage namespaces and create links directly
/// inside them; the lab never configures the root namespace's interfaces).
pub fn ip(args: &[&str]) -> Result<String> {
    run(Command::new(tool("ip")?).args(args))
}

/// A command running `program` inside namespace `ns` (`ip netns exec`, which also gives it a
/// `/sys` of that namespace).
pub fn in_netns(ns: &str, program: &Path) -> Result<Command> {
    let mut c = Command::new(tool("ip")?);
    c.args(["netns", "exec", ns]).arg(program);
    Ok(c)
}

pub fn netns_list() -> Vec<String> {
    ip(&["netns", "list"])
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(String::from)
        .collect()
}

pub fn netns_exists(ns: &str) -> bool {
    Path::new("/run/netns").join(ns).exists()
}

/// Creates a namespace with `lo` up.
pub fn netns_add(ns: &str) -> Result<()> {
    ip(&["netns", "add", ns])?;
    ip(&["-n", ns, "link", "set", "lo", "up"])?;
    Ok(())
}

pub fn netns_pids(ns: &str) -> Vec<i32> {
    ip(&["netns", "pids", ns])
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// Kills every process in `ns` (TERM, then KILL after `grace`) and deletes the namespace.
pub fn netns_destroy(ns: &str, grace: Duration) -> Result<()> {
    kill_all(&netns_pids(ns), grace);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !netns_pids(ns).is_empty() && Instant::now() < deadline {
        kill_all(&netns_pids(ns), Duration::ZERO);
    }
    if netns_exists(ns) {
        ip(&["netns", "del", ns])?;
    }
    Ok(())
}

/// A veth pair created directly in two namespaces (never in the root namespace), both ends up.
pub fn veth(a_ns: &str, a_if: &str, b_ns: &str, b_if: &str) -> Result<()> {
    ip(&[
        "link", "add", a_if, "netns", a_ns, "type", "veth", "peer", "name", b_if, "netns", b_ns,
    ])?;
    ip(&["-n", a_ns, "link", "set", a_if, "up"])?;
    ip(&["-n", b_ns, "link", "set", b_if, "up"])?;
    Ok(())
}

/// True while the process exists and is not a zombie.
pub fn pid_alive(pid: i32) -> bool {
    if pid <= 0 {
        return false;
    }
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat
        .rsplit_once(") ")
        .and_then(|(_, rest)| rest.chars().next());
    !stat.is_empty() && state != Some('Z')
}

fn signal(pid: i32, sig: i32) {
    if pid > 0 {
        // SAFETY: kill(2) with a positive pid and a valid signal has no memory preconditions.
        unsafe { libc::kill(pid, sig) };
    }
}

/// SIGTERM to each, wait up to `grace` for them to go, SIGKILL the rest and wait for that.
pub fn kill_all(pids: &[i32], grace: Duration) {
    let alive: Vec<i32> = pids.iter().copied().filter(|p| pid_alive(*p)).collect();
    if alive.is_empty() {
        return;
    }
    if !grace.is_zero() {
        for p in &alive {
            signal(*p, libc::SIGTERM);
        }
        wait_until(grace, || alive.iter().all(|p| !pid_alive(*p)));
    }
    for p in &alive {
        if pid_alive(*p) {
            signal(*p, libc::SIGKILL);
        }
    }
    wait_until(Duration::from_secs(5), || {
        alive.iter().all(|p| !pid_alive(*p))
    });
}

/// Polls `ready` every 50 ms until it holds or `timeout` passes; returns whether it held.
pub fn wait_until(timeout: Duration, mut ready: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if ready() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs `f` on a thread that joined namespace `ns`; sockets it opens stay in that namespace.
pub fn in_ns_thread<R: Send + 'static>(
    ns: &str,
    f: impl FnOnce() -> R + Send + 'static,
) -> Result<R> {
    let path = format!("/run/netns/{ns}");
    let file = File::open(&path).with_context(|| format!("opening {path}"))?;
    let handle = std::thread::spawn(move || {
        use std::os::fd::AsRawFd;
        // SAFETY: setns on a valid namespace fd only changes this thread's network namespace.
        let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(f())
    });
    let joined = handle
        .join()
        .map_err(|_| anyhow::anyhow!("thread in namespace {ns} panicked"))?;
    joined.with_context(|| format!("entering namespace {ns}"))
}

/// An exclusive advisory lock on a file, held until dropped (the fd closes).
pub struct FileLock {
    _file: File,
}

impl FileLock {
    /// Blocks until the lock on `path` (created if missing) is ours.
    pub fn acquire(path: &Path) -> Result<FileLock> {
        use std::os::fd::AsRawFd;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .with_context(|| format!("opening lock {}", path.display()))?;
        // SAFETY: flock on an fd we own; blocking is what we want.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
        if rc != 0 {
            return Err(std::io::Error::last_os_error())
                .with_context(|| format!("locking {}", path.display()));
        }
        Ok(FileLock { _file: file })
    }
}

/// Milliseconds since the Unix epoch, for state records.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The last `lines` lines of a file, for error messages.
pub fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
