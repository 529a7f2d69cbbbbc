use std::path::PathBuf;

use super::*;
use crate::providers::rke2::artifacts::VerifiedFile;

fn release() -> VerifiedRelease {
    VerifiedRelease {
        files: [
            "sha256sum-amd64.txt",
            "rke2.linux-amd64.tar.gz",
            "install.sh",
        ]
        .iter()
        .enumerate()
        .map(|(i, name)| VerifiedFile {
            name: name.to_string(),
            path: PathBuf::from(format!("/cache/sha256/{i}")),
            sha256: format!("{i}").repeat(64),
            size: 10,
        })
        .collect(),
    }
}

fn node(name: &str, role: Role) -> DesiredNode {
    DesiredNode {
        name: name.into(),
        role,
        config_yaml: format!("token: t\nnode-name: {name}\n"),
        registration: None,
    }
}

fn fleet() -> Vec<DesiredNode> {
    vec![
        node("s1", Role::Server),
        node("s2", Role::Server),
        node("s3", Role::Server),
        node("a1", Role::Agent),
        node("a2", Role::Agent),
    ]
}

fn kinds(steps: &[Step]) -> Vec<&'static str> {
    steps.iter().map(|s| s.kind.name()).collect()
}

/// The markers a node would hold after finishing `upto` steps of `plan`.
fn markers_after(plan: &NodePlan, upto: usize) -> BTreeMap<String, String> {
    plan.prepare
        .iter()
        .chain(&plan.join)
        .take(upto)
        .map(|s| (s.kind.name().to_string(), s.digest.clone()))
        .collect()
}

#[test]
fn a_fresh_fleet_does_every_step_servers_one_by_one_then_agents() {
    let plan = build(&fleet(), &Observed::new(), &release(), "v1.33.1+rke2r1", 3);
    for n in &plan.nodes {
        assert_eq!(
            kinds(&n.prepare),
            ["preflight", "upload", "config", "install"]
        );
        assert_eq!(kinds(&n.join), ["start", "ready"]);
    }
    let waves: Vec<(Vec<&str>, usize)> = plan
        .waves
        .iter()
        .map(|w| (w.nodes.iter().map(String::as_str).collect(), w.parallel))
        .collect();
    assert_eq!(
        waves,
        [
            (vec!["s1"], 1),
            (vec!["s2"], 1),
            (vec!["s3"], 1),
            (vec!["a1", "a2"], 3)
        ]
    );
}

#[test]
fn finished_steps_are_not_planned_again() {
    let fresh = build(&fleet(), &Observed::new(), &release(), "v1.33.1+rke2r1", 3);
    let mut observed = Observed::new();
    observed.insert("s1".into(), markers_after(&fresh.nodes[0], 6));
    observed.insert("s2".into(), markers_after(&fresh.nodes[1], 3));
    let plan = build(&fleet(), &observed, &release(), "v1.33.1+rke2r1", 3);
    assert!(plan.nodes[0].is_done());
    assert_eq!(kinds(&plan.nodes[1].prepare), ["install"]);
    assert_eq!(kinds(&plan.nodes[1].join), ["start", "ready"]);
    assert_eq!(plan.nodes[2].prepare.len(), 4);
}

#[test]
fn a_changed_config_redoes_config_and_everything_after_it() {
    let fresh = build(&fleet(), &Observed::new(), &release(), "v1.33.1+rke2r1", 3);
    let mut observed = Observed::new();
    observed.insert("a1".into(), markers_after(&fresh.nodes[3], 6));
    let mut changed = fleet();
    changed[3].config_yaml.push_str("node-label: [x=y]\n");
    let plan = build(&changed, &observed, &release(), "v1.33.1+rke2r1", 3);
    assert_eq!(kinds(&plan.nodes[3].prepare), ["config", "install"]);
    // The node was ready: it is drained before the restart and uncordoned after it.
    assert_eq!(
        kinds(&plan.nodes[3].join),
        ["drain", "start", "ready", "uncordon"]
    );
    // A new version redoes the upload too.
    let plan = build(&fleet(), &observed, &release(), "v1.33.2+rke2r1", 3);
    assert_eq!(
        kinds(&plan.nodes[3].prepare),
        ["upload", "config", "install"]
    );
}

#[test]
fn steps_carry_quoted_commands_and_the_install_contract() {
    let mut nodes = fleet();
    nodes[3].config_yaml = "node-name: \"x'; touch /tmp/pwned\"\n".into();
    let plan = build(&nodes, &Observed::new(), &release(), "v1.33.1+rke2r1", 3);
    let agent = &plan.nodes[3];
    let Action::Run(install) = &agent.prepare[3].action else {
        panic!("install runs a script")
    };
    let rendered = install.render();
    assert!(
        rendered.ends_with(
            "mk8-install env INSTALL_RKE2_ARTIFACT_PATH=/var/lib/rancher/mk8/artifacts/v1.33.1+rke2r1 \
             INSTALL_RKE2_TYPE=agent INSTALL_RKE2_VERSION=v1.33.1+rke2r1 INSTALL_RKE2_TAR_PREFIX=/usr/local \
             INSTALL_RKE2_METHOD=tar sh /var/lib/rancher/mk8/artifacts/v1.33.1+rke2r1/install.sh"
        ),
        "{rendered}"
    );
    // RKE2's installer reloads systemd unless told not to; where systemd does not run, mk8 tells it.
    assert!(
        rendered.contains("INSTALL_RKE2_SKIP_RELOAD=true; export INSTALL_RKE2_SKIP_RELOAD"),
        "{rendered}"
    );
    let Action::RunWithInput(config, input) = &agent.prepare[2].action else {
        panic!("config feeds the file on standard input")
    };
    // The token never appears on a command line: the content goes through stdin.
    assert_eq!(
        config.render(),
        "umask 077 && mkdir -p /etc/rancher/rke2 && cat > /etc/rancher/rke2/config.yaml.mk8-partial \
         && mv -f /etc/rancher/rke2/config.yaml.mk8-partial /etc/rancher/rke2/config.yaml"
    );
    assert_eq!(input, nodes[3].config_yaml.as_bytes());
    let Action::Upload(files) = &agent.prepare[1].action else {
        panic!("upload uploads")
    };
    assert_eq!(
        files[2].remote,
        "/var/lib/rancher/mk8/artifacts/v1.33.1+rke2r1/install.sh"
    );
    assert_eq!(files[2].mode, "0755");
    assert_eq!(
        agent.join[0].marker_script().render(),
        format!(
            "mkdir -p /var/lib/rancher/rke2/.mk8 && printf %s {} > /var/lib/rancher/rke2/.mk8/start",
            agent.join[0].digest
        )
    );
}

#[test]
fn markers_parse_from_the_observe_output() {
    let m = parse_markers("preflight abc\nupload def\n\n");
    assert_eq!(m.get("upload").map(String::as_str), Some("def"));
    assert_eq!(m.len(), 2);
}

/// The markers of `markers` updated with those of the first `upto` steps of `plan`.
fn markers_updated(
    markers: &BTreeMap<String, String>,
    plan: &NodePlan,
    upto: usize,
) -> BTreeMap<String, String> {
    let mut updated = markers.clone();
    updated.extend(markers_after(plan, upto));
    updated
}

#[test]
fn step_kinds_are_ordered_and_named_once() {
    let names: Vec<&str> = StepKind::ALL.iter().map(|k| k.name()).collect();
    assert_eq!(
        names,
        [
            "preflight",
            "upload",
            "config",
            "install",
            "drain",
            "start",
            "ready",
            "uncordon"
        ]
    );
    assert!(StepKind::ALL.windows(2).all(|w| w[0] < w[1]));
    let preparing: Vec<&str> = StepKind::ALL
        .iter()
        .filter(|k| k.prepares())
        .map(|k| k.name())
        .collect();
    assert_eq!(preparing, ["preflight", "upload", "config", "install"]);
}

#[test]
fn a_fresh_install_and_an_interrupted_first_start_drain_nothing() {
    let fresh = build(&fleet(), &Observed::new(), &release(), "v1.33.1+rke2r1", 3);
    for n in &fresh.nodes {
        assert_eq!(kinds(&n.join), ["start", "ready"], "{}", n.name);
    }
    // Started once but never ready: nothing runs there yet, so a new version drains nothing.
    let mut observed = Observed::new();
    observed.insert("s1".into(), markers_after(&fresh.nodes[0], 5));
    let plan = build(&fleet(), &observed, &release(), "v1.33.2+rke2r1", 3);
    assert_eq!(kinds(&plan.nodes[0].join), ["start", "ready"]);
}

#[test]
fn a_new_version_drains_a_ready_node_before_starting_and_uncordons_it_after() {
    let fresh = build(&fleet(), &Observed::new(), &release(), "v1.33.1+rke2r1", 3);
    let mut observed = Observed::new();
    for (i, n) in fresh.nodes.iter().enumerate() {
        observed.insert(n.name.clone(), markers_after(&fresh.nodes[i], 6));
    }
    let plan = build(&fleet(), &observed, &release(), "v1.33.2+rke2r1", 3);
    for n in &plan.nodes {
        assert_eq!(kinds(&n.prepare), ["upload", "config", "install"]);
        assert_eq!(
            kinds(&n.join),
            ["drain", "start", "ready", "uncordon"],
            "{}",
            n.name
        );
        // Both are API operations, recorded under the digest of the start they surround.
        assert_eq!(n.join[0].action, Action::Drain);
        assert_eq!(n.join[3].action, Action::Uncordon);
        assert!(n.join.iter().all(|s| s.digest == n.join[1].digest));
        assert_ne!(n.join[1].digest, fresh.nodes[0].join[0].digest);
    }
    // The drain runs in the node's turn: servers one at a time, then the agents.
    let waves: Vec<usize> = plan.waves.iter().map(|w| w.parallel).collect();
    assert_eq!(waves, [1, 1, 1, 3]);
}

#[test]
fn a_run_interrupted_after_the_drain_restarts_and_uncordons_without_draining_again() {
    let fresh = build(&fleet(), &Observed::new(), &release(), "v1.33.1+rke2r1", 3);
    let ready = markers_after(&fresh.nodes[1], 6);
    let mut observed = Observed::new();
    observed.insert("s2".into(), ready.clone());
    let upgrade = build(&fleet(), &observed, &release(), "v1.33.2+rke2r1", 3);
    let s2 = &upgrade.nodes[1];
    assert_eq!(kinds(&s2.join), ["drain", "start", "ready", "uncordon"]);

    // Interrupted after upload, config, install and drain.
    observed.insert("s2".into(), markers_updated(&ready, s2, 4));
    let plan = build(&fleet(), &observed, &release(), "v1.33.2+rke2r1", 3);
    assert!(plan.nodes[1].prepare.is_empty());
    assert_eq!(kinds(&plan.nodes[1].join), ["start", "ready", "uncordon"]);

    // Interrupted after the start: still ready to wait for and an uncordon owed.
    observed.insert("s2".into(), markers_updated(&ready, s2, 5));
    let plan = build(&fleet(), &observed, &release(), "v1.33.2+rke2r1", 3);
    assert_eq!(kinds(&plan.nodes[1].join), ["ready", "uncordon"]);

    // Interrupted after ready: only the uncordon is owed.
    observed.insert("s2".into(), markers_updated(&ready, s2, 6));
    let plan = build(&fleet(), &observed, &release(), "v1.33.2+rke2r1", 3);
    assert_eq!(kinds(&plan.nodes[1].join), ["uncordon"]);
    assert_eq!(plan.nodes[1].join[0].digest, s2.join[1].digest);

    // Finished: nothing left.
    observed.insert("s2".into(), markers_updated(&ready, s2, 7));
    let plan = build(&fleet(), &observed, &release(), "v1.33.2+rke2r1", 3);
    assert!(plan.nodes[1].is_done());
}

#[test]
fn a_drain_for_an_older_start_is_done_again_for_a_newer_one() {
    let fresh = build(&fleet(), &Observed::new(), &release(), "v1.33.1+rke2r1", 3);
    let ready = markers_after(&fresh.nodes[0], 6);
    let mut observed = Observed::new();
    observed.insert("s1".into(), ready.clone());
    let upgrade = build(&fleet(), &observed, &release(), "v1.33.2+rke2r1", 3);
    // Drained for v1.33.2, then the spec moved on to v1.33.3 before the restart.
    observed.insert("s1".into(), markers_updated(&ready, &upgrade.nodes[0], 4));
    let plan = build(&fleet(), &observed, &release(), "v1.33.3+rke2r1", 3);
    assert_eq!(
        kinds(&plan.nodes[0].join),
        ["drain", "start", "ready", "uncordon"]
    );
}

#[test]
fn joiners_check_the_registration_address_in_preflight_only_when_it_should_answer() {
    fn script(action: &Action) -> String {
        match action {
            Action::Run(s) => s.render().to_string(),
            other => panic!("{other:?}"),
        }
    }
    let mut nodes = fleet();
    for n in &mut nodes[1..] {
        n.registration = Some("10.0.0.1".into());
    }
    // The bootstrap server is in this plan: it is not up during preflight, so joiners check the
    // address right before they start.
    let plan = build(&nodes, &Observed::new(), &release(), "v1.33.1+rke2r1", 3);
    let agent = &plan.nodes[3];
    assert!(script(&agent.prepare[0].action).contains(" 1048576 '' 9345 '' 10250"));
    assert!(script(&agent.join[0].action).contains(" 10.0.0.1 9345 10.0.0.1:9345"));
    assert!(script(&plan.nodes[0].join[0].action).ends_with(" '' 9345 ''"));
    // An agent pool joins a running control plane: preflight checks the address already.
    let agents = build(
        &nodes[3..],
        &Observed::new(),
        &release(),
        "v1.33.1+rke2r1",
        3,
    );
    assert!(
        script(&agents.nodes[0].prepare[0].action)
            .contains(" 1048576 10.0.0.1 9345 10.0.0.1:9345 10250")
    );
    // IPv6 registration addresses are bracketed for curl, bare for bash and nc.
    nodes[4].registration = Some("fd00::1".into());
    let agents = build(
        &nodes[4..],
        &Observed::new(),
        &release(),
        "v1.33.1+rke2r1",
        3,
    );
    assert!(
        script(&agents.nodes[0].prepare[0].action).contains(" fd00::1 9345 '[fd00::1]:9345' 10250")
    );
}
