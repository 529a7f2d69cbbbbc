//! A test stand-in for ArgoCD's application controller (not ArgoCD): it plays ArgoCD's part for
//! the Applications mk8 writes — after a delay it reports them Synced/Healthy (or Degraded, on
//! request) compared to their current spec, and when one is deleted it removes the resources
//! finalizer after a delay, as ArgoCD does once it has deleted the app's resources. It records
//! when it first saw each spec, when it reported it Healthy, when it saw the deletion and when
//! the Application was gone, so tests can prove ordering.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kube::api::{ListParams, Patch, PatchParams};
use kube::{Api, api::DynamicObject};
use serde_json::{Value, json};

/// When things happened to one Application (by name).
#[derive(Clone, Debug, Default)]
pub struct Timeline {
    /// First time the current spec was seen.
    pub seen: Option<Instant>,
    /// First time it was reported Synced and Healthy.
    pub healthy: Option<Instant>,
    /// First time its deletion was seen.
    pub deleting: Option<Instant>,
    /// When it was seen gone after a deletion.
    pub gone: Option<Instant>,
    /// Its labels and annotations when last seen.
    pub labels: BTreeMap<String, String>,
    /// When each new spec was first seen (the first is `seen`).
    pub changes: Vec<Instant>,
    /// When it was reported Synced and Healthy, for each spec it was.
    pub healthy_at: Vec<Instant>,
}

#[derive(Default)]
struct Shared {
    timelines: BTreeMap<String, Timeline>,
    /// (cluster, component) reported Degraded, when the spec (as JSON) contains the text.
    degraded: BTreeMap<(String, String), String>,
    /// Per Application: the spec reported on, and when that spec was first seen.
    spec_seen: BTreeMap<String, (Value, Instant)>,
    deletion_seen: BTreeMap<String, Instant>,
}

/// The running stand-in.
pub struct FakeArgoCd {
    shared: Arc<Mutex<Shared>>,
    task: tokio::task::JoinHandle<()>,
}

/// How long "syncing" takes.
const SYNC_DELAY: Duration = Duration::from_millis(600);
/// How long deleting an app's resources takes.
const DELETE_DELAY: Duration = Duration::from_millis(400);

impl FakeArgoCd {
    /// Start playing ArgoCD for the Applications in `namespace`.
    pub fn start(client: kube::Client, namespace: &str) -> Self {
        let api: Api<DynamicObject> = Api::namespaced_with(
            client,
            namespace,
            &mk8::controller::stack::application_resource(),
        );
        let shared = Arc::new(Mutex::new(Shared::default()));
        let state = shared.clone();
        let task = tokio::spawn(async move {
            loop {
                if let Err(e) = round(&api, &state).await {
                    eprintln!("ArgoCD stand-in: {e}");
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        Self { shared, task }
    }

    /// Report this component Degraded on this cluster (or healthy again).
    pub fn set_degraded(&self, cluster: &str, component: &str, degraded: bool) {
        self.degraded_when(cluster, component, degraded.then_some(""));
    }

    /// Report this component Degraded on this cluster while its spec contains `text` (`None`:
    /// healthy again).
    pub fn degraded_when(&self, cluster: &str, component: &str, text: Option<&str>) {
        let mut s = self.shared.lock().unwrap();
        let key = (cluster.to_string(), component.to_string());
        match text {
            Some(text) => s.degraded.insert(key, text.to_string()),
            None => s.degraded.remove(&key),
        };
    }

    /// What happened to each Application so far.
    pub fn timelines(&self) -> BTreeMap<String, Timeline> {
        self.shared.lock().unwrap().timelines.clone()
    }
}

impl Drop for FakeArgoCd {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn label(app: &Value, key: &str) -> String {
    app["metadata"]["labels"][key]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

async fn round(api: &Api<DynamicObject>, shared: &Mutex<Shared>) -> kube::Result<()> {
    let list = api.list(&ListParams::default()).await?;
    let now = Instant::now();
    let mut present = BTreeSet::new();
    for app in list.items {
        let app = serde_json::to_value(&app).expect("json");
        let name = app["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        present.insert(name.clone());
        let (cluster, component) = (
            label(&app, "mk8.io/cluster"),
            label(&app, "mk8.io/component"),
        );
        let mut patch = None;
        {
            let mut s = shared.lock().unwrap();
            let degraded = s
                .degraded
                .get(&(cluster.clone(), component.clone()))
                .is_some_and(|text| app["spec"].to_string().contains(text.as_str()));
            let timeline = s.timelines.entry(name.clone()).or_default();
            if timeline.gone.is_some() {
                // Deleted earlier and created again: a new Application.
                *timeline = Timeline::default();
            }
            timeline.labels = app["metadata"]["labels"]
                .as_object()
                .into_iter()
                .flatten()
                .chain(
                    app["metadata"]["annotations"]
                        .as_object()
                        .into_iter()
                        .flatten(),
                )
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect();
            if app["metadata"].get("deletionTimestamp").is_some() {
                timeline.deleting.get_or_insert(now);
                let since = *s.deletion_seen.entry(name.clone()).or_insert(now);
                if now - since >= DELETE_DELAY {
                    patch = Some(json!({"metadata": {"finalizers": []}}));
                }
            } else {
                let spec = app["spec"].clone();
                let (since, new) = match s.spec_seen.get(&name) {
                    Some((seen, at)) if *seen == spec => (*at, false),
                    _ => {
                        s.spec_seen.insert(name.clone(), (spec.clone(), now));
                        (now, true)
                    }
                };
                let timeline = s.timelines.entry(name.clone()).or_default();
                timeline.seen.get_or_insert(since);
                if new {
                    timeline.changes.push(now);
                }
                let health = if degraded { "Degraded" } else { "Healthy" };
                let compared =
                    json!({"source": spec["source"], "destination": spec["destination"]});
                let current = (
                    &app["status"]["sync"]["comparedTo"],
                    app["status"]["health"]["status"].as_str(),
                );
                if now - since >= SYNC_DELAY
                    && (current.0 != &compared || current.1 != Some(health))
                {
                    if !degraded {
                        timeline.healthy.get_or_insert(now);
                        timeline.healthy_at.push(now);
                    }
                    patch = Some(json!({"status": {
                        "sync": {"status": "Synced", "comparedTo": compared, "revision": spec["source"]["targetRevision"]},
                        "health": {"status": health, "message": if degraded { "Deployment cert-manager-webhook has 0/1 ready replicas" } else { "" }},
                        "operationState": {
                            "operation": {"sync": {"revision": spec["source"]["targetRevision"]}},
                            "phase": "Succeeded",
                            "message": "successfully synced",
                            "startedAt": "2026-12-04T00:00:00Z",
                        },
                    }}));
                }
            }
        }
        if let Some(patch) = patch {
            match api
                .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => {}
                Err(e) => return Err(e),
            }
        }
    }
    let mut s = shared.lock().unwrap();
    let deleted: Vec<String> = s
        .deletion_seen
        .keys()
        .filter(|n| !present.contains(*n))
        .cloned()
        .collect();
    for name in deleted {
        s.deletion_seen.remove(&name);
        s.spec_seen.remove(&name);
        if let Some(t) = s.timelines.get_mut(&name) {
            t.gone.get_or_insert(now);
        }
    }
    // Deleted without our finalizer step (never seen deleting): gone as well.
    for (name, t) in s.timelines.iter_mut() {
        if !present.contains(name) && t.gone.is_none() && t.seen.is_some() {
            t.gone = Some(now);
            t.deleting.get_or_insert(now);
        }
    }
    Ok(())
}
