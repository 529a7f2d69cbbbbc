//! Kubeconfigs for EKS clusters (pure): a bearer-token variant for the Secret the operator keeps
//! fresh, and an exec variant (`mk8 credentials eks`) for people, which needs no AWS CLI.

use serde_json::json;

/// How the kubeconfig's user authenticates.
#[derive(Clone, PartialEq, Eq)]
pub enum User<'a> {
    /// A bearer token (refreshed by the operator).
    Token(&'a str),
    /// `<mk8> credentials eks --cluster-name <cluster> --region <region>`, run by kubectl.
    Exec {
        /// Path of the mk8 executable kubectl runs.
        mk8: &'a str,
        /// EKS cluster name.
        cluster: &'a str,
        /// AWS region.
        region: &'a str,
    },
}

/// What kubectl prints when the exec user's mk8 is not found.
pub const INSTALL_HINT: &str = "This kubeconfig signs EKS tokens with mk8 (`mk8 credentials eks`): install mk8, or run `mk8 kubeconfig merge` again so the path points at it. AWS credentials come from the environment, ~/.aws, or `mk8 config aws`.";

/// Render a kubeconfig named `name` for the API server at `endpoint` with the base64 CA `ca`.
pub fn render(name: &str, endpoint: &str, ca: Option<&str>, user: &User<'_>) -> String {
    let mut cluster = json!({"server": endpoint});
    if let Some(ca) = ca {
        cluster["certificate-authority-data"] = ca.into();
    }
    let user = match user {
        User::Token(token) => json!({"token": token}),
        User::Exec {
            mk8,
            cluster,
            region,
        } => json!({"exec": {
            "apiVersion": "client.authentication.k8s.io/v1",
            "command": mk8,
            "args": ["credentials", "eks", "--cluster-name", cluster, "--region", region],
            "interactiveMode": "Never",
            "provideClusterInfo": false,
            "installHint": INSTALL_HINT,
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
    fn the_exec_variant_runs_mk8_credentials_eks() {
        let out = render(
            "prod",
            "https://x",
            None,
            &User::Exec {
                mk8: "/usr/local/bin/mk8",
                cluster: "prod",
                region: "eu-west-1",
            },
        );
        let v: serde_json::Value = serde_yaml::from_str(&out).unwrap();
        let exec = &v["users"][0]["user"]["exec"];
        assert_eq!(exec["command"], "/usr/local/bin/mk8");
        assert_eq!(exec["apiVersion"], "client.authentication.k8s.io/v1");
        assert_eq!(exec["interactiveMode"], "Never");
        assert_eq!(exec["provideClusterInfo"], false);
        assert!(
            exec["installHint"]
                .as_str()
                .unwrap()
                .contains("install mk8")
        );
        assert_eq!(
            exec["args"],
            json!([
                "credentials",
                "eks",
                "--cluster-name",
                "prod",
                "--region",
                "eu-west-1"
            ])
        );
        assert!(v["users"][0]["user"].get("token").is_none());
    }
}
