//! Command-line flags of `mk8-operator` (also read by the Helm chart test).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, ValueEnum};

/// Log output formats.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// How unknown SSH host keys are treated.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum KnownHostsPolicy {
    /// Refuse hosts whose key is not in known_hosts or pinned in the spec.
    #[default]
    Strict,
    /// Learn unknown keys when a NodePool sets `acceptNewHostKeys` (recorded in status).
    AcceptNew,
}

/// mk8-operator: the controller manager of mk8.
#[derive(Clone, Debug, Parser)]
#[command(name = "mk8-operator", version, about)]
pub struct OperatorConfig {
    /// Address of the admin server (/metrics, /livez, /readyz).
    #[arg(long, env = "MK8_ADMIN_ADDR", default_value = "0.0.0.0:8080")]
    pub admin_addr: SocketAddr,
    /// Elect a leader through a coordination.k8s.io Lease so replicas never reconcile at once.
    #[arg(long, env = "MK8_LEADER_ELECTION", default_value_t = true, action = clap::ArgAction::Set)]
    pub leader_election: bool,
    /// Namespace of the leader-election Lease (default: the pod's namespace, else `default`).
    #[arg(long, env = "POD_NAMESPACE")]
    pub leader_election_namespace: Option<String>,
    /// Name of the leader-election Lease.
    #[arg(long, default_value = "mk8-operator")]
    pub leader_election_lease: String,
    /// Watch only this namespace (default: all namespaces).
    #[arg(long, env = "MK8_WATCH_NAMESPACE")]
    pub watch_namespace: Option<String>,
    /// Reconciles running at once per controller.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub concurrency: u16,
    /// Log level or filter (overridden by RUST_LOG).
    #[arg(long, env = "MK8_LOG_LEVEL", default_value = "info")]
    pub log_level: String,
    /// Log format.
    #[arg(long, env = "MK8_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Namespace of the ArgoCD that Stacks deliver through (Applications, cluster Secrets).
    #[arg(long, env = "MK8_ARGOCD_NAMESPACE", default_value = "argocd")]
    pub argocd_namespace: String,
    /// Chart repository mirror for air-gapped sites: every Helm repository URL of a Stack is
    /// rewritten to `<mirror>/<host>/<path>` unless the Stack sets `spec.chartMirror`.
    #[arg(long, env = "MK8_CHART_MIRROR")]
    pub chart_mirror: Option<String>,
    /// KEP-5339 access-provider file (JSON `{"providers": [{"name", "execConfig"}]}`): how ArgoCD
    /// reaches clusters whose ClusterProfiles other cluster managers publish.
    #[arg(long, env = "MK8_CLUSTERPROFILE_PROVIDER_FILE")]
    pub clusterprofile_provider_file: Option<PathBuf>,
    /// AWS region used when a Cluster does not name one.
    #[arg(long, env = "AWS_REGION")]
    pub aws_region: Option<String>,
    /// Send every AWS call to this endpoint (a local AWS-protocol server in tests).
    #[arg(long, env = "AWS_ENDPOINT_URL")]
    pub aws_endpoint_url: Option<String>,
    /// Treatment of unknown SSH host keys.
    #[arg(long, env = "MK8_SSH_KNOWN_HOSTS_POLICY", value_enum, default_value_t = KnownHostsPolicy::Strict)]
    pub ssh_known_hosts_policy: KnownHostsPolicy,
    /// Directory where verified RKE2 release files are cached (default: `mk8-artifacts` in the
    /// temporary directory).
    #[arg(long, env = "MK8_ARTIFACT_CACHE", default_value_os_t = default_artifact_cache())]
    pub artifact_cache: PathBuf,
}

/// The artifact cache of a start without `--artifact-cache`.
fn default_artifact_cache() -> PathBuf {
    std::env::temp_dir().join("mk8-artifacts")
}

impl OperatorConfig {
    /// The configuration of a start without flags (environment variables still apply).
    pub fn without_flags() -> Self {
        Self::from_args(&[])
    }

    /// Parse flags given without the program name; panics on invalid flags (for tests and embedding).
    pub fn from_args(args: &[&str]) -> Self {
        let argv = std::iter::once("mk8-operator").chain(args.iter().copied());
        Self::try_parse_from(argv).unwrap_or_else(|e| panic!("invalid operator flags: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_production_safe() {
        let c = OperatorConfig::try_parse_from(["mk8-operator"]).unwrap();
        assert!(c.leader_election);
        assert_eq!(c.ssh_known_hosts_policy, KnownHostsPolicy::Strict);
        assert_eq!(c.admin_addr.port(), 8080);
    }

    #[test]
    fn the_artifact_cache_defaults_under_the_temp_dir_and_can_be_moved() {
        let c = OperatorConfig::try_parse_from(["mk8-operator"]).unwrap();
        if std::env::var_os("MK8_ARTIFACT_CACHE").is_none() {
            assert_eq!(c.artifact_cache, std::env::temp_dir().join("mk8-artifacts"));
        }
        let c =
            OperatorConfig::try_parse_from(["mk8-operator", "--artifact-cache", "/var/cache/mk8"])
                .unwrap();
        assert_eq!(c.artifact_cache, PathBuf::from("/var/cache/mk8"));
    }

    #[test]
    fn leader_election_can_be_disabled_for_local_runs() {
        let c =
            OperatorConfig::try_parse_from(["mk8-operator", "--leader-election=false"]).unwrap();
        assert!(!c.leader_election);
    }

    #[test]
    fn bad_flags_are_refused_with_the_flag_named() {
        let err =
            OperatorConfig::try_parse_from(["mk8-operator", "--concurrency", "0"]).unwrap_err();
        assert!(err.to_string().contains("--concurrency"), "{err}");
        let err =
            OperatorConfig::try_parse_from(["mk8-operator", "--log-format", "xml"]).unwrap_err();
        assert!(err.to_string().contains("--log-format"), "{err}");
    }
}
