//! Reads what a NodePool refers to (I/O): its Cluster and the other pools of that Cluster.

use kube::api::ListParams;
use kube::{Api, ResourceExt};

use crate::api::{Cluster, NodePool};
use crate::controller::context::Context;
use crate::controller::error::Result;

/// What the validation of a NodePool needs to know about the world.
#[derive(Clone, Debug, Default)]
pub struct Observed {
    /// The Cluster named by `spec.clusterName`, if it exists.
    pub cluster: Option<Cluster>,
    /// The other NodePools of the same Cluster.
    pub siblings: Vec<NodePool>,
}

/// Read the Cluster and its other pools.
pub async fn observe(pool: &NodePool, ctx: &Context) -> Result<Observed> {
    let ns = pool.namespace().unwrap_or_default();
    let cluster = Api::<Cluster>::namespaced(ctx.client.clone(), &ns)
        .get_opt(&pool.spec.cluster_name)
        .await?;
    let siblings = Api::<NodePool>::namespaced(ctx.client.clone(), &ns)
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter(|p| {
            p.spec.cluster_name == pool.spec.cluster_name && p.name_any() != pool.name_any()
        })
        .collect();
    Ok(Observed { cluster, siblings })
}
