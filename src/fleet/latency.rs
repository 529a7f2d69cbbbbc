//! How long each cluster took to answer last time, kept between runs of the CLI (a cache file,
//! `latency.json` under mk8's cache directory) so that the next fan-out starts the slowest first
//! (see [`super::query::fan_out`]). Losing the file costs only that ordering.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::query::{Outcome, Target};

/// Clusters remembered at most; the least recently seen are forgotten first.
const KEPT: usize = 10_000;

/// Latencies by profile key (`namespace/name`), with when each was last seen.
#[derive(Debug, Default)]
pub struct History {
    path: PathBuf,
    entries: BTreeMap<String, Entry>,
    run: u64,
}

#[derive(Clone, Copy, Debug, serde::Serialize, serde::Deserialize)]
struct Entry {
    /// Milliseconds to the answer (or to the failure) last time.
    ms: u64,
    /// The run that saw it, counting up.
    run: u64,
}

impl History {
    /// The file under mk8's cache directory.
    pub fn path() -> PathBuf {
        super::cache_dir().join("latency.json")
    }

    /// The history in `path`; empty when it is missing or unreadable (it is only a cache).
    pub fn load(path: &Path) -> Self {
        let entries: BTreeMap<String, Entry> = std::fs::read(path)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default();
        let run = entries.values().map(|e| e.run).max().unwrap_or(0) + 1;
        History {
            path: path.to_path_buf(),
            entries,
            run,
        }
    }

    /// Set each target's expected time from the history.
    pub fn apply(&self, targets: &mut [Target]) {
        for target in targets {
            target.expected = self
                .entries
                .get(&target.key)
                .map(|e| Duration::from_millis(e.ms));
        }
    }

    /// Remember how long each cluster of a fan-out took.
    pub fn record<T>(&mut self, outcomes: &[Outcome<T>]) {
        for o in outcomes {
            let ms = u64::try_from(o.latency.as_millis()).unwrap_or(u64::MAX);
            self.entries
                .insert(o.key.clone(), Entry { ms, run: self.run });
        }
        if self.entries.len() > KEPT {
            let mut by_age: Vec<(u64, String)> = self
                .entries
                .iter()
                .map(|(key, e)| (e.run, key.clone()))
                .collect();
            by_age.sort_unstable_by(|a, b| b.cmp(a));
            for (_, key) in by_age.drain(KEPT..) {
                self.entries.remove(&key);
            }
        }
    }

    /// Write the history back (owner-only, atomically).
    pub fn save(&self) -> anyhow::Result<()> {
        let bytes = serde_json::to_vec(&self.entries)?;
        crate::files::write_private(&self.path, &bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::query::State;

    fn outcome(key: &str, ms: u64) -> Outcome<()> {
        Outcome {
            key: key.into(),
            name: key.rsplit('/').next().unwrap().into(),
            state: State::Ok,
            latency: Duration::from_millis(ms),
            message: None,
            value: None,
        }
    }

    #[test]
    fn latencies_survive_a_save_and_set_the_targets_expected_times() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cache/latency.json");
        let mut history = History::load(&path);
        history.record(&[outcome("fleet/east", 40), outcome("fleet/west", 700)]);
        history.save().unwrap();

        let again = History::load(&path);
        let target = |key: &str| Target {
            key: key.into(),
            name: String::new(),
            config: Ok(kube::Config::new("http://127.0.0.1:9".parse().unwrap())),
            expected: None,
        };
        let mut targets = vec![
            target("fleet/west"),
            target("fleet/new"),
            target("fleet/east"),
        ];
        again.apply(&mut targets);
        let expected: Vec<Option<u128>> = targets
            .iter()
            .map(|t| t.expected.map(|d| d.as_millis()))
            .collect();
        assert_eq!(expected, [Some(700), None, Some(40)]);
    }

    #[test]
    fn a_damaged_file_is_an_empty_history() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("latency.json");
        std::fs::write(&path, "{not json").unwrap();
        assert!(History::load(&path).entries.is_empty());
    }

    #[test]
    fn the_least_recently_seen_are_forgotten_past_the_bound() {
        let mut history = History::default();
        let first: Vec<Outcome<()>> = (0..KEPT).map(|i| outcome(&format!("a/{i}"), 1)).collect();
        history.record(&first);
        history.run += 1;
        history.record(&[outcome("b/new", 5)]);
        assert_eq!(history.entries.len(), KEPT);
        assert!(history.entries.contains_key("b/new"), "the newest is kept");
    }
}
