//! EKS control plane of a Cluster (I/O): create or adopt, poll by requeue while it changes,
//! upgrade one minor at a time, keep a fresh-token kubeconfig Secret; delete behind the finalizer.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Api, Resource, ResourceExt};

use super::rke2::Work;
use crate::api::{Cluster, Phase};
use crate::controller::conditions::{Desired, types};
use crate::controller::context::{Context, FIELD_MANAGER};
use crate::controller::error::{Category, Error, Result};
use crate::controller::nodepool::eks::{
    ATTEMPTS_ANNOTATION, LAST_FAILURE_ANNOTATION, RETRY_AFTER_ANNOTATION, create_backoff,
    retry_wait,
};
use crate::controller::status;
use crate::providers::eks::plan::{self, VersionStep};
use crate::providers::eks::{
    AwsCredentials, AwsError, EksApi, EksCluster, ErrorKind, NetworkRequest, Target, kubeconfig,
};

/// Reasons of the EKS stage.
pub mod reasons {
    /// CreateCluster was sent, or the control plane is still being created.
    pub const CONTROL_PLANE_CREATING: &str = "ControlPlaneCreating";
    /// The control plane is updating (a version upgrade or configuration change).
    pub const CONTROL_PLANE_UPDATING: &str = "ControlPlaneUpdating";
    /// The control plane is ACTIVE and the kubeconfig Secret is fresh.
    pub const CONTROL_PLANE_READY: &str = "ControlPlaneReady";
    /// AWS reports the control plane FAILED.
    pub const CONTROL_PLANE_FAILED: &str = "ControlPlaneFailed";
    /// A previous control plane of that name is still being deleted.
    pub const CONTROL_PLANE_DELETING: &str = "ControlPlaneDeleting";
    /// An EKS cluster of that name exists and is not ours.
    pub const OWNERSHIP_CONFLICT: &str = "OwnershipConflict";
    /// AWS refused a request as invalid or not allowed.
    pub const AWS_REQUEST_REJECTED: &str = "AwsRequestRejected";
    /// `spec.kubernetesVersion` cannot be reached in one step.
    pub const VERSION_CHANGE_REFUSED: &str = "VersionChangeRefused";
    /// An AWS call failed (network, 5xx, credentials); retried with backoff.
    pub const AWS_UNAVAILABLE: &str = "AwsUnavailable";
    /// AWS throttled the operator; retried with a longer backoff.
    pub const AWS_THROTTLED: &str = "AwsThrottled";
}

/// How often a changing control plane is looked at (CREATING/UPDATING/DELETING take minutes).
pub const POLL: Duration = Duration::from_secs(10);
/// Refresh the kubeconfig token once it has less than this left (it lives 14 minutes).
pub const TOKEN_REFRESH_BEFORE_EXPIRY: Duration = Duration::from_secs(9 * 60);
/// Annotation on the kubeconfig Secret: when its token expires (RFC 3339).
pub const TOKEN_EXPIRES_ANNOTATION: &str = "mk8.io/token-expires-at";
/// Annotation on the kubeconfig Secret: the endpoint it points at.
const ENDPOINT_ANNOTATION: &str = "mk8.io/endpoint";
/// After a refusal or conflict, look again now and then (someone may fix it outside the spec).
const RECHECK: Duration = Duration::from_secs(60);

/// Secret keys of static AWS credentials.
pub mod keys {
    /// Access key id (required).
    pub const ACCESS_KEY_ID: &str = "accessKeyId";
    /// Secret access key (required).
    pub const SECRET_ACCESS_KEY: &str = "secretAccessKey";
    /// Session token (optional).
    pub const SESSION_TOKEN: &str = "sessionToken";
    /// Role to assume with the keys (optional).
    pub const ROLE_ARN: &str = "roleArn";
}

/// Drive the EKS control plane unless another stage already did; also returns the version.
/// An AWS failure is shown in `Ready` before it is retried with backoff.
pub async fn run(
    cluster: &Cluster,
    ctx: &Context,
    validated: bool,
    work: Option<Work>,
) -> Result<(Option<Work>, Option<String>)> {
    match converge(cluster, ctx, validated, work).await {
        Err(e @ Error::Provider { .. }) => {
            let ready = unavailable(&e);
            let mut status = cluster.status.clone().unwrap_or_default();
            status.provider = cluster.provider().map(str::to_string);
            status.conditions = with_ready(&status.conditions, ready, cluster.metadata.generation);
            if let Err(publish) = status::publish(ctx, cluster, status).await {
                tracing::debug!(error = %publish, "could not report the AWS failure in status");
            }
            Err(e)
        }
        other => other,
    }
}

/// `Ready=False` for an AWS failure about to be retried.
pub fn unavailable(e: &Error) -> Desired {
    let reason = match e.category() {
        Category::Throttled => reasons::AWS_THROTTLED,
        _ => reasons::AWS_UNAVAILABLE,
    };
    Desired::no(types::READY, reason, format!("{e}; retrying with backoff"))
}

/// `conditions` with `Ready` replaced by `ready` (transition time kept when unchanged).
pub fn with_ready(
    conditions: &[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition],
    ready: Desired,
    generation: Option<i64>,
) -> Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition> {
    let mut merged: Vec<_> = conditions
        .iter()
        .filter(|c| c.type_ != types::READY)
        .cloned()
        .collect();
    merged.extend(crate::controller::conditions::merge(
        conditions,
        &[ready],
        generation,
        &crate::controller::conditions::now(),
    ));
    merged
}

async fn converge(
    cluster: &Cluster,
    ctx: &Context,
    validated: bool,
    work: Option<Work>,
) -> Result<(Option<Work>, Option<String>)> {
    if work.is_some() {
        return Ok((work, None));
    }
    let (Some(driver), Some(_)) = (ctx.providers.eks.clone(), &cluster.spec.eks) else {
        return Ok((None, None));
    };
    if !validated || cluster.spec.paused || cluster.metadata.deletion_timestamp.is_some() {
        return Ok((None, None));
    }
    let target = target(ctx, cluster).await?;
    let name = plan::cluster_name(cluster);
    let owner = cluster.uid().unwrap_or_default();
    let found = driver
        .describe_cluster(&target, &name)
        .await
        .map_err(retryable)?;
    let Some(found) = found else {
        if let Some(wait) = retry_wait(cluster) {
            return Ok((
                Some(work_of(
                    Phase::Failed,
                    Desired::no(
                        types::READY,
                        reasons::CONTROL_PLANE_FAILED,
                        format!(
                            "AWS reported EKS cluster {name} FAILED ({}); creating it again in {}s",
                            cluster
                                .annotations()
                                .get(LAST_FAILURE_ANNOTATION)
                                .map(String::as_str)
                                .unwrap_or("no reason given"),
                            wait.as_secs()
                        ),
                    ),
                    Some(wait),
                )),
                None,
            ));
        }
        let mut request = plan::cluster_request(cluster);
        if let Some(create) = cluster.spec.eks.as_ref().and_then(|e| e.vpc.create.clone()) {
            let network = NetworkRequest {
                cidr: create.cidr,
                zones: usize::try_from(create.availability_zones).unwrap_or(2),
                tags: request.tags.clone(),
            };
            match driver.ensure_network(&target, &network).await {
                Ok(made) => {
                    request.subnet_ids = [made.public_subnets, made.private_subnets].concat();
                }
                Err(e) => return rejected_or_retry(e, "creating the VPC").map(|w| (Some(w), None)),
            }
        }
        return match driver.create_cluster(&target, &request).await {
            Ok(()) => {
                ctx.event(
                    &cluster.object_ref(&()),
                    false,
                    reasons::CONTROL_PLANE_CREATING,
                    format!("CreateCluster {name} in {} sent", target.region),
                )
                .await;
                Ok((
                    Some(creating(format!(
                        "CreateCluster {name} sent; waiting for ACTIVE"
                    ))),
                    None,
                ))
            }
            Err(e) if e.kind == ErrorKind::InUse => Ok((
                Some(creating(format!("EKS cluster {name} is being created"))),
                None,
            )),
            Err(e) => rejected_or_retry(e, "CreateCluster").map(|w| (Some(w), None)),
        };
    };
    let what = format!("EKS cluster {name} in {}", target.region);
    if let Some(conflict) = plan::ownership_conflict(&what, &found.tags, &owner) {
        return Ok((
            Some(work_of(
                Phase::Failed,
                Desired::no(types::READY, reasons::OWNERSHIP_CONFLICT, conflict),
                Some(RECHECK),
            )),
            None,
        ));
    }
    let version = found.version.clone();
    let work = match found.status.as_str() {
        "CREATING" | "PENDING" => creating(format!("{what} is {}", found.status)),
        "UPDATING" => work_of(
            Phase::Upgrading,
            Desired::no(
                types::READY,
                reasons::CONTROL_PLANE_UPDATING,
                format!("{what} is UPDATING"),
            ),
            Some(POLL),
        ),
        "DELETING" => work_of(
            Phase::Provisioning,
            Desired::no(
                types::READY,
                reasons::CONTROL_PLANE_DELETING,
                format!("{what} is being deleted; it will be created again once gone"),
            ),
            Some(POLL),
        ),
        "FAILED" => failed(cluster, ctx, driver.as_ref(), &target, &found, &what).await?,
        _ => active(cluster, ctx, driver.as_ref(), &target, &found).await?,
    };
    Ok((Some(work), version))
}

/// A FAILED control plane that never served (no endpoint in status) is deleted and created again
/// after a backoff; one that did serve is only reported, never deleted behind the user's back.
async fn failed(
    cluster: &Cluster,
    ctx: &Context,
    driver: &dyn EksApi,
    target: &Target,
    found: &EksCluster,
    what: &str,
) -> Result<Work> {
    let reason = if found.issues.is_empty() {
        "no reason given".to_string()
    } else {
        found.issues.join("; ")
    };
    let served = cluster
        .status
        .as_ref()
        .is_some_and(|s| s.endpoint.is_some());
    if served {
        return Ok(work_of(
            Phase::Failed,
            Desired::no(
                types::READY,
                reasons::CONTROL_PLANE_FAILED,
                format!(
                    "AWS reports {what} FAILED: {reason}; it served before, so mk8 leaves it for you to inspect (delete the Cluster to remove it)"
                ),
            ),
            Some(RECHECK),
        ));
    }
    let failures: u32 = cluster
        .annotations()
        .get(ATTEMPTS_ANNOTATION)
        .and_then(|v| v.parse::<u32>().ok())
        .unwrap_or(0)
        .saturating_add(1);
    let wait = create_backoff(failures);
    match driver.delete_cluster(target, &found.name).await {
        Ok(())
        | Err(AwsError {
            kind: ErrorKind::InUse,
            ..
        }) => {}
        Err(e) => return Err(retryable(e)),
    }
    let retry_after = Utc::now() + chrono::Duration::from_std(wait).unwrap_or_default();
    let patch = serde_json::json!({"metadata": {"annotations": {
        ATTEMPTS_ANNOTATION: failures.to_string(),
        RETRY_AFTER_ANNOTATION: retry_after.to_rfc3339(),
        LAST_FAILURE_ANNOTATION: reason,
    }}});
    Api::<Cluster>::namespaced(ctx.client.clone(), &cluster.namespace().unwrap_or_default())
        .patch(
            &cluster.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await?;
    let message = format!(
        "AWS reports {what} FAILED: {reason}; deleted it, creating it again in {}s (failure {failures})",
        wait.as_secs()
    );
    ctx.event(
        &cluster.object_ref(&()),
        true,
        reasons::CONTROL_PLANE_FAILED,
        message.clone(),
    )
    .await;
    Ok(work_of(
        Phase::Failed,
        Desired::no(types::READY, reasons::CONTROL_PLANE_FAILED, message),
        Some(wait),
    ))
}

async fn active(
    cluster: &Cluster,
    ctx: &Context,
    driver: &dyn EksApi,
    target: &Target,
    found: &EksCluster,
) -> Result<Work> {
    let name = &found.name;
    let step = version_step(cluster, found);
    if let VersionStep::Upgrade(next) = &step {
        return match driver.update_cluster_version(target, name, next).await {
            Ok(_)
            | Err(AwsError {
                kind: ErrorKind::InUse,
                ..
            }) => Ok(work_of(
                Phase::Upgrading,
                Desired::no(
                    types::READY,
                    reasons::CONTROL_PLANE_UPDATING,
                    format!(
                        "upgrading EKS cluster {name} from {} to {next}",
                        found.version.as_deref().unwrap_or("?")
                    ),
                ),
                Some(POLL),
            )),
            Err(e) => rejected_or_retry(e, "UpdateClusterVersion"),
        };
    }
    if let Some(rejected) = ensure_access_entries(cluster, ctx, driver, target, name).await? {
        return Ok(rejected);
    }
    let endpoint = found.endpoint.clone().unwrap_or_default();
    let refresh_in = refresh_kubeconfig(cluster, ctx, driver, target, found).await?;
    let secret = secret_name(cluster);
    let mut work = work_of(
        Phase::Ready,
        Desired::yes(
            types::READY,
            reasons::CONTROL_PLANE_READY,
            format!(
                "EKS cluster {name} is ACTIVE at {endpoint} (Kubernetes {}); kubeconfig in Secret {secret}",
                found.version.as_deref().unwrap_or("?")
            ),
        ),
        Some(refresh_in),
    );
    if let VersionStep::Refused(message) = step {
        work.ready = Desired::no(types::READY, reasons::VERSION_CHANGE_REFUSED, message);
        work.requeue = Some(refresh_in.min(RECHECK));
    }
    work.endpoint = Some(endpoint);
    work.kubeconfig_secret_name = Some(secret);
    Ok(work)
}

/// Annotation on the Cluster: digest of the access entries last applied, so that they are sent
/// once per change rather than on every token refresh.
pub const ACCESS_ENTRIES_ANNOTATION: &str = "mk8.io/eks-access-entries";

/// CreateAccessEntry + AssociateAccessPolicy for each listed principal, once per spec change;
/// `Some` when AWS rejected one (as the Work to report).
async fn ensure_access_entries(
    cluster: &Cluster,
    ctx: &Context,
    driver: &dyn EksApi,
    target: &Target,
    name: &str,
) -> Result<Option<Work>> {
    let entries = cluster
        .spec
        .eks
        .as_ref()
        .map(|e| e.access_entries.clone())
        .unwrap_or_default();
    let digest = {
        use sha2::Digest as _;
        let mut hash = sha2::Sha256::new();
        for entry in &entries {
            hash.update(format!("{}\n{}\n", entry.principal_arn, entry.policy_arn));
        }
        hex::encode(hash.finalize())
    };
    if entries.is_empty() || cluster.annotations().get(ACCESS_ENTRIES_ANNOTATION) == Some(&digest) {
        return Ok(None);
    }
    let tags = plan::owner_tags(cluster, &BTreeMap::new());
    for entry in &entries {
        let done = match driver
            .create_access_entry(target, name, &entry.principal_arn, &tags)
            .await
        {
            Ok(()) => {
                driver
                    .associate_access_policy(target, name, &entry.principal_arn, &entry.policy_arn)
                    .await
            }
            Err(e) => Err(e),
        };
        if let Err(e) = done {
            return rejected_or_retry(e, &format!("access entry {}", entry.principal_arn))
                .map(Some);
        }
    }
    let patch =
        serde_json::json!({"metadata": {"annotations": {ACCESS_ENTRIES_ANNOTATION: digest}}});
    Api::<Cluster>::namespaced(ctx.client.clone(), &cluster.namespace().unwrap_or_default())
        .patch(
            &cluster.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await?;
    Ok(None)
}

fn version_step(cluster: &Cluster, found: &EksCluster) -> VersionStep {
    plan::version_step(
        found.version.as_deref(),
        cluster.spec.kubernetes_version.as_deref(),
    )
}

/// Name of the kubeconfig Secret of a Cluster.
pub fn secret_name(cluster: &Cluster) -> String {
    format!("{}-kubeconfig", cluster.name_any())
}

/// Write a fresh token into the kubeconfig Secret when due; returns when to look again.
async fn refresh_kubeconfig(
    cluster: &Cluster,
    ctx: &Context,
    driver: &dyn EksApi,
    target: &Target,
    found: &EksCluster,
) -> Result<Duration> {
    let ns = cluster.namespace().unwrap_or_default();
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &ns);
    let name = secret_name(cluster);
    let endpoint = found.endpoint.clone().unwrap_or_default();
    let now = Utc::now();
    if let Some(existing) = secrets.get_opt(&name).await? {
        let annotations = existing.annotations();
        let expires = annotations
            .get(TOKEN_EXPIRES_ANNOTATION)
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc));
        let same_endpoint = annotations.get(ENDPOINT_ANNOTATION) == Some(&endpoint);
        if let (Some(expires), true) = (expires, same_endpoint) {
            let due = expires
                - chrono::Duration::from_std(TOKEN_REFRESH_BEFORE_EXPIRY).unwrap_or_default();
            if due > now {
                return Ok((due - now)
                    .to_std()
                    .unwrap_or(POLL)
                    .max(Duration::from_secs(1)));
            }
        }
    }
    let token = driver.token(target, &found.name).await.map_err(retryable)?;
    let config = kubeconfig::render(
        &found.name,
        &endpoint,
        found.certificate_authority.as_deref(),
        &kubeconfig::User::Token(&token.value),
    );
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: Some(ns),
            owner_references: cluster.controller_owner_ref(&()).map(|o| vec![o]),
            labels: Some(BTreeMap::from([(
                "mk8.io/cluster".to_string(),
                cluster.name_any(),
            )])),
            annotations: Some(BTreeMap::from([
                (
                    TOKEN_EXPIRES_ANNOTATION.to_string(),
                    token.expires_at.to_rfc3339(),
                ),
                (ENDPOINT_ANNOTATION.to_string(), endpoint),
            ])),
            ..Default::default()
        },
        type_: Some("Opaque".into()),
        data: Some(BTreeMap::from([(
            "value".to_string(),
            ByteString(config.into_bytes()),
        )])),
        ..Default::default()
    };
    let mut value = serde_json::to_value(&secret)?;
    value["apiVersion"] = "v1".into();
    value["kind"] = "Secret".into();
    secrets
        .patch(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&value),
        )
        .await?;
    let due = token.expires_at
        - chrono::Duration::from_std(TOKEN_REFRESH_BEFORE_EXPIRY).unwrap_or_default();
    Ok((due - Utc::now())
        .to_std()
        .unwrap_or(POLL)
        .max(Duration::from_secs(1)))
}

/// Delete the node groups, then the control plane; `None` when this stage does not apply.
pub async fn cleanup(cluster: &Cluster, ctx: &Context) -> Result<Option<Action>> {
    let (Some(driver), Some(_)) = (ctx.providers.eks.clone(), &cluster.spec.eks) else {
        return Ok(None);
    };
    let target = target(ctx, cluster).await?;
    let name = plan::cluster_name(cluster);
    let owner = cluster.uid().unwrap_or_default();
    let Some(found) = driver
        .describe_cluster(&target, &name)
        .await
        .map_err(retryable)?
    else {
        delete_network(cluster, driver.as_ref(), &target).await?;
        return Ok(Some(Action::await_change()));
    };
    let what = format!("EKS cluster {name}");
    if plan::ownership_conflict(&what, &found.tags, &owner).is_some() {
        // Never delete what this Cluster did not create.
        return Ok(Some(Action::await_change()));
    }
    let groups = driver
        .list_nodegroups(&target, &name)
        .await
        .map_err(retryable)?;
    if !groups.is_empty() {
        for group in &groups {
            let state = driver
                .describe_nodegroup(&target, &name, group)
                .await
                .map_err(retryable)?;
            if state.is_some_and(|g| g.status != "DELETING") {
                driver
                    .delete_nodegroup(&target, &name, group)
                    .await
                    .map_err(retryable)?;
            }
        }
        return Err(Error::CleanupBlocked(format!(
            "deleting the node groups of {what} first: {}",
            groups.join(", ")
        )));
    }
    if found.status != "DELETING" {
        match driver.delete_cluster(&target, &name).await {
            Ok(())
            | Err(AwsError {
                kind: ErrorKind::InUse,
                ..
            }) => {}
            Err(e) => return Err(retryable(e)),
        }
        ctx.event(
            &cluster.object_ref(&()),
            false,
            "ControlPlaneDeleting",
            format!("DeleteCluster {name} sent"),
        )
        .await;
    }
    match driver
        .describe_cluster(&target, &name)
        .await
        .map_err(retryable)?
    {
        None => {
            delete_network(cluster, driver.as_ref(), &target).await?;
            Ok(Some(Action::await_change()))
        }
        Some(_) => Err(Error::CleanupBlocked(format!(
            "waiting for {what} to be deleted"
        ))),
    }
}

/// Delete the VPC mk8 created for the Cluster (`vpc.create`), once the control plane is gone.
async fn delete_network(cluster: &Cluster, driver: &dyn EksApi, target: &Target) -> Result<()> {
    if cluster
        .spec
        .eks
        .as_ref()
        .is_none_or(|e| e.vpc.create.is_none())
    {
        return Ok(());
    }
    match driver
        .delete_network(target, &cluster.uid().unwrap_or_default())
        .await
    {
        Ok(()) => Ok(()),
        Err(e) if e.kind == ErrorKind::InUse => Err(Error::CleanupBlocked(format!(
            "the VPC created for Cluster {} is still in use ({e}); retrying",
            cluster.name_any()
        ))),
        Err(e) => Err(retryable(e)),
    }
}

/// Region and credentials of a Cluster; the Secret's values never leave this function but in
/// the returned target.
pub async fn target(ctx: &Context, cluster: &Cluster) -> Result<Target> {
    let eks = cluster.spec.eks.clone().unwrap_or_default();
    let credentials = match &eks.credentials_secret_ref {
        None => None,
        Some(reference) => {
            let ns = cluster.namespace().unwrap_or_default();
            let secret = Api::<Secret>::namespaced(ctx.client.clone(), &ns)
                .get_opt(&reference.name)
                .await?;
            let credentials = secret.as_ref().and_then(credentials_from);
            match credentials {
                Some(c) => Some(c),
                None => {
                    return Err(Error::CleanupBlocked(format!(
                        "Secret {ns}/{} with {} and {} is missing or incomplete",
                        reference.name,
                        keys::ACCESS_KEY_ID,
                        keys::SECRET_ACCESS_KEY
                    )));
                }
            }
        }
    };
    Ok(Target {
        region: eks.region,
        credentials,
    })
}

/// Static credentials from a Secret's `data` or `stringData`.
pub fn credentials_from(secret: &Secret) -> Option<AwsCredentials> {
    let value = |key: &str| -> Option<String> {
        let from_data = secret
            .data
            .as_ref()
            .and_then(|d| d.get(key))
            .and_then(|b| String::from_utf8(b.0.clone()).ok());
        let from_string = secret
            .string_data
            .as_ref()
            .and_then(|d| d.get(key))
            .cloned();
        from_data
            .or(from_string)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    Some(AwsCredentials {
        access_key_id: value(keys::ACCESS_KEY_ID)?,
        secret_access_key: value(keys::SECRET_ACCESS_KEY)?,
        session_token: value(keys::SESSION_TOKEN),
        role_arn: value(keys::ROLE_ARN),
    })
}

/// An AWS failure as a reconcile error (retried with backoff).
pub fn retryable(e: AwsError) -> Error {
    let category = match e.kind {
        ErrorKind::Throttled => Category::Throttled,
        _ => Category::Transient,
    };
    Error::Provider {
        category,
        message: format!("AWS: {e}"),
    }
}

/// Invalid requests become a condition (waiting for a spec change); others are retried.
fn rejected_or_retry(e: AwsError, call: &str) -> Result<Work> {
    match e.kind {
        ErrorKind::Invalid => Ok(work_of(
            Phase::Failed,
            Desired::no(
                types::READY,
                reasons::AWS_REQUEST_REJECTED,
                format!("AWS rejected {call}: {e}"),
            ),
            Some(RECHECK),
        )),
        _ => Err(retryable(e)),
    }
}

fn creating(message: String) -> Work {
    work_of(
        Phase::Provisioning,
        Desired::no(types::READY, reasons::CONTROL_PLANE_CREATING, message),
        Some(POLL),
    )
}

fn work_of(phase: Phase, ready: Desired, requeue: Option<Duration>) -> Work {
    Work {
        phase,
        ready,
        endpoint: None,
        kubeconfig_secret_name: None,
        version: None,
        requeue,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(data: &[(&str, &str)], string_data: &[(&str, &str)]) -> Secret {
        Secret {
            data: Some(
                data.iter()
                    .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
                    .collect(),
            ),
            string_data: Some(
                string_data
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            ..Default::default()
        }
    }

    #[test]
    fn credentials_come_from_data_or_string_data_and_need_both_keys() {
        let c = credentials_from(&secret(
            &[("accessKeyId", "AKIA1\n"), ("secretAccessKey", "s3cr3t")],
            &[("roleArn", "arn:aws:iam::123456789012:role/x")],
        ))
        .unwrap();
        assert_eq!(
            c.access_key_id, "AKIA1",
            "trailing newline of a file-made Secret dropped"
        );
        assert_eq!(
            c.role_arn.as_deref(),
            Some("arn:aws:iam::123456789012:role/x")
        );
        assert_eq!(c.session_token, None);
        assert!(!format!("{c:?}").contains("s3cr3t"), "Debug hides the keys");
        assert_eq!(
            credentials_from(&secret(&[("accessKeyId", "AKIA1")], &[])),
            None
        );
        assert_eq!(
            credentials_from(&secret(
                &[("accessKeyId", "AKIA1"), ("secretAccessKey", " ")],
                &[]
            )),
            None
        );
    }

    #[test]
    fn an_aws_failure_replaces_only_the_ready_condition() {
        let valid = k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition {
            type_: types::VALID.into(),
            status: "True".into(),
            reason: "SpecValid".into(),
            message: "the spec is valid".into(),
            last_transition_time: crate::controller::conditions::now(),
            observed_generation: Some(2),
        };
        let error = retryable(AwsError::new(
            ErrorKind::Throttled,
            "ThrottlingException",
            "Rate exceeded",
        ));
        let ready = unavailable(&error);
        assert_eq!(ready.reason, reasons::AWS_THROTTLED);
        assert!(
            ready.message.contains("ThrottlingException: Rate exceeded"),
            "{}",
            ready.message
        );
        let merged = with_ready(std::slice::from_ref(&valid), ready, Some(2));
        assert_eq!(merged.len(), 2);
        assert_eq!(merged[0], valid);
        assert_eq!(merged[1].reason, reasons::AWS_THROTTLED);
        let transient = unavailable(&retryable(AwsError::new(
            ErrorKind::Transient,
            "RequestFailed",
            "dns",
        )));
        assert_eq!(transient.reason, reasons::AWS_UNAVAILABLE);
    }
}
