//! Request paths: which discovery document or which resource (and subresource) a URL names.

/// A URL naming a resource collection or object.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourcePath {
    /// API group ("" for core).
    pub group: String,
    /// Version.
    pub version: String,
    /// Namespace from the URL, if any.
    pub namespace: Option<String>,
    /// Plural resource name.
    pub plural: String,
    /// Object name, if any.
    pub name: Option<String>,
    /// Subresource (`status`, `eviction`), if any.
    pub subresource: Option<String>,
    /// Whether the legacy `/watch/` prefix was used.
    pub watch_prefix: bool,
}

/// What a path addresses.
#[derive(Debug, Clone, PartialEq)]
pub enum Route {
    /// `/version`.
    Version,
    /// `/healthz`, `/livez`, `/readyz` (and their sub-checks).
    Health,
    /// `/api`.
    CoreVersions,
    /// `/api/v1`.
    CoreResources,
    /// `/apis`.
    Groups,
    /// `/apis/<group>`.
    Group(String),
    /// `/apis/<group>/<version>`.
    GroupResources(String, String),
    /// `/openapi/v2`.
    OpenApiV2,
    /// `/openapi/v3`.
    OpenApiV3Index,
    /// `/openapi/v3/api/v1` or `/openapi/v3/apis/<group>/<version>`.
    OpenApiV3(String, String),
    /// A resource URL.
    Resource(ResourcePath),
    /// Anything else.
    Unknown,
}

/// Parse a request path (without query string).
/// The Kubernetes verb of a request on a resource path (`get`, `list`, `watch`, `create`, …);
/// None for methods Kubernetes has no verb for.
pub fn verb(method: &hyper::Method, named: bool, watching: bool) -> Option<&'static str> {
    use hyper::Method;
    Some(match *method {
        Method::GET | Method::HEAD if watching => "watch",
        Method::GET | Method::HEAD if named => "get",
        Method::GET | Method::HEAD => "list",
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE if named => "delete",
        Method::DELETE => "deletecollection",
        _ => return None,
    })
}

pub fn route(path: &str) -> Route {
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    match segs.as_slice() {
        ["version"] => Route::Version,
        [h, ..] if matches!(*h, "healthz" | "livez" | "readyz") => Route::Health,
        ["api"] => Route::CoreVersions,
        ["api", "v1"] => Route::CoreResources,
        ["apis"] => Route::Groups,
        ["apis", g] => Route::Group(g.to_string()),
        ["apis", g, v] => Route::GroupResources(g.to_string(), v.to_string()),
        ["openapi", "v2"] => Route::OpenApiV2,
        ["openapi", "v3"] => Route::OpenApiV3Index,
        ["openapi", "v3", "api", "v1"] => Route::OpenApiV3(String::new(), "v1".into()),
        ["openapi", "v3", "apis", g, v] => Route::OpenApiV3(g.to_string(), v.to_string()),
        ["api", "v1", rest @ ..] => resource("", "v1", rest),
        ["apis", g, v, rest @ ..] => resource(g, v, rest),
        _ => Route::Unknown,
    }
}

fn resource(group: &str, version: &str, rest: &[&str]) -> Route {
    let (watch_prefix, rest) = match rest {
        ["watch", tail @ ..] => (true, tail),
        _ => (false, rest),
    };
    let namespaced = rest.len() >= 3
        && rest[0] == "namespaces"
        && !(rest.len() == 3 && matches!(rest[2], "status" | "finalize"));
    let (namespace, rest) = if namespaced {
        (Some(rest[1].to_string()), &rest[2..])
    } else {
        (None, rest)
    };
    let (plural, name, subresource) = match rest {
        [p] => (p, None, None),
        [p, n] => (p, Some(n.to_string()), None),
        [p, n, s] => (p, Some(n.to_string()), Some(s.to_string())),
        _ => return Route::Unknown,
    };
    Route::Resource(ResourcePath {
        group: group.to_string(),
        version: version.to_string(),
        namespace,
        plural: plural.to_string(),
        name,
        subresource,
        watch_prefix,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_status_is_not_a_namespaced_collection() {
        let Route::Resource(p) = route("/api/v1/namespaces/foo/status") else {
            panic!()
        };
        assert_eq!(
            (
                p.plural.as_str(),
                p.name.as_deref(),
                p.subresource.as_deref()
            ),
            ("namespaces", Some("foo"), Some("status"))
        );
        let Route::Resource(p) = route("/apis/g/v1/watch/namespaces/ns/widgets/w") else {
            panic!()
        };
        assert_eq!(
            (p.namespace.as_deref(), p.plural.as_str(), p.watch_prefix),
            (Some("ns"), "widgets", true)
        );
        assert_eq!(route("/apis/g/v1/a/b/c/d"), Route::Unknown);
    }
}
