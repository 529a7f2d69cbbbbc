//! The plan executor (I/O): bounded concurrency over the SSH layer, per-node outcomes, retries
//! with backoff for transient SSH failures, progress reported as it happens.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use tokio::sync::{Semaphore, watch};

use super::plan::{self, Action, Observed, Plan, Role, Step};
use crate::providers::NodeShell;
use crate::providers::ssh::{KeyVerdict, NodeAccess, SshError};

/// A node the executor works on.
#[derive(Clone, Debug)]
pub struct Target {
    /// Node name (as in the plan).
    pub name: String,
    /// How to reach it.
    pub access: NodeAccess,
}

/// Timing of the executor.
#[derive(Clone, Debug)]
pub struct Options {
    /// Time allowed for one step (readiness included).
    pub step_timeout: Duration,
    /// Attempts for a command that fails with a transient SSH error.
    pub attempts: u32,
    /// First backoff between attempts (doubled each time).
    pub backoff: Duration,
    /// Interval between readiness probes.
    pub poll: Duration,
    /// How many nodes prepare (preflight, upload, config, install) at once.
    pub prepare_parallel: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            step_timeout: Duration::from_secs(600),
            attempts: 4,
            backoff: Duration::from_secs(2),
            poll: Duration::from_secs(2),
            prepare_parallel: 20,
        }
    }
}

/// Where a node stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Waiting for its turn.
    Pending,
    /// Steps in progress.
    Joining,
    /// Joined and answering its readiness probe.
    Ready,
    /// A step failed; `message` says why.
    Failed,
}

impl Phase {
    /// The phase as written in NodePool status.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Pending => "Pending",
            Phase::Joining => "Joining",
            Phase::Ready => "Ready",
            Phase::Failed => "Failed",
        }
    }
}

/// A progress report about one node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Progress {
    /// Node name.
    pub name: String,
    /// Phase.
    pub phase: Phase,
    /// Step in progress or last finished.
    pub step: Option<&'static str>,
    /// What is happening or what went wrong.
    pub message: String,
}

/// Receives progress reports.
pub type Reporter<'a> = &'a (dyn Fn(Progress) + Send + Sync);

/// Read the markers of every node at once; unreachable nodes are reported, not fatal.
pub async fn observe(
    shell: &dyn NodeShell,
    targets: &[Target],
    timeout: Duration,
) -> (Observed, BTreeMap<String, SshError>) {
    let script = plan::observe_script();
    let results = futures::future::join_all(targets.iter().map(|t| {
        let script = &script;
        async move { (t.name.clone(), shell.run(&t.access, script, timeout).await) }
    }))
    .await;
    let mut observed = Observed::new();
    let mut errors = BTreeMap::new();
    for (name, result) in results {
        match result {
            Ok(out) => {
                observed.insert(name, plan::parse_markers(&out.stdout_text()));
            }
            Err(e) => {
                errors.insert(name, e);
            }
        }
    }
    (observed, errors)
}

/// Execute `plan` on `targets`; returns every node's final progress report.
pub fn execute<'a>(
    shell: &'a dyn NodeShell,
    targets: &'a [Target],
    plan: &'a Plan,
    options: &'a Options,
    report: Reporter<'a>,
) -> futures::future::BoxFuture<'a, BTreeMap<String, Progress>> {
    Box::pin(async move {
        let by_name: HashMap<&str, &Target> =
            targets.iter().map(|t| (t.name.as_str(), t)).collect();
        let plans: HashMap<&str, &plan::NodePlan> =
            plan.nodes.iter().map(|n| (n.name.as_str(), n)).collect();
        let mut senders = HashMap::new();
        let mut receivers = HashMap::new();
        for n in &plan.nodes {
            let (tx, rx) = watch::channel(None::<Result<(), Progress>>);
            senders.insert(n.name.as_str(), tx);
            receivers.insert(n.name.as_str(), rx);
        }
        let permits = Semaphore::new(options.prepare_parallel.max(1));

        let prepare_all = futures::future::join_all(plan.nodes.iter().map(|node| {
            let (permits, senders, by_name) = (&permits, &senders, &by_name);
            async move {
                let _permit = permits.acquire().await.expect("semaphore open");
                let result = match by_name.get(node.name.as_str()) {
                    Some(target) => run_steps(shell, target, &node.prepare, options, report).await,
                    None => Err(failed(
                        &node.name,
                        None,
                        "no SSH target for this node".into(),
                    )),
                };
                if let Err(p) = &result {
                    report(p.clone());
                }
                let _ = senders[node.name.as_str()].send(Some(result));
            }
        }));

        let join_all = async {
            let mut outcomes = BTreeMap::new();
            let mut blocked: Option<String> = None;
            for wave in &plan.waves {
                if let Some(reason) = &blocked {
                    for name in &wave.nodes {
                        let p = Progress {
                            name: name.clone(),
                            phase: Phase::Pending,
                            step: None,
                            message: reason.clone(),
                        };
                        report(p.clone());
                        outcomes.insert(name.clone(), p);
                    }
                    continue;
                }
                let slots = Semaphore::new(wave.parallel.max(1));
                let mut joins = Vec::new();
                for name in &wave.nodes {
                    joins.push(join_node(
                        shell,
                        name,
                        receivers[name.as_str()].clone(),
                        by_name[name.as_str()],
                        &plans[name.as_str()].join,
                        &slots,
                        options,
                        report,
                    ));
                }
                let results: Vec<Progress> = futures::future::join_all(joins).await;
                if wave.role == Role::Server
                    && let Some(failure) = results.iter().find(|p| p.phase != Phase::Ready)
                {
                    blocked = Some(format!(
                        "waiting for server {} to join, which did not: {}",
                        failure.name, failure.message
                    ));
                }
                for p in results {
                    outcomes.insert(p.name.clone(), p);
                }
            }
            outcomes
        };
        let (_, outcomes) = tokio::join!(prepare_all, join_all);
        outcomes
    })
}

/// Wait for a node's preparation, then its turn in the wave, then start it and wait until ready.
#[allow(clippy::too_many_arguments)]
async fn join_node(
    shell: &dyn NodeShell,
    name: &str,
    mut prepared: watch::Receiver<Option<Result<(), Progress>>>,
    target: &Target,
    steps: &[Step],
    slots: &Semaphore,
    options: &Options,
    report: Reporter<'_>,
) -> Progress {
    let prepared = prepared
        .wait_for(Option::is_some)
        .await
        .map(|v| v.clone().expect("set"))
        .unwrap_or_else(|_| Err(failed(name, None, "preparation vanished".into())));
    if let Err(p) = prepared {
        return p;
    }
    let _slot = slots.acquire().await.expect("semaphore open");
    let outcome = match run_steps(shell, target, steps, options, report).await {
        Ok(()) => Progress {
            name: name.to_string(),
            phase: Phase::Ready,
            step: Some(plan::StepKind::Ready.name()),
            message: match shell.host_key(&target.access).await {
                // Recorded for good: the pool's status keeps the node's last message.
                Ok(KeyVerdict::Learned(fingerprint)) => {
                    format!("joined and ready; host key {fingerprint} was learned on first contact")
                }
                _ => "joined and ready".into(),
            },
        },
        Err(p) => p,
    };
    report(outcome.clone());
    outcome
}

/// Run steps in order, writing each marker; the first failure stops the node.
async fn run_steps(
    shell: &dyn NodeShell,
    target: &Target,
    steps: &[Step],
    options: &Options,
    report: Reporter<'_>,
) -> Result<(), Progress> {
    if steps.is_empty() {
        return Ok(());
    }
    if let KeyVerdict::Learned(fingerprint) = retry(options, || shell.host_key(&target.access))
        .await
        .map_err(|e| failed(&target.name, None, e.to_string()))?
    {
        report(Progress {
            name: target.name.clone(),
            phase: Phase::Joining,
            step: None,
            message: format!("host key {fingerprint} learned on first contact"),
        });
    }
    for step in steps {
        let name = step.kind.name();
        report(Progress {
            name: target.name.clone(),
            phase: Phase::Joining,
            step: Some(name),
            message: format!("{name} in progress"),
        });
        run_step(shell, &target.access, step, options)
            .await
            .map_err(|reason| failed(&target.name, Some(name), reason))?;
        let marker = step.marker_script();
        let out = retry(options, || {
            shell.run(&target.access, &marker, options.step_timeout)
        })
        .await
        .map_err(|e| failed(&target.name, Some(name), e.to_string()))?;
        if !out.success() {
            return Err(failed(
                &target.name,
                Some(name),
                format!("recording the {name} marker failed: {}", out.stderr_tail()),
            ));
        }
    }
    Ok(())
}

async fn run_step(
    shell: &dyn NodeShell,
    access: &NodeAccess,
    step: &Step,
    options: &Options,
) -> Result<(), String> {
    let name = step.kind.name();
    match &step.action {
        Action::Run(script) => {
            let out = retry(options, || shell.run(access, script, options.step_timeout))
                .await
                .map_err(|e| e.to_string())?;
            if out.success() {
                Ok(())
            } else {
                Err(format!(
                    "{name} failed (exit {}): {}",
                    out.status.map_or("by signal".into(), |s| s.to_string()),
                    out.stderr_tail()
                ))
            }
        }
        Action::RunWithInput(script, input) => {
            let out = retry(options, || {
                shell.run_with_input(access, script, input, options.step_timeout)
            })
            .await
            .map_err(|e| e.to_string())?;
            if out.success() {
                Ok(())
            } else {
                Err(format!(
                    "{name} failed (exit {}): {}",
                    out.status.map_or("by signal".into(), |s| s.to_string()),
                    out.stderr_tail()
                ))
            }
        }
        Action::Upload(files) => {
            for file in files {
                retry(options, || shell.upload(access, file, options.step_timeout))
                    .await
                    .map_err(|e| e.to_string())?;
            }
            Ok(())
        }
        Action::WaitReady(probe) => {
            let started = Instant::now();
            let probe_timeout = options.poll.max(Duration::from_secs(10));
            loop {
                let last = match shell.run(access, probe, probe_timeout).await {
                    Ok(out) if out.success() => return Ok(()),
                    Ok(out) => out.stderr_tail(),
                    Err(e) if e.is_transient() => e.to_string(),
                    Err(e) => return Err(e.to_string()),
                };
                if started.elapsed() >= options.step_timeout {
                    return Err(format!(
                        "not ready after {:?}: {last}",
                        options.step_timeout
                    ));
                }
                tokio::time::sleep(options.poll).await;
            }
        }
    }
}

/// Retry `op` on transient SSH errors with exponential backoff.
async fn retry<T, F, Fut>(options: &Options, mut op: F) -> Result<T, SshError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, SshError>>,
{
    let mut delay = options.backoff;
    let mut attempt = 1;
    loop {
        match op().await {
            Err(e) if e.is_transient() && attempt < options.attempts => {
                tracing::debug!(attempt, error = %e, "transient SSH failure, retrying");
                tokio::time::sleep(delay).await;
                delay *= 2;
                attempt += 1;
            }
            other => return other,
        }
    }
}

fn failed(name: &str, step: Option<&'static str>, message: String) -> Progress {
    Progress {
        name: name.to_string(),
        phase: Phase::Failed,
        step,
        message,
    }
}
