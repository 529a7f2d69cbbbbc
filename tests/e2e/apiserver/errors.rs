//! Bad input gets the status codes and `Status` bodies kube-apiserver sends, and never kills the server.

use super::with_widgets;

const CM_PATH: &str = "/api/v1/namespaces/default/configmaps";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_kubernetes_status_codes() {
    let c = with_widgets().await;
    let status = |body: &serde_json::Value, code: u16, reason: &str| {
        assert_eq!(body["kind"], "Status", "{body}");
        assert_eq!(body["status"], "Failure");
        assert_eq!(body["code"], code, "{body}");
        assert_eq!(body["reason"], reason, "{body}");
    };
    let (code, body) = c
        .raw(
            "POST",
            CM_PATH,
            "application/json",
            b"{\"metadata\": {".to_vec(),
        )
        .await;
    assert_eq!(code, 400);
    status(&body, 400, "BadRequest");

    let (code, body) = c
        .raw(
            "POST",
            CM_PATH,
            "application/yaml",
            b"metadata: [unclosed".to_vec(),
        )
        .await;
    assert_eq!(code, 400);
    status(&body, 400, "BadRequest");

    let (code, body) = c
        .raw(
            "POST",
            CM_PATH,
            "application/json",
            br#"{"apiVersion":"v1","kind":"Secret","metadata":{"name":"x"}}"#.to_vec(),
        )
        .await;
    assert_eq!(code, 400, "{body}");
    assert!(body["message"].as_str().unwrap().contains("kind"));

    let (code, body) = c
        .raw(
            "POST",
            CM_PATH,
            "application/json",
            br#"{"apiVersion":"apps/v1","kind":"ConfigMap","metadata":{"name":"x"}}"#.to_vec(),
        )
        .await;
    assert_eq!(code, 400, "{body}");

    let (code, body) = c
        .raw("GET", "/apis/nope.example.com/v1/things", "", Vec::new())
        .await;
    assert_eq!(code, 404);
    status(&body, 404, "NotFound");

    let (code, body) = c
        .raw(
            "GET",
            "/api/v1/namespaces/default/configmaps/missing",
            "",
            Vec::new(),
        )
        .await;
    status(&body, 404, "NotFound");
    assert_eq!(code, 404);
    assert_eq!(body["details"]["name"], "missing");
    assert_eq!(body["message"], "configmaps \"missing\" not found");

    let (code, body) = c
        .raw("PUT", CM_PATH, "application/json", b"{}".to_vec())
        .await;
    assert_eq!(code, 405);
    status(&body, 405, "MethodNotAllowed");

    let big = format!(
        "{{\"metadata\":{{\"name\":\"big\"}},\"data\":{{\"x\":\"{}\"}}}}",
        "a".repeat(3 * 1024 * 1024 + 10)
    );
    let (code, body) = c
        .raw("POST", CM_PATH, "application/json", big.into_bytes())
        .await;
    assert_eq!(code, 413);
    status(&body, 413, "RequestEntityTooLarge");

    c.ok(&["create", "configmap", "target"]);
    let (code, body) = c
        .raw(
            "PATCH",
            &format!("{CM_PATH}/target"),
            "text/plain",
            b"{}".to_vec(),
        )
        .await;
    assert_eq!(code, 415);
    status(&body, 415, "UnsupportedMediaType");

    let (code, body) = c
        .raw(
            "GET",
            &format!("{CM_PATH}?labelSelector=a%20in%20(b"),
            "",
            Vec::new(),
        )
        .await;
    assert_eq!(code, 400);
    status(&body, 400, "BadRequest");

    let (code, body) = c
        .raw(
            "POST",
            CM_PATH,
            "application/json",
            br#"{"metadata":{"name":"target"}}"#.to_vec(),
        )
        .await;
    assert_eq!(code, 409);
    status(&body, 409, "AlreadyExists");

    let (code, body) = c.raw("POST", "/apis/test.mk8.io/v1/namespaces/default/widgets", "application/json", br#"{"apiVersion":"test.mk8.io/v1","kind":"Widget","metadata":{"name":"w"},"spec":{"size":0,"color":"pink"}}"#.to_vec()).await;
    assert_eq!(code, 422);
    status(&body, 422, "Invalid");
    assert_eq!(body["details"]["kind"], "Widget");
    assert_eq!(body["details"]["group"], "test.mk8.io");
    let causes = body["details"]["causes"].as_array().unwrap();
    assert!(
        causes
            .iter()
            .any(|x| x["field"] == "spec.size" && x["reason"] == "FieldValueInvalid"),
        "{causes:?}"
    );
    assert!(
        causes
            .iter()
            .any(|x| x["field"] == "spec.color" && x["reason"] == "FieldValueNotSupported"),
        "{causes:?}"
    );
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("Widget.test.mk8.io \"w\" is invalid: ["),
        "{body}"
    );

    // The server is still healthy after all of that.
    let (code, _) = c.raw("GET", "/readyz", "", Vec::new()).await;
    assert_eq!(code, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fuzz_corpus_inputs_are_answered_without_crashing() {
    let c = with_widgets().await;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-corpus/apiserver");
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .expect("corpus directory")
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    assert!(!entries.is_empty());
    for path in entries {
        let body = std::fs::read(&path).unwrap();
        for (method, target, ct) in [
            ("POST", CM_PATH.to_string(), "application/json"),
            (
                "POST",
                "/apis/test.mk8.io/v1/namespaces/default/widgets".to_string(),
                "application/yaml",
            ),
            (
                "PATCH",
                "/apis/test.mk8.io/v1/namespaces/default/widgets/w".to_string(),
                "application/apply-patch+yaml",
            ),
            (
                "PATCH",
                format!("{CM_PATH}/x"),
                "application/strategic-merge-patch+json",
            ),
            (
                "PATCH",
                format!("{CM_PATH}/x"),
                "application/json-patch+json",
            ),
        ] {
            let (code, _) = c
                .raw(
                    method,
                    &format!("{target}?fieldManager=fuzz"),
                    ct,
                    body.clone(),
                )
                .await;
            assert!(
                code < 500,
                "{} {target} with {} answered {code}",
                method,
                path.display()
            );
        }
    }
}
