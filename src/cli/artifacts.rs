//! `mk8 artifacts`: prepare and check RKE2 release files for air-gapped sites.

use std::path::PathBuf;

use anyhow::bail;
use clap::{Args, Subcommand, ValueEnum};

use crate::providers::rke2::artifacts::{self, UPSTREAM_INSTALL_SCRIPT, upstream_base_url};

/// Arguments of `mk8 artifacts`.
#[derive(Debug, Args)]
pub struct ArtifactsArgs {
    #[command(subcommand)]
    command: ArtifactsCommand,
}

#[derive(Debug, Subcommand)]
enum ArtifactsCommand {
    /// Download a release's files (verified against its checksum file) into a mirror directory.
    Fetch(FetchArgs),
    /// Check every file of a mirror directory against its sha256sum-amd64.txt.
    Verify(VerifyArgs),
}

/// Arguments of `mk8 artifacts fetch`.
#[derive(Debug, Args)]
struct FetchArgs {
    /// RKE2 release, such as v1.33.1+rke2r1.
    #[arg(long)]
    version: String,
    /// Directory to write the files into.
    #[arg(long)]
    to: PathBuf,
    /// Where the release files are (default: the upstream GitHub release).
    #[arg(long)]
    base_url: Option<String>,
    /// Where install.sh is (default: beside the files with --base-url, else the upstream script).
    #[arg(long)]
    install_script_url: Option<String>,
    /// CNI whose images are needed when the release has no all-in-one image tarball.
    #[arg(long, default_value = "canal")]
    cni: String,
}

/// Output formats of `mk8 artifacts verify`.
#[derive(Clone, Copy, Debug, Default, ValueEnum)]
enum Format {
    /// A table.
    #[default]
    Text,
    /// JSON.
    Json,
    /// YAML.
    Yaml,
}

/// Arguments of `mk8 artifacts verify`.
#[derive(Debug, Args)]
struct VerifyArgs {
    /// Mirror directory holding sha256sum-amd64.txt and the release files.
    dir: PathBuf,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Format::Text)]
    output: Format,
}

/// Run `mk8 artifacts`.
pub async fn run(args: ArtifactsArgs) -> anyhow::Result<()> {
    match args.command {
        ArtifactsCommand::Fetch(a) => fetch(a).await,
        ArtifactsCommand::Verify(a) => verify(a).await,
    }
}

async fn fetch(args: FetchArgs) -> anyhow::Result<()> {
    let (base, script) = match &args.base_url {
        Some(base) => (base.clone(), args.install_script_url.clone()),
        None => (
            upstream_base_url(&args.version),
            Some(
                args.install_script_url
                    .clone()
                    .unwrap_or_else(|| UPSTREAM_INSTALL_SCRIPT.into()),
            ),
        ),
    };
    let fetched = artifacts::fetch_to_dir(&base, script.as_deref(), &args.to, &args.cni, |m| {
        eprintln!("{m}")
    })
    .await?;
    for f in fetched.iter().filter(|f| !f.listed_upstream) {
        eprintln!(
            "note: {} is not listed in the upstream checksum file; its sha256 {} was recorded in {}",
            f.file,
            f.sha256,
            args.to.join(artifacts::CHECKSUMS).display()
        );
    }
    eprintln!(
        "{} files of {} are in {}; check them on the air-gapped side with `mk8 artifacts verify {}`",
        fetched.len(),
        args.version,
        args.to.display(),
        args.to.display()
    );
    Ok(())
}

async fn verify(args: VerifyArgs) -> anyhow::Result<()> {
    let checks = artifacts::verify_dir(&args.dir).await?;
    match args.output {
        Format::Text => {
            println!("{:<45} {:<9} SHA256", "FILE", "STATE");
            for c in &checks {
                println!("{:<45} {:<9} {}", c.file, c.state, c.expected);
            }
        }
        Format::Json => println!("{}", serde_json::to_string_pretty(&checks)?),
        Format::Yaml => print!("{}", serde_yaml::to_string(&checks)?),
    }
    let bad: Vec<String> = checks
        .iter()
        .filter(|c| c.state != "ok")
        .map(|c| match c.state.as_str() {
            "missing" => format!("{} is missing", c.file),
            _ => format!(
                "{} does not match {}: expected {}, found {}",
                c.file,
                artifacts::CHECKSUMS,
                c.expected,
                c.actual
            ),
        })
        .collect();
    if !bad.is_empty() {
        bail!("{}", bad.join("; "));
    }
    Ok(())
}
