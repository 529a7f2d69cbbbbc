//! The chart's opt-in ArgoCD health checks: its copies of the Lua scripts are those of
//! `config/argocd/resource_customizations/`, and `argocdHealthChecks.enabled` renders them,
//! byte for byte, into the `argocd-cm` keys ArgoCD reads — through check.py's rendering
//! (helm-python-sdk) and through the real `helm template`.

use std::collections::BTreeMap;
use std::process::Command;

use serde::Deserialize as _;
use serde_yaml::Value;

use super::{RELEASE_NAMESPACE, checked, repo};
use crate::peers;

const KINDS: [&str; 4] = ["Cluster", "NodePool", "Stack", "ClusterProfileView"];
const REGENERATE: &str =
    "copy them again with the loop under \"Regenerating\" in charts/mk8-operator/README.md";

fn config_script(kind: &str) -> String {
    let path = repo().join(format!(
        "config/argocd/resource_customizations/mk8.io/{kind}/health.lua"
    ));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The `argocd-cm` data ArgoCD needs: one key per kind holding its script.
fn expected_data() -> BTreeMap<String, String> {
    KINDS
        .iter()
        .map(|kind| {
            (
                format!("resource.customizations.health.mk8.io_{kind}"),
                config_script(kind),
            )
        })
        .collect()
}

fn config_maps(manifests: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(manifests)
        .map(|doc| Value::deserialize(doc).expect("rendered YAML"))
        .filter(|doc| doc["kind"] == "ConfigMap")
        .collect()
}

/// The one ConfigMap of `manifests`: named `name` in `namespace`, labelled as part of ArgoCD,
/// with exactly the four health checks as data.
fn assert_health_config_map(source: &str, manifests: &str, name: &str, namespace: &str) {
    let maps = config_maps(manifests);
    assert_eq!(maps.len(), 1, "[{source}] one ConfigMap: {maps:?}");
    let map = &maps[0];
    assert_eq!(
        map["metadata"]["name"], name,
        "[{source}] {:?}",
        map["metadata"]
    );
    assert_eq!(
        map["metadata"]["namespace"], namespace,
        "[{source}] {:?}",
        map["metadata"]
    );
    assert_eq!(
        map["metadata"]["labels"]["app.kubernetes.io/part-of"], "argocd",
        "[{source}] ArgoCD watches ConfigMaps labelled part-of: argocd: {:?}",
        map["metadata"]["labels"]
    );
    let data: BTreeMap<String, String> =
        serde_yaml::from_value(map["data"].clone()).expect("string data");
    let want = expected_data();
    assert_eq!(
        data.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "[{source}] argocd-cm keys"
    );
    for (key, script) in &want {
        assert!(
            &data[key] == script,
            "[{source}] {key} is not config/argocd's script byte for byte:\n{}",
            data[key]
        );
    }
}

#[test]
fn chart_copies_of_the_argocd_health_checks_are_the_config_scripts() {
    let files = repo().join("charts/mk8-operator/files/argocd/mk8.io");
    let mut copied: Vec<String> = std::fs::read_dir(&files)
        .unwrap_or_else(|e| panic!("{}: {e}", files.display()))
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    copied.sort();
    let mut kinds: Vec<String> = KINDS.iter().map(|k| k.to_string()).collect();
    kinds.sort();
    assert_eq!(
        copied,
        kinds,
        "{} holds other kinds; {REGENERATE}",
        files.display()
    );
    for kind in KINDS {
        let copy = files.join(kind).join("health.lua");
        let bytes = std::fs::read(&copy).unwrap_or_else(|e| panic!("{}: {e}", copy.display()));
        assert!(
            bytes == config_script(kind).into_bytes(),
            "{} differs from config/argocd/resource_customizations/mk8.io/{kind}/health.lua; {REGENERATE}",
            copy.display()
        );
    }
}

#[test]
fn argocd_health_checks_render_into_argocd_cm_only_when_enabled() {
    let read = |values: &str| {
        std::fs::read_to_string(checked().join(format!("{values}.yaml")))
            .expect("check.py's rendered manifests")
    };
    assert!(
        config_maps(&read("default")).is_empty(),
        "the default values render a ConfigMap"
    );
    // tests/chart/values/argocd-health-checks.yaml: enabled, ArgoCD in `gitops`.
    assert_health_config_map(
        "check.py, argocd-health-checks.yaml",
        &read("argocd-health-checks"),
        "argocd-cm",
        "gitops",
    );
}

#[test]
fn helm_template_renders_the_argocd_health_checks() {
    let template = |extra: &[&str]| {
        let out = Command::new(peers::helm())
            .args(["template", "mk8-operator", "charts/mk8-operator"])
            .args(["--namespace", RELEASE_NAMESPACE])
            .args(extra)
            .current_dir(repo())
            .output()
            .expect("helm runs");
        assert!(
            out.status.success(),
            "helm template {extra:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("UTF-8 manifests")
    };
    assert!(
        config_maps(&template(&[])).is_empty(),
        "helm template with the default values renders a ConfigMap"
    );
    assert_health_config_map(
        "helm template",
        &template(&["--set", "argocdHealthChecks.enabled=true"]),
        "argocd-cm",
        "argocd",
    );
    assert_health_config_map(
        "helm template, configMapName",
        &template(&[
            "--set",
            "argocdHealthChecks.enabled=true",
            "--set",
            "argocdHealthChecks.configMapName=mk8-argocd-health",
            "--set",
            "argocdHealthChecks.namespace=gitops",
        ]),
        "mk8-argocd-health",
        "gitops",
    );
}
