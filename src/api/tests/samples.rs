//! The samples in `config/samples/` are accepted as written and refer to each other correctly.

use std::path::Path;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::schema_check::{self, openapi_schema};
use crate::api::{Cluster, ClusterProfileView, NodePool, Stack};
use crate::crdgen;

/// Every document of every YAML file in `config/samples/`, with its file name.
fn documents() -> Vec<(String, Value)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/samples");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("config/samples exists")
        .map(|entry| entry.expect("readable entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for path in files {
        let name = path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let text = std::fs::read_to_string(&path).expect("sample is readable");
        for document in serde_yaml::Deserializer::from_str(&text) {
            let value =
                Value::deserialize(document).unwrap_or_else(|e| panic!("{name}: not YAML: {e}"));
            if !value.is_null() {
                out.push((name.clone(), value));
            }
        }
    }
    out
}

/// True when every field written in `sample` survives a round trip through the Rust type, so that
/// no field is misspelt or misplaced (the API server would drop it).
fn is_kept(sample: &Value, round_trip: &Value) -> bool {
    match (sample, round_trip) {
        (Value::Object(a), Value::Object(b)) => a
            .iter()
            .all(|(k, v)| b.get(k).is_some_and(|w| is_kept(v, w))),
        (Value::Array(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(v, w)| is_kept(v, w))
        }
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        _ => sample == round_trip,
    }
}

fn check<K>(
    file: &str,
    sample: &Value,
    validate: impl Fn(&K) -> Result<(), kube::core::cel::ValidationErrors>,
) -> K
where
    K: DeserializeOwned + serde::Serialize + kube::CustomResourceExt,
{
    let typed: K = serde_json::from_value(sample.clone())
        .unwrap_or_else(|e| panic!("{file}: does not parse: {e}"));
    if let Err(errors) = validate(&typed) {
        panic!("{file}: a CEL rule rejects it: {errors:?}");
    }
    let violations = schema_check::check(&openapi_schema(&K::crd()), sample);
    assert!(
        violations.is_empty(),
        "{file}: the schema rejects it: {violations:?}"
    );
    let round_trip = serde_json::to_value(&typed).expect("serializes");
    assert!(
        is_kept(sample, &round_trip),
        "{file}: some fields are unknown to {}: {round_trip}",
        K::crd().spec.names.kind
    );
    typed
}

#[test]
fn samples_are_accepted_and_consistent() {
    let documents = documents();
    let mut clusters = Vec::new();
    let mut pools = Vec::new();
    let mut seen = Vec::new();
    for (file, sample) in &documents {
        let kind = sample["kind"].as_str().unwrap_or_default();
        let namespace = if kind == "Namespace" {
            &sample["metadata"]["name"]
        } else {
            &sample["metadata"]["namespace"]
        };
        assert_eq!(
            namespace, "fleet",
            "{file}: {kind} outside the fleet namespace"
        );
        if sample["apiVersion"] == "mk8.io/v1alpha1" {
            assert!(
                crdgen::all().iter().any(|crd| crd.spec.names.kind == kind),
                "{file}: unknown kind {kind}"
            );
        }
        match kind {
            "Cluster" => {
                let cluster: Cluster = check(file, sample, Cluster::validate_cel);
                seen.push(format!(
                    "Cluster/{}",
                    cluster.provider().unwrap_or_default()
                ));
                clusters.push(cluster);
            }
            "NodePool" => {
                let pool: NodePool = check(file, sample, NodePool::validate_cel);
                seen.push(format!("NodePool/{}", pool.role_name().unwrap_or_default()));
                pools.push(pool);
            }
            "Stack" => {
                check::<Stack>(file, sample, Stack::validate_cel);
                seen.push("Stack".into());
            }
            "ClusterProfileView" => {
                check::<ClusterProfileView>(file, sample, ClusterProfileView::validate_cel);
                seen.push("ClusterProfileView".into());
            }
            _ => {}
        }
    }
    seen.sort();
    let expected = [
        "Cluster/eks",
        "Cluster/rke2",
        "ClusterProfileView",
        "NodePool/agent",
        "NodePool/eks",
        "NodePool/server",
        "Stack",
    ];
    assert_eq!(seen, expected, "one sample per kind and provider");

    for pool in &pools {
        let cluster = clusters
            .iter()
            .find(|c| c.metadata.name == Some(pool.spec.cluster_name.clone()));
        let cluster = cluster.unwrap_or_else(|| {
            panic!(
                "NodePool {:?} names a Cluster no sample defines",
                pool.metadata.name
            )
        });
        assert_eq!(
            cluster.provider(),
            pool.provider(),
            "NodePool {:?} and its Cluster disagree on the provider",
            pool.metadata.name
        );
    }

    let secret_keys = |name: &str| -> Vec<String> {
        let secret = documents
            .iter()
            .find(|(_, d)| d["kind"] == "Secret" && d["metadata"]["name"] == name);
        let (_, secret) = secret.unwrap_or_else(|| panic!("secrets.yaml has no Secret {name}"));
        secret["stringData"]
            .as_object()
            .map(|data| data.keys().cloned().collect())
            .unwrap_or_default()
    };
    for cluster in &clusters {
        let (name, needed) = match (&cluster.spec.eks, &cluster.spec.rke2) {
            (Some(eks), _) => match &eks.credentials_secret_ref {
                Some(reference) => (
                    reference.name.clone(),
                    vec!["accessKeyId", "secretAccessKey"],
                ),
                None => continue,
            },
            (_, Some(rke2)) => (
                rke2.ssh_credentials_secret_ref.name.clone(),
                vec!["ssh-privatekey", "known_hosts"],
            ),
            _ => continue,
        };
        let keys = secret_keys(&name);
        for key in needed {
            assert!(
                keys.iter().any(|k| k == key),
                "Secret {name} lacks {key}, which Cluster {:?} needs",
                cluster.metadata.name
            );
        }
    }
}
