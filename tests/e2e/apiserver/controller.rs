//! A kube-rs Controller with a finalizer runs create → reconcile → delete against the server.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::StreamExt;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::finalizer::{Event, finalizer};
use kube::{CustomResource, CustomResourceExt, ResourceExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Cluster, eventually};

/// A test-only kind.
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, JsonSchema)]
#[kube(
    group = "ctl.test.mk8.io",
    version = "v1",
    kind = "Gizmo",
    namespaced,
    status = "GizmoStatus"
)]
pub struct GizmoSpec {
    pub message: String,
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, JsonSchema)]
pub struct GizmoStatus {
    pub echoed: Option<String>,
}

const FINALIZER: &str = "ctl.test.mk8.io/cleanup";

struct Ctx {
    client: kube::Client,
    cleanups: AtomicUsize,
}

#[derive(Debug, thiserror::Error)]
#[error(transparent)]
struct ReconcileError(#[from] Box<kube::runtime::finalizer::Error<kube::Error>>);

async fn reconcile(g: Arc<Gizmo>, ctx: Arc<Ctx>) -> Result<Action, ReconcileError> {
    let api: Api<Gizmo> = Api::namespaced(ctx.client.clone(), &g.namespace().unwrap());
    finalizer(&api, FINALIZER, g, |event| async {
        match event {
            Event::Apply(g) => {
                let status = serde_json::json!({"apiVersion": "ctl.test.mk8.io/v1", "kind": "Gizmo", "status": {"echoed": g.spec.message}});
                api.patch_status(&g.name_any(), &PatchParams::apply("gizmo-controller").force(), &Patch::Apply(status)).await?;
                Ok(Action::await_change())
            }
            Event::Cleanup(_) => {
                ctx.cleanups.fetch_add(1, Ordering::SeqCst);
                Ok(Action::await_change())
            }
        }
    })
    .await
    .map_err(|e| ReconcileError(Box::new(e)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_with_finalizer_runs_create_reconcile_delete() {
    let c = Cluster::start().await;
    c.server
        .apply_manifests(&serde_yaml::to_string(&Gizmo::crd()).unwrap())
        .await
        .unwrap();
    let client = c.server.client().await.unwrap();
    let ctx = Arc::new(Ctx {
        client: client.clone(),
        cleanups: AtomicUsize::new(0),
    });
    let api: Api<Gizmo> = Api::namespaced(client.clone(), "default");
    let controller = Controller::new(Api::<Gizmo>::all(client.clone()), Default::default())
        .run(
            reconcile,
            |_, _, _| Action::requeue(Duration::from_millis(200)),
            ctx.clone(),
        )
        .for_each(|_| async {});
    let handle = tokio::spawn(controller);

    api.create(
        &PostParams::default(),
        &Gizmo::new(
            "g1",
            GizmoSpec {
                message: "hello".into(),
            },
        ),
    )
    .await
    .unwrap();
    let reconciled = eventually(Duration::from_secs(20), "status echoed", async || {
        let g = api.get("g1").await.ok()?;
        (g.status.as_ref().and_then(|s| s.echoed.as_deref()) == Some("hello")).then_some(g)
    })
    .await;
    assert!(reconciled.finalizers().iter().any(|f| f == FINALIZER));
    // kubectl sees it too, and waits for the finalizer to be handled on delete.
    assert!(
        c.ok(&["get", "gizmos", "-o", "name"])
            .contains("gizmo.ctl.test.mk8.io/g1")
    );

    api.delete("g1", &DeleteParams::default()).await.unwrap();
    eventually(
        Duration::from_secs(20),
        "g1 deleted after cleanup",
        async || api.get_opt("g1").await.unwrap().is_none().then_some(()),
    )
    .await;
    assert_eq!(ctx.cleanups.load(Ordering::SeqCst), 1);
    handle.abort();
}
