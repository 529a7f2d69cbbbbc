//! Semantic validation of a NodePool (pure): its Cluster, its hosts, its provider.

use std::collections::BTreeMap;
use std::time::Duration;

use kube::ResourceExt;

use super::observe::Observed;
use crate::api::NodePool;
use crate::api::nodepool::{Taint, node_name};
use crate::controller::conditions::{Desired, reasons, types};
use crate::providers::Providers;
use crate::selector::{valid_label_key, valid_label_value};

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

impl Verdict {
    /// Whether the provider takes over: validation left `Ready` to it (the spec is valid and
    /// nothing blocks it), and the NodePool is neither paused nor being deleted.
    pub fn lets_provider_act(&self, pool: &NodePool) -> bool {
        let validated = !self.conditions.iter().any(|c| c.type_ == types::READY);
        validated && !pool.spec.paused && pool.metadata.deletion_timestamp.is_none()
    }
}

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
    if let Some(problem) = host_problem(pool, &observed.siblings).or_else(|| label_problem(pool)) {
        return Verdict {
            conditions: vec![
                Desired::no(types::READY, reasons::INVALID_SPEC, problem.clone()),
                Desired::no(types::VALID, reasons::INVALID_SPEC, problem),
                found,
            ],
            next_check: None,
        };
    }
    let name = pool.name_any();
    if pool.spec.eks.is_some() && name.len() > MAX_NODEGROUP_NAME {
        let msg = format!(
            "metadata.name is {} characters long, but it names the EKS node group, which has at most {MAX_NODEGROUP_NAME}: create the NodePool again under a shorter name",
            name.len()
        );
        return Verdict {
            conditions: vec![
                Desired::no(types::READY, reasons::INVALID_SPEC, msg.clone()),
                Desired::no(types::VALID, reasons::INVALID_SPEC, msg),
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
            "the {actual} provider is not available in this mk8-operator (not built in, or for eks not enabled: start it with --aws-region or --aws-endpoint-url): the spec was validated, no node was touched"
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

const LABEL_RULES: &str =
    "at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit";

/// Labels and taints become node labels and taints: keys and values must be Kubernetes'.
fn label_problem(pool: &NodePool) -> Option<String> {
    let mut labels: Vec<(String, &BTreeMap<String, String>)> = Vec::new();
    let mut taints: Vec<(String, &[Taint])> = Vec::new();
    if let Some(ssh) = &pool.spec.ssh {
        labels.push(("spec.ssh.labels".into(), &ssh.labels));
        for (i, host) in ssh.hosts.iter().enumerate() {
            labels.push((format!("spec.ssh.hosts[{i}].labels"), &host.labels));
        }
        taints.push(("spec.ssh.taints".into(), &ssh.taints));
    }
    if let Some(eks) = &pool.spec.eks {
        labels.push(("spec.eks.labels".into(), &eks.labels));
        taints.push(("spec.eks.taints".into(), &eks.taints));
    }
    let bad_key = |field: &str, key: &str| {
        format!(
            "{field}: {key:?} is not a valid label key (an optional DNS name and '/', then {LABEL_RULES}): rename it"
        )
    };
    for (field, map) in labels {
        for (key, value) in map {
            if !valid_label_key(key) {
                return Some(bad_key(&field, key));
            }
            if !valid_label_value(value) {
                return Some(format!(
                    "{field}.{key}: {value:?} is not a valid label value ({LABEL_RULES}, or empty): change it"
                ));
            }
        }
    }
    for (field, list) in taints {
        for (i, taint) in list.iter().enumerate() {
            if !valid_label_key(&taint.key) {
                return Some(bad_key(&format!("{field}[{i}].key"), &taint.key));
            }
            if let Some(value) = taint.value.as_deref().filter(|v| !valid_label_value(v)) {
                return Some(format!(
                    "{field}[{i}].value: {value:?} is not a valid taint value ({LABEL_RULES}, or empty): change it"
                ));
            }
        }
    }
    None
}

/// Longest node name mk8 gives a host (a DNS label, as RKE2's node-name needs).
const MAX_NODE_NAME: usize = 63;
/// Longest EKS managed node group name (the NodePool's name).
const MAX_NODEGROUP_NAME: usize = 63;

/// Node names must be unique in the pool, and no host may belong to two pools of one Cluster.
fn host_problem(pool: &NodePool, siblings: &[NodePool]) -> Option<String> {
    let ssh = pool.spec.ssh.as_ref()?;
    let mut names: BTreeMap<String, usize> = BTreeMap::new();
    for (i, host) in ssh.hosts.iter().enumerate() {
        let name = node_name(host);
        if host.node_name.is_none() && name.len() > MAX_NODE_NAME {
            return Some(format!(
                "spec.ssh.hosts[{i}]: the node name derived from the address {} would be {} characters, but a node name has at most {MAX_NODE_NAME}: set spec.ssh.hosts[{i}].nodeName",
                host.address,
                name.len()
            ));
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::tests::fixtures::{cluster_eks as eks_cluster, cluster_rke2 as rke2_cluster};

    fn pool(yaml: &str) -> NodePool {
        serde_yaml::from_str(yaml).expect("fixture parses")
    }

    fn agents() -> NodePool {
        pool(
            r#"
apiVersion: mk8.io/v1alpha1
kind: NodePool
metadata: {name: agents, namespace: fleet}
spec:
  clusterName: edge
  ssh:
    role: agent
    hosts: [{address: 10.0.0.21}, {address: 10.0.0.22}]
"#,
        )
    }

    fn ready(v: &Verdict) -> &Desired {
        v.conditions
            .iter()
            .find(|c| c.type_ == types::READY)
            .expect("a Ready condition")
    }

    #[test]
    fn missing_cluster_is_named() {
        let v = validate(&agents(), &Observed::default(), &Providers::default());
        assert_eq!(ready(&v).reason, reasons::CLUSTER_NOT_FOUND);
        assert_eq!(
            ready(&v).message,
            "Cluster fleet/edge does not exist: create it, or fix spec.clusterName"
        );
    }

    #[test]
    fn ssh_pool_on_an_eks_cluster_is_a_mismatch() {
        let observed = Observed {
            cluster: Some(eks_cluster()),
            siblings: vec![],
        };
        let v = validate(&agents(), &observed, &Providers::default());
        assert_eq!(ready(&v).reason, reasons::PROVIDER_MISMATCH);
        assert_eq!(
            ready(&v).message,
            "spec.ssh needs a Cluster running on rke2, but Cluster edge runs on eks: use spec.eks in this pool"
        );
    }

    #[test]
    fn two_hosts_with_one_node_name_are_refused() {
        let mut p = agents();
        let hosts = &mut p.spec.ssh.as_mut().unwrap().hosts;
        hosts[1].node_name = Some("10-0-0-21".into());
        let observed = Observed {
            cluster: Some(rke2_cluster()),
            siblings: vec![],
        };
        let v = validate(&p, &observed, &Providers::default());
        assert_eq!(ready(&v).reason, reasons::INVALID_SPEC);
        assert!(
            ready(&v).message.starts_with(
                "spec.ssh.hosts[1] and spec.ssh.hosts[0] would both be node 10-0-0-21"
            )
        );
    }

    #[test]
    fn a_host_in_two_pools_of_one_cluster_is_refused() {
        let mut servers = agents();
        servers.metadata.name = Some("servers".into());
        servers.spec.ssh.as_mut().unwrap().hosts.truncate(1);
        servers.spec.ssh.as_mut().unwrap().hosts[0].address = "10.0.0.22".into();
        let observed = Observed {
            cluster: Some(rke2_cluster()),
            siblings: vec![servers],
        };
        let v = validate(&agents(), &observed, &Providers::default());
        assert_eq!(
            ready(&v).message,
            "spec.ssh.hosts[1] (10.0.0.22) is also a host of NodePool servers of the same Cluster: a host can be in one pool only"
        );
    }

    #[test]
    fn labels_and_taints_kubernetes_would_refuse_are_named() {
        let observed = Observed {
            cluster: Some(rke2_cluster()),
            siblings: vec![],
        };
        let mut p = agents();
        let ssh = p.spec.ssh.as_mut().unwrap();
        ssh.labels.insert("example.com/tier".into(), "edge".into());
        ssh.hosts[1]
            .labels
            .insert("node role".into(), "worker".into());
        let v = validate(&p, &observed, &Providers::default());
        assert_eq!(ready(&v).reason, reasons::INVALID_SPEC);
        assert!(
            ready(&v)
                .message
                .starts_with("spec.ssh.hosts[1].labels: \"node role\" is not a valid label key"),
            "{}",
            ready(&v).message
        );
        let ssh = p.spec.ssh.as_mut().unwrap();
        ssh.hosts[1].labels.clear();
        ssh.labels.insert("gpu".into(), "nvidia a100".into());
        assert!(
            ready(&validate(&p, &observed, &Providers::default()))
                .message
                .starts_with("spec.ssh.labels.gpu: \"nvidia a100\" is not a valid label value")
        );
        let ssh = p.spec.ssh.as_mut().unwrap();
        ssh.labels.remove("gpu");
        ssh.taints = vec![Taint {
            key: "dedicated".into(),
            value: Some("gpu/nvidia".into()),
            ..Default::default()
        }];
        assert!(
            ready(&validate(&p, &observed, &Providers::default()))
                .message
                .starts_with("spec.ssh.taints[0].value: \"gpu/nvidia\" is not a valid taint value")
        );
        p.spec.ssh.as_mut().unwrap().taints[0].value = Some("gpu".into());
        assert_eq!(
            ready(&validate(&p, &observed, &Providers::default())).reason,
            reasons::PROVIDER_UNAVAILABLE
        );
    }

    #[test]
    fn names_too_long_for_a_node_or_a_node_group_are_refused() {
        let observed = Observed {
            cluster: Some(rke2_cluster()),
            siblings: vec![],
        };
        let mut p = agents();
        let long = format!("{}.edge.example.com", "h".repeat(50));
        p.spec.ssh.as_mut().unwrap().hosts[1].address = long.clone();
        let v = validate(&p, &observed, &Providers::default());
        assert_eq!(
            ready(&v).message,
            format!(
                "spec.ssh.hosts[1]: the node name derived from the address {long} would be 67 characters, but a node name has at most 63: set spec.ssh.hosts[1].nodeName"
            )
        );
        p.spec.ssh.as_mut().unwrap().hosts[1].node_name = Some("edge-agent-2".into());
        assert_eq!(
            ready(&validate(&p, &observed, &Providers::default())).reason,
            reasons::PROVIDER_UNAVAILABLE
        );
        let mut workers = pool(
            r#"
apiVersion: mk8.io/v1alpha1
kind: NodePool
metadata: {name: workers, namespace: fleet}
spec:
  clusterName: edge
  eks: {instanceTypes: [m6i.large], scaling: {min: 1, max: 3, desired: 2}, createRoles: true}
"#,
        );
        workers.metadata.name = Some("w".repeat(64));
        let observed = Observed {
            cluster: Some(eks_cluster()),
            siblings: vec![],
        };
        let v = validate(&workers, &observed, &Providers::default());
        assert!(
            ready(&v).message.starts_with(
                "metadata.name is 64 characters long, but it names the EKS node group"
            ),
            "{}",
            ready(&v).message
        );
    }

    #[test]
    fn eks_pool_needs_a_role_or_created_roles() {
        let p = pool(
            r#"
apiVersion: mk8.io/v1alpha1
kind: NodePool
metadata: {name: workers, namespace: fleet}
spec:
  clusterName: edge
  eks: {instanceTypes: [m6i.large], scaling: {min: 1, max: 3, desired: 2}}
"#,
        );
        let observed = Observed {
            cluster: Some(eks_cluster()),
            siblings: vec![],
        };
        let v = validate(&p, &observed, &Providers::default());
        assert!(
            ready(&v).message.starts_with(
                "spec.eks.nodeRoleArn is required unless spec.eks.createRoles is true"
            )
        );
    }

    #[test]
    fn valid_pool_without_provider_touches_no_node() {
        let observed = Observed {
            cluster: Some(rke2_cluster()),
            siblings: vec![],
        };
        let v = validate(&agents(), &observed, &Providers::default());
        assert_eq!(ready(&v).reason, reasons::PROVIDER_UNAVAILABLE);
        assert!(ready(&v).message.contains("no node was touched"));
        assert!(
            v.conditions
                .iter()
                .any(|c| c.type_ == types::CLUSTER_FOUND && c.status)
        );
    }

    #[test]
    fn node_names_derive_from_addresses() {
        let p = agents();
        assert_eq!(node_name(&p.spec.ssh.unwrap().hosts[0]), "10-0-0-21");
    }
}
