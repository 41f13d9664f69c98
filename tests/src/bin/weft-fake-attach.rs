//! Bench helper: registers many attachments with a lab's controller through the agent API
//! (`PrepareAttachment` + `Attach`), with OpenFlow port numbers no real port has, to load the
//! switches with thousands of flows without thousands of pods. OVS accepts flows that name
//! absent ports, so the controller's flows install as for real ports.
//!
//! `weft-fake-attach <controller-netns> <grpc-url> <node> <ns/net>[,<ns/net>...] <count>
//! [concurrency]` spreads `count` attachments round-robin over the networks and prints
//! `{"attached": N, "seconds": S}`. With `WEFT_TLS_DIR` (a lab's `pki` directory) it connects
//! over mutual TLS as `<node>`, with `<dir>/<node>.pem`, `<dir>/<node>.key` and `<dir>/ca.pem`.

use std::os::fd::AsRawFd;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use weft_proto::agent::v1 as pb;
use weft_proto::agent::v1::node_control_client::NodeControlClient;

/// First fake ofport: far above what a lab node's real ports get.
const FIRST_OFPORT: u32 = 20_000;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [ns, url, node, network, count, rest @ ..] = args.as_slice() else {
        bail!("usage: weft-fake-attach NETNS GRPC_URL NODE NS/NET[,NS/NET...] COUNT [CONCURRENCY]");
    };
    let count: u32 = count.parse().context("COUNT")?;
    let conc: usize = rest.first().map(|c| c.parse()).transpose()?.unwrap_or(16);
    // Join the controller's namespace before the runtime exists: its threads inherit it.
    let f = std::fs::File::open(format!("/run/netns/{ns}")).context("netns")?;
    // SAFETY: setns on a valid namespace fd; only this thread's (and later threads') netns.
    if unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(std::io::Error::last_os_error()).context("setns");
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(run(url.clone(), node.clone(), network.clone(), count, conc))
}

async fn run(url: String, node: String, networks: String, count: u32, conc: usize) -> Result<()> {
    let networks: Vec<String> = networks.split(',').map(String::from).collect();
    let mut endpoint = tonic::transport::Endpoint::from_shared(url.clone())?;
    if let Ok(dir) = std::env::var("WEFT_TLS_DIR") {
        use tonic::transport::{Certificate, ClientTlsConfig, Identity};
        let read = |f: String| {
            let p = std::path::Path::new(&dir).join(f);
            std::fs::read(&p).with_context(|| format!("reading {}", p.display()))
        };
        let tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(read("ca.pem".into())?))
            .identity(Identity::from_pem(
                read(format!("{node}.pem"))?,
                read(format!("{node}.key"))?,
            ));
        endpoint = endpoint.tls_config(tls)?;
    }
    let client = NodeControlClient::new(
        endpoint
            .connect()
            .await
            .with_context(|| format!("connecting to {url}"))?,
    );
    let start = Instant::now();
    let sem = std::sync::Arc::new(tokio::sync::Semaphore::new(conc));
    let mut tasks = Vec::new();
    for i in 0..count {
        let permit = sem.clone().acquire_owned().await?;
        let mut c = client.clone();
        let node = node.clone();
        let network = networks[i as usize % networks.len()].clone();
        tasks.push(tokio::spawn(async move {
            let _permit = permit;
            let id = weft_proto::common::v1::AttachmentId {
                container_id: format!("fake{i:060}"),
                ifname: "net1".into(),
            };
            let pod = weft_proto::common::v1::PodRef {
                namespace: network.split('/').next().unwrap_or("default").into(),
                name: format!("fake-{i}"),
                uid: format!("fake-uid-{i}"),
            };
            c.prepare_attachment(pb::PrepareRequest {
                node_name: node.clone(),
                network: network.clone(),
                id: Some(id.clone()),
                pod: Some(pod.clone()),
                mac: String::new(),
                ips: Vec::new(),
            })
            .await?;
            c.attach(pb::AttachRequest {
                node_name: node,
                network,
                id: Some(id),
                pod: Some(pod),
                ofport: FIRST_OFPORT + i,
            })
            .await?;
            Ok::<_, tonic::Status>(())
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await? {
            Ok(()) => ok += 1,
            Err(e) => eprintln!("attach failed: {e}"),
        }
    }
    println!(
        "{{\"attached\": {ok}, \"seconds\": {:.3}}}",
        start.elapsed().as_secs_f64()
    );
    Ok(())
}
