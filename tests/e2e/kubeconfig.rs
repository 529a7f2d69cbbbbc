//! `mk8 kubeconfig merge|use|remove` on a person's kubeconfig, judged by the real kubectl: the
//! merged context reaches the managed cluster, a same-named entry of the person's is refused,
//! renamed around or kept, every write leaves a 0600 file and a backup, and removal takes out
//! only what mk8 added.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::{Patch, PatchParams};

use crate::support::{TestCluster, repo_root};

const MK8: &str = env!("CARGO_BIN_EXE_mk8");

/// `mk8 kubeconfig ARGS` with the person's kubeconfig as `$KUBECONFIG` (its current context is
/// the management cluster).
fn mk8(kubeconfig: &Path, args: &[&str]) -> Output {
    Command::new(MK8)
        .arg("kubeconfig")
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .output()
        .expect("mk8 runs")
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "mk8 failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn kubectl(kubeconfig: &Path, args: &[&str]) -> String {
    let out = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .output()
        .expect("kubectl runs");
    assert!(
        out.status.success(),
        "kubectl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn contexts(kubeconfig: &Path) -> Vec<String> {
    let mut names: Vec<String> = kubectl(kubeconfig, &["config", "get-contexts", "-o", "name"])
        .lines()
        .map(str::to_string)
        .collect();
    names.sort();
    names
}

fn backups(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut found: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().contains(".mk8-backup-"))
        .collect();
    found.sort();
    found
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_managed_cluster_is_merged_used_and_removed_without_touching_the_rest() {
    let hub = TestCluster::start().await;
    hub.apply_manifests(&mk8::crdgen::all_yaml()).await;
    let member = TestCluster::start().await;
    member.kubectl(&["create", "namespace", "only-on-the-member"]);

    // The management cluster holds Cluster fleet/edge whose status names its kubeconfig Secret.
    let samples = repo_root().join("config/samples");
    let sample = |f: &str| std::fs::read_to_string(samples.join(f)).unwrap();
    hub.apply_manifests(&sample("00-namespace.yaml")).await;
    hub.apply_manifests(&sample("cluster-rke2.yaml")).await;
    let client = hub.client().await;
    let mut secret = Secret::default();
    secret.metadata.name = Some("edge-kubeconfig".into());
    secret.data = Some(
        [(
            "value".to_string(),
            k8s_openapi::ByteString(member.server().kubeconfig().into_bytes()),
        )]
        .into(),
    );
    Api::<Secret>::namespaced(client.clone(), "fleet")
        .create(&Default::default(), &secret)
        .await
        .unwrap();
    Api::<mk8::api::Cluster>::namespaced(client, "fleet")
        .patch_status(
            "edge",
            &PatchParams::default(),
            &Patch::Merge(
                serde_json::json!({"status": {"kubeconfigSecretName": "edge-kubeconfig"}}),
            ),
        )
        .await
        .unwrap();

    tokio::task::block_in_place(|| {
        // The person's kubeconfig: the management cluster (context mk8-dev, current) and a
        // context of their own named `core`.
        let home = tempfile::tempdir().unwrap();
        let file = home.path().join("config");
        std::fs::copy(&hub.kubeconfig, &file).unwrap();
        kubectl(
            &file,
            &[
                "config",
                "set-cluster",
                "core",
                "--server=https://core.example:6443",
            ],
        );
        kubectl(
            &file,
            &["config", "set-credentials", "core", "--token=persons-own"],
        );
        kubectl(
            &file,
            &[
                "config",
                "set-context",
                "core",
                "--cluster=core",
                "--user=core",
            ],
        );
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();

        let out = ok(&mk8(&file, &["merge", "edge", "-n", "fleet"]));
        assert!(
            out.contains("context edge for Cluster fleet/edge written"),
            "{out}"
        );
        assert!(
            !out.contains(member.server().token()),
            "no credential printed: {out}"
        );
        assert_eq!(contexts(&file), ["core", "edge", "mk8-dev"]);
        assert_eq!(mode(&file), 0o600, "the kubeconfig holds credentials");
        assert_eq!(backups(home.path()).len(), 1);
        assert_eq!(
            kubectl(&file, &["config", "current-context"]).trim(),
            "mk8-dev"
        );
        let reached = kubectl(
            &file,
            &[
                "--context",
                "edge",
                "get",
                "namespace",
                "only-on-the-member",
                "-o",
                "name",
            ],
        );
        assert_eq!(reached.trim(), "namespace/only-on-the-member");

        // Again: nothing to do, no write, no second backup.
        let before = std::fs::read(&file).unwrap();
        let out = ok(&mk8(&file, &["merge", "edge", "-n", "fleet"]));
        assert!(out.contains("up to date"), "{out}");
        assert_eq!(std::fs::read(&file).unwrap(), before);
        assert_eq!(backups(home.path()).len(), 1);

        // The person's own `core` is refused, then renamed around.
        let refused = mk8(
            &file,
            &["merge", "edge", "-n", "fleet", "--context", "core"],
        );
        assert!(!refused.status.success());
        let err = String::from_utf8_lossy(&refused.stderr);
        assert!(
            err.contains("\"core\" that mk8 did not add") && err.contains("--rename"),
            "{err}"
        );
        assert_eq!(
            std::fs::read(&file).unwrap(),
            before,
            "a refused merge writes nothing"
        );
        let out = ok(&mk8(
            &file,
            &[
                "merge",
                "edge",
                "-n",
                "fleet",
                "--context",
                "core",
                "--rename",
            ],
        ));
        assert!(out.contains("context core-2"), "{out}");
        assert_eq!(contexts(&file), ["core", "core-2", "edge", "mk8-dev"]);

        // use, then remove: only mk8's entries go, the current context is cleared with them.
        ok(&mk8(&file, &["use", "edge"]));
        assert_eq!(
            kubectl(&file, &["config", "current-context"]).trim(),
            "edge"
        );
        let out = ok(&mk8(&file, &["remove", "edge", "-n", "fleet"]));
        assert!(
            out.contains("context edge") && out.contains("context core-2"),
            "{out}"
        );
        assert_eq!(contexts(&file), ["core", "mk8-dev"]);
        let view = kubectl(&file, &["config", "view", "--raw", "-o", "json"]);
        assert!(view.contains("persons-own"), "the person's user is kept");
        assert!(
            !view.contains(member.server().token()),
            "mk8's user is gone"
        );
        assert!(!view.contains("\"current-context\": \"edge\""), "{view}");
        let again = mk8(&file, &["remove", "edge"]);
        assert!(String::from_utf8_lossy(&again.stderr).contains("no entries mk8 added for edge"));

        let all = backups(home.path());
        assert_eq!(all.len(), 4, "one backup per write: {all:?}");
        assert!(all.iter().all(|b| mode(b) == 0o600));
        assert!(
            std::fs::read_to_string(&all[0])
                .unwrap()
                .contains("persons-own")
        );
    });
}
