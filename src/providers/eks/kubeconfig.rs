//! Kubeconfigs for EKS clusters (pure): a bearer-token variant for the Secret the operator keeps
//! fresh, and an exec variant (`aws eks get-token`) for people.

use serde_json::json;

/// How the kubeconfig's user authenticates.
#[derive(Clone, PartialEq, Eq)]
pub enum User<'a> {
    /// A bearer token (refreshed by the operator).
    Token(&'a str),
    /// `aws eks get-token --cluster-name <cluster> --region <region>`, run by kubectl.
    Exec {
        /// EKS cluster name.
        cluster: &'a str,
        /// AWS region.
        region: &'a str,
    },
}

/// Render a kubeconfig named `name` for the API server at `endpoint` with the base64 CA `ca`.
pub fn render(name: &str, endpoint: &str, ca: Option<&str>, user: &User<'_>) -> String {
    let mut cluster = json!({"server": endpoint});
    if let Some(ca) = ca {
        cluster["certificate-authority-data"] = ca.into();
    }
    let user = match user {
        User::Token(token) => json!({"token": token}),
        User::Exec { cluster, region } => json!({"exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1",
            "command": "aws",
            "args": ["eks", "get-token", "--cluster-name", cluster, "--region", region, "--output", "json"],
            "interactiveMode": "Never",
        }}),
    };
    let config = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": cluster}],
        "users": [{"name": name, "user": user}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
        "current-context": name,
    });
    serde_yaml::to_string(&config).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_variant_carries_server_ca_and_token() {
        let out = render(
            "prod",
            "https://x.eks.amazonaws.com",
            Some("Q0E="),
            &User::Token("k8s-aws-v1.abc"),
        );
        let v: serde_json::Value = serde_yaml::from_str(&out).unwrap();
        assert_eq!(
            v["clusters"][0]["cluster"]["server"],
            "https://x.eks.amazonaws.com"
        );
        assert_eq!(
            v["clusters"][0]["cluster"]["certificate-authority-data"],
            "Q0E="
        );
        assert_eq!(v["users"][0]["user"]["token"], "k8s-aws-v1.abc");
        assert_eq!(v["current-context"], "prod");
    }

    #[test]
    fn the_exec_variant_calls_aws_eks_get_token() {
        let out = render(
            "prod",
            "https://x",
            None,
            &User::Exec {
                cluster: "prod",
                region: "eu-west-1",
            },
        );
        let v: serde_json::Value = serde_yaml::from_str(&out).unwrap();
        let exec = &v["users"][0]["user"]["exec"];
        assert_eq!(exec["command"], "aws");
        assert_eq!(
            exec["args"],
            json!([
                "eks",
                "get-token",
                "--cluster-name",
                "prod",
                "--region",
                "eu-west-1",
                "--output",
                "json"
            ])
        );
        assert!(v["users"][0]["user"].get("token").is_none());
    }
}
