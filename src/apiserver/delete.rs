//! Deletes: one object (finalizers, propagation policy, preconditions, dry-run), collections,
//! and pod eviction.

use std::sync::Arc;

use hyper::Response;
use serde_json::{Value, json};

use super::admission::{name_of, now};
use super::gc;
use super::http::{ApiRequest, Body, json_response, success_status};
use super::registry::Builtin;
use super::state::{State, Target};
use super::status::{ApiError, ApiResult};
use super::store::{WriteError, object_rv};
use super::write::{after_delete, conflict};

/// DeleteOptions from the body and query.
struct DeleteOptions {
    propagation: String,
    uid: Option<String>,
    resource_version: Option<String>,
    dry_run: bool,
}

fn delete_options(req: &ApiRequest) -> ApiResult<DeleteOptions> {
    let body = if req.body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        req.decode_object()?
    };
    let mut propagation = body
        .get("propagationPolicy")
        .and_then(Value::as_str)
        .or(req.query.get("propagationPolicy"))
        .unwrap_or("Background")
        .to_string();
    if body.get("orphanDependents").and_then(Value::as_bool) == Some(true)
        || req.query.flag("orphanDependents")
    {
        propagation = "Orphan".into();
    }
    if !matches!(propagation.as_str(), "Background" | "Foreground" | "Orphan") {
        return Err(ApiError::BadRequest(format!(
            "propagationPolicy: Unsupported value: {propagation:?}"
        )));
    }
    Ok(DeleteOptions {
        propagation,
        uid: body
            .pointer("/preconditions/uid")
            .and_then(Value::as_str)
            .map(String::from),
        resource_version: body
            .pointer("/preconditions/resourceVersion")
            .and_then(Value::as_str)
            .map(String::from),
        dry_run: req.query.dry_run()
            || body
                .get("dryRun")
                .and_then(Value::as_array)
                .is_some_and(|d| !d.is_empty()),
    })
}

/// Delete one object (finalizers and propagation policy honoured); returns what to answer.
fn delete_object(
    state: &State,
    target: &Target,
    name: &str,
    opts: &DeleteOptions,
    dry_run: bool,
) -> ApiResult<Arc<Value>> {
    let gr = target.gr();
    let key = target.key_of(name);
    for _ in 0..100 {
        let current = state
            .store
            .get(&gr, &key)
            .ok_or_else(|| ApiError::NotFound(target.subject(name)))?;
        let uid = current
            .pointer("/metadata/uid")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if opts.uid.as_ref().is_some_and(|u| *u != uid) {
            return Err(ApiError::Conflict(
                target.subject(name),
                format!(
                    "Precondition failed: UID in precondition: {}, UID in object meta: {uid}",
                    opts.uid.clone().unwrap_or_default()
                ),
            ));
        }
        let rv = object_rv(&current);
        if opts
            .resource_version
            .as_ref()
            .is_some_and(|r| *r != rv.to_string())
        {
            return Err(ApiError::Conflict(
                target.subject(name),
                format!(
                    "Precondition failed: ResourceVersion in precondition: {}, ResourceVersion in object meta: {rv}",
                    opts.resource_version.clone().unwrap_or_default()
                ),
            ));
        }
        if dry_run {
            return Ok(current);
        }
        let mut finalizers: Vec<Value> = current
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if opts.propagation == "Orphan" {
            gc::orphan_dependents(state, &uid);
        }
        if opts.propagation == "Foreground"
            && !finalizers.contains(&json!("foregroundDeletion"))
            && gc::has_dependents(state, &uid)
        {
            finalizers.push(json!("foregroundDeletion"));
        }
        let is_namespace = target.def.builtin == Builtin::Namespace;
        if finalizers.is_empty() && !is_namespace {
            match state.store.delete(&gr, &key, Some(rv)) {
                Ok(gone) => {
                    after_delete(state, target, &gone);
                    return Ok(gone);
                }
                Err(WriteError::Stale) => continue,
                Err(_) => return Err(ApiError::NotFound(target.subject(name))),
            }
        }
        if current.pointer("/metadata/deletionTimestamp").is_some()
            && current
                .pointer("/metadata/finalizers")
                .and_then(Value::as_array)
                .map(Vec::len)
                == Some(finalizers.len())
        {
            return Ok(current);
        }
        let mut marked = (*current).clone();
        if marked.pointer("/metadata/deletionTimestamp").is_none() {
            marked["metadata"]["deletionTimestamp"] = json!(now());
            marked["metadata"]["deletionGracePeriodSeconds"] = json!(0);
        }
        if !finalizers.is_empty() {
            marked["metadata"]["finalizers"] = Value::Array(finalizers);
        }
        if is_namespace {
            marked["status"]["phase"] = json!("Terminating");
        }
        match state.store.update(&gr, &key, rv, marked) {
            Ok(stored) => {
                // Foreground deletion and namespace cleanup are the collector's job.
                state.store.deleted.notify_one();
                return Ok(stored);
            }
            Err(WriteError::Stale) => continue,
            Err(_) => return Err(ApiError::NotFound(target.subject(name))),
        }
    }
    Err(conflict(target, name))
}

/// DELETE of one object.
pub fn delete(state: &State, target: &Target, req: &ApiRequest) -> ApiResult<Response<Body>> {
    let opts = delete_options(req)?;
    let name = target.name.clone().unwrap_or_default();
    let gone = delete_object(state, target, &name, &opts, opts.dry_run)?;
    Ok(json_response(200, &target.present(&gone)))
}

/// DELETE of a collection (label/field selectors honoured).
pub fn delete_collection(
    state: &State,
    target: &Target,
    req: &ApiRequest,
) -> ApiResult<Response<Body>> {
    let opts = delete_options(req)?;
    let (items, _) = super::read::select(state, target, &req.query)?;
    let mut deleted = Vec::new();
    for item in items {
        let name = name_of(&item).to_string();
        let ns_target = Target {
            namespace: item
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            ..target.clone()
        };
        match delete_object(state, &ns_target, &name, &opts, opts.dry_run) {
            Ok(gone) => deleted.push((*target.present(&gone)).clone()),
            Err(ApiError::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
    }
    let list = json!({
        "apiVersion": target.api_version(),
        "kind": target.def.list_kind,
        "metadata": {"resourceVersion": state.store.current_rv().to_string()},
        "items": deleted,
    });
    Ok(json_response(200, &list))
}

/// POST pods/<name>/eviction: the pod is deleted (no disruption budgets here).
pub fn evict(state: &State, target: &Target, req: &ApiRequest) -> ApiResult<Response<Body>> {
    let body = if req.body.is_empty() {
        json!({})
    } else {
        req.decode_object()?
    };
    let opts = DeleteOptions {
        propagation: body
            .pointer("/deleteOptions/propagationPolicy")
            .and_then(Value::as_str)
            .unwrap_or("Background")
            .to_string(),
        uid: body
            .pointer("/deleteOptions/preconditions/uid")
            .and_then(Value::as_str)
            .map(String::from),
        resource_version: None,
        dry_run: req.query.dry_run()
            || body
                .pointer("/deleteOptions/dryRun")
                .and_then(Value::as_array)
                .is_some_and(|d| !d.is_empty()),
    };
    let name = target.name.clone().unwrap_or_default();
    let pod_target = Target {
        subresource: None,
        ..target.clone()
    };
    delete_object(state, &pod_target, &name, &opts, opts.dry_run)?;
    Ok(json_response(
        201,
        &success_status(json!({"name": name, "kind": "pods"})),
    ))
}
