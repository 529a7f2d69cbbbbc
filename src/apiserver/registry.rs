//! What the server serves: resource definitions (built-in and from CRDs) and their lookup by URL.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use serde_json::Value;

use super::schema::CrdSchema;
use super::store::GroupResource;

/// Built-in kinds that need behaviour beyond generic storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Builtin {
    /// core/v1 Namespace.
    Namespace,
    /// core/v1 Secret (`stringData` folding, `type` default).
    Secret,
    /// core/v1 Pod (eviction subresource).
    Pod,
    /// apiextensions.k8s.io/v1 CustomResourceDefinition.
    Crd,
    /// Stored as is.
    Plain,
    /// Defined by a CustomResourceDefinition; stored as is.
    Custom,
}

/// An `additionalPrinterColumns` entry (or a built-in column).
#[derive(Debug, Clone, PartialEq)]
pub struct PrinterColumn {
    /// Column header.
    pub name: String,
    /// OpenAPI type: string, integer, number, boolean, date.
    pub type_: String,
    /// JSONPath evaluated against the object.
    pub json_path: String,
    /// Column description.
    pub description: String,
    /// 0 = shown by default; higher only with `-o wide`.
    pub priority: i64,
    /// OpenAPI format hint.
    pub format: String,
}

/// One served version of a resource.
#[derive(Debug, Clone)]
pub struct VersionDef {
    /// `v1`, `v1alpha1`.
    pub name: String,
    /// Whether this version is the storage version.
    pub storage: bool,
    /// Structural schema (CRDs only).
    pub schema: Option<Arc<CrdSchema>>,
    /// Whether `/status` is a subresource.
    pub status_subresource: bool,
    /// Table columns besides Name (and Age, which CRDs get when no date column is declared).
    pub columns: Vec<PrinterColumn>,
}

/// A resource: built-in or defined by a CRD.
#[derive(Debug, Clone)]
pub struct ResourceDef {
    /// API group ("" = core).
    pub group: String,
    /// Plural name used in URLs.
    pub plural: String,
    /// Singular name.
    pub singular: String,
    /// Kind.
    pub kind: String,
    /// Kind of the list.
    pub list_kind: String,
    /// Namespaced or cluster-scoped.
    pub namespaced: bool,
    /// `kubectl` short names.
    pub short_names: Vec<String>,
    /// Categories (`kubectl get <category>`).
    pub categories: Vec<String>,
    /// Served versions.
    pub versions: Vec<VersionDef>,
    /// Special behaviour.
    pub builtin: Builtin,
    /// Extra subresources besides status (`eviction`).
    pub extra_subresources: Vec<String>,
    /// Field selectors accepted besides metadata.name/namespace.
    pub selectable_fields: Vec<String>,
}

impl ResourceDef {
    /// Storage key.
    pub fn group_resource(&self) -> GroupResource {
        (self.group.clone(), self.plural.clone())
    }

    /// A served version by name.
    pub fn version(&self, name: &str) -> Option<&VersionDef> {
        self.versions.iter().find(|v| v.name == name)
    }

    /// `group/version` or `version` for core.
    pub fn api_version(&self, version: &str) -> String {
        if self.group.is_empty() {
            version.to_string()
        } else {
            format!("{}/{}", self.group, version)
        }
    }

    /// The storage version's name.
    pub fn storage_version(&self) -> &str {
        self.versions
            .iter()
            .find(|v| v.storage)
            .or(self.versions.first())
            .map(|v| v.name.as_str())
            .unwrap_or("v1")
    }

    /// Whether this is a custom resource.
    pub fn is_custom(&self) -> bool {
        self.versions.iter().any(|v| v.schema.is_some())
    }
}

/// All served resources; CRD writes add and remove entries.
#[derive(Default)]
pub struct Registry {
    defs: RwLock<HashMap<GroupResource, Arc<ResourceDef>>>,
}

impl Registry {
    /// Add or replace a definition.
    pub fn insert(&self, def: ResourceDef) {
        self.defs
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(def.group_resource(), Arc::new(def));
    }

    /// Remove a definition.
    pub fn remove(&self, gr: &GroupResource) -> Option<Arc<ResourceDef>> {
        self.defs
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(gr)
    }

    /// Definition by group and plural.
    pub fn get(&self, group: &str, plural: &str) -> Option<Arc<ResourceDef>> {
        self.defs
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&(group.to_string(), plural.to_string()))
            .cloned()
    }

    /// Definition serving `group/version` with this plural.
    pub fn lookup(&self, group: &str, version: &str, plural: &str) -> Option<Arc<ResourceDef>> {
        self.get(group, plural)
            .filter(|d| d.version(version).is_some())
    }

    /// Definition by `apiVersion` and kind.
    pub fn by_kind(&self, api_version: &str, kind: &str) -> Option<(Arc<ResourceDef>, String)> {
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        self.all()
            .into_iter()
            .find(|d| d.group == group && d.kind == kind && d.version(version).is_some())
            .map(|d| (d, version.to_string()))
    }

    /// Every definition, sorted by group then plural for stable discovery output.
    pub fn all(&self) -> Vec<Arc<ResourceDef>> {
        let mut v: Vec<_> = self
            .defs
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        v.sort_by(|a, b| (&a.group, &a.plural).cmp(&(&b.group, &b.plural)));
        v
    }

    /// Groups with their versions (preferred = first, i.e. the storage version first).
    pub fn groups(&self) -> Vec<(String, Vec<String>)> {
        let mut groups: Vec<(String, Vec<String>)> = Vec::new();
        for def in self.all() {
            let mut versions: Vec<String> = def.versions.iter().map(|v| v.name.clone()).collect();
            versions.sort_by_key(|v| std::cmp::Reverse(version_priority(v)));
            match groups.iter_mut().find(|(g, _)| *g == def.group) {
                Some((_, vs)) => {
                    for v in versions {
                        if !vs.contains(&v) {
                            vs.push(v);
                        }
                    }
                    vs.sort_by_key(|v| std::cmp::Reverse(version_priority(v)));
                }
                None => groups.push((def.group.clone(), versions)),
            }
        }
        groups
    }
}

/// Kubernetes version ordering: GA > beta > alpha, higher numbers first.
pub fn version_priority(v: &str) -> (u8, u32, u32) {
    let rest = v.strip_prefix('v').unwrap_or(v);
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let major = digits.parse().unwrap_or(0);
    let tail = &rest[digits.len()..];
    let (stage, n) = if let Some(n) = tail.strip_prefix("beta") {
        (2, n)
    } else if let Some(n) = tail.strip_prefix("alpha") {
        (1, n)
    } else if tail.is_empty() {
        (3, "")
    } else {
        (0, "")
    };
    (stage, major, n.parse().unwrap_or(0))
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

fn str_of<'a>(v: &'a Value, ptr: &str) -> &'a str {
    v.pointer(ptr).and_then(Value::as_str).unwrap_or_default()
}

/// Build the definition a CRD object describes.
pub fn def_from_crd(crd: &Value) -> Result<ResourceDef, String> {
    let group = str_of(crd, "/spec/group").to_string();
    let plural = str_of(crd, "/spec/names/plural").to_string();
    let kind = str_of(crd, "/spec/names/kind").to_string();
    if group.is_empty() || plural.is_empty() || kind.is_empty() {
        return Err("spec.group, spec.names.plural and spec.names.kind are required".into());
    }
    let mut singular = str_of(crd, "/spec/names/singular").to_string();
    if singular.is_empty() {
        singular = kind.to_lowercase();
    }
    let mut list_kind = str_of(crd, "/spec/names/listKind").to_string();
    if list_kind.is_empty() {
        list_kind = format!("{kind}List");
    }
    let mut versions = Vec::new();
    for v in crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if v.get("served").and_then(Value::as_bool) == Some(false) {
            continue;
        }
        let schema = v
            .pointer("/schema/openAPIV3Schema")
            .cloned()
            .unwrap_or_else(
                || serde_json::json!({"type":"object","x-kubernetes-preserve-unknown-fields":true}),
            );
        let columns = v
            .get("additionalPrinterColumns")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|c| PrinterColumn {
                name: str_of(c, "/name").to_string(),
                type_: str_of(c, "/type").to_string(),
                json_path: str_of(c, "/jsonPath").to_string(),
                description: str_of(c, "/description").to_string(),
                priority: c.get("priority").and_then(Value::as_i64).unwrap_or(0),
                format: str_of(c, "/format").to_string(),
            })
            .collect();
        versions.push(VersionDef {
            name: str_of(v, "/name").to_string(),
            storage: v.get("storage").and_then(Value::as_bool).unwrap_or(false),
            schema: Some(Arc::new(CrdSchema::new(schema))),
            status_subresource: v.pointer("/subresources/status").is_some(),
            columns,
        });
    }
    if versions.is_empty() {
        return Err("spec.versions must contain a served version".into());
    }
    Ok(ResourceDef {
        group,
        plural,
        singular,
        kind,
        list_kind,
        namespaced: str_of(crd, "/spec/scope") != "Cluster",
        short_names: strings(crd.pointer("/spec/names/shortNames")),
        categories: strings(crd.pointer("/spec/names/categories")),
        versions,
        builtin: Builtin::Custom,
        extra_subresources: Vec::new(),
        selectable_fields: crd
            .pointer("/spec/versions/0/selectableFields")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|f| {
                f.get("jsonPath")
                    .and_then(Value::as_str)
                    .map(|p| p.trim_start_matches('.').to_string())
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_sort_like_kubernetes() {
        let mut v = vec!["v1alpha1", "v1", "v2beta1", "v1beta2", "v2"];
        v.sort_by_key(|v| std::cmp::Reverse(version_priority(v)));
        assert_eq!(v, vec!["v2", "v1", "v2beta1", "v1beta2", "v1alpha1"]);
    }
}
