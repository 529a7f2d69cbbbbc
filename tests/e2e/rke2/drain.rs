//! Cordon, drain, uncordon and delete a workload cluster's nodes through its API: against the
//! development API server (nodes, pods, the eviction subresource, field selectors, finalizers),
//! and against a small fake API for evictions a disruption budget refuses (429).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Node, Pod};
use kube::api::{Api, ListParams, PostParams};
use mk8::providers::rke2::nodes::{NodeApi, NodeApiError, WorkloadCluster};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::support::TestCluster;

/// Create an object from JSON; returns it as stored.
async fn create<K>(api: &Api<K>, object: Value) -> K
where
    K: kube::Resource + Clone + DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    let object: K = serde_json::from_value(object).expect("object parses");
    api.create(&PostParams::default(), &object)
        .await
        .expect("object is created")
}

async fn namespaces(client: &kube::Client, names: &[&str]) {
    let api: Api<Namespace> = Api::all(client.clone());
    for name in names {
        if api.get_opt(name).await.unwrap().is_none() {
            create(&api, json!({"metadata": {"name": name}})).await;
        }
    }
}

async fn node(client: &kube::Client, name: &str, status: Value) {
    let api: Api<Node> = Api::all(client.clone());
    create(&api, json!({"metadata": {"name": name}, "status": status})).await;
}

/// A pod on `node`; `meta` is merged into its metadata.
async fn pod(client: &kube::Client, namespace: &str, name: &str, node: &str, meta: Value) -> Pod {
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let mut metadata = json!({"name": name, "namespace": namespace});
    if let (Some(m), Value::Object(extra)) = (metadata.as_object_mut(), meta) {
        m.extend(extra);
    }
    create(
        &api,
        json!({
            "metadata": metadata,
            "spec": {"nodeName": node, "containers": [{"name": "main", "image": "busybox"}]},
        }),
    )
    .await
}

/// `namespace/name` of every pod on the server.
async fn all_pods(client: &kube::Client) -> BTreeSet<String> {
    let api: Api<Pod> = Api::all(client.clone());
    api.list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|p| {
            format!(
                "{}/{}",
                p.metadata.namespace.unwrap_or_default(),
                p.metadata.name.unwrap_or_default()
            )
        })
        .collect()
}

async fn unschedulable(client: &kube::Client, name: &str) -> Option<bool> {
    let api: Api<Node> = Api::all(client.clone());
    api.get(name)
        .await
        .unwrap()
        .spec
        .and_then(|s| s.unschedulable)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_evicts_workloads_and_leaves_daemonset_and_mirror_pods() {
    let cluster = TestCluster::start().await;
    let client = cluster.client().await;
    namespaces(&client, &["team-a", "team-b", "kube-system"]).await;
    node(&client, "worker-1", json!({})).await;
    node(&client, "worker-2", json!({})).await;
    // The dev server serves no DaemonSets; its garbage collector only needs the owner's uid
    // to be alive, so a ConfigMap stands in as the owner.
    let owner = create(
        &Api::<ConfigMap>::namespaced(client.clone(), "team-a"),
        json!({"metadata": {"name": "node-agent"}}),
    )
    .await;
    let owner_uid = owner.metadata.uid.expect("uid");
    pod(&client, "team-a", "web", "worker-1", json!({})).await;
    pod(&client, "team-b", "api", "worker-1", json!({})).await;
    pod(
        &client,
        "team-a",
        "node-agent-x7k2p",
        "worker-1",
        json!({"ownerReferences": [{
            "apiVersion": "apps/v1", "kind": "DaemonSet", "name": "node-agent",
            "uid": owner_uid, "controller": true
        }]}),
    )
    .await;
    pod(
        &client,
        "kube-system",
        "etcd-worker-1",
        "worker-1",
        json!({"annotations": {"kubernetes.io/config.mirror": "3f1c"}}),
    )
    .await;
    pod(&client, "team-b", "migrate", "worker-1", json!({})).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "team-b");
    pods.patch_status(
        "migrate",
        &Default::default(),
        &kube::api::Patch::Merge(json!({"status": {"phase": "Succeeded"}})),
    )
    .await
    .expect("pod finished");
    pod(&client, "team-b", "elsewhere", "worker-2", json!({})).await;

    let api = WorkloadCluster::new(client.clone());
    let started = Instant::now();
    api.drain("worker-1", Duration::from_secs(30))
        .await
        .expect("drain succeeds");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(unschedulable(&client, "worker-1").await, Some(true));
    assert_eq!(unschedulable(&client, "worker-2").await, None);
    assert_eq!(
        all_pods(&client).await,
        BTreeSet::from([
            "kube-system/etcd-worker-1".to_string(),
            "team-a/node-agent-x7k2p".to_string(),
            "team-b/elsewhere".to_string(),
        ])
    );
    // Draining again finds nothing left to move.
    api.drain("worker-1", Duration::from_secs(5)).await.unwrap();

    api.uncordon("worker-1").await.expect("uncordon");
    assert_ne!(unschedulable(&client, "worker-1").await, Some(true));
    api.delete_node("worker-1").await.expect("delete");
    let nodes: Api<Node> = Api::all(client.clone());
    assert!(nodes.get_opt("worker-1").await.unwrap().is_none());
    assert!(nodes.get_opt("worker-2").await.unwrap().is_some());

    // A node that is not there has nothing to drain, uncordon or delete.
    api.drain("worker-1", Duration::from_secs(5)).await.unwrap();
    api.uncordon("worker-1").await.unwrap();
    api.delete_node("worker-1").await.unwrap();
    api.drain("never-existed", Duration::from_secs(5))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_held_by_a_finalizer_makes_the_drain_time_out_naming_it() {
    let cluster = TestCluster::start().await;
    let client = cluster.client().await;
    namespaces(&client, &["team-a"]).await;
    node(&client, "worker-1", json!({})).await;
    pod(
        &client,
        "team-a",
        "stuck",
        "worker-1",
        json!({"finalizers": ["example.com/hold"]}),
    )
    .await;
    pod(&client, "team-a", "free", "worker-1", json!({})).await;

    let api = WorkloadCluster::new(client.clone());
    let started = Instant::now();
    let err = api
        .drain("worker-1", Duration::from_secs(2))
        .await
        .expect_err("the held pod never leaves");
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_secs(2) && elapsed < Duration::from_secs(15),
        "{elapsed:?}"
    );
    let NodeApiError::DrainTimeout { node, pods, .. } = &err else {
        panic!("not a drain timeout: {err}")
    };
    assert_eq!(node, "worker-1");
    assert_eq!(pods.len(), 1, "{err}");
    let message = err.to_string();
    assert!(message.contains("worker-1"), "{message}");
    assert!(
        message.contains("team-a/stuck (terminating, held by finalizers example.com/hold)"),
        "{message}"
    );
    assert!(!message.contains("free"), "{message}");
    assert!(!err.is_unreachable());
    assert_eq!(
        all_pods(&client).await,
        BTreeSet::from(["team-a/stuck".to_string()])
    );
    // The node stays cordoned: its pods must not come back while it waits for a restart.
    assert_eq!(unschedulable(&client, "worker-1").await, Some(true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kubeconfig_reaches_the_api_and_readiness_reads_the_ready_condition() {
    let cluster = TestCluster::start().await;
    let client = cluster.client().await;
    let condition = |status: &str| json!({"conditions": [{"type": "Ready", "status": status}]});
    node(&client, "ready", condition("True")).await;
    node(&client, "not-ready", condition("False")).await;
    node(&client, "unknown", condition("Unknown")).await;
    node(&client, "new", json!({})).await;
    node(
        &client,
        "pressured",
        json!({"conditions": [{"type": "MemoryPressure", "status": "True"}]}),
    )
    .await;

    let api = WorkloadCluster::from_kubeconfig(&cluster.server().kubeconfig()).expect("kubeconfig");
    api.readyz().await.expect("readyz");
    let readiness = api.node_readiness().await.expect("readiness");
    assert_eq!(
        readiness,
        BTreeMap::from([
            ("new".to_string(), false),
            ("not-ready".to_string(), false),
            ("pressured".to_string(), false),
            ("ready".to_string(), true),
            ("unknown".to_string(), false),
        ])
    );
}

/// A port on which nothing listens.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

fn kubeconfig_for(server: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: w\n  cluster:\n    server: {server}\n\
         users:\n- name: w\n  user:\n    token: t\ncontexts:\n- name: w\n  context:\n    cluster: w\n    user: w\n\
         current-context: w\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_api_and_a_broken_kubeconfig_are_told_apart() {
    let refused = format!("https://127.0.0.1:{}", closed_port());
    let api = WorkloadCluster::from_kubeconfig(&kubeconfig_for(&refused)).expect("kubeconfig");
    let started = Instant::now();
    let err = api.readyz().await.expect_err("nothing listens");
    assert!(err.is_unreachable(), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(15));
    let message = err.to_string();
    assert!(message.contains("cannot reach"), "{message}");
    assert!(message.to_lowercase().contains("refused"), "{message}");
    let err = api
        .drain("worker-1", Duration::from_secs(5))
        .await
        .expect_err("nothing listens");
    assert!(err.is_unreachable(), "{err:?}");
    assert!(err.to_string().contains("cordon node worker-1"), "{err}");

    let nowhere =
        WorkloadCluster::from_kubeconfig(&kubeconfig_for("https://api.mk8-test.invalid:6443"))
            .unwrap();
    let err = nowhere.readyz().await.expect_err("no such name");
    assert!(err.is_unreachable(), "{err:?}");

    // The dev server answers, but its certificate is not trusted without the kubeconfig's CA:
    // that is not "unreachable".
    let cluster = TestCluster::start().await;
    let untrusted =
        WorkloadCluster::from_kubeconfig(&kubeconfig_for(&cluster.server().url())).unwrap();
    let err = untrusted.readyz().await.expect_err("untrusted certificate");
    assert!(!err.is_unreachable(), "{err:?}");
    assert!(
        err.to_string().to_lowercase().contains("certificate"),
        "{err}"
    );

    for (yaml, expected) in [
        ("clusters: [", "parse"),
        (
            "apiVersion: v1\nkind: Config\nclusters:\n- name: w\n  cluster: {}\ncontexts:\n- name: w\n  context: {cluster: w}\ncurrent-context: w\n",
            "cluster url is missing",
        ),
        (
            "apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\n",
            "current context",
        ),
    ] {
        let Err(err) = WorkloadCluster::from_kubeconfig(yaml) else {
            panic!("{yaml:?} was accepted")
        };
        assert!(matches!(err, NodeApiError::Kubeconfig(_)), "{err:?}");
        let message = err.to_string();
        assert!(message.contains("kubeconfig"), "{message}");
        assert!(message.contains(expected), "{yaml:?}: {message}");
    }
}

/// A fake workload API with one node `n1` and one pod `shop/web` on it, whose evictions a
/// disruption budget refuses `refusals` times.
struct BudgetedApi {
    url: String,
    evictions: Arc<AtomicU32>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for BudgetedApi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl BudgetedApi {
    async fn start(refusals: u32) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let evictions = Arc::new(AtomicU32::new(0));
        let count = evictions.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let count = count.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let count = count.clone();
                        async move { Ok::<_, hyper::Error>(answer(&req, &count, refusals)) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self {
            url,
            evictions,
            task,
        }
    }

    fn api(&self) -> WorkloadCluster {
        WorkloadCluster::from_kubeconfig(&kubeconfig_for(&self.url)).expect("kubeconfig")
    }
}

fn answer(req: &Request<Incoming>, evictions: &AtomicU32, refusals: u32) -> Response<Full<Bytes>> {
    let json = |status: u16, body: Value| {
        Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body.to_string())))
            .unwrap()
    };
    let evicted = evictions.load(Ordering::SeqCst) > refusals;
    match (req.method().as_str(), req.uri().path()) {
        ("PATCH", "/api/v1/nodes/n1") => json(
            200,
            json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}}),
        ),
        ("GET", "/api/v1/pods") => {
            let items = if evicted {
                json!([])
            } else {
                json!([{"metadata": {"name": "web", "namespace": "shop"},
                        "spec": {"nodeName": "n1", "containers": []},
                        "status": {"phase": "Running"}}])
            };
            json(
                200,
                json!({"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": items}),
            )
        }
        ("POST", "/api/v1/namespaces/shop/pods/web/eviction") => {
            if evictions.fetch_add(1, Ordering::SeqCst) < refusals {
                json(
                    429,
                    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                           "message": "Cannot evict pod as it would violate the pod's disruption budget.",
                           "reason": "TooManyRequests", "code": 429}),
                )
            } else {
                json(
                    201,
                    json!({"kind": "Status", "apiVersion": "v1", "status": "Success", "code": 201}),
                )
            }
        }
        _ => json(
            404,
            json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                   "reason": "NotFound", "code": 404, "message": "not found"}),
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_eviction_refused_by_a_disruption_budget_is_retried_until_it_is_allowed() {
    let fake = BudgetedApi::start(3).await;
    fake.api()
        .drain("n1", Duration::from_secs(20))
        .await
        .expect("the budget allows it on the fourth try");
    assert_eq!(fake.evictions.load(Ordering::SeqCst), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_eviction_a_budget_keeps_refusing_times_out_saying_so() {
    let fake = BudgetedApi::start(u32::MAX).await;
    let err = fake
        .api()
        .drain("n1", Duration::from_secs(2))
        .await
        .expect_err("the budget never allows it");
    assert!(fake.evictions.load(Ordering::SeqCst) >= 3);
    let message = err.to_string();
    assert!(
        message.starts_with("draining node n1 did not finish within 2s: 1 pod still there: shop/web (eviction refused with 429"),
        "{message}"
    );
    assert!(message.contains("disruption budget"), "{message}");
}
