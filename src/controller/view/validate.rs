//! Semantic validation of a ClusterProfileView (pure).

use crate::api::ClusterProfileView;
use crate::apiserver::selector::LabelSelector;
use crate::controller::conditions::{Desired, reasons, types};

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
