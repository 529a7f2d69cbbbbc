//! The Dockerfile, without a Docker engine: what it copies into the build covers every file the
//! code compiles in, it builds every Cargo feature (provider) and ships every binary of
//! Cargo.toml, and it starts the operator as non-root.

use std::path::{Path, PathBuf};

use super::repo;

fn read(path: &str) -> String {
    std::fs::read_to_string(repo().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Files compiled into the binaries (`include_str!`/`include_bytes!`), relative to the repository.
fn compiled_in_files() -> Vec<PathBuf> {
    let pattern = regex::Regex::new(r#"include_(?:str|bytes)!\(\s*"([^"]+)"\s*\)"#).expect("regex");
    let mut sources = Vec::new();
    collect_rs(&repo().join("src"), &mut sources);
    let mut files = Vec::new();
    for source in sources {
        let text = std::fs::read_to_string(&source).expect("readable source");
        for found in pattern.captures_iter(&text) {
            let included = source.parent().expect("parent").join(&found[1]);
            let included = included
                .canonicalize()
                .unwrap_or_else(|e| panic!("{} includes {}: {e}", source.display(), &found[1]));
            let relative = included
                .strip_prefix(repo().canonicalize().expect("repo path"))
                .unwrap_or_else(|_| {
                    panic!(
                        "{} compiles in {}, outside the repository: the image build cannot see it",
                        source.display(),
                        included.display()
                    )
                })
                .to_path_buf();
            files.push(relative);
        }
    }
    files
}

fn collect_rs(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable dir") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            collect_rs(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Sources of the builder stage's `COPY` instructions (not `--from` copies).
fn copied_into_builder(dockerfile: &str) -> Vec<String> {
    // Stages start at each `FROM`; the first piece is the header comment.
    let builder = dockerfile.split("\nFROM ").nth(1).expect("a builder stage");
    builder
        .lines()
        .filter_map(|l| l.trim().strip_prefix("COPY "))
        .filter(|l| !l.starts_with("--from"))
        .flat_map(|l| {
            let parts: Vec<_> = l.split_whitespace().collect();
            parts[..parts.len() - 1]
                .iter()
                .map(|p| p.trim_end_matches('/').to_owned())
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn dockerfile_copies_every_file_the_build_needs() {
    let dockerfile = read("Dockerfile");
    let copied = copied_into_builder(&dockerfile);
    let allowed: Vec<String> = read(".dockerignore")
        .lines()
        .filter_map(|l| l.strip_prefix('!'))
        .map(|l| l.trim_end_matches('/').to_owned())
        .collect();
    let mut needed = vec![PathBuf::from("Cargo.toml"), PathBuf::from("Cargo.lock")];
    needed.extend(compiled_in_files());
    for file in needed {
        let under = |prefixes: &[String]| prefixes.iter().any(|p| file.starts_with(p));
        assert!(
            under(&copied),
            "the build needs {} but the Dockerfile's builder stage copies only {copied:?}",
            file.display()
        );
        assert!(
            under(&allowed),
            "the build needs {} but .dockerignore keeps it out of the context (allows {allowed:?})",
            file.display()
        );
    }
    assert!(
        copied.iter().any(|c| c == "src"),
        "the Dockerfile must copy src/"
    );
}

#[test]
fn image_ships_every_binary_and_runs_the_operator_as_non_root() {
    let manifest: toml_like::Manifest = toml_like::parse(&read("Cargo.toml"));
    let dockerfile = read("Dockerfile");
    let runtime = dockerfile
        .rsplit("\nFROM ")
        .next()
        .expect("a runtime stage");
    assert!(
        runtime.starts_with("gcr.io/distroless/cc-debian12:nonroot"),
        "runtime stage: {}",
        runtime.lines().next().unwrap_or_default()
    );
    for binary in &manifest.bins {
        assert!(
            runtime.contains(&format!("/src/target/release/{binary}")),
            "the image does not ship the `{binary}` binary of Cargo.toml"
        );
    }
    assert!(
        runtime.contains("USER 65532:65532"),
        "the image must run as the nonroot user"
    );
    assert!(
        runtime.contains(r#"ENTRYPOINT ["/usr/local/bin/mk8-operator"]"#),
        "the chart starts the container without a command: ENTRYPOINT must be mk8-operator"
    );
}

#[test]
fn image_is_built_with_every_cargo_feature() {
    let manifest = toml_like::parse(&read("Cargo.toml"));
    let dockerfile = read("Dockerfile");
    let features: Vec<&str> = dockerfile
        .lines()
        .find_map(|l| l.trim().strip_prefix("ARG CARGO_FEATURES="))
        .expect("the Dockerfile declares ARG CARGO_FEATURES=<features>")
        .split([',', ' '])
        .collect();
    for feature in &manifest.features {
        assert!(
            features.contains(&feature.as_str()),
            "Cargo feature `{feature}` is not in the image's CARGO_FEATURES {features:?}: the \
             operator in the image would lack it"
        );
    }
    let builds = dockerfile.matches("--features \"$CARGO_FEATURES\"").count();
    assert_eq!(
        builds, 2,
        "both cargo builds (dependencies, then sources) use CARGO_FEATURES"
    );
}

/// Just enough of Cargo.toml: the `[[bin]]` names and the features other than `default`.
mod toml_like {
    pub struct Manifest {
        pub bins: Vec<String>,
        pub features: Vec<String>,
    }

    pub fn parse(text: &str) -> Manifest {
        let mut bins = Vec::new();
        let mut features = Vec::new();
        let mut section = "";
        for line in text.lines().map(str::trim) {
            if line.starts_with('[') {
                section = line;
            } else if section == "[[bin]]"
                && let Some(name) = line.strip_prefix("name = ")
            {
                bins.push(name.trim_matches('"').to_owned());
            } else if section == "[features]"
                && let Some((name, _)) = line.split_once(" = ")
                && name != "default"
                && !name.starts_with('#')
            {
                features.push(name.to_owned());
            }
        }
        assert!(!bins.is_empty(), "Cargo.toml declares no [[bin]]");
        Manifest { bins, features }
    }
}
