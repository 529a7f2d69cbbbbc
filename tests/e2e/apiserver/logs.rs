//! `pods/log`, the development server's stand-in for the kubelet: lines from the pod's
//! `dev.mk8.io/log` annotations, read by the real `kubectl logs` and kube-rs.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

use futures::{AsyncBufReadExt, StreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{LogParams, Patch, PatchParams};

use super::Cluster;

const PODS: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  name: web
  annotations:
    dev.mk8.io/log: |
      starting
      listening on :80
      GET / 200
spec:
  containers:
  - {name: web, image: nginx}
---
apiVersion: v1
kind: Pod
metadata:
  name: duo
  annotations:
    dev.mk8.io/log.app: "app line 1\napp line 2\n"
    dev.mk8.io/log.sidecar: "sidecar ready\n"
spec:
  containers:
  - {name: app, image: app}
  - {name: sidecar, image: envoy}
"#;

async fn with_pods() -> Cluster {
    let c = Cluster::start().await;
    c.apply(PODS);
    c
}

async fn append_line(c: &Cluster, pod: &str, text: &str) {
    let pods: Api<Pod> = Api::default_namespaced(c.server.client().await.unwrap());
    let current = pods.get(pod).await.unwrap();
    let log = current
        .metadata
        .annotations
        .unwrap_or_default()
        .remove("dev.mk8.io/log")
        .unwrap_or_default();
    let patch = serde_json::json!({"metadata": {"annotations": {"dev.mk8.io/log": format!("{log}{text}\n")}}});
    pods.patch(pod, &PatchParams::default(), &Patch::Merge(patch))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_logs_reads_the_containers_annotations() {
    let c = with_pods().await;
    assert_eq!(
        c.ok(&["logs", "web"]),
        "starting\nlistening on :80\nGET / 200\n"
    );
    assert_eq!(c.ok(&["logs", "web", "--tail", "1"]), "GET / 200\n");
    assert_eq!(c.ok(&["logs", "duo", "-c", "sidecar"]), "sidecar ready\n");
    assert_eq!(
        c.ok(&["logs", "pod/duo", "--container", "app", "--tail=1"]),
        "app line 2\n"
    );

    let err = c.fails(&["logs", "duo", "-c", "nope"], None);
    assert!(
        err.contains("container nope is not valid for pod duo"),
        "{err}"
    );
    let err = c.fails(&["logs", "missing"], None);
    assert!(err.contains(r#"pods "missing" not found"#), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_errors_are_kubernetes_statuses() {
    let c = with_pods().await;
    let (code, body) = c
        .raw(
            "GET",
            "/api/v1/namespaces/default/pods/duo/log",
            "",
            Vec::new(),
        )
        .await;
    assert_eq!(code, 400, "{body}");
    assert_eq!(body["reason"], "BadRequest");
    assert_eq!(
        body["message"],
        "a container name must be specified for pod duo, choose one of: [app sidecar]"
    );
    let (code, body) = c
        .raw(
            "GET",
            "/api/v1/namespaces/default/pods/web/log?container=db",
            "",
            Vec::new(),
        )
        .await;
    assert_eq!(code, 400, "{body}");
    assert_eq!(body["message"], "container db is not valid for pod web");
    let (code, body) = c
        .raw(
            "GET",
            "/api/v1/namespaces/default/pods/gone/log",
            "",
            Vec::new(),
        )
        .await;
    assert_eq!(code, 404, "{body}");
    assert_eq!(
        (body["kind"].as_str(), body["reason"].as_str()),
        (Some("Status"), Some("NotFound"))
    );
    assert_eq!(body["details"]["name"], "gone");

    // Discovery lists the subresource, as kube-apiserver does.
    let core = c.ok(&["get", "--raw", "/api/v1"]);
    let core: serde_json::Value = serde_json::from_str(&core).unwrap();
    let log = core["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "pods/log")
        .expect("pods/log in discovery");
    assert_eq!(log["verbs"], serde_json::json!(["get"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_logs_follow_receives_lines_appended_later_and_ends_with_the_pod() {
    let c = with_pods().await;
    let mut follow = c
        .command(&["logs", "-f", "web"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl logs -f starts");
    let stdout = follow.stdout.take().unwrap();
    let (lines_tx, lines) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let next = || {
        lines
            .recv_timeout(Duration::from_secs(20))
            .expect("kubectl logs -f prints the next line")
    };
    assert_eq!(
        [next(), next(), next()],
        ["starting", "listening on :80", "GET / 200"]
    );
    append_line(&c, "web", "GET /healthz 200").await;
    assert_eq!(next(), "GET /healthz 200");
    append_line(&c, "web", "shutting down").await;
    assert_eq!(next(), "shutting down");

    c.ok(&["delete", "pod", "web", "--wait=false"]);
    for _ in 0..200 {
        if let Some(status) = follow.try_wait().unwrap() {
            assert!(
                status.success(),
                "kubectl logs -f exits 0 when the pod goes"
            );
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    follow.kill().ok();
    panic!("kubectl logs -f still running 20s after its pod was deleted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_rs_reads_and_streams_logs() {
    let c = with_pods().await;
    let pods: Api<Pod> = Api::default_namespaced(c.server.client().await.unwrap());
    let text = pods
        .logs(
            "duo",
            &LogParams {
                container: Some("app".into()),
                tail_lines: Some(1),
                ..LogParams::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(text, "app line 2\n");

    let stream = pods
        .log_stream(
            "web",
            &LogParams {
                follow: true,
                ..LogParams::default()
            },
        )
        .await
        .unwrap();
    let mut lines = stream.lines();
    let mut next = async || {
        tokio::time::timeout(Duration::from_secs(20), lines.next())
            .await
            .expect("a line within 20s")
            .expect("the stream goes on")
            .unwrap()
    };
    assert_eq!(next().await, "starting");
    assert_eq!(next().await, "listening on :80");
    assert_eq!(next().await, "GET / 200");
    append_line(&c, "web", "appended").await;
    assert_eq!(next().await, "appended");
}
