//! What the EKS reconcile stages of Clusters and NodePools share: where and as whom to call AWS
//! (I/O: the credentials Secret), how AWS failures become errors or conditions, and the
//! annotations that pace re-creating something AWS reported failed (pure).

use std::time::Duration;

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{Patch, PatchParams};
use kube::{Api, ResourceExt};

use super::{AwsCredentials, AwsError, ErrorKind, Target};
use crate::api::Cluster;
use crate::reconcile::conditions::{self, Desired, types};
use crate::reconcile::env::Env;
use crate::reconcile::error::{Category, Error, Result};

/// Reasons both EKS stages report.
pub mod reasons {
    /// AWS refused a request as invalid or not allowed.
    pub const AWS_REQUEST_REJECTED: &str = "AwsRequestRejected";
    /// An AWS resource of that name exists and is not ours.
    pub const OWNERSHIP_CONFLICT: &str = "OwnershipConflict";
    /// An AWS call failed (network, 5xx, credentials); retried with backoff.
    pub const AWS_UNAVAILABLE: &str = "AwsUnavailable";
    /// AWS throttled the operator; retried with a longer backoff.
    pub const AWS_THROTTLED: &str = "AwsThrottled";
}

/// How often something changing in AWS is looked at (CREATING/UPDATING/DELETING take minutes).
pub const POLL: Duration = Duration::from_secs(10);
/// After a refusal or conflict, look again now and then (someone may fix it outside the spec).
pub const RECHECK: Duration = Duration::from_secs(60);

/// Annotation: create attempts that ended in CREATE_FAILED (FAILED for a control plane).
pub const ATTEMPTS_ANNOTATION: &str = "mk8.io/eks-create-failures";
/// Annotation: do not create the resource again before this time (RFC 3339).
pub const RETRY_AFTER_ANNOTATION: &str = "mk8.io/eks-retry-after";
/// Annotation: AWS's reason for the last failure, shown again while waiting to retry.
pub const LAST_FAILURE_ANNOTATION: &str = "mk8.io/eks-last-failure";

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

/// Backoff after the `failures`-th failed create: 5 s, doubling, at most 10 minutes.
pub fn create_backoff(failures: u32) -> Duration {
    let base = Duration::from_secs(5);
    base.saturating_mul(1u32 << failures.saturating_sub(1).min(10))
        .min(Duration::from_secs(600))
}

/// Failed creates recorded on `obj` so far.
pub fn failures<K: ResourceExt>(obj: &K) -> u32 {
    obj.annotations()
        .get(ATTEMPTS_ANNOTATION)
        .and_then(|v| v.parse::<u32>().ok())
        .unwrap_or(0)
}

/// AWS's reason for the last failure recorded on `obj`.
pub fn last_failure<K: ResourceExt>(obj: &K) -> &str {
    obj.annotations()
        .get(LAST_FAILURE_ANNOTATION)
        .map(String::as_str)
        .unwrap_or("no reason given")
}

/// Time left at `now` before the resource may be created again, if any.
pub fn retry_wait<K: ResourceExt>(obj: &K, now: DateTime<Utc>) -> Option<Duration> {
    let after = obj.annotations().get(RETRY_AFTER_ANNOTATION)?;
    let after = DateTime::parse_from_rfc3339(after)
        .ok()?
        .with_timezone(&Utc);
    (after - now).to_std().ok().filter(|d| !d.is_zero())
}

/// The annotations recording the `failures`-th failure (AWS said `reason`), retried after `wait`.
pub fn failure_annotations(
    failures: u32,
    wait: Duration,
    reason: &str,
    now: DateTime<Utc>,
) -> serde_json::Value {
    let retry_after = now + chrono::Duration::from_std(wait).unwrap_or_default();
    serde_json::json!({"metadata": {"annotations": {
        ATTEMPTS_ANNOTATION: failures.to_string(),
        RETRY_AFTER_ANNOTATION: retry_after.to_rfc3339(),
        LAST_FAILURE_ANNOTATION: reason,
    }}})
}

/// Merge `patch` (annotations) into `obj`.
pub async fn annotate<K>(env: &Env, obj: &K, patch: &serde_json::Value) -> Result<()>
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned,
{
    Api::<K>::namespaced(env.client.clone(), &obj.namespace().unwrap_or_default())
        .patch(
            &obj.name_any(),
            &PatchParams::default(),
            &Patch::Merge(patch),
        )
        .await?;
    Ok(())
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

/// An invalid request becomes a `Ready=False` condition (waiting for a spec change); any other
/// failure is retried.
pub fn rejected(e: AwsError, call: &str) -> Result<Desired> {
    match e.kind {
        ErrorKind::Invalid => Ok(Desired::no(
            types::READY,
            reasons::AWS_REQUEST_REJECTED,
            format!("AWS rejected {call}: {e}"),
        )),
        _ => Err(retryable(e)),
    }
}

/// Whether an AWS call succeeded or found its work already under way (`ResourceInUseException`).
pub fn done_or_in_use<T>(
    result: std::result::Result<T, AwsError>,
) -> std::result::Result<(), AwsError> {
    match result {
        Ok(_)
        | Err(AwsError {
            kind: ErrorKind::InUse,
            ..
        }) => Ok(()),
        Err(e) => Err(e),
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
    conditions: &[Condition],
    ready: Desired,
    generation: Option<i64>,
) -> Vec<Condition> {
    let mut merged: Vec<_> = conditions
        .iter()
        .filter(|c| c.type_ != types::READY)
        .cloned()
        .collect();
    merged.extend(conditions::merge(
        conditions,
        &[ready],
        generation,
        &conditions::now(),
    ));
    merged
}

/// Region and credentials of a Cluster; the Secret's values never leave this function but in
/// the returned target.
pub async fn target(env: &Env, cluster: &Cluster) -> Result<Target> {
    let eks = cluster.spec.eks.clone().unwrap_or_default();
    let credentials = match &eks.credentials_secret_ref {
        None => None,
        Some(reference) => {
            let ns = cluster.namespace().unwrap_or_default();
            let secret = Api::<Secret>::namespaced(env.client.clone(), &ns)
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

#[cfg(test)]
mod tests {
    use k8s_openapi::ByteString;

    use super::*;
    use crate::api::NodePool;
    use crate::providers::eks::AwsError;

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
            last_transition_time: conditions::now(),
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

    #[test]
    fn create_failures_back_off_from_five_seconds_to_ten_minutes() {
        assert_eq!(create_backoff(1), Duration::from_secs(5));
        assert_eq!(create_backoff(2), Duration::from_secs(10));
        assert_eq!(create_backoff(4), Duration::from_secs(40));
        assert_eq!(create_backoff(30), Duration::from_secs(600));
    }

    #[test]
    fn the_retry_waits_only_while_its_time_is_ahead() {
        let mut pool = NodePool::new("p", Default::default());
        assert_eq!(retry_wait(&pool, Utc::now()), None);
        let ahead = (Utc::now() + chrono::Duration::seconds(30)).to_rfc3339();
        pool.annotations_mut()
            .insert(RETRY_AFTER_ANNOTATION.into(), ahead);
        let wait = retry_wait(&pool, Utc::now()).unwrap();
        assert!(
            wait > Duration::from_secs(25) && wait <= Duration::from_secs(30),
            "{wait:?}"
        );
        let past = (Utc::now() - chrono::Duration::seconds(1)).to_rfc3339();
        pool.annotations_mut()
            .insert(RETRY_AFTER_ANNOTATION.into(), past);
        assert_eq!(retry_wait(&pool, Utc::now()), None);
    }
}
