//! Fault injection: a server that answers late, and one that forbids everything but discovery.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Namespace;
use kube::Api;
use mk8::apiserver::DevServerConfig;

use super::Cluster;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_latency_delays_api_requests_but_not_health_checks() {
    let latency = Duration::from_millis(800);
    let c = Cluster::start_with(DevServerConfig {
        latency: Some(latency),
        ..Default::default()
    })
    .await;
    let namespaces: Api<Namespace> = Api::all(c.server.client().await.unwrap());
    for _ in 0..3 {
        let started = Instant::now();
        namespaces.list(&Default::default()).await.unwrap();
        assert!(
            started.elapsed() >= latency,
            "a list answered after {:?}, before the injected {latency:?}",
            started.elapsed()
        );
    }
    let started = Instant::now();
    let (code, _) = c.raw("GET", "/readyz", "", Vec::new()).await;
    assert_eq!(code, 200);
    assert!(
        started.elapsed() < latency,
        "/readyz took {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forbidding_server_answers_403_but_still_serves_discovery() {
    let c = Cluster::start_with(DevServerConfig {
        forbidden: true,
        ..Default::default()
    })
    .await;
    let resources = c.ok(&["api-resources"]);
    assert!(resources.contains("pods"), "{resources}");
    assert!(c.ok(&["version"]).contains("Server Version"));

    let err = c.fails(&["get", "pods"], None);
    assert!(
        err.contains(r#"pods is forbidden: User "dev" cannot list resource "pods" in API group "" in the namespace "default""#),
        "{err}"
    );
    let err = c.fails(&["get", "pods", "-A"], None);
    assert!(err.contains("at the cluster scope"), "{err}");

    let namespaces: Api<Namespace> = Api::all(c.server.client().await.unwrap());
    match namespaces.get("default").await {
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.code, 403);
            assert_eq!(status.reason, "Forbidden");
            assert_eq!(
                status.message,
                r#"namespaces "default" is forbidden: User "dev" cannot get resource "namespaces" in API group "" at the cluster scope"#
            );
        }
        other => panic!("expected 403, got {other:?}"),
    }
}
