//! From the Kubernetes objects to SSH access and node configs (pure).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;

use super::config::{self, NodeConfig};
use super::plan::{DesiredNode, Role};
use crate::api::nodepool::{NodeRole, SshHost, SshNodePoolSpec, Taint};
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

/// The registration address: the spec's, else the first host of the first server pool.
pub fn registration_address(cluster: &Cluster, server_pools: &[&NodePool]) -> Option<String> {
    cluster
        .spec
        .rke2
        .as_ref()
        .and_then(|r| r.registration_address.clone())
        .or_else(|| first_server(server_pools).map(|h| h.address.clone()))
}

/// The host that bootstraps the cluster: the first host of the first (by name) server pool.
pub fn first_server<'a>(server_pools: &[&'a NodePool]) -> Option<&'a SshHost> {
    let mut pools: Vec<&&NodePool> = server_pools.iter().collect();
    pools.sort_by_key(|p| p.metadata.name.clone());
    pools
        .first()
        .and_then(|p| p.spec.ssh.as_ref())
        .and_then(|s| s.hosts.first())
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
            let name = crate::controller::nodepool::node_name(host);
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
