//! The generated CRDs are valid `apiextensions.k8s.io/v1` objects for Kubernetes 1.33, as checked
//! by `kubernetes-validate` (PyPI) in strict mode.

use std::path::{Path, PathBuf};
use std::process::Command;

const KUBERNETES_VERSION: &str = "1.33.0";

fn crd_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("crds");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|entry| entry.expect("readable entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

#[test]
fn crds_pass_kubernetes_validate_strict() {
    let files = crd_files();
    assert_eq!(
        files.len(),
        4,
        "expected one CRD file per kind in crds/, found {files:?}"
    );
    let output = Command::new("kubernetes-validate")
        .args(["--strict", "-k", KUBERNETES_VERSION])
        .args(&files)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run kubernetes-validate ({e}); install it with `pip install kubernetes-validate`")
        });
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "kubernetes-validate --strict -k {KUBERNETES_VERSION} rejected crds/ ({}):\n{report}",
        output.status
    );
    for file in &files {
        let name = file.file_name().unwrap_or_default().to_string_lossy();
        assert!(
            report.contains(&format!("{name} passed")),
            "kubernetes-validate did not report {name} as passed:\n{report}"
        );
    }
}
