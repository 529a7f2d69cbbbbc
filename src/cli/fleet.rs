//! What the fleet commands share: the hub (the management cluster holding the ClusterProfiles),
//! which clusters to reach, how (the access-provider file, mapped contexts) and the fan-out
//! limits.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use futures::StreamExt;
use kube::Client;
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::Value;

use crate::fleet::access::{self, ContextMap, Provider, ProviderFile};
use crate::fleet::inventory::{self, Filter};
use crate::fleet::latency::History;
use crate::fleet::query::{self, Limits, Outcome, QueryError, Target};

/// Flags naming the hub and the clusters to read.
#[derive(Debug, Clone, Args)]
pub struct FleetArgs {
    /// Context of the hub (the management cluster with the ClusterProfiles); default: the
    /// current context.
    #[arg(long, value_name = "CONTEXT", global = true)]
    pub hub_context: Option<String>,
    /// Kubeconfig file of the hub; default: $KUBECONFIG or ~/.kube/config.
    #[arg(long, value_name = "FILE", global = true)]
    pub kubeconfig: Option<PathBuf>,
    /// Only the ClusterProfiles of this cluster set (namespaces labelled
    /// multicluster.x-k8s.io/clusterset=SET).
    #[arg(long, value_name = "SET", global = true)]
    pub clusterset: Option<String>,
    /// Clusters to read: names or globs, comma-separated (`prod-*,lab`); `namespace/name` too.
    #[arg(
        long,
        value_name = "NAMES",
        default_value = "",
        hide_default_value = true,
        global = true
    )]
    pub clusters: String,
    /// Clusters to leave out: names or globs, comma-separated.
    #[arg(
        long,
        value_name = "NAMES",
        default_value = "",
        hide_default_value = true,
        global = true
    )]
    pub exclude: String,
    /// Only clusters whose ClusterProfile labels match (`env=prod,tier!=edge`).
    #[arg(
        long,
        value_name = "SELECTOR",
        default_value = "",
        hide_default_value = true,
        global = true
    )]
    pub cluster_selector: String,
    /// Clusters read at once.
    #[arg(long, default_value_t = 16, global = true)]
    pub concurrency: usize,
    /// Time one cluster may take (credentials, discovery and the read), such as 10s.
    #[arg(long, default_value = "10s", value_parser = parse_timeout, global = true)]
    pub timeout: Duration,
    /// KEP-5339 access-provider file mapping ClusterProfile access providers to credential
    /// plugins; default: access-providers.json in mk8's config directory. mk8's own `mk8`
    /// provider works without one.
    #[arg(long, value_name = "FILE", global = true)]
    pub access_providers: Option<PathBuf>,
    /// Fail (exit 1) when any cluster fails, not only when all do.
    #[arg(long, global = true)]
    pub strict: bool,
}

fn parse_timeout(text: &str) -> Result<Duration, String> {
    crate::reconcile::duration::parse_duration(text)
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("{text:?} is not a duration such as 10s, 500ms or 1m"))
}

/// The hub: its client and the kubeconfig options that reach it.
pub struct Hub {
    /// Client of the hub.
    pub client: Client,
    /// Kubeconfig file used, if one was named.
    pub kubeconfig: Option<PathBuf>,
    /// Context used, if one was named.
    pub context: Option<String>,
}

impl FleetArgs {
    /// Connect to the hub.
    pub async fn hub(&self) -> anyhow::Result<Hub> {
        let client = hub_client(self.kubeconfig.as_deref(), self.hub_context.as_deref()).await?;
        Ok(Hub {
            client,
            kubeconfig: self.kubeconfig.clone(),
            context: self.hub_context.clone(),
        })
    }

    /// Fan-out limits.
    pub fn limits(&self) -> Limits {
        Limits {
            concurrency: self.concurrency.max(1),
            timeout: self.timeout,
        }
    }

    /// Run `query` on the targets, the slowest last time first, and remember how long each
    /// took this time (see [`crate::fleet::latency`]).
    pub async fn fan_out<T, F, Fut>(&self, mut targets: Vec<Target>, query: F) -> Vec<Outcome<T>>
    where
        F: Fn(Client, String) -> Fut + Clone,
        Fut: std::future::Future<Output = Result<T, QueryError>>,
    {
        let mut history = History::load(&History::path());
        history.apply(&mut targets);
        let outcomes = query::fan_out(targets, self.limits(), query).await;
        history.record(&outcomes);
        if let Err(e) = history.save() {
            tracing::debug!("not keeping the clusters' latencies: {e}");
        }
        outcomes
    }

    /// The provider file, with mk8's own provider added when the file has none.
    pub fn provider_file(&self, hub: &Hub) -> anyhow::Result<ProviderFile> {
        let path = self
            .access_providers
            .clone()
            .unwrap_or_else(crate::fleet::default_provider_file);
        let file = ProviderFile::load(&path).map_err(anyhow::Error::msg)?;
        if file.get(crate::fleet::MK8_PROVIDER).is_some() {
            return Ok(file);
        }
        let exe = std::env::current_exe().context("locating the mk8 executable")?;
        let kubeconfig = hub
            .kubeconfig
            .as_ref()
            .map(|p| std::path::absolute(p).unwrap_or_else(|_| p.clone()));
        let builtin: Provider = serde_json::from_value(crate::fleet::mk8_provider(
            &exe.to_string_lossy(),
            kubeconfig.as_ref().and_then(|p| p.to_str()),
            hub.context.as_deref(),
        ))?;
        Ok(file.with(builtin))
    }

    /// The selected profiles and how to reach each.
    pub async fn targets(&self, hub: &Hub) -> anyhow::Result<(Vec<Value>, Vec<Target>)> {
        let filter = Filter::parse(&self.clusters, &self.exclude, &self.cluster_selector)
            .map_err(anyhow::Error::msg)?;
        let profiles = inventory::list(&hub.client, None, self.clusterset.as_deref())
            .await
            .map_err(|e| match &e {
                kube::Error::Api(s) if s.code == 404 => anyhow::anyhow!(
                    "the hub does not serve ClusterProfiles (multicluster.x-k8s.io/v1alpha1): install the cluster-inventory-api CRD there, or point --hub-context at the cluster that has them"
                ),
                _ => anyhow::Error::new(e).context("listing ClusterProfiles on the hub"),
            })?;
        let profiles: Vec<Value> = profiles.into_iter().filter(|p| filter.matches(p)).collect();
        let file = self.provider_file(hub)?;
        let map = ContextMap::load(&ContextMap::path()).map_err(anyhow::Error::msg)?;
        // Access is resolved for all profiles at once (a kubeconfig Secret read each).
        let targets =
            futures::stream::iter(profiles.iter())
                .map(|profile| {
                    let (file, map, hub) = (&file, &map, &hub.client);
                    async move {
                        Target::of(profile, access::config(profile, file, map, Some(hub)).await)
                    }
                })
                .buffered(self.concurrency.max(1))
                .collect::<Vec<_>>()
                .await;
        Ok((profiles, targets))
    }
}

/// A client for `context` of `kubeconfig` (each defaulting as kubectl does), in-cluster when
/// there is no kubeconfig at all.
pub async fn hub_client(
    kubeconfig: Option<&std::path::Path>,
    context: Option<&str>,
) -> anyhow::Result<Client> {
    let options = KubeConfigOptions {
        context: context.map(str::to_string),
        ..Default::default()
    };
    let config = match kubeconfig {
        Some(path) => {
            let file = Kubeconfig::read_from(path)
                .with_context(|| format!("reading the hub kubeconfig {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(file, &options).await?
        }
        None if context.is_some() => kube::Config::from_kubeconfig(&options).await?,
        None => kube::Config::infer()
            .await
            .context("finding the hub: set KUBECONFIG, --kubeconfig or --hub-context")?,
    };
    Client::try_from(config).context("connecting to the hub")
}
