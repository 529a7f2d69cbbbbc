//! `--data-dir` persistence: a JSON snapshot of every object, written shortly after changes
//! (debounced) and at shutdown, and loaded at start.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::state::State;

const SNAPSHOT_FILE: &str = "apiserver-snapshot.json";
/// Writes within this window are coalesced into one snapshot.
const DEBOUNCE: Duration = Duration::from_millis(200);

/// Path of the snapshot inside the data directory.
pub fn snapshot_path(dir: &Path) -> PathBuf {
    dir.join(SNAPSHOT_FILE)
}

/// A loaded snapshot: last resourceVersion and `(group, resource, objects)`.
pub struct Snapshot {
    /// Counter to continue from.
    pub resource_version: u64,
    /// Objects per resource.
    pub resources: Vec<(String, String, Vec<Value>)>,
}

/// Read the snapshot, if the directory has one.
pub fn load(dir: &Path) -> anyhow::Result<Option<Snapshot>> {
    let path = snapshot_path(dir);
    if !path.exists() {
        return Ok(None);
    }
    let text = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let doc: Value =
        serde_json::from_slice(&text).with_context(|| format!("parsing {}", path.display()))?;
    let resource_version = doc["resourceVersion"].as_u64().unwrap_or(1);
    let resources = doc["resources"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            let s = |k: &str| r[k].as_str().unwrap_or_default().to_string();
            (
                s("group"),
                s("resource"),
                r["objects"].as_array().cloned().unwrap_or_default(),
            )
        })
        .collect();
    Ok(Some(Snapshot {
        resource_version,
        resources,
    }))
}

/// Write the current state atomically (temp file + rename).
pub fn save(state: &State, dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let rv = state.store.current_rv();
    let resources: Vec<Value> = state
        .store
        .dump()
        .into_iter()
        .filter(|(_, items)| !items.is_empty())
        .map(|((group, resource), items)| json!({"group": group, "resource": resource, "objects": items.iter().map(|o| &**o).collect::<Vec<_>>()}))
        .collect();
    let doc = json!({"resourceVersion": rv, "resources": resources});
    let tmp = dir.join(format!("{SNAPSHOT_FILE}.tmp"));
    std::fs::write(&tmp, serde_json::to_vec(&doc)?)
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, snapshot_path(dir)).context("replacing snapshot")?;
    Ok(())
}

/// Save after changes until cancelled, then once more.
pub async fn run(state: Arc<State>, dir: PathBuf, cancel: CancellationToken) {
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = state.store.changed.notified() => {
                tokio::time::sleep(DEBOUNCE).await;
                if let Err(e) = save(&state, &dir) {
                    tracing::warn!(error = %e, "development API server: saving snapshot failed");
                }
            }
        }
    }
    if let Err(e) = save(&state, &dir) {
        tracing::warn!(error = %e, "development API server: final snapshot failed");
    }
}
