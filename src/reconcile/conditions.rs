//! Condition types, reasons and the helper that keeps `lastTransitionTime` honest (no I/O).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

/// Condition types mk8 writes.
pub mod types {
    /// The object is fully reconciled and usable.
    pub const READY: &str = "Ready";
    /// The spec passed semantic validation.
    pub const VALID: &str = "Valid";
    /// The object is paused (`spec.paused`); nothing is changed.
    pub const PAUSED: &str = "Paused";
    /// A NodePool's Cluster exists and runs on the matching provider.
    pub const CLUSTER_FOUND: &str = "ClusterFound";
    /// A Stack's dependency graph resolved into waves.
    pub const DEPENDENCIES_RESOLVED: &str = "DependenciesResolved";
    /// Some of a Stack's Applications are still being created, synced or removed.
    pub const PROGRESSING: &str = "Progressing";
    /// Some of a Stack's Applications are Degraded or failed to sync.
    pub const DEGRADED: &str = "Degraded";
}

/// Reasons, `CamelCase`, one per distinct situation a person may need to act on.
pub mod reasons {
    /// Semantic validation passed.
    pub const SPEC_VALID: &str = "SpecValid";
    /// The spec is invalid in a way admission could not catch.
    pub const INVALID_SPEC: &str = "InvalidSpec";
    /// A referenced Secret does not exist or lacks a key.
    pub const SECRET_MISSING: &str = "SecretMissing";
    /// A referenced Secret holds a value mk8 cannot use (such as a malformed known_hosts).
    pub const SECRET_INVALID: &str = "SecretInvalid";
    /// The provider needed is not part of this operator build.
    pub const PROVIDER_UNAVAILABLE: &str = "ProviderUnavailable";
    /// The NodePool names a Cluster that does not exist.
    pub const CLUSTER_NOT_FOUND: &str = "ClusterNotFound";
    /// The NodePool's kind does not match its Cluster's provider.
    pub const PROVIDER_MISMATCH: &str = "ProviderMismatch";
    /// The Cluster a NodePool belongs to was found and matches.
    pub const CLUSTER_MATCHES: &str = "ClusterMatches";
    /// A Stack's `dependsOn` names a component that does not exist.
    pub const UNKNOWN_DEPENDENCY: &str = "UnknownDependency";
    /// A Stack's dependencies form a cycle.
    pub const DEPENDENCY_CYCLE: &str = "DependencyCycle";
    /// The dependency graph was ordered into waves.
    pub const WAVES_PLANNED: &str = "WavesPlanned";
    /// Delivering a Stack through ArgoCD is not part of this operator build.
    pub const DELIVERY_UNAVAILABLE: &str = "DeliveryUnavailable";
    /// The ArgoCD Application API is not served by the management cluster.
    pub const ARGOCD_UNAVAILABLE: &str = "ArgoCDUnavailable";
    /// The Stack names an ArgoCD namespace the operator does not deliver to.
    pub const ARGOCD_NAMESPACE_MISMATCH: &str = "ArgoCDNamespaceMismatch";
    /// A Stack's selector matches no ClusterProfile.
    pub const NO_CLUSTER_SELECTED: &str = "NoClusterSelected";
    /// Every Application of a Stack is Synced and Healthy.
    pub const DELIVERED: &str = "Delivered";
    /// Applications are being created or synced.
    pub const APPLICATIONS_PROGRESSING: &str = "ApplicationsProgressing";
    /// Components wait for a dependency to become Ready on their cluster.
    pub const WAITING_FOR_DEPENDENCY: &str = "WaitingForDependency";
    /// An Application is Degraded or its sync failed.
    pub const COMPONENT_DEGRADED: &str = "ComponentDegraded";
    /// No Application is Degraded.
    pub const ALL_HEALTHY: &str = "AllHealthy";
    /// Applications of removed components or clusters are being deleted, highest wave first.
    pub const REMOVING_APPLICATIONS: &str = "RemovingApplications";
    /// Nothing is in progress.
    pub const STABLE: &str = "Stable";
    /// The ClusterProfile API is not installed on the management cluster.
    pub const CLUSTER_INVENTORY_MISSING: &str = "ClusterInventoryMissing";
    /// Every selected cluster answered the view's query.
    pub const QUERY_COMPLETE: &str = "QueryComplete";
    /// Some selected clusters answered, others failed (named in the message).
    pub const PARTIAL_RESULTS: &str = "PartialResults";
    /// No selected cluster answered.
    pub const NO_CLUSTER_ANSWERED: &str = "NoClusterAnswered";
    /// The view's selection matches no ClusterProfile.
    pub const NO_CLUSTERS_SELECTED: &str = "NoClustersSelected";
    /// `spec.paused` is true.
    pub const PAUSED: &str = "Paused";
    /// A Stack's rollout stopped at a Degraded cluster.
    pub const ROLLOUT_PAUSED: &str = "RolloutPaused";
    /// `spec.paused` is false.
    pub const NOT_PAUSED: &str = "NotPaused";
}

/// A condition as the reconciler wants it; times and generation are filled by [`set`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Desired {
    /// Condition type.
    pub type_: &'static str,
    /// `True` or `False`.
    pub status: bool,
    /// `CamelCase` reason from [`reasons`].
    pub reason: &'static str,
    /// A sentence a person can act on.
    pub message: String,
}

impl Desired {
    /// A condition that holds.
    pub fn yes(type_: &'static str, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            type_,
            status: true,
            reason,
            message: message.into(),
        }
    }

    /// A condition that does not hold.
    pub fn no(type_: &'static str, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            type_,
            status: false,
            reason,
            message: message.into(),
        }
    }
}

/// Merge `desired` into `previous`, keeping each condition's `lastTransitionTime` unless its
/// status flips, so that a status with nothing new compares equal and is not written again.
pub fn merge(
    previous: &[Condition],
    desired: &[Desired],
    generation: Option<i64>,
    now: &Time,
) -> Vec<Condition> {
    desired
        .iter()
        .map(|want| {
            let status = if want.status { "True" } else { "False" };
            let last_transition_time = previous
                .iter()
                .find(|c| c.type_ == want.type_ && c.status == status)
                .map(|c| c.last_transition_time.clone())
                .unwrap_or_else(|| now.clone());
            Condition {
                type_: want.type_.to_string(),
                status: status.to_string(),
                reason: want.reason.to_string(),
                message: want.message.clone(),
                observed_generation: generation,
                last_transition_time,
            }
        })
        .collect()
}

/// The current time as a Kubernetes timestamp.
pub fn now() -> Time {
    Time(k8s_openapi::jiff::Timestamp::now())
}

/// The condition of a type, if present.
pub fn find<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

#[cfg(test)]
mod tests {
    use super::*;
    fn at(secs: i64) -> Time {
        Time(k8s_openapi::jiff::Timestamp::from_second(secs).unwrap())
    }

    #[test]
    fn transition_time_is_kept_while_status_holds() {
        let first = merge(
            &[],
            &[Desired::no(types::READY, reasons::INVALID_SPEC, "bad")],
            Some(1),
            &at(100),
        );
        let again = merge(
            &first,
            &[Desired::no(
                types::READY,
                reasons::CLUSTER_NOT_FOUND,
                "other",
            )],
            Some(2),
            &at(200),
        );
        assert_eq!(again[0].last_transition_time, at(100));
        assert_eq!(again[0].reason, reasons::CLUSTER_NOT_FOUND);
        assert_eq!(again[0].observed_generation, Some(2));
    }

    #[test]
    fn transition_time_moves_when_status_flips() {
        let first = merge(
            &[],
            &[Desired::no(types::READY, reasons::INVALID_SPEC, "bad")],
            Some(1),
            &at(100),
        );
        let flipped = merge(
            &first,
            &[Desired::yes(types::READY, reasons::SPEC_VALID, "ok")],
            Some(1),
            &at(200),
        );
        assert_eq!(flipped[0].last_transition_time, at(200));
        assert_eq!(flipped[0].status, "True");
    }

    #[test]
    fn unchanged_desire_produces_identical_conditions() {
        let want = [Desired::yes(types::VALID, reasons::SPEC_VALID, "ok")];
        let first = merge(&[], &want, Some(3), &at(100));
        assert_eq!(merge(&first, &want, Some(3), &at(500)), first);
    }
}
