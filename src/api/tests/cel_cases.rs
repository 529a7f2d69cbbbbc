//! Every CEL rule of every kind, with objects it must accept and reject: plain data, used by the
//! client-side check (`cel.rs`) and replayed against the real and the development API server by
//! `tests/e2e/admission.rs` (which includes this file and `fixtures.rs` with `#[path]`, hence the
//! `mk8::` paths).

use mk8::api::nodepool::{Scaling, SshHost};
use mk8::api::stack::Component;
use mk8::api::{Cluster, ClusterProfileView, NodePool, Stack};

use super::fixtures::*;

/// One rule, as written in the CRD, with objects it accepts and rejects.
pub struct RuleCase<K> {
    /// The CEL expression, exactly as in the CRD.
    pub rule: &'static str,
    /// For transition rules: the stored object the examples update.
    pub old: Option<K>,
    /// Objects the rule accepts.
    pub accepted: Vec<K>,
    /// Objects the rule rejects (and no other rule or constraint does).
    pub rejected: Vec<K>,
}

fn rule<K>(rule: &'static str) -> RuleCase<K> {
    RuleCase {
        rule,
        old: None,
        accepted: Vec::new(),
        rejected: Vec::new(),
    }
}

impl<K> RuleCase<K> {
    fn after(mut self, old: K) -> Self {
        self.old = Some(old);
        self
    }
    fn accepts(mut self, object: K) -> Self {
        self.accepted.push(object);
        self
    }
    fn rejects(mut self, object: K) -> Self {
        self.rejected.push(object);
        self
    }
}

/// The rules of Cluster.
pub fn cluster_rules() -> Vec<RuleCase<Cluster>> {
    let (eks, rke2) = (cluster_eks, cluster_rke2);
    vec![
        rule("has(self.eks) != has(self.rke2)")
            .accepts(eks())
            .accepts(rke2())
            .rejects(eks().with(|s| s.rke2 = Some(rke2_spec())))
            .rejects(eks().with(|s| s.eks = None)),
        rule("has(self.eks) == has(oldSelf.eks)")
            .after(eks())
            .accepts(eks().with(|s| s.paused = true))
            .rejects(eks().with(|s| (s.eks, s.rke2) = (None, Some(rke2_spec())))),
        rule("has(self.eks) == has(oldSelf.eks)")
            .after(rke2())
            .accepts(rke2().with(|s| s.kubernetes_version = None))
            .rejects(rke2().with(|s| (s.eks, s.rke2) = (eks().spec.eks, None))),
        rule("!has(self.rke2) || !has(self.kubernetesVersion) || self.rke2.version.startsWith('v' + self.kubernetesVersion + '.')")
            .accepts(rke2())
            .accepts(rke2().with(|s| s.kubernetes_version = None))
            .accepts(eks().with(|s| s.kubernetes_version = Some("1.30".into())))
            .rejects(rke2().with(|s| s.kubernetes_version = Some("1.32".into())))
            .rejects(rke2().with(|s| s.kubernetes_version = Some("1.3".into()))),
        rule("self == oldSelf")
            .after(eks())
            .accepts(eks().with(|s| s.paused = true))
            .rejects(eks().with(|s| s.eks.as_mut().unwrap().region = "us-east-1".into())),
        rule("self.all(e, self.filter(o, o.principalArn == e.principalArn).size() == 1)")
            .accepts(eks().with(|s| {
                s.eks.as_mut().unwrap().access_entries.push(access_entry("arn:aws:iam::123456789012:user/alice"))
            }))
            .rejects(eks().with(|s| {
                let entries = &mut s.eks.as_mut().unwrap().access_entries;
                let mut viewer = entries[0].clone();
                viewer.policy_arn = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy".into();
                entries.push(viewer);
            })),
        rule("has(self.create) != (has(self.subnetIds) && size(self.subnetIds) > 0)")
            .accepts(eks())
            .accepts(eks().with(|s| s.eks.as_mut().unwrap().vpc = new_vpc()))
            .rejects(eks().with(|s| s.eks.as_mut().unwrap().vpc.create = new_vpc().create))
            .rejects(eks().with(|s| s.eks.as_mut().unwrap().vpc.subnet_ids.clear())),
        rule("size(self) == 0 || size(self) >= 2")
            .accepts(eks())
            .rejects(eks().with(|s| s.eks.as_mut().unwrap().vpc.subnet_ids.truncate(1))),
        rule("has(self.baseURL) != has(self.path)")
            .accepts(rke2())
            .accepts(rke2().with(|s| {
                let artifacts = &mut s.rke2.as_mut().unwrap().artifacts;
                (artifacts.base_url, artifacts.path) = (None, Some("/var/lib/mk8/rke2".into()));
            }))
            .rejects(rke2().with(|s| s.rke2.as_mut().unwrap().artifacts.path = Some("/var/lib/mk8/rke2".into())))
            .rejects(rke2().with(|s| s.rke2.as_mut().unwrap().artifacts.base_url = None)),
    ]
}

/// The rules of NodePool.
pub fn nodepool_rules() -> Vec<RuleCase<NodePool>> {
    let (eks, ssh) = (nodepool_eks, nodepool_ssh);
    let scaling = |min, desired, max| {
        move |s: &mut mk8::api::NodePoolSpec| {
            s.eks.as_mut().unwrap().scaling = Scaling { min, desired, max }
        }
    };
    let step_timeout = |t: &str| {
        let t = t.to_string();
        move |s: &mut mk8::api::NodePoolSpec| s.ssh.as_mut().unwrap().step_timeout = t
    };
    vec![
        rule("has(self.eks) != has(self.ssh)")
            .accepts(eks())
            .accepts(ssh())
            .rejects(eks().with(|s| s.ssh = Some(ssh_pool_spec())))
            .rejects(eks().with(|s| s.eks = None)),
        rule("has(self.eks) == has(oldSelf.eks)")
            .after(eks())
            .accepts(eks().with(scaling(1, 4, 5)))
            .rejects(eks().with(|s| (s.eks, s.ssh) = (None, Some(ssh_pool_spec())))),
        rule("self == oldSelf")
            .after(ssh())
            .accepts(ssh().with(|s| s.ssh.as_mut().unwrap().hosts.push(host("10.0.0.23"))))
            .rejects(ssh().with(|s| s.cluster_name = "edge-2".into())),
        rule("self.min <= self.desired && self.desired <= self.max")
            .accepts(eks().with(scaling(2, 2, 2)))
            .accepts(eks().with(scaling(0, 0, 1)))
            .rejects(eks().with(scaling(1, 6, 5)))
            .rejects(eks().with(scaling(3, 2, 5))),
        rule("self.all(h, self.filter(o, o.address == h.address).size() == 1)")
            .accepts(ssh())
            .rejects(ssh().with(|s| {
                s.ssh.as_mut().unwrap().hosts.push(SshHost {
                    port: Some(2200),
                    ..host("10.0.0.21")
                })
            })),
        rule("duration(self) >= duration('10s') && duration(self) <= duration('2h')")
            .accepts(ssh().with(step_timeout("10s")))
            .accepts(ssh().with(step_timeout("1h59m60s")))
            .rejects(ssh().with(step_timeout("9s")))
            .rejects(ssh().with(step_timeout("2h1s"))),
    ]
}

/// The rules of Stack.
pub fn stack_rules() -> Vec<RuleCase<Stack>> {
    let components = |list: Vec<Component>| move |s: &mut mk8::api::StackSpec| s.components = list;
    let wave_timeout =
        |t: &'static str| move |s: &mut mk8::api::StackSpec| s.wave_timeout = t.into();
    vec![
        rule("self.all(c, self.filter(o, o.name == c.name).size() == 1)")
            .accepts(stack())
            .rejects(stack().with(|s| s.components.push(preset("cert-manager")))),
        rule("duration(self) >= duration('30s') && duration(self) <= duration('6h')")
            .accepts(stack().with(wave_timeout("30s")))
            .accepts(stack().with(wave_timeout("6h")))
            .rejects(stack().with(wave_timeout("29s")))
            .rejects(stack().with(wave_timeout("6h0m1s"))),
        rule(
            "(has(self.preset) ? 1 : 0) + (has(self.helm) ? 1 : 0) + (has(self.git) ? 1 : 0) + (has(self.bundle) ? 1 : 0) == 1",
        )
        .accepts(stack())
        .accepts(stack().with(components(vec![Component {
            name: "observability".into(),
            bundle: Some("observability".into()),
            ..Component::default()
        }])))
        .rejects(stack().with(|s| s.components[0].bundle = Some("observability".into())))
        .rejects(stack().with(|s| s.components[0].helm = Some(helm_source())))
        .rejects(stack().with(|s| s.components[2].preset = Some("policies".into())))
        .rejects(stack().with(components(vec![Component {
            name: "empty".into(),
            ..Component::default()
        }]))),
        rule("!has(self.dependsOn) || !(self.name in self.dependsOn)")
            .accepts(stack())
            .rejects(stack().with(|s| s.components[1].depends_on.push("kyverno".into()))),
    ]
}

/// The rules of ClusterProfileView.
pub fn view_rules() -> Vec<RuleCase<ClusterProfileView>> {
    let timing = |refresh: &'static str, timeout: &'static str| {
        move |s: &mut mk8::api::ClusterProfileViewSpec| {
            (s.refresh_interval, s.per_cluster_timeout) = (refresh.into(), timeout.into())
        }
    };
    vec![
        rule("duration(self.perClusterTimeout) < duration(self.refreshInterval)")
            .accepts(view())
            .accepts(view().with(timing("30s", "29s")))
            .rejects(view().with(timing("30s", "30s")))
            .rejects(view().with(timing("30s", "1m"))),
        rule("duration(self) >= duration('5s') && duration(self) <= duration('24h')")
            .accepts(view().with(timing("5s", "1s")))
            .accepts(view().with(timing("24h", "10s")))
            .rejects(view().with(timing("4s", "1s")))
            .rejects(view().with(timing("25h", "10s"))),
        rule("duration(self) >= duration('1s') && duration(self) <= duration('5m')")
            .accepts(view().with(timing("60s", "1s")))
            .accepts(view().with(timing("10m", "5m")))
            .rejects(view().with(timing("60s", "999ms")))
            .rejects(view().with(timing("10m", "5m1s"))),
    ]
}
