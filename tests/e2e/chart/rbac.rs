//! The chart's rendered (Cluster)Roles grant exactly the reviewed table NEEDS, each in the place
//! its scope says. That the operator needs nothing beyond them is proven by running it: chart/real.rs
//! installs the chart with the real helm into the real control plane and reconciles the samples as
//! the chart's ServiceAccount, where any forbidden request fails the test.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::{RELEASE_NAMESPACE, SERVICE_ACCOUNT, rendered, strings};

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
}

const NEEDS: &[Need] = &[
    Need {
        group: "mk8.io",
        resource: "clusters",
        verbs: &["get", "list", "watch", "patch"],
        scope: Scope::Watched,
    },
    Need {
        group: "mk8.io",
        resource: "nodepools",
        verbs: &["get", "list", "watch", "patch"],
        scope: Scope::Watched,
    },
    Need {
        group: "mk8.io",
        resource: "stacks",
        verbs: &["get", "list", "watch", "patch"],
        scope: Scope::Watched,
    },
    Need {
        group: "mk8.io",
        resource: "clusterprofileviews",
        verbs: &["get", "list", "watch", "patch"],
        scope: Scope::Watched,
    },
    Need {
        group: "mk8.io",
        resource: "clusters/status",
        verbs: &["patch"],
        scope: Scope::Watched,
    },
    Need {
        group: "mk8.io",
        resource: "nodepools/status",
        verbs: &["patch"],
        scope: Scope::Watched,
    },
    Need {
        group: "mk8.io",
        resource: "stacks/status",
        verbs: &["patch"],
        scope: Scope::Watched,
    },
    Need {
        group: "mk8.io",
        resource: "clusterprofileviews/status",
        verbs: &["patch"],
        scope: Scope::Watched,
    },
    Need {
        group: "",
        resource: "secrets",
        verbs: &["get", "list", "watch"],
        scope: Scope::Watched,
    },
    // `<cluster>-kubeconfig` and RKE2 join-token Secrets, written with server-side apply.
    Need {
        group: "",
        resource: "secrets",
        verbs: &["patch"],
        scope: Scope::Watched,
    },
    // Deleted by name for ArgoCD cluster Secrets (Stack delivery) when ArgoCD's namespace is
    // watched; the Secrets above are created by apply and removed through owner references.
    Need {
        group: "",
        resource: "secrets",
        verbs: &["create", "update", "delete"],
        scope: Scope::Watched,
    },
    Need {
        group: "events.k8s.io",
        resource: "events",
        verbs: &["create", "patch"],
        scope: Scope::Watched,
    },
    Need {
        group: "",
        resource: "events",
        verbs: &["create", "patch"],
        scope: Scope::Watched,
    },
    Need {
        group: "multicluster.x-k8s.io",
        resource: "clusterprofiles",
        verbs: &["get", "list", "watch"],
        scope: Scope::Fleet,
    },
    // Publishing a ClusterProfile per Cluster (spec and status by server-side apply).
    Need {
        group: "multicluster.x-k8s.io",
        resource: "clusterprofiles",
        verbs: &["create", "update", "patch", "delete"],
        scope: Scope::Watched,
    },
    Need {
        group: "multicluster.x-k8s.io",
        resource: "clusterprofiles/status",
        verbs: &["patch"],
        scope: Scope::Watched,
    },
    // Stack delivery.
    Need {
        group: "argoproj.io",
        resource: "applications",
        verbs: &[
            "get", "list", "watch", "create", "update", "patch", "delete",
        ],
        scope: Scope::ArgoCd,
    },
    // ArgoCD cluster Secrets (only needs its own Role when ArgoCD's namespace is not watched).
    Need {
        group: "",
        resource: "secrets",
        verbs: &[
            "get", "list", "watch", "create", "update", "patch", "delete",
        ],
        scope: Scope::ArgoCd,
    },
    Need {
        group: "coordination.k8s.io",
        resource: "leases",
        verbs: &["get", "create", "patch"],
        scope: Scope::Release,
    },
];

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
