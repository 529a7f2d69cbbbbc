//! Benchmark (ignored by default): install wall time for 1, 10 and 30 agents on the test fleet,
//! and upload throughput against OpenSSH `scp` over the same link. Run with
//! `cargo test --release --test e2e rke2::bench -- --ignored --nocapture`.

use std::process::Command;
use std::time::{Duration, Instant};

use mk8::providers::rke2::plan::Role;
use mk8::providers::ssh::SshPool;
use mk8::providers::{NodeShell, Upload};
use sha2::{Digest, Sha256};

use super::fleet::{Fleet, Node};
use super::install::{install_nodes, targets_for};
use super::release::Release;

/// Forget everything a node was given, so that it installs from scratch again.
fn wipe(node: &Node) {
    if let Some(pid) = node.read("/var/lib/rancher/rke2/mk8-fixture/pid") {
        let _ = Command::new("kill").arg(pid.trim()).output();
    }
    for dir in ["/var/lib/rancher", "/etc/rancher", "/usr/local"] {
        // Empty the bind source, keeping the directory the node's mount refers to.
        for entry in std::fs::read_dir(node.host_path(dir)).unwrap() {
            let path = entry.unwrap().path();
            let _ = std::fs::remove_dir_all(&path).or_else(|_| std::fs::remove_file(&path));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "benchmark: cargo test --release --test e2e rke2::bench -- --ignored --nocapture"]
async fn install_wall_time_and_upload_throughput() {
    let Some(fleet) = Fleet::start("benchmark", 31) else {
        return;
    };
    let release = Release::build(fleet.dir(), 32 << 20);
    let pool = SshPool::new(Duration::from_secs(20));
    // The server is installed once, untimed: the rounds measure agents joining a ready server.
    let outcomes = install_nodes(
        &pool,
        &fleet,
        &release,
        &[Role::Server],
        &targets_for(&fleet, &[0]),
        30,
    )
    .await;
    assert!(
        outcomes
            .values()
            .all(|p| p.phase == mk8::providers::rke2::execute::Phase::Ready)
    );
    println!("\n| agents | wall time |\n|---|---|");
    let mut times = Vec::new();
    for n in [1usize, 10, 30] {
        for node in &fleet.nodes[1..] {
            wipe(node);
        }
        let indices: Vec<usize> = (0..=n).collect();
        let mut roles = vec![Role::Server];
        roles.extend(std::iter::repeat_n(Role::Agent, n));
        let started = Instant::now();
        let outcomes = install_nodes(
            &pool,
            &fleet,
            &release,
            &roles,
            &targets_for(&fleet, &indices),
            30,
        )
        .await;
        let took = started.elapsed();
        assert_eq!(
            outcomes
                .values()
                .filter(|p| p.phase == mk8::providers::rke2::execute::Phase::Ready)
                .count(),
            n + 1
        );
        println!("| {n} | {:.2} s |", took.as_secs_f64());
        times.push(took);
    }
    println!(
        "30 agents / 1 agent: {:.2}x",
        times[2].as_secs_f64() / times[0].as_secs_f64()
    );

    // Upload throughput: the same 256 MiB file, mk8's upload vs scp, to the same node.
    let size = 256usize << 20;
    let blob = fleet.dir().join("throughput.bin");
    let data: Vec<u8> = (0..size)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
        .collect();
    std::fs::write(&blob, &data).unwrap();
    let node = &fleet.nodes[1];
    let access = fleet.access(node);
    let upload = Upload {
        local: blob.clone(),
        remote: "/var/lib/rancher/throughput-mk8.bin".into(),
        sha256: hex::encode(Sha256::digest(&data)),
        mode: "0644".into(),
    };
    let started = Instant::now();
    pool.upload(&access, &upload, Duration::from_secs(600))
        .await
        .unwrap();
    let mk8_secs = started.elapsed().as_secs_f64();
    let key = fleet.dir().join("client_key");
    let known = fleet.dir().join("bench_known_hosts");
    std::fs::write(&known, &fleet.known_hosts).unwrap();
    let started = Instant::now();
    let scp = Command::new("scp")
        .args([
            "-q",
            "-O",
            "-i",
            key.to_str().unwrap(),
            "-o",
            &format!("UserKnownHostsFile={}", known.display()),
            "-o",
            "StrictHostKeyChecking=yes",
        ])
        .arg(&blob)
        .arg(format!(
            "root@{}:/var/lib/rancher/throughput-scp.bin",
            node.address
        ))
        .status()
        .unwrap();
    let scp_secs = started.elapsed().as_secs_f64();
    assert!(scp.success());
    let mib = size as f64 / (1 << 20) as f64;
    println!(
        "\n| upload of 256 MiB | MiB/s |\n|---|---|\n| mk8 (russh, incl. sha256 check on the node) | {:.0} |\n| scp | {:.0} |\nmk8 / scp: {:.0} %",
        mib / mk8_secs,
        mib / scp_secs,
        100.0 * scp_secs / mk8_secs
    );
}
