//! `mk8 clusters`: every ClusterProfile of the inventory with its manager, health, version and
//! whether mk8 can reach it; `map`/`unmap` tie a profile to a local kubeconfig context.

use std::path::PathBuf;

use anyhow::bail;
use clap::{Args, Subcommand, ValueEnum};
use serde_json::json;

use super::fleet::FleetArgs;
use crate::fleet::access::{ContextMap, MappedContext};
use crate::fleet::inventory;
use crate::fleet::query::{self, State};

/// Arguments of `mk8 clusters`.
#[derive(Debug, Args)]
pub struct ClustersArgs {
    #[command(subcommand)]
    command: Option<ClustersCommand>,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Format::Table)]
    output: Format,
    /// Do not try to reach each cluster.
    #[arg(long)]
    no_check: bool,
    #[command(flatten)]
    fleet: FleetArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Table,
    Json,
    Yaml,
}

#[derive(Debug, Subcommand)]
enum ClustersCommand {
    /// Reach a cluster through a context of a local kubeconfig instead of its access providers.
    Map {
        /// ClusterProfile name or namespace/name.
        name: String,
        /// Kubeconfig context to use.
        #[arg(long)]
        context: String,
        /// Kubeconfig file holding the context (default: $KUBECONFIG or ~/.kube/config).
        #[arg(long = "context-kubeconfig", value_name = "FILE")]
        file: Option<PathBuf>,
    },
    /// Forget a mapping made with `mk8 clusters map`.
    Unmap {
        /// ClusterProfile name or namespace/name.
        name: String,
    },
}

/// Run `mk8 clusters`.
pub async fn run(args: ClustersArgs) -> anyhow::Result<()> {
    match args.command {
        Some(ClustersCommand::Map {
            name,
            context,
            file,
        }) => {
            let path = ContextMap::path();
            let mut map = ContextMap::load(&path).map_err(anyhow::Error::msg)?;
            let file = file.map(|f| std::path::absolute(&f).unwrap_or(f));
            map.clusters.insert(
                name.clone(),
                MappedContext {
                    context: context.clone(),
                    kubeconfig: file,
                },
            );
            map.save(&path)?;
            println!(
                "cluster {name} is reached through context {context} ({})",
                path.display()
            );
            return Ok(());
        }
        Some(ClustersCommand::Unmap { name }) => {
            let path = ContextMap::path();
            let mut map = ContextMap::load(&path).map_err(anyhow::Error::msg)?;
            if map.clusters.remove(&name).is_none() {
                bail!("cluster {name} is not mapped (see {})", path.display());
            }
            map.save(&path)?;
            println!("cluster {name} is reached through its access providers again");
            return Ok(());
        }
        None => {}
    }
    let hub = args.fleet.hub().await?;
    let (profiles, targets) = args.fleet.targets(&hub).await?;
    let map = ContextMap::load(&ContextMap::path()).map_err(anyhow::Error::msg)?;
    let outcomes = if args.no_check {
        Vec::new()
    } else {
        args.fleet
            .fan_out(targets, |client, _| async move {
                Ok(client.apiserver_version().await?.git_version)
            })
            .await
    };
    let mut rows = Vec::new();
    for (i, profile) in profiles.iter().enumerate() {
        let s = inventory::summary(profile);
        let via = match map.lookup(&s.key) {
            Some(m) => format!("context {}", m.context),
            None if s.providers.is_empty() => "<none>".into(),
            None => s.providers.join(","),
        };
        let (reach, message) = match outcomes.get(i) {
            None => ("-".to_string(), String::new()),
            Some(o) if o.state == State::Ok => {
                (format!("Ok ({})", query::human(o.latency)), String::new())
            }
            Some(o) => (
                o.state.as_str().to_string(),
                o.message.clone().unwrap_or_default(),
            ),
        };
        rows.push((s, via, reach, message));
    }
    match args.output {
        Format::Json | Format::Yaml => {
            let items: Vec<_> = rows
                .iter()
                .map(|(s, via, reach, message)| {
                    json!({"namespace": s.key.split('/').next(), "name": s.name, "manager": s.manager, "controlPlaneHealthy": s.healthy,
                           "version": s.version, "access": via, "reachable": reach, "message": message})
                })
                .collect();
            let text = if args.output == Format::Json {
                serde_json::to_string_pretty(&items)? + "\n"
            } else {
                serde_yaml::to_string(&items)?
            };
            print!("{text}");
        }
        Format::Table => {
            if rows.is_empty() {
                eprintln!("No ClusterProfiles found on the hub.");
                return Ok(());
            }
            let mut lines = vec![
                [
                    "NAMESPACE",
                    "NAME",
                    "MANAGER",
                    "HEALTHY",
                    "VERSION",
                    "ACCESS",
                    "REACHABLE",
                    "MESSAGE",
                ]
                .map(str::to_string),
            ];
            for (s, via, reach, message) in rows {
                let ns = s.key.split('/').next().unwrap_or_default().to_string();
                lines.push([
                    ns,
                    s.name,
                    s.manager,
                    s.healthy,
                    if s.version.is_empty() {
                        "<unknown>".into()
                    } else {
                        s.version
                    },
                    via,
                    reach,
                    message,
                ]);
            }
            let lines: Vec<Vec<String>> = lines.into_iter().map(Vec::from).collect();
            print!("{}", crate::fleet::table::align(&lines));
        }
    }
    Ok(())
}
