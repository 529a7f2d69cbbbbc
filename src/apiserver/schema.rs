//! Structural OpenAPI v3 schemas of CRDs: pruning of unknown fields, defaulting, and validation
//! with the messages kube-apiserver produces.

use std::collections::HashSet;

use serde_json::{Map, Value};

use super::cel::CompiledRules;
use super::status::{Cause, invalid_value};

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
const ROOT_FIELDS: &[&str] = &["apiVersion", "kind", "metadata"];

fn join(path: &str, field: &str) -> String {
    if path.is_empty() {
        field.to_string()
    } else {
        format!("{path}.{field}")
    }
}

fn types(schema: &Value) -> Option<&str> {
    schema.get("type").and_then(Value::as_str)
}

fn flag(schema: &Value, name: &str) -> bool {
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
        validate(&self.raw, obj, "", true, &mut causes);
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

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "number",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn type_matches(expected: &str, v: &Value) -> bool {
    match expected {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "boolean" => v.is_boolean(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        _ => true,
    }
}

fn check_format(format: &str, v: &Value) -> bool {
    use base64::Engine;
    match (format, v) {
        ("int32", Value::Number(n)) => n.as_i64().is_none_or(|i| i32::try_from(i).is_ok()),
        ("date-time", Value::String(s)) => chrono::DateTime::parse_from_rfc3339(s).is_ok(),
        ("date", Value::String(s)) => chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok(),
        ("byte", Value::String(s)) => base64::engine::general_purpose::STANDARD.decode(s).is_ok(),
        ("uuid", Value::String(s)) => uuid::Uuid::parse_str(s).is_ok(),
        _ => true,
    }
}

fn number(v: &Value) -> Option<f64> {
    v.as_f64()
}

fn fmt_num(f: f64) -> String {
    if f.fract() == 0.0 && f.abs() < 1e15 {
        format!("{}", f as i64)
    } else {
        f.to_string()
    }
}

fn validate(schema: &Value, value: &Value, path: &str, root: bool, causes: &mut Vec<Cause>) {
    if value.is_null() {
        if !flag(schema, "nullable") && types(schema).is_some() {
            causes.push(Cause::new(
                "FieldValueTypeInvalid",
                path,
                format!(
                    "Invalid value: \"null\": {path} in body must be of type {}: \"null\"",
                    types(schema).unwrap_or_default()
                ),
            ));
        }
        return;
    }
    if flag(schema, "x-kubernetes-int-or-string") {
        if !(value.is_string() || value.is_i64() || value.is_u64()) {
            causes.push(Cause::new(
                "FieldValueTypeInvalid",
                path,
                format!(
                    "Invalid value: \"{}\": {path} in body must be of type integer,string: {}",
                    type_name(value),
                    super::status::render_value(value)
                ),
            ));
            return;
        }
    } else if let Some(t) = types(schema)
        && !type_matches(t, value)
    {
        causes.push(Cause::new(
            "FieldValueTypeInvalid",
            path,
            format!(
                "Invalid value: \"{}\": {path} in body must be of type {t}: {}",
                type_name(value),
                super::status::render_value(value)
            ),
        ));
        return;
    }
    let before = causes.len();
    check_scalar_constraints(schema, value, path, causes);
    for sub in schema
        .get("allOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        validate(sub, value, path, root, causes);
    }
    let passes = |s: &Value| {
        let mut c = Vec::new();
        validate(s, value, path, root, &mut c);
        c.is_empty()
    };
    if let Some(any) = schema.get("anyOf").and_then(Value::as_array)
        && !any.iter().any(passes)
    {
        causes.push(Cause::new(
            "FieldValueInvalid",
            path,
            invalid_value(value, "must validate at least one schema (anyOf)"),
        ));
    }
    if let Some(one) = schema.get("oneOf").and_then(Value::as_array)
        && one.iter().filter(|s| passes(s)).count() != 1
    {
        causes.push(Cause::new(
            "FieldValueInvalid",
            path,
            invalid_value(value, "must validate one and only one schema (oneOf)"),
        ));
    }
    if let Some(not) = schema.get("not")
        && passes(not)
    {
        causes.push(Cause::new(
            "FieldValueInvalid",
            path,
            invalid_value(value, "must not validate the schema (not)"),
        ));
    }
    if causes.len() > before {
        return;
    }
    match value {
        Value::Object(map) => validate_object(schema, map, path, root, causes),
        Value::Array(items) => validate_array(schema, items, path, causes),
        _ => {}
    }
}

fn check_scalar_constraints(schema: &Value, value: &Value, path: &str, causes: &mut Vec<Cause>) {
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.contains(value)
    {
        let list: Vec<String> = allowed.iter().map(super::status::render_value).collect();
        causes.push(Cause::new(
            "FieldValueNotSupported",
            path,
            format!(
                "Unsupported value: {}: supported values: {}",
                super::status::render_value(value),
                list.join(", ")
            ),
        ));
    }
    if let Some(n) = number(value).filter(|_| value.is_number()) {
        if let Some(max) = schema.get("maximum").and_then(Value::as_f64) {
            let excl = flag(schema, "exclusiveMaximum");
            if n > max || (excl && n >= max) {
                let rel = if excl {
                    "less than"
                } else {
                    "less than or equal to"
                };
                causes.push(Cause::new(
                    "FieldValueInvalid",
                    path,
                    invalid_value(
                        value,
                        &format!("{path} in body should be {rel} {}", fmt_num(max)),
                    ),
                ));
            }
        }
        if let Some(min) = schema.get("minimum").and_then(Value::as_f64) {
            let excl = flag(schema, "exclusiveMinimum");
            if n < min || (excl && n <= min) {
                let rel = if excl {
                    "greater than"
                } else {
                    "greater than or equal to"
                };
                causes.push(Cause::new(
                    "FieldValueInvalid",
                    path,
                    invalid_value(
                        value,
                        &format!("{path} in body should be {rel} {}", fmt_num(min)),
                    ),
                ));
            }
        }
        if let Some(m) = schema.get("multipleOf").and_then(Value::as_f64)
            && m != 0.0
            && (n / m).fract() != 0.0
        {
            causes.push(Cause::new(
                "FieldValueInvalid",
                path,
                invalid_value(
                    value,
                    &format!("{path} in body should be a multiple of {}", fmt_num(m)),
                ),
            ));
        }
    }
    if let Value::String(s) = value {
        let len = s.chars().count() as u64;
        if let Some(max) = schema.get("maxLength").and_then(Value::as_u64)
            && len > max
        {
            causes.push(Cause::new(
                "FieldValueTooLong",
                path,
                format!("Too long: may not be more than {max} bytes"),
            ));
        }
        if let Some(min) = schema.get("minLength").and_then(Value::as_u64)
            && len < min
        {
            causes.push(Cause::new(
                "FieldValueInvalid",
                path,
                invalid_value(
                    value,
                    &format!("{path} in body should be at least {min} chars long"),
                ),
            ));
        }
        if let Some(pattern) = schema.get("pattern").and_then(Value::as_str) {
            match regex::Regex::new(pattern) {
                Ok(re) if !re.is_match(s) => causes.push(Cause::new(
                    "FieldValueInvalid",
                    path,
                    invalid_value(value, &format!("{path} in body should match '{pattern}'")),
                )),
                _ => {}
            }
        }
    }
    if let Some(format) = schema.get("format").and_then(Value::as_str)
        && !check_format(format, value)
    {
        causes.push(Cause::new(
            "FieldValueInvalid",
            path,
            invalid_value(
                value,
                &format!(
                    "{path} in body must be of type {format}: {}",
                    super::status::render_value(value)
                ),
            ),
        ));
    }
}

fn validate_object(
    schema: &Value,
    map: &Map<String, Value>,
    path: &str,
    root: bool,
    causes: &mut Vec<Cause>,
) {
    for req in schema
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        if !map.contains_key(req) {
            causes.push(Cause::new(
                "FieldValueRequired",
                join(path, req),
                "Required value",
            ));
        }
    }
    let n = map.len() as u64;
    if let Some(max) = schema.get("maxProperties").and_then(Value::as_u64)
        && n > max
    {
        causes.push(Cause::new(
            "FieldValueTooMany",
            path,
            format!("Too many: {n}: must have at most {max} items"),
        ));
    }
    if let Some(min) = schema.get("minProperties").and_then(Value::as_u64)
        && n < min
    {
        causes.push(Cause::new(
            "FieldValueInvalid",
            path,
            format!("Invalid value: {n}: {path} in body should have at least {min} properties"),
        ));
    }
    let props = schema.get("properties").and_then(Value::as_object);
    let additional = schema.get("additionalProperties").filter(|a| a.is_object());
    for (key, child) in map {
        if root && ROOT_FIELDS.contains(&key.as_str()) {
            if key != "metadata"
                && let Some(cs) = props.and_then(|p| p.get(key))
            {
                validate(cs, child, key, false, causes);
            }
            continue;
        }
        if let Some(cs) = props.and_then(|p| p.get(key)).or(additional) {
            validate(cs, child, &join(path, key), false, causes);
        }
    }
}

fn validate_array(schema: &Value, items: &[Value], path: &str, causes: &mut Vec<Cause>) {
    let n = items.len() as u64;
    if let Some(max) = schema.get("maxItems").and_then(Value::as_u64)
        && n > max
    {
        causes.push(Cause::new(
            "FieldValueTooMany",
            path,
            format!("Too many: {n}: must have at most {max} items"),
        ));
    }
    if let Some(min) = schema.get("minItems").and_then(Value::as_u64)
        && n < min
    {
        causes.push(Cause::new(
            "FieldValueInvalid",
            path,
            format!("Invalid value: {n}: {path} in body should have at least {min} items"),
        ));
    }
    match schema.get("x-kubernetes-list-type").and_then(Value::as_str) {
        Some("set") => {
            let mut seen = HashSet::new();
            for (i, item) in items.iter().enumerate() {
                if !seen.insert(item.to_string()) {
                    causes.push(Cause::new(
                        "FieldValueDuplicate",
                        format!("{path}[{i}]"),
                        format!("Duplicate value: {}", super::status::render_value(item)),
                    ));
                }
            }
        }
        Some("map") => {
            let keys: Vec<&str> = schema
                .get("x-kubernetes-list-map-keys")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            let mut seen = HashSet::new();
            for (i, item) in items.iter().enumerate() {
                let key: Vec<String> = keys
                    .iter()
                    .map(|k| item.get(*k).map(Value::to_string).unwrap_or_default())
                    .collect();
                if !seen.insert(key.clone()) {
                    let shown: Vec<String> = keys
                        .iter()
                        .zip(&key)
                        .map(|(k, v)| format!("\"{k}\":{v}"))
                        .collect();
                    causes.push(Cause::new(
                        "FieldValueDuplicate",
                        format!("{path}[{i}]"),
                        format!(
                            "Duplicate value: map[string]interface {{}}{{{}}}",
                            shown.join(", ")
                        ),
                    ));
                }
            }
        }
        _ => {}
    }
    if let Some(item_schema) = schema.get("items") {
        for (i, item) in items.iter().enumerate() {
            validate(item_schema, item, &format!("{path}[{i}]"), false, causes);
        }
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
}
