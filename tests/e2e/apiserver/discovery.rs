//! Discovery, OpenAPI and health, as kubectl uses them.

use super::{Cluster, with_widgets};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_and_health() {
    let c = Cluster::start().await;
    let version: serde_json::Value =
        serde_json::from_str(&c.ok(&["get", "--raw", "/version"])).unwrap();
    assert_eq!(
        (version["major"].as_str(), version["minor"].as_str()),
        (Some("1"), Some("33"))
    );
    for path in ["/healthz", "/livez", "/readyz"] {
        assert_eq!(c.ok(&["get", "--raw", path]), "ok");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_resources_lists_builtins_and_crds() {
    let c = with_widgets().await;
    let out = c.ok(&["api-resources"]);
    for needle in [
        "configmaps",
        "customresourcedefinitions",
        "leases",
        "pods",
        "widgets",
        "gadgets",
        "events.k8s.io",
    ] {
        assert!(out.contains(needle), "{needle} missing:\n{out}");
    }
    let widgets = out.lines().find(|l| l.starts_with("widgets")).unwrap();
    assert!(
        widgets.contains("wd")
            && widgets.contains("test.mk8.io/v1")
            && widgets.contains("true")
            && widgets.contains("Widget"),
        "{widgets}"
    );
    let raw: serde_json::Value =
        serde_json::from_str(&c.ok(&["get", "--raw", "/apis/test.mk8.io/v1"])).unwrap();
    let names: Vec<&str> = raw["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"widgets/status") && !names.contains(&"gadgets/status"),
        "{names:?}"
    );
    let core: serde_json::Value =
        serde_json::from_str(&c.ok(&["get", "--raw", "/api/v1"])).unwrap();
    assert!(
        core["resources"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["name"] == "pods/eviction")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_by_category_lists_every_kind_in_it() {
    let c = with_widgets().await;
    c.apply("apiVersion: test.mk8.io/v1\nkind: Widget\nmetadata: {name: w1}\nspec: {size: 1}\n---\napiVersion: test.mk8.io/v1\nkind: Gadget\nmetadata: {name: g1}\n");
    let out = c.ok(&["get", "mk8test", "-o", "name"]);
    assert!(
        out.contains("widget.test.mk8.io/w1") && out.contains("gadget.test.mk8.io/g1"),
        "{out}"
    );
    assert!(
        c.ok(&["get", "wd", "-o", "name"])
            .contains("widget.test.mk8.io/w1")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_shows_crd_fields() {
    let c = with_widgets().await;
    let out = c.ok(&["explain", "widgets.spec"]);
    assert!(
        out.contains("WidgetSpec is what the widget should be"),
        "{out}"
    );
    assert!(
        out.contains("size") && out.contains("How big the widget is"),
        "{out}"
    );
    let out = c.ok(&["explain", "widgets.spec.size"]);
    assert!(out.contains("integer"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crd_reports_established_and_deleting_it_unserves_the_resource() {
    let c = with_widgets().await;
    let crd = c.json(&["crd", "widgets.test.mk8.io"]);
    let conditions = crd["status"]["conditions"].as_array().unwrap();
    for t in ["NamesAccepted", "Established"] {
        assert!(
            conditions
                .iter()
                .any(|x| x["type"] == t && x["status"] == "True"),
            "{t}: {conditions:?}"
        );
    }
    assert_eq!(crd["status"]["acceptedNames"]["kind"], "Widget");
    c.ok(&[
        "wait",
        "--for=condition=Established",
        "crd/widgets.test.mk8.io",
        "--timeout=10s",
    ]);
    c.apply("apiVersion: test.mk8.io/v1\nkind: Widget\nmetadata: {name: w1}\nspec: {size: 1}\n");
    c.ok(&["delete", "crd", "widgets.test.mk8.io"]);
    let err = c.fails(&["get", "widgets"], None);
    assert!(
        err.contains("the server doesn't have a resource type \"widgets\"")
            || err.contains("could not find the requested resource"),
        "{err}"
    );
    // Re-creating the CRD does not resurrect the old objects.
    c.apply(super::WIDGET_CRD);
    assert_eq!(c.ok(&["get", "widgets", "-o", "name"]), "");
}
