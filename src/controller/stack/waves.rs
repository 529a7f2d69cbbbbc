//! Ordering a Stack's components into waves by their dependencies (pure).

use std::collections::{BTreeMap, BTreeSet};

/// Why components cannot be ordered.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// A dependency names no component of the Stack.
    #[error(
        "component {component} depends on {missing}, which is not a component of this Stack (components: {known})"
    )]
    Unknown {
        /// The depending component.
        component: String,
        /// The name it depends on.
        missing: String,
        /// Comma-separated component names.
        known: String,
    },
    /// The dependencies form a cycle; the path starts and ends with the same component.
    #[error("dependency cycle: {}", .0.join(" → "))]
    Cycle(Vec<String>),
}

/// Order `deps` (component → what it depends on) into waves: every component comes in the wave
/// after the last of its dependencies, names sorted inside a wave so the plan is stable.
pub fn plan(deps: &BTreeMap<String, BTreeSet<String>>) -> Result<Vec<Vec<String>>, PlanError> {
    for (component, needs) in deps {
        if let Some(missing) = needs.iter().find(|n| !deps.contains_key(*n)) {
            return Err(PlanError::Unknown {
                component: component.clone(),
                missing: missing.clone(),
                known: deps.keys().cloned().collect::<Vec<_>>().join(", "),
            });
        }
    }
    let mut placed: BTreeSet<&str> = BTreeSet::new();
    let mut waves = Vec::new();
    while placed.len() < deps.len() {
        let wave: Vec<String> = deps
            .iter()
            .filter(|(c, needs)| {
                !placed.contains(c.as_str()) && needs.iter().all(|n| placed.contains(n.as_str()))
            })
            .map(|(c, _)| c.clone())
            .collect();
        if wave.is_empty() {
            return Err(PlanError::Cycle(find_cycle(deps, &placed)));
        }
        placed.extend(deps.keys().filter(|k| wave.contains(k)).map(String::as_str));
        waves.push(wave);
    }
    Ok(waves)
}

/// A cycle among the components not yet placed (at least one exists when this is called).
fn find_cycle(deps: &BTreeMap<String, BTreeSet<String>>, placed: &BTreeSet<&str>) -> Vec<String> {
    // Walk unplaced dependencies from the first unplaced component until a name repeats.
    let start = deps
        .keys()
        .find(|k| !placed.contains(k.as_str()))
        .expect("an unplaced component");
    let mut path: Vec<String> = vec![start.clone()];
    loop {
        let current = path.last().expect("non-empty path");
        let next = deps[current]
            .iter()
            .find(|n| !placed.contains(n.as_str()))
            .expect("an unplaced component has an unplaced dependency");
        if let Some(pos) = path.iter().position(|p| p == next) {
            let mut cycle = path[pos..].to_vec();
            cycle.push(next.clone());
            return cycle;
        }
        path.push(next.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(edges: &[(&str, &[&str])]) -> BTreeMap<String, BTreeSet<String>> {
        edges
            .iter()
            .map(|(c, d)| (c.to_string(), d.iter().map(|s| s.to_string()).collect()))
            .collect()
    }

    #[test]
    fn independent_components_share_the_first_wave() {
        let waves = plan(&graph(&[("b", &[]), ("a", &[])])).unwrap();
        assert_eq!(waves, vec![vec!["a".to_string(), "b".to_string()]]);
    }

    #[test]
    fn dependencies_come_in_earlier_waves() {
        let waves = plan(&graph(&[
            ("cert-manager", &[]),
            ("kyverno", &["cert-manager"]),
            ("monitoring", &["cert-manager"]),
            ("policies", &["kyverno", "monitoring"]),
        ]))
        .unwrap();
        assert_eq!(
            waves,
            vec![
                vec!["cert-manager".to_string()],
                vec!["kyverno".into(), "monitoring".into()],
                vec!["policies".into()]
            ]
        );
    }

    #[test]
    fn unknown_dependency_is_named() {
        let err = plan(&graph(&[
            ("kyverno", &["cert-manger"]),
            ("cert-manager", &[]),
        ]))
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "component kyverno depends on cert-manger, which is not a component of this Stack (components: cert-manager, kyverno)"
        );
    }

    #[test]
    fn cycle_path_is_reported() {
        let err = plan(&graph(&[
            ("a", &["b"]),
            ("b", &["c"]),
            ("c", &["a"]),
            ("d", &[]),
        ]))
        .unwrap_err();
        assert_eq!(
            err,
            PlanError::Cycle(vec!["a".into(), "b".into(), "c".into(), "a".into()])
        );
        assert_eq!(err.to_string(), "dependency cycle: a → b → c → a");
    }

    #[test]
    fn cycle_behind_a_healthy_prefix_is_found() {
        let err = plan(&graph(&[
            ("base", &[]),
            ("x", &["base", "y"]),
            ("y", &["x"]),
        ]))
        .unwrap_err();
        assert_eq!(
            err,
            PlanError::Cycle(vec!["x".into(), "y".into(), "x".into()])
        );
    }
}
