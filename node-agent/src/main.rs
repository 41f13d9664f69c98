//! `weft-agent`: one per node. Ensures the node's OVS bridge, builds a VXLAN tunnel to every peer
//! node the controller names, serves the CNI plugin, and exports Prometheus metrics. See
//! docs/agent.md.

use anyhow::Context;
use clap::Parser;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use weft_agent::agent::{Agent, AgentConfig, CniSettings};
use weft_agent::bridge::SslFiles;
use weft_agent::link::{LinkConfig, TlsFiles};
use weft_agent::metrics::Metrics;
use weft_agent::ovsdb::Endpoint;

#[derive(Parser, Debug)]
#[command(
    name = "weft-agent",
    version,
    about = "Weft node agent: OVS bridge, node-to-node VXLAN tunnels and the CNI server"
)]
struct Args {
    /// This node's name (as the controller knows it; also seeds the bridge's datapath id).
    #[arg(long, env = "WEFT_NODE_NAME")]
    node_name: String,
    /// The controller's gRPC URL, e.g. http://127.0.0.1:7070 (https:// with the TLS flags).
    #[arg(long, env = "WEFT_CONTROLLER")]
    controller: String,
    /// This node's underlay address: local end of every tunnel, announced to the controller.
    #[arg(long, env = "WEFT_UNDERLAY_IP")]
    underlay_ip: IpAddr,
    /// OVSDB server: unix:PATH or tcp:HOST:PORT.
    #[arg(
        long,
        env = "WEFT_OVSDB",
        default_value = "unix:/var/run/openvswitch/db.sock"
    )]
    ovsdb: String,
    /// The integration bridge.
    #[arg(long, env = "WEFT_BRIDGE", default_value = "weft0")]
    bridge: String,
    /// OVS datapath: system (kernel module) or netdev (userspace, where the kernel has none).
    #[arg(long, env = "WEFT_DATAPATH_TYPE", default_value = "system", value_parser = ["system", "netdev"])]
    datapath_type: String,
    /// OpenFlow controller target(s) of the bridge, e.g. ssl:127.0.0.1:6653; repeat or
    /// comma-separate. Default: <controller host>:6653, over ssl: (with the node's --tls-key,
    /// --tls-cert and --tls-ca) when all three are given, else tcp:.
    #[arg(long, env = "WEFT_OPENFLOW_TARGET", value_delimiter = ',')]
    openflow_target: Vec<String>,
    /// OpenFlow inactivity probe of the bridge's controller connections, in milliseconds.
    #[arg(long, env = "WEFT_INACTIVITY_PROBE_MS", default_value_t = 5000)]
    inactivity_probe_ms: u64,
    /// Unix socket the weft-cni plugin calls.
    #[arg(long, env = "WEFT_CNI_SOCKET", default_value = "/run/weft/cni.sock")]
    cni_socket: PathBuf,
    /// Directory of the CNI server's per-attachment records.
    #[arg(long, env = "WEFT_CNI_STATE_DIR", default_value = "/run/weft/cni")]
    cni_state_dir: PathBuf,
    /// Seconds between collections of pod ports whose pod is gone (0 = never on its own).
    #[arg(long, env = "WEFT_CNI_GC_INTERVAL", default_value_t = 60)]
    cni_gc_interval: u64,
    /// Prometheus metrics at /metrics.
    #[arg(long, env = "WEFT_METRICS_LISTEN", default_value = "0.0.0.0:9091")]
    metrics_listen: SocketAddr,
    /// Seconds between full re-reads and repairs of the tunnels.
    #[arg(long, env = "WEFT_RESYNC_INTERVAL", default_value_t = 30)]
    resync_interval: u64,
    /// CA bundle (PEM) the controller's certificate must chain to; enables TLS.
    #[arg(long, env = "WEFT_TLS_CA")]
    tls_ca: Option<PathBuf>,
    /// Client certificate (PEM) for mutual TLS; needs --tls-key.
    #[arg(long, env = "WEFT_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// Client private key (PEM) for mutual TLS; needs --tls-cert.
    #[arg(long, env = "WEFT_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Name to verify in the controller's certificate (default: the URL's host).
    #[arg(long, env = "WEFT_TLS_DOMAIN")]
    tls_domain: Option<String>,
    /// Log format: text or json (level from RUST_LOG, default info).
    #[arg(long, env = "WEFT_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    log_format: String,
}

fn init_logs(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let b = tracing_subscriber::fmt().with_env_filter(filter);
    if format == "json" {
        b.json().init()
    } else {
        b.init()
    }
}

/// `<scheme>:<host>:6653` for the controller URL's host (brackets kept for IPv6 literals, which
/// is how OVS expects them too).
fn default_openflow_target(controller: &str, scheme: &str) -> anyhow::Result<String> {
    let rest = controller
        .split_once("://")
        .map(|(_, r)| r)
        .unwrap_or(controller);
    let authority = rest.split('/').next().unwrap_or("");
    let host = if let Some(v6) = authority.strip_prefix('[') {
        let end = v6.find(']').context("unterminated IPv6 literal")?;
        format!("[{}]", &v6[..end])
    } else {
        authority.split(':').next().unwrap_or("").to_string()
    };
    anyhow::ensure!(
        !host.is_empty(),
        "cannot find a host in --controller {controller:?}"
    );
    Ok(format!("{scheme}:{host}:6653"))
}

/// ovs-vswitchd runs elsewhere (its own working directory): it needs absolute paths.
fn absolute(p: &std::path::Path) -> anyhow::Result<PathBuf> {
    std::path::absolute(p).with_context(|| format!("resolving {}", p.display()))
}

fn config(args: &Args) -> anyhow::Result<AgentConfig> {
    let ovsdb: Endpoint = args
        .ovsdb
        .parse()
        .with_context(|| format!("--ovsdb {}", args.ovsdb))?;
    anyhow::ensure!(args.resync_interval > 0, "--resync-interval must be > 0");
    let mut link = LinkConfig::new(&args.node_name, args.underlay_ip, &args.controller);
    link.bridge.name = args.bridge.clone();
    link.bridge.datapath_type = args.datapath_type.clone();
    link.bridge.inactivity_probe = Duration::from_millis(args.inactivity_probe_ms);
    // The switch uses the node's own identity too: the controller accepts only switches with a
    // certificate from the cluster CA.
    link.bridge.ssl = match (&args.tls_key, &args.tls_cert, &args.tls_ca) {
        (Some(key), Some(cert), Some(ca)) => Some(SslFiles {
            key: absolute(key)?,
            cert: absolute(cert)?,
            ca: absolute(ca)?,
        }),
        _ => None,
    };
    let scheme = if link.bridge.ssl.is_some() {
        "ssl"
    } else {
        "tcp"
    };
    link.bridge.controllers = if args.openflow_target.is_empty() {
        vec![default_openflow_target(&args.controller, scheme)?]
    } else {
        args.openflow_target.clone()
    };
    link.resync_interval = Duration::from_secs(args.resync_interval);
    if args.tls_ca.is_some() || args.tls_cert.is_some() || args.tls_domain.is_some() {
        link.target.tls = Some(TlsFiles {
            ca: args.tls_ca.clone(),
            cert: args.tls_cert.clone(),
            key: args.tls_key.clone(),
            domain: args.tls_domain.clone(),
        });
    }
    Ok(AgentConfig {
        link,
        ovsdb,
        netns: None,
        cni: Some(CniSettings {
            socket: args.cni_socket.clone(),
            state_dir: args.cni_state_dir.clone(),
            gc_interval: (args.cni_gc_interval > 0)
                .then(|| Duration::from_secs(args.cni_gc_interval)),
        }),
    })
}

async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    init_logs(&args.log_format);
    let cfg = config(&args)?;
    tracing::info!(
        node = %args.node_name, underlay = %args.underlay_ip, controller = %args.controller,
        ovsdb = %args.ovsdb, bridge = %args.bridge, datapath_type = %args.datapath_type,
        openflow = ?cfg.link.bridge.controllers, version = env!("CARGO_PKG_VERSION"),
        "weft-agent starting"
    );
    let metrics = Arc::new(Metrics::default());
    let listener = tokio::net::TcpListener::bind(args.metrics_listen)
        .await
        .with_context(|| format!("metrics listener on {}", args.metrics_listen))?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let metrics_task = tokio::spawn(weft_agent::metrics::serve(
        listener,
        metrics.clone(),
        stopped(stop_rx.clone()),
    ));

    let signal = shutdown_signal();
    tokio::pin!(signal);
    let agent = tokio::select! {
        a = Agent::setup(cfg, metrics) => a.context("agent setup")?,
        _ = &mut signal => {
            tracing::info!("stopped during setup");
            return Ok(());
        }
    };
    let res = agent.run(signal).await;
    let _ = stop_tx.send(true);
    if let Ok(Err(e)) = metrics_task.await {
        tracing::warn!(error = %e, "metrics server failed");
    }
    res.context("agent")?;
    tracing::info!("weft-agent stopped; bridge, tunnels and pod ports left in place");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openflow_target_defaults_to_controller_host() {
        assert_eq!(
            default_openflow_target("http://10.0.0.1:7070", "tcp").unwrap(),
            "tcp:10.0.0.1:6653"
        );
        assert_eq!(
            default_openflow_target("https://ctl.example:7070/x", "ssl").unwrap(),
            "ssl:ctl.example:6653"
        );
        assert_eq!(
            default_openflow_target("http://[fd00::1]:7070", "tcp").unwrap(),
            "tcp:[fd00::1]:6653"
        );
        assert!(default_openflow_target("http://", "tcp").is_err());
    }

    #[test]
    fn flags_parse_with_defaults_and_lists() {
        let a = Args::try_parse_from([
            "weft-agent",
            "--node-name",
            "n1",
            "--controller",
            "http://127.0.0.1:7070",
            "--underlay-ip",
            "10.0.0.1",
            "--openflow-target",
            "tcp:1.2.3.4:6653,tcp:5.6.7.8:6653",
            "--datapath-type",
            "netdev",
        ])
        .unwrap();
        let c = config(&a).unwrap();
        assert_eq!(c.link.bridge.controllers.len(), 2);
        assert_eq!(c.link.bridge.datapath_type, "netdev");
        assert_eq!(c.link.bridge.name, "weft0");
        assert_eq!(a.metrics_listen.port(), 9091);
        assert!(c.link.target.tls.is_none());
        let a = Args::try_parse_from([
            "weft-agent",
            "--node-name",
            "n1",
            "--controller",
            "http://127.0.0.1:7070",
            "--underlay-ip",
            "10.0.0.1",
        ])
        .unwrap();
        assert_eq!(
            config(&a).unwrap().link.bridge.controllers,
            vec!["tcp:127.0.0.1:6653".to_string()]
        );
        // With the node's key, certificate and CA, the switch talks TLS too.
        let a = Args::try_parse_from([
            "weft-agent",
            "--node-name",
            "n1",
            "--controller",
            "https://127.0.0.1:7070",
            "--underlay-ip",
            "10.0.0.1",
            "--tls-ca",
            "ca.pem",
            "--tls-cert",
            "/etc/weft/node.pem",
            "--tls-key",
            "/etc/weft/node.key",
        ])
        .unwrap();
        let c = config(&a).unwrap();
        assert_eq!(
            c.link.bridge.controllers,
            vec!["ssl:127.0.0.1:6653".to_string()]
        );
        let ssl = c.link.bridge.ssl.unwrap();
        assert!(ssl.ca.is_absolute() && ssl.ca.ends_with("ca.pem"));
        assert_eq!(ssl.key, PathBuf::from("/etc/weft/node.key"));
        // Bad datapath type and a lone client key are refused.
        for bad in [
            vec!["--datapath-type", "kernel"],
            vec!["--tls-key", "/k.pem"],
        ] {
            let mut argv = vec![
                "weft-agent",
                "--node-name",
                "n1",
                "--controller",
                "http://x:1",
                "--underlay-ip",
                "10.0.0.1",
            ];
            argv.extend(bad);
            assert!(Args::try_parse_from(argv).is_err());
        }
    }
}
