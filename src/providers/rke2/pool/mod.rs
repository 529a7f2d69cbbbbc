//! RKE2 node work of an SSH NodePool. A reconcile never waits for the install: it starts the
//! plan in a background job ([`jobs`]), and each reconcile reports the job's progress in status
//! ([`summary`], pure). A job lost with an operator restart is simply started again: the plan
//! reads the markers on the nodes and skips every finished step. Stages: `mod.rs` gathers the
//! inputs (I/O: Secrets), `jobs` runs plan then execute (I/O: SSH), `summary` derives status,
//! `cleanup` and `removal` take nodes away.

mod cleanup;
mod jobs;
mod removal;
mod summary;

use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::{Api, ResourceExt};
use sha2::{Digest, Sha256};

use super::Rke2;
use crate::api::nodepool::{NodeRole, NodeStatus, node_name};
use crate::api::{Cluster, NodePool};
use crate::providers::PoolOutcome;
use crate::providers::rke2::access::{self, Bootstrap};
use crate::providers::rke2::execute::Target;
use crate::providers::rke2::plan;
use crate::reconcile::conditions::{self, Desired, types};
use crate::reconcile::env::Env;
use crate::reconcile::error::Result;
use removal::{Leaving, REMOVING};

pub use cleanup::{cleanup, uninstall_script};
use jobs::Install;
pub use jobs::Jobs;
use summary::summarise;

/// Condition type: some nodes failed while the others proceeded.
pub const DEGRADED: &str = "Degraded";

/// Reasons of the RKE2 stage.
pub mod reasons {
    /// An agent pool waits until the Cluster's servers are ready.
    pub const WAITING_FOR_CONTROL_PLANE: &str = "WaitingForControlPlane";
    /// The Cluster has not generated its join token yet.
    pub const WAITING_FOR_TOKEN: &str = "WaitingForToken";
    /// The SSH credentials Secret is missing or incomplete.
    pub const SECRET_MISSING: &str = "SecretMissing";
    /// Release files could not be fetched or did not match their checksums.
    pub const ARTIFACTS_UNAVAILABLE: &str = "ArtifactsUnavailable";
    /// Nodes are being installed.
    pub const JOINING: &str = "Joining";
    /// Every node joined and is ready.
    pub const NODES_READY: &str = "NodesReady";
    /// Some nodes failed.
    pub const NODES_FAILED: &str = "NodesFailed";
    /// No node failed.
    pub const NO_FAILURES: &str = "NoFailures";
    /// The host that bootstrapped the cluster left the spec while the others register through
    /// its address.
    pub const BOOTSTRAP_SERVER_REMOVED: &str = "BootstrapServerRemoved";
}

/// How long a finished job with failed nodes waits before trying them again.
const RETRY_FAILED: Duration = Duration::from_secs(60);

/// Drive the pool's nodes towards the spec: inputs (credentials, token, registration address)
/// → desired nodes → the pool's background job; `None` when the Cluster has no `spec.rke2`.
pub async fn reconcile(
    provider: &Rke2,
    env: &Env,
    pool: &NodePool,
    cluster: &Cluster,
    siblings: &[NodePool],
) -> Result<Option<PoolOutcome>> {
    let (Some(ssh), Some(rke2)) = (&pool.spec.ssh, &cluster.spec.rke2) else {
        return Ok(None);
    };
    let ns = pool.namespace().unwrap_or_default();
    let mut all_pools: Vec<&NodePool> = siblings.iter().collect();
    all_pools.push(pool);
    let server_pools: Vec<&NodePool> = all_pools
        .iter()
        .copied()
        .filter(|p| {
            p.spec
                .ssh
                .as_ref()
                .is_some_and(|s| s.role == NodeRole::Server)
        })
        .collect();
    let previous = pool
        .status
        .as_ref()
        .map(|s| s.nodes.clone())
        .unwrap_or_default();
    let blocked = |reason: &'static str, message: String, after: u64| {
        Ok(Some(PoolOutcome {
            conditions: vec![Desired::no(types::READY, reason, message)],
            nodes: previous.clone(),
            ready: 0,
            version: pool.status.as_ref().and_then(|s| s.version.clone()),
            bootstrap: None,
            requeue: Some(Duration::from_secs(after)),
        }))
    };
    if ssh.role == NodeRole::Agent {
        // During an upgrade the agents follow once every server runs the new version.
        let waiting: Vec<String> = server_pools
            .iter()
            .filter(|p| !is_ready(p) || !runs(p, &rke2.version))
            .map(|p| {
                if is_ready(p) {
                    format!("{} (upgrading to {})", p.name_any(), rke2.version)
                } else {
                    p.name_any()
                }
            })
            .collect();
        if server_pools.is_empty() || !waiting.is_empty() {
            return blocked(
                reasons::WAITING_FOR_CONTROL_PLANE,
                format!(
                    "agents join once the control plane of Cluster {} is ready; waiting for server pools: {}",
                    cluster.name_any(),
                    if waiting.is_empty() {
                        "(none defined)".into()
                    } else {
                        waiting.join(", ")
                    }
                ),
                10,
            );
        }
    }
    let secrets: Api<Secret> = Api::namespaced(env.client.clone(), &ns);
    let secret_name = &rke2.ssh_credentials_secret_ref.name;
    let credentials = match secrets
        .get_opt(secret_name)
        .await?
        .map(|s| access::credentials(&s))
    {
        Some(Ok(c)) => c,
        Some(Err(e)) => {
            return blocked(
                reasons::SECRET_MISSING,
                format!("Secret {ns}/{secret_name}: {e}"),
                30,
            );
        }
        None => {
            return blocked(
                reasons::SECRET_MISSING,
                format!(
                    "Secret {ns}/{secret_name} named by spec.rke2.sshCredentialsSecretRef of Cluster {} does not exist",
                    cluster.name_any()
                ),
                30,
            );
        }
    };
    let Some(token) = token(cluster, &secrets).await? else {
        return blocked(
            reasons::WAITING_FOR_TOKEN,
            format!(
                "waiting for Cluster {} to generate its join token",
                cluster.name_any()
            ),
            5,
        );
    };
    let bootstrap = access::bootstrap(&server_pools);
    let registration = match (access::registration_address(cluster, &bootstrap), bootstrap) {
        (Some(registration), _) => registration,
        (None, Bootstrap::Gone(from, node)) => {
            return blocked(
                reasons::BOOTSTRAP_SERVER_REMOVED,
                format!(
                    "host {} (node {}) bootstrapped Cluster {c} and the other nodes register \
                     through its address, so it cannot leave spec.ssh.hosts of NodePool {}: put \
                     it back, or first set spec.rke2.registrationAddress of Cluster {c} to a \
                     load balancer or DNS name in front of the servers, then remove it",
                    node.address,
                    node.name,
                    from.name_any(),
                    c = cluster.name_any(),
                ),
                30,
            );
        }
        (None, Bootstrap::Retired) => {
            return blocked(
                reasons::BOOTSTRAP_SERVER_REMOVED,
                format!(
                    "the host that bootstrapped Cluster {c} was removed, so its nodes need \
                     spec.rke2.registrationAddress of Cluster {c} to register through: set it \
                     to a load balancer or DNS name in front of the servers",
                    c = cluster.name_any(),
                ),
                30,
            );
        }
        (None, _) => String::new(),
    };
    let nodes = access::desired_nodes(cluster, pool, bootstrap.host(), &registration, &token);
    // The bootstrap host of this pool (recorded in status once its install begins).
    let bootstraps_here = match bootstrap {
        Bootstrap::Host(p, host) if p.uid() == pool.uid() && p.name_any() == pool.name_any() => {
            Some(host.address.clone())
        }
        _ => None,
    };
    let targets: Vec<Target> = nodes
        .iter()
        .map(|(host, d)| Target {
            name: d.name.clone(),
            access: pinned_access(host, ssh, &credentials, &previous),
        })
        .collect();
    let leaving: Vec<Leaving> = previous
        .iter()
        .filter(|n| !nodes.iter().any(|(_, d)| d.name == n.name))
        .filter(|n| n.step.is_some() || n.phase == REMOVING)
        .map(|n| Leaving::from_status(n, &credentials.0, &credentials.1))
        .collect();
    let kubeconfig = secrets
        .get_opt(&access::kubeconfig_secret_name(&cluster.name_any()))
        .await?
        .and_then(|s| access::secret_value(&s, "value"));
    let digest = job_digest(cluster, pool, &nodes, &targets, &leaving);
    let key = pool
        .uid()
        .unwrap_or_else(|| format!("{ns}/{}", pool.name_any()));

    let state = provider.jobs.current(&key, &digest, bootstraps_here, || {
        jobs::start(
            provider.shell.clone(),
            &provider.artifact_cache,
            cluster,
            pool,
            Install {
                nodes,
                targets,
                leaving,
                kubeconfig,
            },
            digest.clone(),
        )
    });
    Ok(Some(summarise(pool, &previous, &state)))
}

/// How mk8 reaches a host of the spec: a key learned on an earlier contact (kept in status) is
/// pinned unless the spec pins one.
fn pinned_access(
    host: &crate::api::nodepool::SshHost,
    ssh: &crate::api::nodepool::SshNodePoolSpec,
    credentials: &(crate::providers::ssh::Credentials, String),
    previous: &[NodeStatus],
) -> crate::providers::ssh::NodeAccess {
    let mut access = access::node_access(host, ssh, &credentials.0, &credentials.1);
    if access.host_keys.pinned.is_none() {
        let name = node_name(host);
        access.host_keys.pinned = previous
            .iter()
            .find(|n| n.name == name && n.address == host.address && n.host_key_learned)
            .and_then(|n| n.host_key_fingerprint.clone());
    }
    access
}

/// Whether every node of `pool` runs `version`.
fn runs(pool: &NodePool, version: &str) -> bool {
    pool.status
        .as_ref()
        .and_then(|s| s.version.as_deref())
        .is_some_and(|v| v == version)
}

fn is_ready(pool: &NodePool) -> bool {
    let status = pool.status.as_ref();
    status.is_some_and(|s| s.observed_generation == pool.metadata.generation)
        && conditions::find(
            status.map(|s| s.conditions.as_slice()).unwrap_or_default(),
            types::READY,
        )
        .is_some_and(|c| c.status == "True")
}

/// The join token: `spec.rke2.config.token` when given, else the generated Secret's.
async fn token(cluster: &Cluster, secrets: &Api<Secret>) -> Result<Option<String>> {
    if let Some(t) = cluster
        .spec
        .rke2
        .as_ref()
        .and_then(|r| r.config.as_ref())
        .and_then(|c| c.get("token"))
        .and_then(|t| t.as_str())
    {
        return Ok(Some(t.to_string()));
    }
    Ok(secrets
        .get_opt(&access::token_secret_name(&cluster.name_any()))
        .await?
        .and_then(|s| access::secret_value(&s, access::TOKEN)))
}

fn job_digest(
    cluster: &Cluster,
    pool: &NodePool,
    nodes: &[(crate::api::nodepool::SshHost, plan::DesiredNode)],
    targets: &[Target],
    leaving: &[Leaving],
) -> String {
    let mut h = Sha256::new();
    h.update(serde_json::to_vec(&cluster.spec.rke2).unwrap_or_default());
    h.update(
        pool.spec
            .ssh
            .as_ref()
            .map(|s| s.max_parallel)
            .unwrap_or(1)
            .to_le_bytes(),
    );
    for ((_, node), target) in nodes.iter().zip(targets) {
        h.update(node.config_yaml.as_bytes());
        h.update(format!("{:?}|{:?}", target.access, target.access.host_keys).as_bytes());
    }
    for node in leaving {
        h.update(b"leaving:");
        h.update(node.name.as_bytes());
    }
    hex::encode(&h.finalize()[..12])
}
