//! The interface every provider offers the controllers (no I/O here): one trait per kind, one
//! outcome type per kind, and the set of providers this operator runs with.

use std::future::Future;
use std::time::Duration;

use kube::runtime::controller::Action;

use crate::api::nodepool::NodeStatus;
use crate::api::{Cluster, NodePool, Phase};
use crate::reconcile::conditions::Desired;
use crate::reconcile::env::Env;
use crate::reconcile::error::Result;

/// What a provider's reconcile adds to a Cluster's status.
#[derive(Clone, Debug, PartialEq)]
pub struct ClusterOutcome {
    /// Phase.
    pub phase: Phase,
    /// The Ready condition.
    pub ready: Desired,
    /// API endpoint, once known.
    pub endpoint: Option<String>,
    /// Name of the kubeconfig Secret, once written.
    pub kubeconfig_secret_name: Option<String>,
    /// The Kubernetes (or RKE2) version the control plane runs.
    pub version: Option<String>,
    /// When to look again.
    pub requeue: Option<Duration>,
}

impl ClusterOutcome {
    /// An outcome with only a phase, a Ready condition and a time to look again.
    pub fn of(phase: Phase, ready: Desired, requeue: Option<Duration>) -> Self {
        Self {
            phase,
            ready,
            endpoint: None,
            kubeconfig_secret_name: None,
            version: None,
            requeue,
        }
    }
}

/// What a provider's reconcile adds to a NodePool's status.
#[derive(Clone, Debug, PartialEq)]
pub struct PoolOutcome {
    /// Conditions (Ready, and for some providers Degraded).
    pub conditions: Vec<Desired>,
    /// Per-node progress.
    pub nodes: Vec<NodeStatus>,
    /// Nodes ready.
    pub ready: i32,
    /// The version every node converged on, once they all have.
    pub version: Option<String>,
    /// Address of this pool's host that bootstrapped the cluster, once its install began.
    pub bootstrap: Option<String>,
    /// When to look again.
    pub requeue: Option<Duration>,
}

/// A provider of control planes: drives a validated, live, unpaused Cluster and cleans up
/// behind its finalizer.
pub trait ClusterProvider {
    /// Bring the control plane towards the spec; `None` leaves status to validation alone.
    fn reconcile(
        &self,
        env: &Env,
        cluster: &Cluster,
    ) -> impl Future<Output = Result<Option<ClusterOutcome>>> + Send;

    /// Release what the Cluster owns outside Kubernetes; `None` when the provider has nothing
    /// to say (the controller's own rule applies).
    fn cleanup(
        &self,
        env: &Env,
        cluster: &Cluster,
    ) -> impl Future<Output = Result<Option<Action>>> + Send;
}

/// A provider of nodes: drives a validated, live, unpaused NodePool of an existing Cluster and
/// removes its nodes behind its finalizer.
pub trait PoolProvider {
    /// Bring the pool's nodes towards the spec; `siblings` are the Cluster's other pools.
    fn reconcile(
        &self,
        env: &Env,
        pool: &NodePool,
        cluster: &Cluster,
        siblings: &[NodePool],
    ) -> impl Future<Output = Result<Option<PoolOutcome>>> + Send;

    /// Remove the pool's nodes; `None` when the provider has nothing to say.
    fn cleanup(
        &self,
        env: &Env,
        pool: &NodePool,
    ) -> impl Future<Output = Result<Option<Action>>> + Send;
}

/// The providers this operator was started with.
#[derive(Clone, Default)]
pub struct Providers {
    /// EKS, when built in (feature `eks`) and enabled (an AWS region or endpoint was given).
    #[cfg(feature = "eks")]
    pub eks: Option<super::eks::Eks>,
    /// RKE2 over SSH, when enabled.
    pub rke2: Option<super::rke2::Rke2>,
}

/// The provider an object names, as this operator can run it.
pub enum Selected<'a> {
    /// EKS.
    #[cfg(feature = "eks")]
    Eks(&'a super::eks::Eks),
    /// RKE2 over SSH.
    Rke2(&'a super::rke2::Rke2),
    /// Named, but not built into this operator or not enabled; validation says so in status.
    Unavailable(&'a str),
    /// The spec names no provider (or more than one); validation says so in status.
    Unnamed,
}

impl Providers {
    /// The provider named `provider` (`eks`, `rke2`), if this operator runs it.
    pub fn select<'a>(&'a self, provider: Option<&'a str>) -> Selected<'a> {
        match provider {
            None => Selected::Unnamed,
            #[cfg(feature = "eks")]
            Some("eks") => self
                .eks
                .as_ref()
                .map_or(Selected::Unavailable("eks"), Selected::Eks),
            Some("rke2") => self
                .rke2
                .as_ref()
                .map_or(Selected::Unavailable("rke2"), Selected::Rke2),
            Some(other) => Selected::Unavailable(other),
        }
    }

    /// Whether the named provider (`eks` or `rke2`) is available.
    pub fn has(&self, provider: &str) -> bool {
        !matches!(
            self.select(Some(provider)),
            Selected::Unavailable(_) | Selected::Unnamed
        )
    }
}
