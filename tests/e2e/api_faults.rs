//! The operator (the real `mk8-operator` binary) against a management API that goes wrong: the
//! API server restarted in the middle of reconciles (the development API server from its data
//! directory, or the real kube-apiserver with etcd keeping the data), and a proxy in front of
//! the development API server that answers 429 (with Retry-After, as API Priority and Fairness
//! does), 500, stalls and drops connections, and cuts watch streams, for a seeded share of the
//! requests. Asserted: the process never exits, every object converges, new objects are seen
//! after the faults (the watches recovered), and while every request fails the operator backs
//! off instead of hammering the API.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};

use crate::operator::http_get;
use crate::support::{TestCluster, eventually};

const CLUSTERS: usize = 8;
const WAIT: Duration = Duration::from_secs(120);

/// The mk8-operator binary as a child process; killed (and reaped) on drop.
struct Operator {
    child: Child,
    admin: SocketAddr,
}

impl Operator {
    fn spawn(kubeconfig: &std::path::Path, log: &std::path::Path) -> Operator {
        let admin = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap();
        let log = std::fs::File::create(log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_mk8-operator"))
            .args(["--admin-addr", &admin.to_string()])
            .env("KUBECONFIG", kubeconfig)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("mk8-operator starts");
        Operator { child, admin }
    }

    /// Panics when the process has exited (a crash, or a deliberate exit on errors).
    fn assert_running(&mut self, log: &std::path::Path) {
        if let Some(status) = self.child.try_wait().unwrap() {
            panic!(
                "mk8-operator exited ({status}); log:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
    }

    async fn ready(&mut self, log: &std::path::Path) {
        let started = Instant::now();
        loop {
            self.assert_running(log);
            if TcpStream::connect(self.admin).await.is_ok()
                && http_get(self.admin, "/readyz").await.0 == 200
            {
                return;
            }
            assert!(started.elapsed() < WAIT, "the operator never became ready");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Paused EKS Clusters and one paused NodePool each (no provider is called), at `generation`'s
/// spec: `kubernetesVersion` 1.3x and the pool's desired size change with it.
fn fleet(generation: u32, names: std::ops::Range<usize>) -> String {
    let mut items = Vec::new();
    for c in names {
        items.push(json!({
            "apiVersion": "mk8.io/v1alpha1", "kind": "Cluster",
            "metadata": {"name": format!("c{c}"), "namespace": "fleet"},
            "spec": {"paused": true, "kubernetesVersion": format!("1.3{}", 2 + generation), "eks": {
                "region": "eu-west-1",
                "roleArn": "arn:aws:iam::123456789012:role/eks-control-plane",
                "vpc": {"subnetIds": ["subnet-0a1b2c3d4e5f60718", "subnet-0b1c2d3e4f5a60718"]}}}}));
        items.push(json!({
            "apiVersion": "mk8.io/v1alpha1", "kind": "NodePool",
            "metadata": {"name": format!("c{c}-pool"), "namespace": "fleet"},
            "spec": {"clusterName": format!("c{c}"), "paused": true, "eks": {
                "instanceTypes": ["m6i.large"],
                "scaling": {"min": 1, "max": 5, "desired": generation},
                "nodeRoleArn": "arn:aws:iam::123456789012:role/eks-nodes"}}}));
    }
    // Documents one after the other, not a List: kubectl validates a List's schema through
    // OpenAPI v2, which the development API server does not serve.
    items
        .iter()
        .map(Value::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every Cluster and NodePool has a status for its current spec.
fn converged(kubeconfig: &std::path::Path, want: usize) -> Result<(), String> {
    let out = crate::support::apply_stdin_with(
        kubeconfig,
        &["get", "-n", "fleet", "clusters,nodepools", "-o", "json"],
        "",
    );
    let list: Value = serde_json::from_str(&out).map_err(|e| e.to_string())?;
    let items = list["items"].as_array().cloned().unwrap_or_default();
    let behind: Vec<String> = items
        .iter()
        .filter(|o| {
            o["status"]["observedGeneration"] != o["metadata"]["generation"]
                || o["status"]["conditions"]
                    .as_array()
                    .is_none_or(|c| c.is_empty())
        })
        .map(|o| {
            format!(
                "{}/{} generation {} observed {}",
                o["kind"],
                o["metadata"]["name"],
                o["metadata"]["generation"],
                o["status"]["observedGeneration"]
            )
        })
        .collect();
    if items.len() < want * 2 || !behind.is_empty() {
        return Err(format!("{} objects; behind: {behind:?}", items.len()));
    }
    Ok(())
}

fn apply(kubeconfig: &std::path::Path, manifest: &str) {
    crate::support::apply_stdin_with(kubeconfig, &["apply", "-f", "-"], manifest);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_server_restarted_mid_reconcile_is_ridden_out() {
    let mut cluster = TestCluster::restartable_with_mk8_crds().await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("operator.log");
    let kc = cluster.kubeconfig.clone();
    apply(
        &kc,
        r#"{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"fleet"}}"#,
    );
    apply(&kc, &fleet(1, 0..CLUSTERS));
    let mut operator = Operator::spawn(&kc, &log);
    operator.ready(&log).await;
    eventually("the fleet converged", WAIT, || converged(&kc, CLUSTERS)).await;

    // A new spec for every object, and the API server goes away while they are reconciled.
    apply(&kc, &fleet(2, 0..CLUSTERS));
    cluster.restart_api_server(Duration::from_secs(3)).await;
    operator.assert_running(&log);
    eventually("the fleet converged after the restart", WAIT, || {
        converged(&kc, CLUSTERS)
    })
    .await;
    // The watches are back: an object created after the restart is reconciled.
    apply(&kc, &fleet(2, CLUSTERS..CLUSTERS + 1));
    eventually(
        "the object created after the restart converged",
        WAIT,
        || converged(&kc, CLUSTERS + 1),
    )
    .await;
    operator.assert_running(&log);
    operator.ready(&log).await;
}

/// Faults the proxy injects, in requests per thousand.
#[derive(Default)]
struct Faults {
    seed: u64,
    rolls: AtomicU64,
    throttle: AtomicU32,
    error: AtomicU32,
    stall: AtomicU32,
    cut_watches: AtomicBool,
    /// Requests seen (also the faulted ones).
    requests: AtomicU64,
    injected: std::sync::Mutex<BTreeMap<&'static str, u64>>,
}

impl Faults {
    /// A number in 0..1000 from the seed and the request count (splitmix64).
    fn roll(&self) -> u32 {
        let mut z = self.seed.wrapping_add(
            self.rolls
                .fetch_add(1, Ordering::SeqCst)
                .wrapping_mul(0x9E37_79B9_7F4A_7C15),
        );
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) % 1000) as u32
    }

    fn count(&self, what: &'static str) {
        *self.injected.lock().unwrap().entry(what).or_default() += 1;
    }
}

type Body = BoxBody<Bytes, std::io::Error>;

/// A plain-HTTP proxy in front of the development API server that injects [`Faults`].
struct FaultProxy {
    addr: SocketAddr,
    faults: Arc<Faults>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FaultProxy {
    async fn start(upstream: SocketAddr, seed: u64) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let faults = Arc::new(Faults {
            seed,
            ..Default::default()
        });
        let shared = faults.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let faults = shared.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let faults = faults.clone();
                        async move { handle(req, upstream, &faults).await }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        FaultProxy { addr, faults, task }
    }
}

fn status(code: u16, reason: &str, message: &str) -> Response<Body> {
    let body = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code});
    let mut response = Response::builder()
        .status(code)
        .header("content-type", "application/json");
    if code == 429 {
        response = response.header("retry-after", "1");
    }
    response
        .body(
            Full::new(Bytes::from(body.to_string()))
                .map_err(|never| match never {})
                .boxed(),
        )
        .unwrap()
}

async fn handle(
    req: Request<Incoming>,
    upstream: SocketAddr,
    faults: &Faults,
) -> Result<Response<Body>, std::io::Error> {
    faults.requests.fetch_add(1, Ordering::SeqCst);
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map_err(std::io::Error::other)?
        .to_bytes();
    let roll = faults.roll();
    let throttle = faults.throttle.load(Ordering::SeqCst);
    let error = throttle + faults.error.load(Ordering::SeqCst);
    let stall = error + faults.stall.load(Ordering::SeqCst);
    if roll < throttle {
        faults.count("429");
        return Ok(status(
            429,
            "TooManyRequests",
            "Too many requests, please try again later.",
        ));
    }
    if roll < error {
        faults.count("500");
        return Ok(status(
            500,
            "InternalError",
            "Internal error occurred: injected",
        ));
    }
    if roll < stall {
        // No answer for a while, then the connection is dropped.
        faults.count("stall");
        tokio::time::sleep(Duration::from_secs(3)).await;
        return Err(std::io::Error::other("injected stall"));
    }
    let stream = TcpStream::connect(upstream).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(std::io::Error::other)?;
    tokio::spawn(conn);
    let mut forward = Request::builder()
        .method(parts.method.clone())
        .uri(parts.uri.path_and_query().map_or("/", |p| p.as_str()));
    for (name, value) in &parts.headers {
        forward = forward.header(name, value);
    }
    let response = sender
        .send_request(forward.body(Full::new(body)).unwrap())
        .await
        .map_err(std::io::Error::other)?;
    let watch = parts
        .uri
        .query()
        .is_some_and(|q| q.split('&').any(|p| p == "watch=true" || p == "watch=1"));
    let (head, upstream_body) = response.into_parts();
    // Streamed through frame by frame (watches are long); a watch is cut after 1–4 s.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, std::io::Error>>(16);
    let cut = (watch && faults.cut_watches.load(Ordering::SeqCst))
        .then(|| Duration::from_millis(1000 + u64::from(faults.roll()) * 3));
    if cut.is_some() {
        faults.count("watch cut");
    }
    tokio::spawn(async move {
        let mut body = upstream_body;
        let deadline = tokio::time::sleep(cut.unwrap_or(Duration::MAX / 4));
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                frame = body.frame() => match frame {
                    Some(Ok(f)) => if tx.send(Ok(f)).await.is_err() { return },
                    Some(Err(e)) => { let _ = tx.send(Err(std::io::Error::other(e))).await; return }
                    None => return,
                },
                _ = &mut deadline => {
                    let _ = tx.send(Err(std::io::Error::other("injected cut"))).await;
                    return;
                }
            }
        }
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    Ok(Response::from_parts(head, StreamBody::new(stream).boxed()))
}

fn seed() -> u64 {
    let seed = std::env::var("MK8_CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln!("chaos seed: {seed} — replay with MK8_CHAOS_SEED={seed}");
    seed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_errors_stalls_and_cut_watches_are_ridden_out() {
    let seed = seed();
    // Plain HTTP, so that the proxy sees the requests; kubectl and the test talk to the server
    // directly, only the operator goes through the proxy.
    let server = mk8::apiserver::DevServer::start(mk8::apiserver::DevServerConfig {
        tls: false,
        ..Default::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("direct.kubeconfig");
    server.write_kubeconfig(&kc).unwrap();
    crate::support::apply_stdin_with(
        &kc,
        &["apply", "--server-side", "-f", "-"],
        &mk8::crdgen::all_yaml(),
    );
    crate::support::apply_stdin_with(
        &kc,
        &[
            "wait",
            "--for",
            "condition=Established",
            "crd",
            "--all",
            "--timeout=60s",
        ],
        "",
    );
    apply(
        &kc,
        r#"{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"fleet"}}"#,
    );
    apply(&kc, &fleet(1, 0..CLUSTERS));

    let upstream: SocketAddr = server.url().trim_start_matches("http://").parse().unwrap();
    let proxy = FaultProxy::start(upstream, seed).await;
    let faults = proxy.faults.clone();
    faults.throttle.store(150, Ordering::SeqCst);
    faults.error.store(100, Ordering::SeqCst);
    faults.stall.store(50, Ordering::SeqCst);
    faults.cut_watches.store(true, Ordering::SeqCst);
    let proxied = dir.path().join("proxied.kubeconfig");
    std::fs::write(
        &proxied,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: faulty\n  cluster:\n    server: http://{}\ncontexts:\n- name: faulty\n  context:\n    cluster: faulty\n    user: anonymous\nusers:\n- name: anonymous\n  user: {{}}\ncurrent-context: faulty\n",
            proxy.addr
        ),
    )
    .unwrap();
    let log = dir.path().join("operator.log");
    let mut operator = Operator::spawn(&proxied, &log);
    // Started under the faults: it gets ready and converges without exiting.
    operator.ready(&log).await;
    eventually("the fleet converged under faults", WAIT, || {
        converged(&kc, CLUSTERS)
    })
    .await;
    apply(&kc, &fleet(2, 0..CLUSTERS));
    eventually("the new specs converged under faults", WAIT, || {
        converged(&kc, CLUSTERS)
    })
    .await;
    operator.assert_running(&log);

    // Every request fails for 12 s, while every object has a new spec to write status for:
    // retries back off.
    faults.error.store(1000, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(1)).await;
    apply(&kc, &fleet(3, 0..CLUSTERS));
    let before = faults.requests.load(Ordering::SeqCst);
    let window = Duration::from_secs(12);
    tokio::time::sleep(window).await;
    let during = faults.requests.load(Ordering::SeqCst) - before;
    operator.assert_running(&log);
    eprintln!(
        "requests while everything failed: {during} in {window:?}; injected so far: {:?}",
        faults.injected.lock().unwrap()
    );
    // The operator has a dozen watches, a Lease and 16 objects to retry: backing off, about 60
    // requests in this window; with a fixed 10 ms retry delay instead, 260 were measured.
    assert!(
        during < 150,
        "{during} requests in {window:?} while everything failed: no backoff"
    );

    // The faults end: everything converges and a new object is seen.
    for f in [&faults.throttle, &faults.error, &faults.stall] {
        f.store(0, Ordering::SeqCst);
    }
    faults.cut_watches.store(false, Ordering::SeqCst);
    apply(&kc, &fleet(3, CLUSTERS..CLUSTERS + 1));
    eventually("everything converged once the faults ended", WAIT, || {
        converged(&kc, CLUSTERS + 1)
    })
    .await;
    let injected = faults.injected.lock().unwrap().clone();
    for kind in ["429", "500", "stall", "watch cut"] {
        assert!(
            injected.get(kind).is_some_and(|n| *n > 0),
            "no {kind} was injected: {injected:?}"
        );
    }
    operator.assert_running(&log);
}
