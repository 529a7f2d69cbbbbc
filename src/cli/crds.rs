//! `mk8 crds`: print or write the CRDs (no cluster access).

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, ValueEnum};

use crate::crdgen;

/// Output formats of `mk8 crds`.
#[derive(Clone, Copy, Debug, Default, ValueEnum)]
pub enum Format {
    /// A multi-document YAML stream.
    #[default]
    Yaml,
    /// A JSON `List`.
    Json,
}

/// Arguments of `mk8 crds`.
#[derive(Debug, Args)]
pub struct CrdsArgs {
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Format::Yaml)]
    output: Format,
    /// Write one `<plural>.<group>.yaml` file per kind into this directory instead of printing.
    #[arg(long)]
    dir: Option<PathBuf>,
}

/// Print the CRDs, or write them to `--dir`.
pub fn run(args: CrdsArgs) -> anyhow::Result<()> {
    if let Some(dir) = args.dir {
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        for crd in crdgen::all() {
            let path = dir.join(crdgen::file_name(&crd));
            std::fs::write(&path, crdgen::to_yaml(&crd))
                .with_context(|| format!("writing {}", path.display()))?;
            eprintln!("wrote {}", path.display());
        }
        return Ok(());
    }
    match args.output {
        Format::Yaml => print!("{}", crdgen::all_yaml()),
        Format::Json => {
            let list =
                serde_json::json!({"apiVersion": "v1", "kind": "List", "items": crdgen::all()});
            println!("{}", serde_json::to_string_pretty(&list)?);
        }
    }
    Ok(())
}
