//! EKS control plane of a Cluster: observe what AWS reports (I/O), [`decide`] the step (pure),
//! act on it (I/O): create or adopt, poll by requeue while it changes, upgrade one minor at a
//! time, keep a fresh-token kubeconfig Secret; [`cleanup`] deletes behind the finalizer.

mod cleanup;
pub mod decide;

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::Utc;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Patch, PatchParams};
use kube::{Api, Resource, ResourceExt};

use crate::api::cluster::AccessEntry;
use crate::api::{Cluster, Phase};
use crate::providers::ClusterOutcome;
use crate::providers::eks::shared::{
    POLL, RECHECK, annotate, done_or_in_use, failure_annotations, rejected, retryable, target,
    unavailable, with_ready,
};
use crate::providers::eks::{
    AwsError, ClusterRequest, EksApi, EksCluster, ErrorKind, NetworkRequest, Target, kubeconfig,
    plan,
};
use crate::reconcile::conditions::{Desired, types};
use crate::reconcile::env::{Env, FIELD_MANAGER};
use crate::reconcile::error::{Error, Result};
use crate::reconcile::status;

pub use cleanup::cleanup;
pub use decide::ACCESS_ENTRIES_ANNOTATION;
use decide::{Absent, Present};

/// Reasons of the EKS control plane stage.
pub mod reasons {
    pub use crate::providers::eks::shared::reasons::*;

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
    /// `spec.kubernetesVersion` cannot be reached in one step.
    pub const VERSION_CHANGE_REFUSED: &str = "VersionChangeRefused";
}

/// Refresh the kubeconfig token once it has less than this left (it lives 14 minutes).
pub const TOKEN_REFRESH_BEFORE_EXPIRY: Duration = Duration::from_secs(9 * 60);
/// Annotation on the kubeconfig Secret: when its token expires (RFC 3339).
pub const TOKEN_EXPIRES_ANNOTATION: &str = "mk8.io/token-expires-at";
/// Annotation on the kubeconfig Secret: the endpoint it points at.
const ENDPOINT_ANNOTATION: &str = "mk8.io/endpoint";

/// Drive the EKS control plane. An AWS failure is shown in `Ready` before it is retried with
/// backoff.
pub async fn reconcile(
    driver: &dyn EksApi,
    env: &Env,
    cluster: &Cluster,
) -> Result<Option<ClusterOutcome>> {
    match converge(driver, env, cluster).await {
        Err(e @ Error::Provider { .. }) => {
            let ready = unavailable(&e);
            let mut status = cluster.status.clone().unwrap_or_default();
            status.provider = cluster.provider().map(str::to_string);
            status.conditions = with_ready(&status.conditions, ready, cluster.metadata.generation);
            if let Err(publish) = status::publish(env, cluster, status).await {
                tracing::debug!(error = %publish, "could not report the AWS failure in status");
            }
            Err(e)
        }
        other => other.map(Some),
    }
}

/// Observe, decide, act.
async fn converge(driver: &dyn EksApi, env: &Env, cluster: &Cluster) -> Result<ClusterOutcome> {
    let target = target(env, cluster).await?;
    let name = plan::cluster_name(cluster);
    let found = driver
        .describe_cluster(&target, &name)
        .await
        .map_err(retryable)?;
    let act = Act {
        driver,
        env,
        cluster,
        target: &target,
        name: &name,
    };
    let Some(found) = found else {
        return match decide::absent(cluster, Utc::now()) {
            Absent::Wait(outcome) => Ok(outcome),
            Absent::Create { request, network } => act.create(request, network).await,
        };
    };
    let outcome = match decide::present(cluster, &found, &target.region) {
        Present::Report(outcome) => return Ok(outcome),
        Present::Recreate {
            failures,
            wait,
            reason,
        } => act.recreate(&found, failures, wait, reason).await?,
        Present::Upgrade { next } => act.upgrade(&found, &next).await?,
        Present::Serve {
            access_entries,
            refused,
        } => act.serve(&found, access_entries, refused).await?,
    };
    Ok(ClusterOutcome {
        version: found.version.clone(),
        ..outcome
    })
}

/// The acting stage: one method per step that calls AWS.
struct Act<'a> {
    driver: &'a dyn EksApi,
    env: &'a Env,
    cluster: &'a Cluster,
    target: &'a Target,
    name: &'a str,
}

impl Act<'_> {
    /// The VPC when asked for, then CreateCluster.
    async fn create(
        &self,
        mut request: ClusterRequest,
        network: Option<NetworkRequest>,
    ) -> Result<ClusterOutcome> {
        let name = self.name;
        if let Some(network) = network {
            match self.driver.ensure_network(self.target, &network).await {
                Ok(made) => {
                    request.subnet_ids = [made.public_subnets, made.private_subnets].concat();
                }
                Err(e) => return self.rejected(e, "creating the VPC"),
            }
        }
        match self.driver.create_cluster(self.target, &request).await {
            Ok(()) => {
                self.env
                    .event(
                        &self.cluster.object_ref(&()),
                        false,
                        reasons::CONTROL_PLANE_CREATING,
                        format!("CreateCluster {name} in {} sent", self.target.region),
                    )
                    .await;
                Ok(creating(format!(
                    "CreateCluster {name} sent; waiting for ACTIVE"
                )))
            }
            Err(e) if e.kind == ErrorKind::InUse => {
                Ok(creating(format!("EKS cluster {name} is being created")))
            }
            Err(e) => self.rejected(e, "CreateCluster"),
        }
    }

    /// Delete the FAILED control plane, record the failure, come back after the backoff.
    async fn recreate(
        &self,
        found: &EksCluster,
        failures: u32,
        wait: Duration,
        reason: String,
    ) -> Result<ClusterOutcome> {
        done_or_in_use(self.driver.delete_cluster(self.target, &found.name).await)
            .map_err(retryable)?;
        let patch = failure_annotations(failures, wait, &reason, Utc::now());
        annotate(self.env, self.cluster, &patch).await?;
        let what = format!("EKS cluster {} in {}", self.name, self.target.region);
        let message = format!(
            "AWS reports {what} FAILED: {reason}; deleted it, creating it again in {}s (failure {failures})",
            wait.as_secs()
        );
        self.env
            .event(
                &self.cluster.object_ref(&()),
                true,
                reasons::CONTROL_PLANE_FAILED,
                message.clone(),
            )
            .await;
        Ok(ClusterOutcome::of(
            Phase::Failed,
            Desired::no(types::READY, reasons::CONTROL_PLANE_FAILED, message),
            Some(wait),
        ))
    }

    /// UpdateClusterVersion to the next minor.
    async fn upgrade(&self, found: &EksCluster, next: &str) -> Result<ClusterOutcome> {
        let name = self.name;
        match done_or_in_use(
            self.driver
                .update_cluster_version(self.target, name, next)
                .await,
        ) {
            Ok(()) => Ok(ClusterOutcome::of(
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
            Err(e) => self.rejected(e, "UpdateClusterVersion"),
        }
    }

    /// Access entries when they changed, a fresh kubeconfig, Ready.
    async fn serve(
        &self,
        found: &EksCluster,
        access_entries: Option<(Vec<AccessEntry>, String)>,
        refused: Option<String>,
    ) -> Result<ClusterOutcome> {
        let name = self.name;
        if let Some((entries, digest)) = access_entries
            && let Some(rejected) = self.apply_access_entries(&entries, digest).await?
        {
            return Ok(rejected);
        }
        let endpoint = found.endpoint.clone().unwrap_or_default();
        let refresh_in =
            refresh_kubeconfig(self.cluster, self.env, self.driver, self.target, found).await?;
        let secret = secret_name(self.cluster);
        let mut outcome = ClusterOutcome::of(
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
        if let Some(message) = refused {
            outcome.ready = Desired::no(types::READY, reasons::VERSION_CHANGE_REFUSED, message);
            outcome.requeue = Some(refresh_in.min(RECHECK));
        }
        outcome.endpoint = Some(endpoint);
        outcome.kubeconfig_secret_name = Some(secret);
        Ok(outcome)
    }

    /// CreateAccessEntry + AssociateAccessPolicy for each listed principal, then the digest on
    /// the Cluster; `Some` when AWS rejected one (as the outcome to report).
    async fn apply_access_entries(
        &self,
        entries: &[AccessEntry],
        digest: String,
    ) -> Result<Option<ClusterOutcome>> {
        let (driver, target, name) = (self.driver, self.target, self.name);
        let tags = plan::owner_tags(self.cluster, &BTreeMap::new());
        for entry in entries {
            let done = match driver
                .create_access_entry(target, name, &entry.principal_arn, &tags)
                .await
            {
                Ok(()) => {
                    driver
                        .associate_access_policy(
                            target,
                            name,
                            &entry.principal_arn,
                            &entry.policy_arn,
                        )
                        .await
                }
                Err(e) => Err(e),
            };
            if let Err(e) = done {
                return self
                    .rejected(e, &format!("access entry {}", entry.principal_arn))
                    .map(Some);
            }
        }
        let patch =
            serde_json::json!({"metadata": {"annotations": {ACCESS_ENTRIES_ANNOTATION: digest}}});
        annotate(self.env, self.cluster, &patch).await?;
        Ok(None)
    }

    /// An invalid request is reported (`Failed`, looked at again later); others are retried.
    fn rejected(&self, e: AwsError, call: &str) -> Result<ClusterOutcome> {
        rejected(e, call).map(|ready| ClusterOutcome::of(Phase::Failed, ready, Some(RECHECK)))
    }
}

/// Name of the kubeconfig Secret of a Cluster.
pub fn secret_name(cluster: &Cluster) -> String {
    format!("{}-kubeconfig", cluster.name_any())
}

fn creating(message: String) -> ClusterOutcome {
    ClusterOutcome::of(Phase::Provisioning, decide::creating(message), Some(POLL))
}

/// Write a fresh token into the kubeconfig Secret when due; returns when to look again.
async fn refresh_kubeconfig(
    cluster: &Cluster,
    env: &Env,
    driver: &dyn EksApi,
    target: &Target,
    found: &EksCluster,
) -> Result<Duration> {
    let ns = cluster.namespace().unwrap_or_default();
    let secrets: Api<Secret> = Api::namespaced(env.client.clone(), &ns);
    let name = secret_name(cluster);
    let endpoint = found.endpoint.clone().unwrap_or_default();
    if let Some(existing) = secrets.get_opt(&name).await?
        && let Some(fresh) = decide::token_fresh_for(existing.annotations(), &endpoint, Utc::now())
    {
        return Ok(fresh);
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
    Ok(decide::until(
        decide::refresh_due(token.expires_at),
        Utc::now(),
    ))
}
