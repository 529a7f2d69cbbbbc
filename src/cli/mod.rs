//! The `mk8` command line: parsing and dispatch; each subcommand lives in its own file.

mod artifacts;
mod clusters;
mod completion;
mod config;
mod crds;
mod credentials;
mod dev;
mod fleet;
mod get;
mod kubeconfig;
mod stack;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mk8 runs a fleet of Kubernetes clusters from one management cluster.
#[derive(Debug, Parser)]
#[command(name = "mk8", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Prepare and check RKE2 release files for air-gapped sites.
    Artifacts(artifacts::ArtifactsArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completion(completion::CompletionArgs),
    /// Every cluster of the ClusterProfile inventory: manager, health, version, reachability.
    Clusters(clusters::ClustersArgs),
    /// Store mk8's own settings: `mk8 config aws` keeps AWS credentials for EKS.
    Config(config::ConfigArgs),
    /// Credential plugins for kubeconfigs and ClusterProfile access providers.
    Credentials(credentials::CredentialsArgs),
    /// Print the CustomResourceDefinitions of mk8 (or write one file per kind with --dir).
    Crds(crds::CrdsArgs),
    /// Run a development API server with mk8's CRDs and the operator on this machine.
    Dev(dev::DevArgs),
    /// Describe an object, on whichever cluster of the inventory has it.
    Describe(get::DescribeArgs),
    /// List or get objects across the clusters of the inventory, with a CLUSTER column.
    Get(get::GetArgs),
    /// Print a pod's log, on whichever cluster of the inventory has it.
    Logs(get::LogsArgs),
    /// Kubeconfigs of managed clusters for people: print, merge into yours, remove, switch.
    Kubeconfig(kubeconfig::KubeconfigArgs),
    /// Plan a Stack's waves, or render its ArgoCD Applications for a Git repository.
    Stack(stack::StackArgs),
}

fn block_on<F: std::future::Future<Output = anyhow::Result<()>>>(future: F) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)?
        .block_on(future)
}

/// Entry point of the `mk8` binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Artifacts(args) => block_on(artifacts::run(args)),
        Command::Completion(args) => completion::run(args),
        Command::Clusters(args) => block_on(clusters::run(args)),
        Command::Config(args) => block_on(config::run(args)),
        Command::Credentials(args) => block_on(credentials::run(args)),
        Command::Crds(args) => crds::run(args),
        Command::Describe(args) => block_on(get::describe(args)),
        Command::Get(args) => block_on(get::get(args)),
        Command::Logs(args) => block_on(get::logs(args)),
        Command::Dev(args) => block_on(dev::run(args)),
        Command::Kubeconfig(args) => block_on(kubeconfig::run(args)),
        Command::Stack(args) => stack::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
