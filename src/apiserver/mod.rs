//! The development Kubernetes API server.
//!
//! **Development tooling, not a production control plane.** mk8 is built and tested on machines
//! without Kubernetes, so it carries this in-memory API server: generic (it knows nothing of mk8's
//! own types), speaking the real wire protocol over HTTPS so that `kubectl` and kube-rs
//! controllers work against it unchanged — discovery, OpenAPI v3, CRDs with structural schemas and
//! CEL rules, CRUD, watch, server-side apply, status subresources, finalizers, owner-reference
//! garbage collection and `kubectl get` tables. It backs the end-to-end tests, `mk8 dev`, and the
//! member clusters of `mk8 dev` and the tests (the `devfleet` module). There is no authorization,
//! no admission webhooks, no conversion webhooks, no kubelet (`pods/log` is a stand-in reading a
//! pod annotation) and no controllers besides garbage collection; faults (latency, 403s) can be
//! injected on purpose.

mod admission;
mod apply;
mod builtin;
mod cel;
mod crd;
mod delete;
mod discovery;
mod faults;
mod fields;
mod gc;
mod handlers;
mod http;
mod jsonpath;
mod logs;
mod openapi;
mod patch;
mod persist;
mod protobuf;
mod read;
mod registry;
mod requests;
mod router;
mod schema;
mod server;
mod state;
mod status;
mod store;
mod table;
pub use table::human_age;
mod tls;
mod validation;
mod watch;
mod write;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use base64::Engine;
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use self::discovery::KUBERNETES_VERSION;
use self::http::{ApiRequest, Query};
pub use self::logs::LOG_ANNOTATION;
use self::registry::Registry;
use self::state::State;
use self::store::Store;

/// How to start a [`DevServer`].
#[derive(Debug, Clone)]
pub struct DevServerConfig {
    /// Address to listen on (127.0.0.1 by default).
    pub bind: IpAddr,
    /// Port; 0 picks a free one.
    pub port: u16,
    /// Serve HTTPS with a generated CA (default); plain HTTP when false.
    pub tls: bool,
    /// Persist objects here (snapshot on change and at shutdown, reloaded at start).
    pub data_dir: Option<PathBuf>,
    /// Bearer token clients must send over HTTPS; None generates a random one. Plain HTTP is
    /// unauthenticated: kubectl never sends credentials over it.
    pub token: Option<String>,
    /// Extra names (IP addresses or DNS names) the serving certificate is valid for, besides
    /// `localhost`, the loopback addresses and `bind`.
    pub tls_sans: Vec<String>,
    /// Wait this long before answering each request except `/healthz`, `/livez` and `/readyz`
    /// (fault injection for tests and benchmarks of fan-out reads).
    pub latency: Option<Duration>,
    /// Answer 403 Forbidden to every request but discovery (`/api`, `/apis`, `/version`,
    /// `/openapi/*`) and health, as a cluster that does not authorize the caller would.
    pub forbidden: bool,
}

impl Default for DevServerConfig {
    fn default() -> Self {
        DevServerConfig {
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            tls: true,
            data_dir: None,
            token: None,
            tls_sans: Vec::new(),
            latency: None,
            forbidden: false,
        }
    }
}

/// A running development API server.
pub struct DevServer {
    state: Arc<State>,
    url: String,
    ca_pem: Option<String>,
    token: String,
    cancel: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

impl DevServer {
    /// Start serving; the server accepts requests when this returns.
    pub async fn start(config: DevServerConfig) -> anyhow::Result<DevServer> {
        let token = config
            .token
            .clone()
            .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
        let snapshot = match &config.data_dir {
            Some(dir) => persist::load(dir)?,
            None => None,
        };
        let registry = Registry::default();
        for def in builtin::definitions() {
            registry.insert(def);
        }
        let store = Store::new(snapshot.as_ref().map(|s| s.resource_version).unwrap_or(1));
        let state = Arc::new(State {
            store,
            registry,
            token: config.tls.then(|| token.clone()),
            faults: faults::Faults {
                latency: config.latency,
                forbidden: config.forbidden,
            },
            requests: requests::RequestCounts::default(),
        });
        if let Some(snapshot) = snapshot {
            restore(&state, snapshot);
        }
        ensure_initial_namespaces(&state);

        let listener = tokio::net::TcpListener::bind(SocketAddr::new(config.bind, config.port))
            .await
            .with_context(|| format!("binding {}:{}", config.bind, config.port))?;
        let port = listener.local_addr()?.port();
        // Listening on every address: clients on this machine use loopback.
        let host = match config.bind {
            IpAddr::V6(v6) if v6.is_unspecified() => "[::1]".to_string(),
            IpAddr::V6(v6) => format!("[{v6}]"),
            IpAddr::V4(v4) if v4.is_unspecified() => Ipv4Addr::LOCALHOST.to_string(),
            IpAddr::V4(v4) => v4.to_string(),
        };
        let (acceptor, ca_pem) = if config.tls {
            let tls =
                tls::load_or_generate(config.bind, &config.tls_sans, config.data_dir.as_deref())?;
            (
                Some(tokio_rustls::TlsAcceptor::from(tls.server_config)),
                Some(tls.ca_pem),
            )
        } else {
            (None, None)
        };
        let scheme = if config.tls { "https" } else { "http" };
        let url = format!("{scheme}://{host}:{port}");
        let cancel = CancellationToken::new();
        let mut tasks = vec![
            tokio::spawn(server::serve(
                listener,
                acceptor,
                state.clone(),
                format!("{host}:{port}"),
                cancel.clone(),
            )),
            tokio::spawn(gc::run(state.clone(), cancel.clone())),
        ];
        if let Some(dir) = config.data_dir.clone() {
            tasks.push(tokio::spawn(persist::run(
                state.clone(),
                dir,
                cancel.clone(),
            )));
        }
        tracing::info!(%url, "development API server started");
        Ok(DevServer {
            state,
            url,
            ca_pem,
            token,
            cancel,
            tasks,
        })
    }

    /// Requests answered so far, keyed `"<verb> <resource>"` (e.g. `"update leases"`).
    pub fn request_counts(&self) -> std::collections::BTreeMap<String, u64> {
        self.state.requests.snapshot()
    }

    /// Base URL, e.g. `https://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// The PEM CA that signed the serving certificate (None on plain HTTP).
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    /// The bearer token clients must present.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// A kubeconfig (context `mk8-dev`) pinning the CA and carrying the token.
    pub fn kubeconfig(&self) -> String {
        let ca_line = match &self.ca_pem {
            Some(pem) => format!(
                "\n    certificate-authority-data: {}",
                base64::engine::general_purpose::STANDARD.encode(pem)
            ),
            None => String::new(),
        };
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: mk8-dev\n  cluster:\n    server: {}{ca_line}\nusers:\n- name: mk8-dev\n  user:\n    token: {}\ncontexts:\n- name: mk8-dev\n  context:\n    cluster: mk8-dev\n    user: mk8-dev\n    namespace: default\ncurrent-context: mk8-dev\npreferences: {{}}\n",
            self.url, self.token
        )
    }

    /// Write [`kubeconfig`](Self::kubeconfig) to `path` (parent directories created, mode 0600).
    pub fn write_kubeconfig(&self, path: &Path) -> anyhow::Result<()> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options
            .open(path)
            .with_context(|| format!("writing {}", path.display()))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        }
        std::io::Write::write_all(&mut file, self.kubeconfig().as_bytes())?;
        Ok(())
    }

    /// A kube-rs client configured from [`kubeconfig`](Self::kubeconfig).
    pub async fn client(&self) -> anyhow::Result<kube::Client> {
        let kubeconfig = kube::config::Kubeconfig::from_yaml(&self.kubeconfig())?;
        let config = kube::Config::from_custom_kubeconfig(
            kubeconfig,
            &kube::config::KubeConfigOptions::default(),
        )
        .await?;
        Ok(kube::Client::try_from(config)?)
    }

    /// Create or update every document of a multi-document YAML (server-side apply, manager
    /// `mk8-dev`, forced). CRDs are served as soon as they are stored, so later documents may use them.
    pub async fn apply_manifests(&self, yaml_multi_doc: &str) -> anyhow::Result<()> {
        for document in serde_yaml::Deserializer::from_str(yaml_multi_doc) {
            let doc = Value::deserialize_from(document)?;
            if doc.is_null() {
                continue;
            }
            self.apply_one(&doc)?;
        }
        Ok(())
    }

    /// Create or update one object (server-side apply, manager `mk8-dev`, forced) including its
    /// `status`, which is applied through the status subresource when the resource has one — the
    /// way to seed objects as controllers and kubelets would have left them.
    pub fn apply_object(&self, obj: &Value) -> anyhow::Result<()> {
        self.apply_one(obj)?;
        if obj.get("status").is_some() {
            let api_version = obj["apiVersion"].as_str().unwrap_or_default();
            let kind = obj["kind"].as_str().unwrap_or_default();
            let has_status = self
                .state
                .registry
                .by_kind(api_version, kind)
                .is_some_and(|(def, v)| def.version(&v).is_some_and(|v| v.status_subresource));
            if has_status {
                self.apply_to(obj, Some("status"))?;
            }
        }
        Ok(())
    }

    fn apply_one(&self, doc: &Value) -> anyhow::Result<()> {
        self.apply_to(doc, None)
    }

    /// Server-side apply of one object, or of its `status` subresource.
    fn apply_to(&self, doc: &Value, subresource: Option<&str>) -> anyhow::Result<()> {
        let s = |p: &str| {
            doc.pointer(p)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let (api_version, kind, name) = (s("/apiVersion"), s("/kind"), s("/metadata/name"));
        let (def, version) = self
            .state
            .registry
            .by_kind(&api_version, &kind)
            .with_context(|| format!("no resource serves {api_version} {kind}"))?;
        let prefix = if def.group.is_empty() {
            format!("/api/{version}")
        } else {
            format!("/apis/{}/{version}", def.group)
        };
        let namespace = match s("/metadata/namespace") {
            ns if ns.is_empty() => "default".to_string(),
            ns => ns,
        };
        let scope = if def.namespaced {
            format!("/namespaces/{namespace}")
        } else {
            String::new()
        };
        let mut headers = hyper::HeaderMap::new();
        headers.insert(
            hyper::header::CONTENT_TYPE,
            hyper::header::HeaderValue::from_static("application/apply-patch+yaml"),
        );
        let request = ApiRequest {
            method: hyper::Method::PATCH,
            path: match subresource {
                Some(sub) => format!("{prefix}{scope}/{}/{name}/{sub}", def.plural),
                None => format!("{prefix}{scope}/{}/{name}", def.plural),
            },
            query: Query::parse(Some("fieldManager=mk8-dev&force=true")),
            headers,
            body: serde_json::to_vec(doc)?.into(),
        };
        handlers::handle(&self.state, &request, "")
            .map(|_| ())
            .map_err(|e| anyhow::anyhow!("applying {kind} {name}: {e}"))
    }

    /// Drop all retained watch history and end open watches, as an etcd compaction plus apiserver
    /// restart would: clients resuming from an old resourceVersion get 410 Gone and must relist.
    pub fn compact(&self) {
        self.state.store.compact();
    }

    /// Stop serving, end watches and write the final snapshot (with a data directory).
    pub async fn shutdown(mut self) {
        self.stop().await;
    }

    /// [`shutdown`](Self::shutdown) in place: a stopped server answers nothing, and a new one
    /// started on its port and data directory takes over its objects.
    pub async fn stop(&mut self) {
        self.cancel.cancel();
        self.state.store.compact();
        for task in self.tasks.drain(..) {
            let _ = task.await;
        }
    }
}

impl Drop for DevServer {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// Start a server, write its kubeconfig, print how to use it, and serve until Ctrl-C.
pub async fn run_until_ctrl_c(
    config: DevServerConfig,
    kubeconfig_path: &Path,
) -> anyhow::Result<()> {
    let server = DevServer::start(config).await?;
    server.write_kubeconfig(kubeconfig_path)?;
    println!(
        "development API server listening on {} (not for production use)",
        server.url()
    );
    println!(
        "  kubectl --kubeconfig {} get namespaces",
        kubeconfig_path.display()
    );
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    println!("stopping development API server");
    server.shutdown().await;
    Ok(())
}

fn restore(state: &State, snapshot: persist::Snapshot) {
    // CRDs first, so their resources are served before their objects are restored.
    let mut resources = snapshot.resources;
    resources.sort_by_key(|(g, r, _)| {
        !(g == "apiextensions.k8s.io" && r == "customresourcedefinitions")
    });
    for (group, resource, objects) in resources {
        let gr = (group, resource);
        for obj in objects {
            let key = (
                obj.pointer("/metadata/namespace")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                obj.pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
            );
            if gr.0 == "apiextensions.k8s.io" && gr.1 == "customresourcedefinitions" {
                crd::activate(state, &obj);
            }
            state.store.restore(&gr, key, obj);
        }
    }
}

fn ensure_initial_namespaces(state: &State) {
    let gr = (String::new(), "namespaces".to_string());
    for name in builtin::INITIAL_NAMESPACES {
        if state
            .store
            .get(&gr, &(String::new(), name.to_string()))
            .is_some()
        {
            continue;
        }
        let mut ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {
            "name": name, "uid": uuid::Uuid::new_v4().to_string(), "creationTimestamp": admission::now()
        }});
        builtin::default_on_create(registry::Builtin::Namespace, &mut ns);
        let _ = state
            .store
            .create(&gr, (String::new(), name.to_string()), ns);
    }
}

trait FromDeserializer: Sized {
    fn deserialize_from(d: serde_yaml::Deserializer<'_>) -> anyhow::Result<Self>;
}

impl FromDeserializer for Value {
    fn deserialize_from(d: serde_yaml::Deserializer<'_>) -> anyhow::Result<Self> {
        Ok(serde::Deserialize::deserialize(d)?)
    }
}
