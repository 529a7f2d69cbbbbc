//! The SSH layer (russh): key authentication, host key verification, one connection per host,
//! command execution with timeouts, and checksum-verified uploads.

pub mod hostkey;
mod known_hosts;
mod pool;
pub mod quote;
mod session;

use std::fmt;
use std::time::Duration;

pub use hostkey::{HostKeyPolicy, KeyVerdict};
pub use known_hosts::check as check_known_hosts;
pub use pool::SshPool;
pub use quote::{Cmd, Script, quote};

/// Everything needed to reach one node: where, as whom, with which key, trusting which host key.
#[derive(Clone, PartialEq, Eq)]
pub struct NodeAccess {
    /// IP address or DNS name.
    pub address: String,
    /// SSH port.
    pub port: u16,
    /// Login user; commands run through `sudo -n` unless it is `root`.
    pub user: String,
    /// The private key (PEM or OpenSSH format) and its optional passphrase.
    pub credentials: Credentials,
    /// How the node's host key is checked.
    pub host_keys: HostKeyPolicy,
}

impl NodeAccess {
    /// `host:port` for messages.
    pub fn endpoint(&self) -> String {
        hostkey::display_host(&self.address, self.port)
    }

    /// The key of the connection pool: one connection per `host:port:user`.
    pub fn pool_key(&self) -> String {
        format!("{}:{}:{}", self.address, self.port, self.user)
    }
}

impl fmt::Debug for NodeAccess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeAccess")
            .field("address", &self.address)
            .field("port", &self.port)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// A private key and its passphrase. Never printed: `Debug` redacts it.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// PEM or OpenSSH private key text.
    pub private_key: String,
    /// Passphrase of an encrypted key.
    pub passphrase: Option<String>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Credentials(<redacted>)")
    }
}

/// What a remote command did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExecOutput {
    /// Exit status; `None` when the command died of a signal or the channel closed early.
    pub status: Option<u32>,
    /// Standard output (capped at a few MiB).
    pub stdout: Vec<u8>,
    /// Standard error (capped at a few MiB).
    pub stderr: Vec<u8>,
}

impl ExecOutput {
    /// Whether the command exited with status 0.
    pub fn success(&self) -> bool {
        self.status == Some(0)
    }

    /// Standard output as text.
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// The last lines of standard error, for messages.
    pub fn stderr_tail(&self) -> String {
        let text = String::from_utf8_lossy(&self.stderr);
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(5)..].join("\n")
    }
}

/// What an upload did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Uploaded {
    /// The node already held a file with the expected sha256: nothing was sent.
    AlreadyPresent,
    /// The file was sent and its sha256 verified on the node.
    Transferred {
        /// Bytes sent.
        bytes: u64,
    },
}

/// Failures of the SSH layer. Messages name the host; they never hold key material.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SshError {
    /// TCP connection failed.
    #[error("cannot connect to {host}: {reason}")]
    Connect { host: String, reason: String },
    /// The host presented a key other than the one recorded for it.
    #[error(
        "host key mismatch for {host}: expected {expected}, the host presented {actual}; if the host was legitimately reinstalled, update known_hosts or the pinned fingerprint"
    )]
    HostKeyMismatch {
        host: String,
        expected: String,
        actual: String,
    },
    /// known_hosts marks the key the host presented as `@revoked`.
    #[error(
        "host key of {host} ({fingerprint}) is marked @revoked in known_hosts: refusing to connect; give the host a new key and record that one"
    )]
    HostKeyRevoked { host: String, fingerprint: String },
    /// No key is recorded for the host and learning is off.
    #[error(
        "host key of {host} is unknown ({fingerprint}): add it to known_hosts, pin it with hostKeyFingerprint, or enable acceptNewHostKeys"
    )]
    UnknownHostKey { host: String, fingerprint: String },
    /// The private key could not be read.
    #[error("the SSH private key cannot be used: {0}")]
    Key(String),
    /// A non-root user cannot run commands as root without a password.
    #[error(
        "user {user} on {host} cannot run commands as root: mk8 needs passwordless sudo for users other than root (a sudoers rule such as `{user} ALL=(ALL) NOPASSWD: ALL`); {detail}"
    )]
    SudoUnavailable {
        host: String,
        user: String,
        detail: String,
    },
    /// The server refused the key.
    #[error("{host} refused public key authentication for user {user}")]
    Auth { host: String, user: String },
    /// Something took too long.
    #[error("{what} on {host} timed out after {after:?}")]
    Timeout {
        host: String,
        what: String,
        after: Duration,
    },
    /// The SSH session failed or closed.
    #[error("SSH session with {host} failed: {reason}")]
    Session { host: String, reason: String },
    /// A local file could not be read.
    #[error("cannot read local file {path}: {reason}")]
    LocalFile { path: String, reason: String },
    /// An uploaded file arrived different from what was sent.
    #[error(
        "upload of {path} to {host} arrived corrupted: expected sha256 {expected}, the node computed {actual}"
    )]
    ChecksumMismatch {
        host: String,
        path: String,
        expected: String,
        actual: String,
    },
    /// A remote helper command failed.
    #[error("{what} on {host} failed (exit {status:?}): {stderr}")]
    Remote {
        host: String,
        what: String,
        status: Option<u32>,
        stderr: String,
    },
}

impl SshError {
    /// Whether retrying later may help (network trouble), as opposed to a configuration problem.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            SshError::Connect { .. } | SshError::Timeout { .. } | SshError::Session { .. }
        )
    }
}
