//! A workload cluster's Node objects through its API (I/O): cordon and drain a node before RKE2
//! restarts or removes it, uncordon it afterwards, delete its Node object, and read readiness.

use std::collections::BTreeMap;
use std::error::Error as StdError;
use std::fmt;
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DeleteParams, EvictParams, ListParams, Patch, PatchParams};
use serde_json::{Value, json};
use tokio::time::Instant;

/// Connect, read and write timeout of a client built from a kubeconfig.
pub const API_TIMEOUT: Duration = Duration::from_secs(10);
/// The annotation of mirror pods: static pods the kubelet runs from files, which no eviction
/// removes.
pub const MIRROR_ANNOTATION: &str = "kubernetes.io/config.mirror";
/// First pause between drain rounds; doubled each round up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(250);
/// Longest pause between drain rounds.
const MAX_PAUSE: Duration = Duration::from_secs(5);

/// What mk8 does to a workload cluster's nodes through its API.
pub trait NodeApi: Send + Sync {
    /// Cordon `node`, evict its pods (all but DaemonSet-owned pods and mirror/static pods, i.e.
    /// annotation `kubernetes.io/config.mirror`; pods already Succeeded/Failed are deleted), and
    /// wait until they are gone, within `timeout`. A Node that does not exist has nothing to
    /// drain: Ok.
    fn drain<'a>(
        &'a self,
        node: &'a str,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<(), NodeApiError>>;

    /// Mark `node` schedulable again (absent node: Ok).
    fn uncordon<'a>(&'a self, node: &'a str) -> BoxFuture<'a, Result<(), NodeApiError>>;

    /// Delete the Node object (absent: Ok).
    fn delete_node<'a>(&'a self, node: &'a str) -> BoxFuture<'a, Result<(), NodeApiError>>;

    /// `GET /readyz`: Ok when the API answers ok.
    fn readyz<'a>(&'a self) -> BoxFuture<'a, Result<(), NodeApiError>>;

    /// Every Node with whether its Ready condition is True.
    fn node_readiness<'a>(&'a self) -> BoxFuture<'a, Result<BTreeMap<String, bool>, NodeApiError>>;

    /// Ok when Node `node` exists, its Ready condition is True and its kubelet reports
    /// `kubelet_version`; [`NodeApiError::NodeNotReady`] saying what it shows otherwise.
    fn node_ready<'a>(
        &'a self,
        node: &'a str,
        kubelet_version: &'a str,
    ) -> BoxFuture<'a, Result<(), NodeApiError>>;
}

/// Failures of [`NodeApi`] operations; messages name the node and what was being done.
#[derive(Debug, thiserror::Error)]
pub enum NodeApiError {
    /// The kubeconfig cannot be turned into a client.
    #[error("the workload cluster's kubeconfig cannot be used: {0}")]
    Kubeconfig(String),
    /// The API cannot be reached at all: connection refused, timeout, name resolution.
    #[error("cannot reach the workload cluster's API to {action}: {reason}")]
    Unreachable {
        /// What was being done, such as `cordon node s1`.
        action: String,
        /// The transport failure.
        reason: String,
    },
    /// The API answered with an error status.
    #[error("{action}: the workload cluster's API answered {code}: {reason}")]
    Api {
        /// What was being done.
        action: String,
        /// HTTP status code.
        code: u16,
        /// The API's message.
        reason: String,
    },
    /// Anything else between mk8 and the API: TLS, a response that does not parse.
    #[error("{action}: talking to the workload cluster's API failed: {reason}")]
    Client {
        /// What was being done.
        action: String,
        /// What went wrong.
        reason: String,
    },
    /// `/readyz` answered, but not `ok`.
    #[error("the workload cluster's API is not ready: {0}")]
    NotReady(String),
    /// The API answered, but the Node is absent, not Ready, or runs another kubelet version.
    #[error("{0}")]
    NodeNotReady(String),
    /// Pods were still on the node when the drain's time was up.
    #[error(
        "draining node {node} did not finish within {timeout:?}: {} still there: {}",
        pods_count(pods),
        pods.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
    )]
    DrainTimeout {
        /// The node.
        node: String,
        /// The time the drain was given.
        timeout: Duration,
        /// The pods that stayed, and why.
        pods: Vec<RemainingPod>,
    },
}

impl NodeApiError {
    /// Whether the API could not be reached at all (connection refused, timeout, DNS).
    pub fn is_unreachable(&self) -> bool {
        matches!(self, NodeApiError::Unreachable { .. })
    }
}

/// A pod a drain is still waiting for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemainingPod {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Why it is still there.
    pub why: String,
}

impl fmt::Display for RemainingPod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{} ({})", self.namespace, self.name, self.why)
    }
}

fn pods_count(pods: &[RemainingPod]) -> String {
    match pods.len() {
        1 => "1 pod".into(),
        n => format!("{n} pods"),
    }
}

/// The API of a workload cluster reached through a kubeconfig (the `<cluster>-kubeconfig`
/// Secret's `value`).
#[derive(Clone)]
pub struct WorkloadCluster {
    client: kube::Client,
}

impl WorkloadCluster {
    /// Build a client from kubeconfig YAML with short connect/read timeouts
    /// ([`API_TIMEOUT`]); errors name what is wrong with the kubeconfig. Call it within a Tokio
    /// runtime (the client spawns its connection tasks there).
    pub fn from_kubeconfig(yaml: &str) -> Result<Self, NodeApiError> {
        let invalid = |e: &(dyn StdError + 'static)| NodeApiError::Kubeconfig(describe(e));
        let kubeconfig = kube::config::Kubeconfig::from_yaml(yaml).map_err(|e| invalid(&e))?;
        // Loading a kubeconfig reads no files and runs no plugins: the future is ready at once.
        let mut config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
            .now_or_never()
            .ok_or_else(|| NodeApiError::Kubeconfig("loading it did not finish at once".into()))?
            .map_err(|e| invalid(&e))?;
        config.connect_timeout = Some(API_TIMEOUT);
        config.read_timeout = Some(API_TIMEOUT);
        config.write_timeout = Some(API_TIMEOUT);
        // kube's own retries of 429 would wait out disruption budgets unbounded; drain retries
        // refused evictions itself, within its timeout.
        config.default_retry = false;
        let client = kube::Client::try_from(config).map_err(|e| invalid(&e))?;
        Ok(Self::new(client))
    }

    /// Use an existing client.
    pub fn new(client: kube::Client) -> Self {
        Self { client }
    }

    /// Set or clear `spec.unschedulable`; `false` when the Node does not exist.
    async fn set_unschedulable(&self, node: &str, cordon: bool) -> Result<bool, NodeApiError> {
        let nodes: Api<Node> = Api::all(self.client.clone());
        // Null removes the field, as `kubectl uncordon` does.
        let value = if cordon { json!(true) } else { Value::Null };
        let patch = json!({"spec": {"unschedulable": value}});
        match nodes
            .patch(node, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if is_not_found(&e) => Ok(false),
            Err(e) => {
                let verb = if cordon { "cordon" } else { "uncordon" };
                Err(classify(format!("{verb} node {node}"), e))
            }
        }
    }

    async fn drain_node(&self, node: &str, timeout: Duration) -> Result<(), NodeApiError> {
        let deadline = Instant::now() + timeout;
        if !self.set_unschedulable(node, true).await? {
            return Ok(());
        }
        let pods: Api<Pod> = Api::all(self.client.clone());
        let on_node = ListParams::default().fields(&format!("spec.nodeName={node}"));
        let mut pause = FIRST_PAUSE;
        loop {
            let listed = pods
                .list(&on_node)
                .await
                .map_err(|e| classify(format!("list the pods on node {node}"), e))?;
            let mut remaining = Vec::new();
            for pod in listed.items.iter().filter(|p| must_leave(p)) {
                remaining.extend(self.remove(node, pod).await?);
            }
            if remaining.is_empty() {
                return Ok(());
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(NodeApiError::DrainTimeout {
                    node: node.to_string(),
                    timeout,
                    pods: remaining,
                });
            }
            tokio::time::sleep(pause.min(deadline - now)).await;
            pause = (pause * 2).min(MAX_PAUSE);
        }
    }

    /// Ask `pod` to leave `node` (evict it, or delete it when it has finished); says why it is
    /// still there for now, or `None` when it is gone.
    async fn remove(&self, node: &str, pod: &Pod) -> Result<Option<RemainingPod>, NodeApiError> {
        let namespace = pod.metadata.namespace.clone().unwrap_or_default();
        let name = pod.metadata.name.clone().unwrap_or_default();
        let remaining = |why: String| {
            Some(RemainingPod {
                namespace: namespace.clone(),
                name: name.clone(),
                why,
            })
        };
        if pod.metadata.deletion_timestamp.is_some() {
            return Ok(remaining(match pod.metadata.finalizers.as_deref() {
                Some(f) if !f.is_empty() => {
                    format!("terminating, held by finalizers {}", f.join(", "))
                }
                _ => "terminating".into(),
            }));
        }
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &namespace);
        let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
        if let Some(phase @ ("Succeeded" | "Failed")) = phase {
            return match api.delete(&name, &DeleteParams::default()).await {
                Ok(_) => Ok(remaining(format!("{phase}, deleted, not gone yet"))),
                Err(e) if is_not_found(&e) => Ok(None),
                Err(e) => Err(classify(
                    format!("delete finished pod {namespace}/{name} on node {node}"),
                    e,
                )),
            };
        }
        match api.evict(&name, &EvictParams::default()).await {
            Ok(_) => Ok(remaining("evicted, not gone yet".into())),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(kube::Error::Api(status)) if status.code == 429 => Ok(remaining(format!(
                "eviction refused with 429, a disruption budget does not allow it yet: {}",
                status.message
            ))),
            Err(e) => Err(classify(
                format!("evict pod {namespace}/{name} from node {node}"),
                e,
            )),
        }
    }

    async fn ready(&self) -> Result<(), NodeApiError> {
        let action = "read /readyz";
        let request = hyper::Request::get("/readyz")
            .body(Vec::new())
            .map_err(|e| NodeApiError::Client {
                action: action.into(),
                reason: e.to_string(),
            })?;
        let text = self
            .client
            .request_text(request)
            .await
            .map_err(|e| classify(action.into(), e))?;
        if text.trim() == "ok" {
            Ok(())
        } else {
            Err(NodeApiError::NotReady(format!(
                "/readyz answered {:?}",
                text.trim()
            )))
        }
    }

    async fn readiness(&self) -> Result<BTreeMap<String, bool>, NodeApiError> {
        let nodes: Api<Node> = Api::all(self.client.clone());
        let list = nodes
            .list(&ListParams::default())
            .await
            .map_err(|e| classify("list nodes".into(), e))?;
        Ok(list
            .items
            .into_iter()
            .map(|n| {
                let ready = ready_status(&n) == Some("True");
                (n.metadata.name.unwrap_or_default(), ready)
            })
            .collect())
    }
}

impl NodeApi for WorkloadCluster {
    fn drain<'a>(
        &'a self,
        node: &'a str,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<(), NodeApiError>> {
        Box::pin(self.drain_node(node, timeout))
    }

    fn uncordon<'a>(&'a self, node: &'a str) -> BoxFuture<'a, Result<(), NodeApiError>> {
        Box::pin(async move { self.set_unschedulable(node, false).await.map(|_| ()) })
    }

    fn delete_node<'a>(&'a self, node: &'a str) -> BoxFuture<'a, Result<(), NodeApiError>> {
        Box::pin(async move {
            let nodes: Api<Node> = Api::all(self.client.clone());
            match nodes.delete(node, &DeleteParams::default()).await {
                Ok(_) => Ok(()),
                Err(e) if is_not_found(&e) => Ok(()),
                Err(e) => Err(classify(format!("delete node {node}"), e)),
            }
        })
    }

    fn readyz<'a>(&'a self) -> BoxFuture<'a, Result<(), NodeApiError>> {
        Box::pin(self.ready())
    }

    fn node_readiness<'a>(&'a self) -> BoxFuture<'a, Result<BTreeMap<String, bool>, NodeApiError>> {
        Box::pin(self.readiness())
    }

    fn node_ready<'a>(
        &'a self,
        node: &'a str,
        kubelet_version: &'a str,
    ) -> BoxFuture<'a, Result<(), NodeApiError>> {
        Box::pin(async move {
            let nodes: Api<Node> = Api::all(self.client.clone());
            let found = nodes
                .get_opt(node)
                .await
                .map_err(|e| classify(format!("read node {node}"), e))?;
            let Some(found) = found else {
                return Err(NodeApiError::NodeNotReady(format!(
                    "node {node} has not registered yet"
                )));
            };
            let ready = ready_status(&found);
            let version = found.status.as_ref().and_then(|s| s.node_info.as_ref());
            let version = version.map(|i| i.kubelet_version.as_str());
            if ready == Some("True") && version == Some(kubelet_version) {
                Ok(())
            } else {
                Err(NodeApiError::NodeNotReady(format!(
                    "node {node} is not Ready with {kubelet_version} yet (Ready: {}, kubelet: {})",
                    ready.unwrap_or("unknown"),
                    version.unwrap_or("unknown")
                )))
            }
        })
    }
}

/// The status of a Node's Ready condition (`True`, `False`, `Unknown`), if it reports one.
fn ready_status(node: &Node) -> Option<&str> {
    let conditions = node.status.as_ref()?.conditions.as_ref()?;
    conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .map(|c| c.status.as_str())
}

/// Whether a drain must move `pod`: DaemonSet pods come back at once and mirror pods cannot be
/// evicted, so `kubectl drain` leaves both, and so does mk8.
fn must_leave(pod: &Pod) -> bool {
    let meta = &pod.metadata;
    let daemon = meta
        .owner_references
        .iter()
        .flatten()
        .any(|r| r.kind == "DaemonSet" && r.controller == Some(true));
    let mirror = meta
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(MIRROR_ANNOTATION));
    !daemon && !mirror
}

fn is_not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(status) if status.code == 404)
}

/// Sort a kube error: an answer from the API, no answer at all, or something in between.
fn classify(action: String, e: kube::Error) -> NodeApiError {
    match e {
        kube::Error::Api(status) => NodeApiError::Api {
            action,
            code: status.code,
            reason: if status.message.is_empty() {
                status.reason
            } else {
                status.message
            },
        },
        kube::Error::Service(source) => transport(action, source.as_ref()),
        kube::Error::HyperError(source) => transport(action, &source),
        other => NodeApiError::Client {
            action,
            reason: describe(&other),
        },
    }
}

/// A failure below HTTP: unreachable, unless TLS failed (then something answered).
fn transport(action: String, source: &(dyn StdError + 'static)) -> NodeApiError {
    let reason = describe(source);
    if causes(source).any(|c| c.is::<rustls::Error>()) {
        NodeApiError::Client { action, reason }
    } else {
        NodeApiError::Unreachable { action, reason }
    }
}

/// An error and its causes. `io::Error` hides the error it wraps from `source()`; look inside.
fn causes<'a>(
    e: &'a (dyn StdError + 'static),
) -> impl Iterator<Item = &'a (dyn StdError + 'static)> {
    std::iter::successors(Some(e), |&e: &&'a (dyn StdError + 'static)| {
        match e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner as &(dyn StdError + 'static)),
            None => e.source(),
        }
    })
}

/// An error and its causes in one line, each cause once.
fn describe(e: &(dyn StdError + 'static)) -> String {
    let mut text = String::new();
    for cause in causes(e) {
        let part = cause.to_string();
        if text.contains(&part) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
    }
    text
}
