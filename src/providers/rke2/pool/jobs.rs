//! Background install jobs of RKE2 NodePools (I/O): one per pool, started when the plan's inputs
//! change and polled by every reconcile. The registry belongs to one RKE2 provider, that is to
//! one operator's context: two operators in one process never see each other's jobs.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kube::ResourceExt;

use super::removal::{self, Leaving, RemovalProgress};
use super::{RETRY_FAILED, reasons};
use crate::api::Cluster;
use crate::api::NodePool;
use crate::api::nodepool::{NodeRole, SshHost};
use crate::providers::NodeShell;
use crate::providers::rke2::artifacts::{ArtifactCache, Source};
use crate::providers::rke2::execute::{self, Options, Phase, Progress, Target};
use crate::providers::rke2::nodes::{NodeApi, WorkloadCluster};
use crate::providers::rke2::plan;
use crate::providers::ssh::KeyVerdict;
use crate::reconcile::duration::parse_duration;

/// Background jobs of one operator, by NodePool uid.
#[derive(Default)]
pub struct Jobs(Mutex<HashMap<String, Job>>);

impl Jobs {
    /// The state of the job of `key`, started first (by `start`) when there is none, its inputs
    /// changed (`digest`), or it finished with failures long enough ago to try them again.
    pub(super) fn current(
        &self,
        key: &str,
        digest: &str,
        bootstrap: Option<String>,
        start: impl FnOnce() -> Job,
    ) -> JobState {
        let mut jobs = self.0.lock().expect("jobs lock");
        if jobs.get(key).is_none_or(|job| job.stale(digest)) {
            jobs.insert(key.to_string(), start());
        }
        jobs[key].snapshot(bootstrap)
    }

    /// Forget the job of `key`, whose pool is going away.
    pub fn forget(&self, key: &str) {
        self.0.lock().expect("jobs lock").remove(key);
    }

    /// How many pools have a job.
    pub fn len(&self) -> usize {
        self.0.lock().expect("jobs lock").len()
    }

    /// Whether no pool has a job.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// How a job ended: `Err((message, reason))` when it could not start installing.
type JobResult = Arc<Mutex<Option<std::result::Result<(), (String, &'static str)>>>>;

/// One pool's background job and what it reported so far.
pub(super) struct Job {
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

impl Job {
    /// A job that has not reported anything yet.
    pub(super) fn new(digest: String, version: String) -> Self {
        Self {
            digest,
            version,
            progress: Arc::default(),
            removals: Arc::default(),
            learned: Arc::default(),
            result: Arc::default(),
            finished_at: Arc::default(),
        }
    }

    /// Whether a new job must replace this one.
    fn stale(&self, digest: &str) -> bool {
        if self.digest != digest {
            return true;
        }
        let failed = self
            .progress
            .lock()
            .expect("progress")
            .values()
            .any(|p| p.phase != Phase::Ready)
            || self
                .removals
                .lock()
                .expect("removals")
                .values()
                .any(|r| !r.done);
        let retry = self
            .finished_at
            .lock()
            .expect("finished")
            .is_some_and(|t| t.elapsed() >= RETRY_FAILED);
        failed && retry
    }

    /// What the job reported so far; `bootstrap` is this pool's bootstrap host, if any.
    fn snapshot(&self, bootstrap: Option<String>) -> JobState {
        JobState {
            version: self.version.clone(),
            bootstrap,
            progress: self.progress.lock().expect("progress").clone(),
            removals: self.removals.lock().expect("removals").clone(),
            learned: self.learned.lock().expect("learned").clone(),
            result: self.result.lock().expect("result").clone(),
            finished: self.finished_at.lock().expect("finished").is_some(),
        }
    }
}

/// What a job works on.
pub(super) struct Install {
    pub(super) nodes: Vec<(SshHost, plan::DesiredNode)>,
    pub(super) targets: Vec<Target>,
    pub(super) leaving: Vec<Leaving>,
    pub(super) kubeconfig: Option<String>,
}

/// A snapshot of a job, for status.
pub(super) struct JobState {
    /// The RKE2 version the job installs.
    pub(super) version: String,
    /// Address of this pool's host that bootstraps the cluster, if it is in this pool.
    pub(super) bootstrap: Option<String>,
    pub(super) progress: BTreeMap<String, Progress>,
    pub(super) removals: BTreeMap<String, RemovalProgress>,
    pub(super) learned: BTreeMap<String, String>,
    pub(super) result: Option<std::result::Result<(), (String, &'static str)>>,
    pub(super) finished: bool,
}

/// Start the job of `pool`: removals first, then the release files, plan and execute.
pub(super) fn start(
    shell: Arc<dyn NodeShell>,
    artifact_cache: &Path,
    cluster: &Cluster,
    pool: &NodePool,
    work: Install,
    digest: String,
) -> Job {
    let rke2 = cluster.spec.rke2.clone().unwrap_or_default();
    let job = Job::new(digest, rke2.version.clone());
    let artifact_cache = artifact_cache.to_path_buf();
    let ssh = pool.spec.ssh.clone().unwrap_or_default();
    let pool_name = pool.name_any();
    let cluster_name = cluster.name_any();
    let (p, rm, l, r, f) = (
        job.progress.clone(),
        job.removals.clone(),
        job.learned.clone(),
        job.result.clone(),
        job.finished_at.clone(),
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
            let uninstall = super::uninstall_script();
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
        let cache = ArtifactCache::new(artifact_cache);
        let release = match tokio::time::timeout(
            Duration::from_secs(600),
            cache.release(&source, &cni),
        )
        .await
        {
            Ok(Ok(release)) => release,
            Ok(Err(e)) => {
                let msg = e.explain(&cluster_name, &source);
                return finish(&r, &f, Err((msg, reasons::ARTIFACTS_UNAVAILABLE)));
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
    job
}

fn finish(
    result: &JobResult,
    finished: &Arc<Mutex<Option<Instant>>>,
    outcome: std::result::Result<(), (String, &'static str)>,
) {
    *result.lock().expect("result") = Some(outcome);
    *finished.lock().expect("finished") = Some(Instant::now());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::rke2::Rke2;
    use crate::providers::ssh::SshPool;

    fn operator(cache: &str) -> Rke2 {
        Rke2::new(Arc::new(SshPool::new(Duration::from_secs(1))), cache.into())
    }

    fn job(digest: &str, version: &str) -> impl FnOnce() -> Job {
        let (digest, version) = (digest.to_string(), version.to_string());
        move || Job::new(digest, version)
    }

    #[test]
    fn two_operators_in_one_process_keep_their_own_jobs() {
        let (a, b) = (operator("/tmp/mk8-a"), operator("/tmp/mk8-b"));
        let state = a.jobs().current("uid-1", "d1", None, job("d1", "v1"));
        assert_eq!(state.version, "v1");
        assert_eq!((a.jobs().len(), b.jobs().len()), (1, 0));
        // The same pool in the other operator gets its own job; neither replaces the other.
        let state = b.jobs().current("uid-1", "d2", None, job("d2", "v2"));
        assert_eq!(state.version, "v2");
        let again = a
            .jobs()
            .current("uid-1", "d1", None, || panic!("a's job is still current"));
        assert_eq!(again.version, "v1");
        b.jobs().forget("uid-1");
        assert_eq!((a.jobs().len(), b.jobs().len()), (1, 0));
    }

    #[test]
    fn a_job_is_replaced_when_its_inputs_change() {
        let jobs = Jobs::default();
        jobs.current("uid-1", "d1", None, job("d1", "v1"));
        let state = jobs.current("uid-1", "d2", Some("10.0.0.1".into()), job("d2", "v2"));
        assert_eq!(state.version, "v2");
        assert_eq!(state.bootstrap.as_deref(), Some("10.0.0.1"));
        assert!(!state.finished);
        assert_eq!(jobs.len(), 1);
    }
}
