//! NodePool (eks): node group create, config updates, CREATE_FAILED retried, deletion.

use std::collections::HashMap;

use kube::Api;
use kube::api::DeleteParams;
use mk8::api::{Cluster, NodePool};
use serde_json::json;

use super::aws::{self, Rewrite};
use super::{Env, NS, WAIT, condition, eks_spec, ready, until};

fn pool_spec() -> serde_json::Value {
    json!({
        "clusterName": "prod",
        "eks": {
            "instanceTypes": ["m6i.large"],
            "scaling": {"min": 1, "max": 5, "desired": 2},
            "nodeRoleArn": "arn:aws:iam::123456789012:role/eks-nodes",
            "labels": {"role": "web"},
            "taints": [{"key": "dedicated", "value": "web", "effect": "NoSchedule"}],
        }
    })
}

async fn nodegroup(env: &Env, name: &str) -> aws_sdk_eks::types::Nodegroup {
    env.eks
        .describe_nodegroup()
        .cluster_name("prod")
        .nodegroup_name(name)
        .send()
        .await
        .expect("DescribeNodegroup")
        .nodegroup()
        .cloned()
        .expect("a node group")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_group_lifecycle_create_scale_relabel_delete_across_restarts() {
    let mut env = Env::start().await;
    env.start_operator().await;
    env.cluster("prod", eks_spec(json!({}))).await;
    env.pool("web", pool_spec()).await;

    let pool = ready(&env, "nodepool", "web", "True", "NodegroupReady").await;
    assert_eq!(pool["status"]["ready"], 2);
    assert_eq!(pool["status"]["role"], "eks");
    let ng = nodegroup(&env, "web").await;
    assert_eq!(
        ng.node_role(),
        Some("arn:aws:iam::123456789012:role/eks-nodes")
    );
    assert_eq!(ng.instance_types(), ["m6i.large".to_string()]);
    assert_eq!(ng.subnets().len(), 2, "the Cluster's subnets");
    assert_eq!(ng.labels().unwrap()["role"], "web");
    assert_eq!(ng.taints()[0].effect().unwrap().as_str(), "NO_SCHEDULE");

    // Restart, then scale and change labels and taints: one UpdateNodegroupConfig, no re-create.
    env.start_operator().await;
    env.patch_spec::<NodePool>(
        "web",
        json!({"eks": {"scaling": {"min": 1, "max": 5, "desired": 4}, "labels": {"role": null, "tier": "front"}, "taints": []}}),
    )
    .await;
    let shared = &env;
    until(
        "the node group scaled and relabelled",
        WAIT,
        || async move {
            let ng = nodegroup(shared, "web").await;
            let desired = ng.scaling_config().and_then(|s| s.desired_size());
            let labels = ng.labels().cloned().unwrap_or_default();
            if desired == Some(4)
                && labels == HashMap::from([("tier".to_string(), "front".to_string())])
                && ng.taints().is_empty()
            {
                Ok(())
            } else {
                Err(format!("{desired:?} {labels:?} {:?}", ng.taints()))
            }
        },
    )
    .await;
    let pool = ready(&env, "nodepool", "web", "True", "NodegroupReady").await;
    assert_eq!(pool["status"]["ready"], 4);
    assert_eq!(
        env.proxy
            .faults
            .count("POST /clusters/prod/node-groups -> 200"),
        1
    );
    assert!(
        env.proxy
            .faults
            .count("POST /clusters/prod/node-groups/web/update-config")
            >= 1
    );

    // Delete the pool: the node group goes, the cluster stays.
    Api::<NodePool>::namespaced(env.client.clone(), NS)
        .delete("web", &DeleteParams::default())
        .await
        .unwrap();
    env.gone("nodepool", "web").await;
    assert!(aws::nodegroups(&env.eks, "prod").await.is_empty());
    assert_eq!(aws::clusters(&env.eks).await, vec!["prod".to_string()]);

    // A Cluster deleted with a pool still on it: node groups first, then the cluster.
    env.pool(
        "batch",
        json!({"clusterName": "prod", "eks": {
        "instanceTypes": ["m6i.large"], "scaling": {"min": 1, "max": 2, "desired": 1},
        "nodeRoleArn": "arn:aws:iam::123456789012:role/eks-nodes"}}),
    )
    .await;
    ready(&env, "nodepool", "batch", "True", "NodegroupReady").await;
    Api::<Cluster>::namespaced(env.client.clone(), NS)
        .delete("prod", &DeleteParams::default())
        .await
        .unwrap();
    env.start_operator().await;
    env.gone("cluster", "prod").await;
    assert!(
        aws::clusters(&env.eks).await.is_empty(),
        "nothing of ours remains in moto"
    );
    let calls = env.proxy.faults.calls();
    let ng_delete = calls
        .iter()
        .position(|c| c.starts_with("DELETE /clusters/prod/node-groups/batch"));
    let cluster_delete = calls
        .iter()
        .position(|c| c.starts_with("DELETE /clusters/prod -"));
    assert!(
        ng_delete.is_some() && ng_delete < cluster_delete,
        "{calls:?}"
    );
    env.stop_operator().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_failed_node_group_is_surfaced_and_retried_with_backoff() {
    let mut env = Env::start().await;
    env.proxy.faults.rewrite(Rewrite {
        path: "/clusters/prod/node-groups/gpu".into(),
        status: "CREATE_FAILED".into(),
        issue: Some((
            "AsgInstanceLaunchFailures".into(),
            "InsufficientInstanceCapacity".into(),
        )),
        times: 1,
    });
    env.start_operator().await;
    env.cluster("prod", eks_spec(json!({}))).await;
    let mut spec = pool_spec();
    spec["eks"]["instanceTypes"] = json!(["g5.xlarge"]);
    env.pool("gpu", spec).await;

    let failed = ready(&env, "nodepool", "gpu", "False", "NodegroupCreateFailed").await;
    let (_, _, message) = condition(&failed, "Ready").unwrap();
    assert!(
        message.contains("AsgInstanceLaunchFailures: InsufficientInstanceCapacity"),
        "{message}"
    );
    assert_eq!(
        failed["metadata"]["annotations"]["mk8.io/eks-create-failures"],
        "1"
    );
    ready(&env, "nodepool", "gpu", "True", "NodegroupReady").await;
    assert_eq!(
        env.proxy
            .faults
            .count("POST /clusters/prod/node-groups -> 200"),
        2,
        "created, then created again"
    );
    assert_eq!(
        env.proxy
            .faults
            .count("DELETE /clusters/prod/node-groups/gpu"),
        1
    );
    assert_eq!(
        aws::nodegroups(&env.eks, "prod").await,
        vec!["gpu".to_string()]
    );
    env.stop_operator().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_control_plane_upgrades_one_minor_at_a_time_then_its_node_groups() {
    let mut env = Env::start().await;
    env.start_operator().await;
    env.cluster("prod", eks_spec(json!({}))).await;
    env.pool("web", pool_spec()).await;
    ready(&env, "nodepool", "web", "True", "NodegroupReady").await;
    assert_eq!(nodegroup(&env, "web").await.version(), Some("1.31"));

    // A skip is refused, and nothing is sent to AWS.
    env.patch_spec::<Cluster>("prod", json!({"kubernetesVersion": "1.33"}))
        .await;
    let refused = ready(&env, "cluster", "prod", "False", "VersionChangeRefused").await;
    let (_, _, message) = condition(&refused, "Ready").unwrap();
    assert!(message.contains("set 1.32 first"), "{message}");
    assert_eq!(env.proxy.faults.count("POST /clusters/prod/updates"), 0);

    // One minor: UpdateClusterVersion, UPDATING polled, then the node group follows.
    env.patch_spec::<Cluster>("prod", json!({"kubernetesVersion": "1.32"}))
        .await;
    env.start_operator().await;
    let upgraded = ready(&env, "cluster", "prod", "True", "ControlPlaneReady").await;
    assert_eq!(upgraded["status"]["kubernetesVersion"], "1.32");
    assert_eq!(env.proxy.faults.count("POST /clusters/prod/updates"), 1);
    let faults = &env.proxy.faults;
    until("the node group to follow", WAIT, || async move {
        if faults.count("POST /clusters/prod/node-groups/web/update-version") == 1 {
            Ok(())
        } else {
            Err(format!("{:?}", faults.calls()))
        }
    })
    .await;
    ready(&env, "nodepool", "web", "True", "NodegroupReady").await;
    assert_eq!(
        env.proxy
            .faults
            .count("POST /clusters/prod/node-groups/web/update-version"),
        1,
        "upgraded once"
    );
    env.stop_operator().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_role_is_created_with_the_node_policies_and_removed_with_the_pool() {
    let mut env = Env::start().await;
    env.start_operator().await;
    env.cluster("prod", eks_spec(json!({}))).await;
    let mut spec = pool_spec();
    spec["eks"].as_object_mut().unwrap().remove("nodeRoleArn");
    spec["eks"]["createRoles"] = json!(true);
    let pool = env.pool("auto", spec).await;
    ready(&env, "nodepool", "auto", "True", "NodegroupReady").await;

    let iam = aws::iam_client(&env.moto);
    let role_name = format!("mk8-nodes-{}", kube::ResourceExt::uid(&pool).unwrap());
    let role = iam
        .get_role()
        .role_name(&role_name)
        .send()
        .await
        .expect("role created");
    let arn = role.role().unwrap().arn().to_string();
    assert_eq!(
        nodegroup(&env, "auto").await.node_role(),
        Some(arn.as_str())
    );
    let attached = iam
        .list_attached_role_policies()
        .role_name(&role_name)
        .send()
        .await
        .unwrap();
    let mut policies: Vec<&str> = attached
        .attached_policies()
        .iter()
        .filter_map(|p| p.policy_arn())
        .collect();
    policies.sort();
    assert_eq!(
        policies,
        [
            "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly",
            "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy",
            "arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy"
        ],
        "{attached:?}"
    );

    // A restart does not create a second role or node group; deleting the pool removes both.
    env.start_operator().await;
    env.k8s
        .kubectl(&["annotate", "-n", NS, "nodepool", "auto", "touch=1"]);
    ready(&env, "nodepool", "auto", "True", "NodegroupReady").await;
    assert_eq!(env.proxy.faults.count("POST / Action=CreateRole"), 1);
    Api::<NodePool>::namespaced(env.client.clone(), NS)
        .delete("auto", &DeleteParams::default())
        .await
        .unwrap();
    env.gone("nodepool", "auto").await;
    assert!(aws::nodegroups(&env.eks, "prod").await.is_empty());
    assert!(
        iam.get_role().role_name(&role_name).send().await.is_err(),
        "role removed"
    );
    env.stop_operator().await;
}

/// VPC ids in moto tagged with `owner`.
async fn vpcs_of(ec2: &aws_sdk_ec2::Client, owner: &str) -> Vec<String> {
    let out = ec2
        .describe_vpcs()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name(format!("tag:{}", mk8::providers::eks::OWNER_TAG))
                .values(owner)
                .build(),
        )
        .send()
        .await
        .unwrap();
    out.vpcs()
        .iter()
        .filter_map(|v| v.vpc_id())
        .map(str::to_string)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_created_vpc_carries_the_cluster_and_its_nodes_and_goes_with_the_cluster() {
    let mut env = Env::start().await;
    env.start_operator().await;
    let mut spec = eks_spec(json!({}));
    spec["eks"]["vpc"] = json!({"create": {"cidr": "10.20.0.0/16", "availabilityZones": 2}});
    let cluster = env.cluster("prod", spec).await;
    let uid = kube::ResourceExt::uid(&cluster).unwrap();
    env.pool("web", pool_spec()).await;
    ready(&env, "cluster", "prod", "True", "ControlPlaneReady").await;
    ready(&env, "nodepool", "web", "True", "NodegroupReady").await;

    let ec2 = aws::ec2_client(&env.moto);
    let vpcs = vpcs_of(&ec2, &uid).await;
    assert_eq!(vpcs.len(), 1, "one VPC tagged with the Cluster's UID");
    let subnets = ec2
        .describe_subnets()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("vpc-id")
                .values(&vpcs[0])
                .build(),
        )
        .send()
        .await
        .unwrap();
    let mut cidrs: Vec<&str> = subnets
        .subnets()
        .iter()
        .filter_map(|s| s.cidr_block())
        .collect();
    cidrs.sort();
    assert_eq!(
        cidrs,
        [
            "10.20.0.0/18",
            "10.20.128.0/18",
            "10.20.192.0/18",
            "10.20.64.0/18"
        ]
    );
    let public: Vec<String> = subnets
        .subnets()
        .iter()
        .filter(|s| {
            s.tags()
                .iter()
                .any(|t| t.key() == Some("kubernetes.io/role/elb"))
        })
        .filter_map(|s| s.subnet_id())
        .map(str::to_string)
        .collect();
    assert_eq!(public.len(), 2);
    let control_plane = env
        .eks
        .describe_cluster()
        .name("prod")
        .send()
        .await
        .unwrap();
    let vpc_config = control_plane
        .cluster()
        .unwrap()
        .resources_vpc_config()
        .unwrap();
    assert_eq!(
        vpc_config.subnet_ids().len(),
        4,
        "the control plane spans all subnets"
    );
    let mut nodes = nodegroup(&env, "web").await.subnets().to_vec();
    nodes.sort();
    let mut expected = public.clone();
    expected.sort();
    assert_eq!(nodes, expected, "nodes go to the public subnets");

    // A restart creates nothing again; deleting the Cluster removes node group, cluster and VPC.
    env.start_operator().await;
    env.k8s
        .kubectl(&["annotate", "-n", NS, "cluster", "prod", "touch=1"]);
    ready(&env, "cluster", "prod", "True", "ControlPlaneReady").await;
    assert_eq!(env.proxy.faults.count("POST / Action=CreateVpc"), 1);
    assert_eq!(env.proxy.faults.count("POST / Action=CreateSubnet"), 4);
    Api::<Cluster>::namespaced(env.client.clone(), NS)
        .delete("prod", &DeleteParams::default())
        .await
        .unwrap();
    env.gone("cluster", "prod").await;
    assert!(aws::clusters(&env.eks).await.is_empty());
    assert!(
        vpcs_of(&ec2, &uid).await.is_empty(),
        "the VPC went with the cluster"
    );
    env.stop_operator().await;
}
