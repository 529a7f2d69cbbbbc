//! The Helm chart: lint, render and validation (tests/chart/check.py, through helm-python-sdk and
//! kubernetes-validate), the rendered container args parsed by the operator's own flag parser, the
//! RBAC compared with the API calls in src/, the drift of config/rbac/ and the chart's crds/, and
//! the opt-in ArgoCD health checks.

mod argocd;
mod devserver;
mod image;
mod rbac;
mod real;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use clap::Parser;
use mk8::operator::OperatorConfig;
use mk8::operator::config::{KnownHostsPolicy, LogFormat};
use serde_json::Value;

const PIP_HINT: &str = "pip install helm-python-sdk kubernetes-validate";
const RELEASE_NAMESPACE: &str = "mk8-system";
const SERVICE_ACCOUNT: &str = "mk8-operator";

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Run a script of tests/chart; panics with its output (and the pip hint) when it fails.
fn python(args: &[&str]) -> String {
    let out = Command::new("python3")
        .args(args)
        .current_dir(repo())
        .output()
        .unwrap_or_else(|e| panic!("cannot run python3 ({e}); install Python 3 and {PIP_HINT}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        let hint = if stderr.contains("missing Python module") {
            format!("\nthe chart checks need Python modules: {PIP_HINT}")
        } else {
            String::new()
        };
        panic!(
            "python3 {} failed ({}):\n{stdout}{stderr}{hint}",
            args.join(" "),
            out.status
        );
    }
    stdout.into_owned()
}

/// Directory holding check.py's output; check.py runs once per test process.
fn checked() -> &'static Path {
    static OUT: OnceLock<tempfile::TempDir> = OnceLock::new();
    OUT.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let out = dir.path().to_str().expect("utf-8 temp path").to_owned();
        python(&["tests/chart/check.py", "--out", &out]);
        dir
    })
    .path()
}

/// check.py's summary of each values file: container args, env, probes, RBAC objects.
fn rendered() -> BTreeMap<String, Value> {
    let path = checked().join("rendered.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("check.py wrote no {}: {e}", path.display()));
    serde_json::from_str(&text).expect("rendered.json is JSON")
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn chart_lints_renders_validates_and_refuses_bad_values() {
    let summary = rendered();
    let names: BTreeSet<_> = summary.keys().map(String::as_str).collect();
    assert!(
        names.is_superset(&BTreeSet::from([
            "default",
            "ha-metrics",
            "single-namespace"
        ])),
        "check.py rendered only {names:?}"
    );
    for (name, values) in &summary {
        assert_eq!(
            values["image"]
                .as_str()
                .map(|i| i.starts_with("ghcr.io/mk8-io/mk8:")),
            Some(true),
            "[{name}] image {}",
            values["image"]
        );
        let security = &values["securityContext"];
        assert_eq!(security["runAsNonRoot"], true, "[{name}] {security}");
        assert_eq!(
            security["readOnlyRootFilesystem"], true,
            "[{name}] {security}"
        );
        assert_eq!(
            security["allowPrivilegeEscalation"], false,
            "[{name}] {security}"
        );
        assert_eq!(
            strings(&security["capabilities"]["drop"]),
            ["ALL"],
            "[{name}] {security}"
        );
        assert_eq!(
            security["seccompProfile"]["type"], "RuntimeDefault",
            "[{name}] {security}"
        );
    }
    let default = checked().join("default.yaml");
    assert!(default.exists(), "check.py wrote no {}", default.display());
}

/// What each values file of tests/chart/values must make the operator do.
fn expect_flags(name: &str, config: &OperatorConfig, args: &[String]) {
    let has = |flag: &str| args.iter().any(|a| a.starts_with(&format!("{flag}=")));
    match name {
        "default" => {
            assert!(config.leader_election);
            assert_eq!(
                config.leader_election_namespace.as_deref(),
                Some(RELEASE_NAMESPACE)
            );
            assert_eq!(config.leader_election_lease, "mk8-operator");
            assert!(
                !has("--watch-namespace"),
                "watches all namespaces by default: {args:?}"
            );
            assert!(
                !has("--aws-region") && !has("--aws-endpoint-url"),
                "{args:?}"
            );
            assert_eq!(config.concurrency, 4);
            assert_eq!(config.log_level, "info");
            assert_eq!(config.log_format, LogFormat::Text);
            assert_eq!(config.ssh_known_hosts_policy, KnownHostsPolicy::Strict);
            assert_eq!(config.admin_addr.port(), 8080);
        }
        "ha-metrics" => {
            assert!(config.leader_election);
            assert_eq!(config.log_format, LogFormat::Json);
            assert_eq!(config.log_level, "mk8=debug,kube=info");
            assert_eq!(config.aws_region.as_deref(), Some("eu-west-1"));
            assert_eq!(config.concurrency, 16);
        }
        "single-namespace" => {
            assert!(!config.leader_election);
            assert_eq!(config.watch_namespace.as_deref(), Some("team-a"));
            assert_eq!(config.aws_region.as_deref(), Some("us-east-1"));
            assert_eq!(
                config.aws_endpoint_url.as_deref(),
                Some("http://moto.team-a.svc:5000")
            );
            assert_eq!(config.ssh_known_hosts_policy, KnownHostsPolicy::AcceptNew);
            assert_eq!(config.admin_addr.port(), 9090);
        }
        // Only adds the ArgoCD ConfigMap: the operator runs as with the default values.
        "argocd-health-checks" => expect_flags("default", config, args),
        other => panic!(
            "tests/chart/values/{other}.yaml has no expectations: add them to expect_flags in {}",
            file!()
        ),
    }
}

#[test]
fn rendered_container_args_parse_with_the_operator_flag_parser() {
    for (name, values) in rendered() {
        assert!(
            values["command"].is_null(),
            "[{name}] the image's ENTRYPOINT (mk8-operator) must start the container, not {}",
            values["command"]
        );
        let args = strings(&values["args"]);
        let argv = std::iter::once("mk8-operator".to_owned()).chain(args.iter().cloned());
        let config = OperatorConfig::try_parse_from(argv).unwrap_or_else(|e| {
            panic!("[{name}] mk8-operator refuses the chart's args {args:?}:\n{e}")
        });
        expect_flags(&name, &config, &args);

        // The probes and the Service reach the port the admin server listens on.
        let ports = values["ports"].as_array().cloned().unwrap_or_default();
        let admin = ports
            .iter()
            .find(|p| p["name"] == "admin")
            .unwrap_or_else(|| panic!("[{name}] no container port named admin: {ports:?}"));
        assert_eq!(
            admin["containerPort"].as_u64(),
            Some(u64::from(config.admin_addr.port())),
            "[{name}] containerPort differs from --admin-addr"
        );
        for (probe, path) in [("livenessProbe", "/livez"), ("readinessProbe", "/readyz")] {
            let get = &values[probe]["httpGet"];
            assert_eq!(get["path"], path, "[{name}] {probe}: {get}");
            assert_eq!(get["port"], "admin", "[{name}] {probe}: {get}");
        }

        // The Lease identity and, without the flag, the Lease namespace come from the pod.
        let env: BTreeMap<_, _> = values["env"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| {
                Some((
                    e["name"].as_str()?,
                    e["valueFrom"]["fieldRef"]["fieldPath"].clone(),
                ))
            })
            .collect();
        assert_eq!(
            env.get("POD_NAME"),
            Some(&Value::from("metadata.name")),
            "[{name}] {env:?}"
        );
        assert_eq!(
            env.get("POD_NAMESPACE"),
            Some(&Value::from("metadata.namespace")),
            "[{name}] {env:?}"
        );
    }
}

#[test]
fn config_rbac_is_rendered_from_the_chart() {
    let out = python(&["tests/chart/render_rbac.py", "--check"]);
    assert!(out.contains("config/rbac/ matches the chart"), "{out}");
}

fn yaml_files(dir: &Path) -> BTreeMap<String, String> {
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .map(|p| {
            let name = p
                .file_name()
                .expect("file name")
                .to_string_lossy()
                .into_owned();
            (name, std::fs::read_to_string(&p).expect("readable CRD"))
        })
        .collect()
}

#[test]
fn chart_crds_are_the_generated_crds() {
    let regenerate = "regenerate with `cargo run --bin mk8 -- crds --dir charts/mk8-operator/crds`";
    let chart = yaml_files(&repo().join("charts/mk8-operator/crds"));
    let top = yaml_files(&repo().join("crds"));
    assert_eq!(
        chart.keys().collect::<Vec<_>>(),
        top.keys().collect::<Vec<_>>(),
        "charts/mk8-operator/crds/ and crds/ hold different files; {regenerate}"
    );
    for (name, text) in &chart {
        assert!(
            text == &top[name],
            "charts/mk8-operator/crds/{name} differs from crds/{name}; {regenerate}"
        );
    }
    for crd in mk8::crdgen::all() {
        let name = mk8::crdgen::file_name(&crd);
        assert_eq!(
            chart.get(&name).map(String::as_str),
            Some(mk8::crdgen::to_yaml(&crd).as_str()),
            "charts/mk8-operator/crds/{name} is not what `mk8 crds` generates; {regenerate}"
        );
    }
}
