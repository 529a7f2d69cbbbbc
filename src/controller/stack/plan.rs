//! Stack delivery plan (pure): Stack + selected clusters + the Applications that exist → the
//! Applications to write, the ones to delete, and each component's phase on each cluster.
//!
//! `mk8 stack render` builds its files with [`application`], the same function the controller
//! applies, so what lands in Git is what the operator would have written.

use std::collections::{BTreeMap, BTreeSet};

use kube::ResourceExt;
use kube::core::{Selector, SelectorExt};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::catalog;
use crate::api::{Component, ComponentStatus, Stack, StackClusterStatus};

/// Label: the Stack's name (shortened to fit a label value).
pub const STACK_LABEL: &str = "mk8.io/stack";
/// Label: the Stack's namespace.
pub const STACK_NAMESPACE_LABEL: &str = "mk8.io/stack-namespace";
/// Label: the cluster (ClusterProfile name) an Application targets.
pub const CLUSTER_LABEL: &str = "mk8.io/cluster";
/// Label: the component an Application delivers.
pub const COMPONENT_LABEL: &str = "mk8.io/component";
/// Annotation: `namespace/name` of the Stack, unshortened (watch events map back through it).
pub const STACK_ANNOTATION: &str = "mk8.io/stack";
/// ArgoCD's ordering annotation.
pub const SYNC_WAVE: &str = "argocd.argoproj.io/sync-wave";
/// ArgoCD deletes an Application's resources before the Application while this is set.
pub const RESOURCES_FINALIZER: &str = "resources-finalizer.argocd.argoproj.io";

/// One cluster a Stack is delivered to.
#[derive(Clone, Debug, PartialEq)]
pub struct Target {
    /// ClusterProfile name; also the cluster's name in ArgoCD (`destination.name`).
    pub name: String,
    /// ClusterProfile labels (cluster overrides select on them).
    pub labels: BTreeMap<String, String>,
    /// Why ArgoCD cannot be given access to the cluster: nothing is created, changed or
    /// deleted there until it can.
    pub access_problem: Option<String>,
}

/// Where a component stands on one cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    /// Not created: a dependency is not Ready on this cluster.
    Waiting,
    /// Created, being synced, or ArgoCD has not yet compared the current spec.
    Progressing,
    /// Synced, Healthy, no operation running or failed, compared to the current spec.
    Ready,
    /// Health Degraded, a failed sync, or an error condition.
    Degraded,
    /// Being deleted (by hand, or because the Stack no longer wants it).
    Deleting,
}

impl Phase {
    fn as_str(self) -> &'static str {
        match self {
            Phase::Waiting => "Waiting",
            Phase::Progressing => "Progressing",
            Phase::Ready => "Ready",
            Phase::Degraded => "Degraded",
            Phase::Deleting => "Deleting",
        }
    }
}

/// What ArgoCD reports for one Application, judged against the spec mk8 wants.
#[derive(Clone, Debug, PartialEq)]
pub struct AppState {
    /// The phase.
    pub phase: Phase,
    /// `status.sync.status`.
    pub sync: Option<String>,
    /// `status.health.status`.
    pub health: Option<String>,
    /// Why it is not Ready.
    pub message: Option<String>,
}

/// The outcome of planning one reconcile.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan {
    /// Applications to create or update (only those that differ from what exists).
    pub apply: Vec<Value>,
    /// Names of Applications to delete now (the highest wave of what is no longer wanted, per cluster).
    pub delete: Vec<String>,
    /// Applications no longer wanted that still exist (deleted now or waiting for a later turn).
    pub removing: usize,
    /// Per-cluster status.
    pub clusters: Vec<StackClusterStatus>,
    /// Applications Ready / wanted.
    pub ready: usize,
    /// Applications wanted: clusters × components.
    pub total: usize,
    /// `cluster/component: message` of Degraded components.
    pub degraded: Vec<String>,
    /// `cluster/component waits for dependency` of components not created yet.
    pub waiting: Vec<String>,
    /// Clusters whose changes the rollout holds back.
    pub held: Vec<String>,
    /// Degraded clusters that pause the rollout (only while changes are held).
    pub paused_by: Vec<String>,
}

/// A name or label value of at most 63 characters: `text` if it fits, else its first 54
/// characters, `-` and 8 hex digits of its hash (stable, and distinct for distinct inputs).
pub fn fit(text: &str, hash_of: &str) -> String {
    if text.len() <= 63 && text == hash_of {
        return text.to_string();
    }
    let digest = hex::encode(Sha256::digest(hash_of.as_bytes()));
    let mut head: String = text.chars().take(54).collect();
    while head.ends_with(['-', '.']) {
        head.pop();
    }
    format!("{head}-{}", &digest[..8])
}

/// The Application's name: `<stack>-<component>-<cluster>` plus a hash of the Stack's namespace
/// and all three, so Stacks of equal names in different namespaces never collide; ≤ 63 characters.
pub fn application_name(stack: &Stack, component: &str, cluster: &str) -> String {
    let readable = format!("{}-{component}-{cluster}", stack.name_any());
    let key = format!(
        "{}/{}/{component}/{cluster}",
        stack.namespace().unwrap_or_default(),
        stack.name_any()
    );
    fit(&readable, &key)
}

/// The label selector of a Stack's Applications.
pub fn stack_selector(stack: &Stack) -> String {
    let (name, namespace) = (stack.name_any(), stack.namespace().unwrap_or_default());
    format!(
        "{STACK_LABEL}={},{STACK_NAMESPACE_LABEL}={}",
        fit(&name, &name),
        fit(&namespace, &namespace)
    )
}

/// Deep merge: objects merge key by key, anything else in `over` replaces.
fn merge(base: &mut Map<String, Value>, over: &Map<String, Value>) {
    for (key, value) in over {
        match (base.get_mut(key), value) {
            (Some(Value::Object(into)), Value::Object(from)) => merge(into, from),
            _ => {
                base.insert(key.clone(), value.clone());
            }
        }
    }
}

/// Helm values for `component` on `target`: preset defaults < `helm.values` < component
/// `values` < matching `clusterOverrides`, in order.
fn values_for(stack: &Stack, component: &Component, target: &Target) -> Map<String, Value> {
    let mut values = Map::new();
    if let Some(preset) = component.preset.as_deref().and_then(catalog::find) {
        merge(&mut values, &preset.values);
    }
    if let Some(own) = component.helm.as_ref().and_then(|h| h.values.as_ref()) {
        merge(&mut values, own);
    }
    if let Some(own) = &component.values {
        merge(&mut values, own);
    }
    for o in stack
        .spec
        .cluster_overrides
        .iter()
        .filter(|o| o.component == component.name)
    {
        let matches = Selector::try_from(o.cluster_selector.clone())
            .map(|s| s.matches(&target.labels))
            .unwrap_or(false);
        if matches {
            merge(&mut values, &o.values);
        }
    }
    values
}

/// Rewrite a chart repository through a mirror: `https://charts.jetstack.io` with mirror
/// `https://mirror.example/charts` becomes `https://mirror.example/charts/charts.jetstack.io`.
pub fn mirrored(repo: &str, mirror: Option<&str>) -> String {
    match mirror {
        None => repo.to_string(),
        Some(mirror) => {
            let path = repo
                .split_once("://")
                .map(|(_, rest)| rest)
                .unwrap_or(repo)
                .trim_end_matches('/');
            format!("{}/{path}", mirror.trim_end_matches('/'))
        }
    }
}

/// The ArgoCD source of a component (`None`: an unknown preset, which validation reports).
fn source(
    stack: &Stack,
    component: &Component,
    target: &Target,
    mirror: Option<&str>,
) -> Option<Value> {
    let values = Value::Object(values_for(stack, component, target));
    let helm = |repo: &str, chart: &str, version: &str| {
        let mut helm = json!({"releaseName": component.name});
        if values.as_object().is_some_and(|v| !v.is_empty()) {
            helm["valuesObject"] = values.clone();
        }
        json!({
            "repoURL": mirrored(repo, mirror),
            "chart": chart,
            "targetRevision": version,
            "helm": helm,
        })
    };
    if let Some(name) = &component.preset {
        let p = catalog::find(name)?;
        if let Some(chart) = &p.chart {
            return Some(helm(p.argocd_repo_url(), chart, &p.version));
        }
        // A Git directory at a tag; ArgoCD applies (or, holding a Chart.yaml, renders) it as is.
        return p
            .path
            .as_ref()
            .map(|path| json!({"repoURL": p.repo_url, "path": path, "targetRevision": p.version}));
    }
    if let Some(h) = &component.helm {
        return Some(helm(&h.repo_url, &h.chart, &h.version));
    }
    component.git.as_ref().map(
        |g| json!({"repoURL": g.repo_url, "path": g.path, "targetRevision": g.target_revision}),
    )
}

/// The namespace a component installs into on its cluster.
pub fn component_namespace(component: &Component) -> String {
    component
        .namespace
        .clone()
        .or_else(|| {
            component
                .preset
                .as_deref()
                .and_then(catalog::find)
                .map(|p| p.namespace.clone())
        })
        .unwrap_or_else(|| component.name.clone())
}

/// The Application delivering `component` (in `wave`) to `target`.
pub fn application(
    stack: &Stack,
    component: &Component,
    wave: usize,
    target: &Target,
    mirror: Option<&str>,
) -> Option<Value> {
    let (name, namespace) = (stack.name_any(), stack.namespace().unwrap_or_default());
    let settings = &stack.spec.argocd;
    let mut sync_options = vec!["CreateNamespace=true".to_string()];
    if let Some(p) = component.preset.as_deref().and_then(catalog::find) {
        sync_options.extend(p.sync_options.iter().cloned());
    }
    Some(json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {
            "name": application_name(stack, &component.name, &target.name),
            "namespace": settings.namespace,
            "labels": {
                "app.kubernetes.io/managed-by": "mk8",
                STACK_LABEL: fit(&name, &name),
                STACK_NAMESPACE_LABEL: fit(&namespace, &namespace),
                CLUSTER_LABEL: fit(&target.name, &target.name),
                COMPONENT_LABEL: component.name,
            },
            "annotations": {
                STACK_ANNOTATION: format!("{namespace}/{name}"),
                SYNC_WAVE: wave.to_string(),
            },
            "finalizers": [RESOURCES_FINALIZER],
        },
        "spec": {
            "project": settings.project,
            "destination": {"name": target.name, "namespace": component_namespace(component)},
            "source": source(stack, component, target, mirror)?,
            "syncPolicy": {
                "automated": {"prune": settings.prune, "selfHeal": settings.self_heal},
                "syncOptions": sync_options,
                "retry": {"limit": 5, "backoff": {"duration": "10s", "factor": 2, "maxDuration": "5m"}},
            },
        },
    }))
}

fn text(v: &Value, path: &[&str]) -> Option<String> {
    path.iter()
        .try_fold(v, |v, key| v.get(key))
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// Judge an Application's status against the spec mk8 wants for it.
pub fn observe(app: &Value, wanted: &Value) -> AppState {
    let sync = text(app, &["status", "sync", "status"]);
    let health = text(app, &["status", "health", "status"]);
    let state = |phase, message: Option<String>| AppState {
        phase,
        sync: sync.clone(),
        health: health.clone(),
        message,
    };
    if app["metadata"].get("deletionTimestamp").is_some() {
        return state(
            Phase::Deleting,
            Some("the Application is being deleted".into()),
        );
    }
    let operation = text(app, &["status", "operationState", "phase"]);
    if matches!(operation.as_deref(), Some("Failed" | "Error")) {
        let why = text(app, &["status", "operationState", "message"]).unwrap_or_default();
        return state(
            Phase::Degraded,
            Some(format!("sync {}: {why}", operation.unwrap_or_default())),
        );
    }
    let errors: Vec<String> = app["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["type"].as_str().is_some_and(|t| t.ends_with("Error")))
        .map(|c| {
            format!(
                "{}: {}",
                c["type"].as_str().unwrap_or_default(),
                c["message"].as_str().unwrap_or_default()
            )
        })
        .collect();
    if !errors.is_empty() {
        return state(Phase::Degraded, Some(errors.join("; ")));
    }
    if health.as_deref() == Some("Degraded") {
        let why =
            text(app, &["status", "health", "message"]).unwrap_or_else(|| "health Degraded".into());
        return state(Phase::Degraded, Some(why));
    }
    let compared = &app["status"]["sync"]["comparedTo"];
    if compared["source"] != wanted["spec"]["source"]
        || compared["destination"] != wanted["spec"]["destination"]
    {
        return state(
            Phase::Progressing,
            Some("ArgoCD has not compared the current spec yet".into()),
        );
    }
    if sync.as_deref() == Some("Synced")
        && health.as_deref() == Some("Healthy")
        && operation.as_deref() != Some("Running")
    {
        return state(Phase::Ready, None);
    }
    let running = if operation.as_deref() == Some("Running") {
        ", sync operation running"
    } else {
        ""
    };
    state(
        Phase::Progressing,
        Some(format!(
            "sync {}, health {}{running}",
            sync.as_deref().unwrap_or("Unknown"),
            health.as_deref().unwrap_or("Unknown")
        )),
    )
}

/// Whether `observed` lacks anything of `wanted` (spec exactly; labels, annotations and the
/// finalizer as a subset, so other controllers' metadata is left alone).
pub fn differs(wanted: &Value, observed: &Value) -> bool {
    let subset = |field: &str| {
        wanted["metadata"][field]
            .as_object()
            .into_iter()
            .flatten()
            .any(|(k, v)| observed["metadata"][field].get(k) != Some(v))
    };
    let finalizer_missing = !observed["metadata"]["finalizers"]
        .as_array()
        .is_some_and(|f| f.iter().any(|f| f == RESOURCES_FINALIZER));
    wanted["spec"] != observed["spec"]
        || subset("labels")
        || subset("annotations")
        || finalizer_missing
}

fn wave_of(app: &Value) -> usize {
    app["metadata"]["annotations"][SYNC_WAVE]
        .as_str()
        .and_then(|w| w.parse().ok())
        .unwrap_or(0)
}

/// Changes to one cluster's existing Applications, and whether it is busy.
#[derive(Default)]
struct ClusterWork {
    /// (index in the cluster's component statuses, the Application as wanted).
    updates: Vec<(usize, Value)>,
    /// Some existing Application is not Ready for its current spec.
    busy: bool,
    /// Some existing Application is Degraded.
    degraded: bool,
}

/// Release the changes of existing Applications: all of them without `spec.rollout`; else the
/// busy clusters' and, while no cluster is Degraded, new clusters' up to `maxClustersInProgress`
/// busy ones, in cluster order. Held changes show as Waiting with the reason.
fn roll_out(stack: &Stack, work: Vec<ClusterWork>, out: &mut Plan) {
    let limit = stack
        .spec
        .rollout
        .as_ref()
        .map(|r| r.max_clusters_in_progress.max(1) as usize);
    let sick: Vec<String> = work
        .iter()
        .zip(&out.clusters)
        .filter(|(w, _)| w.degraded)
        .map(|(_, c)| c.name.clone())
        .collect();
    let mut busy = work.iter().filter(|w| w.busy).count();
    for (i, w) in work.into_iter().enumerate() {
        if w.updates.is_empty() {
            continue;
        }
        let allowed = match limit {
            None => true,
            Some(n) => w.busy || (sick.is_empty() && busy < n),
        };
        if allowed {
            busy += usize::from(!w.busy);
            out.apply.extend(w.updates.into_iter().map(|(_, app)| app));
            continue;
        }
        let why = if sick.is_empty() {
            format!(
                "the change waits for the rollout: {busy} clusters in progress, at most {}",
                limit.unwrap_or_default()
            )
        } else {
            format!(
                "the change waits: the rollout is paused while {} is Degraded",
                sick.join(", ")
            )
        };
        let cluster = &mut out.clusters[i];
        for (index, _) in w.updates {
            if let Some(status) = cluster.components.get_mut(index) {
                status.phase = Phase::Waiting.as_str().to_string();
                status.message = Some(why.clone());
            }
        }
        out.held.push(cluster.name.clone());
    }
    if !out.held.is_empty() {
        out.paused_by = sick;
    }
}

/// Plan one reconcile of a valid Stack.
///
/// A component's Application is created on a cluster only once every dependency is Ready
/// there; one that exists is kept up to date whatever its dependencies do. Applications no
/// longer wanted are deleted per cluster from the highest wave down, a wave only once the one
/// above it is gone.
pub fn plan(
    stack: &Stack,
    waves: &[Vec<String>],
    graph: &BTreeMap<String, BTreeSet<String>>,
    targets: &[Target],
    observed: &[Value],
    mirror: Option<&str>,
) -> Plan {
    let by_name: BTreeMap<&str, &Value> = observed
        .iter()
        .filter_map(|a| a["metadata"]["name"].as_str().map(|n| (n, a)))
        .collect();
    let mut out = Plan::default();
    let mut wanted_names = BTreeSet::new();
    let mut clusters_work = Vec::new();
    for target in targets {
        let mut phases: BTreeMap<&str, Phase> = BTreeMap::new();
        let mut components = Vec::new();
        let mut work = ClusterWork::default();
        if let Some(problem) = &target.access_problem {
            let message = format!("no access to the cluster: {problem}");
            for (wave, names) in waves.iter().enumerate() {
                for name in names {
                    let app = application_name(stack, name, &target.name);
                    wanted_names.insert(app.clone());
                    out.total += 1;
                    out.waiting
                        .push(format!("{}/{name} {message}", target.name));
                    components.push(ComponentStatus {
                        name: name.clone(),
                        wave: wave as i32,
                        phase: Phase::Waiting.as_str().to_string(),
                        application: Some(app),
                        message: Some(message.clone()),
                        sync: None,
                        health: None,
                    });
                }
            }
            out.clusters.push(StackClusterStatus {
                name: target.name.clone(),
                components,
            });
            clusters_work.push(work);
            continue;
        }
        for (wave, names) in waves.iter().enumerate() {
            for name in names {
                let Some(component) = stack.spec.components.iter().find(|c| &c.name == name) else {
                    continue;
                };
                let Some(wanted) = application(stack, component, wave, target, mirror) else {
                    continue;
                };
                let app_name = wanted["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                wanted_names.insert(app_name.clone());
                out.total += 1;
                let state = match by_name.get(app_name.as_str()) {
                    Some(existing) => {
                        // The cluster is busy while an Application is not Ready for the spec
                        // it has now (the rollout counts it as in progress).
                        let own = observe(existing, existing).phase;
                        work.busy |= own != Phase::Ready;
                        work.degraded |= own == Phase::Degraded;
                        let state = observe(existing, &wanted);
                        if state.phase != Phase::Deleting && differs(&wanted, existing) {
                            work.updates.push((components.len(), wanted));
                        }
                        state
                    }
                    None => {
                        let blocker = graph.get(name).into_iter().flatten().find_map(|dep| {
                            let phase = phases.get(dep.as_str()).copied()?;
                            (phase != Phase::Ready).then_some((dep, phase))
                        });
                        match blocker {
                            Some((dep, phase)) => AppState {
                                phase: Phase::Waiting,
                                sync: None,
                                health: None,
                                message: Some(format!(
                                    "waiting for {dep} ({}) on this cluster",
                                    phase.as_str()
                                )),
                            },
                            None => {
                                out.apply.push(wanted);
                                AppState {
                                    phase: Phase::Progressing,
                                    sync: None,
                                    health: None,
                                    message: Some("Application created".into()),
                                }
                            }
                        }
                    }
                };
                let at = format!("{}/{name}", target.name);
                match state.phase {
                    Phase::Ready => out.ready += 1,
                    Phase::Degraded => out.degraded.push(format!(
                        "{at}: {}",
                        state.message.clone().unwrap_or_default()
                    )),
                    Phase::Waiting => out.waiting.push(format!(
                        "{at} {}",
                        state.message.clone().unwrap_or_default()
                    )),
                    _ => {}
                }
                phases.insert(name.as_str(), state.phase);
                components.push(ComponentStatus {
                    name: name.clone(),
                    wave: wave as i32,
                    phase: state.phase.as_str().to_string(),
                    application: Some(app_name),
                    message: state.message,
                    sync: state.sync,
                    health: state.health,
                });
            }
        }
        out.clusters.push(StackClusterStatus {
            name: target.name.clone(),
            components,
        });
        clusters_work.push(work);
    }
    roll_out(stack, clusters_work, &mut out);
    // What is no longer wanted goes away per cluster, highest wave first.
    let mut unwanted: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
    for (name, app) in &by_name {
        if !wanted_names.contains(*name) {
            let cluster = text(app, &["metadata", "labels", CLUSTER_LABEL]).unwrap_or_default();
            unwanted.entry(cluster).or_default().push(app);
        }
    }
    for apps in unwanted.values() {
        out.removing += apps.len();
        let top = apps.iter().map(|a| wave_of(a)).max().unwrap_or(0);
        out.delete.extend(
            apps.iter()
                .filter(|a| wave_of(a) == top && a["metadata"].get("deletionTimestamp").is_none())
                .filter_map(|a| text(a, &["metadata", "name"])),
        );
    }
    out
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
