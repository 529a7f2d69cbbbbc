//! `mk8 kubeconfig get|merge|remove|use CLUSTER`: managed clusters' kubeconfigs for people.
//!
//! `get` prints one (EKS: a user running `mk8 credentials eks` instead of the operator's
//! short-lived token; RKE2: the kubeconfig the operator stored); `merge` adds it to a person's
//! kubeconfig (locked, backed up, replaced atomically, 0600; a same-named entry mk8 did not add is
//! refused unless `--force` or `--rename`); `remove` takes out only what mk8 added; `use` makes
//! its context current.

mod file;
mod merge;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Subcommand, ValueEnum};
use kube::{Api, Client};

use crate::api::Cluster;
#[cfg(feature = "eks")]
use crate::providers::eks::kubeconfig::{User, render};
use merge::{OnConflict, Owner};

/// Arguments of `mk8 kubeconfig`.
#[derive(Debug, Args)]
pub struct KubeconfigArgs {
    #[command(subcommand)]
    command: KubeconfigCommand,
}

#[derive(Debug, Subcommand)]
enum KubeconfigCommand {
    /// Print the kubeconfig of a Cluster (EKS: with an `mk8 credentials eks` exec user).
    Get(GetArgs),
    /// Add a Cluster's kubeconfig to your kubeconfig file as a context of its own.
    Merge(MergeArgs),
    /// Remove the entries `mk8 kubeconfig merge` added for a Cluster, and nothing else.
    Remove(LocalArgs),
    /// Make the context `mk8 kubeconfig merge` added for a Cluster the current one.
    Use(LocalArgs),
}

#[derive(Debug, Args)]
struct GetArgs {
    /// Name of the Cluster.
    cluster: String,
    /// Namespace of the Cluster (default: the kubeconfig context's namespace).
    #[arg(short, long)]
    namespace: Option<String>,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Output::Yaml)]
    output: Output,
}

#[derive(Debug, Args)]
struct MergeArgs {
    /// Name of the Cluster on the management cluster (the current kubeconfig context).
    cluster: String,
    /// Namespace of the Cluster (default: the management context's namespace).
    #[arg(short, long)]
    namespace: Option<String>,
    /// Name of the new context, cluster and user entries (default: the Cluster's name).
    #[arg(long)]
    context: Option<String>,
    /// Make the new context the current one.
    #[arg(long)]
    set_current: bool,
    /// Replace an entry of the same name that mk8 did not add.
    #[arg(long, conflicts_with = "rename")]
    force: bool,
    /// When the name is taken, use the first free `NAME-2`, `NAME-3` …
    #[arg(long)]
    rename: bool,
    /// Kubeconfig file to change (default: the first file of $KUBECONFIG, else ~/.kube/config).
    #[arg(long)]
    file: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct LocalArgs {
    /// Name of the Cluster.
    cluster: String,
    /// Namespace of the Cluster, when entries for Clusters of the same name in several
    /// namespaces were merged.
    #[arg(short, long)]
    namespace: Option<String>,
    /// Kubeconfig file to change (default: the first file of $KUBECONFIG, else ~/.kube/config).
    #[arg(long)]
    file: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Output {
    Yaml,
    Json,
}

/// How long to wait for another writer (kubectl, mk8) holding the kubeconfig's lock.
const LOCK_WAIT: Duration = Duration::from_secs(10);

/// Run `mk8 kubeconfig`.
pub async fn run(args: KubeconfigArgs) -> anyhow::Result<()> {
    match args.command {
        KubeconfigCommand::Get(get) => {
            let (client, namespace) = hub(get.namespace.as_deref()).await?;
            let config = people_kubeconfig(&client, &namespace, &get.cluster).await?;
            match get.output {
                Output::Yaml => print!("{config}"),
                Output::Json => {
                    let value: serde_json::Value = serde_yaml::from_str(&config)?;
                    println!("{}", serde_json::to_string_pretty(&value)?);
                }
            }
        }
        KubeconfigCommand::Merge(args) => {
            let (client, namespace) = hub(args.namespace.as_deref()).await?;
            let config = people_kubeconfig(&client, &namespace, &args.cluster).await?;
            let incoming = serde_yaml::from_str(&config).with_context(|| {
                format!(
                    "the kubeconfig of Cluster {namespace}/{} is not YAML",
                    args.cluster
                )
            })?;
            let owner = Owner {
                namespace,
                name: args.cluster.clone(),
            };
            let on_conflict = match (args.force, args.rename) {
                (true, _) => OnConflict::Replace,
                (_, true) => OnConflict::Rename,
                _ => OnConflict::Refuse,
            };
            let name = args.context.unwrap_or(args.cluster);
            let path = target(args.file)?;
            let merged = change(&path, |doc| {
                let merged =
                    merge::merge(doc, &incoming, &owner, &name, on_conflict, args.set_current)?;
                Ok((merged.changed, merged))
            })?;
            match merged {
                (
                    merge::Merged {
                        changed: false,
                        context,
                    },
                    _,
                ) => {
                    println!(
                        "context {context} for Cluster {owner} is up to date in {}",
                        path.display()
                    );
                }
                (merge::Merged { context, .. }, backup) => {
                    println!(
                        "context {context} for Cluster {owner} written to {}{}",
                        path.display(),
                        backed_up(backup.as_deref())
                    );
                }
            }
        }
        KubeconfigCommand::Remove(args) => {
            let path = target(args.file)?;
            let (removed, backup) = change(&path, |doc| {
                let removed = merge::remove(doc, args.namespace.as_deref(), &args.cluster)?;
                Ok((true, removed))
            })?;
            println!(
                "removed {} from {}{}",
                removed.join(", "),
                path.display(),
                backed_up(backup.as_deref())
            );
        }
        KubeconfigCommand::Use(args) => {
            let path = target(args.file)?;
            let (context, _) = change(&path, |doc| {
                let before = doc.get("current-context").cloned();
                let context = merge::use_context(doc, args.namespace.as_deref(), &args.cluster)?;
                Ok((doc.get("current-context") != before.as_ref(), context))
            })?;
            println!("switched to context {context}");
        }
    }
    Ok(())
}

/// The management cluster's client and the namespace to look in.
async fn hub(namespace: Option<&str>) -> anyhow::Result<(Client, String)> {
    let client = Client::try_default()
        .await
        .context("connecting to the management cluster (KUBECONFIG or in-cluster)")?;
    let namespace = namespace
        .map(str::to_string)
        .unwrap_or_else(|| client.default_namespace().to_string());
    Ok((client, namespace))
}

fn target(file: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    file.map_or_else(file::default_path, Ok)
}

/// Read, change and (when `edit` says it changed) write `path` under its lock; returns what
/// `edit` returned and the backup written.
fn change<T>(
    path: &Path,
    edit: impl FnOnce(&mut serde_yaml::Value) -> Result<(bool, T), merge::Problem>,
) -> anyhow::Result<(T, Option<PathBuf>)> {
    let _lock = file::Lock::take(path, LOCK_WAIT)?;
    let mut doc = file::read(path)?;
    let (changed, out) =
        edit(&mut doc).map_err(|problem| anyhow::anyhow!("{}: {problem}", path.display()))?;
    let backup = if changed {
        file::write(path, &doc)?
    } else {
        None
    };
    Ok((out, backup))
}

fn backed_up(backup: Option<&Path>) -> String {
    backup.map_or_else(String::new, |b| {
        format!(" (previous content in {})", b.display())
    })
}

/// The kubeconfig of Cluster `namespace/name` for a person: EKS with an exec user, any other
/// provider the kubeconfig the operator stored.
async fn people_kubeconfig(client: &Client, namespace: &str, name: &str) -> anyhow::Result<String> {
    let cluster = Api::<Cluster>::namespaced(client.clone(), namespace)
        .get_opt(name)
        .await?
        .with_context(|| format!("Cluster {namespace}/{name} not found"))?;
    if cluster.spec.eks.is_some() {
        #[cfg(feature = "eks")]
        return exec_kubeconfig(client, &cluster).await;
        #[cfg(not(feature = "eks"))]
        bail!(
            "Cluster {namespace}/{name} is an EKS cluster and this mk8 was built without the eks feature"
        );
    }
    let status = cluster.status.clone().unwrap_or_default();
    let Some(secret_name) = status.kubeconfig_secret_name else {
        bail!(
            "Cluster {namespace}/{name} has no kubeconfig yet (phase {:?}): wait until it is Ready",
            status.phase
        );
    };
    stored_kubeconfig(client, namespace, &secret_name).await
}

/// The kubeconfig in the operator's Secret (key `value`).
async fn stored_kubeconfig(
    client: &Client,
    namespace: &str,
    secret_name: &str,
) -> anyhow::Result<String> {
    crate::controller::cluster::stored_kubeconfig(client, namespace, secret_name)
        .await
        .map_err(anyhow::Error::msg)
}

/// The human kubeconfig of an EKS Cluster: endpoint from its status, CA from the operator's
/// kubeconfig Secret, and an exec user running this very mk8 (`mk8 credentials eks`).
#[cfg(feature = "eks")]
async fn exec_kubeconfig(client: &Client, cluster: &Cluster) -> anyhow::Result<String> {
    let name = cluster.metadata.name.as_deref().unwrap_or_default();
    let namespace = cluster.metadata.namespace.as_deref().unwrap_or_default();
    let Some(eks) = &cluster.spec.eks else {
        bail!("Cluster {namespace}/{name} is not an EKS cluster");
    };
    let status = cluster.status.clone().unwrap_or_default();
    let (Some(endpoint), Some(secret_name)) = (status.endpoint, status.kubeconfig_secret_name)
    else {
        bail!(
            "Cluster {namespace}/{name} has no API endpoint yet (phase {:?}): wait until it is Ready",
            status.phase
        );
    };
    let stored = stored_kubeconfig(client, namespace, &secret_name).await?;
    let stored: serde_json::Value = serde_yaml::from_str(&stored)?;
    let ca = stored["clusters"][0]["cluster"]["certificate-authority-data"].as_str();
    let mk8 = std::env::current_exe()
        .context("finding the path of this mk8 for the kubeconfig's exec user")?;
    Ok(render(
        name,
        &endpoint,
        ca,
        &User::Exec {
            mk8: &mk8.to_string_lossy(),
            cluster: name,
            region: &eks.region,
        },
    ))
}
