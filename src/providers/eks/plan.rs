//! Desired EKS state as plain data (pure): requests built from Cluster and NodePool specs,
//! ownership checks, version steps and node group config diffs.

use std::collections::{BTreeMap, BTreeSet};

use kube::ResourceExt;

use super::{
    ClusterRequest, EksNodegroup, NodegroupConfigUpdate, NodegroupRequest, NodegroupScaling,
    NodegroupTaint, OWNER_NAME_TAG, OWNER_TAG,
};
use crate::api::nodepool::{CapacityType, TaintEffect};
use crate::api::{Cluster, NodePool};

/// Name of the EKS cluster behind a Cluster: its own name.
pub fn cluster_name(cluster: &Cluster) -> String {
    cluster.name_any()
}

/// Name of the node group behind a NodePool: its own name.
pub fn nodegroup_name(pool: &NodePool) -> String {
    pool.name_any()
}

/// Name of the IAM role mk8 creates for a pool's nodes (`createRoles: true`): unique per pool.
pub fn node_role_name(pool: &NodePool) -> String {
    format!("mk8-nodes-{}", pool.uid().unwrap_or_default())
}

/// Managed policies every EKS node role needs.
pub const NODE_ROLE_POLICIES: [&str; 3] = [
    "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy",
    "arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy",
    "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly",
];

/// Public and private subnet CIDRs per zone carved from `vpc_cidr`: the VPC split into equal
/// blocks, the first `zones` public, the next `zones` private. `None` for a malformed CIDR.
pub fn subnet_cidrs(vpc_cidr: &str, zones: usize) -> Option<Vec<(String, String)>> {
    let (address, prefix) = vpc_cidr.split_once('/')?;
    let prefix: u32 = prefix.parse().ok()?;
    let octets: Vec<u32> = address
        .split('.')
        .map(|o| o.parse::<u32>().ok().filter(|v| *v < 256))
        .collect::<Option<_>>()?;
    if octets.len() != 4 || prefix > 24 || zones == 0 {
        return None;
    }
    let base = octets.iter().fold(0u32, |acc, o| (acc << 8) | o) & (u32::MAX << (32 - prefix));
    let bits = (2 * zones).next_power_of_two().trailing_zeros();
    let sub_prefix = prefix + bits;
    if sub_prefix > 28 {
        return None;
    }
    let size = 1u32 << (32 - sub_prefix);
    let cidr = |i: u32| {
        let a = base + i * size;
        format!(
            "{}.{}.{}.{}/{sub_prefix}",
            a >> 24,
            (a >> 16) & 255,
            (a >> 8) & 255,
            a & 255
        )
    };
    Some(
        (0..zones as u32)
            .map(|z| (cidr(z), cidr(zones as u32 + z)))
            .collect(),
    )
}

/// Tags on everything made for `owner`: the user's tags, then the ownership tags (which win).
pub fn owner_tags<K: kube::Resource>(
    owner: &K,
    extra: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut tags = extra.clone();
    tags.insert(
        OWNER_TAG.into(),
        owner.meta().uid.clone().unwrap_or_default(),
    );
    tags.insert(
        OWNER_NAME_TAG.into(),
        format!(
            "{}/{}",
            owner.meta().namespace.clone().unwrap_or_default(),
            owner.meta().name.clone().unwrap_or_default()
        ),
    );
    tags
}

/// `None` when `tags` say the resource belongs to `owner_uid`, else why it may not be touched.
pub fn ownership_conflict(
    what: &str,
    tags: &BTreeMap<String, String>,
    owner_uid: &str,
) -> Option<String> {
    match tags.get(OWNER_TAG) {
        Some(uid) if uid == owner_uid => None,
        Some(uid) => Some(format!(
            "{what} already exists and belongs to another object: its tag {OWNER_TAG} is {uid}, this object's UID is {owner_uid}; delete or rename it, or set the tag to {owner_uid} to adopt it"
        )),
        None => Some(format!(
            "{what} already exists and was not created by mk8 (it has no tag {OWNER_TAG}); set the tag {OWNER_TAG}={owner_uid} on it to adopt it, or choose another name"
        )),
    }
}

/// The CreateCluster request for `cluster` (which must have `spec.eks`).
pub fn cluster_request(cluster: &Cluster) -> ClusterRequest {
    let eks = cluster.spec.eks.clone().unwrap_or_default();
    ClusterRequest {
        name: cluster_name(cluster),
        role_arn: eks.role_arn,
        version: cluster.spec.kubernetes_version.clone(),
        subnet_ids: eks.vpc.subnet_ids,
        security_group_ids: eks.vpc.security_group_ids,
        endpoint_public_access: eks.vpc.endpoint_public_access,
        endpoint_private_access: eks.vpc.endpoint_private_access,
        public_access_cidrs: eks.vpc.public_access_cidrs,
        tags: owner_tags(cluster, &eks.tags),
        client_request_token: cluster.uid().unwrap_or_default(),
    }
}

/// What to do about the control plane version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VersionStep {
    /// Nothing: the running version is the one asked for (or none was asked for).
    Hold,
    /// Upgrade to this next minor.
    Upgrade(String),
    /// Refused, with the reason.
    Refused(String),
}

fn minor(version: &str) -> Option<(u32, u32)> {
    let mut parts = version.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// Whether minor version `version` is older than `than` (unparsable versions are not).
pub fn is_older(version: &str, than: &str) -> bool {
    matches!((minor(version), minor(than)), (Some(a), Some(b)) if a < b)
}

/// Decide the next step from `running` towards `desired`: one minor at a time, never down.
pub fn version_step(running: Option<&str>, desired: Option<&str>) -> VersionStep {
    let (Some(running), Some(desired)) = (running, desired) else {
        return VersionStep::Hold;
    };
    match (minor(running), minor(desired)) {
        (Some(r), Some(d)) if r == d => VersionStep::Hold,
        (Some((rm, rn)), Some((dm, dn))) if rm == dm && dn == rn + 1 => {
            VersionStep::Upgrade(desired.to_string())
        }
        (Some((rm, rn)), Some((dm, dn))) if rm == dm && dn > rn + 1 => {
            VersionStep::Refused(format!(
                "spec.kubernetesVersion {desired} skips minor versions: the control plane runs {running} and EKS upgrades one minor at a time; set {rm}.{} first",
                rn + 1
            ))
        }
        (Some(_), Some(_)) => VersionStep::Refused(format!(
            "spec.kubernetesVersion {desired} is older than the running {running}: EKS cannot downgrade a control plane"
        )),
        _ => VersionStep::Refused(format!(
            "cannot compare the running version {running} with spec.kubernetesVersion {desired}"
        )),
    }
}

fn effect(e: TaintEffect) -> &'static str {
    match e {
        TaintEffect::NoSchedule => "NO_SCHEDULE",
        TaintEffect::PreferNoSchedule => "PREFER_NO_SCHEDULE",
        TaintEffect::NoExecute => "NO_EXECUTE",
    }
}

/// The pool's taints in EKS terms, sorted.
pub fn taints(pool: &NodePool) -> Vec<NodegroupTaint> {
    let mut taints: Vec<NodegroupTaint> = pool
        .spec
        .eks
        .iter()
        .flat_map(|e| &e.taints)
        .map(|t| NodegroupTaint {
            key: t.key.clone(),
            value: t.value.clone(),
            effect: effect(t.effect).to_string(),
        })
        .collect();
    taints.sort();
    taints
}

fn scaling(pool: &NodePool) -> NodegroupScaling {
    let s = pool.spec.eks.clone().unwrap_or_default().scaling;
    NodegroupScaling {
        min: s.min,
        max: s.max,
        desired: s.desired,
    }
}

/// The CreateNodegroup request for `pool` on `cluster`, with the node role to use.
pub fn nodegroup_request(
    pool: &NodePool,
    cluster: &Cluster,
    control_plane_version: Option<&str>,
    node_role: &str,
    attempt: u32,
) -> NodegroupRequest {
    let eks = pool.spec.eks.clone().unwrap_or_default();
    let cluster_eks = cluster.spec.eks.clone().unwrap_or_default();
    let subnets = if eks.subnet_ids.is_empty() {
        cluster_eks.vpc.subnet_ids.clone()
    } else {
        eks.subnet_ids.clone()
    };
    NodegroupRequest {
        cluster: cluster_name(cluster),
        name: nodegroup_name(pool),
        version: control_plane_version.map(str::to_string),
        node_role: node_role.to_string(),
        subnets,
        instance_types: eks.instance_types.clone(),
        ami_type: eks.ami_type.clone(),
        capacity_type: match eks.capacity_type {
            CapacityType::OnDemand => "ON_DEMAND",
            CapacityType::Spot => "SPOT",
        }
        .into(),
        disk_size: eks.disk_size,
        scaling: scaling(pool),
        labels: eks.labels.clone(),
        taints: taints(pool),
        tags: owner_tags(pool, &cluster_eks.tags),
        // A retry after CREATE_FAILED is a new request, not a replay of the failed one.
        client_request_token: format!("{}-{attempt}", pool.uid().unwrap_or_default()),
    }
}

/// The UpdateNodegroupConfig that brings `found` to the pool's spec; empty when none is needed.
pub fn nodegroup_update(
    pool: &NodePool,
    cluster: &Cluster,
    found: &EksNodegroup,
) -> NodegroupConfigUpdate {
    let eks = pool.spec.eks.clone().unwrap_or_default();
    let want_scaling = scaling(pool);
    let add_labels: BTreeMap<String, String> = eks
        .labels
        .iter()
        .filter(|(k, v)| found.labels.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let remove_labels: Vec<String> = found
        .labels
        .keys()
        .filter(|k| !eks.labels.contains_key(*k))
        .cloned()
        .collect();
    let want_taints: BTreeSet<NodegroupTaint> = taints(pool).into_iter().collect();
    let have_taints: BTreeSet<NodegroupTaint> = found.taints.iter().cloned().collect();
    let add_taints: Vec<NodegroupTaint> = want_taints.difference(&have_taints).cloned().collect();
    // A changed value is an add of the same key and effect; remove only keys that are gone.
    let remove_taints: Vec<NodegroupTaint> = have_taints
        .iter()
        .filter(|t| {
            !want_taints
                .iter()
                .any(|w| w.key == t.key && w.effect == t.effect)
        })
        .cloned()
        .collect();
    NodegroupConfigUpdate {
        cluster: cluster_name(cluster),
        name: nodegroup_name(pool),
        scaling: (found.scaling != want_scaling).then_some(want_scaling),
        add_labels,
        remove_labels,
        add_taints,
        remove_taints,
    }
}

#[cfg(test)]
mod tests;
