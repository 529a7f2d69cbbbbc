//! Benchmark (ignored by default): `mk8 get pods -A` across 50 development member clusters of
//! 200 pods each, one of them answering 500 ms late, against the sequential loop a person
//! writes today (`kubectl get pods -A` once per cluster), in one run on this machine. Run with
//! `cargo test --test e2e fleet::bench -- --ignored --nocapture`; the figures are in
//! docs/benchmarks.md.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use mk8::apiserver::{DevServer, DevServerConfig};
use mk8::devfleet::{self as members, MemberOptions};

use crate::support::TestCluster;

const MK8: &str = env!("CARGO_BIN_EXE_mk8");
const CLUSTERS: usize = 50;
const PODS: usize = 200;

/// Run `program args` under python's rusage: (wall time, peak RSS in KiB of the biggest
/// process of the tree, stdout).
fn measured(program: &str, args: &[&str], env: &[(&str, PathBuf)]) -> (Duration, u64, String) {
    let script = "import resource, subprocess, sys\nr = subprocess.run(sys.argv[1:], capture_output=True)\nsys.stdout.buffer.write(r.stdout)\nsys.stderr.write('RSS %d\\n' % resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\nsys.exit(r.returncode)\n";
    let mut c = Command::new("python3");
    c.arg("-c").arg(script).arg(program).args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    let started = Instant::now();
    let out = c.output().unwrap();
    let took = started.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{program} {args:?} failed: {stderr}");
    let rss = stderr
        .lines()
        .find_map(|l| l.strip_prefix("RSS "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    (took, rss, String::from_utf8_lossy(&out.stdout).into_owned())
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "benchmark: cargo test --test e2e fleet::bench -- --ignored --nocapture"]
async fn get_across_fifty_clusters_against_a_kubectl_loop() {
    let hub = TestCluster::with_mk8_crds().await;
    let options = MemberOptions {
        pods: PODS,
        ..Default::default()
    };
    let mut servers = members::start_members(hub.server(), CLUSTERS - 1, &options)
        .await
        .unwrap();
    let slow = DevServer::start(DevServerConfig {
        port: 0,
        latency: Some(Duration::from_millis(500)),
        ..Default::default()
    })
    .await
    .unwrap();
    let slow_name = members::member_name(CLUSTERS);
    members::seed_member(&slow, &slow_name, PODS).unwrap();
    members::publish_member(&hub.client().await, &slow_name, &slow)
        .await
        .unwrap();
    servers.push(slow);

    let dir = tempfile::tempdir().unwrap();
    let hub_kubeconfig = dir.path().join("hub.kubeconfig");
    hub.server().write_kubeconfig(&hub_kubeconfig).unwrap();
    let member_kubeconfigs: Vec<_> = servers
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let path = dir.path().join(format!("member-{}.kubeconfig", i + 1));
            s.write_kubeconfig(&path).unwrap();
            path
        })
        .collect();
    let env = [
        ("KUBECONFIG", hub_kubeconfig.clone()),
        ("MK8_CONFIG_DIR", dir.path().join("config")),
        ("XDG_CACHE_HOME", dir.path().join("cache")),
        ("HOME", dir.path().to_path_buf()),
    ];
    let slow_kc = dir.path().join(format!("member-{CLUSTERS}.kubeconfig"));
    let slow = slow_name.clone();

    let (run_mk8, run_loop, slow_mk8, slow_kubectl) = tokio::task::spawn_blocking(move || {
        let kubectl_loop = || {
            let started = Instant::now();
            let mut rows = 0;
            let mut rss = 0;
            for kc in &member_kubeconfigs {
                let (_, r, out) = measured(
                    "kubectl",
                    &["get", "pods", "-A", "--kubeconfig", kc.to_str().unwrap()],
                    &env,
                );
                rows += out.lines().count() - 1;
                rss = rss.max(r);
            }
            (started.elapsed(), rss, rows)
        };
        // Warm both discovery caches first, then three runs each, alternated.
        measured(MK8, &["get", "pods", "-A"], &env);
        kubectl_loop();
        let (mut mk8_times, mut loop_times, mut mk8_rss, mut loop_rss) =
            (Vec::new(), Vec::new(), 0, 0);
        for _ in 0..3 {
            let (t, rss, out) = measured(MK8, &["get", "pods", "-A"], &env);
            assert_eq!(
                out.lines().count() - 1,
                CLUSTERS * (PODS + 1),
                "every pod of every cluster"
            );
            mk8_times.push(t);
            mk8_rss = mk8_rss.max(rss);
            let (t, rss, rows) = kubectl_loop();
            assert_eq!(rows, CLUSTERS * (PODS + 1));
            loop_times.push(t);
            loop_rss = loop_rss.max(rss);
        }
        let slow_mk8 = median(
            (0..3)
                .map(|_| measured(MK8, &["get", "pods", "-A", "--clusters", &slow], &env).0)
                .collect(),
        );
        let slow_kubectl = median(
            (0..3)
                .map(|_| {
                    measured(
                        "kubectl",
                        &[
                            "get",
                            "pods",
                            "-A",
                            "--kubeconfig",
                            slow_kc.to_str().unwrap(),
                        ],
                        &env,
                    )
                    .0
                })
                .collect(),
        );
        (
            (median(mk8_times), mk8_rss),
            (median(loop_times), loop_rss),
            slow_mk8,
            slow_kubectl,
        )
    })
    .await
    .unwrap();

    let ((mk8_time, mk8_rss), (loop_time, loop_rss)) = (run_mk8, run_loop);
    println!("| what | wall time (median of 3) | peak RSS |");
    println!("|---|---|---|");
    println!(
        "| `mk8 get pods -A` over {CLUSTERS} clusters × {PODS} pods (one +500 ms) | {:.2} s | {} MiB |",
        mk8_time.as_secs_f64(),
        mk8_rss / 1024
    );
    println!(
        "| sequential `kubectl get pods -A` loop over the same {CLUSTERS} | {:.2} s | {} MiB (one kubectl) |",
        loop_time.as_secs_f64(),
        loop_rss / 1024
    );
    println!(
        "| `mk8 get pods -A --clusters {slow_name}` (the slow cluster alone) | {:.2} s | |",
        slow_mk8.as_secs_f64()
    );
    println!(
        "| `kubectl get pods -A` on the slow cluster alone | {:.2} s | |",
        slow_kubectl.as_secs_f64()
    );
    println!(
        "ratios: loop / mk8 = {:.1}x; mk8 over 50 / slowest cluster alone (mk8) = {:.2}x; / (kubectl) = {:.2}x",
        loop_time.as_secs_f64() / mk8_time.as_secs_f64(),
        mk8_time.as_secs_f64() / slow_mk8.as_secs_f64(),
        mk8_time.as_secs_f64() / slow_kubectl.as_secs_f64()
    );
}
