//! NodePool controller: observe → validate → status. Node work arrives with the provider drivers.

#[cfg(feature = "eks")]
pub mod eks;
mod observe;
mod removal;
pub mod rke2;
mod validate;

use std::sync::Arc;

use kube::ResourceExt;
use kube::runtime::controller::Action;

use super::conditions;
use super::context::Context;
use super::error::{Error, Result};
use super::status::{self, current_conditions};
use crate::api::{NodePool, NodePoolStatus};

pub use observe::Observed;
pub use validate::{Verdict, node_name, validate};

/// Controller name in metrics and logs.
pub const NAME: &str = "nodepool";

/// Bring the status of a live NodePool in line with what can be done for it.
pub async fn apply(pool: Arc<NodePool>, ctx: Arc<Context>) -> Result<Action> {
    let observed = observe::observe(&pool, &ctx).await?;
    let mut verdict = validate(&pool, &observed, &ctx.providers);
    let validated = !verdict
        .conditions
        .iter()
        .any(|c| c.type_ == conditions::types::READY);
    let work = rke2::run(&pool, &observed, &ctx, validated).await?;
    #[cfg(feature = "eks")]
    let work = eks::run(&pool, &observed, &ctx, validated, work).await?;
    if let Some(work) = &work {
        verdict.conditions.extend(work.conditions.iter().cloned());
        verdict.next_check = work.requeue;
    }
    let mut status = build_status(&pool, &verdict);
    if let Some(work) = work {
        (status.nodes, status.ready) = (work.nodes, work.ready);
        status.version = work.version.or(status.version);
        status.bootstrap = status.bootstrap.or(work.bootstrap);
    }
    status::publish(&ctx, pool.as_ref(), status).await?;
    Ok(verdict
        .next_check
        .map(Action::requeue)
        .unwrap_or_else(Action::await_change))
}

/// Release the pool's nodes before its finalizer goes.
pub async fn cleanup(pool: Arc<NodePool>, _ctx: Arc<Context>) -> Result<Action> {
    #[cfg(feature = "eks")]
    if let Some(action) = eks::cleanup(&pool, &_ctx).await? {
        return Ok(action);
    }
    if let Some(action) = rke2::cleanup(&pool, &_ctx).await? {
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

fn build_status(pool: &NodePool, verdict: &Verdict) -> NodePoolStatus {
    let previous = pool.status.clone().unwrap_or_default();
    let now = conditions::now();
    NodePoolStatus {
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
    }
}
