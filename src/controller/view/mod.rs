//! ClusterProfileView controller: the saved query run across the selected ClusterProfiles of the
//! view's namespace every `refreshInterval` (the fan-out of `mk8 get`), its answers bounded in
//! status.

mod rows;
mod validate;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kube::ResourceExt;
use kube::core::{Selector, SelectorExt};
use kube::runtime::controller::Action;
use serde_json::Value;

use super::conditions;
use super::context::Context;
use super::error::Result;
use super::status::{self, current_conditions};
use crate::api::{ClusterProfileView, ClusterProfileViewStatus};
use crate::fleet::access::{self, AccessError, ContextMap};
use crate::fleet::query::{self, Limits, Target};
use crate::fleet::read::{self, ApiType, ListQuery};
use crate::reconcile::duration::parse_duration;

pub use validate::validate;

/// Controller name in metrics and logs.
pub const NAME: &str = "view";

/// Clusters one view queries at once.
pub const CONCURRENCY: usize = 16;

/// Bring the status of a ClusterProfileView in line with what can be done for it.
pub async fn apply(view: Arc<ClusterProfileView>, ctx: Arc<Context>) -> Result<Action> {
    let now = conditions::now();
    let previous = view.status.clone().unwrap_or_default();
    let refresh = parse_duration(&view.spec.refresh_interval).unwrap_or(Duration::from_secs(60));
    let valid = match validate(&view, ctx.capabilities.cluster_profiles) {
        Ok(valid) => valid,
        Err(desired) => {
            let status = ClusterProfileViewStatus {
                conditions: conditions::merge(
                    current_conditions(view.as_ref()),
                    &desired,
                    view.metadata.generation,
                    &now,
                ),
                observed_generation: view.metadata.generation,
                ..previous
            };
            status::publish(&ctx, view.as_ref(), status).await?;
            return Ok(Action::await_change());
        }
    };
    // Our own status write wakes the controller: run the query again only when the spec
    // changed or the refresh interval has passed.
    if let Some(wait) = not_due(&previous, view.metadata.generation, refresh) {
        return Ok(Action::requeue(wait));
    }
    let timeout = parse_duration(&view.spec.per_cluster_timeout).unwrap_or(Duration::from_secs(10));
    let mut targets = targets(&view, &ctx).await?;
    expect_last_latencies(&previous, &mut targets);
    let api_type = api_type(&view);
    let list = ListQuery {
        namespace: Some(view.spec.namespace.clone()).filter(|n| !n.is_empty()),
        labels: view.spec.label_selector.clone(),
        fields: String::new(),
        chunk: 500,
    };
    let max_rows = usize::try_from(view.spec.max_rows).unwrap_or(500).max(1);
    let outcomes = query::fan_out(
        targets,
        Limits {
            concurrency: CONCURRENCY,
            timeout,
        },
        |client, _| {
            let (api_type, list) = (api_type.clone(), list.clone());
            async move { read::table(&client, &api_type, &list, Some(max_rows)).await }
        },
    )
    .await;
    for o in &outcomes {
        ctx.metrics.view_answer(&o.key, o.state.as_str(), o.latency);
    }
    let result = rows::build(&outcomes, max_rows);
    let status = ClusterProfileViewStatus {
        observed_at: Some(conditions::now()),
        clusters_ok: result.ok,
        clusters_failed: result.failed,
        row_count: i32::try_from(result.row_count).unwrap_or(i32::MAX),
        clusters: result.clusters,
        columns: result.columns,
        rows: result.rows,
        truncated: result.truncated,
        conditions: conditions::merge(
            current_conditions(view.as_ref()),
            &[result.ready, valid],
            view.metadata.generation,
            &now,
        ),
        observed_generation: view.metadata.generation,
    };
    status::publish(&ctx, view.as_ref(), status).await?;
    Ok(Action::requeue(refresh))
}

/// Each target's answer time of the previous run, so that the slowest start first.
fn expect_last_latencies(previous: &ClusterProfileViewStatus, targets: &mut [Target]) {
    for target in targets {
        target.expected = previous
            .clusters
            .iter()
            .find(|c| c.name == target.name)
            .and_then(|c| c.latency_ms)
            .and_then(|ms| u64::try_from(ms).ok())
            .map(Duration::from_millis);
    }
}

/// How long until the query is due, or None when it is due now.
fn not_due(
    previous: &ClusterProfileViewStatus,
    generation: Option<i64>,
    refresh: Duration,
) -> Option<Duration> {
    let observed = previous.observed_at.as_ref()?;
    if previous.observed_generation != generation {
        return None;
    }
    let age = k8s_openapi::jiff::Timestamp::now().duration_since(observed.0);
    let age = Duration::try_from(age).unwrap_or_default();
    refresh.checked_sub(age).filter(|left| !left.is_zero())
}

fn api_type(view: &ClusterProfileView) -> ApiType {
    let r = &view.spec.resource;
    ApiType {
        group: r.group.clone(),
        version: r.version.clone(),
        plural: r.resource.clone(),
        singular: String::new(),
        kind: String::new(),
        short_names: Vec::new(),
        // The all-namespaces path serves both scopes; a namespace is only sent when the view
        // names one.
        namespaced: true,
        verbs: Vec::new(),
    }
}

/// The view's ClusterProfiles (its own namespace) and how to reach each.
async fn targets(view: &ClusterProfileView, ctx: &Context) -> Result<Vec<Target>> {
    let namespace = view.namespace().unwrap_or_default();
    let profiles = crate::fleet::inventory::list(&ctx.client, Some(&namespace), None).await?;
    let selection = &view.spec.clusters;
    let selector = Selector::try_from(selection.selector.clone()).ok();
    let filter = crate::fleet::inventory::Filter {
        names: selection.names.clone(),
        exclude: selection.exclude.clone(),
        labels: Default::default(),
    };
    let selected: Vec<Value> = profiles
        .into_iter()
        .filter(|profile| {
            let labels: BTreeMap<String, String> =
                serde_json::from_value(profile["metadata"]["labels"].clone()).unwrap_or_default();
            filter.matches(profile) && selector.as_ref().is_none_or(|s| s.matches(&labels))
        })
        .collect();
    // Access is resolved for all selected profiles at once (a kubeconfig Secret read each).
    let out = futures::stream::iter(selected)
        .map(|profile| async move {
            let config = config(&profile, ctx).await;
            Target::of(&profile, config)
        })
        .buffered(CONCURRENCY)
        .collect::<Vec<_>>()
        .await;
    Ok(out)
}

/// How the operator reaches a profile's cluster: mk8's own access provider by reading the
/// kubeconfig Secret it names itself (only in the profile's namespace, so a view cannot borrow
/// another namespace's credentials), any other through `--clusterprofile-provider-file`.
async fn config(profile: &Value, ctx: &Context) -> std::result::Result<kube::Config, AccessError> {
    let offers = access::offered(profile);
    let mk8 = offers
        .iter()
        .find(|o| o["name"] == crate::fleet::MK8_PROVIDER);
    if let Some(offer) = mk8 {
        return access::from_kubeconfig_secret(&ctx.client, profile, offer).await;
    }
    match &ctx.delivery.access_providers {
        Some(file) => access::config(profile, file, &ContextMap::default(), None).await,
        None if offers.is_empty() => Err(AccessError {
            reason: "NoAccessProvider",
            message:
                "its ClusterProfile offers no access provider (status.accessProviders is empty)"
                    .into(),
        }),
        None => Err(AccessError {
            reason: "AccessProviderNotConfigured",
            message: format!(
                "its ClusterProfile offers {}, but mk8-operator has no --clusterprofile-provider-file mapping them to credential plugins",
                offers
                    .iter()
                    .filter_map(|o| o["name"].as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    #[test]
    fn the_previous_answer_times_become_the_expected_ones() {
        let previous = ClusterProfileViewStatus {
            clusters: vec![
                crate::api::view::ViewClusterStatus {
                    name: "east".into(),
                    latency_ms: Some(480),
                    ..Default::default()
                },
                crate::api::view::ViewClusterStatus {
                    name: "west".into(),
                    latency_ms: None,
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        let target = |name: &str| Target {
            key: format!("fleet/{name}"),
            name: name.into(),
            config: Ok(kube::Config::new("http://127.0.0.1:9".parse().unwrap())),
            expected: Some(Duration::from_secs(99)),
        };
        let mut targets = vec![target("east"), target("west"), target("new")];
        expect_last_latencies(&previous, &mut targets);
        let expected: Vec<_> = targets.iter().map(|t| t.expected).collect();
        assert_eq!(expected, [Some(Duration::from_millis(480)), None, None]);
    }

    #[test]
    fn the_query_runs_again_only_when_due_or_changed() {
        let ago = |secs: i64| {
            Some(Time(
                k8s_openapi::jiff::Timestamp::now()
                    - k8s_openapi::jiff::SignedDuration::from_secs(secs),
            ))
        };
        let status = |at, generation| ClusterProfileViewStatus {
            observed_at: at,
            observed_generation: generation,
            ..Default::default()
        };
        let minute = Duration::from_secs(60);
        assert!(
            not_due(&status(None, Some(1)), Some(1), minute).is_none(),
            "never ran"
        );
        let left = not_due(&status(ago(10), Some(1)), Some(1), minute).unwrap();
        assert!(
            left <= Duration::from_secs(50) && left > Duration::from_secs(45),
            "{left:?}"
        );
        assert!(
            not_due(&status(ago(10), Some(1)), Some(2), minute).is_none(),
            "spec changed"
        );
        assert!(
            not_due(&status(ago(61), Some(1)), Some(1), minute).is_none(),
            "due"
        );
    }
}
