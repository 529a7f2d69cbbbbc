//! Field sets in the `FieldsV1` format of `metadata.managedFields` (`f:name`, `k:{"name":"a"}`,
//! `v:"x"`, `.`), and how lists are keyed, from the CRD schema or the built-in conventions.

use serde_json::{Map, Value};

/// A field set: nested `FieldsV1` map; a leaf is an empty map.
pub type FieldSet = Map<String, Value>;

/// How a list merges.
#[derive(Debug, Clone, PartialEq)]
pub enum ListKind {
    /// Replaced as a whole.
    Atomic,
    /// Set of scalars.
    Set,
    /// Map keyed by these fields.
    Map(Vec<String>),
}

/// Merge keys of built-in lists (strategic merge patch tags of the core types).
fn builtin_list_kind(field: &str) -> ListKind {
    let key = match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "volumes"
        | "env"
        | "imagePullSecrets" => "name",
        "volumeMounts" => "mountPath",
        "volumeDevices" => "devicePath",
        "ports" => "containerPort",
        "conditions" | "addresses" => "type",
        "ownerReferences" => "uid",
        "hostAliases" => "ip",
        "taints" => "key",
        "finalizers" => return ListKind::Set,
        _ => return ListKind::Atomic,
    };
    ListKind::Map(vec![key.to_string()])
}

/// A position in a schema while walking an object (None = no schema: built-in conventions).
#[derive(Clone, Copy)]
pub struct SchemaPos<'a>(pub Option<&'a Value>);

impl<'a> SchemaPos<'a> {
    /// Schema of property `name`.
    pub fn field(self, name: &str) -> SchemaPos<'a> {
        SchemaPos(self.0.and_then(|s| {
            s.get("properties")
                .and_then(|p| p.get(name))
                .or_else(|| s.get("additionalProperties").filter(|a| a.is_object()))
        }))
    }

    /// Schema of list items.
    pub fn items(self) -> SchemaPos<'a> {
        SchemaPos(self.0.and_then(|s| s.get("items")))
    }

    /// How the list at this position merges; `field` is its name (for built-in conventions).
    pub fn list_kind(self, field: &str) -> ListKind {
        match self.0 {
            Some(s) => match s.get("x-kubernetes-list-type").and_then(Value::as_str) {
                Some("map") => ListKind::Map(
                    s.get("x-kubernetes-list-map-keys")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .filter_map(|k| k.as_str().map(String::from))
                        .collect(),
                ),
                Some("set") => ListKind::Set,
                Some(_) => ListKind::Atomic,
                // metav1.Condition lists without markers still merge by type, as the brief of
                // the conditions convention; other unmarked CRD lists are atomic.
                None if field == "conditions" => ListKind::Map(vec!["type".into()]),
                None => ListKind::Atomic,
            },
            None => builtin_list_kind(field),
        }
    }

    /// Whether the map at this position is atomic (`x-kubernetes-map-type: atomic`).
    pub fn atomic_map(self) -> bool {
        self.0
            .and_then(|s| s.get("x-kubernetes-map-type"))
            .and_then(Value::as_str)
            == Some("atomic")
    }
}

/// Schema position of a top-level field; metadata always follows ObjectMeta conventions.
pub fn root_field<'a>(root: SchemaPos<'a>, name: &str) -> SchemaPos<'a> {
    if name == "metadata" {
        SchemaPos(None)
    } else {
        root.field(name)
    }
}

/// The `k:{...}` key of a map-list element.
pub fn element_key(item: &Value, keys: &[String]) -> String {
    let mut m = Map::new();
    for k in keys {
        if let Some(v) = item.get(k) {
            m.insert(k.clone(), v.clone());
        }
    }
    format!("k:{}", Value::Object(m))
}

/// Find the element of a list matching a `k:` or `v:` path segment.
pub fn find_element(list: &[Value], seg: &str) -> Option<usize> {
    if let Some(k) = seg.strip_prefix("k:") {
        let keys: Map<String, Value> = serde_json::from_str(k).ok()?;
        list.iter()
            .position(|item| keys.iter().all(|(kk, kv)| item.get(kk) == Some(kv)))
    } else if let Some(v) = seg.strip_prefix("v:") {
        let want: Value = serde_json::from_str(v).ok()?;
        list.iter().position(|item| *item == want)
    } else {
        None
    }
}

/// Metadata fields that belong to field sets (the rest is server-owned).
const TRACKED_METADATA: &[&str] = &["labels", "annotations", "finalizers", "ownerReferences"];

/// The field set of a whole object; `skip_status` leaves `.status` out (main endpoint of a
/// resource with a status subresource).
pub fn of_object(obj: &Value, schema: SchemaPos<'_>, skip_status: bool) -> FieldSet {
    let mut set = FieldSet::new();
    let Some(map) = obj.as_object() else {
        return set;
    };
    for (k, v) in map {
        match k.as_str() {
            "apiVersion" | "kind" => continue,
            "status" if skip_status => continue,
            "metadata" => {
                let mut meta = FieldSet::new();
                for field in TRACKED_METADATA {
                    if let Some(fv) = v.get(*field) {
                        meta.insert(
                            format!("f:{field}"),
                            Value::Object(of_value(fv, SchemaPos(None), field)),
                        );
                    }
                }
                if !meta.is_empty() {
                    set.insert("f:metadata".into(), Value::Object(meta));
                }
            }
            _ => {
                set.insert(
                    format!("f:{k}"),
                    Value::Object(of_value(v, root_field(schema, k), k)),
                );
            }
        }
    }
    set
}

/// Field set below one value (empty = the value is a leaf).
pub fn of_value(value: &Value, schema: SchemaPos<'_>, field: &str) -> FieldSet {
    let mut set = FieldSet::new();
    match value {
        Value::Object(map) if !schema.atomic_map() => {
            for (k, v) in map {
                set.insert(
                    format!("f:{k}"),
                    Value::Object(of_value(v, schema.field(k), k)),
                );
            }
        }
        Value::Array(items) => match schema.list_kind(field) {
            ListKind::Atomic => {}
            ListKind::Set => {
                for item in items {
                    set.insert(format!("v:{item}"), Value::Object(FieldSet::new()));
                }
            }
            ListKind::Map(keys) => {
                for item in items {
                    let mut element = of_value(item, schema.items(), field);
                    element.insert(".".into(), Value::Object(FieldSet::new()));
                    set.insert(element_key(item, &keys), Value::Object(element));
                }
            }
        },
        _ => {}
    }
    set
}

/// `a ∪ b`.
pub fn union(a: &mut FieldSet, b: &FieldSet) {
    for (k, bv) in b {
        match (a.get_mut(k), bv.as_object()) {
            (Some(Value::Object(av)), Some(bm)) => union(av, bm),
            (None, _) => {
                a.insert(k.clone(), bv.clone());
            }
            _ => {}
        }
    }
}

/// `a \ b`, removing b's leaves from a and pruning emptied containers.
pub fn subtract(a: &mut FieldSet, b: &FieldSet) {
    for (k, bv) in b {
        let Some(bm) = bv.as_object() else { continue };
        let remove = match a.get_mut(k) {
            Some(Value::Object(am)) => {
                if bm.is_empty() {
                    am.is_empty()
                } else {
                    let was_leaf = am.is_empty();
                    subtract(am, bm);
                    !was_leaf && am.is_empty()
                }
            }
            _ => false,
        };
        if remove {
            a.remove(k);
        }
    }
}

/// All leaf paths of a set.
pub fn leaves(set: &FieldSet) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    fn walk(set: &FieldSet, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
        for (k, v) in set {
            prefix.push(k.clone());
            match v.as_object() {
                Some(m) if !m.is_empty() => walk(m, prefix, out),
                _ => out.push(prefix.clone()),
            }
            prefix.pop();
        }
    }
    walk(set, &mut Vec::new(), &mut out);
    out
}

/// Whether a leaf path is in the set.
pub fn contains(set: &FieldSet, path: &[String]) -> bool {
    let mut cur = set;
    for (i, seg) in path.iter().enumerate() {
        match cur.get(seg).and_then(Value::as_object) {
            Some(m) if i + 1 == path.len() => return m.is_empty(),
            Some(m) => cur = m,
            None => return false,
        }
    }
    false
}

/// The value an object has at a field path (`None` when absent).
pub fn value_at<'a>(obj: &'a Value, path: &[String]) -> Option<&'a Value> {
    let mut cur = obj;
    for seg in path {
        if seg == "." {
            continue;
        }
        cur = if let Some(name) = seg.strip_prefix("f:") {
            cur.get(name)?
        } else {
            let list = cur.as_array()?;
            &list[find_element(list, seg)?]
        };
    }
    Some(cur)
}

/// `.spec.containers[name="a"].image` rendering of a path, as conflict messages print it.
pub fn render_path(path: &[String]) -> String {
    let mut out = String::new();
    for seg in path {
        if let Some(name) = seg.strip_prefix("f:") {
            out.push('.');
            out.push_str(name);
        } else if let Some(k) = seg.strip_prefix("k:") {
            let keys: Map<String, Value> = serde_json::from_str(k).unwrap_or_default();
            let parts: Vec<String> = keys.iter().map(|(k, v)| format!("{k}={v}")).collect();
            out.push_str(&format!("[{}]", parts.join(",")));
        } else if let Some(v) = seg.strip_prefix("v:") {
            out.push_str(&format!("[={v}]"));
        }
    }
    out
}

/// The fields of `new` that differ from `old` (what an update changed).
pub fn changed(new_set: &FieldSet, old: Option<&Value>, new: &Value) -> FieldSet {
    let mut out = FieldSet::new();
    for path in leaves(new_set) {
        let before = old.and_then(|o| value_at(o, &path));
        let after = value_at(new, &path);
        let is_marker = path.last().is_some_and(|s| s == ".");
        let differs = if is_marker {
            before.is_none()
        } else {
            before != after
        };
        if differs {
            insert_path(&mut out, &path);
        }
    }
    out
}

/// Add one leaf path to a set.
pub fn insert_path(set: &mut FieldSet, path: &[String]) {
    let mut cur = set;
    for seg in path {
        let entry = cur
            .entry(seg.clone())
            .or_insert_with(|| Value::Object(FieldSet::new()));
        match entry {
            Value::Object(m) => cur = m,
            _ => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn map_lists_are_keyed_and_sets_are_valued() {
        let obj = json!({"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","finalizers":["a"]},"spec":{"containers":[{"name":"c","image":"i"}]}});
        let set = of_object(&obj, SchemaPos(None), false);
        let text = Value::Object(set.clone()).to_string();
        assert!(
            text.contains(r#""k:{\"name\":\"c\"}":{".":{},"f:image":{},"f:name":{}}"#),
            "{text}"
        );
        assert!(text.contains(r#""v:\"a\"""#), "{text}");
        let paths = leaves(&set);
        assert!(
            paths
                .iter()
                .any(|p| render_path(p) == ".spec.containers[name=\"c\"].image")
        );
        let mut a = set.clone();
        subtract(&mut a, &set);
        assert!(a.is_empty());
    }
}
