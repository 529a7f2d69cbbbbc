//! The operator installs RKE2 on the test fleet from Cluster and NodePool objects.

use std::time::Duration;

use serde_json::{Value, json};

use super::fleet::Fleet;
use super::release::{Mirror, Release, VERSION};
use crate::operator::{apply_stdin, start_operator};
use crate::support::{TestCluster, eventually};

const WAIT: Duration = Duration::from_secs(120);

fn condition(obj: &Value, type_: &str) -> Option<(String, String, String)> {
    obj["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
        .map(|c| {
            let s = |k: &str| c[k].as_str().unwrap_or_default().to_string();
            (s("status"), s("reason"), s("message"))
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_operator_installs_a_cluster_reports_an_unreachable_agent_and_deletes_it() {
    let Some(fleet) = Fleet::start("the_operator_installs_a_cluster", 4) else {
        return;
    };
    let release = Release::build(fleet.dir(), 100_000);
    let mirror = Mirror::serve(&release.dir).await;
    let cluster = TestCluster::with_mk8_crds().await;
    let operator = start_operator(&cluster).await;
    fleet.nodes[3].stop_sshd();

    apply_edge(
        &cluster,
        &fleet,
        &mirror.url,
        json!({"tlsSan": ["edge.test"]}),
        json!({"labels": {"pool": "agents"}}),
    );
    let host = |i: usize| host(&fleet, i);

    let c = ready(&cluster, "cluster/edge").await;
    let endpoint = format!("https://{}:6443", fleet.nodes[0].address);
    assert_eq!(c["status"]["endpoint"], endpoint.as_str());
    assert_eq!(c["status"]["phase"], "Ready");
    assert_eq!(condition(&c, "Ready").unwrap().1, "ControlPlaneReady");
    let kubeconfig = cluster.get_json(&["-n", "fleet", "secret", "edge-kubeconfig"]);
    assert_eq!(kubeconfig["metadata"]["ownerReferences"][0]["name"], "edge");
    let value = kubeconfig["data"]["value"].as_str().unwrap();
    let text = String::from_utf8(base64_decode(value)).unwrap();
    assert!(text.contains(&format!("server: {endpoint}")), "{text}");
    let (_, _, message) = condition(&c, "Ready").unwrap();
    assert!(message.contains("node(s) Ready in its API"), "{message}");

    // The stored kubeconfig reaches the cluster's API (its CA pinned, its certificate valid for
    // the registration address), where the nodes registered with the pool's labels.
    let workload = Workload::from_secret(&cluster, fleet.dir(), "fleet", "edge");
    let nodes = eventually("node-0..2 Ready in the cluster's API", WAIT, || {
        let nodes = workload.get_json(&["nodes"]);
        let ready = node_names(&nodes, true);
        if ready == ["node-0", "node-1", "node-2"] {
            Ok(nodes)
        } else {
            Err(format!("{ready:?}"))
        }
    })
    .await;
    let node1 = nodes["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["metadata"]["name"] == "node-1")
        .unwrap();
    assert_eq!(node1["metadata"]["labels"]["pool"], "agents");

    let pool = eventually("agents pool finished with node-3 failed", WAIT, || {
        let p = cluster.get_json(&["-n", "fleet", "nodepool", "agents"]);
        match condition(&p, "Ready") {
            Some((_, r, _)) if r == "NodesFailed" => Ok(p),
            other => Err(format!("{other:?} {}", p["status"]["nodes"])),
        }
    })
    .await;
    let (_, reason, message) = condition(&pool, "Degraded").unwrap();
    assert_eq!(reason, "NodesFailed");
    assert_eq!(condition(&pool, "Degraded").unwrap().0, "True");
    assert!(
        message.contains(&format!("node-3 ({})", fleet.nodes[3].address)),
        "{message}"
    );
    assert!(message.contains("cannot connect"), "{message}");
    assert_eq!(pool["status"]["ready"], 2);
    let nodes = pool["status"]["nodes"].as_array().unwrap();
    let phases: Vec<&str> = nodes.iter().map(|n| n["phase"].as_str().unwrap()).collect();
    assert_eq!(phases, ["Ready", "Ready", "Failed"]);
    let config = fleet.nodes[1]
        .read("/etc/rancher/rke2/config.yaml")
        .unwrap();
    assert!(
        config.contains(&format!("server: https://{}:9345", fleet.nodes[0].address)),
        "{config}"
    );
    assert!(config.contains("- pool=agents"), "{config}");
    // The join token came from the generated Secret, never from status or events.
    let token = cluster.get_json(&["-n", "fleet", "secret", "edge-rke2-token"]);
    let token = String::from_utf8(base64_decode(token["data"]["token"].as_str().unwrap())).unwrap();
    assert!(config.contains(&token));
    assert!(!pool.to_string().contains(&token));

    // Scale down: node-2 leaves the pool. Its pods are evicted through the cluster's API (all but
    // the static pod's mirror), its Node object is deleted, RKE2 is uninstalled; nobody else is touched.
    for pod in [
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": "default"},
            "spec": {"nodeName": "node-2", "containers": [{"name": "web", "image": "nginx"}]}}),
        // A static pod's mirror (RKE2 runs kube-proxy and etcd so): the kubelet owns it.
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "kube-proxy-node-2", "namespace": "default",
            "annotations": {"kubernetes.io/config.mirror": "fixture"}},
            "spec": {"nodeName": "node-2", "containers": [{"name": "kube-proxy", "image": "rke2-kube-proxy"}]}}),
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "api", "namespace": "default"},
            "spec": {"nodeName": "node-1", "containers": [{"name": "api", "image": "nginx"}]}}),
    ] {
        workload.create(&pod.to_string());
    }
    let starts_before: Vec<usize> = fleet.nodes[..2].iter().map(starts).collect();
    let fewer = json!({"spec": {"ssh": {"hosts": [host(1), host(3)]}}});
    merge_patch(&cluster, "nodepool/agents", &fewer);
    eventually("node-2 drained, deleted and uninstalled", WAIT, || {
        let p = cluster.get_json(&["-n", "fleet", "nodepool", "agents"]);
        let listed: Vec<String> = p["status"]["nodes"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|n| n["name"].as_str().unwrap().to_string())
                    .collect()
            })
            .unwrap_or_default();
        if fleet.nodes[2]
            .read("/var/lib/rancher/mk8-fixture-uninstalled")
            .is_some()
            && !listed.contains(&"node-2".to_string())
        {
            Ok(())
        } else {
            Err(format!("listed: {listed:?}; {}", p["status"]["nodes"]))
        }
    })
    .await;
    let nodes = workload.get_json(&["nodes"]);
    assert_eq!(node_names(&nodes, false), ["node-0", "node-1"]);
    let pods = workload.get_json(&["pods", "-n", "default"]);
    let pods: Vec<&str> = pods["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        pods,
        ["api", "kube-proxy-node-2"],
        "web was not evicted, or too much was"
    );
    let starts_after: Vec<usize> = fleet.nodes[..2].iter().map(starts).collect();
    assert_eq!(starts_after, starts_before, "other nodes were restarted");
    assert!(!fleet.nodes[2].host_path("/usr/local/bin/rke2").exists());

    // Upgrade: a new version reaches the server first, then (once the server pool reports it)
    // the agents; every node is drained before its restart and the Nodes report the version.
    let next = "v1.33.2+rke2r1";
    let upgrade = json!({"spec": {"rke2": {"version": next}}});
    merge_patch(&cluster, "cluster/edge", &upgrade);
    eventually("Cluster edge upgraded and Ready", WAIT, || {
        let c = cluster.get_json(&["-n", "fleet", "cluster", "edge"]);
        let agents = cluster.get_json(&["-n", "fleet", "nodepool", "agents"]);
        match (
            condition(&c, "Ready"),
            &c["status"]["kubernetesVersion"],
            &agents["status"]["version"],
        ) {
            (Some((s, _, _)), v, a)
                if s == "True" && v == next && a == next && c["status"]["phase"] == "Ready" =>
            {
                Ok(())
            }
            other => Err(format!("{other:?} phase {}", c["status"]["phase"])),
        }
    })
    .await;
    let restarts = |node: &super::fleet::Node, event: &str| -> Vec<f64> {
        node.read("/var/lib/rancher/rke2/mk8-fixture/events")
            .unwrap_or_default()
            .lines()
            .filter(|l| l.starts_with(event))
            .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
            .collect()
    };
    let (server_ready, agent_start) = (
        restarts(&fleet.nodes[0], "ready "),
        restarts(&fleet.nodes[1], "start "),
    );
    assert_eq!((server_ready.len(), agent_start.len()), (2, 2));
    assert!(
        agent_start[1] >= server_ready[1],
        "the agent restarted before the server was back"
    );
    let nodes = workload.get_json(&["nodes"]);
    for node in nodes["items"].as_array().unwrap() {
        assert_eq!(node["status"]["nodeInfo"]["kubeletVersion"], next, "{node}");
        assert_ne!(node["spec"]["unschedulable"], true, "{node}");
    }
    let pods = workload.get_json(&["pods", "-n", "default"]);
    assert!(
        !pods.to_string().contains("\"api\""),
        "the pod on node-1 was not evicted by the drain before its restart"
    );

    // The server that bootstrapped the cluster is recorded; taking it out of the spec (here:
    // replaced by node-2) is refused while the nodes register through its address, and nothing
    // is touched: it keeps running, node-2 gets nothing.
    let servers_pool = cluster.get_json(&["-n", "fleet", "nodepool", "servers"]);
    assert_eq!(
        servers_pool["status"]["bootstrap"],
        fleet.nodes[0].address.as_str()
    );
    let patch_servers = |hosts: Value| {
        merge_patch(
            &cluster,
            "nodepool/servers",
            &json!({"spec": {"ssh": {"hosts": hosts}}}),
        );
    };
    let server_starts = starts(&fleet.nodes[0]);
    patch_servers(json!([host(2)]));
    let (_, _, message) = eventually("removing the bootstrap server refused", WAIT, || {
        let p = cluster.get_json(&["-n", "fleet", "nodepool", "servers"]);
        match condition(&p, "Ready") {
            Some((s, r, m)) if r == "BootstrapServerRemoved" => Ok((s, r, m)),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    assert!(
        message.contains(&format!(
            "host {} (node node-0) bootstrapped Cluster edge",
            fleet.nodes[0].address
        )) && message.contains("spec.rke2.registrationAddress"),
        "{message}"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        fleet.nodes[0]
            .read("/var/lib/rancher/mk8-fixture-uninstalled")
            .is_none()
    );
    assert_eq!(starts(&fleet.nodes[0]), server_starts);
    assert!(
        !fleet.nodes[2]
            .host_path("/etc/rancher/rke2/config.yaml")
            .exists()
    );
    patch_servers(json!([host(0)]));
    ready(&cluster, "nodepool/servers").await;
    assert_eq!(
        starts(&fleet.nodes[0]),
        server_starts,
        "the server restarted"
    );

    // A second server pool joins node-2. Deleting the pool of the bootstrap server is then
    // refused while node-2 registers through its address: the pool stays, an Event says why,
    // nothing is uninstalled. (Deleting the Cluster below takes everything down in order.)
    let servers_b = json!({"apiVersion": "mk8.io/v1alpha1", "kind": "NodePool",
        "metadata": {"name": "servers-b", "namespace": "fleet"},
        "spec": {"clusterName": "edge", "ssh": {"role": "server", "hosts": [host(2)], "stepTimeout": "60s"}}});
    apply_stdin(&cluster, &servers_b.to_string());
    ready(&cluster, "nodepool/servers-b").await;
    cluster.kubectl(&[
        "delete",
        "-n",
        "fleet",
        "nodepool",
        "servers",
        "--wait=false",
    ]);
    eventually("deleting the bootstrap server's pool refused", WAIT, || {
        let events = cluster.kubectl(&["get", "events.events.k8s.io", "-n", "fleet", "-o", "json"]);
        let refused = format!(
            "server pool servers holds host {}, which bootstrapped Cluster edge, and the servers of servers-b register through its address",
            fleet.nodes[0].address
        );
        if events.contains("DeletionBlocked") && events.contains(&refused) {
            Ok(())
        } else {
            Err(events)
        }
    })
    .await;
    let servers_pool = cluster.get_json(&["-n", "fleet", "nodepool", "servers"]);
    assert!(servers_pool["metadata"]["deletionTimestamp"].is_string());
    assert!(
        fleet.nodes[0]
            .read("/var/lib/rancher/mk8-fixture-uninstalled")
            .is_none(),
        "the bootstrap server was uninstalled"
    );

    // Deleting the Cluster removes its pools (agents first, then servers), uninstalls RKE2 from
    // every node it reached, and takes the Secrets it owns with it.
    cluster.kubectl(&["delete", "-n", "fleet", "cluster", "edge", "--wait=false"]);
    eventually("Cluster edge and its pools gone", WAIT, || {
        let left = cluster.kubectl(&["get", "-n", "fleet", "clusters,nodepools", "-o", "name"]);
        if left.trim().is_empty() {
            Ok(())
        } else {
            Err(left)
        }
    })
    .await;
    for node in &fleet.nodes[..2] {
        assert!(
            node.read("/var/lib/rancher/mk8-fixture-uninstalled")
                .is_some(),
            "{} was not uninstalled",
            node.netns
        );
        assert!(!node.host_path("/var/lib/rancher/rke2").exists());
        assert!(!node.host_path("/usr/local/bin/rke2").exists());
    }
    let agents_done = fleet.nodes[1]
        .read("/var/lib/rancher/mk8-fixture-uninstalled")
        .unwrap();
    let server_done = fleet.nodes[0]
        .read("/var/lib/rancher/mk8-fixture-uninstalled")
        .unwrap();
    let time = |t: &str| t.trim().parse::<f64>().unwrap();
    assert!(
        time(&agents_done) < time(&server_done),
        "the server was uninstalled before the agents"
    );
    eventually("the Secrets owned by the Cluster are gone", WAIT, || {
        let left = cluster.kubectl(&["get", "-n", "fleet", "secrets", "-o", "name"]);
        if left.contains("edge-kubeconfig") || left.contains("edge-rke2-token") {
            Err(left)
        } else {
            Ok(())
        }
    })
    .await;

    let _ = operator.stop.send(());
    let _ = operator.done.await;
}

/// Host `i` of the fleet as a NodePool host, named `node-<i>`.
fn host(fleet: &Fleet, i: usize) -> Value {
    json!({"address": fleet.nodes[i].address, "nodeName": format!("node-{i}")})
}

/// Namespace `fleet`, the SSH credentials Secret, Cluster `edge` (installed from `mirror`, with
/// `rke2` merged into `spec.rke2`), NodePool `servers` (node-0) and NodePool `agents` (node-1 to
/// node-3, with `agents` merged into `spec.ssh`).
fn apply_edge(cluster: &TestCluster, fleet: &Fleet, mirror: &str, rke2: Value, agents: Value) {
    let merged = |mut base: Value, extra: Value| {
        for (k, v) in extra.as_object().unwrap() {
            base[k] = v.clone();
        }
        base
    };
    apply_stdin(
        cluster,
        r#"{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"fleet"}}"#,
    );
    let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "fleet-ssh", "namespace": "fleet"},
        "type": "kubernetes.io/ssh-auth",
        "stringData": {"ssh-privatekey": fleet.client_key, "known_hosts": fleet.known_hosts}});
    let rke2 = merged(
        json!({"version": VERSION, "artifacts": {"baseURL": mirror},
            "sshCredentialsSecretRef": {"name": "fleet-ssh"}}),
        rke2,
    );
    let edge = json!({"apiVersion": "mk8.io/v1alpha1", "kind": "Cluster",
        "metadata": {"name": "edge", "namespace": "fleet"}, "spec": {"rke2": rke2}});
    let servers = json!({"apiVersion": "mk8.io/v1alpha1", "kind": "NodePool", "metadata": {"name": "servers", "namespace": "fleet"},
        "spec": {"clusterName": "edge", "ssh": {"role": "server", "hosts": [host(fleet, 0)], "stepTimeout": "60s"}}});
    let ssh = merged(
        json!({"role": "agent", "hosts": [host(fleet, 1), host(fleet, 2), host(fleet, 3)],
            "stepTimeout": "60s"}),
        agents,
    );
    let agents = json!({"apiVersion": "mk8.io/v1alpha1", "kind": "NodePool", "metadata": {"name": "agents", "namespace": "fleet"},
        "spec": {"clusterName": "edge", "ssh": ssh}});
    for object in [secret, edge, servers, agents] {
        apply_stdin(cluster, &object.to_string());
    }
}

/// Wait until `object` (such as `nodepool/servers`, in namespace fleet) is `Ready=True`; returns it.
async fn ready(cluster: &TestCluster, object: &str) -> Value {
    eventually(&format!("{object} Ready"), WAIT, || {
        let o = cluster.get_json(&["-n", "fleet", object]);
        match condition(&o, "Ready") {
            Some((s, _, _)) if s == "True" => Ok(o),
            other => Err(format!("{other:?}")),
        }
    })
    .await
}

/// `kubectl patch -n fleet <object> --type=merge -p <patch>`.
fn merge_patch(cluster: &TestCluster, object: &str, patch: &Value) {
    let patch = patch.to_string();
    cluster.kubectl(&["patch", "-n", "fleet", object, "--type=merge", "-p", &patch]);
}

/// How many times the rke2 stand-in started on `node`.
fn starts(node: &super::fleet::Node) -> usize {
    node.read("/var/lib/rancher/rke2/mk8-fixture/events")
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with("start "))
        .count()
}

/// Names of the Nodes in a `kubectl get nodes -o json` list (only the Ready ones if asked).
fn node_names(list: &Value, ready_only: bool) -> Vec<String> {
    let mut names: Vec<String> = list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|n| {
            !ready_only
                || n["status"]["conditions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
        .map(|n| n["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    names
}

/// kubectl against a workload cluster through the kubeconfig mk8 stored for it.
pub(super) struct Workload {
    kubeconfig: std::path::PathBuf,
}

impl Workload {
    /// Write the Cluster's kubeconfig Secret to a file beside the fleet.
    pub(super) fn from_secret(
        cluster: &TestCluster,
        dir: &std::path::Path,
        ns: &str,
        name: &str,
    ) -> Workload {
        let secret = cluster.get_json(&["-n", ns, "secret", &format!("{name}-kubeconfig")]);
        let value = base64_decode(secret["data"]["value"].as_str().unwrap());
        let kubeconfig = dir.join(format!("{name}.kubeconfig"));
        std::fs::write(&kubeconfig, value).unwrap();
        Workload { kubeconfig }
    }

    fn run(&self, args: &[&str], stdin: Option<&str>) -> String {
        crate::support::apply_stdin_with(&self.kubeconfig, args, stdin.unwrap_or_default())
    }

    /// `kubectl get ... -o json`.
    pub(super) fn get_json(&self, args: &[&str]) -> Value {
        let mut full = vec!["get"];
        full.extend_from_slice(args);
        full.extend(["-o", "json"]);
        serde_json::from_str(&self.run(&full, None)).unwrap()
    }

    /// `kubectl create -f -`.
    pub(super) fn create(&self, json: &str) {
        self.run(&["create", "-f", "-"], Some(json));
    }
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap()
}

/// The operator binary as a separate process, so that it can be killed outright.
struct OperatorProcess(std::process::Child);

impl OperatorProcess {
    fn spawn(cluster: &TestCluster, dir: &std::path::Path, log: &str) -> OperatorProcess {
        let log = std::fs::File::create(dir.join(log)).unwrap();
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_mk8-operator"))
            .args(["--admin-addr", "127.0.0.1:0", "--leader-election", "false"])
            .env("KUBECONFIG", &cluster.kubeconfig)
            .env("MK8_ARTIFACT_CACHE", dir.join("operator-cache"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("mk8-operator starts");
        OperatorProcess(child)
    }

    /// SIGKILL: no shutdown, no last status write.
    fn kill(mut self) {
        self.0.kill().unwrap();
        self.0.wait().unwrap();
    }
}

impl Drop for OperatorProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_killed_mid_install_converges_without_repeating_finished_steps() {
    let Some(fleet) = Fleet::start("an_operator_killed_mid_install", 4) else {
        return;
    };
    let release = Release::build(fleet.dir(), 100_000);
    let mirror = Mirror::serve(&release.dir).await;
    let cluster = TestCluster::with_mk8_crds().await;
    let operator = OperatorProcess::spawn(&cluster, fleet.dir(), "operator-1.log");
    // One agent at a time, so that the kill lands while some agents are still to come.
    apply_edge(
        &cluster,
        &fleet,
        &mirror.url,
        json!({}),
        json!({"maxParallel": 1}),
    );

    let marker = |node: &super::fleet::Node, step: &str| {
        node.host_path(&format!("/var/lib/rancher/rke2/.mk8/{step}"))
            .exists()
    };
    eventually("the first agent started", WAIT, || {
        if marker(&fleet.nodes[1], "start") {
            Ok(())
        } else {
            Err("not yet".to_string())
        }
    })
    .await;
    operator.kill();
    let steps = ["preflight", "upload", "config", "install", "start", "ready"];
    let finished: Vec<Vec<&str>> = fleet
        .nodes
        .iter()
        .map(|n| steps.iter().copied().filter(|s| marker(n, s)).collect())
        .collect();
    assert!(
        finished[3].len() < steps.len(),
        "every agent had finished before the kill: {finished:?}"
    );

    let operator = OperatorProcess::spawn(&cluster, fleet.dir(), "operator-2.log");
    eventually("the agents pool Ready after the restart", WAIT, || {
        let p = cluster.get_json(&["-n", "fleet", "nodepool", "agents"]);
        match condition(&p, "Ready") {
            Some((s, _, _)) if s == "True" => Ok(()),
            other => Err(format!("{other:?} {}", p["status"]["nodes"])),
        }
    })
    .await;
    eventually("Cluster edge Ready", WAIT, || {
        let c = cluster.get_json(&["-n", "fleet", "cluster", "edge"]);
        match condition(&c, "Ready") {
            Some((s, _, _)) if s == "True" => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    for (node, done) in fleet.nodes.iter().zip(&finished) {
        let events = node
            .read("/var/lib/rancher/rke2/mk8-fixture/events")
            .unwrap_or_default();
        let count = |e: &str| events.lines().filter(|l| l.starts_with(e)).count();
        for (step, event) in [("install", "install "), ("start", "start ")] {
            // A finished step never runs again; one cut short by the kill may run once more.
            let allowed = if done.contains(&step) { 1 } else { 2 };
            assert!(
                (1..=allowed).contains(&count(event)),
                "{} ran {step} {} times (finished before the kill: {done:?}): {events}",
                node.netns,
                count(event)
            );
        }
        for step in steps {
            assert!(marker(node, step), "{} has no {step} marker", node.netns);
        }
    }
    drop(operator);
}
