//! A compact checker of the OpenAPI v3 keywords the API server enforces on mk8's CRDs (test-only).
//!
//! It covers exactly `type`, `nullable`, `required`, `enum`, `pattern`, `minimum`, `maximum`,
//! `minLength`, `maxLength`, `minItems` and `maxItems`, and reports field paths the way the
//! API server does (`spec.ssh.hosts[1].port`), so that cases written for it replay against a real
//! server. CEL rules are not evaluated here; `validate_cel` does that.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use regex::Regex;
use serde_json::Value;

/// One broken constraint: where, which keyword, and what was wrong.
#[derive(Clone, Debug, PartialEq)]
pub struct Violation {
    /// Field path, such as `spec.eks.vpc.subnetIds[0]`.
    pub path: String,
    /// The OpenAPI keyword that failed, such as `pattern`.
    pub keyword: &'static str,
    /// What was wrong, for failure messages.
    pub detail: String,
}

/// The `openAPIV3Schema` of the (only) version of a CRD, as JSON.
pub fn openapi_schema(crd: &CustomResourceDefinition) -> Value {
    let schema = crd.spec.versions[0]
        .schema
        .as_ref()
        .and_then(|s| s.open_api_v3_schema.as_ref());
    serde_json::to_value(schema.expect("mk8 CRDs carry an openAPIV3Schema"))
        .expect("schema is JSON")
}

/// Every violation of `schema` by `value`; empty when the value is accepted.
pub fn check(schema: &Value, value: &Value) -> Vec<Violation> {
    let mut out = Vec::new();
    walk(schema, value, "", &mut out);
    out
}

fn violation(path: &str, keyword: &'static str, detail: String) -> Violation {
    Violation {
        path: path.to_string(),
        keyword,
        detail,
    }
}

fn has_type(value: &Value, expected: &str) -> bool {
    match expected {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "boolean" => value.is_boolean(),
        _ => true,
    }
}

/// Violations of a lower and an upper bound (`[min keyword, max keyword]`) by `actual`.
fn bounds(
    schema: &Value,
    actual: f64,
    [low, high]: [&'static str; 2],
    unit: &str,
) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    if let Some(min) = schema.get(low).and_then(Value::as_f64)
        && actual < min
    {
        out.push((low, format!("{actual}{unit}, at least {min} allowed")));
    }
    if let Some(max) = schema.get(high).and_then(Value::as_f64)
        && actual > max
    {
        out.push((high, format!("{actual}{unit}, at most {max} allowed")));
    }
    out
}

fn walk(schema: &Value, value: &Value, path: &str, out: &mut Vec<Violation>) {
    let mut found: Vec<(&'static str, String)> = Vec::new();
    let nullable = schema.get("nullable") == Some(&Value::Bool(true));
    if value.is_null() && nullable {
        return;
    }
    if let Some(expected) = schema.get("type").and_then(Value::as_str)
        && !has_type(value, expected)
    {
        let detail = format!("expected {expected}, got {value}");
        out.push(violation(path, "type", detail));
        return;
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.contains(value)
    {
        found.push(("enum", format!("{value} is not one of {allowed:?}")));
    }
    if let Some(text) = value.as_str() {
        if let Some(pattern) = schema.get("pattern").and_then(Value::as_str)
            && !Regex::new(pattern)
                .expect("CRD patterns compile")
                .is_match(text)
        {
            found.push(("pattern", format!("{text:?} does not match {pattern}")));
        }
        found.extend(bounds(
            schema,
            text.chars().count() as f64,
            ["minLength", "maxLength"],
            " characters",
        ));
    }
    if let Some(number) = value.as_f64() {
        found.extend(bounds(schema, number, ["minimum", "maximum"], ""));
    }
    if let Some(items) = value.as_array() {
        found.extend(bounds(
            schema,
            items.len() as f64,
            ["minItems", "maxItems"],
            " items",
        ));
    }
    out.extend(
        found
            .into_iter()
            .map(|(keyword, detail)| violation(path, keyword, detail)),
    );
    if let (Some(items), Some(item_schema)) = (value.as_array(), schema.get("items")) {
        for (index, item) in items.iter().enumerate() {
            walk(item_schema, item, &format!("{path}[{index}]"), out);
        }
    }
    if let Some(object) = value.as_object() {
        let child = |name: &str| {
            if path.is_empty() {
                name.to_string()
            } else {
                format!("{path}.{name}")
            }
        };
        for name in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let name = name.as_str().expect("required names are strings");
            if !object.contains_key(name) {
                out.push(violation(&child(name), "required", "missing".into()));
            }
        }
        let properties = schema.get("properties").and_then(Value::as_object);
        let additional = schema.get("additionalProperties").filter(|a| a.is_object());
        for (name, field) in object {
            match (properties.and_then(|p| p.get(name)), additional) {
                (Some(field_schema), _) => walk(field_schema, field, &child(name), out),
                (None, Some(value_schema)) => {
                    walk(value_schema, field, &format!("{path}[{name}]"), out)
                }
                (None, None) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn keywords(schema: Value, value: Value) -> Vec<(String, &'static str)> {
        let mut found: Vec<_> = check(&schema, &value)
            .into_iter()
            .map(|v| (v.path, v.keyword))
            .collect();
        found.sort();
        found
    }

    #[test]
    fn reports_each_keyword_at_the_field_path() {
        let schema = json!({"type": "object", "required": ["a"], "properties": {
            "a": {"type": "array", "maxItems": 1, "items": {"type": "string", "pattern": "^x+$", "maxLength": 2}},
            "n": {"type": "integer", "minimum": 1, "maximum": 3},
            "e": {"type": "string", "enum": ["on", "off"], "nullable": true},
            "m": {"type": "object", "additionalProperties": {"type": "string", "minLength": 1}}}});
        assert_eq!(
            keywords(
                schema.clone(),
                json!({"a": ["xx"], "n": 3, "e": null, "m": {"k": "v"}})
            ),
            vec![]
        );
        assert_eq!(
            keywords(
                schema,
                json!({"a": ["y", "xxx"], "n": 0, "e": "up", "m": {"k": ""}})
            ),
            vec![
                ("a".into(), "maxItems"),
                ("a[0]".into(), "pattern"),
                ("a[1]".into(), "maxLength"),
                ("e".into(), "enum"),
                ("m[k]".into(), "minLength"),
                ("n".into(), "minimum"),
            ]
        );
    }

    #[test]
    fn reports_missing_fields_and_wrong_types() {
        let schema = json!({"type": "object", "required": ["spec"], "properties": {
            "spec": {"type": "object", "properties": {"n": {"type": "integer"}}}}});
        assert_eq!(
            keywords(schema.clone(), json!({})),
            vec![("spec".into(), "required")]
        );
        assert_eq!(
            keywords(schema.clone(), json!({"spec": {"n": "1"}})),
            vec![("spec.n".into(), "type")]
        );
        assert_eq!(
            keywords(schema, json!({"spec": null})),
            vec![("spec".into(), "type")]
        );
    }
}
