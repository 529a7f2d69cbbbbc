//! The OpenAPI constraint table, checked against the generated CRD schemas.

use std::collections::BTreeSet;

use serde_json::Value;

use super::openapi_cases::{self, Case};
use super::schema_check::{self, openapi_schema};
use crate::api::{Cluster, ClusterProfileView, NodePool, Stack};
use crate::crdgen;

const CONSTRAINTS: [&str; 8] = [
    "pattern",
    "enum",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
];

fn schema_of(kind: &str) -> Value {
    let crd = crdgen::all()
        .into_iter()
        .find(|crd| crd.spec.names.kind == kind);
    openapi_schema(&crd.unwrap_or_else(|| panic!("no CRD for kind {kind}")))
}

/// Parses an object as its Rust type and runs its CEL creation rules.
fn cel_verdict(object: &Value) -> Result<(), String> {
    fn run<K: serde::de::DeserializeOwned>(
        object: &Value,
        validate: impl Fn(&K) -> Result<(), kube::core::cel::ValidationErrors>,
    ) -> Result<(), String> {
        let typed: K =
            serde_json::from_value(object.clone()).map_err(|e| format!("does not parse: {e}"))?;
        validate(&typed).map_err(|e| format!("{e:?}"))
    }
    match object["kind"].as_str() {
        Some("Cluster") => run(object, Cluster::validate_cel),
        Some("NodePool") => run(object, NodePool::validate_cel),
        Some("Stack") => run(object, Stack::validate_cel),
        Some("ClusterProfileView") => run(object, ClusterProfileView::validate_cel),
        other => Err(format!("unknown kind {other:?}")),
    }
}

/// Verdict of the schema on one case; `None` when it is as the table says.
fn mismatch(case: &Case) -> Option<String> {
    let violations = schema_check::check(&schema_of(&case.kind), &case.object);
    let expected = violations
        .iter()
        .any(|v| v.path == case.field && v.keyword == case.keyword);
    let elsewhere: Vec<_> = violations.iter().filter(|v| v.path != case.field).collect();
    if case.accepted {
        if !violations.is_empty() {
            return Some(format!(
                "{}: but the schema says {violations:?}",
                case.describe()
            ));
        }
        if let Err(e) = cel_verdict(&case.object) {
            return Some(format!(
                "{}: but a CEL rule rejects it: {e}",
                case.describe()
            ));
        }
    } else if !expected || !elsewhere.is_empty() {
        return Some(format!(
            "{}: but the schema says {violations:?}",
            case.describe()
        ));
    }
    None
}

#[test]
fn every_case_gets_the_expected_verdict() {
    let failures: Vec<String> = openapi_cases::all().iter().filter_map(mismatch).collect();
    assert!(
        failures.is_empty(),
        "{} OpenAPI cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Every constrained field of a kind's spec, as (schema field, keyword).
fn constraints(schema: &Value) -> BTreeSet<(String, &'static str)> {
    fn walk(schema: &Value, field: &str, out: &mut BTreeSet<(String, &'static str)>) {
        let join = |name: &str| {
            if field.is_empty() {
                name.to_string()
            } else {
                format!("{field}.{name}")
            }
        };
        for keyword in CONSTRAINTS {
            if schema.get(keyword).is_some() {
                out.insert((field.to_string(), keyword));
            }
        }
        for name in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            out.insert((join(name.as_str().unwrap_or_default()), "required"));
        }
        for (name, child) in schema
            .get("properties")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            if !(field.is_empty() && name == "status") {
                walk(child, &join(name), out);
            }
        }
        if let Some(items) = schema.get("items") {
            walk(items, &format!("{field}[]"), out);
        }
        if let Some(values) = schema.get("additionalProperties").filter(|v| v.is_object()) {
            walk(values, &format!("{field}[]"), out);
        }
    }
    let mut out = BTreeSet::new();
    walk(schema, "", &mut out);
    out
}

#[test]
fn every_spec_constraint_has_an_accepted_and_a_rejected_case() {
    let cases = openapi_cases::all();
    let mut missing = Vec::new();
    for crd in crdgen::all() {
        let kind = crd.spec.names.kind.clone();
        for (field, keyword) in constraints(&openapi_schema(&crd)) {
            for accepted in [true, false] {
                let covered = cases.iter().any(|c| {
                    c.kind == kind
                        && c.schema_field() == field
                        && c.keyword == keyword
                        && c.accepted == accepted
                });
                if !covered {
                    let verdict = if accepted { "accepted" } else { "rejected" };
                    missing.push(format!("{kind} {field} {keyword}: no {verdict} case"));
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        "constraints without cases in openapi_cases.rs:\n{}",
        missing.join("\n")
    );
}

#[test]
fn cases_name_real_constraints() {
    // A case whose field or keyword is misspelt would pass its check for the wrong reason.
    let known: BTreeSet<(String, String, &str)> = crdgen::all()
        .iter()
        .flat_map(|crd| {
            let kind = crd.spec.names.kind.clone();
            constraints(&openapi_schema(crd))
                .into_iter()
                .map(move |(f, k)| (kind.clone(), f, k))
        })
        .collect();
    for case in openapi_cases::all() {
        let key = (case.kind.clone(), case.schema_field(), case.keyword);
        assert!(
            known.contains(&key),
            "{} names no constraint of the CRD",
            case.describe()
        );
    }
}
