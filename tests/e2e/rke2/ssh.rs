//! The SSH layer against real OpenSSH sshd nodes.

use std::time::Duration;

use mk8::providers::ssh::{Cmd, Credentials, Script, SshError, SshPool, Uploaded, hostkey};
use mk8::providers::{NodeShell, Upload};
use sha2::{Digest, Sha256};

use super::fleet::{Fleet, run};

const T: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_reports_status_stdout_and_stderr() {
    let Some(fleet) = Fleet::start("exec_reports_status_stdout_and_stderr", 1) else {
        return;
    };
    let pool = SshPool::new(T);
    let node = fleet.access(&fleet.nodes[0]);
    let script = Script::of(Cmd::new("sh").args(["-c", "echo out; echo err >&2; exit 7"]));
    let out = pool.run(&node, &script, T).await.expect("command runs");
    assert_eq!(out.status, Some(7));
    assert_eq!(out.stdout_text(), "out\n");
    assert_eq!(out.stderr_tail(), "err");
    // The node's private mounts are what the SSH session sees.
    std::fs::write(fleet.nodes[0].host_path("/etc/rancher/probe"), "mine").unwrap();
    let cat = Script::of(Cmd::new("cat").arg("/etc/rancher/probe"));
    assert_eq!(
        pool.run(&node, &cat, T).await.unwrap().stdout_text(),
        "mine"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_values_run_nothing_extra_on_a_real_sshd() {
    let Some(fleet) = Fleet::start("hostile_values_run_nothing_extra_on_a_real_sshd", 1) else {
        return;
    };
    let pool = SshPool::new(T);
    let node = fleet.access(&fleet.nodes[0]);
    let hostile = [
        "x; touch /var/lib/rancher/pwned1",
        "$(touch /var/lib/rancher/pwned2)",
        "`touch /var/lib/rancher/pwned3`",
        "a'; touch /var/lib/rancher/pwned4; echo '",
        "line\ntouch /var/lib/rancher/pwned5",
        "x && touch /var/lib/rancher/pwned6 || touch /var/lib/rancher/pwned6",
    ];
    // As a node name written into a file, and echoed back.
    for value in hostile {
        let script = Script::of(Cmd::new("printf").args(["%s", value]))
            .stdout_to("/var/lib/rancher/node-name");
        let out = pool.run(&node, &script, T).await.unwrap();
        assert!(out.success(), "{value:?}: {}", out.stderr_tail());
        assert_eq!(
            fleet.nodes[0].read("/var/lib/rancher/node-name").unwrap(),
            value
        );
        let echoed = Script::of(Cmd::new("printf").args(["%s", value]));
        assert_eq!(
            pool.run(&node, &echoed, T).await.unwrap().stdout_text(),
            value
        );
    }
    // A path with a quote in it is one file, not a command.
    let path = "/var/lib/rancher/it's; touch pwned7 $(touch pwned7)";
    let script =
        Script::of(Cmd::new("cd").arg("/var/lib/rancher")).and(Cmd::new("touch").arg(path));
    assert!(pool.run(&node, &script, T).await.unwrap().success());
    assert!(fleet.nodes[0].host_path(path).exists());
    for i in 1..=7 {
        let pwned = fleet.nodes[0].host_path(&format!("/var/lib/rancher/pwned{i}"));
        assert!(
            !pwned.exists(),
            "{} was created: quoting failed",
            pwned.display()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_host_key_is_refused_naming_host_and_both_fingerprints() {
    let Some(fleet) = Fleet::start("a_wrong_host_key_is_refused", 2) else {
        return;
    };
    let pool = SshPool::new(T);
    let mut node = fleet.access(&fleet.nodes[0]);
    // known_hosts says node 0 has node 1's key.
    node.host_keys.known_hosts = format!(
        "{} {}\n",
        fleet.nodes[0].address, fleet.nodes[1].host_public_key
    );
    let err = pool
        .run(&node, &Script::of(Cmd::new("true")), T)
        .await
        .unwrap_err();
    let expected = fingerprint_of(&fleet.nodes[1].host_public_key);
    let actual = fingerprint_of(&fleet.nodes[0].host_public_key);
    assert_eq!(
        err,
        SshError::HostKeyMismatch {
            host: fleet.nodes[0].address.clone(),
            expected: expected.clone(),
            actual: actual.clone()
        }
    );
    let msg = err.to_string();
    assert!(
        msg.contains(&fleet.nodes[0].address) && msg.contains(&expected) && msg.contains(&actual),
        "{msg}"
    );
    // A wrong pinned fingerprint is refused the same way, even with learning enabled.
    node.host_keys.known_hosts.clear();
    node.host_keys.pinned = Some(expected.clone());
    node.host_keys.accept_new = true;
    assert!(matches!(
        pool.run(&node, &Script::of(Cmd::new("true")), T).await,
        Err(SshError::HostKeyMismatch { .. })
    ));
    // The right pinned fingerprint is accepted.
    node.host_keys.pinned = Some(actual);
    assert!(
        pool.run(&node, &Script::of(Cmd::new("true")), T)
            .await
            .unwrap()
            .success()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_host_keys_are_learned_only_when_enabled() {
    let Some(fleet) = Fleet::start("unknown_host_keys_are_learned_only_when_enabled", 1) else {
        return;
    };
    let pool = SshPool::new(T);
    let mut node = fleet.access(&fleet.nodes[0]);
    node.host_keys.known_hosts.clear();
    let err = pool.host_key(&node).await.unwrap_err();
    assert!(matches!(err, SshError::UnknownHostKey { .. }), "{err}");
    node.host_keys.accept_new = true;
    let verdict = pool.host_key(&node).await.unwrap();
    assert_eq!(
        verdict,
        hostkey::KeyVerdict::Learned(fingerprint_of(&fleet.nodes[0].host_public_key))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_connection_serves_many_commands_and_passphrase_keys_work() {
    let Some(fleet) = Fleet::start("one_connection_serves_many_commands", 1) else {
        return;
    };
    let pool = SshPool::new(T);
    let node = fleet.access(&fleet.nodes[0]);
    let runs = (0..8).map(|i| {
        let script = Script::of(Cmd::new("echo").arg(i.to_string()));
        let (pool, node) = (&pool, &node);
        async move { pool.run(node, &script, T).await.unwrap().stdout_text() }
    });
    let outputs = futures::future::join_all(runs).await;
    assert_eq!(outputs[7], "7\n");
    let log = std::fs::read_to_string(fleet.nodes[0].root.join("sshd.log")).unwrap();
    assert_eq!(log.matches("Accepted publickey").count(), 1, "{log}");
    assert_eq!(pool.open_connections(), 1);

    // An encrypted key with its passphrase authenticates; a wrong passphrase is a key error.
    let key = fleet.dir().join("encrypted_key");
    run(&[
        "ssh-keygen",
        "-q",
        "-t",
        "ed25519",
        "-N",
        "s3cret",
        "-f",
        key.to_str().unwrap(),
    ]);
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    let authorized = fleet.dir().join("authorized_keys");
    let mut all = std::fs::read_to_string(&authorized).unwrap();
    all.push_str(&public);
    std::fs::write(&authorized, all).unwrap();
    let mut other = node.clone();
    other.credentials = Credentials {
        private_key: std::fs::read_to_string(&key).unwrap(),
        passphrase: Some("s3cret".into()),
    };
    assert!(
        pool.run(&other, &Script::of(Cmd::new("true")), T)
            .await
            .unwrap()
            .success()
    );
    other.credentials.passphrase = Some("wrong".into());
    let err = pool
        .run(&other, &Script::of(Cmd::new("true")), T)
        .await
        .unwrap_err();
    assert!(matches!(err, SshError::Key(_)), "{err}");
    assert!(!err.to_string().contains("s3cret"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_are_verified_on_the_node_and_skipped_when_present() {
    let Some(fleet) = Fleet::start("uploads_are_verified_on_the_node", 1) else {
        return;
    };
    let pool = SshPool::new(T);
    let node = fleet.access(&fleet.nodes[0]);
    let local = fleet.dir().join("blob");
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&local, &data).unwrap();
    let upload = Upload {
        local: local.clone(),
        remote: "/var/lib/rancher/mk8/artifacts/blob".into(),
        sha256: hex::encode(Sha256::digest(&data)),
        mode: "0644".into(),
    };
    let first = pool.upload(&node, &upload, T).await.unwrap();
    assert_eq!(
        first,
        Uploaded::Transferred {
            bytes: data.len() as u64
        }
    );
    assert_eq!(
        std::fs::read(fleet.nodes[0].host_path(&upload.remote)).unwrap(),
        data
    );
    let again = pool.upload(&node, &upload, T).await.unwrap();
    assert_eq!(again, Uploaded::AlreadyPresent);
    // A file that does not hash to what it should is refused and never takes its final name.
    let wrong = Upload {
        remote: "/var/lib/rancher/mk8/artifacts/wrong".into(),
        sha256: "0".repeat(64),
        ..upload
    };
    let err = pool.upload(&node, &wrong, T).await.unwrap_err();
    assert!(matches!(err, SshError::ChecksumMismatch { .. }), "{err}");
    assert!(!fleet.nodes[0].host_path(&wrong.remote).exists());
    assert!(
        !fleet.nodes[0]
            .host_path("/var/lib/rancher/mk8/artifacts/wrong.mk8-partial")
            .exists()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_commands_time_out_and_dead_nodes_are_transient_errors() {
    let Some(fleet) = Fleet::start("slow_commands_time_out", 1) else {
        return;
    };
    let pool = SshPool::new(Duration::from_secs(3));
    let node = fleet.access(&fleet.nodes[0]);
    let err = pool
        .run(
            &node,
            &Script::of(Cmd::new("sleep").arg("10")),
            Duration::from_millis(500),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, SshError::Timeout { .. }), "{err}");
    fleet.nodes[0].stop_sshd();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let err = pool
        .run(&node, &Script::of(Cmd::new("true")), T)
        .await
        .unwrap_err();
    assert!(err.is_transient(), "{err}");
    assert!(err.to_string().contains(&fleet.nodes[0].address), "{err}");
}

fn fingerprint_of(public: &str) -> String {
    hostkey::fingerprint(&russh_public_key(public))
}

fn russh_public_key(public: &str) -> mk8::providers::ssh::hostkey::PublicKey {
    mk8::providers::ssh::hostkey::PublicKey::from_openssh(public).unwrap()
}
