//! The context every reconcile gets: client, Event recorder, metrics, drivers, backoff state.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kube::Client;
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};

use super::error::{Error, backoff_delay};
use super::metrics::Metrics;
use crate::providers::Providers;

/// Field manager of every write the operator makes (server-side apply).
pub const FIELD_MANAGER: &str = "mk8-operator";

/// Finalizer on kinds that own external state.
pub const FINALIZER: &str = "mk8.io/cleanup";

/// APIs found on the management cluster at start-up.
#[derive(Clone, Copy, Debug, Default)]
pub struct Capabilities {
    /// `multicluster.x-k8s.io/v1alpha1` ClusterProfile is served.
    pub cluster_profiles: bool,
}

/// Shared state of all controllers.
pub struct Context {
    /// Client of the management cluster.
    pub client: Client,
    /// Publishes Kubernetes Events.
    pub recorder: Recorder,
    /// Controller metrics.
    pub metrics: Arc<Metrics>,
    /// Provider drivers compiled into this operator.
    pub providers: Providers,
    /// What the management cluster serves.
    pub capabilities: Capabilities,
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
        let recorder = Recorder::new(
            client.clone(),
            Reporter {
                controller: FIELD_MANAGER.into(),
                instance: std::env::var("POD_NAME").ok(),
            },
        );
        Self {
            client,
            recorder,
            metrics,
            providers,
            capabilities,
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

    /// Publish an Event about `reference`; a failure to publish is logged, never fatal.
    pub async fn event(
        &self,
        reference: &k8s_openapi::api::core::v1::ObjectReference,
        warning: bool,
        reason: &str,
        note: String,
    ) {
        let event = Event {
            type_: if warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: reason.to_string(),
            note: Some(note),
            action: "Reconcile".into(),
            secondary: None,
        };
        if let Err(e) = self.recorder.publish(&event, reference).await {
            tracing::debug!(error = %e, reason, "could not publish event");
        }
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
}
