//! Every CEL rule of every kind (the cases of `cel_cases.rs`), evaluated client-side through the
//! generated `validate_cel` / `validate_cel_update`, and checked to cover every rule of the CRDs.

use kube::CustomResourceExt;
use kube::core::cel::ValidationErrors;
use serde::Serialize;
use serde_json::Value;

use super::cel_cases::{self, RuleCase};
use super::schema_check;
use crate::api::{Cluster, ClusterProfileView, NodePool, Stack};

/// The generated CEL entry points of a kind.
trait Cel: CustomResourceExt + Serialize {
    fn on_create(&self) -> Result<(), ValidationErrors>;
    fn on_update(&self, old: &Self) -> Result<(), ValidationErrors>;
}

macro_rules! cel {
    ($($kind:ty),*) => {$(
        impl Cel for $kind {
            fn on_create(&self) -> Result<(), ValidationErrors> {
                <$kind>::validate_cel(self)
            }
            fn on_update(&self, old: &Self) -> Result<(), ValidationErrors> {
                <$kind>::validate_cel_update(self, old)
            }
        }
    )*};
}

cel!(Cluster, NodePool, Stack, ClusterProfileView);

/// A CEL rule found in a CRD schema.
#[derive(Debug)]
pub struct CrdRule {
    /// Schema path of the field carrying the rule (`spec.components[]`).
    pub field: String,
    /// The CEL expression.
    pub rule: String,
    /// The message shown to the user.
    pub message: String,
}

/// Every `x-kubernetes-validations` rule of a CRD schema.
pub fn crd_rules(schema: &Value) -> Vec<CrdRule> {
    fn walk(schema: &Value, field: &str, out: &mut Vec<CrdRule>) {
        for rule in schema
            .get("x-kubernetes-validations")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            out.push(CrdRule {
                field: field.to_string(),
                rule: rule["rule"].as_str().unwrap_or_default().to_string(),
                message: rule["message"].as_str().unwrap_or_default().to_string(),
            });
        }
        for (name, child) in schema
            .get("properties")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            let path = if field.is_empty() {
                name.clone()
            } else {
                format!("{field}.{name}")
            };
            walk(child, &path, out);
        }
        if let Some(items) = schema.get("items") {
            walk(items, &format!("{field}[]"), out);
        }
    }
    let mut out = Vec::new();
    walk(schema, "", &mut out);
    out
}

/// `spec.components[3]` → `spec.components[]`.
fn schema_path(path: &str) -> String {
    regex::Regex::new(r"\[[0-9]+\]")
        .expect("valid regex")
        .replace_all(path, "[]")
        .into_owned()
}

/// The spec of an object as one line of JSON, for failure messages.
fn spec_json<K: Serialize>(object: &K) -> String {
    serde_json::to_value(object)
        .map(|v| v["spec"].to_string())
        .unwrap_or_default()
}

/// Runs the cases of one kind and checks that they cover every rule of its CRD.
fn check_rules<K: Cel>(cases: Vec<RuleCase<K>>) {
    let schema = schema_check::openapi_schema(&K::crd());
    let rules = crd_rules(&schema);
    let kind = K::crd().spec.names.kind;
    let mut failures = Vec::new();
    for case in &cases {
        let Some(crd_rule) = rules.iter().find(|r| r.rule == case.rule) else {
            failures.push(format!("{kind}: rule `{}` is not in the CRD", case.rule));
            continue;
        };
        let validate = |object: &K| match &case.old {
            Some(old) => object.on_update(old),
            None => object.on_create(),
        };
        if case.accepted.is_empty() || case.rejected.is_empty() {
            failures.push(format!(
                "{kind}: rule `{}` needs an accepted and a rejected example",
                case.rule
            ));
        }
        for object in &case.accepted {
            if let Err(errors) = validate(object) {
                let spec = spec_json(object);
                failures.push(format!(
                    "{kind}: `{}` should accept {spec}\n  but: {errors:?}",
                    case.rule
                ));
            }
        }
        for object in &case.rejected {
            match validate(object) {
                Ok(()) => failures.push(format!(
                    "{kind}: `{}` should reject {}",
                    case.rule,
                    spec_json(object)
                )),
                Err(errors) => {
                    for error in errors.iter() {
                        if error.message != crd_rule.message {
                            failures.push(format!(
                                "{kind}: `{}` example fails another rule too: {error}",
                                case.rule
                            ));
                        }
                        let field = schema_path(&error.field_path);
                        if !error.message.contains(&field) || !error.message.contains("spec.") {
                            failures.push(format!(
                                "{kind}: message of `{}` does not name its field {field}: {}",
                                case.rule, error.message
                            ));
                        }
                    }
                }
            }
            if case.old.is_some() && object.on_create().is_err() {
                failures.push(format!(
                    "{kind}: transition rule `{}` fires on create too",
                    case.rule
                ));
            }
        }
        // The examples break nothing but the rule: the OpenAPI part of the schema accepts them.
        for object in case.accepted.iter().chain(&case.rejected) {
            let json = serde_json::to_value(object).expect("object serializes");
            for violation in schema_check::check(&schema, &json) {
                failures.push(format!(
                    "{kind}: example of `{}` breaks the schema: {violation:?}",
                    case.rule
                ));
            }
        }
    }
    for crd_rule in &rules {
        if !cases.iter().any(|c| c.rule == crd_rule.rule) {
            failures.push(format!(
                "{kind}: rule `{}` on {} has no test case",
                crd_rule.rule, crd_rule.field
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} CEL rule failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn cluster_rules() {
    check_rules(cel_cases::cluster_rules());
}

#[test]
fn nodepool_rules() {
    check_rules(cel_cases::nodepool_rules());
}

#[test]
fn stack_rules() {
    check_rules(cel_cases::stack_rules());
}

#[test]
fn view_rules() {
    check_rules(cel_cases::view_rules());
}
