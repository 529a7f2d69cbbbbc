//! The rendered chart on the development API server: its CRDs and manifests applied with
//! server-side apply, then the operator started with the Deployment's own args, reconciling.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use clap::Parser;
use futures::FutureExt;
use kube::Api;
use kube::api::{DynamicObject, GroupVersionKind, PostParams};
use kube::discovery::ApiResource;
use mk8::apiserver::{DevServer, DevServerConfig};
use mk8::operator::{self, OperatorConfig};
use serde_json::{Value, json};

use super::{RELEASE_NAMESPACE, checked, rendered, repo, strings};

const WAIT: Duration = Duration::from_secs(30);

/// Kinds of the chart the development API server does not serve (it is generic and stores only
/// what mk8 itself uses); documents of these kinds are skipped, by name, when it refuses them.
const NOT_SERVED: &[&str] = &[
    "Deployment",
    "Service",
    "ClusterRole",
    "ClusterRoleBinding",
    "Role",
    "RoleBinding",
    "NetworkPolicy",
    "PodDisruptionBudget",
    "ServiceMonitor",
];

fn namespace_yaml(name: &str) -> String {
    format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}\n")
}

/// Apply the chart's CRDs and the manifests rendered for `values`; returns the kinds skipped.
async fn apply_chart(server: &DevServer, values: &str) -> Vec<String> {
    for entry in std::fs::read_dir(repo().join("charts/mk8-operator/crds")).expect("chart crds/") {
        let path = entry.expect("dir entry").path();
        let crd = std::fs::read_to_string(&path).expect("readable CRD");
        server
            .apply_manifests(&crd)
            .await
            .unwrap_or_else(|e| panic!("applying {}: {e:#}", path.display()));
    }
    server
        .apply_manifests(&namespace_yaml(RELEASE_NAMESPACE))
        .await
        .expect("release namespace");
    let text = std::fs::read_to_string(checked().join(format!("{values}.yaml")))
        .expect("check.py's rendered manifests");
    let mut skipped = Vec::new();
    for document in text.split("\n---\n") {
        let manifest: Value = serde_yaml::from_str(document).expect("rendered YAML");
        let kind = manifest["kind"].as_str().unwrap_or_default().to_owned();
        match server.apply_manifests(document).await {
            Ok(()) => {}
            Err(e)
                if NOT_SERVED.contains(&kind.as_str())
                    && e.to_string().contains("no resource serves") =>
            {
                skipped.push(kind)
            }
            Err(e) => panic!("[{values}] the development API server refuses {kind}: {e:#}"),
        }
    }
    skipped
}

async fn http_status(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await.ok()?;
    let code = response.split_whitespace().nth(1)?.parse().ok()?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Some((code, body))
}

/// Poll `check` until it returns Some, or panic naming `what` and the last observation.
async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + WAIT;
    loop {
        match check().await {
            Ok(value) => return value,
            Err(last) if Instant::now() > deadline => {
                panic!("timed out waiting for {what}: {last}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

fn mk8_api(client: &kube::Client, namespace: &str, kind: &str) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("mk8.io", "v1alpha1", kind);
    Api::namespaced_with(client.clone(), namespace, &ApiResource::from_gvk(&gvk))
}

fn eks_cluster(name: &str, namespace: &str) -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": "mk8.io/v1alpha1",
        "kind": "Cluster",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "kubernetesVersion": "1.33",
            "eks": {
                "region": "eu-west-1",
                "roleArn": "arn:aws:iam::123456789012:role/eks-control-plane",
                "vpc": {"subnetIds": ["subnet-0a1b2c3d4e5f60718", "subnet-0b1c2d3e4f5a60718"]}
            }
        }
    }))
    .expect("Cluster object")
}

fn has_ready_condition(object: &DynamicObject) -> bool {
    object.data["status"]["conditions"]
        .as_array()
        .is_some_and(|c| c.iter().any(|c| c["type"] == "Ready"))
}

/// The operator started with the args the chart renders for `values` (only the admin address
/// moves to a free loopback port, so that tests can run side by side).
async fn start_with_chart_args(
    server: &DevServer,
    values: &str,
) -> (SocketAddr, tokio::sync::oneshot::Sender<()>, OperatorConfig) {
    let summary = rendered();
    let args = strings(&summary[values]["args"]);
    let argv = std::iter::once("mk8-operator".to_owned()).chain(args.iter().map(|a| {
        match a.starts_with("--admin-addr=") {
            true => "--admin-addr=127.0.0.1:0".to_owned(),
            false => a.clone(),
        }
    }));
    let config = OperatorConfig::try_parse_from(argv).expect("the chart's args parse");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let client = server.client().await.expect("client");
    operator::telemetry::init("info", operator::config::LogFormat::Text);
    let running = operator::start(config.clone(), client, stopped.map(|_| ()).shared())
        .await
        .expect("operator starts");
    let admin = running.admin_addr;
    eventually(&format!("[{values}] /readyz 200"), || async move {
        match http_status(admin, "/readyz").await {
            Some((200, _)) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    (admin, stop, config)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rendered_chart_applies_and_the_operator_runs_with_its_args() {
    let server = DevServer::start(DevServerConfig::default())
        .await
        .expect("dev API server");
    let skipped = apply_chart(&server, "default").await;
    assert!(
        !skipped.contains(&"ServiceAccount".to_owned()),
        "the ServiceAccount must apply"
    );
    eprintln!("not served by the development API server, skipped: {skipped:?}");
    let client = server.client().await.expect("client");
    let accounts: Api<k8s_openapi::api::core::v1::ServiceAccount> =
        Api::namespaced(client.clone(), RELEASE_NAMESPACE);
    accounts
        .get("mk8-operator")
        .await
        .expect("the chart's ServiceAccount was applied");

    let (_admin, stop, config) = start_with_chart_args(&server, "default").await;
    // Leader election in the release namespace, on the Lease the chart names.
    let leases: Api<k8s_openapi::api::coordination::v1::Lease> =
        Api::namespaced(client.clone(), RELEASE_NAMESPACE);
    let lease = leases
        .get(&config.leader_election_lease)
        .await
        .expect("the operator holds the chart's Lease in the release namespace");
    assert!(
        lease.spec.and_then(|s| s.holder_identity).is_some(),
        "the Lease has a holder"
    );

    // All namespaces are watched: a Cluster anywhere is reconciled.
    server
        .apply_manifests(&namespace_yaml("fleet"))
        .await
        .expect("namespace");
    let clusters = mk8_api(&client, "fleet", "Cluster");
    clusters
        .create(&PostParams::default(), &eks_cluster("prod-eu", "fleet"))
        .await
        .expect("Cluster");
    eventually("Cluster fleet/prod-eu reconciled (Ready condition)", || {
        let clusters = clusters.clone();
        async move {
            let object = clusters.get("prod-eu").await.map_err(|e| e.to_string())?;
            match has_ready_condition(&object) {
                true => Ok(()),
                false => Err(format!("status {}", object.data["status"])),
            }
        }
    })
    .await;
    let _ = stop.send(());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_namespace_values_reconcile_only_the_watched_namespace() {
    let server = DevServer::start(DevServerConfig::default())
        .await
        .expect("dev API server");
    apply_chart(&server, "single-namespace").await;
    for namespace in ["team-a", "team-b"] {
        server
            .apply_manifests(&namespace_yaml(namespace))
            .await
            .expect("namespace");
    }
    let client = server.client().await.expect("client");
    let watched = mk8_api(&client, "team-a", "Cluster");
    let other = mk8_api(&client, "team-b", "Cluster");
    watched
        .create(&PostParams::default(), &eks_cluster("a", "team-a"))
        .await
        .expect("Cluster");
    other
        .create(&PostParams::default(), &eks_cluster("b", "team-b"))
        .await
        .expect("Cluster");

    let (_admin, stop, config) = start_with_chart_args(&server, "single-namespace").await;
    assert!(
        !config.leader_election,
        "single-namespace.yaml turns leader election off"
    );
    eventually("Cluster team-a/a reconciled", || {
        let watched = watched.clone();
        async move {
            let object = watched.get("a").await.map_err(|e| e.to_string())?;
            match has_ready_condition(&object) {
                true => Ok(()),
                false => Err(format!("status {}", object.data["status"])),
            }
        }
    })
    .await;
    // The watched Cluster was reconciled, so an unwatched one would have been by now too.
    let unwatched = other.get("b").await.expect("Cluster team-b/b");
    assert!(
        !has_ready_condition(&unwatched) && unwatched.metadata.finalizers.is_none(),
        "the operator reconciled team-b although the chart told it to watch team-a only: {:?}",
        unwatched.data["status"]
    );
    let _ = stop.send(());
}
