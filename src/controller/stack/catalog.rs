//! The built-in catalog of Stack presets and bundles (`config/catalog/presets.yaml`, compiled in;
//! no I/O). `docs/catalog.md` holds [`markdown_table`]'s output; a unit test keeps them equal.

use std::sync::OnceLock;

use serde::Deserialize;

/// One preset: a Helm chart or a Git directory at a pinned version.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Preset {
    /// Name used in `preset:`.
    pub name: String,
    /// One line on what it installs.
    pub description: String,
    /// Chart repository (`https://…` or `oci://…`), or the Git repository of `path`.
    #[serde(rename = "repoURL")]
    pub repo_url: String,
    /// Chart name (a Helm preset); exactly one of `chart` and `path` is set.
    #[serde(default)]
    pub chart: Option<String>,
    /// Directory in the Git repository (a Git-directory preset).
    #[serde(default)]
    pub path: Option<String>,
    /// Pinned chart version, or the Git tag of `path`.
    pub version: String,
    /// Default namespace.
    pub namespace: String,
    /// Default values (Helm presets).
    #[serde(default)]
    pub values: serde_json::Map<String, serde_json::Value>,
    /// Presets this one must come after when they are in the same Stack.
    #[serde(default)]
    pub after: Vec<String>,
    /// ArgoCD sync options the source needs besides `CreateNamespace=true`.
    #[serde(default)]
    pub sync_options: Vec<String>,
    /// What the nodes or the user must provide before the component can work (for people; not checked).
    #[serde(default)]
    pub prerequisites: Option<String>,
}

impl Preset {
    /// The repository as an ArgoCD Helm source takes it: a chart in an OCI registry without the
    /// `oci://` scheme (ArgoCD reads a scheme-less repoURL with `chart` as Helm-over-OCI, while
    /// `oci://` would make it a plain OCI artifact source), anything else unchanged.
    pub fn argocd_repo_url(&self) -> &str {
        match (&self.chart, self.repo_url.strip_prefix("oci://")) {
            (Some(_), Some(registry)) => registry,
            _ => &self.repo_url,
        }
    }
}

/// A named set of presets installed together (after Cluster-Forge's collections).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Bundle {
    /// Bundle name.
    pub name: String,
    /// One line on what it is for.
    pub description: String,
    /// Its presets' names; their order in a Stack comes from each preset's `after`.
    pub presets: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Catalog {
    presets: Vec<Preset>,
    #[serde(default)]
    bundles: Vec<Bundle>,
}

fn catalog() -> &'static Catalog {
    static CATALOG: OnceLock<Catalog> = OnceLock::new();
    CATALOG.get_or_init(|| {
        serde_yaml::from_str(include_str!("../../../config/catalog/presets.yaml"))
            .expect("config/catalog/presets.yaml is valid (checked by a unit test)")
    })
}

/// All presets, in catalog order.
pub fn presets() -> &'static [Preset] {
    &catalog().presets
}

/// The preset of that name.
pub fn find(name: &str) -> Option<&'static Preset> {
    presets().iter().find(|p| p.name == name)
}

/// All bundles, in catalog order.
pub fn bundles() -> &'static [Bundle] {
    &catalog().bundles
}

/// The bundle of that name.
pub fn bundle(name: &str) -> Option<&'static Bundle> {
    bundles().iter().find(|b| b.name == name)
}

/// Markdown tables of the presets and the bundles (the generated part of `docs/catalog.md`).
pub fn markdown_table() -> String {
    fn cell(text: &str) -> String {
        text.replace('|', "\\|").replace('\n', " ")
    }
    fn code(text: &str) -> String {
        format!("`{}`", cell(text))
    }
    fn list(items: &[String]) -> String {
        items.iter().map(|i| code(i)).collect::<Vec<_>>().join(", ")
    }
    let mut out = String::from(
        "| name | source | version | namespace | after | sync options | prerequisites | description |\n\
         |---|---|---|---|---|---|---|---|\n",
    );
    for p in presets() {
        let source = match (&p.chart, &p.path) {
            (Some(chart), _) => format!("Helm {} chart {}", code(&p.repo_url), code(chart)),
            (None, Some(path)) => format!("Git {} path {}", code(&p.repo_url), code(path)),
            (None, None) => code(&p.repo_url),
        };
        out.push_str(&format!(
            "| {} | {source} | {} | {} | {} | {} | {} | {} |\n",
            code(&p.name),
            code(&p.version),
            code(&p.namespace),
            list(&p.after),
            list(&p.sync_options),
            p.prerequisites.as_deref().map(cell).unwrap_or_default(),
            cell(&p.description),
        ));
    }
    out.push_str("\n| bundle | presets | description |\n|---|---|---|\n");
    for b in bundles() {
        out.push_str(&format!(
            "| {} | {} | {} |\n",
            code(&b.name),
            list(&b.presets),
            cell(&b.description)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use super::*;

    const DOC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/catalog.md");
    const BEGIN: &str = "<!-- BEGIN GENERATED by catalog::markdown_table -->\n";
    const END: &str = "<!-- END GENERATED -->";

    /// A cycle among `after` edges, as the path that closes it.
    fn after_cycle(presets: &[Preset]) -> Option<Vec<String>> {
        let edges: BTreeMap<&str, &[String]> = presets
            .iter()
            .map(|p| (p.name.as_str(), p.after.as_slice()))
            .collect();
        fn visit<'a>(
            node: &'a str,
            edges: &BTreeMap<&'a str, &'a [String]>,
            path: &mut Vec<&'a str>,
            done: &mut BTreeSet<&'a str>,
        ) -> Option<Vec<String>> {
            if let Some(at) = path.iter().position(|n| *n == node) {
                let mut cycle: Vec<String> = path[at..].iter().map(|n| n.to_string()).collect();
                cycle.push(node.to_string());
                return Some(cycle);
            }
            if !done.insert(node) {
                return None;
            }
            path.push(node);
            for next in edges.get(node).copied().unwrap_or_default() {
                if let Some(cycle) = visit(next, edges, path, done) {
                    return Some(cycle);
                }
            }
            path.pop();
            None
        }
        let mut done = BTreeSet::new();
        edges
            .keys()
            .find_map(|start| visit(start, &edges, &mut Vec::new(), &mut done))
    }

    #[test]
    fn catalog_parses_and_pins_exact_versions() {
        let version = regex::Regex::new(
            r"^v?(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?$",
        )
        .unwrap();
        assert!(presets().len() >= 25, "{}", presets().len());
        for p in presets() {
            assert!(
                version.is_match(&p.version),
                "{} is not pinned: {}",
                p.name,
                p.version
            );
        }
    }

    #[test]
    fn names_are_unique_dns_labels_and_descriptions_one_line() {
        let label = regex::Regex::new(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$").unwrap();
        let mut seen = BTreeSet::new();
        for p in presets() {
            assert!(seen.insert(&p.name), "preset {} twice", p.name);
            assert!(label.is_match(&p.name), "preset name {:?}", p.name);
            assert!(
                label.is_match(&p.namespace),
                "{}: namespace {:?}",
                p.name,
                p.namespace
            );
            let d = p.description.trim();
            assert!(
                !d.is_empty() && !d.contains('\n'),
                "{}: description {:?}",
                p.name,
                p.description
            );
        }
        let mut seen = BTreeSet::new();
        for b in bundles() {
            assert!(seen.insert(&b.name), "bundle {} twice", b.name);
            assert!(label.is_match(&b.name), "bundle name {:?}", b.name);
            assert!(!b.description.trim().is_empty(), "bundle {}", b.name);
        }
    }

    #[test]
    fn each_preset_has_one_source_from_an_https_or_oci_repository() {
        for p in presets() {
            match (&p.chart, &p.path) {
                (Some(chart), None) => {
                    assert!(!chart.is_empty(), "{}", p.name);
                    assert!(
                        p.repo_url.starts_with("https://") || p.repo_url.starts_with("oci://"),
                        "{}: {}",
                        p.name,
                        p.repo_url
                    );
                }
                (None, Some(path)) => {
                    assert!(
                        p.repo_url.starts_with("https://"),
                        "{}: {}",
                        p.name,
                        p.repo_url
                    );
                    assert!(
                        !path.is_empty()
                            && !path.starts_with('/')
                            && !path.split('/').any(|s| s == ".."),
                        "{}: path {path:?}",
                        p.name
                    );
                    assert!(
                        p.values.is_empty(),
                        "{}: a Git directory takes no values",
                        p.name
                    );
                }
                other => panic!(
                    "{}: set exactly one of chart and path, got {other:?}",
                    p.name
                ),
            }
            assert!(
                !p.sync_options
                    .iter()
                    .any(|o| o.starts_with("CreateNamespace")),
                "{}: mk8 sets CreateNamespace itself",
                p.name
            );
        }
    }

    #[test]
    fn after_names_other_presets_without_a_cycle() {
        for p in presets() {
            for after in &p.after {
                assert!(
                    find(after).is_some(),
                    "{} comes after unknown preset {after}",
                    p.name
                );
                assert_ne!(after, &p.name, "{} comes after itself", p.name);
            }
        }
        assert_eq!(after_cycle(presets()), None);
        // The check finds one when there is one.
        let mut looped = presets().to_vec();
        let metallb = looped.iter_mut().find(|p| p.name == "metallb").unwrap();
        metallb.after.push("ingress-nginx".into());
        assert_eq!(
            after_cycle(&looped),
            Some(vec![
                "ingress-nginx".into(),
                "metallb".into(),
                "ingress-nginx".into()
            ])
        );
    }

    #[test]
    fn bundles_list_presets_once_each() {
        assert!(!bundles().is_empty());
        for b in bundles() {
            assert!(!b.presets.is_empty(), "bundle {} is empty", b.name);
            let mut seen = BTreeSet::new();
            for name in &b.presets {
                assert!(
                    find(name).is_some(),
                    "bundle {} lists unknown preset {name}",
                    b.name
                );
                assert!(seen.insert(name), "bundle {} lists {name} twice", b.name);
            }
        }
        let names = |b: &str| bundle(b).map(|b| b.presets.clone()).unwrap_or_default();
        assert!(names("hard-requirements").contains(&"gateway-api-crds".to_string()));
        assert_eq!(
            names("security"),
            ["kyverno", "kyverno-policies", "trivy-operator"]
        );
        assert!(bundle("observability").is_some() && bundle("gpu-ml").is_some());
        assert!(bundle("storage").is_some() && bundle("databases").is_some());
        assert_eq!(bundle("nope"), None);
    }

    #[test]
    fn every_component_family_of_the_reference_is_present() {
        let families = [
            "cert-manager",
            "metallb",
            "metallb-pools",
            "longhorn",
            "local-path-provisioner",
            "rook-ceph",
            "external-secrets",
            "gateway-api-crds",
            "envoy-gateway",
            "ingress-nginx",
            "prometheus-operator-crds",
            "monitoring",
            "loki",
            "grafana",
            "mimir",
            "opentelemetry-operator",
            "minio-operator",
            "minio-tenant",
            "cloudnative-pg",
            "psmdb-operator",
            "redis",
            "amd-gpu-operator",
            "gpu-operator",
            "kuberay-operator",
            "kueue",
            "kyverno",
            "kyverno-policies",
            "trivy-operator",
        ];
        let missing: Vec<&str> = families.into_iter().filter(|f| find(f).is_none()).collect();
        assert!(missing.is_empty(), "missing presets: {missing:?}");
        assert_eq!(
            find("monitoring").unwrap().chart.as_deref(),
            Some("kube-prometheus-stack")
        );
        assert_eq!(
            find("gpu-operator").unwrap().repo_url,
            "https://helm.ngc.nvidia.com/nvidia"
        );
        assert_eq!(
            find("cert-manager").unwrap().values["crds"]["enabled"],
            true
        );
        assert_eq!(find("nope"), None);
    }

    #[test]
    fn the_dependency_edges_of_the_reference_are_kept() {
        for (preset, after) in [
            ("metallb-pools", "metallb"),
            ("monitoring", "prometheus-operator-crds"),
            ("opentelemetry-operator", "cert-manager"),
            ("minio-tenant", "minio-operator"),
            ("amd-gpu-operator", "cert-manager"),
            ("kyverno-policies", "kyverno"),
            ("envoy-gateway", "gateway-api-crds"),
        ] {
            assert!(
                find(preset).unwrap().after.iter().any(|a| a == after),
                "{preset} should come after {after}"
            );
        }
        for name in ["gateway-api-crds", "monitoring", "prometheus-operator-crds"] {
            assert!(
                find(name)
                    .unwrap()
                    .sync_options
                    .iter()
                    .any(|o| o == "ServerSideApply=true"),
                "{name} needs server-side apply"
            );
        }
    }

    #[test]
    fn oci_charts_reach_argocd_without_the_scheme() {
        let kueue = find("kueue").unwrap();
        assert_eq!(kueue.repo_url, "oci://registry.k8s.io/kueue/charts");
        assert_eq!(kueue.argocd_repo_url(), "registry.k8s.io/kueue/charts");
        let certs = find("cert-manager").unwrap();
        assert_eq!(certs.argocd_repo_url(), "https://charts.jetstack.io");
        for p in presets().iter().filter(|p| p.chart.is_some()) {
            let url = p.argocd_repo_url();
            assert!(!url.starts_with("oci://"), "{}", p.name);
            if url != p.repo_url {
                // The registry path without the chart: ArgoCD appends the chart name itself.
                assert!(
                    !url.ends_with(&format!("/{}", p.chart.as_deref().unwrap())),
                    "{}",
                    p.name
                );
            }
        }
    }

    #[test]
    fn docs_catalog_md_holds_the_generated_table() {
        let doc = std::fs::read_to_string(DOC).expect("docs/catalog.md exists");
        let start = doc
            .find(BEGIN)
            .expect("docs/catalog.md has the BEGIN marker")
            + BEGIN.len();
        let end = start
            + doc[start..]
                .find(END)
                .expect("docs/catalog.md has the END marker");
        let table = markdown_table();
        if doc[start..end] != table {
            if std::env::var_os("MK8_UPDATE_DOCS").is_some() {
                std::fs::write(DOC, format!("{}{table}{}", &doc[..start], &doc[end..])).unwrap();
                return;
            }
            panic!(
                "docs/catalog.md is out of date with config/catalog/presets.yaml; \
                 regenerate it with `MK8_UPDATE_DOCS=1 cargo test --lib catalog`"
            );
        }
        // Every preset and bundle shows up in the table.
        for p in presets() {
            assert!(table.contains(&format!("| `{}` |", p.name)), "{}", p.name);
        }
        for b in bundles() {
            assert!(table.contains(&format!("| `{}` |", b.name)), "{}", b.name);
        }
    }
}
