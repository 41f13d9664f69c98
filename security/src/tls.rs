//! rustls configurations for Weft's mutual TLS: servers that accept only clients with a
//! certificate from the cluster CA, and clients that present theirs.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::ClientCertVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("PEM: {0}")]
    Pem(String),
    #[error("no certificate in the PEM data")]
    NoCertificate,
    #[error(transparent)]
    Rustls(#[from] rustls::Error),
    #[error("client verifier: {0}")]
    Verifier(String),
}

/// Every certificate in `pem`.
pub fn certs(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem(e.to_string()))?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate);
    }
    Ok(certs)
}

/// The private key in `pem`.
pub fn key(pem: &[u8]) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| TlsError::Pem(e.to_string()))
}

/// The trust anchors in `ca_pem` (the cluster CA, or several during a CA rotation).
pub fn roots(ca_pem: &[u8]) -> Result<Arc<RootCertStore>, TlsError> {
    let mut store = RootCertStore::empty();
    for c in certs(ca_pem)? {
        store.add(c)?;
    }
    Ok(Arc::new(store))
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn client_verifier(roots: &Arc<RootCertStore>) -> Result<Arc<dyn ClientCertVerifier>, TlsError> {
    WebPkiClientVerifier::builder_with_provider(roots.clone(), provider())
        .build()
        .map_err(|e| TlsError::Verifier(e.to_string()))
}

/// A server that requires a client certificate issued by `client_ca_pem`.
pub fn server_config(
    cert_pem: &[u8],
    key_pem: &[u8],
    client_ca_pem: &[u8],
) -> Result<Arc<ServerConfig>, TlsError> {
    let verifier = client_verifier(&roots(client_ca_pem)?)?;
    let cfg = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs(cert_pem)?, key(key_pem)?)?;
    Ok(Arc::new(cfg))
}

/// A client that trusts `ca_pem` and presents `cert_pem`/`key_pem`.
pub fn client_config(
    ca_pem: &[u8],
    cert_pem: &[u8],
    key_pem: &[u8],
) -> Result<Arc<ClientConfig>, TlsError> {
    let roots = roots(ca_pem)?;
    let cfg = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_client_auth_cert(certs(cert_pem)?, key(key_pem)?)?;
    Ok(Arc::new(cfg))
}

/// Whether a server with these `roots` would accept `cert_pem` (leaf first) as a client.
pub fn verify_client(roots: &Arc<RootCertStore>, cert_pem: &[u8]) -> Result<(), TlsError> {
    let chain = certs(cert_pem)?;
    let (leaf, rest) = chain.split_first().ok_or(TlsError::NoCertificate)?;
    client_verifier(roots)?
        .verify_client_cert(leaf, rest, UnixTime::now())
        .map(|_| ())
        .map_err(TlsError::from)
}
