//! The token is checked the way STS would: the presigned URL is taken apart and its SigV4
//! signature recomputed here from the specification, independently of aws-sigv4.

use std::collections::BTreeMap;
use std::time::{Duration, UNIX_EPOCH};

use aws_credential_types::Credentials;
use sha2::{Digest, Sha256};

use super::*;

const ACCESS_KEY: &str = "AKIDEXAMPLE";
const SECRET_KEY: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

fn credentials(session_token: Option<&str>) -> Credentials {
    Credentials::new(
        ACCESS_KEY,
        SECRET_KEY,
        session_token.map(str::to_string),
        None,
        "test",
    )
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    const BLOCK: usize = 64;
    let mut key = if key.len() > BLOCK {
        Sha256::digest(key).to_vec()
    } else {
        key.to_vec()
    };
    key.resize(BLOCK, 0);
    let inner: Vec<u8> = key.iter().map(|b| b ^ 0x36).collect();
    let outer: Vec<u8> = key.iter().map(|b| b ^ 0x5c).collect();
    let inner_hash = Sha256::new()
        .chain_update(&inner)
        .chain_update(data)
        .finalize();
    Sha256::new()
        .chain_update(&outer)
        .chain_update(inner_hash)
        .finalize()
        .to_vec()
}

fn uri_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The URL's query, decoded.
fn query(url: &url::Url) -> BTreeMap<String, String> {
    url.query_pairs().into_owned().collect()
}

/// Recompute the SigV4 query signature of `url` (headers: host and `x-k8s-aws-id: cluster`).
fn expected_signature(url: &url::Url, cluster: &str, secret: &str) -> String {
    let params = query(url);
    let canonical_query = params
        .iter()
        .filter(|(k, _)| k.as_str() != "X-Amz-Signature")
        .map(|(k, v)| format!("{}={}", uri_encode(k), uri_encode(v)))
        .collect::<Vec<_>>()
        .join("&");
    let host = url.host_str().expect("host");
    let signed_headers = &params["X-Amz-SignedHeaders"];
    let canonical_headers: String = signed_headers
        .split(';')
        .map(|h| match h {
            "host" => format!("host:{host}\n"),
            "x-k8s-aws-id" => format!("x-k8s-aws-id:{cluster}\n"),
            other => panic!("unexpected signed header {other}"),
        })
        .collect();
    let canonical_request = format!(
        "GET\n{}\n{canonical_query}\n{canonical_headers}\n{signed_headers}\n{}",
        url.path(),
        hex::encode(Sha256::digest(b""))
    );
    let amz_date = &params["X-Amz-Date"];
    let scope = params["X-Amz-Credential"]
        .split_once('/')
        .expect("credential scope")
        .1
        .to_string();
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex::encode(Sha256::digest(canonical_request.as_bytes()))
    );
    let mut parts = scope.split('/');
    let (date, region, service) = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
    );
    let k_date = hmac(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k_region = hmac(&k_date, region.as_bytes());
    let k_service = hmac(&k_region, service.as_bytes());
    let k_signing = hmac(&k_service, b"aws4_request");
    hex::encode(hmac(&k_signing, string_to_sign.as_bytes()))
}

fn signed_at() -> std::time::SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_790_000_000)
}

#[test]
fn the_token_is_a_presigned_get_caller_identity_for_the_cluster() {
    let token = presign(&credentials(None), "eu-west-1", "prod-eu", signed_at()).unwrap();
    assert!(token.value.starts_with("k8s-aws-v1."), "{}", token.value);
    assert!(!token.value.contains('='), "base64url without padding");
    let url = url::Url::parse(&decode(&token.value).expect("decodes")).unwrap();
    assert_eq!(url.scheme(), "https");
    assert_eq!(url.host_str(), Some("sts.eu-west-1.amazonaws.com"));
    let q = query(&url);
    assert_eq!(q["Action"], "GetCallerIdentity");
    assert_eq!(q["Version"], "2011-06-15");
    assert_eq!(q["X-Amz-Algorithm"], "AWS4-HMAC-SHA256");
    assert_eq!(q["X-Amz-Expires"], "60");
    assert_eq!(q["X-Amz-Date"], "20260921T141320Z");
    assert_eq!(
        q["X-Amz-Credential"],
        "AKIDEXAMPLE/20260921/eu-west-1/sts/aws4_request"
    );
    let signed: Vec<&str> = q["X-Amz-SignedHeaders"].split(';').collect();
    assert!(signed.contains(&"x-k8s-aws-id"), "{signed:?}");
    assert!(signed.contains(&"host"), "{signed:?}");
    assert_eq!(
        q["X-Amz-Signature"],
        expected_signature(&url, "prod-eu", SECRET_KEY)
    );
}

#[test]
fn the_signature_binds_the_keys_and_the_cluster_name() {
    let token = presign(&credentials(None), "us-east-1", "a", signed_at()).unwrap();
    let url = url::Url::parse(&decode(&token.value).unwrap()).unwrap();
    let signature = query(&url)["X-Amz-Signature"].clone();
    assert_eq!(signature, expected_signature(&url, "a", SECRET_KEY));
    assert_ne!(signature, expected_signature(&url, "b", SECRET_KEY));
    assert_ne!(signature, expected_signature(&url, "a", "another-secret"));
}

#[test]
fn a_session_token_travels_in_the_url_and_is_signed() {
    let token = presign(
        &credentials(Some("session/tok+en")),
        "us-east-1",
        "c",
        signed_at(),
    )
    .unwrap();
    let url = url::Url::parse(&decode(&token.value).unwrap()).unwrap();
    let q = query(&url);
    assert_eq!(q["X-Amz-Security-Token"], "session/tok+en");
    assert_eq!(
        q["X-Amz-Signature"],
        expected_signature(&url, "c", SECRET_KEY)
    );
}

#[test]
fn the_token_expires_fourteen_minutes_after_signing() {
    let token = presign(&credentials(None), "us-east-1", "c", signed_at()).unwrap();
    let issued: chrono::DateTime<chrono::Utc> = signed_at().into();
    assert_eq!(token.expires_at - issued, chrono::Duration::minutes(14));
    assert!(
        !format!("{token:?}").contains("k8s-aws-v1"),
        "Debug hides the token"
    );
}

#[test]
fn other_strings_are_not_tokens() {
    assert_eq!(decode("Bearer abc"), None);
    assert_eq!(decode("k8s-aws-v1.!!!"), None);
}
