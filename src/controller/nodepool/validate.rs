//! Semantic validation of a NodePool (pure): its Cluster, its hosts, its provider.

use std::collections::BTreeMap;
use std::time::Duration;

use kube::ResourceExt;

use super::observe::Observed;
use crate::api::NodePool;
use crate::controller::conditions::{Desired, reasons, types};
use crate::providers::Providers;

/// Outcome of validating a NodePool.
#[derive(Clone, Debug, PartialEq)]
pub struct Verdict {
    /// Conditions to report.
    pub conditions: Vec<Desired>,
    /// When to look again without a change to the pool itself.
    pub next_check: Option<Duration>,
}

/// How long to wait before looking again at a pool blocked on its Cluster.
const BLOCKED_RECHECK: Duration = Duration::from_secs(30);

/// Validate `pool` against its Cluster, its sibling pools and the providers at hand.
pub fn validate(pool: &NodePool, observed: &Observed, providers: &Providers) -> Verdict {
    let ns = pool.namespace().unwrap_or_default();
    let cluster_name = &pool.spec.cluster_name;
    let blocked = |type_, reason, msg: String| Verdict {
        conditions: vec![
            Desired::no(types::READY, reason, msg.clone()),
            Desired::no(type_, reason, msg),
        ],
        next_check: Some(BLOCKED_RECHECK),
    };
    let Some(cluster) = &observed.cluster else {
        return blocked(
            types::CLUSTER_FOUND,
            reasons::CLUSTER_NOT_FOUND,
            format!(
                "Cluster {ns}/{cluster_name} does not exist: create it, or fix spec.clusterName"
            ),
        );
    };
    let wanted = pool.provider().unwrap_or("none");
    let actual = cluster.provider().unwrap_or("none");
    if wanted != actual {
        let field = if pool.spec.eks.is_some() {
            "spec.eks"
        } else {
            "spec.ssh"
        };
        return blocked(
            types::CLUSTER_FOUND,
            reasons::PROVIDER_MISMATCH,
            format!(
                "{field} needs a Cluster running on {wanted}, but Cluster {cluster_name} runs on {actual}: use {} in this pool",
                if actual == "eks" {
                    "spec.eks"
                } else {
                    "spec.ssh"
                }
            ),
        );
    }
    let found = Desired::yes(
        types::CLUSTER_FOUND,
        reasons::CLUSTER_MATCHES,
        format!("Cluster {cluster_name} runs on {actual}"),
    );
    if let Some(problem) = host_problem(pool, &observed.siblings) {
        return Verdict {
            conditions: vec![
                Desired::no(types::READY, reasons::INVALID_SPEC, problem.clone()),
                Desired::no(types::VALID, reasons::INVALID_SPEC, problem),
                found,
            ],
            next_check: None,
        };
    }
    if let Some(eks) = &pool.spec.eks
        && eks.node_role_arn.is_none()
        && !eks.create_roles
    {
        let msg = "spec.eks.nodeRoleArn is required unless spec.eks.createRoles is true: name the nodes' IAM role or let mk8 create it";
        return Verdict {
            conditions: vec![
                Desired::no(types::READY, reasons::INVALID_SPEC, msg),
                Desired::no(types::VALID, reasons::INVALID_SPEC, msg),
                found,
            ],
            next_check: None,
        };
    }
    let valid = Desired::yes(types::VALID, reasons::SPEC_VALID, "the spec is valid");
    if !providers.has(actual) {
        let msg = format!(
            "the {actual} provider is not available in this build of mk8-operator: the spec was validated, no node was touched"
        );
        return Verdict {
            conditions: vec![
                Desired::no(types::READY, reasons::PROVIDER_UNAVAILABLE, msg),
                valid,
                found,
            ],
            next_check: None,
        };
    }
    // The provider's own reconciler takes over from here and owns the Ready condition.
    Verdict {
        conditions: vec![valid, found],
        next_check: None,
    }
}

/// Node names must be unique in the pool, and no host may belong to two pools of one Cluster.
fn host_problem(pool: &NodePool, siblings: &[NodePool]) -> Option<String> {
    let ssh = pool.spec.ssh.as_ref()?;
    let mut names: BTreeMap<String, usize> = BTreeMap::new();
    for (i, host) in ssh.hosts.iter().enumerate() {
        let name = node_name(host);
        if let Some(first) = names.insert(name.clone(), i) {
            return Some(format!(
                "spec.ssh.hosts[{i}] and spec.ssh.hosts[{first}] would both be node {name}: give one of them a distinct nodeName"
            ));
        }
    }
    for sibling in siblings {
        let Some(other) = &sibling.spec.ssh else {
            continue;
        };
        for (i, host) in ssh.hosts.iter().enumerate() {
            if other.hosts.iter().any(|h| h.address == host.address) {
                return Some(format!(
                    "spec.ssh.hosts[{i}] ({}) is also a host of NodePool {} of the same Cluster: a host can be in one pool only",
                    host.address,
                    sibling.name_any()
                ));
            }
        }
    }
    None
}

/// The Kubernetes node name of a host: its `nodeName`, else its address made DNS-safe.
pub fn node_name(host: &crate::api::nodepool::SshHost) -> String {
    host.node_name.clone().unwrap_or_else(|| {
        host.address
            .to_ascii_lowercase()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '-'
                }
            })
            .collect::<String>()
            .trim_matches('-')
            .to_string()
    })
}
