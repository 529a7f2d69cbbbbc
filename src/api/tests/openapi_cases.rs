//! OpenAPI constraint cases: for every pattern, enum, bound, length, item count and required field
//! of the four CRDs, an object the API server must accept and one it must reject.
//!
//! The table is plain data (kind, JSON object, field, keyword, accepted or rejected at the field),
//! and this file depends on `serde_json` only, so that an end-to-end test can replay the same cases
//! against a real API server with `#[path = "../../src/api/tests/openapi_cases.rs"] mod openapi_cases;`.
//! Accepted objects also pass every CEL rule; rejected ones break only the constraint they name.
//!
//! Kept whole (over 500 lines): a flat table of cases, one per constraint.

use serde_json::{Value, json};

/// One object and the API server's expected answer to it.
#[derive(Clone, Debug)]
pub struct Case {
    /// Kind of the object (also in `object["kind"]`).
    pub kind: String,
    /// Field the case is about, with concrete list indices (`spec.ssh.hosts[0].port`).
    pub field: String,
    /// OpenAPI keyword exercised: `pattern`, `enum`, `minimum`, `maximum`, `minLength`,
    /// `maxLength`, `minItems`, `maxItems` or `required`.
    pub keyword: &'static str,
    /// The whole object, ready to be sent to the API server.
    pub object: Value,
    /// True: the object is accepted. False: it is rejected, with `field` reported as invalid.
    pub accepted: bool,
}

impl Case {
    /// The field in schema terms: list indices become `[]` (`spec.ssh.hosts[].port`).
    pub fn schema_field(&self) -> String {
        let mut out = String::new();
        let mut in_index = false;
        for c in self.field.chars() {
            match c {
                '[' => {
                    in_index = true;
                    out.push_str("[]");
                }
                ']' => in_index = false,
                _ if in_index => {}
                _ => out.push(c),
            }
        }
        out
    }

    /// A one-line description for failure messages.
    pub fn describe(&self) -> String {
        let verdict = if self.accepted { "accepts" } else { "rejects" };
        let value = if self.keyword == "required" {
            if self.accepted {
                "it present"
            } else {
                "it missing"
            }
            .to_string()
        } else {
            let shown = get(&self.object, &self.field)
                .map(Value::to_string)
                .unwrap_or_default();
            if shown.chars().count() > 60 {
                format!("{}…", shown.chars().take(60).collect::<String>())
            } else {
                shown
            }
        };
        format!(
            "{} {} ({}) {verdict} {value}",
            self.kind, self.field, self.keyword
        )
    }
}

/// Every case, for every kind.
pub fn all() -> Vec<Case> {
    [
        cluster_cases(),
        nodepool_cases(),
        stack_cases(),
        view_cases(),
    ]
    .concat()
}

// ----- base objects: valid, with every optional constrained field set -----

fn object(kind: &str, name: &str, spec: Value) -> Value {
    json!({"apiVersion": "mk8.io/v1alpha1", "kind": kind, "metadata": {"name": name, "namespace": "fleet"}, "spec": spec})
}

/// An EKS Cluster on existing subnets.
pub fn cluster_eks() -> Value {
    object(
        "Cluster",
        "prod-eu",
        json!({
            "kubernetesVersion": "1.33",
            "eks": {
                "region": "eu-west-1",
                "roleArn": "arn:aws:iam::123456789012:role/eks-control-plane",
                "vpc": {
                    "subnetIds": ["subnet-0a1b2c3d", "subnet-0e1f2a3b"],
                    "securityGroupIds": ["sg-0a1b2c3d4e"],
                    "publicAccessCidrs": ["203.0.113.0/24"]
                },
                "credentialsSecretRef": {"name": "aws-credentials"},
                "accessEntries": [{
                    "principalArn": "arn:aws:iam::123456789012:role/platform-admins",
                    "policyArn": "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
                }]
            }
        }),
    )
}

/// An EKS Cluster in a VPC mk8 creates.
pub fn cluster_eks_new_vpc() -> Value {
    set(
        cluster_eks(),
        "spec.eks.vpc",
        json!({"create": {"cidr": "10.0.0.0/16", "availabilityZones": 3}}),
    )
}

/// An RKE2 Cluster installed from a mirror.
pub fn cluster_rke2() -> Value {
    object(
        "Cluster",
        "edge",
        json!({
            "kubernetesVersion": "1.33",
            "rke2": {
                "version": "v1.33.1+rke2r1",
                "artifacts": {"baseURL": "http://mirror.internal/rke2/v1.33.1+rke2r1"},
                "sshCredentialsSecretRef": {"name": "fleet-ssh"},
                "registrationAddress": "10.0.0.10",
                "cni": "canal",
                "tlsSan": ["api.edge.internal"]
            }
        }),
    )
}

/// An EKS managed node group.
pub fn nodepool_eks() -> Value {
    object(
        "NodePool",
        "prod-eu-general",
        json!({
            "clusterName": "prod-eu",
            "eks": {
                "instanceTypes": ["m6i.large"],
                "scaling": {"min": 1, "max": 5, "desired": 3},
                "capacityType": "ON_DEMAND",
                "amiType": "AL2023_x86_64_STANDARD",
                "diskSize": 50,
                "subnetIds": ["subnet-0a1b2c3d"],
                "nodeRoleArn": "arn:aws:iam::123456789012:role/eks-nodes",
                "taints": [{"key": "dedicated", "value": "batch", "effect": "NoSchedule"}]
            }
        }),
    )
}

/// RKE2 agents on SSH hosts.
pub fn nodepool_ssh() -> Value {
    object(
        "NodePool",
        "edge-agents",
        json!({
            "clusterName": "edge",
            "ssh": {
                "role": "agent",
                "hosts": [
                    {"address": "10.0.0.21"},
                    {"address": "10.0.0.22", "port": 2222, "user": "ubuntu", "nodeName": "edge-agent-2",
                     "hostKeyFingerprint": format!("SHA256:{}", "A".repeat(43))}
                ],
                "maxParallel": 20,
                "stepTimeout": "10m",
                "taints": [{"key": "gpu", "effect": "NoSchedule"}]
            }
        }),
    )
}

/// A Stack with one component of each source.
pub fn stack() -> Value {
    object(
        "Stack",
        "platform",
        json!({
            "clusterSelector": {"matchLabels": {"env": "prod"}, "matchExpressions": [{"key": "tier", "operator": "In", "values": ["web"]}]},
            "components": [
                {"name": "cert-manager", "preset": "cert-manager"},
                {"name": "kyverno", "namespace": "kyverno", "dependsOn": ["cert-manager"],
                 "helm": {"repoURL": "https://kyverno.github.io/kyverno", "chart": "kyverno", "version": "3.3.4"}},
                {"name": "policies", "dependsOn": ["kyverno"],
                 "git": {"repoURL": "https://git.example/policies.git", "path": "clusters/prod", "targetRevision": "main"}}
            ],
            "clusterOverrides": [
                {"clusterSelector": {"matchExpressions": [{"key": "size", "operator": "In", "values": ["large"]}]},
                 "component": "kyverno", "values": {"admissionController": {"replicas": 3}}}
            ],
            "rollout": {"maxClustersInProgress": 2},
            "argocd": {"namespace": "argocd", "project": "platform"},
            "waveTimeout": "15m"
        }),
    )
}

/// A view of Deployments across production clusters.
pub fn view() -> Value {
    object(
        "ClusterProfileView",
        "prod-nginx",
        json!({
            "clusters": {"matchLabels": {"env": "prod"}, "matchExpressions": [{"key": "tier", "operator": "Exists"}],
                         "names": ["prod-*"], "exclude": ["prod-legacy"]},
            "resource": {"group": "apps", "version": "v1", "resource": "deployments"},
            "namespace": "web",
            "labelSelector": "app=nginx",
            "refreshInterval": "60s",
            "perClusterTimeout": "10s",
            "maxRows": 500
        }),
    )
}

// ----- the table -----

#[rustfmt::skip]
fn cluster_cases() -> Vec<Case> {
    let (eks, new_vpc, rke2) = (cluster_eks, cluster_eks_new_vpc, cluster_rke2);
    vec![
        present(eks(), "spec"),
        missing(eks(), "spec"),
        accept("pattern", eks(), "spec.kubernetesVersion", json!("1.30")),
        reject("pattern", eks(), "spec.kubernetesVersion", json!("1.33.1")),
        present(eks(), "spec.eks.region"),
        missing(eks(), "spec.eks.region"),
        accept("pattern", eks(), "spec.eks.region", json!("us-gov-west-1")),
        reject("pattern", eks(), "spec.eks.region", json!("Europe (Ireland)")),
        present(eks(), "spec.eks.roleArn"),
        missing(eks(), "spec.eks.roleArn"),
        accept("pattern", eks(), "spec.eks.roleArn", json!("arn:aws-cn:iam::123456789012:role/eks")),
        reject("pattern", eks(), "spec.eks.roleArn", json!("arn:aws:iam::123456789012:user/eks")),
        present(eks(), "spec.eks.vpc"),
        missing(eks(), "spec.eks.vpc"),
        accept("maxItems", eks(), "spec.eks.accessEntries", access_entries(50)),
        reject("maxItems", eks(), "spec.eks.accessEntries", access_entries(51)),
        present(eks(), "spec.eks.accessEntries[0].principalArn"),
        missing(eks(), "spec.eks.accessEntries[0].principalArn"),
        accept("pattern", eks(), "spec.eks.accessEntries[0].principalArn", json!("arn:aws:iam::123456789012:user/alice")),
        reject("pattern", eks(), "spec.eks.accessEntries[0].principalArn", json!("platform-admins")),
        accept("maxLength", eks(), "spec.eks.accessEntries[0].principalArn", json!(format!("arn:aws:iam::123456789012:role/{}", "r".repeat(2048 - 31)))),
        reject("maxLength", eks(), "spec.eks.accessEntries[0].principalArn", json!(format!("arn:aws:iam::123456789012:role/{}", "r".repeat(2049 - 31)))),
        accept("pattern", eks(), "spec.eks.accessEntries[0].policyArn", json!("arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy")),
        reject("pattern", eks(), "spec.eks.accessEntries[0].policyArn", json!("arn:aws:iam::aws:policy/AdministratorAccess")),
        present(eks(), "spec.eks.credentialsSecretRef.name"),
        missing(eks(), "spec.eks.credentialsSecretRef.name"),
        accept("minLength", eks(), "spec.eks.credentialsSecretRef.name", json!("a")),
        reject("minLength", eks(), "spec.eks.credentialsSecretRef.name", json!("")),
        accept("maxLength", eks(), "spec.eks.credentialsSecretRef.name", long(253)),
        reject("maxLength", eks(), "spec.eks.credentialsSecretRef.name", long(254)),
        accept("maxItems", eks(), "spec.eks.vpc.subnetIds", numbered("subnet-0000000", 16)),
        reject("maxItems", eks(), "spec.eks.vpc.subnetIds", numbered("subnet-0000000", 17)),
        accept("pattern", eks(), "spec.eks.vpc.subnetIds[1]", json!("subnet-0123456789abcdef0")),
        reject("pattern", eks(), "spec.eks.vpc.subnetIds[1]", json!("subnet-b")),
        accept("maxItems", eks(), "spec.eks.vpc.securityGroupIds", numbered("sg-0000000", 5)),
        reject("maxItems", eks(), "spec.eks.vpc.securityGroupIds", numbered("sg-0000000", 6)),
        accept("pattern", eks(), "spec.eks.vpc.securityGroupIds[0]", json!("sg-0123456789abcdef0")),
        reject("pattern", eks(), "spec.eks.vpc.securityGroupIds[0]", json!("default")),
        accept("maxItems", eks(), "spec.eks.vpc.publicAccessCidrs", cidrs(40)),
        reject("maxItems", eks(), "spec.eks.vpc.publicAccessCidrs", cidrs(41)),
        accept("pattern", eks(), "spec.eks.vpc.publicAccessCidrs[0]", json!("0.0.0.0/0")),
        reject("pattern", eks(), "spec.eks.vpc.publicAccessCidrs[0]", json!("203.0.113.7")),
        present(new_vpc(), "spec.eks.vpc.create.cidr"),
        missing(new_vpc(), "spec.eks.vpc.create.cidr"),
        accept("pattern", new_vpc(), "spec.eks.vpc.create.cidr", json!("10.20.0.0/24")),
        reject("pattern", new_vpc(), "spec.eks.vpc.create.cidr", json!("10.0.0.0/8")),
        accept("minimum", new_vpc(), "spec.eks.vpc.create.availabilityZones", json!(2)),
        reject("minimum", new_vpc(), "spec.eks.vpc.create.availabilityZones", json!(1)),
        accept("maximum", new_vpc(), "spec.eks.vpc.create.availabilityZones", json!(6)),
        reject("maximum", new_vpc(), "spec.eks.vpc.create.availabilityZones", json!(7)),
        present(rke2(), "spec.rke2.version"),
        missing(rke2(), "spec.rke2.version"),
        accept("pattern", rke2(), "spec.rke2.version", json!("v1.33.10+rke2r12")),
        reject("pattern", rke2(), "spec.rke2.version", json!("1.33.1")),
        present(rke2(), "spec.rke2.artifacts"),
        missing(rke2(), "spec.rke2.artifacts"),
        accept("pattern", rke2(), "spec.rke2.artifacts.baseURL", json!("https://mirror.example/rke2")),
        reject("pattern", rke2(), "spec.rke2.artifacts.baseURL", json!("ftp://mirror.example/rke2")),
        accept_object("pattern", "spec.rke2.artifacts.path", set(rke2(), "spec.rke2.artifacts", json!({"path": "/var/lib/mk8/rke2"}))),
        reject_object("pattern", "spec.rke2.artifacts.path", set(rke2(), "spec.rke2.artifacts", json!({"path": "var/lib/mk8/rke2"}))),
        present(rke2(), "spec.rke2.sshCredentialsSecretRef"),
        missing(rke2(), "spec.rke2.sshCredentialsSecretRef"),
        present(rke2(), "spec.rke2.sshCredentialsSecretRef.name"),
        missing(rke2(), "spec.rke2.sshCredentialsSecretRef.name"),
        accept("minLength", rke2(), "spec.rke2.sshCredentialsSecretRef.name", json!("k")),
        reject("minLength", rke2(), "spec.rke2.sshCredentialsSecretRef.name", json!("")),
        accept("maxLength", rke2(), "spec.rke2.sshCredentialsSecretRef.name", long(253)),
        reject("maxLength", rke2(), "spec.rke2.sshCredentialsSecretRef.name", long(254)),
        accept("enum", rke2(), "spec.rke2.cni", json!("cilium")),
        reject("enum", rke2(), "spec.rke2.cni", json!("weave")),
        accept("pattern", rke2(), "spec.rke2.registrationAddress", json!("[fd00::10]")),
        reject("pattern", rke2(), "spec.rke2.registrationAddress", json!("https://10.0.0.10:9345")),
        accept("minLength", rke2(), "spec.rke2.registrationAddress", json!("a")),
        reject("minLength", rke2(), "spec.rke2.registrationAddress", json!("")),
        accept("maxLength", rke2(), "spec.rke2.registrationAddress", long(253)),
        reject("maxLength", rke2(), "spec.rke2.registrationAddress", long(254)),
        accept("maxItems", rke2(), "spec.rke2.tlsSan", numbered("san-", 20)),
        reject("maxItems", rke2(), "spec.rke2.tlsSan", numbered("san-", 21)),
        accept("minLength", rke2(), "spec.rke2.tlsSan[0]", json!("a")),
        reject("minLength", rke2(), "spec.rke2.tlsSan[0]", json!("")),
        accept("maxLength", rke2(), "spec.rke2.tlsSan[0]", long(253)),
        reject("maxLength", rke2(), "spec.rke2.tlsSan[0]", long(254)),
    ]
}

#[rustfmt::skip]
fn nodepool_cases() -> Vec<Case> {
    let (eks, ssh) = (nodepool_eks, nodepool_ssh);
    let scaling =
        |min: i64, desired: i64, max: i64| json!({"min": min, "desired": desired, "max": max});
    let mut cases = vec![
        present(eks(), "spec"),
        missing(eks(), "spec"),
        present(eks(), "spec.clusterName"),
        missing(eks(), "spec.clusterName"),
        accept("minLength", eks(), "spec.clusterName", json!("a")),
        reject("minLength", eks(), "spec.clusterName", json!("")),
        accept("maxLength", eks(), "spec.clusterName", long(253)),
        reject("maxLength", eks(), "spec.clusterName", long(254)),
        present(eks(), "spec.eks.instanceTypes"),
        missing(eks(), "spec.eks.instanceTypes"),
        accept("minItems", eks(), "spec.eks.instanceTypes", json!(["m6i.large"])),
        reject("minItems", eks(), "spec.eks.instanceTypes", json!([])),
        accept("maxItems", eks(), "spec.eks.instanceTypes", numbered("m6i.", 20)),
        reject("maxItems", eks(), "spec.eks.instanceTypes", numbered("m6i.", 21)),
        accept("pattern", eks(), "spec.eks.instanceTypes[0]", json!("p4d.24xlarge")),
        reject("pattern", eks(), "spec.eks.instanceTypes[0]", json!("large")),
        present(eks(), "spec.eks.scaling"),
        missing(eks(), "spec.eks.scaling"),
        present(eks(), "spec.eks.scaling.min"),
        missing(eks(), "spec.eks.scaling.min"),
        present(eks(), "spec.eks.scaling.desired"),
        missing(eks(), "spec.eks.scaling.desired"),
        present(eks(), "spec.eks.scaling.max"),
        missing(eks(), "spec.eks.scaling.max"),
        accept("enum", eks(), "spec.eks.capacityType", json!("SPOT")),
        reject("enum", eks(), "spec.eks.capacityType", json!("spot")),
        accept("pattern", eks(), "spec.eks.amiType", json!("BOTTLEROCKET_x86_64_NVIDIA")),
        reject("pattern", eks(), "spec.eks.amiType", json!("ami-0123456789abcdef0")),
        accept("minimum", eks(), "spec.eks.diskSize", json!(20)),
        reject("minimum", eks(), "spec.eks.diskSize", json!(19)),
        accept("maximum", eks(), "spec.eks.diskSize", json!(16384)),
        reject("maximum", eks(), "spec.eks.diskSize", json!(16385)),
        accept("maxItems", eks(), "spec.eks.subnetIds", numbered("subnet-0000000", 16)),
        reject("maxItems", eks(), "spec.eks.subnetIds", numbered("subnet-0000000", 17)),
        accept("pattern", eks(), "spec.eks.subnetIds[0]", json!("subnet-0123456789abcdef0")),
        reject("pattern", eks(), "spec.eks.subnetIds[0]", json!("subnet-a")),
        accept("pattern", eks(), "spec.eks.nodeRoleArn", json!("arn:aws-us-gov:iam::123456789012:role/nodes")),
        reject("pattern", eks(), "spec.eks.nodeRoleArn", json!("eks-nodes")),
        accept_object("minimum", "spec.eks.scaling.min", set(eks(), "spec.eks.scaling", scaling(0, 0, 1))),
        reject("minimum", eks(), "spec.eks.scaling.min", json!(-1)),
        accept_object("maximum", "spec.eks.scaling.min", set(eks(), "spec.eks.scaling", scaling(1000, 1000, 1000))),
        reject("maximum", eks(), "spec.eks.scaling.min", json!(1001)),
        accept_object("minimum", "spec.eks.scaling.desired", set(eks(), "spec.eks.scaling", scaling(0, 0, 3))),
        reject("minimum", eks(), "spec.eks.scaling.desired", json!(-1)),
        accept_object("maximum", "spec.eks.scaling.desired", set(eks(), "spec.eks.scaling", scaling(1, 1000, 1000))),
        reject("maximum", eks(), "spec.eks.scaling.desired", json!(1001)),
        accept_object("minimum", "spec.eks.scaling.max", set(eks(), "spec.eks.scaling", scaling(0, 1, 1))),
        reject_object("minimum", "spec.eks.scaling.max", set(eks(), "spec.eks.scaling", scaling(0, 0, 0))),
        accept("maximum", eks(), "spec.eks.scaling.max", json!(1000)),
        reject("maximum", eks(), "spec.eks.scaling.max", json!(1001)),
        present(ssh(), "spec.ssh.role"),
        missing(ssh(), "spec.ssh.role"),
        accept("enum", ssh(), "spec.ssh.role", json!("server")),
        reject("enum", ssh(), "spec.ssh.role", json!("worker")),
        present(ssh(), "spec.ssh.hosts"),
        missing(ssh(), "spec.ssh.hosts"),
        accept("minItems", ssh(), "spec.ssh.hosts", json!([{"address": "10.0.0.21"}])),
        reject("minItems", ssh(), "spec.ssh.hosts", json!([])),
        accept("maxItems", ssh(), "spec.ssh.hosts", hosts(250)),
        reject("maxItems", ssh(), "spec.ssh.hosts", hosts(251)),
        present(ssh(), "spec.ssh.hosts[0].address"),
        missing(ssh(), "spec.ssh.hosts[0].address"),
        accept("pattern", ssh(), "spec.ssh.hosts[0].address", json!("edge-1.fleet.internal")),
        reject("pattern", ssh(), "spec.ssh.hosts[0].address", json!("root@10.0.0.21")),
        accept("minLength", ssh(), "spec.ssh.hosts[0].address", json!("h")),
        reject("minLength", ssh(), "spec.ssh.hosts[0].address", json!("")),
        accept("maxLength", ssh(), "spec.ssh.hosts[0].address", long(253)),
        reject("maxLength", ssh(), "spec.ssh.hosts[0].address", long(254)),
        accept("minimum", ssh(), "spec.ssh.hosts[1].port", json!(1)),
        reject("minimum", ssh(), "spec.ssh.hosts[1].port", json!(0)),
        accept("maximum", ssh(), "spec.ssh.hosts[1].port", json!(65535)),
        reject("maximum", ssh(), "spec.ssh.hosts[1].port", json!(65536)),
        accept("pattern", ssh(), "spec.ssh.hosts[1].user", json!("_admin-2")),
        reject("pattern", ssh(), "spec.ssh.hosts[1].user", json!("Administrator")),
        accept("pattern", ssh(), "spec.ssh.hosts[1].nodeName", json!("edge-agent-2.fleet")),
        reject("pattern", ssh(), "spec.ssh.hosts[1].nodeName", json!("Edge_Agent_2")),
        accept("minLength", ssh(), "spec.ssh.hosts[1].nodeName", json!("n")),
        reject("minLength", ssh(), "spec.ssh.hosts[1].nodeName", json!("")),
        accept("maxLength", ssh(), "spec.ssh.hosts[1].nodeName", long(63)),
        reject("maxLength", ssh(), "spec.ssh.hosts[1].nodeName", long(64)),
        accept("pattern", ssh(), "spec.ssh.hosts[1].hostKeyFingerprint", json!("SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8")),
        reject("pattern", ssh(), "spec.ssh.hosts[1].hostKeyFingerprint", json!("MD5:16:27:ac:a5:76:28:2d:36:63:1b:56:4d:eb:df:a6:48")),
        accept("minimum", ssh(), "spec.ssh.maxParallel", json!(1)),
        reject("minimum", ssh(), "spec.ssh.maxParallel", json!(0)),
        accept("maximum", ssh(), "spec.ssh.maxParallel", json!(500)),
        reject("maximum", ssh(), "spec.ssh.maxParallel", json!(501)),
        accept("pattern", ssh(), "spec.ssh.stepTimeout", json!("1h30m")),
        reject("pattern", ssh(), "spec.ssh.stepTimeout", json!("10 minutes")),
    ];
    // Taints have the same constraints in both kinds of pool.
    for (base, pool) in [(eks as fn() -> Value, "eks"), (ssh, "ssh")] {
        let taints = format!("spec.{pool}.taints");
        let taint = |field: &str| format!("{taints}[0].{field}");
        cases.extend([
            accept("maxItems", base(), &taints, taint_list(50)),
            reject("maxItems", base(), &taints, taint_list(51)),
            present(base(), &taint("key")),
            missing(base(), &taint("key")),
            accept("minLength", base(), &taint("key"), json!("k")),
            reject("minLength", base(), &taint("key"), json!("")),
            accept("maxLength", base(), &taint("key"), long(253)),
            reject("maxLength", base(), &taint("key"), long(254)),
            accept("maxLength", base(), &taint("value"), long(63)),
            reject("maxLength", base(), &taint("value"), long(64)),
            present(base(), &taint("effect")),
            missing(base(), &taint("effect")),
            accept("enum", base(), &taint("effect"), json!("NoExecute")),
            reject("enum", base(), &taint("effect"), json!("noschedule")),
        ]);
    }
    cases
}

#[rustfmt::skip]
fn stack_cases() -> Vec<Case> {
    let helm = "spec.components[1].helm";
    let git = "spec.components[2].git";
    let at = |base: &str, field: &str| format!("{base}.{field}");
    vec![
        present(stack(), "spec"),
        missing(stack(), "spec"),
        present(stack(), "spec.clusterSelector.matchExpressions[0].key"),
        missing(stack(), "spec.clusterSelector.matchExpressions[0].key"),
        present(stack(), "spec.clusterSelector.matchExpressions[0].operator"),
        missing(stack(), "spec.clusterSelector.matchExpressions[0].operator"),
        present(stack(), "spec.components"),
        missing(stack(), "spec.components"),
        accept("minItems", stack(), "spec.components", json!([{"name": "cert-manager", "preset": "cert-manager"}])),
        reject("minItems", stack(), "spec.components", json!([])),
        accept("maxItems", stack(), "spec.components", preset_components(100)),
        reject("maxItems", stack(), "spec.components", preset_components(101)),
        present(stack(), "spec.components[0].name"),
        missing(stack(), "spec.components[0].name"),
        accept("pattern", stack(), "spec.components[0].name", json!("cert-manager-2")),
        reject("pattern", stack(), "spec.components[0].name", json!("Cert_Manager")),
        accept("minLength", stack(), "spec.components[0].name", json!("c")),
        reject("minLength", stack(), "spec.components[0].name", json!("")),
        accept("maxLength", stack(), "spec.components[0].name", long(40)),
        reject("maxLength", stack(), "spec.components[0].name", long(41)),
        accept_object("pattern", "spec.components[0].bundle", set(stack(), "spec.components", json!([{"name": "obs", "bundle": "observability"}]))),
        reject_object("pattern", "spec.components[0].bundle", set(stack(), "spec.components", json!([{"name": "obs", "bundle": "Observability"}]))),
        accept("pattern", stack(), "spec.components[0].preset", json!("kube-prometheus-stack")),
        reject("pattern", stack(), "spec.components[0].preset", json!("Cert_Manager")),
        accept("pattern", stack(), "spec.components[1].namespace", json!("kyverno-system")),
        reject("pattern", stack(), "spec.components[1].namespace", json!("Kyverno")),
        accept("minLength", stack(), "spec.components[1].namespace", json!("k")),
        reject("minLength", stack(), "spec.components[1].namespace", json!("")),
        accept("maxLength", stack(), "spec.components[1].namespace", long(63)),
        reject("maxLength", stack(), "spec.components[1].namespace", long(64)),
        accept("maxItems", stack(), "spec.components[1].dependsOn", numbered("dep-", 50)),
        reject("maxItems", stack(), "spec.components[1].dependsOn", numbered("dep-", 51)),
        accept("pattern", stack(), "spec.chartMirror", json!("https://mirror.internal/helm")),
        accept("maxItems", stack(), "spec.clusterOverrides", overrides(100)),
        reject("maxItems", stack(), "spec.clusterOverrides", overrides(101)),
        present(stack(), "spec.clusterOverrides[0].clusterSelector.matchExpressions[0].key"),
        missing(stack(), "spec.clusterOverrides[0].clusterSelector.matchExpressions[0].key"),
        present(stack(), "spec.clusterOverrides[0].clusterSelector.matchExpressions[0].operator"),
        missing(stack(), "spec.clusterOverrides[0].clusterSelector.matchExpressions[0].operator"),
        present(stack(), "spec.clusterOverrides[0].component"),
        missing(stack(), "spec.clusterOverrides[0].component"),
        accept("minLength", stack(), "spec.clusterOverrides[0].component", json!("k")),
        reject("minLength", stack(), "spec.clusterOverrides[0].component", json!("")),
        accept("maxLength", stack(), "spec.clusterOverrides[0].component", long(40)),
        reject("maxLength", stack(), "spec.clusterOverrides[0].component", long(41)),
        present(stack(), "spec.clusterOverrides[0].values"),
        missing(stack(), "spec.clusterOverrides[0].values"),
        present(stack(), "spec.rollout.maxClustersInProgress"),
        missing(stack(), "spec.rollout.maxClustersInProgress"),
        accept("minimum", stack(), "spec.rollout.maxClustersInProgress", json!(1)),
        reject("minimum", stack(), "spec.rollout.maxClustersInProgress", json!(0)),
        accept("maximum", stack(), "spec.rollout.maxClustersInProgress", json!(10000)),
        reject("maximum", stack(), "spec.rollout.maxClustersInProgress", json!(10001)),
        reject("pattern", stack(), "spec.chartMirror", json!("mirror.internal/helm")),
        present(stack(), &at(helm, "repoURL")),
        missing(stack(), &at(helm, "repoURL")),
        accept("pattern", stack(), &at(helm, "repoURL"), json!("oci://ghcr.io/kyverno/charts")),
        reject("pattern", stack(), &at(helm, "repoURL"), json!("kyverno.github.io/kyverno")),
        present(stack(), &at(helm, "chart")),
        missing(stack(), &at(helm, "chart")),
        accept("minLength", stack(), &at(helm, "chart"), json!("k")),
        reject("minLength", stack(), &at(helm, "chart"), json!("")),
        accept("maxLength", stack(), &at(helm, "chart"), long(253)),
        reject("maxLength", stack(), &at(helm, "chart"), long(254)),
        present(stack(), &at(helm, "version")),
        missing(stack(), &at(helm, "version")),
        accept("pattern", stack(), &at(helm, "version"), json!("1.0.0-rc.1+build.5")),
        reject("pattern", stack(), &at(helm, "version"), json!("^3.3")),
        accept("minLength", stack(), &at(helm, "version"), json!("1.2.3")),
        reject("minLength", stack(), &at(helm, "version"), json!("")),
        accept("maxLength", stack(), &at(helm, "version"), json!(format!("1.0.0-{}", "a".repeat(122)))),
        reject("maxLength", stack(), &at(helm, "version"), json!(format!("1.0.0-{}", "a".repeat(123)))),
        present(stack(), &at(git, "repoURL")),
        missing(stack(), &at(git, "repoURL")),
        accept("minLength", stack(), &at(git, "repoURL"), json!("g")),
        reject("minLength", stack(), &at(git, "repoURL"), json!("")),
        accept("maxLength", stack(), &at(git, "repoURL"), long(2048)),
        reject("maxLength", stack(), &at(git, "repoURL"), long(2049)),
        present(stack(), &at(git, "path")),
        missing(stack(), &at(git, "path")),
        accept("minLength", stack(), &at(git, "path"), json!(".")),
        reject("minLength", stack(), &at(git, "path"), json!("")),
        accept("maxLength", stack(), &at(git, "path"), long(1024)),
        reject("maxLength", stack(), &at(git, "path"), long(1025)),
        accept("minLength", stack(), &at(git, "targetRevision"), json!("v")),
        reject("minLength", stack(), &at(git, "targetRevision"), json!("")),
        accept("maxLength", stack(), &at(git, "targetRevision"), long(255)),
        reject("maxLength", stack(), &at(git, "targetRevision"), long(256)),
        accept("minLength", stack(), "spec.argocd.namespace", json!("a")),
        reject("minLength", stack(), "spec.argocd.namespace", json!("")),
        accept("maxLength", stack(), "spec.argocd.namespace", long(63)),
        reject("maxLength", stack(), "spec.argocd.namespace", long(64)),
        accept("minLength", stack(), "spec.argocd.project", json!("p")),
        reject("minLength", stack(), "spec.argocd.project", json!("")),
        accept("maxLength", stack(), "spec.argocd.project", long(253)),
        reject("maxLength", stack(), "spec.argocd.project", long(254)),
        accept("pattern", stack(), "spec.waveTimeout", json!("1h30m")),
        reject("pattern", stack(), "spec.waveTimeout", json!("15 min")),
    ]
}

#[rustfmt::skip]
fn view_cases() -> Vec<Case> {
    let mut cases = vec![
        present(view(), "spec"),
        missing(view(), "spec"),
        present(view(), "spec.clusters.matchExpressions[0].key"),
        missing(view(), "spec.clusters.matchExpressions[0].key"),
        present(view(), "spec.clusters.matchExpressions[0].operator"),
        missing(view(), "spec.clusters.matchExpressions[0].operator"),
        present(view(), "spec.resource"),
        missing(view(), "spec.resource"),
        accept("maxLength", view(), "spec.resource.group", long(253)),
        reject("maxLength", view(), "spec.resource.group", long(254)),
        accept("pattern", view(), "spec.resource.group", json!("cluster.x-k8s.io")),
        accept("pattern", view(), "spec.resource.group", json!("")),
        reject("pattern", view(), "spec.resource.group", json!("apps/v1")),
        present(view(), "spec.resource.version"),
        missing(view(), "spec.resource.version"),
        accept("minLength", view(), "spec.resource.version", json!("v")),
        reject("minLength", view(), "spec.resource.version", json!("")),
        accept("maxLength", view(), "spec.resource.version", long(63)),
        reject("maxLength", view(), "spec.resource.version", long(64)),
        present(view(), "spec.resource.resource"),
        missing(view(), "spec.resource.resource"),
        accept("pattern", view(), "spec.resource.resource", json!("clusterprofiles")),
        reject("pattern", view(), "spec.resource.resource", json!("Deployment")),
        accept("minLength", view(), "spec.resource.resource", json!("r")),
        reject("minLength", view(), "spec.resource.resource", json!("")),
        accept("maxLength", view(), "spec.resource.resource", long(253)),
        reject("maxLength", view(), "spec.resource.resource", long(254)),
        accept("maxLength", view(), "spec.namespace", long(63)),
        reject("maxLength", view(), "spec.namespace", long(64)),
        accept("pattern", view(), "spec.namespace", json!("kube-system")),
        reject("pattern", view(), "spec.namespace", json!("Kube_System")),
        accept("maxLength", view(), "spec.labelSelector", long(1024)),
        reject("maxLength", view(), "spec.labelSelector", long(1025)),
        accept("pattern", view(), "spec.refreshInterval", json!("1h")),
        reject("pattern", view(), "spec.refreshInterval", json!("hourly")),
        accept("pattern", view(), "spec.perClusterTimeout", json!("2500ms")),
        reject("pattern", view(), "spec.perClusterTimeout", json!("10")),
        accept("minimum", view(), "spec.maxRows", json!(1)),
        reject("minimum", view(), "spec.maxRows", json!(0)),
        accept("maximum", view(), "spec.maxRows", json!(5000)),
        reject("maximum", view(), "spec.maxRows", json!(5001)),
    ];
    for list in ["names", "exclude"] {
        let field = format!("spec.clusters.{list}");
        let first = format!("{field}[0]");
        cases.extend([
            accept("maxItems", view(), &field, numbered("prod-", 100)),
            reject("maxItems", view(), &field, numbered("prod-", 101)),
            accept("minLength", view(), &first, json!("*")),
            reject("minLength", view(), &first, json!("")),
            accept("maxLength", view(), &first, long(253)),
            reject("maxLength", view(), &first, long(254)),
        ]);
    }
    cases
}

// ----- building blocks -----

fn case(keyword: &'static str, field: &str, object: Value, accepted: bool) -> Case {
    let kind = object["kind"]
        .as_str()
        .expect("base objects have a kind")
        .to_string();
    Case {
        kind,
        field: field.to_string(),
        keyword,
        object,
        accepted,
    }
}

fn accept(keyword: &'static str, base: Value, field: &str, value: Value) -> Case {
    case(keyword, field, set(base, field, value), true)
}

fn reject(keyword: &'static str, base: Value, field: &str, value: Value) -> Case {
    case(keyword, field, set(base, field, value), false)
}

fn accept_object(keyword: &'static str, field: &str, object: Value) -> Case {
    case(keyword, field, object, true)
}

fn reject_object(keyword: &'static str, field: &str, object: Value) -> Case {
    case(keyword, field, object, false)
}

fn present(base: Value, field: &str) -> Case {
    assert!(get(&base, field).is_some(), "base object lacks {field}");
    case("required", field, base, true)
}

fn missing(base: Value, field: &str) -> Case {
    case("required", field, unset(base, field), false)
}

/// A string of `n` letters (valid wherever only the length is constrained).
fn long(n: usize) -> Value {
    json!("a".repeat(n))
}

/// `n` distinct strings: `prefix` followed by a number.
fn numbered(prefix: &str, n: usize) -> Value {
    (0..n).map(|i| json!(format!("{prefix}{i}"))).collect()
}

fn overrides(n: usize) -> Value {
    (0..n)
        .map(|i| json!({"component": "kyverno", "values": {"replica": i}}))
        .collect()
}

fn access_entries(n: usize) -> Value {
    (0..n)
        .map(|i| json!({"principalArn": format!("arn:aws:iam::123456789012:role/team-{i}")}))
        .collect()
}

fn hosts(n: usize) -> Value {
    (0..n)
        .map(|i| json!({"address": format!("10.0.{}.{}", i / 200, i % 200 + 1)}))
        .collect()
}

fn taint_list(n: usize) -> Value {
    (0..n)
        .map(|i| json!({"key": format!("taint-{i}"), "effect": "NoSchedule"}))
        .collect()
}

fn preset_components(n: usize) -> Value {
    (0..n)
        .map(|i| json!({"name": format!("c-{i}"), "preset": "cert-manager"}))
        .collect()
}

fn cidrs(n: usize) -> Value {
    (0..n).map(|i| json!(format!("10.0.{i}.0/24"))).collect()
}

enum Step {
    Key(String),
    Index(usize),
}

/// `spec.hosts[1].port` as steps.
fn steps(path: &str) -> Vec<Step> {
    let mut out = Vec::new();
    for segment in path.split('.') {
        let mut parts = segment.split('[');
        let name = parts.next().unwrap_or_default();
        if !name.is_empty() {
            out.push(Step::Key(name.to_string()));
        }
        for index in parts {
            let index = index
                .trim_end_matches(']')
                .parse()
                .expect("list index is a number");
            out.push(Step::Index(index));
        }
    }
    out
}

fn get<'a>(mut value: &'a Value, path: &str) -> Option<&'a Value> {
    for step in steps(path) {
        value = match step {
            Step::Key(key) => value.get(key)?,
            Step::Index(index) => value.get(index)?,
        };
    }
    Some(value)
}

/// Parent of the last step, and the last step.
fn parent_mut<'a>(mut value: &'a mut Value, path: &str) -> (&'a mut Value, Step) {
    let mut steps = steps(path);
    let last = steps.pop().expect("path is not empty");
    for step in steps {
        value = match step {
            Step::Key(key) => value
                .as_object_mut()
                .expect("path runs through objects")
                .entry(key)
                .or_insert(json!({})),
            Step::Index(index) => {
                &mut value.as_array_mut().expect("path runs through lists")[index]
            }
        };
    }
    (value, last)
}

/// `object` with `path` set to `value` (objects on the way are created).
pub fn set(mut object: Value, path: &str, value: Value) -> Value {
    match parent_mut(&mut object, path) {
        (parent, Step::Key(key)) => {
            parent
                .as_object_mut()
                .expect("parent is an object")
                .insert(key, value);
        }
        (parent, Step::Index(index)) => {
            let list = parent.as_array_mut().expect("parent is a list");
            if index == list.len() {
                list.push(value)
            } else {
                list[index] = value
            }
        }
    }
    object
}

/// `object` without `path`.
pub fn unset(mut object: Value, path: &str) -> Value {
    match parent_mut(&mut object, path) {
        (parent, Step::Key(key)) => {
            parent
                .as_object_mut()
                .expect("parent is an object")
                .remove(&key)
                .expect("field to remove exists");
        }
        (parent, Step::Index(index)) => {
            parent
                .as_array_mut()
                .expect("parent is a list")
                .remove(index);
        }
    }
    object
}
