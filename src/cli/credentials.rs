//! `mk8 credentials`: client-go exec credential plugins, so that nothing but mk8 is needed to
//! reach mk8's clusters.
//!
//! - `kubeconfig-secret` follows upstream's kubeconfig-secretreader contract (KEP-5339): the
//!   ClusterProfile's exec extension `{name, namespace?, key?, context?}` arrives in
//!   `KUBERNETES_EXEC_INFO` (`spec.cluster.config`); the plugin reads that Secret from the hub
//!   and answers the token or client certificate of the kubeconfig in it. For an EKS cluster
//!   (extension `eks: {clusterName, region}`) it signs a fresh token with the caller's AWS
//!   identity instead, every time.
//! - `eks` signs an EKS token (`aws eks get-token` without the AWS CLI), with the AWS
//!   credentials of the environment, or else those `mk8 config aws` stored, or else the default
//!   AWS chain (~/.aws, instance roles).

use anyhow::{Context as _, bail};
use base64::Engine as _;
use clap::{Args, Subcommand};
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use serde_json::{Value, json};

/// Arguments of `mk8 credentials`.
#[derive(Debug, Args)]
pub struct CredentialsArgs {
    #[command(subcommand)]
    command: CredentialsCommand,
}

#[derive(Debug, Subcommand)]
enum CredentialsCommand {
    /// Exec plugin: credentials from the kubeconfig Secret a ClusterProfile's exec extension
    /// names (upstream kubeconfig-secretreader contract).
    KubeconfigSecret,
    /// Exec plugin: a fresh EKS token for a cluster, signed with your AWS identity.
    Eks(EksArgs),
}

#[derive(Debug, Args)]
struct EksArgs {
    /// EKS cluster name.
    #[arg(long)]
    cluster_name: String,
    /// AWS region of the cluster.
    #[arg(long)]
    region: String,
}

/// Run `mk8 credentials`.
pub async fn run(args: CredentialsArgs) -> anyhow::Result<()> {
    let credential = match args.command {
        CredentialsCommand::KubeconfigSecret => kubeconfig_secret().await?,
        CredentialsCommand::Eks(eks) => eks_credential(&eks.cluster_name, &eks.region).await?,
    };
    println!("{}", serde_json::to_string(&credential)?);
    Ok(())
}

/// The exec extension a plugin was given.
fn exec_info() -> anyhow::Result<(String, Value)> {
    let text = std::env::var("KUBERNETES_EXEC_INFO").context(
        "KUBERNETES_EXEC_INFO is not set: this is a credential plugin, run by kubectl or mk8 from an exec user with provideClusterInfo: true",
    )?;
    let info: Value = serde_json::from_str(&text).context("KUBERNETES_EXEC_INFO is not JSON")?;
    let version = info["apiVersion"]
        .as_str()
        .unwrap_or("client.authentication.k8s.io/v1")
        .to_string();
    let config = info["spec"]["cluster"]["config"].clone();
    if !config.is_object() {
        bail!(
            "KUBERNETES_EXEC_INFO has no spec.cluster.config: set provideClusterInfo: true and give the cluster the extension client.authentication.k8s.io/exec {{name, namespace, key}}"
        );
    }
    Ok((version, config))
}

async fn kubeconfig_secret() -> anyhow::Result<Value> {
    let (version, config) = exec_info()?;
    if let (Some(cluster), Some(region)) = (
        config["eks"]["clusterName"].as_str(),
        config["eks"]["region"].as_str(),
    ) {
        let mut credential = eks_credential(cluster, region).await?;
        credential["apiVersion"] = json!(version);
        return Ok(credential);
    }
    let name = config["name"]
        .as_str()
        .filter(|n| !n.is_empty())
        .context("the exec extension names no Secret (name)")?;
    let key = config["key"].as_str().unwrap_or("value");
    let hub_kubeconfig =
        std::env::var_os(crate::fleet::HUB_KUBECONFIG_ENV).map(std::path::PathBuf::from);
    let hub_context = std::env::var(crate::fleet::HUB_CONTEXT_ENV)
        .ok()
        .filter(|c| !c.is_empty());
    let client =
        super::fleet::hub_client(hub_kubeconfig.as_deref(), hub_context.as_deref()).await?;
    let namespace = config["namespace"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| client.default_namespace().to_string());
    let secret = Api::<Secret>::namespaced(client, &namespace)
        .get(name)
        .await
        .with_context(|| format!("reading Secret {namespace}/{name} on the hub"))?;
    let data = secret
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .with_context(|| format!("Secret {namespace}/{name} has no key {key:?}"))?;
    let kubeconfig = std::str::from_utf8(&data.0)
        .with_context(|| format!("Secret {namespace}/{name} key {key:?} is not text"))?;
    let status = credential_status(kubeconfig, config["context"].as_str())
        .map_err(|e| anyhow::anyhow!("Secret {namespace}/{name} key {key:?}: {e}"))?;
    Ok(json!({"apiVersion": version, "kind": "ExecCredential", "status": status}))
}

/// The ExecCredential status for the user of `context` (default: the current one) of a
/// kubeconfig: its token, or its client certificate and key as PEM. File paths and exec users
/// are refused, as upstream refuses them.
pub fn credential_status(kubeconfig: &str, context: Option<&str>) -> Result<Value, String> {
    let doc: Value =
        serde_yaml::from_str(kubeconfig).map_err(|e| format!("not a kubeconfig: {e}"))?;
    let named = |list: &str, name: &str| crate::fleet::access::kubeconfig_entry(&doc, list, name);
    let context_name = context
        .or_else(|| doc["current-context"].as_str())
        .or_else(|| doc["contexts"][0]["name"].as_str())
        .ok_or("the kubeconfig has no context")?;
    let ctx = named("contexts", context_name)
        .ok_or_else(|| format!("the kubeconfig has no context {context_name:?}"))?;
    let user = named("users", ctx["user"].as_str().unwrap_or_default())
        .ok_or_else(|| format!("context {context_name:?} names no user of the kubeconfig"))?;
    let decode = |field: &str| -> Result<Option<String>, String> {
        match user[field].as_str() {
            None => Ok(None),
            Some(b64) => {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(b64.trim())
                    .map_err(|e| format!("{field} is not base64: {e}"))?;
                String::from_utf8(bytes)
                    .map(Some)
                    .map_err(|_| format!("{field} is not PEM"))
            }
        }
    };
    let mut status = serde_json::Map::new();
    if let Some(token) = user["token"].as_str() {
        status.insert("token".into(), json!(token));
    }
    if let (Some(cert), Some(key)) = (
        decode("client-certificate-data")?,
        decode("client-key-data")?,
    ) {
        status.insert("clientCertificateData".into(), json!(cert));
        status.insert("clientKeyData".into(), json!(key));
    }
    if status.is_empty() {
        let why = if user["exec"].is_object() {
            "an exec plugin"
        } else if user["client-certificate"].is_string() || user["tokenFile"].is_string() {
            "file paths"
        } else {
            "no credentials"
        };
        return Err(format!(
            "the user of context {context_name:?} has {why}; store a kubeconfig with a token or embedded client certificate and key"
        ));
    }
    Ok(Value::Object(status))
}

#[cfg(feature = "eks")]
async fn eks_credential(cluster: &str, region: &str) -> anyhow::Result<Value> {
    use aws_credential_types::provider::ProvideCredentials as _;
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
            aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(region.to_string()))
        .http_client(http);
    // The environment wins; without it, the keys `mk8 config aws` stored come before ~/.aws.
    let env_has_credentials = ["AWS_ACCESS_KEY_ID", "AWS_PROFILE"]
        .iter()
        .any(|k| std::env::var_os(k).is_some_and(|v| !v.is_empty()));
    if !env_has_credentials && let Some(stored) = super::config::load()? {
        loader = loader.credentials_provider(aws_credential_types::Credentials::new(
            stored.access_key_id,
            stored.secret_access_key,
            stored.session_token,
            None,
            "mk8-config-aws",
        ));
    }
    let config = loader.load().await;
    let provider = config.credentials_provider().context(
        "no AWS credentials: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE, or run mk8 config aws",
    )?;
    let credentials = provider.provide_credentials().await.context(
        "no AWS credentials: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE, or run mk8 config aws",
    )?;
    let token = crate::providers::eks::token::presign(
        &credentials,
        region,
        cluster,
        std::time::SystemTime::now(),
    )?;
    Ok(json!({
        "apiVersion": "client.authentication.k8s.io/v1",
        "kind": "ExecCredential",
        "status": {
            "token": token.value,
            "expirationTimestamp": token.expires_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        },
    }))
}

#[cfg(not(feature = "eks"))]
async fn eks_credential(_cluster: &str, _region: &str) -> anyhow::Result<Value> {
    bail!("this mk8 was built without the eks feature: EKS tokens cannot be signed")
}

#[cfg(test)]
mod tests {
    use super::*;

    const KUBECONFIG: &str = "apiVersion: v1\nkind: Config\ncurrent-context: a\ncontexts:\n- {name: a, context: {cluster: c, user: tok}}\n- {name: b, context: {cluster: c, user: cert}}\n- {name: x, context: {cluster: c, user: exec}}\nclusters: [{name: c, cluster: {server: 'https://s'}}]\nusers:\n- {name: tok, user: {token: abc}}\n- {name: cert, user: {client-certificate-data: Q0VSVA==, client-key-data: S0VZ}}\n- {name: exec, user: {exec: {command: aws}}}\n";

    #[test]
    fn the_secret_kubeconfig_yields_a_token_or_a_pem_pair_and_refuses_exec_users() {
        assert_eq!(
            credential_status(KUBECONFIG, None).unwrap(),
            json!({"token": "abc"})
        );
        assert_eq!(
            credential_status(KUBECONFIG, Some("b")).unwrap(),
            json!({"clientCertificateData": "CERT", "clientKeyData": "KEY"})
        );
        let exec = credential_status(KUBECONFIG, Some("x")).unwrap_err();
        assert!(exec.contains("has an exec plugin"), "{exec}");
        assert!(
            credential_status(KUBECONFIG, Some("nope"))
                .unwrap_err()
                .contains("no context \"nope\"")
        );
    }
}
