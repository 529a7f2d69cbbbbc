//! Watches: initial events, replay from a resourceVersion, selector-aware event types, bookmarks
//! (periodic and `k8s.io/initial-events-end`), `timeoutSeconds`, and 410 Gone for compacted history.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper::Response;
use hyper::body::Frame;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use super::http::{ApiRequest, Body};
use super::read::Filters;
use super::state::{State, Target};
use super::status::{ApiError, ApiResult};
use super::store::{EventKind, StoredEvent};
use super::table;

/// How often an idle watch that allows bookmarks gets one.
const BOOKMARK_INTERVAL: Duration = Duration::from_secs(5);
/// Default watch duration when the client sets no timeout (kube-apiserver picks 30–60 min).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1800);

struct Watcher {
    state: Arc<State>,
    target: Target,
    filters: Filters,
    table: bool,
    tx: mpsc::Sender<Bytes>,
    last_rv: u64,
}

impl Watcher {
    fn selects(&self, obj: &Value) -> bool {
        if self.target.def.namespaced
            && !self.target.namespace.is_empty()
            && obj.pointer("/metadata/namespace").and_then(Value::as_str)
                != Some(self.target.namespace.as_str())
        {
            return false;
        }
        if let Some(name) = &self.target.name
            && obj.pointer("/metadata/name").and_then(Value::as_str) != Some(name.as_str())
        {
            return false;
        }
        self.filters.matches(obj)
    }

    async fn send_raw(&self, kind: &str, object: &[u8]) -> bool {
        let mut line = Vec::with_capacity(object.len() + 32);
        line.extend_from_slice(b"{\"type\":\"");
        line.extend_from_slice(kind.as_bytes());
        line.extend_from_slice(b"\",\"object\":");
        line.extend_from_slice(object);
        line.extend_from_slice(b"}\n");
        self.tx.send(Bytes::from(line)).await.is_ok()
    }

    async fn send_object(&self, kind: &str, obj: &Arc<Value>, encoded: Option<&Bytes>) -> bool {
        let presented = self.target.present(obj);
        if self.table {
            let rows = [presented];
            let t = table::render(&self.target, &rows, &Default::default(), self.last_rv, None);
            return self
                .send_raw(kind, &serde_json::to_vec(&t).unwrap_or_default())
                .await;
        }
        match encoded {
            Some(bytes) if Arc::ptr_eq(&presented, obj) => self.send_raw(kind, bytes).await,
            _ => {
                self.send_raw(kind, &serde_json::to_vec(&*presented).unwrap_or_default())
                    .await
            }
        }
    }

    async fn send_event(&mut self, event: &StoredEvent) -> bool {
        if event.rv <= self.last_rv {
            return true;
        }
        self.last_rv = event.rv;
        let now = self.selects(&event.object);
        let before = event.previous.as_ref().is_some_and(|p| self.selects(p));
        let kind = match (event.kind, before, now) {
            (EventKind::Added, _, true) => EventKind::Added,
            (EventKind::Modified, true, true) => EventKind::Modified,
            (EventKind::Modified, false, true) => EventKind::Added,
            (EventKind::Modified, true, false) => EventKind::Deleted,
            (EventKind::Deleted, true, _) => EventKind::Deleted,
            _ => return true,
        };
        self.send_object(kind.as_str(), &event.object, Some(event.encoded()))
            .await
    }

    async fn bookmark(&self, initial_end: bool) -> bool {
        let mut meta = json!({"resourceVersion": self.last_rv.to_string()});
        if initial_end {
            meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        let obj = json!({"kind": self.target.def.kind, "apiVersion": self.target.api_version(), "metadata": meta});
        self.send_raw("BOOKMARK", &serde_json::to_vec(&obj).unwrap_or_default())
            .await
    }

    async fn expired(&self, requested: u64, oldest: u64) {
        let status = ApiError::Expired(requested, oldest).to_status();
        self.send_raw("ERROR", &serde_json::to_vec(&status).unwrap_or_default())
            .await;
    }
}

/// Serve `?watch=true` (or a `/watch/` path) as a stream of newline-delimited JSON events.
pub fn watch(state: &Arc<State>, target: &Target, req: &ApiRequest) -> ApiResult<Response<Body>> {
    let filters = Filters::parse(target, &req.query)?;
    let rv_param = req
        .query
        .get("resourceVersion")
        .unwrap_or_default()
        .to_string();
    let send_initial = req.query.get("sendInitialEvents") == Some("true");
    let bookmarks = req.query.flag("allowWatchBookmarks");
    let timeout = match req.query.get("timeoutSeconds") {
        Some(t) if !t.is_empty() => Duration::from_secs(
            t.parse()
                .map_err(|_| ApiError::BadRequest(format!("invalid timeoutSeconds {t:?}")))?,
        ),
        _ => DEFAULT_TIMEOUT,
    };
    let requested_rv: Option<u64> =
        if send_initial || rv_param.is_empty() || rv_param == "0" {
            None
        } else {
            Some(rv_param.parse().map_err(|_| {
                ApiError::BadRequest(format!("invalid resource version {rv_param:?}"))
            })?)
        };
    let (tx, rx) = mpsc::channel::<Bytes>(256);
    let mut watcher = Watcher {
        state: state.clone(),
        target: target.clone(),
        filters,
        table: req.wants_table(),
        tx,
        last_rv: 0,
    };
    let epoch = state.store.watch_epoch();
    tokio::spawn(async move {
        let gr = watcher.target.gr();
        let mut live = match requested_rv {
            None => {
                let (items, rv, live) = watcher.state.store.snapshot_and_subscribe(&gr);
                for item in &items {
                    if watcher.selects(item) && !watcher.send_object("ADDED", item, None).await {
                        return;
                    }
                }
                watcher.last_rv = rv;
                if send_initial && bookmarks && !watcher.bookmark(true).await {
                    return;
                }
                live
            }
            Some(rv) => match watcher.state.store.subscribe_from(&gr, rv) {
                Ok(sub) => {
                    watcher.last_rv = rv;
                    for event in &sub.backlog {
                        if !watcher.send_event(event).await {
                            return;
                        }
                    }
                    sub.rx
                }
                Err(oldest) => {
                    watcher.expired(rv, oldest).await;
                    return;
                }
            },
        };
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let mut ticker = tokio::time::interval(BOOKMARK_INTERVAL);
        ticker.tick().await;
        loop {
            tokio::select! {
                received = live.recv() => match received {
                    Ok(event) => if !watcher.send_event(&event).await { return },
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        // Fell behind the live channel: continue from retained history.
                        match watcher.state.store.subscribe_from(&gr, watcher.last_rv) {
                            Ok(sub) => {
                                for event in &sub.backlog {
                                    if !watcher.send_event(event).await { return }
                                }
                                live = sub.rx;
                            }
                            Err(oldest) => { watcher.expired(watcher.last_rv, oldest).await; return }
                        }
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                _ = ticker.tick(), if bookmarks => if !watcher.bookmark(false).await { return },
                _ = &mut deadline => return,
                _ = epoch.cancelled() => return,
                _ = watcher.tx.closed() => return,
            }
        }
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<_, std::io::Error>(Frame::data(b)), rx))
    });
    Ok(Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .body(BodyExt::boxed(StreamBody::new(stream)))
        .unwrap_or_else(|_| Response::new(super::http::full(Bytes::new()))))
}
