//! OpenAPI v3 documents, enough for kubectl: the PATCH operations advertise `fieldValidation` (so
//! kubectl validates server-side instead of client-side) and the schemas carry
//! `x-kubernetes-group-version-kind` (so `kubectl explain` finds CRD kinds).
//!
//! `/openapi/v2` is deliberately not served: kubectl reads it as protobuf and treats its absence as
//! "use compiled-in knowledge", which is what the built-in kinds need.

use std::hash::{DefaultHasher, Hash, Hasher};

use serde_json::{Map, Value, json};

use super::registry::{Registry, ResourceDef};
use super::status::{ApiError, ApiResult};

const OBJECT_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";

fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

fn schema_id(def: &ResourceDef, version: &str) -> String {
    let reversed: Vec<&str> = def.group.split('.').rev().collect();
    let prefix = if def.group.is_empty() {
        "io.k8s.api.core".to_string()
    } else {
        reversed.join(".")
    };
    format!("{prefix}.{version}.{}", def.kind)
}

fn object_meta_schema() -> Value {
    let s = |d: &str| json!({"type": "string", "description": d});
    json!({
        "type": "object",
        "description": "ObjectMeta is metadata that all persisted resources must have, which includes all objects users must create.",
        "properties": {
            "name": s("Name must be unique within a namespace."),
            "namespace": s("Namespace defines the space within which each name must be unique."),
            "generateName": s("GenerateName is an optional prefix, used by the server, to generate a unique name."),
            "uid": s("UID is the unique in time and space value for this object."),
            "resourceVersion": s("An opaque value that represents the internal version of this object."),
            "creationTimestamp": {"type": "string", "format": "date-time", "description": "CreationTimestamp is a timestamp representing the server time when this object was created."},
            "generation": {"type": "integer", "format": "int64", "description": "A sequence number representing a specific generation of the desired state."},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}, "description": "Map of string keys and values that can be used to organize and categorize objects."},
            "annotations": {"type": "object", "additionalProperties": {"type": "string"}, "description": "Annotations is an unstructured key value map stored with a resource."},
            "finalizers": {"type": "array", "items": {"type": "string"}, "description": "Must be empty before the object is deleted from the registry."},
            "ownerReferences": {"type": "array", "items": {"type": "object"}, "description": "List of objects depended by this object."}
        }
    })
}

fn kind_schema(def: &ResourceDef, version: &str) -> Value {
    let gvk = json!([{"group": def.group, "version": version, "kind": def.kind}]);
    let mut schema = def
        .version(version)
        .and_then(|v| v.schema.as_ref())
        .map(|s| s.raw.clone())
        .unwrap_or_else(|| json!({"type": "object", "description": format!("{} is a built-in kind of the development API server.", def.kind), "x-kubernetes-preserve-unknown-fields": true}));
    if let Some(m) = schema.as_object_mut() {
        let props = m.entry("properties").or_insert_with(|| json!({}));
        props["apiVersion"] = json!({"type": "string", "description": "APIVersion defines the versioned schema of this representation of an object."});
        props["kind"] = json!({"type": "string", "description": "Kind is a string value representing the REST resource this object represents."});
        props["metadata"] = json!({"allOf": [{"$ref": format!("#/components/schemas/{OBJECT_META}")}], "default": {}, "description": "Standard object's metadata."});
        m.insert("x-kubernetes-group-version-kind".into(), gvk);
    }
    schema
}

fn operation(def: &ResourceDef, version: &str, action: &str, id: &str, patch: bool) -> Value {
    let mut op = json!({
        "operationId": format!("{action}{}", def.kind),
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": {"group": def.group, "version": version, "kind": def.kind},
        "parameters": [
            {"name": "dryRun", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
            {"name": "fieldManager", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
            {"name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": true}}
        ],
        "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{id}")}}}}}
    });
    if patch {
        let body = json!({"schema": {"type": "object"}});
        // Strategic merge is not advertised: kubectl then computes built-in patches from its
        // compiled-in types (with the right merge keys) and uses merge patches for CRDs.
        op["requestBody"] = json!({"content": {
            "application/json-patch+json": body,
            "application/merge-patch+json": body,
            "application/apply-patch+yaml": body
        }});
        if let Some(params) = op["parameters"].as_array_mut() {
            params.push(json!({"name": "force", "in": "query", "schema": {"type": "boolean", "uniqueItems": true}}));
        }
    }
    op
}

/// The document of one group-version.
pub fn group_version_doc(registry: &Registry, group: &str, version: &str) -> ApiResult<Value> {
    let defs: Vec<_> = registry
        .all()
        .into_iter()
        .filter(|d| d.group == group && d.version(version).is_some())
        .collect();
    if defs.is_empty() {
        return Err(ApiError::UnknownPath);
    }
    let mut paths = Map::new();
    let mut schemas = Map::new();
    schemas.insert(OBJECT_META.into(), object_meta_schema());
    for def in &defs {
        let id = schema_id(def, version);
        schemas.insert(id.clone(), kind_schema(def, version));
        let base = format!(
            "/{}/{}",
            gv_path(group, version),
            if def.namespaced {
                "namespaces/{namespace}/"
            } else {
                ""
            }
        );
        paths.insert(format!("{base}{}", def.plural), json!({"get": operation(def, version, "list", &id, false), "post": operation(def, version, "post", &id, false)}));
        paths.insert(
            format!("{base}{}/{{name}}", def.plural),
            json!({"get": operation(def, version, "get", &id, false), "put": operation(def, version, "put", &id, false), "patch": operation(def, version, "patch", &id, true), "delete": operation(def, version, "delete", &id, false)}),
        );
        if def.version(version).is_some_and(|v| v.status_subresource) {
            paths.insert(format!("{base}{}/{{name}}/status", def.plural), json!({"get": operation(def, version, "get", &id, false), "put": operation(def, version, "put", &id, false), "patch": operation(def, version, "patch", &id, true)}));
        }
    }
    Ok(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.33.0"},
        "paths": paths,
        "components": {"schemas": schemas}
    }))
}

/// `/openapi/v3`: one entry per group-version, with a content hash so clients cache correctly.
pub fn index(registry: &Registry) -> Value {
    let mut paths = Map::new();
    for (group, versions) in registry.groups() {
        for version in versions {
            let Ok(doc) = group_version_doc(registry, &group, &version) else {
                continue;
            };
            let mut hasher = DefaultHasher::new();
            doc.to_string().hash(&mut hasher);
            let path = gv_path(&group, &version);
            paths.insert(path.clone(), json!({"serverRelativeURL": format!("/openapi/v3/{path}?hash={:016X}", hasher.finish())}));
        }
    }
    json!({"paths": paths})
}
