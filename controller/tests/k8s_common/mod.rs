//! Shared by the Kubernetes-mode tests: the kmock API emulator as a child process.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kube::Client;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The venv python with kmock, made by `scripts/k8s-venv.sh` if needed. `None` (test skipped)
/// only outside CI when the venv cannot be made (no network to PyPI).
pub fn python() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("WEFT_K8S_PYTHON") {
        return Some(PathBuf::from(p));
    }
    let out = Command::new(repo().join("scripts/k8s-venv.sh"))
        .stderr(Stdio::inherit())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim().to_string()));
    let required =
        std::env::var_os("CI").is_some() || std::env::var_os("WEFT_REQUIRE_PRIVILEGED").is_some();
    match out {
        Some(p) if p.exists() => Some(p),
        _ if required => panic!("scripts/k8s-venv.sh failed: the kmock emulator is required in CI"),
        _ => {
            eprintln!("SKIP: no kmock venv (scripts/k8s-venv.sh failed)");
            None
        }
    }
}

/// A running emulator; killed on drop.
pub struct Emulator {
    child: Child,
    pub port: u16,
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Emulator {
    pub fn start() -> Option<Emulator> {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
            )
            .with_test_writer()
            .try_init();
        let py = python()?;
        let mut child = Command::new(py)
            .arg(repo().join("controller/tests/kmock/weft_kmock.py"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting the kmock emulator");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("emulator port");
        let port = line
            .trim()
            .strip_prefix("PORT ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("emulator said {line:?}"));
        Some(Emulator { child, port })
    }

    pub fn client(&self) -> Client {
        let url = format!("http://127.0.0.1:{}", self.port);
        let config = kube::Config::new(url.parse().expect("url"));
        Client::try_from(config).expect("client")
    }
}

/// Polls `f` until it returns `Some`, or panics with `what` after `limit`.
pub async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
