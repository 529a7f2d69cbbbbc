//! `Cluster`: one Kubernetes cluster, its control plane and its access.

// Several `x_kube(validation)` and `printcolumn` attributes on one item are intended.
#![allow(clippy::duplicated_attributes)]

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::common::{LocalObjectReference, Phase};

/// Desired state of a Cluster: exactly one provider (`eks` or `rke2`).
#[derive(CustomResource, KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "mk8.io",
    version = "v1alpha1",
    kind = "Cluster",
    doc = "A Kubernetes cluster managed by mk8, on AWS EKS or as RKE2 on SSH hosts.",
    namespaced,
    status = "ClusterStatus",
    shortname = "mcl",
    category = "mk8",
    cel,
    printcolumn(
        name = "Provider",
        type_ = "string",
        json_path = ".status.provider",
        description = "eks or rke2"
    ),
    printcolumn(
        name = "Version",
        type_ = "string",
        json_path = ".status.kubernetesVersion",
        description = "Kubernetes version running"
    ),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = r#".status.conditions[?(@.type=="Ready")].status"#
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.eks) != has(self.rke2)")
    .message("exactly one of spec.eks or spec.rke2 must be set: choose the provider that runs this cluster"))]
#[x_kube(validation = Rule::new("has(self.eks) == has(oldSelf.eks)")
    .message("spec.eks and spec.rke2 cannot be swapped after creation: a Cluster cannot move between providers; create a new Cluster instead"))]
#[x_kube(validation = Rule::new("!has(self.rke2) || !has(self.kubernetesVersion) || self.rke2.version.startsWith('v' + self.kubernetesVersion + '.')")
    .message("spec.kubernetesVersion must name the same minor as spec.rke2.version (1.33 goes with v1.33.1+rke2r1), or be left out"))]
pub struct ClusterSpec {
    /// Kubernetes minor version, such as `1.33`. EKS: the control plane version (AWS's default
    /// when absent). RKE2: optional, must agree with `rke2.version`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^1\.[0-9]{1,2}$"))]
    pub kubernetes_version: Option<String>,
    /// Run the cluster on AWS EKS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eks: Option<EksClusterSpec>,
    /// Run the cluster as RKE2 on Linux hosts reached over SSH.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rke2: Option<Rke2ClusterSpec>,
    /// Stop reconciling this Cluster (no change is made to it while true).
    #[serde(default)]
    pub paused: bool,
}

/// EKS control plane settings.
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EksClusterSpec {
    /// AWS region, such as `eu-west-1`. Immutable.
    #[schemars(regex(pattern = r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]{1,2}$"))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("spec.eks.region is immutable: an EKS cluster cannot move to another region; create a new Cluster instead"))]
    pub region: String,
    /// IAM role the EKS control plane assumes.
    #[schemars(regex(pattern = r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/.+$"))]
    pub role_arn: String,
    /// Networking: existing subnets, or a VPC the operator creates.
    pub vpc: EksVpc,
    /// Secret with `accessKeyId`, `secretAccessKey`, optional `sessionToken` and `roleArn`.
    /// Absent: the operator's own identity (IRSA / Pod Identity / environment).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret_ref: Option<LocalObjectReference>,
    /// IAM principals granted access to the cluster through EKS access entries.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 50))]
    #[x_kube(validation = Rule::new("self.all(e, self.filter(o, o.principalArn == e.principalArn).size() == 1)")
        .message("spec.eks.accessEntries: each principalArn may appear only once"))]
    pub access_entries: Vec<AccessEntry>,
    /// Extra AWS tags on everything the operator creates.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
}

/// Networking of an EKS cluster.
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.create) != (has(self.subnetIds) && size(self.subnetIds) > 0)")
    .message("spec.eks.vpc: set either subnetIds (existing subnets) or create (a VPC made by mk8), not both and not neither"))]
pub struct EksVpc {
    /// Existing subnets, in at least two availability zones.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16), inner(regex(pattern = r"^subnet-[0-9a-f]{8,17}$")))]
    #[x_kube(validation = Rule::new("size(self) == 0 || size(self) >= 2").message("spec.eks.vpc.subnetIds: EKS needs subnets in at least two availability zones; list two or more"))]
    pub subnet_ids: Vec<String>,
    /// Extra security groups for the control plane network interfaces.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 5), inner(regex(pattern = r"^sg-[0-9a-f]{8,17}$")))]
    pub security_group_ids: Vec<String>,
    /// Create a VPC with public and private subnets for this cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create: Option<VpcCreate>,
    /// Expose the API endpoint publicly.
    #[serde(default = "default_true")]
    pub endpoint_public_access: bool,
    /// Expose the API endpoint inside the VPC.
    #[serde(default)]
    pub endpoint_private_access: bool,
    /// CIDR blocks allowed to reach the public endpoint.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(max = 40),
        inner(regex(pattern = r"^[0-9]{1,3}(\.[0-9]{1,3}){3}/[0-9]{1,2}$"))
    )]
    pub public_access_cidrs: Vec<String>,
}

fn default_true() -> bool {
    true
}

/// A VPC the operator creates and deletes with the cluster.
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VpcCreate {
    /// IPv4 CIDR of the VPC, such as `10.0.0.0/16` (a /16 to /24).
    #[schemars(regex(pattern = r"^[0-9]{1,3}(\.[0-9]{1,3}){3}/(1[6-9]|2[0-4])$"))]
    pub cidr: String,
    /// Number of availability zones to spread subnets over.
    #[serde(default = "default_zones")]
    #[schemars(range(min = 2, max = 6))]
    pub availability_zones: i32,
}

fn default_zones() -> i32 {
    2
}

/// One IAM principal with access to the cluster.
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessEntry {
    /// IAM role or user ARN (at most 2048 characters, IAM's limit; the bound also keeps the
    /// uniqueness rule of `accessEntries` within the API server's CEL cost budget).
    #[schemars(
        regex(pattern = r"^arn:aws[a-z-]*:(iam|sts)::[0-9]{12}:.+$"),
        length(max = 2048)
    )]
    pub principal_arn: String,
    /// Access policy to associate, cluster-wide.
    #[serde(default = "default_access_policy")]
    #[schemars(regex(pattern = r"^arn:aws[a-z-]*:eks::aws:cluster-access-policy/.+$"))]
    pub policy_arn: String,
}

fn default_access_policy() -> String {
    "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy".into()
}

/// RKE2 control plane settings; the hosts come from NodePools with `ssh.role: server`.
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rke2ClusterSpec {
    /// RKE2 release, such as `v1.33.1+rke2r1`.
    #[schemars(regex(pattern = r"^v1\.[0-9]{1,2}\.[0-9]{1,3}\+rke2r[0-9]{1,3}$"))]
    pub version: String,
    /// Where the release files come from (air-gap friendly).
    pub artifacts: Rke2Artifacts,
    /// Secret holding `ssh-privatekey`, optional `passphrase` and `known_hosts`.
    pub ssh_credentials_secret_ref: LocalObjectReference,
    /// Load balancer, VIP or DNS name nodes register through; default: the first server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253), regex(pattern = r"^[A-Za-z0-9.:\-\[\]]+$"))]
    pub registration_address: Option<String>,
    /// Container network plugin.
    #[serde(default)]
    pub cni: Cni,
    /// Extra subject alternative names for the API server certificate.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 20), inner(length(min = 1, max = 253)))]
    pub tls_san: Vec<String>,
    /// Extra keys for `/etc/rancher/rke2/config.yaml`, passed through unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "super::common::preserve_unknown_object")]
    pub config: Option<serde_json::Map<String, serde_json::Value>>,
}

/// Source of RKE2 release files: a mirror URL, or a directory mounted into the operator.
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.baseURL) != has(self.path)")
    .message("spec.rke2.artifacts: set exactly one of baseURL (a mirror) or path (a directory mounted into the operator)"))]
pub struct Rke2Artifacts {
    /// HTTP(S) base URL holding the release files and `sha256sum-<arch>.txt`.
    #[serde(rename = "baseURL", default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^https?://[^\s]+$"))]
    pub base_url: Option<String>,
    /// Directory inside the operator's filesystem (a mounted volume) with the release files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^/[^\s]*$"))]
    pub path: Option<String>,
}

/// RKE2 container network plugins.
#[derive(
    schemars::JsonSchema, Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Cni {
    /// Canal (RKE2's default).
    #[default]
    Canal,
    /// Calico.
    Calico,
    /// Cilium.
    Cilium,
    /// Flannel.
    Flannel,
    /// No CNI: bring your own.
    None,
}

/// Observed state of a Cluster, written by the operator only.
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterStatus {
    /// Coarse lifecycle phase.
    #[serde(default)]
    pub phase: Phase,
    /// `eks` or `rke2`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// Latest observations.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// URL of the Kubernetes API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Kubernetes version running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes_version: Option<String>,
    /// Secret holding the kubeconfig.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubeconfig_secret_name: Option<String>,
    /// The generation the status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

impl Cluster {
    /// Name of the provider this Cluster asks for.
    pub fn provider(&self) -> Option<&'static str> {
        match (&self.spec.eks, &self.spec.rke2) {
            (Some(_), None) => Some("eks"),
            (None, Some(_)) => Some("rke2"),
            _ => None,
        }
    }
}
