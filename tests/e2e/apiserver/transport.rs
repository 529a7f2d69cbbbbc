//! HTTPS with the generated CA, bearer-token auth, HTTP/2 via ALPN, plain HTTP on request.

use std::sync::Arc;

use k8s_openapi::api::core::v1::Namespace;
use kube::Api;
use kube::api::ListParams;
use mk8::apiserver::DevServerConfig;

use super::Cluster;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_and_kube_rs_connect_over_https_with_the_token() {
    let c = Cluster::start().await;
    assert!(c.server.url().starts_with("https://127.0.0.1:"));
    let kubeconfig = std::fs::read_to_string(&c.kubeconfig).unwrap();
    assert!(
        kubeconfig.contains("certificate-authority-data:")
            && kubeconfig.contains("token:")
            && kubeconfig.contains("current-context: mk8-dev")
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&c.kubeconfig)
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    let names = c.ok(&["get", "namespaces", "-o", "name"]);
    for ns in [
        "namespace/default",
        "namespace/kube-system",
        "namespace/kube-public",
    ] {
        assert!(names.contains(ns), "{names}");
    }
    let api: Api<Namespace> = Api::all(c.server.client().await.unwrap());
    assert!(api.list(&ListParams::default()).await.unwrap().items.len() >= 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_without_a_valid_token_get_401() {
    let c = Cluster::start().await;
    let bad = std::fs::read_to_string(&c.kubeconfig)
        .unwrap()
        .replace(c.server.token(), "wrong-token");
    let bad_path = c.dir.path().join("bad-kubeconfig");
    std::fs::write(&bad_path, bad).unwrap();
    let out = std::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&bad_path)
        .args(["get", "configmaps"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("Unauthorized") || stderr.contains("provide credentials"),
        "{stderr}"
    );
    // Health endpoints stay public, like kube-apiserver's.
    let (code, _) = c
        .raw("GET", "/healthz", "application/json", Vec::new())
        .await;
    assert_eq!(code, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_negotiates_http2_by_alpn() {
    let c = Cluster::start().await;
    let kubeconfig: serde_yaml::Value = serde_yaml::from_str(&c.server.kubeconfig()).unwrap();
    let ca_b64 = kubeconfig["clusters"][0]["cluster"]["certificate-authority-data"]
        .as_str()
        .unwrap();
    use base64::Engine;
    let ca_pem = base64::engine::general_purpose::STANDARD
        .decode(ca_b64)
        .unwrap();
    let ca_der = pem_to_der(&String::from_utf8(ca_pem).unwrap());
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from(ca_der))
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let port = c
        .server
        .url()
        .rsplit(':')
        .next()
        .unwrap()
        .parse::<u16>()
        .unwrap();
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let tls = connector
        .connect(name, tcp)
        .await
        .expect("certificate verifies against the kubeconfig CA");
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
}

fn pem_to_der(pem: &str) -> Vec<u8> {
    use base64::Engine;
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_only_when_asked() {
    let c = Cluster::start_with(DevServerConfig {
        tls: false,
        ..Default::default()
    })
    .await;
    assert!(c.server.url().starts_with("http://"));
    assert!(!c.server.kubeconfig().contains("certificate-authority-data"));
    assert!(
        c.ok(&["get", "ns", "default", "-o", "name"])
            .contains("namespace/default")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_servers_are_independent() {
    let a = Cluster::start().await;
    let b = Cluster::start().await;
    a.ok(&["create", "configmap", "only-in-a"]);
    assert!(
        a.ok(&["get", "configmaps", "-o", "name"])
            .contains("only-in-a")
    );
    assert!(
        !b.ok(&["get", "configmaps", "-o", "name"])
            .contains("only-in-a")
    );
}
