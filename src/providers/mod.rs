//! Provider drivers: the side effects of provisioning live behind these traits.
//!
//! A provider missing from a build leaves the controllers saying so in status (`Ready=False`,
//! reason `ProviderUnavailable`).

#[cfg(feature = "eks")]
pub mod eks;
pub mod rke2;
pub mod ssh;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;

use ssh::{ExecOutput, KeyVerdict, NodeAccess, Script, SshError, Uploaded};

#[cfg(feature = "eks")]
pub use eks::EksApi;

/// Drives EKS control planes and node groups; this build has no EKS provider (feature `eks`).
#[cfg(not(feature = "eks"))]
pub trait EksApi: Send + Sync {
    /// Human-readable description of the endpoint in use, for logs.
    fn describe(&self) -> String;
}

/// A file to place on a node, with the sha256 it must have there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Upload {
    /// Local path of the (already verified) file.
    pub local: PathBuf,
    /// Absolute destination path on the node.
    pub remote: String,
    /// Expected lowercase hex sha256.
    pub sha256: String,
    /// File mode, such as `0644`.
    pub mode: String,
}

/// Runs commands and uploads files on SSH hosts (russh in production, real sshd in tests).
pub trait NodeShell: Send + Sync {
    /// Human-readable description of the SSH setup, for logs.
    fn describe(&self) -> String;

    /// Run `script` as root on `node` (through `sudo -n` for other users) within `timeout`.
    fn run<'a>(
        &'a self,
        node: &'a NodeAccess,
        script: &'a Script,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<ExecOutput, SshError>>;

    /// Like [`NodeShell::run`], feeding `input` to the script's standard input (for secrets, which
    /// must not appear on a command line).
    fn run_with_input<'a>(
        &'a self,
        node: &'a NodeAccess,
        script: &'a Script,
        input: &'a [u8],
        timeout: Duration,
    ) -> BoxFuture<'a, Result<ExecOutput, SshError>>;

    /// Place a file on `node` unless it already holds that sha256; the sha256 is re-checked there.
    fn upload<'a>(
        &'a self,
        node: &'a NodeAccess,
        upload: &'a Upload,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<Uploaded, SshError>>;

    /// Connect (if needed) and say how the node's host key was accepted.
    fn host_key<'a>(&'a self, node: &'a NodeAccess) -> BoxFuture<'a, Result<KeyVerdict, SshError>>;
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
