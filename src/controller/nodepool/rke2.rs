//! RKE2 node work of an SSH NodePool (I/O). A reconcile never waits for the install: it starts
//! the plan in a background job, and each reconcile reports the job's progress in status. A job
//! lost with an operator restart is simply started again: the plan reads the markers on the
//! nodes and skips every finished step.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Secret;
use kube::{Api, ResourceExt};
use sha2::{Digest, Sha256};

use super::observe::Observed;
use super::removal::{self, Leaving, REMOVING, RemovalProgress};
use crate::api::nodepool::{NodeRole, NodeStatus};
use crate::api::{Cluster, NodePool};
use crate::controller::conditions::{self, Desired, types};
use crate::controller::context::Context;
use crate::controller::error::Result;
use crate::providers::NodeShell;
use crate::providers::rke2::access::{self, Bootstrap};
use crate::providers::rke2::artifacts::{ArtifactCache, Source};
use crate::providers::rke2::execute::{self, Options, Phase, Progress, Target};
use crate::providers::rke2::nodes::{NodeApi, WorkloadCluster};
use crate::providers::rke2::plan;
use crate::providers::ssh::KeyVerdict;

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

/// What the stage adds to the pool's status.
pub struct Work {
    /// Conditions (Ready, Degraded).
    pub conditions: Vec<Desired>,
    /// Per-node progress.
    pub nodes: Vec<NodeStatus>,
    /// Nodes ready.
    pub ready: i32,
    /// The version every node converged on, once they all have.
    pub version: Option<String>,
    /// Address of this pool's host that bootstrapped the cluster, once its install began.
    pub bootstrap: Option<String>,
    /// When to look again.
    pub requeue: Option<Duration>,
}

/// How long a finished job with failed nodes waits before trying them again.
const RETRY_FAILED: Duration = Duration::from_secs(60);

/// How a job ended: `Err((message, reason))` when it could not start installing.
type JobResult = Arc<Mutex<Option<std::result::Result<(), (String, &'static str)>>>>;

struct Job {
    digest: String,
    version: String,
    progress: Arc<Mutex<BTreeMap<String, Progress>>>,
    removals: removal::Progress,
    learned: Learned,
    result: JobResult,
    finished_at: Arc<Mutex<Option<Instant>>>,
}

/// Host keys learned on first contact, by node name.
type Learned = Arc<Mutex<BTreeMap<String, String>>>;

/// Background jobs by NodePool uid.
static JOBS: LazyLock<Mutex<HashMap<String, Job>>> = LazyLock::new(Mutex::default);

/// Directory of the operator's artifact cache (`MK8_ARTIFACT_CACHE`, default under the temp dir).
pub fn cache_dir() -> std::path::PathBuf {
    std::env::var_os("MK8_ARTIFACT_CACHE")
        .map(Into::into)
        .unwrap_or_else(|| std::env::temp_dir().join("mk8-artifacts"))
}

/// Drive the pool's nodes towards the spec; `None` when the RKE2 stage does not apply.
pub async fn run(
    pool: &NodePool,
    observed: &Observed,
    ctx: &Context,
    validated: bool,
) -> Result<Option<Work>> {
    let (Some(shell), Some(cluster), Some(ssh)) =
        (ctx.providers.ssh.clone(), &observed.cluster, &pool.spec.ssh)
    else {
        return Ok(None);
    };
    let Some(rke2) = &cluster.spec.rke2 else {
        return Ok(None);
    };
    if !validated || pool.spec.paused || pool.metadata.deletion_timestamp.is_some() {
        return Ok(None);
    }
    let ns = pool.namespace().unwrap_or_default();
    let mut all_pools: Vec<&NodePool> = observed.siblings.iter().collect();
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
        Ok(Some(Work {
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
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &ns);
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

    let (progress, result, finished_at, version) = {
        let mut jobs = JOBS.lock().expect("jobs lock");
        let stale = match jobs.get(&key) {
            None => true,
            Some(job) if job.digest != digest => true,
            Some(job) => {
                let failed = job
                    .progress
                    .lock()
                    .expect("progress")
                    .values()
                    .any(|p| p.phase != Phase::Ready)
                    || job
                        .removals
                        .lock()
                        .expect("removals")
                        .values()
                        .any(|r| !r.done);
                let retry = job
                    .finished_at
                    .lock()
                    .expect("finished")
                    .is_some_and(|t| t.elapsed() >= RETRY_FAILED);
                failed && retry
            }
        };
        if stale {
            let job = start_job(
                shell,
                cluster,
                pool,
                Install {
                    nodes,
                    targets,
                    leaving,
                    kubeconfig,
                },
                digest,
            );
            jobs.insert(key.clone(), job);
        }
        let job = &jobs[&key];
        (
            (
                job.progress.clone(),
                job.removals.clone(),
                job.learned.clone(),
            ),
            job.result.clone(),
            job.finished_at.clone(),
            job.version.clone(),
        )
    };
    let state = JobState {
        version,
        bootstrap: bootstraps_here,
        progress: progress.0.lock().expect("progress").clone(),
        removals: progress.1.lock().expect("removals").clone(),
        learned: progress.2.lock().expect("learned").clone(),
        result: result.lock().expect("result").clone(),
        finished: finished_at.lock().expect("finished").is_some(),
    };
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
        let name = super::node_name(host);
        access.host_keys.pinned = previous
            .iter()
            .find(|n| n.name == name && n.address == host.address && n.host_key_learned)
            .and_then(|n| n.host_key_fingerprint.clone());
    }
    access
}

/// What a job works on.
struct Install {
    nodes: Vec<(crate::api::nodepool::SshHost, plan::DesiredNode)>,
    targets: Vec<Target>,
    leaving: Vec<Leaving>,
    kubeconfig: Option<String>,
}

/// A snapshot of a job, for status.
struct JobState {
    /// The RKE2 version the job installs.
    version: String,
    /// Address of this pool's host that bootstraps the cluster, if it is in this pool.
    bootstrap: Option<String>,
    progress: BTreeMap<String, Progress>,
    removals: BTreeMap<String, RemovalProgress>,
    learned: BTreeMap<String, String>,
    result: Option<std::result::Result<(), (String, &'static str)>>,
    finished: bool,
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

fn start_job(
    shell: Arc<dyn NodeShell>,
    cluster: &Cluster,
    pool: &NodePool,
    work: Install,
    digest: String,
) -> Job {
    let progress = Arc::new(Mutex::new(BTreeMap::new()));
    let removals: removal::Progress = Arc::new(Mutex::new(BTreeMap::new()));
    let learned: Learned = Arc::new(Mutex::new(BTreeMap::new()));
    let result = Arc::new(Mutex::new(None));
    let finished_at = Arc::new(Mutex::new(None));
    let rke2 = cluster.spec.rke2.clone().unwrap_or_default();
    let version = rke2.version.clone();
    let ssh = pool.spec.ssh.clone().unwrap_or_default();
    let pool_name = pool.name_any();
    let (p, rm, l, r, f) = (
        progress.clone(),
        removals.clone(),
        learned.clone(),
        result.clone(),
        finished_at.clone(),
    );
    tokio::spawn(async move {
        let Install {
            nodes,
            targets,
            leaving,
            kubeconfig,
        } = work;
        let step_timeout = parse_duration(&ssh.step_timeout).unwrap_or(Duration::from_secs(600));
        let max_parallel = ssh.max_parallel.max(1) as usize;
        let api = kubeconfig
            .as_deref()
            .and_then(|k| match WorkloadCluster::from_kubeconfig(k) {
                Ok(api) => Some(api),
                Err(e) => {
                    tracing::warn!(pool = %pool_name, error = %e, "the cluster's kubeconfig is unusable");
                    None
                }
            });
        let api = api.as_ref().map(|a| a as &dyn NodeApi);
        if !leaving.is_empty() {
            tracing::info!(pool = %pool_name, nodes = leaving.len(), "removing nodes taken out of the spec");
            let uninstall = uninstall_script();
            let plan = removal::Plan {
                api,
                cluster_deleting: false,
                timeout: step_timeout,
                // Servers leave one at a time, keeping etcd's quorum.
                parallel: if ssh.role == NodeRole::Server {
                    1
                } else {
                    max_parallel
                },
                uninstall: &uninstall,
            };
            removal::remove(shell.as_ref(), &leaving, &plan, &rm).await;
        }
        if nodes.is_empty() {
            return finish(&r, &f, Ok(()));
        }
        let source = match (&rke2.artifacts.base_url, &rke2.artifacts.path) {
            (Some(url), _) => Source::Mirror(url.clone()),
            (_, Some(path)) => Source::Directory(path.into()),
            _ => Source::Directory(std::path::PathBuf::new()),
        };
        let cni = serde_json::to_value(rke2.cni)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_else(|| "canal".into());
        let cache = ArtifactCache::new(cache_dir());
        let release = match tokio::time::timeout(
            Duration::from_secs(600),
            cache.release(&source, &cni),
        )
        .await
        {
            Ok(Ok(release)) => release,
            Ok(Err(e)) => {
                return finish(&r, &f, Err((e.to_string(), reasons::ARTIFACTS_UNAVAILABLE)));
            }
            Err(_) => {
                let msg = format!(
                    "fetching the release files from {} took longer than 10 minutes",
                    source.locate("")
                );
                return finish(&r, &f, Err((msg, reasons::ARTIFACTS_UNAVAILABLE)));
            }
        };
        let (observed, _) =
            execute::observe(shell.as_ref(), &targets, Duration::from_secs(30)).await;
        let desired: Vec<plan::DesiredNode> = nodes.into_iter().map(|(_, d)| d).collect();
        let plan = plan::build(&desired, &observed, &release, &rke2.version, max_parallel);
        let options = Options {
            step_timeout,
            prepare_parallel: max_parallel,
            ..Options::default()
        };
        tracing::info!(pool = %pool_name, nodes = desired.len(), "RKE2 install plan started");
        let report = |progress: Progress| {
            p.lock()
                .expect("progress")
                .insert(progress.name.clone(), progress);
        };
        let outcomes =
            execute::execute_with_api(shell.as_ref(), api, &targets, &plan, &options, &report)
                .await;
        // Keys learned on first contact are kept in status and pinned from then on.
        for target in &targets {
            if outcomes
                .get(&target.name)
                .is_some_and(|o| o.phase == Phase::Ready)
                && let Ok(KeyVerdict::Learned(fingerprint)) = shell.host_key(&target.access).await
            {
                l.lock()
                    .expect("learned")
                    .insert(target.name.clone(), fingerprint);
            }
        }
        p.lock().expect("progress").extend(outcomes);
        tracing::info!(pool = %pool_name, "RKE2 install plan finished");
        finish(&r, &f, Ok(()));
    });
    Job {
        digest,
        version,
        progress,
        removals,
        learned,
        result,
        finished_at,
    }
}

fn finish(
    result: &JobResult,
    finished: &Arc<Mutex<Option<Instant>>>,
    outcome: std::result::Result<(), (String, &'static str)>,
) {
    *result.lock().expect("result") = Some(outcome);
    *finished.lock().expect("finished") = Some(Instant::now());
}

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
    pool: &NodePool,
    ctx: &Context,
) -> Result<Option<kube::runtime::controller::Action>> {
    use crate::controller::error::Error;
    let (Some(shell), Some(ssh)) = (ctx.providers.ssh.clone(), &pool.spec.ssh) else {
        return Ok(None);
    };
    let ns = pool.namespace().unwrap_or_default();
    let touched: Vec<&NodeStatus> = pool
        .status
        .iter()
        .flat_map(|s| &s.nodes)
        .filter(|n| n.step.is_some() || n.phase == REMOVING)
        .collect();
    if let Some(uid) = pool.uid() {
        JOBS.lock().expect("jobs lock").remove(&uid);
    }
    let Some(cluster) = Api::<Cluster>::namespaced(ctx.client.clone(), &ns)
        .get_opt(&pool.spec.cluster_name)
        .await?
    else {
        if !touched.is_empty() {
            tracing::warn!(pool = %pool.name_any(), "Cluster gone: nodes are released without uninstalling RKE2");
        }
        return Ok(Some(kube::runtime::controller::Action::await_change()));
    };
    if ssh.role == NodeRole::Server {
        let siblings: Vec<NodePool> = Api::<NodePool>::namespaced(ctx.client.clone(), &ns)
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
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &ns);
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
            if let Some(host) = ssh.hosts.iter().find(|h| super::node_name(h) == node.name) {
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

/// Turn the job's state into status (pure).
fn summarise(pool: &NodePool, previous: &[NodeStatus], job: &JobState) -> Work {
    let (progress, result, finished) = (&job.progress, job.result.clone(), job.finished);
    let hosts = pool.ssh_hosts();
    let now = conditions::now();
    let since = |name: &str, phase: &str| {
        previous
            .iter()
            .find(|n| n.name == name && n.phase == phase)
            .and_then(|n| n.since.clone())
            .or_else(|| Some(now.clone()))
    };
    let mut nodes: Vec<NodeStatus> = hosts
        .iter()
        .map(|host| {
            let name = super::node_name(host);
            let p = progress.get(&name);
            let phase = p.map_or("Pending", |p| p.phase.as_str()).to_string();
            let before = previous
                .iter()
                .find(|n| n.name == name && n.address == host.address);
            let (fingerprint, learned) = match (&host.host_key_fingerprint, job.learned.get(&name))
            {
                (Some(pinned), _) => (Some(pinned.clone()), false),
                (None, Some(learned)) => (Some(learned.clone()), true),
                (None, None) => before
                    .filter(|b| b.host_key_learned)
                    .map_or((None, false), |b| (b.host_key_fingerprint.clone(), true)),
            };
            NodeStatus {
                since: since(&name, &phase),
                name,
                address: host.address.clone(),
                phase,
                step: p.and_then(|p| p.step.map(str::to_string)),
                message: p.map(|p| p.message.clone()),
                port: host.port,
                user: host.user.clone(),
                host_key_fingerprint: fingerprint,
                host_key_learned: learned,
            }
        })
        .collect();
    let ready = nodes.iter().filter(|n| n.phase == "Ready").count() as i32;
    let total = nodes.len();
    // Hosts taken out of the spec stay listed (phase Removing) until they are drained and clean.
    for (name, r) in &job.removals {
        if r.done || nodes.iter().any(|n| &n.name == name) {
            continue;
        }
        let Some(before) = previous.iter().find(|n| &n.name == name) else {
            continue;
        };
        nodes.push(NodeStatus {
            phase: REMOVING.into(),
            step: Some(r.step.to_string()),
            message: Some(r.message.clone()),
            since: since(name, REMOVING),
            ..before.clone()
        });
    }
    let removing = job.removals.values().any(|r| !r.done);
    let mut failed: Vec<String> = nodes
        .iter()
        .filter(|n| n.phase == "Failed")
        .map(|n| {
            format!(
                "{} ({}): {}",
                n.name,
                n.address,
                n.message.clone().unwrap_or_default()
            )
        })
        .collect();
    failed.extend(
        job.removals
            .iter()
            .filter(|(_, r)| r.failed && !r.done)
            .map(|(name, r)| format!("{name} could not be removed ({}): {}", r.step, r.message)),
    );
    // The plan ran to its end: every node that did not fail runs the version (failed nodes are
    // reported in Degraded and retried).
    let converged = finished
        && result == Some(Ok(()))
        && ready > 0
        && nodes
            .iter()
            .all(|n| matches!(n.phase.as_str(), "Ready" | "Failed" | REMOVING));
    let version = if converged {
        Some(job.version.clone())
    } else {
        pool.status.as_ref().and_then(|s| s.version.clone())
    };
    // The bootstrap host is recorded once its install began.
    let bootstrap = job.bootstrap.clone().filter(|address| {
        hosts
            .iter()
            .any(|h| &h.address == address && progress.contains_key(&super::node_name(h)))
    });
    if let Some(Err((message, reason))) = result {
        return Work {
            conditions: vec![Desired::no(types::READY, reason, message)],
            nodes,
            ready,
            version,
            bootstrap,
            requeue: Some(RETRY_FAILED),
        };
    }
    let degraded = if failed.is_empty() {
        Desired::no(DEGRADED, reasons::NO_FAILURES, "no node failed")
    } else {
        Desired::yes(
            DEGRADED,
            reasons::NODES_FAILED,
            format!("failed: {}", failed.join("; ")),
        )
    };
    let ready_condition = if ready as usize == total {
        let removing_note = if removing {
            "; removing nodes taken out of the spec"
        } else {
            ""
        };
        Desired::yes(
            types::READY,
            reasons::NODES_READY,
            format!("{ready} of {total} nodes joined and ready{removing_note}"),
        )
    } else if finished && !failed.is_empty() {
        Desired::no(
            types::READY,
            reasons::NODES_FAILED,
            format!(
                "{ready} of {total} nodes ready; {} failed and will be retried: {}",
                failed.len(),
                failed.join("; ")
            ),
        )
    } else {
        Desired::no(
            types::READY,
            reasons::JOINING,
            format!("{ready} of {total} nodes ready; installing"),
        )
    };
    let requeue = if !finished {
        Some(Duration::from_secs(2))
    } else if failed.is_empty() && ready as usize == total && !removing {
        None
    } else {
        Some(RETRY_FAILED)
    };
    Work {
        conditions: vec![ready_condition, degraded],
        nodes,
        ready,
        version,
        bootstrap,
        requeue,
    }
}

/// Parse durations like `10m`, `1h30m`, `45s` (the spec's stepTimeout format).
pub fn parse_duration(text: &str) -> Option<Duration> {
    let mut total = 0f64;
    let mut number = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            number.push(c);
            continue;
        }
        let mut unit = c.to_string();
        if let Some(&next) = chars.peek()
            && next == 's'
            && matches!(c, 'm' | 'u' | 'n')
        {
            unit.push(chars.next()?);
        }
        let value: f64 = number.parse().ok()?;
        number.clear();
        total += value
            * match unit.as_str() {
                "h" => 3600.0,
                "m" => 60.0,
                "s" => 1.0,
                "ms" => 1e-3,
                "us" => 1e-6,
                "ns" => 1e-9,
                _ => return None,
            };
    }
    number.is_empty().then(|| Duration::from_secs_f64(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_timeouts_parse() {
        assert_eq!(parse_duration("10m"), Some(Duration::from_secs(600)));
        assert_eq!(parse_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("10"), None);
        assert_eq!(parse_duration("10x"), None);
    }

    fn pool() -> NodePool {
        serde_yaml::from_str(
            r#"
apiVersion: mk8.io/v1alpha1
kind: NodePool
metadata: {name: agents, namespace: fleet}
spec:
  clusterName: edge
  ssh: {role: agent, hosts: [{address: 10.0.0.21}, {address: 10.0.0.22}]}
"#,
        )
        .unwrap()
    }

    fn state(
        progress: BTreeMap<String, Progress>,
        result: Option<std::result::Result<(), (String, &'static str)>>,
    ) -> JobState {
        JobState {
            version: "v1.33.1+rke2r1".into(),
            bootstrap: None,
            progress,
            removals: BTreeMap::new(),
            learned: BTreeMap::new(),
            result,
            finished: true,
        }
    }

    fn progress(name: &str, phase: Phase, message: &str) -> (String, Progress) {
        (
            name.to_string(),
            Progress {
                name: name.into(),
                phase,
                step: Some("ready"),
                message: message.into(),
            },
        )
    }

    #[test]
    fn a_failed_node_makes_the_pool_degraded_naming_it() {
        let p = BTreeMap::from([
            progress("10-0-0-21", Phase::Ready, "joined and ready"),
            progress(
                "10-0-0-22",
                Phase::Failed,
                "cannot connect to 10.0.0.22: refused",
            ),
        ]);
        let work = summarise(&pool(), &[], &state(p, Some(Ok(()))));
        assert_eq!(work.ready, 1);
        let degraded = work
            .conditions
            .iter()
            .find(|c| c.type_ == DEGRADED)
            .unwrap();
        assert!(degraded.status);
        assert_eq!(
            degraded.message,
            "failed: 10-0-0-22 (10.0.0.22): cannot connect to 10.0.0.22: refused"
        );
        assert_eq!(work.conditions[0].reason, reasons::NODES_FAILED);
        assert_eq!(work.nodes[1].phase, "Failed");
        assert_eq!(work.requeue, Some(RETRY_FAILED));
    }

    #[test]
    fn all_nodes_ready_makes_the_pool_ready() {
        let p = BTreeMap::from([
            progress("10-0-0-21", Phase::Ready, "joined and ready"),
            progress("10-0-0-22", Phase::Ready, "joined and ready"),
        ]);
        let work = summarise(&pool(), &[], &state(p, Some(Ok(()))));
        assert!(work.conditions[0].status);
        assert_eq!(work.conditions[0].message, "2 of 2 nodes joined and ready");
        assert_eq!(work.requeue, None);
    }

    #[test]
    fn hosts_taken_out_of_the_spec_stay_listed_until_removed() {
        let ready = |name: &str, address: &str| NodeStatus {
            name: name.into(),
            address: address.into(),
            phase: "Ready".into(),
            step: Some("ready".into()),
            port: Some(2222),
            user: Some("deploy".into()),
            ..Default::default()
        };
        let previous = vec![
            ready("10-0-0-21", "10.0.0.21"),
            ready("10-0-0-22", "10.0.0.22"),
            ready("old-1", "10.0.0.31"),
            ready("old-2", "10.0.0.32"),
            ready("old-3", "10.0.0.33"),
        ];
        let mut job = state(
            BTreeMap::from([
                progress("10-0-0-21", Phase::Ready, "joined and ready"),
                progress("10-0-0-22", Phase::Ready, "joined and ready"),
            ]),
            Some(Ok(())),
        );
        let removal = |step, message: &str, done, failed| RemovalProgress {
            step,
            message: message.into(),
            done,
            failed,
        };
        job.removals = BTreeMap::from([
            (
                "old-1".to_string(),
                removal(removal::STEP_UNINSTALL, "removed", true, false),
            ),
            (
                "old-2".into(),
                removal(
                    removal::STEP_DRAIN,
                    "draining old-2: pod web-1 is still there",
                    false,
                    true,
                ),
            ),
            (
                "old-3".into(),
                removal(
                    removal::STEP_UNINSTALL,
                    "drained; Node object deleted",
                    false,
                    false,
                ),
            ),
        ]);
        let work = summarise(&pool(), &previous, &job);
        let names: Vec<(&str, &str)> = work
            .nodes
            .iter()
            .map(|n| (n.name.as_str(), n.phase.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                ("10-0-0-21", "Ready"),
                ("10-0-0-22", "Ready"),
                ("old-2", "Removing"),
                ("old-3", "Removing")
            ]
        );
        // Where to reach it is kept while it is being removed.
        assert_eq!(work.nodes[2].port, Some(2222));
        assert_eq!(work.nodes[2].user.as_deref(), Some("deploy"));
        assert_eq!(work.nodes[3].step.as_deref(), Some("uninstall"));
        assert_eq!(work.ready, 2);
        let degraded = work
            .conditions
            .iter()
            .find(|c| c.type_ == DEGRADED)
            .unwrap();
        assert!(degraded.status);
        assert!(
            degraded.message.contains(
                "old-2 could not be removed (drain): draining old-2: pod web-1 is still there"
            ),
            "{}",
            degraded.message
        );
        assert_eq!(work.requeue, Some(RETRY_FAILED));
    }

    #[test]
    fn a_learned_host_key_is_recorded_and_kept() {
        let mut job = state(
            BTreeMap::from([progress("10-0-0-21", Phase::Ready, "joined and ready")]),
            Some(Ok(())),
        );
        job.learned = BTreeMap::from([("10-0-0-21".to_string(), "SHA256:abc".to_string())]);
        let work = summarise(&pool(), &[], &job);
        assert_eq!(
            work.nodes[0].host_key_fingerprint.as_deref(),
            Some("SHA256:abc")
        );
        assert!(work.nodes[0].host_key_learned);
        // Later jobs connect with the key pinned and learn nothing new: status keeps it.
        job.learned.clear();
        let again = summarise(&pool(), &work.nodes, &job);
        assert_eq!(
            again.nodes[0].host_key_fingerprint.as_deref(),
            Some("SHA256:abc")
        );
        assert!(again.nodes[0].host_key_learned);
        assert!(again.nodes[1].host_key_fingerprint.is_none());
        // ... and pins it for the next connection.
        let ssh = pool().spec.ssh.unwrap();
        let creds = (
            crate::providers::ssh::Credentials {
                private_key: String::new(),
                passphrase: None,
            },
            String::new(),
        );
        let access = pinned_access(&ssh.hosts[0], &ssh, &creds, &again.nodes);
        assert_eq!(access.host_keys.pinned.as_deref(), Some("SHA256:abc"));
        let other = pinned_access(&ssh.hosts[1], &ssh, &creds, &again.nodes);
        assert_eq!(other.host_keys.pinned, None);
    }

    #[test]
    fn an_artifact_failure_is_the_ready_reason() {
        let err = Some(Err((
            "checksum mismatch for rke2.linux-amd64.tar.gz: ...".to_string(),
            reasons::ARTIFACTS_UNAVAILABLE,
        )));
        let work = summarise(&pool(), &[], &state(BTreeMap::new(), err));
        assert_eq!(work.conditions[0].reason, reasons::ARTIFACTS_UNAVAILABLE);
        assert!(
            work.conditions[0]
                .message
                .starts_with("checksum mismatch for rke2.linux-amd64.tar.gz")
        );
        assert_eq!(work.nodes[0].phase, "Pending");
    }
}
