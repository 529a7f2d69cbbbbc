//! Writes: create, update (PUT) and patch (incl. server-side apply), with optimistic
//! concurrency and dry-run.

use std::sync::Arc;

use hyper::Response;
use rand::Rng;
use serde_json::{Value, json};

use super::admission::{Endpoint, admit, name_of};
use super::apply;
use super::crd;
use super::http::{ApiRequest, Body, Query, json_response};
use super::patch::{PatchKind, apply_patch};
use super::registry::Builtin;
use super::state::{State, Target};
use super::status::{ApiError, ApiResult};
use super::store::{WriteError, object_rv};

/// How a write records field ownership.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Update,
    Apply,
}

/// Reject a body whose apiVersion/kind does not belong to the URL; fill them in when absent.
pub fn check_type(target: &Target, obj: &mut Value) -> ApiResult<()> {
    let expected_av = target.api_version();
    match obj.get("apiVersion").and_then(Value::as_str) {
        None | Some("") => obj["apiVersion"] = json!(expected_av),
        Some(av) => {
            let (group, version) = av.rsplit_once('/').unwrap_or(("", av));
            if group != target.def.group || target.def.version(version).is_none() {
                return Err(ApiError::BadRequest(format!(
                    "the API version in the data ({av}) does not match the expected API version ({expected_av})"
                )));
            }
        }
    }
    match obj.get("kind").and_then(Value::as_str) {
        None | Some("") => obj["kind"] = json!(target.def.kind),
        Some(k) if k == target.def.kind => {}
        Some(k) => {
            return Err(ApiError::BadRequest(format!(
                "the kind in the data ({k}) does not match the expected kind ({})",
                target.def.kind
            )));
        }
    }
    if !obj.get("metadata").is_none_or(Value::is_object) {
        return Err(ApiError::BadRequest("metadata must be an object".into()));
    }
    Ok(())
}

fn set_namespace(target: &Target, obj: &mut Value) -> ApiResult<()> {
    if !obj.get("metadata").is_some_and(Value::is_object) {
        obj["metadata"] = json!({});
    }
    if target.def.namespaced {
        match obj.pointer("/metadata/namespace").and_then(Value::as_str) {
            Some(ns) if !ns.is_empty() && ns != target.namespace => {
                return Err(ApiError::BadRequest("the namespace of the provided object does not match the namespace sent on the request".into()));
            }
            _ => obj["metadata"]["namespace"] = json!(target.namespace),
        }
    } else if let Some(m) = obj["metadata"].as_object_mut() {
        m.remove("namespace");
    }
    Ok(())
}

fn generate_name(obj: &mut Value) {
    if !name_of(obj).is_empty() {
        return;
    }
    if let Some(prefix) = obj
        .pointer("/metadata/generateName")
        .and_then(Value::as_str)
        .map(String::from)
    {
        // The alphabet kube-apiserver uses (no vowels, no look-alikes).
        const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
        let mut rng = rand::rng();
        let suffix: String = (0..5)
            .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
            .collect();
        obj["metadata"]["name"] = json!(format!("{prefix}{suffix}"));
    }
}

fn ensure_namespace(state: &State, target: &Target) -> ApiResult<()> {
    if !target.def.namespaced {
        return Ok(());
    }
    let ns_gr = (String::new(), "namespaces".to_string());
    match state
        .store
        .get(&ns_gr, &(String::new(), target.namespace.clone()))
    {
        None => Err(ApiError::NotFound(Box::new(super::status::Subject {
            resource: "namespaces".into(),
            name: target.namespace.clone(),
            ..Default::default()
        }))),
        Some(ns) if ns.pointer("/metadata/deletionTimestamp").is_some() => {
            Err(ApiError::Forbidden(format!(
                "{} \"{}\" is forbidden: unable to create new content in namespace {} because it is being terminated",
                target.def.plural,
                target.name.as_deref().unwrap_or_default(),
                target.namespace
            )))
        }
        Some(_) => Ok(()),
    }
}

/// Create `obj` (already type-checked): namespace, name, admission, storage.
fn create_object(
    state: &State,
    target: &Target,
    mut obj: Value,
    query: &Query,
    manager: &str,
    op: Op,
) -> ApiResult<Arc<Value>> {
    set_namespace(target, &mut obj)?;
    generate_name(&mut obj);
    ensure_namespace(state, target)?;
    let mut obj = admit(target, query, obj, None, Endpoint::Main)?;
    if op == Op::Update {
        apply::record_update(target, &mut obj, None, manager, Endpoint::Main);
    }
    if target.def.builtin == Builtin::Crd {
        crd::prepare(state, &mut obj, None)?;
    }
    let name = name_of(&obj).to_string();
    if query.dry_run() {
        return Ok(Arc::new(obj));
    }
    let stored = state
        .store
        .create(&target.gr(), target.key_of(&name), obj)
        .map_err(|_| ApiError::AlreadyExists(target.subject(&name)))?;
    if target.def.builtin == Builtin::Crd {
        crd::activate(state, &stored);
    }
    Ok(stored)
}

/// POST to a collection.
pub fn create(state: &State, target: &Target, req: &ApiRequest) -> ApiResult<Response<Body>> {
    let mut obj = req.decode_object()?;
    check_type(target, &mut obj)?;
    let created = create_object(
        state,
        target,
        obj,
        &req.query,
        &req.field_manager(),
        Op::Update,
    )?;
    Ok(json_response(201, &target.present(&created)))
}

fn strip_times(obj: &Value) -> Value {
    let mut copy = obj.clone();
    if let Some(m) = copy.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("resourceVersion");
        if let Some(Value::Array(entries)) = m.get_mut("managedFields") {
            for e in entries {
                if let Some(e) = e.as_object_mut() {
                    e.remove("time");
                }
            }
        }
    }
    copy
}

/// Read-modify-write of an existing object, retried when a concurrent writer got there first
/// (unless the client pinned a resourceVersion, which then yields 409).
fn write_existing(
    state: &State,
    target: &Target,
    query: &Query,
    manager: &str,
    pinned_rv: Option<u64>,
    op: Op,
    mutate: &dyn Fn(&Value) -> ApiResult<Value>,
) -> ApiResult<Arc<Value>> {
    let endpoint = Endpoint::of(target);
    let name = target.name.clone().unwrap_or_default();
    let key = target.key();
    let gr = target.gr();
    for _ in 0..100 {
        let current = state
            .store
            .get(&gr, &key)
            .ok_or_else(|| ApiError::NotFound(target.subject(&name)))?;
        let current_rv = object_rv(&current);
        if pinned_rv.is_some_and(|rv| rv != current_rv) {
            return Err(conflict(target, &name));
        }
        let mut incoming = mutate(&current)?;
        if let Some(m) = incoming.get_mut("metadata").and_then(Value::as_object_mut) {
            m.insert("name".into(), json!(name));
        }
        let mut new = admit(target, query, incoming, Some(&current), endpoint)?;
        if op == Op::Update {
            apply::record_update(target, &mut new, Some(&current), manager, endpoint);
        }
        if target.def.builtin == Builtin::Crd {
            crd::prepare(state, &mut new, Some(&current))?;
        }
        if strip_times(&new) == strip_times(&current) {
            return Ok(current);
        }
        if query.dry_run() {
            return Ok(Arc::new(new));
        }
        let finalized = new.pointer("/metadata/deletionTimestamp").is_some()
            && new
                .pointer("/metadata/finalizers")
                .and_then(Value::as_array)
                .is_none_or(Vec::is_empty);
        let result = if finalized {
            state
                .store
                .delete(&gr, &key, Some(current_rv))
                .inspect(|gone| after_delete(state, target, gone))
        } else {
            state.store.update(&gr, &key, current_rv, new)
        };
        match result {
            Ok(stored) => {
                if target.def.builtin == Builtin::Crd && !finalized {
                    crd::activate(state, &stored);
                }
                return Ok(stored);
            }
            Err(WriteError::Stale) if pinned_rv.is_none() => continue,
            Err(WriteError::Stale) => return Err(conflict(target, &name)),
            Err(_) => return Err(ApiError::NotFound(target.subject(&name))),
        }
    }
    Err(conflict(target, &name))
}

/// The 409 of an optimistic-concurrency failure.
pub(super) fn conflict(target: &Target, name: &str) -> ApiError {
    ApiError::Conflict(target.subject(name), "the object has been modified; please apply your changes to the latest version and try again".into())
}

fn pinned(obj: &Value) -> ApiResult<Option<u64>> {
    match obj
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
    {
        None | Some("") => Ok(None),
        Some(s) => s
            .parse()
            .map(Some)
            .map_err(|_| ApiError::BadRequest(format!("invalid resourceVersion {s:?}"))),
    }
}

/// PUT of an object or its status.
pub fn update(state: &State, target: &Target, req: &ApiRequest) -> ApiResult<Response<Body>> {
    let mut obj = req.decode_object()?;
    check_type(target, &mut obj)?;
    let name = target.name.clone().unwrap_or_default();
    if name_of(&obj) != name {
        return Err(ApiError::BadRequest(format!(
            "the name of the object ({}) does not match the name on the URL ({name})",
            name_of(&obj)
        )));
    }
    set_namespace(target, &mut obj)?;
    let rv = pinned(&obj)?;
    let stored = write_existing(
        state,
        target,
        &req.query,
        &req.field_manager(),
        rv,
        Op::Update,
        &|_| Ok(obj.clone()),
    )?;
    Ok(json_response(200, &target.present(&stored)))
}

/// PATCH of an object or its status.
pub fn patch(state: &State, target: &Target, req: &ApiRequest) -> ApiResult<Response<Body>> {
    let kind = PatchKind::from_content_type(req.header("content-type"))?;
    let manager = req.field_manager();
    let name = target.name.clone().unwrap_or_default();
    if kind != PatchKind::Apply {
        let custom = target.def.is_custom();
        let stored = write_existing(
            state,
            target,
            &req.query,
            &manager,
            None,
            Op::Update,
            &|current| {
                let patched = apply_patch(kind, current, &req.body, custom)?;
                if let Some(rv) = pinned(&patched)?
                    && rv != object_rv(current)
                {
                    return Err(conflict(target, &name));
                }
                Ok(patched)
            },
        )?;
        return Ok(json_response(200, &target.present(&stored)));
    }
    if req.query.get("fieldManager").is_none_or(str::is_empty) {
        return Err(ApiError::BadRequest(
            "PATCH, application/apply-patch+yaml requires fieldManager to be set".into(),
        ));
    }
    let mut applied = req.decode_object()?;
    check_type(target, &mut applied)?;
    // Like kube-apiserver, an apply patch may leave the name out: the URL names the object.
    if name_of(&applied).is_empty()
        && let Some(obj) = applied.as_object_mut()
    {
        let meta = obj
            .entry("metadata")
            .or_insert_with(|| serde_json::json!({}));
        if let Some(meta) = meta.as_object_mut() {
            meta.insert("name".into(), serde_json::Value::String(name.clone()));
        }
    }
    if name_of(&applied) != name {
        return Err(ApiError::BadRequest(format!(
            "the name of the object ({}) does not match the name on the URL ({name})",
            name_of(&applied)
        )));
    }
    set_namespace(target, &mut applied)?;
    let force = req.query.flag("force");
    let endpoint = Endpoint::of(target);
    if state.store.get(&target.gr(), &target.key()).is_none() && endpoint == Endpoint::Main {
        let obj = apply::apply(target, None, &applied, &manager, force, endpoint)?;
        let mut with_meta = obj;
        for k in ["name", "namespace", "generateName"] {
            if let Some(v) = applied.pointer(&format!("/metadata/{k}")) {
                with_meta["metadata"][k] = v.clone();
            }
        }
        match create_object(state, target, with_meta, &req.query, &manager, Op::Apply) {
            Ok(created) => return Ok(json_response(201, &target.present(&created))),
            // Someone created it meanwhile: apply onto theirs.
            Err(ApiError::AlreadyExists(_)) => {}
            Err(e) => return Err(e),
        }
    }
    let stored = write_existing(
        state,
        target,
        &req.query,
        &manager,
        None,
        Op::Apply,
        &|current| apply::apply(target, Some(current), &applied, &manager, force, endpoint),
    )?;
    Ok(json_response(200, &target.present(&stored)))
}

/// Side effects of an object disappearing.
pub(super) fn after_delete(state: &State, target: &Target, gone: &Value) {
    if target.def.builtin == Builtin::Crd {
        crd::deactivate(state, gone);
    }
}
