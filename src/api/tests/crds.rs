//! What `kubectl` shows of the CRDs (names, categories, columns, status), and `crds/` drift.

use std::path::Path;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde_json::Value;

use super::schema_check::openapi_schema;
use crate::crdgen;

fn crd(kind: &str) -> CustomResourceDefinition {
    crdgen::all()
        .into_iter()
        .find(|crd| crd.spec.names.kind == kind)
        .unwrap_or_else(|| panic!("no CRD for {kind}"))
}

#[test]
fn every_kind_has_its_short_name_category_and_status_subresource() {
    for (kind, plural, short) in [
        ("Cluster", "clusters", "mcl"),
        ("NodePool", "nodepools", "mnp"),
        ("Stack", "stacks", "mstack"),
        ("ClusterProfileView", "clusterprofileviews", "cpv"),
    ] {
        let crd = crd(kind);
        assert_eq!(
            crd.metadata.name.as_deref(),
            Some(format!("{plural}.mk8.io").as_str())
        );
        assert_eq!(crd.spec.group, "mk8.io");
        assert_eq!(crd.spec.scope, "Namespaced", "{kind}");
        assert_eq!(
            crd.spec.names.short_names,
            Some(vec![short.to_string()]),
            "{kind}"
        );
        assert_eq!(
            crd.spec.names.categories,
            Some(vec!["mk8".to_string()]),
            "{kind}"
        );
        let [version] = crd.spec.versions.as_slice() else {
            panic!("{kind}: one version expected")
        };
        assert_eq!(
            (version.name.as_str(), version.served, version.storage),
            ("v1alpha1", true, true),
            "{kind}"
        );
        let subresources = version.subresources.as_ref();
        assert!(
            subresources.and_then(|s| s.status.as_ref()).is_some(),
            "{kind} has no status subresource"
        );
    }
}

#[test]
fn short_names_do_not_collide_with_common_kinds() {
    // Short names and plurals of built-in and widespread kinds (core, apps, Cluster API, ArgoCD).
    let taken = [
        "cs", "cm", "ep", "ev", "ns", "no", "pv", "pvc", "po", "rc", "sa", "svc", "ds", "deploy",
        "rs", "sts", "cj", "hpa", "pdb", "pc", "psp", "sc", "crd", "ing", "netpol", "cl", "cc",
        "mp", "md", "ms", "mhc", "app", "apps", "appproj", "cp", "cluster", "np",
    ];
    for crd in crdgen::all() {
        for short in crd.spec.names.short_names.unwrap_or_default() {
            assert!(
                !taken.contains(&short.as_str()),
                "{} short name {short} collides",
                crd.spec.names.kind
            );
        }
    }
}

#[test]
fn printer_columns_show_what_kubectl_get_promises() {
    for (kind, columns) in [
        (
            "Cluster",
            vec!["Provider", "Version", "Phase", "Ready", "Age"],
        ),
        (
            "NodePool",
            vec!["Cluster", "Role", "Ready", "Desired", "Age"],
        ),
        (
            "Stack",
            vec!["Clusters", "Components", "Ready", "Status", "Age"],
        ),
        ("ClusterProfileView", vec!["OK", "Failed", "Rows", "Age"]),
    ] {
        let crd = crd(kind);
        let printed = crd.spec.versions[0]
            .additional_printer_columns
            .clone()
            .unwrap_or_default();
        let names: Vec<&str> = printed.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, columns, "{kind} columns");
        let schema = openapi_schema(&crd);
        for column in &printed {
            assert!(
                column.json_path == ".metadata.creationTimestamp"
                    || resolves(&schema, &column.json_path),
                "{kind} column {} points at {}, which is not in the schema, so it would always be empty",
                column.name,
                column.json_path
            );
            if column.type_ == "integer" || column.type_ == "string" {
                let leaf = leaf(&schema, &column.json_path);
                assert_eq!(
                    leaf.and_then(|s| s["type"].as_str()),
                    Some(column.type_.as_str()),
                    "{kind} {}",
                    column.name
                );
            }
        }
    }
}

/// The schema of the field a simple JSONPath (`.status.conditions[?(...)].status`) selects.
fn leaf<'a>(schema: &'a Value, json_path: &str) -> Option<&'a Value> {
    let path = regex::Regex::new(r"\[[^\]]*\]")
        .expect("valid regex")
        .replace_all(json_path, "[]");
    let mut at = schema;
    for segment in path.trim_start_matches('.').split('.') {
        let (name, list) = segment
            .strip_suffix("[]")
            .map_or((segment, false), |n| (n, true));
        at = at.get("properties")?.get(name)?;
        if list {
            at = at.get("items")?;
        }
    }
    Some(at)
}

fn resolves(schema: &Value, json_path: &str) -> bool {
    leaf(schema, json_path).is_some()
}

#[test]
fn crds_directory_matches_the_rust_types() {
    const REGENERATE: &str = "cargo run --bin mk8 -- crds --dir crds";
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("crds");
    let generated = crdgen::all();
    let mut expected_files = Vec::new();
    for crd in &generated {
        let file = crdgen::file_name(crd);
        let written = std::fs::read_to_string(dir.join(&file)).unwrap_or_else(|e| {
            panic!("crds/{file} cannot be read ({e}); regenerate with `{REGENERATE}`")
        });
        assert!(
            written == crdgen::to_yaml(crd),
            "crds/{file} differs from the CRD generated from the Rust types; regenerate with `{REGENERATE}`"
        );
        expected_files.push(file);
    }
    let mut stray: Vec<String> = std::fs::read_dir(&dir)
        .expect("crds/ exists")
        .map(|entry| {
            entry
                .expect("readable entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|name| name.ends_with(".yaml") && !expected_files.contains(name))
        .collect();
    stray.sort();
    assert!(
        stray.is_empty(),
        "crds/ holds files no kind generates: {stray:?}; delete them and run `{REGENERATE}`"
    );
}
