//! The lab's certificates: a cluster CA, the controller's certificate and one per node, made on
//! first use under `<lab dir>/pki/`, so every lab, demo and test runs with TLS and node
//! identities on, as a cluster should.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use weft_security::{Ca, Principal};

use super::LabState;

/// One holder's key, certificate and the CA to check peers against.
#[derive(Debug, Clone)]
pub struct Files {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub ca: PathBuf,
}

fn dir(lab: &LabState) -> PathBuf {
    lab.dir().join("pki")
}

fn write_secret(path: &Path, data: &str) -> Result<()> {
    std::fs::write(path, data).with_context(|| format!("writing {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("restricting {}", path.display()))
}

/// The lab's CA, made if missing.
fn ca(lab: &LabState) -> Result<Ca> {
    let d = dir(lab);
    std::fs::create_dir_all(&d).with_context(|| format!("creating {}", d.display()))?;
    let (cert, key) = (d.join("ca.pem"), d.join("ca.key"));
    if cert.exists() && key.exists() {
        let read = |p: &Path| std::fs::read_to_string(p).with_context(|| p.display().to_string());
        return Ca::from_pem(&read(&cert)?, &read(&key)?).context("the lab's CA");
    }
    let ca = Ca::new(&format!("weft lab {}", lab.name))?;
    write_secret(&key, &ca.key_pem())?;
    std::fs::write(&cert, ca.cert_pem())?;
    Ok(ca)
}

/// The certificate of `who` (file stem `stem`), issued if missing, naming also `ips`.
fn issued(lab: &LabState, stem: &str, who: &Principal, ips: &[std::net::IpAddr]) -> Result<Files> {
    let d = dir(lab);
    let files = Files {
        cert: d.join(format!("{stem}.pem")),
        key: d.join(format!("{stem}.key")),
        ca: d.join("ca.pem"),
    };
    let ca = ca(lab)?;
    if !(files.cert.exists() && files.key.exists()) {
        let leaf = ca
            .issue(who, &[], ips)
            .with_context(|| format!("issuing a certificate for {who}"))?;
        write_secret(&files.key, &leaf.key_pem)?;
        std::fs::write(&files.cert, leaf.cert_pem)?;
    }
    Ok(files)
}

/// The controller's: it serves OpenFlow and gRPC at the lab's controller address (and on its
/// namespace's loopback, where lab tools reach it).
pub fn controller(lab: &LabState) -> Result<Files> {
    let who = Principal::Controller(lab.name.clone());
    let ips = [
        lab.controller_ip().into(),
        std::net::Ipv4Addr::LOCALHOST.into(),
    ];
    issued(lab, "controller", &who, &ips)
}

/// A node's: its agent and its switch present it.
pub fn node(lab: &LabState, node: &str) -> Result<Files> {
    issued(lab, node, &Principal::Node(node.to_string()), &[])
}
