//! Cluster controller: observe → validate → status. Provisioning arrives with the provider drivers.

#[cfg(feature = "eks")]
pub mod eks;
mod observe;
pub mod rke2;
mod validate;

use std::sync::Arc;
use std::time::Duration;

use kube::ResourceExt;
use kube::runtime::controller::Action;

use super::conditions;
use super::context::Context;
use super::error::{Error, Result};
use super::status::{self, current_conditions};
use crate::api::{Cluster, ClusterStatus, Phase};

pub use validate::{Verdict, validate};

/// Controller name in metrics and logs.
pub const NAME: &str = "cluster";

/// Bring the status of a live Cluster in line with what can be done for it.
pub async fn apply(cluster: Arc<Cluster>, ctx: Arc<Context>) -> Result<Action> {
    let observed = observe::observe(&cluster, &ctx).await?;
    let mut verdict = validate(&cluster, &observed, &ctx.providers);
    let validated = !verdict
        .conditions
        .iter()
        .any(|c| c.type_ == conditions::types::READY);
    let work = rke2::run(&cluster, &ctx, validated).await?;
    #[cfg(feature = "eks")]
    let (work, eks_version) = eks::run(&cluster, &ctx, validated, work).await?;
    if let Some(work) = &work {
        verdict.phase = work.phase;
        verdict.conditions.push(work.ready.clone());
        verdict.next_check = work.requeue;
    }
    let mut status = build_status(&cluster, &verdict);
    if let Some(work) = work {
        status.endpoint = work.endpoint.or(status.endpoint);
        status.kubeconfig_secret_name = work
            .kubeconfig_secret_name
            .or(status.kubeconfig_secret_name);
        status.kubernetes_version = work.version.or(status.kubernetes_version);
    }
    #[cfg(feature = "eks")]
    if eks_version.is_some() {
        status.kubernetes_version = eks_version;
    }
    status::publish(&ctx, cluster.as_ref(), status).await?;
    Ok(verdict
        .next_check
        .map(Action::requeue)
        .unwrap_or_else(Action::await_change))
}

/// Release what the Cluster owns outside Kubernetes before its finalizer goes.
pub async fn cleanup(cluster: Arc<Cluster>, _ctx: Arc<Context>) -> Result<Action> {
    #[cfg(feature = "eks")]
    if let Some(action) = eks::cleanup(&cluster, &_ctx).await? {
        return Ok(action);
    }
    if let Some(action) = rke2::cleanup(&cluster, &_ctx).await? {
        return Ok(action);
    }
    // Nothing outside Kubernetes exists until a provider has recorded an endpoint.
    match cluster.status.as_ref().and_then(|s| s.endpoint.as_ref()) {
        None => Ok(Action::await_change()),
        Some(endpoint) => Err(Error::CleanupBlocked(format!(
            "Cluster {} has a control plane at {endpoint}, but its provider is not available to delete it",
            cluster.name_any()
        ))),
    }
}

fn build_status(cluster: &Cluster, verdict: &Verdict) -> ClusterStatus {
    let previous = cluster.status.clone().unwrap_or_default();
    let now = conditions::now();
    ClusterStatus {
        phase: if cluster.metadata.deletion_timestamp.is_some() {
            Phase::Deleting
        } else {
            verdict.phase
        },
        provider: cluster.provider().map(str::to_string),
        conditions: conditions::merge(
            current_conditions(cluster),
            &verdict.conditions,
            cluster.metadata.generation,
            &now,
        ),
        observed_generation: cluster.metadata.generation,
        ..previous
    }
}

/// How long to wait before looking again at a Cluster blocked on something outside its spec.
pub(crate) const BLOCKED_RECHECK: Duration = Duration::from_secs(30);
