//! Leader election on a coordination.k8s.io Lease (kube-lease-manager), or none for local runs.

use std::time::Duration;

use kube::Client;
use kube_lease_manager::LeaseManagerBuilder;
use tokio::sync::watch;

/// Seconds a Lease stays valid without renewal.
const LEASE_SECONDS: u64 = 15;
/// How long a fresh replica waits for its first election round before calling itself a standby.
const FIRST_ROUND: Duration = Duration::from_secs(3);

/// Leadership as seen by this replica.
pub struct Leadership {
    rx: watch::Receiver<bool>,
    // Keeps the always-leader channel open when election is disabled.
    _tx: Option<watch::Sender<bool>>,
}

impl Leadership {
    /// No election: this replica leads (local runs, `mk8 dev`, tests).
    pub fn always() -> Self {
        let (tx, rx) = watch::channel(true);
        Self { rx, _tx: Some(tx) }
    }

    /// Take part in the election on `namespace/lease_name` as `identity`.
    pub async fn elect(
        client: Client,
        namespace: &str,
        lease_name: &str,
        identity: &str,
    ) -> anyhow::Result<Self> {
        let manager = LeaseManagerBuilder::new(client, lease_name)
            .with_namespace(namespace)
            .with_identity(identity)
            .with_duration(LEASE_SECONDS)
            .with_grace(LEASE_SECONDS / 3)
            .build()
            .await?;
        let (rx, _task) = manager.watch().await;
        Ok(Self { rx, _tx: None })
    }

    /// The first answer: true when this replica leads, false when another one does.
    pub async fn first_round(&mut self) -> bool {
        if *self.rx.borrow() {
            return true;
        }
        let _ = tokio::time::timeout(FIRST_ROUND, self.rx.changed()).await;
        *self.rx.borrow_and_update()
    }

    /// Resolve once this replica leads.
    pub async fn acquired(&mut self) {
        let _ = self.rx.wait_for(|leader| *leader).await;
    }

    /// Resolve once this replica no longer leads (or the election stopped).
    pub async fn lost(mut self) {
        let _ = self.rx.wait_for(|leader| !*leader).await;
    }
}
