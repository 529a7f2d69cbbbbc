//! The EKS provider end to end: the operator (in-process, restarted between steps) against the
//! development API server and `moto_server` behind a fault-injecting proxy.

mod aws;
mod cluster;
mod config_aws;
mod nodepool;

use std::time::{Duration, Instant};

use futures::FutureExt;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};
use mk8::api::{Cluster, NodePool};
use mk8::operator::{self, OperatorConfig};
use serde_json::{Value, json};

use crate::support::TestCluster;
use aws::{Moto, Proxy, REGION};

/// Namespace of every object in these tests.
pub const NS: &str = "fleet";
/// How long a step may take.
pub const WAIT: Duration = Duration::from_secs(60);
/// The test's AWS secret key: it must never show up in status or Events.
pub const SECRET_KEY: &str = "s3cr3t-KEY-never-shown";

/// A running operator; dropping `stop` stops it.
pub struct Running {
    stop: tokio::sync::oneshot::Sender<()>,
    done: tokio::task::JoinHandle<anyhow::Result<()>>,
}

/// The world of one test.
pub struct Env {
    pub k8s: TestCluster,
    pub client: Client,
    pub moto: Moto,
    pub proxy: Proxy,
    pub eks: aws_sdk_eks::Client,
    operator: Option<Running>,
}

impl Env {
    /// API server with CRDs, namespace, credentials Secret; moto and the proxy; no operator yet.
    pub async fn start() -> Self {
        operator::telemetry::init("info", operator::config::LogFormat::Text);
        let k8s = TestCluster::with_mk8_crds().await;
        let client = k8s.client().await;
        k8s.kubectl(&["create", "namespace", NS]);
        let moto = Moto::start().await;
        let proxy = Proxy::start(moto.addr).await;
        let eks = aws::eks_client(&moto);
        let env = Self {
            k8s,
            client,
            moto,
            proxy,
            eks,
            operator: None,
        };
        env.credentials("aws", None).await;
        env
    }

    /// A Secret `name` with static keys, optionally a role to assume.
    pub async fn credentials(&self, name: &str, role_arn: Option<&str>) {
        let mut data = json!({"accessKeyId": "AKIATESTKEY", "secretAccessKey": SECRET_KEY});
        if let Some(role) = role_arn {
            data["roleArn"] = role.into();
        }
        let secret: Secret = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": name, "namespace": NS},
            "stringData": data,
        }))
        .unwrap();
        Api::<Secret>::namespaced(self.client.clone(), NS)
            .create(&PostParams::default(), &secret)
            .await
            .expect("credentials Secret created");
    }

    /// Start (or restart) the operator against the proxy.
    pub async fn start_operator(&mut self) {
        self.stop_operator().await;
        let endpoint = self.proxy.url();
        let config = OperatorConfig::from_args(&[
            "--admin-addr",
            "127.0.0.1:0",
            "--leader-election-namespace",
            "default",
            "--aws-region",
            REGION,
            "--aws-endpoint-url",
            &endpoint,
        ]);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let running = operator::start(config, self.client.clone(), stopped.map(|_| ()).shared())
            .await
            .expect("operator starts");
        self.operator = Some(Running {
            stop,
            done: running.done,
        });
    }

    /// Stop the operator and wait for it.
    pub async fn stop_operator(&mut self) {
        if let Some(running) = self.operator.take() {
            let _ = running.stop.send(());
            let _ = tokio::time::timeout(Duration::from_secs(20), running.done).await;
        }
    }

    /// Create a Cluster from a `spec` (JSON).
    pub async fn cluster(&self, name: &str, spec: Value) -> Cluster {
        let cluster: Cluster = serde_json::from_value(json!({
            "apiVersion": "mk8.io/v1alpha1", "kind": "Cluster",
            "metadata": {"name": name, "namespace": NS},
            "spec": spec,
        }))
        .unwrap();
        Api::<Cluster>::namespaced(self.client.clone(), NS)
            .create(&PostParams::default(), &cluster)
            .await
            .expect("Cluster created")
    }

    /// Create a NodePool from a `spec` (JSON).
    pub async fn pool(&self, name: &str, spec: Value) -> NodePool {
        let pool: NodePool = serde_json::from_value(json!({
            "apiVersion": "mk8.io/v1alpha1", "kind": "NodePool",
            "metadata": {"name": name, "namespace": NS},
            "spec": spec,
        }))
        .unwrap();
        Api::<NodePool>::namespaced(self.client.clone(), NS)
            .create(&PostParams::default(), &pool)
            .await
            .expect("NodePool created")
    }

    /// Merge-patch an object's spec.
    pub async fn patch_spec<K>(&self, name: &str, spec: Value)
    where
        K: kube::Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
    {
        Api::<K>::namespaced(self.client.clone(), NS)
            .patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": spec})),
            )
            .await
            .expect("spec patched");
    }

    /// `kubectl get -o json` of `kind/name` in the test namespace.
    pub fn get(&self, kind: &str, name: &str) -> Value {
        self.k8s.get_json(&["-n", NS, kind, name])
    }

    /// Wait until `kind/name` no longer exists.
    pub async fn gone(&self, kind: &str, name: &str) {
        until(&format!("{kind}/{name} to go"), WAIT, || async move {
            if self.exists(kind, name) {
                Err("still there".to_string())
            } else {
                Ok(())
            }
        })
        .await
    }

    /// Whether `kind/name` exists.
    pub fn exists(&self, kind: &str, name: &str) -> bool {
        self.k8s
            .kubectl_raw(&["-n", NS, "get", kind, name])
            .status
            .success()
    }
}

/// The spec of an EKS Cluster using the test credentials and two subnets.
pub fn eks_spec(extra: Value) -> Value {
    let mut spec = json!({
        "kubernetesVersion": "1.31",
        "eks": {
            "region": REGION,
            "roleArn": "arn:aws:iam::123456789012:role/eks-control-plane",
            "vpc": {"subnetIds": ["subnet-0a1b2c3d4e5f60001", "subnet-0a1b2c3d4e5f60002"]},
            "credentialsSecretRef": {"name": "aws"},
            "tags": {"team": "platform"},
        }
    });
    merge(&mut spec, extra);
    spec
}

fn merge(into: &mut Value, from: Value) {
    match (into, from) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k).or_insert(Value::Null), v);
            }
        }
        (slot, v) => *slot = v,
    }
}

/// `(status, reason, message)` of condition `type_`.
pub fn condition(obj: &Value, type_: &str) -> Option<(String, String, String)> {
    obj["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
        .map(|c| {
            (
                c["status"].as_str().unwrap_or_default().to_string(),
                c["reason"].as_str().unwrap_or_default().to_string(),
                c["message"].as_str().unwrap_or_default().to_string(),
            )
        })
}

/// Wait until `kind/name` has `Ready` with `status` and `reason`; returns the object.
pub async fn ready(env: &Env, kind: &str, name: &str, status: &str, reason: &str) -> Value {
    until(
        &format!("{kind}/{name} Ready={status} {reason}"),
        WAIT,
        || async move {
            let obj = env.get(kind, name);
            match condition(&obj, "Ready") {
                Some((s, r, _)) if s == status && r == reason => Ok(obj),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await
}

/// Poll the async `check` until it returns `Ok`, or panic after `timeout`.
pub async fn until<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let started = Instant::now();
    let mut last = String::new();
    while started.elapsed() < timeout {
        match check().await {
            Ok(value) => return value,
            Err(observed) => last = observed,
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("timed out after {timeout:?} waiting for {what}; last observed: {last}");
}
