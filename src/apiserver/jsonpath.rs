//! The subset of Kubernetes JSONPath used by `additionalPrinterColumns`: field access, quoted
//! keys, indices, `[*]` and `[?(@.field=="value")]` filters.

use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
enum Step {
    Field(String),
    Index(i64),
    All,
    Filter(Vec<String>, String, String),
}

fn parse(path: &str) -> Option<Vec<Step>> {
    let path = path.trim();
    let path = path
        .strip_prefix('{')
        .and_then(|p| p.strip_suffix('}'))
        .unwrap_or(path);
    let path = path.strip_prefix('$').unwrap_or(path);
    let chars: Vec<char> = path.chars().collect();
    let mut steps = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '.' => {
                i += 1;
                let start = i;
                while i < chars.len() && chars[i] != '.' && chars[i] != '[' {
                    i += 1;
                }
                let name: String = chars[start..i].iter().collect();
                if !name.is_empty() {
                    steps.push(Step::Field(name));
                }
            }
            '[' => {
                let end = chars[i..].iter().position(|c| *c == ']').map(|p| p + i)?;
                // A filter can contain ']' only inside quotes; find the closing ")]".
                let inner: String = if chars.get(i + 1) == Some(&'?') {
                    let close = (i..chars.len().saturating_sub(1))
                        .find(|&j| chars[j] == ')' && chars[j + 1] == ']')?;
                    let s: String = chars[i + 1..=close].iter().collect();
                    i = close + 2;
                    s
                } else {
                    let s: String = chars[i + 1..end].iter().collect();
                    i = end + 1;
                    s
                };
                steps.push(parse_bracket(inner.trim())?);
            }
            _ => {
                let start = i;
                while i < chars.len() && chars[i] != '.' && chars[i] != '[' {
                    i += 1;
                }
                steps.push(Step::Field(chars[start..i].iter().collect()));
            }
        }
    }
    Some(steps)
}

fn parse_bracket(inner: &str) -> Option<Step> {
    if inner == "*" {
        return Some(Step::All);
    }
    if let Some(q) = inner
        .strip_prefix('\'')
        .and_then(|s| s.strip_suffix('\''))
        .or_else(|| inner.strip_prefix('"').and_then(|s| s.strip_suffix('"')))
    {
        return Some(Step::Field(q.to_string()));
    }
    if let Some(filter) = inner.strip_prefix("?(").and_then(|s| s.strip_suffix(')')) {
        let (lhs, op, rhs) = ["==", "!="].iter().find_map(|op| {
            filter
                .split_once(op)
                .map(|(l, r)| (l.trim(), *op, r.trim()))
        })?;
        let field: Vec<String> = lhs
            .strip_prefix('@')?
            .split('.')
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect();
        let rhs = rhs.trim_matches(|c| c == '"' || c == '\'').to_string();
        return Some(Step::Filter(field, op.to_string(), rhs));
    }
    inner.parse().ok().map(Step::Index)
}

fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// All values the path selects in `obj` (empty when the path is invalid or matches nothing).
pub fn find(obj: &Value, path: &str) -> Vec<Value> {
    let Some(steps) = parse(path) else {
        return Vec::new();
    };
    let mut current = vec![obj.clone()];
    for step in steps {
        let mut next = Vec::new();
        for v in &current {
            match &step {
                Step::Field(name) => next.extend(v.get(name).cloned()),
                Step::Index(i) => {
                    if let Some(a) = v.as_array() {
                        let idx = if *i < 0 { a.len() as i64 + i } else { *i };
                        next.extend(usize::try_from(idx).ok().and_then(|i| a.get(i)).cloned());
                    }
                }
                Step::All => match v {
                    Value::Array(a) => next.extend(a.iter().cloned()),
                    Value::Object(m) => next.extend(m.values().cloned()),
                    _ => {}
                },
                Step::Filter(field, op, want) => {
                    for item in v.as_array().into_iter().flatten() {
                        let got = field
                            .iter()
                            .try_fold(item, |cur, f| cur.get(f))
                            .map(scalar_text);
                        let equal = got.as_deref() == Some(want.as_str());
                        if (op == "==") == equal {
                            next.push(item.clone());
                        }
                    }
                }
            }
        }
        current = next;
    }
    current
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn evaluates_printer_column_paths() {
        let obj = json!({"spec":{"x":3,"l":[{"n":"a"},{"n":"b"}]},"metadata":{"labels":{"a.b/c":"v"}},
            "status":{"conditions":[{"type":"Synced","status":"False"},{"type":"Ready","status":"True"}]}});
        assert_eq!(find(&obj, ".spec.x"), vec![json!(3)]);
        assert_eq!(
            find(&obj, ".status.conditions[?(@.type==\"Ready\")].status"),
            vec![json!("True")]
        );
        assert_eq!(find(&obj, "{.spec.l[1].n}"), vec![json!("b")]);
        assert_eq!(find(&obj, ".spec.l[*].n"), vec![json!("a"), json!("b")]);
        assert_eq!(find(&obj, ".metadata.labels['a.b/c']"), vec![json!("v")]);
        assert!(find(&obj, ".spec.missing").is_empty());
    }
}
