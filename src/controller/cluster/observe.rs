//! Reads what a Cluster refers to (I/O): its credentials Secret and its NodePools.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::Secret;
use kube::api::ListParams;
use kube::{Api, ResourceExt};

use crate::api::nodepool::NodeRole;
use crate::api::{Cluster, NodePool};
use crate::controller::context::Context;
use crate::controller::error::Result;
use crate::providers::rke2::access::KNOWN_HOSTS;

/// What the validation of a Cluster needs to know about the world.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Observed {
    /// The referenced credentials Secret: `None` when absent, otherwise its data keys.
    pub credentials_keys: Option<BTreeSet<String>>,
    /// NodePools of this Cluster with `ssh.role: server`.
    pub server_pools: usize,
    /// The `known_hosts` value of the referenced Secret, when it has one.
    pub known_hosts: Option<String>,
}

/// Read the referenced Secret and count server pools.
pub async fn observe(cluster: &Cluster, ctx: &Context) -> Result<Observed> {
    let ns = cluster.namespace().unwrap_or_default();
    let secret_name = match (&cluster.spec.eks, &cluster.spec.rke2) {
        (Some(eks), _) => eks.credentials_secret_ref.as_ref().map(|r| r.name.clone()),
        (_, Some(rke2)) => Some(rke2.ssh_credentials_secret_ref.name.clone()),
        _ => None,
    };
    let secret = match secret_name {
        Some(name) => {
            Api::<Secret>::namespaced(ctx.client.clone(), &ns)
                .get_opt(&name)
                .await?
        }
        None => None,
    };
    let credentials_keys = secret.as_ref().map(secret_keys);
    let known_hosts = secret
        .as_ref()
        .and_then(|s| crate::providers::rke2::access::secret_value(s, KNOWN_HOSTS));
    let server_pools = if cluster.spec.rke2.is_some() {
        Api::<NodePool>::namespaced(ctx.client.clone(), &ns)
            .list(&ListParams::default())
            .await?
            .items
            .iter()
            .filter(|p| p.spec.cluster_name == cluster.name_any())
            .filter(|p| {
                p.spec
                    .ssh
                    .as_ref()
                    .is_some_and(|s| s.role == NodeRole::Server)
            })
            .count()
    } else {
        0
    };
    Ok(Observed {
        credentials_keys,
        server_pools,
        known_hosts,
    })
}

/// The keys of `secret` that hold a value: an empty one is as good as missing.
fn secret_keys(secret: &Secret) -> BTreeSet<String> {
    let data = secret
        .data
        .iter()
        .flatten()
        .filter(|(_, v)| !v.0.is_empty())
        .map(|(k, _)| k);
    let string_data = secret
        .string_data
        .iter()
        .flatten()
        .filter(|(_, v)| !v.trim().is_empty())
        .map(|(k, _)| k);
    data.chain(string_data).cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_with_empty_values_do_not_count() {
        let secret: Secret = serde_yaml::from_str(
            "metadata: {name: aws}\ndata: {accessKeyId: QUtJQQ==, sessionToken: ''}\nstringData: {secretAccessKey: ' '}\n",
        )
        .unwrap();
        assert_eq!(
            secret_keys(&secret).into_iter().collect::<Vec<_>>(),
            ["accessKeyId"]
        );
    }
}
