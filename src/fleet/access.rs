//! How to reach a cluster of the inventory (KEP-5339): a ClusterProfile's access provider matched
//! against the consumer's provider file gives the server, its CA and the exec plugin that yields
//! credentials; the profile's `client.authentication.k8s.io/exec` extension reaches the plugin as
//! `ExecCredential.spec.cluster.config` (`provideClusterInfo`). A profile can also be mapped to
//! a context of a local kubeconfig (`mk8 clusters map`), as the kubectl-mc proof of concept does.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use kube::config::{KubeConfigOptions, Kubeconfig};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::api::clusterprofile::EXEC_EXTENSION;

/// The KEP-5339 access-provider file: `{"providers": [{"name", "execConfig"}]}`.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
pub struct ProviderFile {
    /// Providers in the order they are preferred.
    #[serde(default)]
    pub providers: Vec<Provider>,
}

/// One access provider and the exec plugin that yields credentials for it.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Provider {
    /// The name ClusterProfiles offer in `status.accessProviders[].name`.
    pub name: String,
    /// A client-go exec plugin configuration.
    pub exec_config: ExecConfig,
}

/// A client-go exec plugin configuration (`users[].user.exec` of a kubeconfig).
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ExecConfig {
    /// `client.authentication.k8s.io/v1` (or v1beta1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// The plugin.
    pub command: String,
    /// Its arguments.
    #[serde(default)]
    pub args: Vec<String>,
    /// Its environment.
    #[serde(default)]
    pub env: Vec<EnvVar>,
    /// Hand the cluster (server, CA, exec extension) to the plugin in `KUBERNETES_EXEC_INFO`.
    #[serde(default)]
    pub provide_cluster_info: bool,
    /// `Never`, `IfAvailable` or `Always`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interactive_mode: Option<String>,
    /// Shown when the plugin cannot be run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub install_hint: Option<String>,
}

/// `{name, value}`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct EnvVar {
    /// Variable name.
    pub name: String,
    /// Its value.
    pub value: String,
}

impl ProviderFile {
    /// Parse the provider file (JSON, as upstream reads it).
    pub fn parse(text: &str) -> Result<Self, String> {
        let file: ProviderFile = serde_json::from_str(text).map_err(|e| {
            format!("not a ClusterProfile access-provider file ({{\"providers\": [{{\"name\", \"execConfig\"}}]}}): {e}")
        })?;
        if let Some(p) = file
            .providers
            .iter()
            .find(|p| p.exec_config.command.is_empty())
        {
            return Err(format!(
                "providers[name={}].execConfig.command is empty",
                p.name
            ));
        }
        Ok(file)
    }

    /// Read `path`; a missing file is an empty one.
    pub fn load(path: &Path) -> Result<Self, String> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse(&text).map_err(|e| format!("{}: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(format!("reading {}: {e}", path.display())),
        }
    }

    /// The provider named `name`.
    pub fn get(&self, name: &str) -> Option<&Provider> {
        self.providers.iter().find(|p| p.name == name)
    }

    /// This file with `provider` in place of any entry of the same name (else appended).
    pub fn with(mut self, provider: Provider) -> Self {
        match self.providers.iter_mut().find(|p| p.name == provider.name) {
            Some(slot) => *slot = provider,
            None => self.providers.push(provider),
        }
        self
    }
}

/// The entry named `name` of a kubeconfig's `clusters`, `users` or `contexts` list (its inner
/// `cluster`/`user`/`context` object).
pub fn kubeconfig_entry(doc: &Value, list: &str, name: &str) -> Option<Value> {
    doc[list]
        .as_array()?
        .iter()
        .find(|e| e["name"] == name)
        .map(|e| e[list.trim_end_matches('s')].clone())
}

/// The `namespace/name` a consumer knows a profile by.
pub fn key(profile: &Value) -> String {
    format!(
        "{}/{}",
        profile["metadata"]["namespace"]
            .as_str()
            .unwrap_or_default(),
        profile["metadata"]["name"].as_str().unwrap_or_default()
    )
}

/// The access providers a profile offers (`accessProviders`, else the deprecated
/// `credentialProviders`).
pub fn offered(profile: &Value) -> Vec<&Value> {
    let status = &profile["status"];
    let list = match status["accessProviders"].as_array() {
        Some(a) if !a.is_empty() => a,
        _ => match status["credentialProviders"].as_array() {
            Some(a) => a,
            None => return Vec::new(),
        },
    };
    list.iter().collect()
}

/// Why a profile cannot be reached; the reason names follow the ecosystem's
/// (`AccessProviderNotConfigured`, …).
#[derive(Clone, Debug, PartialEq)]
pub struct AccessError {
    /// Machine-readable reason.
    pub reason: &'static str,
    /// What is wrong and what to do.
    pub message: String,
}

impl std::fmt::Display for AccessError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// An in-memory kubeconfig reaching the profile's cluster through the first provider of
/// `file` it offers: server and CA from the profile, the plugin from the file, the exec
/// extension handed over when the plugin asks for cluster info.
pub fn kubeconfig(profile: &Value, file: &ProviderFile) -> Result<Kubeconfig, AccessError> {
    let offers = offered(profile);
    if offers.is_empty() {
        return Err(AccessError {
            reason: "NoAccessProvider",
            message:
                "its ClusterProfile offers no access provider (status.accessProviders is empty)"
                    .into(),
        });
    }
    let Some((provider, offer)) = file.providers.iter().find_map(|p| {
        offers
            .iter()
            .find(|o| o["name"] == p.name.as_str())
            .map(|o| (p, *o))
    }) else {
        let names: Vec<&str> = offers.iter().filter_map(|o| o["name"].as_str()).collect();
        return Err(AccessError {
            reason: "AccessProviderNotConfigured",
            message: format!(
                "none of the access providers its ClusterProfile offers ({}) is in the access-provider file; add one (mk8 dev writes the `mk8` entry) or map the cluster to a kubeconfig context with `mk8 clusters map`",
                names.join(", ")
            ),
        });
    };
    let cluster = &offer["cluster"];
    if cluster["server"].as_str().is_none_or(str::is_empty) {
        return Err(AccessError {
            reason: "AccessProviderInvalid",
            message: format!(
                "access provider {} of its ClusterProfile has no cluster.server",
                provider.name
            ),
        });
    }
    let mut kube_cluster = serde_json::Map::new();
    for field in [
        "server",
        "certificate-authority-data",
        "tls-server-name",
        "insecure-skip-tls-verify",
        "proxy-url",
    ] {
        if !cluster[field].is_null() {
            kube_cluster.insert(field.into(), cluster[field].clone());
        }
    }
    if let Some(extension) = cluster["extensions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e["name"] == EXEC_EXTENSION)
    {
        kube_cluster.insert("extensions".into(), json!([extension]));
    }
    let exec = &provider.exec_config;
    let doc = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "profile", "cluster": kube_cluster}],
        "users": [{"name": provider.name, "user": {"exec": {
            "apiVersion": exec.api_version.as_deref().unwrap_or("client.authentication.k8s.io/v1"),
            "command": exec.command,
            "args": exec.args,
            "env": exec.env,
            "provideClusterInfo": exec.provide_cluster_info,
            "interactiveMode": exec.interactive_mode.as_deref().unwrap_or("Never"),
        }}}],
        "contexts": [{"name": "profile", "context": {"cluster": "profile", "user": provider.name}}],
        "current-context": "profile",
    });
    serde_json::from_value(doc).map_err(|e| AccessError {
        reason: "AccessProviderInvalid",
        message: format!(
            "access provider {} of its ClusterProfile is not a kubeconfig cluster: {e}",
            provider.name
        ),
    })
}

/// Profiles mapped to contexts of local kubeconfigs (`mk8 clusters map`), kept in
/// `clusters.yaml` of mk8's config directory: `{clusters: {"ns/name": {context, kubeconfig?}}}`.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
pub struct ContextMap {
    /// By profile `namespace/name`.
    #[serde(default)]
    pub clusters: BTreeMap<String, MappedContext>,
}

/// A kubeconfig context standing for a profile.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct MappedContext {
    /// The context's name.
    pub context: String,
    /// The kubeconfig file holding it; unset: the usual `$KUBECONFIG` / `~/.kube/config`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubeconfig: Option<PathBuf>,
}

impl ContextMap {
    /// Where the map lives.
    pub fn path() -> PathBuf {
        super::config_dir().join("clusters.yaml")
    }

    /// Read the map; a missing file is an empty map.
    pub fn load(path: &Path) -> Result<Self, String> {
        match std::fs::read_to_string(path) {
            Ok(text) => serde_yaml::from_str(&text).map_err(|e| {
                format!(
                    "{}: not an mk8 cluster map ({{clusters: {{NAMESPACE/NAME: {{context: CTX}}}}}}): {e}",
                    path.display()
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(format!("reading {}: {e}", path.display())),
        }
    }

    /// Write the map (0600, atomically).
    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        let text = serde_yaml::to_string(self)?;
        crate::files::write_private(path, text.as_bytes())
    }

    /// The entry for a profile: by `namespace/name`, else by a unique bare name.
    pub fn lookup(&self, key: &str) -> Option<&MappedContext> {
        self.clusters.get(key).or_else(|| {
            let name = key.rsplit('/').next()?;
            self.clusters.get(name)
        })
    }
}

/// Client configuration for a mapped context.
pub async fn mapped_config(mapped: &MappedContext) -> Result<kube::Config, AccessError> {
    let options = KubeConfigOptions {
        context: Some(mapped.context.clone()),
        ..Default::default()
    };
    let kubeconfig = match &mapped.kubeconfig {
        Some(path) => Kubeconfig::read_from(path),
        None => Kubeconfig::read(),
    }
    .map_err(|e| AccessError {
        reason: "MappedContextUnusable",
        message: format!(
            "reading the kubeconfig of mapped context {}: {e}",
            mapped.context
        ),
    })?;
    kube::Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .map_err(|e| AccessError {
            reason: "MappedContextUnusable",
            message: format!(
                "mapped context {}: {e}; fix it with `mk8 clusters map NAME --context CTX`",
                mapped.context
            ),
        })
}

/// The kubeconfig Secret an `mk8` access provider names (`{name, namespace, key, context}` in
/// its exec extension), read straight from the hub: what `mk8 credentials kubeconfig-secret`
/// does, without a process per cluster. Only Secrets of the profile's own namespace are read,
/// so a profile cannot borrow another namespace's credentials.
pub async fn from_kubeconfig_secret(
    hub: &kube::Client,
    profile: &Value,
    offer: &Value,
) -> Result<kube::Config, AccessError> {
    let fail = |message: String| AccessError {
        reason: "AccessProviderFailed",
        message,
    };
    let namespace = profile["metadata"]["namespace"]
        .as_str()
        .unwrap_or_default();
    let extension = exec_extension(offer).ok_or_else(|| {
        fail(format!(
            "its mk8 access provider has no {EXEC_EXTENSION} extension naming the kubeconfig Secret"
        ))
    })?;
    let secret = extension["name"]
        .as_str()
        .filter(|n| !n.is_empty())
        .ok_or_else(|| fail("its mk8 access provider names no Secret".into()))?;
    if let Some(other) = extension["namespace"]
        .as_str()
        .filter(|ns| *ns != namespace)
    {
        return Err(fail(format!(
            "its mk8 access provider names a Secret in namespace {other}; mk8 reads kubeconfig Secrets only from the profile's own namespace {namespace}"
        )));
    }
    let key = extension["key"].as_str().unwrap_or("value");
    let secrets: kube::Api<k8s_openapi::api::core::v1::Secret> =
        kube::Api::namespaced(hub.clone(), namespace);
    let object = secrets
        .get_opt(secret)
        .await
        .map_err(|e| fail(format!("reading Secret {namespace}/{secret}: {e}")))?
        .ok_or_else(|| {
            fail(format!(
                "the kubeconfig Secret {namespace}/{secret} does not exist"
            ))
        })?;
    let text = object
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .and_then(|v| String::from_utf8(v.0.clone()).ok())
        .ok_or_else(|| fail(format!("Secret {namespace}/{secret} has no text key {key}")))?;
    let kubeconfig = Kubeconfig::from_yaml(&text).map_err(|e| {
        fail(format!(
            "Secret {namespace}/{secret} key {key} is not a kubeconfig: {e}"
        ))
    })?;
    let options = KubeConfigOptions {
        context: extension["context"].as_str().map(str::to_string),
        ..Default::default()
    };
    kube::Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .map_err(|e| fail(format!("Secret {namespace}/{secret}: {e}")))
}

/// The `client.authentication.k8s.io/exec` extension of an access provider.
pub fn exec_extension(offer: &Value) -> Option<&Value> {
    offer["cluster"]["extensions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e["name"] == EXEC_EXTENSION)
        .map(|e| &e["extension"])
}

/// Whether `provider` is mk8's own kubeconfig-secretreader (`… credentials kubeconfig-secret`
/// of an `mk8` binary), which can be served in-process.
pub fn is_mk8_secretreader(provider: &Provider) -> bool {
    let exec = &provider.exec_config;
    Path::new(&exec.command)
        .file_name()
        .is_some_and(|n| n == "mk8" || n == "kubectl-mk8")
        && exec.args == ["credentials", "kubeconfig-secret"]
}

/// Client configuration for a profile: a mapped context when there is one, else its access
/// providers matched against `file`.
pub async fn config(
    profile: &Value,
    file: &ProviderFile,
    map: &ContextMap,
    hub: Option<&kube::Client>,
) -> Result<kube::Config, AccessError> {
    if let Some(mapped) = map.lookup(&key(profile)) {
        return mapped_config(mapped).await;
    }
    // mk8's own provider, first in the file's order among those offered, is served in-process
    // (an EKS cluster's still runs the plugin, which signs a fresh token).
    let chosen = file.providers.iter().find_map(|p| {
        offered(profile)
            .into_iter()
            .find(|o| o["name"] == p.name.as_str())
            .map(|o| (p, o))
    });
    if let (Some(hub), Some((provider, offer))) = (hub, chosen)
        && provider.name == super::MK8_PROVIDER
        && is_mk8_secretreader(provider)
        && exec_extension(offer).is_some_and(|e| e.get("eks").is_none())
    {
        return from_kubeconfig_secret(hub, profile, offer).await;
    }
    let kubeconfig = kubeconfig(profile, file)?;
    kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .map_err(|e| AccessError {
            reason: "RemoteClientCreationFailed",
            message: format!("building a client from its access provider: {e}"),
        })
}

/// Run the exec credential plugin of `config` once, now, and put what it answers (a token or a
/// client certificate and key) in its place. kube-rs would run the plugin synchronously, twice
/// when it answers a certificate; here it runs as a child process of this task, so a deadline
/// around the call kills a plugin that hangs.
pub async fn run_exec(mut config: kube::Config) -> Result<kube::Config, String> {
    let Some(exec) = config.auth_info.exec.take() else {
        return Ok(config);
    };
    let command = exec
        .command
        .clone()
        .ok_or("the exec credential plugin names no command")?;
    let version = exec
        .api_version
        .clone()
        .unwrap_or_else(|| "client.authentication.k8s.io/v1".into());
    let mut spec = json!({"interactive": false});
    if exec.provide_cluster_info
        && let Some(cluster) = &exec.cluster
    {
        spec["cluster"] = serde_json::to_value(cluster).map_err(|e| e.to_string())?;
    }
    let info = json!({"apiVersion": version, "kind": "ExecCredential", "spec": spec});
    let mut child = tokio::process::Command::new(&command);
    child
        .args(exec.args.clone().unwrap_or_default())
        .env("KUBERNETES_EXEC_INFO", info.to_string())
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    for pair in exec.env.iter().flatten() {
        if let (Some(name), Some(value)) = (pair.get("name"), pair.get("value")) {
            child.env(name, value);
        }
    }
    let out = child.output().await.map_err(|e| {
        let hint = exec
            .install_hint
            .as_deref()
            .map(|h| format!(" ({h})"))
            .unwrap_or_default();
        format!("running the credential plugin {command}: {e}{hint}")
    })?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(format!(
            "the credential plugin {command} failed ({}): {}",
            out.status,
            stderr.trim()
        ));
    }
    let credential: Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("the credential plugin {command} printed no ExecCredential: {e}"))?;
    let status = &credential["status"];
    let b64 = |s: &str| base64::Engine::encode(&base64::engine::general_purpose::STANDARD, s);
    if let (Some(cert), Some(key)) = (
        status["clientCertificateData"].as_str(),
        status["clientKeyData"].as_str(),
    ) {
        config.auth_info.client_certificate_data = Some(b64(cert));
        config.auth_info.client_key_data = Some(b64(key).into());
    } else if let Some(token) = status["token"].as_str() {
        config.auth_info.token = Some(token.to_string().into());
    } else {
        return Err(format!(
            "the credential plugin {command} answered neither a token nor a client certificate"
        ));
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(offers: Value) -> Value {
        json!({
            "metadata": {"name": "gke-eu", "namespace": "fleet"},
            "status": {"accessProviders": offers},
        })
    }

    const FILE: &str = r#"{"providers": [
        {"name": "ocm", "execConfig": {"apiVersion": "client.authentication.k8s.io/v1", "command": "/plugins/ocm", "provideClusterInfo": true}},
        {"name": "gke", "execConfig": {"command": "/plugins/gke-token", "args": ["--fleet"], "env": [{"name": "REGION", "value": "eu"}]}}
    ]}"#;

    #[test]
    fn the_first_configured_provider_the_profile_offers_is_used_with_its_extension() {
        let file = ProviderFile::parse(FILE).unwrap();
        let p = profile(json!([
            {"name": "gke", "cluster": {"server": "https://34.1.2.3"}},
            {"name": "ocm", "cluster": {"server": "https://proxy:8090", "certificate-authority-data": "Q0E=",
                "extensions": [{"name": "other", "extension": {}}, {"name": EXEC_EXTENSION, "extension": {"clusterName": "eu"}}]}},
        ]));
        let kc = kubeconfig(&p, &file).unwrap();
        let cluster = kc.clusters[0].cluster.as_ref().unwrap();
        assert_eq!(cluster.server.as_deref(), Some("https://proxy:8090"));
        let ext = cluster.extensions.as_ref().unwrap();
        assert_eq!(ext.len(), 1, "only the exec extension is handed over");
        assert_eq!(ext[0].extension, json!({"clusterName": "eu"}));
        let exec = kc.auth_infos[0]
            .auth_info
            .as_ref()
            .unwrap()
            .exec
            .as_ref()
            .unwrap();
        assert_eq!(exec.command.as_deref(), Some("/plugins/ocm"));
        assert!(exec.provide_cluster_info);
    }

    #[test]
    fn unusable_profiles_say_why_and_what_to_do() {
        let file = ProviderFile::parse(FILE).unwrap();
        let none = kubeconfig(&profile(json!([])), &file).unwrap_err();
        assert_eq!(none.reason, "NoAccessProvider");
        let other = kubeconfig(
            &profile(json!([{"name": "eks-pod-identity", "cluster": {"server": "https://x"}}])),
            &file,
        )
        .unwrap_err();
        assert_eq!(other.reason, "AccessProviderNotConfigured");
        assert!(other.message.contains("(eks-pod-identity)"), "{other}");
        assert!(other.message.contains("mk8 clusters map"), "{other}");
        let no_server =
            kubeconfig(&profile(json!([{"name": "gke", "cluster": {}}])), &file).unwrap_err();
        assert!(no_server.message.contains("no cluster.server"));
    }

    #[test]
    fn deprecated_credential_providers_are_read() {
        let p = json!({"metadata": {"name": "a", "namespace": "b"}, "status": {"credentialProviders": [{"name": "gke", "cluster": {"server": "https://s"}}]}});
        assert_eq!(offered(&p).len(), 1);
        assert_eq!(key(&p), "b/a");
    }

    #[test]
    fn a_provider_file_entry_is_replaced_not_duplicated() {
        let file = ProviderFile::parse(FILE).unwrap();
        let mk8: Provider =
            serde_json::from_value(crate::fleet::mk8_provider("/bin/mk8", None, None)).unwrap();
        let file = file.with(mk8.clone()).with(mk8);
        assert_eq!(file.providers.len(), 3);
        assert_eq!(
            file.get("mk8").unwrap().exec_config.args,
            ["credentials", "kubeconfig-secret"]
        );
    }

    #[test]
    fn the_context_map_finds_bare_names() {
        let map: ContextMap = serde_yaml::from_str(
            "clusters:\n  fleet/edge: {context: kind-edge}\n  lab: {context: lab}\n",
        )
        .unwrap();
        assert_eq!(map.lookup("fleet/edge").unwrap().context, "kind-edge");
        assert_eq!(map.lookup("other/lab").unwrap().context, "lab");
        assert!(map.lookup("fleet/none").is_none());
    }
}
