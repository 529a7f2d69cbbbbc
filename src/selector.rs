//! Label and field selectors, parsed with the grammar of `k8s.io/apimachinery/pkg/labels`.

use serde_json::Value;

/// One requirement of a label selector.
#[derive(Debug, Clone, PartialEq)]
pub enum Requirement {
    /// `key` — the label exists.
    Exists(String),
    /// `!key` — the label does not exist.
    NotExists(String),
    /// `key=value` / `key==value`.
    Equals(String, String),
    /// `key!=value` (also true when the label is absent).
    NotEquals(String, String),
    /// `key in (a,b)`.
    In(String, Vec<String>),
    /// `key notin (a,b)` (also true when the label is absent).
    NotIn(String, Vec<String>),
    /// `key>n` / `key<n` on integer values.
    Gt(String, i64),
    /// `key<n`.
    Lt(String, i64),
}

/// A parsed label selector: all requirements must hold.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LabelSelector(pub Vec<Requirement>);

/// Why a selector could not be parsed; rendered into a 400.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("unable to parse requirement: {0}")]
pub struct SelectorError(pub String);

/// Whether `key` is a valid label key: an optional DNS-subdomain prefix and `/`, then a name.
pub fn valid_label_key(key: &str) -> bool {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(p) = prefix
        && (p.is_empty()
            || p.len() > 253
            || !p.split('.').all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && l.chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                    && !l.starts_with('-')
                    && !l.ends_with('-')
            }))
    {
        return false;
    }
    !name.is_empty() && valid_label_value(name)
}

/// Whether `v` is a valid label value (empty, or at most 63 name characters).
pub fn valid_label_value(v: &str) -> bool {
    if v.is_empty() {
        return true;
    }
    v.len() <= 63
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        && v.starts_with(|c: char| c.is_ascii_alphanumeric())
        && v.ends_with(|c: char| c.is_ascii_alphanumeric())
}

/// Split on commas that are not inside parentheses.
fn split_top_level(s: &str) -> Result<Vec<&str>, SelectorError> {
    let mut parts = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth < 0 {
                    return Err(SelectorError(format!("unbalanced parenthesis in {s:?}")));
                }
            }
            ',' if depth == 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err(SelectorError(format!("unbalanced parenthesis in {s:?}")));
    }
    parts.push(&s[start..]);
    Ok(parts)
}

fn parse_set(key: &str, rest: &str) -> Result<Vec<String>, SelectorError> {
    let rest = rest.trim();
    let inner = rest
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .ok_or_else(|| SelectorError(format!("found '{rest}', expected: '(' for key {key}")))?;
    let values: Vec<String> = inner.split(',').map(|v| v.trim().to_string()).collect();
    for v in &values {
        if !valid_label_value(v) {
            return Err(SelectorError(format!("invalid label value: {v:?}")));
        }
    }
    Ok(values)
}

fn check_key(key: &str) -> Result<String, SelectorError> {
    if valid_label_key(key) {
        Ok(key.to_string())
    } else {
        Err(SelectorError(format!("invalid label key {key:?}")))
    }
}

fn check_value(v: &str) -> Result<String, SelectorError> {
    if valid_label_value(v) {
        Ok(v.to_string())
    } else {
        Err(SelectorError(format!("invalid label value: {v:?}")))
    }
}

impl LabelSelector {
    /// Parse `a=b,c in (d,e),!f`. The empty string selects everything.
    pub fn parse(input: &str) -> Result<Self, SelectorError> {
        let input = input.trim();
        if input.is_empty() {
            return Ok(LabelSelector::default());
        }
        let mut reqs = Vec::new();
        for part in split_top_level(input)? {
            reqs.push(Self::parse_requirement(part.trim())?);
        }
        Ok(LabelSelector(reqs))
    }

    fn parse_requirement(part: &str) -> Result<Requirement, SelectorError> {
        if part.is_empty() {
            return Err(SelectorError("found '', expected: identifier".into()));
        }
        if let Some(key) = part.strip_prefix('!') {
            return Ok(Requirement::NotExists(check_key(key.trim())?));
        }
        for (op, ctor) in [("!=", 0), ("==", 1), ("=", 1)] {
            if let Some((k, v)) = part.split_once(op) {
                let (k, v) = (check_key(k.trim())?, check_value(v.trim())?);
                return Ok(if ctor == 0 {
                    Requirement::NotEquals(k, v)
                } else {
                    Requirement::Equals(k, v)
                });
            }
        }
        for op in ['>', '<'] {
            if let Some((k, v)) = part.split_once(op) {
                let k = check_key(k.trim())?;
                let n: i64 = v
                    .trim()
                    .parse()
                    .map_err(|_| SelectorError(format!("invalid integer value {:?}", v.trim())))?;
                return Ok(if op == '>' {
                    Requirement::Gt(k, n)
                } else {
                    Requirement::Lt(k, n)
                });
            }
        }
        let mut words = part.splitn(2, char::is_whitespace);
        let key = words.next().unwrap_or_default();
        let rest = words.next().map(str::trim_start).unwrap_or_default();
        if rest.is_empty() {
            return Ok(Requirement::Exists(check_key(key)?));
        }
        let key = check_key(key)?;
        if let Some(set) = rest.strip_prefix("notin") {
            return Ok(Requirement::NotIn(key.clone(), parse_set(&key, set)?));
        }
        if let Some(set) = rest.strip_prefix("in") {
            return Ok(Requirement::In(key.clone(), parse_set(&key, set)?));
        }
        Err(SelectorError(format!(
            "found '{rest}', expected: in, notin, =, ==, !=, gt, lt"
        )))
    }

    /// Whether a label map (`metadata.labels`, possibly absent) satisfies every requirement.
    pub fn matches(&self, labels: Option<&Value>) -> bool {
        let get = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
        self.0.iter().all(|r| match r {
            Requirement::Exists(k) => get(k).is_some(),
            Requirement::NotExists(k) => get(k).is_none(),
            Requirement::Equals(k, v) => get(k) == Some(v.as_str()),
            Requirement::NotEquals(k, v) => get(k) != Some(v.as_str()),
            Requirement::In(k, vs) => get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
            Requirement::NotIn(k, vs) => get(k).is_none_or(|x| !vs.iter().any(|v| v == x)),
            Requirement::Gt(k, n) => get(k)
                .and_then(|x| x.parse::<i64>().ok())
                .is_some_and(|x| x > *n),
            Requirement::Lt(k, n) => get(k)
                .and_then(|x| x.parse::<i64>().ok())
                .is_some_and(|x| x < *n),
        })
    }
}

/// A parsed field selector: `path=value` / `path!=value` terms.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FieldSelector(pub Vec<(String, bool, String)>);

impl FieldSelector {
    /// Parse a field selector, accepting only the `allowed` field paths (as Kubernetes does per
    /// resource).
    pub fn parse(input: &str, allowed: &[&str]) -> Result<Self, SelectorError> {
        let input = input.trim();
        if input.is_empty() {
            return Ok(FieldSelector::default());
        }
        let mut terms = Vec::new();
        for part in input.split(',') {
            let (field, equal, value) = if let Some((f, v)) = part.split_once("!=") {
                (f, false, v)
            } else if let Some((f, v)) = part.split_once("==") {
                (f, true, v)
            } else if let Some((f, v)) = part.split_once('=') {
                (f, true, v)
            } else {
                return Err(SelectorError(format!(
                    "invalid selector: '{part}'; can't understand '{part}'"
                )));
            };
            let field = field.trim();
            if !allowed.contains(&field) {
                return Err(SelectorError(format!("field label not supported: {field}")));
            }
            terms.push((field.to_string(), equal, value.trim().to_string()));
        }
        Ok(FieldSelector(terms))
    }

    /// Whether the object satisfies every term; absent fields compare as "".
    pub fn matches(&self, object: &Value) -> bool {
        self.0.iter().all(|(field, equal, value)| {
            let mut cur = Some(object);
            for seg in field.split('.') {
                cur = cur.and_then(|c| c.get(seg));
            }
            let actual = match cur {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Null) | None => String::new(),
                Some(other) => other.to_string(),
            };
            (actual == *value) == *equal
        })
    }
}

/// Wildcard match as OpenSSH and shells do it: `*` is any run of characters, `?` exactly one.
pub fn glob(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    // Where the last `*` was and how much of the text it has swallowed so far.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some(b'*') => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(&c) if c == b'?' || c == t[ti] => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some((star_pi, star_ti)) => {
                    pi = star_pi + 1;
                    ti = star_ti + 1;
                    star = Some((star_pi, star_ti + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn parses_every_operator() {
        let s = LabelSelector::parse("a=1,b==2,c!=3,d in (x, y),e notin (z),f,!g").unwrap();
        assert_eq!(s.0.len(), 7);
        let labels = json!({"a":"1","b":"2","c":"4","d":"y","f":""});
        assert!(s.matches(Some(&labels)));
        let labels = json!({"a":"1","b":"2","c":"4","d":"y","f":"","g":"x"});
        assert!(!s.matches(Some(&labels)));
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "a in b", "a in (b", "=x", "a b c", "a=b c", "!", "a,,b", "-a=b",
        ] {
            assert!(LabelSelector::parse(bad).is_err(), "{bad} should fail");
        }
    }

    #[test]
    fn field_selector_checks_allowed_fields() {
        assert!(FieldSelector::parse("spec.x=1", &["metadata.name"]).is_err());
        let f = FieldSelector::parse("metadata.name=a", &["metadata.name"]).unwrap();
        assert!(f.matches(&json!({"metadata":{"name":"a"}})));
        assert!(!f.matches(&json!({"metadata":{"name":"b"}})));
    }

    proptest! {
        #[test]
        fn label_selector_parser_never_panics(s in "\\PC{0,40}") {
            let _ = LabelSelector::parse(&s);
        }

        #[test]
        fn structured_selectors_roundtrip(k in "[a-z][a-z0-9]{0,8}", v in "[a-z0-9]{1,8}") {
            let sel = LabelSelector::parse(&format!("{k}={v}")).unwrap();
            let labels = json!({ k.clone(): v.clone() });
            prop_assert!(sel.matches(Some(&labels)));
            let sel = LabelSelector::parse(&format!("{k} notin ({v})")).unwrap();
            prop_assert!(!sel.matches(Some(&labels)));
        }
    }
}
