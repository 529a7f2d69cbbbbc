//! Status subresource and generation semantics, through kube-rs.

use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::json;

use super::with_widgets;

fn widgets(client: kube::Client) -> Api<DynamicObject> {
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("test.mk8.io", "v1", "Widget"),
        "widgets",
    );
    Api::namespaced_with(client, "default", &ar)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_writes_are_separate_and_generation_tracks_spec() {
    let c = with_widgets().await;
    let api = widgets(c.server.client().await.unwrap());
    let obj: DynamicObject = serde_json::from_value(json!({"apiVersion":"test.mk8.io/v1","kind":"Widget","metadata":{"name":"s"},"spec":{"size":1},"status":{"observed":7}})).unwrap();
    let created = api.create(&PostParams::default(), &obj).await.unwrap();
    assert_eq!(created.metadata.generation, Some(1));
    assert!(
        created.data.get("status").is_none(),
        "status dropped on create"
    );

    // The main resource ignores status.
    let pp = PatchParams::default();
    let after = api
        .patch("s", &pp, &Patch::Merge(json!({"status":{"observed":1}})))
        .await
        .unwrap();
    assert!(after.data.get("status").is_none());
    assert_eq!(after.metadata.generation, Some(1));

    // The status endpoint ignores everything else and does not bump generation.
    let after = api
        .patch_status(
            "s",
            &pp,
            &Patch::Merge(
                json!({"spec":{"size":9},"metadata":{"labels":{"x":"y"}},"status":{"observed":1}}),
            ),
        )
        .await
        .unwrap();
    assert_eq!(after.data["status"]["observed"], 1);
    assert_eq!(after.data["spec"]["size"], 1);
    assert!(after.metadata.labels.is_none());
    assert_eq!(after.metadata.generation, Some(1));

    // Metadata-only changes do not bump generation; spec changes do.
    let after = api
        .patch(
            "s",
            &pp,
            &Patch::Merge(json!({"metadata":{"labels":{"x":"y"}}})),
        )
        .await
        .unwrap();
    assert_eq!(after.metadata.generation, Some(1));
    let after = api
        .patch("s", &pp, &Patch::Merge(json!({"spec":{"size":2}})))
        .await
        .unwrap();
    assert_eq!(after.metadata.generation, Some(2));
    assert_eq!(
        after.data["status"]["observed"], 1,
        "status kept by spec writes"
    );

    // PUT to /status with a stale resourceVersion conflicts.
    let mut stale = created.clone();
    stale.data["status"] = json!({"observed": 3});
    match api
        .replace_status("s", &PostParams::default(), &stale)
        .await
    {
        Err(kube::Error::Api(s)) => assert_eq!(s.code, 409),
        other => panic!("expected conflict, got {other:?}"),
    }
    // A no-op write does not change the resourceVersion.
    let current = api.get("s").await.unwrap();
    let again = api
        .patch("s", &pp, &Patch::Merge(json!({"spec":{"size":2}})))
        .await
        .unwrap();
    assert_eq!(
        again.metadata.resource_version,
        current.metadata.resource_version
    );
}
