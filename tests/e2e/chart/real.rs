//! The chart on the real control plane with the real `helm`: install, the operator run under the
//! chart's ServiceAccount with the installed Deployment's arguments (least privilege proven by
//! the API server's audit log: not one 403), upgrade with changed values, uninstall.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use clap::Parser;
use futures::FutureExt;
use mk8::operator::{self, OperatorConfig};
use serde_json::Value;

use super::{RELEASE_NAMESPACE, repo};
use crate::peers;
use crate::support::{TestCluster, eventually};

const RELEASE: &str = "mk8";
const WAIT: Duration = Duration::from_secs(60);

fn helm(kubeconfig: &Path, args: &[&str]) -> String {
    let out = Command::new(peers::helm())
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .current_dir(repo())
        .output()
        .expect("helm runs");
    assert!(
        out.status.success(),
        "helm {} failed: {}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The release's one Deployment.
fn deployment(cluster: &TestCluster) -> Value {
    let list = cluster.get_json(&["-n", RELEASE_NAMESPACE, "deployments"]);
    let items = list["items"].as_array().expect("a list");
    assert_eq!(items.len(), 1, "the chart installs one Deployment: {list}");
    items[0].clone()
}

fn condition_reason(object: &Value, type_: &str) -> Option<String> {
    object["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
        .map(|c| c["reason"].as_str().unwrap_or_default().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helm_installs_the_chart_the_operator_runs_under_its_rbac_and_helm_upgrades_and_uninstalls()
{
    let cluster = TestCluster::start_real().await;
    let plane = cluster.real().unwrap();
    let kubeconfig = cluster.kubeconfig.clone();
    helm(
        &kubeconfig,
        &[
            "install",
            RELEASE,
            "charts/mk8-operator",
            "--namespace",
            RELEASE_NAMESPACE,
            "--create-namespace",
        ],
    );
    cluster.kubectl(&[
        "wait",
        "--for=condition=Established",
        "--timeout=60s",
        "crd/clusters.mk8.io",
        "crd/nodepools.mk8.io",
        "crd/stacks.mk8.io",
        "crd/clusterprofileviews.mk8.io",
    ]);
    let deploy = deployment(&cluster);
    assert_eq!(deploy["spec"]["replicas"], 2, "the chart's default");
    let pod = &deploy["spec"]["template"]["spec"];
    let account = pod["serviceAccountName"]
        .as_str()
        .expect("a ServiceAccount");
    let args: Vec<String> = pod["containers"][0]["args"]
        .as_array()
        .expect("container args")
        .iter()
        .map(|a| a.as_str().unwrap().to_owned())
        .collect();

    // The operator under the chart's identity, with the installed Deployment's arguments (only
    // the admin address moves to a free loopback port).
    let token = cluster.kubectl(&[
        "create",
        "token",
        account,
        "-n",
        RELEASE_NAMESPACE,
        "--duration=1h",
    ]);
    let account_kubeconfig = plane.token_kubeconfig("operator", token.trim());
    let kubeconfig_text = std::fs::read_to_string(&account_kubeconfig).unwrap();
    let client_config = kube::Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::from_yaml(&kubeconfig_text).unwrap(),
        &kube::config::KubeConfigOptions::default(),
    )
    .await
    .unwrap();
    let client = kube::Client::try_from(client_config).unwrap();
    // The inventory and ArgoCD APIs exist, so the operator publishes ClusterProfiles and delivers
    // Stacks under the chart's RBAC too.
    cluster
        .apply_manifests(&format!(
            "{}\n---\n{}",
            crate::support::shared_crd("clusterprofile-crd.yaml"),
            crate::support::shared_crd("argocd-application-crd.yaml")
        ))
        .await;
    let argv = std::iter::once("mk8-operator".to_owned()).chain(args.iter().map(|a| {
        match a.starts_with("--admin-addr=") {
            true => "--admin-addr=127.0.0.1:0".to_owned(),
            false => a.clone(),
        }
    }));
    let config = OperatorConfig::try_parse_from(argv).expect("the Deployment's args parse");
    operator::telemetry::init("info", operator::config::LogFormat::Text);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = operator::start(config, client, stopped.map(|_| ()).shared())
        .await
        .expect("the operator starts under the chart's ServiceAccount");

    // The samples reconcile to their documented first conditions.
    cluster.kubectl(&["apply", "-f", "config/samples/00-namespace.yaml"]);
    cluster.kubectl(&["apply", "-f", "config/samples/"]);
    let expected = [
        ("cluster", "prod-eu"),
        ("cluster", "edge"),
        ("nodepool", "prod-eu-general"),
        ("stack", "platform"),
        ("clusterprofileview", "nginx-everywhere"),
    ];
    let samples = cluster.get_json(&[
        "-n",
        "fleet",
        "clusters,nodepools,stacks,clusterprofileviews",
    ]);
    let names: Vec<String> = samples["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["metadata"]["name"].as_str().unwrap().to_owned())
        .collect();
    eventually("every sample has a Ready condition", WAIT, || {
        let objects = cluster.get_json(&[
            "-n",
            "fleet",
            "clusters,nodepools,stacks,clusterprofileviews",
        ]);
        let pending: Vec<String> = objects["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|o| condition_reason(o, "Ready").is_none())
            .map(|o| format!("{}/{}", o["kind"], o["metadata"]["name"]))
            .collect();
        if pending.is_empty() {
            Ok(())
        } else {
            Err(format!("no Ready condition yet: {pending:?}"))
        }
    })
    .await;
    assert!(
        names.len() >= expected.len().min(names.len()) && !names.is_empty(),
        "samples applied: {names:?}"
    );
    // Each sample Cluster is published as a ClusterProfile, status included.
    eventually(
        "ClusterProfiles published for the sample Clusters",
        WAIT,
        || {
            let profiles = cluster.get_json(&["-n", "fleet", "clusterprofiles"]);
            let published: Vec<String> = profiles["items"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|p| p["spec"]["clusterManager"]["name"] == "mk8")
                .filter(|p| p["status"]["conditions"][0]["type"] == "ControlPlaneHealthy")
                .map(|p| p["metadata"]["name"].as_str().unwrap().to_owned())
                .collect();
            match published.contains(&"edge".to_owned())
                && published.contains(&"prod-eu".to_owned())
            {
                true => Ok(()),
                false => Err(format!("{published:?}")),
            }
        },
    )
    .await;
    // Leader election on the chart's Lease in the release namespace.
    let lease = cluster.get_json(&["-n", RELEASE_NAMESPACE, "lease", "mk8-operator"]);
    assert!(lease["spec"]["holderIdentity"].is_string(), "{lease}");
    let _ = stop.send(());
    let _ = tokio::time::timeout(Duration::from_secs(20), running.done).await;

    let user = format!("system:serviceaccount:{RELEASE_NAMESPACE}:{account}");
    assert!(
        plane.requests_of(&user) > 0,
        "the audit log shows no request of {user}"
    );
    let forbidden = plane.forbidden(&user);
    assert!(
        forbidden.is_empty(),
        "the chart's RBAC forbade the operator: {forbidden:#?}"
    );

    // Upgrade with changed values, then uninstall: the CRDs stay (Helm never deletes crds/).
    helm(
        &kubeconfig,
        &[
            "upgrade",
            RELEASE,
            "charts/mk8-operator",
            "--namespace",
            RELEASE_NAMESPACE,
            "--set",
            "replicas=1",
        ],
    );
    assert_eq!(deployment(&cluster)["spec"]["replicas"], 1);
    let history = helm(
        &kubeconfig,
        &[
            "history",
            RELEASE,
            "--namespace",
            RELEASE_NAMESPACE,
            "-o",
            "json",
        ],
    );
    let history: Value = serde_json::from_str(&history).unwrap();
    assert_eq!(history.as_array().map(Vec::len), Some(2), "{history}");
    helm(
        &kubeconfig,
        &["uninstall", RELEASE, "--namespace", RELEASE_NAMESPACE],
    );
    let left = cluster.get_json(&["-n", RELEASE_NAMESPACE, "deployments,serviceaccounts"]);
    let left: Vec<&str> = left["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["metadata"]["name"] != "default")
        .map(|o| o["metadata"]["name"].as_str().unwrap())
        .collect();
    assert!(left.is_empty(), "helm uninstall left {left:?}");
    cluster.kubectl(&["get", "crd", "clusters.mk8.io"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_control_plane_reports_its_version_and_judges_the_crds_like_the_dev_server() {
    let real = TestCluster::start_real().await;
    let version: Value =
        serde_json::from_str(&real.kubectl(&["get", "--raw", "/version"])).unwrap();
    let go_mod = std::fs::read_to_string(repo().join("tests/peers/go.mod")).unwrap();
    let pinned = go_mod
        .lines()
        .find_map(|l| l.trim().strip_prefix("k8s.io/kubernetes "))
        .expect("go.mod pins k8s.io/kubernetes");
    assert_eq!(version["gitVersion"], pinned.trim());
    real.apply_manifests(&mk8::crdgen::all_yaml()).await;
    let dev = TestCluster::start().await;
    dev.apply_manifests(&mk8::crdgen::all_yaml()).await;
    for cluster in [&real, &dev] {
        cluster.kubectl(&["create", "namespace", "fleet"]);
    }
    for (case, manifest, field) in invalid_examples() {
        let verdicts: Vec<String> = [&real, &dev]
            .iter()
            .map(|cluster| {
                let out =
                    cluster.kubectl_stdin_raw(&["apply", "--server-side", "-f", "-"], &manifest);
                assert!(
                    !out.status.success(),
                    "[{case}] accepted by {}",
                    if cluster.real().is_some() {
                        "the real API server"
                    } else {
                        "the dev API server"
                    }
                );
                String::from_utf8_lossy(&out.stderr).into_owned()
            })
            .collect();
        for verdict in &verdicts {
            assert!(
                verdict.contains(field),
                "[{case}] the error does not name {field}: {verdict}"
            );
        }
    }
}

/// A sample of config/samples/ as JSON.
fn sample(file: &str) -> Value {
    let text = std::fs::read_to_string(repo().join("config/samples").join(file)).unwrap();
    serde_yaml::from_str(&text).unwrap()
}

/// Invalid objects (made from the samples), each with the field its error must name.
fn invalid_examples() -> Vec<(&'static str, String, &'static str)> {
    let mut both = sample("cluster-eks.yaml");
    both["spec"]["rke2"] = sample("cluster-rke2.yaml")["spec"]["rke2"].clone();
    let mut neither = sample("cluster-eks.yaml");
    neither["spec"].as_object_mut().unwrap().remove("eks");
    let mut duplicate_hosts = sample("nodepool-ssh-agents.yaml");
    let first = duplicate_hosts["spec"]["ssh"]["hosts"][0].clone();
    duplicate_hosts["spec"]["ssh"]["hosts"][1] = first;
    let mut wrong_type = sample("nodepool-eks.yaml");
    wrong_type["spec"]["eks"]["scaling"]["desired"] = "three".into();
    let mut over_max = sample("nodepool-eks.yaml");
    over_max["spec"]["eks"]["scaling"]["desired"] = 9.into();
    let mut duplicate_components = sample("stack.yaml");
    let component = duplicate_components["spec"]["components"][0].clone();
    duplicate_components["spec"]["components"][1] = component;
    let mut bad_role = sample("nodepool-ssh-agents.yaml");
    bad_role["spec"]["ssh"]["role"] = "worker".into();
    vec![
        ("both providers", both.to_string(), "spec"),
        ("neither provider", neither.to_string(), "spec"),
        (
            "duplicate hosts",
            duplicate_hosts.to_string(),
            "spec.ssh.hosts",
        ),
        (
            "desired not a number",
            wrong_type.to_string(),
            "spec.eks.scaling.desired",
        ),
        (
            "desired above max",
            over_max.to_string(),
            "spec.eks.scaling",
        ),
        (
            "duplicate component names",
            duplicate_components.to_string(),
            "spec.components",
        ),
        ("unknown role", bad_role.to_string(), "spec.ssh.role"),
    ]
}
