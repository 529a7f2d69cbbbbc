//! `mk8 kubeconfig get <cluster>`: a kubeconfig for people, whose user runs `aws eks get-token`
//! (EKS) instead of carrying the operator's short-lived token.

use anyhow::{Context, bail};
use clap::{Args, Subcommand, ValueEnum};
use k8s_openapi::api::core::v1::Secret;
use kube::{Api, Client};

use crate::api::Cluster;
use crate::providers::eks::kubeconfig::{User, render};

/// Arguments of `mk8 kubeconfig`.
#[derive(Debug, Args)]
pub struct KubeconfigArgs {
    #[command(subcommand)]
    command: KubeconfigCommand,
}

#[derive(Debug, Subcommand)]
enum KubeconfigCommand {
    /// Print the kubeconfig of a Cluster (EKS: with an `aws eks get-token` exec user).
    Get(GetArgs),
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

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Output {
    Yaml,
    Json,
}

/// Run `mk8 kubeconfig`.
pub async fn run(args: KubeconfigArgs) -> anyhow::Result<()> {
    let KubeconfigCommand::Get(get) = args.command;
    let client = Client::try_default()
        .await
        .context("connecting to the management cluster (KUBECONFIG or in-cluster)")?;
    let namespace = get
        .namespace
        .clone()
        .unwrap_or_else(|| client.default_namespace().to_string());
    let config = exec_kubeconfig(&client, &namespace, &get.cluster).await?;
    match get.output {
        Output::Yaml => print!("{config}"),
        Output::Json => {
            let value: serde_json::Value = serde_yaml::from_str(&config)?;
            println!("{}", serde_json::to_string_pretty(&value)?);
        }
    }
    Ok(())
}

/// The human kubeconfig of Cluster `namespace/name`: endpoint from its status, CA from the
/// operator's kubeconfig Secret, and an exec user calling `aws eks get-token`.
pub async fn exec_kubeconfig(
    client: &Client,
    namespace: &str,
    name: &str,
) -> anyhow::Result<String> {
    let cluster = Api::<Cluster>::namespaced(client.clone(), namespace)
        .get_opt(name)
        .await?
        .with_context(|| format!("Cluster {namespace}/{name} not found"))?;
    let Some(eks) = &cluster.spec.eks else {
        bail!(
            "Cluster {namespace}/{name} is not an EKS cluster: read its kubeconfig from the Secret {name}-kubeconfig"
        );
    };
    let status = cluster.status.clone().unwrap_or_default();
    let (Some(endpoint), Some(secret_name)) = (status.endpoint, status.kubeconfig_secret_name)
    else {
        bail!(
            "Cluster {namespace}/{name} has no API endpoint yet (phase {:?}): wait until it is Ready",
            status.phase
        );
    };
    let secret = Api::<Secret>::namespaced(client.clone(), namespace)
        .get(&secret_name)
        .await
        .with_context(|| format!("reading Secret {namespace}/{secret_name}"))?;
    let stored = secret
        .data
        .as_ref()
        .and_then(|d| d.get("value"))
        .map(|v| String::from_utf8_lossy(&v.0).into_owned())
        .with_context(|| format!("Secret {namespace}/{secret_name} has no key value"))?;
    let stored: serde_json::Value = serde_yaml::from_str(&stored)?;
    let ca = stored["clusters"][0]["cluster"]["certificate-authority-data"].as_str();
    Ok(render(
        name,
        &endpoint,
        ca,
        &User::Exec {
            cluster: name,
            region: &eks.region,
        },
    ))
}
