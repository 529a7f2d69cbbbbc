//! `mk8 dev`: a development API server with mk8's CRDs and the operator, on this machine,
//! optionally with member clusters published as ClusterProfiles and injected faults.

mod providers;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use futures::FutureExt;

use crate::apiserver::{DevServer, DevServerConfig};
use crate::devfleet::{self as members, MemberOptions};
use crate::operator::{self, OperatorConfig};

/// Arguments of `mk8 dev`.
#[derive(Debug, Args)]
pub struct DevArgs {
    /// Serve the API only; do not run the operator's controllers.
    #[arg(long)]
    no_operator: bool,
    /// Port of the API server.
    #[arg(long, default_value_t = 6443)]
    port: u16,
    /// Address to listen on; `0.0.0.0` serves other machines too (the kubeconfig still uses
    /// 127.0.0.1; add the addresses others use with --tls-san).
    #[arg(long, default_value = "127.0.0.1")]
    bind: std::net::IpAddr,
    /// Extra IP address or DNS name for the serving certificate (repeatable).
    #[arg(long = "tls-san", value_name = "NAME")]
    tls_san: Vec<String>,
    /// File holding the bearer token clients must present (default: a random one, written to
    /// the kubeconfig).
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,
    /// Where to write the kubeconfig.
    #[arg(long, default_value = ".mk8/dev.kubeconfig")]
    kubeconfig: PathBuf,
    /// Keep objects in this directory so they survive a restart (default: memory only).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Address of the operator's admin server (/metrics, /livez, /readyz).
    #[arg(long, default_value = "127.0.0.1:8080")]
    admin_addr: std::net::SocketAddr,
    /// Also start N member clusters (development API servers on free ports, `member-1`…),
    /// seeded with sample workloads and published on this hub as ClusterProfiles in `fleet`.
    #[arg(long, value_name = "N", default_value_t = 0)]
    member_clusters: usize,
    /// Where to write the access-provider file naming `mk8 credentials kubeconfig-secret` for the
    /// members (its `mk8` entry is replaced, other providers kept; default:
    /// `~/.config/mk8/access-providers.json`).
    #[arg(long, value_name = "FILE")]
    access_providers: Option<PathBuf>,
    /// Fault injection: wait this long (`500ms`, `2s`) before answering each request but the
    /// health checks — on the members when there are any, else on the hub.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    inject_latency: Option<Duration>,
    /// Fault injection: answer 403 Forbidden to everything but discovery and health — on the
    /// members when there are any, else on the hub.
    #[arg(long)]
    forbid: bool,
}

/// What `--inject-latency` and `--forbid` do, in words; None without them.
fn fault_summary(args: &DevArgs) -> Option<String> {
    let mut faults = Vec::new();
    if let Some(latency) = args.inject_latency {
        faults.push(format!("{latency:?} before every answer but health checks"));
    }
    if args.forbid {
        faults.push("403 Forbidden to everything but discovery and health".to_string());
    }
    (!faults.is_empty()).then(|| faults.join("; "))
}

/// `500ms`, `2s`, `1.5s`, `1m`: a number and a unit (ms, s, m, h).
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration such as 500ms or 2s"))?;
    let seconds = match unit {
        "ms" => number / 1000.0,
        "s" => number,
        "m" => number * 60.0,
        "h" => number * 3600.0,
        _ => return Err(format!("{text:?}: the unit must be ms, s, m or h")),
    };
    Ok(Duration::from_secs_f64(seconds))
}

/// Run the development environment until Ctrl-C.
pub async fn run(args: DevArgs) -> anyhow::Result<()> {
    operator::telemetry::init("info", operator::config::LogFormat::Text);
    eprintln!(
        "mk8 dev: starting the development API server (development tooling, not a production control plane)"
    );
    let token = match &args.token_file {
        Some(path) => {
            let token = std::fs::read_to_string(path)
                .with_context(|| format!("reading --token-file {}", path.display()))?;
            let token = token.trim().to_string();
            anyhow::ensure!(
                !token.is_empty() && !token.contains(char::is_whitespace),
                "--token-file {}: the token must be one non-empty word",
                path.display()
            );
            Some(token)
        }
        None => None,
    };
    let faults_on_hub = args.member_clusters == 0;
    if let Some(faults) = fault_summary(&args) {
        let on = if faults_on_hub {
            "the hub"
        } else {
            "the member clusters"
        };
        eprintln!("mk8 dev: injecting faults on {on}: {faults}");
    }
    let server = DevServer::start(DevServerConfig {
        bind: args.bind,
        port: args.port,
        data_dir: args.data_dir.clone(),
        token,
        tls_sans: args.tls_san.clone(),
        latency: args.inject_latency.filter(|_| faults_on_hub),
        forbidden: args.forbid && faults_on_hub,
        ..Default::default()
    })
    .await
    .with_context(|| {
        format!(
            "starting the development API server on {}:{}",
            args.bind, args.port
        )
    })?;
    server
        .write_kubeconfig(&args.kubeconfig)
        .with_context(|| format!("writing {}", args.kubeconfig.display()))?;
    eprintln!("mk8 dev: installing the mk8 CRDs");
    server
        .apply_manifests(&crate::crdgen::all_yaml())
        .await
        .context("installing the mk8 CRDs")?;

    let (member_servers, provider_file) = if args.member_clusters > 0 {
        let (servers, file) = start_members(&server, &args).await?;
        (servers, Some(file))
    } else {
        (Vec::new(), None)
    };

    let shutdown = operator::shutdown_signal().shared();
    let operator = if args.no_operator {
        None
    } else {
        let config = OperatorConfig {
            admin_addr: args.admin_addr,
            leader_election: false,
            clusterprofile_provider_file: provider_file.clone(),
            ..OperatorConfig::without_flags()
        };
        let client = server.client().await?;
        let running = operator::start(config, client, shutdown.clone()).await?;
        eprintln!(
            "mk8 dev: operator running; metrics and health on http://{}",
            running.admin_addr
        );
        Some(running)
    };

    let kubeconfig = args.kubeconfig.display();
    println!("API server: {}", server.url());
    if let Some(file) = &provider_file {
        print_members(&member_servers, file);
    }
    println!("Try:");
    println!("  export KUBECONFIG={kubeconfig}");
    println!("  kubectl apply -f config/samples/");
    println!("  kubectl get mk8");
    if !member_servers.is_empty() {
        println!(
            "  kubectl get clusterprofiles -n {}",
            members::FLEET_NAMESPACE
        );
        println!("  mk8 get pods -A");
    }
    println!("Press Ctrl-C to stop.");

    let outcome = match operator {
        Some(running) => running.done.await.context("operator task panicked")?,
        None => {
            shutdown.await;
            Ok(())
        }
    };
    if !member_servers.is_empty() {
        eprintln!("mk8 dev: stopping {} member clusters", member_servers.len());
    }
    futures::future::join_all(member_servers.into_iter().map(DevServer::shutdown)).await;
    server.shutdown().await;
    outcome
}

/// Start the member clusters, publish them on the hub and write the access-provider file;
/// returns the members and the file.
async fn start_members(
    hub: &DevServer,
    args: &DevArgs,
) -> anyhow::Result<(Vec<DevServer>, PathBuf)> {
    eprintln!(
        "mk8 dev: starting {} member clusters and publishing them as ClusterProfiles",
        args.member_clusters
    );
    let options = MemberOptions {
        server: DevServerConfig {
            bind: args.bind,
            tls_sans: args.tls_san.clone(),
            latency: args.inject_latency,
            forbidden: args.forbid,
            ..Default::default()
        },
        ..MemberOptions::default()
    };
    let servers = members::start_members(hub, args.member_clusters, &options)
        .await
        .context("starting the member clusters")?;
    let file = args
        .access_providers
        .clone()
        .unwrap_or_else(crate::fleet::default_provider_file);
    let exe = std::env::current_exe().context("finding the mk8 executable")?;
    let hub_kubeconfig = std::path::absolute(&args.kubeconfig)
        .with_context(|| format!("resolving {}", args.kubeconfig.display()))?;
    let entry = crate::fleet::mk8_provider(
        &exe.to_string_lossy(),
        Some(&hub_kubeconfig.to_string_lossy()),
        None,
    );
    providers::write(&file, entry)?;
    Ok((servers, file))
}

fn print_members(servers: &[DevServer], provider_file: &Path) {
    println!(
        "Member clusters (ClusterProfiles in namespace {}, cluster manager {}):",
        members::FLEET_NAMESPACE,
        members::CLUSTER_MANAGER
    );
    for (i, server) in servers.iter().enumerate() {
        let name = members::member_name(i + 1);
        println!(
            "  {name}  {}  (kubeconfig: Secret {}/{})",
            server.url(),
            members::FLEET_NAMESPACE,
            members::kubeconfig_secret_name(&name)
        );
    }
    println!("Access providers: {}", provider_file.display());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("500").is_err());
        assert!(parse_duration("fast").is_err());
    }
}
