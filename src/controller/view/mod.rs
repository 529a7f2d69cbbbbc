//! ClusterProfileView controller: validate the saved query → status. Fan-out reads arrive later.

mod validate;

use std::sync::Arc;

use kube::runtime::controller::Action;

use super::conditions;
use super::context::Context;
use super::error::Result;
use super::status::{self, current_conditions};
use crate::api::{ClusterProfileView, ClusterProfileViewStatus};

pub use validate::validate;

/// Controller name in metrics and logs.
pub const NAME: &str = "view";

/// Bring the status of a ClusterProfileView in line with what can be done for it.
pub async fn apply(view: Arc<ClusterProfileView>, ctx: Arc<Context>) -> Result<Action> {
    let desired = validate(&view, ctx.capabilities.cluster_profiles);
    let now = conditions::now();
    let status = ClusterProfileViewStatus {
        conditions: conditions::merge(
            current_conditions(view.as_ref()),
            &desired,
            view.metadata.generation,
            &now,
        ),
        observed_generation: view.metadata.generation,
        ..view.status.clone().unwrap_or_default()
    };
    status::publish(&ctx, view.as_ref(), status).await?;
    Ok(Action::await_change())
}
