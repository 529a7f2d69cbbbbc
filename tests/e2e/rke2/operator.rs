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

    apply_stdin(
        &cluster,
        r#"{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"fleet"}}"#,
    );
    let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "fleet-ssh", "namespace": "fleet"},
        "type": "kubernetes.io/ssh-auth",
        "stringData": {"ssh-privatekey": fleet.client_key, "known_hosts": fleet.known_hosts}});
    apply_stdin(&cluster, &secret.to_string());
    let edge = json!({"apiVersion": "mk8.io/v1alpha1", "kind": "Cluster", "metadata": {"name": "edge", "namespace": "fleet"},
        "spec": {"rke2": {"version": VERSION, "artifacts": {"baseURL": mirror.url},
            "sshCredentialsSecretRef": {"name": "fleet-ssh"}, "tlsSan": ["edge.test"]}}});
    apply_stdin(&cluster, &edge.to_string());
    let host =
        |i: usize| json!({"address": fleet.nodes[i].address, "nodeName": format!("node-{i}")});
    let servers = json!({"apiVersion": "mk8.io/v1alpha1", "kind": "NodePool", "metadata": {"name": "servers", "namespace": "fleet"},
        "spec": {"clusterName": "edge", "ssh": {"role": "server", "hosts": [host(0)], "stepTimeout": "60s"}}});
    let agents = json!({"apiVersion": "mk8.io/v1alpha1", "kind": "NodePool", "metadata": {"name": "agents", "namespace": "fleet"},
        "spec": {"clusterName": "edge", "ssh": {"role": "agent", "hosts": [host(1), host(2), host(3)],
            "labels": {"pool": "agents"}, "stepTimeout": "60s"}}});
    apply_stdin(&cluster, &servers.to_string());
    apply_stdin(&cluster, &agents.to_string());

    let c = eventually("Cluster edge Ready", WAIT, || {
        let c = cluster.get_json(&["-n", "fleet", "cluster", "edge"]);
        match condition(&c, "Ready") {
            Some((s, _, _)) if s == "True" => Ok(c),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let endpoint = format!("https://{}:6443", fleet.nodes[0].address);
    assert_eq!(c["status"]["endpoint"], endpoint.as_str());
    assert_eq!(c["status"]["phase"], "Ready");
    assert_eq!(condition(&c, "Ready").unwrap().1, "ControlPlaneReady");
    let kubeconfig = cluster.get_json(&["-n", "fleet", "secret", "edge-kubeconfig"]);
    assert_eq!(kubeconfig["metadata"]["ownerReferences"][0]["name"], "edge");
    let value = kubeconfig["data"]["value"].as_str().unwrap();
    let text = String::from_utf8(base64_decode(value)).unwrap();
    assert!(text.contains(&format!("server: {endpoint}")), "{text}");

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
    for node in &fleet.nodes[..3] {
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

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap()
}
