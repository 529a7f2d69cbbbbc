//! Stack controller: observe (ClusterProfiles, Applications) → validate → plan → write the
//! Applications that differ, delete the unwanted highest wave first → status.

pub mod access;
pub mod bundles;
pub mod catalog;
pub mod plan;
mod validate;
pub mod waves;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use kube::api::{
    ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams,
};
use kube::core::Selector;
use kube::runtime::controller::Action;
use kube::{Api, ResourceExt};
use serde_json::Value;

use super::conditions::{self, Desired, reasons, types};
use super::context::{Context, FIELD_MANAGER};
use super::error::{Error, Result};
use super::status::{self, current_conditions};
use crate::api::{Stack, StackStatus};
use plan::{Plan, Target};

pub use validate::{Selection, Verdict, dependency_graph, validate};

/// Controller name in metrics and logs.
pub const NAME: &str = "stack";

/// While Applications are on their way, look again this often even without a watch event.
const PROGRESS_RECHECK: Duration = Duration::from_secs(30);

/// The sig-multicluster ClusterProfile resource.
pub fn cluster_profile_resource() -> ApiResource {
    let gvk = GroupVersionKind::gvk("multicluster.x-k8s.io", "v1alpha1", "ClusterProfile");
    ApiResource::from_gvk_with_plural(&gvk, "clusterprofiles")
}

/// ArgoCD's Application resource.
pub fn application_resource() -> ApiResource {
    let gvk = GroupVersionKind::gvk("argoproj.io", "v1alpha1", "Application");
    ApiResource::from_gvk_with_plural(&gvk, "applications")
}

/// Bring a live Stack's Applications and status in line with its spec.
pub async fn apply(stack: Arc<Stack>, ctx: Arc<Context>) -> Result<Action> {
    // Bundles become their presets; an unknown one is left for validation to report.
    let stack = bundles::expand(&stack).map(Arc::new).unwrap_or(stack);
    let (selection, mut targets, profiles) = select_clusters(&stack, &ctx).await?;
    let verdict = validate(&stack, &selection);
    let mut desired = verdict.conditions.clone();
    let mut status = StackStatus {
        selected_clusters: targets.len() as i32,
        component_count: stack.spec.components.len() as i32,
        waves: verdict.waves.clone(),
        ..stack.status.clone().unwrap_or_default()
    };
    let deliverable = matches!(selection, Selection::Selected(_))
        && !desired.iter().any(|c| c.type_ == types::READY);
    let mut action = Action::await_change();
    if deliverable {
        if let Some(blocker) = delivery_blocker(&stack, &ctx) {
            desired.push(blocker);
        } else {
            let graph = dependency_graph(&stack);
            let registered = register_clusters(&mut targets, &profiles, &ctx).await?;
            let observed = list_applications(&stack, &ctx).await?;
            let mirror = stack
                .spec
                .chart_mirror
                .as_deref()
                .or(ctx.delivery.chart_mirror.as_deref());
            let plan = plan::plan(&stack, &verdict.waves, &graph, &targets, &observed, mirror);
            act(&stack, &plan, &ctx).await?;
            let keep: Vec<String> = targets.iter().map(|t| t.name.clone()).collect();
            release_clusters(&keep, registered, &ctx).await?;
            desired.extend(delivery_conditions(&plan, targets.len()));
            if stack.spec.rollout.is_some() {
                desired.push(rollout_condition(&plan));
            }
            status.ready_applications = plan.ready as i32;
            status.total_applications = plan.total as i32;
            status.progress = Some(format!("{}/{}", plan.ready, plan.total));
            status.clusters = plan.clusters.clone();
            if plan.ready < plan.total || plan.removing > 0 {
                action = Action::requeue(PROGRESS_RECHECK);
            }
        }
    }
    let now = conditions::now();
    status.conditions = conditions::merge(
        current_conditions(stack.as_ref()),
        &desired,
        stack.metadata.generation,
        &now,
    );
    status.observed_generation = stack.metadata.generation;
    status::publish(&ctx, stack.as_ref(), status).await?;
    Ok(action)
}

/// Delete the Stack's Applications, highest wave first on each cluster, each wave once ArgoCD
/// removed the one above it (the Application is gone); the finalizer stays until none is left.
pub async fn cleanup(stack: Arc<Stack>, ctx: Arc<Context>) -> Result<Action> {
    if !ctx.capabilities.argocd_applications || delivery_blocker(&stack, &ctx).is_some() {
        return Ok(Action::await_change());
    }
    let observed = list_applications(&stack, &ctx).await?;
    if observed.is_empty() {
        release_clusters(&[], cluster_secrets(&ctx).await?, &ctx).await?;
        return Ok(Action::await_change());
    }
    let stack = bundles::expand(&stack).map(Arc::new).unwrap_or(stack);
    let graph = dependency_graph(&stack);
    let waves = waves::plan(&graph).unwrap_or_default();
    let plan = plan::plan(&stack, &waves, &graph, &[], &observed, None);
    act(&stack, &plan, &ctx).await?;
    let mut status = stack.status.clone().unwrap_or_default();
    let message = format!(
        "the Stack is being deleted: waiting for ArgoCD to remove {} Applications, the highest wave of each cluster first",
        plan.removing
    );
    let now = conditions::now();
    status.conditions = conditions::merge(
        current_conditions(stack.as_ref()),
        &[
            Desired::no(
                types::READY,
                reasons::REMOVING_APPLICATIONS,
                message.clone(),
            ),
            Desired::yes(
                types::PROGRESSING,
                reasons::REMOVING_APPLICATIONS,
                message.clone(),
            ),
        ],
        stack.metadata.generation,
        &now,
    );
    status::publish(&ctx, stack.as_ref(), status).await?;
    Err(Error::CleanupBlocked(message))
}

/// Why Applications cannot be written at all, as the Ready condition to report.
fn delivery_blocker(stack: &Stack, ctx: &Context) -> Option<Desired> {
    if !ctx.capabilities.argocd_applications {
        return Some(Desired::no(
            types::READY,
            reasons::ARGOCD_UNAVAILABLE,
            "the ArgoCD Application API (argoproj.io/v1alpha1) is not installed on the management cluster: install ArgoCD there (or its CRDs) and restart mk8-operator",
        ));
    }
    let wanted = &stack.spec.argocd.namespace;
    let served = &ctx.delivery.argocd_namespace;
    (wanted != served).then(|| {
        Desired::no(
            types::READY,
            reasons::ARGOCD_NAMESPACE_MISMATCH,
            format!(
                "spec.argocd.namespace: {wanted:?} is not the namespace this operator delivers to ({served:?}, its --argocd-namespace); set spec.argocd.namespace to {served:?} or run the operator with --argocd-namespace={wanted}"
            ),
        )
    })
}

/// The ClusterProfiles the Stack's selector matches, as plan targets and as JSON.
async fn select_clusters(
    stack: &Stack,
    ctx: &Context,
) -> Result<(Selection, Vec<Target>, Vec<Value>)> {
    if !ctx.capabilities.cluster_profiles {
        return Ok((Selection::InventoryMissing, Vec::new(), Vec::new()));
    }
    let selector = match Selector::try_from(stack.spec.cluster_selector.clone()) {
        Ok(selector) => selector,
        Err(e) => {
            return Ok((
                Selection::BadSelector(e.to_string()),
                Vec::new(),
                Vec::new(),
            ));
        }
    };
    let api: Api<DynamicObject> = Api::all_with(ctx.client.clone(), &cluster_profile_resource());
    let mut profiles: Vec<DynamicObject> = api
        .list(&ListParams::default().labels_from(&selector))
        .await?
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .collect();
    profiles.sort_by_key(|p| p.name_any());
    profiles.dedup_by_key(|p| p.name_any());
    let targets = profiles
        .iter()
        .map(|p| Target {
            name: p.name_any(),
            labels: p.labels().clone(),
            access_problem: None,
        })
        .collect::<Vec<_>>();
    let profiles = profiles
        .into_iter()
        .map(|p| serde_json::to_value(p).map_err(Error::Serialization))
        .collect::<Result<Vec<_>>>()?;
    Ok((Selection::Selected(targets.len()), targets, profiles))
}

/// How ArgoCD reaches the cluster of `profile`: an mk8 Cluster through its stored kubeconfig,
/// any other through the operator's access-provider file.
async fn resolve_access(profile: &Value, ctx: &Context) -> Result<access::Access, String> {
    let manager = profile["spec"]["clusterManager"]["name"].as_str();
    if manager == Some(crate::api::clusterprofile::MK8_MANAGER) {
        let (namespace, name) = (
            profile["metadata"]["namespace"]
                .as_str()
                .unwrap_or_default(),
            profile["metadata"]["name"].as_str().unwrap_or_default(),
        );
        let clusters: Api<crate::api::Cluster> = Api::namespaced(ctx.client.clone(), namespace);
        let cluster = clusters
            .get_opt(name)
            .await
            .map_err(|e| format!("reading Cluster {namespace}/{name}: {e}"))?
            .ok_or_else(|| format!("its ClusterProfile names mk8 as manager, but Cluster {namespace}/{name} does not exist"))?;
        let secret_name = cluster
            .status
            .as_ref()
            .and_then(|s| s.kubeconfig_secret_name.clone())
            .ok_or_else(|| {
                format!(
                    "Cluster {namespace}/{name} has no kubeconfig yet (status.kubeconfigSecretName)"
                )
            })?;
        let kubeconfig =
            super::cluster::stored_kubeconfig(&ctx.client, namespace, &secret_name).await?;
        let access = access::from_kubeconfig(&kubeconfig)?;
        // An EKS cluster is named after its Cluster (providers::eks::plan::cluster_name).
        return Ok(match &cluster.spec.eks {
            Some(_) => access::for_eks(access, name),
            None => access,
        });
    }
    match &ctx.delivery.access_providers {
        Some(file) => access::from_provider_file(profile, file),
        None => Err(format!(
            "its ClusterProfile is managed by {}, and the operator has no --clusterprofile-provider-file to reach such clusters",
            manager.unwrap_or("an unnamed cluster manager")
        )),
    }
}

fn secrets(ctx: &Context) -> Api<k8s_openapi::api::core::v1::Secret> {
    Api::namespaced(ctx.client.clone(), &ctx.delivery.argocd_namespace)
}

/// mk8's ArgoCD cluster Secrets, by the `namespace/name` of their ClusterProfile.
async fn cluster_secrets(ctx: &Context) -> Result<BTreeMap<String, Value>> {
    let list = secrets(ctx)
        .list(&ListParams::default().labels(&format!(
            "{}=cluster,app.kubernetes.io/managed-by=mk8",
            access::SECRET_TYPE_LABEL
        )))
        .await?;
    let mut out = BTreeMap::new();
    for secret in list.items {
        if let Some(key) = secret
            .annotations()
            .get(access::PROFILE_ANNOTATION)
            .cloned()
        {
            out.insert(
                key,
                serde_json::to_value(secret).map_err(Error::Serialization)?,
            );
        }
    }
    Ok(out)
}

/// Register every reachable target with ArgoCD (written only when it differs); a target ArgoCD
/// cannot be given access to carries the reason instead. Returns the cluster Secrets found.
async fn register_clusters(
    targets: &mut [Target],
    profiles: &[Value],
    ctx: &Context,
) -> Result<BTreeMap<String, Value>> {
    let existing = cluster_secrets(ctx).await?;
    let api = secrets(ctx);
    for (target, profile) in targets.iter_mut().zip(profiles) {
        let access = match resolve_access(profile, ctx).await {
            Ok(access) => access,
            Err(problem) => {
                target.access_problem = Some(problem);
                continue;
            }
        };
        let wanted = access::cluster_secret(profile, &access, &ctx.delivery.argocd_namespace);
        let key = wanted["metadata"]["annotations"][access::PROFILE_ANNOTATION]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let same = existing.get(&key).is_some_and(|have| {
            have["data"] == wanted["data"]
                && wanted["metadata"]["labels"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .all(|(k, v)| have["metadata"]["labels"].get(k) == Some(v))
        });
        if !same {
            let name = wanted["metadata"]["name"].as_str().unwrap_or_default();
            api.patch(
                name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&wanted),
            )
            .await?;
            ctx.metrics.application_write("cluster-secret");
        }
    }
    Ok(existing)
}

/// Delete those of mk8's cluster Secrets `secrets` that no mk8 Application targets any more,
/// except the ones `keep` (this Stack's current targets) names.
async fn release_clusters(
    keep: &[String],
    secrets_found: BTreeMap<String, Value>,
    ctx: &Context,
) -> Result<()> {
    let apps = applications(ctx)
        .list(&ListParams::default().labels(plan::STACK_LABEL))
        .await?;
    let used: std::collections::BTreeSet<String> = apps
        .items
        .iter()
        .filter_map(|a| {
            a.data["spec"]["destination"]["name"]
                .as_str()
                .map(str::to_string)
        })
        .collect();
    for (key, secret) in secrets_found {
        let name = key
            .split_once('/')
            .map(|(_, n)| n)
            .unwrap_or(&key)
            .to_string();
        if used.contains(&name) || keep.contains(&name) {
            continue;
        }
        let secret_name = secret["metadata"]["name"].as_str().unwrap_or_default();
        match secrets(ctx)
            .delete(secret_name, &DeleteParams::default())
            .await
        {
            Ok(_) => ctx.metrics.application_write("cluster-secret"),
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

fn applications(ctx: &Context) -> Api<DynamicObject> {
    Api::namespaced_with(
        ctx.client.clone(),
        &ctx.delivery.argocd_namespace,
        &application_resource(),
    )
}

/// The Stack's Applications as they exist, as JSON.
async fn list_applications(stack: &Stack, ctx: &Context) -> Result<Vec<Value>> {
    let list = applications(ctx)
        .list(&ListParams::default().labels(&plan::stack_selector(stack)))
        .await?;
    // Labels are shortened to fit; the annotation names the Stack exactly.
    let key = format!(
        "{}/{}",
        stack.namespace().unwrap_or_default(),
        stack.name_any()
    );
    list.items
        .into_iter()
        .filter(|a| a.annotations().get(plan::STACK_ANNOTATION) == Some(&key))
        .map(|a| serde_json::to_value(a).map_err(Error::Serialization))
        .collect()
}

/// Write the Applications that differ (server-side apply, one field manager) and delete the
/// ones whose turn has come.
async fn act(stack: &Stack, plan: &Plan, ctx: &Context) -> Result<()> {
    let api = applications(ctx);
    let params = PatchParams::apply(FIELD_MANAGER).force();
    for app in &plan.apply {
        let name = app["metadata"]["name"].as_str().unwrap_or_default();
        api.patch(name, &params, &Patch::Apply(app)).await?;
        ctx.metrics.application_write("apply");
    }
    for name in &plan.delete {
        match api.delete(name, &DeleteParams::foreground()).await {
            Ok(_) => ctx.metrics.application_write("delete"),
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
    }
    if !plan.delete.is_empty() {
        let note = format!(
            "deleting {} Applications no longer wanted ({}); lower waves follow once ArgoCD has removed them, {} in all",
            plan.delete.len(),
            some(&plan.delete),
            plan.removing
        );
        ctx.event(
            &kube::Resource::object_ref(stack, &()),
            false,
            reasons::REMOVING_APPLICATIONS,
            note,
        )
        .await;
    }
    if !plan.apply.is_empty() || !plan.delete.is_empty() {
        tracing::info!(
            stack = %format!("{}/{}", stack.namespace().unwrap_or_default(), stack.name_any()),
            written = plan.apply.len(),
            deleted = plan.delete.len(),
            "Applications updated"
        );
    }
    Ok(())
}

/// At most this many clusters/components named in one condition message.
const NAMED: usize = 5;

fn some(items: &[String]) -> String {
    let mut text = items
        .iter()
        .take(NAMED)
        .cloned()
        .collect::<Vec<_>>()
        .join("; ");
    if items.len() > NAMED {
        text.push_str(&format!("; and {} more", items.len() - NAMED));
    }
    text
}

/// Paused while a Degraded cluster holds back a rollout.
fn rollout_condition(plan: &Plan) -> Desired {
    if plan.paused_by.is_empty() {
        return Desired::no(
            types::PAUSED,
            reasons::NOT_PAUSED,
            match plan.held.len() {
                0 => "no change waits for the rollout".to_string(),
                n => format!("{n} clusters wait their turn: {}", some(&plan.held)),
            },
        );
    }
    Desired::yes(
        types::PAUSED,
        reasons::ROLLOUT_PAUSED,
        format!(
            "the rollout is paused: {} Degraded; {} clusters wait for the change ({}); fix the Degraded cluster or revert the change",
            some(&plan.paused_by),
            plan.held.len(),
            some(&plan.held)
        ),
    )
}

/// Ready, Progressing and Degraded from the plan.
fn delivery_conditions(plan: &Plan, clusters: usize) -> Vec<Desired> {
    if clusters == 0 {
        let why = "spec.clusterSelector matches no ClusterProfile: label the ClusterProfiles of the clusters that should get this Stack, or change the selector";
        return vec![
            Desired::no(types::READY, reasons::NO_CLUSTER_SELECTED, why),
            Desired::no(types::PROGRESSING, reasons::STABLE, why),
            Desired::no(
                types::DEGRADED,
                reasons::ALL_HEALTHY,
                "no Application is Degraded",
            ),
        ];
    }
    let mut out = Vec::new();
    let counts = format!("{}/{} Applications Ready", plan.ready, plan.total);
    let per_cluster: BTreeMap<&str, usize> = plan
        .clusters
        .iter()
        .map(|c| {
            (
                c.name.as_str(),
                c.components.iter().filter(|x| x.phase != "Ready").count(),
            )
        })
        .collect();
    let pending: Vec<String> = per_cluster
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(c, n)| format!("{c}: {n} not Ready"))
        .collect();
    if plan.degraded.is_empty() {
        out.push(Desired::no(
            types::DEGRADED,
            reasons::ALL_HEALTHY,
            "no Application is Degraded",
        ));
    } else {
        let msg = format!("{counts}; Degraded: {}", some(&plan.degraded));
        out.push(Desired::yes(
            types::DEGRADED,
            reasons::COMPONENT_DEGRADED,
            msg.clone(),
        ));
        out.push(Desired::no(types::READY, reasons::COMPONENT_DEGRADED, msg));
    }
    if plan.ready == plan.total && plan.removing == 0 {
        let msg = format!("{counts} on {clusters} clusters: Synced and Healthy");
        out.push(Desired::yes(types::READY, reasons::DELIVERED, msg));
        out.push(Desired::no(
            types::PROGRESSING,
            reasons::STABLE,
            "nothing in progress",
        ));
        return out;
    }
    let held = if plan.held.is_empty() {
        String::new()
    } else {
        format!(
            "; rollout: {} clusters wait for the change",
            plan.held.len()
        )
    };
    let (reason, msg) = if plan.removing > 0 && plan.ready == plan.total {
        (
            reasons::REMOVING_APPLICATIONS,
            format!(
                "{counts}; removing {} Applications no longer wanted, highest wave first",
                plan.removing
            ),
        )
    } else if !plan.waiting.is_empty() && plan.degraded.is_empty() {
        (
            reasons::WAITING_FOR_DEPENDENCY,
            format!(
                "{counts}; {}; {}{held}",
                some(&pending),
                some(&plan.waiting)
            ),
        )
    } else {
        (
            reasons::APPLICATIONS_PROGRESSING,
            format!("{counts}; {}{held}", some(&pending)),
        )
    };
    out.push(Desired::yes(types::PROGRESSING, reason, msg.clone()));
    if plan.degraded.is_empty() {
        out.push(Desired::no(types::READY, reason, msg));
    }
    out
}
