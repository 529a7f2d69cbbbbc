//! Writing status: server-side apply of the status subresource, skipped when nothing changed,
//! and an Event whenever the `Ready` condition changes status or reason.

use std::fmt::Debug;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{Patch, PatchParams};
use kube::{Api, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::conditions::{self, types};
use super::env::{Env, FIELD_MANAGER};
use super::error::Result;

/// A kind whose status the operator writes.
pub trait HasStatus:
    Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>
    + Clone
    + Debug
    + DeserializeOwned
    + Send
    + Sync
    + 'static
{
    /// The status type.
    type Status: Serialize + PartialEq + Clone + Default + Send + Sync;
    /// Current status, if any.
    fn status_ref(&self) -> Option<&Self::Status>;
    /// Conditions inside a status.
    fn conditions(status: &Self::Status) -> &[Condition];
}

macro_rules! has_status {
    ($kind:ty, $status:ty) => {
        impl HasStatus for $kind {
            type Status = $status;
            fn status_ref(&self) -> Option<&$status> {
                self.status.as_ref()
            }
            fn conditions(status: &$status) -> &[Condition] {
                &status.conditions
            }
        }
    };
}

has_status!(crate::api::Cluster, crate::api::ClusterStatus);
has_status!(crate::api::NodePool, crate::api::NodePoolStatus);
has_status!(crate::api::Stack, crate::api::StackStatus);
has_status!(
    crate::api::ClusterProfileView,
    crate::api::ClusterProfileViewStatus
);

/// Conditions of an object's current status (empty when it has none).
pub fn current_conditions<K: HasStatus>(obj: &K) -> &[Condition] {
    obj.status_ref().map(K::conditions).unwrap_or_default()
}

/// Apply `status` to `obj` unless it equals the current one. Returns whether a write happened.
pub async fn publish<K: HasStatus>(env: &Env, obj: &K, status: K::Status) -> Result<bool> {
    if obj.status_ref() == Some(&status) {
        return Ok(false);
    }
    let before = conditions::find(current_conditions(obj), types::READY)
        .map(|c| (c.status.clone(), c.reason.clone()));
    let after = conditions::find(K::conditions(&status), types::READY).cloned();

    let api: Api<K> = Api::namespaced(env.client.clone(), &obj.namespace().unwrap_or_default());
    let patch = serde_json::json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": status,
    });
    api.patch_status(
        &obj.name_any(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await?;

    if let Some(ready) = after
        && before.as_ref() != Some(&(ready.status.clone(), ready.reason.clone()))
    {
        let warning = ready.status != "True";
        env.event(
            &obj.object_ref(&()),
            warning,
            &ready.reason,
            ready.message.clone(),
        )
        .await;
    }
    Ok(true)
}

/// `text` cut to at most `max` bytes at a character boundary, `…` marking the cut.
pub fn bounded(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}
