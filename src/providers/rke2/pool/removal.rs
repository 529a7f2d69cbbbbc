//! Taking nodes out of an RKE2 cluster (I/O): cordon and drain through the cluster's API, delete
//! the Node object, then uninstall RKE2 over SSH. Used when a host leaves a pool's spec (scale
//! down) and when a pool is deleted. Every node's progress is kept in its status entry (phase
//! `Removing`, step `drain` → `uninstall`) so an interrupted removal resumes where it stopped.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::api::nodepool::NodeStatus;
use crate::providers::NodeShell;
use crate::providers::rke2::nodes::NodeApi;
use crate::providers::ssh::{Credentials, HostKeyPolicy, NodeAccess};

/// The phase of a node being removed.
pub const REMOVING: &str = "Removing";
/// Step: cordon, drain and delete the Node object.
pub const STEP_DRAIN: &str = "drain";
/// Step: run the uninstall over SSH.
pub const STEP_UNINSTALL: &str = "uninstall";

/// A node to take out.
#[derive(Clone, Debug)]
pub struct Leaving {
    /// Kubernetes node name.
    pub name: String,
    /// How to reach it over SSH.
    pub access: NodeAccess,
    /// Whether it joined the cluster (then it must be drained through the API first).
    pub joined: bool,
    /// Whether the drain already happened in an earlier attempt.
    pub drained: bool,
}

impl Leaving {
    /// A node from its last status entry (the host may be gone from the spec): the recorded
    /// port, user and host key; the Secret's known_hosts; never learning a new key.
    pub fn from_status(node: &NodeStatus, credentials: &Credentials, known_hosts: &str) -> Self {
        Leaving {
            name: node.name.clone(),
            access: NodeAccess {
                address: node.address.clone(),
                port: node.port.unwrap_or(22).clamp(1, 65535) as u16,
                user: node.user.clone().unwrap_or_else(|| "root".into()),
                credentials: credentials.clone(),
                host_keys: HostKeyPolicy {
                    pinned: node.host_key_fingerprint.clone(),
                    known_hosts: known_hosts.to_string(),
                    accept_new: false,
                },
            },
            joined: joined(node),
            drained: node.phase == REMOVING && node.step.as_deref() == Some(STEP_UNINSTALL),
        }
    }
}

/// Whether a node may be registered in the cluster: it got as far as starting RKE2 (or its
/// removal already began, when that cannot be told any more; draining an absent Node is a no-op).
fn joined(node: &NodeStatus) -> bool {
    match (node.phase.as_str(), node.step.as_deref()) {
        ("Pending", _) => false,
        ("Ready", _) | (REMOVING, _) => true,
        (_, Some("preflight" | "upload" | "config" | "install") | None) => false,
        _ => true,
    }
}

/// Where one node's removal stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemovalProgress {
    /// `drain` or `uninstall`.
    pub step: &'static str,
    /// What is happening or what went wrong.
    pub message: String,
    /// Finished: the node is out of the cluster and clean.
    pub done: bool,
    /// The last attempt failed (`message` says why).
    pub failed: bool,
}

/// Shared progress of a removal, by node name.
pub type Progress = Arc<Mutex<BTreeMap<String, RemovalProgress>>>;

/// How to remove.
pub struct Plan<'a> {
    /// The cluster's API, when its kubeconfig is available.
    pub api: Option<&'a dyn NodeApi>,
    /// The whole Cluster is being deleted: an API that cannot be reached (its servers are
    /// gone) does not stop the uninstall.
    pub cluster_deleting: bool,
    /// Time allowed for one drain and for one uninstall.
    pub timeout: Duration,
    /// How many nodes drain at once (servers: 1, keeping etcd quorum).
    pub parallel: usize,
    /// The uninstall script.
    pub uninstall: &'a crate::providers::ssh::Script,
}

/// Drain (and delete the Node of) every node, then uninstall them all; `progress` follows along.
/// Nodes are drained before any is uninstalled, so a server's API stays up while the others
/// drain through it.
pub async fn remove(
    shell: &dyn NodeShell,
    nodes: &[Leaving],
    plan: &Plan<'_>,
    progress: &Progress,
) {
    for node in nodes {
        let step = if node.drained {
            STEP_UNINSTALL
        } else {
            STEP_DRAIN
        };
        set(
            progress,
            &node.name,
            step,
            "waiting to be removed".into(),
            None,
        );
    }
    let slots = tokio::sync::Semaphore::new(plan.parallel.max(1));
    let drains = nodes.iter().map(|node| {
        let slots = &slots;
        async move {
            if node.drained {
                return Some(node);
            }
            let _slot = slots.acquire().await.expect("semaphore open");
            set(
                progress,
                &node.name,
                STEP_DRAIN,
                "cordoning and draining".into(),
                None,
            );
            match drain(node, plan).await {
                Ok(note) => {
                    set(progress, &node.name, STEP_UNINSTALL, note, None);
                    Some(node)
                }
                Err(message) => {
                    set(progress, &node.name, STEP_DRAIN, message, Some(false));
                    None
                }
            }
        }
    });
    let drained: Vec<&Leaving> = futures::future::join_all(drains)
        .await
        .into_iter()
        .flatten()
        .collect();
    let uninstalls = drained.into_iter().map(|node| async move {
        let (message, done) = match shell.run(&node.access, plan.uninstall, plan.timeout).await {
            Ok(out) if out.success() => ("removed".to_string(), true),
            Ok(out) => (
                format!(
                    "uninstall on {} exited {}: {}",
                    node.access.address,
                    out.status.map_or("by signal".into(), |s| s.to_string()),
                    out.stderr_tail()
                ),
                false,
            ),
            Err(e) => (e.to_string(), false),
        };
        set(progress, &node.name, STEP_UNINSTALL, message, Some(done));
    });
    futures::future::join_all(uninstalls).await;
}

/// Record a node's removal progress; `outcome` is `Some(done)` once an attempt ended.
fn set(
    progress: &Progress,
    name: &str,
    step: &'static str,
    message: String,
    outcome: Option<bool>,
) {
    progress.lock().expect("removal progress").insert(
        name.to_string(),
        RemovalProgress {
            step,
            message,
            done: outcome == Some(true),
            failed: outcome == Some(false),
        },
    );
}

/// Cordon, drain and delete the Node object; the note says what happened.
async fn drain(node: &Leaving, plan: &Plan<'_>) -> Result<String, String> {
    if !node.joined {
        return Ok("never joined: nothing to drain".into());
    }
    let Some(api) = plan.api else {
        if plan.cluster_deleting {
            return Ok("the cluster's API is gone with the Cluster: not drained".into());
        }
        return Err(format!(
            "cannot drain {}: the cluster's kubeconfig Secret is not available yet",
            node.name
        ));
    };
    let result = match api.drain(&node.name, plan.timeout).await {
        Ok(()) => api.delete_node(&node.name).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => Ok("drained; Node object deleted".into()),
        Err(e) if plan.cluster_deleting && e.is_unreachable() => {
            tracing::warn!(node = %node.name, error = %e, "the cluster's API is unreachable while the Cluster is deleted: uninstalling without a drain");
            Ok(format!(
                "not drained (the cluster's API is unreachable: {e})"
            ))
        }
        Err(e) => Err(format!("draining {}: {e}", node.name)),
    }
}
