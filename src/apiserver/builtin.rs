//! The built-in kinds the server stores, and the defaults it applies to them on create.

use serde_json::{Value, json};

use super::registry::{Builtin, ResourceDef, VersionDef};

struct Spec {
    group: &'static str,
    version: &'static str,
    plural: &'static str,
    kind: &'static str,
    namespaced: bool,
    short: &'static [&'static str],
    categories: &'static [&'static str],
    status: bool,
    builtin: Builtin,
    extra: &'static [&'static str],
    fields: &'static [&'static str],
}

const SPECS: &[Spec] = &[
    Spec {
        group: "",
        version: "v1",
        plural: "namespaces",
        kind: "Namespace",
        namespaced: false,
        short: &["ns"],
        categories: &[],
        status: true,
        builtin: Builtin::Namespace,
        extra: &[],
        fields: &["status.phase"],
    },
    Spec {
        group: "",
        version: "v1",
        plural: "secrets",
        kind: "Secret",
        namespaced: true,
        short: &[],
        categories: &[],
        status: false,
        builtin: Builtin::Secret,
        extra: &[],
        fields: &["type"],
    },
    Spec {
        group: "",
        version: "v1",
        plural: "configmaps",
        kind: "ConfigMap",
        namespaced: true,
        short: &["cm"],
        categories: &[],
        status: false,
        builtin: Builtin::Plain,
        extra: &[],
        fields: &[],
    },
    Spec {
        group: "",
        version: "v1",
        plural: "serviceaccounts",
        kind: "ServiceAccount",
        namespaced: true,
        short: &["sa"],
        categories: &[],
        status: false,
        builtin: Builtin::Plain,
        extra: &[],
        fields: &[],
    },
    Spec {
        group: "",
        version: "v1",
        plural: "nodes",
        kind: "Node",
        namespaced: false,
        short: &["no"],
        categories: &[],
        status: true,
        builtin: Builtin::Plain,
        extra: &[],
        fields: &["spec.unschedulable"],
    },
    Spec {
        group: "",
        version: "v1",
        plural: "pods",
        kind: "Pod",
        namespaced: true,
        short: &["po"],
        categories: &["all"],
        status: true,
        builtin: Builtin::Pod,
        extra: &["eviction", "log"],
        fields: &[
            "spec.nodeName",
            "status.phase",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "status.podIP",
            "status.nominatedNodeName",
        ],
    },
    Spec {
        group: "",
        version: "v1",
        plural: "services",
        kind: "Service",
        namespaced: true,
        short: &["svc"],
        categories: &["all"],
        status: true,
        builtin: Builtin::Plain,
        extra: &[],
        fields: &["spec.clusterIP", "spec.type"],
    },
    Spec {
        group: "apps",
        version: "v1",
        plural: "deployments",
        kind: "Deployment",
        namespaced: true,
        short: &["deploy"],
        categories: &["all"],
        status: true,
        builtin: Builtin::Plain,
        extra: &[],
        fields: &[],
    },
    Spec {
        group: "",
        version: "v1",
        plural: "events",
        kind: "Event",
        namespaced: true,
        short: &["ev"],
        categories: &[],
        status: false,
        builtin: Builtin::Plain,
        extra: &[],
        fields: &[
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
        ],
    },
    Spec {
        group: "events.k8s.io",
        version: "v1",
        plural: "events",
        kind: "Event",
        namespaced: true,
        short: &["ev"],
        categories: &[],
        status: false,
        builtin: Builtin::Plain,
        extra: &[],
        fields: &[
            "regarding.kind",
            "regarding.namespace",
            "regarding.name",
            "regarding.uid",
            "reason",
            "type",
            "reportingController",
        ],
    },
    Spec {
        group: "coordination.k8s.io",
        version: "v1",
        plural: "leases",
        kind: "Lease",
        namespaced: true,
        short: &[],
        categories: &[],
        status: false,
        builtin: Builtin::Plain,
        extra: &[],
        fields: &[],
    },
    Spec {
        group: "apiextensions.k8s.io",
        version: "v1",
        plural: "customresourcedefinitions",
        kind: "CustomResourceDefinition",
        namespaced: false,
        short: &["crd", "crds"],
        categories: &["api-extensions"],
        status: true,
        builtin: Builtin::Crd,
        extra: &[],
        fields: &[],
    },
];

/// Definitions of every built-in resource.
pub fn definitions() -> Vec<ResourceDef> {
    SPECS
        .iter()
        .map(|s| ResourceDef {
            group: s.group.to_string(),
            plural: s.plural.to_string(),
            singular: s.kind.to_lowercase(),
            kind: s.kind.to_string(),
            list_kind: format!("{}List", s.kind),
            namespaced: s.namespaced,
            short_names: s.short.iter().map(|x| x.to_string()).collect(),
            categories: s.categories.iter().map(|x| x.to_string()).collect(),
            versions: vec![VersionDef {
                name: s.version.to_string(),
                storage: true,
                schema: None,
                status_subresource: s.status,
                columns: Vec::new(),
            }],
            builtin: s.builtin,
            extra_subresources: s.extra.iter().map(|x| x.to_string()).collect(),
            selectable_fields: s.fields.iter().map(|x| x.to_string()).collect(),
        })
        .collect()
}

/// The namespaces a fresh cluster has.
pub const INITIAL_NAMESPACES: &[&str] =
    &["default", "kube-system", "kube-public", "kube-node-lease"];

/// Defaults the real API server fills in on create for built-ins (so clients see familiar objects).
pub fn default_on_create(builtin: Builtin, obj: &mut Value) {
    match builtin {
        Builtin::Namespace => {
            let name = obj
                .pointer("/metadata/name")
                .cloned()
                .unwrap_or(Value::Null);
            let labels = obj["metadata"]
                .as_object_mut()
                .map(|m| m.entry("labels").or_insert_with(|| json!({})));
            if let Some(Value::Object(labels)) = labels {
                labels.insert("kubernetes.io/metadata.name".into(), name);
            }
            if obj.get("spec").is_none() {
                obj["spec"] = json!({"finalizers": ["kubernetes"]});
            }
            obj["status"] = json!({"phase": "Active"});
        }
        Builtin::Secret => fold_string_data(obj),
        Builtin::Pod => {
            if obj.pointer("/status/phase").is_none() {
                obj["status"] = json!({"phase": "Pending", "qosClass": "BestEffort"});
            }
        }
        Builtin::Crd | Builtin::Plain | Builtin::Custom => {}
    }
}

/// `Secret.stringData` is write-only: fold it into base64 `data`, and default `type`.
pub fn fold_string_data(obj: &mut Value) {
    use base64::Engine;
    if let Some(Value::Object(string_data)) =
        obj.as_object_mut().and_then(|o| o.remove("stringData"))
    {
        let data = obj
            .as_object_mut()
            .map(|o| o.entry("data").or_insert_with(|| json!({})));
        if let Some(Value::Object(data)) = data {
            for (k, v) in string_data {
                let s = v.as_str().unwrap_or_default();
                data.insert(
                    k,
                    Value::String(base64::engine::general_purpose::STANDARD.encode(s)),
                );
            }
        }
    }
    if obj.get("type").is_none() {
        obj["type"] = json!("Opaque");
    }
}
