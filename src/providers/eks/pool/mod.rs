//! EKS managed node group of a NodePool: observe the control plane and the node group (I/O),
//! [`decide`] the step (pure), act on it (I/O): create once the control plane is ACTIVE, bring
//! scaling, labels and taints in line, retry CREATE_FAILED with backoff; delete behind the
//! finalizer.

pub mod decide;

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::Utc;
use kube::runtime::controller::Action;
use kube::{Api, Resource, ResourceExt};

use crate::api::{Cluster, NodePool};
use crate::providers::PoolOutcome;
use crate::providers::eks::shared::{
    POLL, RECHECK, annotate, done_or_in_use, failure_annotations, rejected, retryable, target,
    unavailable, with_ready,
};
use crate::providers::eks::{AwsError, EksApi, Target, plan};
use crate::reconcile::conditions::{Desired, types};
use crate::reconcile::env::Env;
use crate::reconcile::error::{Error, Result};
use crate::reconcile::status;
use decide::{Absent, NodeRole, Present};

/// Reasons of the EKS node group stage.
pub mod reasons {
    pub use crate::providers::eks::shared::reasons::*;

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
}

/// How long to wait after changing a node group before looking again.
const AFTER_UPDATE: Duration = Duration::from_secs(5);

/// A pool outcome of an EKS node group: one Ready condition and a count of nodes.
fn outcome(ready: Desired, ready_nodes: i32, requeue: Option<Duration>) -> PoolOutcome {
    PoolOutcome {
        conditions: vec![ready],
        nodes: Vec::new(),
        ready: ready_nodes,
        version: None,
        bootstrap: None,
        requeue,
    }
}

fn waiting(reason: &'static str, message: String) -> PoolOutcome {
    outcome(Desired::no(types::READY, reason, message), 0, Some(POLL))
}

/// Drive the node group; an AWS failure is shown in `Ready` before it is retried with backoff.
pub async fn reconcile(
    driver: &dyn EksApi,
    env: &Env,
    pool: &NodePool,
    cluster: &Cluster,
) -> Result<Option<PoolOutcome>> {
    match converge(driver, env, pool, cluster).await {
        Err(e @ Error::Provider { .. }) => {
            let mut status = pool.status.clone().unwrap_or_default();
            status.role = pool.role_name().map(str::to_string);
            status.desired = pool.desired_nodes();
            status.conditions = with_ready(
                &status.conditions,
                unavailable(&e),
                pool.metadata.generation,
            );
            if let Err(publish) = status::publish(env, pool, status).await {
                tracing::debug!(error = %publish, "could not report the AWS failure in status");
            }
            Err(e)
        }
        other => other.map(Some),
    }
}

/// Observe, decide, act.
async fn converge(
    driver: &dyn EksApi,
    env: &Env,
    pool: &NodePool,
    cluster: &Cluster,
) -> Result<PoolOutcome> {
    if cluster.metadata.deletion_timestamp.is_some() {
        return Ok(waiting(
            reasons::WAITING_FOR_CONTROL_PLANE,
            format!("Cluster {} is being deleted", cluster.name_any()),
        ));
    }
    let target = target(env, cluster).await?;
    let cluster_name = plan::cluster_name(cluster);
    let found = driver
        .describe_cluster(&target, &cluster_name)
        .await
        .map_err(retryable)?;
    let control_plane = match decide::control_plane(cluster, found.as_ref()) {
        Ok(version) => version,
        Err(waiting) => return Ok(waiting),
    };
    let name = plan::nodegroup_name(pool);
    let found = driver
        .describe_nodegroup(&target, &cluster_name, &name)
        .await
        .map_err(retryable)?;
    let act = Act {
        driver,
        env,
        pool,
        target: &target,
        cluster_name: &cluster_name,
        name: &name,
    };
    let Some(found) = found else {
        return match decide::absent(pool, Utc::now()) {
            Absent::Wait(outcome) => Ok(outcome),
            Absent::Create { role, failures } => {
                act.create(cluster, control_plane.as_deref(), role, failures)
                    .await
            }
        };
    };
    match decide::present(pool, cluster, &found, control_plane.as_deref()) {
        Present::Report(outcome) => Ok(outcome),
        Present::Recreate {
            failures,
            wait,
            message,
            reason,
        } => act.recreate(failures, wait, message, reason).await,
        Present::Upgrade {
            to,
            message,
            current,
        } => {
            let sent = driver
                .update_nodegroup_version(&target, &cluster_name, &name, &to)
                .await;
            match done_or_in_use(sent) {
                Ok(()) => Ok(decide::sent(message, current, true)),
                Err(e) => rejected_outcome(e, "UpdateNodegroupVersion"),
            }
        }
        Present::Update {
            update,
            message,
            current,
        } => match done_or_in_use(driver.update_nodegroup_config(&target, &update).await) {
            Ok(()) => Ok(decide::sent(message, current, false)),
            Err(e) => rejected_outcome(e, "UpdateNodegroupConfig"),
        },
    }
}

/// The acting stage: the steps that take more than one call.
struct Act<'a> {
    driver: &'a dyn EksApi,
    env: &'a Env,
    pool: &'a NodePool,
    target: &'a Target,
    cluster_name: &'a str,
    name: &'a str,
}

impl Act<'_> {
    /// The node role when mk8 makes it, the subnets of the VPC mk8 made when the spec names
    /// none, then CreateNodegroup.
    async fn create(
        &self,
        cluster: &Cluster,
        control_plane: Option<&str>,
        role: NodeRole,
        failures: u32,
    ) -> Result<PoolOutcome> {
        let (driver, target, pool) = (self.driver, self.target, self.pool);
        let node_role = match role {
            NodeRole::Given(arn) => arn,
            NodeRole::Created => {
                let tags = plan::owner_tags(pool, &BTreeMap::new());
                match driver
                    .ensure_node_role(target, &plan::node_role_name(pool), &tags)
                    .await
                {
                    Ok(arn) => arn,
                    Err(e) => return rejected_outcome(e, "CreateRole (spec.eks.createRoles)"),
                }
            }
        };
        let mut request =
            plan::nodegroup_request(pool, cluster, control_plane, &node_role, failures);
        if request.subnets.is_empty() {
            // The Cluster's VPC was made by mk8: nodes go to its public subnets.
            let network = driver
                .find_network(target, &cluster.uid().unwrap_or_default())
                .await
                .map_err(retryable)?;
            request.subnets = network.map(|n| n.public_subnets).unwrap_or_default();
        }
        match done_or_in_use(driver.create_nodegroup(target, &request).await) {
            Ok(()) => Ok(waiting(
                reasons::NODEGROUP_CREATING,
                format!(
                    "CreateNodegroup {} on EKS cluster {} sent; waiting for ACTIVE",
                    self.name, self.cluster_name
                ),
            )),
            Err(e) => rejected_outcome(e, "CreateNodegroup"),
        }
    }

    /// Delete the failed node group, record the failure and come back after the backoff.
    async fn recreate(
        &self,
        failures: u32,
        wait: Duration,
        message: String,
        reason: String,
    ) -> Result<PoolOutcome> {
        let patch = failure_annotations(failures, wait, &reason, Utc::now());
        self.driver
            .delete_nodegroup(self.target, self.cluster_name, self.name)
            .await
            .map_err(retryable)?;
        let pool = self.pool;
        annotate(self.env, pool, &patch).await?;
        self.env
            .event(
                &pool.object_ref(&()),
                true,
                reasons::NODEGROUP_CREATE_FAILED,
                message.clone(),
            )
            .await;
        Ok(outcome(
            Desired::no(types::READY, reasons::NODEGROUP_CREATE_FAILED, message),
            0,
            Some(wait),
        ))
    }
}

/// An invalid request is reported (looked at again later); others are retried.
fn rejected_outcome(e: AwsError, call: &str) -> Result<PoolOutcome> {
    rejected(e, call).map(|ready| outcome(ready, 0, Some(RECHECK)))
}

/// Delete the IAM role mk8 created for the pool's nodes, if it did.
async fn delete_created_role(pool: &NodePool, driver: &dyn EksApi, target: &Target) -> Result<()> {
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

/// Delete the node group (then the node role mk8 created).
pub async fn cleanup(driver: &dyn EksApi, env: &Env, pool: &NodePool) -> Result<Option<Action>> {
    let ns = pool.namespace().unwrap_or_default();
    let Some(cluster) = Api::<Cluster>::namespaced(env.client.clone(), &ns)
        .get_opt(&pool.spec.cluster_name)
        .await?
    else {
        // Without its Cluster there is no region or identity; the Cluster's own cleanup removed
        // every node group of its control plane.
        return Ok(Some(Action::await_change()));
    };
    let target = target(env, &cluster).await?;
    let cluster_name = plan::cluster_name(&cluster);
    let name = plan::nodegroup_name(pool);
    let Some(found) = driver
        .describe_nodegroup(&target, &cluster_name, &name)
        .await
        .map_err(retryable)?
    else {
        delete_created_role(pool, driver, &target).await?;
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
            delete_created_role(pool, driver, &target).await?;
            Ok(Some(Action::await_change()))
        }
        Some(_) => Err(Error::CleanupBlocked(format!(
            "waiting for node group {name} of EKS cluster {cluster_name} to be deleted"
        ))),
    }
}
