//! What a reconcile stage may touch of the management cluster (I/O): its API and Event recorder.

use k8s_openapi::api::core::v1::ObjectReference;
use kube::Client;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};

/// Field manager of every write the operator makes (server-side apply).
pub const FIELD_MANAGER: &str = "mk8-operator";

/// The management cluster as the reconcile stages see it.
pub struct Env {
    /// Client of the management cluster.
    pub client: Client,
    /// Publishes Kubernetes Events.
    pub recorder: Recorder,
}

impl Env {
    /// An environment on `client`, reporting Events as this pod (`POD_NAME`).
    pub fn new(client: Client) -> Self {
        let recorder = Recorder::new(
            client.clone(),
            Reporter {
                controller: FIELD_MANAGER.into(),
                instance: std::env::var("POD_NAME").ok(),
            },
        );
        Self { client, recorder }
    }

    /// Publish an Event about `reference`; a failure to publish is logged, never fatal.
    pub async fn event(
        &self,
        reference: &ObjectReference,
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
