//! Fault injection for tests and benchmarks of clients that read many clusters: a fixed latency
//! before every request but the health checks, and a server that forbids everything but
//! discovery and health, answering 403 like kube-apiserver's authorizer does.

use std::time::Duration;

use hyper::Method;

use super::http::Query;
use super::router::{Route, route, verb};
use super::status::ApiError;

/// The user named in the messages of a forbidding server.
pub const FORBIDDEN_USER: &str = "dev";

/// Faults a [`super::DevServer`] injects.
#[derive(Debug, Clone, Copy, Default)]
pub struct Faults {
    /// Added before answering every request except `/healthz`, `/livez` and `/readyz`.
    pub latency: Option<Duration>,
    /// Answer 403 to everything but discovery, OpenAPI and health.
    pub forbidden: bool,
}

impl Faults {
    /// How long to wait before answering `path`.
    pub fn delay(&self, path: &str) -> Option<Duration> {
        self.latency
            .filter(|_| !matches!(route(path), Route::Health))
    }

    /// The 403 for a request, when this server forbids it.
    pub fn denial(&self, method: &Method, path: &str, query: &Query) -> Option<ApiError> {
        if !self.forbidden || is_discovery(path) {
            return None;
        }
        Some(ApiError::Forbidden(forbidden_message(method, path, query)))
    }
}

/// Discovery, OpenAPI and health: what a forbidding server still answers (kube-apiserver grants
/// them to every authenticated user through `system:discovery` and `system:public-info-viewer`).
fn is_discovery(path: &str) -> bool {
    path.starts_with("/openapi/")
        || matches!(
            route(path),
            Route::Version
                | Route::Health
                | Route::CoreVersions
                | Route::CoreResources
                | Route::Groups
                | Route::Group(_)
                | Route::GroupResources(..)
                | Route::OpenApiV3Index
                | Route::OpenApiV3(..)
        )
}

/// kube-apiserver's wording: `pods "web" is forbidden: User "dev" cannot get resource "pods/log"
/// in API group "" in the namespace "demo"`.
fn forbidden_message(method: &Method, path: &str, query: &Query) -> String {
    let Route::Resource(p) = route(path) else {
        let verb = method.as_str().to_lowercase();
        return format!("forbidden: User \"{FORBIDDEN_USER}\" cannot {verb} path \"{path}\"");
    };
    let verb = verb(
        method,
        p.name.is_some(),
        p.watch_prefix || query.flag("watch"),
    )
    .unwrap_or("");
    let qualified = if p.group.is_empty() {
        p.plural.clone()
    } else {
        format!("{}.{}", p.plural, p.group)
    };
    let subject = match &p.name {
        Some(name) => format!("{qualified} \"{name}\""),
        None => qualified,
    };
    let resource = match &p.subresource {
        Some(sub) => format!("{}/{sub}", p.plural),
        None => p.plural.clone(),
    };
    let scope = match &p.namespace {
        Some(ns) => format!("in the namespace \"{ns}\""),
        None => "at the cluster scope".to_string(),
    };
    format!(
        "{subject} is forbidden: User \"{FORBIDDEN_USER}\" cannot {verb} resource \"{resource}\" in API group \"{}\" {scope}",
        p.group
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn denial(method: Method, path: &str, query: &str) -> Option<String> {
        let faults = Faults {
            forbidden: true,
            ..Faults::default()
        };
        faults
            .denial(&method, path, &Query::parse(Some(query)))
            .map(|e| e.to_string())
    }

    #[test]
    fn a_forbidding_server_words_its_403_like_kube_apiserver() {
        assert_eq!(
            denial(Method::GET, "/api/v1/pods", "").as_deref(),
            Some(
                "pods is forbidden: User \"dev\" cannot list resource \"pods\" in API group \"\" at the cluster scope"
            )
        );
        assert_eq!(
            denial(Method::GET, "/api/v1/namespaces/demo/pods/web/log", "").as_deref(),
            Some(
                "pods \"web\" is forbidden: User \"dev\" cannot get resource \"pods/log\" in API group \"\" in the namespace \"demo\""
            )
        );
        assert_eq!(
            denial(Method::GET, "/apis/apps/v1/deployments", "watch=true").as_deref(),
            Some(
                "deployments.apps is forbidden: User \"dev\" cannot watch resource \"deployments\" in API group \"apps\" at the cluster scope"
            )
        );
    }

    #[test]
    fn discovery_and_health_stay_open_and_health_is_never_delayed() {
        for path in [
            "/api",
            "/api/v1",
            "/apis",
            "/apis/apps/v1",
            "/version",
            "/openapi/v3",
            "/openapi/v3/api/v1",
            "/openapi/v2",
            "/readyz",
        ] {
            assert_eq!(denial(Method::GET, path, ""), None, "{path}");
        }
        let slow = Faults {
            latency: Some(Duration::from_millis(5)),
            forbidden: false,
        };
        assert_eq!(slow.delay("/livez"), None);
        assert_eq!(slow.delay("/api/v1/pods"), Some(Duration::from_millis(5)));
    }
}
