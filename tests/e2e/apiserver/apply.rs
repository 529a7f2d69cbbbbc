//! Client-side and server-side apply through kubectl: managedFields, conflicts, force, field removal.

use super::with_widgets;

const WIDGET_V1: &str = "apiVersion: test.mk8.io/v1\nkind: Widget\nmetadata: {name: w, labels: {a: '1'}}\nspec:\n  size: 2\n  color: red\n  ports:\n  - {name: http, port: 80}\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_side_apply_creates_then_updates() {
    let c = with_widgets().await;
    assert!(c.apply(WIDGET_V1).contains("widget.test.mk8.io/w created"));
    let out = c.apply(&WIDGET_V1.replace("size: 2", "size: 3"));
    assert!(out.contains("configured"), "{out}");
    assert_eq!(c.json(&["widget", "w"])["spec"]["size"], 3);
    assert!(
        c.apply(&WIDGET_V1.replace("size: 2", "size: 3"))
            .contains("unchanged")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_side_apply_tracks_managers_and_conflicts() {
    let c = with_widgets().await;
    c.ok_in(
        &["apply", "--server-side", "--field-manager=alice", "-f", "-"],
        Some(WIDGET_V1),
    );
    let w = c.json(&["widget", "w", "--show-managed-fields"]);
    let managed = w["metadata"]["managedFields"].as_array().unwrap();
    let alice = managed
        .iter()
        .find(|m| m["manager"] == "alice")
        .expect("alice entry");
    assert_eq!(alice["operation"], "Apply");
    assert_eq!(alice["fieldsType"], "FieldsV1");
    assert!(
        alice["fieldsV1"]["f:spec"]["f:ports"]
            .get("k:{\"name\":\"http\"}")
            .is_some(),
        "{alice}"
    );

    // Bob sets a field alice owns to another value: conflict naming the field and the owner.
    let bob = "apiVersion: test.mk8.io/v1\nkind: Widget\nmetadata: {name: w}\nspec:\n  size: 5\n";
    let err = c.fails(
        &["apply", "--server-side", "--field-manager=bob", "-f", "-"],
        Some(bob),
    );
    assert!(
        err.contains("conflict") && err.contains("alice") && err.contains(".spec.size"),
        "{err}"
    );
    assert_eq!(c.json(&["widget", "w"])["spec"]["size"], 2);

    // --force-conflicts takes ownership.
    c.ok_in(
        &[
            "apply",
            "--server-side",
            "--field-manager=bob",
            "--force-conflicts",
            "-f",
            "-",
        ],
        Some(bob),
    );
    let w = c.json(&["widget", "w", "--show-managed-fields"]);
    assert_eq!(w["spec"]["size"], 5);
    let managed = w["metadata"]["managedFields"].as_array().unwrap();
    let alice = managed.iter().find(|m| m["manager"] == "alice").unwrap();
    assert!(
        alice["fieldsV1"]["f:spec"].get("f:size").is_none(),
        "alice lost spec.size: {alice}"
    );
    assert!(
        managed
            .iter()
            .any(|m| m["manager"] == "bob" && m["fieldsV1"]["f:spec"].get("f:size").is_some())
    );

    // Alice stops sending color and one port: they go (no one else owns them); a merge-keyed list
    // entry bob added survives alice's apply.
    c.ok_in(&["apply", "--server-side", "--field-manager=bob", "-f", "-"], Some("apiVersion: test.mk8.io/v1\nkind: Widget\nmetadata: {name: w}\nspec:\n  size: 5\n  ports:\n  - {name: admin, port: 9000}\n"));
    c.ok_in(&["apply", "--server-side", "--field-manager=alice", "-f", "-"], Some("apiVersion: test.mk8.io/v1\nkind: Widget\nmetadata: {name: w, labels: {a: '1'}}\nspec: {}\n"));
    let w = c.json(&["widget", "w"]);
    assert!(w["spec"].get("color").is_none(), "{w}");
    let ports: Vec<&str> = w["spec"]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(ports, vec!["admin"]);
    assert_eq!(w["spec"]["size"], 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_side_apply_merges_conditions_by_type_on_status() {
    let c = with_widgets().await;
    c.ok_in(&["apply", "--server-side", "-f", "-"], Some(WIDGET_V1));
    let status = |t: &str, s: &str| {
        format!(
            "apiVersion: test.mk8.io/v1\nkind: Widget\nmetadata: {{name: w}}\nstatus:\n  conditions:\n  - {{type: {t}, status: '{s}'}}\n"
        )
    };
    c.ok_in(
        &[
            "apply",
            "--server-side",
            "--subresource=status",
            "--field-manager=ctl-a",
            "-f",
            "-",
        ],
        Some(&status("Ready", "True")),
    );
    c.ok_in(
        &[
            "apply",
            "--server-side",
            "--subresource=status",
            "--field-manager=ctl-b",
            "-f",
            "-",
        ],
        Some(&status("Synced", "False")),
    );
    let w = c.json(&["widget", "w"]);
    let types: Vec<&str> = w["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, vec!["Ready", "Synced"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_server_apply_is_not_persisted() {
    let c = with_widgets().await;
    c.ok_in(&["apply", "--dry-run=server", "-f", "-"], Some(WIDGET_V1));
    c.ok_in(
        &["apply", "--server-side", "--dry-run=server", "-f", "-"],
        Some(WIDGET_V1),
    );
    assert_eq!(c.ok(&["get", "widgets", "-o", "name"]), "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switching_from_client_side_to_server_side_apply_does_not_conflict() {
    let c = with_widgets().await;
    c.apply(WIDGET_V1);
    c.ok_in(
        &["apply", "--server-side", "-f", "-"],
        Some(&WIDGET_V1.replace("size: 2", "size: 4")),
    );
    let w = c.json(&["widget", "w", "--show-managed-fields"]);
    assert_eq!(w["spec"]["size"], 4);
    let managers: Vec<&str> = w["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["manager"].as_str().unwrap())
        .collect();
    assert!(
        !managers.contains(&"kubectl-client-side-apply"),
        "ownership migrated: {managers:?}"
    );
}
