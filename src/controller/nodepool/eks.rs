//! EKS managed node group of a NodePool (I/O): create once the control plane is ACTIVE, bring
//! scaling, labels and taints in line, retry CREATE_FAILED with backoff; delete behind the finalizer.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Api, Resource, ResourceExt};

use super::observe::Observed;
use super::rke2::Work;
use crate::api::{Cluster, NodePool};
use crate::controller::cluster::eks::{POLL, retryable, target, unavailable, with_ready};
use crate::controller::conditions::{Desired, types};
use crate::controller::context::Context;
use crate::controller::error::{Error, Result};
use crate::controller::status;
use crate::providers::eks::plan;
use crate::providers::eks::{AwsError, EksNodegroup, ErrorKind};

/// Reasons of the EKS node group stage.
pub mod reasons {
    /// The Cluster's control plane is not ACTIVE yet.
    pub const WAITING_FOR_CONTROL_PLANE: &str = "WaitingForControlPlane";
    /// CreateNodegroup was sent, or the node group is still being created.
    pub const NODEGROUP_CREATING: &str = "NodegroupCreating";
    /// The node group is updating.
    pub const NODEGROUP_UPDATING: &str = "NodegroupUpdating";
    /// The node group is ACTIVE and matches the spec.
    pub const NODEGROUP_READY: &str = "NodegroupReady";
    /// AWS reports CREATE_FAILED; the node group is deleted and created again after a backoff.
    pub const NODEGROUP_CREATE_FAILED: &str = "NodegroupCreateFailed";
    /// AWS reports the node group DEGRADED or DELETE_FAILED.
    pub const NODEGROUP_UNHEALTHY: &str = "NodegroupUnhealthy";
    /// A node group of that name exists and is not ours.
    pub const OWNERSHIP_CONFLICT: &str = "OwnershipConflict";
    /// AWS refused a request as invalid or not allowed.
    pub const AWS_REQUEST_REJECTED: &str = "AwsRequestRejected";
}

/// Annotation: CreateNodegroup attempts that ended in CREATE_FAILED.
pub const ATTEMPTS_ANNOTATION: &str = "mk8.io/eks-create-failures";
/// Annotation: do not create the node group again before this time (RFC 3339).
pub const RETRY_AFTER_ANNOTATION: &str = "mk8.io/eks-retry-after";
/// Annotation: AWS's reason for the last CREATE_FAILED, shown again while waiting to retry.
pub const LAST_FAILURE_ANNOTATION: &str = "mk8.io/eks-last-failure";
/// How long to wait after changing a node group before looking again.
const AFTER_UPDATE: Duration = Duration::from_secs(5);

/// Backoff after the `failures`-th CREATE_FAILED: 5 s, doubling, at most 10 minutes.
pub fn create_backoff(failures: u32) -> Duration {
    let base = Duration::from_secs(5);
    base.saturating_mul(1u32 << failures.saturating_sub(1).min(10))
        .min(Duration::from_secs(600))
}

fn work(ready: Desired, ready_nodes: i32, requeue: Option<Duration>) -> Work {
    Work {
        conditions: vec![ready],
        nodes: Vec::new(),
        ready: ready_nodes,
        version: None,
        bootstrap: None,
        requeue,
    }
}

fn waiting(reason: &'static str, message: String) -> Work {
    work(Desired::no(types::READY, reason, message), 0, Some(POLL))
}

/// Drive the node group unless another stage already did; an AWS failure is shown in `Ready`
/// before it is retried with backoff.
pub async fn run(
    pool: &NodePool,
    observed: &Observed,
    ctx: &Context,
    validated: bool,
    done: Option<Work>,
) -> Result<Option<Work>> {
    match converge(pool, observed, ctx, validated, done).await {
        Err(e @ Error::Provider { .. }) => {
            let mut status = pool.status.clone().unwrap_or_default();
            status.role = pool.role_name().map(str::to_string);
            status.desired = pool.desired_nodes();
            status.conditions = with_ready(
                &status.conditions,
                unavailable(&e),
                pool.metadata.generation,
            );
            if let Err(publish) = status::publish(ctx, pool, status).await {
                tracing::debug!(error = %publish, "could not report the AWS failure in status");
            }
            Err(e)
        }
        other => other,
    }
}

async fn converge(
    pool: &NodePool,
    observed: &Observed,
    ctx: &Context,
    validated: bool,
    done: Option<Work>,
) -> Result<Option<Work>> {
    if done.is_some() {
        return Ok(done);
    }
    let (Some(driver), Some(spec), Some(cluster)) =
        (ctx.providers.eks.clone(), &pool.spec.eks, &observed.cluster)
    else {
        return Ok(None);
    };
    if !validated || pool.spec.paused || pool.metadata.deletion_timestamp.is_some() {
        return Ok(None);
    }
    if cluster.metadata.deletion_timestamp.is_some() {
        return Ok(Some(waiting(
            reasons::WAITING_FOR_CONTROL_PLANE,
            format!("Cluster {} is being deleted", cluster.name_any()),
        )));
    }
    let target = target(ctx, cluster).await?;
    let cluster_name = plan::cluster_name(cluster);
    let control_plane = driver
        .describe_cluster(&target, &cluster_name)
        .await
        .map_err(retryable)?;
    let owner = cluster.uid().unwrap_or_default();
    let control_plane_version = match &control_plane {
        Some(cp)
            if plan::ownership_conflict("", &cp.tags, &owner).is_none()
                && matches!(cp.status.as_str(), "ACTIVE" | "UPDATING") =>
        {
            // Nodes follow the control plane only once it finished its own upgrade.
            (cp.status == "ACTIVE")
                .then(|| cp.version.clone())
                .flatten()
        }
        other => {
            return Ok(Some(waiting(
                reasons::WAITING_FOR_CONTROL_PLANE,
                format!(
                    "waiting for EKS cluster {cluster_name} of Cluster {} to be ACTIVE (now {})",
                    cluster.name_any(),
                    other
                        .as_ref()
                        .map(|c| c.status.as_str())
                        .unwrap_or("absent")
                ),
            )));
        }
    };
    let name = plan::nodegroup_name(pool);
    let found = driver
        .describe_nodegroup(&target, &cluster_name, &name)
        .await
        .map_err(retryable)?;
    let failures: u32 = pool
        .annotations()
        .get(ATTEMPTS_ANNOTATION)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let Some(found) = found else {
        if let Some(wait) = retry_wait(pool) {
            return Ok(Some(work(
                Desired::no(
                    types::READY,
                    reasons::NODEGROUP_CREATE_FAILED,
                    format!(
                        "AWS reported node group {name} CREATE_FAILED ({}); failed {failures} time(s), creating it again in {}s",
                        pool.annotations()
                            .get(LAST_FAILURE_ANNOTATION)
                            .map(String::as_str)
                            .unwrap_or("no reason given"),
                        wait.as_secs()
                    ),
                ),
                0,
                Some(wait),
            )));
        }
        let node_role = match spec.node_role_arn.clone() {
            Some(arn) => arn,
            None => {
                let tags = plan::owner_tags(pool, &BTreeMap::new());
                match driver
                    .ensure_node_role(&target, &plan::node_role_name(pool), &tags)
                    .await
                {
                    Ok(arn) => arn,
                    Err(e) => return rejected_or_retry(e, "CreateRole (spec.eks.createRoles)"),
                }
            }
        };
        let mut request = plan::nodegroup_request(
            pool,
            cluster,
            control_plane_version.as_deref(),
            &node_role,
            failures,
        );
        if request.subnets.is_empty() {
            // The Cluster's VPC was made by mk8: nodes go to its public subnets.
            let network = driver
                .find_network(&target, &owner)
                .await
                .map_err(retryable)?;
            request.subnets = network.map(|n| n.public_subnets).unwrap_or_default();
        }
        return match driver.create_nodegroup(&target, &request).await {
            Ok(())
            | Err(AwsError {
                kind: ErrorKind::InUse,
                ..
            }) => Ok(Some(waiting(
                reasons::NODEGROUP_CREATING,
                format!(
                    "CreateNodegroup {name} on EKS cluster {cluster_name} sent; waiting for ACTIVE"
                ),
            ))),
            Err(e) => rejected_or_retry(e, "CreateNodegroup"),
        };
    };
    let what = format!("node group {name} of EKS cluster {cluster_name}");
    if let Some(conflict) =
        plan::ownership_conflict(&what, &found.tags, &pool.uid().unwrap_or_default())
    {
        return Ok(Some(work(
            Desired::no(types::READY, reasons::OWNERSHIP_CONFLICT, conflict),
            0,
            Some(Duration::from_secs(60)),
        )));
    }
    let current = found.scaling.desired;
    let step = match found.status.as_str() {
        "CREATING" => waiting(reasons::NODEGROUP_CREATING, format!("{what} is CREATING")),
        "UPDATING" => work(
            Desired::no(
                types::READY,
                reasons::NODEGROUP_UPDATING,
                format!("{what} is UPDATING"),
            ),
            current,
            Some(POLL),
        ),
        "DELETING" => waiting(
            reasons::NODEGROUP_CREATING,
            format!("{what} is being deleted; it will be created again once gone"),
        ),
        "CREATE_FAILED" => {
            return create_failed(pool, ctx, &found, &what, failures, async {
                driver
                    .delete_nodegroup(&target, &cluster_name, &name)
                    .await
                    .map_err(retryable)
            })
            .await
            .map(Some);
        }
        "DELETE_FAILED" | "DEGRADED" => work(
            Desired::no(
                types::READY,
                reasons::NODEGROUP_UNHEALTHY,
                format!("AWS reports {what} {}: {}", found.status, issues(&found)),
            ),
            current,
            Some(Duration::from_secs(60)),
        ),
        _ if behind(&found, control_plane_version.as_deref()) => {
            let target_version = control_plane_version.clone().unwrap_or_default();
            match driver
                .update_nodegroup_version(&target, &cluster_name, &name, &target_version)
                .await
            {
                Ok(())
                | Err(AwsError {
                    kind: ErrorKind::InUse,
                    ..
                }) => work(
                    Desired::no(
                        types::READY,
                        reasons::NODEGROUP_UPDATING,
                        format!(
                            "upgrading {what} from {} to {target_version}, the control plane's version",
                            found.version.as_deref().unwrap_or("?")
                        ),
                    ),
                    current,
                    Some(POLL),
                ),
                Err(e) => return rejected_or_retry(e, "UpdateNodegroupVersion"),
            }
        }
        _ => {
            let update = plan::nodegroup_update(pool, cluster, &found);
            if update.is_empty() {
                work(
                    Desired::yes(
                        types::READY,
                        reasons::NODEGROUP_READY,
                        format!("{what} is ACTIVE with {current} node(s) desired"),
                    ),
                    current,
                    None,
                )
            } else {
                match driver.update_nodegroup_config(&target, &update).await {
                    Ok(())
                    | Err(AwsError {
                        kind: ErrorKind::InUse,
                        ..
                    }) => work(
                        Desired::no(
                            types::READY,
                            reasons::NODEGROUP_UPDATING,
                            format!("UpdateNodegroupConfig sent for {what}"),
                        ),
                        current,
                        Some(AFTER_UPDATE),
                    ),
                    Err(e) => return rejected_or_retry(e, "UpdateNodegroupConfig"),
                }
            }
        }
    };
    Ok(Some(step))
}

/// Whether the nodes run an older minor than the (ACTIVE) control plane.
fn behind(found: &EksNodegroup, control_plane: Option<&str>) -> bool {
    match (found.version.as_deref(), control_plane) {
        (Some(nodes), Some(cp)) => plan::is_older(nodes, cp),
        _ => false,
    }
}

fn issues(found: &EksNodegroup) -> String {
    if found.issues.is_empty() {
        "no reason given".into()
    } else {
        found.issues.join("; ")
    }
}

/// Time left before the node group may be created again, if any.
pub fn retry_wait<K: ResourceExt>(obj: &K) -> Option<Duration> {
    let after = obj.annotations().get(RETRY_AFTER_ANNOTATION)?;
    let after = DateTime::parse_from_rfc3339(after)
        .ok()?
        .with_timezone(&Utc);
    (after - Utc::now()).to_std().ok().filter(|d| !d.is_zero())
}

/// Record the failure, delete the failed node group and come back after the backoff.
async fn create_failed(
    pool: &NodePool,
    ctx: &Context,
    found: &EksNodegroup,
    what: &str,
    failures: u32,
    delete: impl Future<Output = Result<()>>,
) -> Result<Work> {
    let failures = failures.saturating_add(1);
    let wait = create_backoff(failures);
    let retry_after = Utc::now() + chrono::Duration::from_std(wait).unwrap_or_default();
    let message = format!(
        "AWS reports {what} CREATE_FAILED: {}; deleted it, creating it again in {}s (failure {failures})",
        issues(found),
        wait.as_secs()
    );
    delete.await?;
    let patch = serde_json::json!({"metadata": {"annotations": BTreeMap::from([
        (ATTEMPTS_ANNOTATION, failures.to_string()),
        (RETRY_AFTER_ANNOTATION, retry_after.to_rfc3339()),
        (LAST_FAILURE_ANNOTATION, issues(found)),
    ])}});
    Api::<NodePool>::namespaced(ctx.client.clone(), &pool.namespace().unwrap_or_default())
        .patch(
            &pool.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await?;
    ctx.event(
        &pool.object_ref(&()),
        true,
        reasons::NODEGROUP_CREATE_FAILED,
        message.clone(),
    )
    .await;
    Ok(work(
        Desired::no(types::READY, reasons::NODEGROUP_CREATE_FAILED, message),
        0,
        Some(wait),
    ))
}

fn rejected_or_retry(e: AwsError, call: &str) -> Result<Option<Work>> {
    match e.kind {
        ErrorKind::Invalid => Ok(Some(work(
            Desired::no(
                types::READY,
                reasons::AWS_REQUEST_REJECTED,
                format!("AWS rejected {call}: {e}"),
            ),
            0,
            Some(Duration::from_secs(60)),
        ))),
        _ => Err(retryable(e)),
    }
}

/// Delete the IAM role mk8 created for the pool's nodes, if it did.
async fn delete_created_role(
    pool: &NodePool,
    driver: &dyn crate::providers::EksApi,
    target: &crate::providers::eks::Target,
) -> Result<()> {
    let created = pool
        .spec
        .eks
        .as_ref()
        .is_some_and(|e| e.create_roles && e.node_role_arn.is_none());
    if created {
        driver
            .delete_node_role(
                target,
                &plan::node_role_name(pool),
                &pool.uid().unwrap_or_default(),
            )
            .await
            .map_err(retryable)?;
    }
    Ok(())
}

/// Delete the node group (then the node role mk8 created); `None` when this stage does not apply.
pub async fn cleanup(pool: &NodePool, ctx: &Context) -> Result<Option<Action>> {
    let (Some(driver), Some(_)) = (ctx.providers.eks.clone(), &pool.spec.eks) else {
        return Ok(None);
    };
    let ns = pool.namespace().unwrap_or_default();
    let Some(cluster) = Api::<Cluster>::namespaced(ctx.client.clone(), &ns)
        .get_opt(&pool.spec.cluster_name)
        .await?
    else {
        // Without its Cluster there is no region or identity; the Cluster's own cleanup removed
        // every node group of its control plane.
        return Ok(Some(Action::await_change()));
    };
    let target = target(ctx, &cluster).await?;
    let cluster_name = plan::cluster_name(&cluster);
    let name = plan::nodegroup_name(pool);
    let Some(found) = driver
        .describe_nodegroup(&target, &cluster_name, &name)
        .await
        .map_err(retryable)?
    else {
        delete_created_role(pool, driver.as_ref(), &target).await?;
        return Ok(Some(Action::await_change()));
    };
    if plan::ownership_conflict("", &found.tags, &pool.uid().unwrap_or_default()).is_some() {
        return Ok(Some(Action::await_change()));
    }
    if found.status != "DELETING" {
        driver
            .delete_nodegroup(&target, &cluster_name, &name)
            .await
            .map_err(retryable)?;
    }
    match driver
        .describe_nodegroup(&target, &cluster_name, &name)
        .await
        .map_err(retryable)?
    {
        None => {
            delete_created_role(pool, driver.as_ref(), &target).await?;
            Ok(Some(Action::await_change()))
        }
        Some(_) => Err(Error::CleanupBlocked(format!(
            "waiting for node group {name} of EKS cluster {cluster_name} to be deleted"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_failures_back_off_from_five_seconds_to_ten_minutes() {
        assert_eq!(create_backoff(1), Duration::from_secs(5));
        assert_eq!(create_backoff(2), Duration::from_secs(10));
        assert_eq!(create_backoff(4), Duration::from_secs(40));
        assert_eq!(create_backoff(30), Duration::from_secs(600));
    }

    #[test]
    fn the_retry_waits_only_while_its_time_is_ahead() {
        let mut pool = NodePool::new("p", Default::default());
        assert_eq!(retry_wait(&pool), None);
        let ahead = (Utc::now() + chrono::Duration::seconds(30)).to_rfc3339();
        pool.annotations_mut()
            .insert(RETRY_AFTER_ANNOTATION.into(), ahead);
        let wait = retry_wait(&pool).unwrap();
        assert!(
            wait > Duration::from_secs(25) && wait <= Duration::from_secs(30),
            "{wait:?}"
        );
        let past = (Utc::now() - chrono::Duration::seconds(1)).to_rfc3339();
        pool.annotations_mut()
            .insert(RETRY_AFTER_ANNOTATION.into(), past);
        assert_eq!(retry_wait(&pool), None);
    }
}
