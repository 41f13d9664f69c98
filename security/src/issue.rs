//! A cluster CA and the certificates it issues: what `weftctl lab` and the tests use, so the
//! default path is the secured one. Production clusters may use cert-manager instead; the only
//! contract is the URI name of [`Principal`].

use crate::identity::Principal;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};
use std::net::IpAddr;
use time::{Duration, OffsetDateTime};

#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    #[error("certificate: {0}")]
    Rcgen(#[from] rcgen::Error),
    #[error("invalid subject alternative name {0:?}")]
    InvalidName(String),
}

/// A certificate and its private key, both PEM.
#[derive(Debug, Clone)]
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
}

/// A certificate authority able to sign.
pub struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

/// How long lab certificates are valid; rotation replaces them long before.
const VALIDITY: Duration = Duration::days(365);

fn validity(p: &mut CertificateParams) {
    let now = OffsetDateTime::now_utc();
    // A little slack for clocks that differ between nodes.
    p.not_before = now - Duration::hours(1);
    p.not_after = now + VALIDITY;
}

impl Ca {
    /// A new self-signed CA called `name`.
    pub fn new(name: &str) -> Result<Self, IssueError> {
        let mut p = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, name);
        dn.push(DnType::OrganizationName, "Weft");
        p.distinguished_name = dn;
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        validity(&mut p);
        let key = KeyPair::generate()?;
        let cert = p.self_signed(&key)?;
        Ok(Ca { cert, key })
    }

    /// A CA saved earlier (its certificate and key, PEM), to issue more certificates under it.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Self, IssueError> {
        let key = KeyPair::from_pem(key_pem)?;
        let params = CertificateParams::from_ca_cert_pem(cert_pem)?;
        // Re-signing keeps subject and key, which is all that issuing needs; the original
        // certificate stays the one clients trust.
        let cert = params.self_signed(&key)?;
        Ok(Ca { cert, key })
    }

    pub fn cert_pem(&self) -> String {
        self.cert.pem()
    }

    pub fn key_pem(&self) -> String {
        self.key.serialize_pem()
    }

    /// A certificate for `who`, usable as a TLS client and server, also naming `dns` and `ips`
    /// (where a server is reached).
    pub fn issue(
        &self,
        who: &Principal,
        dns: &[String],
        ips: &[IpAddr],
    ) -> Result<Issued, IssueError> {
        let mut p = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, who.name());
        dn.push(DnType::OrganizationalUnitName, who.kind());
        p.distinguished_name = dn;
        let uri = who.uri();
        let mut sans = vec![SanType::URI(
            uri.as_str()
                .try_into()
                .map_err(|_| IssueError::InvalidName(uri.clone()))?,
        )];
        for d in dns {
            sans.push(SanType::DnsName(
                d.as_str()
                    .try_into()
                    .map_err(|_| IssueError::InvalidName(d.clone()))?,
            ));
        }
        sans.extend(ips.iter().map(|ip| SanType::IpAddress(*ip)));
        p.subject_alt_names = sans;
        p.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        p.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ClientAuth,
            ExtendedKeyUsagePurpose::ServerAuth,
        ];
        p.use_authority_key_identifier_extension = true;
        validity(&mut p);
        let key = KeyPair::generate()?;
        let cert = p.signed_by(&key, &self.cert, &self.key)?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}
