//! From the Kubernetes objects to SSH access and node configs (pure).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;

use super::config::{self, NodeConfig};
use super::plan::{DesiredNode, Role};
use crate::api::nodepool::{NodeRole, NodeStatus, SshHost, SshNodePoolSpec, Taint};
use crate::api::{Cluster, NodePool};
use crate::providers::ssh::{Credentials, HostKeyPolicy, NodeAccess};

/// Key of the private key in the SSH credentials Secret.
pub const PRIVATE_KEY: &str = "ssh-privatekey";
/// Key of the optional passphrase.
pub const PASSPHRASE: &str = "passphrase";
/// Key of the optional known_hosts content.
pub const KNOWN_HOSTS: &str = "known_hosts";
/// Key of the join token in the generated token Secret.
pub const TOKEN: &str = "token";

/// Name of the Secret holding a Cluster's generated join token.
pub fn token_secret_name(cluster: &str) -> String {
    format!("{cluster}-rke2-token")
}

/// Name of the Secret holding a Cluster's kubeconfig.
pub fn kubeconfig_secret_name(cluster: &str) -> String {
    format!("{cluster}-kubeconfig")
}

/// A value of a Secret, from `data` or `stringData`.
pub fn secret_value(secret: &Secret, key: &str) -> Option<String> {
    if let Some(v) = secret.data.as_ref().and_then(|d| d.get(key)) {
        return String::from_utf8(v.0.clone()).ok();
    }
    secret
        .string_data
        .as_ref()
        .and_then(|d| d.get(key))
        .cloned()
}

/// The credentials and known_hosts of an SSH credentials Secret.
pub fn credentials(secret: &Secret) -> Result<(Credentials, String), String> {
    let private_key = secret_value(secret, PRIVATE_KEY)
        .ok_or_else(|| format!("the SSH credentials Secret has no {PRIVATE_KEY} key"))?;
    Ok((
        Credentials {
            private_key,
            passphrase: secret_value(secret, PASSPHRASE).filter(|p| !p.is_empty()),
        },
        secret_value(secret, KNOWN_HOSTS).unwrap_or_default(),
    ))
}

/// How to reach one host of a pool.
pub fn node_access(
    host: &SshHost,
    pool: &SshNodePoolSpec,
    credentials: &Credentials,
    known_hosts: &str,
) -> NodeAccess {
    NodeAccess {
        address: host.address.clone(),
        port: host.port.unwrap_or(22) as u16,
        user: host.user.clone().unwrap_or_else(|| "root".into()),
        credentials: credentials.clone(),
        host_keys: HostKeyPolicy {
            pinned: host.host_key_fingerprint.clone(),
            known_hosts: known_hosts.to_string(),
            accept_new: pool.accept_new_host_keys,
        },
    }
}

/// Which host bootstraps the cluster: the RKE2 server started without `server:`, through whose
/// address the others register unless the Cluster names a registration address.
#[derive(Clone, Copy, Debug)]
pub enum Bootstrap<'a> {
    /// This host of this pool: the one recorded in a server pool's status (`bootstrap`), else,
    /// before one is recorded, the first host of the first (by name) server pool.
    Host(&'a NodePool, &'a SshHost),
    /// The recorded bootstrap host has left the spec of every server pool but is still listed
    /// in its pool's status (being removed, or refused); that entry.
    Gone(&'a NodePool, &'a NodeStatus),
    /// The recorded bootstrap host has been removed, or the pool that recorded it was deleted:
    /// every node joins through the Cluster's registration address.
    Retired,
    /// No server pool has hosts yet.
    Unknown,
}

impl<'a> Bootstrap<'a> {
    /// The bootstrap host, when it is in the spec.
    pub fn host(&self) -> Option<&'a SshHost> {
        match self {
            Bootstrap::Host(_, host) => Some(host),
            _ => None,
        }
    }
}

/// Server pools sorted by name.
fn by_name<'a>(server_pools: &[&'a NodePool]) -> Vec<&'a NodePool> {
    let mut pools = server_pools.to_vec();
    pools.sort_by_key(|p| p.metadata.name.clone());
    pools
}

/// The first host of the first of `pools` that has hosts.
fn first_host<'a>(pools: &[&'a NodePool]) -> Option<(&'a NodePool, &'a SshHost)> {
    pools
        .iter()
        .find_map(|p| p.ssh_hosts().first().map(|h| (*p, h)))
}

/// Find the bootstrap host of a cluster from its server pools (spec and status).
pub fn bootstrap<'a>(server_pools: &[&'a NodePool]) -> Bootstrap<'a> {
    let pools = by_name(server_pools);
    let recorded = pools.iter().find_map(|p| {
        let address = p.status.as_ref()?.bootstrap.as_deref()?;
        Some((*p, address))
    });
    if let Some((pool, address)) = recorded {
        let in_spec = pools.iter().find_map(|p| {
            let host = p.ssh_hosts().iter().find(|h| h.address == address);
            host.map(|h| (*p, h))
        });
        if let Some((pool, host)) = in_spec {
            return Bootstrap::Host(pool, host);
        }
        return match pool.node_statuses().iter().find(|n| n.address == address) {
            Some(node) => Bootstrap::Gone(pool, node),
            None => Bootstrap::Retired,
        };
    }
    // No record, yet a server joined: the pool that recorded the bootstrap host is gone (a
    // joining server cannot be Ready before the bootstrap server runs, and its pool records it
    // as soon as its install begins). Nobody bootstraps again.
    let joined = pools
        .iter()
        .any(|p| p.node_statuses().iter().any(|n| n.phase == "Ready"));
    if joined {
        return Bootstrap::Retired;
    }
    first_host(&pools).map_or(Bootstrap::Unknown, |(p, h)| Bootstrap::Host(p, h))
}

/// The registration address: the spec's, else the bootstrap host's while it is in the spec.
pub fn registration_address(cluster: &Cluster, bootstrap: &Bootstrap<'_>) -> Option<String> {
    cluster
        .spec
        .rke2
        .as_ref()
        .and_then(|r| r.registration_address.clone())
        .or_else(|| bootstrap.host().map(|h| h.address.clone()))
}

/// The server mk8 reads the kubeconfig from: the bootstrap host, else (once it is retired) the
/// first host of the first (by name) server pool that has hosts.
pub fn kubeconfig_source<'a>(
    server_pools: &[&'a NodePool],
    bootstrap: &Bootstrap<'a>,
) -> Option<(&'a NodePool, &'a SshHost)> {
    match bootstrap {
        Bootstrap::Host(pool, host) => Some((pool, host)),
        _ => first_host(&by_name(server_pools)),
    }
}

/// The desired nodes of a pool, in joining order, with their rendered config.yaml.
pub fn desired_nodes(
    cluster: &Cluster,
    pool: &NodePool,
    bootstrap: Option<&SshHost>,
    registration: &str,
    token: &str,
) -> Vec<(SshHost, DesiredNode)> {
    let (Some(rke2), Some(ssh)) = (&cluster.spec.rke2, &pool.spec.ssh) else {
        return Vec::new();
    };
    let role = match ssh.role {
        NodeRole::Server => Role::Server,
        NodeRole::Agent => Role::Agent,
    };
    let mut tls_san = vec![registration.to_string()];
    tls_san.extend(rke2.tls_san.iter().cloned());
    tls_san.dedup();
    ssh.hosts
        .iter()
        .map(|host| {
            let bootstraps = bootstrap.is_some_and(|b| b.address == host.address);
            let server = (!bootstraps).then(|| registration.to_string());
            let mut labels: BTreeMap<String, String> = ssh.labels.clone();
            labels.extend(host.labels.clone());
            let name = crate::api::nodepool::node_name(host);
            let config_yaml = config::render(&NodeConfig {
                token: token.to_string(),
                server: server.clone(),
                is_server: role == Role::Server,
                tls_san: tls_san.clone(),
                node_name: name.clone(),
                labels,
                taints: ssh.taints.iter().map(taint).collect(),
                cni: serde_json::to_value(rke2.cni)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_else(|| "canal".into()),
                extra: rke2.config.clone().unwrap_or_default(),
            });
            (
                host.clone(),
                DesiredNode {
                    name,
                    role,
                    config_yaml,
                    registration: server,
                },
            )
        })
        .collect()
}

fn taint(t: &Taint) -> String {
    let effect = serde_json::to_value(t.effect)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    match &t.value {
        Some(v) => format!("{}={v}:{effect}", t.key),
        None => format!("{}:{effect}", t.key),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server pool named `name` with hosts at `addresses`, and a status that records
    /// `bootstrap` and lists `listed` (addresses, all with a finished step).
    fn pool(name: &str, addresses: &[&str], bootstrap: Option<&str>, listed: &[&str]) -> NodePool {
        let hosts: Vec<String> = addresses
            .iter()
            .map(|a| format!("{{address: {a}}}"))
            .collect();
        let mut pool: NodePool = serde_yaml::from_str(&format!(
            "apiVersion: mk8.io/v1alpha1\nkind: NodePool\nmetadata: {{name: {name}, namespace: fleet}}\n\
             spec: {{clusterName: edge, ssh: {{role: server, hosts: [{}]}}}}\n",
            hosts.join(", ")
        ))
        .unwrap();
        let nodes = listed
            .iter()
            .map(|a| NodeStatus {
                name: format!("n-{a}"),
                address: a.to_string(),
                phase: "Ready".into(),
                step: Some("ready".into()),
                ..Default::default()
            })
            .collect();
        pool.status = Some(crate::api::nodepool::NodePoolStatus {
            bootstrap: bootstrap.map(str::to_string),
            nodes,
            ..Default::default()
        });
        pool
    }

    /// An RKE2 Cluster without `spec.rke2.registrationAddress`.
    fn unregistered() -> Cluster {
        let mut cluster = crate::api::tests::fixtures::cluster_rke2();
        cluster.spec.rke2.as_mut().unwrap().registration_address = None;
        cluster
    }

    fn host_of(b: Bootstrap<'_>) -> Option<(String, String)> {
        match b {
            Bootstrap::Host(p, h) => Some((p.metadata.name.clone().unwrap(), h.address.clone())),
            _ => None,
        }
    }

    #[test]
    fn before_anything_is_recorded_the_first_host_of_the_first_pool_by_name_bootstraps() {
        let (a, b) = (
            pool("b-servers", &["10.0.0.2"], None, &[]),
            pool("a-servers", &["10.0.0.1", "10.0.0.3"], None, &[]),
        );
        assert_eq!(
            host_of(bootstrap(&[&a, &b])),
            Some(("a-servers".into(), "10.0.0.1".into()))
        );
        assert!(matches!(bootstrap(&[]), Bootstrap::Unknown));
    }

    #[test]
    fn the_recorded_host_keeps_the_role_when_hosts_move_or_an_earlier_pool_appears() {
        // 10.0.0.1 bootstrapped; it is now second in its pool, and a pool sorting first exists.
        let recorded = pool(
            "m-servers",
            &["10.0.0.9", "10.0.0.1"],
            Some("10.0.0.1"),
            &["10.0.0.1"],
        );
        let earlier = pool("a-servers", &["10.0.0.5"], None, &[]);
        let found = bootstrap(&[&earlier, &recorded]);
        assert_eq!(
            host_of(found),
            Some(("m-servers".into(), "10.0.0.1".into()))
        );
        assert_eq!(
            registration_address(&unregistered(), &found),
            Some("10.0.0.1".into())
        );
    }

    #[test]
    fn a_removed_bootstrap_host_is_gone_while_listed_then_retired() {
        let listed = pool(
            "servers",
            &["10.0.0.2"],
            Some("10.0.0.1"),
            &["10.0.0.1", "10.0.0.2"],
        );
        match bootstrap(&[&listed]) {
            Bootstrap::Gone(p, node) => {
                assert_eq!(
                    (p.metadata.name.as_deref(), node.address.as_str()),
                    (Some("servers"), "10.0.0.1")
                );
            }
            other => panic!("{other:?}"),
        }
        let gone = pool("servers", &["10.0.0.2"], Some("10.0.0.1"), &["10.0.0.2"]);
        assert!(matches!(bootstrap(&[&gone]), Bootstrap::Retired));
        // The pool that recorded it was deleted: its joined peers do not bootstrap again.
        let peers = pool("more-servers", &["10.0.0.3"], None, &["10.0.0.3"]);
        assert!(matches!(bootstrap(&[&peers]), Bootstrap::Retired));
        // Without a recorded bootstrap host the registration address is the Cluster's only.
        let cluster = unregistered();
        assert_eq!(registration_address(&cluster, &Bootstrap::Retired), None);
        assert_eq!(
            kubeconfig_source(&[&gone], &Bootstrap::Retired).map(|(_, h)| h.address.as_str()),
            Some("10.0.0.2")
        );
    }
}
