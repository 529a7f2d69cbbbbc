//! Semantic validation of a Cluster (pure): what admission could not check, and what blocks it.

use std::time::Duration;

use kube::ResourceExt;

use super::BLOCKED_RECHECK;
use super::observe::Observed;
use crate::api::{Cluster, Phase};
use crate::controller::conditions::{Desired, reasons, types};
use crate::providers::Providers;
use crate::providers::rke2::config::MANAGED_KEYS;
use crate::providers::ssh::check_known_hosts;

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
/// Longest Cluster name: it is the value of the `mk8.io/cluster` label on the Cluster's
/// Secrets (label values have at most 63 characters) and the EKS cluster name.
pub const MAX_NAME: usize = 63;

impl Verdict {
    /// Whether the provider takes over: validation left `Ready` to it (the spec is valid and
    /// nothing blocks it), and the Cluster is neither paused nor being deleted.
    pub fn lets_provider_act(&self, cluster: &Cluster) -> bool {
        let validated = !self.conditions.iter().any(|c| c.type_ == types::READY);
        validated && !cluster.spec.paused && cluster.metadata.deletion_timestamp.is_none()
    }
}

/// Validate `cluster` against what was observed and the providers at hand.
pub fn validate(cluster: &Cluster, observed: &Observed, providers: &Providers) -> Verdict {
    let paused = paused_condition(cluster.spec.paused);
    let blocked = |valid: Desired, ready: Desired| Verdict {
        phase: Phase::Pending,
        conditions: vec![ready, valid, paused.clone()],
        next_check: Some(BLOCKED_RECHECK),
    };
    let name = cluster.name_any();
    if name.len() > MAX_NAME {
        let msg = format!(
            "metadata.name is {} characters long, but a Cluster name can have at most {MAX_NAME} (it becomes the value of the mk8.io/cluster label and the EKS cluster name): create the Cluster again under a shorter name",
            name.len()
        );
        return Verdict {
            phase: Phase::Pending,
            conditions: vec![
                Desired::no(types::READY, reasons::INVALID_SPEC, msg.clone()),
                Desired::no(types::VALID, reasons::INVALID_SPEC, msg),
                paused,
            ],
            next_check: None,
        };
    }
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
    if let Some(problem) = managed_config_key(cluster) {
        return Verdict {
            phase: Phase::Pending,
            conditions: vec![
                Desired::no(types::READY, reasons::INVALID_SPEC, problem.clone()),
                Desired::no(types::VALID, reasons::INVALID_SPEC, problem),
                paused,
            ],
            next_check: None,
        };
    }
    if let Some(problem) = secret_problem(cluster, observed) {
        return blocked(
            Desired::no(types::VALID, reasons::SECRET_MISSING, problem.clone()),
            Desired::no(types::READY, reasons::SECRET_MISSING, problem),
        );
    }
    if let Some(problem) = known_hosts_problem(cluster, observed) {
        return blocked(
            Desired::no(types::VALID, reasons::SECRET_INVALID, problem.clone()),
            Desired::no(types::READY, reasons::SECRET_INVALID, problem),
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
            "the {provider} provider is not available in this mk8-operator (not built in, or for eks not enabled: start it with --aws-region or --aws-endpoint-url): the spec was validated, nothing was created"
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

/// A key of `spec.rke2.config` that mk8 writes itself: it would be ignored, so say where the
/// setting belongs instead.
fn managed_config_key(cluster: &Cluster) -> Option<String> {
    let config = cluster.spec.rke2.as_ref()?.config.as_ref()?;
    let key = MANAGED_KEYS.iter().find(|k| config.contains_key(**k))?;
    let instead = match *key {
        "token" => "mk8 generates the join token and keeps it in the Secret <cluster>-rke2-token",
        "server" => {
            "nodes register through spec.rke2.registrationAddress (default: the first server)"
        }
        "tls-san" => "list the names in spec.rke2.tlsSan",
        "node-name" => "set spec.ssh.hosts[].nodeName in the NodePool",
        "node-label" => "set labels in the NodePool (spec.ssh.labels or spec.ssh.hosts[].labels)",
        "node-taint" => "set taints in the NodePool (spec.ssh.taints)",
        _ => "choose the CNI with spec.rke2.cni",
    };
    Some(format!(
        "spec.rke2.config.{key}: mk8 writes this key of config.yaml itself, so it would be ignored; remove it from spec.rke2.config: {instead}"
    ))
}

/// A known_hosts in the SSH credentials Secret that OpenSSH could not read: its bad lines
/// would be skipped, and the hosts they name refused as unknown at first contact.
fn known_hosts_problem(cluster: &Cluster, observed: &Observed) -> Option<String> {
    let rke2 = cluster.spec.rke2.as_ref()?;
    let problem = check_known_hosts(observed.known_hosts.as_deref()?).err()?;
    Some(format!(
        "Secret {}/{} named by spec.rke2.sshCredentialsSecretRef: its known_hosts is malformed: {problem}; fix that line or remove it",
        cluster.namespace().unwrap_or_default(),
        rke2.ssh_credentials_secret_ref.name
    ))
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
                    "Secret {ns}/{name} named by {field} lacks the keys {} (or holds them empty): add them",
                    missing.join(", ")
                )
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::api::tests::fixtures::{cluster_eks as eks, cluster_rke2 as rke2};
    use crate::controller::conditions::Desired;

    fn keys(names: &[&str]) -> Option<BTreeSet<String>> {
        Some(names.iter().map(|s| s.to_string()).collect())
    }

    fn ready(v: &Verdict) -> &Desired {
        v.conditions
            .iter()
            .find(|c| c.type_ == types::READY)
            .expect("a Ready condition")
    }

    #[test]
    fn missing_credentials_secret_names_field_secret_and_keys() {
        let v = validate(&eks(), &Observed::default(), &Providers::default());
        assert_eq!(ready(&v).reason, reasons::SECRET_MISSING);
        assert_eq!(
            ready(&v).message,
            "Secret fleet/aws-credentials named by spec.eks.credentialsSecretRef does not exist: create it with the keys accessKeyId, secretAccessKey"
        );
        assert_eq!(
            v.next_check,
            Some(BLOCKED_RECHECK),
            "a Secret may appear: look again"
        );
    }

    #[test]
    fn secret_lacking_a_key_says_which() {
        let observed = Observed {
            credentials_keys: keys(&["accessKeyId"]),
            server_pools: 0,
            ..Default::default()
        };
        let v = validate(&eks(), &observed, &Providers::default());
        assert!(
            ready(&v)
                .message
                .ends_with("lacks the keys secretAccessKey (or holds them empty): add them"),
            "{}",
            ready(&v).message
        );
    }

    #[test]
    fn rke2_cluster_without_server_pool_is_blocked() {
        let observed = Observed {
            credentials_keys: keys(&["ssh-privatekey"]),
            server_pools: 0,
            ..Default::default()
        };
        let v = validate(&rke2(), &observed, &Providers::default());
        assert_eq!(ready(&v).reason, reasons::INVALID_SPEC);
        assert!(
            ready(&v)
                .message
                .contains("no NodePool with spec.ssh.role: server names Cluster edge")
        );
    }

    #[test]
    fn valid_cluster_without_its_provider_says_nothing_was_created() {
        let observed = Observed {
            credentials_keys: keys(&["accessKeyId", "secretAccessKey"]),
            server_pools: 0,
            ..Default::default()
        };
        let v = validate(&eks(), &observed, &Providers::default());
        assert_eq!(ready(&v).reason, reasons::PROVIDER_UNAVAILABLE);
        assert!(
            ready(&v)
                .message
                .contains("the eks provider is not available")
        );
        assert!(
            v.conditions
                .iter()
                .any(|c| c.type_ == types::VALID && c.status)
        );
        assert_eq!(v.phase, Phase::Pending);
    }

    #[test]
    fn a_name_too_long_for_a_label_value_is_refused_before_anything_is_made() {
        let observed = Observed {
            credentials_keys: keys(&["ssh-privatekey"]),
            server_pools: 1,
            ..Default::default()
        };
        let mut c = rke2();
        c.metadata.name = Some("e".repeat(MAX_NAME));
        assert_ne!(
            ready_reason(&validate(&c, &observed, &Providers::default())),
            Some(reasons::INVALID_SPEC)
        );
        c.metadata.name = Some("e".repeat(MAX_NAME + 1));
        let v = validate(&c, &observed, &Providers::default());
        assert_eq!(ready(&v).reason, reasons::INVALID_SPEC);
        assert!(
            ready(&v).message.starts_with(
                "metadata.name is 64 characters long, but a Cluster name can have at most 63"
            ),
            "{}",
            ready(&v).message
        );
        assert!(!v.lets_provider_act(&c));
    }

    #[test]
    fn a_malformed_known_hosts_names_the_secret_and_the_line() {
        let mut observed = Observed {
            credentials_keys: keys(&["ssh-privatekey", "known_hosts"]),
            server_pools: 1,
            known_hosts: Some(
                "10.0.0.11 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIw+jBvrLRkBQR9sJyZExcSU2rXYQ1ZUYkOJOphjbnEY\n10.0.0.12\n".into(),
            ),
        };
        let v = validate(&rke2(), &observed, &Providers::default());
        assert_eq!(ready(&v).reason, reasons::SECRET_INVALID);
        assert!(
            ready(&v).message.starts_with(
                "Secret fleet/fleet-ssh named by spec.rke2.sshCredentialsSecretRef: its known_hosts is malformed: line 2 is not"
            ),
            "{}",
            ready(&v).message
        );
        assert!(ready(&v).message.ends_with("fix that line or remove it"));
        assert_eq!(v.next_check, Some(BLOCKED_RECHECK));
        observed.known_hosts = Some(String::new());
        assert_ne!(
            ready_reason(&validate(&rke2(), &observed, &Providers::default())),
            Some(reasons::SECRET_INVALID)
        );
    }

    #[test]
    fn a_config_key_mk8_writes_itself_is_refused_with_where_it_belongs() {
        let observed = Observed {
            credentials_keys: keys(&["ssh-privatekey"]),
            server_pools: 1,
            ..Default::default()
        };
        let mut c = rke2();
        let config: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(r#"{"write-kubeconfig-mode": "0644", "cni": "cilium"}"#).unwrap();
        c.spec.rke2.as_mut().unwrap().config = Some(config);
        let v = validate(&c, &observed, &Providers::default());
        assert_eq!(ready(&v).reason, reasons::INVALID_SPEC);
        assert_eq!(
            ready(&v).message,
            "spec.rke2.config.cni: mk8 writes this key of config.yaml itself, so it would be ignored; remove it from spec.rke2.config: choose the CNI with spec.rke2.cni"
        );
        c.spec
            .rke2
            .as_mut()
            .unwrap()
            .config
            .as_mut()
            .unwrap()
            .remove("cni");
        assert_ne!(
            ready_reason(&validate(&c, &observed, &Providers::default())),
            Some(reasons::INVALID_SPEC)
        );
    }

    fn ready_reason(v: &Verdict) -> Option<&'static str> {
        v.conditions
            .iter()
            .find(|c| c.type_ == types::READY)
            .map(|c| c.reason)
    }

    #[test]
    fn paused_is_reported() {
        let mut c = rke2();
        c.spec.paused = true;
        let observed = Observed {
            credentials_keys: keys(&["ssh-privatekey"]),
            server_pools: 1,
            ..Default::default()
        };
        let v = validate(&c, &observed, &Providers::default());
        assert!(
            v.conditions
                .iter()
                .any(|d| d.type_ == types::PAUSED && d.status)
        );
    }
}
