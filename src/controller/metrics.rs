//! Prometheus metrics of the controllers (prometheus-client).

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use super::error::Category;

/// Labels of per-controller series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ControllerLabels {
    /// Controller name (`cluster`, `nodepool`, `stack`, `view`).
    pub controller: String,
}

/// Labels of failure series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FailureLabels {
    /// Controller name.
    pub controller: String,
    /// Error category (`invalid_input`, `transient`, `throttled`).
    pub category: String,
}

/// The metrics the controllers update.
pub struct Metrics {
    reconciles: Family<ControllerLabels, Counter>,
    failures: Family<FailureLabels, Counter>,
    duration: Family<ControllerLabels, Histogram>,
    application_writes: Family<WriteLabels, Counter>,
    view_latency: Family<ClusterLabels, Histogram>,
    view_answers: Family<AnswerLabels, Counter>,
}

/// Labels of a view's per-cluster latency.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ClusterLabels {
    /// `namespace/name` of the ClusterProfile.
    pub cluster: String,
}

/// Labels of a view's per-cluster answers.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AnswerLabels {
    /// `namespace/name` of the ClusterProfile.
    pub cluster: String,
    /// `Ok`, `Timeout`, `Forbidden`, …
    pub state: String,
}

/// Labels of the ArgoCD Application write counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WriteLabels {
    /// `apply` or `delete`.
    pub operation: String,
}

impl Metrics {
    /// Create the metrics and register them under the `mk8` prefix.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self {
            reconciles: Family::default(),
            failures: Family::default(),
            duration: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.005, 2.0, 14))
            }),
            application_writes: Family::default(),
            view_latency: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.005, 2.0, 14))
            }),
            view_answers: Family::default(),
        };
        let sub = registry.sub_registry_with_prefix("mk8");
        sub.register(
            "reconciliations",
            "Reconciliations started, per controller",
            metrics.reconciles.clone(),
        );
        sub.register(
            "reconcile_failures",
            "Failed reconciliations, per controller and error category",
            metrics.failures.clone(),
        );
        sub.register(
            "reconcile_duration_seconds",
            "Time spent in one reconciliation",
            metrics.duration.clone(),
        );
        sub.register(
            "stack_application_writes",
            "ArgoCD Application writes by the Stack controller (a resync with nothing changed writes none)",
            metrics.application_writes.clone(),
        );
        sub.register(
            "view_cluster_latency_seconds",
            "Time one cluster took to answer a ClusterProfileView's query (or to fail)",
            metrics.view_latency.clone(),
        );
        sub.register(
            "view_cluster_answers",
            "ClusterProfileView queries per cluster and outcome",
            metrics.view_answers.clone(),
        );
        metrics
    }

    /// Record one cluster's answer to a view's query.
    pub fn view_answer(&self, cluster: &str, state: &str, took: Duration) {
        self.view_latency
            .get_or_create(&ClusterLabels {
                cluster: cluster.to_string(),
            })
            .observe(took.as_secs_f64());
        self.view_answers
            .get_or_create(&AnswerLabels {
                cluster: cluster.to_string(),
                state: state.to_string(),
            })
            .inc();
    }

    /// Count one Application write (`apply` or `delete`).
    pub fn application_write(&self, operation: &str) {
        self.application_writes
            .get_or_create(&WriteLabels {
                operation: operation.to_string(),
            })
            .inc();
    }

    /// Record one reconcile and how long it took.
    pub fn observe(&self, controller: &str, took: Duration) {
        let labels = ControllerLabels {
            controller: controller.to_string(),
        };
        self.reconciles.get_or_create(&labels).inc();
        self.duration
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
    }

    /// Record a failed reconcile.
    pub fn failure(&self, controller: &str, category: Category) {
        self.failures
            .get_or_create(&FailureLabels {
                controller: controller.to_string(),
                category: category.as_str().to_string(),
            })
            .inc();
    }
}
