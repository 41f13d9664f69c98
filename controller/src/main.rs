//! `weft-controller`: one per cluster. Owns every node's OpenFlow bridge, serves the agents
//! (gRPC), the northbound API (gRPC and REST/JSON) and Prometheus metrics. Standalone mode keeps
//! its state in an embedded database file.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use weft_controller::agent_api::{FabricSettings, NodeControlService};
use weft_controller::node_trust::NodeTrust;
use weft_controller::northbound::{Api, rest};
use weft_controller::persist::RedbStore;
use weft_controller::southbound::{self, ReconcileOptions, SouthboundStats};
use weft_controller::store::ModelStore;
use weft_openflow::session::{SessionConfig, SwitchListener};
use weft_proto::agent::v1::node_control_server::NodeControlServer;
use weft_proto::northbound::v1::network_service_server::NetworkServiceServer;

#[derive(Parser, Debug)]
#[command(
    name = "weft-controller",
    version,
    about = "Weft SDN controller (one per cluster)"
)]
struct Args {
    /// Where switches connect (OpenFlow 1.3).
    #[arg(long, env = "WEFT_OPENFLOW_LISTEN", default_value = "0.0.0.0:6653")]
    openflow_listen: SocketAddr,
    /// gRPC for agents (NodeControl) and orchestrators (NetworkService).
    #[arg(long, env = "WEFT_GRPC_LISTEN", default_value = "0.0.0.0:7070")]
    grpc_listen: SocketAddr,
    /// REST/JSON northbound API, with the OpenAPI document at /openapi.json.
    #[arg(long, env = "WEFT_HTTP_LISTEN", default_value = "0.0.0.0:8080")]
    http_listen: SocketAddr,
    /// Prometheus metrics at /metrics.
    #[arg(long, env = "WEFT_METRICS_LISTEN", default_value = "0.0.0.0:9090")]
    metrics_listen: SocketAddr,
    /// Standalone mode: the state database file (created if missing).
    #[arg(
        long,
        env = "WEFT_STATE_FILE",
        default_value = "/var/lib/weft/controller.redb"
    )]
    state_file: PathBuf,
    /// Cluster name reported to agents.
    #[arg(long, env = "WEFT_CLUSTER", default_value = "weft")]
    cluster: String,
    /// VXLAN network identifier of node-to-node tunnels.
    #[arg(long, env = "WEFT_VNI", default_value_t = 4242)]
    vni: u32,
    /// UDP port of node-to-node tunnels.
    #[arg(long, env = "WEFT_VXLAN_PORT", default_value_t = 4789)]
    vxlan_port: u32,
    /// Underlay MTU; pods get 54 bytes less unless their network sets an MTU.
    #[arg(long, env = "WEFT_UNDERLAY_MTU", default_value_t = 1500)]
    underlay_mtu: u32,
    /// Seconds between echo requests to an idle switch.
    #[arg(long, env = "WEFT_ECHO_INTERVAL", default_value_t = 5.0)]
    echo_interval: f64,
    /// Seconds of silence after which a switch is declared dead.
    #[arg(long, env = "WEFT_DEAD_AFTER", default_value_t = 15.0)]
    dead_after: f64,
    /// Seconds between full read-backs of each switch (repairs manual changes).
    #[arg(long, env = "WEFT_RESYNC_INTERVAL", default_value_t = 30.0)]
    resync_interval: f64,
    /// Seconds an attachment waits for switches to confirm its flows.
    #[arg(long, env = "WEFT_CONFIRM_TIMEOUT", default_value_t = 10.0)]
    confirm_timeout: f64,
    /// Where intents and state live: standalone (northbound API + state file) or kubernetes
    /// (VirtualNetwork resources, state in the API server, leader election on a Lease).
    #[arg(long, env = "WEFT_MODE", value_enum, default_value = "standalone")]
    mode: Mode,
    /// Kubernetes mode: this replica's name in the Lease (the pod name).
    #[arg(long, env = "WEFT_POD_NAME", default_value = "weft-controller")]
    pod_name: String,
    /// Kubernetes mode: namespace of the leader-election Lease (the controller's own).
    #[arg(long, env = "WEFT_POD_NAMESPACE", default_value = "weft-system")]
    lease_namespace: String,
    /// Log format: text or json.
    #[arg(long, env = "WEFT_LOG_FORMAT", default_value = "text")]
    log_format: String,
    /// The controller's certificate (PEM), served on OpenFlow and gRPC.
    #[arg(long, env = "WEFT_TLS_CERT", requires_all = ["tls_key", "tls_ca"])]
    tls_cert: Option<PathBuf>,
    /// The controller's private key (PEM).
    #[arg(long, env = "WEFT_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// The cluster CA (PEM): switches and agents need a certificate from it naming their node.
    #[arg(long, env = "WEFT_TLS_CA", requires = "tls_cert")]
    tls_ca: Option<PathBuf>,
    /// Serve OpenFlow over plain TCP and give any switch the flows of the node its datapath id
    /// names. For throwaway labs only: anyone who can reach the port can impersonate a switch.
    #[arg(long, env = "WEFT_INSECURE_OPENFLOW")]
    insecure_openflow: bool,
    /// Serve gRPC in plaintext and let any caller act for any node. For throwaway labs only.
    #[arg(long, env = "WEFT_INSECURE_AGENT_API")]
    insecure_agent_api: bool,
}

/// The controller's TLS material, read once at start.
struct Tls {
    cert: Vec<u8>,
    key: Vec<u8>,
    ca: Vec<u8>,
}

impl Args {
    /// The TLS material, unless both surfaces were explicitly made insecure; without it and
    /// without the flags, refuse to start: the secure setup is the default one.
    fn tls(&self) -> anyhow::Result<Option<Tls>> {
        let read =
            |p: &PathBuf| std::fs::read(p).with_context(|| format!("reading {}", p.display()));
        match (&self.tls_cert, &self.tls_key, &self.tls_ca) {
            (Some(cert), Some(key), Some(ca)) => Ok(Some(Tls {
                cert: read(cert)?,
                key: read(key)?,
                ca: read(ca)?,
            })),
            _ if self.insecure_openflow && self.insecure_agent_api => Ok(None),
            _ => anyhow::bail!(
                "give --tls-cert, --tls-key and --tls-ca (the controller's certificate and the \
                 cluster CA; `weftctl lab` makes them), or run insecurely with both \
                 --insecure-openflow and --insecure-agent-api"
            ),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Mode {
    Standalone,
    Kubernetes,
}

fn secs(name: &str, v: f64) -> anyhow::Result<Duration> {
    anyhow::ensure!(
        v.is_finite() && v > 0.0,
        "--{name} must be a positive number of seconds"
    );
    Ok(Duration::from_secs_f64(v))
}

fn init_logs(format: &str) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let b = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        "json" => b.json().init(),
        "text" => b.init(),
        other => anyhow::bail!("--log-format must be text or json, not {other:?}"),
    }
    Ok(())
}

/// Desired-state computation is allocation-heavy; mimalloc cut its time by a third (see
/// benches/desired_state.rs).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    init_logs(&args.log_format)?;
    let _ = rustls::crypto::ring::default_provider().install_default();

    let (store, mut kube) = match args.mode {
        Mode::Standalone => (open_state_file(&args)?, None),
        Mode::Kubernetes => {
            let client = kube::Client::try_default()
                .await
                .context("connecting to the Kubernetes API (in-cluster config or KUBECONFIG)")?;
            let who = weft_controller::k8s::runtime::Identity {
                namespace: args.lease_namespace.clone(),
                lease: "weft-controller".into(),
                name: args.pod_name.clone(),
            };
            let opts = weft_controller::k8s::Options {
                instance: args.pod_name.clone(),
                ..Default::default()
            };
            let (store, running) = weft_controller::k8s::runtime::start(client, who, opts).await?;
            (store, Some(running))
        }
    };
    let stats = Arc::new(SouthboundStats::default());

    let session = SessionConfig {
        echo_interval: secs("echo-interval", args.echo_interval)?,
        dead_after: secs("dead-after", args.dead_after)?,
        ..SessionConfig::default()
    };
    let tls = args.tls()?;
    let trust = |insecure: bool| {
        if insecure {
            NodeTrust::AnyCaller
        } else {
            NodeTrust::Certificates
        }
    };
    let reconcile = ReconcileOptions {
        resync_every: secs("resync-interval", args.resync_interval)?,
        switch_trust: trust(args.insecure_openflow),
        ..ReconcileOptions::default()
    };
    let settings = FabricSettings {
        cluster: args.cluster.clone(),
        vni: args.vni,
        vxlan_port: args.vxlan_port,
        underlay_mtu: args.underlay_mtu,
        confirm_timeout: secs("confirm-timeout", args.confirm_timeout)?,
    };

    let of = match tls.as_ref().filter(|_| !args.insecure_openflow) {
        Some(t) => {
            let cfg = weft_security::tls::server_config(&t.cert, &t.key, &t.ca)
                .context("the controller's TLS certificate, key or CA")?;
            SwitchListener::bind_tls(args.openflow_listen, cfg, session).await
        }
        None => {
            tracing::warn!(listen = %args.openflow_listen, "OpenFlow over plain TCP (--insecure-openflow): any switch may claim any node");
            SwitchListener::bind(args.openflow_listen, session).await
        }
    }
    .with_context(|| format!("listening for switches on {}", args.openflow_listen))?;
    let http = tokio::net::TcpListener::bind(args.http_listen)
        .await
        .with_context(|| format!("listening for REST on {}", args.http_listen))?;
    let grpc = tokio::net::TcpListener::bind(args.grpc_listen)
        .await
        .with_context(|| format!("listening for gRPC on {}", args.grpc_listen))?;
    tracing::info!(
        openflow = %args.openflow_listen, grpc = %args.grpc_listen,
        http = %args.http_listen, metrics = %args.metrics_listen,
        "weft-controller up"
    );

    let api = Api {
        store: store.clone(),
    };
    let mut grpc_builder = tonic::transport::Server::builder();
    match tls.as_ref().filter(|_| !args.insecure_agent_api) {
        Some(t) => {
            use tonic::transport::{Certificate, Identity, ServerTlsConfig};
            // Optional at the TLS layer: the northbound may authenticate otherwise; the agent
            // API refuses a caller without a node certificate itself.
            let cfg = ServerTlsConfig::new()
                .identity(Identity::from_pem(&t.cert, &t.key))
                .client_ca_root(Certificate::from_pem(&t.ca))
                .client_auth_optional(true);
            grpc_builder = grpc_builder
                .tls_config(cfg)
                .context("the controller's gRPC TLS configuration")?;
        }
        None => {
            tracing::warn!(listen = %args.grpc_listen, "gRPC in plaintext (--insecure-agent-api): any caller may act for any node")
        }
    }
    let agents = NodeControlService::new(store.clone(), settings)
        .trusting(trust(args.insecure_agent_api))
        .counting_in(stats.clone());
    let grpc_server = grpc_builder
        .add_service(NodeControlServer::new(agents))
        .add_service(NetworkServiceServer::new(api.clone()))
        .serve_with_incoming(no_delay(grpc));

    tokio::select! {
        _ = southbound::serve(of, store.clone(), reconcile, stats.clone()) => {}
        r = axum::serve(http, rest::router(api)) => r.context("REST server")?,
        r = grpc_server => r.context("gRPC server")?,
        r = weft_controller::metrics::serve(args.metrics_listen, store.clone(), stats.clone()) => {
            r.with_context(|| format!("metrics on {}", args.metrics_listen))?
        }
        stopped = async {
            match kube.as_mut() {
                Some(k) => k.run().await,
                None => std::future::pending().await,
            }
        } => anyhow::bail!("{stopped}; exiting so a standby takes over (switches keep their flows)"),
        _ = shutdown_signal() => tracing::info!("shutting down; switches keep their flows"),
    }
    if let Some(k) = kube.as_mut() {
        k.release().await;
    }
    Ok(())
}

/// Standalone mode's state: the model in a redb file, created if missing.
fn open_state_file(args: &Args) -> anyhow::Result<Arc<ModelStore>> {
    if let Some(dir) = args
        .state_file
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
    {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating state directory {}", dir.display()))?;
    }
    let db = RedbStore::open(&args.state_file)?;
    let (model, version) = db.load()?;
    tracing::info!(
        state = %args.state_file.display(), version,
        networks = model.networks.len(), attachments = model.attachments.len(),
        "state loaded"
    );
    Ok(Arc::new(ModelStore::new(
        model,
        version,
        Some(Box::new(db)),
    )))
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

/// Accepted connections with Nagle's algorithm off. tonic applies its own `tcp_nodelay` only to
/// listeners it binds itself; without it, a reply written in several small pieces waited for the
/// agent's delayed ACK, and CNI ADDs now and then took 40 ms longer.
fn no_delay(
    listener: tokio::net::TcpListener,
) -> impl tokio_stream::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    use tokio_stream::StreamExt;
    tokio_stream::wrappers::TcpListenerStream::new(listener).map(|conn| {
        if let Ok(c) = &conn
            && let Err(e) = c.set_nodelay(true)
        {
            tracing::debug!(error = %e, "TCP_NODELAY on a gRPC connection");
        }
        conn
    })
}
