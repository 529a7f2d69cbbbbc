//! `metadata.managedFields` bookkeeping and server-side apply: ownership per field manager,
//! conflicts (409 unless forced), merge of the applied configuration, and removal of fields an
//! applier stopped sending.

use serde_json::{Map, Value, json};

use super::admission::{Endpoint, now};
use super::fields::{self, FieldSet, ListKind, SchemaPos};
use super::state::Target;
use super::status::{ApiError, ApiResult, Cause};

/// One `managedFields` entry.
#[derive(Debug, Clone)]
struct Entry {
    manager: String,
    operation: String,
    api_version: String,
    time: String,
    subresource: String,
    fields: FieldSet,
}

impl Entry {
    /// The manager as kube-apiserver names it in a conflict: `"name"`, plus the subresource, plus
    /// the API version for an Update (an Apply's version is the applier's own).
    fn describe(&self) -> String {
        let mut out = format!("{:?}", self.manager);
        if !self.subresource.is_empty() {
            out.push_str(&format!(" with subresource {:?}", self.subresource));
        }
        if self.operation == "Update" {
            out.push_str(&format!(" using {}", self.api_version));
        }
        out
    }

    fn same_owner(&self, manager: &str, operation: &str, subresource: &str) -> bool {
        self.manager == manager && self.operation == operation && self.subresource == subresource
    }
}

fn read_entries(obj: Option<&Value>) -> Vec<Entry> {
    obj.and_then(|o| o.pointer("/metadata/managedFields"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|e| {
            let s = |k: &str| {
                e.get(k)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string()
            };
            Entry {
                manager: s("manager"),
                operation: s("operation"),
                api_version: s("apiVersion"),
                time: s("time"),
                subresource: s("subresource"),
                fields: e
                    .get("fieldsV1")
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default(),
            }
        })
        .collect()
}

fn write_entries(obj: &mut Value, entries: Vec<Entry>) {
    let list: Vec<Value> = entries
        .into_iter()
        .filter(|e| !e.fields.is_empty())
        .map(|e| {
            let mut v = json!({
                "manager": e.manager,
                "operation": e.operation,
                "apiVersion": e.api_version,
                "time": e.time,
                "fieldsType": "FieldsV1",
                "fieldsV1": Value::Object(e.fields),
            });
            if !e.subresource.is_empty() {
                v["subresource"] = json!(e.subresource);
            }
            v
        })
        .collect();
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        if list.is_empty() {
            meta.remove("managedFields");
        } else {
            meta.insert("managedFields".into(), Value::Array(list));
        }
    }
}

fn subresource_name(endpoint: Endpoint) -> &'static str {
    match endpoint {
        Endpoint::Main => "",
        Endpoint::Status => "status",
    }
}

/// The field set a write through `endpoint` can touch.
fn endpoint_set(target: &Target, obj: &Value, endpoint: Endpoint) -> FieldSet {
    let schema = target.version_def().schema.clone();
    let pos = SchemaPos(schema.as_ref().map(|s| &s.raw));
    let skip_status = endpoint == Endpoint::Main && target.has_status_subresource();
    let mut set = fields::of_object(obj, pos, skip_status);
    if endpoint == Endpoint::Status {
        set.retain(|k, _| k == "f:status");
    }
    set
}

/// Record a non-apply write (create, update, patch): the manager now owns what it changed.
pub fn record_update(
    target: &Target,
    new: &mut Value,
    old: Option<&Value>,
    manager: &str,
    endpoint: Endpoint,
) {
    let new_set = endpoint_set(target, new, endpoint);
    let changed = fields::changed(&new_set, old, new);
    let mut removed = FieldSet::new();
    if let Some(old) = old {
        for path in fields::leaves(&endpoint_set(target, old, endpoint)) {
            if fields::value_at(new, &path).is_none() {
                fields::insert_path(&mut removed, &path);
            }
        }
    }
    // A client that rewrites managedFields itself (kubectl migrating client-side-apply ownership
    // to server-side apply) is honoured, as kube-apiserver does; otherwise the stored ones count.
    let sent = new.pointer("/metadata/managedFields");
    let stored = old.and_then(|o| o.pointer("/metadata/managedFields"));
    let mut entries = if sent.is_some() && sent != stored {
        read_entries(Some(&*new))
    } else {
        read_entries(old)
    };
    let sub = subresource_name(endpoint);
    if !changed.is_empty() || !removed.is_empty() {
        for e in entries.iter_mut() {
            fields::subtract(&mut e.fields, &changed);
            fields::subtract(&mut e.fields, &removed);
        }
        let api_version = target.api_version();
        match entries
            .iter_mut()
            .find(|e| e.same_owner(manager, "Update", sub))
        {
            Some(e) => {
                fields::union(&mut e.fields, &changed);
                e.time = now();
                e.api_version = api_version;
            }
            None => entries.push(Entry {
                manager: manager.to_string(),
                operation: "Update".into(),
                api_version,
                time: now(),
                subresource: sub.to_string(),
                fields: changed,
            }),
        }
    }
    write_entries(new, entries);
}

/// Merge an applied configuration into the live object.
fn merge(live: &mut Value, applied: &Value, schema: SchemaPos<'_>, field: &str) {
    match (live, applied) {
        (Value::Object(l), Value::Object(a)) if !schema.atomic_map() => {
            for (k, av) in a {
                match l.get_mut(k) {
                    Some(lv) => merge(lv, av, schema.field(k), k),
                    None => {
                        l.insert(k.clone(), av.clone());
                    }
                }
            }
        }
        (Value::Array(l), Value::Array(a)) => match schema.list_kind(field) {
            ListKind::Map(keys) => {
                for item in a {
                    let key = fields::element_key(item, &keys);
                    match fields::find_element(l, &key) {
                        Some(i) => merge(&mut l[i], item, schema.items(), field),
                        None => l.push(item.clone()),
                    }
                }
            }
            ListKind::Set => {
                for item in a {
                    if !l.contains(item) {
                        l.push(item.clone());
                    }
                }
            }
            ListKind::Atomic => *l = a.clone(),
        },
        (live, applied) => *live = applied.clone(),
    }
}

/// Remove the fields in `removed` from `value`, except where `others` still own something.
fn remove_fields(value: &mut Value, removed: &FieldSet, others: Option<&FieldSet>) {
    for (seg, sub) in removed {
        if seg == "." {
            continue;
        }
        let sub = sub.as_object().cloned().unwrap_or_default();
        let other_sub = others.and_then(|o| o.get(seg)).and_then(Value::as_object);
        let whole = sub.is_empty() || sub.contains_key(".");
        if whole && other_sub.is_none() {
            remove_segment(value, seg);
            continue;
        }
        if sub.is_empty() {
            continue;
        }
        if let Some(child) = child_mut(value, seg) {
            remove_fields(child, &sub, other_sub);
        }
    }
}

fn child_mut<'a>(value: &'a mut Value, seg: &str) -> Option<&'a mut Value> {
    if let Some(name) = seg.strip_prefix("f:") {
        value.get_mut(name)
    } else {
        let list = value.as_array_mut()?;
        let i = fields::find_element(list, seg)?;
        list.get_mut(i)
    }
}

fn remove_segment(value: &mut Value, seg: &str) {
    if let Some(name) = seg.strip_prefix("f:") {
        if let Some(m) = value.as_object_mut() {
            m.remove(name);
        }
    } else if let Some(list) = value.as_array_mut()
        && let Some(i) = fields::find_element(list, seg)
    {
        list.remove(i);
    }
}

/// The object without server-owned metadata, reduced to what an apply may set.
fn applicable(applied: &Value, endpoint: Endpoint, target: &Target) -> Value {
    let mut out = Map::new();
    for (k, v) in applied.as_object().into_iter().flatten() {
        match k.as_str() {
            "apiVersion" | "kind" => {}
            "metadata" => {
                let mut meta = Map::new();
                for f in ["labels", "annotations", "finalizers", "ownerReferences"] {
                    if let Some(x) = v.get(f) {
                        meta.insert(f.into(), x.clone());
                    }
                }
                out.insert(k.clone(), Value::Object(meta));
            }
            "status" if endpoint == Endpoint::Main && target.has_status_subresource() => {}
            _ if endpoint == Endpoint::Status && k != "status" => {}
            _ => {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    Value::Object(out)
}

/// Managers client-side `kubectl apply` records its writes under.
const CLIENT_SIDE_APPLY_MANAGERS: &[&str] = &["kubectl-client-side-apply", "before-first-apply"];

/// The object in the `kubectl.kubernetes.io/last-applied-configuration` annotation, if any.
fn last_applied_configuration(live: Option<&Value>) -> Option<Value> {
    let text = live?
        .pointer("/metadata/annotations")?
        .get("kubectl.kubernetes.io/last-applied-configuration")?
        .as_str()?;
    serde_json::from_str(text).ok()
}

/// Server-side apply of `applied` by `manager` onto `live` (None = create). Returns the object to
/// admit and store, with managedFields updated.
pub fn apply(
    target: &Target,
    live: Option<&Value>,
    applied: &Value,
    manager: &str,
    force: bool,
    endpoint: Endpoint,
) -> ApiResult<Value> {
    let sub = subresource_name(endpoint);
    let new_set = endpoint_set(target, applied, endpoint);
    let mut entries = read_entries(live);
    let schema = target.version_def().schema.clone();
    let pos = SchemaPos(schema.as_ref().map(|s| &s.raw));

    let last_applied = last_applied_configuration(live);
    let mut conflicts: Vec<(Vec<String>, String, String)> = Vec::new();
    let mut taken_over: Vec<(Vec<String>, String, String)> = Vec::new();
    if let Some(live) = live {
        for e in entries.iter().filter(|e| e.manager != manager) {
            for path in fields::leaves(&new_set) {
                if path.last().is_some_and(|s| s == ".") || !fields::contains(&e.fields, &path) {
                    continue;
                }
                if fields::value_at(live, &path) != fields::value_at(applied, &path) {
                    // Like kube-apiserver's last-applied manager: fields that client-side apply
                    // set from its last-applied configuration move to the server-side applier,
                    // so `kubectl apply --server-side` after `kubectl apply` just works.
                    let client_side = CLIENT_SIDE_APPLY_MANAGERS.contains(&e.manager.as_str())
                        && last_applied
                            .as_ref()
                            .is_some_and(|la| fields::value_at(la, &path).is_some());
                    let conflict = (path, e.manager.clone(), e.describe());
                    if client_side {
                        taken_over.push(conflict);
                        continue;
                    }
                    conflicts.push(conflict);
                }
            }
        }
    }
    if !conflicts.is_empty() && !force {
        return Err(conflict_error(target, applied, &conflicts));
    }
    conflicts.extend(taken_over);
    for (path, owner, _) in &conflicts {
        let mut one = FieldSet::new();
        fields::insert_path(&mut one, path);
        for e in entries.iter_mut().filter(|e| &e.manager == owner) {
            fields::subtract(&mut e.fields, &one);
        }
    }

    let mut merged = match live {
        Some(live) => live.clone(),
        None => {
            let mut base = applied.clone();
            if let Some(m) = base.as_object_mut() {
                m.retain(|k, _| k == "apiVersion" || k == "kind" || k == "metadata");
            }
            base
        }
    };
    let config = applicable(applied, endpoint, target);
    for (k, v) in config.as_object().into_iter().flatten() {
        match merged.get_mut(k) {
            Some(existing) => merge(
                existing,
                v,
                if k == "metadata" {
                    SchemaPos(None)
                } else {
                    pos.field(k)
                },
                k,
            ),
            None => merged[k.as_str()] = v.clone(),
        }
    }

    let previous = entries
        .iter()
        .find(|e| e.same_owner(manager, "Apply", sub))
        .map(|e| e.fields.clone())
        .unwrap_or_default();
    let mut removed = previous;
    fields::subtract(&mut removed, &new_set);
    let mut others = FieldSet::new();
    for e in entries
        .iter()
        .filter(|e| !e.same_owner(manager, "Apply", sub))
    {
        fields::union(&mut others, &e.fields);
    }
    fields::subtract(&mut removed, &others);
    remove_fields(&mut merged, &removed, Some(&others));

    entries.retain(|e| !e.same_owner(manager, "Apply", sub));
    entries.push(Entry {
        manager: manager.to_string(),
        operation: "Apply".into(),
        api_version: target.api_version(),
        time: now(),
        subresource: sub.to_string(),
        fields: new_set,
    });
    write_entries(&mut merged, entries);
    Ok(merged)
}

fn conflict_error(
    target: &Target,
    applied: &Value,
    conflicts: &[(Vec<String>, String, String)],
) -> ApiError {
    let causes: Vec<Cause> = conflicts
        .iter()
        .map(|(path, _, owner)| {
            Cause::new(
                "FieldManagerConflict",
                fields::render_path(path),
                format!("conflict with {owner}"),
            )
        })
        .collect();
    let n = conflicts.len();
    let message = if n == 1 {
        format!(
            "Apply failed with 1 conflict: {}: {}",
            causes[0].message, causes[0].field
        )
    } else {
        let lines: Vec<String> = causes
            .iter()
            .map(|c| format!("- {}: {}", c.message, c.field))
            .collect();
        format!(
            "Apply failed with {n} conflicts: conflicts:\n{}",
            lines.join("\n")
        )
    };
    let name = applied
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    ApiError::ApplyConflict(Box::new(super::status::ApplyConflict {
        subject: *target.subject(name),
        message,
        causes,
    }))
}
