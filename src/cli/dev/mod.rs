//! `mk8 dev`: a development API server with mk8's CRDs and the operator, on this machine.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use futures::FutureExt;

use crate::apiserver::{DevServer, DevServerConfig};
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
    let server = DevServer::start(DevServerConfig {
        bind: args.bind,
        port: args.port,
        data_dir: args.data_dir.clone(),
        token,
        tls_sans: args.tls_san.clone(),
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

    let shutdown = operator::shutdown_signal().shared();
    let operator = if args.no_operator {
        None
    } else {
        let config = OperatorConfig {
            admin_addr: args.admin_addr,
            leader_election: false,
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
    println!("Try:");
    println!("  export KUBECONFIG={kubeconfig}");
    println!("  kubectl apply -f config/samples/");
    println!("  kubectl get mk8");
    println!("Press Ctrl-C to stop.");

    match operator {
        Some(running) => {
            let outcome = running.done.await.context("operator task panicked")?;
            server.shutdown().await;
            outcome
        }
        None => {
            shutdown.await;
            server.shutdown().await;
            Ok(())
        }
    }
}
