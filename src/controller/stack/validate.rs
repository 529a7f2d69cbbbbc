//! Semantic validation of a Stack (pure): presets exist, dependencies resolve into waves.

use std::collections::{BTreeMap, BTreeSet};

use super::catalog;
use super::waves::{self, PlanError};
use crate::api::Stack;
use crate::controller::conditions::{Desired, reasons, types};
use crate::controller::label_selector;

/// Outcome of validating a Stack.
#[derive(Clone, Debug, PartialEq)]
pub struct Verdict {
    /// Install order, when the dependencies resolve.
    pub waves: Vec<Vec<String>>,
    /// Conditions to report.
    pub conditions: Vec<Desired>,
}

/// Which clusters a Stack's selector found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selection {
    /// The ClusterProfile API is not served by the management cluster.
    InventoryMissing,
    /// `spec.clusterSelector` cannot be turned into a label selector.
    BadSelector(String),
    /// This many ClusterProfiles match.
    Selected(usize),
}

/// Validate `stack` given what its selector found.
pub fn validate(stack: &Stack, selection: &Selection) -> Verdict {
    let invalid = |type_, reason, msg: String| Verdict {
        waves: Vec::new(),
        conditions: vec![
            Desired::no(types::READY, reason, msg.clone()),
            Desired::no(type_, reason, msg),
        ],
    };
    if let Some(problem) = label_selector::problem(&stack.spec.cluster_selector) {
        return invalid(
            types::VALID,
            reasons::INVALID_SPEC,
            format!("spec.clusterSelector: {problem}"),
        );
    }
    if let Selection::BadSelector(problem) = selection {
        return invalid(
            types::VALID,
            reasons::INVALID_SPEC,
            format!("spec.clusterSelector: {problem}"),
        );
    }
    if let Err(problem) = super::bundles::expand(stack) {
        return invalid(types::VALID, reasons::INVALID_SPEC, problem);
    }
    if let Some(problem) = preset_problem(stack) {
        return invalid(types::VALID, reasons::INVALID_SPEC, problem);
    }
    let waves = match waves::plan(&dependency_graph(stack)) {
        Ok(waves) => waves,
        Err(e @ PlanError::Unknown { .. }) => {
            return invalid(
                types::DEPENDENCIES_RESOLVED,
                reasons::UNKNOWN_DEPENDENCY,
                format!("spec.components: {e}"),
            );
        }
        Err(e @ PlanError::Cycle(_)) => {
            return invalid(
                types::DEPENDENCIES_RESOLVED,
                reasons::DEPENDENCY_CYCLE,
                format!("spec.components: {e}; remove one of these dependsOn entries"),
            );
        }
    };
    let resolved = Desired::yes(
        types::DEPENDENCIES_RESOLVED,
        reasons::WAVES_PLANNED,
        format!(
            "{} components in {} waves: {}",
            stack.spec.components.len(),
            waves.len(),
            describe(&waves)
        ),
    );
    let mut conditions = vec![resolved];
    if let Selection::InventoryMissing = selection {
        conditions.push(Desired::no(
            types::READY,
            reasons::CLUSTER_INVENTORY_MISSING,
            "the ClusterProfile API (multicluster.x-k8s.io/v1alpha1) is not installed on the management cluster: install the cluster-inventory-api CRD so clusters can be selected",
        ));
    }
    if let Some(problem) = values_problem(stack) {
        return invalid(types::VALID, reasons::INVALID_SPEC, problem);
    }
    Verdict { waves, conditions }
}

/// `values` only make sense for Helm components; overrides must name a component.
fn values_problem(stack: &Stack) -> Option<String> {
    let components = &stack.spec.components;
    if let Some(i) = components
        .iter()
        .position(|c| c.git.is_some() && c.values.is_some())
    {
        return Some(format!(
            "spec.components[{i}].values: a git component has no Helm values; put them in the repository or remove values"
        ));
    }
    stack
        .spec
        .cluster_overrides
        .iter()
        .enumerate()
        .find_map(|(i, o)| {
            let Some(c) = components.iter().find(|c| c.name == o.component) else {
                return Some(format!(
                    "spec.clusterOverrides[{i}].component: {:?} is not a component of this Stack",
                    o.component
                ));
            };
            if c.git.is_some() {
                return Some(format!(
                    "spec.clusterOverrides[{i}]: {} is a git component and takes no Helm values",
                    o.component
                ));
            }
            label_selector::problem(&o.cluster_selector)
                .map(|e| format!("spec.clusterOverrides[{i}].clusterSelector: {e}"))
        })
}

/// Component → components it must follow: its own `dependsOn` plus the catalog's ordering
/// between presets present in the same Stack.
pub fn dependency_graph(stack: &Stack) -> BTreeMap<String, BTreeSet<String>> {
    let by_preset: BTreeMap<&str, &str> = stack
        .spec
        .components
        .iter()
        .filter_map(|c| c.preset.as_deref().map(|p| (p, c.name.as_str())))
        .collect();
    stack
        .spec
        .components
        .iter()
        .map(|c| {
            let mut needs: BTreeSet<String> = c.depends_on.iter().cloned().collect();
            if let Some(preset) = c.preset.as_deref().and_then(catalog::find) {
                needs.extend(
                    preset
                        .after
                        .iter()
                        .filter_map(|a| by_preset.get(a.as_str()))
                        .map(|n| n.to_string()),
                );
            }
            (c.name.clone(), needs)
        })
        .collect()
}

fn preset_problem(stack: &Stack) -> Option<String> {
    stack.spec.components.iter().enumerate().find_map(|(i, c)| {
        let name = c.preset.as_deref()?;
        catalog::find(name).is_none().then(|| {
            let known: Vec<&str> = catalog::presets().iter().map(|p| p.name.as_str()).collect();
            format!(
                "spec.components[{i}].preset: unknown preset {name:?}; available presets: {}",
                known.join(", ")
            )
        })
    })
}

fn describe(waves: &[Vec<String>]) -> String {
    waves
        .iter()
        .map(|w| format!("[{}]", w.join(", ")))
        .collect::<Vec<_>>()
        .join(" → ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stack(components: &str) -> Stack {
        serde_yaml::from_str(&format!(
            "apiVersion: mk8.io/v1alpha1\nkind: Stack\nmetadata: {{name: platform, namespace: fleet}}\nspec:\n  components: {components}\n"
        ))
        .expect("fixture parses")
    }

    fn condition<'a>(v: &'a Verdict, type_: &str) -> &'a Desired {
        v.conditions
            .iter()
            .find(|c| c.type_ == type_)
            .expect("condition present")
    }

    #[test]
    fn waves_follow_dependencies_and_catalog_order() {
        let s = stack(
            "[{name: ingress, preset: ingress-nginx}, {name: lb, preset: metallb}, {name: certs, preset: cert-manager}, \
             {name: kyverno, helm: {repoURL: 'https://kyverno.github.io/kyverno', chart: kyverno, version: 3.3.4}, dependsOn: [certs]}]",
        );
        let v = validate(&s, &Selection::Selected(2));
        // ingress-nginx comes after metallb by the catalog, kyverno after certs by dependsOn.
        assert_eq!(
            v.waves,
            vec![
                vec!["certs".to_string(), "lb".into()],
                vec!["ingress".into(), "kyverno".into()]
            ]
        );
        let resolved = condition(&v, types::DEPENDENCIES_RESOLVED);
        assert!(resolved.status);
        assert_eq!(
            resolved.message,
            "4 components in 2 waves: [certs, lb] → [ingress, kyverno]"
        );
        // Readiness is delivery's to decide.
        assert!(v.conditions.iter().all(|c| c.type_ != types::READY));
    }

    #[test]
    fn cycle_is_reported_with_its_path() {
        let s = stack(
            "[{name: a, preset: metallb, dependsOn: [b]}, {name: b, preset: longhorn, dependsOn: [a]}]",
        );
        let v = validate(&s, &Selection::Selected(1));
        let ready = condition(&v, types::READY);
        assert_eq!(ready.reason, reasons::DEPENDENCY_CYCLE);
        assert_eq!(
            ready.message,
            "spec.components: dependency cycle: a → b → a; remove one of these dependsOn entries"
        );
        assert!(v.waves.is_empty());
    }

    #[test]
    fn unknown_dependency_is_named() {
        let s = stack("[{name: kyverno, preset: kyverno, dependsOn: [cert-manger]}]");
        let v = validate(&s, &Selection::Selected(1));
        assert_eq!(
            condition(&v, types::READY).reason,
            reasons::UNKNOWN_DEPENDENCY
        );
        assert!(
            condition(&v, types::READY)
                .message
                .contains("depends on cert-manger, which is not a component")
        );
    }

    #[test]
    fn unknown_preset_lists_the_available_ones() {
        let s = stack("[{name: x, preset: cert-manger}]");
        let v = validate(&s, &Selection::Selected(1));
        let msg = &condition(&v, types::READY).message;
        assert!(msg.starts_with("spec.components[0].preset: unknown preset \"cert-manger\"; available presets: cert-manager"), "{msg}");
    }

    #[test]
    fn values_for_git_components_and_overrides_of_unknown_components_are_refused() {
        let s = stack(
            "[{name: app, git: {repoURL: 'https://git.example/x.git', path: a}, values: {x: 1}}]",
        );
        let v = validate(&s, &Selection::Selected(1));
        assert!(
            condition(&v, types::READY)
                .message
                .starts_with("spec.components[0].values: a git component"),
            "{v:?}"
        );
        let mut s = stack("[{name: certs, preset: cert-manager}]");
        s.spec.cluster_overrides = vec![crate::api::ClusterOverride {
            component: "cert".into(),
            ..Default::default()
        }];
        let v = validate(&s, &Selection::Selected(1));
        assert_eq!(
            condition(&v, types::READY).message,
            "spec.clusterOverrides[0].component: \"cert\" is not a component of this Stack"
        );
    }

    #[test]
    fn a_selector_that_cannot_select_names_its_expression_and_the_operators() {
        let mut s = stack("[{name: certs, preset: cert-manager}]");
        s.spec.cluster_selector = serde_yaml::from_str(
            "{matchExpressions: [{key: env, operator: Near, values: [prod]}]}",
        )
        .unwrap();
        // Whatever the inventory found: the selector is wrong either way.
        for selection in [Selection::InventoryMissing, Selection::Selected(0)] {
            let v = validate(&s, &selection);
            assert_eq!(condition(&v, types::READY).reason, reasons::INVALID_SPEC);
            assert_eq!(
                condition(&v, types::READY).message,
                "spec.clusterSelector: matchExpressions[0] (key \"env\"): unknown operator \"Near\"; use In, NotIn, Exists or DoesNotExist"
            );
        }
        let mut s = stack("[{name: certs, preset: cert-manager}]");
        s.spec.cluster_overrides = vec![crate::api::ClusterOverride {
            component: "certs".into(),
            cluster_selector: serde_yaml::from_str(
                "{matchExpressions: [{key: env, operator: In}]}",
            )
            .unwrap(),
            ..Default::default()
        }];
        assert!(
            condition(&validate(&s, &Selection::Selected(1)), types::READY)
                .message
                .starts_with("spec.clusterOverrides[0].clusterSelector: matchExpressions[0] (key \"env\"): operator In needs at least one value")
        );
    }

    #[test]
    fn missing_inventory_and_bad_selector_are_explained() {
        let s = stack("[{name: certs, preset: cert-manager}]");
        assert_eq!(
            condition(&validate(&s, &Selection::InventoryMissing), types::READY).reason,
            reasons::CLUSTER_INVENTORY_MISSING
        );
        let v = validate(&s, &Selection::BadSelector("invalid operator Near".into()));
        assert_eq!(
            condition(&v, types::READY).message,
            "spec.clusterSelector: invalid operator Near"
        );
    }
}
