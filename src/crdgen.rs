//! The CRDs of mk8, generated from the Rust types (no I/O).

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

use crate::api::{Cluster, ClusterProfileView, NodePool, Stack};

/// Every CRD mk8 serves, in a stable order.
pub fn all() -> Vec<CustomResourceDefinition> {
    vec![
        Cluster::crd(),
        NodePool::crd(),
        Stack::crd(),
        ClusterProfileView::crd(),
    ]
}

/// File name of a CRD under `crds/`: `<plural>.<group>.yaml`.
pub fn file_name(crd: &CustomResourceDefinition) -> String {
    format!("{}.yaml", crd.metadata.name.as_deref().unwrap_or("unnamed"))
}

/// One CRD as a YAML document (no leading `---`).
pub fn to_yaml(crd: &CustomResourceDefinition) -> String {
    serde_yaml::to_string(crd).expect("a CRD always serializes to YAML")
}

/// All CRDs as one multi-document YAML stream.
pub fn all_yaml() -> String {
    all()
        .iter()
        .map(|crd| format!("---\n{}", to_yaml(crd)))
        .collect()
}
