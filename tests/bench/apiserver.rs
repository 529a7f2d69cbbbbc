//! Benchmark of the development API server (loopback, HTTPS, bounded in time):
//! creates per second with concurrent clients, list latency with 10,000 objects, and watch event
//! latency with 100 watchers. Run with `cargo bench --bench apiserver`; results go to
//! docs/benchmarks.md by hand.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::Api;
use kube::api::{ListParams, PostParams, WatchEvent, WatchParams};
use mk8::apiserver::{DevServer, DevServerConfig};

const OBJECTS: usize = 10_000;
const WRITERS: usize = 32;
const WATCHERS: usize = 100;
const WATCH_EVENTS: usize = 50;

fn configmap(name: String) -> ConfigMap {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": name, "labels": {"bench": "true"}},
        "data": {"key": "value", "other": "some longer value to make the object realistic"}
    }))
    .expect("configmap")
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

async fn create_objects(client: &kube::Client) -> f64 {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..WRITERS {
        let api: Api<ConfigMap> = Api::namespaced(client.clone(), "bench");
        let next = next.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= OBJECTS {
                    return;
                }
                api.create(&PostParams::default(), &configmap(format!("cm-{i:05}")))
                    .await
                    .expect("create");
            }
        }));
    }
    for t in tasks {
        t.await.expect("writer");
    }
    OBJECTS as f64 / started.elapsed().as_secs_f64()
}

async fn list_latency(client: &kube::Client) -> Vec<Duration> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "bench");
    let mut samples = Vec::new();
    for _ in 0..10 {
        let started = Instant::now();
        let list = api.list(&ListParams::default()).await.expect("list");
        samples.push(started.elapsed());
        assert_eq!(list.items.len(), OBJECTS);
    }
    samples.sort();
    samples
}

async fn watch_latency(client: &kube::Client) -> Vec<Duration> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "watched");
    let rv = api
        .list(&ListParams::default())
        .await
        .expect("list")
        .metadata
        .resource_version
        .expect("rv");
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(usize, Instant)>();
    let mut watchers = Vec::new();
    for _ in 0..WATCHERS {
        let mut stream = api
            .watch(&WatchParams::default().timeout(120), &rv)
            .await
            .expect("watch")
            .boxed();
        let tx = tx.clone();
        watchers.push(tokio::spawn(async move {
            while let Ok(Some(event)) = stream.try_next().await {
                if let WatchEvent::Added(cm) = event {
                    let i: usize = cm
                        .metadata
                        .name
                        .as_deref()
                        .and_then(|n| n.strip_prefix("w-"))
                        .and_then(|n| n.parse().ok())
                        .unwrap_or(0);
                    let _ = tx.send((i, Instant::now()));
                }
            }
        }));
    }
    let mut samples = Vec::new();
    for i in 0..WATCH_EVENTS {
        let started = Instant::now();
        api.create(&PostParams::default(), &configmap(format!("w-{i}")))
            .await
            .expect("create");
        for _ in 0..WATCHERS {
            let (index, at) = rx.recv().await.expect("event");
            assert_eq!(index, i);
            samples.push(at - started);
        }
    }
    for w in watchers {
        w.abort();
    }
    samples.sort();
    samples
}

#[tokio::main]
async fn main() {
    let server = DevServer::start(DevServerConfig::default())
        .await
        .expect("server");
    let client = server.client().await.expect("client");
    let namespaces: Api<Namespace> = Api::all(client.clone());
    for ns in ["bench", "watched"] {
        let obj: Namespace =
            serde_json::from_value(serde_json::json!({"metadata": {"name": ns}})).expect("ns");
        namespaces
            .create(&PostParams::default(), &obj)
            .await
            .expect("namespace");
    }

    let creates_per_second = create_objects(&client).await;
    println!(
        "creates: {OBJECTS} ConfigMaps by {WRITERS} concurrent clients over HTTPS: {creates_per_second:.0} creates/s"
    );

    let lists = list_latency(&client).await;
    println!(
        "list of {OBJECTS} ConfigMaps (kube-rs, incl. decoding): p50 {:.1} ms, max {:.1} ms",
        percentile(&lists, 0.5).as_secs_f64() * 1e3,
        lists.last().expect("samples").as_secs_f64() * 1e3
    );

    let watch = watch_latency(&client).await;
    println!(
        "watch: {WATCH_EVENTS} creates seen by {WATCHERS} watchers: latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        percentile(&watch, 0.5).as_secs_f64() * 1e3,
        percentile(&watch, 0.99).as_secs_f64() * 1e3,
        watch.last().expect("samples").as_secs_f64() * 1e3
    );
    server.shutdown().await;
}
