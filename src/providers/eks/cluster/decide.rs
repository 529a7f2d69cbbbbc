//! What to do next for an EKS control plane (pure): from the Cluster's spec and annotations and
//! what AWS reports of its control plane, the one step this reconcile takes ([`absent`] when
//! AWS knows no control plane, [`present`] otherwise).

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use kube::ResourceExt;

use super::reasons;
use crate::api::cluster::AccessEntry;
use crate::api::{Cluster, Phase};
use crate::providers::ClusterOutcome;
use crate::providers::eks::plan::{self, VersionStep};
use crate::providers::eks::shared::{
    self, POLL, RECHECK, create_backoff, failures, last_failure, retry_wait,
};
use crate::providers::eks::{ClusterRequest, EksCluster, NetworkRequest};
use crate::reconcile::conditions::{Desired, types};

/// Annotation on the Cluster: digest of the access entries last applied, so that they are sent
/// once per change rather than on every token refresh.
pub const ACCESS_ENTRIES_ANNOTATION: &str = "mk8.io/eks-access-entries";

/// The step a reconcile takes when AWS knows no control plane of the Cluster.
#[derive(Clone, Debug, PartialEq)]
pub enum Absent {
    /// A failed control plane was deleted and the backoff still runs: report this.
    Wait(ClusterOutcome),
    /// Create the VPC (when `network` is set, its subnets completing `request`), then the
    /// control plane.
    Create {
        /// The CreateCluster request.
        request: ClusterRequest,
        /// The VPC to create first (`vpc.create`).
        network: Option<NetworkRequest>,
    },
}

/// The step a reconcile takes for the control plane AWS reports.
#[derive(Clone, Debug, PartialEq)]
pub enum Present {
    /// Nothing to send to AWS: report this.
    Report(ClusterOutcome),
    /// Delete a FAILED control plane that never served, record the failure, create it again
    /// after `wait`.
    Recreate {
        /// Failures so far, this one included.
        failures: u32,
        /// Backoff before creating it again.
        wait: Duration,
        /// AWS's reason for the failure.
        reason: String,
    },
    /// Upgrade the ACTIVE control plane one minor, to `next`.
    Upgrade {
        /// The version to upgrade to.
        next: String,
    },
    /// The control plane is ACTIVE at the spec's version (or refuses to move): apply changed
    /// access entries, keep the kubeconfig token fresh, report Ready.
    Serve {
        /// Access entries to apply, with the digest to record once they are.
        access_entries: Option<(Vec<AccessEntry>, String)>,
        /// Why `spec.kubernetesVersion` cannot be reached, if it cannot.
        refused: Option<String>,
    },
}

/// What to do at `now` for a Cluster whose control plane AWS does not know.
pub fn absent(cluster: &Cluster, now: DateTime<Utc>) -> Absent {
    let name = plan::cluster_name(cluster);
    if let Some(wait) = retry_wait(cluster, now) {
        return Absent::Wait(ClusterOutcome::of(
            Phase::Failed,
            Desired::no(
                types::READY,
                reasons::CONTROL_PLANE_FAILED,
                format!(
                    "AWS reported EKS cluster {name} FAILED ({}); creating it again in {}s",
                    last_failure(cluster),
                    wait.as_secs()
                ),
            ),
            Some(wait),
        ));
    }
    let request = plan::cluster_request(cluster);
    let network = cluster
        .spec
        .eks
        .as_ref()
        .and_then(|e| e.vpc.create.clone())
        .map(|create| NetworkRequest {
            cidr: create.cidr,
            zones: usize::try_from(create.availability_zones).unwrap_or(2),
            tags: request.tags.clone(),
        });
    Absent::Create { request, network }
}

/// What to do for a Cluster whose control plane AWS reports as `found` (in `region`).
pub fn present(cluster: &Cluster, found: &EksCluster, region: &str) -> Present {
    let name = plan::cluster_name(cluster);
    let what = format!("EKS cluster {name} in {region}");
    let owner = cluster.uid().unwrap_or_default();
    if let Some(conflict) = plan::ownership_conflict(&what, &found.tags, &owner) {
        return Present::Report(ClusterOutcome::of(
            Phase::Failed,
            Desired::no(types::READY, shared::reasons::OWNERSHIP_CONFLICT, conflict),
            Some(RECHECK),
        ));
    }
    let report = |phase, ready, requeue| {
        Present::Report(ClusterOutcome {
            version: found.version.clone(),
            ..ClusterOutcome::of(phase, ready, requeue)
        })
    };
    match found.status.as_str() {
        "CREATING" | "PENDING" => report(
            Phase::Provisioning,
            creating(format!("{what} is {}", found.status)),
            Some(POLL),
        ),
        "UPDATING" => report(
            Phase::Upgrading,
            Desired::no(
                types::READY,
                reasons::CONTROL_PLANE_UPDATING,
                format!("{what} is UPDATING"),
            ),
            Some(POLL),
        ),
        "DELETING" => report(
            Phase::Provisioning,
            Desired::no(
                types::READY,
                reasons::CONTROL_PLANE_DELETING,
                format!("{what} is being deleted; it will be created again once gone"),
            ),
            Some(POLL),
        ),
        "FAILED" => failed(cluster, found, &what, report),
        _ => active(cluster, found),
    }
}

/// A FAILED control plane that never served (no endpoint in status) is deleted and created again
/// after a backoff; one that did serve is only reported, never deleted behind the user's back.
fn failed(
    cluster: &Cluster,
    found: &EksCluster,
    what: &str,
    report: impl Fn(Phase, Desired, Option<Duration>) -> Present,
) -> Present {
    let reason = if found.issues.is_empty() {
        "no reason given".to_string()
    } else {
        found.issues.join("; ")
    };
    let served = cluster
        .status
        .as_ref()
        .is_some_and(|s| s.endpoint.is_some());
    if served {
        return report(
            Phase::Failed,
            Desired::no(
                types::READY,
                reasons::CONTROL_PLANE_FAILED,
                format!(
                    "AWS reports {what} FAILED: {reason}; it served before, so mk8 leaves it for you to inspect (delete the Cluster to remove it)"
                ),
            ),
            Some(RECHECK),
        );
    }
    let failures = failures(cluster).saturating_add(1);
    Present::Recreate {
        failures,
        wait: create_backoff(failures),
        reason,
    }
}

fn active(cluster: &Cluster, found: &EksCluster) -> Present {
    let step = plan::version_step(
        found.version.as_deref(),
        cluster.spec.kubernetes_version.as_deref(),
    );
    match step {
        VersionStep::Upgrade(next) => Present::Upgrade { next },
        VersionStep::Refused(message) => Present::Serve {
            access_entries: access_entries(cluster),
            refused: Some(message),
        },
        _ => Present::Serve {
            access_entries: access_entries(cluster),
            refused: None,
        },
    }
}

/// The access entries to apply, unless there are none or they were applied as they are.
pub fn access_entries(cluster: &Cluster) -> Option<(Vec<AccessEntry>, String)> {
    let entries = cluster
        .spec
        .eks
        .as_ref()
        .map(|e| e.access_entries.clone())
        .unwrap_or_default();
    let digest = {
        use sha2::Digest as _;
        let mut hash = sha2::Sha256::new();
        for entry in &entries {
            hash.update(format!("{}\n{}\n", entry.principal_arn, entry.policy_arn));
        }
        hex::encode(hash.finalize())
    };
    let applied = cluster.annotations().get(ACCESS_ENTRIES_ANNOTATION) == Some(&digest);
    (!entries.is_empty() && !applied).then_some((entries, digest))
}

/// How long a kubeconfig Secret with these annotations stays fresh at `now` for `endpoint`;
/// `None`: write a new token now.
pub fn token_fresh_for(
    annotations: &BTreeMap<String, String>,
    endpoint: &str,
    now: DateTime<Utc>,
) -> Option<Duration> {
    let expires = annotations
        .get(super::TOKEN_EXPIRES_ANNOTATION)
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))?;
    if annotations
        .get(super::ENDPOINT_ANNOTATION)
        .map(String::as_str)
        != Some(endpoint)
    {
        return None;
    }
    let due = refresh_due(expires);
    (due > now).then(|| until(due, now))
}

/// When a token expiring at `expires` is to be replaced.
pub fn refresh_due(expires: DateTime<Utc>) -> DateTime<Utc> {
    expires - chrono::Duration::from_std(super::TOKEN_REFRESH_BEFORE_EXPIRY).unwrap_or_default()
}

/// Time from `now` to `due`, at least a second.
pub fn until(due: DateTime<Utc>, now: DateTime<Utc>) -> Duration {
    (due - now)
        .to_std()
        .unwrap_or(POLL)
        .max(Duration::from_secs(1))
}

/// `Ready=False` while the control plane is being created.
pub fn creating(message: String) -> Desired {
    Desired::no(types::READY, reasons::CONTROL_PLANE_CREATING, message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::tests::fixtures::cluster_eks;
    use crate::providers::eks::OWNER_TAG;

    fn found(status: &str, version: &str, owner: &str) -> EksCluster {
        EksCluster {
            name: "prod-eu".into(),
            status: status.into(),
            version: Some(version.into()),
            endpoint: Some("https://eks.example".into()),
            tags: BTreeMap::from([(OWNER_TAG.to_string(), owner.to_string())]),
            ..Default::default()
        }
    }

    fn owned() -> Cluster {
        let mut c = cluster_eks();
        c.metadata.uid = Some("uid-1".into());
        c
    }

    #[test]
    fn an_absent_control_plane_is_created_unless_a_failure_backs_off() {
        let now = Utc::now();
        assert!(matches!(absent(&owned(), now), Absent::Create { .. }));
        let mut c = owned();
        let later = (now + chrono::Duration::seconds(30)).to_rfc3339();
        c.annotations_mut()
            .insert(shared::RETRY_AFTER_ANNOTATION.into(), later);
        let Absent::Wait(outcome) = absent(&c, now) else {
            panic!("a backoff reports and sends nothing");
        };
        assert_eq!(outcome.ready.reason, reasons::CONTROL_PLANE_FAILED);
        assert_eq!(outcome.requeue, Some(Duration::from_secs(30)));
    }

    #[test]
    fn a_control_plane_of_someone_else_is_never_touched() {
        let step = present(&owned(), &found("ACTIVE", "1.33", "uid-other"), "eu-west-1");
        let Present::Report(outcome) = step else {
            panic!("a conflict only reports: {step:?}");
        };
        assert_eq!(outcome.ready.reason, shared::reasons::OWNERSHIP_CONFLICT);
        assert_eq!(outcome.version, None);
    }

    #[test]
    fn a_failed_control_plane_is_recreated_only_if_it_never_served() {
        let mut c = owned();
        let step = present(&c, &found("FAILED", "1.33", "uid-1"), "r");
        assert_eq!(
            step,
            Present::Recreate {
                failures: 1,
                wait: Duration::from_secs(5),
                reason: "no reason given".into()
            }
        );
        c.status = Some(crate::api::ClusterStatus {
            endpoint: Some("https://eks.example".into()),
            ..Default::default()
        });
        let step = present(&c, &found("FAILED", "1.33", "uid-1"), "r");
        assert!(
            matches!(step, Present::Report(ref o) if o.phase == Phase::Failed),
            "{step:?}"
        );
    }

    #[test]
    fn an_active_control_plane_serves_and_applies_new_access_entries_once() {
        let c = owned();
        let Present::Serve { access_entries, .. } =
            present(&c, &found("ACTIVE", "1.33", "uid-1"), "r")
        else {
            panic!("an ACTIVE control plane at its version serves");
        };
        let entries = c.spec.eks.as_ref().unwrap().access_entries.len();
        assert_eq!(
            access_entries.as_ref().map(|(e, _)| e.len()),
            (entries > 0).then_some(entries)
        );
        if let Some((_, digest)) = access_entries {
            let mut applied = c.clone();
            applied
                .annotations_mut()
                .insert(ACCESS_ENTRIES_ANNOTATION.into(), digest);
            assert_eq!(super::access_entries(&applied), None);
        }
    }

    #[test]
    fn a_token_is_replaced_before_it_expires_or_when_the_endpoint_moves() {
        let now = Utc::now();
        let annotations = |expires: DateTime<Utc>, endpoint: &str| {
            BTreeMap::from([
                (
                    super::super::TOKEN_EXPIRES_ANNOTATION.to_string(),
                    expires.to_rfc3339(),
                ),
                (
                    super::super::ENDPOINT_ANNOTATION.to_string(),
                    endpoint.to_string(),
                ),
            ])
        };
        let fresh = annotations(now + chrono::Duration::minutes(14), "https://a");
        let left = token_fresh_for(&fresh, "https://a", now).unwrap();
        assert!(left > Duration::from_secs(4 * 60) && left <= Duration::from_secs(5 * 60));
        assert_eq!(token_fresh_for(&fresh, "https://b", now), None);
        let stale = annotations(now + chrono::Duration::minutes(8), "https://a");
        assert_eq!(token_fresh_for(&stale, "https://a", now), None);
    }
}
