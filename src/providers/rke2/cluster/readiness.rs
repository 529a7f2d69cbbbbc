//! Whether an RKE2 control plane is ready, and at which version (pure).

use std::collections::BTreeMap;

use crate::api::nodepool::NodeRole;
use crate::api::{NodePool, Phase};

/// Whether `pool` holds RKE2 servers.
pub(super) fn is_server_pool(pool: &NodePool) -> bool {
    pool.spec
        .ssh
        .as_ref()
        .is_some_and(|s| s.role == NodeRole::Server)
}

/// The version the server pools agree on, and `Upgrading` while any pool that converged before
/// runs another version than the spec's (pure).
pub(super) fn versions(pools: &[NodePool], wanted: &str, phase: Phase) -> (Option<String>, Phase) {
    let version_of = |p: &NodePool| p.status.as_ref().and_then(|s| s.version.clone());
    let servers: Vec<Option<String>> = pools
        .iter()
        .filter(|p| is_server_pool(p))
        .map(version_of)
        .collect();
    let agreed = match servers.first() {
        Some(Some(v)) if servers.iter().all(|s| s.as_deref() == Some(v)) => Some(v.clone()),
        _ => None,
    };
    let upgrading = pools.iter().filter_map(version_of).any(|v| v != wanted);
    (agreed, if upgrading { Phase::Upgrading } else { phase })
}

/// The nodes the pools report as installed and ready: they must be Ready in the cluster's API.
pub(super) fn installed_nodes(pools: &[NodePool]) -> Vec<String> {
    let mut names: Vec<String> = pools
        .iter()
        .filter_map(|p| p.status.as_ref())
        .flat_map(|s| &s.nodes)
        .filter(|n| n.phase == "Ready")
        .map(|n| n.name.clone())
        .collect();
    names.sort();
    names.dedup();
    names
}

/// Every expected node is registered and Ready; else which are not and why (pure).
pub(super) fn nodes_ready(
    expected: &[String],
    readiness: &BTreeMap<String, bool>,
) -> std::result::Result<(), String> {
    let missing: Vec<String> = expected
        .iter()
        .filter_map(|name| match readiness.get(name) {
            Some(true) => None,
            Some(false) => Some(format!("{name} (not Ready)")),
            None => Some(format!("{name} (not registered)")),
        })
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(missing.join(", "))
    }
}

/// Replace the loopback API address RKE2 writes with the registration endpoint (pure).
pub fn point_at(kubeconfig: &str, endpoint: &str) -> String {
    kubeconfig
        .replace("https://127.0.0.1:6443", endpoint)
        .replace("https://localhost:6443", endpoint)
        .replace("https://[::1]:6443", endpoint)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(name: &str, role: &str, version: Option<&str>) -> NodePool {
        let mut p: NodePool = serde_yaml::from_str(&format!(
            "apiVersion: mk8.io/v1alpha1\nkind: NodePool\nmetadata: {{name: {name}, namespace: fleet}}\nspec:\n  clusterName: edge\n  ssh: {{role: {role}, hosts: [{{address: 10.0.0.1}}]}}\n"
        ))
        .unwrap();
        p.status = Some(crate::api::NodePoolStatus {
            version: version.map(str::to_string),
            ..Default::default()
        });
        p
    }

    #[test]
    fn the_version_is_the_servers_and_a_pool_behind_the_spec_means_upgrading() {
        let v1 = "v1.33.1+rke2r1";
        let v2 = "v1.33.2+rke2r1";
        let pools = [pool("s", "server", Some(v1)), pool("a", "agent", Some(v1))];
        assert_eq!(
            versions(&pools, v1, Phase::Ready),
            (Some(v1.into()), Phase::Ready)
        );
        assert_eq!(
            versions(&pools, v2, Phase::Ready),
            (Some(v1.into()), Phase::Upgrading)
        );
        let pools = [pool("s", "server", Some(v2)), pool("a", "agent", Some(v1))];
        assert_eq!(
            versions(&pools, v2, Phase::Ready),
            (Some(v2.into()), Phase::Upgrading)
        );
        // A fresh install is provisioning, not upgrading; servers that disagree have no version.
        let pools = [pool("s", "server", None), pool("t", "server", Some(v1))];
        assert_eq!(
            versions(&pools, v1, Phase::Provisioning),
            (None, Phase::Provisioning)
        );
    }

    #[test]
    fn every_installed_node_must_be_ready_in_the_api() {
        let expected = vec!["a".to_string(), "b".into(), "c".into()];
        let readiness = BTreeMap::from([
            ("a".to_string(), true),
            ("b".into(), false),
            ("x".into(), false),
        ]);
        assert_eq!(
            nodes_ready(&expected, &readiness),
            Err("b (not Ready), c (not registered)".into())
        );
        let readiness = BTreeMap::from([
            ("a".to_string(), true),
            ("b".into(), true),
            ("c".into(), true),
        ]);
        assert_eq!(nodes_ready(&expected, &readiness), Ok(()));
    }

    #[test]
    fn the_kubeconfig_points_at_the_registration_address() {
        let rke2 = "clusters:\n- cluster:\n    server: https://127.0.0.1:6443\n  name: default\n";
        assert_eq!(
            point_at(rke2, "https://10.0.0.10:6443"),
            "clusters:\n- cluster:\n    server: https://10.0.0.10:6443\n  name: default\n"
        );
    }
}
