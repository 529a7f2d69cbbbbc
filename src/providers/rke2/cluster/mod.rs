//! RKE2 control plane of a Cluster (I/O): the generated join token, and once the server pools are
//! ready, the kubeconfig fetched from the first server, pointed at the registration address and
//! stored in the Secret `<cluster>-kubeconfig` owned by the Cluster.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{ListParams, Patch, PatchParams};
use kube::{Api, Resource, ResourceExt};

use crate::api::nodepool::NodeRole;
use crate::api::{Cluster, NodePool, Phase};
use crate::providers::rke2::access;
use crate::providers::rke2::nodes::{NodeApi, WorkloadCluster};
use crate::providers::ssh::{Cmd, Script};
use crate::providers::{ClusterOutcome, NodeShell};
use crate::reconcile::conditions::{self, Desired, types};
use crate::reconcile::env::{Env, FIELD_MANAGER};
use crate::reconcile::error::Result;

mod readiness;

pub use readiness::point_at;
use readiness::{installed_nodes, is_server_pool, nodes_ready, versions};

/// Reasons of the RKE2 stage.
pub mod reasons {
    /// The server pools are still installing.
    pub const CONTROL_PLANE_JOINING: &str = "ControlPlaneJoining";
    /// The servers are ready and the kubeconfig is stored.
    pub const CONTROL_PLANE_READY: &str = "ControlPlaneReady";
    /// The kubeconfig could not be read from the first server.
    pub const KUBECONFIG_UNAVAILABLE: &str = "KubeconfigUnavailable";
    /// The API does not answer through the stored kubeconfig.
    pub const API_UNREACHABLE: &str = "APIUnreachable";
    /// Nodes mk8 installed are missing from the API or not Ready there.
    pub const NODES_NOT_READY: &str = "NodesNotReady";
}

/// How often a Ready cluster's API and nodes are checked again.
const RECHECK: Duration = Duration::from_secs(60);

/// Drive the control plane: the join token, then once the server pools are ready, the
/// kubeconfig and the API's readiness; `None` when the Cluster has no `spec.rke2`.
pub async fn reconcile(
    shell: &dyn NodeShell,
    env: &Env,
    cluster: &Cluster,
) -> Result<Option<ClusterOutcome>> {
    let Some(mut work) = control_plane(shell, env, cluster).await? else {
        return Ok(None);
    };
    let ns = cluster.namespace().unwrap_or_default();
    let pools: Vec<NodePool> = Api::<NodePool>::namespaced(env.client.clone(), &ns)
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter(|p| p.spec.cluster_name == cluster.name_any() && p.spec.ssh.is_some())
        .collect();
    let wanted = cluster
        .spec
        .rke2
        .as_ref()
        .map(|r| r.version.clone())
        .unwrap_or_default();
    (work.version, work.phase) = versions(&pools, &wanted, work.phase);
    Ok(Some(work))
}

async fn control_plane(
    shell: &dyn NodeShell,
    env: &Env,
    cluster: &Cluster,
) -> Result<Option<ClusterOutcome>> {
    let Some(rke2) = &cluster.spec.rke2 else {
        return Ok(None);
    };
    let ns = cluster.namespace().unwrap_or_default();
    let name = cluster.name_any();
    let secrets: Api<Secret> = Api::namespaced(env.client.clone(), &ns);
    let given_token = rke2
        .config
        .as_ref()
        .is_some_and(|c| c.contains_key("token"));
    if !given_token {
        ensure_token(cluster, &secrets).await?;
    }
    let all_pools: Vec<NodePool> = Api::<NodePool>::namespaced(env.client.clone(), &ns)
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter(|p| p.spec.cluster_name == name && p.spec.ssh.is_some())
        .collect();
    let pools: Vec<NodePool> = all_pools
        .iter()
        .filter(|p| is_server_pool(p))
        .cloned()
        .collect();
    let server_pools: Vec<&NodePool> = pools.iter().collect();
    let waiting: Vec<String> = pools
        .iter()
        .filter(|p| {
            let status = p.status.as_ref();
            conditions::find(
                status.map(|s| s.conditions.as_slice()).unwrap_or_default(),
                types::READY,
            )
            .is_none_or(|c| c.status != "True")
        })
        .map(|p| {
            let s = p.status.clone().unwrap_or_default();
            format!(
                "{} ({} of {} ready)",
                p.name_any(),
                s.ready,
                p.desired_nodes()
            )
        })
        .collect();
    let joining = |message: String| ClusterOutcome {
        phase: Phase::Provisioning,
        ready: Desired::no(types::READY, reasons::CONTROL_PLANE_JOINING, message),
        endpoint: None,
        kubeconfig_secret_name: None,
        version: None,
        requeue: Some(Duration::from_secs(5)),
    };
    if !waiting.is_empty() {
        return Ok(Some(joining(format!(
            "waiting for server pools: {}",
            waiting.join(", ")
        ))));
    }
    let bootstrap = access::bootstrap(&server_pools);
    let Some((first_pool, first)) = access::kubeconfig_source(&server_pools, &bootstrap) else {
        return Ok(Some(joining("no server pool has hosts yet".into())));
    };
    let Some(registration) = access::registration_address(cluster, &bootstrap) else {
        return Ok(Some(joining(
            "the host that bootstrapped the cluster left the spec and \
             spec.rke2.registrationAddress is not set: the server pools say what to do"
                .into(),
        )));
    };
    let secret_name = &rke2.ssh_credentials_secret_ref.name;
    let Some(Ok((credentials, known_hosts))) = secrets
        .get_opt(secret_name)
        .await?
        .map(|s| access::credentials(&s))
    else {
        return Ok(Some(joining(format!(
            "Secret {ns}/{secret_name} with the SSH key is missing or incomplete"
        ))));
    };
    let ssh = first_pool.spec.ssh.clone().unwrap_or_default();
    let node = access::node_access(first, &ssh, &credentials, &known_hosts);
    let read = Script::of(Cmd::new("cat").arg("/etc/rancher/rke2/rke2.yaml"));
    let fetched = shell.run(&node, &read, Duration::from_secs(30)).await;
    let kubeconfig = match fetched {
        Ok(out) if out.success() => out.stdout_text(),
        Ok(out) => {
            return Ok(Some(unavailable(format!(
                "reading /etc/rancher/rke2/rke2.yaml on {} failed: {}",
                first.address,
                out.stderr_tail()
            ))));
        }
        Err(e) => return Ok(Some(unavailable(e.to_string()))),
    };
    let endpoint = format!(
        "https://{}",
        crate::providers::rke2::config::join_host_port(&registration, 6443)
    );
    let kubeconfig = point_at(&kubeconfig, &endpoint);
    let kubeconfig_name = access::kubeconfig_secret_name(&name);
    apply_secret(
        cluster,
        &secrets,
        &kubeconfig_name,
        BTreeMap::from([("value".to_string(), kubeconfig.clone())]),
    )
    .await?;
    let servers: i32 = pools.iter().map(|p| p.desired_nodes()).sum();
    let not_ready = |reason: &'static str, message: String| {
        Ok(Some(ClusterOutcome {
            phase: Phase::Provisioning,
            ready: Desired::no(types::READY, reason, message),
            endpoint: Some(endpoint.clone()),
            kubeconfig_secret_name: Some(kubeconfig_name.clone()),
            version: None,
            requeue: Some(Duration::from_secs(10)),
        }))
    };
    // Ready means the API answers through the stored kubeconfig and every node mk8 installed is
    // registered and Ready there.
    let api = match WorkloadCluster::from_kubeconfig(&kubeconfig) {
        Ok(api) => api,
        Err(e) => {
            return not_ready(
                reasons::API_UNREACHABLE,
                format!("the kubeconfig in Secret {kubeconfig_name} is unusable: {e}"),
            );
        }
    };
    let readiness = match api.readyz().await {
        Ok(()) => api.node_readiness().await,
        Err(e) => Err(e),
    };
    let readiness = match readiness {
        Ok(r) => r,
        Err(e) => {
            return not_ready(
                reasons::API_UNREACHABLE,
                format!(
                    "the API at {endpoint} does not answer through the kubeconfig in Secret {kubeconfig_name}: {e}"
                ),
            );
        }
    };
    let expected = installed_nodes(&all_pools);
    if let Err(missing) = nodes_ready(&expected, &readiness) {
        return not_ready(
            reasons::NODES_NOT_READY,
            format!("the API at {endpoint} answers; waiting for nodes: {missing}"),
        );
    }
    Ok(Some(ClusterOutcome {
        phase: Phase::Ready,
        ready: Desired::yes(
            types::READY,
            reasons::CONTROL_PLANE_READY,
            format!(
                "{servers} server(s) ready at {endpoint}, {} node(s) Ready in its API; kubeconfig in Secret {kubeconfig_name}",
                expected.len()
            ),
        ),
        endpoint: Some(endpoint),
        kubeconfig_secret_name: Some(kubeconfig_name),
        version: None,
        requeue: Some(RECHECK),
    }))
}

/// Delete the Cluster's NodePools before its finalizer goes: agent pools first, server pools
/// once no agent pool is left (each pool uninstalls its nodes behind its own finalizer). The
/// Secrets the Cluster owns go with it through garbage collection.
pub async fn cleanup(
    env: &Env,
    cluster: &Cluster,
) -> Result<Option<kube::runtime::controller::Action>> {
    use crate::reconcile::error::Error;
    let ns = cluster.namespace().unwrap_or_default();
    let api = Api::<NodePool>::namespaced(env.client.clone(), &ns);
    let pools: Vec<NodePool> = api
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter(|p| p.spec.cluster_name == cluster.name_any())
        .collect();
    if pools.is_empty() {
        return Ok(Some(kube::runtime::controller::Action::await_change()));
    }
    let agents: Vec<&NodePool> = pools
        .iter()
        .filter(|p| {
            p.spec
                .ssh
                .as_ref()
                .is_some_and(|s| s.role == NodeRole::Agent)
        })
        .collect();
    let next: Vec<&NodePool> = if agents.is_empty() {
        pools.iter().collect()
    } else {
        agents
    };
    for pool in &next {
        if pool.metadata.deletion_timestamp.is_none() {
            api.delete(&pool.name_any(), &Default::default()).await?;
        }
    }
    Err(Error::CleanupBlocked(format!(
        "Cluster {} is deleted once its NodePools are gone (agents first, then servers); waiting for {}",
        cluster.name_any(),
        next.iter()
            .map(|p| p.name_any())
            .collect::<Vec<_>>()
            .join(", ")
    )))
}

fn unavailable(message: String) -> ClusterOutcome {
    ClusterOutcome {
        phase: Phase::Provisioning,
        ready: Desired::no(types::READY, reasons::KUBECONFIG_UNAVAILABLE, message),
        endpoint: None,
        kubeconfig_secret_name: None,
        version: None,
        requeue: Some(Duration::from_secs(15)),
    }
}

/// Create the join token Secret once; it is never rotated by mk8.
async fn ensure_token(cluster: &Cluster, secrets: &Api<Secret>) -> Result<()> {
    let name = access::token_secret_name(&cluster.name_any());
    if secrets.get_opt(&name).await?.is_some() {
        return Ok(());
    }
    let token: String = (0..32)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect();
    apply_secret(
        cluster,
        secrets,
        &name,
        BTreeMap::from([(access::TOKEN.to_string(), token)]),
    )
    .await
}

async fn apply_secret(
    cluster: &Cluster,
    secrets: &Api<Secret>,
    name: &str,
    data: BTreeMap<String, String>,
) -> Result<()> {
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            namespace: cluster.namespace(),
            owner_references: cluster.controller_owner_ref(&()).map(|o| vec![o]),
            labels: Some(BTreeMap::from([(
                "mk8.io/cluster".to_string(),
                cluster.name_any(),
            )])),
            ..Default::default()
        },
        type_: Some("Opaque".into()),
        data: Some(
            data.into_iter()
                .map(|(k, v)| (k, ByteString(v.into_bytes())))
                .collect(),
        ),
        ..Default::default()
    };
    let mut value = serde_json::to_value(&secret).unwrap_or_default();
    value["apiVersion"] = "v1".into();
    value["kind"] = "Secret".into();
    secrets
        .patch(
            name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&value),
        )
        .await?;
    Ok(())
}
