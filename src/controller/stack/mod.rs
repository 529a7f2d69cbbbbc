//! Stack controller: observe → validate (presets, dependency waves) → status.

pub mod catalog;
mod validate;
pub mod waves;

use std::sync::Arc;

use kube::Api;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, ListParams};
use kube::core::Selector;
use kube::runtime::controller::Action;

use super::conditions;
use super::context::Context;
use super::error::Result;
use super::status::{self, current_conditions};
use crate::api::{Stack, StackStatus};

pub use validate::{Selection, Verdict, dependency_graph, validate};

/// Controller name in metrics and logs.
pub const NAME: &str = "stack";

/// The sig-multicluster ClusterProfile resource.
pub fn cluster_profile_resource() -> ApiResource {
    let gvk = GroupVersionKind::gvk("multicluster.x-k8s.io", "v1alpha1", "ClusterProfile");
    ApiResource::from_gvk_with_plural(&gvk, "clusterprofiles")
}

/// Bring the status of a live Stack in line with its plan.
pub async fn apply(stack: Arc<Stack>, ctx: Arc<Context>) -> Result<Action> {
    let selection = select_clusters(&stack, &ctx).await?;
    let verdict = validate(&stack, &selection);
    let status = build_status(&stack, &verdict, &selection);
    status::publish(&ctx, stack.as_ref(), status).await?;
    Ok(Action::await_change())
}

/// Nothing outside Kubernetes exists for a Stack until delivery creates ArgoCD Applications.
pub async fn cleanup(_stack: Arc<Stack>, _ctx: Arc<Context>) -> Result<Action> {
    Ok(Action::await_change())
}

/// How many ClusterProfiles the Stack's selector matches.
async fn select_clusters(stack: &Stack, ctx: &Context) -> Result<Selection> {
    if !ctx.capabilities.cluster_profiles {
        return Ok(Selection::InventoryMissing);
    }
    let selector = match Selector::try_from(stack.spec.cluster_selector.clone()) {
        Ok(selector) => selector,
        Err(e) => return Ok(Selection::BadSelector(e.to_string())),
    };
    let api: Api<DynamicObject> = Api::all_with(ctx.client.clone(), &cluster_profile_resource());
    let profiles = api
        .list(&ListParams::default().labels_from(&selector))
        .await?;
    Ok(Selection::Selected(profiles.items.len()))
}

fn build_status(stack: &Stack, verdict: &Verdict, selection: &Selection) -> StackStatus {
    let previous = stack.status.clone().unwrap_or_default();
    let now = conditions::now();
    StackStatus {
        selected_clusters: match selection {
            Selection::Selected(n) => *n as i32,
            _ => 0,
        },
        component_count: stack.spec.components.len() as i32,
        waves: verdict.waves.clone(),
        conditions: conditions::merge(
            current_conditions(stack),
            &verdict.conditions,
            stack.metadata.generation,
            &now,
        ),
        observed_generation: stack.metadata.generation,
        ..previous
    }
}
