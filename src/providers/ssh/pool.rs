//! The connection pool (I/O): one SSH connection per `host:port:user`, reused by every step.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use sha2::{Digest, Sha256};

use super::session::{Session, Stdin};
use super::{ExecOutput, KeyVerdict, NodeAccess, Script, SshError, Uploaded};
use crate::providers::{NodeShell, Upload};

type Slot = Arc<tokio::sync::Mutex<Option<(Arc<Session>, [u8; 32])>>>;

/// SSH driver of the operator: a pool of authenticated connections.
pub struct SshPool {
    slots: Mutex<HashMap<String, Slot>>,
    connect_timeout: Duration,
}

impl SshPool {
    /// A pool whose connection attempts give up after `connect_timeout`.
    pub fn new(connect_timeout: Duration) -> Self {
        Self {
            slots: Mutex::default(),
            connect_timeout,
        }
    }

    /// The pooled connection to `node`, opened (and its host key verified) when needed.
    pub async fn session(&self, node: &NodeAccess) -> Result<Arc<Session>, SshError> {
        let slot = self.slot(node);
        let mut guard = slot.lock().await;
        let identity = identity(node);
        if let Some((session, id)) = guard.as_ref()
            && !session.is_closed()
            && *id == identity
        {
            return Ok(session.clone());
        }
        if let Some((old, _)) = guard.take() {
            old.close().await;
        }
        let session = Arc::new(Session::connect(node, self.connect_timeout).await?);
        *guard = Some((session.clone(), identity));
        Ok(session)
    }

    /// Number of open pooled connections (for tests and metrics).
    pub fn open_connections(&self) -> usize {
        let slots: Vec<Slot> = self
            .slots
            .lock()
            .expect("pool lock")
            .values()
            .cloned()
            .collect();
        slots
            .iter()
            .filter(|s| {
                s.try_lock()
                    .map(|g| g.as_ref().is_some_and(|(c, _)| !c.is_closed()))
                    .unwrap_or(true)
            })
            .count()
    }

    fn slot(&self, node: &NodeAccess) -> Slot {
        self.slots
            .lock()
            .expect("pool lock")
            .entry(node.pool_key())
            .or_default()
            .clone()
    }

    /// Forget a connection that failed, so the next call opens a fresh one.
    async fn forget(&self, node: &NodeAccess, error: &SshError) {
        if error.is_transient()
            && let Some((old, _)) = self.slot(node).lock().await.take()
        {
            old.close().await;
        }
    }
}

/// Which credentials and trust a pooled connection was made with: a change reconnects.
fn identity(node: &NodeAccess) -> [u8; 32] {
    let mut h = Sha256::new();
    for part in [
        node.credentials.private_key.as_str(),
        node.credentials.passphrase.as_deref().unwrap_or(""),
        node.host_keys.pinned.as_deref().unwrap_or(""),
        node.host_keys.known_hosts.as_str(),
        if node.host_keys.accept_new { "1" } else { "0" },
    ] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    h.finalize().into()
}

impl NodeShell for SshPool {
    fn describe(&self) -> String {
        format!(
            "russh connection pool (connect timeout {:?})",
            self.connect_timeout
        )
    }

    fn run<'a>(
        &'a self,
        node: &'a NodeAccess,
        script: &'a Script,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<ExecOutput, SshError>> {
        Box::pin(async move {
            let session = self.session(node).await?;
            let result = session.run(script, timeout, "command").await;
            if let Err(e) = &result {
                self.forget(node, e).await;
            }
            result
        })
    }

    fn run_with_input<'a>(
        &'a self,
        node: &'a NodeAccess,
        script: &'a Script,
        input: &'a [u8],
        timeout: Duration,
    ) -> BoxFuture<'a, Result<ExecOutput, SshError>> {
        Box::pin(async move {
            let session = self.session(node).await?;
            let result = session
                .exec_as_root(script, Stdin::Bytes(input), timeout, "command")
                .await;
            if let Err(e) = &result {
                self.forget(node, e).await;
            }
            result
        })
    }

    fn upload<'a>(
        &'a self,
        node: &'a NodeAccess,
        upload: &'a Upload,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<Uploaded, SshError>> {
        Box::pin(async move {
            let session = self.session(node).await?;
            let result = session
                .upload(
                    &upload.local,
                    &upload.remote,
                    &upload.sha256,
                    &upload.mode,
                    timeout,
                )
                .await;
            if let Err(e) = &result {
                self.forget(node, e).await;
            }
            result
        })
    }

    fn host_key<'a>(&'a self, node: &'a NodeAccess) -> BoxFuture<'a, Result<KeyVerdict, SshError>> {
        Box::pin(async move { Ok(self.session(node).await?.verdict.clone()) })
    }
}
