//! Reads across the fleet: the clusters of the sig-multicluster ClusterProfile inventory, how to
//! reach each (KEP-5339 access providers), and a query run on many of them at once with a
//! concurrency limit, a timeout per cluster and partial results. One library for the `mk8`
//! CLI (`mk8 get`, `mk8 clusters`), the ClusterProfileView controller and Stacks.

pub mod access;
pub mod inventory;
pub mod latency;
pub mod query;
pub mod read;
pub mod table;

use std::path::PathBuf;

use serde_json::{Value, json};

/// The access provider name mk8 publishes for its own clusters: the kubeconfig Secret the
/// profile's exec extension names (`{name, namespace, key}`, upstream's kubeconfig-secretreader
/// contract), read by `mk8 credentials kubeconfig-secret`.
pub const MK8_PROVIDER: &str = crate::api::clusterprofile::MK8_MANAGER;

/// Environment variables that tell `mk8 credentials kubeconfig-secret` which hub holds the
/// Secret (a kubeconfig file and a context in it); unset, the usual kubeconfig rules apply
/// (`$KUBECONFIG`, `~/.kube/config`, in-cluster).
pub const HUB_KUBECONFIG_ENV: &str = "MK8_HUB_KUBECONFIG";
/// See [`HUB_KUBECONFIG_ENV`].
pub const HUB_CONTEXT_ENV: &str = "MK8_HUB_CONTEXT";

/// mk8's cache directory: `$XDG_CACHE_HOME/mk8`, else `~/.cache/mk8`.
pub fn cache_dir() -> PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache")
        })
        .join("mk8")
}

/// mk8's directory for people's settings: `$MK8_CONFIG_DIR`, else `$XDG_CONFIG_HOME/mk8`, else
/// `~/.config/mk8`.
pub fn config_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("MK8_CONFIG_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("XDG_CONFIG_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir).join("mk8");
    }
    let home = std::env::var_os("HOME").unwrap_or_default();
    PathBuf::from(home).join(".config").join("mk8")
}

/// The KEP-5339 access-provider file the CLI reads by default (`--access-providers`).
pub fn default_provider_file() -> PathBuf {
    config_dir().join("access-providers.json")
}

/// The provider-file entry for mk8's own clusters: `mk8 credentials kubeconfig-secret` run
/// from `exe` with the cluster's exec extension (`provideClusterInfo`), optionally told which
/// hub holds the Secrets.
pub fn mk8_provider(exe: &str, hub_kubeconfig: Option<&str>, hub_context: Option<&str>) -> Value {
    let mut env = Vec::new();
    if let Some(path) = hub_kubeconfig {
        env.push(json!({"name": HUB_KUBECONFIG_ENV, "value": path}));
    }
    if let Some(context) = hub_context {
        env.push(json!({"name": HUB_CONTEXT_ENV, "value": context}));
    }
    json!({
        "name": MK8_PROVIDER,
        "execConfig": {
            "apiVersion": "client.authentication.k8s.io/v1",
            "command": exe,
            "args": ["credentials", "kubeconfig-secret"],
            "env": env,
            "provideClusterInfo": true,
            "interactiveMode": "Never",
        },
    })
}
