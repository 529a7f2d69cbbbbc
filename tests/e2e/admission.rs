//! Every admission case of the CRD tests — each OpenAPI constraint of `openapi_cases.rs` and each
//! CEL rule of `cel_cases.rs`, the same files the library's client-side checks run — sent to the
//! real kube-apiserver and to the development API server. Both must give the verdict the case
//! expects and, for a rejection, name the field the case is about (for CEL, the field the
//! client-side evaluation reports, and the rule's message).

#[allow(dead_code)]
#[path = "../../src/api/tests/cel_cases.rs"]
mod cel_cases;
#[allow(dead_code)]
#[path = "../../src/api/tests/fixtures.rs"]
mod fixtures;
#[allow(dead_code)]
#[path = "../../src/api/tests/openapi_cases.rs"]
mod openapi_cases;

use kube::Api;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, PostParams};
use kube::core::cel::ValidationErrors;
use serde::Serialize;
use serde_json::Value;

use crate::support::TestCluster;
use cel_cases::RuleCase;
use mk8::api::{Cluster, ClusterProfileView, NodePool, Stack};

/// One request to make and the answer expected.
struct Probe {
    describe: String,
    /// Stored first, then replaced by `object` (transition rules).
    old: Option<Value>,
    object: Value,
    accepted: bool,
    /// For a rejection: the field the error must name.
    field: String,
    /// For a CEL rejection: the rule's message.
    message: Option<String>,
}

/// What one server answered.
#[derive(Debug)]
enum Answer {
    Accepted,
    Rejected {
        message: String,
        fields: Vec<String>,
    },
}

fn openapi_probes() -> Vec<Probe> {
    openapi_cases::all()
        .into_iter()
        .map(|case| Probe {
            describe: case.describe(),
            old: None,
            object: case.object.clone(),
            accepted: case.accepted,
            field: case.field.clone(),
            message: None,
        })
        .collect()
}

/// The generated client-side CEL evaluation of a kind.
trait Cel: Serialize {
    fn errors(&self, old: Option<&Self>) -> Option<ValidationErrors>;
}

macro_rules! cel {
    ($($kind:ty),*) => {$(
        impl Cel for $kind {
            fn errors(&self, old: Option<&Self>) -> Option<ValidationErrors> {
                match old {
                    Some(old) => <$kind>::validate_cel_update(self, old),
                    None => <$kind>::validate_cel(self),
                }
                .err()
            }
        }
    )*};
}

cel!(Cluster, NodePool, Stack, ClusterProfileView);

fn cel_probes<K: Cel>(kind: &str, cases: Vec<RuleCase<K>>, out: &mut Vec<Probe>) {
    for case in cases {
        let old = case.old.as_ref();
        let examples = case.accepted.iter().map(|o| (o, true));
        for (object, accepted) in examples.chain(case.rejected.iter().map(|o| (o, false))) {
            let client_side = object.errors(old);
            let first = client_side.as_ref().and_then(|e| e.iter().next().cloned());
            assert_eq!(
                client_side.is_none(),
                accepted,
                "{kind} `{}`: the client-side check disagrees with the case",
                case.rule
            );
            out.push(Probe {
                describe: format!(
                    "{kind} CEL `{}` {} {}",
                    case.rule,
                    if accepted { "accepts" } else { "rejects" },
                    serde_json::to_value(object).unwrap()["spec"]
                ),
                old: old.map(|o| serde_json::to_value(o).unwrap()),
                object: serde_json::to_value(object).unwrap(),
                accepted,
                field: first
                    .as_ref()
                    .map(|e| e.field_path.clone())
                    .unwrap_or_default(),
                message: first.map(|e| e.message),
            });
        }
    }
}

fn resource(kind: &str) -> ApiResource {
    let gvk = GroupVersionKind::gvk("mk8.io", "v1alpha1", kind);
    let plural = format!("{}s", kind.to_lowercase());
    ApiResource::from_gvk_with_plural(&gvk, &plural)
}

fn answer(result: kube::Result<DynamicObject>) -> Answer {
    match result {
        Ok(_) => Answer::Accepted,
        Err(kube::Error::Api(status)) => Answer::Rejected {
            message: status.message.clone(),
            fields: status
                .details
                .map(|d| d.causes.into_iter().map(|c| c.field).collect())
                .unwrap_or_default(),
        },
        Err(e) => panic!("the request itself failed: {e}"),
    }
}

/// Send `probe` as object `name` in namespace `fleet`.
async fn send(client: &kube::Client, probe: &Probe, name: &str) -> Answer {
    let kind = probe.object["kind"].as_str().unwrap();
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), "fleet", &resource(kind));
    let named = |object: &Value| {
        let mut object: DynamicObject = serde_json::from_value(object.clone()).unwrap();
        object.metadata.name = Some(name.to_string());
        object.metadata.namespace = Some("fleet".into());
        object
    };
    let pp = PostParams::default();
    match &probe.old {
        None => answer(api.create(&pp, &named(&probe.object)).await),
        Some(old) => {
            let stored = api
                .create(&pp, &named(old))
                .await
                .unwrap_or_else(|e| panic!("[{}] the old object is refused: {e}", probe.describe));
            let mut new = named(&probe.object);
            new.metadata.resource_version = stored.metadata.resource_version;
            answer(api.replace(name, &pp, &new).await)
        }
    }
}

/// Why `answer` does not fit `probe`, if it does not.
fn misfit(probe: &Probe, answer: &Answer) -> Option<String> {
    match (probe.accepted, answer) {
        (true, Answer::Accepted) => None,
        (true, Answer::Rejected { message, .. }) => Some(format!("refused: {message}")),
        (false, Answer::Accepted) => Some("accepted".into()),
        (false, Answer::Rejected { message, fields }) => {
            let named =
                fields.contains(&probe.field) || message.contains(&format!("{}:", probe.field));
            if !named {
                return Some(format!(
                    "does not name {} (fields {fields:?}): {message}",
                    probe.field
                ));
            }
            match &probe.message {
                Some(rule) if !message.contains(rule.as_str()) => {
                    Some(format!("lacks the rule's message {rule:?}: {message}"))
                }
                _ => None,
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_cel_and_openapi_case_gets_the_same_verdict_and_field_from_the_real_and_the_dev_api_server()
 {
    let mut probes = openapi_probes();
    cel_probes("Cluster", cel_cases::cluster_rules(), &mut probes);
    cel_probes("NodePool", cel_cases::nodepool_rules(), &mut probes);
    cel_probes("Stack", cel_cases::stack_rules(), &mut probes);
    cel_probes("ClusterProfileView", cel_cases::view_rules(), &mut probes);
    assert!(probes.len() > 300, "only {} cases", probes.len());

    let (real, dev) = (TestCluster::start_real().await, TestCluster::start().await);
    let mut failures = Vec::new();
    let mut answers = Vec::new();
    for (server, cluster) in [("real", &real), ("dev", &dev)] {
        cluster.apply_manifests(&mk8::crdgen::all_yaml()).await;
        cluster.kubectl(&["create", "namespace", "fleet"]);
        let client = cluster.client().await;
        let mut of_server = Vec::new();
        for (i, probe) in probes.iter().enumerate() {
            let answer = send(&client, probe, &format!("case-{i}")).await;
            if let Some(why) = misfit(probe, &answer) {
                failures.push(format!("{server}: [{}] {why}", probe.describe));
            }
            of_server.push(answer);
        }
        answers.push(of_server);
    }
    // Beyond the expected field: both servers name the same fields (the real one adds a `<nil>`
    // cause when it skipped CEL rules of an object that failed its schema).
    for (probe, (real, dev)) in probes.iter().zip(answers[0].iter().zip(&answers[1])) {
        if let (Answer::Rejected { fields: r, .. }, Answer::Rejected { fields: d, .. }) =
            (real, dev)
        {
            let named = |fields: &[String]| {
                let mut set: Vec<String> =
                    fields.iter().filter(|f| *f != "<nil>").cloned().collect();
                set.sort();
                set.dedup();
                set
            };
            if named(r) != named(d) {
                failures.push(format!(
                    "[{}] the real server names {r:?}, the dev server {d:?}",
                    probe.describe
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases misjudged:\n{}",
        failures.len(),
        probes.len() * 2,
        failures.join("\n")
    );
}
