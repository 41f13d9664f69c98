//! Reading the [`Principal`] out of a peer's certificate, after the TLS handshake checked that a
//! trusted CA issued it.

use crate::identity::Principal;
use x509_parser::extensions::GeneralName;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeerError {
    #[error("the peer presented no certificate")]
    NoCertificate,
    #[error("unreadable certificate: {0}")]
    Unreadable(String),
    #[error("the certificate names no Weft identity (a spiffe://weft/... URI)")]
    NoIdentity,
    #[error("the certificate names more than one Weft identity: {0:?}")]
    Ambiguous(Vec<String>),
}

/// The one Weft identity in the certificate's URI subject alternative names (DER).
pub fn principal_of(der: &[u8]) -> Result<Principal, PeerError> {
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| PeerError::Unreadable(e.to_string()))?;
    let san = cert
        .subject_alternative_name()
        .map_err(|e| PeerError::Unreadable(e.to_string()))?;
    let mut found: Vec<Principal> = san
        .into_iter()
        .flat_map(|ext| ext.value.general_names.iter())
        .filter_map(|n| match n {
            GeneralName::URI(u) => u.parse().ok(),
            _ => None,
        })
        .collect();
    match found.len() {
        0 => Err(PeerError::NoIdentity),
        1 => Ok(found.remove(0)),
        _ => Err(PeerError::Ambiguous(
            found.iter().map(Principal::uri).collect(),
        )),
    }
}

/// The principal of the first (leaf) certificate of a chain.
pub fn principal_of_chain<C: AsRef<[u8]>>(chain: &[C]) -> Result<Principal, PeerError> {
    principal_of(chain.first().ok_or(PeerError::NoCertificate)?.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::issue::Ca;
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;

    fn der(pem: &str) -> Vec<u8> {
        CertificateDer::from_pem_slice(pem.as_bytes())
            .unwrap()
            .to_vec()
    }

    #[test]
    fn issued_certificates_name_their_principal() {
        let ca = Ca::new("test CA").unwrap();
        let who = Principal::Node("node1".into());
        let leaf = ca
            .issue(
                &who,
                &["node1.example".into()],
                &["127.0.0.1".parse().unwrap()],
            )
            .unwrap();
        assert_eq!(principal_of(&der(&leaf.cert_pem)), Ok(who));
        // The CA itself names nobody.
        assert_eq!(
            principal_of(&der(&ca.cert_pem())),
            Err(PeerError::NoIdentity)
        );
        assert!(matches!(
            principal_of(b"not a certificate"),
            Err(PeerError::Unreadable(_))
        ));
        let empty: [&[u8]; 0] = [];
        assert_eq!(principal_of_chain(&empty), Err(PeerError::NoCertificate));
    }

    #[test]
    fn a_saved_ca_issues_certificates_the_original_verifies() {
        let ca = Ca::new("test CA").unwrap();
        let again = Ca::from_pem(&ca.cert_pem(), &ca.key_pem()).unwrap();
        let leaf = again
            .issue(&Principal::Controller("c1".into()), &[], &[])
            .unwrap();
        let roots = crate::tls::roots(ca.cert_pem().as_bytes()).unwrap();
        crate::tls::verify_client(&roots, leaf.cert_pem.as_bytes()).unwrap();
        let stranger = Ca::new("other CA").unwrap();
        let foreign = stranger
            .issue(&Principal::Node("node1".into()), &[], &[])
            .unwrap();
        assert!(crate::tls::verify_client(&roots, foreign.cert_pem.as_bytes()).is_err());
    }
}
