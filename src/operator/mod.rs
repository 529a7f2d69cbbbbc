//! The controller manager: flags, logging, admin server, leader election, controllers.

pub mod admin;
pub mod config;
pub mod leader;
pub mod telemetry;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use futures::FutureExt;
use kube::Client;
use prometheus_client::registry::Registry;

use crate::controller::context::{Capabilities, Context, Delivery};
use crate::controller::metrics::Metrics;
use crate::controller::stack::access::ProviderFile;
use crate::controller::{self, RunConfig};
use crate::providers::Providers;
use crate::providers::rke2::Rke2;
use crate::providers::ssh::SshPool;
pub use config::OperatorConfig;

/// A started operator.
pub struct Running {
    /// Where the admin server listens.
    pub admin_addr: SocketAddr,
    /// Resolves when the operator stops; an error says why it stopped on its own.
    pub done: tokio::task::JoinHandle<anyhow::Result<()>>,
}

/// Run until SIGTERM or Ctrl-C, as the `mk8-operator` binary does.
pub async fn main(config: OperatorConfig) -> anyhow::Result<()> {
    telemetry::init(&config.log_level, config.log_format);
    let client = Client::try_default()
        .await
        .context("connecting to the Kubernetes API (in-cluster or KUBECONFIG)")?;
    let running = start(config, client, shutdown_signal().shared()).await?;
    running.done.await.context("operator task panicked")?
}

/// Start the admin server and, once leading, the controllers; stop when `shutdown` resolves.
pub async fn start<S>(
    config: OperatorConfig,
    client: Client,
    shutdown: S,
) -> anyhow::Result<Running>
where
    S: Future<Output = ()> + Clone + Send + Sync + 'static,
{
    let mut registry = Registry::default();
    let metrics = Arc::new(Metrics::register(&mut registry));
    let health = Arc::new(admin::Health::default());
    let (admin_addr, admin) = admin::bind(
        config.admin_addr,
        registry,
        health.clone(),
        shutdown.clone(),
    )
    .await
    .with_context(|| format!("binding the admin server to {}", config.admin_addr))?;
    tracing::info!(%admin_addr, "admin server listening (/metrics, /livez, /readyz)");
    tokio::spawn(admin);

    let done = tokio::spawn(async move {
        let mut leadership = if config.leader_election {
            let namespace = config
                .leader_election_namespace
                .clone()
                .unwrap_or_else(|| "default".into());
            let identity = std::env::var("POD_NAME")
                .unwrap_or_else(|_| format!("mk8-operator-{}", uuid::Uuid::new_v4().simple()));
            leader::Leadership::elect(
                client.clone(),
                &namespace,
                &config.leader_election_lease,
                &identity,
            )
            .await?
        } else {
            leader::Leadership::always()
        };
        let leading = leadership.first_round().await;
        health.set_leader(leading);
        if !leading {
            tracing::info!("another replica leads; standing by");
            tokio::select! {
                _ = leadership.acquired() => health.set_leader(true),
                _ = shutdown.clone() => return Ok(()),
            }
        }
        tracing::info!("leading: starting controllers");

        let capabilities = discover(&client).await;
        let access_providers = match &config.clusterprofile_provider_file {
            None => None,
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    anyhow::anyhow!("--clusterprofile-provider-file {}: {e}", path.display())
                })?;
                Some(ProviderFile::parse(&text).map_err(|e| {
                    anyhow::anyhow!("--clusterprofile-provider-file {}: {e}", path.display())
                })?)
            }
        };
        let mut ctx = Context::new(client, metrics, providers(&config), capabilities);
        ctx.delivery = Delivery {
            argocd_namespace: config.argocd_namespace.clone(),
            chart_mirror: config.chart_mirror.clone(),
            access_providers,
        };
        let ctx = Arc::new(ctx);
        let run_config = RunConfig {
            namespace: config.watch_namespace.clone(),
            concurrency: config.concurrency,
        };
        let lost = Arc::new(tokio::sync::Notify::new());
        let stop = {
            let lost = lost.clone();
            let shutdown = shutdown.clone();
            async move {
                tokio::select! {
                    _ = shutdown => {},
                    _ = lost.notified() => {},
                }
            }
            .shared()
        };
        let (synced_tx, synced_rx) = tokio::sync::oneshot::channel();
        let synced_health = health.clone();
        tokio::spawn(async move {
            if synced_rx.await.is_ok() {
                synced_health.set_synced();
                tracing::info!("caches synced; ready");
            }
        });
        let watch_lost = {
            let lost = lost.clone();
            async move {
                leadership.lost().await;
                lost.notify_one();
            }
        };
        let lost_leadership = tokio::select! {
            _ = controller::run(ctx, run_config, stop, synced_tx) => false,
            _ = watch_lost => {
                // Let the controllers wind down before reporting.
                true
            }
        };
        if lost_leadership {
            anyhow::bail!(
                "lost leadership of the Lease; exiting so that a new election can take place"
            );
        }
        tracing::info!("controllers stopped");
        Ok(())
    });
    Ok(Running { admin_addr, done })
}

/// The providers of an operator started with `config`: each gets its own drivers and state.
pub fn providers(config: &OperatorConfig) -> Providers {
    Providers {
        #[cfg(feature = "eks")]
        eks: eks_driver(config).map(crate::providers::eks::Eks::new),
        rke2: Some(Rke2::new(
            Arc::new(SshPool::new(Duration::from_secs(15))),
            config.artifact_cache.clone(),
        )),
    }
}

/// The EKS driver of this build: the AWS SDK, pointed at `--aws-endpoint-url` when given. It is
/// switched on by naming where AWS is (`--aws-region`/`AWS_REGION`, as IRSA and Pod Identity set
/// it, or `--aws-endpoint-url`), so that an operator without AWS never calls out.
#[cfg(feature = "eks")]
fn eks_driver(config: &OperatorConfig) -> Option<Arc<dyn crate::providers::EksApi>> {
    if config.aws_region.is_none() && config.aws_endpoint_url.is_none() {
        tracing::info!(
            "EKS provider off: start with --aws-region (AWS_REGION) or --aws-endpoint-url to manage EKS clusters"
        );
        return None;
    }
    let driver = crate::providers::eks::SdkEks::new(config.aws_endpoint_url.clone());
    tracing::info!(
        driver = %crate::providers::EksApi::describe(&driver),
        default_region = config.aws_region.as_deref().unwrap_or("(per Cluster)"),
        "EKS provider enabled"
    );
    Some(Arc::new(driver))
}

/// Which optional APIs the management cluster serves.
async fn discover(client: &Client) -> Capabilities {
    let cluster_profiles = client
        .list_api_group_resources("multicluster.x-k8s.io/v1alpha1")
        .await
        .map(|list| list.resources.iter().any(|r| r.name == "clusterprofiles"))
        .unwrap_or(false);
    if !cluster_profiles {
        tracing::warn!(
            "the ClusterProfile API (multicluster.x-k8s.io/v1alpha1) is not served; Stacks and views will say so"
        );
    }
    let argocd_applications = client
        .list_api_group_resources("argoproj.io/v1alpha1")
        .await
        .map(|list| list.resources.iter().any(|r| r.name == "applications"))
        .unwrap_or(false);
    if !argocd_applications {
        tracing::warn!(
            "the ArgoCD Application API (argoproj.io/v1alpha1) is not served; Stacks will say so"
        );
    }
    Capabilities {
        cluster_profiles,
        argocd_applications,
    }
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutdown requested");
}
