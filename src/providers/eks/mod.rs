//! EKS: the plain-data driver interface ([`EksApi`]) and its AWS SDK implementation
//! ([`SdkEks`]), the request builders ([`plan`], pure), and the reconcile stages of Clusters
//! ([`cluster`]) and NodePools ([`pool`]) with what they share ([`shared`]).

pub mod cluster;
pub mod kubeconfig;
mod network;
pub mod plan;
pub mod pool;
mod sdk;
pub mod shared;
pub mod token;

use std::collections::BTreeMap;
use std::fmt;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use kube::runtime::controller::Action;

use crate::api::{Cluster, NodePool};
use crate::providers::{ClusterOutcome, ClusterProvider, PoolOutcome, PoolProvider};
use crate::reconcile::env::Env;
use crate::reconcile::error::Result;

pub use sdk::SdkEks;

/// Tag on every AWS resource mk8 creates: the UID of the owning Kubernetes object.
pub const OWNER_TAG: &str = "mk8.io/owner-uid";
/// Tag naming the owning object (`namespace/name`), for people reading the AWS console.
pub const OWNER_NAME_TAG: &str = "mk8.io/owner";

/// Static AWS credentials from a Secret; `Debug` never shows the keys.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct AwsCredentials {
    /// Access key id.
    pub access_key_id: String,
    /// Secret access key.
    pub secret_access_key: String,
    /// Session token of temporary credentials.
    pub session_token: Option<String>,
    /// Role to assume through STS with these keys.
    pub role_arn: Option<String>,
}

impl fmt::Debug for AwsCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsCredentials")
            .field("access_key_id", &"<redacted>")
            .field("secret_access_key", &"<redacted>")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<redacted>"),
            )
            .field("role_arn", &self.role_arn)
            .finish()
    }
}

/// Where and as whom to call AWS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// AWS region.
    pub region: String,
    /// Static credentials; `None`: the operator's own identity (standard credential chain).
    pub credentials: Option<AwsCredentials>,
}

/// What kind of failure an AWS call ended with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The resource does not exist.
    NotFound,
    /// The resource exists already or is busy (`ResourceInUseException`).
    InUse,
    /// The request is wrong or not allowed; retrying as is cannot help.
    Invalid,
    /// AWS asked us to slow down.
    Throttled,
    /// Network, timeout or a 5xx: retry with backoff.
    Transient,
}

/// A failed AWS call: its kind, AWS's error code and message (never a credential).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct AwsError {
    /// Kind, for retry decisions.
    pub kind: ErrorKind,
    /// AWS error code, such as `ResourceInUseException`.
    pub code: String,
    /// AWS's message.
    pub message: String,
}

impl AwsError {
    /// An error of `kind` with `code` and `message`.
    pub fn new(kind: ErrorKind, code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            kind,
            code: code.into(),
            message: message.into(),
        }
    }
}

/// Result of an AWS call.
pub type AwsResult<T> = Result<T, AwsError>;

/// A CreateCluster request (built by a pure function from the Cluster).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClusterRequest {
    /// EKS cluster name.
    pub name: String,
    /// Control plane IAM role.
    pub role_arn: String,
    /// Kubernetes minor version; `None`: AWS's default.
    pub version: Option<String>,
    /// Subnets.
    pub subnet_ids: Vec<String>,
    /// Extra security groups.
    pub security_group_ids: Vec<String>,
    /// Public endpoint.
    pub endpoint_public_access: bool,
    /// Private endpoint.
    pub endpoint_private_access: bool,
    /// CIDRs allowed to reach the public endpoint.
    pub public_access_cidrs: Vec<String>,
    /// Tags, including [`OWNER_TAG`].
    pub tags: BTreeMap<String, String>,
    /// Idempotency token (the owner's UID).
    pub client_request_token: String,
}

/// An EKS cluster as DescribeCluster reports it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EksCluster {
    /// Name.
    pub name: String,
    /// `CREATING | ACTIVE | DELETING | FAILED | UPDATING | PENDING`.
    pub status: String,
    /// Kubernetes version.
    pub version: Option<String>,
    /// API endpoint URL.
    pub endpoint: Option<String>,
    /// Base64 CA bundle.
    pub certificate_authority: Option<String>,
    /// Tags.
    pub tags: BTreeMap<String, String>,
    /// Health issues AWS reports (`code: message`).
    pub issues: Vec<String>,
}

/// Networking mk8 created for a cluster (`vpc.create`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Network {
    /// VPC id.
    pub vpc_id: String,
    /// Public subnets (route to the internet gateway), one per zone.
    pub public_subnets: Vec<String>,
    /// Private subnets, one per zone.
    pub private_subnets: Vec<String>,
}

/// What `vpc.create` asks for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NetworkRequest {
    /// VPC CIDR.
    pub cidr: String,
    /// Number of availability zones.
    pub zones: usize,
    /// Tags on everything, including [`OWNER_TAG`] (which also finds it again).
    pub tags: BTreeMap<String, String>,
}

/// Scaling of a node group.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NodegroupScaling {
    /// Minimum size.
    pub min: i32,
    /// Maximum size.
    pub max: i32,
    /// Desired size.
    pub desired: i32,
}

/// A node taint in EKS terms (`NO_SCHEDULE`, `PREFER_NO_SCHEDULE`, `NO_EXECUTE`).
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct NodegroupTaint {
    /// Key.
    pub key: String,
    /// Value.
    pub value: Option<String>,
    /// Effect.
    pub effect: String,
}

/// A CreateNodegroup request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodegroupRequest {
    /// EKS cluster name.
    pub cluster: String,
    /// Node group name.
    pub name: String,
    /// Kubernetes version (the control plane's).
    pub version: Option<String>,
    /// Node IAM role.
    pub node_role: String,
    /// Subnets.
    pub subnets: Vec<String>,
    /// Instance types.
    pub instance_types: Vec<String>,
    /// AMI type.
    pub ami_type: Option<String>,
    /// `ON_DEMAND` or `SPOT`.
    pub capacity_type: String,
    /// Root disk size in GiB.
    pub disk_size: Option<i32>,
    /// Scaling.
    pub scaling: NodegroupScaling,
    /// Kubernetes labels.
    pub labels: BTreeMap<String, String>,
    /// Kubernetes taints.
    pub taints: Vec<NodegroupTaint>,
    /// Tags, including [`OWNER_TAG`].
    pub tags: BTreeMap<String, String>,
    /// Idempotency token.
    pub client_request_token: String,
}

/// A node group as DescribeNodegroup reports it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EksNodegroup {
    /// Name.
    pub name: String,
    /// `CREATING | ACTIVE | UPDATING | DELETING | CREATE_FAILED | DELETE_FAILED | DEGRADED`.
    pub status: String,
    /// Kubernetes version of the nodes.
    pub version: Option<String>,
    /// Scaling.
    pub scaling: NodegroupScaling,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Taints.
    pub taints: Vec<NodegroupTaint>,
    /// Tags.
    pub tags: BTreeMap<String, String>,
    /// Health issues (`code: message`).
    pub issues: Vec<String>,
}

/// An UpdateNodegroupConfig request; `None`/empty parts are left unchanged.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodegroupConfigUpdate {
    /// EKS cluster name.
    pub cluster: String,
    /// Node group name.
    pub name: String,
    /// New scaling.
    pub scaling: Option<NodegroupScaling>,
    /// Labels to add or change.
    pub add_labels: BTreeMap<String, String>,
    /// Label keys to remove.
    pub remove_labels: Vec<String>,
    /// Taints to add or change.
    pub add_taints: Vec<NodegroupTaint>,
    /// Taints to remove.
    pub remove_taints: Vec<NodegroupTaint>,
}

impl NodegroupConfigUpdate {
    /// Whether the update changes nothing.
    pub fn is_empty(&self) -> bool {
        self.scaling.is_none()
            && self.add_labels.is_empty()
            && self.remove_labels.is_empty()
            && self.add_taints.is_empty()
            && self.remove_taints.is_empty()
    }
}

/// A bearer token for an EKS API server; `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Token {
    /// `k8s-aws-v1.` + base64url(presigned STS URL).
    pub value: String,
    /// When EKS stops accepting it.
    pub expires_at: DateTime<Utc>,
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Token")
            .field("value", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// Drives EKS control planes and node groups (aws-sdk-eks in production, moto in tests).
pub trait EksApi: Send + Sync {
    /// Human-readable description of the endpoint in use, for logs.
    fn describe(&self) -> String;

    /// DescribeCluster; `None` when it does not exist.
    fn describe_cluster<'a>(
        &'a self,
        target: &'a Target,
        name: &'a str,
    ) -> BoxFuture<'a, AwsResult<Option<EksCluster>>>;

    /// CreateCluster.
    fn create_cluster<'a>(
        &'a self,
        target: &'a Target,
        request: &'a ClusterRequest,
    ) -> BoxFuture<'a, AwsResult<()>>;

    /// UpdateClusterVersion to `version`; returns the update id.
    fn update_cluster_version<'a>(
        &'a self,
        target: &'a Target,
        name: &'a str,
        version: &'a str,
    ) -> BoxFuture<'a, AwsResult<String>>;

    /// DeleteCluster; a missing cluster is not an error.
    fn delete_cluster<'a>(
        &'a self,
        target: &'a Target,
        name: &'a str,
    ) -> BoxFuture<'a, AwsResult<()>>;

    /// ListNodegroups of `cluster` (all pages).
    fn list_nodegroups<'a>(
        &'a self,
        target: &'a Target,
        cluster: &'a str,
    ) -> BoxFuture<'a, AwsResult<Vec<String>>>;

    /// DescribeNodegroup; `None` when it (or its cluster) does not exist.
    fn describe_nodegroup<'a>(
        &'a self,
        target: &'a Target,
        cluster: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, AwsResult<Option<EksNodegroup>>>;

    /// CreateNodegroup.
    fn create_nodegroup<'a>(
        &'a self,
        target: &'a Target,
        request: &'a NodegroupRequest,
    ) -> BoxFuture<'a, AwsResult<()>>;

    /// UpdateNodegroupConfig.
    fn update_nodegroup_config<'a>(
        &'a self,
        target: &'a Target,
        update: &'a NodegroupConfigUpdate,
    ) -> BoxFuture<'a, AwsResult<()>>;

    /// UpdateNodegroupVersion to `version` (after the control plane reached it).
    fn update_nodegroup_version<'a>(
        &'a self,
        target: &'a Target,
        cluster: &'a str,
        name: &'a str,
        version: &'a str,
    ) -> BoxFuture<'a, AwsResult<()>>;

    /// DeleteNodegroup; a missing node group is not an error.
    fn delete_nodegroup<'a>(
        &'a self,
        target: &'a Target,
        cluster: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, AwsResult<()>>;

    /// CreateAccessEntry for `principal` on `cluster`; an existing entry is not an error.
    fn create_access_entry<'a>(
        &'a self,
        target: &'a Target,
        cluster: &'a str,
        principal: &'a str,
        tags: &'a BTreeMap<String, String>,
    ) -> BoxFuture<'a, AwsResult<()>>;

    /// AssociateAccessPolicy `policy` cluster-wide for `principal` (idempotent in EKS).
    fn associate_access_policy<'a>(
        &'a self,
        target: &'a Target,
        cluster: &'a str,
        principal: &'a str,
        policy: &'a str,
    ) -> BoxFuture<'a, AwsResult<()>>;

    /// The ARN of IAM role `name` for nodes, creating it (EC2 trust, the node policies, `tags`)
    /// when absent; a role of that name owned by someone else is refused.
    fn ensure_node_role<'a>(
        &'a self,
        target: &'a Target,
        name: &'a str,
        tags: &'a BTreeMap<String, String>,
    ) -> BoxFuture<'a, AwsResult<String>>;

    /// Detach the policies of IAM role `name` and delete it, if it exists and its owner tag is
    /// `owner_uid`.
    fn delete_node_role<'a>(
        &'a self,
        target: &'a Target,
        name: &'a str,
        owner_uid: &'a str,
    ) -> BoxFuture<'a, AwsResult<()>>;

    /// Find or create the VPC, internet gateway, subnets and public route table tagged with the
    /// owner (`request.tags[OWNER_TAG]`); every step is looked up first, so it resumes.
    fn ensure_network<'a>(
        &'a self,
        target: &'a Target,
        request: &'a NetworkRequest,
    ) -> BoxFuture<'a, AwsResult<Network>>;

    /// The network created for `owner_uid`, if any (lookups only).
    fn find_network<'a>(
        &'a self,
        target: &'a Target,
        owner_uid: &'a str,
    ) -> BoxFuture<'a, AwsResult<Option<Network>>>;

    /// Delete the network created for `owner_uid`: route tables, subnets, internet gateway, VPC.
    fn delete_network<'a>(
        &'a self,
        target: &'a Target,
        owner_uid: &'a str,
    ) -> BoxFuture<'a, AwsResult<()>>;

    /// A fresh bearer token for the API server of `cluster`.
    fn token<'a>(&'a self, target: &'a Target, cluster: &'a str)
    -> BoxFuture<'a, AwsResult<Token>>;
}

/// The EKS provider of one operator: its AWS driver.
#[derive(Clone)]
pub struct Eks {
    driver: Arc<dyn EksApi>,
}

impl Eks {
    /// A provider calling AWS through `driver`.
    pub fn new(driver: Arc<dyn EksApi>) -> Self {
        Self { driver }
    }

    /// The AWS driver.
    pub fn driver(&self) -> &dyn EksApi {
        self.driver.as_ref()
    }
}

impl ClusterProvider for Eks {
    async fn reconcile(&self, env: &Env, cluster: &Cluster) -> Result<Option<ClusterOutcome>> {
        cluster::reconcile(self.driver(), env, cluster).await
    }

    async fn cleanup(&self, env: &Env, cluster: &Cluster) -> Result<Option<Action>> {
        cluster::cleanup(self.driver(), env, cluster).await
    }
}

impl PoolProvider for Eks {
    async fn reconcile(
        &self,
        env: &Env,
        pool: &NodePool,
        cluster: &Cluster,
        _siblings: &[NodePool],
    ) -> Result<Option<PoolOutcome>> {
        pool::reconcile(self.driver(), env, pool, cluster).await
    }

    async fn cleanup(&self, env: &Env, pool: &NodePool) -> Result<Option<Action>> {
        pool::cleanup(self.driver(), env, pool).await
    }
}
