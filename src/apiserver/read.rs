//! Reads: get, list (selectors, pagination) and their Table renderings.

use std::io::Write;
use std::sync::Arc;

use base64::Engine;
use hyper::Response;
use serde_json::{Value, json};

use super::http::{ApiRequest, Body, Query, full, json_response, serialized_response};
use super::state::{State, Target};
use super::status::{ApiError, ApiResult};
use super::table;
use crate::selector::{FieldSelector, LabelSelector};

/// Parsed list/watch filters.
pub struct Filters {
    /// Label selector.
    pub labels: LabelSelector,
    /// Field selector.
    pub fields: FieldSelector,
}

impl Filters {
    /// From `labelSelector` / `fieldSelector`; a malformed selector is a 400.
    pub fn parse(target: &Target, query: &Query) -> ApiResult<Self> {
        let labels = LabelSelector::parse(query.get("labelSelector").unwrap_or_default())
            .map_err(|e| ApiError::BadRequest(e.to_string()))?;
        let mut allowed = vec!["metadata.name", "metadata.namespace"];
        allowed.extend(target.def.selectable_fields.iter().map(String::as_str));
        let fields = FieldSelector::parse(query.get("fieldSelector").unwrap_or_default(), &allowed)
            .map_err(|e| ApiError::BadRequest(e.to_string()))?;
        Ok(Filters { labels, fields })
    }

    /// Whether an object passes both selectors.
    pub fn matches(&self, obj: &Value) -> bool {
        self.labels.matches(obj.pointer("/metadata/labels")) && self.fields.matches(obj)
    }
}

/// GET of one object (or its status).
pub fn get(state: &State, target: &Target, req: &ApiRequest) -> ApiResult<Response<Body>> {
    let name = target.name.clone().unwrap_or_default();
    let obj = state
        .store
        .get(&target.gr(), &target.key())
        .ok_or_else(|| ApiError::NotFound(target.subject(&name)))?;
    let obj = target.present(&obj);
    if req.wants_table() {
        let rows = [obj];
        return Ok(serialized_response(
            200,
            &table::render(target, &rows, &req.query, state.store.current_rv(), None),
        ));
    }
    Ok(json_response(200, &obj))
}

/// Objects matching the request's namespace and selectors, and the list resourceVersion.
pub fn select(state: &State, target: &Target, query: &Query) -> ApiResult<(Vec<Arc<Value>>, u64)> {
    let filters = Filters::parse(target, query)?;
    let ns = (target.def.namespaced && !target.namespace.is_empty())
        .then_some(target.namespace.as_str());
    let (items, rv) = state.store.list(&target.gr(), ns);
    Ok((
        items.into_iter().filter(|o| filters.matches(o)).collect(),
        rv,
    ))
}

fn key_string(obj: &Value) -> String {
    let ns = obj
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    format!("{ns}/{name}")
}

/// LIST of a collection.
pub fn list(state: &State, target: &Target, req: &ApiRequest) -> ApiResult<Response<Body>> {
    let (mut items, rv) = select(state, target, &req.query)?;
    if let Some(token) = req.query.get("continue").filter(|t| !t.is_empty()) {
        let decoded = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token)
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .ok_or_else(|| {
                ApiError::BadRequest("continue key is not valid: invalid token".into())
            })?;
        let after = decoded
            .get("start")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        items.retain(|o| key_string(o) > after);
    }
    let limit: usize = match req.query.get("limit") {
        Some(l) if !l.is_empty() => l
            .parse()
            .map_err(|_| ApiError::BadRequest(format!("invalid limit {l:?}")))?,
        _ => 0,
    };
    let mut meta = json!({"resourceVersion": rv.to_string()});
    if limit > 0 && items.len() > limit {
        let remaining = items.len() - limit;
        items.truncate(limit);
        let start = items.last().map(|o| key_string(o)).unwrap_or_default();
        let token = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(json!({"rv": rv, "start": start}).to_string());
        meta["continue"] = json!(token);
        meta["remainingItemCount"] = json!(remaining);
    }
    if req.wants_table() {
        let presented: Vec<Arc<Value>> = items.iter().map(|o| target.present(o)).collect();
        return Ok(serialized_response(
            200,
            &table::render(target, &presented, &req.query, rv, Some(meta)),
        ));
    }
    // Serialize item by item instead of building one big Value: lists of thousands of objects
    // then cost one pass and no deep copies.
    let api_version = target.api_version();
    let mut buf = Vec::with_capacity(items.len() * 512 + 256);
    let _ = write!(
        buf,
        "{{\"apiVersion\":{},\"kind\":{},\"metadata\":{},\"items\":[",
        json!(api_version),
        json!(target.def.list_kind),
        meta
    );
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            buf.push(b',');
        }
        let _ = serde_json::to_writer(&mut buf, &*target.present(item));
    }
    buf.extend_from_slice(b"]}");
    Ok(Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .body(full(buf))
        .unwrap_or_else(|_| Response::new(full(Vec::new()))))
}
