//! Provider drivers: the side effects of provisioning live behind these traits.
//!
//! Each provider arrives with its own issue; until then the operator is built without it and
//! the controllers say so in status (`Ready=False`, reason `ProviderUnavailable`).

use std::sync::Arc;

/// Drives EKS control planes and node groups (aws-sdk-eks).
pub trait EksApi: Send + Sync {
    /// Human-readable description of the endpoint in use, for logs.
    fn describe(&self) -> String;
}

/// Runs commands and uploads files on SSH hosts (russh).
pub trait NodeShell: Send + Sync {
    /// Human-readable description of the SSH setup, for logs.
    fn describe(&self) -> String;
}

/// The drivers this operator was started with.
#[derive(Clone, Default)]
pub struct Providers {
    /// EKS driver, when available.
    pub eks: Option<Arc<dyn EksApi>>,
    /// SSH driver for RKE2, when available.
    pub ssh: Option<Arc<dyn NodeShell>>,
}

impl Providers {
    /// Whether the named provider (`eks` or `rke2`) is available.
    pub fn has(&self, provider: &str) -> bool {
        match provider {
            "eks" => self.eks.is_some(),
            "rke2" => self.ssh.is_some(),
            _ => false,
        }
    }
}
