//! A count of the requests a development API server answered, by verb and resource, so tests and
//! benchmarks can tell what a client asks for (for example: nothing but Lease renewals at rest).

use std::collections::BTreeMap;
use std::sync::Mutex;

use hyper::Method;

use super::http::Query;
use super::router::{Route, route, verb};

/// Requests answered so far, keyed `"<verb> <resource>"` (`"update leases"`, `"watch secrets"`,
/// `"get /readyz"` for paths that are not resources).
#[derive(Debug, Default)]
pub struct RequestCounts(Mutex<BTreeMap<String, u64>>);

impl RequestCounts {
    /// Count one request.
    pub fn record(&self, method: &Method, path: &str, query: &Query) {
        let key = request_key(method, path, query);
        *self.0.lock().unwrap().entry(key).or_default() += 1;
    }

    /// The counts so far.
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        self.0.lock().unwrap().clone()
    }
}

/// The Kubernetes verb and resource (with its subresource) a request addresses.
fn request_key(method: &Method, path: &str, query: &Query) -> String {
    let Route::Resource(p) = route(path) else {
        return format!("{} {path}", method.as_str().to_lowercase());
    };
    let named = p.name.is_some();
    let verb = verb(method, named, p.watch_prefix || query.flag("watch")).unwrap_or("other");
    match p.subresource {
        Some(sub) => format!("{verb} {}/{sub}", p.plural),
        None => format!("{verb} {}", p.plural),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_verb_and_resource() {
        let counts = RequestCounts::default();
        let lease = "/apis/coordination.k8s.io/v1/namespaces/default/leases/mk8";
        counts.record(&Method::PUT, lease, &Query::parse(None));
        counts.record(&Method::PUT, lease, &Query::parse(None));
        counts.record(
            &Method::GET,
            "/api/v1/secrets",
            &Query::parse(Some("watch=true")),
        );
        counts.record(&Method::GET, "/api/v1/secrets", &Query::parse(None));
        counts.record(
            &Method::PATCH,
            "/apis/mk8.io/v1alpha1/namespaces/a/clusters/c/status",
            &Query::parse(None),
        );
        let snapshot = counts.snapshot();
        assert_eq!(snapshot["update leases"], 2);
        assert_eq!(snapshot["watch secrets"], 1);
        assert_eq!(snapshot["list secrets"], 1);
        assert_eq!(snapshot["patch clusters/status"], 1);
    }
}
