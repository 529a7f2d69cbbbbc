//! Stacks delivered as ArgoCD Applications: 3 clusters × 6 components, with the real ArgoCD and
//! ClusterProfile CRDs and a stand-in for ArgoCD's application controller (named as such).

mod argocd;

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

use crate::operator::{http_get, start_operator_with};
use crate::support::{TestCluster, eventually, shared_crd};
use argocd::{FakeArgoCd, Timeline};

/// Generous: CI runs many suites at once on two cores.
const WAIT: Duration = Duration::from_secs(120);

/// cert-manager and MetalLB first; MetalLB's address pool after the controller; ingress after
/// MetalLB (the catalog's order); Kyverno and monitoring after cert-manager.
const STACK: &str = r#"
apiVersion: mk8.io/v1alpha1
kind: Stack
metadata: {name: platform, namespace: fleet}
spec:
  clusterSelector: {matchLabels: {env: prod}}
  components:
  - {name: certs, preset: cert-manager}
  - {name: lb, preset: metallb}
  - name: lb-pool
    dependsOn: [lb]
    namespace: metallb-system
    git: {repoURL: "https://git.example/platform.git", path: metallb/pools, targetRevision: v1}
  - {name: ingress, preset: ingress-nginx}
  - {name: policy, preset: kyverno, dependsOn: [certs]}
  - {name: monitoring, preset: monitoring, dependsOn: [certs], values: {grafana: {enabled: false}}}
  clusterOverrides:
  - clusterSelector: {matchLabels: {size: large}}
    component: monitoring
    values: {prometheus: {prometheusSpec: {replicas: 2}}}
"#;

fn profile(name: &str, labels: &str) -> String {
    format!(
        "apiVersion: multicluster.x-k8s.io/v1alpha1\nkind: ClusterProfile\nmetadata: {{name: {name}, namespace: fleet, labels: {{{labels}}}}}\nspec: {{displayName: {name}, clusterManager: {{name: gke-fleet}}}}\n"
    )
}

/// The KEP-5339 provider file the operator gets: clusters offering `fleet-exec` are reached
/// with this plugin.
const PROVIDERS: &str = r#"{"providers": [{"name": "fleet-exec", "execConfig": {"apiVersion": "client.authentication.k8s.io/v1", "command": "/usr/local/bin/fleet-token", "args": ["--cluster"], "env": [{"name": "FLEET", "value": "eu"}]}}]}"#;

/// Create foreign ClusterProfiles (as another cluster manager publishes them) with an access
/// provider, and start the operator with the provider file.
async fn fleet(
    cluster: &TestCluster,
    profiles: &[(&str, &str)],
) -> (crate::operator::Operator, tempfile::TempDir) {
    for (name, labels) in profiles {
        crate::support::apply_stdin_with(
            &cluster.kubeconfig,
            &["apply", "-f", "-"],
            &profile(name, labels),
        );
        let status = format!(
            r#"{{"status":{{"accessProviders":[{{"name":"fleet-exec","cluster":{{"server":"https://{name}.example:6443","certificate-authority-data":"Q0E="}}}}]}}}}"#
        );
        cluster.kubectl(&[
            "patch",
            "-n",
            "fleet",
            "clusterprofile",
            name,
            "--subresource=status",
            "--type=merge",
            "-p",
            &status,
        ]);
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("providers.json");
    std::fs::write(&file, PROVIDERS).unwrap();
    let operator = start_operator_with(
        cluster,
        &["--clusterprofile-provider-file", file.to_str().unwrap()],
    )
    .await;
    (operator, dir)
}

/// mk8's ArgoCD cluster Secrets: cluster name → (labels, decoded config).
fn cluster_secrets(cluster: &TestCluster) -> BTreeMap<String, (Value, Value)> {
    use base64::Engine;
    let decode = |v: &Value| {
        String::from_utf8(
            base64::engine::general_purpose::STANDARD
                .decode(v.as_str().unwrap())
                .unwrap(),
        )
        .unwrap()
    };
    cluster.get_json(&[
        "-n",
        "argocd",
        "secrets",
        "-l",
        "argocd.argoproj.io/secret-type=cluster",
    ])["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let config: Value = serde_json::from_str(&decode(&s["data"]["config"])).unwrap();
            (
                decode(&s["data"]["name"]),
                (s["metadata"]["labels"].clone(), config),
            )
        })
        .collect()
}

fn applications(cluster: &TestCluster) -> Vec<Value> {
    cluster.get_json(&["-n", "argocd", "applications.argoproj.io"])["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn stack(cluster: &TestCluster) -> Value {
    cluster.get_json(&["-n", "fleet", "stack", "platform"])
}

fn ready(obj: &Value) -> (String, String, String) {
    condition_of(obj, "Ready")
}

fn phase<'a>(obj: &'a Value, cluster: &str, component: &str) -> &'a Value {
    obj["status"]["clusters"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["name"] == cluster)
        .and_then(|c| {
            c["components"]
                .as_array()?
                .iter()
                .find(|x| x["name"] == component)
        })
        .map(|c| &c["phase"])
        .unwrap_or(&Value::Null)
}

async fn writes(operator: std::net::SocketAddr) -> u64 {
    let (_, body) = http_get(operator, "/metrics").await;
    body.lines()
        .filter(|l| l.starts_with("mk8_stack_application_writes_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

async fn reconciles(operator: std::net::SocketAddr) -> u64 {
    let (_, body) = http_get(operator, "/metrics").await;
    body.lines()
        .find(|l| l.starts_with("mk8_reconciliations_total{controller=\"stack\"}"))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0)
}

/// Timelines of one cluster's Applications, by component.
fn on(timelines: &BTreeMap<String, Timeline>, cluster: &str) -> BTreeMap<String, Timeline> {
    timelines
        .values()
        .filter(|t| t.labels.get("mk8.io/cluster").map(String::as_str) == Some(cluster))
        .map(|t| (t.labels["mk8.io/component"].clone(), t.clone()))
        .collect()
}

/// Every Application of a higher wave was gone before one of a lower wave began deleting.
fn assert_removed_highest_wave_first(removed: &BTreeMap<String, Timeline>) {
    let wave = |t: &Timeline| {
        t.labels["argocd.argoproj.io/sync-wave"]
            .parse::<u32>()
            .unwrap()
    };
    for (a, ta) in removed {
        for (b, tb) in removed {
            if wave(ta) > wave(tb) {
                let (gone, began) = (ta.gone.expect("gone"), tb.deleting.expect("deleted"));
                assert!(
                    gone <= began,
                    "{b} (wave {}) began deleting {:?} before {a} (wave {}) was gone",
                    wave(tb),
                    gone - began,
                    wave(ta)
                );
            }
        }
    }
}

const MK8: &str = env!("CARGO_BIN_EXE_mk8");

fn mk8(args: &[&str]) -> std::process::Output {
    std::process::Command::new(MK8)
        .args(args)
        .output()
        .expect("mk8 runs")
}

fn render_equals_the_live_applications(cluster: &TestCluster) {
    let dir = tempfile::tempdir().unwrap();
    let stack_file = dir.path().join("stack.yaml");
    std::fs::write(&stack_file, STACK).unwrap();
    let profiles = dir.path().join("profiles.yaml");
    std::fs::write(
        &profiles,
        cluster.kubectl(&["get", "clusterprofiles", "-n", "fleet", "-o", "yaml"]),
    )
    .unwrap();
    let out_dir = dir.path().join("out");
    let out = mk8(&[
        "stack",
        "render",
        "-f",
        stack_file.to_str().unwrap(),
        "--cluster-profiles",
        profiles.to_str().unwrap(),
        "--out",
        out_dir.to_str().unwrap(),
        "--repo-url",
        "https://git.example/fleet.git",
        "--repo-path",
        "platform/apps",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let live: BTreeMap<String, Value> = applications(cluster)
        .into_iter()
        .map(|a| (a["metadata"]["name"].as_str().unwrap().to_string(), a))
        .collect();
    let mut rendered = 0;
    for entry in std::fs::read_dir(out_dir.join("apps")).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        let file: Value = serde_yaml::from_str(&text).unwrap();
        let name = file["metadata"]["name"].as_str().unwrap();
        let app = live
            .get(name)
            .unwrap_or_else(|| panic!("rendered {name} is not live"));
        assert_eq!(file["spec"], app["spec"], "{name}: spec");
        for field in ["labels", "annotations"] {
            for (k, v) in file["metadata"][field].as_object().unwrap() {
                assert_eq!(&app["metadata"][field][k], v, "{name}: {field} {k}");
            }
        }
        assert_eq!(
            file["metadata"]["finalizers"], app["metadata"]["finalizers"],
            "{name}"
        );
        rendered += 1;
    }
    assert_eq!(rendered, live.len(), "one file per live Application");
    let root: Value =
        serde_yaml::from_str(&std::fs::read_to_string(out_dir.join("root.yaml")).unwrap()).unwrap();
    assert_eq!(root["spec"]["source"]["path"], "platform/apps");
    // The files are valid Applications for the API server too.
    let out = cluster.kubectl_raw(&[
        "apply",
        "--dry-run=server",
        "-f",
        out_dir.to_str().unwrap(),
        "--recursive",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn plan_prints_waves_per_cluster_and_refuses_cycles_and_unknown_dependencies_naming_them() {
    let planned = plan(STACK, &["edge-a", "edge-c:size=large"]);
    assert_eq!(
        planned.unwrap(),
        "cluster edge-a\n  wave 0: certs, lb\n  wave 1: ingress, lb-pool, monitoring, policy\ncluster edge-c\n  wave 0: certs, lb\n  wave 1: ingress, lb-pool, monitoring, policy\n"
    );
    let cycle = STACK.replace(
        "{name: certs, preset: cert-manager}",
        "{name: certs, preset: cert-manager, dependsOn: [policy]}",
    );
    let err = plan(&cycle, &["edge-a"]).unwrap_err();
    assert!(
        err.contains("dependency cycle: certs → policy → certs"),
        "{err}"
    );
    let unknown = STACK.replace("dependsOn: [lb]", "dependsOn: [metal-lb]");
    let err = plan(&unknown, &["edge-a"]).unwrap_err();
    assert!(
        err.contains(
            "component lb-pool depends on metal-lb, which is not a component of this Stack"
        ),
        "{err}"
    );
    assert!(
        plan(STACK, &[]).unwrap_err().contains("--cluster NAME"),
        "no clusters named"
    );
    // A bundle expands to its presets, ordered by the catalog.
    let bundle = "apiVersion: mk8.io/v1alpha1\nkind: Stack\nmetadata: {name: obs, namespace: fleet}\nspec:\n  components:\n  - {name: observability, bundle: observability}\n";
    assert_eq!(
        plan(bundle, &["edge-a"]).unwrap(),
        "cluster edge-a\n  wave 0: cert-manager, grafana, loki, prometheus-operator-crds\n  wave 1: monitoring, opentelemetry-operator\n"
    );
}

/// `mk8 stack plan` of this Stack for these clusters: its output, or its error.
fn plan(stack: &str, clusters: &[&str]) -> Result<String, String> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("stack.yaml");
    std::fs::write(&file, stack).unwrap();
    let mut args = vec!["stack", "plan", "-f", file.to_str().unwrap()];
    for c in clusters {
        args.extend(["--cluster", c]);
    }
    let out = mk8(&args);
    match out.status.success() {
        true => Ok(String::from_utf8_lossy(&out.stdout).into_owned()),
        false => Err(String::from_utf8_lossy(&out.stderr).into_owned()),
    }
}

/// A management cluster with mk8's, ClusterProfile's and ArgoCD's Application CRDs and the
/// `fleet` and `argocd` namespaces.
async fn management_with_argocd() -> TestCluster {
    let cluster = TestCluster::with_mk8_crds().await;
    cluster
        .apply_manifests(&format!(
            "{}\n---\n{}",
            shared_crd("clusterprofile-crd.yaml"),
            shared_crd("argocd-application-crd.yaml")
        ))
        .await;
    cluster.kubectl(&["create", "namespace", "fleet"]);
    cluster.kubectl(&["create", "namespace", "argocd"]);
    cluster
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_clusters_get_six_components_in_dependency_order_and_lose_them_in_reverse() {
    let cluster = management_with_argocd().await;
    let (operator, _providers) = fleet(
        &cluster,
        &[
            ("edge-a", "env: prod"),
            ("edge-b", "env: prod"),
            ("edge-c", "env: prod, size: large"),
            ("lab", "env: dev"),
        ],
    )
    .await;
    let argocd = FakeArgoCd::start(cluster.client().await, "argocd");
    argocd.set_degraded("edge-b", "certs", true);
    crate::support::apply_stdin_with(&cluster.kubeconfig, &["apply", "-f", "-"], STACK);

    // edge-a and edge-c get all six; on edge-b cert-manager is Degraded, which holds back only
    // its dependents there.
    let s = eventually(
        "15 of 18 Applications Ready, edge-b's certs Degraded",
        WAIT,
        || {
            let s = stack(&cluster);
            let (status, reason, message) = ready(&s);
            (s["status"]["progress"] == "15/18" && reason == "ComponentDegraded")
                .then_some(s.clone())
                .ok_or(format!(
                    "{status} {reason} {message} {}",
                    s["status"]["progress"]
                ))
        },
    )
    .await;
    assert_eq!(phase(&s, "edge-b", "certs"), "Degraded");
    for dependent in ["policy", "monitoring"] {
        assert_eq!(phase(&s, "edge-b", dependent), "Waiting", "{s:#}");
    }
    let b_policy = s["status"]["clusters"][1]["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "policy")
        .unwrap()
        .clone();
    assert_eq!(
        b_policy["message"],
        "waiting for certs (Degraded) on this cluster"
    );
    let (_, _, message) = ready(&s);
    assert!(
        message.contains("edge-b/certs: Deployment cert-manager-webhook has 0/1 ready replicas"),
        "{message}"
    );
    assert_eq!(
        applications(&cluster).len(),
        16,
        "edge-b's two dependents not created"
    );
    assert!(
        applications(&cluster)
            .iter()
            .all(|a| a["spec"]["destination"]["name"] != "lab"),
        "lab (env=dev) is not selected"
    );

    // Each selected cluster is registered with ArgoCD through the exec plugin of its access
    // provider, its profile's labels copied; the unselected one is not.
    let registered = cluster_secrets(&cluster);
    assert_eq!(
        registered.keys().collect::<Vec<_>>(),
        ["edge-a", "edge-b", "edge-c"]
    );
    let (labels, config) = &registered["edge-c"];
    assert_eq!(labels["size"], "large");
    assert_eq!(
        config["execProviderConfig"],
        serde_json::json!({"apiVersion": "client.authentication.k8s.io/v1", "command": "/usr/local/bin/fleet-token", "args": ["--cluster"], "env": {"FLEET": "eu"}})
    );
    assert_eq!(config["tlsClientConfig"]["caData"], "Q0E=");
    let server = cluster.get_json(&[
        "-n",
        "argocd",
        "secrets",
        "-l",
        "argocd.argoproj.io/secret-type=cluster",
    ])["items"][0]["data"]["server"]
        .clone();
    assert_eq!(
        server, "aHR0cHM6Ly9lZGdlLWEuZXhhbXBsZTo2NDQz",
        "https://edge-a.example:6443"
    );

    // kubectl shows progress.
    let table = cluster.kubectl(&["get", "stack", "-n", "fleet"]);
    assert!(
        table.contains("15/18") && table.contains("ComponentDegraded"),
        "{table}"
    );

    // Values: preset < component < the override for size=large.
    let monitoring_c = applications(&cluster)
        .into_iter()
        .find(|a| {
            a["spec"]["destination"]["name"] == "edge-c"
                && a["metadata"]["labels"]["mk8.io/component"] == "monitoring"
        })
        .unwrap();
    assert_eq!(
        monitoring_c["spec"]["source"]["helm"]["valuesObject"],
        serde_json::json!({"grafana": {"enabled": false}, "prometheus": {"prometheusSpec": {"replicas": 2}}})
    );
    assert_eq!(
        monitoring_c["spec"]["syncPolicy"]["syncOptions"][1],
        "ServerSideApply=true"
    );

    // A resync with nothing changed writes nothing.
    let (before_writes, before_reconciles) = (
        writes(operator.admin).await,
        reconciles(operator.admin).await,
    );
    cluster.kubectl(&["annotate", "-n", "fleet", "stack", "platform", "resync=1"]);
    let deadline = std::time::Instant::now() + WAIT;
    while reconciles(operator.admin).await <= before_reconciles {
        assert!(
            std::time::Instant::now() < deadline,
            "no reconcile after the annotation"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        writes(operator.admin).await,
        before_writes,
        "a no-change resync wrote Applications"
    );

    // Creation order per cluster follows the graph: a dependent's spec was first seen only
    // after its dependency was reported Healthy on that cluster.
    let timelines = argocd.timelines();
    for c in ["edge-a", "edge-c"] {
        let apps = on(&timelines, c);
        for (dependent, dependency) in [
            ("lb-pool", "lb"),
            ("ingress", "lb"),
            ("policy", "certs"),
            ("monitoring", "certs"),
        ] {
            let created = apps[dependent].seen.expect("seen");
            let healthy = apps[dependency].healthy.expect("healthy");
            assert!(
                created >= healthy,
                "{c}: {dependent} existed {:?} before {dependency} was Healthy",
                healthy - created
            );
        }
    }

    // edge-b's cert-manager recovers: its dependents follow and the Stack is delivered.
    argocd.set_degraded("edge-b", "certs", false);
    eventually("18/18 Ready", WAIT, || {
        let s = stack(&cluster);
        let (status, reason, message) = ready(&s);
        (status == "True" && reason == "Delivered" && s["status"]["progress"] == "18/18")
            .then_some(())
            .ok_or(format!("{status} {reason} {message}"))
    })
    .await;

    // `mk8 stack render` writes exactly what the controller wrote.
    render_equals_the_live_applications(&cluster);

    // Drift: a hand edit is reverted, a hand deletion recreated.
    let victim = applications(&cluster)
        .into_iter()
        .find(|a| {
            a["spec"]["destination"]["name"] == "edge-a"
                && a["metadata"]["labels"]["mk8.io/component"] == "ingress"
        })
        .unwrap();
    let name = victim["metadata"]["name"].as_str().unwrap().to_string();
    let pinned = victim["spec"]["source"]["targetRevision"].clone();
    cluster.kubectl(&[
        "patch",
        "-n",
        "argocd",
        "applications.argoproj.io",
        &name,
        "--type=merge",
        "-p",
        r#"{"spec":{"source":{"targetRevision":"4.0.0"}}}"#,
    ]);
    eventually("the hand edit reverted", WAIT, || {
        let app = cluster.get_json(&["-n", "argocd", "applications.argoproj.io", &name]);
        (app["spec"]["source"]["targetRevision"] == pinned)
            .then_some(())
            .ok_or(app["spec"]["source"].to_string())
    })
    .await;
    cluster.kubectl(&[
        "delete",
        "-n",
        "argocd",
        "applications.argoproj.io",
        &name,
        "--wait=false",
    ]);
    eventually("the deleted Application recreated and Ready", WAIT, || {
        let s = stack(&cluster);
        let app = cluster.kubectl_raw(&[
            "get",
            "-n",
            "argocd",
            "applications.argoproj.io",
            &name,
            "-o",
            "json",
        ]);
        let recreated = app.status.success()
            && serde_json::from_slice::<Value>(&app.stdout)
                .is_ok_and(|a| a["metadata"].get("deletionTimestamp").is_none());
        (recreated && ready(&s).1 == "Delivered")
            .then_some(())
            .ok_or(format!("{:?}", ready(&s)))
    })
    .await;

    // Removing a component others depend on is refused, and nothing is deleted.
    let without_certs = STACK.replace("  - {name: certs, preset: cert-manager}\n", "");
    let out = cluster.kubectl_stdin_raw(&["apply", "-f", "-"], &without_certs);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eventually(
        "the removal refused with the dependency named",
        WAIT,
        || {
            let (status, reason, message) = ready(&stack(&cluster));
            (reason == "UnknownDependency" && message.contains("depends on certs"))
                .then_some(())
                .ok_or(format!("{status} {reason} {message}"))
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        applications(&cluster).len(),
        18,
        "a refused change deleted Applications"
    );
    crate::support::apply_stdin_with(&cluster.kubeconfig, &["apply", "-f", "-"], STACK);

    // edge-c deselected: its Applications go, the highest wave first.
    cluster.kubectl(&[
        "label",
        "-n",
        "fleet",
        "clusterprofile",
        "edge-c",
        "env=retired",
        "--overwrite",
    ]);
    eventually("edge-c's Applications removed", WAIT, || {
        let left = applications(&cluster)
            .iter()
            .filter(|a| a["spec"]["destination"]["name"] == "edge-c")
            .count();
        let s = stack(&cluster);
        (left == 0 && s["status"]["progress"] == "12/12")
            .then_some(())
            .ok_or(format!("{left} left, {:?}", ready(&s)))
    })
    .await;
    assert_removed_highest_wave_first(&on(&argocd.timelines(), "edge-c"));
    let events = cluster.kubectl(&[
        "get",
        "events.events.k8s.io",
        "-n",
        "fleet",
        "--field-selector",
        "reason=RemovingApplications",
        "-o",
        "jsonpath={.items[*].note}",
    ]);
    assert!(
        events.contains("lower waves follow once ArgoCD has removed them"),
        "{events}"
    );
    eventually(
        "edge-c's cluster Secret removed after its Applications",
        WAIT,
        || {
            let names: Vec<String> = cluster_secrets(&cluster).into_keys().collect();
            (names == ["edge-a", "edge-b"])
                .then_some(())
                .ok_or(format!("{names:?}"))
        },
    )
    .await;

    // The Stack deleted: every Application goes, highest wave first on each cluster, and only
    // then the Stack.
    cluster.kubectl(&["delete", "-n", "fleet", "stack", "platform", "--wait=false"]);
    eventually("the Stack and its Applications gone", WAIT, || {
        let left = applications(&cluster).len();
        let stack = cluster.kubectl_raw(&["get", "-n", "fleet", "stack", "platform"]);
        (left == 0 && !stack.status.success())
            .then_some(())
            .ok_or(format!("{left} Applications left"))
    })
    .await;
    let timelines = argocd.timelines();
    for c in ["edge-a", "edge-b"] {
        let removed: BTreeMap<String, Timeline> = on(&timelines, c)
            .into_iter()
            .filter(|(_, t)| t.gone.is_some())
            .collect();
        assert_eq!(removed.len(), 6, "{c}: {removed:#?}");
        assert_removed_highest_wave_first(&removed);
    }
    let _ = operator.stop.send(());
}

const ROLLOUT: &str = r#"
apiVersion: mk8.io/v1alpha1
kind: Stack
metadata: {name: lb, namespace: fleet}
spec:
  clusterSelector: {matchLabels: {env: prod}}
  rollout: {maxClustersInProgress: 1}
  components:
  - {name: lb, preset: metallb, values: {speaker: {logLevel: info}}}
"#;

fn lb_apps(cluster: &TestCluster) -> BTreeMap<String, Value> {
    applications(cluster)
        .into_iter()
        .map(|a| {
            (
                a["spec"]["destination"]["name"]
                    .as_str()
                    .unwrap()
                    .to_string(),
                a,
            )
        })
        .collect()
}

fn condition_of(obj: &Value, type_: &str) -> (String, String, String) {
    obj["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == type_)
        .map(|c| {
            let s = |k: &str| c[k].as_str().unwrap_or_default().to_string();
            (s("status"), s("reason"), s("message"))
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_values_change_rolls_out_one_cluster_at_a_time_and_pauses_on_a_degraded_one() {
    let cluster = management_with_argocd().await;
    let (operator, _providers) = fleet(
        &cluster,
        &[("edge-a", "env: prod"), ("edge-b", "env: prod")],
    )
    .await;
    // edge-c is one of mk8's own Clusters (paused, so nothing provisions it here): ArgoCD gets
    // the token of the kubeconfig mk8 keeps for it.
    let kubeconfig = "apiVersion: v1\nkind: Config\ncurrent-context: edge-c\ncontexts: [{name: edge-c, context: {cluster: edge-c, user: admin}}]\nclusters: [{name: edge-c, cluster: {server: 'https://10.0.3.1:6443', certificate-authority-data: Q0E=}}]\nusers: [{name: admin, user: {token: edge-c-token}}]\n";
    cluster.kubectl(&[
        "create",
        "secret",
        "generic",
        "-n",
        "fleet",
        "edge-c-kubeconfig",
        &format!("--from-literal=value={kubeconfig}"),
    ]);
    crate::support::apply_stdin_with(
        &cluster.kubeconfig,
        &["apply", "-f", "-"],
        "apiVersion: mk8.io/v1alpha1\nkind: Cluster\nmetadata: {name: edge-c, namespace: fleet}\nspec:\n  paused: true\n  kubernetesVersion: '1.33'\n  rke2:\n    version: v1.33.1+rke2r1\n    artifacts: {baseURL: 'http://mirror.internal/rke2'}\n    sshCredentialsSecretRef: {name: fleet-ssh}\n    registrationAddress: 10.0.3.1\n",
    );
    cluster.kubectl(&[
        "patch",
        "-n",
        "fleet",
        "cluster",
        "edge-c",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"kubeconfigSecretName":"edge-c-kubeconfig"}}"#,
    ]);
    crate::support::apply_stdin_with(
        &cluster.kubeconfig,
        &["apply", "-f", "-"],
        &profile("edge-c", "env: prod").replace(
            "clusterManager: {name: gke-fleet}",
            "clusterManager: {name: mk8}",
        ),
    );
    let argocd = FakeArgoCd::start(cluster.client().await, "argocd");
    let get = || cluster.get_json(&["-n", "fleet", "stack", "lb"]);
    crate::support::apply_stdin_with(&cluster.kubeconfig, &["apply", "-f", "-"], ROLLOUT);
    // A new Stack installs everywhere at once (the rollout limits changes, not installs).
    eventually("3/3 Ready", WAIT, || {
        let s = get();
        (ready(&s).1 == "Delivered")
            .then_some(())
            .ok_or(format!("{:?}", ready(&s)))
    })
    .await;

    let (_, config) = &cluster_secrets(&cluster)["edge-c"];
    assert_eq!(config["bearerToken"], "edge-c-token", "{config}");

    let (_, config) = &cluster_secrets(&cluster)["edge-c"];
    assert_eq!(config["bearerToken"], "edge-c-token", "{config}");

    // The new version is Degraded on edge-b.
    argocd.degraded_when("edge-b", "lb", Some("\"logLevel\":\"debug\""));
    let debug = ROLLOUT.replace("logLevel: info", "logLevel: debug");
    crate::support::apply_stdin_with(&cluster.kubeconfig, &["apply", "-f", "-"], &debug);
    let is_debug =
        |a: &Value| a["spec"]["source"]["helm"]["valuesObject"]["speaker"]["logLevel"] == "debug";
    // Never more than one cluster in progress; edge-a first, then edge-b, and edge-c never.
    let s = eventually("the rollout paused at edge-b", WAIT, || {
        let apps = lb_apps(&cluster);
        let changed: Vec<&String> = apps
            .iter()
            .filter(|(_, a)| is_debug(a))
            .map(|(c, _)| c)
            .collect();
        assert!(
            !changed.contains(&&"edge-c".to_string()),
            "edge-c got the change: {changed:?}"
        );
        let s = get();
        let paused = condition_of(&s, "Paused");
        (paused.0 == "True")
            .then_some(s.clone())
            .ok_or(format!("{changed:?} {paused:?}"))
    })
    .await;
    let (_, reason, message) = condition_of(&s, "Paused");
    assert_eq!(reason, "RolloutPaused");
    assert!(
        message.contains("edge-b Degraded")
            && message.contains("1 clusters wait for the change (edge-c)"),
        "{message}"
    );
    assert_eq!(ready(&s).1, "ComponentDegraded");
    // It stays paused: edge-c keeps the old values.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let apps = lb_apps(&cluster);
    assert!(is_debug(&apps["edge-a"]) && is_debug(&apps["edge-b"]) && !is_debug(&apps["edge-c"]));
    let t = argocd.timelines();
    let (a, b) = (&on(&t, "edge-a")["lb"], &on(&t, "edge-b")["lb"]);
    assert!(
        b.changes[1] >= *a.healthy_at.last().unwrap(),
        "edge-b got the change before edge-a was Healthy with it"
    );

    // Reverted: edge-b goes back at once, edge-a after it, edge-c never changed.
    crate::support::apply_stdin_with(&cluster.kubeconfig, &["apply", "-f", "-"], ROLLOUT);
    eventually(
        "delivered again on the old values, not paused",
        WAIT,
        || {
            let s = get();
            let apps = lb_apps(&cluster);
            let done = ready(&s).1 == "Delivered"
                && condition_of(&s, "Paused").0 == "False"
                && apps.values().all(|a| !is_debug(a));
            done.then_some(())
                .ok_or(format!("{:?} {:?}", ready(&s), condition_of(&s, "Paused")))
        },
    )
    .await;
    assert_eq!(
        on(&argocd.timelines(), "edge-c")["lb"].changes.len(),
        1,
        "edge-c never changed"
    );
    let _ = operator.stop.send(());
}
