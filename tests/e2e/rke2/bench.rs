//! Benchmark (ignored by default): install wall time for 1, 10 and 30 agents on the test fleet,
//! and upload throughput against OpenSSH `scp` over the same link. Run with
//! `cargo test --release --test e2e rke2::bench -- --ignored --nocapture`.

use std::process::Command;
use std::time::{Duration, Instant};

use mk8::providers::rke2::execute::Phase;
use mk8::providers::rke2::plan::Role;
use mk8::providers::ssh::SshPool;
use mk8::providers::ssh::Uploaded;
use mk8::providers::{NodeShell, Upload};
use sha2::{Digest, Sha256};

use super::fleet::{Fleet, Node};
use super::install::{install_nodes, targets_for, workload_api};
use super::release::Release;

/// Jiffies of the whole machine: (busy, total), from the first line of /proc/stat.
fn cpu_jiffies() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap();
    let fields: Vec<u64> = stat
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal ...
    let idle = fields[3] + fields[4];
    let total: u64 = fields.iter().take(8).sum();
    (total - idle, total)
}

/// CPU seconds this process (mk8's executor, SSH client and API client) has used so far.
fn own_cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    // Fields after the command name (which is in parentheses): utime and stime are 14 and 15.
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / 100.0
}

/// Forget everything a node was given, so that it installs from scratch again.
fn wipe(node: &Node) {
    // Stop the stand-in and, on a server, its API server and supervisor port; wait until gone.
    for file in ["pid", "apiserver.pid", "supervisor.pid"] {
        let Some(pid) = node.read(&format!("/var/lib/rancher/rke2/mk8-fixture/{file}")) else {
            continue;
        };
        let _ = Command::new("kill").arg(pid.trim()).output();
        let alive = || std::path::Path::new(&format!("/proc/{}", pid.trim())).exists();
        let deadline = Instant::now() + Duration::from_secs(10);
        while alive() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
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
    let pool = SshPool::new(Duration::from_secs(20));
    let cores = std::thread::available_parallelism().unwrap().get();
    // Two image tarball sizes: 1 MiB leaves the machine mostly idle, so the times show mk8's
    // orchestration; 32 MiB makes this one machine's cores do the transfer, hashing and copying
    // of all 31 test nodes, which on real hosts each node does on its own CPU.
    for image_mib in [1usize, 32] {
        for node in &fleet.nodes {
            wipe(node);
        }
        let parent = fleet.dir().join(format!("images-{image_mib}m"));
        std::fs::create_dir_all(&parent).unwrap();
        let release = Release::build(&parent, image_mib << 20);
        // The server is installed untimed: the rounds measure agents joining a ready server.
        let outcomes = install_nodes(
            &pool,
            &fleet,
            &release,
            &[Role::Server],
            &targets_for(&fleet, &[0]),
            None,
        )
        .await;
        assert!(
            outcomes.values().all(|p| p.phase == Phase::Ready),
            "{outcomes:?}"
        );
        // As in the operator, the agent pool reads its nodes' readiness through the cluster's API.
        let api = workload_api(&fleet);
        println!(
            "\n| agents ({image_mib} MiB image tarball) | wall time | machine CPU busy ({cores} cores) | mk8's own CPU |\n|---|---|---|---|"
        );
        let mut times = Vec::new();
        for n in [1usize, 10, 30] {
            for node in &fleet.nodes[1..] {
                wipe(node);
            }
            let indices: Vec<usize> = (0..=n).collect();
            let mut roles = vec![Role::Server];
            roles.extend(std::iter::repeat_n(Role::Agent, n));
            let (busy0, total0) = cpu_jiffies();
            let own0 = own_cpu_seconds();
            let started = Instant::now();
            let outcomes = install_nodes(
                &pool,
                &fleet,
                &release,
                &roles,
                &targets_for(&fleet, &indices),
                Some(&api),
            )
            .await;
            let took = started.elapsed();
            let (busy1, total1) = cpu_jiffies();
            let ready = outcomes.values().filter(|p| p.phase == Phase::Ready);
            assert_eq!(ready.count(), n + 1, "{outcomes:?}");
            let busy = 100.0 * (busy1 - busy0) as f64 / (total1 - total0).max(1) as f64;
            let own = own_cpu_seconds() - own0;
            println!(
                "| {n} | {:.2} s | {busy:.0} % | {own:.2} s |",
                took.as_secs_f64()
            );
            times.push(took);
        }
        println!(
            "30 agents / 1 agent ({image_mib} MiB images): {:.2}x",
            times[2].as_secs_f64() / times[0].as_secs_f64()
        );
    }

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
    let key = fleet.dir().join("client_key");
    let known = fleet.dir().join("bench_known_hosts");
    std::fs::write(&known, &fleet.known_hosts).unwrap();
    let mib = size as f64 / (1 << 20) as f64;
    // Three rounds, alternating, so that both see the same machine; the median ratio is the one
    // to quote.
    println!(
        "\n| round | mk8 MiB/s (russh, hashed on the node) | scp MiB/s | mk8 / scp |\n|---|---|---|---|"
    );
    let mut ratios = Vec::new();
    for round in 1..=3 {
        let _ = std::fs::remove_file(node.host_path(&upload.remote));
        let started = Instant::now();
        let sent = pool
            .upload(&access, &upload, Duration::from_secs(600))
            .await
            .unwrap();
        let mk8_secs = started.elapsed().as_secs_f64();
        assert_eq!(sent, Uploaded::Transferred { bytes: size as u64 });
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
        let ratio = 100.0 * scp_secs / mk8_secs;
        println!(
            "| {round} | {:.0} | {:.0} | {ratio:.0} % |",
            mib / mk8_secs,
            mib / scp_secs
        );
        ratios.push(ratio);
    }
    ratios.sort_by(f64::total_cmp);
    println!("mk8 / scp, median of 3: {:.0} %", ratios[1]);
}
