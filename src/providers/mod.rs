//! Providers: one folder each (`eks/`, `rke2/`) holding everything of that provider, its
//! drivers, pure planning stages and the reconcile stages that act on them; `ssh/` is the SSH
//! driver RKE2 uses. The controllers see a provider through [`ClusterProvider`] and
//! [`PoolProvider`] only.
//!
//! A provider missing from a build leaves the controllers saying so in status (`Ready=False`,
//! reason `ProviderUnavailable`). This layer imports `api` and `reconcile`, never `controller`.

#[cfg(feature = "eks")]
pub mod eks;
mod interface;
pub mod rke2;
pub mod ssh;

use std::path::PathBuf;
use std::time::Duration;

use futures::future::BoxFuture;

use ssh::{ExecOutput, KeyVerdict, NodeAccess, Script, SshError, Uploaded};

#[cfg(feature = "eks")]
pub use eks::EksApi;
pub use interface::{
    ClusterOutcome, ClusterProvider, PoolOutcome, PoolProvider, Providers, Selected,
};

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
