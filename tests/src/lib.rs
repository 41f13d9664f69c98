//! End-to-end tests on a lab fabric: each test builds its own uniquely named lab with the real
//! `weftctl` binary (controller, agents, OVS, `weft-cni`), drives it through the CLI, and tears it
//! down in a guard, so a failing test leaves nothing behind.
//!
//! Traffic is checked from inside pod namespaces: with `ping`/`arping` (iputils) and with std
//! sockets opened by threads that joined a pod's namespace (TCP echo, UDP broadcast).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

pub mod raw;

/// The binaries a lab runs, built once per test binary into the running test's target dir and
/// profile. `None` (with the reason printed) when the build failed.
fn bin_dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let exe = std::env::current_exe().expect("test executable path");
        // <target>/<profile>/deps/<test>
        let profile = exe
            .parent()
            .and_then(Path::parent)
            .expect("target profile dir")
            .to_path_buf();
        let target = profile.parent().expect("target dir").to_path_buf();
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut c = Command::new(cargo);
        c.args(["build", "-q", "--bins"])
            .args([
                "-p",
                "weftctl",
                "-p",
                "weft-controller",
                "-p",
                "weft-agent",
                "-p",
                "weft-cni",
            ])
            .arg("--target-dir")
            .arg(&target);
        if profile.file_name().is_some_and(|n| n == "release") {
            c.arg("--release");
        }
        let out = c.output().expect("running cargo build");
        assert!(
            out.status.success(),
            "building the lab binaries: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        profile
    })
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A running lab; `Drop` runs `weftctl lab down`.
pub struct Lab {
    pub name: String,
    weftctl: PathBuf,
}

impl Lab {
    /// Builds a lab with `nodes` nodes for `test`, or `None` (after printing why) when this
    /// machine cannot run privileged tests.
    pub fn up(test: &str, nodes: u32) -> Option<Lab> {
        if !weft_testbed::privileged_or_skip(test) {
            return None;
        }
        let dir = bin_dir();
        let short: String = test
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .take(10)
            .collect::<String>()
            .to_ascii_lowercase();
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("t{short}-{:x}{n}", std::process::id() % 0x10000);
        let lab = Lab {
            name,
            weftctl: dir.join("weftctl"),
        };
        let started = Instant::now();
        lab.ok(&["lab", "up", "--nodes", &nodes.to_string()]);
        eprintln!(
            "{test}: lab {} with {nodes} nodes up in {:.1} s",
            lab.name,
            started.elapsed().as_secs_f64()
        );
        Some(lab)
    }

    /// `weftctl --lab <name> <args>`.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.weftctl);
        c.arg("--lab")
            .arg(&self.name)
            .args(args)
            .env("WEFT_BIN_DIR", bin_dir())
            .env("PATH", path_with_sbin())
            .stdin(Stdio::null());
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("running weftctl")
    }

    /// Runs weftctl and panics with its output unless it succeeds; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "weftctl {} failed ({}):\n{}\n{}\n--- controller log ---\n{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.log_tail("controller", None)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs weftctl with `-o json` and parses stdout.
    pub fn json(&self, args: &[&str]) -> Value {
        let mut a = vec!["-o", "json"];
        a.extend_from_slice(args);
        let text = self.ok(&a);
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("weftctl {args:?}: {e}: {text}"))
    }

    pub fn log_tail(&self, component: &str, node: Option<&str>) -> String {
        let mut a = vec!["lab", "logs", component, "--lines", "30"];
        if let Some(n) = node {
            a.extend(["--node", n]);
        }
        let out = self.run(&a);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn net(&self, name: &str, subnet: Option<&str>) -> Value {
        let mut a = vec!["net", "create", name];
        if let Some(s) = subnet {
            a.extend(["--subnet", s]);
        }
        self.json(&a)
    }

    /// `pod run NAME --node NODE --net NETS [--ip IPS]`; returns the pod as JSON.
    pub fn pod(&self, name: &str, node: &str, nets: &str, ips: Option<&str>) -> Value {
        let mut a = vec!["pod", "run", name, "--node", node, "--net", nets];
        if let Some(i) = ips {
            a.extend(["--ip", i]);
        }
        self.json(&a)
    }

    /// First address (without prefix) of a pod's attachment `idx`.
    pub fn ip_of(pod: &Value, idx: usize) -> String {
        pod["attachments"][idx]["ips"][0]
            .as_str()
            .and_then(|s| s.split('/').next())
            .unwrap_or_else(|| panic!("pod has no address: {pod}"))
            .to_string()
    }

    pub fn pod_ns(&self, pod: &str) -> String {
        format!("weft-{}-pod-{pod}", self.name)
    }

    pub fn node_ns(&self, node: &str) -> String {
        format!("weft-{}-{node}", self.name)
    }

    /// Runs a command in a pod (through `weftctl pod exec`).
    pub fn exec(&self, pod: &str, cmd: &[&str]) -> Output {
        let mut a = vec!["pod", "exec", pod, "--"];
        a.extend_from_slice(cmd);
        self.run(&a)
    }

    /// Starts a command in a pod in the background (stdout captured).
    pub fn spawn(&self, pod: &str, cmd: &[&str]) -> Child {
        let mut a = vec!["pod", "exec", pod, "--"];
        a.extend_from_slice(cmd);
        self.cmd(&a)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawning in pod")
    }

    /// `count` pings 200 ms apart with a 1 s timeout each; true when all were answered.
    pub fn ping(&self, pod: &str, ip: &str, count: u32) -> bool {
        let c = count.to_string();
        self.exec(pod, &["ping", "-c", &c, "-i", "0.2", "-W", "1", "-q", ip])
            .status
            .success()
    }

    /// True when no single ping of `count` is answered.
    pub fn unreachable(&self, pod: &str, ip: &str, count: u32) -> bool {
        let c = count.to_string();
        let out = self.exec(pod, &["ping", "-c", &c, "-i", "0.2", "-W", "1", ip]);
        let text = String::from_utf8_lossy(&out.stdout);
        !out.status.success() && text.contains(" 0 received")
    }

    /// Runs `f` on a thread inside the pod's network namespace.
    pub fn in_pod<R: Send + 'static>(
        &self,
        pod: &str,
        f: impl FnOnce() -> R + Send + 'static,
    ) -> R {
        in_netns(&self.pod_ns(pod), f)
    }

    /// A flow dump of `weft0` on a node.
    pub fn flows(&self, node: &str) -> String {
        let rundir = format!("/run/weft-lab/{}/{node}/ovs", self.name);
        let out = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.node_ns(node),
                "ovs-ofctl",
                "-O",
                "OpenFlow13",
            ])
            .args(["dump-flows", "weft0"])
            .env("OVS_RUNDIR", &rundir)
            .env("PATH", path_with_sbin())
            .output()
            .expect("ovs-ofctl");
        assert!(
            out.status.success(),
            "dump-flows: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Tunnel ports per node, from `lab status`.
    pub fn tunnels(&self) -> Vec<(String, u64)> {
        let s = self.json(&["lab", "status"]);
        s["nodes"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|n| {
                (
                    n["name"].as_str().unwrap_or("").to_string(),
                    n["tunnels"].as_u64().unwrap_or(0),
                )
            })
            .collect()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let out = self.run(&["lab", "down"]);
        if !out.status.success() {
            eprintln!(
                "lab down {} failed: {}",
                self.name,
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

fn path_with_sbin() -> String {
    let p = std::env::var("PATH").unwrap_or_default();
    format!("{p}:/usr/sbin:/sbin:/usr/bin:/bin")
}

/// Runs `f` on a thread that joined network namespace `ns`.
pub fn in_netns<R: Send + 'static>(ns: &str, f: impl FnOnce() -> R + Send + 'static) -> R {
    let path = format!("/run/netns/{ns}");
    let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
    std::thread::spawn(move || {
        use std::os::fd::AsRawFd;
        // SAFETY: setns on a valid namespace fd changes only this thread's network namespace.
        let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
        f()
    })
    .join()
    .expect("thread in namespace panicked")
}

/// A TCP server in a pod that answers each connection with `<name>:` followed by the echo of
/// what it received. Returns once it listens; serves `conns` connections on a thread.
pub fn tcp_echo_server(lab: &Lab, pod: &str, addr: SocketAddr, name: &str, conns: usize) {
    let name = name.to_string();
    let listener = lab.in_pod(pod, move || {
        TcpListener::bind(addr).expect("bind echo server")
    });
    std::thread::spawn(move || {
        for _ in 0..conns {
            let Ok((mut s, _)) = listener.accept() else {
                return;
            };
            let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
            let mut buf = Vec::new();
            let _ = s.read_to_end(&mut buf);
            let _ = s.write_all(format!("{name}:").as_bytes());
            let _ = s.write_all(&buf);
        }
    });
}

/// Connects from a pod, sends `payload`, half-closes, returns the whole answer.
pub fn tcp_roundtrip(
    lab: &Lab,
    pod: &str,
    to: SocketAddr,
    payload: Vec<u8>,
) -> std::io::Result<Vec<u8>> {
    lab.in_pod(pod, move || {
        let mut s = TcpStream::connect_timeout(&to, Duration::from_secs(3))?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        s.write_all(&payload)?;
        s.shutdown(std::net::Shutdown::Write)?;
        let mut out = Vec::new();
        s.read_to_end(&mut out)?;
        Ok(out)
    })
}

/// A UDP socket bound in a pod on `port` (all addresses), for broadcast checks.
pub fn udp_listener(lab: &Lab, pod: &str, port: u16) -> UdpSocket {
    lab.in_pod(pod, move || {
        let s = UdpSocket::bind(("0.0.0.0", port)).expect("bind udp");
        s.set_read_timeout(Some(Duration::from_millis(200)))
            .expect("timeout");
        s
    })
}

/// Sends `msg` to the limited broadcast address from a pod (out of `ifname`).
pub fn udp_broadcast(lab: &Lab, pod: &str, ifname: &str, port: u16, msg: &'static [u8]) {
    let ifname = ifname.to_string();
    lab.in_pod(pod, move || {
        let s = UdpSocket::bind("0.0.0.0:0").expect("bind");
        s.set_broadcast(true).expect("broadcast");
        bind_to_device(&s, &ifname);
        for _ in 0..3 {
            s.send_to(msg, ("255.255.255.255", port))
                .expect("send broadcast");
            std::thread::sleep(Duration::from_millis(50));
        }
    });
}

fn bind_to_device(s: &UdpSocket, ifname: &str) {
    use std::os::fd::AsRawFd;
    // SAFETY: SO_BINDTODEVICE with a valid buffer and length.
    let rc = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_BINDTODEVICE,
            ifname.as_ptr().cast(),
            ifname.len() as libc::socklen_t,
        )
    };
    assert_eq!(
        rc,
        0,
        "SO_BINDTODEVICE {ifname}: {}",
        std::io::Error::last_os_error()
    );
}

/// Every datagram a socket gets within `wait`.
pub fn drain(s: &UdpSocket, wait: Duration) -> Vec<Vec<u8>> {
    let deadline = Instant::now() + wait;
    let mut got = Vec::new();
    let mut buf = [0u8; 2048];
    while Instant::now() < deadline {
        if let Ok((n, _)) = s.recv_from(&mut buf) {
            got.push(buf[..n].to_vec());
        }
    }
    got
}

/// `(transmitted, received)` from ping's summary line.
pub fn ping_counts(out: &str) -> Option<(u64, u64)> {
    let line = out.lines().find(|l| l.contains("packets transmitted"))?;
    let mut nums = line
        .split(',')
        .filter_map(|p| p.split_whitespace().next().and_then(|n| n.parse().ok()));
    Some((nums.next()?, nums.next()?))
}

#[cfg(test)]
mod tests {
    #[test]
    fn ping_summary_parsed() {
        let out = "--- 10.1.0.2 ping statistics ---\n500 packets transmitted, 498 received, 0.4% packet loss, time 5012ms\n";
        assert_eq!(super::ping_counts(out), Some((500, 498)));
        assert_eq!(super::ping_counts("nothing"), None);
    }
}
