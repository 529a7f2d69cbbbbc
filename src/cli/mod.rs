//! The `mk8` command line: parsing and dispatch; each subcommand lives in its own file.

mod artifacts;
mod completion;
mod crds;
mod dev;
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
    /// Print the CustomResourceDefinitions of mk8 (or write one file per kind with --dir).
    Crds(crds::CrdsArgs),
    /// Run a development API server with mk8's CRDs and the operator on this machine.
    Dev(dev::DevArgs),
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
        Command::Crds(args) => crds::run(args),
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
