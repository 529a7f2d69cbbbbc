//! RKE2 on SSH hosts: release artifacts, config.yaml, the install plan (pure) and its executor,
//! and the reconcile stages of Clusters ([`cluster`]) and NodePools ([`pool`]) that drive them.

pub mod access;
pub mod artifacts;
pub mod cluster;
pub mod config;
pub mod execute;
pub mod nodes;
pub mod plan;
pub mod pool;

use std::path::PathBuf;
use std::sync::Arc;

use kube::runtime::controller::Action;

use crate::api::{Cluster, NodePool};
use crate::providers::{ClusterOutcome, ClusterProvider, NodeShell, PoolOutcome, PoolProvider};
use crate::reconcile::env::Env;
use crate::reconcile::error::Result;

/// The RKE2 provider of one operator: its SSH driver, its background install jobs and the
/// directory where it caches release files.
#[derive(Clone)]
pub struct Rke2 {
    shell: Arc<dyn NodeShell>,
    jobs: Arc<pool::Jobs>,
    artifact_cache: PathBuf,
}

impl Rke2 {
    /// A provider reaching nodes through `shell`, caching release files under `artifact_cache`.
    pub fn new(shell: Arc<dyn NodeShell>, artifact_cache: PathBuf) -> Self {
        Self {
            shell,
            jobs: Arc::default(),
            artifact_cache,
        }
    }

    /// The background install jobs of this provider.
    pub fn jobs(&self) -> &pool::Jobs {
        &self.jobs
    }

    /// Where release files are cached.
    pub fn artifact_cache(&self) -> &std::path::Path {
        &self.artifact_cache
    }
}

impl ClusterProvider for Rke2 {
    async fn reconcile(&self, env: &Env, cluster: &Cluster) -> Result<Option<ClusterOutcome>> {
        cluster::reconcile(self.shell.as_ref(), env, cluster).await
    }

    async fn cleanup(&self, env: &Env, cluster: &Cluster) -> Result<Option<Action>> {
        cluster::cleanup(env, cluster).await
    }
}

impl PoolProvider for Rke2 {
    async fn reconcile(
        &self,
        env: &Env,
        pool: &NodePool,
        cluster: &Cluster,
        siblings: &[NodePool],
    ) -> Result<Option<PoolOutcome>> {
        pool::reconcile(self, env, pool, cluster, siblings).await
    }

    async fn cleanup(&self, env: &Env, pool: &NodePool) -> Result<Option<Action>> {
        pool::cleanup(self, env, pool).await
    }
}
