//! What a read asks of one cluster: the resource type resolved through that cluster's discovery
//! (plural, singular, kind, short names, `resource.group`, `resource.version.group`; CRDs too),
//! then a server-side Table (kubectl's columns) or the objects themselves, page by page.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use kube::Client;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::query::QueryError;

/// One resource type a cluster serves.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct ApiType {
    /// API group; empty for core.
    pub group: String,
    /// Version served (the group's preferred one).
    pub version: String,
    /// Plural resource name.
    pub plural: String,
    /// Singular name.
    #[serde(default)]
    pub singular: String,
    /// Kind.
    pub kind: String,
    /// Short names (`po`, `deploy`).
    #[serde(default)]
    pub short_names: Vec<String>,
    /// Namespaced or cluster-scoped.
    pub namespaced: bool,
    /// Verbs allowed.
    #[serde(default)]
    pub verbs: Vec<String>,
}

impl ApiType {
    /// `/api/v1` or `/apis/group/version`.
    pub fn base(&self) -> String {
        if self.group.is_empty() {
            format!("/api/{}", self.version)
        } else {
            format!("/apis/{}/{}", self.group, self.version)
        }
    }

    /// The collection path, in `namespace` when given and namespaced.
    pub fn path(&self, namespace: Option<&str>) -> String {
        match namespace.filter(|_| self.namespaced) {
            Some(ns) => format!("{}/namespaces/{ns}/{}", self.base(), self.plural),
            None => format!("{}/{}", self.base(), self.plural),
        }
    }

    /// How kubectl names objects of this type: `pod`, `deployment.apps`.
    pub fn display(&self) -> String {
        let kind = self.kind.to_lowercase();
        if self.group.is_empty() {
            kind
        } else {
            format!("{kind}.{}", self.group)
        }
    }
}

/// A type as typed on the command line: `pods`, `po`, `deploy.apps`, `deployments.v1.apps`.
#[derive(Clone, Debug, PartialEq)]
pub struct TypeName {
    /// Resource, singular, kind or short name, lower case.
    pub name: String,
    /// Group when given.
    pub group: Option<String>,
    /// Version when given.
    pub version: Option<String>,
}

impl TypeName {
    /// Parse as kubectl does: `resource[.version].group`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.is_empty() || text.contains('/') || text.contains(char::is_whitespace) {
            return Err(format!(
                "{text:?} is not a resource type: use a name such as pods, deploy.apps or deployments.v1.apps"
            ));
        }
        let mut parts = text.splitn(2, '.');
        let name = parts.next().unwrap_or_default().to_lowercase();
        let rest = parts.next();
        let (version, group) = match rest {
            None => (None, None),
            Some(rest) => {
                let mut vg = rest.splitn(2, '.');
                let first = vg.next().unwrap_or_default();
                match vg.next() {
                    Some(group) if is_version(first) => {
                        (Some(first.to_string()), Some(group.to_string()))
                    }
                    _ => (None, Some(rest.to_string())),
                }
            }
        };
        Ok(TypeName {
            name,
            group,
            version,
        })
    }

    fn matches(&self, t: &ApiType) -> bool {
        let named = t.plural == self.name
            || t.singular == self.name
            || t.kind.to_lowercase() == self.name
            || t.short_names.contains(&self.name);
        named
            && self.group.as_ref().is_none_or(|g| *g == t.group)
            && self.version.as_ref().is_none_or(|v| *v == t.version)
    }
}

fn is_version(s: &str) -> bool {
    let Some(rest) = s.strip_prefix('v') else {
        return false;
    };
    rest.chars().next().is_some_and(|c| c.is_ascii_digit())
        && rest.chars().all(|c| c.is_ascii_alphanumeric())
}

/// Pick the type `name` means among `types` (core first, then in discovery order).
pub fn resolve<'a>(types: &'a [ApiType], name: &TypeName) -> Option<&'a ApiType> {
    types.iter().find(|t| name.matches(t))
}

async fn get_json(client: &Client, path: &str) -> Result<Value, kube::Error> {
    let request = http::Request::get(path)
        .body(Vec::new())
        .map_err(kube::Error::HttpError)?;
    client.request::<Value>(request).await
}

fn entries(doc: &Value, group: &str, version: &str) -> Vec<ApiType> {
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_str().map(str::to_string))
            .collect()
    };
    doc["resources"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["name"].as_str().is_some_and(|n| !n.contains('/')))
        .map(|r| ApiType {
            group: group.to_string(),
            version: version.to_string(),
            plural: r["name"].as_str().unwrap_or_default().to_string(),
            singular: r["singularName"].as_str().unwrap_or_default().to_string(),
            kind: r["kind"].as_str().unwrap_or_default().to_string(),
            short_names: strings(&r["shortNames"]),
            namespaced: r["namespaced"].as_bool().unwrap_or(false),
            verbs: strings(&r["verbs"]),
        })
        .collect()
}

/// The core group's types (one request).
pub async fn core_types(client: &Client) -> Result<Vec<ApiType>, kube::Error> {
    Ok(entries(&get_json(client, "/api/v1").await?, "", "v1"))
}

/// Every group's preferred version (the groups read concurrently).
pub async fn group_types(client: &Client) -> Result<Vec<ApiType>, kube::Error> {
    let groups = get_json(client, "/apis").await?;
    let wanted: Vec<(String, String)> = groups["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|g| {
            let name = g["name"].as_str()?;
            let version = g["preferredVersion"]["version"]
                .as_str()
                .or_else(|| g["versions"][0]["version"].as_str())?;
            Some((name.to_string(), version.to_string()))
        })
        .collect();
    let docs = futures::future::join_all(wanted.iter().map(|(g, v)| {
        let path = format!("/apis/{g}/{v}");
        async move { get_json(client, &path).await }
    }))
    .await;
    let mut out = Vec::new();
    for ((group, version), doc) in wanted.iter().zip(docs) {
        // A group whose aggregated server is down does not hide the others (kubectl warns too).
        if let Ok(doc) = doc {
            out.extend(entries(&doc, group, version));
        }
    }
    Ok(out)
}

/// When a server's types were read, and what they are.
type Cached = (SystemTime, Arc<Vec<ApiType>>);

/// Discovery results by API server, in memory and (for the CLI) on disk like kubectl's cache.
#[derive(Clone, Default)]
pub struct DiscoveryCache {
    dir: Option<PathBuf>,
    ttl: Duration,
    memory: Arc<Mutex<HashMap<String, Cached>>>,
}

impl DiscoveryCache {
    /// A cache kept only in memory for `ttl`.
    pub fn in_memory(ttl: Duration) -> Self {
        DiscoveryCache {
            dir: None,
            ttl,
            memory: Arc::default(),
        }
    }

    /// A cache also kept in `dir` (one file per server) for `ttl`.
    pub fn on_disk(dir: PathBuf, ttl: Duration) -> Self {
        DiscoveryCache {
            dir: Some(dir),
            ttl,
            memory: Arc::default(),
        }
    }

    fn file(&self, server: &str) -> Option<PathBuf> {
        let name: String = server
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        self.dir.as_ref().map(|d| d.join(format!("{name}.json")))
    }

    fn cached(&self, server: &str) -> Option<Arc<Vec<ApiType>>> {
        let fresh = |at: SystemTime| at.elapsed().is_ok_and(|age| age < self.ttl);
        if let Some((at, types)) = self.memory.lock().ok()?.get(server)
            && fresh(*at)
        {
            return Some(types.clone());
        }
        let file = self.file(server)?;
        let modified = std::fs::metadata(&file).ok()?.modified().ok()?;
        if !fresh(modified) {
            return None;
        }
        let types: Vec<ApiType> = serde_json::from_slice(&std::fs::read(&file).ok()?).ok()?;
        let types = Arc::new(types);
        self.memory
            .lock()
            .ok()?
            .insert(server.to_string(), (modified, types.clone()));
        Some(types)
    }

    fn store(&self, server: &str, types: Vec<ApiType>) -> Arc<Vec<ApiType>> {
        let types = Arc::new(types);
        if let Ok(mut memory) = self.memory.lock() {
            memory.insert(server.to_string(), (SystemTime::now(), types.clone()));
        }
        if let (Some(file), Ok(json)) = (self.file(server), serde_json::to_vec(types.as_ref())) {
            // A cache that cannot be written only costs the next run a discovery.
            let _ = crate::files::write_private(&file, &json);
        }
        types
    }

    /// Resolve `name` on the cluster at `server`: from the cache, else (or when the cached
    /// list does not know it) from the cluster's discovery — the core group first, the other
    /// groups only when core does not have it.
    pub async fn resolve(
        &self,
        client: &Client,
        server: &str,
        name: &TypeName,
    ) -> Result<ApiType, QueryError> {
        if let Some(types) = self.cached(server)
            && let Some(t) = resolve(&types, name)
        {
            return Ok(t.clone());
        }
        let mut types = core_types(client).await?;
        if name.group.as_deref().is_none_or(str::is_empty)
            && let Some(t) = resolve(&types, name)
        {
            let t = t.clone();
            // Only core is known; a later miss in the cache reads every group.
            self.store(server, types);
            return Ok(t);
        }
        types.extend(group_types(client).await?);
        let types = self.store(server, types);
        resolve(&types, name).cloned().ok_or_else(|| {
            QueryError::failed(format!(
                "the server doesn't have a resource type \"{}\"",
                display(name)
            ))
        })
    }
}

fn display(name: &TypeName) -> String {
    match (&name.version, &name.group) {
        (Some(v), Some(g)) => format!("{}.{v}.{g}", name.name),
        (None, Some(g)) => format!("{}.{g}", name.name),
        _ => name.name.clone(),
    }
}

/// Query parameters of a list.
#[derive(Clone, Debug, Default)]
pub struct ListQuery {
    /// Namespace; None: all namespaces (or cluster-scoped).
    pub namespace: Option<String>,
    /// Label selector.
    pub labels: String,
    /// Field selector.
    pub fields: String,
    /// Objects per page.
    pub chunk: u32,
}

fn list_path(t: &ApiType, q: &ListQuery, extra: &str, continue_token: Option<&str>) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    query.append_pair("limit", &q.chunk.max(1).to_string());
    if !q.labels.is_empty() {
        query.append_pair("labelSelector", &q.labels);
    }
    if !q.fields.is_empty() {
        query.append_pair("fieldSelector", &q.fields);
    }
    if let Some(token) = continue_token {
        query.append_pair("continue", token);
    }
    if !extra.is_empty() {
        query.append_pair("includeObject", extra);
    }
    format!("{}?{}", t.path(q.namespace.as_deref()), query.finish())
}

/// kubectl's Accept header for tables.
pub const TABLE_ACCEPT: &str = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";

/// One page of a server-side Table as read: the cells of each row and, of its object, only the
/// name and namespace (the rest of the metadata — managed fields, annotations — is skipped while
/// parsing instead of being built and dropped).
#[derive(Deserialize)]
struct TablePage {
    #[serde(default)]
    kind: String,
    #[serde(default, rename = "apiVersion")]
    api_version: Value,
    #[serde(default)]
    metadata: PageMeta,
    #[serde(default, rename = "columnDefinitions")]
    columns: Vec<Value>,
    #[serde(default)]
    rows: Vec<PageRow>,
}

#[derive(Default, Deserialize)]
struct PageMeta {
    #[serde(default, rename = "resourceVersion")]
    resource_version: Value,
    #[serde(default, rename = "continue")]
    continue_token: Option<String>,
}

#[derive(Deserialize)]
struct PageRow {
    #[serde(default)]
    cells: Vec<Value>,
    #[serde(default)]
    object: RowObject,
}

#[derive(Default, Deserialize)]
struct RowObject {
    #[serde(default)]
    metadata: RowMeta,
}

#[derive(Default, Deserialize)]
struct RowMeta {
    #[serde(default)]
    name: Value,
    #[serde(default)]
    namespace: Value,
}

/// The server-side Table of a list, every page read; at most `keep` rows are kept (the rest
/// only counted), so a huge cluster costs memory for what is shown only. Of each row's object
/// only what is shown (name, namespace) is kept.
pub async fn table(
    client: &Client,
    t: &ApiType,
    q: &ListQuery,
    keep: Option<usize>,
) -> Result<TableRead, QueryError> {
    let mut out: Option<Value> = None;
    let mut total = 0usize;
    let mut token: Option<String> = None;
    loop {
        let request = http::Request::get(list_path(t, q, "Metadata", token.as_deref()))
            .header(http::header::ACCEPT, TABLE_ACCEPT)
            .body(Vec::new())
            .map_err(|e| QueryError::failed(e.to_string()))?;
        let page: TablePage = client.request(request).await?;
        if page.kind != "Table" {
            return Err(QueryError::failed(format!(
                "the server answered a {} instead of a Table",
                if page.kind.is_empty() {
                    "document"
                } else {
                    &page.kind
                }
            )));
        }
        token = page.metadata.continue_token.filter(|c| !c.is_empty());
        let mut rows = page.rows;
        total += rows.len();
        let acc = out.get_or_insert_with(|| {
            serde_json::json!({
                "kind": "Table",
                "apiVersion": page.api_version,
                "metadata": {"resourceVersion": page.metadata.resource_version},
                "columnDefinitions": page.columns,
                "rows": [],
            })
        });
        if let Some(all) = acc["rows"].as_array_mut() {
            let room = keep.map_or(usize::MAX, |k| k.saturating_sub(all.len()));
            rows.truncate(room);
            all.extend(rows.into_iter().map(|row| {
                let meta = row.object.metadata;
                serde_json::json!({
                    "cells": row.cells,
                    "object": {"metadata": {"name": meta.name, "namespace": meta.namespace}},
                })
            }));
        }
        if token.is_none() {
            acc["metadata"]["continue"] = Value::Null;
            break;
        }
    }
    Ok(TableRead {
        table: out.unwrap_or_default(),
        total,
    })
}

/// A Table read from one cluster.
#[derive(Clone, Debug, Default)]
pub struct TableRead {
    /// The Table, with the rows kept.
    pub table: Value,
    /// Rows the cluster has (also those not kept).
    pub total: usize,
}

/// The objects of a list, every page.
pub async fn objects(
    client: &Client,
    t: &ApiType,
    q: &ListQuery,
) -> Result<Vec<Value>, QueryError> {
    let mut items = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let path = list_path(t, q, "", token.as_deref());
        let mut page = get_json(client, &path).await?;
        if let Some(list) = page["items"].as_array_mut() {
            for mut item in list.drain(..) {
                // Lists leave out apiVersion and kind of their items; a List of mixed clusters
                // needs them.
                item["apiVersion"] = Value::from(if t.group.is_empty() {
                    t.version.clone()
                } else {
                    format!("{}/{}", t.group, t.version)
                });
                item["kind"] = Value::from(t.kind.clone());
                items.push(item);
            }
        }
        token = page["metadata"]["continue"]
            .as_str()
            .filter(|c| !c.is_empty())
            .map(str::to_string);
        if token.is_none() {
            return Ok(items);
        }
    }
}

/// One object, or None when the cluster has none of that name.
pub async fn object(
    client: &Client,
    t: &ApiType,
    namespace: Option<&str>,
    name: &str,
) -> Result<Option<Value>, QueryError> {
    let path = format!("{}/{name}", t.path(namespace));
    match get_json(client, &path).await {
        Ok(v) => Ok(Some(v)),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// One object as a Table (one row), or None when the cluster has none of that name.
pub async fn object_table(
    client: &Client,
    t: &ApiType,
    namespace: Option<&str>,
    name: &str,
) -> Result<Option<Value>, QueryError> {
    let path = format!("{}/{name}?includeObject=Metadata", t.path(namespace));
    let request = http::Request::get(path)
        .header(http::header::ACCEPT, TABLE_ACCEPT)
        .body(Vec::new())
        .map_err(|e| QueryError::failed(e.to_string()))?;
    match client.request::<Value>(request).await {
        Ok(v) if v["kind"] == "Table" => Ok(Some(v)),
        Ok(v) => Err(QueryError::failed(format!(
            "the server answered a {} instead of a Table",
            v["kind"].as_str().unwrap_or("document")
        ))),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(None),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn types() -> Vec<ApiType> {
        let t = |group: &str, plural: &str, kind: &str, short: &[&str], namespaced| ApiType {
            group: group.into(),
            version: "v1".into(),
            plural: plural.into(),
            singular: kind.to_lowercase(),
            kind: kind.into(),
            short_names: short.iter().map(|s| s.to_string()).collect(),
            namespaced,
            verbs: vec!["list".into()],
        };
        vec![
            t("", "pods", "Pod", &["po"], true),
            t("", "nodes", "Node", &["no"], false),
            t("apps", "deployments", "Deployment", &["deploy"], true),
            t("mk8.io", "clusters", "Cluster", &[], true),
            t("cluster.x-k8s.io", "clusters", "Cluster", &[], true),
        ]
    }

    fn pick(text: &str) -> Option<String> {
        let types = types();
        resolve(&types, &TypeName::parse(text).unwrap())
            .map(|t| format!("{}/{}", t.group, t.plural))
    }

    #[test]
    fn types_resolve_as_kubectl_resolves_them() {
        assert_eq!(pick("pods").as_deref(), Some("/pods"));
        assert_eq!(pick("po").as_deref(), Some("/pods"));
        assert_eq!(pick("Pod").as_deref(), Some("/pods"));
        assert_eq!(pick("deploy.apps").as_deref(), Some("apps/deployments"));
        assert_eq!(
            pick("deployments.v1.apps").as_deref(),
            Some("apps/deployments")
        );
        assert_eq!(pick("deployments.v2.apps"), None);
        assert_eq!(pick("clusters").as_deref(), Some("mk8.io/clusters"));
        assert_eq!(
            pick("clusters.cluster.x-k8s.io").as_deref(),
            Some("cluster.x-k8s.io/clusters")
        );
        assert_eq!(pick("deploy.extensions"), None);
        assert!(TypeName::parse("pods/web").is_err());
    }

    #[test]
    fn paths_follow_the_scope() {
        let types = types();
        let q = ListQuery {
            namespace: Some("demo".into()),
            labels: "app=web".into(),
            chunk: 500,
            ..Default::default()
        };
        assert_eq!(
            list_path(&types[0], &q, "Metadata", Some("c1")),
            "/api/v1/namespaces/demo/pods?limit=500&labelSelector=app%3Dweb&continue=c1&includeObject=Metadata"
        );
        assert_eq!(
            list_path(&types[1], &q, "", None),
            "/api/v1/nodes?limit=500&labelSelector=app%3Dweb"
        );
        assert_eq!(types[2].display(), "deployment.apps");
        assert_eq!(types[0].display(), "pod");
    }
}
