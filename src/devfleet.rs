//! Member clusters for development: development API servers seeded with a small, plausible
//! workload, published on a hub as sig-multicluster ClusterProfiles with a kubeconfig Secret
//! each — what `mk8 dev --member-clusters N`, the end-to-end tests and the fan-out benchmark
//! read across.
//!
//! Each member holds namespace `demo` (Deployment `web` rolled out, its Running pods with a log,
//! Service `web`, ConfigMap `web-config`) and a Running `coredns` pod in `kube-system`. On the
//! hub, `fleet/member-i` is a ClusterProfile of manager `mk8-dev` whose `mk8` access provider
//! names the Secret `fleet/member-i-kubeconfig` (key `value`), read by
//! `mk8 credentials kubeconfig-secret`.

use anyhow::Context;
use base64::Engine;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::{Value, json};

use crate::api::ClusterProfile;
use crate::api::clusterprofile::{
    CLUSTER_ID_PROPERTY, CLUSTER_MANAGER_LABEL, CONTROL_PLANE_HEALTHY, EXEC_EXTENSION, MK8_MANAGER,
};
use crate::apiserver::{DevServer, DevServerConfig, KUBERNETES_VERSION, LOG_ANNOTATION};

/// The upstream ClusterProfile CRD (kubernetes-sigs/cluster-inventory-api, unmodified).
pub const CLUSTERPROFILE_CRD: &str = include_str!("../config/upstream/clusterprofile-crd.yaml");
/// The cluster manager named by the profiles of development members.
pub const CLUSTER_MANAGER: &str = "mk8-dev";
/// The hub namespace holding the members' profiles and kubeconfig Secrets.
pub const FLEET_NAMESPACE: &str = "fleet";
/// The member namespace holding the sample workload.
pub const DEMO_NAMESPACE: &str = "demo";
/// Field manager of everything written here.
const FIELD_MANAGER: &str = "mk8-dev";
/// How many members start at once.
const STARTING_AT_ONCE: usize = 8;

/// How to start members.
#[derive(Debug, Clone)]
pub struct MemberOptions {
    /// Pods of Deployment `web` in each member (its `replicas`).
    pub pods: usize,
    /// Settings shared by every member server (latency, forbidden, bind, TLS); each member gets
    /// a free port, its own token and no data directory whatever this says.
    pub server: DevServerConfig,
}

impl Default for MemberOptions {
    fn default() -> Self {
        MemberOptions {
            pods: 2,
            server: DevServerConfig::default(),
        }
    }
}

/// The name of member `i` (from 1).
pub fn member_name(i: usize) -> String {
    format!("member-{i}")
}

/// The name of the hub Secret holding a member's kubeconfig.
pub fn kubeconfig_secret_name(member: &str) -> String {
    format!("{member}-kubeconfig")
}

/// Start `n` seeded members (`member-1`…`member-n`) and publish each on `hub`; the hub gets the
/// ClusterProfile CRD and namespace `fleet` first.
pub async fn start_members(
    hub: &DevServer,
    n: usize,
    options: &MemberOptions,
) -> anyhow::Result<Vec<DevServer>> {
    install_inventory(hub).await?;
    let hub_client = hub.client().await?;
    futures::stream::iter(1..=n)
        .map(|i| {
            let hub_client = hub_client.clone();
            async move {
                let name = member_name(i);
                let member = DevServer::start(DevServerConfig {
                    port: 0,
                    data_dir: None,
                    token: None,
                    ..options.server.clone()
                })
                .await
                .with_context(|| format!("starting {name}"))?;
                seed_member(&member, &name, options.pods)
                    .with_context(|| format!("seeding {name}"))?;
                publish_member(&hub_client, &name, &member)
                    .await
                    .with_context(|| format!("publishing {name} on the hub"))?;
                anyhow::Ok(member)
            }
        })
        .buffered(STARTING_AT_ONCE)
        .try_collect()
        .await
}

/// Install the ClusterProfile CRD and namespace `fleet` on a development hub.
pub async fn install_inventory(hub: &DevServer) -> anyhow::Result<()> {
    hub.apply_manifests(CLUSTERPROFILE_CRD)
        .await
        .context("installing the ClusterProfile CRD")?;
    hub.apply_manifests(&format!(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {FLEET_NAMESPACE}\n"
    ))
    .await
    .context("creating namespace fleet")
}

/// Publish `member` on the hub `hub` reaches: Secret `fleet/<name>-kubeconfig` (key `value`)
/// and ClusterProfile `fleet/<name>` with its status. The profile's `member` label is the name
/// without its `member-` prefix. The hub needs the ClusterProfile CRD and namespace `fleet`.
pub async fn publish_member(
    hub: &kube::Client,
    name: &str,
    member: &DevServer,
) -> anyhow::Result<()> {
    let apply = PatchParams::apply(FIELD_MANAGER).force();
    let namespaces: Api<Namespace> = Api::all(hub.clone());
    namespaces
        .patch(
            FLEET_NAMESPACE,
            &apply,
            &Patch::Apply(json!({"apiVersion": "v1", "kind": "Namespace",
                                 "metadata": {"name": FLEET_NAMESPACE}})),
        )
        .await
        .context("creating namespace fleet")?;
    let secret = kubeconfig_secret_name(name);
    let secrets: Api<Secret> = Api::namespaced(hub.clone(), FLEET_NAMESPACE);
    secrets
        .patch(
            &secret,
            &apply,
            &Patch::Apply(kubeconfig_secret(&secret, &member.kubeconfig())),
        )
        .await
        .with_context(|| format!("writing Secret {FLEET_NAMESPACE}/{secret}"))?;
    let profiles: Api<ClusterProfile> = Api::namespaced(hub.clone(), FLEET_NAMESPACE);
    let (profile, status) = profile(name, member);
    profiles
        .patch(name, &apply, &Patch::Apply(profile))
        .await
        .with_context(|| format!("writing ClusterProfile {FLEET_NAMESPACE}/{name}"))?;
    profiles
        .patch_status(name, &apply, &Patch::Apply(status))
        .await
        .with_context(|| {
            format!("writing the status of ClusterProfile {FLEET_NAMESPACE}/{name}")
        })?;
    Ok(())
}

fn kubeconfig_secret(name: &str, kubeconfig: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": FLEET_NAMESPACE},
        "type": "Opaque",
        "data": {"value": base64::engine::general_purpose::STANDARD.encode(kubeconfig)},
    })
}

/// The profile (metadata and spec) and its status, as apply patches.
fn profile(name: &str, member: &DevServer) -> (Value, Value) {
    let index = name.strip_prefix("member-").unwrap_or(name);
    let head = json!({
        "apiVersion": "multicluster.x-k8s.io/v1alpha1",
        "kind": "ClusterProfile",
        "metadata": {
            "name": name,
            "namespace": FLEET_NAMESPACE,
            "labels": {CLUSTER_MANAGER_LABEL: CLUSTER_MANAGER, "env": "dev", "member": index},
        },
        "spec": {"displayName": name, "clusterManager": {"name": CLUSTER_MANAGER}},
    });
    let mut cluster = json!({
        "server": member.url(),
        "extensions": [{
            "name": EXEC_EXTENSION,
            "extension": {
                "name": kubeconfig_secret_name(name),
                "namespace": FLEET_NAMESPACE,
                "key": "value",
            },
        }],
    });
    if let Some(ca) = member.ca_pem() {
        cluster["certificate-authority-data"] =
            json!(base64::engine::general_purpose::STANDARD.encode(ca));
    }
    let mut status = head.clone();
    if let Some(m) = status.as_object_mut() {
        m.remove("spec");
    }
    status["status"] = json!({
        "conditions": [{
            "type": CONTROL_PLANE_HEALTHY,
            "status": "True",
            "reason": "DevServerServing",
            "message": "the development API server answers",
            "lastTransitionTime": now(),
        }],
        "version": {"kubernetes": KUBERNETES_VERSION},
        "properties": [{"name": CLUSTER_ID_PROPERTY, "value": name}],
        "accessProviders": [{"name": MK8_MANAGER, "cluster": cluster}],
    });
    (head, status)
}

/// Write the sample workload into a member (`pods`: replicas of Deployment `web`).
pub fn seed_member(member: &DevServer, name: &str, pods: usize) -> anyhow::Result<()> {
    for doc in workload(name, pods, &now()) {
        member.apply_object(&doc)?;
    }
    Ok(())
}

/// The objects of a member's sample workload (pure; `now` as RFC 3339).
pub fn workload(member: &str, pods: usize, now: &str) -> Vec<Value> {
    let template_hash = name_suffix(member, "web", 10);
    let node = format!("{member}-control-plane");
    let mut out = vec![
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": DEMO_NAMESPACE}}),
        json!({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": node, "labels": {"kubernetes.io/hostname": node,
                         "node-role.kubernetes.io/control-plane": ""}},
            "status": {
                "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                                "message": "kubelet is posting ready status",
                                "lastHeartbeatTime": now, "lastTransitionTime": now}],
                "nodeInfo": {"kubeletVersion": KUBERNETES_VERSION},
            },
        }),
        json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "web-config", "namespace": DEMO_NAMESPACE},
            "data": {"index.html": format!("<h1>hello from {member}</h1>\n")},
        }),
        json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web", "namespace": DEMO_NAMESPACE, "labels": {"app": "web"}},
            "spec": {
                "type": "ClusterIP",
                "clusterIP": "10.96.12.34",
                "clusterIPs": ["10.96.12.34"],
                "selector": {"app": "web"},
                "ports": [{"name": "http", "port": 80, "targetPort": 80, "protocol": "TCP"}],
            },
            "status": {"loadBalancer": {}},
        }),
        deployment(pods, &template_hash, now),
    ];
    let mut taken = std::collections::HashSet::new();
    for i in 0..pods {
        // Five characters of 27 collide now and then in thousands of pods: salt again.
        let name = (0..)
            .map(|attempt| {
                let salt = if attempt == 0 {
                    i.to_string()
                } else {
                    format!("{i}-{attempt}")
                };
                format!("web-{template_hash}-{}", name_suffix(member, &salt, 5))
            })
            .find(|n| !taken.contains(n))
            .expect("an unused name");
        taken.insert(name.clone());
        let log = nginx_log(now);
        out.push(running_pod(
            DEMO_NAMESPACE,
            &name,
            json!({"app": "web", "pod-template-hash": template_hash}),
            ("web", "nginx:1.27.3"),
            (&node, &format!("10.244.0.{}", 10 + i % 240)),
            &log,
            now,
        ));
    }
    let coredns = format!(
        "coredns-{}-{}",
        name_suffix(member, "coredns", 10),
        name_suffix(member, "coredns-pod", 5)
    );
    out.push(running_pod(
        "kube-system",
        &coredns,
        json!({"k8s-app": "kube-dns"}),
        ("coredns", "registry.k8s.io/coredns/coredns:v1.12.0"),
        (&node, "10.244.0.2"),
        ".:53\n[INFO] plugin/reload: Running configuration SHA512 = 1b226df79860026c6a52e67daa10d7f0d57ec5b023288ec00c5e05f93523c894564e15b91770d3a07ae1cfbe861d15b37d4a0027e69c546ab112970993a3b03b\nCoreDNS-1.12.0\nlinux/amd64, go1.23.3, 51e11f1\n",
        now,
    ));
    out
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn deployment(replicas: usize, template_hash: &str, now: &str) -> Value {
    let condition = |type_: &str, reason: &str, message: String| {
        json!({"type": type_, "status": "True", "reason": reason, "message": message,
               "lastUpdateTime": now, "lastTransitionTime": now})
    };
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": DEMO_NAMESPACE, "generation": 1,
                     "labels": {"app": "web"},
                     "annotations": {"deployment.kubernetes.io/revision": "1"}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "nginx:1.27.3",
                                         "ports": [{"containerPort": 80}]}]},
            },
        },
        "status": {
            "observedGeneration": 1,
            "replicas": replicas,
            "updatedReplicas": replicas,
            "readyReplicas": replicas,
            "availableReplicas": replicas,
            "conditions": [
                condition("Available", "MinimumReplicasAvailable",
                          "Deployment has minimum availability.".into()),
                condition("Progressing", "NewReplicaSetAvailable",
                          format!("ReplicaSet \"web-{template_hash}\" has successfully progressed.")),
            ],
        },
    })
}

fn running_pod(
    namespace: &str,
    name: &str,
    labels: Value,
    (container, image): (&str, &str),
    (node, ip): (&str, &str),
    log: &str,
    now: &str,
) -> Value {
    let conditions: Vec<Value> = [
        "PodReadyToStartContainers",
        "Initialized",
        "Ready",
        "ContainersReady",
        "PodScheduled",
    ]
    .iter()
    .map(|t| json!({"type": t, "status": "True", "lastTransitionTime": now}))
    .collect();
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": labels,
                     "annotations": {LOG_ANNOTATION: log}},
        "spec": {
            "nodeName": node,
            "containers": [{"name": container, "image": image}],
            "restartPolicy": "Always",
            "schedulerName": "default-scheduler",
            "serviceAccountName": "default",
        },
        "status": {
            "phase": "Running",
            "conditions": conditions,
            "hostIP": "172.18.0.2",
            "podIP": ip,
            "podIPs": [{"ip": ip}],
            "startTime": now,
            "qosClass": "BestEffort",
            "containerStatuses": [{
                "name": container,
                "image": image,
                "imageID": format!("docker.io/library/{image}"),
                "containerID": format!("containerd://{}", name_suffix(name, container, 64)),
                "ready": true,
                "started": true,
                "restartCount": 0,
                "state": {"running": {"startedAt": now}},
            }],
        },
    })
}

/// A few lines an nginx container prints when it starts and answers its probes.
fn nginx_log(now: &str) -> String {
    let at = chrono::DateTime::parse_from_rfc3339(now)
        .map(|t| t.format("%Y/%m/%d %H:%M:%S").to_string())
        .unwrap_or_default();
    let clf = chrono::DateTime::parse_from_rfc3339(now)
        .map(|t| t.format("%d/%b/%Y:%H:%M:%S +0000").to_string())
        .unwrap_or_default();
    format!(
        "/docker-entrypoint.sh: Configuration complete; ready for start up\n\
         {at} [notice] 1#1: using the \"epoll\" event method\n\
         {at} [notice] 1#1: nginx/1.27.3\n\
         {at} [notice] 1#1: start worker processes\n\
         10.244.0.1 - - [{clf}] \"GET / HTTP/1.1\" 200 615 \"-\" \"kube-probe/1.33\"\n"
    )
}

/// A stable name suffix from kube-apiserver's alphabet (no vowels, no look-alikes), so a
/// member's pods keep their names across runs.
fn name_suffix(seed: &str, salt: &str, len: usize) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut state: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in seed.bytes().chain([0]).chain(salt.bytes()) {
        state = (state ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
    }
    (0..len)
        .map(|_| {
            state ^= state >> 33;
            state = state.wrapping_mul(0xff51_afd7_ed55_8ccd);
            ALPHABET[(state % ALPHABET.len() as u64) as usize] as char
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_member_workload_is_rolled_out_with_distinct_pod_names() {
        let objects = workload("member-1", 3, "2026-01-02T03:04:05Z");
        let pods: Vec<&Value> = objects
            .iter()
            .filter(|o| o["kind"] == "Pod" && o["metadata"]["namespace"] == DEMO_NAMESPACE)
            .collect();
        assert_eq!(pods.len(), 3);
        let names: std::collections::BTreeSet<&str> = pods
            .iter()
            .map(|p| p["metadata"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(names.len(), 3, "{names:?}");
        assert!(
            names
                .iter()
                .all(|n| n.starts_with("web-") && n.len() == 4 + 10 + 1 + 5)
        );
        let deployment = objects.iter().find(|o| o["kind"] == "Deployment").unwrap();
        assert_eq!(deployment["status"]["readyReplicas"], 3);
        assert!(
            pods[0]["metadata"]["annotations"][LOG_ANNOTATION]
                .as_str()
                .unwrap()
                .contains("nginx/1.27.3")
        );
        assert_ne!(
            workload("member-2", 1, "2026-01-02T03:04:05Z")[5]["metadata"]["name"],
            pods[0]["metadata"]["name"]
        );
    }

    #[test]
    fn the_embedded_crd_is_the_upstream_one() {
        let shared = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/reference/crds/clusterprofile-crd.yaml");
        if let Ok(upstream) = std::fs::read_to_string(&shared) {
            assert_eq!(CLUSTERPROFILE_CRD, upstream, "config/upstream/ drifted");
        }
    }
}
