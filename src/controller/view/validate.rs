//! Semantic validation of a ClusterProfileView (pure).

use crate::api::ClusterProfileView;
use crate::controller::conditions::{Desired, reasons, types};
use crate::controller::label_selector;
use crate::selector::LabelSelector;

/// `Ok(Valid)` when the query can run; else the conditions saying why not. `inventory` tells
/// whether the ClusterProfile API is served.
pub fn validate(view: &ClusterProfileView, inventory: bool) -> Result<Desired, Vec<Desired>> {
    let invalid = |msg: String| {
        vec![
            Desired::no(types::READY, reasons::INVALID_SPEC, msg.clone()),
            Desired::no(types::VALID, reasons::INVALID_SPEC, msg),
        ]
    };
    if let Err(e) = LabelSelector::parse(&view.spec.label_selector) {
        return Err(invalid(format!(
            "spec.labelSelector {:?} is not a valid label selector: {}",
            view.spec.label_selector, e.0
        )));
    }
    if let Some(problem) = label_selector::problem(&view.spec.clusters.selector) {
        return Err(invalid(format!("spec.clusters: {problem}")));
    }
    if let Some(glob) = view
        .spec
        .clusters
        .names
        .iter()
        .chain(&view.spec.clusters.exclude)
        .find(|g| g.contains("**"))
    {
        return Err(invalid(format!(
            "spec.clusters: glob {glob:?} uses **; use a single * to match any part of a name"
        )));
    }
    let valid = Desired::yes(types::VALID, reasons::SPEC_VALID, "the query is valid");
    if !inventory {
        let missing = Desired::no(
            types::READY,
            reasons::CLUSTER_INVENTORY_MISSING,
            "the ClusterProfile API (multicluster.x-k8s.io/v1alpha1) is not installed on the management cluster: install the cluster-inventory-api CRD",
        );
        return Err(vec![missing, valid]);
    }
    Ok(valid)
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
        let conditions = validate(&view("app in (nginx"), true).unwrap_err();
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
        let conditions = validate(&v, true).unwrap_err();
        assert_eq!(conditions[0].reason, reasons::INVALID_SPEC);
        assert_eq!(
            conditions[0].message,
            "spec.clusters: matchExpressions[0] (key \"env\"): unknown operator \"Near\"; use In, NotIn, Exists or DoesNotExist"
        );
    }

    #[test]
    fn valid_query_reports_what_is_missing() {
        assert!(validate(&view("app=nginx"), true).unwrap().status);
        let missing = validate(&view("app=nginx"), false).unwrap_err();
        assert_eq!(missing[0].reason, reasons::CLUSTER_INVENTORY_MISSING);
        assert!(missing[1].status, "the query itself is valid");
    }
}
