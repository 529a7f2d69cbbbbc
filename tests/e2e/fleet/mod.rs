//! Reads across the fleet: `mk8 get/describe/logs/clusters` and the ClusterProfileView
//! controller over a hub with development member clusters (`mk8::apiserver::members`), one of
//! them down, one slower than the timeout, one answering 403, and a foreign cluster whose
//! ClusterProfile is written as Open Cluster Management writes it and read through a KEP-5339
//! exec plugin (a test script emitting an ExecCredential). mk8's own members are read through
//! `mk8 credentials kubeconfig-secret`, the kubeconfig-secretreader contract.

mod bench;
mod view;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use base64::Engine;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use mk8::api::ClusterProfile;
use mk8::apiserver::{DevServer, DevServerConfig};
use mk8::devfleet::{self as members, MemberOptions};
use serde_json::{Value, json};

use crate::support::TestCluster;

const MK8: &str = env!("CARGO_BIN_EXE_mk8");

/// A hub and its members.
pub(crate) struct Fleet {
    pub hub: TestCluster,
    pub servers: Vec<DevServer>,
    pub dir: tempfile::TempDir,
    /// The access-provider file: mk8's entry and the OCM test plugin.
    pub providers: PathBuf,
}

const OCM_PLUGIN: &str = r#"#!/bin/sh
# KEP-5339 test plugin: the token of the cluster named by the exec extension.
here=$(dirname "$0")
printf '%s\n' "$KUBERNETES_EXEC_INFO" >> "$here/ocm-plugin.calls"
exec python3 -c '
import json, os, sys
info = json.loads(os.environ["KUBERNETES_EXEC_INFO"])
name = info["spec"]["cluster"]["config"]["clusterName"]
token = json.load(open(sys.argv[1]))[name]
print(json.dumps({"apiVersion": info["apiVersion"], "kind": "ExecCredential", "status": {"token": token}}))
' "$here/ocm-tokens.json"
"#;

impl Fleet {
    /// Hub with mk8's CRDs and the inventory; members 1–3 (2 web pods each), `member-down`
    /// (published, then stopped), `member-slow` (3 s per request), `member-403` (forbidden)
    /// and the foreign `ocm-east`.
    pub async fn start() -> Fleet {
        let hub = TestCluster::with_mk8_crds().await;
        let options = MemberOptions::default();
        let mut servers = members::start_members(hub.server(), 3, &options)
            .await
            .expect("members start");
        let hub_client = hub.client().await;
        let extra = |config: DevServerConfig| async move {
            DevServer::start(DevServerConfig { port: 0, ..config })
                .await
                .expect("server starts")
        };
        let down = extra(DevServerConfig::default()).await;
        members::publish_member(&hub_client, "member-down", &down)
            .await
            .unwrap();
        down.shutdown().await;
        let slow = extra(DevServerConfig {
            latency: Some(Duration::from_secs(3)),
            ..Default::default()
        })
        .await;
        members::seed_member(&slow, "member-slow", 1).unwrap();
        members::publish_member(&hub_client, "member-slow", &slow)
            .await
            .unwrap();
        let forbidden = extra(DevServerConfig {
            forbidden: true,
            ..Default::default()
        })
        .await;
        members::publish_member(&hub_client, "member-403", &forbidden)
            .await
            .unwrap();
        let ocm = extra(DevServerConfig::default()).await;
        members::seed_member(&ocm, "ocm-east", 2).unwrap();
        publish_as_ocm(&hub_client, "ocm-east", &ocm).await;

        let dir = tempfile::tempdir().unwrap();
        let hub_kubeconfig = dir.path().join("hub.kubeconfig");
        hub.server().write_kubeconfig(&hub_kubeconfig).unwrap();
        let plugin = dir.path().join("ocm-plugin.sh");
        std::fs::write(&plugin, OCM_PLUGIN).unwrap();
        std::fs::set_permissions(&plugin, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(
            dir.path().join("ocm-tokens.json"),
            json!({"ocm-east": ocm.token()}).to_string(),
        )
        .unwrap();
        let providers = dir.path().join("access-providers.json");
        let file = json!({"providers": [
            mk8::fleet::mk8_provider(MK8, Some(hub_kubeconfig.to_str().unwrap()), None),
            {"name": "open-cluster-management", "execConfig": {
                "apiVersion": "client.authentication.k8s.io/v1", "command": plugin, "provideClusterInfo": true}},
        ]});
        std::fs::write(&providers, file.to_string()).unwrap();
        servers.extend([slow, forbidden, ocm]);
        Fleet {
            hub,
            servers,
            dir,
            providers,
        }
    }

    /// The foreign cluster.
    pub fn ocm(&self) -> &DevServer {
        &self.servers[5]
    }

    pub fn hub_kubeconfig(&self) -> PathBuf {
        self.dir.path().join("hub.kubeconfig")
    }

    /// `mk8 ARGS` against the hub, with a config and cache directory of its own.
    pub async fn mk8(&self, args: &[&str]) -> Output {
        let mut command = Command::new(MK8);
        command
            .args(args)
            .env("KUBECONFIG", self.hub_kubeconfig())
            .env("MK8_CONFIG_DIR", self.dir.path().join("config"))
            .env("XDG_CACHE_HOME", self.dir.path().join("cache"));
        tokio::task::spawn_blocking(move || command.output().expect("mk8 runs"))
            .await
            .unwrap()
    }

    /// `mk8 ARGS --access-providers FILE --timeout 2s`.
    pub async fn read(&self, args: &[&str]) -> Output {
        let mut all = args.to_vec();
        all.extend([
            "--access-providers",
            self.providers.to_str().unwrap(),
            "--timeout",
            "2s",
        ]);
        self.mk8(&all).await
    }
}

/// A ClusterProfile as OCM's cluster-profile controller writes it: manager
/// `open-cluster-management`, the cluster set label, `Joined`, an access provider through its
/// cluster proxy whose exec extension carries `clusterName`.
async fn publish_as_ocm(hub: &kube::Client, name: &str, server: &DevServer) {
    let api: Api<ClusterProfile> = Api::namespaced(hub.clone(), "fleet");
    let profile: ClusterProfile = serde_json::from_value(json!({
        "apiVersion": "multicluster.x-k8s.io/v1alpha1",
        "kind": "ClusterProfile",
        "metadata": {"name": name, "namespace": "fleet", "labels": {
            "x-k8s.io/cluster-manager": "open-cluster-management",
            "multicluster.x-k8s.io/clusterset": "east-set",
            "open-cluster-management.io/cluster-name": name,
            "env": "prod",
        }},
        "spec": {"displayName": name, "clusterManager": {"name": "open-cluster-management"}},
    }))
    .unwrap();
    api.create(&PostParams::default(), &profile).await.unwrap();
    let ca = base64::engine::general_purpose::STANDARD.encode(server.ca_pem().unwrap());
    let status = json!({"status": {
        "conditions": [
            {"type": "ControlPlaneHealthy", "status": "True", "reason": "ManagedClusterAvailable", "message": "Managed cluster is available", "lastTransitionTime": "2026-12-01T00:00:00Z"},
            {"type": "Joined", "status": "True", "reason": "ManagedClusterJoined", "message": "Managed cluster joined", "lastTransitionTime": "2026-12-01T00:00:00Z"},
        ],
        "version": {"kubernetes": "v1.33.4"},
        "properties": [{"name": "clusterset.k8s.io/cluster-id", "value": name}],
        "accessProviders": [{"name": "open-cluster-management", "cluster": {
            "server": server.url(),
            "certificate-authority-data": ca,
            "extensions": [{"name": "client.authentication.k8s.io/exec", "extension": {"clusterName": name}}],
        }}],
    }});
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .unwrap();
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ok(out: &Output) -> (String, String) {
    let (stdout, stderr) = text(out);
    assert!(
        out.status.success(),
        "mk8 failed ({:?}):\n{stdout}\n{stderr}",
        out.status
    );
    (stdout, stderr)
}

fn clusters_of(table: &str) -> Vec<String> {
    let mut seen: Vec<String> = table
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect();
    seen.dedup();
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn get_reads_every_cluster_with_partial_results_and_a_summary() {
    let fleet = Fleet::start().await;

    let out = fleet.read(&["get", "pods", "-A"]).await;
    let (stdout, stderr) = ok(&out);
    let header: Vec<&str> = stdout.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header[..3], ["CLUSTER", "NAMESPACE", "NAME"], "{stdout}");
    assert!(
        header.contains(&"STATUS") && !header.contains(&"IP"),
        "{stdout}"
    );
    assert_eq!(
        clusters_of(&stdout),
        ["member-1", "member-2", "member-3", "ocm-east"],
        "stable order, the foreign cluster through its exec plugin:\n{stdout}"
    );
    let web_rows = stdout
        .lines()
        .filter(|l| l.contains(" demo ") && l.contains("Running"))
        .count();
    assert_eq!(
        web_rows, 8,
        "2 web pods on each answering cluster:\n{stdout}"
    );
    let summary = stderr
        .lines()
        .find(|l| l.contains("clusters failed"))
        .unwrap_or_default();
    assert!(
        summary.starts_with("3 of 7 clusters failed: member-403: pods is forbidden"),
        "{stderr}"
    );
    assert!(summary.contains("member-down: "), "{stderr}");
    assert!(
        summary.contains("member-slow: timeout after 2s"),
        "{stderr}"
    );

    // Discovery is cached per cluster like kubectl's, also when core had the type.
    let cached = std::fs::read_dir(fleet.dir.path().join("cache/mk8/discovery"))
        .unwrap()
        .count();
    // The four that answered and member-403, whose discovery is open while its lists are not.
    assert_eq!(
        cached, 5,
        "one discovery file per cluster whose discovery answered"
    );

    // The exec plugin got the profile's extension.
    let calls = std::fs::read_to_string(fleet.dir.path().join("ocm-plugin.calls")).unwrap();
    let call: Value = serde_json::from_str(calls.lines().next().unwrap()).unwrap();
    assert_eq!(
        call["spec"]["cluster"]["config"],
        json!({"clusterName": "ocm-east"})
    );
    assert_eq!(call["spec"]["cluster"]["server"], fleet.ocm().url());

    let strict = fleet.read(&["get", "pods", "-A", "--strict"]).await;
    assert!(
        !strict.status.success(),
        "--strict fails when any cluster fails"
    );

    // Filters: globs, exclusions, labels, the cluster set.
    let out = fleet
        .read(&[
            "get",
            "pods",
            "-n",
            "demo",
            "--clusters",
            "member-*",
            "--exclude",
            "member-2,member-slow,member-down,member-403",
        ])
        .await;
    let (stdout, stderr) = ok(&out);
    assert_eq!(
        clusters_of(&stdout),
        ["member-1", "member-3"],
        "{stdout}{stderr}"
    );
    assert!(
        stderr.is_empty(),
        "no failed cluster was selected: {stderr}"
    );
    let out = fleet
        .read(&[
            "get",
            "pods",
            "-n",
            "demo",
            "--cluster-selector",
            "member=2",
        ])
        .await;
    assert_eq!(clusters_of(&ok(&out).0), ["member-2"]);
    let out = fleet
        .read(&["get", "pods", "-n", "demo", "--clusterset", "east-set"])
        .await;
    assert_eq!(clusters_of(&ok(&out).0), ["ocm-east"]);
    let bad = fleet
        .read(&["get", "pods", "--cluster-selector", "env in (a"])
        .await;
    assert!(
        text(&bad).1.contains("--cluster-selector \"env in (a\""),
        "{}",
        text(&bad).1
    );

    // Output formats.
    let out = fleet
        .read(&[
            "get",
            "pods",
            "-n",
            "demo",
            "-o",
            "wide",
            "--clusters",
            "member-1",
        ])
        .await;
    let (stdout, _) = ok(&out);
    let header = stdout.lines().next().unwrap();
    assert!(
        header.starts_with("CLUSTER ") && header.contains(" IP ") && header.contains(" NODE"),
        "{stdout}"
    );
    let out = fleet
        .read(&[
            "get",
            "deploy.apps",
            "-n",
            "demo",
            "-o",
            "json",
            "--clusters",
            "member-1,ocm-east",
        ])
        .await;
    let list: Value = serde_json::from_str(&ok(&out).0).unwrap();
    assert_eq!(list["kind"], "List");
    let from: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            i["metadata"]["annotations"]["mk8.io/cluster"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert_eq!(from, ["member-1", "ocm-east"]);
    assert_eq!(list["items"][0]["kind"], "Deployment");
    assert!(list["items"][0]["metadata"].get("managedFields").is_none());
    let out = fleet
        .read(&[
            "get",
            "cm",
            "web-config",
            "-n",
            "demo",
            "-o",
            "yaml",
            "--clusters",
            "member-2",
        ])
        .await;
    let list: Value = serde_yaml::from_str(&ok(&out).0).unwrap();
    assert_eq!(
        list["items"][0]["data"]["index.html"],
        "<h1>hello from member-2</h1>\n"
    );
    let out = fleet
        .read(&[
            "get",
            "pods",
            "-A",
            "--field-selector",
            "metadata.namespace=kube-system",
            "--clusters",
            "member-1",
        ])
        .await;
    let (stdout, _) = ok(&out);
    assert_eq!(stdout.lines().count(), 2, "only coredns: {stdout}");
    let out = fleet
        .read(&["get", "pods", "-l", "app=web", "--clusters", "member-1"])
        .await;
    assert!(
        text(&out)
            .1
            .contains("No resources found in default namespace on 1 clusters."),
        "{}",
        text(&out).1
    );
    let out = fleet
        .read(&[
            "get",
            "svc",
            "-n",
            "demo",
            "-o",
            "name",
            "--clusters",
            "member-1,member-2",
        ])
        .await;
    assert_eq!(ok(&out).0, "member-1 service/web\nmember-2 service/web\n");
    let out = fleet
        .read(&[
            "get",
            "deployments.v1.apps/web",
            "-n",
            "demo",
            "--clusters",
            "member-*",
            "--exclude",
            "member-slow,member-down,member-403",
        ])
        .await;
    let (stdout, _) = ok(&out);
    assert_eq!(
        clusters_of(&stdout),
        ["member-1", "member-2", "member-3"],
        "{stdout}"
    );
    assert!(stdout.lines().nth(1).unwrap().contains("2/2"), "{stdout}");
    let missing = fleet
        .read(&[
            "get",
            "pod",
            "nothing-here",
            "-n",
            "demo",
            "--clusters",
            "member-1",
        ])
        .await;
    assert!(!missing.status.success());
    assert!(
        text(&missing)
            .1
            .contains("not found on any of the 1 clusters"),
        "{}",
        text(&missing).1
    );
    let unknown = fleet
        .read(&["get", "gizmos", "--clusters", "member-1"])
        .await;
    assert!(
        text(&unknown)
            .1
            .contains("member-1: the server doesn't have a resource type \"gizmos\""),
        "{}",
        text(&unknown).1
    );

    // As a kubectl plugin.
    let bin = fleet.dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink(MK8, bin.join("kubectl-mk8")).unwrap();
    let mut plugin = Command::new("kubectl");
    plugin
        .args([
            "mk8",
            "get",
            "svc",
            "-n",
            "demo",
            "--clusters",
            "member-1,member-3",
        ])
        .env(
            "PATH",
            format!(
                "{}:{}",
                bin.display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        )
        .env("KUBECONFIG", fleet.hub_kubeconfig())
        .env("MK8_CONFIG_DIR", fleet.dir.path().join("config"))
        .env("XDG_CACHE_HOME", fleet.dir.path().join("cache"));
    let out = tokio::task::spawn_blocking(move || plugin.output().unwrap())
        .await
        .unwrap();
    assert_eq!(clusters_of(&ok(&out).0), ["member-1", "member-3"]);

    // mk8 clusters: every profile, how it is reached and whether it answers.
    let out = fleet.read(&["clusters"]).await;
    let (stdout, _) = ok(&out);
    let row = |name: &str| {
        stdout
            .lines()
            .find(|l| l.split_whitespace().nth(1) == Some(name))
            .unwrap_or_default()
            .to_string()
    };
    assert!(
        row("member-1").contains(" mk8-dev ") && row("member-1").contains("Ok ("),
        "{stdout}"
    );
    assert!(
        row("ocm-east").contains("open-cluster-management") && row("ocm-east").contains("v1.33.4"),
        "{stdout}"
    );
    assert!(row("member-slow").contains("Timeout"), "{stdout}");
    assert!(
        row("member-403").contains("Ok ("),
        "/version stays open on a forbidding server: {stdout}"
    );
    assert!(row("member-down").contains("Unreachable"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn describe_and_logs_ask_which_cluster_when_a_name_is_on_several() {
    let fleet = Fleet::start().await;
    let pod = |log: &str| {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: shared\n  namespace: demo\n  annotations:\n    dev.mk8.io/log: {log:?}\nspec:\n  containers: [{{name: app, image: busybox}}]\n"
        )
    };
    fleet.servers[0]
        .apply_manifests(&pod("one\ntwo\n"))
        .await
        .unwrap();
    fleet.servers[1]
        .apply_manifests(&pod("three\n"))
        .await
        .unwrap();
    let only_members = ["--clusters", "member-1,member-2,member-3"];
    let with = |args: &[&'static str]| -> Vec<&'static str> {
        args.iter().chain(only_members.iter()).copied().collect()
    };

    let out = fleet
        .read(&with(&["describe", "pod", "shared", "-n", "demo"]))
        .await;
    assert!(!out.status.success());
    assert!(
        text(&out).1.contains("pod \"shared\" exists on 2 clusters (member-1, member-2): choose one with --cluster NAME, or show all with --all-clusters"),
        "{}", text(&out).1
    );
    let out = fleet
        .read(&with(&[
            "describe",
            "pod",
            "shared",
            "-n",
            "demo",
            "--cluster",
            "member-2",
        ]))
        .await;
    let (stdout, _) = ok(&out);
    assert!(
        stdout.starts_with("Cluster:     member-2\nName:        shared\nNamespace:   demo\n"),
        "{stdout}"
    );
    let out = fleet
        .read(&with(&[
            "describe",
            "deploy.apps",
            "web",
            "-n",
            "demo",
            "--all-clusters",
        ]))
        .await;
    assert_eq!(ok(&out).0.matches("Cluster:     ").count(), 3);

    let out = fleet.read(&with(&["logs", "shared", "-n", "demo"])).await;
    assert!(
        text(&out)
            .1
            .contains("pod \"shared\" exists on 2 clusters (member-1, member-2)"),
        "{}",
        text(&out).1
    );
    let out = fleet
        .read(&with(&[
            "logs",
            "shared",
            "-n",
            "demo",
            "--cluster",
            "member-1",
        ]))
        .await;
    assert_eq!(ok(&out).0, "one\ntwo\n");
    let out = fleet
        .read(&with(&[
            "logs",
            "pod/shared",
            "-n",
            "demo",
            "--all-clusters",
        ]))
        .await;
    let mut lines: Vec<String> = ok(&out).0.lines().map(str::to_string).collect();
    lines.sort();
    assert_eq!(
        lines,
        ["[member-1] one", "[member-1] two", "[member-2] three"]
    );
    let out = fleet
        .read(&with(&[
            "logs",
            "shared",
            "-n",
            "demo",
            "--cluster",
            "member-1",
            "--tail",
            "1",
        ]))
        .await;
    assert_eq!(ok(&out).0, "two\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn credentials_follow_the_secretreader_contract_and_profiles_can_map_to_contexts() {
    let fleet = Fleet::start().await;
    let hub_kubeconfig = fleet.hub_kubeconfig();
    // The kubeconfig-secretreader contract, run as kubectl would run it.
    let info = json!({"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential",
        "spec": {"interactive": false, "cluster": {"server": fleet.servers[0].url(),
            "config": {"name": "member-1-kubeconfig", "namespace": "fleet", "key": "value"}}}});
    let run = |info: Value| {
        let hub = hub_kubeconfig.clone();
        async move {
            let mut c = Command::new(MK8);
            c.args(["credentials", "kubeconfig-secret"])
                .env("KUBERNETES_EXEC_INFO", info.to_string())
                .env("MK8_HUB_KUBECONFIG", hub)
                .env_remove("KUBECONFIG")
                .env("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
                .env("AWS_SECRET_ACCESS_KEY", "canary-secret-key")
                .env("AWS_EC2_METADATA_DISABLED", "true");
            tokio::task::spawn_blocking(move || c.output().unwrap())
                .await
                .unwrap()
        }
    };
    let out = run(info.clone()).await;
    let credential: Value = serde_json::from_str(&ok(&out).0).unwrap();
    assert_eq!(credential["kind"], "ExecCredential");
    assert_eq!(credential["status"]["token"], fleet.servers[0].token());
    let missing = run(json!({"apiVersion": "client.authentication.k8s.io/v1", "spec": {"cluster": {"config": {"name": "nope", "namespace": "fleet"}}}})).await;
    assert!(
        text(&missing)
            .1
            .contains("reading Secret fleet/nope on the hub"),
        "{}",
        text(&missing).1
    );

    // EKS: a token signed now, every call — not the one stored in the Secret (there is none).
    let eks = json!({"apiVersion": "client.authentication.k8s.io/v1", "spec": {"cluster": {"config":
        {"name": "prod-eu-kubeconfig", "namespace": "fleet", "key": "value", "eks": {"clusterName": "prod-eu", "region": "eu-west-1"}}}}});
    let first: Value = serde_json::from_str(&ok(&run(eks.clone()).await).0).unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let second: Value = serde_json::from_str(&ok(&run(eks).await).0).unwrap();
    let (a, b) = (
        first["status"]["token"].as_str().unwrap(),
        second["status"]["token"].as_str().unwrap(),
    );
    assert_ne!(a, b, "each call signs a new token");
    let url = mk8::providers::eks::token::decode(a).unwrap();
    assert!(
        url.starts_with("https://sts.eu-west-1.amazonaws.com/?Action=GetCallerIdentity"),
        "{url}"
    );
    assert!(
        url.contains("x-k8s-aws-id"),
        "the cluster name is a signed header: {url}"
    );
    assert!(first["status"]["expirationTimestamp"].is_string());

    // A profile mapped to a local context is read through it, not its access provider.
    let local = fleet.dir.path().join("ocm-east.kubeconfig");
    fleet.ocm().write_kubeconfig(&local).unwrap();
    let context = kubectl_current_context(&local);
    let out = fleet
        .mk8(&[
            "clusters",
            "map",
            "fleet/ocm-east",
            "--context",
            &context,
            "--context-kubeconfig",
            local.to_str().unwrap(),
        ])
        .await;
    ok(&out);
    // No provider file names the OCM plugin now: only the mapping reaches the cluster.
    let out = fleet
        .mk8(&["get", "pods", "-n", "demo", "--clusters", "ocm-east"])
        .await;
    assert_eq!(clusters_of(&ok(&out).0), ["ocm-east"]);
    assert!(
        !fleet.dir.path().join("ocm-plugin.calls").exists(),
        "the plugin was not run"
    );
    let out = fleet.mk8(&["clusters", "unmap", "fleet/ocm-east"]).await;
    ok(&out);
    let out = fleet
        .mk8(&["get", "pods", "-n", "demo", "--clusters", "ocm-east"])
        .await;
    assert!(!out.status.success());
    assert!(
        text(&out).1.contains(
            "none of the access providers its ClusterProfile offers (open-cluster-management)"
        ),
        "{}",
        text(&out).1
    );
    let map = std::fs::metadata(fleet.dir.path().join("config/clusters.yaml")).unwrap();
    assert_eq!(map.permissions().mode() & 0o777, 0o600);
}

fn kubectl_current_context(kubeconfig: &Path) -> String {
    let out = Command::new("kubectl")
        .args(["config", "current-context", "--kubeconfig"])
        .arg(kubeconfig)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}
