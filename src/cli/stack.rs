//! `mk8 stack plan|render`: a Stack's waves per cluster, and its ArgoCD Applications as files for
//! a Git repository — built by the same pure functions the operator applies (no cluster access).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::Stack;
use crate::controller::conditions::types;
use crate::controller::stack::plan::{self, Target};
use crate::controller::stack::{Selection, bundles, validate};

/// Arguments of `mk8 stack`.
#[derive(Debug, Args)]
pub struct StackArgs {
    #[command(subcommand)]
    command: StackCommand,
}

#[derive(Debug, Subcommand)]
enum StackCommand {
    /// Check a Stack and print its install waves for each cluster.
    Plan(Inputs),
    /// Write the Stack's ArgoCD Applications, one YAML file each, plus an app-of-apps root.
    Render(RenderArgs),
}

/// The Stack and the clusters it is planned for.
#[derive(Debug, Args)]
struct Inputs {
    /// The Stack manifest (YAML or JSON; `-` for standard input).
    #[arg(short = 'f', long = "filename")]
    file: PathBuf,
    /// A cluster: its ClusterProfile name, optionally with labels (`edge-1:env=prod,size=large`),
    /// as `clusterOverrides` select on them. Repeatable.
    #[arg(long = "cluster", value_name = "NAME[:LABELS]")]
    clusters: Vec<String>,
    /// ClusterProfiles to plan for (a YAML stream or a `List`, e.g. `kubectl get clusterprofiles -o yaml`),
    /// filtered by the Stack's `clusterSelector` as the operator does.
    #[arg(long = "cluster-profiles", value_name = "FILE")]
    profiles: Option<PathBuf>,
    /// Chart repository mirror (as the operator's `--chart-mirror`; `spec.chartMirror` wins).
    #[arg(long)]
    chart_mirror: Option<String>,
}

#[derive(Debug, Args)]
struct RenderArgs {
    #[command(flatten)]
    inputs: Inputs,
    /// Directory to write: `apps/<application>.yaml` for each Application, and `root.yaml`
    /// when `--repo-url` is given.
    #[arg(long)]
    out: PathBuf,
    /// Git repository the files are committed to: writes `root.yaml`, an Application that syncs
    /// `<out path>/apps` from it into ArgoCD's namespace (app of apps).
    #[arg(long)]
    repo_url: Option<String>,
    /// Path of the `apps` directory inside that repository.
    #[arg(long, default_value = "apps")]
    repo_path: String,
    /// Branch, tag or commit of that repository.
    #[arg(long, default_value = "HEAD")]
    revision: String,
}

/// Run `mk8 stack`.
pub fn run(args: StackArgs) -> anyhow::Result<()> {
    match args.command {
        StackCommand::Plan(inputs) => {
            let loaded = load(&inputs)?;
            print!("{}", plan_text(&loaded));
            Ok(())
        }
        StackCommand::Render(args) => render(&args),
    }
}

struct Loaded {
    stack: Stack,
    waves: Vec<Vec<String>>,
    targets: Vec<Target>,
    mirror: Option<String>,
}

fn read(path: &Path) -> anyhow::Result<String> {
    if path == Path::new("-") {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)?;
        return Ok(text);
    }
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

fn load(inputs: &Inputs) -> anyhow::Result<Loaded> {
    let text = read(&inputs.file)?;
    let value: Value = serde_yaml::from_str(&text)
        .with_context(|| format!("{}: not YAML or JSON", inputs.file.display()))?;
    if value["apiVersion"] != "mk8.io/v1alpha1" || value["kind"] != "Stack" {
        bail!(
            "{}: expected apiVersion mk8.io/v1alpha1, kind Stack; found {} {}",
            inputs.file.display(),
            value["apiVersion"],
            value["kind"]
        );
    }
    let stack: Stack = serde_json::from_value(value)
        .with_context(|| format!("{}: not a valid Stack", inputs.file.display()))?;
    let mut stack =
        bundles::expand(&stack).map_err(|e| anyhow::anyhow!("{}: {e}", inputs.file.display()))?;
    if stack.metadata.namespace.is_none() {
        stack.metadata.namespace = Some("default".into());
    }
    let mut targets = Vec::new();
    for spec in &inputs.clusters {
        targets.push(parse_cluster(spec)?);
    }
    if let Some(path) = &inputs.profiles {
        targets.extend(selected_profiles(&stack, &read(path)?)?);
    }
    if targets.is_empty() {
        bail!(
            "name the clusters to plan for with --cluster NAME[:k=v,...] or --cluster-profiles FILE"
        );
    }
    targets.sort_by(|a, b| a.name.cmp(&b.name));
    targets.dedup_by(|a, b| a.name == b.name);
    let verdict = validate(&stack, &Selection::Selected(targets.len()));
    if let Some(problem) = verdict
        .conditions
        .iter()
        .find(|c| !c.status && c.type_ == types::READY)
    {
        bail!("{}: {}", inputs.file.display(), problem.message);
    }
    let mirror = stack
        .spec
        .chart_mirror
        .clone()
        .or_else(|| inputs.chart_mirror.clone());
    Ok(Loaded {
        stack,
        waves: verdict.waves,
        targets,
        mirror,
    })
}

fn parse_cluster(spec: &str) -> anyhow::Result<Target> {
    let (name, labels) = spec.split_once(':').unwrap_or((spec, ""));
    if name.is_empty() {
        bail!("--cluster {spec:?}: the cluster name is empty; use NAME or NAME:key=value,...");
    }
    let mut map = BTreeMap::new();
    for pair in labels.split(',').filter(|p| !p.is_empty()) {
        let Some((k, v)) = pair.split_once('=') else {
            bail!("--cluster {spec:?}: label {pair:?} is not key=value");
        };
        map.insert(k.to_string(), v.to_string());
    }
    Ok(Target {
        name: name.to_string(),
        labels: map,
        access_problem: None,
    })
}

/// The ClusterProfiles of a YAML stream or List that the Stack's selector matches.
fn selected_profiles(stack: &Stack, text: &str) -> anyhow::Result<Vec<Target>> {
    use kube::core::{Selector, SelectorExt};
    let selector = Selector::try_from(stack.spec.cluster_selector.clone())
        .map_err(|e| anyhow::anyhow!("spec.clusterSelector: {e}"))?;
    let mut out = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(text) {
        let value = Value::deserialize(doc).context("--cluster-profiles: not YAML")?;
        let items = match value["kind"].as_str() {
            Some("List") | Some("ClusterProfileList") => {
                value["items"].as_array().cloned().unwrap_or_default()
            }
            Some("ClusterProfile") => vec![value],
            _ => continue,
        };
        for item in items {
            let labels: BTreeMap<String, String> =
                serde_json::from_value(item["metadata"]["labels"].clone()).unwrap_or_default();
            if selector.matches(&labels) {
                out.push(Target {
                    name: item["metadata"]["name"]
                        .as_str()
                        .context("--cluster-profiles: a ClusterProfile without metadata.name")?
                        .to_string(),
                    labels,
                    access_problem: None,
                });
            }
        }
    }
    Ok(out)
}

fn plan_text(l: &Loaded) -> String {
    let mut out = String::new();
    for target in &l.targets {
        out.push_str(&format!("cluster {}\n", target.name));
        for (i, wave) in l.waves.iter().enumerate() {
            out.push_str(&format!("  wave {i}: {}\n", wave.join(", ")));
        }
    }
    out
}

/// Every Application of the Stack on every cluster, as the operator would write it.
fn applications(l: &Loaded) -> Vec<Value> {
    let mut apps = Vec::new();
    for target in &l.targets {
        for (wave, names) in l.waves.iter().enumerate() {
            for name in names {
                let component = l.stack.spec.components.iter().find(|c| &c.name == name);
                if let Some(app) = component
                    .and_then(|c| plan::application(&l.stack, c, wave, target, l.mirror.as_deref()))
                {
                    apps.push(app);
                }
            }
        }
    }
    apps
}

fn render(args: &RenderArgs) -> anyhow::Result<()> {
    let loaded = load(&args.inputs)?;
    let apps_dir = args.out.join("apps");
    std::fs::create_dir_all(&apps_dir)
        .with_context(|| format!("creating {}", apps_dir.display()))?;
    let apps = applications(&loaded);
    for app in &apps {
        let name = app["metadata"]["name"].as_str().unwrap_or_default();
        let path = apps_dir.join(format!("{name}.yaml"));
        std::fs::write(&path, serde_yaml::to_string(app)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    eprintln!(
        "wrote {} Applications to {}",
        apps.len(),
        apps_dir.display()
    );
    if let Some(repo) = &args.repo_url {
        let root = root_application(&loaded.stack, repo, &args.repo_path, &args.revision);
        let path = args.out.join("root.yaml");
        std::fs::write(&path, serde_yaml::to_string(&root)?)
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

/// The app of apps: syncs the rendered Applications from Git into ArgoCD's namespace.
fn root_application(stack: &Stack, repo: &str, path: &str, revision: &str) -> Value {
    let name = plan::fit(
        &format!("{}-root", kube::ResourceExt::name_any(stack)),
        &format!(
            "{}/{}",
            kube::ResourceExt::namespace(stack).unwrap_or_default(),
            kube::ResourceExt::name_any(stack)
        ),
    );
    json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {
            "name": name,
            "namespace": stack.spec.argocd.namespace,
            "labels": {"app.kubernetes.io/managed-by": "mk8"},
        },
        "spec": {
            "project": stack.spec.argocd.project,
            "destination": {"server": "https://kubernetes.default.svc", "namespace": stack.spec.argocd.namespace},
            "source": {"repoURL": repo, "path": path, "targetRevision": revision},
            "syncPolicy": {"automated": {"prune": true, "selfHeal": true}},
        },
    })
}
