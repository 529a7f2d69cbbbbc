//! What happens to an object between the request and storage: the status-subresource strategy,
//! server-owned metadata, generation, CRD pruning/defaulting/validation and built-in defaults.

use serde_json::{Value, json};

use super::builtin;
use super::http::Query;
use super::registry::Builtin;
use super::state::Target;
use super::status::{ApiError, ApiResult, Cause, invalid_value};

/// Which endpoint a write came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// The resource itself.
    Main,
    /// The `/status` subresource.
    Status,
}

impl Endpoint {
    /// From the URL's subresource.
    pub fn of(target: &Target) -> Self {
        if target.subresource.as_deref() == Some("status") {
            Endpoint::Status
        } else {
            Endpoint::Main
        }
    }
}

/// Server-owned metadata that clients cannot change on update.
const IMMUTABLE_META: &[&str] = &[
    "uid",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "name",
    "namespace",
    "generation",
    "selfLink",
];

/// The current time as Kubernetes formats it.
pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn without(obj: &Value, keys: &[&str]) -> Value {
    let mut copy = obj.clone();
    if let Some(m) = copy.as_object_mut() {
        for k in keys {
            m.remove(*k);
        }
    }
    copy
}

/// Turn the incoming object into the object to store; `old` is the stored object on update.
pub fn admit(
    target: &Target,
    query: &Query,
    mut new: Value,
    old: Option<&Value>,
    endpoint: Endpoint,
) -> ApiResult<Value> {
    let has_status = target.has_status_subresource();
    match (old, endpoint) {
        (Some(old), Endpoint::Status) => {
            // The status endpoint changes status only (plus the managedFields recorded for it).
            let status = new.get("status").cloned();
            let managed = new.pointer("/metadata/managedFields").cloned();
            new = old.clone();
            match status {
                Some(s) => new["status"] = s,
                None => {
                    new.as_object_mut().map(|m| m.remove("status"));
                }
            }
            if let Some(mf) = managed {
                new["metadata"]["managedFields"] = mf;
            }
        }
        (Some(old), Endpoint::Main) if has_status => match old.get("status") {
            Some(s) => new["status"] = s.clone(),
            None => {
                new.as_object_mut().map(|m| m.remove("status"));
            }
        },
        (None, Endpoint::Main) if has_status && target.def.is_custom() => {
            new.as_object_mut().map(|m| m.remove("status"));
        }
        _ => {}
    }
    if !new.get("metadata").is_some_and(Value::is_object) {
        new["metadata"] = json!({});
    }
    new["apiVersion"] = Value::String(target.def.api_version(target.def.storage_version()));
    new["kind"] = Value::String(target.def.kind.clone());
    match old {
        Some(old) => {
            for key in IMMUTABLE_META {
                match old.pointer(&format!("/metadata/{key}")) {
                    Some(v) => new["metadata"][*key] = v.clone(),
                    None => {
                        new["metadata"].as_object_mut().map(|m| m.remove(*key));
                    }
                }
            }
        }
        None => {
            let meta = &mut new["metadata"];
            meta["uid"] = json!(uuid::Uuid::new_v4().to_string());
            meta["creationTimestamp"] = json!(now());
            meta["generation"] = json!(1);
            if let Some(m) = meta.as_object_mut() {
                for k in [
                    "deletionTimestamp",
                    "deletionGracePeriodSeconds",
                    "resourceVersion",
                    "selfLink",
                ] {
                    m.remove(k);
                }
            }
            builtin::default_on_create(target.def.builtin, &mut new);
        }
    }
    if target.def.builtin == Builtin::Secret {
        builtin::fold_string_data(&mut new);
    }
    validate_metadata(target, &new)?;
    if let Some(schema) = target.version_def().schema.clone() {
        let dropped = schema.prune(&mut new);
        if query.get("fieldValidation") == Some("Strict") && !dropped.is_empty() {
            let fields: Vec<String> = dropped
                .iter()
                .map(|d| format!("unknown field \"{d}\""))
                .collect();
            return Err(ApiError::BadRequest(format!(
                "{} in version \"{}\" cannot be handled as a {}: strict decoding error: {}",
                target.def.kind,
                target.version,
                target.def.kind,
                fields.join(", ")
            )));
        }
        schema.apply_defaults(&mut new);
        let mut causes = schema.validate(&new);
        if let Some(skipped) = cel_blocked(&causes) {
            causes.push(skipped);
        } else {
            causes.extend(schema.rules.validate(&new, old));
        }
        if !causes.is_empty() {
            return Err(ApiError::Invalid(target.subject(name_of(&new)), causes));
        }
    }
    if let Some(old) = old {
        let ignored: &[&str] = if has_status {
            &["metadata", "status"]
        } else {
            &["metadata"]
        };
        if without(&new, ignored) != without(old, ignored) {
            let generation = old
                .pointer("/metadata/generation")
                .and_then(Value::as_i64)
                .unwrap_or(1);
            new["metadata"]["generation"] = json!(generation + 1);
        }
    }
    Ok(new)
}

/// Like kube-apiserver, the CEL rules are skipped only after a schema error that leaves values
/// the rules cannot rely on — a wrong type, a missing required field, a value outside its enum, a
/// string or list over its bound — and then one extra cause says so. After other schema errors
/// (patterns, numeric bounds, minimums) the rules run as well and their errors are added.
fn cel_blocked(causes: &[Cause]) -> Option<Cause> {
    const BLOCKING: [&str; 5] = [
        "FieldValueNotSupported",
        "FieldValueRequired",
        "FieldValueTooLong",
        "FieldValueTooMany",
        "FieldValueTypeInvalid",
    ];
    causes
        .iter()
        .any(|c| BLOCKING.contains(&c.reason.as_str()))
        .then(|| {
            Cause::new(
                "FieldValueInvalid",
                "<nil>",
                "Invalid value: null: some validation rules were not checked because the object \
                 was invalid; correct the existing errors to complete validation",
            )
        })
}

/// `metadata.name` ("" when absent).
pub fn name_of(obj: &Value) -> &str {
    obj.pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// Whether `s` has the characters of a DNS subdomain (its length is checked apart, as
/// kube-apiserver reports it apart).
fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

fn is_dns_label(s: &str) -> bool {
    !s.contains('.') && is_dns_subdomain(s)
}

/// kube-apiserver's errors for an object name: one for the length, one for the characters.
fn name_errors(name: &str, namespace: bool) -> Vec<String> {
    let (max, ok, what) = if namespace {
        (
            63,
            is_dns_label(name),
            "label must consist of lower case alphanumeric characters or '-'",
        )
    } else {
        (
            253,
            is_dns_subdomain(name),
            "subdomain must consist of lower case alphanumeric characters, '-' or '.'",
        )
    };
    let mut errors = Vec::new();
    if name.len() > max {
        errors.push(format!("must be no more than {max} characters"));
    }
    if !ok {
        errors.push(format!(
            "a lowercase RFC 1123 {what}, and must start and end with an alphanumeric character"
        ));
    }
    errors
}

fn validate_metadata(target: &Target, obj: &Value) -> ApiResult<()> {
    let name = name_of(obj);
    let mut causes = Vec::new();
    if name.is_empty() {
        causes.push(Cause::new(
            "FieldValueRequired",
            "metadata.name",
            "Required value: name or generateName is required",
        ));
    } else {
        for error in name_errors(name, target.def.builtin == Builtin::Namespace) {
            causes.push(Cause::new(
                "FieldValueInvalid",
                "metadata.name",
                invalid_value(&json!(name), &error),
            ));
        }
    }
    for (field, check_values) in [("labels", true), ("annotations", false)] {
        if let Some(map) = obj
            .pointer(&format!("/metadata/{field}"))
            .and_then(Value::as_object)
        {
            for (k, v) in map {
                let selector = if check_values {
                    format!("{k}={}", v.as_str().unwrap_or("-invalid-"))
                } else {
                    k.clone()
                };
                if crate::selector::LabelSelector::parse(&selector).is_err() || !v.is_string() {
                    causes.push(Cause::new(
                        "FieldValueInvalid",
                        format!("metadata.{field}"),
                        invalid_value(v, &format!("invalid {field} entry {k:?}")),
                    ));
                }
            }
        }
    }
    if causes.is_empty() {
        Ok(())
    } else {
        Err(ApiError::Invalid(target.subject(name), causes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_too_long_is_reported_as_too_long_like_kube_apiserver() {
        assert!(name_errors("edge", false).is_empty());
        assert_eq!(
            name_errors(&"a".repeat(254), false),
            ["must be no more than 253 characters"]
        );
        assert!(name_errors(&"a".repeat(253), false).is_empty());
        assert_eq!(
            name_errors(&"a".repeat(64), true),
            ["must be no more than 63 characters"]
        );
        let both = name_errors(&format!("A{}", "a".repeat(253)), false);
        assert_eq!(both.len(), 2);
        assert!(
            both[1].starts_with("a lowercase RFC 1123 subdomain"),
            "{both:?}"
        );
        assert!(name_errors("a.b", true)[0].starts_with("a lowercase RFC 1123 label"));
    }
}
