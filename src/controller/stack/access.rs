//! ArgoCD cluster Secrets from ClusterProfiles (pure): how ArgoCD reaches each selected cluster.
//!
//! mk8's own clusters are reached with the kubeconfig mk8 keeps for them (client certificate,
//! token, or the kubeconfig's exec plugin); any other cluster through the KEP-5339 access
//! provider its ClusterProfile offers, matched against the operator's provider file
//! (`--clusterprofile-provider-file`) and handed to ArgoCD as `execProviderConfig`. No credential
//! is logged or written to a status.

use std::collections::BTreeMap;

use base64::Engine;
use serde_json::{Map, Value, json};

use super::plan::fit;

/// Label ArgoCD finds cluster Secrets by.
pub const SECRET_TYPE_LABEL: &str = "argocd.argoproj.io/secret-type";
/// Annotation: `namespace/name` of the ClusterProfile a cluster Secret was built from.
pub const PROFILE_ANNOTATION: &str = "mk8.io/cluster-profile";

use crate::fleet::access::offered;
pub use crate::fleet::access::{ExecConfig, ProviderFile};

/// How ArgoCD authenticates to one cluster.
#[derive(Clone, Debug, PartialEq)]
pub struct Access {
    /// API server URL.
    pub server: String,
    /// ArgoCD's cluster `config` JSON.
    pub config: Value,
}

fn tls(cluster: &Value) -> Map<String, Value> {
    let mut tls = Map::new();
    if let Some(ca) = cluster["certificate-authority-data"].as_str() {
        tls.insert("caData".into(), json!(ca));
    }
    if let Some(name) = cluster["tls-server-name"].as_str() {
        tls.insert("serverName".into(), json!(name));
    }
    if cluster["insecure-skip-tls-verify"] == true {
        tls.insert("insecure".into(), json!(true));
    }
    tls
}

fn exec_provider(exec: &ExecConfig) -> Value {
    let env: BTreeMap<&str, &str> = exec
        .env
        .iter()
        .map(|e| (e.name.as_str(), e.value.as_str()))
        .collect();
    let mut out = json!({"command": exec.command, "args": exec.args, "env": env});
    out["apiVersion"] = json!(
        exec.api_version
            .as_deref()
            .unwrap_or("client.authentication.k8s.io/v1")
    );
    out
}

/// Access to a foreign cluster: the first provider of `file` the profile offers.
pub fn from_provider_file(profile: &Value, file: &ProviderFile) -> Result<Access, String> {
    let offers = offered(profile);
    if offers.is_empty() {
        return Err(
            "its ClusterProfile offers no access provider (status.accessProviders is empty)".into(),
        );
    }
    for provider in &file.providers {
        if let Some(offer) = offers.iter().find(|o| o["name"] == provider.name.as_str()) {
            let cluster = &offer["cluster"];
            let server = cluster["server"].as_str().ok_or_else(|| {
                format!(
                    "access provider {} of its ClusterProfile has no cluster.server",
                    provider.name
                )
            })?;
            let mut config = json!({"execProviderConfig": exec_provider(&provider.exec_config)});
            config["tlsClientConfig"] = Value::Object(tls(cluster));
            return Ok(Access {
                server: server.to_string(),
                config,
            });
        }
    }
    let names: Vec<&str> = offers.iter().filter_map(|o| o["name"].as_str()).collect();
    Err(format!(
        "none of the access providers its ClusterProfile offers ({}) is configured in the operator's --clusterprofile-provider-file",
        names.join(", ")
    ))
}

/// Access to one of mk8's clusters from the kubeconfig mk8 stored for it.
pub fn from_kubeconfig(kubeconfig: &str) -> Result<Access, String> {
    let doc: Value =
        serde_yaml::from_str(kubeconfig).map_err(|e| format!("its kubeconfig is not YAML: {e}"))?;
    let named = |list: &str, name: &str| crate::fleet::access::kubeconfig_entry(&doc, list, name);
    let current = doc["current-context"]
        .as_str()
        .or_else(|| doc["contexts"][0]["name"].as_str())
        .ok_or("its kubeconfig has no context")?;
    let context =
        named("contexts", current).ok_or("its kubeconfig's current context is missing")?;
    let cluster = named("clusters", context["cluster"].as_str().unwrap_or_default())
        .ok_or("its kubeconfig's context names no cluster")?;
    let user = named("users", context["user"].as_str().unwrap_or_default())
        .ok_or("its kubeconfig's context names no user")?;
    let server = cluster["server"]
        .as_str()
        .ok_or("its kubeconfig's cluster has no server")?;
    let mut tls = tls(&cluster);
    let mut config = Map::new();
    if let (Some(cert), Some(key)) = (
        user["client-certificate-data"].as_str(),
        user["client-key-data"].as_str(),
    ) {
        tls.insert("certData".into(), json!(cert));
        tls.insert("keyData".into(), json!(key));
    } else if let Some(token) = user["token"].as_str() {
        config.insert("bearerToken".into(), json!(token));
    } else if user["exec"].is_object() {
        let exec: ExecConfig = serde_json::from_value(user["exec"].clone())
            .map_err(|e| format!("its kubeconfig's exec user is unusable: {e}"))?;
        config.insert("execProviderConfig".into(), exec_provider(&exec));
    } else {
        return Err("its kubeconfig's user has no client certificate, token or exec plugin".into());
    }
    config.insert("tlsClientConfig".into(), Value::Object(tls));
    Ok(Access {
        server: server.to_string(),
        config: Value::Object(config),
    })
}

/// Access to one of mk8's EKS clusters: ArgoCD signs its own tokens with its AWS identity
/// (`awsAuthConfig`), since the token in mk8's kubeconfig Secret lives 15 minutes. ArgoCD's IAM
/// role needs an EKS access entry (`spec.eks.accessEntries`).
pub fn for_eks(from_kubeconfig: Access, cluster_name: &str) -> Access {
    let mut config = json!({"awsAuthConfig": {"clusterName": cluster_name}});
    if let Some(tls) = from_kubeconfig.config.get("tlsClientConfig") {
        let mut tls = tls.clone();
        if let Some(t) = tls.as_object_mut() {
            t.remove("certData");
            t.remove("keyData");
        }
        config["tlsClientConfig"] = tls;
    }
    Access {
        server: from_kubeconfig.server,
        config,
    }
}

/// The ArgoCD cluster Secret for a profile: named after it, the profile's labels copied so
/// ApplicationSets select the same clusters; the cluster's name in ArgoCD is the profile name.
pub fn cluster_secret(profile: &Value, access: &Access, argocd_namespace: &str) -> Value {
    let name = profile["metadata"]["name"].as_str().unwrap_or_default();
    let namespace = profile["metadata"]["namespace"]
        .as_str()
        .unwrap_or_default();
    let key = format!("{namespace}/{name}");
    let mut labels: Map<String, Value> = profile["metadata"]["labels"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    labels.insert(SECRET_TYPE_LABEL.into(), json!("cluster"));
    labels.insert("app.kubernetes.io/managed-by".into(), json!("mk8"));
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": fit(&format!("mk8-cluster-{name}"), &key),
            "namespace": argocd_namespace,
            "labels": labels,
            "annotations": {PROFILE_ANNOTATION: key},
        },
        "data": {
            "name": b64(name),
            "server": b64(&access.server),
            "config": b64(&access.config.to_string()),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(offers: Value) -> Value {
        json!({
            "metadata": {"name": "gke-eu", "namespace": "fleet", "labels": {"env": "prod", "x-k8s.io/cluster-manager": "gke-fleet"}},
            "status": {"accessProviders": offers},
        })
    }

    const FILE: &str = r#"{"providers": [
        {"name": "ocm", "execConfig": {"apiVersion": "client.authentication.k8s.io/v1", "command": "/plugins/ocm"}},
        {"name": "gke", "execConfig": {"command": "/plugins/gke-token", "args": ["--fleet"], "env": [{"name": "REGION", "value": "eu"}]}}
    ]}"#;

    #[test]
    fn a_foreign_cluster_gets_the_exec_plugin_of_the_first_provider_it_offers() {
        let file = ProviderFile::parse(FILE).unwrap();
        let p = profile(json!([
            {"name": "gke", "cluster": {"server": "https://34.1.2.3", "certificate-authority-data": "Q0E="}},
        ]));
        let access = from_provider_file(&p, &file).unwrap();
        assert_eq!(access.server, "https://34.1.2.3");
        assert_eq!(
            access.config,
            json!({
                "execProviderConfig": {"command": "/plugins/gke-token", "args": ["--fleet"], "env": {"REGION": "eu"}, "apiVersion": "client.authentication.k8s.io/v1"},
                "tlsClientConfig": {"caData": "Q0E="},
            })
        );
        let secret = cluster_secret(&p, &access, "argocd");
        assert_eq!(secret["metadata"]["labels"][SECRET_TYPE_LABEL], "cluster");
        assert_eq!(
            secret["metadata"]["labels"]["env"], "prod",
            "profile labels copied"
        );
        assert_eq!(secret["data"]["name"], "Z2tlLWV1");
    }

    #[test]
    fn unusable_access_is_explained() {
        let file = ProviderFile::parse(FILE).unwrap();
        assert_eq!(
            from_provider_file(&profile(json!([])), &file).unwrap_err(),
            "its ClusterProfile offers no access provider (status.accessProviders is empty)"
        );
        let err = from_provider_file(
            &profile(json!([{"name": "eks-pod-identity", "cluster": {"server": "https://x"}}])),
            &file,
        )
        .unwrap_err();
        assert!(err.contains("(eks-pod-identity) is configured"), "{err}");
        assert!(ProviderFile::parse(r#"{"providers": [{"name": "x"}]}"#).is_err());
    }

    #[test]
    fn mk8_clusters_are_reached_with_their_kubeconfig() {
        let kubeconfig = "apiVersion: v1\nkind: Config\ncurrent-context: edge\ncontexts: [{name: edge, context: {cluster: edge, user: admin}}]\nclusters: [{name: edge, cluster: {server: 'https://10.0.0.1:6443', certificate-authority-data: Q0E=}}]\nusers: [{name: admin, user: {client-certificate-data: Q0VSVA==, client-key-data: S0VZ}}]\n";
        let access = from_kubeconfig(kubeconfig).unwrap();
        assert_eq!(access.server, "https://10.0.0.1:6443");
        assert_eq!(
            access.config,
            json!({"tlsClientConfig": {"caData": "Q0E=", "certData": "Q0VSVA==", "keyData": "S0VZ"}})
        );
        let token = kubeconfig.replace(
            "{client-certificate-data: Q0VSVA==, client-key-data: S0VZ}",
            "{token: abc}",
        );
        assert_eq!(
            from_kubeconfig(&token).unwrap().config["bearerToken"],
            "abc"
        );
        let exec = kubeconfig.replace(
            "{client-certificate-data: Q0VSVA==, client-key-data: S0VZ}",
            "{exec: {apiVersion: client.authentication.k8s.io/v1beta1, command: aws, args: [eks, get-token, --cluster-name, prod]}}",
        );
        assert_eq!(
            from_kubeconfig(&exec).unwrap().config["execProviderConfig"]["args"],
            json!(["eks", "get-token", "--cluster-name", "prod"])
        );
        let eks = for_eks(from_kubeconfig(&token).unwrap(), "prod-eu");
        assert_eq!(
            eks.config,
            json!({"awsAuthConfig": {"clusterName": "prod-eu"}, "tlsClientConfig": {"caData": "Q0E="}}),
            "no 15-minute token copied"
        );
        let none = kubeconfig.replace(
            "{client-certificate-data: Q0VSVA==, client-key-data: S0VZ}",
            "{}",
        );
        assert!(
            from_kubeconfig(&none)
                .unwrap_err()
                .contains("no client certificate, token or exec")
        );
    }
}
