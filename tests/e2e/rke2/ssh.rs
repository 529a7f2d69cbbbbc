//! The SSH layer against real OpenSSH sshd nodes.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::time::Duration;

use mk8::providers::ssh::{Cmd, Credentials, Script, SshError, SshPool, Uploaded, hostkey};
use mk8::providers::{NodeShell, Upload};
use sha2::{Digest, Sha256};

use super::fleet::{Fleet, LoginUser, run};

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

/// `content` as `ssh-keygen -H` rewrites a known_hosts file: every name hashed.
fn hashed_by_ssh_keygen(fleet: &Fleet, content: &str) -> String {
    let file = fleet.dir().join("hashed_known_hosts");
    std::fs::write(&file, content).unwrap();
    run(&["ssh-keygen", "-q", "-H", "-f", file.to_str().unwrap()]);
    let hashed = std::fs::read_to_string(&file).unwrap();
    assert!(
        hashed.lines().all(|l| l.starts_with("|1|")),
        "ssh-keygen left a name in clear: {hashed}"
    );
    hashed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hashed_known_hosts_entries_are_trusted() {
    let Some(fleet) = Fleet::start("hashed_known_hosts_entries_are_trusted", 2) else {
        return;
    };
    let pool = SshPool::new(T);
    let hashed = hashed_by_ssh_keygen(&fleet, &fleet.known_hosts);
    for node in &fleet.nodes {
        assert!(!hashed.contains(&node.address), "{hashed}");
        let mut access = fleet.access(node);
        access.host_keys.known_hosts = hashed.clone();
        let out = pool
            .run(&access, &Script::of(Cmd::new("true")), T)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", node.address));
        assert!(out.success());
        assert_eq!(
            pool.host_key(&access).await.unwrap(),
            hostkey::KeyVerdict::Trusted
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hashed_entry_with_another_key_is_refused_naming_both_fingerprints() {
    let Some(fleet) = Fleet::start("a_hashed_entry_with_another_key_is_refused", 2) else {
        return;
    };
    let pool = SshPool::new(T);
    let mut node = fleet.access(&fleet.nodes[0]);
    // Hashed known_hosts says node 0 has node 1's key.
    node.host_keys.known_hosts = hashed_by_ssh_keygen(
        &fleet,
        &format!(
            "{} {}\n",
            fleet.nodes[0].address, fleet.nodes[1].host_public_key
        ),
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
    // A revoked key is refused even where a plain line lists it.
    node.host_keys.known_hosts = format!(
        "{}@revoked 10.77.* {}\n",
        fleet.known_hosts, fleet.nodes[0].host_public_key
    );
    let err = pool
        .run(&node, &Script::of(Cmd::new("true")), T)
        .await
        .unwrap_err();
    assert_eq!(
        err,
        SshError::HostKeyRevoked {
            host: fleet.nodes[0].address.clone(),
            fingerprint: actual
        }
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
    // The digest the node computed of what it received is the data's.
    let received = hex::encode(Sha256::digest(&data));
    assert!(
        matches!(&err, SshError::ChecksumMismatch { actual, .. } if actual == &received),
        "{err}"
    );
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

const DEPLOY: LoginUser = LoginUser {
    name: "deploy",
    passwordless_sudo: true,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_root_user_runs_everything_through_passwordless_sudo() {
    let Some(fleet) =
        Fleet::start_with_users("a_non_root_user_runs_everything_through_sudo", 1, &[DEPLOY])
    else {
        return;
    };
    let pool = SshPool::new(T);
    let node = &fleet.nodes[0];
    let deploy = fleet.access_as(node, "deploy");
    // /var/lib/rancher is root's and closed to others: only root can write there.
    let rancher = std::fs::metadata(node.host_path("/var/lib/rancher")).unwrap();
    assert_eq!((rancher.uid(), rancher.mode() & 0o777), (0, 0o755));

    let whoami = Script::of(Cmd::new("id").arg("-u"))
        .and(Cmd::new("sh").args(["-c", "printf '%s\\n' \"$SUDO_USER\""]))
        .and(Cmd::new("sh").args(["-c", "echo root-only > /var/lib/rancher/by-deploy"]));
    let out = pool.run(&deploy, &whoami, T).await.unwrap();
    assert!(out.success(), "{}", out.stderr_tail());
    assert_eq!(out.stdout_text(), "0\ndeploy\n");
    let written = node.host_path("/var/lib/rancher/by-deploy");
    assert_eq!(std::fs::read_to_string(&written).unwrap(), "root-only\n");
    assert_eq!(std::fs::metadata(&written).unwrap().uid(), 0);
    let log = std::fs::read_to_string(node.root.join("sshd.log")).unwrap();
    assert!(log.contains("Accepted publickey for deploy"), "{log}");

    // Standard input reaches the command through sudo.
    let tee = Script::of(Cmd::new("cat")).stdout_to("/var/lib/rancher/from-stdin");
    let out = pool
        .run_with_input(&deploy, &tee, b"token: s3cret\n", T)
        .await
        .unwrap();
    assert!(out.success(), "{}", out.stderr_tail());
    assert_eq!(
        node.read("/var/lib/rancher/from-stdin").unwrap(),
        "token: s3cret\n"
    );

    // Uploads land in root's directories, checked on the node, through sudo.
    let local = fleet.dir().join("blob");
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 13 % 251) as u8).collect();
    std::fs::write(&local, &data).unwrap();
    let upload = Upload {
        local,
        remote: "/var/lib/rancher/mk8/artifacts/blob".into(),
        sha256: hex::encode(Sha256::digest(&data)),
        mode: "0640".into(),
    };
    assert_eq!(
        pool.upload(&deploy, &upload, T).await.unwrap(),
        Uploaded::Transferred {
            bytes: data.len() as u64
        }
    );
    let landed = node.host_path(&upload.remote);
    assert_eq!(std::fs::read(&landed).unwrap(), data);
    let meta = std::fs::metadata(&landed).unwrap();
    assert_eq!((meta.uid(), meta.permissions().mode() & 0o777), (0, 0o640));
    assert_eq!(
        pool.upload(&deploy, &upload, T).await.unwrap(),
        Uploaded::AlreadyPresent
    );
    let wrong = Upload {
        remote: "/var/lib/rancher/mk8/artifacts/wrong".into(),
        sha256: "0".repeat(64),
        ..upload
    };
    let err = pool.upload(&deploy, &wrong, T).await.unwrap_err();
    assert!(matches!(err, SshError::ChecksumMismatch { .. }), "{err}");
    assert!(!node.host_path(&wrong.remote).exists());

    // Hostile values pass through `sudo -n sh -c` as literal words.
    let hostile = [
        "x; touch /var/lib/rancher/pwned1",
        "$(touch /var/lib/rancher/pwned2)",
        "`touch /var/lib/rancher/pwned3`",
        "a'; touch /var/lib/rancher/pwned4; echo '",
        "\"; touch /var/lib/rancher/pwned5; echo \"",
        "line\ntouch /var/lib/rancher/pwned6",
    ];
    for value in hostile {
        let script = Script::of(Cmd::new("printf").args(["%s", value]))
            .stdout_to("/var/lib/rancher/node-name");
        let out = pool.run(&deploy, &script, T).await.unwrap();
        assert!(out.success(), "{value:?}: {}", out.stderr_tail());
        assert_eq!(node.read("/var/lib/rancher/node-name").unwrap(), value);
        let echoed = Script::of(Cmd::new("printf").args(["%s", value]));
        assert_eq!(
            pool.run(&deploy, &echoed, T).await.unwrap().stdout_text(),
            value
        );
    }
    for i in 1..=6 {
        let pwned = node.host_path(&format!("/var/lib/rancher/pwned{i}"));
        assert!(
            !pwned.exists(),
            "{} was created through sudo",
            pwned.display()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_without_sudo_rights_is_told_that_passwordless_sudo_is_needed() {
    let intern = LoginUser {
        name: "intern",
        passwordless_sudo: false,
    };
    let Some(fleet) = Fleet::start_with_users("a_user_without_sudo_rights", 1, &[intern]) else {
        return;
    };
    let pool = SshPool::new(T);
    let node = &fleet.nodes[0];
    let access = fleet.access_as(node, "intern");
    let touch = Script::of(Cmd::new("touch").arg("/var/lib/rancher/by-intern"));
    let err = pool.run(&access, &touch, T).await.unwrap_err();
    let SshError::SudoUnavailable { host, user, detail } = &err else {
        panic!("expected SudoUnavailable, got {err:?}");
    };
    assert_eq!(
        (host.as_str(), user.as_str()),
        (node.address.as_str(), "intern")
    );
    assert!(detail.contains("password is required"), "{detail}");
    let msg = err.to_string();
    assert!(
        msg.contains(&node.address) && msg.contains("intern") && msg.contains("passwordless sudo"),
        "{msg}"
    );
    assert!(
        !err.is_transient(),
        "a missing sudoers rule is not fixed by retrying"
    );
    assert!(!node.host_path("/var/lib/rancher/by-intern").exists());
    // Uploads stop at the same point, before anything is sent.
    let local = fleet.dir().join("small");
    std::fs::write(&local, "x").unwrap();
    let upload = Upload {
        local,
        remote: "/var/lib/rancher/small".into(),
        sha256: hex::encode(Sha256::digest(b"x")),
        mode: "0644".into(),
    };
    let err = pool.upload(&access, &upload, T).await.unwrap_err();
    assert!(matches!(err, SshError::SudoUnavailable { .. }), "{err}");
    assert!(
        !node
            .host_path("/var/lib/rancher/small.mk8-partial")
            .exists()
    );
}

fn fingerprint_of(public: &str) -> String {
    hostkey::fingerprint(&russh_public_key(public))
}

fn russh_public_key(public: &str) -> mk8::providers::ssh::hostkey::PublicKey {
    mk8::providers::ssh::hostkey::PublicKey::from_openssh(public).unwrap()
}
