//! Semantic validation of a ClusterProfileView (pure).

use crate::api::ClusterProfileView;
use crate::controller::conditions::{Desired, reasons, types};
use crate::controller::label_selector;
use crate::selector::LabelSelector;

/// Conditions for `view`; `inventory` tells whether the ClusterProfile API is served.
pub fn validate(view: &ClusterProfileView, inventory: bool) -> Vec<Desired> {
    let invalid = |msg: String| {
        vec![
            Desired::no(types::READY, reasons::INVALID_SPEC, msg.clone()),
            Desired::no(types::VALID, reasons::INVALID_SPEC, msg),
        ]
    };
    if let Err(e) = LabelSelector::parse(&view.spec.label_selector) {
        return invalid(format!(
            "spec.labelSelector {:?} is not a valid label selector: {}",
            view.spec.label_selector, e.0
        ));
    }
    if let Some(problem) = label_selector::problem(&view.spec.clusters.selector) {
        return invalid(format!("spec.clusters: {problem}"));
    }
    if let Some(glob) = view
        .spec
        .clusters
        .names
        .iter()
        .chain(&view.spec.clusters.exclude)
        .find(|g| g.contains("**"))
    {
        return invalid(format!(
            "spec.clusters: glob {glob:?} uses **; use a single * to match any part of a name"
        ));
    }
    let valid = Desired::yes(types::VALID, reasons::SPEC_VALID, "the query is valid");
    let ready = if inventory {
        Desired::no(
            types::READY,
            reasons::QUERY_UNAVAILABLE,
            "the query is valid, but fan-out reads across ClusterProfiles are not available in this build of mk8-operator",
        )
    } else {
        Desired::no(
            types::READY,
            reasons::CLUSTER_INVENTORY_MISSING,
            "the ClusterProfile API (multicluster.x-k8s.io/v1alpha1) is not installed on the management cluster: install the cluster-inventory-api CRD",
        )
    };
    vec![ready, valid]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(selector: &str) -> ClusterProfileView {
        serde_yaml::from_str(&format!(
            "apiVersion: mk8.io/v1alpha1\nkind: ClusterProfileView\nmetadata: {{name: nginx, namespace: fleet}}\nspec:\n  resource: {{group: apps, version: v1, resource: deployments}}\n  labelSelector: {selector:?}\n"
        ))
        .unwrap()
    }

    #[test]
    fn bad_label_selector_is_refused_with_the_field() {
        let conditions = validate(&view("app in (nginx"), true);
        assert_eq!(conditions[0].reason, reasons::INVALID_SPEC);
        assert!(
            conditions[0]
                .message
                .starts_with("spec.labelSelector \"app in (nginx\" is not a valid label selector"),
            "{}",
            conditions[0].message
        );
    }

    #[test]
    fn a_clusters_selector_that_cannot_select_is_refused() {
        let mut v = view("app=nginx");
        v.spec.clusters.selector = serde_yaml::from_str(
            "{matchExpressions: [{key: env, operator: Near, values: [prod]}]}",
        )
        .unwrap();
        let conditions = validate(&v, true);
        assert_eq!(conditions[0].reason, reasons::INVALID_SPEC);
        assert_eq!(
            conditions[0].message,
            "spec.clusters: matchExpressions[0] (key \"env\"): unknown operator \"Near\"; use In, NotIn, Exists or DoesNotExist"
        );
    }

    #[test]
    fn valid_query_reports_what_is_missing() {
        assert_eq!(
            validate(&view("app=nginx"), true)[0].reason,
            reasons::QUERY_UNAVAILABLE
        );
        assert_eq!(
            validate(&view("app=nginx"), false)[0].reason,
            reasons::CLUSTER_INVENTORY_MISSING
        );
        assert!(validate(&view("app=nginx"), true)[1].status);
    }
}
