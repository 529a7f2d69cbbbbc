//! What to do next for an EKS managed node group (pure): from the NodePool's spec and
//! annotations, its Cluster's control plane and the node group AWS reports, the one step this
//! reconcile takes.

use std::time::Duration;

use chrono::{DateTime, Utc};
use kube::ResourceExt;

use super::{AFTER_UPDATE, outcome, reasons, waiting};
use crate::api::{Cluster, NodePool};
use crate::providers::PoolOutcome;
use crate::providers::eks::plan;
use crate::providers::eks::shared::{
    self, POLL, RECHECK, create_backoff, failures, last_failure, retry_wait,
};
use crate::providers::eks::{EksCluster, EksNodegroup, NodegroupConfigUpdate};
use crate::reconcile::conditions::{Desired, types};

/// The version nodes may run: the control plane's once it is ACTIVE (`None` while it finishes
/// its own upgrade); `Err` with what to report while there is no usable control plane.
pub fn control_plane(
    cluster: &Cluster,
    found: Option<&EksCluster>,
) -> Result<Option<String>, PoolOutcome> {
    let owner = cluster.uid().unwrap_or_default();
    match found {
        Some(cp)
            if plan::ownership_conflict("", &cp.tags, &owner).is_none()
                && matches!(cp.status.as_str(), "ACTIVE" | "UPDATING") =>
        {
            // Nodes follow the control plane only once it finished its own upgrade.
            Ok((cp.status == "ACTIVE")
                .then(|| cp.version.clone())
                .flatten())
        }
        other => Err(waiting(
            reasons::WAITING_FOR_CONTROL_PLANE,
            format!(
                "waiting for EKS cluster {} of Cluster {} to be ACTIVE (now {})",
                plan::cluster_name(cluster),
                cluster.name_any(),
                other.map(|c| c.status.as_str()).unwrap_or("absent")
            ),
        )),
    }
}

/// How the node group gets its IAM role.
#[derive(Clone, Debug, PartialEq)]
pub enum NodeRole {
    /// `spec.eks.nodeRoleArn`.
    Given(String),
    /// The role mk8 creates (`spec.eks.createRoles`).
    Created,
}

/// The step a reconcile takes for a node group AWS does not know.
#[derive(Clone, Debug, PartialEq)]
pub enum Absent {
    /// A failed node group was deleted and the backoff still runs: report this.
    Wait(PoolOutcome),
    /// Create the node group (the role first, when mk8 makes it).
    Create {
        /// Where its role comes from.
        role: NodeRole,
        /// Failed creates so far (they vary the request token).
        failures: u32,
    },
}

/// The step a reconcile takes for the node group AWS reports.
#[derive(Clone, Debug, PartialEq)]
pub enum Present {
    /// Nothing to send to AWS: report this.
    Report(PoolOutcome),
    /// Delete a CREATE_FAILED node group, record the failure, create it again after `wait`.
    Recreate {
        /// Failures so far, this one included.
        failures: u32,
        /// Backoff before creating it again.
        wait: Duration,
        /// What to report (and publish as an Event).
        message: String,
        /// AWS's reason for the failure.
        reason: String,
    },
    /// Upgrade the nodes to the control plane's version.
    Upgrade {
        /// The control plane's version.
        to: String,
        /// What to report once the call is sent.
        message: String,
        /// Nodes desired now.
        current: i32,
    },
    /// Bring scaling, labels and taints in line.
    Update {
        /// The UpdateNodegroupConfig request.
        update: NodegroupConfigUpdate,
        /// What to report once the call is sent.
        message: String,
        /// Nodes desired now.
        current: i32,
    },
}

/// What to do at `now` for a pool whose node group AWS does not know.
pub fn absent(pool: &NodePool, now: DateTime<Utc>) -> Absent {
    let failures = failures(pool);
    if let Some(wait) = retry_wait(pool, now) {
        return Absent::Wait(outcome(
            Desired::no(
                types::READY,
                reasons::NODEGROUP_CREATE_FAILED,
                format!(
                    "AWS reported node group {} CREATE_FAILED ({}); failed {failures} time(s), creating it again in {}s",
                    plan::nodegroup_name(pool),
                    last_failure(pool),
                    wait.as_secs()
                ),
            ),
            0,
            Some(wait),
        ));
    }
    let role = match pool.spec.eks.as_ref().and_then(|e| e.node_role_arn.clone()) {
        Some(arn) => NodeRole::Given(arn),
        None => NodeRole::Created,
    };
    Absent::Create { role, failures }
}

/// What to do for a pool whose node group AWS reports as `found`; `control_plane` is the
/// version nodes may run.
pub fn present(
    pool: &NodePool,
    cluster: &Cluster,
    found: &EksNodegroup,
    control_plane: Option<&str>,
) -> Present {
    let what = format!(
        "node group {} of EKS cluster {}",
        plan::nodegroup_name(pool),
        plan::cluster_name(cluster)
    );
    if let Some(conflict) =
        plan::ownership_conflict(&what, &found.tags, &pool.uid().unwrap_or_default())
    {
        return Present::Report(outcome(
            Desired::no(types::READY, shared::reasons::OWNERSHIP_CONFLICT, conflict),
            0,
            Some(RECHECK),
        ));
    }
    let current = found.scaling.desired;
    let report = |reason, message, requeue| {
        Present::Report(outcome(
            Desired::no(types::READY, reason, message),
            current,
            requeue,
        ))
    };
    match found.status.as_str() {
        "CREATING" => Present::Report(waiting(
            reasons::NODEGROUP_CREATING,
            format!("{what} is CREATING"),
        )),
        "UPDATING" => report(
            reasons::NODEGROUP_UPDATING,
            format!("{what} is UPDATING"),
            Some(POLL),
        ),
        "DELETING" => Present::Report(waiting(
            reasons::NODEGROUP_CREATING,
            format!("{what} is being deleted; it will be created again once gone"),
        )),
        "CREATE_FAILED" => {
            let failures = failures(pool).saturating_add(1);
            let wait = create_backoff(failures);
            Present::Recreate {
                failures,
                wait,
                message: format!(
                    "AWS reports {what} CREATE_FAILED: {}; deleted it, creating it again in {}s (failure {failures})",
                    issues(found),
                    wait.as_secs()
                ),
                reason: issues(found),
            }
        }
        "DELETE_FAILED" | "DEGRADED" => report(
            reasons::NODEGROUP_UNHEALTHY,
            format!("AWS reports {what} {}: {}", found.status, issues(found)),
            Some(RECHECK),
        ),
        _ if behind(found, control_plane) => {
            let to = control_plane.unwrap_or_default().to_string();
            Present::Upgrade {
                message: format!(
                    "upgrading {what} from {} to {to}, the control plane's version",
                    found.version.as_deref().unwrap_or("?")
                ),
                to,
                current,
            }
        }
        _ => {
            let update = plan::nodegroup_update(pool, cluster, found);
            if update.is_empty() {
                Present::Report(outcome(
                    Desired::yes(
                        types::READY,
                        reasons::NODEGROUP_READY,
                        format!("{what} is ACTIVE with {current} node(s) desired"),
                    ),
                    current,
                    None,
                ))
            } else {
                Present::Update {
                    update,
                    message: format!("UpdateNodegroupConfig sent for {what}"),
                    current,
                }
            }
        }
    }
}

/// What to report once an Upgrade or Update was sent.
pub fn sent(message: String, current: i32, upgrade: bool) -> PoolOutcome {
    outcome(
        Desired::no(types::READY, reasons::NODEGROUP_UPDATING, message),
        current,
        Some(if upgrade { POLL } else { AFTER_UPDATE }),
    )
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::api::tests::fixtures::cluster_eks;
    use crate::providers::eks::{NodegroupScaling, OWNER_TAG};

    fn pool() -> NodePool {
        let mut p: NodePool = serde_yaml::from_str(
            "apiVersion: mk8.io/v1alpha1\nkind: NodePool\nmetadata: {name: workers, namespace: fleet, uid: uid-pool}\nspec:\n  clusterName: prod-eu\n  eks: {instanceTypes: [m6i.large], scaling: {min: 1, max: 5, desired: 3}}\n",
        )
        .unwrap();
        p.metadata.generation = Some(1);
        p
    }

    fn group(status: &str, version: &str) -> EksNodegroup {
        EksNodegroup {
            name: "workers".into(),
            status: status.into(),
            version: Some(version.into()),
            scaling: NodegroupScaling {
                min: 1,
                max: 5,
                desired: 3,
            },
            tags: BTreeMap::from([(OWNER_TAG.to_string(), "uid-pool".to_string())]),
            ..Default::default()
        }
    }

    #[test]
    fn nodes_wait_for_an_active_control_plane_of_their_cluster() {
        let mut cluster = cluster_eks();
        cluster.metadata.uid = Some("uid-c".into());
        let waiting = control_plane(&cluster, None).unwrap_err();
        assert_eq!(
            waiting.conditions[0].reason,
            reasons::WAITING_FOR_CONTROL_PLANE
        );
        assert!(waiting.conditions[0].message.ends_with("(now absent)"));
        let cp = |status: &str| EksCluster {
            status: status.into(),
            version: Some("1.33".into()),
            tags: BTreeMap::from([(OWNER_TAG.to_string(), "uid-c".to_string())]),
            ..Default::default()
        };
        assert_eq!(
            control_plane(&cluster, Some(&cp("ACTIVE"))),
            Ok(Some("1.33".into()))
        );
        assert_eq!(control_plane(&cluster, Some(&cp("UPDATING"))), Ok(None));
        assert!(control_plane(&cluster, Some(&cp("CREATING"))).is_err());
    }

    #[test]
    fn a_create_failed_group_is_recreated_after_a_growing_backoff() {
        let mut p = pool();
        p.annotations_mut()
            .insert(shared::ATTEMPTS_ANNOTATION.into(), "2".into());
        let step = present(&p, &cluster_eks(), &group("CREATE_FAILED", "1.33"), None);
        let Present::Recreate { failures, wait, .. } = step else {
            panic!("CREATE_FAILED is recreated: {step:?}");
        };
        assert_eq!((failures, wait), (3, Duration::from_secs(20)));
    }

    #[test]
    fn nodes_behind_the_control_plane_are_upgraded() {
        let step = present(
            &pool(),
            &cluster_eks(),
            &group("ACTIVE", "1.32"),
            Some("1.33"),
        );
        assert!(
            matches!(step, Present::Upgrade { ref to, current: 3, .. } if to == "1.33"),
            "{step:?}"
        );
    }

    #[test]
    fn an_absent_group_is_created_with_the_role_the_spec_names_or_one_mk8_makes() {
        assert_eq!(
            absent(&pool(), Utc::now()),
            Absent::Create {
                role: NodeRole::Created,
                failures: 0
            }
        );
    }
}
