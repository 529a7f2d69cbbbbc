//! The install plan executed over real SSH on the test fleet with the test-built release.

use std::collections::BTreeMap;
use std::time::Duration;

use mk8::providers::NodeShell;
use mk8::providers::rke2::artifacts::{ArtifactCache, ArtifactError, IMAGES, Source};
use mk8::providers::rke2::config::{self, NodeConfig};
use mk8::providers::rke2::execute::{self, Options, Phase, Progress, Target};
use mk8::providers::rke2::nodes::{NodeApi, NodeApiError, WorkloadCluster};
use mk8::providers::rke2::plan::{self, DesiredNode, Role};
use mk8::providers::ssh::SshPool;
use std::sync::Mutex;

use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::Pod;

use super::fleet::{Fleet, Node};
use super::release::{Release, VERSION};

fn options() -> Options {
    Options {
        step_timeout: Duration::from_secs(60),
        attempts: 2,
        backoff: Duration::from_millis(200),
        poll: Duration::from_millis(200),
        prepare_parallel: 8,
    }
}

/// Desired nodes for `roles` (the first server bootstraps; the others register through it).
fn desired(fleet: &Fleet, roles: &[Role]) -> Vec<DesiredNode> {
    let registration = fleet.nodes[0].address.clone();
    roles
        .iter()
        .enumerate()
        .map(|(i, role)| {
            let name = format!("node-{i}");
            let server = (i > 0).then(|| registration.clone());
            let yaml = config::render(&NodeConfig {
                token: "fixture-token".into(),
                server: server.clone(),
                is_server: *role == Role::Server,
                tls_san: vec![registration.clone()],
                node_name: name.clone(),
                cni: "canal".into(),
                ..Default::default()
            });
            DesiredNode {
                name,
                role: *role,
                config_yaml: yaml,
                registration: server,
            }
        })
        .collect()
}

/// Targets for the nodes at `indices`, named `node-<position>`.
pub fn targets_for(fleet: &Fleet, indices: &[usize]) -> Vec<Target> {
    indices
        .iter()
        .enumerate()
        .map(|(i, &k)| Target {
            name: format!("node-{i}"),
            access: fleet.access(&fleet.nodes[k]),
        })
        .collect()
}

/// Observe, plan and execute once as the operator does (for the benchmark): every node of the
/// plan prepares at once (the operator prepares `maxParallel` nodes at a time) and agents are
/// read ready through `api` when given.
pub async fn install_nodes(
    pool: &SshPool,
    fleet: &Fleet,
    release: &Release,
    roles: &[Role],
    targets: &[Target],
    api: Option<&dyn NodeApi>,
) -> BTreeMap<String, Progress> {
    let options = Options {
        prepare_parallel: targets.len(),
        ..options()
    };
    let plan = plan_for(pool, fleet, release, roles, targets, targets.len()).await;
    execute::execute_with_api(pool, api, targets, &plan, &options, &|_| {}).await
}

fn targets(fleet: &Fleet, count: usize) -> Vec<Target> {
    (0..count)
        .map(|i| Target {
            name: format!("node-{i}"),
            access: fleet.access(&fleet.nodes[i]),
        })
        .collect()
}

/// Observe, plan and execute once; returns the outcomes.
async fn install(
    pool: &SshPool,
    fleet: &Fleet,
    release: &Release,
    roles: &[Role],
    targets: &[Target],
    max_parallel: usize,
) -> BTreeMap<String, Progress> {
    let plan = plan_for(pool, fleet, release, roles, targets, max_parallel).await;
    execute::execute(pool as &dyn NodeShell, targets, &plan, &options(), &|_| {}).await
}

/// Observe the nodes and plan their install.
async fn plan_for(
    pool: &SshPool,
    fleet: &Fleet,
    release: &Release,
    roles: &[Role],
    targets: &[Target],
    max_parallel: usize,
) -> plan::Plan {
    let cache = ArtifactCache::new(fleet.dir().join("cache"));
    let verified = cache
        .release(&Source::Directory(release.dir.clone()), "canal")
        .await
        .expect("release verifies");
    let (observed, _) = execute::observe(pool, targets, Duration::from_secs(10)).await;
    let nodes = desired(fleet, roles);
    plan::build(&nodes, &observed, &verified, VERSION, max_parallel)
}

/// `(event, role, seconds)` lines the stand-ins and install.sh recorded on a node.
fn events(node: &Node) -> Vec<(String, f64)> {
    node.read("/var/lib/rancher/rke2/mk8-fixture/events")
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f[0].to_string(), f.last().unwrap().parse().unwrap())
        })
        .collect()
}

fn time_of(node: &Node, event: &str) -> f64 {
    events(node)
        .into_iter()
        .find(|(e, _)| e == event)
        .unwrap_or_else(|| panic!("{} recorded no {event}", node.netns))
        .1
}

fn count(node: &Node, event: &str) -> usize {
    events(node).iter().filter(|(e, _)| e == event).count()
}

fn assert_all_ready(outcomes: &BTreeMap<String, Progress>, n: usize) {
    assert_eq!(outcomes.len(), n, "{outcomes:#?}");
    for p in outcomes.values() {
        assert_eq!(p.phase, Phase::Ready, "{p:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_server_installs_from_the_release_and_writes_token_and_kubeconfig() {
    let Some(fleet) = Fleet::start("one_server_installs", 1) else {
        return;
    };
    let release = Release::build(fleet.dir(), 100_000);
    let pool = SshPool::new(Duration::from_secs(10));
    let targets = targets(&fleet, 1);
    let outcomes = install(&pool, &fleet, &release, &[Role::Server], &targets, 5).await;
    assert_all_ready(&outcomes, 1);
    let node = &fleet.nodes[0];
    let token = node
        .read("/var/lib/rancher/rke2/server/node-token")
        .unwrap();
    assert!(token.trim().ends_with("::server:fixture-token"), "{token}");
    let kubeconfig = node.read("/etc/rancher/rke2/rke2.yaml").unwrap();
    assert!(kubeconfig.contains("server: https://127.0.0.1:6443"));
    let config = node.read("/etc/rancher/rke2/config.yaml").unwrap();
    assert!(!config.contains("server:"), "{config}");
    assert!(config.contains("node-name: node-0"), "{config}");
    assert!(node.host_path("/usr/local/bin/rke2").exists());
    assert!(
        node.host_path(&format!("/var/lib/rancher/rke2/agent/images/{IMAGES}"))
            .exists()
    );
    let markers: Vec<String> = std::fs::read_dir(node.host_path(plan::MARKER_DIR))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    for step in ["preflight", "upload", "config", "install", "start", "ready"] {
        assert!(markers.iter().any(|m| m == step), "{markers:?}");
    }
    // A second pass finds everything done: no step runs again.
    let again = install(&pool, &fleet, &release, &[Role::Server], &targets, 5).await;
    assert_all_ready(&again, 1);
    assert_eq!(count(node, "install"), 1);
    assert_eq!(count(node, "start"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_servers_join_one_after_another_and_five_agents_together() {
    let Some(fleet) = Fleet::start("three_servers_five_agents", 8) else {
        return;
    };
    let release = Release::build(fleet.dir(), 100_000);
    let pool = SshPool::new(Duration::from_secs(10));
    let mut roles = vec![Role::Server; 3];
    roles.extend([Role::Agent; 5]);
    let targets = targets(&fleet, 8);
    let outcomes = install(&pool, &fleet, &release, &roles, &targets, 5).await;
    assert_all_ready(&outcomes, 8);
    let servers = &fleet.nodes[..3];
    let agents = &fleet.nodes[3..];
    for pair in servers.windows(2) {
        assert!(
            time_of(&pair[1], "start") >= time_of(&pair[0], "ready"),
            "{} started before {} was ready",
            pair[1].netns,
            pair[0].netns
        );
    }
    let last_server_ready = time_of(&servers[2], "ready");
    let first_agent_ready = agents
        .iter()
        .map(|a| time_of(a, "ready"))
        .fold(f64::MAX, f64::min);
    let last_agent_start = agents
        .iter()
        .map(|a| time_of(a, "start"))
        .fold(0.0, f64::max);
    for a in agents {
        assert!(
            time_of(a, "start") >= last_server_ready,
            "{} joined before the servers",
            a.netns
        );
    }
    assert!(
        last_agent_start < first_agent_ready,
        "agents did not overlap: last start {last_agent_start}, first ready {first_agent_ready}"
    );
    let joiner = fleet.nodes[4]
        .read("/etc/rancher/rke2/config.yaml")
        .unwrap();
    assert!(
        joiner.contains(&format!("server: https://{}:9345", fleet.nodes[0].address)),
        "{joiner}"
    );
    // Every node was reached over one pooled connection.
    assert_eq!(pool.open_connections(), 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_and_untrusted_nodes_fail_alone_while_the_others_finish() {
    let Some(fleet) = Fleet::start("unreachable_nodes_fail_alone", 4) else {
        return;
    };
    let release = Release::build(fleet.dir(), 10_000);
    let pool = SshPool::new(Duration::from_secs(5));
    let roles = [Role::Server, Role::Agent, Role::Agent, Role::Agent];
    let mut targets = targets(&fleet, 4);
    fleet.nodes[2].stop_sshd();
    // Node 3 presents a key other than the one recorded for it.
    targets[3].access.host_keys.known_hosts = format!(
        "{} {}\n",
        fleet.nodes[3].address, fleet.nodes[0].host_public_key
    );
    let outcomes = install(&pool, &fleet, &release, &roles, &targets, 5).await;
    assert_eq!(outcomes["node-0"].phase, Phase::Ready);
    assert_eq!(outcomes["node-1"].phase, Phase::Ready);
    let down = &outcomes["node-2"];
    assert_eq!(down.phase, Phase::Failed);
    assert!(
        down.message
            .contains(&format!("cannot connect to {}", fleet.nodes[2].address)),
        "{down:?}"
    );
    let untrusted = &outcomes["node-3"];
    assert_eq!(untrusted.phase, Phase::Failed);
    assert!(
        untrusted
            .message
            .starts_with(&format!("host key mismatch for {}", fleet.nodes[3].address)),
        "{untrusted:?}"
    );
    assert!(
        !fleet.nodes[3].host_path("/var/lib/rancher/mk8").exists(),
        "nothing may reach an untrusted host"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupted_artifact_is_refused_before_any_node_sees_it() {
    let Some(fleet) = Fleet::start("a_corrupted_artifact_is_refused", 1) else {
        return;
    };
    let release = Release::build(fleet.dir(), 10_000);
    release.corrupt(IMAGES);
    let cache = ArtifactCache::new(fleet.dir().join("cache"));
    let err = cache
        .release(&Source::Directory(release.dir.clone()), "canal")
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ArtifactError::ChecksumMismatch { file, .. } if file == IMAGES),
        "{err}"
    );
    // Without a verified release there is no plan: the node got nothing.
    assert!(!fleet.nodes[0].host_path("/var/lib/rancher/mk8").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_install_converges_without_repeating_finished_steps() {
    let Some(fleet) = Fleet::start("an_interrupted_install_converges", 3) else {
        return;
    };
    let release = Release::build(fleet.dir(), 10_000);
    let roles = [Role::Server, Role::Agent, Role::Agent];
    let targets = targets(&fleet, 3);
    {
        // The "operator" dies as soon as the first server is ready.
        let pool = SshPool::new(Duration::from_secs(10));
        let ready_marker = fleet.nodes[0].host_path("/var/lib/rancher/rke2/.mk8/ready");
        let run = install(&pool, &fleet, &release, &roles, &targets, 5);
        tokio::select! {
            _ = run => panic!("the install finished before it could be interrupted"),
            _ = async { while !ready_marker.exists() { tokio::time::sleep(Duration::from_millis(20)).await } } => {}
        }
    }
    let installed_before: Vec<bool> = fleet
        .nodes
        .iter()
        .map(|n| n.host_path("/var/lib/rancher/rke2/.mk8/install").exists())
        .collect();
    // A new "operator" with a fresh connection pool picks up from the markers.
    let pool = SshPool::new(Duration::from_secs(10));
    let outcomes = install(&pool, &fleet, &release, &roles, &targets, 5).await;
    assert_all_ready(&outcomes, 3);
    assert_eq!(count(&fleet.nodes[0], "install"), 1);
    assert_eq!(
        count(&fleet.nodes[0], "start"),
        1,
        "the ready server was started again"
    );
    for (node, had_install) in fleet.nodes.iter().zip(installed_before) {
        if had_install {
            assert_eq!(count(node, "install"), 1, "{} installed twice", node.netns);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adding_an_agent_touches_no_other_node() {
    let Some(fleet) = Fleet::start("adding_an_agent_touches_no_other_node", 4) else {
        return;
    };
    let release = Release::build(fleet.dir(), 10_000);
    let pool = SshPool::new(Duration::from_secs(10));
    let before = [Role::Server, Role::Agent, Role::Agent];
    let outcomes = install(&pool, &fleet, &release, &before, &targets(&fleet, 3), 5).await;
    assert_all_ready(&outcomes, 3);
    let markers = |node: &Node| {
        std::fs::read_dir(node.host_path(plan::MARKER_DIR))
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (e.file_name(), e.metadata().unwrap().modified().unwrap())
            })
            .collect::<Vec<_>>()
    };
    let untouched: Vec<_> = fleet.nodes[..3].iter().map(markers).collect();
    let after = [Role::Server, Role::Agent, Role::Agent, Role::Agent];
    let outcomes = install(&pool, &fleet, &release, &after, &targets(&fleet, 4), 5).await;
    assert_all_ready(&outcomes, 4);
    for (node, before) in fleet.nodes[..3].iter().zip(untouched) {
        assert_eq!(markers(node), before, "{} was worked on again", node.netns);
        assert_eq!(count(node, "install"), 1);
        assert_eq!(count(node, "start"), 1);
    }
    assert_eq!(count(&fleet.nodes[3], "install"), 1);
    assert!(time_of(&fleet.nodes[3], "start") > time_of(&fleet.nodes[2], "ready"));
    assert_eq!(outcomes["node-3"].message, "joined and ready");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_key_learned_on_first_contact_is_reported() {
    let Some(fleet) = Fleet::start("a_host_key_learned_on_first_contact", 1) else {
        return;
    };
    let release = Release::build(fleet.dir(), 10_000);
    let pool = SshPool::new(Duration::from_secs(10));
    let mut targets = targets(&fleet, 1);
    targets[0].access.host_keys.known_hosts.clear();
    targets[0].access.host_keys.accept_new = true;
    let outcomes = install(&pool, &fleet, &release, &[Role::Server], &targets, 5).await;
    let expected = mk8::providers::ssh::hostkey::fingerprint(
        &mk8::providers::ssh::hostkey::PublicKey::from_openssh(&fleet.nodes[0].host_public_key)
            .unwrap(),
    );
    assert_eq!(
        outcomes["node-0"].message,
        format!("joined and ready; host key {expected} was learned on first contact")
    );
}

/// The cluster's API as the first server's rke2.yaml reaches it from this host.
pub fn workload_api(fleet: &Fleet) -> WorkloadCluster {
    let rke2_yaml = fleet.nodes[0].read("/etc/rancher/rke2/rke2.yaml").unwrap();
    let endpoint = format!("https://{}:6443", fleet.nodes[0].address);
    WorkloadCluster::from_kubeconfig(&mk8::providers::rke2::cluster::point_at(
        &rke2_yaml, &endpoint,
    ))
    .expect("the first server's kubeconfig works")
}

/// A [`NodeApi`] that records what was asked of it, with the time (seconds since the epoch).
struct Recording {
    inner: WorkloadCluster,
    calls: Mutex<Vec<(String, String, f64)>>,
}

impl Recording {
    fn record(&self, call: &str, node: &str) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        self.calls
            .lock()
            .unwrap()
            .push((call.to_string(), node.to_string(), now));
    }

    fn time(&self, call: &str, node: &str) -> f64 {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .find(|(c, n, _)| c == call && n == node)
            .unwrap_or_else(|| panic!("no {call} of {node}"))
            .2
    }
}

impl NodeApi for Recording {
    fn drain<'a>(
        &'a self,
        node: &'a str,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<(), NodeApiError>> {
        self.record("drain", node);
        self.inner.drain(node, timeout)
    }
    fn uncordon<'a>(&'a self, node: &'a str) -> BoxFuture<'a, Result<(), NodeApiError>> {
        self.record("uncordon", node);
        self.inner.uncordon(node)
    }
    fn delete_node<'a>(&'a self, node: &'a str) -> BoxFuture<'a, Result<(), NodeApiError>> {
        self.inner.delete_node(node)
    }
    fn readyz<'a>(&'a self) -> BoxFuture<'a, Result<(), NodeApiError>> {
        self.inner.readyz()
    }
    fn node_readiness<'a>(&'a self) -> BoxFuture<'a, Result<BTreeMap<String, bool>, NodeApiError>> {
        self.inner.node_readiness()
    }
    fn node_ready<'a>(
        &'a self,
        node: &'a str,
        kubelet_version: &'a str,
    ) -> BoxFuture<'a, Result<(), NodeApiError>> {
        self.record("node_ready", node);
        self.inner.node_ready(node, kubelet_version)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_version_drains_and_restarts_servers_one_by_one_then_the_agents() {
    let Some(fleet) = Fleet::start("a_new_version_restarts_servers_one_by_one", 4) else {
        return;
    };
    let release = Release::build(fleet.dir(), 10_000);
    let pool = SshPool::new(Duration::from_secs(10));
    let roles = [Role::Server, Role::Server, Role::Agent, Role::Agent];
    let targets = targets(&fleet, 4);
    assert_all_ready(
        &install(&pool, &fleet, &release, &roles, &targets, 5).await,
        4,
    );
    let api = Recording {
        inner: workload_api(&fleet),
        calls: Mutex::default(),
    };
    assert_eq!(
        api.node_readiness().await.unwrap(),
        BTreeMap::from([
            ("node-0".to_string(), true),
            ("node-1".into(), true),
            ("node-2".into(), true),
            ("node-3".into(), true),
        ]),
        "every node registered Ready"
    );
    let client = kube::Client::try_from(
        kube::Config::from_custom_kubeconfig(
            kube::config::Kubeconfig::from_yaml(&mk8::providers::rke2::cluster::point_at(
                &fleet.nodes[0].read("/etc/rancher/rke2/rke2.yaml").unwrap(),
                &format!("https://{}:6443", fleet.nodes[0].address),
            ))
            .unwrap(),
            &Default::default(),
        )
        .await
        .unwrap(),
    )
    .unwrap();
    let pods: kube::Api<Pod> = kube::Api::namespaced(client.clone(), "default");
    for (name, node) in [("on-agent", "node-2"), ("on-server", "node-1")] {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": name},
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": "busybox"}]}
        }))
        .unwrap();
        pods.create(&Default::default(), &pod).await.unwrap();
    }

    let cache = ArtifactCache::new(fleet.dir().join("cache"));
    let verified = cache
        .release(&Source::Directory(release.dir.clone()), "canal")
        .await
        .unwrap();
    let (observed, _) = execute::observe(&pool, &targets, Duration::from_secs(10)).await;
    let next = "v1.33.2+rke2r1";
    let plan = plan::build(&desired(&fleet, &roles), &observed, &verified, next, 5);
    let outcomes =
        execute::execute_with_api(&pool, Some(&api), &targets, &plan, &options(), &|_| {}).await;
    assert_all_ready(&outcomes, 4);
    let second = |node: &Node, event: &str| {
        let times: Vec<f64> = events(node)
            .into_iter()
            .filter(|(e, _)| e == event)
            .map(|(_, t)| t)
            .collect();
        assert_eq!(times.len(), 2, "{} {event}: {times:?}", node.netns);
        times[1]
    };
    for node in &fleet.nodes {
        assert!(
            node.host_path(&format!("{}/{next}/install.sh", plan::ARTIFACT_DIR))
                .exists()
        );
    }
    // Each node is drained before it restarts and uncordoned once ready again; servers one at a
    // time, each after the previous is back; agents after them.
    for (i, node) in fleet.nodes.iter().enumerate() {
        let name = format!("node-{i}");
        assert!(
            api.time("drain", &name) <= second(node, "start"),
            "{name} restarted before its drain"
        );
        assert!(
            api.time("uncordon", &name) >= second(node, "ready"),
            "{name} uncordoned before ready"
        );
    }
    assert!(api.time("drain", "node-1") >= api.time("uncordon", "node-0"));
    for agent in ["node-2", "node-3"] {
        assert!(api.time("drain", agent) >= api.time("uncordon", "node-1"));
    }
    // The drains evicted the pods; the nodes are schedulable and Ready again.
    let left: Vec<String> = pods
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|p| p.metadata.name.unwrap())
        .collect();
    assert!(left.is_empty(), "pods left: {left:?}");
    let nodes: kube::Api<k8s_openapi::api::core::v1::Node> = kube::Api::all(client);
    for node in nodes.list(&Default::default()).await.unwrap().items {
        assert_ne!(
            node.spec.and_then(|s| s.unschedulable),
            Some(true),
            "{:?} is still cordoned",
            node.metadata.name
        );
    }
    assert!(api.node_readiness().await.unwrap().values().all(|r| *r));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_that_cannot_reach_the_registration_address_fails_in_preflight() {
    let Some(fleet) = Fleet::start("an_agent_cannot_reach_the_registration_address", 2) else {
        return;
    };
    let release = Release::build(fleet.dir(), 10_000);
    let pool = SshPool::new(Duration::from_secs(10));
    // Node 0 runs sshd but no RKE2: nothing answers on its supervisor port.
    let registration = fleet.nodes[0].address.clone();
    let agent = DesiredNode {
        name: "node-1".into(),
        role: Role::Agent,
        config_yaml: config::render(&NodeConfig {
            token: "fixture-token".into(),
            server: Some(registration.clone()),
            node_name: "node-1".into(),
            cni: "canal".into(),
            ..Default::default()
        }),
        registration: Some(registration.clone()),
    };
    let cache = ArtifactCache::new(fleet.dir().join("cache"));
    let verified = cache
        .release(&Source::Directory(release.dir.clone()), "canal")
        .await
        .unwrap();
    let targets = vec![Target {
        name: "node-1".into(),
        access: fleet.access(&fleet.nodes[1]),
    }];
    let plan = plan::build(&[agent], &plan::Observed::new(), &verified, VERSION, 5);
    let outcomes = execute::execute(&pool, &targets, &plan, &options(), &|_| {}).await;
    let p = &outcomes["node-1"];
    assert_eq!(p.phase, Phase::Failed, "{p:?}");
    assert_eq!(p.step, Some("preflight"));
    assert!(
        p.message.contains(&format!(
            "cannot reach the registration address {registration}:9345"
        )) && p.message.contains("cannot connect"),
        "{p:?}"
    );
    assert!(
        !fleet.nodes[1].host_path("/var/lib/rancher/mk8").exists(),
        "nothing is uploaded to a node that cannot join"
    );
}
