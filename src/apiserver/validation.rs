//! Structural schema validation with kube-apiserver's causes and messages: types, required,
//! enum, bounds, lengths, item and property counts, formats, list-type uniqueness and the
//! `allOf`/`anyOf`/`oneOf`/`not` combinators.

use std::collections::HashSet;

use serde_json::{Map, Value};

use super::schema::{ROOT_FIELDS, flag, join, types};
use super::status::{Cause, invalid_value};

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

/// Validate `value` at `path` against `schema`, collecting causes.
pub fn validate(schema: &Value, value: &Value, path: &str, root: bool, causes: &mut Vec<Cause>) {
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
