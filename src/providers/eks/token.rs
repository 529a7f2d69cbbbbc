//! EKS bearer tokens (pure): a presigned STS GetCallerIdentity URL carrying the cluster name in
//! the signed header `x-k8s-aws-id`, as aws-iam-authenticator and `aws eks get-token` make them.

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign,
};
use aws_sigv4::sign::v4;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};

use super::Token;

/// Prefix of every EKS token.
pub const PREFIX: &str = "k8s-aws-v1.";
/// Header naming the cluster; EKS refuses tokens that did not sign it.
pub const CLUSTER_ID_HEADER: &str = "x-k8s-aws-id";
/// `X-Amz-Expires` of the presigned URL (aws-iam-authenticator uses 60 seconds too).
pub const PRESIGN_EXPIRES: Duration = Duration::from_secs(60);
/// How long EKS accepts a token after it was signed (15 minutes, less a margin for clock skew).
pub const LIFETIME: Duration = Duration::from_secs(14 * 60);

/// Why a token could not be made.
#[derive(Debug, thiserror::Error)]
#[error("signing the EKS token failed: {0}")]
pub struct TokenError(String);

/// The regional STS URL a token presigns.
pub fn sts_url(region: &str) -> String {
    format!("https://sts.{region}.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15")
}

/// Make a token for `cluster` in `region`, signed with `credentials` at `now`.
pub fn presign(
    credentials: &Credentials,
    region: &str,
    cluster: &str,
    now: SystemTime,
) -> Result<Token, TokenError> {
    let identity = credentials.clone().into();
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(PRESIGN_EXPIRES);
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("sts")
        .time(now)
        .settings(settings)
        .build()
        .map_err(|e| TokenError(e.to_string()))?
        .into();
    let url = sts_url(region);
    let signable = SignableRequest::new(
        "GET",
        url.as_str(),
        std::iter::once((CLUSTER_ID_HEADER, cluster)),
        SignableBody::Bytes(&[]),
    )
    .map_err(|e| TokenError(e.to_string()))?;
    let (instructions, _signature) = sign(signable, &params)
        .map_err(|e| TokenError(e.to_string()))?
        .into_parts();
    let mut request = http::Request::builder()
        .method("GET")
        .uri(url.as_str())
        .body(())
        .map_err(|e| TokenError(e.to_string()))?;
    instructions.apply_to_request_http1x(&mut request);
    let presigned = request.uri().to_string();
    let issued: DateTime<Utc> = now.into();
    Ok(Token {
        value: format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(presigned)),
        expires_at: issued + chrono::Duration::from_std(LIFETIME).unwrap_or_default(),
    })
}

/// The presigned URL inside a token, when it is one.
pub fn decode(token: &str) -> Option<String> {
    let encoded = token.strip_prefix(PREFIX)?;
    String::from_utf8(URL_SAFE_NO_PAD.decode(encoded).ok()?).ok()
}

#[cfg(test)]
mod tests;
