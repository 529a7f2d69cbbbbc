//! The real Kubernetes control plane for the tests: etcd, kube-apiserver and
//! kube-controller-manager from `tests/peers/` (built from their Go modules by
//! `tests/peers/build.sh`, cached per version), started the way envtest starts them — a temp
//! data dir, random ports, fresh certificates, an admin client certificate, RBAC on — and
//! stopped (and waited for) when dropped. The real `helm` comes from the same build.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};

use crate::support::repo_root;

/// How long a component may take to answer after it was started.
const START_TIMEOUT: Duration = Duration::from_secs(120);

/// The directory holding `controlplane` and `helm`, built once per test process (a no-op when
/// the cache already has this version). `MK8_PEERS_BIN` names a directory built elsewhere.
pub fn bin_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        if let Some(dir) = std::env::var_os("MK8_PEERS_BIN") {
            return PathBuf::from(dir);
        }
        let script = repo_root().join("tests/peers/build.sh");
        let out = Command::new("bash")
            .arg(&script)
            .stderr(Stdio::inherit())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
        assert!(
            out.status.success(),
            "{} failed ({}): it builds the real control plane from the Go module proxy \
             (needs Go ≥ 1.26 and network to the proxy)",
            script.display(),
            out.status
        );
        PathBuf::from(String::from_utf8(out.stdout).expect("utf-8 path").trim())
    })
}

/// The real `helm` CLI.
pub fn helm() -> PathBuf {
    bin_dir().join("helm")
}

/// A running control plane; dropping it stops every component and waits until they exited.
pub struct ControlPlane {
    /// The admin kubeconfig (client certificate CN=admin, O=system:masters).
    pub kubeconfig: PathBuf,
    /// `https://127.0.0.1:<port>`.
    pub url: String,
    /// The cluster CA (PEM), which also signs client certificates.
    pub ca_pem: String,
    // Stopped in reverse order of start: controller-manager, apiserver, etcd.
    processes: Vec<(&'static str, Child)>,
    // How each component was started, so that it can be restarted.
    commands: Vec<(&'static str, PathBuf, Vec<String>)>,
    dir: tempfile::TempDir,
}

impl ControlPlane {
    /// Start etcd, kube-apiserver and kube-controller-manager and wait until the API is ready.
    pub fn start() -> Self {
        let controlplane = bin_dir().join("controlplane");
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().to_path_buf();
        let path = |name: &str| root.join(name);
        let pki = Pki::generate();
        for (name, pem) in [
            ("ca.crt", &pki.ca_pem),
            ("ca.key", &pki.ca_key_pem),
            ("apiserver.crt", &pki.serving_pem),
            ("apiserver.key", &pki.serving_key_pem),
            ("admin.crt", &pki.admin_pem),
            ("admin.key", &pki.admin_key_pem),
            ("sa.key", &pki.service_account_key_pem),
            ("sa.pub", &pki.service_account_public_pem),
        ] {
            std::fs::write(path(name), pem).expect("writing certificates");
        }
        // Every request's verdict goes to the audit log, so a test can prove nothing was forbidden.
        std::fs::write(
            path("audit-policy.yaml"),
            "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n",
        )
        .expect("writing the audit policy");
        let mut plane = Self {
            kubeconfig: path("admin.kubeconfig"),
            url: String::new(),
            ca_pem: pki.ca_pem.clone(),
            processes: Vec::new(),
            commands: Vec::new(),
            dir,
        };
        let etcd_port = free_port();
        let peer_port = free_port();
        let etcd_url = format!("http://127.0.0.1:{etcd_port}");
        let peer_url = format!("http://127.0.0.1:{peer_port}");
        plane.spawn(
            &controlplane,
            "etcd",
            &[
                "--name=default".into(),
                format!("--data-dir={}", path("etcd").display()),
                format!("--listen-client-urls={etcd_url}"),
                format!("--advertise-client-urls={etcd_url}"),
                format!("--listen-peer-urls={peer_url}"),
                format!("--initial-advertise-peer-urls={peer_url}"),
                format!("--initial-cluster=default={peer_url}"),
                "--unsafe-no-fsync=true".into(),
                "--log-level=warn".into(),
            ],
        );
        plane.wait_tcp("etcd", etcd_port);

        let api_port = free_port();
        plane.url = format!("https://127.0.0.1:{api_port}");
        let p = |name: &str| path(name).display().to_string();
        plane.spawn(
            &controlplane,
            "kube-apiserver",
            &[
                format!("--etcd-servers={etcd_url}"),
                format!("--cert-dir={}", p("apiserver-certs")),
                format!("--secure-port={api_port}"),
                "--bind-address=127.0.0.1".into(),
                "--advertise-address=127.0.0.1".into(),
                "--service-cluster-ip-range=10.0.0.0/24".into(),
                "--authorization-mode=RBAC".into(),
                "--allow-privileged=true".into(),
                format!("--service-account-issuer=https://127.0.0.1:{api_port}/"),
                format!("--service-account-key-file={}", p("sa.pub")),
                format!("--service-account-signing-key-file={}", p("sa.key")),
                format!("--client-ca-file={}", p("ca.crt")),
                format!("--tls-cert-file={}", p("apiserver.crt")),
                format!("--tls-private-key-file={}", p("apiserver.key")),
                format!("--audit-policy-file={}", p("audit-policy.yaml")),
                format!("--audit-log-path={}", p("audit.log")),
                "--v=0".into(),
            ],
        );
        let kubeconfig = admin_kubeconfig(&plane.url, &pki);
        std::fs::write(&plane.kubeconfig, kubeconfig).expect("writing the admin kubeconfig");
        plane.wait_ready("kube-apiserver", "/readyz");

        let kcm_kubeconfig = plane.kubeconfig.display().to_string();
        plane.spawn(
            &controlplane,
            "kube-controller-manager",
            &[
                format!("--kubeconfig={kcm_kubeconfig}"),
                "--leader-elect=false".into(),
                "--secure-port=0".into(),
                format!("--service-account-private-key-file={}", p("sa.key")),
                format!("--root-ca-file={}", p("ca.crt")),
                // What the tests rely on: garbage collection, namespace deletion, ServiceAccounts
                // and their tokens, the root CA ConfigMap; Deployments roll into ReplicaSets.
                "--controllers=garbage-collector-controller,namespace-controller,\
                 serviceaccount-controller,serviceaccount-token-controller,\
                 root-ca-certificate-publisher-controller,deployment-controller,\
                 replicaset-controller"
                    .into(),
                "--v=0".into(),
            ],
        );
        // The ServiceAccount controller creates `default` in every namespace: once it exists in
        // `default`, the controller-manager runs.
        let started = Instant::now();
        while !plane.kubectl_ok(&["get", "serviceaccount", "default", "-n", "default"]) {
            plane.check_running();
            assert!(
                started.elapsed() < START_TIMEOUT,
                "kube-controller-manager created no ServiceAccount in {START_TIMEOUT:?}; log:\n{}",
                plane.log("kube-controller-manager")
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        plane
    }

    /// A kube-rs client with the admin identity.
    pub async fn client(&self) -> kube::Client {
        let kubeconfig = kube::config::Kubeconfig::read_from(&self.kubeconfig).expect("kubeconfig");
        let config = kube::Config::from_custom_kubeconfig(
            kubeconfig,
            &kube::config::KubeConfigOptions::default(),
        )
        .await
        .expect("client config");
        kube::Client::try_from(config).expect("client")
    }

    /// A kubeconfig for `token` (a ServiceAccount's), written beside the admin's.
    pub fn token_kubeconfig(&self, name: &str, token: &str) -> PathBuf {
        let path = self.dir.path().join(format!("{name}.kubeconfig"));
        let text = kubeconfig_yaml(
            &self.url,
            &self.ca_pem,
            &format!("token: {}", serde_json::to_string(token).unwrap()),
        );
        std::fs::write(&path, text).expect("writing a token kubeconfig");
        path
    }

    /// Requests of `username` that the API server answered 403 Forbidden: `VERB URI`.
    pub fn forbidden(&self, username: &str) -> Vec<String> {
        let audit = std::fs::read_to_string(self.dir.path().join("audit.log")).unwrap_or_default();
        audit
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter(|e| e["user"]["username"] == username && e["responseStatus"]["code"] == 403)
            .map(|e| {
                format!(
                    "{} {}",
                    e["verb"].as_str().unwrap_or("?"),
                    e["requestURI"].as_str().unwrap_or("?")
                )
            })
            .collect()
    }

    /// Whether the audit log recorded any request of `username`.
    pub fn requests_of(&self, username: &str) -> usize {
        let audit = std::fs::read_to_string(self.dir.path().join("audit.log")).unwrap_or_default();
        audit
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter(|e| e["user"]["username"] == username && e["stage"] == "ResponseComplete")
            .count()
    }

    /// The log of one component so far.
    pub fn log(&self, component: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("{component}.log")))
            .unwrap_or_default()
    }

    /// Stop kube-apiserver (SIGTERM, waiting for it to exit, SIGKILL after 10 s), wait until its
    /// port refuses connections, and start it again with the same flags (etcd keeps the data);
    /// returns when it is ready again.
    pub fn restart_apiserver(&mut self, down_for: Duration) {
        const COMPONENT: &str = "kube-apiserver";
        let at = self
            .processes
            .iter()
            .position(|(c, _)| *c == COMPONENT)
            .expect("kube-apiserver runs");
        let (_, mut child) = self.processes.remove(at);
        stop(&mut child);
        let port: u16 = self.url.rsplit(':').next().unwrap().parse().unwrap();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let started = Instant::now();
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            assert!(started.elapsed() < START_TIMEOUT, "port {port} still open");
            std::thread::sleep(Duration::from_millis(50));
        }
        std::thread::sleep(down_for);
        let (_, binary, args) = self
            .commands
            .iter()
            .find(|(c, ..)| *c == COMPONENT)
            .cloned()
            .unwrap();
        self.spawn(&binary, COMPONENT, &args);
        // Back in its place, so that the shutdown order stays the start order reversed.
        let restarted = self.processes.pop().unwrap();
        self.processes.insert(at, restarted);
        self.commands.pop();
        self.wait_ready(COMPONENT, "/readyz");
    }

    fn spawn(&mut self, binary: &Path, component: &'static str, args: &[String]) {
        // Appended to, so that a restarted component's earlier log is kept.
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join(format!("{component}.log")))
            .expect("log file");
        self.commands
            .push((component, binary.to_path_buf(), args.to_vec()));
        let child = Command::new(binary)
            .arg(component)
            .args(args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {} {component}: {e}", binary.display()));
        self.processes.push((component, child));
    }

    /// Panic with its log when a component exited.
    fn check_running(&mut self) {
        for (component, child) in &mut self.processes {
            if let Ok(Some(status)) = child.try_wait() {
                let log = std::fs::read_to_string(self.dir.path().join(format!("{component}.log")))
                    .unwrap_or_default();
                panic!("{component} exited ({status}); log:\n{log}");
            }
        }
    }

    fn wait_tcp(&mut self, component: &str, port: u16) {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let started = Instant::now();
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            self.check_running();
            assert!(
                started.elapsed() < START_TIMEOUT,
                "{component} did not listen on {port}; log:\n{}",
                self.log(component)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn wait_ready(&mut self, component: &str, path: &str) {
        let started = Instant::now();
        while !self.kubectl_ok(&["get", "--raw", path]) {
            self.check_running();
            assert!(
                started.elapsed() < START_TIMEOUT,
                "{component} did not answer {path}; log:\n{}",
                self.log(component)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn kubectl_ok(&self, args: &[&str]) -> bool {
        Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        while let Some((_, mut child)) = self.processes.pop() {
            stop(&mut child);
        }
    }
}

/// SIGTERM first so etcd and the apiserver shut down cleanly; wait for the exit (SIGKILL after
/// 10 s).
fn stop(child: &mut Child) {
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match child.try_wait() {
            Ok(Some(_)) | Err(_) => return,
            Ok(None) if Instant::now() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// A port nobody listens on now (envtest picks them the same way).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Certificates and keys of one control plane.
struct Pki {
    ca_pem: String,
    ca_key_pem: String,
    serving_pem: String,
    serving_key_pem: String,
    admin_pem: String,
    admin_key_pem: String,
    service_account_key_pem: String,
    service_account_public_pem: String,
}

impl Pki {
    fn generate() -> Self {
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca = CertificateParams::default();
        ca.distinguished_name = dn("mk8-test-ca", None);
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_cert = ca.self_signed(&ca_key).expect("CA certificate");
        let ca_pem = ca_cert.pem();
        let ca_key_pem = ca_key.serialize_pem();
        let issuer = Issuer::new(ca, ca_key);

        let serving_key = KeyPair::generate().expect("serving key");
        let mut serving = CertificateParams::default();
        serving.distinguished_name = dn("kube-apiserver", None);
        serving.subject_alt_names = vec![
            SanType::IpAddress([127, 0, 0, 1].into()),
            SanType::IpAddress([10, 0, 0, 1].into()),
            SanType::DnsName("localhost".try_into().unwrap()),
            SanType::DnsName("kubernetes.default.svc".try_into().unwrap()),
        ];
        serving.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let serving_pem = serving
            .signed_by(&serving_key, &issuer)
            .expect("serving certificate")
            .pem();

        let admin_key = KeyPair::generate().expect("admin key");
        let mut admin = CertificateParams::default();
        admin.distinguished_name = dn("admin", Some("system:masters"));
        admin.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let admin_pem = admin
            .signed_by(&admin_key, &issuer)
            .expect("admin certificate")
            .pem();

        let service_account = KeyPair::generate().expect("service account key");
        Self {
            ca_pem,
            ca_key_pem,
            serving_pem,
            serving_key_pem: serving_key.serialize_pem(),
            admin_pem,
            admin_key_pem: admin_key.serialize_pem(),
            service_account_key_pem: service_account.serialize_pem(),
            service_account_public_pem: service_account.public_key_pem(),
        }
    }
}

fn dn(common_name: &str, organization: Option<&str>) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    if let Some(o) = organization {
        dn.push(DnType::OrganizationName, o);
    }
    dn
}

fn admin_kubeconfig(url: &str, pki: &Pki) -> String {
    use base64::Engine;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    kubeconfig_yaml(
        url,
        &pki.ca_pem,
        &format!(
            "client-certificate-data: {}\n    client-key-data: {}",
            b64(&pki.admin_pem),
            b64(&pki.admin_key_pem)
        ),
    )
}

fn kubeconfig_yaml(url: &str, ca_pem: &str, user: &str) -> String {
    use base64::Engine;
    let ca = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: {url}\n    \
         certificate-authority-data: {ca}\nusers:\n- name: user\n  user:\n    {user}\ncontexts:\n\
         - name: test\n  context:\n    cluster: test\n    user: user\ncurrent-context: test\n"
    )
}
