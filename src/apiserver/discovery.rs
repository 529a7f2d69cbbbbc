//! Discovery documents: `/version`, `/api`, `/api/v1`, `/apis`, `/apis/<g>`, `/apis/<g>/<v>`.
//! Served as plain JSON (`application/json`): kubectl asks for aggregated discovery first and falls
//! back to these legacy documents when the response is not an `APIGroupDiscoveryList`.

use serde_json::{Value, json};

use super::registry::{Builtin, Registry, ResourceDef};
use super::status::{ApiError, ApiResult};

/// The Kubernetes version the server reports (`/version`'s `gitVersion`).
pub const KUBERNETES_VERSION: &str = "v1.33.0-mk8-dev";

/// `/version`, reporting Kubernetes 1.33.
pub fn version() -> Value {
    json!({
        "major": "1",
        "minor": "33",
        "gitVersion": KUBERNETES_VERSION,
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2025-04-23T00:00:00Z",
        "goVersion": "go1.24.2",
        "compiler": "gc",
        "platform": "linux/amd64",
        "emulationMajor": "1",
        "emulationMinor": "33",
        "minCompatibilityMajor": "1",
        "minCompatibilityMinor": "32",
    })
}

/// `/api`.
pub fn core_versions(server_address: &str) -> Value {
    json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]})
}

fn group_json(group: &str, versions: &[String]) -> Value {
    let vs: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v}))
        .collect();
    json!({"name": group, "versions": vs, "preferredVersion": vs.first().cloned().unwrap_or(Value::Null)})
}

/// `/apis`.
pub fn groups(registry: &Registry) -> Value {
    let groups: Vec<Value> = registry
        .groups()
        .iter()
        .filter(|(g, _)| !g.is_empty())
        .map(|(g, vs)| group_json(g, vs))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `/apis/<group>`.
pub fn group(registry: &Registry, name: &str) -> ApiResult<Value> {
    let groups = registry.groups();
    let (g, vs) = groups
        .iter()
        .find(|(g, _)| g == name && !g.is_empty())
        .ok_or(ApiError::UnknownPath)?;
    let mut doc = group_json(g, vs);
    doc["kind"] = json!("APIGroup");
    doc["apiVersion"] = json!("v1");
    Ok(doc)
}

/// Every resource supports every verb here; built-in resources list them sorted, custom resources
/// in the order apiextensions-apiserver publishes (kubectl api-resources shows that order).
const CUSTOM_RESOURCE_VERBS: &[&str] = &[
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "create",
    "update",
    "watch",
];
const VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

fn resource_entries(def: &ResourceDef, version: &str) -> Vec<Value> {
    let mut out = vec![json!({
        "name": def.plural,
        "singularName": def.singular,
        "namespaced": def.namespaced,
        "kind": def.kind,
        "verbs": if def.builtin == Builtin::Custom { CUSTOM_RESOURCE_VERBS } else { VERBS },
        "shortNames": def.short_names,
        "categories": def.categories,
        "storageVersionHash": "",
    })];
    if def.version(version).is_some_and(|v| v.status_subresource) {
        out.push(json!({"name": format!("{}/status", def.plural), "singularName": "", "namespaced": def.namespaced, "kind": def.kind, "verbs": ["get", "patch", "update"]}));
    }
    for sub in &def.extra_subresources {
        let mut entry = if sub == "eviction" {
            json!({"group": "policy", "version": "v1", "kind": "Eviction", "verbs": ["create"]})
        } else if sub == "log" {
            // Pod logs are text, read with GET (a development-server stand-in, see logs.rs).
            json!({"kind": def.kind, "verbs": ["get"]})
        } else {
            json!({"group": def.group, "version": version, "kind": def.kind, "verbs": ["create"]})
        };
        entry["name"] = json!(format!("{}/{sub}", def.plural));
        entry["singularName"] = json!("");
        entry["namespaced"] = json!(def.namespaced);
        out.push(entry);
    }
    out
}

/// `/api/v1` or `/apis/<group>/<version>`.
pub fn resources(registry: &Registry, group: &str, version: &str) -> ApiResult<Value> {
    let defs: Vec<_> = registry
        .all()
        .into_iter()
        .filter(|d| d.group == group && d.version(version).is_some())
        .collect();
    if defs.is_empty() {
        return Err(ApiError::UnknownPath);
    }
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    let resources: Vec<Value> = defs
        .iter()
        .flat_map(|d| resource_entries(d, version))
        .collect();
    Ok(
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}),
    )
}
