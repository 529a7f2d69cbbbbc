//! NodePool controller: observe → validate → the pool's provider → status.
//!
//! The provider the pool and its Cluster name does the node work ([`PoolProvider`]); this file
//! only picks it and merges what it reports into the status validation derived.

mod observe;
mod validate;

use std::sync::Arc;

use kube::ResourceExt;
use kube::runtime::controller::Action;

use super::conditions;
use super::context::Context;
use super::error::{Error, Result};
use super::status::{self, current_conditions};
use crate::api::{NodePool, NodePoolStatus};
use crate::providers::{PoolOutcome, PoolProvider, Selected};

pub use observe::Observed;
pub use validate::{Verdict, validate};

/// Controller name in metrics and logs.
pub const NAME: &str = "nodepool";

/// Bring the status of a live NodePool in line with what can be done for it.
pub async fn apply(pool: Arc<NodePool>, ctx: Arc<Context>) -> Result<Action> {
    let observed = observe::observe(&pool, &ctx).await?;
    let mut verdict = validate(&pool, &observed, &ctx.providers);
    let outcome = if verdict.lets_provider_act(&pool) {
        provision(&pool, &observed, &ctx).await?
    } else {
        None
    };
    let status = build_status(&pool, &mut verdict, outcome);
    status::publish(&ctx, pool.as_ref(), status).await?;
    Ok(verdict
        .next_check
        .map(Action::requeue)
        .unwrap_or_else(Action::await_change))
}

/// The pool's provider drives its nodes (once its Cluster exists).
async fn provision(
    pool: &NodePool,
    observed: &Observed,
    ctx: &Context,
) -> Result<Option<PoolOutcome>> {
    let Some(cluster) = &observed.cluster else {
        return Ok(None);
    };
    let siblings = &observed.siblings;
    match ctx.providers.select(pool.provider()) {
        Selected::Rke2(rke2) => rke2.reconcile(ctx, pool, cluster, siblings).await,
        #[cfg(feature = "eks")]
        Selected::Eks(eks) => eks.reconcile(ctx, pool, cluster, siblings).await,
        // Not built in, not enabled, or not named: validation said so in Ready.
        Selected::Unavailable(_) | Selected::Unnamed => Ok(None),
    }
}

/// Release the pool's nodes before its finalizer goes.
pub async fn cleanup(pool: Arc<NodePool>, ctx: Arc<Context>) -> Result<Action> {
    let released = match ctx.providers.select(pool.provider()) {
        Selected::Rke2(rke2) => rke2.cleanup(&ctx, &pool).await?,
        #[cfg(feature = "eks")]
        Selected::Eks(eks) => eks.cleanup(&ctx, &pool).await?,
        Selected::Unavailable(_) | Selected::Unnamed => None,
    };
    if let Some(action) = released {
        return Ok(action);
    }
    // Nodes only exist once a provider has joined them, which it records in status.
    let joined: Vec<&str> = pool
        .status
        .iter()
        .flat_map(|s| &s.nodes)
        .map(|n| n.name.as_str())
        .collect();
    if joined.is_empty() {
        return Ok(Action::await_change());
    }
    Err(Error::CleanupBlocked(format!(
        "NodePool {} still has nodes ({}), but its provider is not available to remove them",
        pool.name_any(),
        joined.join(", ")
    )))
}

/// The status from validation and what the provider reported.
fn build_status(
    pool: &NodePool,
    verdict: &mut Verdict,
    outcome: Option<PoolOutcome>,
) -> NodePoolStatus {
    if let Some(outcome) = &outcome {
        verdict
            .conditions
            .extend(outcome.conditions.iter().cloned());
        verdict.next_check = outcome.requeue;
    }
    let previous = pool.status.clone().unwrap_or_default();
    let now = conditions::now();
    let mut status = NodePoolStatus {
        role: pool.role_name().map(str::to_string),
        desired: pool.desired_nodes(),
        conditions: conditions::merge(
            current_conditions(pool),
            &verdict.conditions,
            pool.metadata.generation,
            &now,
        ),
        observed_generation: pool.metadata.generation,
        ..previous
    };
    if let Some(outcome) = outcome {
        (status.nodes, status.ready) = (outcome.nodes, outcome.ready);
        status.version = outcome.version.or(status.version);
        status.bootstrap = status.bootstrap.or(outcome.bootstrap);
    }
    status
}
