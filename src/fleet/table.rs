//! Server-side Tables of many clusters merged into one, printed as kubectl prints them with a
//! CLUSTER column first.

use serde_json::Value;

/// A column of the merged table.
#[derive(Clone, Debug, PartialEq)]
pub struct Column {
    /// Header, as the server names it (`Name`, `Ready`).
    pub name: String,
    /// 0: always shown; more: only with `-o wide`.
    pub priority: i64,
}

/// One row: where it came from and its cells in the merged columns' order.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// Cluster name.
    pub cluster: String,
    /// Namespace of the object, if namespaced.
    pub namespace: Option<String>,
    /// Name of the object.
    pub name: String,
    /// Cells, one per column (missing ones empty).
    pub cells: Vec<Value>,
}

/// Tables of several clusters as one.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Merged {
    /// Columns of the first table; later tables' extra columns appended.
    pub columns: Vec<Column>,
    /// Rows in cluster order, each cluster's in the server's order.
    pub rows: Vec<Row>,
}

/// Merge `(cluster, Table)` pairs; columns are matched by name, so clusters of different
/// versions line up.
pub fn merge<'a>(tables: impl IntoIterator<Item = (&'a str, &'a Value)>) -> Merged {
    let mut merged = Merged::default();
    for (cluster, table) in tables {
        let defs: Vec<Column> = table["columnDefinitions"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| Column {
                name: c["name"].as_str().unwrap_or_default().to_string(),
                priority: c["priority"].as_i64().unwrap_or(0),
            })
            .collect();
        for def in &defs {
            if !merged.columns.iter().any(|c| c.name == def.name) {
                merged.columns.push(def.clone());
            }
        }
        for row in table["rows"].as_array().into_iter().flatten() {
            let mut cells = vec![Value::Null; merged.columns.len()];
            for (def, cell) in defs
                .iter()
                .zip(row["cells"].as_array().into_iter().flatten())
            {
                if let Some(i) = merged.columns.iter().position(|c| c.name == def.name) {
                    cells[i] = cell.clone();
                }
            }
            let meta = &row["object"]["metadata"];
            merged.rows.push(Row {
                cluster: cluster.to_string(),
                namespace: meta["namespace"].as_str().map(str::to_string),
                name: meta["name"].as_str().unwrap_or_default().to_string(),
                cells,
            });
        }
    }
    let width = merged.columns.len();
    for row in &mut merged.rows {
        row.cells.resize(width, Value::Null);
    }
    merged
}

fn cell_text(v: &Value) -> String {
    match v {
        Value::Null => "<none>".into(),
        Value::String(s) if s.is_empty() => "<none>".into(),
        Value::String(s) => s.clone(),
        Value::Array(a) if a.is_empty() => "<none>".into(),
        Value::Array(a) => a.iter().map(cell_text).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}

/// Print options.
#[derive(Clone, Copy, Debug, Default)]
pub struct Print {
    /// Show the columns of priority > 0.
    pub wide: bool,
    /// Show a NAMESPACE column (all namespaces).
    pub namespace: bool,
    /// Leave out the header line.
    pub no_headers: bool,
}

/// kubectl's layout: upper-case headers, columns padded to the widest cell plus three spaces.
pub fn render(merged: &Merged, print: Print) -> String {
    let shown: Vec<usize> = (0..merged.columns.len())
        .filter(|&i| print.wide || merged.columns[i].priority == 0)
        .collect();
    let mut lines: Vec<Vec<String>> = Vec::new();
    if !print.no_headers {
        let mut header = vec!["CLUSTER".to_string()];
        if print.namespace {
            header.push("NAMESPACE".into());
        }
        header.extend(shown.iter().map(|&i| merged.columns[i].name.to_uppercase()));
        lines.push(header);
    }
    for row in &merged.rows {
        let mut line = vec![row.cluster.clone()];
        if print.namespace {
            line.push(row.namespace.clone().unwrap_or_default());
        }
        line.extend(shown.iter().map(|&i| cell_text(&row.cells[i])));
        lines.push(line);
    }
    align(&lines)
}

/// Lines of cells as kubectl lays them out: each column padded to its widest cell plus three
/// spaces, trailing blanks trimmed.
pub fn align(lines: &[Vec<String>]) -> String {
    let columns = lines.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            lines
                .iter()
                .filter_map(|l| l.get(c))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for line in lines {
        let mut text = String::new();
        for (c, cell) in line.iter().enumerate() {
            text.push_str(cell);
            if c + 1 < line.len() {
                text.push_str(&" ".repeat(widths[c] - cell.chars().count() + 3));
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn table(columns: &[(&str, i64)], rows: &[(&str, &[Value])]) -> Value {
        json!({
            "kind": "Table",
            "columnDefinitions": columns.iter().map(|(n, p)| json!({"name": n, "priority": p})).collect::<Vec<_>>(),
            "rows": rows.iter().map(|(name, cells)| json!({"cells": cells, "object": {"metadata": {"name": name, "namespace": "demo"}}})).collect::<Vec<_>>(),
        })
    }

    #[test]
    fn tables_merge_by_column_name_and_print_like_kubectl() {
        let a = table(
            &[("Name", 0), ("Ready", 0), ("IP", 1)],
            &[("web-1", &[json!("web-1"), json!("1/1"), json!("10.0.0.1")])],
        );
        let b = table(
            &[("Name", 0), ("IP", 1), ("Ready", 0), ("Nominated", 1)],
            &[(
                "web-22",
                &[
                    json!("web-22"),
                    json!("10.0.0.2"),
                    json!("0/1"),
                    json!(null),
                ],
            )],
        );
        let merged = merge([("east", &a), ("west-long", &b)]);
        assert_eq!(merged.columns.len(), 4);
        assert_eq!(merged.rows[1].cells[1], json!("0/1"), "matched by name");
        assert_eq!(
            merged.rows[0].cells[3],
            Value::Null,
            "absent column left empty"
        );
        let text = render(
            &merged,
            Print {
                namespace: true,
                ..Default::default()
            },
        );
        assert_eq!(
            text,
            "CLUSTER     NAMESPACE   NAME     READY\neast        demo        web-1    1/1\nwest-long   demo        web-22   0/1\n"
        );
        let wide = render(
            &merged,
            Print {
                wide: true,
                no_headers: true,
                ..Default::default()
            },
        );
        assert_eq!(
            wide,
            "east        web-1    1/1   10.0.0.1   <none>\nwest-long   web-22   0/1   10.0.0.2   <none>\n"
        );
    }
}
