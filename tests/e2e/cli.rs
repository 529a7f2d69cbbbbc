//! The `mk8` binary as users run it: `mk8 dev` (with restart persistence), the kubectl plugin.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::support::{eventually, repo_root};

const MK8: &str = env!("CARGO_BIN_EXE_mk8");

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

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

fn start_dev(dir: &Path, port: u16, admin: u16) -> Child {
    Command::new(MK8)
        .args([
            "dev",
            "--port",
            &port.to_string(),
            "--admin-addr",
            &format!("127.0.0.1:{admin}"),
        ])
        .arg("--kubeconfig")
        .arg(dir.join("kubeconfig"))
        .arg("--data-dir")
        .arg(dir.join("data"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("mk8 dev starts")
}

/// Ctrl-C, as a person would stop it; returns the exit status.
pub(crate) fn interrupt(mut child: Child) -> std::process::ExitStatus {
    let pid = child.id().to_string();
    Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .expect("kill runs");
    for _ in 0..100 {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    child.kill().ok();
    panic!("mk8 dev did not stop within 10s of Ctrl-C");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mk8_dev_runs_the_operator_and_keeps_objects_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    let (port, admin) = (free_port(), free_port());
    let dev = start_dev(dir.path(), port, admin);

    eventually(
        "mk8 dev serving with its CRDs",
        Duration::from_secs(30),
        || kubectl(&kubeconfig, &["get", "crd", "clusters.mk8.io"]),
    )
    .await;
    let samples = repo_root().join("config/samples");
    kubectl(&kubeconfig, &["apply", "-f", samples.to_str().unwrap()]).expect("samples apply");
    eventually(
        "the operator reconciles the EKS sample",
        Duration::from_secs(30),
        || {
            let reason = kubectl(
                &kubeconfig,
                &[
                    "get",
                    "cluster",
                    "prod-eu",
                    "-n",
                    "fleet",
                    "-o",
                    r#"jsonpath={.status.conditions[?(@.type=="Ready")].reason}"#,
                ],
            )?;
            if reason == "ProviderUnavailable" {
                Ok(())
            } else {
                Err(reason)
            }
        },
    )
    .await;
    assert!(interrupt(dev).success(), "mk8 dev exits 0 on Ctrl-C");

    // Same data dir: the objects and their status are still there, and the operator resumes.
    let dev = start_dev(dir.path(), port, admin);
    let status = eventually(
        "objects survive the restart",
        Duration::from_secs(30),
        || {
            kubectl(
                &kubeconfig,
                &[
                    "get",
                    "cluster",
                    "prod-eu",
                    "-n",
                    "fleet",
                    "-o",
                    "jsonpath={.status.provider}",
                ],
            )
        },
    )
    .await;
    assert_eq!(status, "eks");
    let pools = kubectl(
        &kubeconfig,
        &["get", "nodepools", "-n", "fleet", "-o", "name"],
    )
    .unwrap();
    assert_eq!(pools.lines().count(), 3, "{pools}");
    assert!(interrupt(dev).success());
}

#[test]
fn mk8_works_as_a_kubectl_plugin() {
    let bin = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(MK8, bin.path().join("kubectl-mk8")).unwrap();
    let path = format!(
        "{}:{}",
        bin.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("kubectl")
        .args(["mk8", "crds", "-o", "json"])
        .env("PATH", path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "clusters.mk8.io",
            "nodepools.mk8.io",
            "stacks.mk8.io",
            "clusterprofileviews.mk8.io"
        ]
    );
}

#[test]
fn bash_completion_registers_and_completes_subcommands() {
    let out = Command::new(MK8)
        .args(["completion", "bash"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("mk8.bash");
    std::fs::write(&script, &out.stdout).unwrap();
    // Load the script in a real bash and ask it what `mk8 kube<TAB>` and
    // `mk8 kubeconfig m<TAB>` complete to.
    let probe = format!(
        "source {}\ncomplete -p mk8\nfor line in 'mk8 kube' 'mk8 kubeconfig m'; do COMP_LINE=$line; read -ra COMP_WORDS <<< \"$line\"; [[ $line == *' ' ]] && COMP_WORDS+=(''); COMP_CWORD=$((${{#COMP_WORDS[@]}}-1)); COMP_POINT=${{#line}}; COMPREPLY=(); _mk8 mk8 \"${{COMP_WORDS[-1]}}\" \"${{COMP_WORDS[-2]}}\"; echo \"$line => ${{COMPREPLY[*]}}\"; done\n",
        script.display()
    );
    let out = Command::new("bash")
        .args(["--norc", "-c", &probe])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("-F _mk8 mk8"),
        "bash does not register _mk8 for mk8: {stdout}"
    );
    assert!(stdout.contains("mk8 kube => kubeconfig"), "{stdout}");
    assert!(stdout.contains("mk8 kubeconfig m => merge"), "{stdout}");
}

#[test]
fn bad_usage_exits_non_zero_with_a_clear_message() {
    let out = Command::new(MK8)
        .args(["crds", "-o", "xml"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("invalid value 'xml' for '--output"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_binary_logs_json_and_stops_cleanly_on_sigterm() {
    use std::io::{BufRead, BufReader};

    let cluster = crate::support::TestCluster::with_mk8_crds().await;
    let mut child = Command::new(env!("CARGO_BIN_EXE_mk8-operator"))
        .args([
            "--log-format",
            "json",
            "--admin-addr",
            "127.0.0.1:0",
            "--leader-election=false",
        ])
        .env("KUBECONFIG", &cluster.kubeconfig)
        .env_remove("RUST_LOG")
        .stderr(Stdio::piped())
        .spawn()
        .expect("mk8-operator starts");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = Vec::new();
    let synced = tokio::task::spawn_blocking(move || {
        for line in lines.by_ref() {
            let line = line.unwrap();
            let event: serde_json::Value =
                serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
            let message = event["message"].as_str().unwrap_or_default().to_string();
            seen.push(message.clone());
            if message.contains("caches synced") {
                return (seen, lines);
            }
        }
        panic!("the operator stopped logging before its caches synced: {seen:?}");
    })
    .await
    .unwrap();
    assert!(
        synced
            .0
            .iter()
            .any(|m| m.contains("admin server listening")),
        "{:?}",
        synced.0
    );

    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert!(
        status.success(),
        "mk8-operator exits 0 on SIGTERM, got {status}"
    );
    let rest: Vec<String> = synced.1.map_while(Result::ok).collect();
    assert!(
        rest.iter().any(|l| l.contains("shutdown requested")),
        "{rest:?}"
    );
}
