//! A throw-away certificate authority and serving certificate for `127.0.0.1` / `localhost` (and
//! any extra names asked for), generated at start so the kubeconfig can pin the CA
//! (`certificate-authority-data`). With a data directory the material is kept there and reused
//! while the names stay the same, so kubeconfigs handed out earlier keep working after a restart.

use std::sync::Arc;

use anyhow::Context;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// The CA (PEM, for the kubeconfig) and a rustls server configuration using the serving cert.
pub struct ServingTls {
    /// PEM of the CA certificate that signed the serving certificate.
    pub ca_pem: String,
    /// Ready-to-use rustls configuration advertising `h2` and `http/1.1`.
    pub server_config: Arc<rustls::ServerConfig>,
}

/// The PEM material behind [`ServingTls`], as kept in a data directory.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Material {
    /// The names the serving certificate is valid for, in order.
    names: Vec<String>,
    ca_pem: String,
    cert_pem: String,
    key_pem: String,
}

/// File of the TLS material in a data directory.
const MATERIAL_FILE: &str = "tls.json";

/// The names (IP addresses or DNS names) a serving certificate for `bind` and `extra` covers.
fn names(bind: std::net::IpAddr, extra: &[String]) -> Vec<String> {
    let mut names = vec!["localhost".to_string(), "127.0.0.1".into(), "::1".into()];
    if !bind.is_unspecified() {
        names.push(bind.to_string());
    }
    for name in extra {
        let name = name.trim().trim_start_matches('[').trim_end_matches(']');
        if !name.is_empty() && !names.iter().any(|n| n == name) {
            names.push(name.to_string());
        }
    }
    names
}

/// Serving TLS for `bind` and the `extra` names: reused from `dir` when it holds material for the
/// same names, else generated (and stored in `dir`, mode 0600, when given).
pub fn load_or_generate(
    bind: std::net::IpAddr,
    extra: &[String],
    dir: Option<&std::path::Path>,
) -> anyhow::Result<ServingTls> {
    let names = names(bind, extra);
    let path = dir.map(|d| d.join(MATERIAL_FILE));
    let stored = path
        .as_ref()
        .and_then(|p| std::fs::read(p).ok())
        .and_then(|bytes| serde_json::from_slice::<Material>(&bytes).ok())
        .filter(|m| m.names == names);
    let material = match stored {
        Some(m) => m,
        None => {
            let m = generate_material(names)?;
            if let Some(path) = &path {
                crate::files::write_private(path, &serde_json::to_vec_pretty(&m)?)?;
            }
            m
        }
    };
    serving(material)
}

/// Generate a CA and a serving certificate valid for `names`.
fn generate_material(names: Vec<String>) -> anyhow::Result<Material> {
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
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "mk8-dev-apiserver");
    params.distinguished_name = dn;
    for name in &names {
        params
            .subject_alt_names
            .push(match name.parse::<std::net::IpAddr>() {
                Ok(ip) => SanType::IpAddress(ip),
                Err(_) => SanType::DnsName(name.clone().try_into().with_context(|| {
                    format!("{name:?} is neither an IP address nor a DNS name")
                })?),
            });
    }
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server_cert = params
        .signed_by(&server_key, &issuer)
        .context("signing serving cert")?;
    Ok(Material {
        names,
        ca_pem: ca_cert.pem(),
        cert_pem: server_cert.pem(),
        key_pem: server_key.serialize_pem(),
    })
}

fn serving(material: Material) -> anyhow::Result<ServingTls> {
    let cert: CertificateDer<'static> =
        rustls::pki_types::pem::PemObject::from_pem_slice(material.cert_pem.as_bytes())
            .context("reading the serving certificate")?;
    let key: PrivateKeyDer<'static> =
        rustls::pki_types::pem::PemObject::from_pem_slice(material.key_pem.as_bytes())
            .context("reading the serving key")?;
    // An explicit provider keeps several servers (and other rustls users) in one process independent
    // of whichever process-wide default happens to be installed.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .context("building TLS config")?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(ServingTls {
        ca_pem: material.ca_pem,
        server_config: Arc::new(config),
    })
}
