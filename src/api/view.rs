//! `ClusterProfileView`: a saved read query across every cluster of the inventory.

// Several `x_kube(validation)` and `printcolumn` attributes on one item are intended.
#![allow(clippy::duplicated_attributes)]

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector, Time};
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

/// Desired state of a ClusterProfileView.
#[derive(CustomResource, KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "mk8.io",
    version = "v1alpha1",
    kind = "ClusterProfileView",
    doc = "A saved read query across the clusters of the ClusterProfile inventory.",
    namespaced,
    status = "ClusterProfileViewStatus",
    shortname = "cpv",
    category = "mk8",
    cel,
    printcolumn(name = "OK", type_ = "integer", json_path = ".status.clustersOk"),
    printcolumn(
        name = "Failed",
        type_ = "integer",
        json_path = ".status.clustersFailed"
    ),
    printcolumn(name = "Rows", type_ = "integer", json_path = ".status.rowCount"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("duration(self.perClusterTimeout) < duration(self.refreshInterval)")
    .message("spec.perClusterTimeout must be shorter than spec.refreshInterval"))]
pub struct ClusterProfileViewSpec {
    /// Which ClusterProfiles to read from.
    #[serde(default)]
    pub clusters: ClusterSelection,
    /// The resource to read.
    pub resource: ResourceRef,
    /// Namespace to read from; empty: all namespaces.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(
        length(max = 63),
        regex(pattern = r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?)?$")
    )]
    pub namespace: String,
    /// Label selector in kubectl syntax, such as `app=nginx,tier!=db`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(length(max = 1024))]
    pub label_selector: String,
    /// How often the query runs again.
    #[serde(default = "default_refresh")]
    #[schemars(regex(pattern = r"^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$"))]
    #[x_kube(validation = Rule::new("duration(self) >= duration('5s') && duration(self) <= duration('24h')").message("spec.refreshInterval must be between 5s and 24h"))]
    pub refresh_interval: String,
    /// How long one cluster may take to answer before it counts as failed.
    #[serde(default = "default_timeout")]
    #[schemars(regex(pattern = r"^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$"))]
    #[x_kube(validation = Rule::new("duration(self) >= duration('1s') && duration(self) <= duration('5m')").message("spec.perClusterTimeout must be between 1s and 5m"))]
    pub per_cluster_timeout: String,
    /// Most rows kept in status; the rest is counted and `truncated` set.
    #[serde(default = "default_max_rows")]
    #[schemars(range(min = 1, max = 5000))]
    pub max_rows: i32,
}

fn default_refresh() -> String {
    "60s".into()
}

fn default_timeout() -> String {
    "10s".into()
}

fn default_max_rows() -> i32 {
    500
}

/// Selection of ClusterProfiles: by labels, by name globs, minus exclusions.
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterSelection {
    /// Labels the ClusterProfile must carry.
    #[serde(default, flatten)]
    pub selector: LabelSelector,
    /// Name globs (`prod-*`); empty: any name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 100), inner(length(min = 1, max = 253)))]
    pub names: Vec<String>,
    /// Names or globs to leave out.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 100), inner(length(min = 1, max = 253)))]
    pub exclude: Vec<String>,
}

/// A resource type, as group/version/resource.
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceRef {
    /// API group, such as `apps` (no version); empty for the core group.
    #[serde(default)]
    #[schemars(
        length(max = 253),
        regex(pattern = r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*)?$")
    )]
    pub group: String,
    /// API version, such as `v1`.
    #[schemars(length(min = 1, max = 63))]
    pub version: String,
    /// Plural resource name, such as `deployments`.
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    )]
    pub resource: String,
}

/// Observed state of a ClusterProfileView, written by the operator only.
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterProfileViewStatus {
    /// When the last query finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_at: Option<Time>,
    /// Clusters that answered.
    #[serde(default)]
    pub clusters_ok: i32,
    /// Clusters that failed or timed out.
    #[serde(default)]
    pub clusters_failed: i32,
    /// Rows found in total (also those beyond `maxRows`).
    #[serde(default)]
    pub row_count: i32,
    /// Per-cluster outcome.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clusters: Vec<ViewClusterStatus>,
    /// Names of the printer columns of `rows[].cells` (the server's Table columns of
    /// priority 0, less Name).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub columns: Vec<String>,
    /// Rows kept (at most `maxRows`, and at most 512 KiB in all).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rows: Vec<ViewRow>,
    /// True when rows were left out.
    #[serde(default)]
    pub truncated: bool,
    /// Latest observations.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The generation the status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// Outcome of the query on one cluster.
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ViewClusterStatus {
    /// ClusterProfile name.
    pub name: String,
    /// `Ok`, `Failed`, `Timeout`, `Forbidden`, `Unauthorized` or `Unreachable`.
    pub state: String,
    /// Items found.
    #[serde(default)]
    pub items: i32,
    /// Answer time in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<i64>,
    /// What went wrong, when the cluster failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// One object found.
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ViewRow {
    /// ClusterProfile name.
    pub cluster: String,
    /// Namespace of the object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Name of the object.
    pub name: String,
    /// The printer columns' cells (see `status.columns`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cells: Vec<String>,
}
