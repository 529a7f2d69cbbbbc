//! Deleting an EKS control plane behind the Cluster's finalizer (I/O): its node groups first,
//! then the control plane, then the VPC mk8 created; never what this Cluster did not create.

use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};

use crate::api::Cluster;
use crate::providers::eks::shared::{retryable, target};
use crate::providers::eks::{AwsError, EksApi, ErrorKind, Target, plan};
use crate::reconcile::env::Env;
use crate::reconcile::error::{Error, Result};

/// Delete the node groups, then the control plane, then the VPC mk8 created.
pub async fn cleanup(driver: &dyn EksApi, env: &Env, cluster: &Cluster) -> Result<Option<Action>> {
    let target = target(env, cluster).await?;
    let name = plan::cluster_name(cluster);
    let owner = cluster.uid().unwrap_or_default();
    let Some(found) = driver
        .describe_cluster(&target, &name)
        .await
        .map_err(retryable)?
    else {
        delete_network(cluster, driver, &target).await?;
        return Ok(Some(Action::await_change()));
    };
    let what = format!("EKS cluster {name}");
    if plan::ownership_conflict(&what, &found.tags, &owner).is_some() {
        // Never delete what this Cluster did not create.
        return Ok(Some(Action::await_change()));
    }
    let groups = driver
        .list_nodegroups(&target, &name)
        .await
        .map_err(retryable)?;
    if !groups.is_empty() {
        for group in &groups {
            let state = driver
                .describe_nodegroup(&target, &name, group)
                .await
                .map_err(retryable)?;
            if state.is_some_and(|g| g.status != "DELETING") {
                driver
                    .delete_nodegroup(&target, &name, group)
                    .await
                    .map_err(retryable)?;
            }
        }
        return Err(Error::CleanupBlocked(format!(
            "deleting the node groups of {what} first: {}",
            groups.join(", ")
        )));
    }
    if found.status != "DELETING" {
        match driver.delete_cluster(&target, &name).await {
            Ok(())
            | Err(AwsError {
                kind: ErrorKind::InUse,
                ..
            }) => {}
            Err(e) => return Err(retryable(e)),
        }
        env.event(
            &cluster.object_ref(&()),
            false,
            "ControlPlaneDeleting",
            format!("DeleteCluster {name} sent"),
        )
        .await;
    }
    match driver
        .describe_cluster(&target, &name)
        .await
        .map_err(retryable)?
    {
        None => {
            delete_network(cluster, driver, &target).await?;
            Ok(Some(Action::await_change()))
        }
        Some(_) => Err(Error::CleanupBlocked(format!(
            "waiting for {what} to be deleted"
        ))),
    }
}

/// Delete the VPC mk8 created for the Cluster (`vpc.create`), once the control plane is gone.
async fn delete_network(cluster: &Cluster, driver: &dyn EksApi, target: &Target) -> Result<()> {
    if cluster
        .spec
        .eks
        .as_ref()
        .is_none_or(|e| e.vpc.create.is_none())
    {
        return Ok(());
    }
    match driver
        .delete_network(target, &cluster.uid().unwrap_or_default())
        .await
    {
        Ok(()) => Ok(()),
        Err(e) if e.kind == ErrorKind::InUse => Err(Error::CleanupBlocked(format!(
            "the VPC created for Cluster {} is still in use ({e}); retrying",
            cluster.name_any()
        ))),
        Err(e) => Err(retryable(e)),
    }
}
