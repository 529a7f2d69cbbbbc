//! Removing RKE2 from a NodePool's nodes behind its finalizer (I/O): agents before servers, the
//! bootstrap server last, each node drained, uninstalled and cleaned.

use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::{Api, ResourceExt};

use super::removal::{self, Leaving, REMOVING};
use super::{Rke2, pinned_access};
use crate::api::nodepool::{NodeRole, NodeStatus, node_name};
use crate::api::{Cluster, NodePool};
use crate::providers::rke2::access;
use crate::providers::rke2::nodes::{NodeApi, WorkloadCluster};
use crate::providers::rke2::plan;
use crate::reconcile::duration::parse_duration;
use crate::reconcile::env::Env;
use crate::reconcile::error::{Error, Result};

/// The script that removes RKE2 from a node: stop what mk8 started, run `rke2-uninstall.sh`
/// when install.sh put it there, and remove mk8's files (markers go with RKE2's data dir).
pub fn uninstall_script() -> crate::providers::ssh::Script {
    let script = r#"
state="$1"; prefix="$2"
if [ -f "$state/rke2.pid" ]; then kill "$(cat "$state/rke2.pid")" 2>/dev/null || true; fi
if [ -x "$prefix/bin/rke2-uninstall.sh" ]; then "$prefix/bin/rke2-uninstall.sh"; fi
rm -rf /var/lib/rancher/mk8 "$state"
"#;
    crate::providers::ssh::Script::of(crate::providers::ssh::Cmd::new("sh").args([
        "-c",
        script,
        "mk8-uninstall",
        plan::MARKER_DIR,
        plan::PREFIX,
    ]))
}

/// Remove RKE2 from the pool's nodes before its finalizer goes; `None` when this stage does not
/// apply. Agents go first: a server pool waits while agent pools of its Cluster remain. Nodes
/// mk8 never reached are skipped; a node that cannot be cleaned keeps the finalizer.
pub async fn cleanup(
    provider: &Rke2,
    env: &Env,
    pool: &NodePool,
) -> Result<Option<kube::runtime::controller::Action>> {
    let Some(ssh) = &pool.spec.ssh else {
        return Ok(None);
    };
    let shell = provider.shell.clone();
    let ns = pool.namespace().unwrap_or_default();
    let touched: Vec<&NodeStatus> = pool
        .status
        .iter()
        .flat_map(|s| &s.nodes)
        .filter(|n| n.step.is_some() || n.phase == REMOVING)
        .collect();
    if let Some(uid) = pool.uid() {
        provider.jobs.forget(&uid);
    }
    let Some(cluster) = Api::<Cluster>::namespaced(env.client.clone(), &ns)
        .get_opt(&pool.spec.cluster_name)
        .await?
    else {
        if !touched.is_empty() {
            tracing::warn!(pool = %pool.name_any(), "Cluster gone: nodes are released without uninstalling RKE2");
        }
        return Ok(Some(kube::runtime::controller::Action::await_change()));
    };
    if ssh.role == NodeRole::Server {
        let siblings: Vec<NodePool> = Api::<NodePool>::namespaced(env.client.clone(), &ns)
            .list(&kube::api::ListParams::default())
            .await?
            .items
            .into_iter()
            .filter(|p| p.spec.cluster_name == pool.spec.cluster_name && p.uid() != pool.uid())
            .collect();
        // Sibling pools of `role`; with `staying`, only those not being deleted.
        let pools_of = |role: NodeRole, staying: bool| -> Vec<String> {
            siblings
                .iter()
                .filter(|p| p.spec.ssh.as_ref().is_some_and(|s| s.role == role))
                .filter(|p| !staying || p.metadata.deletion_timestamp.is_none())
                .map(|p| p.name_any())
                .collect()
        };
        // The servers of the pools that stay register through the bootstrap host's address.
        let staying = pools_of(NodeRole::Server, true);
        let bootstrap = pool.status.as_ref().and_then(|s| s.bootstrap.as_deref());
        let registration = cluster
            .spec
            .rke2
            .as_ref()
            .and_then(|r| r.registration_address.as_deref());
        if let (Some(address), None, false) = (bootstrap, registration, staying.is_empty())
            && cluster.metadata.deletion_timestamp.is_none()
        {
            return Err(Error::CleanupBlocked(format!(
                "server pool {} holds host {address}, which bootstrapped Cluster {c}, and the \
                 servers of {} register through its address: set spec.rke2.registrationAddress \
                 of Cluster {c} to a load balancer or DNS name in front of the servers first, \
                 or delete those pools too",
                pool.name_any(),
                staying.join(", "),
                c = pool.spec.cluster_name,
            )));
        }
        let agents = pools_of(NodeRole::Agent, false);
        if !agents.is_empty() {
            return Err(Error::CleanupBlocked(format!(
                "server pool {} is removed after the agent pools of Cluster {}: waiting for {} to be deleted",
                pool.name_any(),
                pool.spec.cluster_name,
                agents.join(", ")
            )));
        }
    }
    if touched.is_empty() {
        return Ok(Some(kube::runtime::controller::Action::await_change()));
    }
    let Some(rke2) = &cluster.spec.rke2 else {
        return Ok(None);
    };
    let secret_name = &rke2.ssh_credentials_secret_ref.name;
    let secrets: Api<Secret> = Api::namespaced(env.client.clone(), &ns);
    let Some(Ok((credentials, known_hosts))) = secrets
        .get_opt(secret_name)
        .await?
        .map(|s| access::credentials(&s))
    else {
        return Err(Error::CleanupBlocked(format!(
            "Secret {ns}/{secret_name} with the SSH key is needed to uninstall RKE2 from the nodes of {}",
            pool.name_any()
        )));
    };
    let timeout = parse_duration(&ssh.step_timeout).unwrap_or(Duration::from_secs(600));
    let previous: Vec<NodeStatus> = pool.status.iter().flat_map(|s| s.nodes.clone()).collect();
    let credentials = (credentials, known_hosts);
    let leaving: Vec<Leaving> = touched
        .iter()
        .map(|node| {
            let mut leaving = Leaving::from_status(node, &credentials.0, &credentials.1);
            if let Some(host) = ssh.hosts.iter().find(|h| node_name(h) == node.name) {
                leaving.access = pinned_access(host, ssh, &credentials, &previous);
            }
            leaving
        })
        .collect();
    let kubeconfig = secrets
        .get_opt(&access::kubeconfig_secret_name(&cluster.name_any()))
        .await?
        .and_then(|s| access::secret_value(&s, "value"));
    let api = match kubeconfig.as_deref().map(WorkloadCluster::from_kubeconfig) {
        Some(Ok(api)) => Some(api),
        Some(Err(e)) => {
            tracing::warn!(pool = %pool.name_any(), error = %e, "the cluster's kubeconfig is unusable");
            None
        }
        None => None,
    };
    let uninstall = uninstall_script();
    let plan = removal::Plan {
        api: api.as_ref().map(|a| a as &dyn NodeApi),
        cluster_deleting: cluster.metadata.deletion_timestamp.is_some(),
        timeout,
        parallel: if ssh.role == NodeRole::Server {
            1
        } else {
            ssh.max_parallel.max(1) as usize
        },
        uninstall: &uninstall,
    };
    let progress = removal::Progress::default();
    removal::remove(shell.as_ref(), &leaving, &plan, &progress).await;
    let failures: Vec<String> = progress
        .lock()
        .expect("removal progress")
        .iter()
        .filter(|(_, p)| !p.done)
        .map(|(name, p)| format!("{name} ({}): {}", p.step, p.message))
        .collect();
    if !failures.is_empty() {
        return Err(Error::CleanupBlocked(format!(
            "RKE2 could not be removed from every node of {}: {}",
            pool.name_any(),
            failures.join("; ")
        )));
    }
    tracing::info!(pool = %pool.name_any(), nodes = touched.len(), "RKE2 uninstalled");
    Ok(Some(kube::runtime::controller::Action::await_change()))
}
