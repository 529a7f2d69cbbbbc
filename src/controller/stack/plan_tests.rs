use super::*;
use crate::controller::stack::{dependency_graph, waves};

fn stack(spec: &str) -> Stack {
    serde_yaml::from_str(&format!(
        "apiVersion: mk8.io/v1alpha1\nkind: Stack\nmetadata: {{name: platform, namespace: fleet}}\nspec:\n{spec}\n"
    ))
    .expect("fixture parses")
}

fn three() -> Stack {
    stack(
        "  components:\n  - {name: certs, preset: cert-manager}\n  - {name: lb, preset: metallb}\n  - {name: policy, preset: kyverno, dependsOn: [certs]}\n",
    )
}

fn target(name: &str, labels: &[(&str, &str)]) -> Target {
    Target {
        name: name.into(),
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        access_problem: None,
    }
}

fn run(s: &Stack, targets: &[Target], observed: &[Value]) -> Plan {
    let graph = dependency_graph(s);
    let waves = waves::plan(&graph).expect("plan");
    plan(s, &waves, &graph, targets, observed, None)
}

/// What ArgoCD would report once it synced `app` with this health.
fn reported(app: &Value, sync: &str, health: &str) -> Value {
    let mut app = app.clone();
    app["status"] = json!({
        "sync": {"status": sync, "comparedTo": {"source": app["spec"]["source"], "destination": app["spec"]["destination"]}},
        "health": {"status": health, "message": format!("{health} says ArgoCD")},
        "operationState": {"phase": "Succeeded"},
    });
    app
}

fn component<'a>(p: &'a Plan, cluster: &str, name: &str) -> &'a ComponentStatus {
    p.clusters
        .iter()
        .find(|c| c.name == cluster)
        .and_then(|c| c.components.iter().find(|x| x.name == name))
        .expect("component status")
}

fn names(apps: &[Value]) -> Vec<String> {
    apps.iter()
        .map(|a| {
            a["metadata"]["labels"][COMPONENT_LABEL]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

#[test]
fn dependents_are_created_only_once_their_dependency_is_ready_on_that_cluster() {
    let s = three();
    let t = [target("a", &[]), target("b", &[])];
    let first = run(&s, &t, &[]);
    // Wave 0 on both clusters; kyverno waits for cert-manager.
    assert_eq!(names(&first.apply), ["certs", "lb", "certs", "lb"]);
    assert_eq!(component(&first, "a", "policy").phase, "Waiting");
    assert_eq!(
        component(&first, "a", "policy").message.as_deref(),
        Some("waiting for certs (Progressing) on this cluster")
    );
    assert_eq!((first.ready, first.total), (0, 6));

    // cert-manager Healthy on a only: kyverno is created on a, not on b.
    let observed: Vec<Value> = first
        .apply
        .iter()
        .map(|app| {
            let on_a = app["spec"]["destination"]["name"] == "a";
            if on_a {
                reported(app, "Synced", "Healthy")
            } else {
                reported(app, "OutOfSync", "Progressing")
            }
        })
        .collect();
    let second = run(&s, &t, &observed);
    assert_eq!(names(&second.apply), ["policy"]);
    assert_eq!(second.apply[0]["spec"]["destination"]["name"], "a");
    assert_eq!(second.apply[0]["metadata"]["annotations"][SYNC_WAVE], "1");
    assert_eq!(component(&second, "b", "policy").phase, "Waiting");
    assert_eq!(second.ready, 2);
}

#[test]
fn a_degraded_dependency_holds_back_only_its_dependents() {
    let s = three();
    let t = [target("a", &[])];
    let first = run(&s, &t, &[]);
    let observed: Vec<Value> = first
        .apply
        .iter()
        .map(|app| {
            let certs = app["metadata"]["labels"][COMPONENT_LABEL] == "certs";
            reported(app, "Synced", if certs { "Degraded" } else { "Healthy" })
        })
        .collect();
    let p = run(&s, &t, &observed);
    assert!(p.apply.is_empty(), "{:?}", p.apply);
    assert_eq!(component(&p, "a", "lb").phase, "Ready");
    assert_eq!(component(&p, "a", "certs").phase, "Degraded");
    assert_eq!(
        component(&p, "a", "policy").message.as_deref(),
        Some("waiting for certs (Degraded) on this cluster")
    );
    assert_eq!(p.degraded, ["a/certs: Degraded says ArgoCD"]);
}

#[test]
fn ready_means_synced_healthy_idle_and_compared_to_the_current_spec() {
    let s = three();
    let t = target("a", &[]);
    let app = application(&s, &s.spec.components[0], 0, &t, None).unwrap();
    assert_eq!(
        observe(&reported(&app, "Synced", "Healthy"), &app).phase,
        Phase::Ready
    );
    // A stale Healthy: ArgoCD compared an older version.
    let mut stale = reported(&app, "Synced", "Healthy");
    stale["status"]["sync"]["comparedTo"]["source"]["targetRevision"] = json!("v0.0.1");
    assert_eq!(observe(&stale, &app).phase, Phase::Progressing);
    let mut running = reported(&app, "Synced", "Healthy");
    running["status"]["operationState"]["phase"] = json!("Running");
    assert_eq!(observe(&running, &app).phase, Phase::Progressing);
    let mut failed = reported(&app, "OutOfSync", "Healthy");
    failed["status"]["operationState"] =
        json!({"phase": "Failed", "message": "one or more objects failed to apply"});
    let state = observe(&failed, &app);
    assert_eq!(state.phase, Phase::Degraded);
    assert_eq!(
        state.message.as_deref(),
        Some("sync Failed: one or more objects failed to apply")
    );
    let mut error = reported(&app, "Synced", "Healthy");
    error["status"]["conditions"] =
        json!([{"type": "ComparisonError", "message": "chart not found"}]);
    assert_eq!(
        observe(&error, &app).message.as_deref(),
        Some("ComparisonError: chart not found")
    );
    assert_eq!(observe(&app, &app).phase, Phase::Progressing);
}

#[test]
fn an_unchanged_application_is_not_written_and_a_changed_one_is() {
    let s = three();
    let t = [target("a", &[])];
    let first = run(&s, &t, &[]);
    let mut observed: Vec<Value> = first
        .apply
        .iter()
        .map(|a| {
            let mut a = reported(a, "Synced", "Healthy");
            // Metadata of others (ArgoCD, kubectl) is not ours to remove.
            a["metadata"]["labels"]["team"] = json!("platform");
            a["metadata"]["resourceVersion"] = json!("7");
            a
        })
        .collect();
    let again = run(&s, &t, &observed);
    assert_eq!(names(&again.apply), ["policy"], "only the new one");
    // Drift by hand on the spec is restored.
    observed[0]["spec"]["source"]["targetRevision"] = json!("v0.0.1");
    let drift = run(&s, &t, &observed);
    let mut written = names(&drift.apply);
    written.sort();
    assert_eq!(written, ["certs", "policy"]);
}

#[test]
fn values_merge_preset_component_and_matching_cluster_overrides_in_order() {
    let s = stack(
        "  components:\n  - {name: certs, preset: cert-manager, values: {replicaCount: 2, prometheus: {enabled: true}}}\n  clusterOverrides:\n  - {clusterSelector: {matchLabels: {env: prod}}, component: certs, values: {replicaCount: 3}}\n  - {clusterSelector: {matchLabels: {env: dev}}, component: certs, values: {replicaCount: 1}}\n",
    );
    let prod = application(
        &s,
        &s.spec.components[0],
        0,
        &target("p", &[("env", "prod")]),
        None,
    )
    .unwrap();
    assert_eq!(
        prod["spec"]["source"]["helm"]["valuesObject"],
        json!({"crds": {"enabled": true}, "replicaCount": 3, "prometheus": {"enabled": true}})
    );
    let other = application(
        &s,
        &s.spec.components[0],
        0,
        &target("o", &[("env", "qa")]),
        None,
    )
    .unwrap();
    assert_eq!(
        other["spec"]["source"]["helm"]["valuesObject"]["replicaCount"],
        2
    );
}

#[test]
fn applications_carry_what_argocd_needs() {
    let s = stack(
        "  components:\n  - {name: monitoring, preset: monitoring}\n  - {name: app, git: {repoURL: 'https://git.example/platform.git', path: apps/x}}\n",
    );
    let t = target("edge-1", &[]);
    let mon = application(
        &s,
        &s.spec.components[0],
        0,
        &t,
        Some("https://mirror.internal/helm/"),
    )
    .unwrap();
    assert_eq!(
        mon["spec"]["destination"],
        json!({"name": "edge-1", "namespace": "monitoring"})
    );
    assert_eq!(
        mon["spec"]["source"]["repoURL"],
        "https://mirror.internal/helm/prometheus-community.github.io/helm-charts"
    );
    assert_eq!(
        mon["spec"]["syncPolicy"]["syncOptions"],
        json!(["CreateNamespace=true", "ServerSideApply=true"])
    );
    assert_eq!(
        mon["spec"]["syncPolicy"]["automated"],
        json!({"prune": true, "selfHeal": true})
    );
    assert_eq!(mon["metadata"]["finalizers"], json!([RESOURCES_FINALIZER]));
    assert_eq!(
        mon["metadata"]["annotations"][STACK_ANNOTATION],
        "fleet/platform"
    );
    let git = application(&s, &s.spec.components[1], 0, &t, None).unwrap();
    assert_eq!(
        git["spec"]["source"],
        json!({"repoURL": "https://git.example/platform.git", "path": "apps/x", "targetRevision": "HEAD"})
    );
}

#[test]
fn names_fit_63_characters_and_differ_across_namespaces() {
    let mut a = three();
    let long = "a-very-long-cluster-profile-name-that-goes-on.and-on.example.com";
    let name = application_name(&a, "certs", long);
    assert!(name.len() <= 63, "{name}");
    assert!(name.starts_with("platform-certs-a-very-long"), "{name}");
    let mut b = three();
    b.metadata.namespace = Some("other".into());
    assert_ne!(
        application_name(&b, "certs", "x"),
        application_name(&a, "certs", "x")
    );
    a.metadata.name = Some("s".repeat(200));
    assert!(stack_selector(&a).len() < 150);
}

#[test]
fn unwanted_applications_go_highest_wave_first_per_cluster() {
    let s = three();
    let t = [target("a", &[]), target("b", &[])];
    let all: Vec<Value> = [&t[0], &t[1]]
        .iter()
        .flat_map(|t| {
            s.spec
                .components
                .iter()
                .map(|c| {
                    let wave = usize::from(c.name == "policy");
                    reported(
                        &application(&s, c, wave, t, None).unwrap(),
                        "Synced",
                        "Healthy",
                    )
                })
                .collect::<Vec<_>>()
        })
        .collect();
    // Cluster b deselected: its wave 1 goes first, wave 0 waits.
    let p = run(&s, &t[..1], &all);
    assert_eq!(p.delete.len(), 1);
    assert!(
        p.delete[0].starts_with("platform-policy-b-"),
        "{:?}",
        p.delete
    );
    assert_eq!(p.removing, 3);
    // Once it is gone (and while it is being deleted, nothing more), wave 0 follows.
    let mut deleting = all.clone();
    deleting[5]["metadata"]["deletionTimestamp"] = json!("2026-12-04T10:00:00Z");
    assert!(run(&s, &t[..1], &deleting).delete.is_empty());
    let gone: Vec<Value> = all[..5].to_vec();
    let p = run(&s, &t[..1], &gone);
    assert_eq!(p.delete.len(), 2);
    // The Stack deleted: every cluster at once, each from its top wave.
    let p = run(&s, &[], &all);
    assert_eq!(p.delete.len(), 2);
    assert_eq!(p.removing, 6);
}

#[test]
fn a_change_reaches_one_cluster_at_a_time_and_pauses_on_a_degraded_one() {
    let mut s = stack(
        "  components:\n  - {name: lb, preset: metallb}\n  rollout: {maxClustersInProgress: 1}\n",
    );
    let t = [target("a", &[]), target("b", &[]), target("c", &[])];
    let healthy: Vec<Value> = run(&s, &t, &[])
        .apply
        .iter()
        .map(|a| reported(a, "Synced", "Healthy"))
        .collect();
    assert!(run(&s, &t, &healthy).apply.is_empty());
    // New values: only cluster a takes them.
    s.spec.components[0].values = Some(
        json!({"speaker": {"logLevel": "debug"}})
            .as_object()
            .unwrap()
            .clone(),
    );
    let p = run(&s, &t, &healthy);
    assert_eq!(p.apply.len(), 1);
    assert_eq!(p.apply[0]["spec"]["destination"]["name"], "a");
    assert_eq!(p.held, ["b", "c"]);
    assert!(p.paused_by.is_empty());
    assert_eq!(
        component(&p, "b", "lb").message.as_deref(),
        Some("the change waits for the rollout: 1 clusters in progress, at most 1")
    );
    // a has the new spec, not yet synced: b and c still wait.
    let mut observed = healthy.clone();
    observed[0]["spec"] = p.apply[0]["spec"].clone();
    let p = run(&s, &t, &observed);
    assert!(p.apply.is_empty(), "{:?}", p.apply);
    assert_eq!(p.held, ["b", "c"]);
    // a Ready on the new spec: b's turn.
    observed[0] = reported(&observed[0], "Synced", "Healthy");
    let p = run(&s, &t, &observed);
    assert_eq!(p.apply.len(), 1);
    assert_eq!(p.apply[0]["spec"]["destination"]["name"], "b");
    // b Degraded on the new spec: the rollout pauses, c waits, naming b.
    observed[1]["spec"] = p.apply[0]["spec"].clone();
    observed[1] = reported(&observed[1], "Synced", "Degraded");
    let p = run(&s, &t, &observed);
    assert!(p.apply.is_empty());
    assert_eq!(p.paused_by, ["b"]);
    assert_eq!(p.held, ["c"]);
    assert_eq!(
        component(&p, "c", "lb").message.as_deref(),
        Some("the change waits: the rollout is paused while b is Degraded")
    );
    // Reverted: b (busy) takes the old values back at once, c has nothing to change, and a
    // (healthy on the reverted change) goes back once b is no longer Degraded.
    s.spec.components[0].values = None;
    let p = run(&s, &t, &observed);
    assert_eq!(p.apply.len(), 1);
    assert_eq!(p.apply[0]["spec"]["destination"]["name"], "b");
    assert_eq!(p.held, ["a"]);
    observed[1]["spec"] = p.apply[0]["spec"].clone();
    observed[1] = reported(&observed[1], "Synced", "Healthy");
    let p = run(&s, &t, &observed);
    assert_eq!(p.apply.len(), 1);
    assert_eq!(p.apply[0]["spec"]["destination"]["name"], "a");
    assert!(p.held.is_empty() && p.paused_by.is_empty());
}

#[test]
fn a_cluster_without_access_gets_nothing_and_loses_nothing() {
    let s = three();
    let t = [target("a", &[])];
    let existing: Vec<Value> = run(&s, &t, &[])
        .apply
        .iter()
        .map(|a| reported(a, "Synced", "Healthy"))
        .collect();
    let mut cut = target("a", &[]);
    cut.access_problem = Some("its ClusterProfile offers no access provider".into());
    let p = run(&s, &[cut], &existing);
    assert!(p.apply.is_empty() && p.delete.is_empty(), "{p:?}");
    assert_eq!(
        component(&p, "a", "certs").message.as_deref(),
        Some("no access to the cluster: its ClusterProfile offers no access provider")
    );
    assert_eq!((p.ready, p.total, p.waiting.len()), (0, 3, 3));
}

#[test]
fn git_directory_presets_render_a_directory_source() {
    let s = stack(
        "  components:\n  - {name: gateway-api, preset: gateway-api-crds}\n  - {name: queue, preset: kueue}\n",
    );
    let t = target("edge-1", &[]);
    let crds = application(
        &s,
        &s.spec.components[0],
        0,
        &t,
        Some("https://mirror.internal/helm/"),
    )
    .unwrap();
    // No Helm block, no chart mirror: the tag of the Gateway API repository itself.
    assert_eq!(
        crds["spec"]["source"],
        json!({
            "repoURL": "https://github.com/kubernetes-sigs/gateway-api",
            "path": "config/crd/standard",
            "targetRevision": "v1.6.1",
        })
    );
    assert_eq!(
        crds["spec"]["syncPolicy"]["syncOptions"],
        json!(["CreateNamespace=true", "ServerSideApply=true"])
    );
    assert_eq!(crds["spec"]["destination"]["namespace"], "kube-system");
    // An OCI chart: the registry path without `oci://` and without the chart name.
    let queue = application(&s, &s.spec.components[1], 0, &t, None).unwrap();
    assert_eq!(
        queue["spec"]["source"]["repoURL"],
        "registry.k8s.io/kueue/charts"
    );
    assert_eq!(queue["spec"]["source"]["chart"], "kueue");
    assert_eq!(queue["spec"]["source"]["targetRevision"], "0.19.2");
}
