//! Catalog bundles (pure): a component `{name: obs, bundle: observability}` becomes one component
//! per preset of the bundle, named after the preset; `dependsOn` of the bundle applies to each,
//! and a dependency on the bundle becomes a dependency on all of them. A preset the Stack already
//! has (by itself or through another bundle) is not added twice.

use std::collections::BTreeMap;

use super::catalog;
use crate::api::{Component, Stack};

/// The Stack with its bundles expanded (unchanged when it has none).
pub fn expand(stack: &Stack) -> Result<Stack, String> {
    let components = &stack.spec.components;
    if components.iter().all(|c| c.bundle.is_none()) {
        return Ok(stack.clone());
    }
    // Preset → the name of the component that installs it.
    let mut by_preset: BTreeMap<String, String> = components
        .iter()
        .filter_map(|c| Some((c.preset.clone()?, c.name.clone())))
        .collect();
    let mut out: Vec<Component> = components
        .iter()
        .filter(|c| c.bundle.is_none())
        .cloned()
        .collect();
    let mut members: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (i, c) in components.iter().enumerate() {
        let Some(name) = &c.bundle else { continue };
        let bundle = catalog::bundle(name).ok_or_else(|| {
            let known: Vec<&str> = catalog::bundles().iter().map(|b| b.name.as_str()).collect();
            format!(
                "spec.components[{i}].bundle: unknown bundle {name:?}; available bundles: {}",
                known.join(", ")
            )
        })?;
        let mut names = Vec::new();
        for preset in &bundle.presets {
            if let Some(existing) = by_preset.get(preset) {
                names.push(existing.clone());
                continue;
            }
            if let Some(clash) = out.iter().find(|o| &o.name == preset) {
                return Err(format!(
                    "spec.components[{i}].bundle: {name} adds a component named {preset}, but component {} is already named so; rename it",
                    clash.name
                ));
            }
            out.push(Component {
                name: preset.clone(),
                preset: Some(preset.clone()),
                depends_on: c.depends_on.clone(),
                ..Component::default()
            });
            by_preset.insert(preset.clone(), preset.clone());
            names.push(preset.clone());
        }
        members.insert(c.name.clone(), names);
    }
    for c in &mut out {
        c.depends_on = c
            .depends_on
            .iter()
            .flat_map(|d| members.get(d).cloned().unwrap_or_else(|| vec![d.clone()]))
            .filter(|d| d != &c.name)
            .collect();
        c.depends_on.dedup();
    }
    let mut expanded = stack.clone();
    expanded.spec.components = out;
    Ok(expanded)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stack(components: &str) -> Stack {
        serde_yaml::from_str(&format!(
            "apiVersion: mk8.io/v1alpha1\nkind: Stack\nmetadata: {{name: p, namespace: fleet}}\nspec:\n  components: {components}\n"
        ))
        .unwrap()
    }

    #[test]
    fn a_bundle_becomes_its_presets_and_dependencies_follow() {
        let s = stack(
            "[{name: certs, preset: cert-manager}, {name: obs, bundle: observability}, {name: dash, helm: {repoURL: 'https://x.example', chart: d, version: 1.0.0}, dependsOn: [obs]}]",
        );
        let x = expand(&s).unwrap();
        let bundle = catalog::bundle("observability").unwrap();
        let names: Vec<&str> = x.spec.components.iter().map(|c| c.name.as_str()).collect();
        // cert-manager is not added twice: the Stack's own `certs` stands for it.
        assert_eq!(
            names.iter().filter(|n| n.contains("cert")).count(),
            1,
            "{names:?}"
        );
        let dash = x.spec.components.iter().find(|c| c.name == "dash").unwrap();
        for preset in &bundle.presets {
            let member = if preset == "cert-manager" {
                "certs"
            } else {
                preset.as_str()
            };
            assert!(
                dash.depends_on.iter().any(|d| d == member),
                "{preset}: {:?}",
                dash.depends_on
            );
        }
        assert!(x.spec.components.iter().all(|c| c.bundle.is_none()));
    }

    #[test]
    fn unknown_bundles_and_name_clashes_are_refused() {
        let err = expand(&stack("[{name: obs, bundle: observabilty}]")).unwrap_err();
        assert!(
            err.starts_with(
                "spec.components[0].bundle: unknown bundle \"observabilty\"; available bundles: "
            ),
            "{err}"
        );
        let err = expand(&stack(
            "[{name: loki, helm: {repoURL: 'https://x.example', chart: l, version: 1.0.0}}, {name: obs, bundle: observability}]",
        ))
        .unwrap_err();
        assert!(err.contains("adds a component named loki"), "{err}");
    }
}
