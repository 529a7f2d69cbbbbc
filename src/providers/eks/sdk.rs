//! [`EksApi`] on the AWS SDK (I/O): one SDK configuration per region and set of credentials,
//! rustls on ring for HTTPS, an optional endpoint override for a local AWS-protocol server.
//!
//! Kept whole (over 500 lines): one `EksApi` method per AWS call, each a short translation of
//! plain data to the SDK and back; splitting them would only scatter the one mapping.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::SystemTime;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sdk_eks::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_eks::types as eks;
use aws_smithy_http_client::tls;
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use futures::FutureExt;
use futures::future::BoxFuture;
use sha2::{Digest, Sha256};

use super::{
    AwsError, AwsResult, ClusterRequest, EksApi, EksCluster, EksNodegroup, ErrorKind, Network,
    NetworkRequest, NodegroupConfigUpdate, NodegroupRequest, NodegroupScaling, NodegroupTaint,
    OWNER_TAG, Target, Token, network, plan, token,
};

/// Lets EC2 instances (the nodes) assume the node role.
const NODE_TRUST_POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;

/// The EKS driver on aws-sdk-eks.
pub struct SdkEks {
    endpoint_url: Option<String>,
    http: SharedHttpClient,
    /// SDK configurations by region and a digest of the credentials (never the keys themselves).
    configs: Mutex<HashMap<String, SdkConfig>>,
}

impl SdkEks {
    /// A driver sending every call to `endpoint_url` when given (tests), else to AWS.
    pub fn new(endpoint_url: Option<String>) -> Self {
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(
                tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https();
        Self {
            endpoint_url,
            http,
            configs: Mutex::default(),
        }
    }

    async fn config(&self, target: &Target) -> SdkConfig {
        let key = config_key(target);
        if let Some(config) = self.configs.lock().expect("config cache").get(&key) {
            return config.clone();
        }
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(target.region.clone()))
            .http_client(self.http.clone());
        if let Some(url) = &self.endpoint_url {
            loader = loader.endpoint_url(url);
        }
        if let Some(c) = &target.credentials {
            loader = loader.credentials_provider(Credentials::new(
                c.access_key_id.clone(),
                c.secret_access_key.clone(),
                c.session_token.clone(),
                None,
                "mk8-credentials-secret",
            ));
        }
        let mut config = loader.load().await;
        if let Some(role) = target.credentials.as_ref().and_then(|c| c.role_arn.clone()) {
            let assumed = aws_config::sts::AssumeRoleProvider::builder(role)
                .session_name("mk8-operator")
                .configure(&config)
                .build()
                .await;
            config = config
                .into_builder()
                .credentials_provider(SharedCredentialsProvider::new(assumed))
                .build();
        }
        self.configs
            .lock()
            .expect("config cache")
            .insert(key, config.clone());
        config
    }

    async fn client(&self, target: &Target) -> aws_sdk_eks::Client {
        aws_sdk_eks::Client::new(&self.config(target).await)
    }
}

fn config_key(target: &Target) -> String {
    let mut digest = Sha256::new();
    digest.update(target.region.as_bytes());
    if let Some(c) = &target.credentials {
        for part in [
            Some(&c.access_key_id),
            Some(&c.secret_access_key),
            c.session_token.as_ref(),
            c.role_arn.as_ref(),
        ] {
            digest.update([0u8]);
            digest.update(part.map(String::as_bytes).unwrap_or_default());
        }
    }
    hex::encode(digest.finalize())
}

/// Sort an SDK failure into retry classes; the message is AWS's, which carries no secret.
pub(super) fn classify<E>(error: SdkError<E, HttpResponse>) -> AwsError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match &error {
        SdkError::ServiceError(service) => {
            let status = service.raw().status().as_u16();
            let code = service.err().code().unwrap_or("Unknown").to_string();
            let message = service.err().message().unwrap_or_default().to_string();
            let kind = match code.as_str() {
                "ResourceNotFoundException" | "NotFoundException" | "NoSuchEntity" => {
                    ErrorKind::NotFound
                }
                "ResourceInUseException" | "EntityAlreadyExists" | "DependencyViolation" => {
                    ErrorKind::InUse
                }
                c if c.contains("Throttl") || c == "TooManyRequestsException" => {
                    ErrorKind::Throttled
                }
                _ if status == 429 => ErrorKind::Throttled,
                _ if status >= 500 => ErrorKind::Transient,
                "ServerException" | "ServiceUnavailableException" => ErrorKind::Transient,
                _ => ErrorKind::Invalid,
            };
            AwsError::new(kind, code, message)
        }
        _ => AwsError::new(
            ErrorKind::Transient,
            "RequestFailed",
            aws_smithy_types::error::display::DisplayErrorContext(&error).to_string(),
        ),
    }
}

fn tags(map: Option<&HashMap<String, String>>) -> BTreeMap<String, String> {
    map.map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default()
}

fn taint_out(t: &NodegroupTaint) -> eks::Taint {
    eks::Taint::builder()
        .key(&t.key)
        .set_value(t.value.clone())
        .effect(eks::TaintEffect::from(t.effect.as_str()))
        .build()
}

fn taint_in(t: &eks::Taint) -> NodegroupTaint {
    NodegroupTaint {
        key: t.key().unwrap_or_default().to_string(),
        value: t.value().map(str::to_string),
        effect: t
            .effect()
            .map(|e| e.as_str().to_string())
            .unwrap_or_default(),
    }
}

fn scaling_out(s: &NodegroupScaling) -> eks::NodegroupScalingConfig {
    eks::NodegroupScalingConfig::builder()
        .min_size(s.min)
        .max_size(s.max)
        .desired_size(s.desired)
        .build()
}

fn cluster_in(c: &eks::Cluster) -> EksCluster {
    EksCluster {
        name: c.name().unwrap_or_default().to_string(),
        status: c
            .status()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
        version: c.version().map(str::to_string),
        endpoint: c.endpoint().map(str::to_string),
        certificate_authority: c
            .certificate_authority()
            .and_then(|ca| ca.data())
            .map(str::to_string),
        tags: tags(c.tags()),
        issues: c
            .health()
            .map(|h| h.issues())
            .unwrap_or_default()
            .iter()
            .map(|i| issue_text(i.code().map(|c| c.as_str()), i.message()))
            .collect(),
    }
}

fn nodegroup_in(n: &eks::Nodegroup) -> EksNodegroup {
    let scaling = n.scaling_config();
    EksNodegroup {
        name: n.nodegroup_name().unwrap_or_default().to_string(),
        status: n
            .status()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
        version: n.version().map(str::to_string),
        scaling: NodegroupScaling {
            min: scaling.and_then(|s| s.min_size()).unwrap_or_default(),
            max: scaling.and_then(|s| s.max_size()).unwrap_or_default(),
            desired: scaling.and_then(|s| s.desired_size()).unwrap_or_default(),
        },
        labels: tags(n.labels()),
        taints: n.taints().iter().map(taint_in).collect(),
        tags: tags(n.tags()),
        issues: n
            .health()
            .map(|h| h.issues())
            .unwrap_or_default()
            .iter()
            .map(|i| issue_text(i.code().map(|c| c.as_str()), i.message()))
            .collect(),
    }
}

/// A health issue of a cluster or node group as `<code>: <message>`.
fn issue_text(code: Option<&str>, message: Option<&str>) -> String {
    format!(
        "{}: {}",
        code.unwrap_or("Issue"),
        message.unwrap_or_default()
    )
}

/// `Ok(None)` for a not-found error.
fn absent_ok<T>(result: AwsResult<T>) -> AwsResult<Option<T>> {
    match result {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.kind == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

impl EksApi for SdkEks {
    fn describe(&self) -> String {
        match &self.endpoint_url {
            Some(url) => format!("AWS SDK, endpoint override {url}"),
            None => "AWS SDK, regional AWS endpoints".into(),
        }
    }

    fn describe_cluster<'a>(
        &'a self,
        target: &'a Target,
        name: &'a str,
    ) -> BoxFuture<'a, AwsResult<Option<EksCluster>>> {
        async move {
            let result = self
                .client(target)
                .await
                .describe_cluster()
                .name(name)
                .send()
                .await
                .map_err(classify);
            Ok(absent_ok(result)?.and_then(|out| out.cluster().map(cluster_in)))
        }
        .boxed()
    }

    fn create_cluster<'a>(
        &'a self,
        target: &'a Target,
        request: &'a ClusterRequest,
    ) -> BoxFuture<'a, AwsResult<()>> {
        async move {
            let vpc = eks::VpcConfigRequest::builder()
                .set_subnet_ids(Some(request.subnet_ids.clone()))
                .set_security_group_ids(
                    (!request.security_group_ids.is_empty())
                        .then(|| request.security_group_ids.clone()),
                )
                .endpoint_public_access(request.endpoint_public_access)
                .endpoint_private_access(request.endpoint_private_access)
                .set_public_access_cidrs(
                    (!request.public_access_cidrs.is_empty())
                        .then(|| request.public_access_cidrs.clone()),
                )
                .build();
            let access = eks::CreateAccessConfigRequest::builder()
                .authentication_mode(eks::AuthenticationMode::ApiAndConfigMap)
                .build();
            self.client(target)
                .await
                .create_cluster()
                .name(&request.name)
                .role_arn(&request.role_arn)
                .set_version(request.version.clone())
                .resources_vpc_config(vpc)
                .access_config(access)
                .set_tags(Some(request.tags.clone().into_iter().collect()))
                .client_request_token(&request.client_request_token)
                .send()
                .await
                .map_err(classify)?;
            Ok(())
        }
        .boxed()
    }

    fn update_cluster_version<'a>(
        &'a self,
        target: &'a Target,
        name: &'a str,
        version: &'a str,
    ) -> BoxFuture<'a, AwsResult<String>> {
        async move {
            let out = self
                .client(target)
                .await
                .update_cluster_version()
                .name(name)
                .version(version)
                .send()
                .await
                .map_err(classify)?;
            Ok(out
                .update()
                .and_then(|u| u.id())
                .unwrap_or_default()
                .to_string())
        }
        .boxed()
    }

    fn delete_cluster<'a>(
        &'a self,
        target: &'a Target,
        name: &'a str,
    ) -> BoxFuture<'a, AwsResult<()>> {
        async move {
            let result = self
                .client(target)
                .await
                .delete_cluster()
                .name(name)
                .send()
                .await
                .map_err(classify);
            absent_ok(result).map(|_| ())
        }
        .boxed()
    }

    fn list_nodegroups<'a>(
        &'a self,
        target: &'a Target,
        cluster: &'a str,
    ) -> BoxFuture<'a, AwsResult<Vec<String>>> {
        async move {
            let client = self.client(target).await;
            let mut names = Vec::new();
            let mut next: Option<String> = None;
            loop {
                let result = client
                    .list_nodegroups()
                    .cluster_name(cluster)
                    .set_next_token(next.clone())
                    .send()
                    .await
                    .map_err(classify);
                let Some(out) = absent_ok(result)? else {
                    return Ok(Vec::new());
                };
                names.extend(out.nodegroups().iter().cloned());
                match out.next_token() {
                    Some(token) if !token.is_empty() => next = Some(token.to_string()),
                    _ => return Ok(names),
                }
            }
        }
        .boxed()
    }

    fn describe_nodegroup<'a>(
        &'a self,
        target: &'a Target,
        cluster: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, AwsResult<Option<EksNodegroup>>> {
        async move {
            let result = self
                .client(target)
                .await
                .describe_nodegroup()
                .cluster_name(cluster)
                .nodegroup_name(name)
                .send()
                .await
                .map_err(classify);
            Ok(absent_ok(result)?.and_then(|out| out.nodegroup().map(nodegroup_in)))
        }
        .boxed()
    }

    fn create_nodegroup<'a>(
        &'a self,
        target: &'a Target,
        request: &'a NodegroupRequest,
    ) -> BoxFuture<'a, AwsResult<()>> {
        async move {
            self.client(target)
                .await
                .create_nodegroup()
                .cluster_name(&request.cluster)
                .nodegroup_name(&request.name)
                .node_role(&request.node_role)
                .set_version(request.version.clone())
                .set_subnets(Some(request.subnets.clone()))
                .set_instance_types(Some(request.instance_types.clone()))
                .set_ami_type(request.ami_type.as_deref().map(eks::AmiTypes::from))
                .capacity_type(eks::CapacityTypes::from(request.capacity_type.as_str()))
                .set_disk_size(request.disk_size)
                .scaling_config(scaling_out(&request.scaling))
                .set_labels(
                    (!request.labels.is_empty())
                        .then(|| request.labels.clone().into_iter().collect()),
                )
                .set_taints(
                    (!request.taints.is_empty())
                        .then(|| request.taints.iter().map(taint_out).collect()),
                )
                .set_tags(Some(request.tags.clone().into_iter().collect()))
                .client_request_token(&request.client_request_token)
                .send()
                .await
                .map_err(classify)?;
            Ok(())
        }
        .boxed()
    }

    fn update_nodegroup_config<'a>(
        &'a self,
        target: &'a Target,
        update: &'a NodegroupConfigUpdate,
    ) -> BoxFuture<'a, AwsResult<()>> {
        async move {
            let labels =
                (!update.add_labels.is_empty() || !update.remove_labels.is_empty()).then(|| {
                    eks::UpdateLabelsPayload::builder()
                        .set_add_or_update_labels(
                            (!update.add_labels.is_empty())
                                .then(|| update.add_labels.clone().into_iter().collect()),
                        )
                        .set_remove_labels(
                            (!update.remove_labels.is_empty())
                                .then(|| update.remove_labels.clone()),
                        )
                        .build()
                });
            let taints =
                (!update.add_taints.is_empty() || !update.remove_taints.is_empty()).then(|| {
                    eks::UpdateTaintsPayload::builder()
                        .set_add_or_update_taints(
                            (!update.add_taints.is_empty())
                                .then(|| update.add_taints.iter().map(taint_out).collect()),
                        )
                        .set_remove_taints(
                            (!update.remove_taints.is_empty())
                                .then(|| update.remove_taints.iter().map(taint_out).collect()),
                        )
                        .build()
                });
            self.client(target)
                .await
                .update_nodegroup_config()
                .cluster_name(&update.cluster)
                .nodegroup_name(&update.name)
                .set_scaling_config(update.scaling.as_ref().map(scaling_out))
                .set_labels(labels)
                .set_taints(taints)
                .send()
                .await
                .map_err(classify)?;
            Ok(())
        }
        .boxed()
    }

    fn update_nodegroup_version<'a>(
        &'a self,
        target: &'a Target,
        cluster: &'a str,
        name: &'a str,
        version: &'a str,
    ) -> BoxFuture<'a, AwsResult<()>> {
        async move {
            self.client(target)
                .await
                .update_nodegroup_version()
                .cluster_name(cluster)
                .nodegroup_name(name)
                .version(version)
                .send()
                .await
                .map_err(classify)?;
            Ok(())
        }
        .boxed()
    }

    fn delete_nodegroup<'a>(
        &'a self,
        target: &'a Target,
        cluster: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, AwsResult<()>> {
        async move {
            let result = self
                .client(target)
                .await
                .delete_nodegroup()
                .cluster_name(cluster)
                .nodegroup_name(name)
                .send()
                .await
                .map_err(classify);
            absent_ok(result).map(|_| ())
        }
        .boxed()
    }

    fn create_access_entry<'a>(
        &'a self,
        target: &'a Target,
        cluster: &'a str,
        principal: &'a str,
        tags: &'a BTreeMap<String, String>,
    ) -> BoxFuture<'a, AwsResult<()>> {
        async move {
            let result = self
                .client(target)
                .await
                .create_access_entry()
                .cluster_name(cluster)
                .principal_arn(principal)
                .set_tags(Some(tags.clone().into_iter().collect()))
                .send()
                .await
                .map_err(classify);
            match result {
                Ok(_) => Ok(()),
                Err(e) if e.kind == ErrorKind::InUse => Ok(()),
                Err(e) => Err(e),
            }
        }
        .boxed()
    }

    fn associate_access_policy<'a>(
        &'a self,
        target: &'a Target,
        cluster: &'a str,
        principal: &'a str,
        policy: &'a str,
    ) -> BoxFuture<'a, AwsResult<()>> {
        async move {
            self.client(target)
                .await
                .associate_access_policy()
                .cluster_name(cluster)
                .principal_arn(principal)
                .policy_arn(policy)
                .access_scope(
                    eks::AccessScope::builder()
                        .r#type(eks::AccessScopeType::Cluster)
                        .build(),
                )
                .send()
                .await
                .map_err(classify)?;
            Ok(())
        }
        .boxed()
    }

    fn ensure_node_role<'a>(
        &'a self,
        target: &'a Target,
        name: &'a str,
        tags: &'a BTreeMap<String, String>,
    ) -> BoxFuture<'a, AwsResult<String>> {
        async move {
            let iam = aws_sdk_iam::Client::new(&self.config(target).await);
            let existing = absent_ok(iam.get_role().role_name(name).send().await.map_err(classify))?;
            let arn = match existing.as_ref().and_then(|out| out.role()) {
                Some(role) => {
                    let owner = role
                        .tags()
                        .iter()
                        .find(|t| t.key() == OWNER_TAG)
                        .map(|t| t.value().to_string());
                    if owner.as_ref() != tags.get(OWNER_TAG) {
                        return Err(AwsError::new(
                            ErrorKind::Invalid,
                            "RoleOwnedElsewhere",
                            format!(
                                "IAM role {name} exists and its tag {OWNER_TAG} is not this NodePool's UID"
                            ),
                        ));
                    }
                    role.arn().to_string()
                }
                None => {
                    let iam_tags = tags
                        .iter()
                        .filter_map(|(k, v)| {
                            aws_sdk_iam::types::Tag::builder().key(k).value(v).build().ok()
                        })
                        .collect();
                    let created = iam
                        .create_role()
                        .role_name(name)
                        .assume_role_policy_document(NODE_TRUST_POLICY)
                        .description("EKS node role created by mk8")
                        .set_tags(Some(iam_tags))
                        .send()
                        .await
                        .map_err(classify)?;
                    created.role().map(|r| r.arn().to_string()).unwrap_or_default()
                }
            };
            // Attaching is idempotent: a creation interrupted before its policies resumes here.
            for policy in plan::NODE_ROLE_POLICIES {
                iam.attach_role_policy()
                    .role_name(name)
                    .policy_arn(policy)
                    .send()
                    .await
                    .map_err(classify)?;
            }
            Ok(arn)
        }
        .boxed()
    }

    fn delete_node_role<'a>(
        &'a self,
        target: &'a Target,
        name: &'a str,
        owner_uid: &'a str,
    ) -> BoxFuture<'a, AwsResult<()>> {
        async move {
            let iam = aws_sdk_iam::Client::new(&self.config(target).await);
            let existing = absent_ok(
                iam.get_role()
                    .role_name(name)
                    .send()
                    .await
                    .map_err(classify),
            )?;
            let Some(role) = existing.as_ref().and_then(|out| out.role()) else {
                return Ok(());
            };
            if !role
                .tags()
                .iter()
                .any(|t| t.key() == OWNER_TAG && t.value() == owner_uid)
            {
                return Ok(());
            }
            let attached = iam
                .list_attached_role_policies()
                .role_name(name)
                .send()
                .await
                .map_err(classify)?;
            for policy in attached.attached_policies() {
                if let Some(arn) = policy.policy_arn() {
                    absent_ok(
                        iam.detach_role_policy()
                            .role_name(name)
                            .policy_arn(arn)
                            .send()
                            .await
                            .map_err(classify),
                    )?;
                }
            }
            absent_ok(
                iam.delete_role()
                    .role_name(name)
                    .send()
                    .await
                    .map_err(classify),
            )?;
            Ok(())
        }
        .boxed()
    }

    fn ensure_network<'a>(
        &'a self,
        target: &'a Target,
        request: &'a NetworkRequest,
    ) -> BoxFuture<'a, AwsResult<Network>> {
        async move {
            let ec2 = aws_sdk_ec2::Client::new(&self.config(target).await);
            network::ensure(&ec2, request).await
        }
        .boxed()
    }

    fn find_network<'a>(
        &'a self,
        target: &'a Target,
        owner_uid: &'a str,
    ) -> BoxFuture<'a, AwsResult<Option<Network>>> {
        async move {
            let ec2 = aws_sdk_ec2::Client::new(&self.config(target).await);
            network::find(&ec2, owner_uid).await
        }
        .boxed()
    }

    fn delete_network<'a>(
        &'a self,
        target: &'a Target,
        owner_uid: &'a str,
    ) -> BoxFuture<'a, AwsResult<()>> {
        async move {
            let ec2 = aws_sdk_ec2::Client::new(&self.config(target).await);
            network::delete(&ec2, owner_uid).await
        }
        .boxed()
    }

    fn token<'a>(
        &'a self,
        target: &'a Target,
        cluster: &'a str,
    ) -> BoxFuture<'a, AwsResult<Token>> {
        async move {
            let config = self.config(target).await;
            let provider = config.credentials_provider().ok_or_else(|| {
                AwsError::new(
                    ErrorKind::Invalid,
                    "NoCredentials",
                    "no AWS credentials are configured for signing the cluster token",
                )
            })?;
            let credentials = provider.provide_credentials().await.map_err(|e| {
                AwsError::new(
                    ErrorKind::Transient,
                    "CredentialsUnavailable",
                    aws_smithy_types::error::display::DisplayErrorContext(&e).to_string(),
                )
            })?;
            token::presign(&credentials, &target.region, cluster, SystemTime::now())
                .map_err(|e| AwsError::new(ErrorKind::Invalid, "TokenSigning", e.to_string()))
        }
        .boxed()
    }
}
