//! Shared harness of the end-to-end tests: a development API server, the real kubectl, polling.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use mk8::apiserver::{DevServer, DevServerConfig};

/// A development API server with a kubeconfig file for kubectl.
pub struct TestCluster {
    pub server: DevServer,
    pub kubeconfig: PathBuf,
    _dir: tempfile::TempDir,
}

impl TestCluster {
    /// Start a server on a random port and write its kubeconfig.
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
            server,
            kubeconfig,
            _dir: dir,
        }
    }

    /// Start a server with mk8's CRDs installed.
    pub async fn with_mk8_crds() -> Self {
        let cluster = Self::start().await;
        cluster
            .server
            .apply_manifests(&mk8::crdgen::all_yaml())
            .await
            .expect("mk8 CRDs install");
        cluster
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

    /// `kubectl get -o json` of one object.
    pub fn get_json(&self, args: &[&str]) -> serde_json::Value {
        let mut full = vec!["get", "-o", "json"];
        full.extend_from_slice(args);
        serde_json::from_str(&self.kubectl(&full)).expect("kubectl prints JSON")
    }
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
