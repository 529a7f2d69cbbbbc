//! Finalizers, propagation policies, owner-reference garbage collection, namespace cleanup,
//! preconditions and pod eviction.

use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{Api, DeleteParams, EvictParams, Preconditions};

use super::{Cluster, eventually};

fn owned(owner: &serde_json::Value, name: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  ownerReferences:\n  - {{apiVersion: v1, kind: ConfigMap, name: {}, uid: {}}}\n",
        owner["metadata"]["name"].as_str().unwrap(),
        owner["metadata"]["uid"].as_str().unwrap()
    )
}

async fn gone(c: &Cluster, name: &str) -> bool {
    let api: Api<ConfigMap> = Api::namespaced(c.server.client().await.unwrap(), "default");
    api.get_opt(name).await.unwrap().is_none()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finalizers_hold_deletion_until_removed() {
    let c = Cluster::start().await;
    c.apply("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: held, finalizers: [mk8.io/test]}\n");
    c.ok(&["delete", "configmap", "held", "--wait=false"]);
    let cm = c.json(&["configmap", "held"]);
    assert!(cm["metadata"]["deletionTimestamp"].is_string());
    assert_eq!(cm["metadata"]["deletionGracePeriodSeconds"], 0);
    c.ok(&[
        "patch",
        "configmap",
        "held",
        "--type",
        "merge",
        "-p",
        r#"{"metadata":{"finalizers":null}}"#,
    ]);
    assert!(gone(&c, "held").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_deletion_collects_dependents() {
    let c = Cluster::start().await;
    c.ok(&["create", "configmap", "owner"]);
    let owner = c.json(&["configmap", "owner"]);
    c.apply(&owned(&owner, "child"));
    c.ok(&["delete", "configmap", "owner"]);
    eventually(Duration::from_secs(10), "child collected", async || {
        gone(&c, "child").await.then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orphan_deletion_keeps_dependents_without_the_reference() {
    let c = Cluster::start().await;
    c.ok(&["create", "configmap", "owner"]);
    let owner = c.json(&["configmap", "owner"]);
    c.apply(&owned(&owner, "child"));
    c.ok(&["delete", "configmap", "owner", "--cascade=orphan"]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let child = c.json(&["configmap", "child"]);
    assert!(
        child["metadata"]
            .get("ownerReferences")
            .is_none_or(|r| r.as_array().unwrap().is_empty()),
        "{child}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreground_deletion_waits_for_dependents() {
    let c = Cluster::start().await;
    c.ok(&["create", "configmap", "owner"]);
    let owner = c.json(&["configmap", "owner"]);
    c.apply(&owned(&owner, "child").replace(
        "  ownerReferences:",
        "  finalizers: [mk8.io/hold]\n  ownerReferences:",
    ));
    c.ok(&[
        "delete",
        "configmap",
        "owner",
        "--cascade=foreground",
        "--wait=false",
    ]);
    let owner = eventually(Duration::from_secs(10), "owner marked", async || {
        let o = c.json(&["configmap", "owner"]);
        o["metadata"]["deletionTimestamp"].is_string().then_some(o)
    })
    .await;
    assert!(
        owner["metadata"]["finalizers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f == "foregroundDeletion")
    );
    eventually(Duration::from_secs(10), "child marked", async || {
        c.json(&["configmap", "child"])["metadata"]["deletionTimestamp"]
            .is_string()
            .then_some(())
    })
    .await;
    assert!(!gone(&c, "owner").await, "owner waits for its dependent");
    c.ok(&[
        "patch",
        "configmap",
        "child",
        "--type",
        "merge",
        "-p",
        r#"{"metadata":{"finalizers":null}}"#,
    ]);
    eventually(Duration::from_secs(10), "owner deleted", async || {
        gone(&c, "owner").await.then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_namespace_deletes_its_content() {
    let c = Cluster::start().await;
    c.ok(&["create", "namespace", "doomed"]);
    c.ok(&["create", "configmap", "inside", "-n", "doomed"]);
    c.ok(&["delete", "namespace", "doomed"]);
    let out = c.ok(&["get", "namespaces", "-o", "name"]);
    assert!(!out.contains("doomed"), "{out}");
    assert_eq!(c.ok(&["get", "configmaps", "-A", "-o", "name"]).trim(), "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_preconditions_and_collection() {
    let c = Cluster::start().await;
    let api: Api<ConfigMap> = Api::namespaced(c.server.client().await.unwrap(), "default");
    c.ok(&["create", "configmap", "pre"]);
    let dp = DeleteParams {
        preconditions: Some(Preconditions {
            uid: Some("not-the-uid".into()),
            resource_version: None,
        }),
        ..Default::default()
    };
    match api.delete("pre", &dp).await {
        Err(kube::Error::Api(s)) => assert_eq!(s.code, 409),
        other => panic!("expected precondition failure, got {other:?}"),
    }
    for n in ["a", "b", "c"] {
        c.ok(&["create", "configmap", n]);
    }
    c.ok(&["label", "configmap", "a", "b", "sweep=yes"]);
    api.delete_collection(
        &DeleteParams::default(),
        &kube::api::ListParams::default().labels("sweep=yes"),
    )
    .await
    .unwrap();
    let mut left: Vec<String> = api
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|c| c.metadata.name.unwrap())
        .collect();
    left.sort();
    assert_eq!(left, vec!["c", "pre"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eviction_deletes_the_pod() {
    let c = Cluster::start().await;
    c.apply("apiVersion: v1\nkind: Pod\nmetadata: {name: victim}\nspec:\n  nodeName: n1\n  containers: [{name: c, image: busybox}]\n");
    let pods: Api<Pod> = Api::namespaced(c.server.client().await.unwrap(), "default");
    pods.evict("victim", &EvictParams::default()).await.unwrap();
    assert!(pods.get_opt("victim").await.unwrap().is_none());
    // kubectl drain evicts through the same subresource (and cordons the node first).
    c.apply("apiVersion: v1\nkind: Node\nmetadata: {name: n1}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: victim2}\nspec:\n  nodeName: n1\n  containers: [{name: c, image: busybox}]\n");
    c.ok(&["drain", "n1", "--force", "--timeout=20s"]);
    assert!(pods.get_opt("victim2").await.unwrap().is_none());
    assert_eq!(c.json(&["node", "n1"])["spec"]["unschedulable"], true);
}
