//! End-to-end tests of the development API server, judged by the real kubectl and kube-rs.

mod apply;
mod controller;
mod crds;
mod crud;
mod discovery;
mod errors;
mod faults;
mod gc;
mod logs;
mod persist;
mod status;
mod tables;
mod transport;
mod watch;

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use mk8::apiserver::{DevServer, DevServerConfig};

/// The upstream CRDs shipped with the design documents.
pub const CRD_DIR: &str = "/work/shared/reference/crds";

/// A server on a random port, its kubeconfig, and a private kubectl cache.
pub struct Cluster {
    pub server: DevServer,
    pub kubeconfig: PathBuf,
    cache: PathBuf,
    pub dir: tempfile::TempDir,
}

impl Cluster {
    /// Start a server with the default configuration.
    pub async fn start() -> Self {
        Self::start_with(DevServerConfig::default()).await
    }

    /// Start a server with a given configuration.
    pub async fn start_with(config: DevServerConfig) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let server = DevServer::start(config)
            .await
            .expect("dev API server starts");
        let kubeconfig = dir.path().join("kube/config");
        server
            .write_kubeconfig(&kubeconfig)
            .expect("kubeconfig written");
        let cache = dir.path().join("cache");
        Cluster {
            server,
            kubeconfig,
            cache,
            dir,
        }
    }

    /// Run kubectl with optional stdin.
    pub fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kubectl runs");
        let mut input = child.stdin.take().expect("stdin");
        input
            .write_all(stdin.unwrap_or_default().as_bytes())
            .expect("stdin written");
        drop(input);
        child.wait_with_output().expect("kubectl finishes")
    }

    /// A kubectl command for this server, not yet started.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new("kubectl");
        command
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--cache-dir")
            .arg(&self.cache)
            .args(args);
        command
    }

    /// kubectl that must succeed; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        self.ok_in(args, None)
    }

    /// kubectl with stdin that must succeed; returns stdout.
    pub fn ok_in(&self, args: &[&str], stdin: Option<&str>) -> String {
        let out = self.run(args, stdin);
        assert!(
            out.status.success(),
            "kubectl {} failed:\n{}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// kubectl that must fail; returns stderr.
    pub fn fails(&self, args: &[&str], stdin: Option<&str>) -> String {
        let out = self.run(args, stdin);
        assert!(
            !out.status.success(),
            "kubectl {} unexpectedly succeeded:\n{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// `kubectl apply -f -` of a manifest.
    pub fn apply(&self, yaml: &str) -> String {
        self.ok_in(&["apply", "-f", "-"], Some(yaml))
    }

    /// `kubectl get -o json`.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut full = vec!["get", "-o", "json"];
        full.extend_from_slice(args);
        serde_json::from_str(&self.ok(&full)).expect("kubectl prints JSON")
    }

    /// Install one of the upstream CRDs (server-side: the ArgoCD CRD is too large for the
    /// last-applied annotation, as on a real cluster).
    pub fn install_upstream_crd(&self, file: &str) {
        let path = format!("{CRD_DIR}/{file}");
        self.ok(&["apply", "--server-side", "-f", &path]);
    }

    /// A raw HTTP request through kube-rs (token and CA from the kubeconfig).
    pub async fn raw(
        &self,
        method: &str,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> (u16, serde_json::Value) {
        self.raw_with(method, path, &[("content-type", content_type)], body)
            .await
    }

    /// A raw HTTP request with arbitrary headers.
    pub async fn raw_with(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> (u16, serde_json::Value) {
        let client = self.server.client().await.expect("client");
        let mut builder = hyper::Request::builder().method(method).uri(path);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let request = builder.body(body).expect("request");
        let response = client
            .send(request.map(kube::client::Body::from))
            .await
            .expect("response");
        let status = response.status().as_u16();
        let bytes = http_body_util::BodyExt::collect(response.into_body())
            .await
            .expect("body")
            .to_bytes();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
        )
    }
}

/// A small namespaced CRD with a status subresource, printer columns, a category, defaults and
/// CEL rules, used across these tests.
pub const WIDGET_CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.test.mk8.io
spec:
  group: test.mk8.io
  scope: Namespaced
  names:
    plural: widgets
    singular: widget
    kind: Widget
    shortNames: [wd]
    categories: [mk8test]
  versions:
  - name: v1
    served: true
    storage: true
    subresources:
      status: {}
    additionalPrinterColumns:
    - name: Size
      type: integer
      jsonPath: .spec.size
    - name: Ready
      type: string
      jsonPath: .status.conditions[?(@.type=="Ready")].status
    - name: Age
      type: date
      jsonPath: .metadata.creationTimestamp
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            description: WidgetSpec is what the widget should be.
            required: [size]
            x-kubernetes-validations:
            - rule: "self.size <= self.maxSize"
              message: size must not exceed maxSize
              fieldPath: .size
            properties:
              size:
                type: integer
                minimum: 1
                description: How big the widget is.
              maxSize:
                type: integer
                default: 10
              color:
                type: string
                enum: [red, green, blue]
              owner:
                type: string
                x-kubernetes-validations:
                - rule: "self == oldSelf"
                  message: owner is immutable
              ports:
                type: array
                x-kubernetes-list-type: map
                x-kubernetes-list-map-keys: [name]
                items:
                  type: object
                  required: [name]
                  properties:
                    name: {type: string}
                    port: {type: integer}
          status:
            type: object
            properties:
              observed:
                type: integer
              conditions:
                type: array
                x-kubernetes-list-type: map
                x-kubernetes-list-map-keys: [type]
                items:
                  type: object
                  properties:
                    type: {type: string}
                    status: {type: string}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: gadgets.test.mk8.io
spec:
  group: test.mk8.io
  scope: Cluster
  names:
    plural: gadgets
    kind: Gadget
    categories: [mk8test]
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true
"#;

/// Start a server with the test CRDs installed through kubectl.
pub async fn with_widgets() -> Cluster {
    let cluster = Cluster::start().await;
    cluster.apply(WIDGET_CRD);
    cluster
}

/// Poll `f` until it returns Some, or panic after `timeout`.
pub async fn eventually<T>(
    timeout: Duration,
    what: &str,
    mut f: impl AsyncFnMut() -> Option<T>,
) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
