use super::*;

fn yaml(text: &str) -> Value {
    serde_yaml::from_str(text).unwrap()
}

fn owner(namespace: &str, name: &str) -> Owner {
    Owner {
        namespace: namespace.into(),
        name: name.into(),
    }
}

/// A Cluster's kubeconfig as the operator stores it.
fn incoming(server: &str) -> Value {
    yaml(&format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: default\n  cluster:\n    server: {server}\n    certificate-authority-data: Q0E=\nusers:\n- name: default\n  user:\n    client-certificate-data: Q0VSVA==\n    client-key-data: S0VZ\ncontexts:\n- name: default\n  context:\n    cluster: default\n    user: default\ncurrent-context: default\n"
    ))
}

/// A person's kubeconfig with one context of their own named `work`.
fn personal() -> Value {
    yaml(
        "apiVersion: v1\nkind: Config\npreferences: {}\nclusters:\n- name: work\n  cluster:\n    server: https://work.example:6443\nusers:\n- name: work\n  user:\n    token: abc\ncontexts:\n- name: work\n  context:\n    cluster: work\n    user: work\n    namespace: team\ncurrent-context: work\n",
    )
}

fn names(doc: &Value, section_name: &str) -> Vec<String> {
    section(doc, section_name)
        .iter()
        .filter_map(|e| entry_name(e).map(str::to_string))
        .collect()
}

#[test]
fn a_merge_adds_marked_entries_and_keeps_everything_else() {
    let mut doc = personal();
    let merged = merge(
        &mut doc,
        &incoming("https://edge:6443"),
        &owner("fleet", "edge"),
        "edge",
        OnConflict::Refuse,
        false,
    )
    .unwrap();
    assert_eq!(
        merged,
        Merged {
            context: "edge".into(),
            changed: true
        }
    );
    for section_name in ["clusters", "users", "contexts"] {
        assert_eq!(names(&doc, section_name), ["work", "edge"]);
    }
    assert_eq!(
        doc["current-context"], "work",
        "not switched without --set-current"
    );
    assert_eq!(doc["preferences"], yaml("{}"));
    let cluster = &section(&doc, "clusters")[1]["cluster"];
    assert_eq!(cluster["server"], "https://edge:6443");
    assert_eq!(
        owner_of(&section(&doc, "clusters")[1], "cluster"),
        Some(owner("fleet", "edge"))
    );
    let context = &section(&doc, "contexts")[1]["context"];
    assert_eq!(
        (&context["cluster"], &context["user"]),
        (&"edge".into(), &"edge".into())
    );
}

#[test]
fn merging_the_same_cluster_again_changes_nothing_and_refreshes_a_changed_entry() {
    let mut doc = personal();
    let edge = owner("fleet", "edge");
    merge(
        &mut doc,
        &incoming("https://edge:6443"),
        &edge,
        "edge",
        OnConflict::Refuse,
        true,
    )
    .unwrap();
    let again = merge(
        &mut doc,
        &incoming("https://edge:6443"),
        &edge,
        "edge",
        OnConflict::Refuse,
        true,
    )
    .unwrap();
    assert!(!again.changed);
    let moved = merge(
        &mut doc,
        &incoming("https://edge2:6443"),
        &edge,
        "edge",
        OnConflict::Refuse,
        true,
    )
    .unwrap();
    assert!(moved.changed, "mk8's own entry is refreshed in place");
    assert_eq!(names(&doc, "clusters"), ["work", "edge"]);
    assert_eq!(
        section(&doc, "clusters")[1]["cluster"]["server"],
        "https://edge2:6443"
    );
}

#[test]
fn a_same_named_entry_of_someone_else_is_refused_replaced_or_renamed_around() {
    let mut doc = personal();
    let edge = owner("fleet", "edge");
    let refused = merge(
        &mut doc,
        &incoming("https://edge:6443"),
        &edge,
        "work",
        OnConflict::Refuse,
        false,
    );
    let err = refused.unwrap_err();
    assert_eq!(
        err,
        Problem::Conflict {
            kind: "cluster",
            name: "work".into(),
            whose: "mk8 did not add".into()
        }
    );
    assert!(err.to_string().contains("--force"), "{err}");
    assert_eq!(doc, personal(), "a refused merge changes nothing");

    let renamed = merge(
        &mut doc,
        &incoming("https://edge:6443"),
        &edge,
        "work",
        OnConflict::Rename,
        false,
    )
    .unwrap();
    assert_eq!(renamed.context, "work-2");
    assert_eq!(
        section(&doc, "users")[0]["user"]["token"],
        "abc",
        "the person's entry is untouched"
    );

    let mut doc = personal();
    merge(
        &mut doc,
        &incoming("https://edge:6443"),
        &edge,
        "work",
        OnConflict::Replace,
        false,
    )
    .unwrap();
    assert_eq!(names(&doc, "clusters"), ["work"]);
    assert_eq!(
        section(&doc, "clusters")[0]["cluster"]["server"],
        "https://edge:6443"
    );
}

#[test]
fn an_entry_mk8_added_for_another_cluster_is_a_conflict_too() {
    let mut doc = empty();
    merge(
        &mut doc,
        &incoming("https://a:6443"),
        &owner("team-a", "edge"),
        "edge",
        OnConflict::Refuse,
        false,
    )
    .unwrap();
    let err = merge(
        &mut doc,
        &incoming("https://b:6443"),
        &owner("team-b", "edge"),
        "edge",
        OnConflict::Refuse,
        false,
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("mk8 added for the Cluster team-a/edge"),
        "{err}"
    );
}

#[test]
fn remove_takes_out_only_what_mk8_added_for_that_cluster() {
    let mut doc = personal();
    merge(
        &mut doc,
        &incoming("https://edge:6443"),
        &owner("fleet", "edge"),
        "edge",
        OnConflict::Refuse,
        true,
    )
    .unwrap();
    merge(
        &mut doc,
        &incoming("https://core:6443"),
        &owner("fleet", "core"),
        "core",
        OnConflict::Refuse,
        false,
    )
    .unwrap();
    let removed = remove(&mut doc, None, "edge").unwrap();
    assert_eq!(
        removed,
        [
            "cluster edge",
            "user edge",
            "context edge",
            "current-context"
        ]
    );
    for section_name in ["clusters", "users", "contexts"] {
        assert_eq!(names(&doc, section_name), ["work", "core"]);
    }
    assert_eq!(
        doc["current-context"], "",
        "the removed context is no longer current"
    );
    assert_eq!(
        remove(&mut doc, None, "edge").unwrap_err(),
        Problem::NotFound("edge".into())
    );
    assert_eq!(
        remove(&mut doc, None, "work").unwrap_err(),
        Problem::NotFound("work".into()),
        "a person's own entry is never removed"
    );
}

#[test]
fn two_clusters_of_one_name_need_a_namespace() {
    let mut doc = empty();
    merge(
        &mut doc,
        &incoming("https://a:6443"),
        &owner("team-a", "edge"),
        "edge",
        OnConflict::Refuse,
        false,
    )
    .unwrap();
    merge(
        &mut doc,
        &incoming("https://b:6443"),
        &owner("team-b", "edge"),
        "edge-b",
        OnConflict::Refuse,
        false,
    )
    .unwrap();
    let err = use_context(&mut doc, None, "edge").unwrap_err();
    assert!(
        err.to_string().contains("team-a/edge, team-b/edge"),
        "{err}"
    );
    assert_eq!(
        use_context(&mut doc, Some("team-b"), "edge").unwrap(),
        "edge-b"
    );
    assert_eq!(doc["current-context"], "edge-b");
}

#[test]
fn a_kubeconfig_without_a_usable_context_is_refused() {
    let mut doc = empty();
    let broken = yaml(
        "apiVersion: v1\nkind: Config\ncontexts:\n- name: x\n  context:\n    cluster: missing\n    user: missing\n",
    );
    let err = merge(
        &mut doc,
        &broken,
        &owner("fleet", "edge"),
        "edge",
        OnConflict::Refuse,
        false,
    )
    .unwrap_err();
    assert_eq!(err, Problem::NoContext(owner("fleet", "edge")));
    let mut not_config = yaml("clusters: 3");
    assert!(matches!(
        merge(
            &mut not_config,
            &incoming("https://a"),
            &owner("fleet", "edge"),
            "edge",
            OnConflict::Refuse,
            false
        ),
        Err(Problem::NotAKubeconfig(_))
    ));
}

#[test]
fn other_extensions_on_an_entry_are_kept() {
    let mut with_ext = incoming("https://edge:6443");
    with_ext["clusters"][0]["cluster"]["extensions"] =
        yaml("- name: example.com/info\n  extension: {x: 1}");
    let mut doc = empty();
    merge(
        &mut doc,
        &with_ext,
        &owner("fleet", "edge"),
        "edge",
        OnConflict::Refuse,
        false,
    )
    .unwrap();
    let extensions = section(&doc, "clusters")[0]["cluster"]["extensions"]
        .as_sequence()
        .unwrap()
        .clone();
    assert_eq!(extensions.len(), 2);
    assert_eq!(extensions[0]["name"], "example.com/info");
}
