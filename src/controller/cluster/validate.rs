//! Semantic validation of a Cluster (pure): what admission could not check, and what blocks it.

use std::time::Duration;

use kube::ResourceExt;

use super::BLOCKED_RECHECK;
use super::observe::Observed;
use crate::api::{Cluster, Phase};
use crate::controller::conditions::{Desired, reasons, types};
use crate::providers::Providers;

/// Outcome of validating a Cluster.
#[derive(Clone, Debug, PartialEq)]
pub struct Verdict {
    /// Phase to report.
    pub phase: Phase,
    /// Conditions to report.
    pub conditions: Vec<Desired>,
    /// When to look again without a change (a Secret may appear, a provider may answer).
    pub next_check: Option<Duration>,
}

/// Keys an AWS credentials Secret must hold.
const AWS_KEYS: [&str; 2] = ["accessKeyId", "secretAccessKey"];
/// Key an SSH credentials Secret must hold.
const SSH_KEY: &str = "ssh-privatekey";

/// Validate `cluster` against what was observed and the providers at hand.
pub fn validate(cluster: &Cluster, observed: &Observed, providers: &Providers) -> Verdict {
    let paused = paused_condition(cluster.spec.paused);
    let blocked = |valid: Desired, ready: Desired| Verdict {
        phase: Phase::Pending,
        conditions: vec![ready, valid, paused.clone()],
        next_check: Some(BLOCKED_RECHECK),
    };
    let Some(provider) = cluster.provider() else {
        let msg = "exactly one of spec.eks or spec.rke2 must be set";
        return Verdict {
            phase: Phase::Pending,
            conditions: vec![
                Desired::no(types::READY, reasons::INVALID_SPEC, msg),
                Desired::no(types::VALID, reasons::INVALID_SPEC, msg),
                paused,
            ],
            next_check: None,
        };
    };
    if let Some(problem) = secret_problem(cluster, observed) {
        return blocked(
            Desired::no(types::VALID, reasons::SECRET_MISSING, problem.clone()),
            Desired::no(types::READY, reasons::SECRET_MISSING, problem),
        );
    }
    if provider == "rke2" && observed.server_pools == 0 {
        let msg = format!(
            "no NodePool with spec.ssh.role: server names Cluster {} in spec.clusterName: add one so the control plane has hosts",
            cluster.name_any()
        );
        return blocked(
            Desired::yes(types::VALID, reasons::SPEC_VALID, "the spec is valid"),
            Desired::no(types::READY, reasons::INVALID_SPEC, msg),
        );
    }
    let valid = Desired::yes(types::VALID, reasons::SPEC_VALID, "the spec is valid");
    if !providers.has(provider) {
        let msg = format!(
            "the {provider} provider is not available in this build of mk8-operator: the spec was validated, nothing was created"
        );
        return Verdict {
            phase: Phase::Pending,
            conditions: vec![
                Desired::no(types::READY, reasons::PROVIDER_UNAVAILABLE, msg),
                valid,
                paused,
            ],
            next_check: None,
        };
    }
    // The provider's own reconciler takes over from here and owns the Ready condition.
    Verdict {
        phase: Phase::Provisioning,
        conditions: vec![valid, paused],
        next_check: None,
    }
}

fn paused_condition(paused: bool) -> Desired {
    if paused {
        Desired::yes(
            types::PAUSED,
            reasons::PAUSED,
            "spec.paused is true: mk8 makes no change to this Cluster",
        )
    } else {
        Desired::no(types::PAUSED, reasons::NOT_PAUSED, "reconciling")
    }
}

fn secret_problem(cluster: &Cluster, observed: &Observed) -> Option<String> {
    let ns = cluster.namespace().unwrap_or_default();
    let (field, name, required): (&str, &str, &[&str]) =
        match (&cluster.spec.eks, &cluster.spec.rke2) {
            (Some(eks), _) => match &eks.credentials_secret_ref {
                Some(r) => ("spec.eks.credentialsSecretRef", &r.name, &AWS_KEYS),
                None => return None,
            },
            (_, Some(rke2)) => (
                "spec.rke2.sshCredentialsSecretRef",
                &rke2.ssh_credentials_secret_ref.name,
                &[SSH_KEY],
            ),
            _ => return None,
        };
    match &observed.credentials_keys {
        None => Some(format!(
            "Secret {ns}/{name} named by {field} does not exist: create it with the keys {}",
            required.join(", ")
        )),
        Some(keys) => {
            let missing: Vec<&str> = required
                .iter()
                .copied()
                .filter(|k| !keys.contains(*k))
                .collect();
            (!missing.is_empty()).then(|| {
                format!(
                    "Secret {ns}/{name} named by {field} lacks the keys {}: add them",
                    missing.join(", ")
                )
            })
        }
    }
}
