//! `mk8 config aws` against moto: stored 0600 from the environment or a ~/.aws profile, shown
//! redacted, synced into the EKS credentials Secret, used by `mk8 credentials eks`, and the exec
//! user of an EKS kubeconfig is run by the real kubectl.

use std::os::unix::fs::PermissionsExt as _;
use std::process::Output;

use mk8::providers::eks::token;

use super::aws::{Moto, REGION};
use crate::support::TestCluster;

const CANARY: &str = "canary-SECRET-never-printed";
const ACCESS_KEY: &str = "AKIAMK8TESTKEYWXYZ";

/// Run mk8 with no AWS variables but those given, config kept in `dir`; the canary never leaks.
fn mk8(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_mk8"));
    cmd.args(args)
        .env("MK8_CONFIG_DIR", dir.join("mk8"))
        .env("HOME", dir);
    for (k, _) in std::env::vars() {
        if k.starts_with("AWS_") {
            cmd.env_remove(k);
        }
    }
    cmd.envs(env.iter().copied());
    let out = cmd.output().expect("mk8 runs");
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!all.contains(CANARY), "mk8 {args:?} printed the secret key");
    out
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn config_aws_stores_shows_syncs_and_signs_with_the_stored_keys() {
    let moto = Moto::start().await;
    let dir = tempfile::tempdir().unwrap();
    let url = moto.url();

    // From the environment: checked with STS, the identity printed, stored 0600.
    let out = ok(&mk8(
        dir.path(),
        &["config", "aws", "--from-env", "--endpoint-url", &url],
        &[
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY),
            ("AWS_SECRET_ACCESS_KEY", CANARY),
            ("AWS_REGION", REGION),
        ],
    ));
    assert!(out.contains("arn: arn:aws:"), "{out}");
    assert!(out.contains("account: "), "{out}");
    let stored = dir.path().join("mk8/aws-credentials");
    let mode = std::fs::metadata(&stored).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    assert!(std::fs::read_to_string(&stored).unwrap().contains(CANARY));

    // Shown redacted.
    let shown = ok(&mk8(dir.path(), &["config", "aws", "show"], &[]));
    assert!(shown.contains("AKIA…WXYZ"), "{shown}");
    assert!(shown.contains("session token: not set"), "{shown}");

    // `mk8 credentials eks` with no AWS environment signs with the stored keys.
    let cred = ok(&mk8(
        dir.path(),
        &[
            "credentials",
            "eks",
            "--cluster-name",
            "prod",
            "--region",
            REGION,
        ],
        &[],
    ));
    let cred: serde_json::Value = serde_json::from_str(&cred).unwrap();
    assert_eq!(cred["kind"], "ExecCredential");
    let url = url::Url::parse(&token::decode(cred["status"]["token"].as_str().unwrap()).unwrap())
        .unwrap();
    let query: std::collections::BTreeMap<String, String> =
        url.query_pairs().into_owned().collect();
    assert_eq!(query["Action"], "GetCallerIdentity");
    assert!(query["X-Amz-Credential"].starts_with(&format!("{ACCESS_KEY}/")));
    assert!(query["X-Amz-SignedHeaders"].contains("x-k8s-aws-id"));

    // Synced into a cluster as the Secret the EKS provider reads.
    let k8s = TestCluster::start().await;
    k8s.kubectl(&["create", "namespace", "fleet"]);
    let kubeconfig = k8s.kubeconfig.to_string_lossy().into_owned();
    ok(&mk8(
        dir.path(),
        &[
            "config",
            "aws",
            "sync",
            "--kubeconfig",
            &kubeconfig,
            "-n",
            "fleet",
            "--secret",
            "aws-credentials",
        ],
        &[],
    ));
    let secret = k8s.get_json(&["-n", "fleet", "secret", "aws-credentials"]);
    let data = &secret["data"];
    use base64::Engine as _;
    let value = |k: &str| {
        String::from_utf8(
            base64::engine::general_purpose::STANDARD
                .decode(data[k].as_str().unwrap())
                .unwrap(),
        )
        .unwrap()
    };
    assert_eq!(value("accessKeyId"), ACCESS_KEY);
    assert_eq!(value("secretAccessKey"), CANARY);
    assert!(data.get("sessionToken").is_none());

    // The exec user mk8 writes for EKS is run by the real kubectl: the development API server
    // refuses the EKS token, so kubectl reports an authentication failure, not a missing plugin.
    let exec_config = dir.path().join("eks-kubeconfig");
    let yaml = mk8::providers::eks::kubeconfig::render(
        "prod",
        &k8s.server().url(),
        None,
        &mk8::providers::eks::kubeconfig::User::Exec {
            mk8: env!("CARGO_BIN_EXE_mk8"),
            cluster: "prod",
            region: REGION,
        },
    );
    std::fs::write(&exec_config, yaml).unwrap();
    let out = std::process::Command::new("kubectl")
        .args(["--kubeconfig", &exec_config.to_string_lossy()])
        .args(["--insecure-skip-tls-verify", "get", "--raw", "/version"])
        .env("MK8_CONFIG_DIR", dir.path().join("mk8"))
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_PROFILE")
        .output()
        .expect("kubectl runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        !err.contains("executable") && !err.contains("not found"),
        "{err}"
    );
    assert!(
        err.contains("Unauthorized") || err.contains("provide credentials"),
        "{err}"
    );

    // Remove, then show says there is nothing.
    ok(&mk8(dir.path(), &["config", "aws", "remove"], &[]));
    assert!(!stored.exists());
    let out = mk8(dir.path(), &["config", "aws", "show"], &[]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("run mk8 config aws"));
}

#[tokio::test(flavor = "multi_thread")]
async fn config_aws_takes_a_profile_of_a_shared_credentials_file() {
    let moto = Moto::start().await;
    let dir = tempfile::tempdir().unwrap();
    let creds = dir.path().join("creds");
    std::fs::write(
        &creds,
        format!("[default]\naws_access_key_id = AKIAOTHERKEY0000\naws_secret_access_key = other\n[ci]\naws_access_key_id = {ACCESS_KEY}\naws_secret_access_key = {CANARY}\nregion = {REGION}\n"),
    )
    .unwrap();
    let creds = creds.to_string_lossy().into_owned();
    let out = ok(&mk8(
        dir.path(),
        &[
            "config",
            "aws",
            "--profile",
            "ci",
            "--endpoint-url",
            &moto.url(),
        ],
        &[("AWS_SHARED_CREDENTIALS_FILE", &creds)],
    ));
    assert!(out.contains("arn: arn:aws:"), "{out}");
    let shown = ok(&mk8(dir.path(), &["config", "aws", "show"], &[]));
    assert!(
        shown.contains("AKIA…WXYZ") && shown.contains(REGION),
        "{shown}"
    );
    let missing = mk8(
        dir.path(),
        &[
            "config",
            "aws",
            "--profile",
            "nope",
            "--endpoint-url",
            &moto.url(),
        ],
        &[("AWS_SHARED_CREDENTIALS_FILE", &creds)],
    );
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("\"nope\" is not in"));
}
