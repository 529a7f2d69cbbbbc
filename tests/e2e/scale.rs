//! The operator at scale: the real `mk8-operator` binary against a management cluster holding
//! many Clusters, NodePools and Secrets. Providers are stubbed by pausing every Cluster and
//! NodePool (`spec.paused: true`): the controllers list, watch, validate and write status as usual
//! but call no provider, so nothing is provisioned and no network is reached.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures::stream::{self, StreamExt};
use kube::api::{Api, DynamicObject, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::json;

use crate::operator::http_get;
use crate::support::TestCluster;

/// How big a fleet is loaded.
struct Fleet {
    clusters: usize,
    pools_per_cluster: usize,
    secrets: usize,
}

/// What one run measured.
struct Figures {
    ready_after: Duration,
    converged_after: Duration,
    peak_rss_kib: u64,
    at_rest: BTreeMap<String, u64>,
    quiet_window: Duration,
    p99: BTreeMap<String, f64>,
}

const NAMESPACES: usize = 10;

fn mk8(kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("mk8.io", "v1alpha1", kind), plural)
}

async fn load(cluster: &TestCluster, fleet: &Fleet) {
    let client = cluster.client().await;
    for n in 0..NAMESPACES {
        cluster
            .apply_manifests(&format!(
                "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: fleet-{n}\n"
            ))
            .await;
    }
    let mut objects: Vec<(ApiResource, String, serde_json::Value)> = Vec::new();
    for c in 0..fleet.clusters {
        let ns = format!("fleet-{}", c % NAMESPACES);
        objects.push((
            mk8("Cluster", "clusters"),
            ns.clone(),
            json!({
            "apiVersion": "mk8.io/v1alpha1", "kind": "Cluster",
            "metadata": {"name": format!("c{c}"), "namespace": ns},
            "spec": {"paused": true, "kubernetesVersion": "1.33", "eks": {
                "region": "eu-west-1",
                "roleArn": "arn:aws:iam::123456789012:role/eks-control-plane",
                "vpc": {"subnetIds": ["subnet-0a1b2c3d4e5f60718", "subnet-0b1c2d3e4f5a60718"]}}}}),
        ));
        for p in 0..fleet.pools_per_cluster {
            objects.push((
                mk8("NodePool", "nodepools"),
                ns.clone(),
                json!({
                "apiVersion": "mk8.io/v1alpha1", "kind": "NodePool",
                "metadata": {"name": format!("c{c}-p{p}"), "namespace": ns},
                "spec": {"clusterName": format!("c{c}"), "paused": true, "eks": {
                    "instanceTypes": ["m6i.large"],
                    "scaling": {"min": 1, "max": 5, "desired": 2},
                    "nodeRoleArn": "arn:aws:iam::123456789012:role/eks-nodes"}}}),
            ));
        }
    }
    let secret = ApiResource::erase::<k8s_openapi::api::core::v1::Secret>(&());
    for s in 0..fleet.secrets {
        let ns = format!("fleet-{}", s % NAMESPACES);
        objects.push((
            secret.clone(),
            ns.clone(),
            json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": format!("s{s}"), "namespace": ns},
            "stringData": {"token": format!("value-{s}")}}),
        ));
    }
    stream::iter(objects)
        .for_each_concurrent(32, |(resource, ns, value)| {
            let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &ns, &resource);
            async move {
                let object: DynamicObject = serde_json::from_value(value).unwrap();
                api.create(&PostParams::default(), &object)
                    .await
                    .expect("object created");
            }
        })
        .await;
}

fn free_port() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

fn vm_hwm_kib(child: &Child) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/<pid>/status")
}

/// Every Cluster and NodePool carries a status written by the operator.
async fn converged(client: &kube::Client, fleet: &Fleet) -> Result<(), String> {
    for (kind, plural, want) in [
        ("Cluster", "clusters", fleet.clusters),
        (
            "NodePool",
            "nodepools",
            fleet.clusters * fleet.pools_per_cluster,
        ),
    ] {
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &mk8(kind, plural));
        let list = api
            .list(&Default::default())
            .await
            .map_err(|e| e.to_string())?;
        let done = list
            .items
            .iter()
            .filter(|o| {
                o.data["status"]["conditions"]
                    .as_array()
                    .is_some_and(|c| !c.is_empty())
            })
            .count();
        if done < want {
            return Err(format!("{done}/{want} {plural} have a status"));
        }
    }
    Ok(())
}

/// The 99th percentile per controller, from the cumulative buckets of the histogram.
fn reconcile_p99(metrics: &str) -> BTreeMap<String, f64> {
    let mut buckets: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    for line in metrics.lines() {
        let Some(rest) = line.strip_prefix("mk8_reconcile_duration_seconds_bucket{") else {
            continue;
        };
        let (labels, value) = rest.split_once("} ").unwrap();
        let label = |key: &str| {
            labels
                .split(',')
                .find_map(|kv| kv.strip_prefix(&format!("{key}=\"")))
                .map(|v| v.trim_end_matches('"').to_string())
        };
        let (Some(controller), Some(le)) = (label("controller"), label("le")) else {
            continue;
        };
        let le = if le == "+Inf" {
            f64::INFINITY
        } else {
            le.parse().unwrap()
        };
        buckets
            .entry(controller)
            .or_default()
            .push((le, value.trim().parse().unwrap()));
    }
    buckets
        .into_iter()
        .map(|(controller, mut b)| {
            b.sort_by(|x, y| x.0.total_cmp(&y.0));
            let total = b.last().map(|x| x.1).unwrap_or(0.0);
            let p99 = b
                .iter()
                .find(|(_, count)| *count >= 0.99 * total)
                .map(|x| x.0)
                .unwrap_or(f64::NAN);
            (controller, p99)
        })
        .collect()
}

/// Requests made between two snapshots.
fn difference(
    before: &BTreeMap<String, u64>,
    after: &BTreeMap<String, u64>,
) -> BTreeMap<String, u64> {
    after
        .iter()
        .filter_map(|(k, v)| {
            let d = v - before.get(k).copied().unwrap_or(0);
            (d > 0).then(|| (k.clone(), d))
        })
        .collect()
}

async fn run(fleet: &Fleet, timeout: Duration) -> Figures {
    let cluster = TestCluster::with_mk8_crds().await;
    let loading = Instant::now();
    load(&cluster, fleet).await;
    eprintln!("loaded the fleet in {:?}", loading.elapsed());
    let admin = free_port();
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_mk8-operator"))
        .args(["--admin-addr", &admin.to_string()])
        .env("KUBECONFIG", &cluster.kubeconfig)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("mk8-operator starts");
    let ready_after = loop {
        if let Ok(Ok((200, _))) =
            tokio::time::timeout(Duration::from_secs(2), try_get(admin, "/readyz")).await
        {
            break started.elapsed();
        }
        assert!(
            started.elapsed() < timeout,
            "the operator never became ready"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let client = cluster.client().await;
    let converged_after = loop {
        match converged(&client, fleet).await {
            Ok(()) => break started.elapsed(),
            Err(seen) => assert!(started.elapsed() < timeout, "not converged: {seen}"),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    // At rest: wait for a window in which the operator asks for nothing but its Lease. The window
    // outlasts the Lease (15 s), so at least one renewal falls in it.
    let quiet_window = Duration::from_secs(16);
    let mut at_rest;
    let rest_deadline = Instant::now() + timeout;
    loop {
        let before = cluster.server().request_counts();
        tokio::time::sleep(quiet_window).await;
        at_rest = difference(&before, &cluster.server().request_counts());
        // Our own convergence checks stopped before the window; only the operator talks now.
        if at_rest.keys().all(|k| k.ends_with("leases")) || Instant::now() > rest_deadline {
            break;
        }
    }
    let (_, metrics) = http_get(admin, "/metrics").await;
    let peak_rss_kib = vm_hwm_kib(&child);
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert!(status.success(), "the operator stops cleanly: {status}");
    Figures {
        ready_after,
        converged_after,
        peak_rss_kib,
        at_rest,
        quiet_window,
        p99: reconcile_p99(&metrics),
    }
}

async fn try_get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    tokio::net::TcpStream::connect(addr).await?;
    Ok(http_get(addr, path).await)
}

fn print_table(fleet: &Fleet, f: &Figures) {
    let per_minute = |n: u64| n as f64 * 60.0 / f.quiet_window.as_secs_f64();
    let rest: Vec<String> = f
        .at_rest
        .iter()
        .map(|(k, v)| format!("{k}: {:.0}/min", per_minute(*v)))
        .collect();
    println!("| Measure | Value |\n|---|---|");
    println!(
        "| Fleet | {} Clusters, {} NodePools, {} Secrets |",
        fleet.clusters,
        fleet.clusters * fleet.pools_per_cluster,
        fleet.secrets
    );
    println!(
        "| Peak RSS (VmHWM) | {:.1} MiB |",
        f.peak_rss_kib as f64 / 1024.0
    );
    println!(
        "| Start to /readyz 200 | {:.2} s |",
        f.ready_after.as_secs_f64()
    );
    println!(
        "| Start to every status written | {:.2} s |",
        f.converged_after.as_secs_f64()
    );
    println!(
        "| Requests at rest | {} |",
        if rest.is_empty() {
            "none".into()
        } else {
            rest.join(", ")
        }
    );
    for (controller, p99) in &f.p99 {
        println!("| Reconcile p99, {controller} | ≤ {p99} s |");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_fleet_converges_and_rests_on_lease_renewals() {
    let fleet = Fleet {
        clusters: 100,
        pools_per_cluster: 3,
        secrets: 1_000,
    };
    let figures = run(&fleet, Duration::from_secs(120)).await;
    print_table(&fleet, &figures);
    assert!(
        figures.at_rest.keys().all(|k| k.ends_with("leases")),
        "requests at rest beyond Lease renewals: {:?}",
        figures.at_rest
    );
    assert!(
        !figures.at_rest.is_empty(),
        "no Lease renewal seen at rest: the request count is blind"
    );
    assert!(
        figures.p99.contains_key("cluster") && figures.p99.contains_key("nodepool"),
        "{:?}",
        figures.p99
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: 1,000 Clusters, 3,000 NodePools, 10,000 Secrets"]
async fn scale_benchmark() {
    let fleet = Fleet {
        clusters: 1_000,
        pools_per_cluster: 3,
        secrets: 10_000,
    };
    let figures = run(&fleet, Duration::from_secs(600)).await;
    print_table(&fleet, &figures);
}
