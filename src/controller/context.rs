//! The context every reconcile gets: client, Event recorder, metrics, drivers, backoff state.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kube::Client;
use kube::runtime::controller::Action;

use super::metrics::Metrics;
use crate::providers::Providers;
use crate::reconcile::env::Env;
use crate::reconcile::error::{Error, backoff_delay};

pub use crate::reconcile::env::FIELD_MANAGER;

/// Finalizer on kinds that own external state.
pub const FINALIZER: &str = "mk8.io/cleanup";

/// APIs found on the management cluster at start-up.
#[derive(Clone, Copy, Debug, Default)]
pub struct Capabilities {
    /// `multicluster.x-k8s.io/v1alpha1` ClusterProfile is served.
    pub cluster_profiles: bool,
    /// `argoproj.io/v1alpha1` Application is served.
    pub argocd_applications: bool,
}

/// How Stacks are delivered.
#[derive(Clone, Debug, PartialEq)]
pub struct Delivery {
    /// The namespace of the ArgoCD the operator writes Applications to (`--argocd-namespace`).
    pub argocd_namespace: String,
    /// Chart repository mirror for air-gapped sites (`--chart-mirror`), used unless a Stack
    /// names its own.
    pub chart_mirror: Option<String>,
    /// KEP-5339 access providers for clusters mk8 does not manage
    /// (`--clusterprofile-provider-file`).
    pub access_providers: Option<super::stack::access::ProviderFile>,
}

impl Default for Delivery {
    fn default() -> Self {
        Self {
            argocd_namespace: "argocd".into(),
            chart_mirror: None,
            access_providers: None,
        }
    }
}

/// Shared state of all controllers; it derefs to the [`Env`] (client, Events) every stage gets.
pub struct Context {
    /// The management cluster's API and Event recorder.
    pub env: Env,
    /// Controller metrics.
    pub metrics: Arc<Metrics>,
    /// Provider drivers compiled into this operator.
    pub providers: Providers,
    /// What the management cluster serves.
    pub capabilities: Capabilities,
    /// How Stacks are delivered.
    pub delivery: Delivery,
    /// Consecutive failures per object, for exponential backoff.
    failures: Mutex<HashMap<String, u32>>,
}

impl Context {
    /// Build the context.
    pub fn new(
        client: Client,
        metrics: Arc<Metrics>,
        providers: Providers,
        capabilities: Capabilities,
    ) -> Self {
        Self {
            env: Env::new(client),
            metrics,
            providers,
            capabilities,
            delivery: Delivery::default(),
            failures: Mutex::default(),
        }
    }

    /// Forget an object's failures after a successful reconcile.
    pub fn succeeded(&self, key: &str) {
        self.failures.lock().expect("backoff lock").remove(key);
    }

    /// Decide when to retry after `error`, counting the failure for `key`.
    pub fn retry_after(&self, controller: &str, key: &str, error: &Error) -> Action {
        match self.retry_delay(controller, key, error) {
            Some(delay) => Action::requeue(delay),
            // Invalid input: only a change to the object (which triggers a reconcile) can help.
            None => Action::await_change(),
        }
    }

    /// The delay before the next attempt for `key` (`None`: wait for a change), counting this failure.
    pub fn retry_delay(&self, controller: &str, key: &str, error: &Error) -> Option<Duration> {
        let category = error.category();
        self.metrics.failure(controller, category);
        let attempt = {
            let mut failures = self.failures.lock().expect("backoff lock");
            let n = failures.entry(key.to_string()).or_default();
            *n = n.saturating_add(1);
            *n
        };
        tracing::warn!(controller, object = key, category = category.as_str(), attempt, error = %error, "reconcile failed");
        backoff_delay(category, attempt, rand::random::<f64>())
    }
}

impl std::ops::Deref for Context {
    type Target = Env;

    fn deref(&self) -> &Env {
        &self.env
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::registry::Registry;

    fn context() -> Context {
        let config = kube::Config::new("https://127.0.0.1:1".parse().unwrap());
        let client = Client::try_from(config).expect("a client needs no connection to exist");
        let metrics = Arc::new(Metrics::register(&mut Registry::default()));
        Context::new(
            client,
            metrics,
            Providers::default(),
            Capabilities::default(),
        )
    }

    fn transient() -> Error {
        Error::CleanupBlocked("the provider is away".into())
    }

    #[tokio::test]
    async fn failures_of_one_object_back_off_further_and_reset_on_success() {
        let ctx = context();
        let first = ctx.retry_delay("cluster", "fleet/a", &transient()).unwrap();
        let _ = ctx.retry_delay("cluster", "fleet/a", &transient());
        let third = ctx.retry_delay("cluster", "fleet/a", &transient()).unwrap();
        // attempt 1 is at most 0.5s, attempt 3 at least 1s (half of 2s): always further out.
        assert!(
            first <= Duration::from_millis(500) && third >= Duration::from_secs(1),
            "{first:?} then {third:?}"
        );
        // Another object starts from scratch.
        assert!(
            ctx.retry_delay("cluster", "fleet/b", &transient()).unwrap()
                <= Duration::from_millis(500)
        );
        ctx.succeeded("fleet/a");
        assert!(
            ctx.retry_delay("cluster", "fleet/a", &transient()).unwrap()
                <= Duration::from_millis(500)
        );
    }

    #[tokio::test]
    async fn invalid_input_waits_for_a_change() {
        let ctx = context();
        let invalid = Error::Serialization(serde_json::from_str::<u8>("x").unwrap_err());
        assert_eq!(
            ctx.retry_after("stack", "fleet/s", &invalid),
            Action::await_change()
        );
    }

    #[tokio::test]
    async fn two_operators_in_one_process_share_neither_jobs_nor_artifact_cache() {
        use crate::operator::{OperatorConfig, providers};
        let operator = |cache: &str| {
            let config = kube::Config::new("https://127.0.0.1:1".parse().unwrap());
            let client = Client::try_from(config).expect("a client needs no connection to exist");
            let metrics = Arc::new(Metrics::register(&mut Registry::default()));
            let config = OperatorConfig::from_args(&["--artifact-cache", cache]);
            Context::new(client, metrics, providers(&config), Capabilities::default())
        };
        let (a, b) = (operator("/tmp/mk8-a"), operator("/tmp/mk8-b"));
        let (a, b) = (
            a.providers.rke2.as_ref().expect("RKE2 is always on"),
            b.providers.rke2.as_ref().expect("RKE2 is always on"),
        );
        assert!(!std::ptr::eq(a.jobs(), b.jobs()));
        assert_eq!(a.artifact_cache(), std::path::Path::new("/tmp/mk8-a"));
        assert_eq!(b.artifact_cache(), std::path::Path::new("/tmp/mk8-b"));
    }
}
