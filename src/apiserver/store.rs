//! In-memory object storage: one map per resource behind its own lock, a single global
//! resourceVersion counter, and a bounded per-resource event history that watches replay from.
//!
//! Objects are kept as `Arc<Value>` so that lists and watch fan-out share them instead of deep
//! copying; writers replace whole objects.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use serde_json::Value;
use tokio::sync::{Notify, broadcast};
use tokio_util::sync::CancellationToken;

/// `(group, plural)`: storage is shared by all versions of a resource.
pub type GroupResource = (String, String);
/// `(namespace, name)`; namespace is "" for cluster-scoped objects.
pub type ObjKey = (String, String);

/// How many events per resource a watch can resume from before it gets 410 Gone.
const HISTORY_LIMIT: usize = 10_000;
/// Buffer of the live fan-out channel; a watcher that falls further behind catches up from history.
const CHANNEL_CAPACITY: usize = 4096;

/// Watch event type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// Object created.
    Added,
    /// Object changed.
    Modified,
    /// Object removed.
    Deleted,
}

impl EventKind {
    /// The wire name (`ADDED`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Added => "ADDED",
            EventKind::Modified => "MODIFIED",
            EventKind::Deleted => "DELETED",
        }
    }
}

/// One change of one object.
#[derive(Debug)]
pub struct StoredEvent {
    /// What happened.
    pub kind: EventKind,
    /// resourceVersion of the change.
    pub rv: u64,
    /// The object after the change (for deletes: the last state, at the delete's resourceVersion).
    pub object: Arc<Value>,
    /// The object before the change, so selector-filtered watches can turn a MODIFIED that leaves
    /// their selection into a DELETED.
    pub previous: Option<Arc<Value>>,
    /// The object serialized once and shared by every watcher.
    pub encoded: std::sync::OnceLock<bytes::Bytes>,
}

impl StoredEvent {
    fn new(kind: EventKind, rv: u64, object: Arc<Value>, previous: Option<Arc<Value>>) -> Self {
        StoredEvent {
            kind,
            rv,
            object,
            previous,
            encoded: std::sync::OnceLock::new(),
        }
    }

    /// The object as JSON bytes (serialized on first use).
    pub fn encoded(&self) -> &bytes::Bytes {
        self.encoded.get_or_init(|| {
            bytes::Bytes::from(serde_json::to_vec(&*self.object).unwrap_or_default())
        })
    }
}

/// Why a write could not be stored.
#[derive(Debug, PartialEq, Eq)]
pub enum WriteError {
    /// Create of an existing key.
    Exists,
    /// Update or delete of a missing key.
    Missing,
    /// The stored resourceVersion is not the expected one.
    Stale,
}

#[derive(Default)]
struct Inner {
    objects: BTreeMap<ObjKey, Arc<Value>>,
    history: VecDeque<Arc<StoredEvent>>,
    /// Watches from a resourceVersion below this one can no longer be served.
    compacted_rv: u64,
}

/// Objects of one resource.
pub struct ResourceStore {
    inner: Mutex<Inner>,
    tx: broadcast::Sender<Arc<StoredEvent>>,
}

/// A subscription to a resource's changes, with the retained events it starts from.
pub struct Subscription {
    /// Events after the requested resourceVersion, already retained.
    pub backlog: Vec<Arc<StoredEvent>>,
    /// Live events after the backlog.
    pub rx: broadcast::Receiver<Arc<StoredEvent>>,
}

/// The whole database.
pub struct Store {
    rv: AtomicU64,
    resources: RwLock<HashMap<GroupResource, Arc<ResourceStore>>>,
    /// Signalled on every write (persistence).
    pub changed: Notify,
    /// Signalled on deletes (garbage collection).
    pub deleted: Notify,
    /// Cancelled to end every open watch (compaction / shutdown); replaced afterwards.
    watch_epoch: Mutex<CancellationToken>,
}

fn lock(m: &Mutex<Inner>) -> MutexGuard<'_, Inner> {
    // A panic while holding the lock leaves consistent data (we never panic mid-update), so
    // recover from poisoning rather than taking the whole server down.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The object's `metadata.resourceVersion` parsed as a number (0 when absent or malformed).
pub fn object_rv(obj: &Value) -> u64 {
    obj.pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

fn set_rv(obj: &mut Value, rv: u64) {
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert("resourceVersion".into(), Value::String(rv.to_string()));
    }
}

impl ResourceStore {
    fn new() -> Self {
        ResourceStore {
            inner: Mutex::new(Inner::default()),
            tx: broadcast::channel(CHANNEL_CAPACITY).0,
        }
    }

    fn record(&self, inner: &mut Inner, event: StoredEvent) {
        let event = Arc::new(event);
        if inner.history.len() >= HISTORY_LIMIT
            && let Some(old) = inner.history.pop_front()
        {
            inner.compacted_rv = old.rv;
        }
        inner.history.push_back(event.clone());
        // No receivers is normal.
        let _ = self.tx.send(event);
    }
}

impl Default for Store {
    fn default() -> Self {
        Self::new(1)
    }
}

impl Store {
    /// An empty store whose counter continues after `last_rv`.
    pub fn new(last_rv: u64) -> Self {
        Store {
            rv: AtomicU64::new(last_rv),
            resources: RwLock::new(HashMap::new()),
            changed: Notify::new(),
            deleted: Notify::new(),
            watch_epoch: Mutex::new(CancellationToken::new()),
        }
    }

    /// The latest resourceVersion handed out.
    pub fn current_rv(&self) -> u64 {
        self.rv.load(Ordering::SeqCst)
    }

    fn next_rv(&self) -> u64 {
        self.rv.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// The storage of one resource, created on first use.
    pub fn resource(&self, gr: &GroupResource) -> Arc<ResourceStore> {
        if let Some(r) = self
            .resources
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(gr)
        {
            return r.clone();
        }
        self.resources
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .entry(gr.clone())
            .or_insert_with(|| Arc::new(ResourceStore::new()))
            .clone()
    }

    /// All resources that currently have storage.
    pub fn resource_names(&self) -> Vec<GroupResource> {
        self.resources
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect()
    }

    /// One object.
    pub fn get(&self, gr: &GroupResource, key: &ObjKey) -> Option<Arc<Value>> {
        lock(&self.resource(gr).inner).objects.get(key).cloned()
    }

    /// Objects of a resource (optionally one namespace), sorted by key, and the list resourceVersion.
    pub fn list(&self, gr: &GroupResource, namespace: Option<&str>) -> (Vec<Arc<Value>>, u64) {
        let res = self.resource(gr);
        let inner = lock(&res.inner);
        let items = match namespace {
            Some(ns) => inner
                .objects
                .range((ns.to_string(), String::new())..)
                .take_while(|((n, _), _)| n == ns)
                .map(|(_, v)| v.clone())
                .collect(),
            None => inner.objects.values().cloned().collect(),
        };
        (items, self.current_rv())
    }

    /// Store a new object, assigning its resourceVersion.
    pub fn create(
        &self,
        gr: &GroupResource,
        key: ObjKey,
        mut obj: Value,
    ) -> Result<Arc<Value>, WriteError> {
        let res = self.resource(gr);
        let mut inner = lock(&res.inner);
        if inner.objects.contains_key(&key) {
            return Err(WriteError::Exists);
        }
        let rv = self.next_rv();
        set_rv(&mut obj, rv);
        let obj = Arc::new(obj);
        inner.objects.insert(key, obj.clone());
        res.record(
            &mut inner,
            StoredEvent::new(EventKind::Added, rv, obj.clone(), None),
        );
        drop(inner);
        self.changed.notify_one();
        Ok(obj)
    }

    /// Replace an object if its stored resourceVersion is still `expected_rv`.
    pub fn update(
        &self,
        gr: &GroupResource,
        key: &ObjKey,
        expected_rv: u64,
        mut obj: Value,
    ) -> Result<Arc<Value>, WriteError> {
        let res = self.resource(gr);
        let mut inner = lock(&res.inner);
        let current = inner.objects.get(key).ok_or(WriteError::Missing)?;
        if object_rv(current) != expected_rv {
            return Err(WriteError::Stale);
        }
        let previous = current.clone();
        let rv = self.next_rv();
        set_rv(&mut obj, rv);
        let obj = Arc::new(obj);
        inner.objects.insert(key.clone(), obj.clone());
        res.record(
            &mut inner,
            StoredEvent::new(EventKind::Modified, rv, obj.clone(), Some(previous)),
        );
        drop(inner);
        self.changed.notify_one();
        Ok(obj)
    }

    /// Remove an object (if its resourceVersion matches `expected_rv`, when given).
    pub fn delete(
        &self,
        gr: &GroupResource,
        key: &ObjKey,
        expected_rv: Option<u64>,
    ) -> Result<Arc<Value>, WriteError> {
        let res = self.resource(gr);
        let mut inner = lock(&res.inner);
        let current = inner.objects.get(key).ok_or(WriteError::Missing)?;
        if expected_rv.is_some_and(|rv| rv != object_rv(current)) {
            return Err(WriteError::Stale);
        }
        let previous = inner.objects.remove(key).ok_or(WriteError::Missing)?;
        let rv = self.next_rv();
        let mut last = (*previous).clone();
        set_rv(&mut last, rv);
        let last = Arc::new(last);
        res.record(
            &mut inner,
            StoredEvent::new(EventKind::Deleted, rv, last.clone(), Some(previous)),
        );
        drop(inner);
        self.changed.notify_one();
        self.deleted.notify_one();
        Ok(last)
    }

    /// Remove every object of a resource (CRD deletion), emitting DELETED events.
    pub fn drop_resource(&self, gr: &GroupResource) {
        let keys: Vec<ObjKey> = lock(&self.resource(gr).inner)
            .objects
            .keys()
            .cloned()
            .collect();
        for key in keys {
            let _ = self.delete(gr, &key, None);
        }
    }

    /// Subscribe to changes after `rv`, or fail with the oldest resourceVersion still served.
    pub fn subscribe_from(&self, gr: &GroupResource, rv: u64) -> Result<Subscription, u64> {
        let res = self.resource(gr);
        let inner = lock(&res.inner);
        if rv < inner.compacted_rv {
            return Err(inner.compacted_rv);
        }
        // Events are appended in resourceVersion order, so search from the back.
        let start = inner.history.partition_point(|e| e.rv <= rv);
        let backlog = inner.history.range(start..).cloned().collect();
        Ok(Subscription {
            backlog,
            rx: res.tx.subscribe(),
        })
    }

    /// Current objects plus a subscription to everything after them (watch with initial events).
    pub fn snapshot_and_subscribe(
        &self,
        gr: &GroupResource,
    ) -> (Vec<Arc<Value>>, u64, broadcast::Receiver<Arc<StoredEvent>>) {
        let res = self.resource(gr);
        let inner = lock(&res.inner);
        let items = inner.objects.values().cloned().collect();
        (items, self.current_rv(), res.tx.subscribe())
    }

    /// Forget all retained history (as etcd compaction does) and end every open watch, so clients
    /// resuming from an old resourceVersion get 410 Gone and relist.
    pub fn compact(&self) {
        let rv = self.current_rv();
        for gr in self.resource_names() {
            let res = self.resource(&gr);
            let mut inner = lock(&res.inner);
            inner.history.clear();
            inner.compacted_rv = rv;
        }
        let mut epoch = self.watch_epoch.lock().unwrap_or_else(|e| e.into_inner());
        epoch.cancel();
        *epoch = CancellationToken::new();
    }

    /// Token cancelled at the next compaction/shutdown: open watches end when it fires.
    pub fn watch_epoch(&self) -> CancellationToken {
        self.watch_epoch
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Every object, per resource (persistence and garbage collection).
    pub fn dump(&self) -> Vec<(GroupResource, Vec<Arc<Value>>)> {
        self.resource_names()
            .into_iter()
            .map(|gr| {
                let items = lock(&self.resource(&gr).inner)
                    .objects
                    .values()
                    .cloned()
                    .collect();
                (gr, items)
            })
            .collect()
    }

    /// Insert an object exactly as given (restoring a snapshot): no event, no new resourceVersion.
    pub fn restore(&self, gr: &GroupResource, key: ObjKey, obj: Value) {
        let res = self.resource(gr);
        lock(&res.inner).objects.insert(key, Arc::new(obj));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn gr() -> GroupResource {
        (String::new(), "configmaps".into())
    }

    #[test]
    fn update_requires_current_resource_version() {
        let store = Store::default();
        let key = ("default".to_string(), "a".to_string());
        let created = store
            .create(&gr(), key.clone(), json!({"metadata":{"name":"a"}}))
            .unwrap();
        let rv = object_rv(&created);
        assert_eq!(
            store
                .update(&gr(), &key, rv + 5, json!({"metadata":{}}))
                .unwrap_err(),
            WriteError::Stale
        );
        let updated = store
            .update(&gr(), &key, rv, json!({"metadata":{}}))
            .unwrap();
        assert!(object_rv(&updated) > rv);
        assert_eq!(
            store
                .create(&gr(), key, json!({"metadata":{}}))
                .unwrap_err(),
            WriteError::Exists
        );
    }

    #[test]
    fn subscribe_after_compaction_is_refused() {
        let store = Store::default();
        for i in 0..3 {
            store
                .create(
                    &gr(),
                    ("ns".into(), format!("o{i}")),
                    json!({"metadata":{}}),
                )
                .unwrap();
        }
        let sub = store.subscribe_from(&gr(), 2).unwrap();
        assert_eq!(sub.backlog.len(), 2);
        store.compact();
        assert!(store.subscribe_from(&gr(), 2).is_err());
        assert!(store.subscribe_from(&gr(), store.current_rv()).is_ok());
    }
}
