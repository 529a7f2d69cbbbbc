//! Merging a managed cluster's kubeconfig into a person's kubeconfig, and taking it out again
//! (pure: documents in, documents out).
//!
//! Every cluster, user and context mk8 adds carries a kubeconfig extension naming the mk8
//! Cluster it belongs to (`extensions: [{name: mk8.io/cluster, extension: {cluster: ns/name}}]`,
//! as minikube marks its entries), so `remove` takes out only what mk8 added, and a merge can
//! tell its own earlier entry (refreshed in place) from a person's entry of the same name
//! (refused unless `--force` or `--rename`). kubectl keeps extensions when it rewrites the file.

use serde_yaml::{Mapping, Value};

/// Name of the kubeconfig extension that marks mk8's entries.
pub const EXTENSION: &str = "mk8.io/cluster";

/// The three lists of a kubeconfig and the key of each entry's body.
const SECTIONS: [(&str, &str); 3] = [
    ("clusters", "cluster"),
    ("users", "user"),
    ("contexts", "context"),
];

/// The mk8 Cluster an entry belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owner {
    pub namespace: String,
    pub name: String,
}

impl std::fmt::Display for Owner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// What to do when the kubeconfig already holds an entry of the same name that is not
/// mk8's entry for the same Cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnConflict {
    /// Stop and explain (the default).
    Refuse,
    /// Replace the entry.
    Replace,
    /// Pick the first free name `NAME-2`, `NAME-3` …
    Rename,
}

/// What a merge did.
#[derive(Debug, PartialEq, Eq)]
pub struct Merged {
    /// Name of the context (and of its cluster and user entries).
    pub context: String,
    /// Whether the document changed.
    pub changed: bool,
}

/// Why a merge was refused or a command could not run.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error(
        "the kubeconfig already has a {kind} named {name:?} that {whose}; choose another name with --context NAME, pick a free one with --rename, or replace it with --force"
    )]
    Conflict {
        kind: &'static str,
        name: String,
        whose: String,
    },
    #[error("the kubeconfig of {0} has no context to merge (it must name a cluster and a user)")]
    NoContext(Owner),
    #[error("the kubeconfig file is not a kubeconfig: {0}")]
    NotAKubeconfig(String),
    #[error("the kubeconfig has no entries mk8 added for {0}; nothing to do")]
    NotFound(String),
    #[error(
        "the kubeconfig has entries mk8 added for several Clusters named {name}: {owners}; pass -n NAMESPACE"
    )]
    Ambiguous { name: String, owners: String },
}

/// An empty kubeconfig document.
pub fn empty() -> Value {
    let mut doc = Mapping::new();
    doc.insert("apiVersion".into(), "v1".into());
    doc.insert("kind".into(), "Config".into());
    for (section, _) in SECTIONS {
        doc.insert(section.into(), Value::Sequence(Vec::new()));
    }
    Value::Mapping(doc)
}

/// Merge the current context of `incoming` (a Cluster's kubeconfig) into `doc` as `name`,
/// marking every entry as mk8's for `owner`.
pub fn merge(
    doc: &mut Value,
    incoming: &Value,
    owner: &Owner,
    name: &str,
    on_conflict: OnConflict,
    set_current: bool,
) -> Result<Merged, Problem> {
    check_document(doc)?;
    let (cluster, user, mut context) = current_entry(incoming, owner)?;
    let name = match on_conflict {
        OnConflict::Rename => free_name(doc, owner, name),
        OnConflict::Refuse => {
            if let Some(problem) = first_conflict(doc, owner, name) {
                return Err(problem);
            }
            name.to_string()
        }
        OnConflict::Replace => name.to_string(),
    };
    if let Value::Mapping(context) = &mut context {
        context.insert("cluster".into(), name.as_str().into());
        context.insert("user".into(), name.as_str().into());
    }
    let before = doc.clone();
    for ((section, body_key), body) in SECTIONS.into_iter().zip([cluster, user, context]) {
        let entries = section_mut(doc, section);
        let entry = named_entry(&name, body_key, mark(body, owner));
        match entries
            .iter_mut()
            .find(|e| entry_name(e) == Some(name.as_str()))
        {
            Some(existing) => *existing = entry,
            None => entries.push(entry),
        }
    }
    if set_current {
        mapping_mut(doc).insert("current-context".into(), name.as_str().into());
    }
    Ok(Merged {
        changed: *doc != before,
        context: name,
    })
}

/// Remove every entry mk8 added for the Cluster named `name` (in `namespace`, or in any
/// namespace when it is `None` and only one matches); returns the names removed.
pub fn remove(
    doc: &mut Value,
    namespace: Option<&str>,
    name: &str,
) -> Result<Vec<String>, Problem> {
    check_document(doc)?;
    let owner = resolve_owner(doc, namespace, name)?;
    let mut removed = Vec::new();
    for (section, body_key) in SECTIONS {
        section_mut(doc, section).retain(|entry| {
            let ours = owner_of(entry, body_key).as_ref() == Some(&owner);
            if ours && let Some(n) = entry_name(entry) {
                removed.push(format!("{body_key} {n}"));
            }
            !ours
        });
    }
    let contexts: Vec<String> = section(doc, "contexts")
        .iter()
        .filter_map(|e| entry_name(e).map(str::to_string))
        .collect();
    let current = doc.get("current-context").and_then(Value::as_str);
    if let Some(current) = current
        && !current.is_empty()
        && !contexts.iter().any(|c| c == current)
    {
        mapping_mut(doc).insert("current-context".into(), "".into());
        removed.push("current-context".into());
    }
    Ok(removed)
}

/// Make mk8's context for the Cluster current; returns its name.
pub fn use_context(
    doc: &mut Value,
    namespace: Option<&str>,
    name: &str,
) -> Result<String, Problem> {
    check_document(doc)?;
    let owner = resolve_owner(doc, namespace, name)?;
    let context = section(doc, "contexts")
        .iter()
        .find(|e| owner_of(e, "context").as_ref() == Some(&owner))
        .and_then(entry_name)
        .map(str::to_string)
        .ok_or_else(|| Problem::NotFound(owner.to_string()))?;
    mapping_mut(doc).insert("current-context".into(), context.as_str().into());
    Ok(context)
}

fn check_document(doc: &Value) -> Result<(), Problem> {
    let Value::Mapping(map) = doc else {
        return Err(Problem::NotAKubeconfig(
            "the document is not a mapping".into(),
        ));
    };
    for (section, _) in SECTIONS {
        match map.get(section) {
            None | Some(Value::Null) | Some(Value::Sequence(_)) => {}
            Some(_) => {
                return Err(Problem::NotAKubeconfig(format!("{section} is not a list")));
            }
        }
    }
    Ok(())
}

/// The cluster, user and context bodies of the incoming kubeconfig's current context.
fn current_entry(incoming: &Value, owner: &Owner) -> Result<(Value, Value, Value), Problem> {
    let contexts = section(incoming, "contexts");
    let wanted = incoming.get("current-context").and_then(Value::as_str);
    let context = contexts
        .iter()
        .find(|c| wanted.is_some() && entry_name(c) == wanted)
        .or_else(|| contexts.first())
        .and_then(|c| c.get("context"))
        .ok_or_else(|| Problem::NoContext(owner.clone()))?;
    let body = |section_name: &str, key: &str| {
        let wanted = context.get(key).and_then(Value::as_str)?;
        section(incoming, section_name)
            .iter()
            .find(|e| entry_name(e) == Some(wanted))
            .and_then(|e| e.get(key))
            .cloned()
    };
    let (Some(cluster), Some(user)) = (body("clusters", "cluster"), body("users", "user")) else {
        return Err(Problem::NoContext(owner.clone()));
    };
    Ok((cluster, user, context.clone()))
}

/// The first entry named `name` that is not mk8's entry for `owner`.
fn first_conflict(doc: &Value, owner: &Owner, name: &str) -> Option<Problem> {
    SECTIONS.into_iter().find_map(|(section_name, body_key)| {
        let entry = section(doc, section_name)
            .iter()
            .find(|e| entry_name(e) == Some(name))?;
        let whose = match owner_of(entry, body_key) {
            Some(other) if &other == owner => return None,
            Some(other) => format!("mk8 added for the Cluster {other}"),
            None => "mk8 did not add".to_string(),
        };
        Some(Problem::Conflict {
            kind: body_key,
            name: name.to_string(),
            whose,
        })
    })
}

fn free_name(doc: &Value, owner: &Owner, name: &str) -> String {
    std::iter::once(name.to_string())
        .chain((2..).map(|n| format!("{name}-{n}")))
        .find(|candidate| first_conflict(doc, owner, candidate).is_none())
        .expect("an unbounded sequence of names has a free one")
}

fn resolve_owner(doc: &Value, namespace: Option<&str>, name: &str) -> Result<Owner, Problem> {
    let mut owners: Vec<Owner> = SECTIONS
        .into_iter()
        .flat_map(|(section_name, body_key)| {
            section(doc, section_name)
                .iter()
                .filter_map(move |e| owner_of(e, body_key))
        })
        .filter(|o| o.name == name && namespace.is_none_or(|ns| o.namespace == ns))
        .collect();
    owners.sort_by_key(Owner::to_string);
    owners.dedup();
    match owners.as_slice() {
        [] => Err(Problem::NotFound(match namespace {
            Some(ns) => format!("{ns}/{name}"),
            None => name.to_string(),
        })),
        [one] => Ok(one.clone()),
        many => Err(Problem::Ambiguous {
            name: name.to_string(),
            owners: many
                .iter()
                .map(Owner::to_string)
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

/// The body with mk8's extension set (other extensions kept).
fn mark(body: Value, owner: &Owner) -> Value {
    let mut body = match body {
        Value::Mapping(m) => m,
        _ => Mapping::new(),
    };
    let mut extension = Mapping::new();
    extension.insert("cluster".into(), owner.to_string().into());
    let mut named = Mapping::new();
    named.insert("name".into(), EXTENSION.into());
    named.insert("extension".into(), Value::Mapping(extension));
    let mut extensions: Vec<Value> = match body.remove("extensions") {
        Some(Value::Sequence(list)) => list,
        _ => Vec::new(),
    };
    extensions.retain(|e| e.get("name").and_then(Value::as_str) != Some(EXTENSION));
    extensions.push(Value::Mapping(named));
    body.insert("extensions".into(), Value::Sequence(extensions));
    Value::Mapping(body)
}

fn owner_of(entry: &Value, body_key: &str) -> Option<Owner> {
    let cluster = entry
        .get(body_key)?
        .get("extensions")?
        .as_sequence()?
        .iter()
        .find(|e| e.get("name").and_then(Value::as_str) == Some(EXTENSION))?
        .get("extension")?
        .get("cluster")?
        .as_str()?;
    let (namespace, name) = cluster.split_once('/')?;
    Some(Owner {
        namespace: namespace.to_string(),
        name: name.to_string(),
    })
}

fn named_entry(name: &str, body_key: &str, body: Value) -> Value {
    let mut entry = Mapping::new();
    entry.insert("name".into(), name.into());
    entry.insert(body_key.into(), body);
    Value::Mapping(entry)
}

fn entry_name(entry: &Value) -> Option<&str> {
    entry.get("name").and_then(Value::as_str)
}

fn section<'a>(doc: &'a Value, name: &str) -> &'a [Value] {
    doc.get(name)
        .and_then(Value::as_sequence)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

fn mapping_mut(doc: &mut Value) -> &mut Mapping {
    if !doc.is_mapping() {
        *doc = empty();
    }
    doc.as_mapping_mut().expect("a mapping")
}

fn section_mut<'a>(doc: &'a mut Value, name: &str) -> &'a mut Vec<Value> {
    let map = mapping_mut(doc);
    if !matches!(map.get(name), Some(Value::Sequence(_))) {
        map.insert(name.into(), Value::Sequence(Vec::new()));
    }
    map.get_mut(name)
        .and_then(Value::as_sequence_mut)
        .expect("a list")
}

#[cfg(test)]
mod tests;
