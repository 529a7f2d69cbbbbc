//! `kubectl get` renders server-side Tables: CRD printer columns and built-in columns.

use super::with_widgets;

fn header(out: &str) -> Vec<String> {
    out.lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .map(String::from)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crd_printer_columns() {
    let c = with_widgets().await;
    c.apply("apiVersion: test.mk8.io/v1\nkind: Widget\nmetadata: {name: w1}\nspec: {size: 4}\n");
    c.ok(&["patch", "widget", "w1", "--subresource=status", "--type", "merge", "-p", r#"{"status":{"conditions":[{"type":"Synced","status":"False"},{"type":"Ready","status":"True"}]}}"#]);
    let out = c.ok(&["get", "widgets"]);
    assert_eq!(header(&out), vec!["NAME", "SIZE", "READY", "AGE"], "{out}");
    let row: Vec<&str> = out.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(&row[..3], &["w1", "4", "True"], "{out}");
    assert!(
        row[3].ends_with('s'),
        "age printed from the date column: {out}"
    );
    // A CRD without printer columns gets Name and Age.
    c.apply("apiVersion: test.mk8.io/v1\nkind: Gadget\nmetadata: {name: g1}\n");
    assert_eq!(header(&c.ok(&["get", "gadgets"])), vec!["NAME", "AGE"]);
    assert_eq!(
        header(&c.ok(&["get", "crds"])),
        vec!["NAME", "CREATED", "AT"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn builtin_columns() {
    let c = with_widgets().await;
    c.apply(concat!(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: a, image: x}, {name: b, image: y}]}\n---\n",
        "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ntype: kubernetes.io/tls\ndata: {tls.crt: eA==, tls.key: eA==}\n---\n",
        "apiVersion: v1\nkind: Node\nmetadata: {name: n1, labels: {node-role.kubernetes.io/control-plane: ''}}\n---\n",
        "apiVersion: coordination.k8s.io/v1\nkind: Lease\nmetadata: {name: l}\nspec: {holderIdentity: leader-1}\n",
    ));
    let cases: [(&[&str], &[&str], &str); 6] = [
        (
            &["get", "pods"],
            &["NAME", "READY", "STATUS", "RESTARTS", "AGE"],
            "0/2",
        ),
        (
            &["get", "secrets"],
            &["NAME", "TYPE", "DATA", "AGE"],
            "kubernetes.io/tls",
        ),
        (&["get", "configmaps"], &["NAME", "DATA", "AGE"], ""),
        (
            &["get", "nodes"],
            &["NAME", "STATUS", "ROLES", "AGE", "VERSION"],
            "control-plane",
        ),
        (&["get", "leases"], &["NAME", "HOLDER", "AGE"], "leader-1"),
        (&["get", "namespaces"], &["NAME", "STATUS", "AGE"], "Active"),
    ];
    c.ok(&["create", "configmap", "cm", "--from-literal=a=1"]);
    for (args, columns, needle) in cases {
        let out = c.ok(args);
        assert_eq!(header(&out), columns, "{out}");
        assert!(out.contains(needle), "{needle} missing: {out}");
    }
    let wide = c.ok(&["get", "pods", "-o", "wide"]);
    assert!(header(&wide).contains(&"NODE".to_string()), "{wide}");
    // Labels shown from the row's metadata object.
    c.ok(&["label", "secret", "s", "tier=web"]);
    assert!(
        c.ok(&["get", "secrets", "--show-labels"])
            .contains("tier=web")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_get_watch_streams_rows() {
    use std::io::BufRead;
    let c = with_widgets().await;
    c.apply("apiVersion: test.mk8.io/v1\nkind: Widget\nmetadata: {name: first}\nspec: {size: 1}\n");
    let mut child = c
        .command(&["get", "widgets", "--watch", "--output-watch-events"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("kubectl get --watch");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let wait_for = |needle: &str| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let line = rx
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no line with {needle}"));
            if line.contains(needle) {
                return line;
            }
        }
    };
    let initial = wait_for("first");
    assert!(initial.starts_with("ADDED"), "{initial}");
    c.apply(
        "apiVersion: test.mk8.io/v1\nkind: Widget\nmetadata: {name: second}\nspec: {size: 7}\n",
    );
    let added = wait_for("second");
    let cells: Vec<&str> = added.split_whitespace().collect();
    assert_eq!(&cells[..3], &["ADDED", "second", "7"], "{added}");
    c.ok(&["delete", "widget", "second", "--wait=false"]);
    assert!(wait_for("second").starts_with("DELETED"));
    let _ = child.kill();
    let _ = child.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn table_rows_carry_metadata_or_the_whole_object() {
    let c = with_widgets().await;
    c.apply("apiVersion: test.mk8.io/v1\nkind: Widget\nmetadata: {name: t1, labels: {a: b}}\nspec: {size: 2}\n");
    let accept = [(
        "accept",
        "application/json;as=Table;v=v1;g=meta.k8s.io,application/json",
    )];
    let path = "/apis/test.mk8.io/v1/namespaces/default/widgets";
    let (code, table) = c.raw_with("GET", path, &accept, Vec::new()).await;
    assert_eq!(code, 200);
    assert_eq!(
        (table["kind"].as_str(), table["apiVersion"].as_str()),
        (Some("Table"), Some("meta.k8s.io/v1"))
    );
    let names: Vec<&str> = table["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["Name", "Size", "Ready", "Age"]);
    let row = &table["rows"][0];
    assert_eq!(row["cells"][0], "t1");
    assert_eq!(row["cells"][1], 2);
    assert_eq!(row["object"]["kind"], "PartialObjectMetadata");
    assert_eq!(row["object"]["metadata"]["labels"]["a"], "b");
    assert!(row["object"].get("spec").is_none());
    let (_, full) = c
        .raw_with(
            "GET",
            &format!("{path}?includeObject=Object"),
            &accept,
            Vec::new(),
        )
        .await;
    assert_eq!(full["rows"][0]["object"]["spec"]["size"], 2);
    // The legacy /watch/ path prefix streams the same events as ?watch=true.
    let (code, _) = c
        .raw_with(
            "GET",
            "/apis/test.mk8.io/v1/watch/namespaces/default/widgets?timeoutSeconds=1",
            &[],
            Vec::new(),
        )
        .await;
    assert_eq!(code, 200);
}
