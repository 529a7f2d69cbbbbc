//! One scripted kubectl session run against the real kube-apiserver and the development API
//! server; the normalised outputs (stdout, stderr, exit status) of every step must be equal.
//!
//! Normalising removes what legitimately differs between two servers — UIDs, resource versions,
//! timestamps, ages, server addresses — and nothing else. A difference that remains is either fixed
//! in the development API server or listed in `docs/apiserver-fidelity.md` and in [`KNOWN`].

use serde_json::Value;

use crate::support::{TestCluster, repo_root};

/// One kubectl invocation of the scenario.
struct Step {
    args: &'static [&'static str],
    stdin: Option<String>,
}

fn run(args: &'static [&'static str]) -> Step {
    Step { args, stdin: None }
}

fn with_input(args: &'static [&'static str], input: impl Into<String>) -> Step {
    Step {
        args,
        stdin: Some(input.into()),
    }
}

fn sample(name: &str) -> String {
    std::fs::read_to_string(repo_root().join("config/samples").join(name)).expect("sample")
}

const CONFIGMAP: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: scenario\n  labels:\n    app: demo\ndata:\n  mode: fast\n";

const CONFIGMAP_OTHER_OWNER: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: scenario\ndata:\n  mode: slow\n";

/// The session: what a platform engineer types in a first hour with mk8.
fn scenario() -> Vec<Step> {
    vec![
        run(&["create", "namespace", "scenario"]),
        run(&["create", "namespace", "scenario"]),
        with_input(&["apply", "-f", "-"], sample("00-namespace.yaml")),
        with_input(&["apply", "-f", "-"], sample("01-secrets.yaml")),
        with_input(&["apply", "-f", "-"], sample("cluster-rke2.yaml")),
        with_input(&["apply", "-f", "-"], sample("cluster-rke2.yaml")),
        run(&["get", "clusters.mk8.io", "-n", "fleet"]),
        run(&["get", "mk8", "-n", "fleet", "-o", "name"]),
        run(&["get", "cluster", "edge", "-n", "fleet", "-o", "json"]),
        run(&[
            "get",
            "cluster",
            "edge",
            "-n",
            "fleet",
            "-o",
            "jsonpath={.spec.rke2.cni} {.metadata.labels.env}",
        ]),
        run(&["label", "cluster", "edge", "-n", "fleet", "tier=gold"]),
        run(&["label", "cluster", "edge", "-n", "fleet", "tier=silver"]),
        run(&[
            "label",
            "cluster",
            "edge",
            "-n",
            "fleet",
            "tier=silver",
            "--overwrite",
        ]),
        run(&["get", "clusters", "-A", "-l", "tier=silver", "-o", "name"]),
        run(&[
            "get",
            "clusters",
            "-A",
            "-l",
            "tier in (gold)",
            "-o",
            "name",
        ]),
        run(&[
            "annotate",
            "cluster",
            "edge",
            "-n",
            "fleet",
            "owner=platform",
        ]),
        run(&[
            "patch",
            "cluster",
            "edge",
            "-n",
            "fleet",
            "--type",
            "merge",
            "-p",
            r#"{"spec":{"rke2":{"cni":"calico"}}}"#,
        ]),
        run(&[
            "patch",
            "cluster",
            "edge",
            "-n",
            "fleet",
            "--type",
            "merge",
            "-p",
            r#"{"spec":{"rke2":{"cni":"flannel-plus"}}}"#,
        ]),
        run(&[
            "patch",
            "cluster",
            "edge",
            "-n",
            "fleet",
            "--type",
            "json",
            "-p",
            r#"[{"op":"replace","path":"/spec/kubernetesVersion","value":"1.34"}]"#,
        ]),
        run(&[
            "get",
            "cluster",
            "edge",
            "-n",
            "fleet",
            "-o",
            "jsonpath={.metadata.generation} {.spec.kubernetesVersion} {.spec.rke2.cni}",
        ]),
        with_input(
            &[
                "apply",
                "--server-side",
                "--field-manager=team-a",
                "-f",
                "-",
            ],
            CONFIGMAP,
        ),
        with_input(
            &[
                "apply",
                "--server-side",
                "--field-manager=team-b",
                "-f",
                "-",
            ],
            CONFIGMAP_OTHER_OWNER,
        ),
        with_input(
            &[
                "apply",
                "--server-side",
                "--field-manager=team-b",
                "--force-conflicts",
                "-f",
                "-",
            ],
            CONFIGMAP_OTHER_OWNER,
        ),
        run(&[
            "get",
            "configmap",
            "settings",
            "-n",
            "scenario",
            "-o",
            "jsonpath={.data.mode} {.metadata.managedFields[*].manager}",
        ]),
        run(&[
            "create",
            "configmap",
            "dry",
            "-n",
            "scenario",
            "--from-literal=a=b",
            "--dry-run=server",
            "-o",
            "name",
        ]),
        run(&["get", "configmap", "dry", "-n", "scenario"]),
        run(&["get", "configmap", "missing", "-n", "scenario"]),
        run(&["get", "configmaps", "-n", "scenario", "-l", "app=demo"]),
        run(&[
            "get",
            "configmaps",
            "-n",
            "scenario",
            "--field-selector",
            "metadata.name=settings",
            "-o",
            "name",
        ]),
        run(&["delete", "configmap", "settings", "-n", "scenario"]),
        run(&["delete", "configmap", "settings", "-n", "scenario"]),
        run(&[
            "delete",
            "configmap",
            "settings",
            "-n",
            "scenario",
            "--ignore-not-found",
        ]),
        run(&["api-resources", "--api-group=mk8.io", "-o", "wide"]),
        run(&[
            "get",
            "crd",
            "clusters.mk8.io",
            "-o",
            "jsonpath={.status.conditions[?(@.type==\"Established\")].status}",
        ]),
        run(&["delete", "cluster", "edge", "-n", "fleet", "--wait=true"]),
        run(&["get", "clusters", "-n", "fleet"]),
    ]
}

/// Differences the development API server still has, by step: each is explained in
/// `docs/apiserver-fidelity.md`. Empty when the servers agree everywhere.
const KNOWN: &[&str] = &[];

/// The normalised stdout, stderr and exit status of one step.
fn outcome(cluster: &TestCluster, step: &Step) -> String {
    // kubectl blocks; the development API server runs on this test's runtime and must go on serving.
    let mut args = vec!["--request-timeout=20s"];
    args.extend_from_slice(step.args);
    let out = tokio::task::block_in_place(|| match &step.stdin {
        Some(input) => cluster.kubectl_stdin_raw(&args, input),
        None => cluster.kubectl_raw(&args),
    });
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = match serde_json::from_str::<Value>(&stdout) {
        Ok(mut json) => {
            normalise_json(&mut json);
            serde_json::to_string_pretty(&json).unwrap()
        }
        Err(_) => normalise_table(&stdout),
    };
    let stderr: Vec<&str> = stderr
        .lines()
        // kubectl on this machine is older than the real server; that warning is kubectl's own.
        .filter(|line| !line.starts_with("WARNING: version difference"))
        .collect();
    format!(
        "exit {}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code().unwrap_or(-1),
        stdout.trim_end(),
        stderr.join("\n")
    )
}

/// Blank out what two servers legitimately disagree on.
fn normalise_json(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for key in ["uid", "resourceVersion", "creationTimestamp", "time"] {
                if let Some(v) = map.get_mut(key)
                    && v.is_string()
                {
                    *v = Value::String(format!("<{key}>"));
                }
            }
            for v in map.values_mut() {
                normalise_json(v);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(normalise_json),
        _ => {}
    }
}

/// An AGE column's values (`5s`, `2m3s`) become `<age>`.
fn normalise_table(text: &str) -> String {
    let age = regex::Regex::new(r"\b[0-9]+(s|m|h|d)([0-9]+(s|m|h))?\b").unwrap();
    let mut lines = text.lines();
    let Some(header) = lines.next() else {
        return String::new();
    };
    let Some(column) = header.find("AGE") else {
        return text.to_string();
    };
    let mut out = vec![header.to_string()];
    for line in lines {
        let (head, tail) = line.split_at(column.min(line.len()));
        out.push(format!("{head}{}", age.replace_all(tail, "<age>")));
    }
    out.join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scripted_kubectl_session_reads_the_same_from_the_real_and_the_dev_api_server() {
    let (real, dev) = (TestCluster::start_real().await, TestCluster::start().await);
    let crds = mk8::crdgen::all_yaml();
    real.apply_manifests(&crds).await;
    dev.apply_manifests(&crds).await;

    let mut differences = Vec::new();
    for (index, step) in scenario().iter().enumerate() {
        let (from_real, from_dev) = (outcome(&real, step), outcome(&dev, step));
        let label = format!("step {index}: kubectl {}", step.args.join(" "));
        if from_real != from_dev && !KNOWN.contains(&label.as_str()) {
            differences.push(format!(
                "{label}\n=== real kube-apiserver\n{from_real}\n=== development API server\n{from_dev}"
            ));
        }
    }
    assert!(
        differences.is_empty(),
        "{} of {} steps differ:\n\n{}",
        differences.len(),
        scenario().len(),
        differences.join("\n\n")
    );
}
