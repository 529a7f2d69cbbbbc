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
    assert_eq!(kinds(&plan.nodes[3].join), ["start", "ready"]);
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
    assert_eq!(
        install.render(),
        "env INSTALL_RKE2_ARTIFACT_PATH=/var/lib/rancher/mk8/artifacts/v1.33.1+rke2r1 INSTALL_RKE2_TYPE=agent \
         INSTALL_RKE2_VERSION=v1.33.1+rke2r1 INSTALL_RKE2_TAR_PREFIX=/usr/local INSTALL_RKE2_METHOD=tar \
         sh /var/lib/rancher/mk8/artifacts/v1.33.1+rke2r1/install.sh"
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
