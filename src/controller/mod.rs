//! The four controllers and the runtime they share.
//!
//! Each controller is a folder of small stages (`observe` does I/O, `validate` and friends are
//! pure, `mod.rs` reads like a table of contents); this file wires them to kube-runtime.

pub mod cluster;
pub mod context;
pub mod label_selector;
pub mod metrics;
pub mod nodepool;
pub mod stack;
pub mod view;

pub use crate::reconcile::{conditions, error, status};

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use kube::api::DynamicObject;
use kube::runtime::controller::{Action, Config as ControllerConfig};
use kube::runtime::finalizer::{Event, finalizer};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{Controller, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::api::{Cluster, ClusterProfileView, NodePool, Stack};
use context::{Context, FINALIZER};
use error::{Error, Result};

/// Settings of the controller runtime.
#[derive(Clone, Debug, Default)]
pub struct RunConfig {
    /// Watch only this namespace; `None`: all namespaces.
    pub namespace: Option<String>,
    /// Reconciles running at once per controller (0: unbounded).
    pub concurrency: u16,
}

fn api<K>(client: &Client, namespace: &Option<String>) -> Api<K>
where
    K: Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

fn key<K: Resource>(obj: &K) -> String {
    format!("{}/{}", obj.namespace().unwrap_or_default(), obj.name_any())
}

/// Run one reconcile inside the finalizer protocol, timing it and resetting backoff on success.
async fn with_finalizer<K, A, C, FA, FC>(
    controller: &'static str,
    obj: Arc<K>,
    ctx: Arc<Context>,
    apply: A,
    cleanup: C,
) -> Result<Action>
where
    K: Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>
        + Clone
        + std::fmt::Debug
        + Serialize
        + DeserializeOwned
        + Send
        + Sync
        + 'static,
    A: FnOnce(Arc<K>, Arc<Context>) -> FA,
    C: FnOnce(Arc<K>, Arc<Context>) -> FC,
    FA: Future<Output = Result<Action>>,
    FC: Future<Output = Result<Action>>,
{
    let started = Instant::now();
    let object_key = key(obj.as_ref());
    let reference = obj.object_ref(&());
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &obj.namespace().unwrap_or_default());
    let inner = ctx.clone();
    let result = finalizer(&api, FINALIZER, obj, |event| async move {
        match event {
            Event::Apply(o) => apply(o, inner).await,
            Event::Cleanup(o) => cleanup(o, inner).await,
        }
    })
    .await
    .map_err(Error::finalizer);
    ctx.metrics.observe(controller, started.elapsed());
    // A deletion that waits says why on the object (`kubectl describe`, `kubectl get events`).
    if let Some(why) = result.as_ref().err().and_then(Error::cleanup_blocked) {
        ctx.event(&reference, true, "DeletionBlocked", why.to_string())
            .await;
    }
    if result.is_ok() {
        ctx.succeeded(&object_key);
    }
    result
}

fn error_policy<K: Resource>(
    controller: &'static str,
) -> impl Fn(Arc<K>, &Error, Arc<Context>) -> Action {
    move |obj, error, ctx| ctx.retry_after(controller, &key(obj.as_ref()), error)
}

fn log_outcome<T: std::fmt::Debug, E: std::fmt::Display>(
    controller: &'static str,
) -> impl Fn(Result<T, E>) -> std::future::Ready<()> {
    move |outcome| {
        match outcome {
            Ok(applied) => tracing::debug!(controller, ?applied, "reconciled"),
            Err(e) => tracing::debug!(controller, error = %e, "reconcile did not complete"),
        }
        std::future::ready(())
    }
}

/// Resolves once `store` has seen its first complete list.
async fn cache_synced<K>(
    store: &kube::runtime::reflector::Store<K>,
) -> Result<(), kube::runtime::reflector::store::WriterDropped>
where
    K: kube::runtime::reflector::Lookup + Clone + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    // The store's readiness signal wakes only its most recent waiter, and the controller itself
    // waits on it too: poll again now and then instead of relying on a wake-up.
    loop {
        match tokio::time::timeout(Duration::from_millis(250), store.wait_until_ready()).await {
            Ok(result) => return result,
            Err(_elapsed) => continue,
        }
    }
}

/// Run the four controllers until `shutdown` resolves; `synced` fires once every cache has synced.
pub async fn run<S>(
    ctx: Arc<Context>,
    config: RunConfig,
    shutdown: S,
    synced: tokio::sync::oneshot::Sender<()>,
) where
    S: Future<Output = ()> + Clone + Send + Sync + 'static,
{
    let client = ctx.client.clone();
    let ns = config.namespace.clone();
    let cfg = ControllerConfig::default().concurrency(config.concurrency);
    let wc = watcher::Config::default;

    // Cluster ← its NodePools (a server pool appearing unblocks an RKE2 cluster).
    let clusters = Controller::new(api::<Cluster>(&client, &ns), wc())
        .with_config(cfg.clone())
        .watches(api::<NodePool>(&client, &ns), wc(), |pool| {
            let ns = pool.namespace().unwrap_or_default();
            Some(ObjectRef::<Cluster>::new(&pool.spec.cluster_name).within(&ns))
        })
        .graceful_shutdown_on(shutdown.clone());

    // NodePool ← its Cluster (created, deleted, provider changed).
    let pools = Controller::new(api::<NodePool>(&client, &ns), wc()).with_config(cfg.clone());
    let pool_store = pools.store();
    let pools = pools
        .watches(api::<Cluster>(&client, &ns), wc(), move |cluster| {
            let ns = cluster.namespace();
            let name = cluster.name_any();
            pool_store
                .state()
                .into_iter()
                .filter(|p| p.namespace() == ns && p.spec.cluster_name == name)
                .map(|p| ObjectRef::from_obj(p.as_ref()))
                .collect::<Vec<_>>()
        })
        .graceful_shutdown_on(shutdown.clone());

    // Stack ← ClusterProfiles (what its selector matches) and its ArgoCD Applications, when
    // those APIs exist.
    let stacks = Controller::new(api::<Stack>(&client, &ns), wc()).with_config(cfg.clone());
    let stack_store = stacks.store();
    let stacks = if ctx.capabilities.cluster_profiles {
        let profiles: Api<DynamicObject> =
            Api::all_with(client.clone(), &stack::cluster_profile_resource());
        stacks.watches_with(
            profiles,
            stack::cluster_profile_resource(),
            wc(),
            move |_profile| {
                stack_store
                    .state()
                    .into_iter()
                    .map(|s| ObjectRef::from_obj(s.as_ref()))
                    .collect::<Vec<_>>()
            },
        )
    } else {
        stacks
    };
    let stacks = if ctx.capabilities.argocd_applications {
        let apps: Api<DynamicObject> = Api::namespaced_with(
            client.clone(),
            &ctx.delivery.argocd_namespace,
            &stack::application_resource(),
        );
        stacks.watches_with(
            apps,
            stack::application_resource(),
            wc().labels(stack::plan::STACK_LABEL),
            |app| {
                let owner = app.annotations().get(stack::plan::STACK_ANNOTATION)?;
                let (namespace, name) = owner.split_once('/')?;
                Some(ObjectRef::<Stack>::new(name).within(namespace))
            },
        )
    } else {
        stacks
    }
    .graceful_shutdown_on(shutdown.clone());

    let views = Controller::new(api::<ClusterProfileView>(&client, &ns), wc())
        .with_config(cfg)
        .graceful_shutdown_on(shutdown);

    let stores = (
        clusters.store(),
        pools.store(),
        stacks.store(),
        views.store(),
    );
    tokio::spawn(async move {
        let all = futures::future::try_join4(
            cache_synced(&stores.0),
            cache_synced(&stores.1),
            cache_synced(&stores.2),
            cache_synced(&stores.3),
        );
        match all.await {
            Ok(_) => {
                let _ = synced.send(());
            }
            Err(e) => tracing::warn!(error = %e, "a controller cache never synced"),
        }
    });

    let clusters = clusters
        .run(
            |c, ctx| with_finalizer(cluster::NAME, c, ctx, cluster::apply, cluster::cleanup),
            error_policy(cluster::NAME),
            ctx.clone(),
        )
        .for_each(log_outcome(cluster::NAME));
    let pools = pools
        .run(
            |p, ctx| with_finalizer(nodepool::NAME, p, ctx, nodepool::apply, nodepool::cleanup),
            error_policy(nodepool::NAME),
            ctx.clone(),
        )
        .for_each(log_outcome(nodepool::NAME));
    let stacks = stacks
        .run(
            |s, ctx| with_finalizer(stack::NAME, s, ctx, stack::apply, stack::cleanup),
            error_policy(stack::NAME),
            ctx.clone(),
        )
        .for_each(log_outcome(stack::NAME));
    let views = views
        .run(
            |v, ctx: Arc<Context>| async move {
                let started = Instant::now();
                let object_key = key(v.as_ref());
                let result = view::apply(v, ctx.clone()).await;
                ctx.metrics.observe(view::NAME, started.elapsed());
                if result.is_ok() {
                    ctx.succeeded(&object_key);
                }
                result
            },
            error_policy(view::NAME),
            ctx,
        )
        .for_each(log_outcome(view::NAME));
    futures::join!(clusters, pools, stacks, views);
}
