//! The bad-input corpus (`tests/bad-input/*.yaml`): each file is one case, its expectation in
//! the leading comment block, its documents after it. Reading the corpus is pure; a file whose
//! header cannot be understood is an error, so no file goes unexercised.

use std::path::{Path, PathBuf};

use serde_json::Value;

/// Where a case is caught.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expect {
    /// The API server refuses the last document (`on update`: the documents before it are
    /// applied first and must be accepted; the last one changes one of them).
    Admission { update: bool },
    /// Admission accepts everything; the operator reports condition `type_` as `status` with
    /// `reason` on the judged object.
    Condition {
        type_: String,
        status: String,
        reason: String,
    },
}

/// One file of the corpus.
#[derive(Clone, Debug)]
pub struct Case {
    /// File name, such as `cluster-both-providers.yaml`.
    pub file: String,
    /// What is wrong, in a few words.
    pub what: String,
    pub expect: Expect,
    /// The field the user is told about.
    pub field: String,
    /// Substrings of what the user sees (kubectl's error, or the condition's message).
    pub messages: Vec<String>,
    /// The documents, with `${CORPUS}` replaced, as text for kubectl.
    pub documents: Vec<String>,
    /// Kind and name of the object judged: `object:`, else the last mk8.io document.
    pub kind: String,
    pub name: String,
}

/// The directory of the corpus.
pub fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bad-input")
}

/// Every case, sorted by file name; `Err` lists every file that is not a valid case.
pub fn load() -> Result<Vec<Case>, String> {
    let dir = dir();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .map(|entry| entry.expect("readable directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    let mut cases = Vec::new();
    let mut problems = Vec::new();
    for path in files {
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        if !file.ends_with(".yaml") {
            problems.push(format!(
                "{file}: not a .yaml case (release files go in files/)"
            ));
            continue;
        }
        let text = std::fs::read_to_string(&path).map_err(|e| format!("{file}: {e}"))?;
        match parse(&file, &text, &dir) {
            Ok(case) => cases.push(case),
            Err(e) => problems.push(format!("{file}: {e}")),
        }
    }
    if problems.is_empty() {
        Ok(cases)
    } else {
        Err(problems.join("\n"))
    }
}

/// One case from its file's text; `corpus` replaces `${CORPUS}` in the documents.
pub fn parse(file: &str, text: &str, corpus: &Path) -> Result<Case, String> {
    let (mut what, mut expect, mut field, mut object) = (None, None, None, None);
    let mut messages = Vec::new();
    let mut header_lines = 0;
    for line in text.lines() {
        let Some(comment) = line.strip_prefix('#') else {
            break;
        };
        header_lines += 1;
        let Some((key, value)) = comment.trim().split_once(':') else {
            return Err(format!("header line {line:?} is not `# key: value`"));
        };
        let value = value.trim().to_string();
        match key.trim() {
            "what" => what = Some(value),
            "expect" => expect = Some(parse_expect(&value)?),
            "field" => field = Some(value),
            "message" => messages.push(value),
            "object" => object = Some(value),
            other => return Err(format!("unknown header key {other:?}")),
        }
    }
    let what = what.ok_or("no `# what:` line")?;
    let expect = expect.ok_or("no `# expect:` line")?;
    let field = field
        .filter(|f| !f.is_empty())
        .ok_or("no `# field:` line")?;
    if messages.iter().all(|m| m.is_empty()) {
        return Err("no `# message:` line".into());
    }
    let body: String = text
        .lines()
        .skip(header_lines)
        .collect::<Vec<_>>()
        .join("\n")
        .replace("${CORPUS}", &corpus.to_string_lossy());
    let documents: Vec<String> = body
        .split("\n---\n")
        .map(|d| d.trim().to_string())
        .filter(|d| !d.is_empty())
        .collect();
    let parsed: Vec<Value> = documents
        .iter()
        .map(|d| serde_yaml::from_str(d).map_err(|e| format!("a document does not parse: {e}")))
        .collect::<Result<_, _>>()?;
    let mk8 = |v: &&Value| {
        v["apiVersion"]
            .as_str()
            .is_some_and(|a| a.starts_with("mk8.io/"))
    };
    let (kind, name) = match object {
        Some(o) => {
            let (kind, name) = o.split_once('/').ok_or("`# object:` is not Kind/name")?;
            (kind.to_string(), name.to_string())
        }
        None => {
            let last = parsed.iter().rev().find(mk8).ok_or("no mk8.io document")?;
            (
                last["kind"].as_str().unwrap_or_default().to_string(),
                last["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        }
    };
    if let Expect::Admission { update: true } = expect
        && documents.len() < 2
    {
        return Err("an `on update` case needs the valid object first, then the change".into());
    }
    Ok(Case {
        file: file.to_string(),
        what,
        expect,
        field,
        messages,
        documents,
        kind,
        name,
    })
}

fn parse_expect(value: &str) -> Result<Expect, String> {
    match value {
        "admission" => return Ok(Expect::Admission { update: false }),
        "admission on update" => return Ok(Expect::Admission { update: true }),
        _ => {}
    }
    let unknown = || {
        format!(
            "`# expect: {value}` is neither `admission [on update]` nor `condition Type=Status reason=Reason`"
        )
    };
    let rest = value.strip_prefix("condition ").ok_or_else(unknown)?;
    let (condition, reason) = rest.split_once(' ').ok_or_else(unknown)?;
    let (type_, status) = condition.split_once('=').ok_or_else(unknown)?;
    let reason = reason.strip_prefix("reason=").ok_or_else(unknown)?;
    if !matches!(status, "True" | "False") || reason.is_empty() {
        return Err(unknown());
    }
    Ok(Expect::Condition {
        type_: type_.to_string(),
        status: status.to_string(),
        reason: reason.to_string(),
    })
}

impl Case {
    /// Where the case is caught, for people.
    pub fn caught(&self) -> String {
        match &self.expect {
            Expect::Admission { update: false } => "admission".into(),
            Expect::Admission { update: true } => "admission (update)".into(),
            Expect::Condition {
                type_,
                status,
                reason,
            } => format!("{type_}={status} `{reason}`"),
        }
    }

    /// Why `seen` (kubectl's stderr, or a condition's message) does not tell the user enough.
    pub fn misses(&self, seen: &str) -> Option<String> {
        let field = match self.expect {
            // kubectl prints `<field>: Invalid value ...`, or `unknown field "<field>"`.
            Expect::Admission { .. } => {
                seen.contains(&format!("{}:", self.field))
                    || seen.contains(&format!("\"{}\"", self.field))
            }
            Expect::Condition { .. } => seen.contains(&self.field),
        };
        let missing: Vec<&String> = self
            .messages
            .iter()
            .filter(|m| !seen.contains(m.as_str()))
            .collect();
        match (field, missing.is_empty()) {
            (true, true) => None,
            (false, _) => Some(format!("does not name {}: {seen}", self.field)),
            (true, false) => Some(format!("lacks {missing:?}: {seen}")),
        }
    }
}

/// The Markdown table of docs/bad-input.md.
pub fn markdown_table(cases: &[Case]) -> String {
    let escape = |s: &str| s.replace('|', "\\|");
    let mut out = String::from(
        "| File | Kind | What is wrong | Caught by | What the user sees |\n|---|---|---|---|---|\n",
    );
    for case in cases {
        let seen = case
            .messages
            .iter()
            .map(|m| format!("“{}”", escape(m)))
            .collect::<Vec<_>>()
            .join(" … ");
        out.push_str(&format!(
            "| [`{file}`](../tests/bad-input/{file}) | {kind} | {what} | {caught} | `{field}`: {seen} |\n",
            file = case.file,
            kind = case.kind,
            what = escape(&case.what),
            caught = case.caught(),
            field = escape(&case.field),
        ));
    }
    out
}

/// Counts by kind and by where caught, for the document's summary.
pub fn summary(cases: &[Case]) -> String {
    let mut by_kind = std::collections::BTreeMap::<&str, (usize, usize)>::new();
    for case in cases {
        let entry = by_kind.entry(case.kind.as_str()).or_default();
        match case.expect {
            Expect::Admission { .. } => entry.0 += 1,
            Expect::Condition { .. } => entry.1 += 1,
        }
    }
    let mut out =
        String::from("| Kind | Refused at admission | Reported in a condition |\n|---|---|---|\n");
    for (kind, (admission, condition)) in &by_kind {
        out.push_str(&format!("| {kind} | {admission} | {condition} |\n"));
    }
    let (a, c): (usize, usize) = by_kind
        .values()
        .fold((0, 0), |(a, c), (x, y)| (a + x, c + y));
    out.push_str(&format!("| **all {}** | {a} | {c} |\n", cases.len()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case(text: &str) -> Result<Case, String> {
        parse("x.yaml", text, Path::new("/corpus"))
    }

    const BODY: &str = "apiVersion: mk8.io/v1alpha1\nkind: Stack\nmetadata: {name: p}\n";

    #[test]
    fn headers_are_understood_or_refused() {
        let c = case(&format!(
            "# what: w\n# expect: condition Ready=False reason=InvalidSpec\n# field: spec.x\n# message: a\n# message: b\n{BODY}"
        ))
        .unwrap();
        assert_eq!((c.kind.as_str(), c.name.as_str()), ("Stack", "p"));
        assert_eq!(c.messages, ["a", "b"]);
        assert_eq!(c.misses("spec.x: a, b"), None);
        assert!(c.misses("spec.x: a").unwrap().contains("lacks"));
        assert!(
            case(&format!(
                "# what: w\n# expect: maybe\n# field: f\n# message: m\n{BODY}"
            ))
            .is_err()
        );
        assert!(
            case(&format!(
                "# what: w\n# expect: admission\n# message: m\n{BODY}"
            ))
            .is_err()
        );
        assert!(
            case(&format!(
                "# what: w\n# expect: admission on update\n# field: f\n# message: m\n{BODY}"
            ))
            .is_err()
        );
        assert!(
            case(&format!(
                "# wat: w\n# expect: admission\n# field: f\n# message: m\n{BODY}"
            ))
            .is_err()
        );
    }
}
