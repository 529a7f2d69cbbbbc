//! The clusters of the inventory: ClusterProfiles on the hub, narrowed by a cluster set, name
//! globs, exclusions and labels.

use kube::api::{Api, DynamicObject, ListParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::{Client, ResourceExt};
use serde_json::Value;

use crate::selector::{LabelSelector, glob};

/// The namespace (and profile) label naming a cluster set.
pub const CLUSTERSET_LABEL: &str = "multicluster.x-k8s.io/clusterset";

/// Which profiles a query reaches.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    /// Name globs (`prod-*`, or `namespace/name` globs); empty: every profile.
    pub names: Vec<String>,
    /// Globs to leave out.
    pub exclude: Vec<String>,
    /// Labels the profile must carry.
    pub labels: LabelSelector,
}

impl Filter {
    /// A filter from the CLI's comma-separated flags; a bad selector names the flag.
    pub fn parse(clusters: &str, exclude: &str, selector: &str) -> Result<Self, String> {
        let split = |s: &str| -> Vec<String> {
            s.split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(str::to_string)
                .collect()
        };
        let labels = LabelSelector::parse(selector)
            .map_err(|e| format!("--cluster-selector {selector:?}: {}", e.0))?;
        Ok(Filter {
            names: split(clusters),
            exclude: split(exclude),
            labels,
        })
    }

    /// Whether the profile is selected.
    pub fn matches(&self, profile: &Value) -> bool {
        let name = profile["metadata"]["name"].as_str().unwrap_or_default();
        let key = super::access::key(profile);
        let hit = |g: &String| glob(g, name) || glob(g, &key);
        (self.names.is_empty() || self.names.iter().any(hit))
            && !self.exclude.iter().any(hit)
            && self.labels.matches(profile["metadata"].get("labels"))
    }
}

fn profile_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(
            crate::api::clusterprofile::PROFILE_GROUP,
            "v1alpha1",
            "ClusterProfile",
        ),
        "clusterprofiles",
    )
}

/// Every ClusterProfile on the hub (in `namespace` when given; in the cluster set's namespaces,
/// or labelled with it, when `clusterset` is given), sorted by namespace and name.
pub async fn list(
    hub: &Client,
    namespace: Option<&str>,
    clusterset: Option<&str>,
) -> Result<Vec<Value>, kube::Error> {
    let resource = profile_resource();
    let api: Api<DynamicObject> = match namespace {
        Some(ns) => Api::namespaced_with(hub.clone(), ns, &resource),
        None => Api::all_with(hub.clone(), &resource),
    };
    let profiles = api.list(&ListParams::default()).await?.items;
    let set_namespaces: Option<Vec<String>> = match clusterset {
        None => None,
        Some(set) => {
            let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(hub.clone());
            let params = ListParams::default().labels(&format!("{CLUSTERSET_LABEL}={set}"));
            Some(
                namespaces
                    .list(&params)
                    .await?
                    .items
                    .iter()
                    .map(|n| n.name_any())
                    .collect(),
            )
        }
    };
    let mut out: Vec<Value> = profiles
        .into_iter()
        .filter(|p| match (&set_namespaces, clusterset) {
            (Some(namespaces), Some(set)) => {
                namespaces.contains(&p.namespace().unwrap_or_default())
                    || p.labels().get(CLUSTERSET_LABEL).map(String::as_str) == Some(set)
            }
            _ => true,
        })
        .map(|p| serde_json::to_value(p).unwrap_or_default())
        .collect();
    out.sort_by_key(super::access::key);
    Ok(out)
}

/// A short summary of a profile for people: manager, health, version.
#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    /// `namespace/name`.
    pub key: String,
    /// Its name.
    pub name: String,
    /// `spec.clusterManager.name`.
    pub manager: String,
    /// `ControlPlaneHealthy` status: True, False or Unknown.
    pub healthy: String,
    /// `status.version.kubernetes`.
    pub version: String,
    /// Offered access providers.
    pub providers: Vec<String>,
}

/// Summarise a profile.
pub fn summary(profile: &Value) -> Summary {
    let healthy = profile["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == crate::api::clusterprofile::CONTROL_PLANE_HEALTHY)
        .and_then(|c| c["status"].as_str())
        .unwrap_or("Unknown");
    Summary {
        key: super::access::key(profile),
        name: profile["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .into(),
        manager: profile["spec"]["clusterManager"]["name"]
            .as_str()
            .unwrap_or_default()
            .into(),
        healthy: healthy.into(),
        version: profile["status"]["version"]["kubernetes"]
            .as_str()
            .unwrap_or("")
            .into(),
        providers: super::access::offered(profile)
            .iter()
            .filter_map(|o| o["name"].as_str().map(str::to_string))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn p(ns: &str, name: &str, env: &str) -> Value {
        json!({"metadata": {"name": name, "namespace": ns, "labels": {"env": env}}})
    }

    #[test]
    fn names_globs_exclusions_and_labels_narrow_the_fleet() {
        let fleet = [
            p("fleet", "prod-eu", "prod"),
            p("fleet", "prod-us", "prod"),
            p("lab", "dev-1", "dev"),
        ];
        let chosen = |f: Filter| -> Vec<String> {
            fleet
                .iter()
                .filter(|x| f.matches(x))
                .map(|x| x["metadata"]["name"].as_str().unwrap().to_string())
                .collect()
        };
        assert_eq!(chosen(Filter::default()).len(), 3);
        assert_eq!(
            chosen(Filter::parse("prod-*", "", "").unwrap()),
            ["prod-eu", "prod-us"]
        );
        assert_eq!(
            chosen(Filter::parse("prod-*,dev-1", "*-us", "").unwrap()),
            ["prod-eu", "dev-1"]
        );
        assert_eq!(chosen(Filter::parse("lab/*", "", "").unwrap()), ["dev-1"]);
        assert_eq!(
            chosen(Filter::parse("", "", "env!=prod").unwrap()),
            ["dev-1"]
        );
        let bad = Filter::parse("", "", "env in (a").unwrap_err();
        assert!(bad.starts_with("--cluster-selector \"env in (a\""), "{bad}");
    }

    #[test]
    fn a_summary_reads_manager_health_and_version() {
        let s = summary(&json!({
            "metadata": {"name": "a", "namespace": "f"},
            "spec": {"clusterManager": {"name": "open-cluster-management"}},
            "status": {"conditions": [{"type": "Joined", "status": "True"}, {"type": "ControlPlaneHealthy", "status": "False"}],
                       "version": {"kubernetes": "v1.33.1"}, "accessProviders": [{"name": "ocm", "cluster": {}}]},
        }));
        assert_eq!(s.manager, "open-cluster-management");
        assert_eq!(s.healthy, "False");
        assert_eq!(s.version, "v1.33.1");
        assert_eq!(s.providers, ["ocm"]);
        assert_eq!(summary(&json!({})).healthy, "Unknown");
    }
}
