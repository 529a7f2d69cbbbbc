//! Garbage collection through ownerReferences (background and foreground propagation) and
//! namespace cleanup, run asynchronously after deletes like kube-controller-manager does.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::admission::now;
use super::state::State;
use super::store::{GroupResource, ObjKey, object_rv};

fn uid_of(obj: &Value) -> &str {
    obj.pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn owner_uids(obj: &Value) -> Vec<&str> {
    obj.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|r| r.get("uid").and_then(Value::as_str))
        .collect()
}

fn key_of(obj: &Value) -> ObjKey {
    let s = |p: &str| {
        obj.pointer(p)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    (s("/metadata/namespace"), s("/metadata/name"))
}

fn finalizers(obj: &Value) -> Vec<Value> {
    obj.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// Whether any object names `uid` as an owner.
pub fn has_dependents(state: &State, uid: &str) -> bool {
    state
        .store
        .dump()
        .iter()
        .any(|(_, items)| items.iter().any(|o| owner_uids(o).contains(&uid)))
}

/// Edit an object with retries on concurrent writes.
fn edit(state: &State, gr: &GroupResource, key: &ObjKey, f: impl Fn(&mut Value) -> bool) {
    for _ in 0..20 {
        let Some(current) = state.store.get(gr, key) else {
            return;
        };
        let mut new = (*current).clone();
        if !f(&mut new) {
            return;
        }
        if state
            .store
            .update(gr, key, object_rv(&current), new)
            .is_ok()
        {
            return;
        }
    }
}

/// Orphan propagation: drop the owner's references from its dependents.
pub fn orphan_dependents(state: &State, uid: &str) {
    for (gr, items) in state.store.dump() {
        for obj in items.iter().filter(|o| owner_uids(o).contains(&uid)) {
            edit(state, &gr, &key_of(obj), |o| {
                if let Some(refs) = o
                    .pointer_mut("/metadata/ownerReferences")
                    .and_then(Value::as_array_mut)
                {
                    refs.retain(|r| r.get("uid").and_then(Value::as_str) != Some(uid));
                }
                true
            });
        }
    }
}

/// Delete an object, or mark it deleted when finalizers hold it.
fn delete_or_mark(state: &State, gr: &GroupResource, obj: &Value) {
    let key = key_of(obj);
    if finalizers(obj).is_empty() {
        let _ = state.store.delete(gr, &key, Some(object_rv(obj)));
    } else if obj.pointer("/metadata/deletionTimestamp").is_none() {
        edit(state, gr, &key, |o| {
            o["metadata"]["deletionTimestamp"] = json!(now());
            o["metadata"]["deletionGracePeriodSeconds"] = json!(0);
            true
        });
    }
}

/// One pass over everything; returns whether it changed anything (then another pass may cascade).
pub fn sweep(state: &State) -> bool {
    let before = state.store.current_rv();
    let all = state.store.dump();
    let live: HashSet<&str> = all
        .iter()
        .flat_map(|(_, items)| items.iter().map(|o| uid_of(o)))
        .collect();
    let foreground: HashSet<&str> = all
        .iter()
        .flat_map(|(_, items)| items.iter())
        .filter(|o| {
            o.pointer("/metadata/deletionTimestamp").is_some()
                && finalizers(o).contains(&json!("foregroundDeletion"))
        })
        .map(|o| uid_of(o))
        .collect();
    let terminating_namespaces: HashSet<String> = all
        .iter()
        .filter(|((g, r), _)| g.is_empty() && r == "namespaces")
        .flat_map(|(_, items)| items.iter())
        .filter(|o| o.pointer("/metadata/deletionTimestamp").is_some())
        .map(|o| key_of(o).1)
        .collect();
    let mut dependents_of: HashSet<&str> = HashSet::new();
    let mut namespace_has_content: HashSet<String> = HashSet::new();
    for (gr, items) in &all {
        for obj in items.iter() {
            let owners = owner_uids(obj);
            let ns = key_of(obj).0;
            let orphaned = !owners.is_empty() && owners.iter().all(|u| !live.contains(u));
            let owner_foreground = owners.iter().any(|u| foreground.contains(u));
            let in_terminating_ns = !ns.is_empty() && terminating_namespaces.contains(&ns);
            if in_terminating_ns {
                namespace_has_content.insert(ns.clone());
            }
            if orphaned || owner_foreground || in_terminating_ns {
                delete_or_mark(state, gr, obj);
            }
            dependents_of.extend(owners.iter().copied().filter(|u| live.contains(u)));
        }
    }
    for (gr, items) in &all {
        for obj in items
            .iter()
            .filter(|o| foreground.contains(uid_of(o)) && !dependents_of.contains(uid_of(o)))
        {
            edit(state, gr, &key_of(obj), |o| {
                if let Some(f) = o
                    .pointer_mut("/metadata/finalizers")
                    .and_then(Value::as_array_mut)
                {
                    f.retain(|x| x != "foregroundDeletion");
                }
                true
            });
            // Finalizers now empty: the object goes.
            if let Some(cur) = state.store.get(gr, &key_of(obj))
                && finalizers(&cur).is_empty()
            {
                let _ = state.store.delete(gr, &key_of(obj), Some(object_rv(&cur)));
            }
        }
    }
    let ns_gr: GroupResource = (String::new(), "namespaces".into());
    for ns in terminating_namespaces.difference(&namespace_has_content) {
        let _ = state
            .store
            .delete(&ns_gr, &(String::new(), ns.clone()), None);
    }
    state.store.current_rv() != before
}

/// Run the collector until cancelled: after every delete, and every few seconds.
pub async fn run(state: Arc<State>, cancel: CancellationToken) {
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = state.store.deleted.notified() => {}
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
        }
        // Let a burst of deletes settle, then cascade until nothing changes.
        tokio::time::sleep(Duration::from_millis(20)).await;
        for _ in 0..10 {
            if !sweep(&state) {
                break;
            }
        }
    }
}
