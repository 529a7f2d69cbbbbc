//! The ClusterProfile mk8 publishes for each of its Clusters (sig-multicluster inventory): the
//! profile is built here (pure) and written by server-side apply (I/O), owned by the Cluster so
//! it goes with it.
//!
//! Consumers (mk8's Stacks and views, ArgoCD, Kueue, multicluster-runtime) find the cluster
//! through it: `spec.clusterManager.name: mk8`, the Cluster's labels, `status.version`,
//! `ControlPlaneHealthy` from the Cluster's `Ready`, and an access provider named `mk8` whose
//! exec extension names the kubeconfig Secret (the `kubeconfig-secretreader` plugin's config).

use kube::api::{Patch, PatchParams};
use kube::{Api, Resource, ResourceExt};
use serde_json::{Value, json};

use super::super::context::{Context, FIELD_MANAGER};
use super::super::error::Result;
use crate::api::clusterprofile::{
    CLUSTER_ID_PROPERTY, CLUSTER_MANAGER_LABEL, CONTROL_PLANE_HEALTHY, EXEC_EXTENSION, MK8_MANAGER,
};

/// Property naming the provider of an mk8 Cluster (`eks`, `rke2`).
pub const PROVIDER_PROPERTY: &str = "mk8.io/provider";
/// The well-known region property.
pub const REGION_PROPERTY: &str = "topology.kubernetes.io/region";
use crate::api::{Cluster, ClusterStatus};

/// The profile's metadata and spec.
pub fn desired(cluster: &Cluster) -> Value {
    let mut labels: serde_json::Map<String, Value> = cluster
        .labels()
        .iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    labels.insert(CLUSTER_MANAGER_LABEL.into(), json!(MK8_MANAGER));
    let owner = cluster.controller_owner_ref(&()).map(|mut o| {
        o.block_owner_deletion = Some(false);
        o
    });
    json!({
        "apiVersion": "multicluster.x-k8s.io/v1alpha1",
        "kind": "ClusterProfile",
        "metadata": {
            "name": cluster.name_any(),
            "namespace": cluster.namespace().unwrap_or_default(),
            "labels": labels,
            "ownerReferences": owner.into_iter().collect::<Vec<_>>(),
        },
        "spec": {
            "displayName": cluster.name_any(),
            "clusterManager": {"name": MK8_MANAGER},
        },
    })
}

/// The profile's status: version, `ControlPlaneHealthy`, and the `mk8` access provider once the
/// Cluster has an endpoint and a kubeconfig Secret (`ca`: its CA, base64).
pub fn status(cluster: &Cluster, ca: Option<&str>) -> Value {
    let status = cluster.status.clone().unwrap_or_default();
    let ready = status.conditions.iter().find(|c| c.type_ == "Ready");
    let healthy = json!({
        "type": CONTROL_PLANE_HEALTHY,
        "status": ready.map(|c| c.status.as_str()).unwrap_or("Unknown"),
        "reason": ready.map(|c| c.reason.as_str()).unwrap_or("Unknown"),
        "message": ready.map(|c| c.message.as_str()).unwrap_or("mk8 has not observed the Cluster yet"),
        "lastTransitionTime": ready
            .map(|c| json!(c.last_transition_time))
            .unwrap_or_else(|| json!(crate::controller::conditions::now())),
        "observedGeneration": cluster.metadata.generation,
    });
    let mut properties = vec![
        json!({"name": CLUSTER_ID_PROPERTY, "value": cluster.name_any()}),
        json!({"name": PROVIDER_PROPERTY, "value": cluster.provider().unwrap_or("unknown")}),
    ];
    if let Some(eks) = &cluster.spec.eks {
        properties.push(json!({"name": REGION_PROPERTY, "value": eks.region}));
    }
    let mut out = json!({"conditions": [healthy], "properties": properties});
    if let Some(version) = &status.kubernetes_version {
        out["version"] = json!({"kubernetes": version});
    }
    if let Some(access) = access_provider(cluster, &status, ca) {
        out["accessProviders"] = json!([access]);
    }
    out
}

fn access_provider(cluster: &Cluster, status: &ClusterStatus, ca: Option<&str>) -> Option<Value> {
    let server = status.endpoint.as_deref()?;
    let secret = status.kubeconfig_secret_name.as_deref()?;
    let mut access = json!({
        "name": MK8_MANAGER,
        "cluster": {
            "server": server,
            "extensions": [{
                "name": EXEC_EXTENSION,
                "extension": {
                    "name": secret,
                    "namespace": cluster.namespace().unwrap_or_default(),
                    "key": "value",
                },
            }],
        },
    });
    if let Some(ca) = ca {
        access["cluster"]["certificate-authority-data"] = json!(ca);
    }
    if let Some(eks) = &cluster.spec.eks {
        // `mk8 credentials kubeconfig-secret` signs a fresh token for it with the caller's AWS
        // identity; upstream's plugin ignores the field and uses the stored token.
        access["cluster"]["extensions"][0]["extension"]["eks"] =
            json!({"clusterName": cluster.name_any(), "region": eks.region});
    }
    Some(access)
}

/// The CA for the profile's access provider: the one already published for the same server and
/// Secret, else the one in the stored kubeconfig (read only then, not on every reconcile).
async fn ca_of(cluster: &Cluster, published: &Value, ctx: &Context) -> Option<String> {
    let status = cluster.status.as_ref()?;
    let secret = status.kubeconfig_secret_name.as_deref()?;
    let access = &published["status"]["accessProviders"][0]["cluster"];
    let same = access["server"].as_str() == status.endpoint.as_deref()
        && access["extensions"][0]["extension"]["name"] == secret;
    if let (true, Some(ca)) = (same, access["certificate-authority-data"].as_str()) {
        return Some(ca.to_string());
    }
    let namespace = cluster.namespace().unwrap_or_default();
    let kubeconfig = super::stored_kubeconfig(&ctx.client, &namespace, secret)
        .await
        .ok()?;
    let access = crate::controller::stack::access::from_kubeconfig(&kubeconfig).ok()?;
    access.config["tlsClientConfig"]["caData"]
        .as_str()
        .map(str::to_string)
}

/// Publish (or refresh) the Cluster's profile; written only when it differs.
pub async fn publish(cluster: &Cluster, ctx: &Context) -> Result<()> {
    if !ctx.capabilities.cluster_profiles || cluster.meta().deletion_timestamp.is_some() {
        return Ok(());
    }
    let api: Api<crate::api::ClusterProfile> =
        Api::namespaced(ctx.client.clone(), &cluster.namespace().unwrap_or_default());
    let wanted = desired(cluster);
    let existing = api.get_opt(&cluster.name_any()).await?;
    let existing = existing
        .map(|p| serde_json::to_value(p).unwrap_or_default())
        .unwrap_or_default();
    let wanted_status = status(cluster, ca_of(cluster, &existing, ctx).await.as_deref());
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let labels_match = wanted["metadata"]["labels"]
        .as_object()
        .into_iter()
        .flatten()
        .all(|(k, v)| existing["metadata"]["labels"].get(k) == Some(v));
    if existing["spec"] != wanted["spec"] || !labels_match {
        api.patch(&cluster.name_any(), &params, &Patch::Apply(&wanted))
            .await?;
    }
    if !same_status(&existing["status"], &wanted_status) {
        let body = json!({
            "apiVersion": "multicluster.x-k8s.io/v1alpha1",
            "kind": "ClusterProfile",
            "status": wanted_status,
        });
        api.patch_status(&cluster.name_any(), &params, &Patch::Apply(&body))
            .await?;
    }
    Ok(())
}

/// Equal but for the condition's transition time (the Cluster's own may be absent).
fn same_status(have: &Value, want: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(conditions) = v["conditions"].as_array_mut() {
            for c in conditions {
                if let Some(c) = c.as_object_mut() {
                    c.remove("lastTransitionTime");
                }
            }
        }
        v
    };
    strip(have) == strip(want)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster(status: &str) -> Cluster {
        serde_yaml::from_str(&format!(
            "apiVersion: mk8.io/v1alpha1\nkind: Cluster\nmetadata: {{name: edge, namespace: fleet, uid: u-1, labels: {{env: prod}}}}\nspec:\n  kubernetesVersion: '1.33'\n  rke2: {{version: v1.33.1+rke2r1, artifacts: {{baseURL: 'http://m'}}, sshCredentialsSecretRef: {{name: s}}, registrationAddress: 10.0.0.1}}\n{status}"
        ))
        .unwrap()
    }

    #[test]
    fn the_profile_names_mk8_copies_labels_and_is_owned_by_the_cluster() {
        let p = desired(&cluster(""));
        assert_eq!(p["spec"]["clusterManager"]["name"], "mk8");
        assert_eq!(p["metadata"]["labels"]["env"], "prod");
        assert_eq!(p["metadata"]["labels"][CLUSTER_MANAGER_LABEL], "mk8");
        assert_eq!(p["metadata"]["ownerReferences"][0]["uid"], "u-1");
        assert_eq!(p["metadata"]["ownerReferences"][0]["kind"], "Cluster");
    }

    #[test]
    fn status_reports_health_version_and_access_once_reachable() {
        let pending = status(&cluster(""), None);
        assert_eq!(pending["conditions"][0]["status"], "Unknown");
        assert!(pending.get("accessProviders").is_none());
        let ready = cluster(
            "status:\n  endpoint: https://10.0.0.1:6443\n  kubeconfigSecretName: edge-kubeconfig\n  kubernetesVersion: v1.33.1+rke2r1\n  conditions: [{type: Ready, status: 'True', reason: ControlPlaneReady, message: up, lastTransitionTime: '2026-12-04T10:00:00Z'}]\n",
        );
        let s = status(&ready, Some("Q0E="));
        assert_eq!(s["conditions"][0]["type"], CONTROL_PLANE_HEALTHY);
        assert_eq!(s["conditions"][0]["status"], "True");
        assert_eq!(s["version"]["kubernetes"], "v1.33.1+rke2r1");
        assert_eq!(
            s["properties"],
            json!([{"name": CLUSTER_ID_PROPERTY, "value": "edge"}, {"name": PROVIDER_PROPERTY, "value": "rke2"}])
        );
        assert_eq!(
            s["accessProviders"][0],
            json!({"name": "mk8", "cluster": {
                "server": "https://10.0.0.1:6443",
                "certificate-authority-data": "Q0E=",
                "extensions": [{"name": EXEC_EXTENSION, "extension": {"name": "edge-kubeconfig", "namespace": "fleet", "key": "value"}}],
            }})
        );
        assert!(same_status(&s, &s));
    }
}
