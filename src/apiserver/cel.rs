//! CEL `x-kubernetes-validations` (including `oldSelf` transition rules), evaluated with kube-cel.
//! Rules are compiled once per CRD version.

use serde_json::Value;

use super::status::Cause;

/// The compiled rules of one schema (absent when the schema has none, which skips CEL entirely).
pub struct CompiledRules(Option<kube_cel::CompiledSchema>);

fn has_rules(schema: &Value) -> bool {
    match schema {
        Value::Object(m) => m.contains_key("x-kubernetes-validations") || m.values().any(has_rules),
        Value::Array(a) => a.iter().any(has_rules),
        _ => false,
    }
}

impl CompiledRules {
    /// Compile every rule in the schema.
    pub fn compile(schema: &Value) -> Self {
        CompiledRules(has_rules(schema).then(|| kube_cel::compile_schema(schema)))
    }

    /// Evaluate the rules on `obj` (and `old` for transition rules, on update).
    pub fn validate(&self, obj: &Value, old: Option<&Value>) -> Vec<Cause> {
        let Some(compiled) = &self.0 else {
            return Vec::new();
        };
        match kube_cel::validate_compiled(compiled, obj, old) {
            Ok(()) => Vec::new(),
            Err(errors) => errors
                .into_vec()
                .into_iter()
                .map(|e| {
                    let reason = e
                        .reason
                        .clone()
                        .unwrap_or_else(|| "FieldValueInvalid".to_string());
                    let message = match reason.as_str() {
                        "FieldValueRequired" => format!("Required value: {}", e.message),
                        "FieldValueForbidden" => format!("Forbidden: {}", e.message),
                        "FieldValueDuplicate" => format!("Duplicate value: {}", e.message),
                        // kube-apiserver omits the value of a CEL rule's failure (field.OmitValueType).
                        _ => format!("Invalid value: {}", e.message),
                    };
                    Cause::new(&reason, e.field_path, message)
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn transition_rule_only_runs_on_update() {
        let schema = json!({"type":"object","properties":{"spec":{"type":"object","properties":{"m":{
            "type":"object","properties":{"name":{"type":"string"}},
            "x-kubernetes-validations":[{"rule":"self == oldSelf","message":"m is immutable"}]}}}}});
        let rules = CompiledRules::compile(&schema);
        let new = json!({"spec":{"m":{"name":"b"}}});
        assert!(rules.validate(&new, None).is_empty());
        let causes = rules.validate(&new, Some(&json!({"spec":{"m":{"name":"a"}}})));
        assert_eq!(causes.len(), 1);
        assert_eq!(causes[0].field, "spec.m");
        assert_eq!(causes[0].message, "Invalid value: m is immutable");
    }
}
