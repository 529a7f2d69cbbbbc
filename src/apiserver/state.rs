//! Shared server state and the resolved target of a resource request.

use std::sync::Arc;

use serde_json::Value;

use super::registry::{Registry, ResourceDef, VersionDef};
use super::status::Subject;
use super::store::{GroupResource, ObjKey, Store};

/// Everything a request handler can reach.
pub struct State {
    /// Objects.
    pub store: Store,
    /// Served resources.
    pub registry: Registry,
    /// The bearer token clients must present; None on plain HTTP, where kubectl never sends
    /// credentials (like kube-apiserver's old insecure port).
    pub token: Option<String>,
    /// Injected latency and denial.
    pub faults: super::faults::Faults,
    /// Requests answered, by verb and resource.
    pub requests: super::requests::RequestCounts,
}

/// The resource, version, namespace, name and subresource a request addresses.
#[derive(Clone)]
pub struct Target {
    /// Resource definition.
    pub def: Arc<ResourceDef>,
    /// Requested version.
    pub version: String,
    /// Namespace ("" for cluster-scoped or all namespaces).
    pub namespace: String,
    /// Object name, if any.
    pub name: Option<String>,
    /// Subresource, if any.
    pub subresource: Option<String>,
}

impl Target {
    /// Storage key.
    pub fn gr(&self) -> GroupResource {
        self.def.group_resource()
    }

    /// Object key for `name`.
    pub fn key_of(&self, name: &str) -> ObjKey {
        (
            if self.def.namespaced {
                self.namespace.clone()
            } else {
                String::new()
            },
            name.to_string(),
        )
    }

    /// Object key of the addressed object.
    pub fn key(&self) -> ObjKey {
        self.key_of(self.name.as_deref().unwrap_or_default())
    }

    /// The requested version's definition.
    pub fn version_def(&self) -> &VersionDef {
        // The router only builds targets for served versions.
        self.def
            .version(&self.version)
            .unwrap_or(&self.def.versions[0])
    }

    /// `apiVersion` of the requested version.
    pub fn api_version(&self) -> String {
        self.def.api_version(&self.version)
    }

    /// Error subject for `name`.
    pub fn subject(&self, name: &str) -> Box<Subject> {
        Box::new(Subject {
            group: self.def.group.clone(),
            resource: self.def.plural.clone(),
            kind: self.def.kind.clone(),
            name: name.to_string(),
        })
    }

    /// Whether writes to the main resource ignore status (and `/status` ignores everything else).
    pub fn has_status_subresource(&self) -> bool {
        self.version_def().status_subresource
    }

    /// The object as served in the requested version (objects are stored once for all versions).
    /// Schema defaults are applied on read too, so objects stored before a default was added to
    /// the CRD read like kube-apiserver returns them.
    pub fn present(&self, obj: &Arc<Value>) -> Arc<Value> {
        let av = self.api_version();
        let defaulting = self
            .version_def()
            .schema
            .as_ref()
            .filter(|s| s.has_defaults);
        if obj.get("apiVersion").and_then(Value::as_str) == Some(av.as_str())
            && defaulting.is_none()
        {
            return obj.clone();
        }
        let mut copy = (**obj).clone();
        copy["apiVersion"] = Value::String(av);
        if let Some(schema) = defaulting {
            schema.apply_defaults(&mut copy);
        }
        Arc::new(copy)
    }
}
