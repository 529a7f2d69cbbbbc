//! Request dispatch: discovery and OpenAPI documents, then resource verbs by method and path.

use std::sync::Arc;

use hyper::{Method, Response};

use super::http::{ApiRequest, Body, full, json_response};
use super::router::{ResourcePath, Route, route};
use super::state::{State, Target};
use super::status::{ApiError, ApiResult};
use super::{delete, discovery, logs, openapi, read, watch, write};

/// Paths answered without a token, like kube-apiserver's health endpoints.
pub fn is_public(path: &str) -> bool {
    matches!(route(path), Route::Health)
}

/// Handle one authenticated request.
pub fn handle(
    state: &Arc<State>,
    req: &ApiRequest,
    server_address: &str,
) -> ApiResult<Response<Body>> {
    let doc = |v: serde_json::Value| Ok(json_response(200, &v));
    let read_only = req.method == Method::GET || req.method == Method::HEAD;
    match route(&req.path) {
        Route::Resource(path) => resource(state, req, path),
        _ if !read_only => Err(ApiError::MethodNotAllowed),
        Route::Version => doc(discovery::version()),
        Route::Health => Ok(Response::builder()
            .status(200)
            .header("content-type", "text/plain; charset=utf-8")
            .body(full("ok"))
            .unwrap_or_else(|_| Response::new(full("ok")))),
        Route::CoreVersions => doc(discovery::core_versions(server_address)),
        Route::CoreResources => doc(discovery::resources(&state.registry, "", "v1")?),
        Route::Groups => doc(discovery::groups(&state.registry)),
        Route::Group(g) => doc(discovery::group(&state.registry, &g)?),
        Route::GroupResources(g, v) => doc(discovery::resources(&state.registry, &g, &v)?),
        Route::OpenApiV3Index => doc(openapi::index(&state.registry)),
        Route::OpenApiV3(g, v) => doc(openapi::group_version_doc(&state.registry, &g, &v)?),
        Route::OpenApiV2 | Route::Unknown => Err(ApiError::UnknownPath),
    }
}

fn resource(state: &Arc<State>, req: &ApiRequest, path: ResourcePath) -> ApiResult<Response<Body>> {
    let def = state
        .registry
        .lookup(&path.group, &path.version, &path.plural)
        .ok_or(ApiError::UnknownPath)?;
    if path.namespace.is_some() && !def.namespaced {
        return Err(ApiError::UnknownPath);
    }
    if let Some(sub) = &path.subresource {
        let known = (sub == "status"
            && def
                .version(&path.version)
                .is_some_and(|v| v.status_subresource))
            || def.extra_subresources.contains(sub);
        if !known {
            return Err(ApiError::UnknownPath);
        }
    }
    if def.namespaced && path.namespace.is_none() && path.name.is_some() {
        return Err(ApiError::UnknownPath);
    }
    let target = Target {
        def,
        version: path.version.clone(),
        namespace: path.namespace.clone().unwrap_or_default(),
        name: path.name.clone(),
        subresource: path.subresource.clone(),
    };
    let watching = path.watch_prefix || req.query.flag("watch");
    let sub = path.subresource.as_deref();
    match (&req.method, path.name.is_some(), sub) {
        (&Method::GET, true, Some("log")) => logs::logs(state, &target, req),
        (&Method::GET, _, _) if watching => watch::watch(state, &target, req),
        (&Method::GET, true, None | Some("status")) => read::get(state, &target, req),
        (&Method::GET, false, None) => read::list(state, &target, req),
        (&Method::POST, false, None) => write::create(state, &target, req),
        (&Method::POST, true, Some("eviction")) => delete::evict(state, &target, req),
        (&Method::PUT, true, None | Some("status")) => write::update(state, &target, req),
        (&Method::PATCH, true, None | Some("status")) => write::patch(state, &target, req),
        (&Method::DELETE, true, None) => delete::delete(state, &target, req),
        (&Method::DELETE, false, None) => delete::delete_collection(state, &target, req),
        _ => Err(ApiError::MethodNotAllowed),
    }
}
