//! Shared harness of the end-to-end tests: a development API server, the real kubectl, polling.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use mk8::apiserver::{DevServer, DevServerConfig};

/// Which API server a management cluster of the tests is: `MK8_TEST_APISERVER=real` picks the
/// real control plane (tests/peers), anything else (the default) the development API server.
pub fn real_management_cluster() -> bool {
    std::env::var("MK8_TEST_APISERVER").is_ok_and(|v| v == "real")
}

/// An API server with a kubeconfig file for kubectl: the development API server or the real
/// control plane.
pub struct TestCluster {
    backend: Backend,
    pub kubeconfig: PathBuf,
    // How to start the development API server again with the same objects, port, CA and token.
    restart: Option<DevServerConfig>,
    _dir: tempfile::TempDir,
}

enum Backend {
    Dev(DevServer),
    Real(crate::peers::ControlPlane),
}

impl TestCluster {
    /// Start a development API server on a random port and write its kubeconfig.
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let server = DevServer::start(DevServerConfig::default())
            .await
            .expect("dev API server starts");
        let kubeconfig = dir.path().join("kubeconfig");
        server
            .write_kubeconfig(&kubeconfig)
            .expect("kubeconfig written");
        Self {
            backend: Backend::Dev(server),
            kubeconfig,
            restart: None,
            _dir: dir,
        }
    }

    /// Start the real control plane (etcd, kube-apiserver, kube-controller-manager).
    pub async fn start_real() -> Self {
        let plane = tokio::task::spawn_blocking(crate::peers::ControlPlane::start)
            .await
            .expect("the control plane starts");
        Self {
            kubeconfig: plane.kubeconfig.clone(),
            backend: Backend::Real(plane),
            restart: None,
            _dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    /// A management cluster as [`real_management_cluster`] chooses.
    pub async fn management() -> Self {
        if real_management_cluster() {
            Self::start_real().await
        } else {
            Self::start().await
        }
    }

    /// A management cluster with mk8's CRDs installed (and Established).
    pub async fn with_mk8_crds() -> Self {
        let cluster = Self::management().await;
        cluster.apply_manifests(&mk8::crdgen::all_yaml()).await;
        cluster
    }

    /// A management cluster as [`real_management_cluster`] chooses, with mk8's CRDs, whose API
    /// server [`restart_api_server`](Self::restart_api_server) can restart: the development API
    /// server keeps its objects in a data directory and comes back on the same port with the
    /// same CA and token; the real kube-apiserver keeps them in etcd.
    pub async fn restartable_with_mk8_crds() -> Self {
        let cluster = if real_management_cluster() {
            Self::start_real().await
        } else {
            let dir = tempfile::tempdir().expect("temp dir");
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free port")
                .port();
            let config = DevServerConfig {
                port,
                data_dir: Some(dir.path().join("data")),
                token: Some(uuid::Uuid::new_v4().simple().to_string()),
                ..Default::default()
            };
            let server = DevServer::start(config.clone())
                .await
                .expect("dev API server starts");
            let kubeconfig = dir.path().join("kubeconfig");
            server
                .write_kubeconfig(&kubeconfig)
                .expect("kubeconfig written");
            Self {
                backend: Backend::Dev(server),
                kubeconfig,
                restart: Some(config),
                _dir: dir,
            }
        };
        cluster.apply_manifests(&mk8::crdgen::all_yaml()).await;
        cluster
    }

    /// Stop the API server, wait until its port refuses connections, leave it down for
    /// `down_for`, then start it again and wait until it is ready. Needs
    /// [`restartable_with_mk8_crds`](Self::restartable_with_mk8_crds).
    pub async fn restart_api_server(&mut self, down_for: Duration) {
        match &mut self.backend {
            Backend::Real(plane) => {
                tokio::task::block_in_place(|| plane.restart_apiserver(down_for));
            }
            Backend::Dev(server) => {
                let config = self
                    .restart
                    .clone()
                    .expect("a restartable development API server");
                server.stop().await;
                let addr = std::net::SocketAddr::from(([127, 0, 0, 1], config.port));
                eventually(
                    "the API server's port closed",
                    Duration::from_secs(10),
                    || match std::net::TcpStream::connect(addr) {
                        Ok(_) => Err("still accepting".to_string()),
                        Err(_) => Ok(()),
                    },
                )
                .await;
                tokio::time::sleep(down_for).await;
                *server = DevServer::start(config)
                    .await
                    .expect("dev API server starts again");
            }
        }
    }

    /// The development API server; panics for the real control plane.
    pub fn server(&self) -> &DevServer {
        match &self.backend {
            Backend::Dev(server) => server,
            Backend::Real(_) => panic!("this test needs the development API server"),
        }
    }

    /// The real control plane, if this is one.
    pub fn real(&self) -> Option<&crate::peers::ControlPlane> {
        match &self.backend {
            Backend::Real(plane) => Some(plane),
            Backend::Dev(_) => None,
        }
    }

    /// A kube-rs client with full rights.
    pub async fn client(&self) -> kube::Client {
        match &self.backend {
            Backend::Dev(server) => server.client().await.expect("client"),
            Backend::Real(plane) => plane.client().await,
        }
    }

    /// Create or update every document of a multi-document YAML (server-side apply, forced);
    /// CRDs among them are Established when this returns.
    pub async fn apply_manifests(&self, yaml: &str) {
        match &self.backend {
            Backend::Dev(server) => server.apply_manifests(yaml).await.expect("manifests apply"),
            Backend::Real(_) => {
                apply_stdin_with(
                    &self.kubeconfig,
                    &["apply", "--server-side", "--force-conflicts", "-f", "-"],
                    yaml,
                );
                if yaml.contains("kind: CustomResourceDefinition") {
                    // A CRD created a moment ago may have no status yet, which `kubectl wait`
                    // reports as an error rather than waiting: ask again until all are Established.
                    let started = Instant::now();
                    loop {
                        let out = self.kubectl_raw(&[
                            "wait",
                            "--for=condition=Established",
                            "--timeout=60s",
                            "crd",
                            "--all",
                        ]);
                        if out.status.success() {
                            break;
                        }
                        assert!(
                            started.elapsed() < Duration::from_secs(90),
                            "CRDs not Established: {}",
                            String::from_utf8_lossy(&out.stderr)
                        );
                        std::thread::sleep(Duration::from_millis(500));
                    }
                }
            }
        }
    }

    /// Run kubectl against this server; panics with stderr when it fails.
    pub fn kubectl(&self, args: &[&str]) -> String {
        let out = self.kubectl_raw(args);
        assert!(
            out.status.success(),
            "kubectl {} failed: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8 output")
    }

    /// Run kubectl and return its raw output, whatever the exit status.
    pub fn kubectl_raw(&self, args: &[&str]) -> std::process::Output {
        Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .output()
            .expect("kubectl runs (is it on PATH?)")
    }

    /// Run kubectl with `input` on standard input, whatever the exit status.
    pub fn kubectl_stdin_raw(&self, args: &[&str], input: &str) -> std::process::Output {
        kubectl_input_raw(&self.kubeconfig, args, input)
    }

    /// `kubectl get -o json` of one object.
    pub fn get_json(&self, args: &[&str]) -> serde_json::Value {
        let mut full = vec!["get", "-o", "json"];
        full.extend_from_slice(args);
        serde_json::from_str(&self.kubectl(&full)).expect("kubectl prints JSON")
    }
}

/// Run kubectl with `input` on standard input, whatever the exit status.
pub fn kubectl_input_raw(kubeconfig: &Path, args: &[&str], input: &str) -> std::process::Output {
    use std::io::Write;
    let mut child = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("kubectl runs (is it on PATH?)");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input.as_bytes()).unwrap();
    drop(stdin);
    child.wait_with_output().unwrap()
}

/// Run kubectl with `input` on standard input; panics with its output when it fails.
pub fn apply_stdin_with(kubeconfig: &Path, args: &[&str], input: &str) -> String {
    let out = kubectl_input_raw(kubeconfig, args, input);
    assert!(
        out.status.success(),
        "kubectl {} failed: {}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// Poll `check` until it returns `Some`, or panic after `timeout` with the last observation.
pub async fn eventually<T, F>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Result<T, String>,
{
    let started = Instant::now();
    let mut last = String::new();
    while started.elapsed() < timeout {
        match check() {
            Ok(value) => return value,
            Err(observed) => last = observed,
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("timed out after {timeout:?} waiting for {what}; last observed: {last}");
}

/// The repository root (for samples and reference files).
pub fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A file of the shared reference CRDs beside the repository.
pub fn shared_crd(name: &str) -> String {
    let path = repo_root().join("../shared/reference/crds").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}
