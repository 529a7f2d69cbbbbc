//! Structural OpenAPI v3 schemas of CRDs: pruning of unknown fields and defaulting (validation
//! lives in `validation.rs`).

use serde_json::Value;

use super::cel::CompiledRules;
use super::status::Cause;

/// A CRD version's schema, with its CEL rules compiled once.
pub struct CrdSchema {
    /// The `openAPIV3Schema`.
    pub raw: Value,
    /// Compiled `x-kubernetes-validations`.
    pub rules: CompiledRules,
    /// Whether any field declares a `default` (reads then default too).
    pub has_defaults: bool,
}

fn declares_defaults(schema: &Value) -> bool {
    match schema {
        Value::Object(m) => m.contains_key("default") || m.values().any(declares_defaults),
        Value::Array(a) => a.iter().any(declares_defaults),
        _ => false,
    }
}

impl std::fmt::Debug for CrdSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CrdSchema").finish_non_exhaustive()
    }
}

/// Fields every object has, which schemas never prune at the root.
pub(super) const ROOT_FIELDS: &[&str] = &["apiVersion", "kind", "metadata"];

/// `path.field` (or `field` at the root).
pub(super) fn join(path: &str, field: &str) -> String {
    if path.is_empty() {
        field.to_string()
    } else {
        format!("{path}.{field}")
    }
}

/// The schema's `type`.
pub(super) fn types(schema: &Value) -> Option<&str> {
    schema.get("type").and_then(Value::as_str)
}

/// A boolean extension such as `nullable`.
pub(super) fn flag(schema: &Value, name: &str) -> bool {
    schema.get(name).and_then(Value::as_bool).unwrap_or(false)
}

impl CrdSchema {
    /// Wrap and compile a schema.
    pub fn new(raw: Value) -> Self {
        let rules = CompiledRules::compile(&raw);
        let has_defaults = declares_defaults(&raw);
        CrdSchema {
            raw,
            rules,
            has_defaults,
        }
    }

    /// Drop fields the schema does not know (and nulls it does not allow); returns the dropped paths
    /// so `fieldValidation=Strict` can report them.
    pub fn prune(&self, obj: &mut Value) -> Vec<String> {
        let mut dropped = Vec::new();
        prune(&self.raw, obj, "", true, &mut dropped);
        dropped
    }

    /// Fill in `default`s of absent fields.
    pub fn apply_defaults(&self, obj: &mut Value) {
        apply_defaults(&self.raw, obj);
    }

    /// Structural validation (types, required, enum, bounds, formats, list uniqueness).
    pub fn validate(&self, obj: &Value) -> Vec<Cause> {
        let mut causes = Vec::new();
        super::validation::validate(&self.raw, obj, "", true, &mut causes);
        causes
    }
}

fn prune(schema: &Value, value: &mut Value, path: &str, root: bool, dropped: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            let props = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties");
            let preserve = flag(schema, "x-kubernetes-preserve-unknown-fields");
            let embedded = flag(schema, "x-kubernetes-embedded-resource");
            let keys: Vec<String> = map.keys().cloned().collect();
            for key in keys {
                let child_path = join(path, &key);
                if (root || embedded) && ROOT_FIELDS.contains(&key.as_str()) {
                    continue;
                }
                let child_schema = props.and_then(|p| p.get(&key)).or(match additional {
                    Some(s @ Value::Object(_)) => Some(s),
                    _ => None,
                });
                match child_schema {
                    Some(cs) => {
                        let nullable = flag(cs, "nullable");
                        if map.get(&key).is_some_and(Value::is_null) && !nullable {
                            map.remove(&key);
                            continue;
                        }
                        if let Some(child) = map.get_mut(&key) {
                            prune(cs, child, &child_path, false, dropped);
                        }
                    }
                    None if preserve || additional == Some(&Value::Bool(true)) => {}
                    None => {
                        map.remove(&key);
                        dropped.push(child_path);
                    }
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter_mut().enumerate() {
                    prune(item_schema, item, &format!("{path}[{i}]"), false, dropped);
                }
            }
        }
        _ => {}
    }
}

fn apply_defaults(schema: &Value, value: &mut Value) {
    match value {
        Value::Object(map) => {
            if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                for (key, prop) in props {
                    if !map.contains_key(key)
                        && let Some(default) = prop.get("default")
                    {
                        map.insert(key.clone(), default.clone());
                    }
                    if let Some(child) = map.get_mut(key) {
                        apply_defaults(prop, child);
                    }
                }
            }
            if let Some(additional @ Value::Object(_)) = schema.get("additionalProperties") {
                for child in map.values_mut() {
                    apply_defaults(additional, child);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for item in items {
                    apply_defaults(item_schema, item);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> CrdSchema {
        CrdSchema::new(json!({
            "type": "object",
            "properties": {
                "spec": {
                    "type": "object",
                    "required": ["size"],
                    "properties": {
                        "size": {"type": "integer", "minimum": 1, "maximum": 5},
                        "mode": {"type": "string", "enum": ["a", "b"], "default": "a"},
                        "name": {"type": "string", "pattern": "^[a-z]+$", "maxLength": 5},
                        "port": {"x-kubernetes-int-or-string": true},
                        "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                        "tags": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set", "maxItems": 3},
                        "when": {"type": "string", "format": "date-time"}
                    }
                }
            }
        }))
    }

    #[test]
    fn prunes_unknown_fields_but_keeps_preserved_ones() {
        let mut obj = json!({"apiVersion":"x/v1","kind":"K","metadata":{"name":"a"},"spec":{"size":1,"bogus":1,"free":{"any":{"thing":1}}},"extra":true});
        let dropped = schema().prune(&mut obj);
        assert_eq!(dropped, vec!["extra".to_string(), "spec.bogus".to_string()]);
        assert_eq!(obj["spec"]["free"]["any"]["thing"], 1);
        assert_eq!(obj["metadata"]["name"], "a");
    }

    #[test]
    fn defaults_are_applied() {
        let mut obj = json!({"spec":{"size":1}});
        schema().apply_defaults(&mut obj);
        assert_eq!(obj["spec"]["mode"], "a");
    }

    #[test]
    fn reports_each_violation_with_its_field() {
        let obj = json!({"spec":{"size":9,"mode":"c","name":"ABCDEFG","port":1.5,"tags":["x","x"],"when":"yesterday"}});
        let causes = schema().validate(&obj);
        let fields: Vec<&str> = causes.iter().map(|c| c.field.as_str()).collect();
        for f in [
            "spec.size",
            "spec.mode",
            "spec.name",
            "spec.port",
            "spec.tags[1]",
            "spec.when",
        ] {
            assert!(fields.contains(&f), "{f} missing from {causes:?}");
        }
        let causes = schema().validate(&json!({"spec":{"size":"1"}}));
        assert_eq!(causes[0].reason, "FieldValueTypeInvalid");
        let causes = schema().validate(&json!({"spec":{}}));
        assert_eq!(
            causes[0],
            Cause::new("FieldValueRequired", "spec.size", "Required value")
        );
    }

    #[test]
    fn nullable_additional_properties_embedded_resources_and_counts() {
        let schema = CrdSchema::new(json!({
            "type": "object",
            "properties": {
                "spec": {
                    "type": "object",
                    "maxProperties": 4,
                    "properties": {
                        "maybe": {"type": "string", "nullable": true},
                        "never": {"type": "string"},
                        "labels": {"type": "object", "additionalProperties": {"type": "string", "maxLength": 3}},
                        "small": {"type": "integer", "format": "int32"},
                        "items": {"type": "array", "maxItems": 1, "items": {"type": "string"}},
                        "template": {"type": "object", "x-kubernetes-embedded-resource": true, "properties": {"spec": {"type": "object"}}}
                    }
                }
            }
        }));
        let mut obj = json!({"spec": {"maybe": null, "never": null, "labels": {"a": "xy"},
            "template": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "t"}, "spec": {}, "junk": 1}}});
        let dropped = schema.prune(&mut obj);
        assert_eq!(dropped, vec!["spec.template.junk".to_string()]);
        assert!(obj["spec"]["maybe"].is_null(), "nullable null kept");
        assert!(
            obj["spec"].get("never").is_none(),
            "non-nullable null pruned"
        );
        assert_eq!(
            obj["spec"]["template"]["metadata"]["name"], "t",
            "embedded metadata kept"
        );
        assert!(
            schema.validate(&obj).is_empty(),
            "{:?}",
            schema.validate(&obj)
        );

        let bad = json!({"spec": {"labels": {"a": "long"}, "small": 3_000_000_000u64, "items": ["a", "b"], "x1": 1, "x2": 2}});
        let causes = schema.validate(&bad);
        let fields: Vec<&str> = causes.iter().map(|c| c.field.as_str()).collect();
        for f in ["spec", "spec.labels.a", "spec.small", "spec.items"] {
            assert!(fields.contains(&f), "{f} missing from {causes:?}");
        }
    }
}
