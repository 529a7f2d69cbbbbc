//! Kubernetes `Status` errors: one enum whose variants map to the HTTP code, `reason` and body
//! the real kube-apiserver sends, so kubectl and kube-rs print and classify them the same way.

use serde_json::{Value, json};

/// One `details.causes[]` entry of a `Status`.
#[derive(Debug, Clone, PartialEq)]
pub struct Cause {
    /// Machine-readable cause (`FieldValueInvalid`, `FieldValueRequired`, ...), sent as `reason`.
    pub reason: String,
    /// Human-readable explanation, without the field path.
    pub message: String,
    /// Field path such as `spec.foo[0].bar`.
    pub field: String,
}

impl Cause {
    /// A cause with the given reason, field and message.
    pub fn new(reason: &str, field: impl Into<String>, message: impl Into<String>) -> Self {
        Cause {
            reason: reason.to_string(),
            message: message.into(),
            field: field.into(),
        }
    }

    fn to_json(&self) -> Value {
        json!({"reason": self.reason, "message": self.message, "field": self.field})
    }
}

/// Which object an error is about: used to build `details` and the messages.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Subject {
    /// API group ("" for core).
    pub group: String,
    /// Plural resource name (`configmaps`).
    pub resource: String,
    /// Kind (`ConfigMap`), used by `Invalid`.
    pub kind: String,
    /// Object name, possibly empty.
    pub name: String,
}

impl Subject {
    /// `configmaps` or `applications.argoproj.io`, as Kubernetes qualifies resources in messages.
    pub fn qualified_resource(&self) -> String {
        if self.group.is_empty() {
            self.resource.clone()
        } else {
            format!("{}.{}", self.resource, self.group)
        }
    }

    /// `ConfigMap` or `Application.argoproj.io`.
    pub fn qualified_kind(&self) -> String {
        if self.group.is_empty() {
            self.kind.clone()
        } else {
            format!("{}.{}", self.kind, self.group)
        }
    }
}

/// The details of a server-side apply conflict.
#[derive(Debug)]
pub struct ApplyConflict {
    /// The object.
    pub subject: Subject,
    /// Full message listing the conflicts.
    pub message: String,
    /// One cause per conflicting field.
    pub causes: Vec<Cause>,
}

/// Every failure a request can end with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Malformed input (400).
    #[error("{0}")]
    BadRequest(String),
    /// Missing or wrong bearer token (401).
    #[error("Unauthorized")]
    Unauthorized,
    /// Object or resource not found (404).
    #[error("{} \"{}\" not found", .0.qualified_resource(), .0.name)]
    NotFound(Box<Subject>),
    /// A path the server does not serve (404, no details).
    #[error("the server could not find the requested resource")]
    UnknownPath,
    /// Verb not supported on this resource (405).
    #[error("the server does not allow this method on the requested resource")]
    MethodNotAllowed,
    /// Create of an existing object (409).
    #[error("{} \"{}\" already exists", .0.qualified_resource(), .0.name)]
    AlreadyExists(Box<Subject>),
    /// Optimistic-concurrency or precondition failure (409).
    #[error("Operation cannot be fulfilled on {} \"{}\": {}", .0.qualified_resource(), .0.name, .1)]
    Conflict(Box<Subject>, String),
    /// Server-side apply conflicts with other managers (409).
    #[error("{}", .0.message)]
    ApplyConflict(Box<ApplyConflict>),
    /// A watch asked for history that is no longer retained (410).
    #[error("too old resource version: {0} ({1})")]
    Expired(u64, u64),
    /// Body too large (413).
    #[error("Request entity too large: limit is 3145728")]
    TooLarge,
    /// Patch content type not supported (415).
    #[error(
        "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
    )]
    UnsupportedMediaType,
    /// Schema or semantic validation failed (422).
    #[error("{}", invalid_message(.0, .1))]
    Invalid(Box<Subject>, Vec<Cause>),
    /// Request cannot be processed in this state, e.g. namespace terminating (403 Forbidden).
    #[error("{0}")]
    Forbidden(String),
    /// Anything unexpected, including a panicking handler (500).
    #[error("Internal error occurred: {0}")]
    Internal(String),
}

fn invalid_message(subject: &Subject, causes: &[Cause]) -> String {
    let parts: Vec<String> = causes
        .iter()
        .map(|c| {
            if c.field.is_empty() {
                c.message.clone()
            } else {
                format!("{}: {}", c.field, c.message)
            }
        })
        .collect();
    let joined = if parts.len() == 1 {
        parts[0].clone()
    } else {
        format!("[{}]", parts.join(", "))
    };
    format!(
        "{} \"{}\" is invalid: {}",
        subject.qualified_kind(),
        subject.name,
        joined
    )
}

impl ApiError {
    /// HTTP status code.
    pub fn code(&self) -> u16 {
        match self {
            ApiError::BadRequest(_) => 400,
            ApiError::Unauthorized => 401,
            ApiError::Forbidden(_) => 403,
            ApiError::NotFound(_) | ApiError::UnknownPath => 404,
            ApiError::MethodNotAllowed => 405,
            ApiError::AlreadyExists(_)
            | ApiError::Conflict(..)
            | ApiError::ApplyConflict { .. } => 409,
            ApiError::Expired(..) => 410,
            ApiError::TooLarge => 413,
            ApiError::UnsupportedMediaType => 415,
            ApiError::Invalid(..) => 422,
            ApiError::Internal(_) => 500,
        }
    }

    /// The `reason` field of the `Status`.
    pub fn reason(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "BadRequest",
            ApiError::Unauthorized => "Unauthorized",
            ApiError::Forbidden(_) => "Forbidden",
            ApiError::NotFound(_) | ApiError::UnknownPath => "NotFound",
            ApiError::MethodNotAllowed => "MethodNotAllowed",
            ApiError::AlreadyExists(_) => "AlreadyExists",
            ApiError::Conflict(..) | ApiError::ApplyConflict(_) => "Conflict",
            ApiError::Expired(..) => "Expired",
            ApiError::TooLarge => "RequestEntityTooLarge",
            ApiError::UnsupportedMediaType => "UnsupportedMediaType",
            ApiError::Invalid(..) => "Invalid",
            ApiError::Internal(_) => "InternalError",
        }
    }

    /// The `metav1.Status` body.
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.to_string(),
            "reason": self.reason(),
            "code": self.code(),
        });
        let subject_details = |s: &Subject, causes: Option<&[Cause]>, use_kind: bool| {
            let mut d = json!({"name": s.name, "group": s.group});
            d["kind"] = json!(if use_kind { &s.kind } else { &s.resource });
            if let Some(causes) = causes {
                d["causes"] = Value::Array(causes.iter().map(Cause::to_json).collect());
            }
            d
        };
        let details = match self {
            ApiError::NotFound(s) | ApiError::AlreadyExists(s) | ApiError::Conflict(s, _) => {
                Some(subject_details(s, None, false))
            }
            ApiError::ApplyConflict(c) => Some(subject_details(&c.subject, Some(&c.causes), false)),
            ApiError::Invalid(s, causes) => Some(subject_details(s, Some(causes), true)),
            _ => None,
        };
        if let Some(d) = details {
            status["details"] = d;
        }
        status
    }
}

/// Shorthand for the result of a request handler.
pub type ApiResult<T> = Result<T, ApiError>;

/// `Invalid value: <v>: <msg>` as Kubernetes renders field errors; objects and arrays print as their
/// type name, like the CEL and OpenAPI validators do.
pub fn invalid_value(value: &Value, msg: &str) -> String {
    format!("Invalid value: {}: {}", render_value(value), msg)
}

/// Render a value the way Kubernetes field errors do.
pub fn render_value(value: &Value) -> String {
    match value {
        Value::String(s) => format!("{s:?}"),
        Value::Object(_) => "\"object\"".to_string(),
        Value::Array(_) => "\"array\"".to_string(),
        Value::Null => "\"null\"".to_string(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_message_names_kind_group_and_field() {
        let s = Subject {
            group: "example.com".into(),
            resource: "widgets".into(),
            kind: "Widget".into(),
            name: "w".into(),
        };
        let e = ApiError::Invalid(
            Box::new(s),
            vec![Cause::new(
                "FieldValueRequired",
                "spec.size",
                "Required value",
            )],
        );
        assert_eq!(e.code(), 422);
        assert_eq!(
            e.to_string(),
            "Widget.example.com \"w\" is invalid: spec.size: Required value"
        );
        let body = e.to_status();
        assert_eq!(body["details"]["causes"][0]["field"], "spec.size");
        assert_eq!(body["reason"], "Invalid");
    }
}
