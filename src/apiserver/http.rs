//! HTTP plumbing shared by the handlers: the decoded request, query parameters, bodies and
//! response builders.

use std::collections::HashMap;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::{HeaderMap, Method, Response};
use serde_json::Value;

use super::status::{ApiError, ApiResult};

/// Response body type of every handler (full or streaming).
pub type Body = BoxBody<Bytes, std::io::Error>;

/// Largest request body accepted, as kube-apiserver's default.
pub const MAX_BODY: usize = 3 * 1024 * 1024;

/// Query-string parameters.
#[derive(Debug, Default, Clone)]
pub struct Query(HashMap<String, String>);

impl Query {
    /// Parse `a=b&c=d` with percent-decoding.
    pub fn parse(raw: Option<&str>) -> Self {
        let map = raw
            .map(|q| {
                url::form_urlencoded::parse(q.as_bytes())
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect()
            })
            .unwrap_or_default();
        Query(map)
    }

    /// A parameter's value.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// A boolean parameter (`true`/`1`).
    pub fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("true" | "1"))
    }

    /// Whether `dryRun=All` was requested.
    pub fn dry_run(&self) -> bool {
        self.get("dryRun").is_some_and(|v| !v.is_empty())
    }
}

/// A fully read request.
pub struct ApiRequest {
    /// Method.
    pub method: Method,
    /// Path without query.
    pub path: String,
    /// Query parameters.
    pub query: Query,
    /// Headers.
    pub headers: HeaderMap,
    /// Body (at most [`MAX_BODY`]).
    pub body: Bytes,
}

impl ApiRequest {
    /// A header as a string ("" when absent).
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    /// Whether the client asked for a server-side `Table`.
    pub fn wants_table(&self) -> bool {
        let accept = self.header("accept");
        accept
            .split(',')
            .next()
            .is_some_and(|first| first.contains("as=Table"))
    }

    /// Field manager of a write: the query parameter, else derived from the User-Agent like
    /// kube-apiserver does (`kubectl/v1.32 ...` → `kubectl`).
    pub fn field_manager(&self) -> String {
        if let Some(m) = self.query.get("fieldManager").filter(|m| !m.is_empty()) {
            return m.to_string();
        }
        let ua = self.header("user-agent");
        let prefix = ua.split('/').next().unwrap_or_default();
        if prefix.is_empty() {
            "unknown".to_string()
        } else {
            prefix.to_string()
        }
    }

    /// Decode the body as a JSON object (or YAML, which also covers JSON).
    pub fn decode_object(&self) -> ApiResult<Value> {
        decode_object(&self.body)
    }
}

/// Decode bytes as a JSON or YAML object; anything else is a 400.
pub fn decode_object(body: &[u8]) -> ApiResult<Value> {
    if body.starts_with(super::protobuf::MAGIC) {
        return super::protobuf::decode(body);
    }
    let trimmed = body
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .map(|i| &body[i..])
        .unwrap_or_default();
    let value: Value = if trimmed.first() == Some(&b'{') || trimmed.first() == Some(&b'[') {
        serde_json::from_slice(trimmed).map_err(|e| {
            ApiError::BadRequest(format!("json: cannot unmarshal request body: {e}"))
        })?
    } else {
        let text = std::str::from_utf8(trimmed)
            .map_err(|_| ApiError::BadRequest("request body is not valid UTF-8".into()))?;
        serde_yaml::from_str(text)
            .map_err(|e| ApiError::BadRequest(format!("yaml: unmarshal errors: {e}")))?
    };
    if !value.is_object() {
        return Err(ApiError::BadRequest(
            "Object 'Kind' is missing in request body: not a JSON object".into(),
        ));
    }
    Ok(value)
}

/// A complete body.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

/// A JSON response.
pub fn json_response(code: u16, value: &Value) -> Response<Body> {
    serialized_response(code, value)
}

/// A JSON response of anything serializable (a [`super::table::Table`] is written from the
/// stored objects without copying them into a `Value`).
pub fn serialized_response<T: serde::Serialize + ?Sized>(code: u16, value: &T) -> Response<Body> {
    let bytes = serde_json::to_vec(value).unwrap_or_default();
    Response::builder()
        .status(code)
        .header("content-type", "application/json")
        .body(full(bytes))
        .unwrap_or_else(|_| Response::new(full(Bytes::new())))
}

/// The `Status` response of an error.
pub fn error_response(err: &ApiError) -> Response<Body> {
    json_response(err.code(), &err.to_status())
}

/// A success `Status` (deletes of collections and some subresources answer with one).
pub fn success_status(details: Value) -> Value {
    serde_json::json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Success","details":details})
}
