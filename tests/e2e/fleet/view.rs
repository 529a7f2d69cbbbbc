//! The ClusterProfileView controller over the same fleet: per-cluster states, bounded rows,
//! conditions naming the failed clusters, latency metrics; and a view of 10,000 matching rows
//! staying far below the object size limit.

use std::time::Duration;

use kube::Api;
use kube::api::DynamicObject;
use kube::core::{ApiResource, GroupVersionKind};
use mk8::devfleet::{self as members, MemberOptions};
use serde_json::Value;

use super::Fleet;
use crate::operator::{http_get, start_operator_with};
use crate::support::{TestCluster, eventually};

fn views(client: kube::Client) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("mk8.io", "v1alpha1", "ClusterProfileView");
    Api::namespaced_with(client, "fleet", &ApiResource::from_gvk(&gvk))
}

async fn observed(client: &kube::Client, name: &str) -> Value {
    let api = views(client.clone());
    eventually(
        &format!("view {name} answered"),
        Duration::from_secs(60),
        || {
            let v = futures::executor::block_on(api.get(name)).map_err(|e| e.to_string())?;
            let v = serde_json::to_value(v).unwrap();
            if v["status"]["observedAt"].is_string() {
                Ok(v)
            } else {
                Err(format!("{}", v["status"]))
            }
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_view_reports_every_cluster_and_bounded_rows() {
    let fleet = Fleet::start().await;
    let operator = start_operator_with(
        &fleet.hub,
        &[
            "--clusterprofile-provider-file",
            fleet.providers.to_str().unwrap(),
        ],
    )
    .await;
    fleet
        .hub
        .apply_manifests("apiVersion: mk8.io/v1alpha1\nkind: ClusterProfileView\nmetadata: {name: web-pods, namespace: fleet}\nspec:\n  resource: {version: v1, resource: pods}\n  namespace: demo\n  labelSelector: app=web\n  refreshInterval: 5s\n  perClusterTimeout: 2s\n  maxRows: 5\n")
        .await;
    let client = fleet.hub.client().await;
    let view = observed(&client, "web-pods").await;
    let status = &view["status"];
    let state = |name: &str| {
        let c = status["clusters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("{name} in {status}"));
        (
            c["state"].as_str().unwrap().to_string(),
            c["items"].as_i64().unwrap(),
            c["message"].as_str().unwrap_or_default().to_string(),
        )
    };
    assert_eq!(state("member-1").0, "Ok", "{status}");
    assert_eq!(state("member-1").1, 2);
    assert_eq!(
        state("ocm-east"),
        ("Ok".into(), 2, String::new()),
        "through the provider file's exec plugin"
    );
    assert_eq!(state("member-slow").0, "Timeout");
    assert_eq!(state("member-403").0, "Forbidden");
    assert!(
        state("member-403").2.contains("pods is forbidden"),
        "{status}"
    );
    assert_eq!(state("member-down").0, "Unreachable", "{status}");
    assert_eq!(
        (
            status["clustersOk"].as_i64(),
            status["clustersFailed"].as_i64()
        ),
        (Some(4), Some(3))
    );
    assert_eq!(status["rowCount"], 8);
    assert_eq!(status["rows"].as_array().unwrap().len(), 5, "maxRows");
    assert_eq!(status["truncated"], true);
    assert_eq!(status["rows"][0]["cluster"], "member-1");
    assert_eq!(status["rows"][0]["namespace"], "demo");
    let columns: Vec<&str> = status["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert_eq!(columns, ["Ready", "Status", "Restarts", "Age"]);
    assert_eq!(status["rows"][0]["cells"][1], "Running");
    let ready = status["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Ready")
        .unwrap();
    assert_eq!(ready["reason"], "PartialResults");
    let message = ready["message"].as_str().unwrap();
    assert!(
        message.starts_with("3 of 7 clusters failed: member-403 (pods is forbidden"),
        "{message}"
    );
    assert!(
        message.contains("member-slow (timeout after 2s)"),
        "{message}"
    );

    // Per-cluster latency metrics.
    let (_, metrics) = http_get(operator.admin, "/metrics").await;
    assert!(
        metrics.contains("mk8_view_cluster_latency_seconds_count{cluster=\"fleet/member-1\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            "mk8_view_cluster_answers_total{cluster=\"fleet/member-slow\",state=\"Timeout\"}"
        ),
        "{metrics}"
    );

    // Our own status write does not run the query again before refreshInterval: the next
    // observedAt comes about 5 s later, not at once.
    let first =
        chrono::DateTime::parse_from_rfc3339(status["observedAt"].as_str().unwrap()).unwrap();
    let api = views(client.clone());
    let next = eventually("the view refreshed", Duration::from_secs(30), || {
        let v = serde_json::to_value(futures::executor::block_on(api.get("web-pods")).unwrap())
            .unwrap();
        let at = chrono::DateTime::parse_from_rfc3339(v["status"]["observedAt"].as_str().unwrap())
            .unwrap();
        if at > first {
            Ok(at)
        } else {
            Err("not yet".to_string())
        }
    })
    .await;
    let gap = (next - first).num_milliseconds();
    assert!((4000..20000).contains(&gap), "refreshed after {gap} ms");
    let _ = operator.stop.send(());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_view_of_ten_thousand_rows_stays_bounded() {
    let hub = TestCluster::with_mk8_crds().await;
    let _members = members::start_members(
        hub.server(),
        1,
        &MemberOptions {
            pods: 10_000,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let _operator = start_operator_with(&hub, &[]).await;
    hub.apply_manifests("apiVersion: mk8.io/v1alpha1\nkind: ClusterProfileView\nmetadata: {name: all-pods, namespace: fleet}\nspec:\n  resource: {version: v1, resource: pods}\n  namespace: demo\n  refreshInterval: 1h\n  perClusterTimeout: 2m\n  maxRows: 5000\n")
        .await;
    let client = hub.client().await;
    let view = observed(&client, "all-pods").await;
    let status = &view["status"];
    assert_eq!(status["rowCount"], 10_000, "every row counted");
    assert_eq!(status["clusters"][0]["items"], 10_000);
    assert_eq!(status["truncated"], true);
    let kept = status["rows"].as_array().unwrap().len();
    assert!((1000..=5000).contains(&kept), "{kept} rows kept");
    let bytes = serde_json::to_vec(&view).unwrap().len();
    assert!(
        bytes < 700 * 1024,
        "the object is {bytes} bytes; the API server's limit is 1.5 MiB"
    );
}
