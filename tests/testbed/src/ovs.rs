//! Open vSwitch sandbox: a private ovsdb-server (and optionally ovs-vswitchd) in a temp dir.

use crate::cmd::{command_in, run, tail, tool, wait_until};
use crate::{Error, NetNs, Result, vswitch_schema};
use std::fs::File;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const OVSDB_READY: Duration = Duration::from_secs(15);
const VSWITCHD_READY: Duration = Duration::from_secs(30);
const EXIT_GRACE: Duration = Duration::from_secs(5);

/// A private Open vSwitch: ovsdb-server with the vswitch schema and, unless started with
/// [`OvsSandbox::start_db_only`], ovs-vswitchd. All state (db, sockets, logs, `<bridge>.mgmt`)
/// lives in a temp dir; nothing touches `/var/run/openvswitch`. `Drop` stops both daemons, removes
/// tap devices they left in the root namespace, and deletes the temp dir.
#[derive(Debug)]
pub struct OvsSandbox {
    netns: Option<String>,
    ovsdb: Option<Child>,
    vswitchd: Option<Child>,
    // Dropped last, after `Drop::drop` stopped the daemons writing into it.
    dir: tempfile::TempDir,
}

impl OvsSandbox {
    /// ovsdb-server and ovs-vswitchd in the root network namespace. Bridges created here are tap
    /// devices in the root namespace: give them unique names ([`crate::unique_ifname`]).
    pub fn start() -> Result<Self> {
        let mut sb = Self::start_db(None)?;
        sb.start_vswitchd()?;
        Ok(sb)
    }

    /// Both daemons inside `ns`; bridges and internal ports appear there. Drop the sandbox before
    /// the namespace.
    pub fn start_in_netns(ns: &NetNs) -> Result<Self> {
        let mut sb = Self::start_db(Some(ns.name().to_string()))?;
        sb.start_vswitchd()?;
        Ok(sb)
    }

    /// Only ovsdb-server with the vswitch schema, for OVSDB client tests.
    pub fn start_db_only() -> Result<Self> {
        Self::start_db(None)
    }

    /// Unix socket of the ovsdb-server (`unix:<this>` is the OVSDB remote).
    pub fn db_sock(&self) -> PathBuf {
        self.dir.path().join("db.sock")
    }

    /// The run dir holding the db, sockets, pidfiles and logs.
    pub fn rundir(&self) -> &Path {
        self.dir.path()
    }

    pub fn netns(&self) -> Option<&str> {
        self.netns.as_deref()
    }

    pub fn ovsdb_pid(&self) -> Option<u32> {
        self.ovsdb.as_ref().map(Child::id)
    }

    pub fn vswitchd_pid(&self) -> Option<u32> {
        self.vswitchd.as_ref().map(Child::id)
    }

    /// `ovs-vsctl --db=unix:<sock> --timeout=10 <args>`; adds `--no-wait` when no vswitchd runs
    /// (otherwise ovs-vsctl would wait for a reconfiguration that never comes).
    pub fn vsctl(&self, args: &[&str]) -> Result<String> {
        let mut c = self.ovs_command("ovs-vsctl")?;
        c.arg(format!("--db=unix:{}", self.db_sock().display()))
            .arg("--timeout=10");
        if self.vswitchd.is_none() {
            c.arg("--no-wait");
        }
        run(c.args(args))
    }

    /// `ovs-ofctl <args>` with OVS_RUNDIR set, so a bridge name reaches `<rundir>/<bridge>.mgmt`.
    pub fn ofctl(&self, args: &[&str]) -> Result<String> {
        let mut c = self.ovs_command("ovs-ofctl")?;
        run(c.args(args))
    }

    /// `ovs-appctl -t <vswitchd control socket> <args>`.
    pub fn appctl_vswitchd(&self, args: &[&str]) -> Result<String> {
        let mut c = self.ovs_command("ovs-appctl")?;
        c.arg("--timeout=10").arg("-t").arg(self.vswitchd_ctl());
        run(c.args(args))
    }

    /// SIGKILLs ovs-vswitchd and reaps it, for "switch died" tests. Its tap devices stay behind
    /// (they are persistent) until the sandbox is dropped.
    pub fn kill_vswitchd(&mut self) -> Result<()> {
        if let Some(mut child) = self.vswitchd.take() {
            child.kill().map_err(|source| Error::Io {
                what: "kill ovs-vswitchd".into(),
                source,
            })?;
            let _ = child.wait();
        }
        Ok(())
    }

    /// (Re)starts ovs-vswitchd after [`Self::kill_vswitchd`] or on a db-only sandbox.
    pub fn start_vswitchd(&mut self) -> Result<()> {
        if self.vswitchd.is_some() {
            return Ok(());
        }
        // vswitchd needs the Open_vSwitch root row; `init` is idempotent.
        self.vsctl(&["init"])?;
        let rundir = self.rundir().to_path_buf();
        let log = rundir.join("ovs-vswitchd.log");
        let stderr = rundir.join("ovs-vswitchd.stderr");
        let mut c = self.ovs_command("ovs-vswitchd")?;
        c.arg(format!("unix:{}", self.db_sock().display()))
            .arg(format!("--unixctl={}", self.vswitchd_ctl().display()))
            .arg(format!(
                "--pidfile={}",
                rundir.join("ovs-vswitchd.pid").display()
            ))
            .arg(format!("--log-file={}", log.display()))
            .arg("-vconsole:off");
        let child = spawn_daemon(c, &stderr, "ovs-vswitchd")?;
        self.vswitchd = Some(child);
        let ctl = self.vswitchd_ctl();
        let start = Instant::now();
        let ready = wait_until(VSWITCHD_READY, || {
            self.check_alive_vswitchd(&log, &stderr)?;
            Ok(ctl.exists() && self.appctl_vswitchd(&["version"]).is_ok())
        })?;
        if !ready {
            return Err(Error::NotReady {
                what: "ovs-vswitchd".into(),
                waited: start.elapsed(),
                detail: format!("{}\n{}", tail(&log, 20), tail(&stderr, 10)),
            });
        }
        Ok(())
    }

    /// Adds a userspace (`netdev`) bridge, fail_mode=secure, OpenFlow 1.3 only.
    pub fn add_bridge_netdev(&self, name: &str) -> Result<()> {
        self.vsctl(&[
            "add-br",
            name,
            "--",
            "set",
            "Bridge",
            name,
            "datapath_type=netdev",
            "fail_mode=secure",
            "protocols=OpenFlow13",
        ])?;
        Ok(())
    }

    fn start_db(netns: Option<String>) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("weft-ovs-")
            .tempdir()
            .map_err(|source| Error::Io {
                what: "create sandbox temp dir".into(),
                source,
            })?;
        let mut sb = OvsSandbox {
            netns,
            ovsdb: None,
            vswitchd: None,
            dir,
        };
        run(Command::new(tool("ovsdb-tool")?)
            .arg("create")
            .arg(sb.rundir().join("conf.db"))
            .arg(vswitch_schema()))?;
        sb.spawn_ovsdb()?;
        Ok(sb)
    }

    /// Stops ovsdb-server (SIGKILL) and starts it again on the same db file and socket, for
    /// client reconnect tests. Clients see the connection drop; the data survives.
    pub fn restart_ovsdb(&mut self) -> Result<()> {
        self.kill_ovsdb();
        let _ = std::fs::remove_file(self.db_sock());
        self.spawn_ovsdb()
    }

    fn kill_ovsdb(&mut self) {
        if let Some(mut child) = self.ovsdb.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn spawn_ovsdb(&mut self) -> Result<()> {
        let rundir = self.rundir().to_path_buf();
        let db = rundir.join("conf.db");
        let log = rundir.join("ovsdb-server.log");
        let stderr = rundir.join("ovsdb-server.stderr");
        let mut c = self.ovs_command("ovsdb-server")?;
        c.arg(&db)
            .arg(format!("--remote=punix:{}", self.db_sock().display()))
            .arg(format!(
                "--unixctl={}",
                rundir.join("ovsdb-server.ctl").display()
            ))
            .arg(format!(
                "--pidfile={}",
                rundir.join("ovsdb-server.pid").display()
            ))
            .arg(format!("--log-file={}", log.display()))
            .arg("-vconsole:off");
        self.ovsdb = Some(spawn_daemon(c, &stderr, "ovsdb-server")?);
        let sock = self.db_sock();
        let start = Instant::now();
        let ready = wait_until(OVSDB_READY, || {
            if let Some(status) = self
                .ovsdb
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                return Err(Error::Exited {
                    what: "ovsdb-server".into(),
                    status: status.to_string(),
                    detail: format!("{}\n{}", tail(&log, 20), tail(&stderr, 10)),
                });
            }
            Ok(UnixStream::connect(&sock).is_ok())
        })?;
        if !ready {
            return Err(Error::NotReady {
                what: "ovsdb-server".into(),
                waited: start.elapsed(),
                detail: format!("{}\n{}", tail(&log, 20), tail(&stderr, 10)),
            });
        }
        Ok(())
    }

    fn vswitchd_ctl(&self) -> PathBuf {
        self.rundir().join("ovs-vswitchd.ctl")
    }

    fn check_alive_vswitchd(&self, log: &Path, stderr: &Path) -> Result<()> {
        // Cannot borrow mutably inside the readiness closure; look at /proc instead of try_wait.
        if let Some(pid) = self.vswitchd_pid() {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let state = stat
                .rsplit_once(") ")
                .and_then(|(_, rest)| rest.chars().next());
            if stat.is_empty() || state == Some('Z') {
                return Err(Error::Exited {
                    what: "ovs-vswitchd".into(),
                    status: "died during start".into(),
                    detail: format!("{}\n{}", tail(log, 20), tail(stderr, 10)),
                });
            }
        }
        Ok(())
    }

    /// A command for an OVS tool with the sandbox's directories in its environment, run in the
    /// sandbox's namespace if any.
    fn ovs_command(&self, program: &str) -> Result<Command> {
        let mut c = command_in(self.netns.as_deref(), &tool(program)?)?;
        let dir = self.rundir();
        c.env("OVS_RUNDIR", dir)
            .env("OVS_DBDIR", dir)
            .env("OVS_LOGDIR", dir)
            .env("OVS_SYSCONFDIR", dir)
            .env(
                "OVS_PKGDATADIR",
                vswitch_schema().parent().unwrap_or(Path::new("/")),
            );
        Ok(c)
    }

    /// Names of internal interfaces in the db; in the netdev datapath each is a persistent tap.
    fn internal_interfaces(&self) -> Vec<String> {
        let out = self
            .vsctl(&[
                "--format=csv",
                "--data=bare",
                "--no-headings",
                "--columns=name",
                "find",
                "Interface",
                "type=internal",
            ])
            .unwrap_or_default();
        out.lines()
            .map(|l| l.trim().trim_matches('"').to_string())
            .filter(|l| !l.is_empty())
            .collect()
    }
}

fn spawn_daemon(mut c: Command, stderr: &Path, what: &str) -> Result<Child> {
    let err = File::create(stderr).map_err(|source| Error::Io {
        what: format!("create {}", stderr.display()),
        source,
    })?;
    c.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(err)
        .spawn()
        .map_err(|source| Error::Io {
            what: format!("spawn {what}"),
            source,
        })
}

fn wait_or_kill(child: &mut Child, grace: Duration) {
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

impl Drop for OvsSandbox {
    fn drop(&mut self) {
        // Taps outlive a killed vswitchd; in the root namespace nobody else would remove them.
        let leftovers = if self.netns.is_none() {
            self.internal_interfaces()
        } else {
            Vec::new()
        };
        if self.vswitchd.is_some() {
            // `exit --cleanup` makes vswitchd delete its datapaths and taps; SIGKILL if it hangs.
            let _ = self.appctl_vswitchd(&["exit", "--cleanup"]);
            if let Some(mut child) = self.vswitchd.take() {
                wait_or_kill(&mut child, EXIT_GRACE);
            }
        }
        for name in leftovers {
            remove_tap(&name);
        }
        self.kill_ovsdb();
    }
}

/// Deletes a root-namespace link only if it is a persistent tap (what the netdev datapath makes),
/// never some other device that happens to share the name.
fn remove_tap(name: &str) {
    let Ok(details) = crate::cmd::ip(&["-d", "link", "show", "dev", name]) else {
        return;
    };
    if details.contains("tun type tap") {
        let _ = crate::cmd::ip(&["link", "del", "dev", name]);
    }
}
