use super::*;
use crate::api::{Cluster, NodePool};

fn cluster() -> Cluster {
    let mut c: Cluster = serde_yaml::from_str(
        r#"
apiVersion: mk8.io/v1alpha1
kind: Cluster
metadata: {name: prod, namespace: fleet, uid: 0b6c1d2e-uid}
spec:
  kubernetesVersion: "1.31"
  eks:
    region: eu-west-1
    roleArn: arn:aws:iam::123456789012:role/eks
    vpc: {subnetIds: [subnet-0123456789abcdef0, subnet-0123456789abcdef1], endpointPrivateAccess: true}
    tags: {team: platform, mk8.io/owner-uid: spoofed}
"#,
    )
    .unwrap();
    c.metadata.generation = Some(1);
    c
}

fn pool(extra: &str) -> NodePool {
    serde_yaml::from_str(&format!(
        r#"
apiVersion: mk8.io/v1alpha1
kind: NodePool
metadata: {{name: workers, namespace: fleet, uid: pool-uid}}
spec:
  clusterName: prod
  eks:
    instanceTypes: [m6i.large]
    scaling: {{min: 1, max: 5, desired: 2}}
    nodeRoleArn: arn:aws:iam::123456789012:role/nodes
{extra}
"#
    ))
    .unwrap()
}

#[test]
fn the_cluster_request_carries_spec_and_ownership_tags() {
    let r = cluster_request(&cluster());
    assert_eq!(r.name, "prod");
    assert_eq!(r.version.as_deref(), Some("1.31"));
    assert_eq!(r.subnet_ids.len(), 2);
    assert!(r.endpoint_public_access && r.endpoint_private_access);
    assert_eq!(r.tags["team"], "platform");
    assert_eq!(
        r.tags[OWNER_TAG], "0b6c1d2e-uid",
        "a user tag cannot spoof ownership"
    );
    assert_eq!(r.tags[OWNER_NAME_TAG], "fleet/prod");
    assert_eq!(r.client_request_token, "0b6c1d2e-uid");
}

#[test]
fn ownership_is_decided_by_the_uid_tag() {
    let mine = BTreeMap::from([(OWNER_TAG.to_string(), "u1".to_string())]);
    assert_eq!(ownership_conflict("x", &mine, "u1"), None);
    let theirs = ownership_conflict("EKS cluster prod", &mine, "u2").unwrap();
    assert!(theirs.contains("mk8.io/owner-uid is u1"), "{theirs}");
    let untagged = ownership_conflict("EKS cluster prod", &BTreeMap::new(), "u2").unwrap();
    assert!(untagged.contains("no tag mk8.io/owner-uid"), "{untagged}");
}

#[test]
fn versions_move_one_minor_at_a_time() {
    assert_eq!(version_step(Some("1.31"), None), VersionStep::Hold);
    assert_eq!(version_step(Some("1.31"), Some("1.31")), VersionStep::Hold);
    assert_eq!(
        version_step(Some("1.31"), Some("1.32")),
        VersionStep::Upgrade("1.32".into())
    );
    let VersionStep::Refused(skip) = version_step(Some("1.31"), Some("1.33")) else {
        panic!("a skip is refused")
    };
    assert!(skip.contains("set 1.32 first"), "{skip}");
    let VersionStep::Refused(down) = version_step(Some("1.32"), Some("1.31")) else {
        panic!("a downgrade is refused")
    };
    assert!(down.contains("cannot downgrade"), "{down}");
    assert!(is_older("1.30", "1.32") && is_older("1.9", "1.10"));
    assert!(!is_older("1.32", "1.32") && !is_older("1.33", "1.32") && !is_older("x", "1.32"));
}

#[test]
fn the_nodegroup_request_uses_the_cluster_subnets_and_eks_taint_names() {
    let p = pool(
        "    labels: {role: web}\n    taints: [{key: gpu, value: \"yes\", effect: NoSchedule}]\n    capacityType: SPOT",
    );
    let r = nodegroup_request(
        &p,
        &cluster(),
        Some("1.31"),
        "arn:aws:iam::123456789012:role/nodes",
        2,
    );
    assert_eq!(r.cluster, "prod");
    assert_eq!(r.name, "workers");
    assert_eq!(r.subnets, cluster().spec.eks.unwrap().vpc.subnet_ids);
    assert_eq!(r.capacity_type, "SPOT");
    assert_eq!(
        r.scaling,
        NodegroupScaling {
            min: 1,
            max: 5,
            desired: 2
        }
    );
    assert_eq!(r.taints[0].effect, "NO_SCHEDULE");
    assert_eq!(r.tags[OWNER_TAG], "pool-uid");
    assert_eq!(r.client_request_token, "pool-uid-2");
    assert_eq!(
        r.version.as_deref(),
        Some("1.31"),
        "nodes start at the control plane's version"
    );
}

#[test]
fn the_update_contains_only_what_changed() {
    let p = pool(
        "    labels: {role: web, tier: a}\n    taints: [{key: gpu, value: \"2\", effect: NoSchedule}]",
    );
    let found = EksNodegroup {
        scaling: NodegroupScaling {
            min: 1,
            max: 5,
            desired: 2,
        },
        labels: BTreeMap::from([("role".into(), "web".into()), ("old".into(), "x".into())]),
        taints: vec![
            NodegroupTaint {
                key: "gpu".into(),
                value: Some("1".into()),
                effect: "NO_SCHEDULE".into(),
            },
            NodegroupTaint {
                key: "gone".into(),
                value: None,
                effect: "NO_EXECUTE".into(),
            },
        ],
        ..Default::default()
    };
    let u = nodegroup_update(&p, &cluster(), &found);
    assert_eq!(u.scaling, None);
    assert_eq!(u.add_labels, BTreeMap::from([("tier".into(), "a".into())]));
    assert_eq!(u.remove_labels, vec!["old".to_string()]);
    assert_eq!(u.add_taints.len(), 1);
    assert_eq!(u.add_taints[0].value.as_deref(), Some("2"));
    assert_eq!(u.remove_taints.len(), 1);
    assert_eq!(u.remove_taints[0].key, "gone");

    let scaled = EksNodegroup {
        scaling: NodegroupScaling {
            min: 1,
            max: 5,
            desired: 4,
        },
        ..found
    };
    let u = nodegroup_update(&pool(""), &cluster(), &scaled);
    assert_eq!(
        u.scaling,
        Some(NodegroupScaling {
            min: 1,
            max: 5,
            desired: 2
        })
    );
    let converged = EksNodegroup {
        scaling: u.scaling.unwrap(),
        ..Default::default()
    };
    assert!(nodegroup_update(&pool(""), &cluster(), &converged).is_empty());
}

#[test]
fn the_vpc_is_split_into_public_and_private_subnets_per_zone() {
    assert_eq!(
        subnet_cidrs("10.0.0.0/16", 2).unwrap(),
        vec![
            ("10.0.0.0/18".to_string(), "10.0.128.0/18".to_string()),
            ("10.0.64.0/18".to_string(), "10.0.192.0/18".to_string()),
        ]
    );
    let three = subnet_cidrs("192.168.0.0/20", 3).unwrap();
    assert_eq!(
        three[0],
        ("192.168.0.0/23".to_string(), "192.168.6.0/23".to_string())
    );
    assert_eq!(three[2].1, "192.168.10.0/23");
    assert_eq!(
        subnet_cidrs("10.0.0.0/24", 6).unwrap()[5].1,
        "10.0.0.176/28"
    );
    assert_eq!(subnet_cidrs("10.0.0/16", 2), None);
    assert_eq!(
        subnet_cidrs("10.0.0.0/24", 16),
        None,
        "blocks smaller than /28"
    );
}
