//! `NodePool`: a group of nodes of one Cluster.

// Several `x_kube(validation)` and `printcolumn` attributes on one item are intended.
#![allow(clippy::duplicated_attributes)]

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

/// Desired state of a NodePool: exactly one of `eks` or `ssh`, matching its Cluster's provider.
#[derive(CustomResource, KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "mk8.io",
    version = "v1alpha1",
    kind = "NodePool",
    doc = "A group of nodes of one Cluster: an EKS managed node group or SSH hosts joined to RKE2.",
    namespaced,
    status = "NodePoolStatus",
    shortname = "mnp",
    category = "mk8",
    cel,
    printcolumn(name = "Cluster", type_ = "string", json_path = ".spec.clusterName"),
    printcolumn(
        name = "Role",
        type_ = "string",
        json_path = ".status.role",
        description = "eks, server or agent"
    ),
    printcolumn(name = "Ready", type_ = "integer", json_path = ".status.ready"),
    printcolumn(name = "Desired", type_ = "integer", json_path = ".status.desired"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.eks) != has(self.ssh)")
    .message("exactly one of spec.eks or spec.ssh must be set: eks for an EKS managed node group, ssh for RKE2 hosts"))]
#[x_kube(validation = Rule::new("has(self.eks) == has(oldSelf.eks)")
    .message("spec.eks and spec.ssh cannot be swapped after creation; create a new NodePool instead"))]
pub struct NodePoolSpec {
    /// Name of the Cluster (same namespace) these nodes belong to. Immutable.
    #[schemars(length(min = 1, max = 253))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("spec.clusterName is immutable: a NodePool cannot move to another Cluster; create a new NodePool instead"))]
    pub cluster_name: String,
    /// An EKS managed node group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eks: Option<EksNodePoolSpec>,
    /// Linux hosts reached over SSH, joined as RKE2 servers or agents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh: Option<SshNodePoolSpec>,
    /// Stop reconciling this NodePool while true.
    #[serde(default)]
    pub paused: bool,
}

/// An EKS managed node group.
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EksNodePoolSpec {
    /// EC2 instance types, such as `m6i.large`.
    #[schemars(
        length(min = 1, max = 20),
        inner(regex(pattern = r"^[a-z0-9-]+\.[a-z0-9]+$"))
    )]
    pub instance_types: Vec<String>,
    /// Node counts.
    pub scaling: Scaling,
    /// `ON_DEMAND` or `SPOT`.
    #[serde(default)]
    pub capacity_type: CapacityType,
    /// EKS AMI type, such as `AL2023_x86_64_STANDARD`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[A-Za-z0-9_]+$"))]
    pub ami_type: Option<String>,
    /// Root volume size in GiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 20, max = 16384))]
    pub disk_size: Option<i32>,
    /// Subnets for the nodes; default: the Cluster's subnets.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16), inner(regex(pattern = r"^subnet-[0-9a-f]{8,17}$")))]
    pub subnet_ids: Vec<String>,
    /// IAM role for the nodes; required unless `createRoles` is true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/.+$"))]
    pub node_role_arn: Option<String>,
    /// Create the node IAM role with the standard managed policies, and delete it with the pool.
    #[serde(default)]
    pub create_roles: bool,
    /// Kubernetes labels on the nodes.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Kubernetes taints on the nodes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 50))]
    pub taints: Vec<Taint>,
}

/// Node counts of an EKS node group.
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.min <= self.desired && self.desired <= self.max")
    .message("spec.eks.scaling: desired must lie between min and max (min <= desired <= max)"))]
pub struct Scaling {
    /// Fewest nodes.
    #[schemars(range(min = 0, max = 1000))]
    pub min: i32,
    /// Most nodes.
    #[schemars(range(min = 1, max = 1000))]
    pub max: i32,
    /// Nodes wanted now.
    #[schemars(range(min = 0, max = 1000))]
    pub desired: i32,
}

/// EC2 capacity types.
#[derive(
    schemars::JsonSchema, Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize,
)]
pub enum CapacityType {
    /// Regular on-demand instances.
    #[default]
    #[serde(rename = "ON_DEMAND")]
    OnDemand,
    /// Spot instances.
    #[serde(rename = "SPOT")]
    Spot,
}

/// A Kubernetes taint.
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Taint {
    /// Taint key.
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
    /// Taint value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 63))]
    pub value: Option<String>,
    /// `NoSchedule`, `PreferNoSchedule` or `NoExecute`.
    pub effect: TaintEffect,
}

/// Kubernetes taint effects.
#[derive(
    schemars::JsonSchema, Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize,
)]
pub enum TaintEffect {
    /// Do not schedule new pods.
    #[default]
    NoSchedule,
    /// Avoid scheduling new pods.
    PreferNoSchedule,
    /// Evict running pods too.
    NoExecute,
}

/// Linux hosts reached over SSH, joined as RKE2 servers or agents.
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SshNodePoolSpec {
    /// `server` (control plane + etcd) or `agent` (workers).
    pub role: NodeRole,
    /// The hosts. Addresses must be unique within the pool.
    #[schemars(length(min = 1, max = 250))]
    #[x_kube(validation = Rule::new("self.all(h, self.filter(o, o.address == h.address).size() == 1)")
        .message("spec.ssh.hosts: every host address must be unique within the pool; remove the duplicate entry"))]
    pub hosts: Vec<SshHost>,
    /// How many hosts are worked on at once (agents); servers always join one at a time.
    #[serde(default = "default_max_parallel")]
    #[schemars(range(min = 1, max = 500))]
    pub max_parallel: i32,
    /// Labels on every node of the pool.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Taints on every node of the pool.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 50))]
    pub taints: Vec<Taint>,
    /// Learn unknown host keys on first contact (recorded in status) instead of refusing them.
    #[serde(default)]
    pub accept_new_host_keys: bool,
    /// Time allowed for one remote step before it counts as failed, such as `10m`.
    #[serde(default = "default_step_timeout")]
    #[schemars(regex(pattern = r"^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$"))]
    #[x_kube(validation = Rule::new("duration(self) >= duration('10s') && duration(self) <= duration('2h')").message("spec.ssh.stepTimeout must be between 10s and 2h"))]
    pub step_timeout: String,
}

fn default_max_parallel() -> i32 {
    20
}

fn default_step_timeout() -> String {
    "10m".into()
}

/// RKE2 node roles.
#[derive(
    schemars::JsonSchema, Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum NodeRole {
    /// Control plane and etcd.
    Server,
    /// Worker.
    #[default]
    Agent,
}

/// One host of an SSH pool.
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SshHost {
    /// IP address or DNS name.
    #[schemars(length(min = 1, max = 253), regex(pattern = r"^[A-Za-z0-9.:\-\[\]]+$"))]
    pub address: String,
    /// SSH port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: Option<i32>,
    /// SSH user; `root` when absent, otherwise commands run through `sudo`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[a-z_][a-z0-9_-]{0,31}$"))]
    pub user: Option<String>,
    /// Kubernetes node name; default: derived from the address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
    )]
    pub node_name: Option<String>,
    /// Pinned SSH host key fingerprint (`SHA256:...`), checked instead of known_hosts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^SHA256:[A-Za-z0-9+/]{43}=?$"))]
    pub host_key_fingerprint: Option<String>,
    /// Extra labels for this node.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// Observed state of a NodePool, written by the operator only.
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodePoolStatus {
    /// `eks`, `server` or `agent`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// Nodes wanted.
    #[serde(default)]
    pub desired: i32,
    /// Nodes joined and Ready.
    #[serde(default)]
    pub ready: i32,
    /// Per-node progress (SSH pools).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<NodeStatus>,
    /// The RKE2 version the pool's last complete install ran on every node that did not fail
    /// (SSH pools); agent pools upgrade once their Cluster's server pools report the new version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Address of this pool's host that bootstrapped the cluster (RKE2 server started without
    /// `server:`; the others register through it unless the Cluster sets
    /// `spec.rke2.registrationAddress`). Recorded once its install began and kept, also after
    /// the host is removed: reordering hosts or adding server pools never moves the role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bootstrap: Option<String>,
    /// Latest observations.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The generation the status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// Progress of one node.
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeStatus {
    /// Kubernetes node name.
    pub name: String,
    /// Host address.
    pub address: String,
    /// `Pending`, `Joining`, `Ready`, `Failed`, or `Removing` (a host taken out of the spec,
    /// being drained and uninstalled; it leaves the list once done).
    pub phase: String,
    /// Step in progress or last finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// What is happening, or what went wrong.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// When the current phase began.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<Time>,
    /// SSH port, kept so a host removed from the spec can still be reached to uninstall it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<i32>,
    /// SSH user, kept for the same reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Fingerprint (`SHA256:...`) of the host key mk8 trusts for this node: the one pinned in
    /// the spec, or the one learned on first contact (`acceptNewHostKeys`), which is pinned from
    /// then on — a different key is refused. Pin a new key in the spec to replace it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_key_fingerprint: Option<String>,
    /// Whether `hostKeyFingerprint` was learned on first contact rather than given.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub host_key_learned: bool,
}

impl NodePool {
    /// The role column: `eks`, `server` or `agent`.
    pub fn role_name(&self) -> Option<&'static str> {
        match (&self.spec.eks, &self.spec.ssh) {
            (Some(_), None) => Some("eks"),
            (None, Some(ssh)) => Some(match ssh.role {
                NodeRole::Server => "server",
                NodeRole::Agent => "agent",
            }),
            _ => None,
        }
    }

    /// Provider this pool needs its Cluster to run on.
    pub fn provider(&self) -> Option<&'static str> {
        match (&self.spec.eks, &self.spec.ssh) {
            (Some(_), None) => Some("eks"),
            (None, Some(_)) => Some("rke2"),
            _ => None,
        }
    }

    /// The hosts of an SSH pool (none for an EKS pool).
    pub fn ssh_hosts(&self) -> &[SshHost] {
        self.spec
            .ssh
            .as_ref()
            .map(|s| s.hosts.as_slice())
            .unwrap_or_default()
    }

    /// The per-node progress in status (SSH pools).
    pub fn node_statuses(&self) -> &[NodeStatus] {
        self.status
            .as_ref()
            .map(|s| s.nodes.as_slice())
            .unwrap_or_default()
    }

    /// Number of nodes the spec asks for.
    pub fn desired_nodes(&self) -> i32 {
        match (&self.spec.eks, &self.spec.ssh) {
            (Some(eks), _) => eks.scaling.desired,
            (_, Some(ssh)) => ssh.hosts.len() as i32,
            _ => 0,
        }
    }
}

/// The Kubernetes node name of a host: its `nodeName`, else its address made DNS-safe.
pub fn node_name(host: &SshHost) -> String {
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
