//! A throw-away certificate authority and serving certificate for `127.0.0.1` / `localhost`,
//! generated at start so the kubeconfig can pin the CA (`certificate-authority-data`).

use std::sync::Arc;

use anyhow::Context;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// The CA (PEM, for the kubeconfig) and a rustls server configuration using the serving cert.
pub struct ServingTls {
    /// PEM of the CA certificate that signed the serving certificate.
    pub ca_pem: String,
    /// Ready-to-use rustls configuration advertising `h2` and `http/1.1`.
    pub server_config: Arc<rustls::ServerConfig>,
}

/// Generate a CA and a serving certificate valid for `127.0.0.1`, `::1`, `localhost` and `bind`.
pub fn generate(bind: std::net::IpAddr) -> anyhow::Result<ServingTls> {
    let ca_key = KeyPair::generate().context("generating CA key")?;
    let mut ca_params = CertificateParams::default();
    let mut ca_dn = DistinguishedName::new();
    ca_dn.push(DnType::CommonName, "mk8-dev-ca");
    ca_params.distinguished_name = ca_dn;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca_params.self_signed(&ca_key).context("self-signing CA")?;
    let issuer = Issuer::new(ca_params, ca_key);

    let server_key = KeyPair::generate().context("generating serving key")?;
    let mut params =
        CertificateParams::new(vec!["localhost".to_string()]).context("serving cert params")?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "mk8-dev-apiserver");
    params.distinguished_name = dn;
    let mut ips = vec![
        std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
        std::net::IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
    ];
    if !ips.contains(&bind) && !bind.is_unspecified() {
        ips.push(bind);
    }
    params
        .subject_alt_names
        .extend(ips.into_iter().map(SanType::IpAddress));
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server_cert = params
        .signed_by(&server_key, &issuer)
        .context("signing serving cert")?;

    // An explicit provider keeps several servers (and other rustls users) in one process independent
    // of whichever process-wide default happens to be installed.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(server_cert.der().to_vec())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der())),
        )
        .context("building TLS config")?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(ServingTls {
        ca_pem: ca_cert.pem(),
        server_config: Arc::new(config),
    })
}
