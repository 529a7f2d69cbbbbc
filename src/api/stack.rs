//! `Stack`: platform components for a set of clusters, delivered as ArgoCD Applications.

// Several `x_kube(validation)` and `printcolumn` attributes on one item are intended.
#![allow(clippy::duplicated_attributes)]

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector};
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

/// Desired state of a Stack.
#[derive(CustomResource, KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "mk8.io",
    version = "v1alpha1",
    kind = "Stack",
    doc = "Platform components installed on selected clusters through ArgoCD, in dependency order.",
    namespaced,
    status = "StackStatus",
    shortname = "mstack",
    category = "mk8",
    cel,
    printcolumn(
        name = "Clusters",
        type_ = "integer",
        json_path = ".status.selectedClusters"
    ),
    printcolumn(
        name = "Components",
        type_ = "integer",
        json_path = ".status.componentCount"
    ),
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.progress"),
    printcolumn(
        name = "Status",
        type_ = "string",
        json_path = r#".status.conditions[?(@.type=="Ready")].reason"#
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct StackSpec {
    /// Which clusters get the stack, by the labels of their ClusterProfiles (mk8's and others').
    /// An empty selector selects every cluster.
    #[serde(default)]
    pub cluster_selector: LabelSelector,
    /// The components, installed in dependency order.
    #[schemars(length(min = 1, max = 100))]
    #[x_kube(validation = Rule::new("self.all(c, self.filter(o, o.name == c.name).size() == 1)")
        .message("spec.components: every component name must be unique; rename or remove the duplicate"))]
    pub components: Vec<Component>,
    /// Per-cluster values, applied in order (a later match wins).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 100))]
    pub cluster_overrides: Vec<ClusterOverride>,
    /// How a change (a new version, new values) of existing Applications spreads over the clusters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<Rollout>,
    /// Chart repository mirror for air-gapped sites: every Helm repository of the Stack becomes
    /// `<mirror>/<host>/<path>` (overrides the operator's `--chart-mirror`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^(https?|oci)://[^\s]+$"))]
    pub chart_mirror: Option<String>,
    /// Where ArgoCD runs, which project the Applications belong to, and their sync policy.
    #[serde(default)]
    pub argocd: ArgoCdSettings,
    /// How long one wave may take to become healthy before the Stack reports it stuck.
    #[serde(default = "default_wave_timeout")]
    #[schemars(regex(pattern = r"^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$"))]
    #[x_kube(validation = Rule::new("duration(self) >= duration('30s') && duration(self) <= duration('6h')").message("spec.waveTimeout must be between 30s and 6h"))]
    pub wave_timeout: String,
}

fn default_wave_timeout() -> String {
    "15m".into()
}

/// One platform component: a catalog preset, a Helm chart or a Git path.
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("(has(self.preset) ? 1 : 0) + (has(self.helm) ? 1 : 0) + (has(self.git) ? 1 : 0) + (has(self.bundle) ? 1 : 0) == 1")
    .message("spec.components[]: set exactly one of preset, helm, git or bundle for each component"))]
#[x_kube(validation = Rule::new("!has(self.dependsOn) || !(self.name in self.dependsOn)")
    .message("spec.components[].dependsOn: a component cannot depend on itself"))]
pub struct Component {
    /// Component name, unique in the Stack (a DNS label).
    #[schemars(
        length(min = 1, max = 40),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    )]
    pub name: String,
    /// A built-in catalog entry with pinned versions, such as `cert-manager`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"))]
    pub preset: Option<String>,
    /// A catalog bundle, such as `observability`: expands to one component per preset of the
    /// bundle, named after the preset (a preset the Stack already has is not added twice);
    /// `dependsOn` of and on the bundle apply to all of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"))]
    pub bundle: Option<String>,
    /// A Helm chart from a chart repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub helm: Option<HelmSource>,
    /// A path in a Git repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git: Option<GitSource>,
    /// Namespace in the target cluster; default: the component name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    )]
    pub namespace: Option<String>,
    /// Components that must be healthy first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 50))]
    pub depends_on: Vec<String>,
    /// Helm values over the preset's defaults (and `helm.values`); not for `git` components.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "super::common::preserve_unknown_object")]
    pub values: Option<serde_json::Map<String, serde_json::Value>>,
}

/// Progressive rollout of changes across clusters.
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rollout {
    /// At most this many clusters take a change at a time; the next ones only once those are
    /// Ready again. A Degraded cluster pauses the rollout until it is fixed or the change reverted.
    /// New clusters and new components are installed without waiting.
    #[schemars(range(min = 1, max = 10000))]
    pub max_clusters_in_progress: i32,
}

/// Helm values for one component on the clusters whose ClusterProfile labels match.
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterOverride {
    /// Which clusters, by their ClusterProfile labels.
    #[serde(default)]
    pub cluster_selector: LabelSelector,
    /// The component whose values change.
    #[schemars(length(min = 1, max = 40))]
    pub component: String,
    /// Values merged over the component's (objects merge key by key; other values replace).
    #[schemars(schema_with = "super::common::preserve_unknown_object")]
    pub values: serde_json::Map<String, serde_json::Value>,
}

/// A Helm chart in a chart repository.
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HelmSource {
    /// Chart repository URL (`https://` or `oci://`).
    #[serde(rename = "repoURL")]
    #[schemars(regex(pattern = r"^(https?|oci)://[^\s]+$"))]
    pub repo_url: String,
    /// Chart name.
    #[schemars(length(min = 1, max = 253))]
    pub chart: String,
    /// Exact chart version: pinned, never a range (SemVer: optional pre-release, then build).
    #[schemars(
        length(min = 1, max = 128),
        regex(pattern = r"^v?[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$")
    )]
    pub version: String,
    /// Helm values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "super::common::preserve_unknown_object")]
    pub values: Option<serde_json::Map<String, serde_json::Value>>,
}

/// A path in a Git repository.
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GitSource {
    /// Repository URL.
    #[serde(rename = "repoURL")]
    #[schemars(length(min = 1, max = 2048))]
    pub repo_url: String,
    /// Directory inside the repository.
    #[schemars(length(min = 1, max = 1024))]
    pub path: String,
    /// Branch, tag or commit.
    #[serde(default = "default_revision")]
    #[schemars(length(min = 1, max = 255))]
    pub target_revision: String,
}

fn default_revision() -> String {
    "HEAD".into()
}

/// ArgoCD settings of a Stack.
#[derive(KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArgoCdSettings {
    /// Namespace where ArgoCD runs on the management cluster.
    #[serde(default = "default_argocd_namespace")]
    #[schemars(length(min = 1, max = 63))]
    pub namespace: String,
    /// ArgoCD project of the Applications.
    #[serde(default = "default_project")]
    #[schemars(length(min = 1, max = 253))]
    pub project: String,
    /// ArgoCD deletes what a component no longer renders (`syncPolicy.automated.prune`).
    #[serde(default = "yes")]
    pub prune: bool,
    /// ArgoCD reverts changes made in the cluster by hand (`syncPolicy.automated.selfHeal`).
    #[serde(default = "yes")]
    pub self_heal: bool,
}

fn yes() -> bool {
    true
}

impl Default for ArgoCdSettings {
    fn default() -> Self {
        Self {
            namespace: default_argocd_namespace(),
            project: default_project(),
            prune: true,
            self_heal: true,
        }
    }
}

fn default_argocd_namespace() -> String {
    "argocd".into()
}

fn default_project() -> String {
    "default".into()
}

/// Observed state of a Stack, written by the operator only.
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StackStatus {
    /// Number of clusters the selector matches.
    #[serde(default)]
    pub selected_clusters: i32,
    /// Number of components.
    #[serde(default)]
    pub component_count: i32,
    /// Install order: component names per wave, lowest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub waves: Vec<Vec<String>>,
    /// Applications (one per cluster and component) that are Ready.
    #[serde(default)]
    pub ready_applications: i32,
    /// Applications the Stack delivers: selected clusters × components.
    #[serde(default)]
    pub total_applications: i32,
    /// `ready/total` Applications, for `kubectl get`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<String>,
    /// Per-cluster, per-component progress.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clusters: Vec<StackClusterStatus>,
    /// Latest observations.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The generation the status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// Progress of a Stack on one cluster.
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StackClusterStatus {
    /// ClusterProfile name.
    pub name: String,
    /// Per-component state.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub components: Vec<ComponentStatus>,
}

/// State of one component on one cluster, as ArgoCD reports it.
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ComponentStatus {
    /// Component name.
    pub name: String,
    /// Wave the component belongs to.
    pub wave: i32,
    /// Waiting (for a dependency), Progressing, Ready, Degraded, or Deleting.
    #[serde(default)]
    pub phase: String,
    /// The ArgoCD Application delivering it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application: Option<String>,
    /// Why it is not Ready: the dependency it waits for, or ArgoCD's message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// ArgoCD sync status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync: Option<String>,
    /// ArgoCD health status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<String>,
}
