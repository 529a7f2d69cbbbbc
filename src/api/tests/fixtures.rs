//! Valid objects of each kind and provider, to be bent into invalid ones with `.with(|s| ...)`.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use mk8::api::cluster::{
    AccessEntry, EksClusterSpec, EksVpc, Rke2Artifacts, Rke2ClusterSpec, VpcCreate,
};
use mk8::api::nodepool::{EksNodePoolSpec, NodeRole, Scaling, SshHost, SshNodePoolSpec};
use mk8::api::stack::{ArgoCdSettings, Component, GitSource, HelmSource};
use mk8::api::view::{ClusterSelection, ResourceRef};
use mk8::api::{
    Cluster, ClusterProfileView, ClusterProfileViewSpec, ClusterSpec, LocalObjectReference,
    NodePool, NodePoolSpec, Stack, StackSpec,
};

/// Edit the spec of a fixture in place: `cluster_eks().with(|s| s.paused = true)`.
pub trait With: Sized {
    /// The spec type of the kind.
    type Spec;
    /// The spec to edit.
    fn spec_mut(&mut self) -> &mut Self::Spec;
    /// The object with `edit` applied to its spec.
    fn with(mut self, edit: impl FnOnce(&mut Self::Spec)) -> Self {
        edit(self.spec_mut());
        self
    }
}

macro_rules! with_spec {
    ($($kind:ty => $spec:ty),*) => {$(
        impl With for $kind {
            type Spec = $spec;
            fn spec_mut(&mut self) -> &mut $spec {
                &mut self.spec
            }
        }
    )*};
}

with_spec!(Cluster => ClusterSpec, NodePool => NodePoolSpec, Stack => StackSpec, ClusterProfileView => ClusterProfileViewSpec);

fn in_fleet<K: kube::Resource>(mut object: K) -> K {
    object.meta_mut().namespace = Some("fleet".into());
    object
}

fn secret(name: &str) -> LocalObjectReference {
    LocalObjectReference { name: name.into() }
}

/// An access entry for `principal` with the default admin policy.
pub fn access_entry(principal: &str) -> AccessEntry {
    AccessEntry {
        principal_arn: principal.into(),
        policy_arn: "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy".into(),
    }
}

/// An EKS Cluster on two existing subnets.
pub fn cluster_eks() -> Cluster {
    in_fleet(Cluster::new(
        "prod-eu",
        ClusterSpec {
            kubernetes_version: Some("1.33".into()),
            eks: Some(EksClusterSpec {
                region: "eu-west-1".into(),
                role_arn: "arn:aws:iam::123456789012:role/eks-control-plane".into(),
                vpc: EksVpc {
                    subnet_ids: vec!["subnet-0a1b2c3d".into(), "subnet-0e1f2a3b".into()],
                    endpoint_public_access: true,
                    ..EksVpc::default()
                },
                credentials_secret_ref: Some(secret("aws-credentials")),
                access_entries: vec![access_entry(
                    "arn:aws:iam::123456789012:role/platform-admins",
                )],
                tags: BTreeMap::new(),
            }),
            ..ClusterSpec::default()
        },
    ))
}

/// A VPC that mk8 creates.
pub fn new_vpc() -> EksVpc {
    EksVpc {
        create: Some(VpcCreate {
            cidr: "10.0.0.0/16".into(),
            availability_zones: 3,
        }),
        endpoint_public_access: true,
        ..EksVpc::default()
    }
}

/// The RKE2 part of [`cluster_rke2`].
pub fn rke2_spec() -> Rke2ClusterSpec {
    Rke2ClusterSpec {
        version: "v1.33.1+rke2r1".into(),
        artifacts: Rke2Artifacts {
            base_url: Some("http://mirror.internal/rke2/v1.33.1+rke2r1".into()),
            path: None,
        },
        ssh_credentials_secret_ref: secret("fleet-ssh"),
        registration_address: Some("10.0.0.10".into()),
        ..Rke2ClusterSpec::default()
    }
}

/// An RKE2 Cluster installed from a mirror.
pub fn cluster_rke2() -> Cluster {
    in_fleet(Cluster::new(
        "edge",
        ClusterSpec {
            kubernetes_version: Some("1.33".into()),
            rke2: Some(rke2_spec()),
            ..ClusterSpec::default()
        },
    ))
}

/// The EKS part of [`nodepool_eks`].
pub fn eks_pool_spec() -> EksNodePoolSpec {
    EksNodePoolSpec {
        instance_types: vec!["m6i.large".into()],
        scaling: Scaling {
            min: 1,
            max: 5,
            desired: 3,
        },
        node_role_arn: Some("arn:aws:iam::123456789012:role/eks-nodes".into()),
        ..EksNodePoolSpec::default()
    }
}

/// An EKS managed node group of `prod-eu`.
pub fn nodepool_eks() -> NodePool {
    in_fleet(NodePool::new(
        "prod-eu-general",
        NodePoolSpec {
            cluster_name: "prod-eu".into(),
            eks: Some(eks_pool_spec()),
            ..NodePoolSpec::default()
        },
    ))
}

/// A host at `address`, with defaults for everything else.
pub fn host(address: &str) -> SshHost {
    SshHost {
        address: address.into(),
        ..SshHost::default()
    }
}

/// The SSH part of [`nodepool_ssh`].
pub fn ssh_pool_spec() -> SshNodePoolSpec {
    SshNodePoolSpec {
        role: NodeRole::Agent,
        hosts: vec![
            host("10.0.0.21"),
            SshHost {
                port: Some(2222),
                ..host("10.0.0.22")
            },
        ],
        max_parallel: 20,
        step_timeout: "10m".into(),
        ..SshNodePoolSpec::default()
    }
}

/// RKE2 agents of `edge` on two SSH hosts.
pub fn nodepool_ssh() -> NodePool {
    in_fleet(NodePool::new(
        "edge-agents",
        NodePoolSpec {
            cluster_name: "edge".into(),
            ssh: Some(ssh_pool_spec()),
            ..NodePoolSpec::default()
        },
    ))
}

/// A component from the built-in catalog.
pub fn preset(name: &str) -> Component {
    Component {
        name: name.into(),
        preset: Some(name.into()),
        ..Component::default()
    }
}

/// A Helm chart source.
pub fn helm_source() -> HelmSource {
    HelmSource {
        repo_url: "https://kyverno.github.io/kyverno".into(),
        chart: "kyverno".into(),
        version: "3.3.4".into(),
        values: None,
    }
}

/// A Git path source.
pub fn git_source() -> GitSource {
    GitSource {
        repo_url: "https://git.example/policies.git".into(),
        path: "clusters/prod".into(),
        target_revision: "main".into(),
    }
}

/// A Stack with one component of each source: preset, Helm and Git, in a dependency chain.
pub fn stack() -> Stack {
    in_fleet(Stack::new(
        "platform",
        StackSpec {
            cluster_selector: LabelSelector {
                match_labels: Some([("env".to_string(), "prod".to_string())].into()),
                ..LabelSelector::default()
            },
            components: vec![
                preset("cert-manager"),
                Component {
                    name: "kyverno".into(),
                    helm: Some(helm_source()),
                    depends_on: vec!["cert-manager".into()],
                    ..Component::default()
                },
                Component {
                    name: "policies".into(),
                    git: Some(git_source()),
                    depends_on: vec!["kyverno".into()],
                    ..Component::default()
                },
            ],
            cluster_overrides: Vec::new(),
            chart_mirror: None,
            rollout: None,
            argocd: ArgoCdSettings::default(),
            wave_timeout: "15m".into(),
        },
    ))
}

/// A view of Deployments across production clusters.
pub fn view() -> ClusterProfileView {
    in_fleet(ClusterProfileView::new(
        "prod-nginx",
        ClusterProfileViewSpec {
            clusters: ClusterSelection {
                names: vec!["prod-*".into()],
                ..ClusterSelection::default()
            },
            resource: ResourceRef {
                group: "apps".into(),
                version: "v1".into(),
                resource: "deployments".into(),
            },
            namespace: String::new(),
            label_selector: "app=nginx".into(),
            refresh_interval: "60s".into(),
            per_cluster_timeout: "10s".into(),
            max_rows: 500,
        },
    ))
}
