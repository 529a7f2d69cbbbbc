//! The bad-input corpus (`tests/bad-input/`), replayed with the real kubectl on the development
//! API server with mk8's CRDs and one operator: every case is refused at admission with an error
//! naming its field, or accepted and then reported in a condition whose message names the field
//! and the fix. docs/bad-input.md is generated from the same files.

mod corpus;

use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt;
use serde_json::Value;

use crate::operator::start_operator;
use crate::support::{TestCluster, eventually, kubectl_input_raw, repo_root, shared_crd};
use corpus::{Case, Expect};

const DOC: &str = "docs/bad-input.md";
const BEGIN: &str = "<!-- BEGIN generated from tests/bad-input -->\n";
const END: &str = "<!-- END generated from tests/bad-input -->";
/// How many kubectl processes run at once (the machines have two cores).
const PARALLEL: usize = 6;
/// Time for the operator to report every condition case.
const WAIT: Duration = Duration::from_secs(90);

fn cases() -> Vec<Case> {
    corpus::load().unwrap_or_else(|problems| {
        panic!("files of tests/bad-input without a recognised expectation:\n{problems}")
    })
}

/// The namespace of the `i`th case.
fn namespace(i: usize) -> String {
    format!("bad-{i}")
}

#[test]
fn the_corpus_covers_every_kind_and_docs_bad_input_md_is_generated_from_it() {
    let cases = cases();
    assert!(cases.len() >= 60, "only {} cases", cases.len());
    for kind in ["Cluster", "NodePool", "Stack", "ClusterProfileView"] {
        let of_kind = cases.iter().filter(|c| c.kind == kind);
        let conditions = of_kind
            .clone()
            .filter(|c| matches!(c.expect, Expect::Condition { .. }))
            .count();
        assert!(of_kind.count() >= 10, "few {kind} cases");
        assert!(conditions >= 2, "few {kind} cases beyond admission");
    }
    let path = repo_root().join(DOC);
    let doc = std::fs::read_to_string(&path).expect("docs/bad-input.md exists");
    let start = doc
        .find(BEGIN)
        .expect("docs/bad-input.md has the BEGIN marker")
        + BEGIN.len();
    let end = start
        + doc[start..]
            .find(END)
            .expect("docs/bad-input.md has the END marker");
    let generated = format!(
        "{}\n{}",
        corpus::summary(&cases),
        corpus::markdown_table(&cases)
    );
    if doc[start..end] != generated {
        if std::env::var_os("MK8_UPDATE_DOCS").is_some() {
            std::fs::write(
                &path,
                format!("{}{generated}{}", &doc[..start], &doc[end..]),
            )
            .unwrap();
            return;
        }
        panic!(
            "docs/bad-input.md is out of date with tests/bad-input; regenerate it with \
             `MK8_UPDATE_DOCS=1 cargo test --test e2e bad_input::the_corpus`"
        );
    }
}

/// What applying a case's documents did.
struct Applied {
    /// For an admission case: why the refusal does not fit; for a condition case: why the
    /// documents were not all accepted.
    problem: Option<String>,
}

/// Apply the documents of `case` in `ns` with kubectl and judge admission.
fn apply(kubeconfig: &std::path::Path, case: &Case, ns: &str) -> Applied {
    let kubectl = |docs: &[String]| {
        let out = kubectl_input_raw(
            kubeconfig,
            &["apply", "-n", ns, "-f", "-"],
            &docs.join("\n---\n"),
        );
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let problem = match &case.expect {
        Expect::Admission { update } => {
            let (last, before) = case.documents.split_last().expect("documents");
            // The valid object of an update case, or companions such as a Secret, go first.
            let setup = match (before.is_empty(), *update) {
                (true, _) => None,
                (false, _) => match kubectl(before) {
                    (true, _) => None,
                    (false, err) => {
                        Some(format!("the documents before the last are refused: {err}"))
                    }
                },
            };
            setup.or_else(|| match kubectl(std::slice::from_ref(last)) {
                (true, _) => Some("accepted".to_string()),
                (false, err) => case.misses(&err),
            })
        }
        Expect::Condition { .. } => match kubectl(&case.documents) {
            (true, _) => None,
            (false, err) => Some(format!("refused at admission: {err}")),
        },
    };
    Applied { problem }
}

/// The condition `type_` of `obj`: status, reason, message.
fn condition(obj: &Value, type_: &str) -> Option<(String, String, String)> {
    obj["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
        .map(|c| {
            let s = |k: &str| c[k].as_str().unwrap_or_default().to_string();
            (s("status"), s("reason"), s("message"))
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_input_is_refused_or_reported_naming_the_field_and_the_fix() {
    let cases = cases();
    let cluster = TestCluster::with_mk8_crds().await;
    cluster
        .apply_manifests(&shared_crd("clusterprofile-crd.yaml"))
        .await;
    let operator = start_operator(&cluster).await;
    let namespaces: String = (0..cases.len())
        .map(|i| {
            format!(
                "apiVersion: v1\nkind: Namespace\nmetadata: {{name: {}}}\n---\n",
                namespace(i)
            )
        })
        .collect();
    cluster.apply_manifests(&namespaces).await;

    // Every case in its own namespace, a few kubectl processes at a time.
    let kubeconfig = cluster.kubeconfig.clone();
    let applied: Vec<(usize, Applied)> = futures::stream::iter(cases.iter().cloned().enumerate())
        .map(|(i, case)| {
            let kubeconfig = kubeconfig.clone();
            tokio::task::spawn_blocking(move || (i, apply(&kubeconfig, &case, &namespace(i))))
        })
        .buffer_unordered(PARALLEL)
        .map(|joined| joined.expect("a case's kubectl runs"))
        .collect()
        .await;
    let mut failures: Vec<String> = applied
        .iter()
        .filter_map(|(i, a)| {
            a.problem
                .as_ref()
                .map(|p| format!("{}: {p}", cases[*i].file))
        })
        .collect();
    failures.sort();
    assert!(
        failures.is_empty(),
        "{} of {} cases misjudged:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );

    // The operator reports each condition case; one listing per poll judges them all.
    let pending: Vec<(usize, &Case)> = cases
        .iter()
        .enumerate()
        .filter(|(_, c)| matches!(c.expect, Expect::Condition { .. }))
        .collect();
    eventually("every condition case reported", WAIT, || {
        let out = cluster.kubectl_raw(&[
            "get",
            "clusters.mk8.io,nodepools.mk8.io,stacks.mk8.io,clusterprofileviews.mk8.io",
            "-A",
            "-o",
            "json",
        ]);
        let list: Value = serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())?;
        let objects: BTreeMap<(String, String, String), &Value> = list["items"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|o| {
                let s = |p: &str| {
                    o.pointer(p)
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string()
                };
                (
                    (s("/metadata/namespace"), s("/kind"), s("/metadata/name")),
                    o,
                )
            })
            .collect();
        let unmet: Vec<String> = pending
            .iter()
            .filter_map(|(i, case)| {
                let Expect::Condition {
                    type_,
                    status,
                    reason,
                } = &case.expect
                else {
                    return None;
                };
                let key = (namespace(*i), case.kind.clone(), case.name.clone());
                let seen = objects.get(&key).and_then(|o| condition(o, type_));
                let problem = match &seen {
                    None => Some(format!(
                        "no {type_} condition on {}/{}",
                        case.kind, case.name
                    )),
                    Some((s, r, _)) if s != status || r != reason => Some(format!(
                        "{type_}={s} reason={r}, expected {status} {reason}"
                    )),
                    Some((_, _, message)) => case.misses(message),
                };
                problem.map(|p| format!("{}: {p}", case.file))
            })
            .collect();
        if unmet.is_empty() {
            Ok(())
        } else {
            Err(format!("\n{}", unmet.join("\n")))
        }
    })
    .await;

    // `kubectl describe` shows the same: a Warning Event with the reason and the message.
    eventually("a Warning Event per condition case", WAIT, || {
        let out = cluster.kubectl_raw(&["get", "events.events.k8s.io", "-A", "-o", "json"]);
        let list: Value = serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())?;
        let events = list["items"].as_array().cloned().unwrap_or_default();
        let unmet: Vec<&str> = pending
            .iter()
            .filter(|(i, case)| {
                let Expect::Condition { reason, .. } = &case.expect else {
                    return false;
                };
                !events.iter().any(|e| {
                    e["metadata"]["namespace"] == namespace(*i).as_str()
                        && e["regarding"]["kind"] == case.kind.as_str()
                        && e["regarding"]["name"] == case.name.as_str()
                        && e["type"] == "Warning"
                        && e["reason"] == reason.as_str()
                        && e["note"]
                            .as_str()
                            .is_some_and(|note| case.misses(note).is_none())
                })
            })
            .map(|(_, case)| case.file.as_str())
            .collect();
        if unmet.is_empty() {
            Ok(())
        } else {
            Err(format!("no matching Event for {unmet:?}"))
        }
    })
    .await;

    let _ = operator.stop.send(());
    operator
        .done
        .await
        .unwrap()
        .expect("operator stops cleanly");
}
