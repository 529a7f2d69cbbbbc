//! Watch semantics through kube-rs: initial events, resume, selectors, bookmarks, timeouts,
//! 410 Gone and the watcher's relist.

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{
    Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::runtime::watcher;

use super::{Cluster, eventually};

fn cm(name: &str, labels: serde_json::Value) -> ConfigMap {
    serde_json::from_value(serde_json::json!({"metadata": {"name": name, "labels": labels}}))
        .unwrap()
}

fn name_of(e: &WatchEvent<ConfigMap>) -> String {
    match e {
        WatchEvent::Added(o) | WatchEvent::Modified(o) | WatchEvent::Deleted(o) => {
            o.metadata.name.clone().unwrap_or_default()
        }
        WatchEvent::Bookmark(_) => "<bookmark>".into(),
        WatchEvent::Error(e) => format!("<error {}>", e.code),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_from_zero_replays_then_streams_and_resumes_from_a_version() {
    let c = Cluster::start().await;
    let api: Api<ConfigMap> = Api::namespaced(c.server.client().await.unwrap(), "default");
    api.create(&PostParams::default(), &cm("before", serde_json::json!({})))
        .await
        .unwrap();
    let list_rv = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();

    let mut from_zero = api
        .watch(&WatchParams::default().timeout(10), "0")
        .await
        .unwrap()
        .boxed();
    let first = from_zero.try_next().await.unwrap().unwrap();
    assert!(
        matches!(&first, WatchEvent::Added(_)) && name_of(&first) == "before",
        "{first:?}"
    );

    let mut from_rv = api
        .watch(&WatchParams::default().timeout(10), &list_rv)
        .await
        .unwrap()
        .boxed();
    api.create(&PostParams::default(), &cm("after", serde_json::json!({})))
        .await
        .unwrap();
    api.patch(
        "after",
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"data": {"k": "v"}})),
    )
    .await
    .unwrap();
    api.delete("after", &DeleteParams::default()).await.unwrap();
    let mut kinds = Vec::new();
    for _ in 0..3 {
        let e = from_rv.try_next().await.unwrap().unwrap();
        assert_eq!(
            name_of(&e),
            "after",
            "resume from the list version skips older objects"
        );
        kinds.push(match e {
            WatchEvent::Added(_) => "ADDED",
            WatchEvent::Modified(_) => "MODIFIED",
            WatchEvent::Deleted(_) => "DELETED",
            _ => "OTHER",
        });
    }
    assert_eq!(kinds, vec!["ADDED", "MODIFIED", "DELETED"]);
    let second = from_zero.try_next().await.unwrap().unwrap();
    assert_eq!(name_of(&second), "after");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn selector_watches_see_objects_enter_and_leave() {
    let c = Cluster::start().await;
    let api: Api<ConfigMap> = Api::namespaced(c.server.client().await.unwrap(), "default");
    let mut stream = api
        .watch(&WatchParams::default().labels("team=a").timeout(10), "0")
        .await
        .unwrap()
        .boxed();
    api.create(
        &PostParams::default(),
        &cm("x", serde_json::json!({"team": "b"})),
    )
    .await
    .unwrap();
    api.patch(
        "x",
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"metadata": {"labels": {"team": "a"}}})),
    )
    .await
    .unwrap();
    api.patch(
        "x",
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"metadata": {"labels": {"team": "c"}}})),
    )
    .await
    .unwrap();
    assert!(matches!(
        stream.try_next().await.unwrap().unwrap(),
        WatchEvent::Added(_)
    ));
    assert!(matches!(
        stream.try_next().await.unwrap().unwrap(),
        WatchEvent::Deleted(_)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_seconds_ends_the_watch() {
    let c = Cluster::start().await;
    let api: Api<ConfigMap> = Api::namespaced(c.server.client().await.unwrap(), "default");
    let started = std::time::Instant::now();
    let events: Vec<_> = api
        .watch(&WatchParams::default().timeout(1), "0")
        .await
        .unwrap()
        .collect()
        .await;
    assert!(events.is_empty());
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "watch ended after its timeout"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_list_ends_initial_events_with_a_bookmark() {
    let c = Cluster::start().await;
    let api: Api<ConfigMap> = Api::namespaced(c.server.client().await.unwrap(), "default");
    api.create(&PostParams::default(), &cm("one", serde_json::json!({})))
        .await
        .unwrap();
    let mut stream = api
        .watch(&WatchParams::streaming_lists().timeout(10), "")
        .await
        .unwrap()
        .boxed();
    assert!(matches!(
        stream.try_next().await.unwrap().unwrap(),
        WatchEvent::Added(_)
    ));
    match stream.try_next().await.unwrap().unwrap() {
        WatchEvent::Bookmark(b) => assert_eq!(
            b.metadata
                .annotations
                .get("k8s.io/initial-events-end")
                .map(String::as_str),
            Some("true")
        ),
        other => panic!("expected the initial-events-end bookmark, got {other:?}"),
    }
    // kube-rs' watcher in streaming-list mode works end to end.
    let cfg = watcher::Config::default().streaming_lists();
    let mut w = watcher(api.clone(), cfg).boxed();
    let mut names = Vec::new();
    while let Some(ev) = w.try_next().await.unwrap() {
        match ev {
            watcher::Event::InitApply(o) => names.push(o.metadata.name.unwrap()),
            watcher::Event::InitDone => break,
            _ => {}
        }
    }
    assert_eq!(names, vec!["one"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_resource_version_gives_410_and_the_watcher_relists() {
    let c = Cluster::start().await;
    let api: Api<ConfigMap> = Api::namespaced(c.server.client().await.unwrap(), "default");
    api.create(&PostParams::default(), &cm("old", serde_json::json!({})))
        .await
        .unwrap();
    let old_rv = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();

    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let watched = api.clone();
    let task = tokio::spawn(async move {
        let mut w = watcher(watched, watcher::Config::default()).boxed();
        while let Some(ev) = w.next().await {
            let _ = tx.send(
                ev.map(|e| match e {
                    watcher::Event::Init => "init".to_string(),
                    watcher::Event::InitDone => "init-done".to_string(),
                    watcher::Event::InitApply(o) | watcher::Event::Apply(o) => {
                        format!("apply:{}", o.metadata.name.unwrap())
                    }
                    other => format!("{other:?}"),
                })
                .map_err(|e| e.to_string()),
            );
        }
    });
    assert_eq!(rx.recv().await.unwrap().unwrap(), "init");
    assert_eq!(rx.recv().await.unwrap().unwrap(), "apply:old");
    assert_eq!(rx.recv().await.unwrap().unwrap(), "init-done");

    // Another resource moves the global resourceVersion on, then history is compacted: the
    // watcher's last version is now older than anything the server can replay.
    c.ok(&["create", "secret", "generic", "bump"]);
    c.server.compact();
    match api
        .watch(&WatchParams::default().timeout(5), &old_rv)
        .await
        .unwrap()
        .boxed()
        .try_next()
        .await
        .unwrap()
        .unwrap()
    {
        WatchEvent::Error(e) => {
            assert_eq!(e.code, 410);
            assert_eq!(e.reason, "Expired");
        }
        other => panic!("expected 410 Gone, got {other:?}"),
    }
    api.create(&PostParams::default(), &cm("new", serde_json::json!({})))
        .await
        .unwrap();
    // The watcher's stream ended with compaction, its resume got 410, so it relisted: a second
    // initial listing arrives, and the object created meanwhile is seen (in the relist or after it).
    let mut seen = Vec::new();
    eventually(
        Duration::from_secs(30),
        "the watcher to relist",
        async || {
            while let Ok(ev) = rx.try_recv() {
                seen.push(ev.unwrap_or_else(|e| format!("error:{e}")));
            }
            let relisted = seen.iter().any(|e| e == "init-done");
            (relisted && seen.iter().any(|e| e == "apply:new")).then_some(())
        },
    )
    .await;
    assert!(
        seen.iter().any(|e| e == "init"),
        "a new initial listing started: {seen:?}"
    );
    task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_watches_get_periodic_bookmarks() {
    let c = Cluster::start().await;
    let api: Api<ConfigMap> = Api::namespaced(c.server.client().await.unwrap(), "default");
    let rv = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let mut stream = api
        .watch(&WatchParams::default().timeout(20), &rv)
        .await
        .unwrap()
        .boxed();
    match stream.try_next().await.unwrap().unwrap() {
        WatchEvent::Bookmark(b) => assert_eq!(b.metadata.resource_version, rv),
        other => panic!("expected a bookmark, got {other:?}"),
    }
    // Without allowWatchBookmarks there are none: the watch just times out.
    let quiet: Vec<_> = api
        .watch(&WatchParams::default().disable_bookmarks().timeout(6), &rv)
        .await
        .unwrap()
        .collect()
        .await;
    assert!(quiet.is_empty());
}
