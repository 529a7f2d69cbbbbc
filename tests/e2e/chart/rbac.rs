//! The chart's RBAC against the operator's code: every API the code uses is in NEEDS, and the
//! rendered (Cluster)Roles grant exactly NEEDS, each in the place its scope says.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::{RELEASE_NAMESPACE, SERVICE_ACCOUNT, rendered, repo, strings};

/// (group, resource, verb).
type Grant = (String, String, String);
/// (kind, namespace, name) of a Role or ClusterRole (namespace "" for a ClusterRole).
type RoleKey = (String, String, String);

/// Where the operator needs a permission.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Scope {
    /// Objects in the watched namespaces (all of them, or `watchNamespace`).
    Watched,
    /// ClusterProfiles, read in every namespace even with `--watch-namespace`.
    Fleet,
    /// ArgoCD's namespace.
    ArgoCd,
    /// The release namespace (the leader-election Lease).
    Release,
}

/// One permission the operator needs, and the code that needs it.
struct Need {
    group: &'static str,
    resource: &'static str,
    verbs: &'static [&'static str],
    scope: Scope,
    /// A string of src/ proving the code makes these calls today; `None`: a feature not built yet.
    evidence: Option<&'static str>,
}

const NEEDS: &[Need] = &[
    Need {
        group: "mk8.io",
        resource: "clusters",
        verbs: &["get", "list", "watch", "patch"],
        scope: Scope::Watched,
        evidence: Some("Controller::new(api::<Cluster>"),
    },
    Need {
        group: "mk8.io",
        resource: "nodepools",
        verbs: &["get", "list", "watch", "patch"],
        scope: Scope::Watched,
        evidence: Some("Controller::new(api::<NodePool>"),
    },
    Need {
        group: "mk8.io",
        resource: "stacks",
        verbs: &["get", "list", "watch", "patch"],
        scope: Scope::Watched,
        evidence: Some("Controller::new(api::<Stack>"),
    },
    Need {
        group: "mk8.io",
        resource: "clusterprofileviews",
        verbs: &["get", "list", "watch", "patch"],
        scope: Scope::Watched,
        evidence: Some("Controller::new(api::<ClusterProfileView>"),
    },
    Need {
        group: "mk8.io",
        resource: "clusters/status",
        verbs: &["patch"],
        scope: Scope::Watched,
        evidence: Some("patch_status("),
    },
    Need {
        group: "mk8.io",
        resource: "nodepools/status",
        verbs: &["patch"],
        scope: Scope::Watched,
        evidence: Some("patch_status("),
    },
    Need {
        group: "mk8.io",
        resource: "stacks/status",
        verbs: &["patch"],
        scope: Scope::Watched,
        evidence: Some("patch_status("),
    },
    Need {
        group: "mk8.io",
        resource: "clusterprofileviews/status",
        verbs: &["patch"],
        scope: Scope::Watched,
        evidence: Some("patch_status("),
    },
    Need {
        group: "",
        resource: "secrets",
        verbs: &["get", "list", "watch"],
        scope: Scope::Watched,
        evidence: Some("Api::<Secret>"),
    },
    // `<cluster>-kubeconfig` and RKE2 join-token Secrets, written with server-side apply.
    Need {
        group: "",
        resource: "secrets",
        verbs: &["patch"],
        scope: Scope::Watched,
        evidence: Some("let secrets: Api<Secret> = Api::namespaced"),
    },
    // Created, replaced and deleted by name for ArgoCD cluster Secrets (Stack delivery, not built
    // yet); the Secrets above are created by apply and removed through owner references.
    Need {
        group: "",
        resource: "secrets",
        verbs: &["create", "update", "delete"],
        scope: Scope::Watched,
        evidence: None,
    },
    Need {
        group: "events.k8s.io",
        resource: "events",
        verbs: &["create", "patch"],
        scope: Scope::Watched,
        evidence: Some("Recorder::new"),
    },
    Need {
        group: "",
        resource: "events",
        verbs: &["create", "patch"],
        scope: Scope::Watched,
        evidence: Some("Recorder::new"),
    },
    Need {
        group: "multicluster.x-k8s.io",
        resource: "clusterprofiles",
        verbs: &["get", "list", "watch"],
        scope: Scope::Fleet,
        evidence: Some("Api::all_with(client.clone(), &stack::cluster_profile_resource())"),
    },
    // Publishing a ClusterProfile per Cluster.
    Need {
        group: "multicluster.x-k8s.io",
        resource: "clusterprofiles",
        verbs: &["create", "update", "patch", "delete"],
        scope: Scope::Watched,
        evidence: None,
    },
    // Stack delivery.
    Need {
        group: "argoproj.io",
        resource: "applications",
        verbs: &[
            "get", "list", "watch", "create", "update", "patch", "delete",
        ],
        scope: Scope::ArgoCd,
        evidence: None,
    },
    // ArgoCD cluster Secrets (only needs its own Role when ArgoCD's namespace is not watched).
    Need {
        group: "",
        resource: "secrets",
        verbs: &[
            "get", "list", "watch", "create", "update", "patch", "delete",
        ],
        scope: Scope::ArgoCd,
        evidence: None,
    },
    Need {
        group: "coordination.k8s.io",
        resource: "leases",
        verbs: &["get", "create", "patch"],
        scope: Scope::Release,
        evidence: Some("LeaseManagerBuilder::new"),
    },
];

/// Types the code builds an `Api<T>` for, and the resource each needs in NEEDS.
const API_TYPES: &[(&str, &str, &str)] = &[
    ("Cluster", "mk8.io", "clusters"),
    ("NodePool", "mk8.io", "nodepools"),
    ("Stack", "mk8.io", "stacks"),
    ("ClusterProfileView", "mk8.io", "clusterprofileviews"),
    ("Secret", "", "secrets"),
    // The only dynamic API is the ClusterProfile one (stack::cluster_profile_resource).
    ("DynamicObject", "multicluster.x-k8s.io", "clusterprofiles"),
];

fn rust_sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Code that talks to the *workload* clusters mk8 manages, through the kubeconfig it stored for
/// each (cordon, drain, Node deletion): the operator's own RBAC does not apply there.
const WORKLOAD_CLIENTS: &[&str] = &["src/providers/rke2/nodes.rs"];

/// The operator's code: controllers and runtime (the API server and the CLI are not the operator).
fn operator_source() -> Vec<(PathBuf, String)> {
    let mut files = Vec::new();
    for dir in [
        "src/controller",
        "src/operator",
        "src/providers",
        "src/reconcile",
    ] {
        rust_sources(&repo().join(dir), &mut files);
    }
    for workload in WORKLOAD_CLIENTS {
        let text = std::fs::read_to_string(repo().join(workload)).expect("workload client source");
        // Excluded only while its clients really come from a workload kubeconfig.
        assert!(
            text.contains("Kubeconfig::from_yaml") && !text.contains("Client::try_default"),
            "{workload} is excluded from the RBAC check as a workload-cluster client, but does not build its client from a workload kubeconfig"
        );
    }
    files
        .into_iter()
        .filter(|p| !WORKLOAD_CLIENTS.iter().any(|w| p.ends_with(w)))
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("readable source");
            (p, text)
        })
        .collect()
}

#[test]
fn every_api_the_operator_code_uses_is_in_the_rbac_table() {
    let sources = operator_source();
    let api_type = regex::Regex::new(r"\b[Aa]pi(?:::)?<\s*(\w+)\s*>").expect("regex");
    let mut unknown = Vec::new();
    for (path, text) in &sources {
        for found in api_type.captures_iter(text) {
            let ty = &found[1];
            // Generic parameters (`Api<K>`) stand for the four mk8 kinds.
            if ty.len() == 1 {
                continue;
            }
            match API_TYPES.iter().find(|(name, _, _)| *name == ty) {
                Some((_, group, resource)) => assert!(
                    NEEDS
                        .iter()
                        .any(|n| n.group == *group && n.resource == *resource),
                    "{} uses Api<{ty}>, but NEEDS has no {group}/{resource}",
                    path.display()
                ),
                None => unknown.push(format!("{}: Api<{ty}>", path.display())),
            }
        }
    }
    assert!(
        unknown.is_empty(),
        "the operator calls APIs the chart's RBAC was not derived from; add them to API_TYPES and \
         NEEDS in {} and a rule to charts/mk8-operator/templates/_helpers.tpl:\n{}",
        file!(),
        unknown.join("\n")
    );
    let all: String = sources.iter().map(|(_, t)| t.as_str()).collect();
    for need in NEEDS {
        if let Some(evidence) = need.evidence {
            assert!(
                all.contains(evidence),
                "NEEDS says the code grants itself {}/{} {:?} because of `{evidence}`, which is no \
                 longer in src/: drop the rule from the chart or update the evidence",
                need.group,
                need.resource,
                need.verbs
            );
        }
    }
}

/// (group, resource, verb) triples granted by the rules of one RBAC object.
fn grants(object: &Value) -> BTreeSet<Grant> {
    let mut out = BTreeSet::new();
    for rule in object["rules"].as_array().into_iter().flatten() {
        for group in strings(&rule["apiGroups"]) {
            for resource in strings(&rule["resources"]) {
                for verb in strings(&rule["verbs"]) {
                    out.insert((group.clone(), resource.clone(), verb));
                }
            }
        }
    }
    out
}

/// Roles and ClusterRoles of one render, with what each grants, keyed by (kind, namespace, name);
/// only those bound to the operator's ServiceAccount.
fn bound_roles(values: &Value) -> BTreeMap<RoleKey, BTreeSet<Grant>> {
    let rbac = values["rbac"].as_array().cloned().unwrap_or_default();
    let mut roles = BTreeMap::new();
    for object in &rbac {
        let kind = object["kind"].as_str().unwrap_or_default();
        if kind != "Role" && kind != "ClusterRole" {
            continue;
        }
        let name = object["name"].as_str().unwrap_or_default();
        let namespace = object["namespace"].as_str().unwrap_or_default();
        let bound = rbac.iter().any(|b| {
            let binding_ns = b["namespace"].as_str().unwrap_or_default();
            b["roleRef"]["kind"] == kind
                && b["roleRef"]["name"] == name
                && (kind == "ClusterRole" || binding_ns == namespace)
                && b["subjects"].as_array().into_iter().flatten().any(|s| {
                    s["kind"] == "ServiceAccount"
                        && s["name"] == SERVICE_ACCOUNT
                        && s["namespace"] == RELEASE_NAMESPACE
                })
        });
        assert!(
            bound,
            "{kind} {namespace}/{name} is not bound to the operator's ServiceAccount"
        );
        roles.insert(
            (kind.to_owned(), namespace.to_owned(), name.to_owned()),
            grants(object),
        );
    }
    roles
}

fn triples(need: &Need) -> impl Iterator<Item = Grant> + '_ {
    need.verbs.iter().map(|v| {
        (
            need.group.to_owned(),
            need.resource.to_owned(),
            (*v).to_owned(),
        )
    })
}

/// Assert that `roles` grant exactly NEEDS, each where `place` says it belongs.
fn assert_least_privilege(
    name: &str,
    roles: &BTreeMap<RoleKey, BTreeSet<Grant>>,
    place: impl Fn(Scope) -> Option<(&'static str, &'static str)>,
) {
    let mut needed: BTreeMap<(String, String), BTreeSet<Grant>> = BTreeMap::new();
    for need in NEEDS {
        if let Some((kind, namespace)) = place(need.scope) {
            needed
                .entry((kind.to_owned(), namespace.to_owned()))
                .or_default()
                .extend(triples(need));
        }
    }
    for ((kind, namespace), want) in &needed {
        let have: BTreeSet<_> = roles
            .iter()
            .filter(|((k, ns, _), _)| k == kind && ns == namespace)
            .flat_map(|(_, g)| g.iter().cloned())
            .collect();
        let missing: Vec<_> = want.difference(&have).collect();
        assert!(
            missing.is_empty(),
            "[{name}] {kind} in {namespace:?} lacks {missing:?}"
        );
    }
    for ((kind, namespace, role), have) in roles {
        let want = needed
            .get(&(kind.clone(), namespace.clone()))
            .cloned()
            .unwrap_or_default();
        let extra: Vec<_> = have.difference(&want).collect();
        assert!(
            extra.is_empty(),
            "[{name}] {kind} {namespace}/{role} grants more than the operator needs: {extra:?}"
        );
    }
}

#[test]
fn chart_rbac_grants_what_the_operator_calls_and_nothing_more() {
    let summary = rendered();
    // All namespaces: one ClusterRole, the Lease Role in the release namespace.
    assert_least_privilege(
        "default",
        &bound_roles(&summary["default"]),
        |scope| match scope {
            Scope::Watched | Scope::Fleet | Scope::ArgoCd => Some(("ClusterRole", "")),
            Scope::Release => Some(("Role", RELEASE_NAMESPACE)),
        },
    );
    // One namespace, no leader election: Roles there and in ArgoCD's namespace; cluster-wide
    // only the ClusterProfile reads.
    assert_least_privilege(
        "single-namespace",
        &bound_roles(&summary["single-namespace"]),
        |scope| match scope {
            Scope::Watched => Some(("Role", "team-a")),
            Scope::Fleet => Some(("ClusterRole", "")),
            Scope::ArgoCd => Some(("Role", "argocd")),
            Scope::Release => None,
        },
    );
}
