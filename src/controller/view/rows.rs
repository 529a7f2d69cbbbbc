//! A view's status from the clusters' answers (pure): per-cluster outcomes, rows bounded by
//! `maxRows` and by bytes so the object stays far below the API server's 1.5 MiB limit,
//! conditions naming the clusters that failed.

use serde_json::Value;

use crate::api::view::{ViewClusterStatus, ViewRow};
use crate::controller::conditions::{Desired, reasons, types};
use crate::fleet::query::{Outcome, State};
use crate::fleet::read::TableRead;

/// Rows are cut at this many bytes (JSON) whatever `maxRows` says.
pub const ROW_BYTES: usize = 512 * 1024;

/// The parts of a status a query produces.
#[derive(Debug, PartialEq)]
pub struct Result {
    /// Per cluster.
    pub clusters: Vec<ViewClusterStatus>,
    /// Column names of `rows[].cells`.
    pub columns: Vec<String>,
    /// Rows kept.
    pub rows: Vec<ViewRow>,
    /// Rows found in all.
    pub row_count: i64,
    /// Rows were left out.
    pub truncated: bool,
    /// Clusters that answered / failed.
    pub ok: i32,
    /// Clusters that failed.
    pub failed: i32,
    /// The Ready condition.
    pub ready: Desired,
}

fn cell_text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Build the status parts from the outcomes (in cluster order).
pub fn build(outcomes: &[Outcome<TableRead>], max_rows: usize) -> Result {
    let mut out = Result {
        clusters: Vec::new(),
        columns: Vec::new(),
        rows: Vec::new(),
        row_count: 0,
        truncated: false,
        ok: 0,
        failed: 0,
        ready: Desired::no(types::READY, reasons::NO_CLUSTERS_SELECTED, ""),
    };
    let mut bytes = 0usize;
    for o in outcomes {
        let items = o.value.as_ref().map_or(0, |t| t.total);
        out.clusters.push(ViewClusterStatus {
            name: o.name.clone(),
            state: o.state.as_str().into(),
            items: i32::try_from(items).unwrap_or(i32::MAX),
            latency_ms: Some(i64::try_from(o.latency.as_millis()).unwrap_or(i64::MAX)),
            message: o
                .message
                .as_ref()
                .map(|m| crate::controller::status::bounded(m, 512)),
        });
        if o.state == State::Ok {
            out.ok += 1;
        } else {
            out.failed += 1;
        }
        let Some(read) = &o.value else { continue };
        out.row_count += i64::try_from(read.total).unwrap_or(i64::MAX);
        let defs: Vec<(usize, String)> = read.table["columnDefinitions"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
            .filter(|(_, c)| c["priority"].as_i64().unwrap_or(0) == 0 && c["name"] != "Name")
            .map(|(i, c)| (i, c["name"].as_str().unwrap_or_default().to_string()))
            .collect();
        if out.columns.is_empty() {
            out.columns = defs.iter().map(|(_, n)| n.clone()).collect();
        }
        let rows = read.table["rows"].as_array().map_or(&[][..], Vec::as_slice);
        if read.total > rows.len() {
            out.truncated = true;
        }
        for row in rows {
            if out.rows.len() >= max_rows || bytes >= ROW_BYTES {
                out.truncated = true;
                break;
            }
            let cells_in = row["cells"].as_array().map_or(&[][..], Vec::as_slice);
            let cells: Vec<String> = out
                .columns
                .iter()
                .map(|name| {
                    defs.iter()
                        .find(|(_, n)| n == name)
                        .and_then(|(i, _)| cells_in.get(*i))
                        .map(cell_text)
                        .unwrap_or_default()
                })
                .collect();
            let meta = &row["object"]["metadata"];
            let view_row = ViewRow {
                cluster: o.name.clone(),
                namespace: meta["namespace"].as_str().map(str::to_string),
                name: meta["name"].as_str().unwrap_or_default().to_string(),
                cells,
            };
            bytes += serde_json::to_vec(&view_row).map_or(0, |v| v.len());
            out.rows.push(view_row);
        }
    }
    let failed: Vec<String> = outcomes
        .iter()
        .filter(|o| o.state != State::Ok)
        .map(|o| {
            format!(
                "{} ({})",
                o.name,
                o.message.as_deref().unwrap_or(o.state.as_str())
            )
        })
        .collect();
    let total = outcomes.len();
    out.ready = if total == 0 {
        Desired::no(
            types::READY,
            reasons::NO_CLUSTERS_SELECTED,
            "spec.clusters selects no ClusterProfile in this namespace: label the ClusterProfiles or change the selection",
        )
    } else if failed.is_empty() {
        Desired::yes(
            types::READY,
            reasons::QUERY_COMPLETE,
            format!("all {total} clusters answered"),
        )
    } else if out.ok > 0 {
        Desired::yes(
            types::READY,
            reasons::PARTIAL_RESULTS,
            crate::controller::status::bounded(
                &format!(
                    "{} of {total} clusters failed: {}",
                    failed.len(),
                    failed.join("; ")
                ),
                1024,
            ),
        )
    } else {
        Desired::no(
            types::READY,
            reasons::NO_CLUSTER_ANSWERED,
            crate::controller::status::bounded(
                &format!(
                    "none of the {total} clusters answered: {}",
                    failed.join("; ")
                ),
                1024,
            ),
        )
    };
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::Duration;

    fn answered(name: &str, rows: usize) -> Outcome<TableRead> {
        let table = json!({
            "columnDefinitions": [{"name": "Name", "priority": 0}, {"name": "Ready", "priority": 0}, {"name": "IP", "priority": 1}],
            "rows": (0..rows).map(|i| json!({"cells": [format!("pod-{i}"), "1/1", "10.0.0.1"],
                "object": {"metadata": {"name": format!("pod-{i}"), "namespace": "demo"}}})).collect::<Vec<_>>(),
        });
        Outcome {
            key: format!("fleet/{name}"),
            name: name.into(),
            state: State::Ok,
            latency: Duration::from_millis(12),
            message: None,
            value: Some(TableRead { table, total: rows }),
        }
    }

    fn failed(name: &str, state: State, message: &str) -> Outcome<TableRead> {
        Outcome {
            key: format!("fleet/{name}"),
            name: name.into(),
            state,
            latency: Duration::from_secs(10),
            message: Some(message.into()),
            value: None,
        }
    }

    #[test]
    fn ten_thousand_rows_stay_bounded_and_counted() {
        let outcomes = vec![
            answered("east", 10_000),
            failed("west", State::Timeout, "timeout after 10s"),
        ];
        let r = build(&outcomes, 5000);
        assert_eq!(r.row_count, 10_000);
        assert!(r.truncated);
        assert!(r.rows.len() <= 5000);
        let bytes = serde_json::to_vec(&r.rows).unwrap().len();
        assert!(bytes < ROW_BYTES + 1024, "{bytes} bytes of rows");
        assert_eq!(r.columns, ["Ready"], "priority-0 columns less Name");
        assert_eq!(r.rows[0].cells, ["1/1"]);
        assert_eq!(r.clusters[1].state, "Timeout");
        assert_eq!(r.clusters[0].items, 10_000);
        assert!(r.ready.status);
        assert_eq!(r.ready.reason, reasons::PARTIAL_RESULTS);
        assert_eq!(
            r.ready.message,
            "1 of 2 clusters failed: west (timeout after 10s)"
        );
    }

    #[test]
    fn max_rows_cuts_first_and_every_failure_is_named() {
        let r = build(&[answered("a", 3), answered("b", 3)], 4);
        assert_eq!((r.rows.len(), r.row_count, r.truncated), (4, 6, true));
        assert_eq!(r.ready.reason, reasons::QUERY_COMPLETE);
        let none = build(
            &[
                failed("a", State::Forbidden, "pods is forbidden"),
                failed("b", State::Unreachable, "connection refused"),
            ],
            10,
        );
        assert!(!none.ready.status);
        assert_eq!(
            none.ready.message,
            "none of the 2 clusters answered: a (pods is forbidden); b (connection refused)"
        );
        assert_eq!(build(&[], 10).ready.reason, reasons::NO_CLUSTERS_SELECTED);
    }
}
