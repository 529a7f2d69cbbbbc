//! Create, get, list with selectors and pagination, update, patch, delete — through kubectl and kube-rs.

use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::{ListParams, PostParams};

use super::Cluster;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_sets_server_fields_and_generate_name() {
    let c = Cluster::start().await;
    c.ok(&["create", "configmap", "plain", "--from-literal=a=1"]);
    let cm = c.json(&["configmap", "plain"]);
    let meta = &cm["metadata"];
    assert_eq!(meta["namespace"], "default");
    assert!(meta["uid"].as_str().unwrap().len() == 36);
    assert!(
        meta["resourceVersion"]
            .as_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            > 0
    );
    assert!(meta["creationTimestamp"].as_str().unwrap().ends_with('Z'));
    assert_eq!(cm["data"]["a"], "1");
    let out = c.ok_in(
        &["create", "-f", "-", "-o", "name"],
        Some("apiVersion: v1\nkind: ConfigMap\nmetadata: {generateName: gen-}\n"),
    );
    let name = out
        .trim()
        .strip_prefix("configmap/gen-")
        .expect("generated name");
    assert_eq!(name.len(), 5);
    let err = c.fails(&["create", "configmap", "plain"], None);
    assert!(
        err.contains("AlreadyExists") || err.contains("already exists"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespace_must_exist() {
    let c = Cluster::start().await;
    let err = c.fails(&["create", "configmap", "x", "-n", "nowhere"], None);
    assert!(err.contains("namespaces \"nowhere\" not found"), "{err}");
    c.ok(&["create", "namespace", "somewhere"]);
    c.ok(&["create", "configmap", "x", "-n", "somewhere"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn label_and_field_selectors() {
    let c = Cluster::start().await;
    for (name, labels) in [
        ("a", "tier=web,env=prod"),
        ("b", "tier=db,env=prod"),
        ("c", "tier=web"),
    ] {
        c.ok(&["create", "configmap", name]);
        let mut args = vec!["label", "configmap", name];
        args.extend(labels.split(','));
        c.ok(&args);
    }
    let names = |sel: &str| {
        let mut v: Vec<String> = c
            .ok(&[
                "get",
                "configmaps",
                "-l",
                sel,
                "-o",
                "jsonpath={.items[*].metadata.name}",
            ])
            .split_whitespace()
            .map(String::from)
            .collect();
        v.sort();
        v.join(",")
    };
    assert_eq!(names("tier=web"), "a,c");
    assert_eq!(names("tier==web,env=prod"), "a");
    assert_eq!(names("tier!=web"), "b");
    assert_eq!(names("tier in (db,web),env"), "a,b");
    assert_eq!(names("tier notin (db),tier"), "a,c");
    assert_eq!(names("tier,!env"), "c");
    let out = c.ok(&[
        "get",
        "configmaps",
        "--field-selector",
        "metadata.name=b",
        "-o",
        "name",
    ]);
    assert_eq!(out.trim(), "configmap/b");
    let err = c.fails(&["get", "configmaps", "-l", "tier in (web"], None);
    assert!(
        err.contains("unable to parse") || err.contains("BadRequest") || err.contains("invalid"),
        "{err}"
    );
    let err = c.fails(
        &["get", "configmaps", "--field-selector", "spec.nope=1"],
        None,
    );
    assert!(err.contains("field label not supported"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_pagination_with_limit_and_continue() {
    let c = Cluster::start().await;
    let api: Api<ConfigMap> = Api::namespaced(c.server.client().await.unwrap(), "default");
    for i in 0..7 {
        let cm: ConfigMap =
            serde_json::from_value(serde_json::json!({"metadata": {"name": format!("cm-{i}")}}))
                .unwrap();
        api.create(&PostParams::default(), &cm).await.unwrap();
    }
    let mut seen = Vec::new();
    let mut params = ListParams::default().limit(3);
    let mut pages = 0;
    loop {
        let page = api.list(&params).await.unwrap();
        pages += 1;
        assert!(page.items.len() <= 3);
        seen.extend(page.items.iter().map(|c| c.metadata.name.clone().unwrap()));
        match page.metadata.continue_ {
            Some(token) if !token.is_empty() => params = params.continue_token(&token),
            _ => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, (0..7).map(|i| format!("cm-{i}")).collect::<Vec<_>>());
    // kubectl pages too (--chunk-size).
    assert_eq!(
        c.ok(&["get", "cm", "--chunk-size=2", "-o", "name"])
            .lines()
            .count(),
        7
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn label_annotate_and_patch_types() {
    let c = Cluster::start().await;
    c.ok(&["create", "configmap", "p", "--from-literal=a=1"]);
    c.ok(&["label", "configmap", "p", "x=1"]);
    c.ok(&["annotate", "configmap", "p", "note=hello"]);
    c.ok(&[
        "patch",
        "configmap",
        "p",
        "--type",
        "merge",
        "-p",
        r#"{"data":{"b":"2"}}"#,
    ]);
    c.ok(&[
        "patch",
        "configmap",
        "p",
        "--type",
        "json",
        "-p",
        r#"[{"op":"remove","path":"/data/a"}]"#,
    ]);
    c.ok(&[
        "patch",
        "configmap",
        "p",
        "--type",
        "strategic",
        "-p",
        r#"{"data":{"c":"3"}}"#,
    ]);
    let cm = c.json(&["configmap", "p"]);
    assert_eq!(cm["metadata"]["labels"]["x"], "1");
    assert_eq!(cm["metadata"]["annotations"]["note"], "hello");
    assert_eq!(cm["data"], serde_json::json!({"b": "2", "c": "3"}));
    c.ok(&["label", "configmap", "p", "x-"]);
    assert!(
        c.json(&["configmap", "p"])["metadata"]["labels"]
            .get("x")
            .is_none()
    );
    let err = c.fails(
        &[
            "patch",
            "configmap",
            "p",
            "--type",
            "json",
            "-p",
            r#"[{"op":"test","path":"/data/b","value":"9"}]"#,
        ],
        None,
    );
    assert!(!err.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strategic_merge_patch_merges_pod_containers_by_name() {
    let c = Cluster::start().await;
    c.apply("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - {name: a, image: busybox:1}\n  - {name: b, image: busybox:1}\n");
    c.ok(&[
        "patch",
        "pod",
        "p",
        "-p",
        r#"{"spec":{"containers":[{"name":"b","image":"busybox:2"}]}}"#,
    ]);
    let pod = c.json(&["pod", "p"]);
    let images: Vec<&str> = pod["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["image"].as_str().unwrap())
        .collect();
    assert_eq!(images, vec!["busybox:1", "busybox:2"]);
    // Client-side apply of a changed manifest goes through a strategic merge patch too.
    c.apply("apiVersion: v1\nkind: Pod\nmetadata: {name: p, labels: {v: '2'}}\nspec:\n  containers:\n  - {name: a, image: busybox:3}\n  - {name: b, image: busybox:1}\n");
    let pod = c.json(&["pod", "p"]);
    assert_eq!(pod["metadata"]["labels"]["v"], "2");
    assert_eq!(pod["spec"]["containers"][0]["image"], "busybox:3");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn optimistic_concurrency_rejects_stale_updates() {
    let c = Cluster::start().await;
    let api: Api<ConfigMap> = Api::namespaced(c.server.client().await.unwrap(), "default");
    let cm: ConfigMap = serde_json::from_value(
        serde_json::json!({"metadata": {"name": "occ"}, "data": {"v": "0"}}),
    )
    .unwrap();
    let created = api.create(&PostParams::default(), &cm).await.unwrap();
    let mut first = created.clone();
    first.data = Some([("v".to_string(), "1".to_string())].into());
    let updated = api
        .replace("occ", &PostParams::default(), &first)
        .await
        .unwrap();
    assert_ne!(
        updated.metadata.resource_version,
        created.metadata.resource_version
    );
    let mut stale = created.clone();
    stale.data = Some([("v".to_string(), "2".to_string())].into());
    match api.replace("occ", &PostParams::default(), &stale).await {
        Err(kube::Error::Api(s)) => {
            assert_eq!(s.code, 409);
            assert_eq!(s.reason, "Conflict");
        }
        other => panic!("expected 409, got {other:?}"),
    }
    assert_eq!(api.get("occ").await.unwrap().data.unwrap()["v"], "1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_server_does_not_persist() {
    let c = Cluster::start().await;
    let out = c.ok(&[
        "create",
        "configmap",
        "dry",
        "--dry-run=server",
        "-o",
        "name",
    ]);
    assert_eq!(out.trim(), "configmap/dry");
    assert_eq!(c.ok(&["get", "configmaps", "-o", "name"]).trim(), "");
    c.ok(&["create", "configmap", "real"]);
    c.ok(&["label", "configmap", "real", "a=b", "--dry-run=server"]);
    assert!(
        c.json(&["configmap", "real"])["metadata"]
            .get("labels")
            .is_none()
    );
    c.ok(&["delete", "configmap", "real", "--dry-run=server"]);
    c.ok(&["get", "configmap", "real"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn builtin_kinds_are_served() {
    let c = Cluster::start().await;
    c.apply(
        "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\nstringData: {password: hunter2}\n---\napiVersion: v1\nkind: ServiceAccount\nmetadata: {name: sa}\n---\napiVersion: v1\nkind: Node\nmetadata: {name: node-1}\n---\napiVersion: coordination.k8s.io/v1\nkind: Lease\nmetadata: {name: l}\nspec: {holderIdentity: me}\n---\napiVersion: v1\nkind: Event\nmetadata: {name: e}\ninvolvedObject: {kind: Pod, name: p}\nreason: Tested\nmessage: hi\ntype: Normal\n---\napiVersion: events.k8s.io/v1\nkind: Event\nmetadata: {name: e2}\nregarding: {kind: Pod, name: p}\nreason: Tested\nnote: hi\ntype: Normal\nreportingController: x\nreportingInstance: y\naction: Test\neventTime: '2025-01-01T00:00:00.000000Z'\n",
    );
    let secret = c.json(&["secret", "s"]);
    assert_eq!(secret["data"]["password"], "aHVudGVyMg==");
    assert_eq!(secret["type"], "Opaque");
    assert!(secret.get("stringData").is_none());
    assert!(
        c.ok(&["get", "nodes", "-o", "name"])
            .contains("node/node-1")
    );
    assert_eq!(c.json(&["lease", "l"])["spec"]["holderIdentity"], "me");
    assert!(
        c.ok(&["get", "events.v1.events.k8s.io", "-o", "name"])
            .contains("e2")
    );
    assert!(c.ok(&["get", "events", "-o", "name"]).contains("event/e"));
}
