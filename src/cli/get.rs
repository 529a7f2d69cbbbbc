//! `mk8 get`, `mk8 describe`, `mk8 logs`: kubectl's reads across every cluster of the inventory,
//! with a CLUSTER column, partial results and a summary of the clusters that failed.

use std::io::Write as _;

use anyhow::bail;
use clap::{Args, ValueEnum};
use futures::{AsyncBufReadExt, StreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::LogParams;
use serde_json::{Value, json};

use super::fleet::FleetArgs;
use crate::fleet::query::{self, Outcome, State};
use crate::fleet::read::{self, ApiType, DiscoveryCache, ListQuery, TypeName};
use crate::fleet::table::{self, Print};

/// Output formats of `mk8 get`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Columns of priority 0 (default).
    Table,
    /// Every column.
    Wide,
    /// A List whose items carry their cluster in the `mk8.io/cluster` annotation.
    Json,
    /// The same List as YAML.
    Yaml,
    /// `CLUSTER TYPE/NAME` per line.
    Name,
}

/// The annotation naming the cluster an object of a merged List came from.
pub const CLUSTER_ANNOTATION: &str = "mk8.io/cluster";

/// Namespace flags shared by the reads.
#[derive(Debug, Clone, Args)]
pub struct Scope {
    /// Namespace to read (default: each cluster's default namespace).
    #[arg(short, long)]
    pub namespace: Option<String>,
    /// Read every namespace.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
}

impl Scope {
    fn namespace(&self) -> Option<String> {
        if self.all_namespaces {
            None
        } else {
            Some(self.namespace.clone().unwrap_or_else(|| "default".into()))
        }
    }
}

/// Arguments of `mk8 get`.
#[derive(Debug, Args)]
pub struct GetArgs {
    /// TYPE, TYPE/NAME or TYPE NAME… (`pods`, `deploy.apps/web`, `po web-1 web-2`).
    #[arg(required = true, value_name = "TYPE[/NAME]")]
    pub resource: Vec<String>,
    #[command(flatten)]
    pub scope: Scope,
    /// Label selector (`app=web,tier!=db`).
    #[arg(short = 'l', long, default_value = "", hide_default_value = true)]
    pub selector: String,
    /// Field selector (`status.phase=Running`).
    #[arg(long, default_value = "", hide_default_value = true)]
    pub field_selector: String,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Output::Table)]
    pub output: Output,
    /// Leave out the header line.
    #[arg(long)]
    pub no_headers: bool,
    /// Keep metadata.managedFields in JSON and YAML output.
    #[arg(long)]
    pub show_managed_fields: bool,
    /// Objects per request.
    #[arg(long, default_value_t = 500)]
    pub chunk_size: u32,
    #[command(flatten)]
    pub fleet: FleetArgs,
}

/// What `mk8 get` asks: the type and, maybe, names.
fn parse_resource(args: &[String]) -> anyhow::Result<(TypeName, Vec<String>)> {
    let (first, rest) = args.split_first().expect("clap requires one");
    let (type_text, mut names) = match first.split_once('/') {
        Some((t, name)) => (t, vec![name.to_string()]),
        None => (first.as_str(), Vec::new()),
    };
    let type_name = TypeName::parse(type_text).map_err(anyhow::Error::msg)?;
    for name in rest {
        match name.split_once('/') {
            Some(_) => bail!(
                "there is only one resource type per mk8 get: write `{} {}` as two commands",
                first,
                name
            ),
            None => names.push(name.clone()),
        }
    }
    Ok((type_name, names))
}

/// What one cluster answered to `mk8 get`.
struct Answer {
    api_type: ApiType,
    /// Table (with rows) or objects.
    table: Option<Value>,
    objects: Vec<Value>,
}

fn discovery_cache() -> DiscoveryCache {
    let dir = crate::fleet::cache_dir().join("discovery");
    // kubectl keeps discovery for six hours; a type unknown to the cache is looked up again.
    DiscoveryCache::on_disk(dir, std::time::Duration::from_secs(6 * 3600))
}

/// Each reachable target's API server URL by cluster name (the discovery cache's key).
fn servers(targets: &[query::Target]) -> std::collections::HashMap<String, String> {
    targets
        .iter()
        .filter_map(|t| {
            Some((
                t.name.clone(),
                t.config.as_ref().ok()?.cluster_url.to_string(),
            ))
        })
        .collect()
}

/// Report failed clusters on stderr; the error to return when the command must fail.
fn report<T>(outcomes: &[Outcome<T>], strict: bool) -> anyhow::Result<()> {
    let Some(summary) = query::failure_summary(outcomes) else {
        return Ok(());
    };
    eprintln!("{summary}");
    let answered = outcomes.iter().any(|o| o.state == State::Ok);
    if !answered {
        bail!("no cluster answered");
    }
    if strict {
        bail!("--strict: some clusters failed");
    }
    Ok(())
}

/// Run `mk8 get`.
pub async fn get(args: GetArgs) -> anyhow::Result<()> {
    let (type_name, names) = parse_resource(&args.resource)?;
    let hub = args.fleet.hub().await?;
    let (_, targets) = args.fleet.targets(&hub).await?;
    if targets.is_empty() {
        bail!("no ClusterProfile matches the cluster filters on the hub (see `mk8 clusters`)");
    }
    let cache = discovery_cache();
    let want_objects = matches!(args.output, Output::Json | Output::Yaml | Output::Name);
    let context_namespace = !args.scope.all_namespaces && args.scope.namespace.is_none();
    let list = ListQuery {
        namespace: args.scope.namespace(),
        labels: args.selector.clone(),
        fields: args.field_selector.clone(),
        chunk: args.chunk_size,
    };
    let servers = servers(&targets);
    let outcomes = args
        .fleet
        .fan_out(targets, |client, cluster| {
            let (cache, type_name, names, list) = (
                cache.clone(),
                type_name.clone(),
                names.clone(),
                list.clone(),
            );
            let server = servers.get(&cluster).cloned().unwrap_or_default();
            async move {
                let mut list = list;
                if context_namespace {
                    // Neither -n nor -A: each cluster's own default (a mapped context's namespace).
                    list.namespace = Some(client.default_namespace().to_string());
                }
                let api_type = cache.resolve(&client, &server, &type_name).await?;
                let namespace = list.namespace.as_deref();
                if names.is_empty() {
                    if want_objects {
                        let objects = read::objects(&client, &api_type, &list).await?;
                        return Ok(Answer {
                            api_type,
                            table: None,
                            objects,
                        });
                    }
                    let table = read::table(&client, &api_type, &list, None).await?.table;
                    return Ok(Answer {
                        api_type,
                        table: Some(table),
                        objects: Vec::new(),
                    });
                }
                let mut objects = Vec::new();
                let mut table: Option<Value> = None;
                for name in &names {
                    if want_objects {
                        if let Some(o) = read::object(&client, &api_type, namespace, name).await? {
                            objects.push(o);
                        }
                    } else if let Some(t) =
                        read::object_table(&client, &api_type, namespace, name).await?
                    {
                        match &mut table {
                            None => table = Some(t),
                            Some(acc) => {
                                let rows = t["rows"].as_array().cloned().unwrap_or_default();
                                if let Some(all) = acc["rows"].as_array_mut() {
                                    all.extend(rows);
                                }
                            }
                        }
                    }
                }
                Ok(Answer {
                    api_type,
                    table,
                    objects,
                })
            }
        })
        .await;

    let mut stdout = std::io::stdout().lock();
    let found: usize = outcomes
        .iter()
        .filter_map(|o| o.value.as_ref())
        .map(|a| {
            a.objects.len()
                + a.table
                    .as_ref()
                    .and_then(|t| t["rows"].as_array())
                    .map_or(0, Vec::len)
        })
        .sum();
    match args.output {
        Output::Table | Output::Wide => {
            let tables: Vec<(&str, &Value)> = outcomes
                .iter()
                .filter_map(|o| Some((o.name.as_str(), o.value.as_ref()?.table.as_ref()?)))
                .collect();
            let merged = table::merge(tables);
            let namespaced = outcomes
                .iter()
                .filter_map(|o| o.value.as_ref())
                .any(|a| a.api_type.namespaced);
            if merged.rows.is_empty() {
                let answered = outcomes.iter().filter(|o| o.state == State::Ok).count();
                if names.is_empty() && answered > 0 {
                    match &list.namespace {
                        Some(ns) if namespaced => eprintln!(
                            "No resources found in {ns} namespace on {answered} clusters."
                        ),
                        _ => eprintln!("No resources found on {answered} clusters."),
                    }
                }
            } else {
                let print = Print {
                    wide: args.output == Output::Wide,
                    namespace: namespaced && list.namespace.is_none(),
                    no_headers: args.no_headers,
                };
                stdout.write_all(table::render(&merged, print).as_bytes())?;
            }
        }
        Output::Json | Output::Yaml => {
            let mut items = Vec::new();
            for o in &outcomes {
                for object in o.value.iter().flat_map(|a| a.objects.iter()) {
                    let mut object = object.clone();
                    if !args.show_managed_fields
                        && let Some(meta) = object["metadata"].as_object_mut()
                    {
                        meta.remove("managedFields");
                    }
                    object["metadata"]["annotations"][CLUSTER_ANNOTATION] = json!(o.name);
                    items.push(object);
                }
            }
            let list = json!({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""}, "items": items});
            if args.output == Output::Json {
                serde_json::to_writer_pretty(&mut stdout, &list)?;
                writeln!(stdout)?;
            } else {
                stdout.write_all(serde_yaml::to_string(&list)?.as_bytes())?;
            }
        }
        Output::Name => {
            for o in &outcomes {
                if let Some(a) = &o.value {
                    for object in &a.objects {
                        let name = object["metadata"]["name"].as_str().unwrap_or_default();
                        writeln!(stdout, "{} {}/{name}", o.name, a.api_type.display())?;
                    }
                }
            }
        }
    }
    drop(stdout);
    report(&outcomes, args.fleet.strict)?;
    if !names.is_empty() && found == 0 {
        bail!(
            "{} {} not found on any of the {} clusters that answered",
            type_name.name,
            names
                .iter()
                .map(|n| format!("{n:?}"))
                .collect::<Vec<_>>()
                .join(", "),
            outcomes.iter().filter(|o| o.state == State::Ok).count()
        );
    }
    Ok(())
}

/// Arguments of `mk8 describe`.
#[derive(Debug, Args)]
pub struct DescribeArgs {
    /// Resource type (`pod`, `deploy.apps`).
    #[arg(value_name = "TYPE")]
    pub type_name: String,
    /// Object name.
    pub name: String,
    #[command(flatten)]
    pub scope: Scope,
    /// The cluster to describe it on, when several have it.
    #[arg(long = "cluster", value_name = "NAME")]
    pub on: Option<String>,
    /// Describe it on every cluster that has it, one after the other.
    #[arg(long)]
    pub all_clusters: bool,
    #[command(flatten)]
    pub fleet: FleetArgs,
}

/// Where an object named on the command line exists.
struct Found {
    cluster: String,
    api_type: ApiType,
    object: Value,
    client: kube::Client,
}

async fn find(
    fleet: &FleetArgs,
    type_text: &str,
    name: &str,
    namespace: Option<String>,
    on: Option<&str>,
) -> anyhow::Result<Vec<Found>> {
    let type_name = TypeName::parse(type_text).map_err(anyhow::Error::msg)?;
    let hub = fleet.hub().await?;
    let (_, mut targets) = fleet.targets(&hub).await?;
    if let Some(on) = on {
        targets.retain(|t| t.name == on || t.key == on);
        if targets.is_empty() {
            bail!(
                "--cluster {on}: no such cluster among the selected ClusterProfiles (see `mk8 clusters`)"
            );
        }
    }
    let servers = servers(&targets);
    let cache = discovery_cache();
    let outcomes = fleet
        .fan_out(targets, |client, cluster| {
            let (cache, type_name, namespace) =
                (cache.clone(), type_name.clone(), namespace.clone());
            let server = servers.get(&cluster).cloned().unwrap_or_default();
            let name = name.to_string();
            async move {
                let api_type = cache.resolve(&client, &server, &type_name).await?;
                let object = read::object(&client, &api_type, namespace.as_deref(), &name).await?;
                Ok(object.map(|object| Found {
                    cluster,
                    api_type,
                    object,
                    client,
                }))
            }
        })
        .await;
    report(&outcomes, fleet.strict)?;
    let found: Vec<Found> = outcomes
        .into_iter()
        .filter_map(|o| o.value.flatten())
        .collect();
    if found.is_empty() {
        bail!(
            "{type_text} {name:?} not found{} on any cluster that answered",
            namespace
                .map(|n| format!(" in namespace {n}"))
                .unwrap_or_default()
        );
    }
    Ok(found)
}

fn ambiguous(found: &[Found], what: &str) -> anyhow::Error {
    let clusters: Vec<&str> = found.iter().map(|f| f.cluster.as_str()).collect();
    anyhow::anyhow!(
        "{what} exists on {} clusters ({}): choose one with --cluster NAME, or show all with --all-clusters",
        clusters.len(),
        clusters.join(", ")
    )
}

/// Run `mk8 describe`.
pub async fn describe(args: DescribeArgs) -> anyhow::Result<()> {
    let found = find(
        &args.fleet,
        &args.type_name,
        &args.name,
        args.scope.namespace(),
        args.on.as_deref(),
    )
    .await?;
    if found.len() > 1 && !args.all_clusters {
        return Err(ambiguous(
            &found,
            &format!("{} {:?}", args.type_name, args.name),
        ));
    }
    let mut out = String::new();
    for f in &found {
        out.push_str(&describe_text(f).await);
    }
    print!("{out}");
    Ok(())
}

async fn describe_text(f: &Found) -> String {
    let meta = &f.object["metadata"];
    let pairs = |v: &Value| -> String {
        match v.as_object() {
            Some(m) if !m.is_empty() => m
                .iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join("\n             "),
            _ => "<none>".into(),
        }
    };
    let mut out = format!(
        "Cluster:     {}\nName:        {}\n",
        f.cluster,
        meta["name"].as_str().unwrap_or_default()
    );
    if let Some(ns) = meta["namespace"].as_str() {
        out.push_str(&format!("Namespace:   {ns}\n"));
    }
    out.push_str(&format!(
        "Kind:        {}\nLabels:      {}\nAnnotations: {}\nCreated:     {}\n",
        f.api_type.display(),
        pairs(&meta["labels"]),
        pairs(&meta["annotations"]),
        meta["creationTimestamp"].as_str().unwrap_or("<unknown>")
    ));
    for section in ["spec", "status"] {
        if let Some(v) = f.object.get(section).filter(|v| !v.is_null()) {
            let yaml = serde_yaml::to_string(v).unwrap_or_default();
            out.push_str(&format!(
                "{}{}:\n",
                &section[..1].to_uppercase(),
                &section[1..]
            ));
            for line in yaml.lines() {
                out.push_str(&format!("  {line}\n"));
            }
        }
    }
    out.push_str("Events:");
    let events = events_of(f).await;
    if events.is_empty() {
        out.push_str("      <none>\n");
    } else {
        out.push('\n');
        let table: Vec<[String; 4]> = events;
        let header = [
            "TYPE".to_string(),
            "REASON".into(),
            "AGE".into(),
            "MESSAGE".into(),
        ];
        let all: Vec<&[String; 4]> = std::iter::once(&header).chain(table.iter()).collect();
        let widths: Vec<usize> = (0..3)
            .map(|c| all.iter().map(|r| r[c].len()).max().unwrap_or(0))
            .collect();
        for row in all {
            out.push_str(&format!(
                "  {:w0$}   {:w1$}   {:w2$}   {}\n",
                row[0],
                row[1],
                row[2],
                row[3],
                w0 = widths[0],
                w1 = widths[1],
                w2 = widths[2]
            ));
        }
    }
    out.push('\n');
    out
}

async fn events_of(f: &Found) -> Vec<[String; 4]> {
    let meta = &f.object["metadata"];
    let (Some(name), Some(uid)) = (meta["name"].as_str(), meta["uid"].as_str()) else {
        return Vec::new();
    };
    let api: Api<k8s_openapi::api::core::v1::Event> = match meta["namespace"].as_str() {
        Some(ns) => Api::namespaced(f.client.clone(), ns),
        None => Api::default_namespaced(f.client.clone()),
    };
    let params = kube::api::ListParams::default().fields(&format!("involvedObject.name={name}"));
    let Ok(list) = api.list(&params).await else {
        return Vec::new();
    };
    let mut events: Vec<_> = list
        .items
        .into_iter()
        .filter(|e| e.involved_object.uid.as_deref().is_none_or(|u| u == uid))
        .collect();
    events.sort_by_key(|e| e.last_timestamp.clone().map(|t| t.0));
    events
        .into_iter()
        .map(|e| {
            let at = e
                .last_timestamp
                .as_ref()
                .map(|t| t.0.to_string())
                .or_else(|| e.event_time.as_ref().map(|t| t.0.to_string()));
            [
                e.type_.unwrap_or_default(),
                e.reason.unwrap_or_default(),
                crate::apiserver::human_age(at.as_deref()),
                e.message.unwrap_or_default(),
            ]
        })
        .collect()
}

/// Arguments of `mk8 logs`.
#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Pod name (or `pod/NAME`).
    pub pod: String,
    /// Container, when the pod has several.
    #[arg(short, long)]
    pub container: Option<String>,
    /// Keep streaming new lines.
    #[arg(short, long)]
    pub follow: bool,
    /// Only the last N lines.
    #[arg(long)]
    pub tail: Option<i64>,
    /// Namespace of the pod (default: default).
    #[arg(short, long)]
    pub namespace: Option<String>,
    /// The cluster to read it on, when several have a pod of that name.
    #[arg(long = "cluster", value_name = "NAME")]
    pub on: Option<String>,
    /// Read it on every cluster that has it, each line prefixed with its cluster.
    #[arg(long)]
    pub all_clusters: bool,
    #[command(flatten)]
    pub fleet: FleetArgs,
}

/// Run `mk8 logs`.
pub async fn logs(args: LogsArgs) -> anyhow::Result<()> {
    let pod = args
        .pod
        .strip_prefix("pod/")
        .or(args.pod.strip_prefix("pods/"))
        .unwrap_or(&args.pod);
    let namespace = args.namespace.clone().unwrap_or_else(|| "default".into());
    let found = find(
        &args.fleet,
        "pods",
        pod,
        Some(namespace.clone()),
        args.on.as_deref(),
    )
    .await?;
    if found.len() > 1 && !args.all_clusters {
        return Err(ambiguous(&found, &format!("pod {pod:?}")));
    }
    let prefix = found.len() > 1;
    let params = LogParams {
        container: args.container.clone(),
        follow: args.follow,
        tail_lines: args.tail,
        ..Default::default()
    };
    let streams = found.into_iter().map(|f| {
        let params = params.clone();
        let namespace = namespace.clone();
        let pod = pod.to_string();
        async move {
            let api: Api<Pod> = Api::namespaced(f.client.clone(), &namespace);
            let stream = api
                .log_stream(&pod, &params)
                .await
                .map_err(|e| anyhow::anyhow!("{}: {}", f.cluster, query::classify(&e).message))?;
            let mut lines = stream.lines();
            while let Some(line) = lines.next().await {
                let line =
                    line.map_err(|e| anyhow::anyhow!("{}: reading the log: {e}", f.cluster))?;
                let mut stdout = std::io::stdout().lock();
                if prefix {
                    writeln!(stdout, "[{}] {line}", f.cluster)?;
                } else {
                    writeln!(stdout, "{line}")?;
                }
            }
            anyhow::Ok(())
        }
    });
    let results = futures::future::join_all(streams).await;
    let errors: Vec<String> = results
        .into_iter()
        .filter_map(|r| r.err())
        .map(|e| format!("{e:#}"))
        .collect();
    if !errors.is_empty() {
        bail!("{}", errors.join("; "));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_are_parsed_as_kubectl_takes_them() {
        let (t, names) = parse_resource(&["deploy.apps/web".into()]).unwrap();
        assert_eq!(
            (t.name.as_str(), t.group.as_deref()),
            ("deploy", Some("apps"))
        );
        assert_eq!(names, ["web"]);
        let (t, names) = parse_resource(&["po".into(), "a".into(), "b".into()]).unwrap();
        assert_eq!(t.name, "po");
        assert_eq!(names, ["a", "b"]);
        assert!(parse_resource(&["po/a".into(), "svc/b".into()]).is_err());
    }
}
