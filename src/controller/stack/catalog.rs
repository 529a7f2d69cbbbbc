//! The built-in catalog of Stack presets (`config/catalog/presets.yaml`, compiled in; no I/O).

use std::sync::OnceLock;

use serde::Deserialize;

/// One preset: a Helm chart at a pinned version.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Preset {
    /// Name used in `preset:`.
    pub name: String,
    /// Chart repository.
    #[serde(rename = "repoURL")]
    pub repo_url: String,
    /// Chart name.
    pub chart: String,
    /// Pinned chart version.
    pub version: String,
    /// Default namespace.
    pub namespace: String,
    /// Default values.
    #[serde(default)]
    pub values: serde_json::Map<String, serde_json::Value>,
    /// Presets this one must come after when they are in the same Stack.
    #[serde(default)]
    pub after: Vec<String>,
    /// ArgoCD sync options the chart needs besides `CreateNamespace=true`.
    #[serde(default)]
    pub sync_options: Vec<String>,
    /// What the nodes need before the component can work (for people; not checked).
    #[serde(default)]
    pub prerequisites: Option<String>,
}

/// All presets.
pub fn presets() -> &'static [Preset] {
    static CATALOG: OnceLock<Vec<Preset>> = OnceLock::new();
    CATALOG.get_or_init(|| {
        serde_yaml::from_str(include_str!("../../../config/catalog/presets.yaml"))
            .expect("config/catalog/presets.yaml is valid (checked by a unit test)")
    })
}

/// The preset of that name.
pub fn find(name: &str) -> Option<&'static Preset> {
    presets().iter().find(|p| p.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_parses_and_pins_exact_versions() {
        let version = regex::Regex::new(r"^v?[0-9]+\.[0-9]+\.[0-9]+$").unwrap();
        assert!(presets().len() >= 5);
        for p in presets() {
            assert!(
                version.is_match(&p.version),
                "{} is not pinned: {}",
                p.name,
                p.version
            );
            for after in &p.after {
                assert!(
                    find(after).is_some(),
                    "{} comes after unknown preset {after}",
                    p.name
                );
            }
        }
    }
}
