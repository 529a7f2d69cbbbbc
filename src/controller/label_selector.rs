//! Checks a structured label selector (pure), saying what is wrong and how to fix it: the
//! selector types accept any operator string, and kube's conversion only says that one is bad.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::core::Selector;

/// Why `selector` cannot select anything, if it cannot: a sentence starting with the part of it
/// at fault (`matchExpressions[0]: ...`).
pub fn problem(selector: &LabelSelector) -> Option<String> {
    for (i, e) in selector.match_expressions.iter().flatten().enumerate() {
        let at = format!("matchExpressions[{i}] (key {:?})", e.key);
        let values = e.values.as_deref().unwrap_or_default();
        match e.operator.as_str() {
            "In" | "NotIn" if values.is_empty() => {
                return Some(format!(
                    "{at}: operator {} needs at least one value; list them in values",
                    e.operator
                ));
            }
            "Exists" | "DoesNotExist" if !values.is_empty() => {
                return Some(format!(
                    "{at}: operator {} takes no values; remove values",
                    e.operator
                ));
            }
            "In" | "NotIn" | "Exists" | "DoesNotExist" => {}
            other => {
                return Some(format!(
                    "{at}: unknown operator {other:?}; use In, NotIn, Exists or DoesNotExist"
                ));
            }
        }
    }
    Selector::try_from(selector.clone())
        .err()
        .map(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn selector(yaml: &str) -> LabelSelector {
        serde_yaml::from_str(yaml).expect("fixture parses")
    }

    #[test]
    fn operators_and_values_are_checked_by_name() {
        assert_eq!(problem(&selector("{matchLabels: {env: prod}}")), None);
        assert_eq!(
            problem(&selector(
                "{matchExpressions: [{key: env, operator: In, values: [prod]}, {key: tier, operator: Near, values: [db]}]}"
            ))
            .as_deref(),
            Some(
                "matchExpressions[1] (key \"tier\"): unknown operator \"Near\"; use In, NotIn, Exists or DoesNotExist"
            )
        );
        assert_eq!(
            problem(&selector(
                "{matchExpressions: [{key: env, operator: NotIn, values: []}]}"
            ))
            .as_deref(),
            Some(
                "matchExpressions[0] (key \"env\"): operator NotIn needs at least one value; list them in values"
            )
        );
        assert!(
            problem(&selector(
                "{matchExpressions: [{key: env, operator: Exists, values: [prod]}]}"
            ))
            .unwrap()
            .ends_with("operator Exists takes no values; remove values")
        );
    }
}
