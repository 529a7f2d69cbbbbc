//! The sig-multicluster `ClusterProfile` (`multicluster.x-k8s.io/v1alpha1`), as upstream defines it
//! (`../shared/reference/crds/clusterprofile-crd.yaml`; KEP-4322, access providers from KEP-5339).
//!
//! mk8 does not own this CRD: it publishes a profile for each of its Clusters and reads every
//! profile of the inventory, its own and those of other managers (OCM, GKE Fleet). The types are
//! typed views of the upstream schema; fields mk8 does not know survive a read-modify-write
//! because mk8 writes profiles with server-side apply of the fields it owns.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::CustomResource;
use serde::{Deserialize, Serialize};

/// The API group of ClusterProfile.
pub const PROFILE_GROUP: &str = "multicluster.x-k8s.io";
/// The label every ClusterProfile carries to name the manager that publishes it.
pub const CLUSTER_MANAGER_LABEL: &str = "x-k8s.io/cluster-manager";
/// The cluster-manager name of the profiles mk8 publishes for its own Clusters
/// (`spec.clusterManager.name` and the [`CLUSTER_MANAGER_LABEL`] value).
pub const MK8_MANAGER: &str = "mk8";
/// The condition a manager sets when the cluster's control plane answers.
pub const CONTROL_PLANE_HEALTHY: &str = "ControlPlaneHealthy";
/// The exec extension name (KEP-5339) whose value is passed to the credential plugin.
pub const EXEC_EXTENSION: &str = "client.authentication.k8s.io/exec";
/// The well-known property naming the cluster inside its ClusterSet.
pub const CLUSTER_ID_PROPERTY: &str = "clusterset.k8s.io/cluster-id";

/// A cluster of the inventory.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "multicluster.x-k8s.io",
    version = "v1alpha1",
    kind = "ClusterProfile",
    namespaced,
    status = "ClusterProfileStatus",
    schema = "disabled"
)]
#[serde(rename_all = "camelCase")]
pub struct ClusterProfileSpec {
    /// Human-readable name of the cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// The manager that publishes this profile.
    pub cluster_manager: ClusterManager,
}

/// The manager of a cluster.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ClusterManager {
    /// Manager name, such as `mk8` or `open-cluster-management`.
    pub name: String,
}

/// What the manager observes of the cluster.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterProfileStatus {
    /// Conditions, `ControlPlaneHealthy` among them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// Versions running in the cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<ClusterVersion>,
    /// Named properties (KEP-2149 `ClusterProperty` values).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub properties: Vec<Property>,
    /// How to reach the cluster (KEP-5339).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub access_providers: Vec<AccessProvider>,
    /// The earlier name of `accessProviders`; read when `accessProviders` is empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub credential_providers: Vec<AccessProvider>,
}

impl ClusterProfileStatus {
    /// The access providers, falling back to the deprecated `credentialProviders`.
    pub fn providers(&self) -> &[AccessProvider] {
        if self.access_providers.is_empty() {
            &self.credential_providers
        } else {
            &self.access_providers
        }
    }

    /// The value of a named property.
    pub fn property(&self, name: &str) -> Option<&str> {
        self.properties
            .iter()
            .find(|p| p.name == name)
            .map(|p| p.value.as_str())
    }
}

/// Kubernetes version of the cluster.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ClusterVersion {
    /// Such as `v1.33.2`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes: Option<String>,
}

/// A named property of the cluster.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Property {
    /// Property name, such as `clusterset.k8s.io/cluster-id`.
    pub name: String,
    /// Property value.
    pub value: String,
    /// When the manager last saw this value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_observed_time: Option<Time>,
}

/// One way to reach the cluster: a provider name the consumer maps to a credential plugin, and
/// the cluster's connection details in kubeconfig's `Cluster` shape.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AccessProvider {
    /// Provider name, such as `mk8` or `open-cluster-management`.
    pub name: String,
    /// Server, CA and extensions.
    #[serde(default)]
    pub cluster: AccessCluster,
}

/// kubeconfig's `Cluster`, with the field names kubeconfig uses.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct AccessCluster {
    /// API server URL.
    #[serde(default)]
    pub server: String,
    /// Base64 of the PEM CA bundle (`format: byte`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_authority_data: Option<String>,
    /// TLS server name, when it differs from the server's host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_server_name: Option<String>,
    /// Skip the server certificate check (test clusters only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub insecure_skip_tls_verify: Option<bool>,
    /// Proxy for every request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_url: Option<String>,
    /// Named extensions; `client.authentication.k8s.io/exec` is handed to the exec plugin.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extensions: Vec<NamedExtension>,
}

impl AccessCluster {
    /// The value of a named extension.
    pub fn extension(&self, name: &str) -> Option<&serde_json::Value> {
        self.extensions
            .iter()
            .find(|e| e.name == name)
            .map(|e| &e.extension)
    }
}

/// A kubeconfig named extension.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NamedExtension {
    /// Extension name.
    pub name: String,
    /// Free-form content.
    pub extension: serde_json::Value,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A profile as OCM publishes it (upstream field names, the deprecated list) reads into the
    /// typed view, and the exec extension is found.
    #[test]
    fn a_foreign_profile_reads_with_upstream_field_names() {
        let profile: ClusterProfile = serde_json::from_value(serde_json::json!({
            "apiVersion": "multicluster.x-k8s.io/v1alpha1",
            "kind": "ClusterProfile",
            "metadata": {"name": "east", "namespace": "fleet",
                         "labels": {"x-k8s.io/cluster-manager": "open-cluster-management"}},
            "spec": {"displayName": "east", "clusterManager": {"name": "open-cluster-management"}},
            "status": {
                "version": {"kubernetes": "v1.33.1"},
                "properties": [{"name": "clusterset.k8s.io/cluster-id", "value": "east-1"}],
                "credentialProviders": [{"name": "ocm", "cluster": {
                    "server": "https://east.example:6443",
                    "certificate-authority-data": "Q0E=",
                    "extensions": [{"name": "client.authentication.k8s.io/exec",
                                    "extension": {"clusterName": "east"}}]}}]
            }
        }))
        .unwrap();
        let status = profile.status.as_ref().unwrap();
        assert_eq!(status.property(CLUSTER_ID_PROPERTY), Some("east-1"));
        let provider = &status.providers()[0];
        assert_eq!(provider.cluster.server, "https://east.example:6443");
        assert_eq!(
            provider.cluster.extension(EXEC_EXTENSION),
            Some(&serde_json::json!({"clusterName": "east"}))
        );
    }
}
