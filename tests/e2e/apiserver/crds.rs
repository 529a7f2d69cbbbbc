//! The upstream ArgoCD and ClusterProfile CRDs install and validate objects like kube-apiserver.

use super::Cluster;

async fn upstream() -> Cluster {
    let c = Cluster::start().await;
    for f in [
        "argocd-application-crd.yaml",
        "argocd-appproject-crd.yaml",
        "clusterprofile-crd.yaml",
    ] {
        c.install_upstream_crd(f);
    }
    c
}

const APPLICATION: &str = r#"
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata: {name: guestbook}
spec:
  project: default
  source:
    repoURL: https://github.com/argoproj/argocd-example-apps.git
    targetRevision: HEAD
    path: guestbook
  destination:
    server: https://kubernetes.default.svc
    namespace: guestbook
  syncPolicy:
    automated: {prune: true}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn argocd_application_valid_is_accepted_invalid_is_rejected() {
    let c = upstream().await;
    c.apply(APPLICATION);
    let app = c.json(&["applications.argoproj.io", "guestbook"]);
    assert_eq!(app["spec"]["source"]["path"], "guestbook");
    // ArgoCD writes status through the main resource (no status subresource).
    c.ok(&[
        "patch",
        "applications.argoproj.io",
        "guestbook",
        "--type",
        "merge",
        "-p",
        r#"{"status":{"sync":{"status":"Synced"}}}"#,
    ]);
    assert_eq!(
        c.json(&["applications.argoproj.io", "guestbook"])["status"]["sync"]["status"],
        "Synced"
    );

    let missing_destination = APPLICATION.replace("  destination:\n    server: https://kubernetes.default.svc\n    namespace: guestbook\n", "").replace("guestbook}", "broken}");
    let err = c.fails(&["apply", "-f", "-"], Some(&missing_destination));
    assert!(
        err.contains("spec.destination") && err.contains("Required value"),
        "{err}"
    );

    let wrong_type = APPLICATION
        .replace("automated: {prune: true}", "automated: {prune: maybe}")
        .replace("guestbook}", "typed}");
    let err = c.fails(&["apply", "-f", "-"], Some(&wrong_type));
    assert!(
        err.contains("spec.syncPolicy.automated.prune") && err.contains("boolean"),
        "{err}"
    );

    // Unknown fields are pruned silently without strict validation, and rejected with it (kubectl default).
    let unknown = APPLICATION
        .replace("project: default", "project: default\n  bogusField: 1")
        .replace("guestbook}", "unknown}");
    let err = c.fails(&["apply", "-f", "-"], Some(&unknown));
    assert!(err.contains("unknown field \"spec.bogusField\""), "{err}");
    c.ok_in(&["apply", "--validate=false", "-f", "-"], Some(&unknown));
    assert!(
        c.json(&["applications.argoproj.io", "unknown"])["spec"]
            .get("bogusField")
            .is_none()
    );
}

const PROFILE: &str = "apiVersion: multicluster.x-k8s.io/v1alpha1\nkind: ClusterProfile\nmetadata: {name: member-1}\nspec:\n  displayName: Member 1\n  clusterManager: {name: mk8}\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_profile_cel_immutability_and_required_fields() {
    let c = upstream().await;
    c.apply(PROFILE);
    // Changing other fields is fine.
    c.apply(&PROFILE.replace("Member 1", "Member One"));
    // spec.clusterManager is immutable (transition rule with oldSelf).
    let err = c.fails(
        &["apply", "-f", "-"],
        Some(&PROFILE.replace("{name: mk8}", "{name: someone-else}")),
    );
    assert!(
        err.contains("spec.clusterManager") && err.contains("ClusterManager is immutable"),
        "{err}"
    );
    assert_eq!(
        c.json(&["clusterprofiles", "member-1"])["spec"]["clusterManager"]["name"],
        "mk8"
    );
    // The rule does not run on create: another profile can pick any manager.
    c.apply(
        &PROFILE
            .replace("member-1", "member-2")
            .replace("{name: mk8}", "{name: other}"),
    );
    // Required fields.
    let err = c.fails(&["apply", "-f", "-"], Some("apiVersion: multicluster.x-k8s.io/v1alpha1\nkind: ClusterProfile\nmetadata: {name: member-3}\nspec: {displayName: x}\n"));
    assert!(err.contains("spec.clusterManager: Required value"), "{err}");
    // Status goes through the status subresource only.
    c.ok(&[
        "patch",
        "clusterprofiles",
        "member-1",
        "--subresource=status",
        "--type",
        "merge",
        "-p",
        r#"{"status":{"version":{"kubernetes":"1.33"}}}"#,
    ]);
    let p = c.json(&["clusterprofiles", "member-1"]);
    assert_eq!(p["status"]["version"]["kubernetes"], "1.33");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn widget_schema_defaults_enum_bounds_and_cel() {
    let c = super::with_widgets().await;
    c.apply("apiVersion: test.mk8.io/v1\nkind: Widget\nmetadata: {name: ok}\nspec: {size: 3, owner: me}\n");
    assert_eq!(
        c.json(&["widget", "ok"])["spec"]["maxSize"],
        10,
        "default applied"
    );
    let cases = [
        (
            "spec: {size: 0}",
            "spec.size",
            "should be greater than or equal to 1",
        ),
        (
            "spec: {size: 1, color: pink}",
            "spec.color",
            "Unsupported value: \"pink\"",
        ),
        (
            "spec: {size: 11}",
            "spec.size",
            "size must not exceed maxSize",
        ),
        (
            "spec: {size: 'big'}",
            "spec.size",
            "must be of type integer",
        ),
        (
            "spec: {size: 1, ports: [{name: a}, {name: a}]}",
            "spec.ports[1]",
            "Duplicate value",
        ),
    ];
    for (spec, field, message) in cases {
        let err = c.fails(
            &["apply", "-f", "-"],
            Some(&format!(
                "apiVersion: test.mk8.io/v1\nkind: Widget\nmetadata: {{name: bad}}\n{spec}\n"
            )),
        );
        assert!(
            err.contains(field) && err.contains(message),
            "{spec}: {err}"
        );
        assert!(err.contains("is invalid"), "{err}");
    }
    let err = c.fails(&["apply", "-f", "-"], Some("apiVersion: test.mk8.io/v1\nkind: Widget\nmetadata: {name: ok}\nspec: {size: 3, owner: you}\n"));
    assert!(
        err.contains("spec.owner") && err.contains("owner is immutable"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn defaults_apply_on_read_after_the_crd_changes() {
    let c = super::with_widgets().await;
    c.apply("apiVersion: test.mk8.io/v1\nkind: Widget\nmetadata: {name: old}\nspec: {size: 1}\n");
    assert!(c.json(&["widget", "old"])["spec"].get("color").is_none());
    c.apply(&super::WIDGET_CRD.replacen(
        "enum: [red, green, blue]",
        "enum: [red, green, blue]\n                default: green",
        1,
    ));
    assert_eq!(c.json(&["widget", "old"])["spec"]["color"], "green");
}
