//! Development member clusters: seeded development API servers published on a hub as
//! ClusterProfiles with kubeconfig Secrets, as `mk8 dev --member-clusters N` runs them.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use base64::Engine;
use mk8::devfleet::{self as members, MemberOptions};
use serde_json::Value;

use crate::support::{TestCluster, eventually};

fn kubectl(kubeconfig: &Path, args: &[&str]) -> Result<String, String> {
    let out = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .output()
        .expect("kubectl runs");
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// The kubeconfig a member's hub Secret holds, written to `dir`.
fn member_kubeconfig(hub: &TestCluster, member: &str, dir: &Path) -> std::path::PathBuf {
    let secret = hub.get_json(&[
        "secret",
        "-n",
        "fleet",
        &members::kubeconfig_secret_name(member),
    ]);
    assert_eq!(secret["type"], "Opaque");
    let kubeconfig = base64::engine::general_purpose::STANDARD
        .decode(secret["data"]["value"].as_str().expect("key value"))
        .unwrap();
    let path = dir.join(format!("{member}.kubeconfig"));
    std::fs::write(&path, kubeconfig).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_are_published_as_cluster_profiles_that_reach_their_workloads() {
    let hub = TestCluster::start().await;
    let servers = members::start_members(hub.server(), 2, &MemberOptions::default())
        .await
        .expect("members start");
    assert_eq!(servers.len(), 2);

    let listed = hub.kubectl(&["get", "clusterprofiles", "-n", "fleet"]);
    assert!(
        listed.contains("member-1") && listed.contains("member-2"),
        "{listed}"
    );
    let profiles = hub.get_json(&["clusterprofiles", "-n", "fleet"]);
    let items = profiles["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    for (profile, server) in items.iter().zip(&servers) {
        let name = profile["metadata"]["name"].as_str().unwrap();
        let labels = &profile["metadata"]["labels"];
        assert_eq!(labels["x-k8s.io/cluster-manager"], "mk8-dev");
        assert_eq!(labels["env"], "dev");
        assert_eq!(labels["member"], &name["member-".len()..]);
        assert_eq!(profile["spec"]["clusterManager"]["name"], "mk8-dev");
        let status = &profile["status"];
        assert_eq!(status["conditions"][0]["type"], "ControlPlaneHealthy");
        assert_eq!(status["conditions"][0]["status"], "True");
        assert_eq!(status["version"]["kubernetes"], "v1.33.0-mk8-dev");
        assert_eq!(
            status["properties"][0],
            serde_json::json!({"name": "clusterset.k8s.io/cluster-id", "value": name})
        );
        let provider = &status["accessProviders"][0];
        assert_eq!(provider["name"], "mk8");
        assert_eq!(provider["cluster"]["server"], server.url());
        let ca = base64::engine::general_purpose::STANDARD
            .decode(
                provider["cluster"]["certificate-authority-data"]
                    .as_str()
                    .unwrap(),
            )
            .unwrap();
        assert_eq!(
            Some(String::from_utf8(ca).unwrap().as_str()),
            server.ca_pem()
        );
        assert_eq!(
            provider["cluster"]["extensions"][0],
            serde_json::json!({"name": "client.authentication.k8s.io/exec",
                "extension": {"name": format!("{name}-kubeconfig"), "namespace": "fleet", "key": "value"}})
        );
    }

    // The Secret's kubeconfig reaches the member, and the sample workload is there.
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = member_kubeconfig(&hub, "member-2", dir.path());
    let pods = kubectl(&kubeconfig, &["get", "pods", "-n", "demo", "--no-headers"]).unwrap();
    let running: Vec<&str> = pods
        .lines()
        .filter(|l| l.contains(" 1/1 ") && l.contains(" Running "))
        .collect();
    assert_eq!(running.len(), 2, "{pods}");
    let deployment = kubectl(&kubeconfig, &["get", "deployment", "web", "-n", "demo"]).unwrap();
    assert!(deployment.contains("2/2"), "{deployment}");
    kubectl(&kubeconfig, &["get", "service", "web", "-n", "demo"]).unwrap();
    let coredns = kubectl(&kubeconfig, &["get", "pods", "-n", "kube-system"]).unwrap();
    assert!(
        coredns.contains("coredns-") && coredns.contains("Running"),
        "{coredns}"
    );
    let pod = running[0].split_whitespace().next().unwrap();
    assert!(pod.starts_with("web-"), "{pod}");
    let log = kubectl(&kubeconfig, &["logs", "-n", "demo", pod]).unwrap();
    assert!(log.contains("nginx/1.27.3"), "{log}");
    for server in servers {
        server.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pod_count_per_member_is_a_parameter() {
    let hub = TestCluster::start().await;
    let options = MemberOptions {
        pods: 7,
        ..MemberOptions::default()
    };
    let servers = members::start_members(hub.server(), 1, &options)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = member_kubeconfig(&hub, "member-1", dir.path());
    let pods = kubectl(&kubeconfig, &["get", "pods", "-n", "demo", "-o", "name"]).unwrap();
    assert_eq!(pods.lines().count(), 7, "{pods}");
    drop(servers);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mk8_dev_starts_forbidding_members_writes_the_provider_file_and_stops_on_ctrl_c() {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("hub.kubeconfig");
    let config_dir = dir.path().join("config");
    std::fs::create_dir_all(&config_dir).unwrap();
    let provider_file = config_dir.join("access-providers.json");
    std::fs::write(
        &provider_file,
        r#"{"providers": [{"name": "ocm", "execConfig": {"command": "ocm-plugin"}}, {"name": "mk8"}]}"#,
    )
    .unwrap();
    let dev = Command::new(env!("CARGO_BIN_EXE_mk8"))
        .args([
            "dev",
            "--member-clusters",
            "2",
            "--port",
            "0",
            "--admin-addr",
            "127.0.0.1:0",
            "--forbid",
        ])
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .env("MK8_CONFIG_DIR", &config_dir)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("mk8 dev starts");

    let profiles = eventually(
        "mk8 dev publishes two members",
        Duration::from_secs(60),
        || {
            let out = kubectl(
                &kubeconfig,
                &["get", "clusterprofiles", "-n", "fleet", "-o", "name"],
            )?;
            if out.lines().count() == 2 {
                Ok(out)
            } else {
                Err(out)
            }
        },
    )
    .await;
    assert!(profiles.contains("member-2"), "{profiles}");
    // The provider file is written after the members are published.
    let file: Value = eventually("the provider file", Duration::from_secs(30), || {
        let text = std::fs::read_to_string(&provider_file).map_err(|e| e.to_string())?;
        let file: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
        if file["providers"][1]["execConfig"].is_object() {
            Ok(file)
        } else {
            Err(text)
        }
    })
    .await;
    let providers = file["providers"].as_array().unwrap();
    assert_eq!(providers.len(), 2, "{file}");
    assert_eq!(providers[0]["name"], "ocm", "other providers are kept");
    let exec = &providers[1]["execConfig"];
    assert_eq!(exec["command"], env!("CARGO_BIN_EXE_mk8"));
    assert_eq!(
        exec["args"],
        serde_json::json!(["credentials", "kubeconfig-secret"])
    );
    assert_eq!(exec["env"][0]["name"], "MK8_HUB_KUBECONFIG");
    assert_eq!(
        exec["env"][0]["value"],
        kubeconfig.to_str().unwrap(),
        "the hub kubeconfig, as an absolute path"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&provider_file)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    // --forbid reaches the members, not the hub that publishes them.
    let secret = kubectl(
        &kubeconfig,
        &[
            "get",
            "secret",
            "-n",
            "fleet",
            "member-1-kubeconfig",
            "-o",
            "jsonpath={.data.value}",
        ],
    )
    .unwrap();
    let member = dir.path().join("member-1.kubeconfig");
    std::fs::write(
        &member,
        base64::engine::general_purpose::STANDARD
            .decode(secret)
            .unwrap(),
    )
    .unwrap();
    let err = kubectl(&member, &["get", "pods", "-n", "demo"]).unwrap_err();
    assert!(err.contains("pods is forbidden"), "{err}");

    let mut dev = dev;
    let stdout = dev.stdout.take().unwrap();
    let status = tokio::task::spawn_blocking(move || crate::cli::interrupt(dev))
        .await
        .unwrap();
    assert!(status.success(), "mk8 dev exits 0 on Ctrl-C, got {status}");
    let printed = std::io::read_to_string(stdout).unwrap();
    assert!(
        printed.contains("member-1  https://127.0.0.1:"),
        "{printed}"
    );
    assert!(printed.contains("mk8 get pods -A"), "{printed}");
}

/// The fan-out benchmark's fleet (50 members × 200 pods) starts in well under a minute; run
/// with `cargo test --test e2e -- --ignored fifty_members`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a scale check: 10,000 pods"]
async fn fifty_members_of_two_hundred_pods() {
    let hub = TestCluster::start().await;
    let started = std::time::Instant::now();
    let options = MemberOptions {
        pods: 200,
        ..MemberOptions::default()
    };
    let servers = members::start_members(hub.server(), 50, &options)
        .await
        .unwrap();
    let elapsed = started.elapsed();
    eprintln!("50 members × 200 pods started in {elapsed:?}");
    assert_eq!(servers.len(), 50);
    let profiles = hub.kubectl(&["get", "clusterprofiles", "-n", "fleet", "-o", "name"]);
    assert_eq!(profiles.lines().count(), 50);
    assert!(elapsed < Duration::from_secs(60), "{elapsed:?}");
}
