//! Server-side `Table` rendering for `kubectl get`: CRD `additionalPrinterColumns` (JSONPath) and
//! hand-written columns for the built-in kinds.

use std::sync::Arc;

use serde_json::{Value, json};

use super::http::Query;
use super::jsonpath;
use super::registry::PrinterColumn;
use super::state::Target;

fn col(name: &str, type_: &str, format: &str, description: &str, priority: i64) -> Value {
    json!({"name": name, "type": type_, "format": format, "description": description, "priority": priority})
}

/// `5m`, `3h12m`, `2d` — as kubectl and the API server print ages.
pub fn human_age(timestamp: Option<&str>) -> String {
    let Some(ts) = timestamp.and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok()) else {
        return "<unknown>".into();
    };
    let secs = (chrono::Utc::now() - ts.with_timezone(&chrono::Utc))
        .num_seconds()
        .max(0);
    let (m, h, d) = (secs / 60, secs / 3600, secs / 86400);
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 600 => {
            if s % 60 == 0 {
                format!("{m}m")
            } else {
                format!("{m}m{}s", s % 60)
            }
        }
        s if s < 3 * 3600 => format!("{m}m"),
        s if s < 8 * 3600 => {
            if m % 60 == 0 {
                format!("{h}h")
            } else {
                format!("{h}h{}m", m % 60)
            }
        }
        s if s < 48 * 3600 => format!("{h}h"),
        s if s < 8 * 86400 => {
            if h % 24 == 0 {
                format!("{d}d")
            } else {
                format!("{d}d{}h", h % 24)
            }
        }
        s if s < 2 * 365 * 86400 => format!("{d}d"),
        _ => format!("{}y", d / 365),
    }
}

fn s<'a>(obj: &'a Value, ptr: &str) -> &'a str {
    obj.pointer(ptr).and_then(Value::as_str).unwrap_or_default()
}

fn len_of(obj: &Value, ptr: &str) -> usize {
    match obj.pointer(ptr) {
        Some(Value::Object(m)) => m.len(),
        Some(Value::Array(a)) => a.len(),
        _ => 0,
    }
}

fn age(obj: &Value) -> Value {
    json!(human_age(
        obj.pointer("/metadata/creationTimestamp")
            .and_then(Value::as_str)
    ))
}

fn node_status(obj: &Value) -> String {
    let ready = obj
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|c| c.iter().find(|c| c["type"] == "Ready"));
    let mut status = match ready.map(|c| s(c, "/status")) {
        Some("True") => "Ready".to_string(),
        Some("False") => "NotReady".to_string(),
        _ => "Unknown".to_string(),
    };
    if obj.pointer("/spec/unschedulable").and_then(Value::as_bool) == Some(true) {
        status.push_str(",SchedulingDisabled");
    }
    status
}

fn node_roles(obj: &Value) -> String {
    let roles: Vec<&str> = obj
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter_map(|(k, _)| k.strip_prefix("node-role.kubernetes.io/"))
        .collect();
    if roles.is_empty() {
        "<none>".into()
    } else {
        roles.join(",")
    }
}

fn pod_cells(obj: &Value) -> Vec<Value> {
    let statuses = obj
        .pointer("/status/containerStatuses")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let ready = statuses.iter().filter(|c| c["ready"] == true).count();
    let restarts: i64 = statuses
        .iter()
        .filter_map(|c| c["restartCount"].as_i64())
        .sum();
    let phase = if obj.pointer("/metadata/deletionTimestamp").is_some() {
        "Terminating"
    } else {
        s(obj, "/status/phase")
    };
    vec![
        json!(format!("{ready}/{}", len_of(obj, "/spec/containers"))),
        json!(phase),
        json!(restarts),
        age(obj),
        json!(or_none(s(obj, "/status/podIP"))),
        json!(or_none(s(obj, "/spec/nodeName"))),
    ]
}

fn service_cells(obj: &Value) -> Vec<Value> {
    let ports: Vec<String> = obj
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|p| {
            let protocol = p["protocol"].as_str().unwrap_or("TCP");
            match p["nodePort"].as_i64() {
                Some(node) => format!("{}:{node}/{protocol}", p["port"]),
                None => format!("{}/{protocol}", p["port"]),
            }
        })
        .collect();
    let ports = if ports.is_empty() {
        "<none>".to_string()
    } else {
        ports.join(",")
    };
    vec![
        json!(match s(obj, "/spec/type") {
            "" => "ClusterIP",
            t => t,
        }),
        json!(or_none(s(obj, "/spec/clusterIP"))),
        json!(or_none(s(obj, "/status/loadBalancer/ingress/0/ip"))),
        json!(ports),
        age(obj),
    ]
}

fn or_none(v: &str) -> &str {
    if v.is_empty() { "<none>" } else { v }
}

fn event_cells(obj: &Value, regarding: &str, message: &str) -> Vec<Value> {
    let last = [
        "/lastTimestamp",
        "/eventTime",
        "/deprecatedLastTimestamp",
        "/metadata/creationTimestamp",
    ]
    .iter()
    .find_map(|p| {
        obj.pointer(p)
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
    });
    let object = format!(
        "{}/{}",
        s(obj, &format!("{regarding}/kind")).to_lowercase(),
        s(obj, &format!("{regarding}/name"))
    );
    vec![
        json!(human_age(last)),
        json!(s(obj, "/type")),
        json!(s(obj, "/reason")),
        json!(object),
        json!(s(obj, message)),
    ]
}

/// Columns (after Name) and the cell function of a built-in kind.
type Cells = fn(&Value) -> Vec<Value>;

fn builtin_columns(group: &str, kind: &str) -> (Vec<Value>, Cells) {
    let age_col = || {
        col(
            "Age",
            "string",
            "",
            "CreationTimestamp is a timestamp representing the server time when this object was created.",
            0,
        )
    };
    match (group, kind) {
        ("", "Namespace") => (
            vec![
                col("Status", "string", "", "The status of the namespace", 0),
                age_col(),
            ],
            |o| vec![json!(s(o, "/status/phase")), age(o)],
        ),
        ("", "Pod") => (
            vec![
                col(
                    "Ready",
                    "string",
                    "",
                    "The aggregate readiness state of this pod for accepting traffic.",
                    0,
                ),
                col(
                    "Status",
                    "string",
                    "",
                    "The aggregate status of the containers in this pod.",
                    0,
                ),
                col(
                    "Restarts",
                    "string",
                    "",
                    "The number of times the containers in this pod have been restarted.",
                    0,
                ),
                age_col(),
                col("IP", "string", "", "IP address allocated to the pod.", 1),
                col(
                    "Node",
                    "string",
                    "",
                    "Name of the node the pod is assigned to.",
                    1,
                ),
            ],
            pod_cells,
        ),
        ("", "Secret") => (
            vec![
                col("Type", "string", "", "The type of the secret", 0),
                col("Data", "string", "", "The number of entries in Data", 0),
                age_col(),
            ],
            |o| vec![json!(s(o, "/type")), json!(len_of(o, "/data")), age(o)],
        ),
        ("", "ConfigMap") => (
            vec![
                col("Data", "string", "", "Number of entries in Data", 0),
                age_col(),
            ],
            |o| vec![json!(len_of(o, "/data") + len_of(o, "/binaryData")), age(o)],
        ),
        ("", "ServiceAccount") => (
            vec![
                col(
                    "Secrets",
                    "string",
                    "",
                    "Secrets is the list of secrets allowed to be used by pods running using this ServiceAccount",
                    0,
                ),
                age_col(),
            ],
            |o| vec![json!(len_of(o, "/secrets")), age(o)],
        ),
        ("", "Node") => (
            vec![
                col("Status", "string", "", "The status of the node", 0),
                col("Roles", "string", "", "The roles of the node", 0),
                age_col(),
                col(
                    "Version",
                    "string",
                    "",
                    "Kubelet Version reported by the node.",
                    0,
                ),
            ],
            |o| {
                vec![
                    json!(node_status(o)),
                    json!(node_roles(o)),
                    age(o),
                    json!(s(o, "/status/nodeInfo/kubeletVersion")),
                ]
            },
        ),
        ("apps", "Deployment") => (
            vec![
                col(
                    "Ready",
                    "string",
                    "",
                    "Number of the pod with ready state",
                    0,
                ),
                col(
                    "Up-to-date",
                    "string",
                    "",
                    "Total number of non-terminated pods targeted by this deployment that have the desired template spec.",
                    0,
                ),
                col(
                    "Available",
                    "string",
                    "",
                    "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment.",
                    0,
                ),
                age_col(),
            ],
            |o| {
                let n = |p: &str| o.pointer(p).and_then(Value::as_i64).unwrap_or(0);
                vec![
                    json!(format!(
                        "{}/{}",
                        n("/status/readyReplicas"),
                        n("/spec/replicas")
                    )),
                    json!(n("/status/updatedReplicas")),
                    json!(n("/status/availableReplicas")),
                    age(o),
                ]
            },
        ),
        ("", "Service") => (
            vec![
                col("Type", "string", "", "The type of the service", 0),
                col(
                    "Cluster-IP",
                    "string",
                    "",
                    "The cluster IP of the service",
                    0,
                ),
                col(
                    "External-IP",
                    "string",
                    "",
                    "The external IP of the service",
                    0,
                ),
                col("Port(s)", "string", "", "The ports of the service", 0),
                age_col(),
            ],
            service_cells,
        ),
        ("coordination.k8s.io", "Lease") => (
            vec![
                col("Holder", "string", "", "The holder of the lease", 0),
                age_col(),
            ],
            |o| vec![json!(s(o, "/spec/holderIdentity")), age(o)],
        ),
        ("", "Event") => (event_columns(), |o| {
            event_cells(o, "/involvedObject", "/message")
        }),
        ("events.k8s.io", "Event") => (event_columns(), |o| event_cells(o, "/regarding", "/note")),
        ("apiextensions.k8s.io", "CustomResourceDefinition") => {
            (vec![col("Created At", "date", "", "", 0)], |o| {
                vec![
                    o.pointer("/metadata/creationTimestamp")
                        .cloned()
                        .unwrap_or(Value::Null),
                ]
            })
        }
        _ => (vec![age_col()], |o| vec![age(o)]),
    }
}

fn event_columns() -> Vec<Value> {
    vec![
        col("Last Seen", "string", "", "", 0),
        col("Type", "string", "", "", 0),
        col("Reason", "string", "", "", 0),
        col("Object", "string", "", "", 0),
        col("Message", "string", "", "", 0),
    ]
}

fn custom_cell(column: &PrinterColumn, obj: &Value) -> Value {
    let Some(first) = jsonpath::find(obj, &column.json_path).into_iter().next() else {
        return Value::Null;
    };
    match (column.type_.as_str(), first) {
        // Like kube-apiserver's custom resource table convertor: dates print as ages.
        ("date", Value::String(s)) => json!(human_age(Some(&s))),
        ("string", Value::String(s)) => json!(s),
        ("string", other) => json!(other.to_string()),
        (_, v) => v,
    }
}

/// Computes a row's cells after Name.
type RowCells = Box<dyn Fn(&Value) -> Vec<Value>>;

/// A `meta.k8s.io/v1 Table` for `items`, serialized straight from the stored objects: a row's
/// object (its metadata, by default) is written where it is, not copied into a new document.
pub struct Table<'a> {
    metadata: Value,
    columns: Vec<Value>,
    rows: Vec<(Vec<Value>, &'a Value)>,
    include: Include,
}

/// What each row carries of its object (`includeObject`).
#[derive(Clone, Copy)]
enum Include {
    None,
    Metadata,
    Object,
}

impl serde::Serialize for Table<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        struct Rows<'t, 'a>(&'t Table<'a>);
        struct Row<'t>(&'t [Value], &'t Value, Include);
        struct Partial<'t>(&'t Value);
        impl serde::Serialize for Rows<'_, '_> {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_seq(
                    self.0
                        .rows
                        .iter()
                        .map(|(cells, obj)| Row(cells, obj, self.0.include)),
                )
            }
        }
        impl serde::Serialize for Row<'_> {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let mut map = serializer.serialize_map(Some(2))?;
                map.serialize_entry("cells", self.0)?;
                match self.2 {
                    Include::None => map.serialize_entry("object", &Value::Null)?,
                    Include::Object => map.serialize_entry("object", self.1)?,
                    Include::Metadata => map.serialize_entry("object", &Partial(self.1))?,
                }
                map.end()
            }
        }
        impl serde::Serialize for Partial<'_> {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let mut map = serializer.serialize_map(Some(3))?;
                map.serialize_entry("kind", "PartialObjectMetadata")?;
                map.serialize_entry("apiVersion", "meta.k8s.io/v1")?;
                match self.0.get("metadata") {
                    Some(metadata) => map.serialize_entry("metadata", metadata)?,
                    None => map.serialize_entry("metadata", &serde_json::Map::new())?,
                }
                map.end()
            }
        }
        let mut map = serializer.serialize_map(Some(5))?;
        map.serialize_entry("kind", "Table")?;
        map.serialize_entry("apiVersion", "meta.k8s.io/v1")?;
        map.serialize_entry("metadata", &self.metadata)?;
        map.serialize_entry("columnDefinitions", &self.columns)?;
        map.serialize_entry("rows", &Rows(self))?;
        map.end()
    }
}

/// A `meta.k8s.io/v1 Table` for `items`.
pub fn render<'a>(
    target: &Target,
    items: &'a [Arc<Value>],
    query: &Query,
    rv: u64,
    list_meta: Option<Value>,
) -> Table<'a> {
    let name_col = col(
        "Name",
        "string",
        "name",
        "Name must be unique within a namespace.",
        0,
    );
    let include = match query.get("includeObject").unwrap_or("Metadata") {
        "None" => Include::None,
        "Object" => Include::Object,
        _ => Include::Metadata,
    };
    let version = target.version_def();
    let (columns, cells): (Vec<Value>, RowCells) = if target.def.is_custom() {
        if version.columns.is_empty() {
            (
                vec![col("Age", "date", "", "", 0)],
                Box::new(|o: &Value| vec![age(o)]),
            )
        } else {
            let defs = version.columns.clone();
            let cols = defs
                .iter()
                .map(|c| col(&c.name, &c.type_, &c.format, &c.description, c.priority))
                .collect();
            (
                cols,
                Box::new(move |o: &Value| defs.iter().map(|c| custom_cell(c, o)).collect()),
            )
        }
    } else {
        let (cols, f) = builtin_columns(&target.def.group, &target.def.kind);
        (cols, Box::new(f))
    };
    let rows = items
        .iter()
        .map(|obj| {
            let mut row_cells = vec![json!(s(obj, "/metadata/name"))];
            row_cells.extend(cells(obj));
            (row_cells, &**obj)
        })
        .collect();
    let mut all_columns = vec![name_col];
    all_columns.extend(columns);
    Table {
        metadata: list_meta.unwrap_or_else(|| json!({"resourceVersion": rv.to_string()})),
        columns: all_columns,
        rows,
        include,
    }
}
