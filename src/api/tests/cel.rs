//! Every CEL rule of every kind, with objects it must accept and reject, evaluated client-side
//! through the generated `validate_cel` / `validate_cel_update`.

use kube::CustomResourceExt;
use kube::core::cel::ValidationErrors;
use serde::Serialize;
use serde_json::Value;

use super::fixtures::*;
use super::schema_check;
use crate::api::nodepool::{Scaling, SshHost};
use crate::api::stack::Component;
use crate::api::{Cluster, ClusterProfileView, NodePool, Stack};

/// The generated CEL entry points of a kind.
trait Cel: CustomResourceExt + Serialize {
    fn on_create(&self) -> Result<(), ValidationErrors>;
    fn on_update(&self, old: &Self) -> Result<(), ValidationErrors>;
}

macro_rules! cel {
    ($($kind:ty),*) => {$(
        impl Cel for $kind {
            fn on_create(&self) -> Result<(), ValidationErrors> {
                <$kind>::validate_cel(self)
            }
            fn on_update(&self, old: &Self) -> Result<(), ValidationErrors> {
                <$kind>::validate_cel_update(self, old)
            }
        }
    )*};
}

cel!(Cluster, NodePool, Stack, ClusterProfileView);

/// One rule, as written in the CRD, with objects it accepts and rejects.
struct RuleCase<K> {
    rule: &'static str,
    /// For transition rules: the stored object the examples update.
    old: Option<K>,
    accepted: Vec<K>,
    rejected: Vec<K>,
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

/// A CEL rule found in a CRD schema.
#[derive(Debug)]
pub struct CrdRule {
    /// Schema path of the field carrying the rule (`spec.components[]`).
    pub field: String,
    /// The CEL expression.
    pub rule: String,
    /// The message shown to the user.
    pub message: String,
}

/// Every `x-kubernetes-validations` rule of a CRD schema.
pub fn crd_rules(schema: &Value) -> Vec<CrdRule> {
    fn walk(schema: &Value, field: &str, out: &mut Vec<CrdRule>) {
        for rule in schema
            .get("x-kubernetes-validations")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            out.push(CrdRule {
                field: field.to_string(),
                rule: rule["rule"].as_str().unwrap_or_default().to_string(),
                message: rule["message"].as_str().unwrap_or_default().to_string(),
            });
        }
        for (name, child) in schema
            .get("properties")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            let path = if field.is_empty() {
                name.clone()
            } else {
                format!("{field}.{name}")
            };
            walk(child, &path, out);
        }
        if let Some(items) = schema.get("items") {
            walk(items, &format!("{field}[]"), out);
        }
    }
    let mut out = Vec::new();
    walk(schema, "", &mut out);
    out
}

/// `spec.components[3]` → `spec.components[]`.
fn schema_path(path: &str) -> String {
    regex::Regex::new(r"\[[0-9]+\]")
        .expect("valid regex")
        .replace_all(path, "[]")
        .into_owned()
}

/// The spec of an object as one line of JSON, for failure messages.
fn spec_json<K: Serialize>(object: &K) -> String {
    serde_json::to_value(object)
        .map(|v| v["spec"].to_string())
        .unwrap_or_default()
}

/// Runs the cases of one kind and checks that they cover every rule of its CRD.
fn check_rules<K: Cel>(cases: Vec<RuleCase<K>>) {
    let schema = schema_check::openapi_schema(&K::crd());
    let rules = crd_rules(&schema);
    let kind = K::crd().spec.names.kind;
    let mut failures = Vec::new();
    for case in &cases {
        let Some(crd_rule) = rules.iter().find(|r| r.rule == case.rule) else {
            failures.push(format!("{kind}: rule `{}` is not in the CRD", case.rule));
            continue;
        };
        let validate = |object: &K| match &case.old {
            Some(old) => object.on_update(old),
            None => object.on_create(),
        };
        if case.accepted.is_empty() || case.rejected.is_empty() {
            failures.push(format!(
                "{kind}: rule `{}` needs an accepted and a rejected example",
                case.rule
            ));
        }
        for object in &case.accepted {
            if let Err(errors) = validate(object) {
                let spec = spec_json(object);
                failures.push(format!(
                    "{kind}: `{}` should accept {spec}\n  but: {errors:?}",
                    case.rule
                ));
            }
        }
        for object in &case.rejected {
            match validate(object) {
                Ok(()) => failures.push(format!(
                    "{kind}: `{}` should reject {}",
                    case.rule,
                    spec_json(object)
                )),
                Err(errors) => {
                    for error in errors.iter() {
                        if error.message != crd_rule.message {
                            failures.push(format!(
                                "{kind}: `{}` example fails another rule too: {error}",
                                case.rule
                            ));
                        }
                        let field = schema_path(&error.field_path);
                        if !error.message.contains(&field) || !error.message.contains("spec.") {
                            failures.push(format!(
                                "{kind}: message of `{}` does not name its field {field}: {}",
                                case.rule, error.message
                            ));
                        }
                    }
                }
            }
            if case.old.is_some() && object.on_create().is_err() {
                failures.push(format!(
                    "{kind}: transition rule `{}` fires on create too",
                    case.rule
                ));
            }
        }
        // The examples break nothing but the rule: the OpenAPI part of the schema accepts them.
        for object in case.accepted.iter().chain(&case.rejected) {
            let json = serde_json::to_value(object).expect("object serializes");
            for violation in schema_check::check(&schema, &json) {
                failures.push(format!(
                    "{kind}: example of `{}` breaks the schema: {violation:?}",
                    case.rule
                ));
            }
        }
    }
    for crd_rule in &rules {
        if !cases.iter().any(|c| c.rule == crd_rule.rule) {
            failures.push(format!(
                "{kind}: rule `{}` on {} has no test case",
                crd_rule.rule, crd_rule.field
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} CEL rule failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn cluster_rules() {
    let (eks, rke2) = (cluster_eks, cluster_rke2);
    check_rules(vec![
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
    ]);
}

#[test]
fn nodepool_rules() {
    let (eks, ssh) = (nodepool_eks, nodepool_ssh);
    let scaling = |min, desired, max| {
        move |s: &mut crate::api::NodePoolSpec| {
            s.eks.as_mut().unwrap().scaling = Scaling { min, desired, max }
        }
    };
    let step_timeout = |t: &str| {
        let t = t.to_string();
        move |s: &mut crate::api::NodePoolSpec| s.ssh.as_mut().unwrap().step_timeout = t
    };
    check_rules(vec![
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
    ]);
}

#[test]
fn stack_rules() {
    let components =
        |list: Vec<Component>| move |s: &mut crate::api::StackSpec| s.components = list;
    let wave_timeout =
        |t: &'static str| move |s: &mut crate::api::StackSpec| s.wave_timeout = t.into();
    check_rules(vec![
        rule("self.all(c, self.filter(o, o.name == c.name).size() == 1)")
            .accepts(stack())
            .rejects(stack().with(|s| s.components.push(preset("cert-manager")))),
        rule("duration(self) >= duration('30s') && duration(self) <= duration('6h')")
            .accepts(stack().with(wave_timeout("30s")))
            .accepts(stack().with(wave_timeout("6h")))
            .rejects(stack().with(wave_timeout("29s")))
            .rejects(stack().with(wave_timeout("6h0m1s"))),
        rule(
            "(has(self.preset) ? 1 : 0) + (has(self.helm) ? 1 : 0) + (has(self.git) ? 1 : 0) == 1",
        )
        .accepts(stack())
        .rejects(stack().with(|s| s.components[0].helm = Some(helm_source())))
        .rejects(stack().with(|s| s.components[2].preset = Some("policies".into())))
        .rejects(stack().with(components(vec![Component {
            name: "empty".into(),
            ..Component::default()
        }]))),
        rule("!has(self.dependsOn) || !(self.name in self.dependsOn)")
            .accepts(stack())
            .rejects(stack().with(|s| s.components[1].depends_on.push("kyverno".into()))),
    ]);
}

#[test]
fn view_rules() {
    let timing = |refresh: &'static str, timeout: &'static str| {
        move |s: &mut crate::api::ClusterProfileViewSpec| {
            (s.refresh_interval, s.per_cluster_timeout) = (refresh.into(), timeout.into())
        }
    };
    check_rules(vec![
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
    ]);
}
