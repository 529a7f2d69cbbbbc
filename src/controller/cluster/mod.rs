//! Cluster controller: observe → validate → the Cluster's provider → status.
//!
//! The provider named by the spec does the provisioning ([`ClusterProvider`]); this file only
//! picks it and merges what it reports into the status validation derived.

mod observe;
pub mod profile;
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
use crate::providers::{ClusterOutcome, ClusterProvider, Selected};

pub use validate::{Verdict, validate};

/// Controller name in metrics and logs.
pub const NAME: &str = "cluster";

/// Bring the status of a live Cluster in line with what can be done for it.
pub async fn apply(cluster: Arc<Cluster>, ctx: Arc<Context>) -> Result<Action> {
    let observed = observe::observe(&cluster, &ctx).await?;
    let mut verdict = validate(&cluster, &observed, &ctx.providers);
    let outcome = if verdict.lets_provider_act(&cluster) {
        provision(&cluster, &ctx).await?
    } else {
        None
    };
    let status = build_status(&cluster, &mut verdict, outcome);
    let mut published = (*cluster).clone();
    published.status = Some(status.clone());
    status::publish(&ctx, cluster.as_ref(), status).await?;
    profile::publish(&published, &ctx).await?;
    Ok(verdict
        .next_check
        .map(Action::requeue)
        .unwrap_or_else(Action::await_change))
}

/// The Cluster's provider drives its control plane.
async fn provision(cluster: &Cluster, ctx: &Context) -> Result<Option<ClusterOutcome>> {
    match ctx.providers.select(cluster.provider()) {
        Selected::Rke2(rke2) => rke2.reconcile(ctx, cluster).await,
        #[cfg(feature = "eks")]
        Selected::Eks(eks) => eks.reconcile(ctx, cluster).await,
        // Not built in, not enabled, or not named: validation said so in Ready.
        Selected::Unavailable(_) | Selected::Unnamed => Ok(None),
    }
}

/// Release what the Cluster owns outside Kubernetes before its finalizer goes.
pub async fn cleanup(cluster: Arc<Cluster>, ctx: Arc<Context>) -> Result<Action> {
    let released = match ctx.providers.select(cluster.provider()) {
        Selected::Rke2(rke2) => rke2.cleanup(&ctx, &cluster).await?,
        #[cfg(feature = "eks")]
        Selected::Eks(eks) => eks.cleanup(&ctx, &cluster).await?,
        Selected::Unavailable(_) | Selected::Unnamed => None,
    };
    if let Some(action) = released {
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

/// The status from validation and what the provider reported (which owns Ready once it acts).
fn build_status(
    cluster: &Cluster,
    verdict: &mut Verdict,
    outcome: Option<ClusterOutcome>,
) -> ClusterStatus {
    if let Some(outcome) = &outcome {
        verdict.phase = outcome.phase;
        verdict.conditions.push(outcome.ready.clone());
        verdict.next_check = outcome.requeue;
    }
    let previous = cluster.status.clone().unwrap_or_default();
    let now = conditions::now();
    let mut status = ClusterStatus {
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
    };
    if let Some(outcome) = outcome {
        status.endpoint = outcome.endpoint.or(status.endpoint);
        status.kubeconfig_secret_name = outcome
            .kubeconfig_secret_name
            .or(status.kubeconfig_secret_name);
        status.kubernetes_version = outcome.version.or(status.kubernetes_version);
    }
    status
}

/// The kubeconfig mk8 keeps for a Cluster: key `value` of its Secret `secret_name`.
pub async fn stored_kubeconfig(
    client: &kube::Client,
    namespace: &str,
    secret_name: &str,
) -> std::result::Result<String, String> {
    let secrets: kube::Api<k8s_openapi::api::core::v1::Secret> =
        kube::Api::namespaced(client.clone(), namespace);
    let secret = secrets
        .get_opt(secret_name)
        .await
        .map_err(|e| format!("reading Secret {namespace}/{secret_name}: {e}"))?
        .ok_or_else(|| format!("the kubeconfig Secret {namespace}/{secret_name} does not exist"))?;
    crate::providers::rke2::access::secret_value(&secret, "value")
        .ok_or_else(|| format!("the kubeconfig Secret {namespace}/{secret_name} has no key value"))
}

/// How long to wait before looking again at a Cluster blocked on something outside its spec.
pub(crate) const BLOCKED_RECHECK: Duration = Duration::from_secs(30);
