//! The KEP-5339 access-provider file `mk8 dev` writes for its member clusters: the `mk8` entry is
//! added or replaced, every other provider of an existing file is kept.

use std::path::Path;

use anyhow::Context;
use serde_json::{Value, json};

/// `existing` (a provider file's text, if there is one) with `entry` in place of any provider of
/// the same name.
pub fn merge(existing: Option<&str>, entry: Value) -> anyhow::Result<Value> {
    let mut file = match existing.filter(|t| !t.trim().is_empty()) {
        Some(text) => serde_json::from_str::<Value>(text).context("not a JSON object")?,
        None => json!({"providers": []}),
    };
    anyhow::ensure!(file.is_object(), "not a JSON object");
    if file.get("providers").is_none() {
        file["providers"] = json!([]);
    }
    let providers = file["providers"]
        .as_array_mut()
        .context("`providers` is not a list")?;
    let name = entry["name"].clone();
    match providers.iter_mut().find(|p| p["name"] == name) {
        Some(slot) => *slot = entry,
        None => providers.push(entry),
    }
    Ok(file)
}

/// Write `entry` into the provider file at `path` (directory created 0700, file 0600).
pub fn write(path: &Path, entry: Value) -> anyhow::Result<()> {
    let existing = match std::fs::read_to_string(path) {
        Ok(text) => Some(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let merged = merge(existing.as_deref(), entry)
        .with_context(|| format!("merging into {}", path.display()))?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && !dir.exists()
    {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder
            .create(dir)
            .with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    let text = serde_json::to_string_pretty(&merged)? + "\n";
    std::io::Write::write_all(&mut file, text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mk8_entry_is_replaced_and_other_providers_kept() {
        let existing = r#"{"providers": [
            {"name": "ocm", "execConfig": {"command": "ocm-plugin"}},
            {"name": "mk8", "execConfig": {"command": "/old/mk8"}}
        ]}"#;
        let merged = merge(
            Some(existing),
            json!({"name": "mk8", "execConfig": {"command": "/new/mk8"}}),
        )
        .unwrap();
        let providers = merged["providers"].as_array().unwrap();
        assert_eq!(providers.len(), 2);
        assert_eq!(providers[0]["name"], "ocm");
        assert_eq!(providers[1]["execConfig"]["command"], "/new/mk8");
        let fresh = merge(None, json!({"name": "mk8"})).unwrap();
        assert_eq!(fresh, json!({"providers": [{"name": "mk8"}]}));
        assert!(merge(Some("[1]"), json!({"name": "mk8"})).is_err());
    }

    #[cfg(unix)]
    #[test]
    fn the_file_and_its_new_directory_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mk8/access-providers.json");
        write(&path, json!({"name": "mk8"})).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
        write(&path, json!({"name": "mk8", "execConfig": {}})).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            serde_json::from_str::<Value>(&text).unwrap()["providers"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
    }
}
