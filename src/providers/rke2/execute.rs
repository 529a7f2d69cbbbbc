//! The plan executor (I/O): bounded concurrency over the SSH layer, per-node outcomes, retries
//! with backoff for transient SSH failures, progress reported as it happens. Drain and uncordon
//! steps go to the workload cluster's API instead of SSH.
//!
//! Kept whole (over 500 lines): the scheduler, its retry policy and the step runners share one
//! progress model, and about half the file is the executor's unit tests.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use tokio::sync::{Semaphore, watch};

use super::nodes::{NodeApi, NodeApiError};
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

/// Execute `plan` on `targets` without the cluster's API (a plan that drains fails those
/// nodes); returns every node's final progress report.
pub fn execute<'a>(
    shell: &'a dyn NodeShell,
    targets: &'a [Target],
    plan: &'a Plan,
    options: &'a Options,
    report: Reporter<'a>,
) -> futures::future::BoxFuture<'a, BTreeMap<String, Progress>> {
    execute_with_api(shell, None, targets, plan, options, report)
}

/// Execute `plan` on `targets`, draining and uncordoning through `api` (the workload cluster's
/// API, when it can be reached); returns every node's final progress report.
pub fn execute_with_api<'a>(
    shell: &'a dyn NodeShell,
    api: Option<&'a dyn NodeApi>,
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
                    Some(target) => {
                        run_steps(shell, api, target, &node.prepare, options, report).await
                    }
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
                        api,
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
    api: Option<&dyn NodeApi>,
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
    let outcome = match run_steps(shell, api, target, steps, options, report).await {
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
    api: Option<&dyn NodeApi>,
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
        run_step(shell, api, target, step, options)
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
    api: Option<&dyn NodeApi>,
    target: &Target,
    step: &Step,
    options: &Options,
) -> Result<(), String> {
    let name = step.kind.name();
    let access = &target.access;
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
        Action::WaitReady { probe, api_check } => {
            let started = Instant::now();
            let probe_timeout = options.poll.max(Duration::from_secs(10));
            loop {
                let through_api = match (api, api_check) {
                    (Some(api), Some(check)) => {
                        Some(api.node_ready(&check.node, &check.kubelet_version).await)
                    }
                    _ => None,
                };
                let last = match through_api {
                    Some(Ok(())) => return Ok(()),
                    // The API answered about the node: that is the state, no need to ask it.
                    Some(Err(e @ NodeApiError::NodeNotReady(_))) => e.to_string(),
                    // The API cannot say (unreachable, refused): ask the node itself.
                    _ => match shell.run(access, probe, probe_timeout).await {
                        Ok(out) if out.success() => return Ok(()),
                        Ok(out) => out.stderr_tail(),
                        Err(e) if e.is_transient() => e.to_string(),
                        Err(e) => return Err(e.to_string()),
                    },
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
        Action::Drain => {
            let api = api.ok_or_else(|| {
                format!(
                    "cannot drain {} before restarting it: the cluster's API is not reachable \
                     through its kubeconfig Secret",
                    target.name
                )
            })?;
            api.drain(&target.name, options.step_timeout)
                .await
                .map_err(|e| e.to_string())
        }
        Action::Uncordon => {
            let api = api.ok_or_else(|| {
                format!(
                    "cannot uncordon {} after restarting it: the cluster's API is not reachable \
                     through its kubeconfig Secret",
                    target.name
                )
            })?;
            api.uncordon(&target.name).await.map_err(|e| e.to_string())
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

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::sync::Mutex;

    use futures::future::BoxFuture;

    use super::*;
    use crate::providers::Upload;
    use crate::providers::rke2::artifacts::{VerifiedFile, VerifiedRelease};
    use crate::providers::rke2::nodes::NodeApiError;
    use crate::providers::ssh::{Credentials, ExecOutput, HostKeyPolicy, Script, Uploaded};

    /// Records `<node> <event>` lines from the fake shell and the fake API, in order.
    #[derive(Default)]
    struct Log(Mutex<Vec<String>>);

    impl Log {
        fn push(&self, node: &str, event: &str) {
            self.0.lock().unwrap().push(format!("{node} {event}"));
        }

        fn of(&self, node: &str) -> Vec<String> {
            let lines = self.0.lock().unwrap();
            lines
                .iter()
                .filter_map(|l| l.strip_prefix(&format!("{node} ")))
                .map(str::to_string)
                .collect()
        }
    }

    /// Every command succeeds; starts and readiness probes are logged (the address is the node).
    struct FakeShell<'a>(&'a Log);

    impl NodeShell for FakeShell<'_> {
        fn describe(&self) -> String {
            "fake".into()
        }

        fn run<'a>(
            &'a self,
            node: &'a NodeAccess,
            script: &'a Script,
            _timeout: Duration,
        ) -> BoxFuture<'a, Result<ExecOutput, SshError>> {
            let text = script.render();
            if text.contains("mk8-start") {
                self.0.push(&node.address, "start");
            } else if text.contains("mk8-ready") {
                self.0.push(&node.address, "ready");
            }
            Box::pin(async {
                Ok(ExecOutput {
                    status: Some(0),
                    stdout: Vec::new(),
                    stderr: Vec::new(),
                })
            })
        }

        fn run_with_input<'a>(
            &'a self,
            node: &'a NodeAccess,
            script: &'a Script,
            _input: &'a [u8],
            timeout: Duration,
        ) -> BoxFuture<'a, Result<ExecOutput, SshError>> {
            self.run(node, script, timeout)
        }

        fn upload<'a>(
            &'a self,
            _node: &'a NodeAccess,
            _upload: &'a Upload,
            _timeout: Duration,
        ) -> BoxFuture<'a, Result<Uploaded, SshError>> {
            Box::pin(async { Ok(Uploaded::AlreadyPresent) })
        }

        fn host_key<'a>(
            &'a self,
            _node: &'a NodeAccess,
        ) -> BoxFuture<'a, Result<KeyVerdict, SshError>> {
            Box::pin(async { Ok(KeyVerdict::Trusted) })
        }
    }

    /// Drains take a moment (so overlapping drains would interleave in the log); a drain of
    /// `refuse` fails. Node readiness answers per `nodes`.
    struct FakeApi<'a> {
        log: &'a Log,
        refuse: &'a str,
        nodes: NodesSeen,
    }

    /// What the fake API answers about Nodes.
    #[derive(Clone, Copy)]
    enum NodesSeen {
        /// Every Node Ready with the asked version.
        Ready,
        /// Not Ready for the first two questions about each node, then Ready.
        ReadyOnThirdAsk,
        /// The API cannot be reached.
        Unreachable,
    }

    impl NodeApi for FakeApi<'_> {
        fn drain<'a>(
            &'a self,
            node: &'a str,
            timeout: Duration,
        ) -> BoxFuture<'a, Result<(), NodeApiError>> {
            Box::pin(async move {
                assert_eq!(timeout, Duration::from_secs(5), "the step timeout");
                self.log.push(node, "drain");
                tokio::time::sleep(Duration::from_millis(20)).await;
                self.log.push(node, "drained");
                if node == self.refuse {
                    return Err(NodeApiError::DrainTimeout {
                        node: node.into(),
                        timeout,
                        pods: Vec::new(),
                    });
                }
                Ok(())
            })
        }

        fn uncordon<'a>(&'a self, node: &'a str) -> BoxFuture<'a, Result<(), NodeApiError>> {
            self.log.push(node, "uncordon");
            Box::pin(async { Ok(()) })
        }

        fn delete_node<'a>(&'a self, _node: &'a str) -> BoxFuture<'a, Result<(), NodeApiError>> {
            unreachable!("the executor deletes no nodes")
        }

        fn readyz<'a>(&'a self) -> BoxFuture<'a, Result<(), NodeApiError>> {
            unreachable!("the executor does not probe the API")
        }

        fn node_readiness<'a>(
            &'a self,
        ) -> BoxFuture<'a, Result<BTreeMap<String, bool>, NodeApiError>> {
            unreachable!("the executor does not list node readiness")
        }

        fn node_ready<'a>(
            &'a self,
            node: &'a str,
            kubelet_version: &'a str,
        ) -> BoxFuture<'a, Result<(), NodeApiError>> {
            self.log.push(node, &format!("api-ready {kubelet_version}"));
            let asked = self
                .log
                .of(node)
                .iter()
                .filter(|e| e.starts_with("api-ready"))
                .count();
            let answer = match self.nodes {
                NodesSeen::Ready => Ok(()),
                NodesSeen::ReadyOnThirdAsk if asked >= 3 => Ok(()),
                NodesSeen::ReadyOnThirdAsk => Err(NodeApiError::NodeNotReady(format!(
                    "node {node} is not Ready"
                ))),
                NodesSeen::Unreachable => Err(NodeApiError::Unreachable {
                    action: format!("read node {node}"),
                    reason: "connection refused".into(),
                }),
            };
            Box::pin(async move { answer })
        }
    }

    const NODES: [(&str, Role); 5] = [
        ("s1", Role::Server),
        ("s2", Role::Server),
        ("s3", Role::Server),
        ("a1", Role::Agent),
        ("a2", Role::Agent),
    ];

    fn desired() -> Vec<plan::DesiredNode> {
        NODES
            .iter()
            .map(|(name, role)| plan::DesiredNode {
                name: name.to_string(),
                role: *role,
                config_yaml: format!("node-name: {name}\n"),
                registration: None,
            })
            .collect()
    }

    fn targets() -> Vec<Target> {
        NODES
            .iter()
            .map(|(name, _)| Target {
                name: name.to_string(),
                access: NodeAccess {
                    address: name.to_string(),
                    port: 22,
                    user: "root".into(),
                    credentials: Credentials {
                        private_key: String::new(),
                        passphrase: None,
                    },
                    host_keys: HostKeyPolicy::default(),
                },
            })
            .collect()
    }

    fn release() -> VerifiedRelease {
        VerifiedRelease {
            files: vec![VerifiedFile {
                name: "install.sh".into(),
                path: PathBuf::from("/cache/sha256/0"),
                sha256: "0".repeat(64),
                size: 10,
            }],
        }
    }

    /// The plan for a new version on a fleet where every node finished the old one.
    fn upgrade() -> Plan {
        let fresh = plan::build(&desired(), &Observed::new(), &release(), "v1", 2);
        let observed: Observed = fresh
            .nodes
            .iter()
            .map(|n| {
                let markers = n.prepare.iter().chain(&n.join);
                let markers = markers.map(|s| (s.kind.name().to_string(), s.digest.clone()));
                (n.name.clone(), markers.collect())
            })
            .collect();
        plan::build(&desired(), &observed, &release(), "v2", 2)
    }

    fn options() -> Options {
        Options {
            step_timeout: Duration::from_secs(5),
            attempts: 1,
            backoff: Duration::from_millis(1),
            poll: Duration::from_millis(1),
            prepare_parallel: 5,
        }
    }

    #[tokio::test]
    async fn an_upgrade_drains_each_node_in_its_turn_servers_one_at_a_time() {
        let log = Log::default();
        let api = FakeApi {
            log: &log,
            refuse: "",
            nodes: NodesSeen::Ready,
        };
        let (plan, targets) = (upgrade(), targets());
        let outcomes = execute_with_api(
            &FakeShell(&log),
            Some(&api),
            &targets,
            &plan,
            &options(),
            &|_| {},
        )
        .await;
        assert!(outcomes.values().all(|p| p.phase == Phase::Ready));
        for (name, role) in NODES {
            // Servers prove their own API answers on the node; agents are read from the API.
            let ready = if role == Role::Server {
                "ready"
            } else {
                "api-ready v2"
            };
            assert_eq!(
                log.of(name),
                ["drain", "drained", "start", ready, "uncordon"],
                "{name}"
            );
        }
        // Each server is drained, restarted and uncordoned before the next one is touched; the
        // agents only after the last server.
        let lines = log.0.lock().unwrap().clone();
        let servers: Vec<&str> = lines
            .iter()
            .filter(|l| l.starts_with('s'))
            .map(|l| &l[..2])
            .collect();
        assert_eq!(
            servers,
            [["s1"; 5], ["s2"; 5], ["s3"; 5]].concat(),
            "{lines:?}"
        );
        let first_agent = lines.iter().position(|l| l.starts_with('a')).unwrap();
        assert_eq!(lines[first_agent - 1], "s3 uncordon", "{lines:?}");
    }

    #[tokio::test]
    async fn a_failed_drain_keeps_the_server_from_restarting_and_stops_later_waves() {
        let log = Log::default();
        let api = FakeApi {
            log: &log,
            refuse: "s2",
            nodes: NodesSeen::Ready,
        };
        let (plan, targets) = (upgrade(), targets());
        let outcomes = execute_with_api(
            &FakeShell(&log),
            Some(&api),
            &targets,
            &plan,
            &options(),
            &|_| {},
        )
        .await;
        assert_eq!(outcomes["s1"].phase, Phase::Ready);
        assert_eq!(outcomes["s2"].phase, Phase::Failed);
        assert_eq!(outcomes["s2"].step, Some("drain"));
        assert!(
            outcomes["s2"]
                .message
                .starts_with("draining node s2 did not finish"),
            "{}",
            outcomes["s2"].message
        );
        assert_eq!(log.of("s2"), ["drain", "drained"]);
        for name in ["s3", "a1", "a2"] {
            assert_eq!(outcomes[name].phase, Phase::Pending, "{name}");
            assert!(log.of(name).is_empty(), "{name}");
        }
    }

    #[tokio::test]
    async fn without_the_api_a_restart_that_needs_a_drain_fails_saying_why() {
        let log = Log::default();
        let (plan, targets) = (upgrade(), targets());
        let outcomes = execute(&FakeShell(&log), &targets, &plan, &options(), &|_| {}).await;
        assert_eq!(outcomes["s1"].phase, Phase::Failed);
        assert_eq!(
            outcomes["s1"].message,
            "cannot drain s1 before restarting it: the cluster's API is not reachable through \
             its kubeconfig Secret"
        );
        assert!(log.of("s1").is_empty(), "s1 was not restarted undrained");
        // A fresh install needs no API.
        let fresh = plan::build(&desired(), &Observed::new(), &release(), "v1", 2);
        let outcomes = execute(&FakeShell(&log), &targets, &fresh, &options(), &|_| {}).await;
        assert!(outcomes.values().all(|p| p.phase == Phase::Ready));
        assert_eq!(log.of("a2"), ["start", "ready"]);
    }

    /// A fresh install of [`NODES`] with the fake API answering per `nodes`.
    async fn fresh_install(log: &Log, nodes: NodesSeen) -> BTreeMap<String, Progress> {
        let fresh = plan::build(&desired(), &Observed::new(), &release(), "v1", 2);
        let api = FakeApi {
            log,
            refuse: "",
            nodes,
        };
        let shell = FakeShell(log);
        execute_with_api(&shell, Some(&api), &targets(), &fresh, &options(), &|_| {}).await
    }

    #[tokio::test]
    async fn agents_are_read_ready_from_the_api_and_from_the_node_when_the_api_cannot_say() {
        let log = Log::default();
        let outcomes = fresh_install(&log, NodesSeen::ReadyOnThirdAsk).await;
        assert!(
            outcomes.values().all(|p| p.phase == Phase::Ready),
            "{outcomes:?}"
        );
        // Not Ready twice, then Ready: polled through the API only, no probe on the node.
        assert_eq!(
            log.of("a1"),
            ["start", "api-ready v1", "api-ready v1", "api-ready v1"]
        );
        assert_eq!(
            log.of("s2"),
            ["start", "ready"],
            "servers are probed on the node"
        );

        let log = Log::default();
        let outcomes = fresh_install(&log, NodesSeen::Unreachable).await;
        assert!(
            outcomes.values().all(|p| p.phase == Phase::Ready),
            "{outcomes:?}"
        );
        assert_eq!(log.of("a2"), ["start", "api-ready v1", "ready"]);
    }
}
