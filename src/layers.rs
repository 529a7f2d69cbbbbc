//! The layers of the crate and what each may import (checked by scanning `crate::` paths in
//! `src/**.rs` outside test code). docs/architecture.md explains the layering; change both
//! together.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Each top-level module and the top-level modules it may use.
const LAYERS: &[(&str, &[&str])] = &[
    // Leaves: the CRD types, and the Kubernetes label/field selector grammar.
    ("api", &[]),
    ("selector", &[]),
    // Owner-only files written atomically.
    ("files", &[]),
    // The development API server is generic: it knows nothing of mk8 but the selector grammar.
    ("apiserver", &["selector", "files"]),
    // Building blocks of every reconcile stage.
    ("reconcile", &["api"]),
    // One folder per provider, seen by the controllers through one trait per kind.
    ("providers", &["api", "reconcile", "selector"]),
    // Reads across the ClusterProfile inventory, for the View controller, Stacks and the CLI.
    ("fleet", &["api", "selector", "files"]),
    (
        "controller",
        &["api", "reconcile", "providers", "selector", "fleet"],
    ),
    ("operator", &["api", "reconcile", "providers", "controller"]),
    ("crdgen", &["api"]),
    // Development member clusters: development API servers published as ClusterProfiles.
    ("devfleet", &["api", "apiserver"]),
    (
        "cli",
        &[
            "api",
            "apiserver",
            "controller",
            "crdgen",
            "devfleet",
            "files",
            "fleet",
            "operator",
            "providers",
            "reconcile",
            "selector",
        ],
    ),
];

/// `source` without its test code: items after `#[cfg(test)]` (a `mod x;` line or a braced
/// block) are dropped.
fn without_tests(source: &str) -> String {
    let mut kept = String::new();
    let mut lines = source.lines();
    while let Some(line) = lines.next() {
        if line.trim() != "#[cfg(test)]" {
            kept.push_str(line);
            kept.push('\n');
            continue;
        }
        let mut depth = 0i32;
        for item in lines.by_ref() {
            depth += item.matches('{').count() as i32 - item.matches('}').count() as i32;
            if depth <= 0 && (item.trim_end().ends_with(';') || item.trim_end().ends_with('}')) {
                break;
            }
        }
    }
    kept
}

/// The top-level modules `source` refers to through `crate::`.
fn imports(source: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let code = without_tests(source);
    for (at, _) in code.match_indices("crate::") {
        let rest = &code[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let inner = &group[..group.find('}').unwrap_or(group.len())];
            found.extend(
                inner
                    .split(',')
                    .filter_map(|p| p.trim().split("::").next())
                    .filter(|m| !m.is_empty())
                    .map(str::to_string),
            );
            continue;
        }
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        found.insert(name);
    }
    found
}

/// Top-level module of a file under `src/`, unless it is a test file or a binary.
fn layer_of(relative: &Path) -> Option<String> {
    let parts: Vec<String> = relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    let test_file = parts
        .iter()
        .any(|p| p == "tests" || p == "tests.rs" || p == "layers.rs");
    if test_file || parts.first().is_some_and(|p| p == "bin" || p == "lib.rs") {
        return None;
    }
    parts
        .first()
        .map(|p| p.strip_suffix(".rs").unwrap_or(p).to_string())
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src is readable") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every import that crosses the layering, as `file: layer imports module`.
fn violations(src: &Path) -> Vec<String> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    files.sort();
    let mut found = Vec::new();
    for file in files {
        let relative = file.strip_prefix(src).expect("under src");
        let Some(layer) = layer_of(relative) else {
            continue;
        };
        let Some((_, allowed)) = LAYERS.iter().find(|(name, _)| *name == layer) else {
            found.push(format!(
                "{}: module {layer} has no place in LAYERS ({})",
                relative.display(),
                file!()
            ));
            continue;
        };
        let source = std::fs::read_to_string(&file).expect("readable source");
        for module in imports(&source) {
            if module != layer && !allowed.contains(&module.as_str()) {
                found.push(format!("{}: {layer} imports {module}", relative.display()));
            }
        }
    }
    found
}

#[test]
fn no_layer_imports_one_above_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let found = violations(&src);
    assert!(
        found.is_empty(),
        "imports against the layering (see docs/architecture.md):\n{}",
        found.join("\n")
    );
}

#[test]
fn the_scan_sees_use_lines_inline_paths_and_groups_but_not_tests() {
    let source = r#"
use crate::api::Cluster;
use crate::{reconcile::env::Env, providers};
fn f() { crate::controller::run(); }

#[cfg(test)]
mod tests {
    use crate::operator::OperatorConfig;
    fn g() { if true { crate::cli::run(); } }
}

#[cfg(test)]
pub mod fixtures;
fn h() -> crate::selector::LabelSelector { Default::default() }
"#;
    let found: Vec<String> = imports(source).into_iter().collect();
    assert_eq!(
        found,
        ["api", "controller", "providers", "reconcile", "selector"]
    );
}

#[test]
fn test_files_and_binaries_are_not_layered() {
    assert_eq!(layer_of(Path::new("api/tests/cel.rs")), None);
    assert_eq!(layer_of(Path::new("providers/eks/plan/tests.rs")), None);
    assert_eq!(layer_of(Path::new("bin/mk8.rs")), None);
    assert_eq!(
        layer_of(Path::new("providers/rke2/plan.rs")).as_deref(),
        Some("providers")
    );
    assert_eq!(layer_of(Path::new("crdgen.rs")).as_deref(), Some("crdgen"));
}
