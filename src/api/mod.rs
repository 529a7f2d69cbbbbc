//! The four mk8 custom resources (`mk8.io/v1alpha1`) and the pieces they share.
//!
//! Admission-time validation lives on the types: OpenAPI constraints through `schemars`
//! attributes, cross-field invariants through CEL rules (`x-kubernetes-validations`).
//! Every rule's message names the field and says how to fix it.

pub mod cluster;
pub mod clusterprofile;
pub mod common;
pub mod nodepool;
pub mod stack;
pub mod view;

#[cfg(test)]
pub(crate) mod tests;

pub use cluster::{Cluster, ClusterSpec, ClusterStatus};
pub use clusterprofile::{ClusterProfile, ClusterProfileSpec, ClusterProfileStatus};
pub use common::{LocalObjectReference, Phase};
pub use nodepool::{NodePool, NodePoolSpec, NodePoolStatus};
pub use stack::{
    ClusterOverride, Component, ComponentStatus, Rollout, Stack, StackClusterStatus, StackSpec,
    StackStatus,
};
pub use view::{ClusterProfileView, ClusterProfileViewSpec, ClusterProfileViewStatus};

/// The API group of every mk8 kind.
pub const GROUP: &str = "mk8.io";
/// The served and stored version.
pub const VERSION: &str = "v1alpha1";
/// The `kubectl get mk8` category shared by all kinds.
pub const CATEGORY: &str = "mk8";
