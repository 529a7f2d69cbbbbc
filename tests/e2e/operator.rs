//! The operator against the development API server: samples reconcile to their documented
//! conditions, relations trigger reconciles, finalizers, metrics, health and leader election.

use std::time::Duration;

use futures::FutureExt;
use mk8::operator::{self, OperatorConfig};
use serde_json::Value;

use crate::support::{TestCluster, eventually, repo_root, shared_crd};

const WAIT: Duration = Duration::from_secs(30);

fn condition(obj: &Value, type_: &str) -> Option<(String, String, String)> {
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

/// Wait until `kind/name` in `fleet` has `Ready` with `reason`; returns the object.
pub(crate) async fn ready_reason(
    cluster: &TestCluster,
    kind: &str,
    name: &str,
    reason: &str,
) -> Value {
    eventually(
        &format!("{kind}/{name} Ready reason {reason}"),
        WAIT,
        || {
            let obj = cluster.get_json(&["-n", "fleet", kind, name]);
            match condition(&obj, "Ready") {
                Some((status, r, _)) if r == reason && status == "False" => Ok(obj),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await
}

pub(crate) struct Operator {
    pub admin: std::net::SocketAddr,
    pub stop: tokio::sync::oneshot::Sender<()>,
    pub done: tokio::task::JoinHandle<anyhow::Result<()>>,
}

pub(crate) async fn start_operator(cluster: &TestCluster) -> Operator {
    start_operator_with(cluster, &[]).await
}

/// Start the operator with these flags besides the test defaults.
pub(crate) async fn start_operator_with(cluster: &TestCluster, flags: &[&str]) -> Operator {
    // Logs show up in a failing test's output (RUST_LOG=debug for more).
    operator::telemetry::init("info", operator::config::LogFormat::Text);
    let mut args = vec![
        "--admin-addr",
        "127.0.0.1:0",
        "--leader-election-namespace",
        "default",
    ];
    args.extend_from_slice(flags);
    let config = OperatorConfig::from_args(&args);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let shutdown = stopped.map(|_| ()).shared();
    let client = cluster.client().await;
    let running = operator::start(config, client, shutdown)
        .await
        .expect("operator starts");
    Operator {
        admin: running.admin_addr,
        stop,
        done: running.done,
    }
}

pub(crate) async fn http_get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("admin server reachable");
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let code = response
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (code, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn samples_reconcile_to_their_documented_conditions() {
    let cluster = TestCluster::with_mk8_crds().await;
    cluster
        .apply_manifests(&shared_crd("clusterprofile-crd.yaml"))
        .await;
    let operator = start_operator(&cluster).await;

    eventually("readyz 200 once leading and synced", WAIT, || {
        let (code, body) = futures::executor::block_on(http_get(operator.admin, "/readyz"));
        if code == 200 {
            Ok(())
        } else {
            Err(format!("{code} {body}"))
        }
    })
    .await;
    assert_eq!(http_get(operator.admin, "/livez").await.0, 200);

    let samples = repo_root().join("config/samples");
    cluster.kubectl(&["apply", "-f", samples.to_str().unwrap()]);

    // Valid specs whose provider is not built in say so, having changed nothing.
    let eks = ready_reason(&cluster, "cluster", "prod-eu", "ProviderUnavailable").await;
    assert_eq!(eks["status"]["provider"], "eks");
    assert_eq!(condition(&eks, "Valid").unwrap().0, "True");
    assert!(
        eks["metadata"]["finalizers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f == "mk8.io/cleanup")
    );
    ready_reason(
        &cluster,
        "nodepool",
        "prod-eu-general",
        "ProviderUnavailable",
    )
    .await;
    // RKE2 is built in: the sample's mirror does not exist, so the servers cannot install and
    // the control plane waits for them; the agents wait for the control plane.
    ready_reason(&cluster, "cluster", "edge", "ControlPlaneJoining").await;
    ready_reason(&cluster, "nodepool", "edge-servers", "ArtifactsUnavailable").await;
    ready_reason(
        &cluster,
        "nodepool",
        "edge-agents",
        "WaitingForControlPlane",
    )
    .await;
    let stack = ready_reason(&cluster, "stack", "platform", "ArgoCDUnavailable").await;
    assert!(
        !stack["status"]["waves"].as_array().unwrap().is_empty(),
        "waves planned: {stack}"
    );
    // The view runs its query: depending on whether the sample Cluster's ClusterProfile was
    // published before the first run, it selects no profile yet, or one that offers no access
    // provider (the Cluster has no endpoint). Either is a valid query that found nothing to read.
    eventually("clusterprofileview/prod-nginx ran its query", WAIT, || {
        let obj = cluster.get_json(&["-n", "fleet", "clusterprofileview", "prod-nginx"]);
        match condition(&obj, "Ready") {
            Some((status, r, _))
                if status == "False" && (r == "NoClusterAnswered" || r == "NoClustersSelected") =>
            {
                Ok(obj)
            }
            other => Err(format!("{other:?}")),
        }
    })
    .await;

    // Each Cluster is in the inventory: a ClusterProfile named after it, managed by mk8, with
    // its labels, owned by it, its health mirrored from Ready.
    let profile = eventually("the edge Cluster's ClusterProfile", WAIT, || {
        let out =
            cluster.kubectl_raw(&["get", "-n", "fleet", "clusterprofile", "edge", "-o", "json"]);
        let p: Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        match p["status"]["conditions"][0]["reason"] == "ControlPlaneJoining" {
            true => Ok(p),
            false => Err(format!("{p}")),
        }
    })
    .await;
    assert_eq!(profile["spec"]["clusterManager"]["name"], "mk8");
    assert_eq!(profile["metadata"]["labels"]["env"], "edge");
    assert_eq!(
        profile["metadata"]["labels"]["x-k8s.io/cluster-manager"],
        "mk8"
    );
    assert_eq!(profile["metadata"]["ownerReferences"][0]["kind"], "Cluster");
    assert_eq!(
        profile["status"]["conditions"][0]["type"],
        "ControlPlaneHealthy"
    );
    assert_eq!(profile["status"]["conditions"][0]["status"], "False");

    // kubectl get mk8 lists every kind with the printer columns.
    let table = cluster.kubectl(&["get", "mk8", "-n", "fleet"]);
    for needle in [
        "cluster.mk8.io/prod-eu",
        "nodepool.mk8.io/edge-servers",
        "stack.mk8.io/platform",
        "PROVIDER",
        "eks",
    ] {
        assert!(table.contains(needle), "{needle} missing from:\n{table}");
    }

    // An Event tells the user why the Cluster is not Ready.
    eventually("a ProviderUnavailable Event for prod-eu", WAIT, || {
        let events = cluster.kubectl(&["get", "events.events.k8s.io", "-n", "fleet", "-o", "json"]);
        if events.contains("ProviderUnavailable") && events.contains("prod-eu") {
            Ok(())
        } else {
            Err(events)
        }
    })
    .await;

    // Metrics count reconciles per controller.
    let (code, metrics) = http_get(operator.admin, "/metrics").await;
    assert_eq!(code, 200);
    for controller in ["cluster", "nodepool", "stack", "view"] {
        assert!(
            metrics.contains(&format!(
                "mk8_reconciliations_total{{controller=\"{controller}\"}}"
            )),
            "{metrics}"
        );
    }
    assert!(metrics.contains("mk8_reconcile_duration_seconds_bucket"));

    // The Lease names this replica as leader.
    let lease = cluster.get_json(&["-n", "default", "lease", "mk8-operator"]);
    assert!(
        lease["spec"]["holderIdentity"]
            .as_str()
            .is_some_and(|h| !h.is_empty()),
        "{lease}"
    );

    let _ = operator.stop.send(());
    operator
        .done
        .await
        .unwrap()
        .expect("operator stops cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relations_semantic_errors_and_deletion() {
    let cluster = TestCluster::with_mk8_crds().await;
    let operator = start_operator(&cluster).await;
    apply_stdin(
        &cluster,
        r#"{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"fleet"}}"#,
    );

    // A pool whose Cluster does not exist yet is blocked, and unblocks when the Cluster appears.
    let pool = r#"{"apiVersion":"mk8.io/v1alpha1","kind":"NodePool","metadata":{"name":"agents","namespace":"fleet"},
        "spec":{"clusterName":"edge","ssh":{"role":"agent","hosts":[{"address":"10.77.0.2"}]}}}"#;
    apply_stdin(&cluster, pool);
    let blocked = ready_reason(&cluster, "nodepool", "agents", "ClusterNotFound").await;
    assert_eq!(
        condition(&blocked, "Ready").unwrap().2,
        "Cluster fleet/edge does not exist: create it, or fix spec.clusterName"
    );
    let edge = r#"{"apiVersion":"mk8.io/v1alpha1","kind":"Cluster","metadata":{"name":"edge","namespace":"fleet"},
        "spec":{"rke2":{"version":"v1.33.1+rke2r1","artifacts":{"baseURL":"http://mirror.internal/rke2"},
        "sshCredentialsSecretRef":{"name":"fleet-ssh"}}}}"#;
    apply_stdin(&cluster, edge);
    ready_reason(&cluster, "nodepool", "agents", "WaitingForControlPlane").await;
    let c = ready_reason(&cluster, "cluster", "edge", "SecretMissing").await;
    assert!(condition(&c, "Ready").unwrap().2.starts_with(
        "Secret fleet/fleet-ssh named by spec.rke2.sshCredentialsSecretRef does not exist"
    ));

    // A dependency cycle is reported with its path.
    let stack = r#"{"apiVersion":"mk8.io/v1alpha1","kind":"Stack","metadata":{"name":"loop","namespace":"fleet"},
        "spec":{"components":[{"name":"a","preset":"metallb","dependsOn":["b"]},{"name":"b","preset":"longhorn","dependsOn":["a"]}]}}"#;
    apply_stdin(&cluster, stack);
    let s = ready_reason(&cluster, "stack", "loop", "DependencyCycle").await;
    assert!(condition(&s, "Ready").unwrap().2.contains("a → b → a"));

    // Nothing but a no-op reconcile: the status is not written again.
    let before = cluster.get_json(&["-n", "fleet", "stack", "loop"]);
    cluster.kubectl(&["annotate", "-n", "fleet", "stack", "loop", "touched=yes"]);
    let annotated =
        cluster.get_json(&["-n", "fleet", "stack", "loop"])["metadata"]["resourceVersion"].clone();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = cluster.get_json(&["-n", "fleet", "stack", "loop"]);
    assert_eq!(
        after["metadata"]["resourceVersion"], annotated,
        "no status write after a no-op reconcile"
    );
    assert_eq!(after["status"], before["status"]);

    // Deleting a Cluster that never provisioned anything releases its finalizer.
    cluster.kubectl(&[
        "delete",
        "-n",
        "fleet",
        "cluster",
        "edge",
        "--wait=true",
        "--timeout=30s",
    ]);
    let gone = cluster.kubectl_raw(&["get", "-n", "fleet", "cluster", "edge"]);
    assert!(!gone.status.success());

    let _ = operator.stop.send(());
    operator
        .done
        .await
        .unwrap()
        .expect("operator stops cleanly");
}

pub(crate) fn apply_stdin(cluster: &TestCluster, json: &str) {
    crate::support::apply_stdin_with(&cluster.kubeconfig, &["apply", "-f", "-"], json);
}
