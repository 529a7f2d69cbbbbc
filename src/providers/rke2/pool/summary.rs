//! Status of an RKE2 NodePool from its job's state (pure): per-node phases, Ready, Degraded,
//! the converged version and when to look again.

use std::time::Duration;

use super::jobs::JobState;
use super::removal::REMOVING;
use super::{DEGRADED, RETRY_FAILED, reasons};
use crate::api::NodePool;
use crate::api::nodepool::{NodeStatus, node_name};
use crate::providers::PoolOutcome;
use crate::reconcile::conditions::{self, Desired, types};

/// Turn the job's state into status (pure).
pub(super) fn summarise(pool: &NodePool, previous: &[NodeStatus], job: &JobState) -> PoolOutcome {
    let (progress, result, finished) = (&job.progress, job.result.clone(), job.finished);
    let hosts = pool.ssh_hosts();
    let now = conditions::now();
    let since = |name: &str, phase: &str| {
        previous
            .iter()
            .find(|n| n.name == name && n.phase == phase)
            .and_then(|n| n.since.clone())
            .or_else(|| Some(now.clone()))
    };
    let mut nodes: Vec<NodeStatus> = hosts
        .iter()
        .map(|host| {
            let name = node_name(host);
            let p = progress.get(&name);
            let phase = p.map_or("Pending", |p| p.phase.as_str()).to_string();
            let before = previous
                .iter()
                .find(|n| n.name == name && n.address == host.address);
            let (fingerprint, learned) = match (&host.host_key_fingerprint, job.learned.get(&name))
            {
                (Some(pinned), _) => (Some(pinned.clone()), false),
                (None, Some(learned)) => (Some(learned.clone()), true),
                (None, None) => before
                    .filter(|b| b.host_key_learned)
                    .map_or((None, false), |b| (b.host_key_fingerprint.clone(), true)),
            };
            NodeStatus {
                since: since(&name, &phase),
                name,
                address: host.address.clone(),
                phase,
                step: p.and_then(|p| p.step.map(str::to_string)),
                message: p.map(|p| p.message.clone()),
                port: host.port,
                user: host.user.clone(),
                host_key_fingerprint: fingerprint,
                host_key_learned: learned,
            }
        })
        .collect();
    let ready = nodes.iter().filter(|n| n.phase == "Ready").count() as i32;
    let total = nodes.len();
    // Hosts taken out of the spec stay listed (phase Removing) until they are drained and clean.
    for (name, r) in &job.removals {
        if r.done || nodes.iter().any(|n| &n.name == name) {
            continue;
        }
        let Some(before) = previous.iter().find(|n| &n.name == name) else {
            continue;
        };
        nodes.push(NodeStatus {
            phase: REMOVING.into(),
            step: Some(r.step.to_string()),
            message: Some(r.message.clone()),
            since: since(name, REMOVING),
            ..before.clone()
        });
    }
    let removing = job.removals.values().any(|r| !r.done);
    let mut failed: Vec<String> = nodes
        .iter()
        .filter(|n| n.phase == "Failed")
        .map(|n| {
            format!(
                "{} ({}): {}",
                n.name,
                n.address,
                n.message.clone().unwrap_or_default()
            )
        })
        .collect();
    failed.extend(
        job.removals
            .iter()
            .filter(|(_, r)| r.failed && !r.done)
            .map(|(name, r)| format!("{name} could not be removed ({}): {}", r.step, r.message)),
    );
    // The plan ran to its end: every node that did not fail runs the version (failed nodes are
    // reported in Degraded and retried).
    let converged = finished
        && result == Some(Ok(()))
        && ready > 0
        && nodes
            .iter()
            .all(|n| matches!(n.phase.as_str(), "Ready" | "Failed" | REMOVING));
    let version = if converged {
        Some(job.version.clone())
    } else {
        pool.status.as_ref().and_then(|s| s.version.clone())
    };
    // The bootstrap host is recorded once its install began.
    let bootstrap = job.bootstrap.clone().filter(|address| {
        hosts
            .iter()
            .any(|h| &h.address == address && progress.contains_key(&node_name(h)))
    });
    if let Some(Err((message, reason))) = result {
        return PoolOutcome {
            conditions: vec![Desired::no(types::READY, reason, message)],
            nodes,
            ready,
            version,
            bootstrap,
            requeue: Some(RETRY_FAILED),
        };
    }
    let degraded = if failed.is_empty() {
        Desired::no(DEGRADED, reasons::NO_FAILURES, "no node failed")
    } else {
        Desired::yes(
            DEGRADED,
            reasons::NODES_FAILED,
            format!("failed: {}", failed.join("; ")),
        )
    };
    let ready_condition = if ready as usize == total {
        let removing_note = if removing {
            "; removing nodes taken out of the spec"
        } else {
            ""
        };
        Desired::yes(
            types::READY,
            reasons::NODES_READY,
            format!("{ready} of {total} nodes joined and ready{removing_note}"),
        )
    } else if finished && !failed.is_empty() {
        Desired::no(
            types::READY,
            reasons::NODES_FAILED,
            format!(
                "{ready} of {total} nodes ready; {} failed and will be retried: {}",
                failed.len(),
                failed.join("; ")
            ),
        )
    } else {
        Desired::no(
            types::READY,
            reasons::JOINING,
            format!("{ready} of {total} nodes ready; installing"),
        )
    };
    let requeue = if !finished {
        Some(Duration::from_secs(2))
    } else if failed.is_empty() && ready as usize == total && !removing {
        None
    } else {
        Some(RETRY_FAILED)
    };
    PoolOutcome {
        conditions: vec![ready_condition, degraded],
        nodes,
        ready,
        version,
        bootstrap,
        requeue,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::super::pinned_access;
    use super::super::removal::{self, RemovalProgress};
    use super::*;
    use crate::providers::rke2::execute::{Phase, Progress};

    fn pool() -> NodePool {
        serde_yaml::from_str(
            r#"
apiVersion: mk8.io/v1alpha1
kind: NodePool
metadata: {name: agents, namespace: fleet}
spec:
  clusterName: edge
  ssh: {role: agent, hosts: [{address: 10.0.0.21}, {address: 10.0.0.22}]}
"#,
        )
        .unwrap()
    }

    fn state(
        progress: BTreeMap<String, Progress>,
        result: Option<std::result::Result<(), (String, &'static str)>>,
    ) -> JobState {
        JobState {
            version: "v1.33.1+rke2r1".into(),
            bootstrap: None,
            progress,
            removals: BTreeMap::new(),
            learned: BTreeMap::new(),
            result,
            finished: true,
        }
    }

    fn progress(name: &str, phase: Phase, message: &str) -> (String, Progress) {
        (
            name.to_string(),
            Progress {
                name: name.into(),
                phase,
                step: Some("ready"),
                message: message.into(),
            },
        )
    }

    #[test]
    fn a_failed_node_makes_the_pool_degraded_naming_it() {
        let p = BTreeMap::from([
            progress("10-0-0-21", Phase::Ready, "joined and ready"),
            progress(
                "10-0-0-22",
                Phase::Failed,
                "cannot connect to 10.0.0.22: refused",
            ),
        ]);
        let work = summarise(&pool(), &[], &state(p, Some(Ok(()))));
        assert_eq!(work.ready, 1);
        let degraded = work
            .conditions
            .iter()
            .find(|c| c.type_ == DEGRADED)
            .unwrap();
        assert!(degraded.status);
        assert_eq!(
            degraded.message,
            "failed: 10-0-0-22 (10.0.0.22): cannot connect to 10.0.0.22: refused"
        );
        assert_eq!(work.conditions[0].reason, reasons::NODES_FAILED);
        assert_eq!(work.nodes[1].phase, "Failed");
        assert_eq!(work.requeue, Some(RETRY_FAILED));
    }

    #[test]
    fn all_nodes_ready_makes_the_pool_ready() {
        let p = BTreeMap::from([
            progress("10-0-0-21", Phase::Ready, "joined and ready"),
            progress("10-0-0-22", Phase::Ready, "joined and ready"),
        ]);
        let work = summarise(&pool(), &[], &state(p, Some(Ok(()))));
        assert!(work.conditions[0].status);
        assert_eq!(work.conditions[0].message, "2 of 2 nodes joined and ready");
        assert_eq!(work.requeue, None);
    }

    #[test]
    fn hosts_taken_out_of_the_spec_stay_listed_until_removed() {
        let ready = |name: &str, address: &str| NodeStatus {
            name: name.into(),
            address: address.into(),
            phase: "Ready".into(),
            step: Some("ready".into()),
            port: Some(2222),
            user: Some("deploy".into()),
            ..Default::default()
        };
        let previous = vec![
            ready("10-0-0-21", "10.0.0.21"),
            ready("10-0-0-22", "10.0.0.22"),
            ready("old-1", "10.0.0.31"),
            ready("old-2", "10.0.0.32"),
            ready("old-3", "10.0.0.33"),
        ];
        let mut job = state(
            BTreeMap::from([
                progress("10-0-0-21", Phase::Ready, "joined and ready"),
                progress("10-0-0-22", Phase::Ready, "joined and ready"),
            ]),
            Some(Ok(())),
        );
        let removal = |step, message: &str, done, failed| RemovalProgress {
            step,
            message: message.into(),
            done,
            failed,
        };
        job.removals = BTreeMap::from([
            (
                "old-1".to_string(),
                removal(removal::STEP_UNINSTALL, "removed", true, false),
            ),
            (
                "old-2".into(),
                removal(
                    removal::STEP_DRAIN,
                    "draining old-2: pod web-1 is still there",
                    false,
                    true,
                ),
            ),
            (
                "old-3".into(),
                removal(
                    removal::STEP_UNINSTALL,
                    "drained; Node object deleted",
                    false,
                    false,
                ),
            ),
        ]);
        let work = summarise(&pool(), &previous, &job);
        let names: Vec<(&str, &str)> = work
            .nodes
            .iter()
            .map(|n| (n.name.as_str(), n.phase.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                ("10-0-0-21", "Ready"),
                ("10-0-0-22", "Ready"),
                ("old-2", "Removing"),
                ("old-3", "Removing")
            ]
        );
        // Where to reach it is kept while it is being removed.
        assert_eq!(work.nodes[2].port, Some(2222));
        assert_eq!(work.nodes[2].user.as_deref(), Some("deploy"));
        assert_eq!(work.nodes[3].step.as_deref(), Some("uninstall"));
        assert_eq!(work.ready, 2);
        let degraded = work
            .conditions
            .iter()
            .find(|c| c.type_ == DEGRADED)
            .unwrap();
        assert!(degraded.status);
        assert!(
            degraded.message.contains(
                "old-2 could not be removed (drain): draining old-2: pod web-1 is still there"
            ),
            "{}",
            degraded.message
        );
        assert_eq!(work.requeue, Some(RETRY_FAILED));
    }

    #[test]
    fn a_learned_host_key_is_recorded_and_kept() {
        let mut job = state(
            BTreeMap::from([progress("10-0-0-21", Phase::Ready, "joined and ready")]),
            Some(Ok(())),
        );
        job.learned = BTreeMap::from([("10-0-0-21".to_string(), "SHA256:abc".to_string())]);
        let work = summarise(&pool(), &[], &job);
        assert_eq!(
            work.nodes[0].host_key_fingerprint.as_deref(),
            Some("SHA256:abc")
        );
        assert!(work.nodes[0].host_key_learned);
        // Later jobs connect with the key pinned and learn nothing new: status keeps it.
        job.learned.clear();
        let again = summarise(&pool(), &work.nodes, &job);
        assert_eq!(
            again.nodes[0].host_key_fingerprint.as_deref(),
            Some("SHA256:abc")
        );
        assert!(again.nodes[0].host_key_learned);
        assert!(again.nodes[1].host_key_fingerprint.is_none());
        // ... and pins it for the next connection.
        let ssh = pool().spec.ssh.unwrap();
        let creds = (
            crate::providers::ssh::Credentials {
                private_key: String::new(),
                passphrase: None,
            },
            String::new(),
        );
        let access = pinned_access(&ssh.hosts[0], &ssh, &creds, &again.nodes);
        assert_eq!(access.host_keys.pinned.as_deref(), Some("SHA256:abc"));
        let other = pinned_access(&ssh.hosts[1], &ssh, &creds, &again.nodes);
        assert_eq!(other.host_keys.pinned, None);
    }

    #[test]
    fn an_artifact_failure_is_the_ready_reason() {
        let err = Some(Err((
            "checksum mismatch for rke2.linux-amd64.tar.gz: ...".to_string(),
            reasons::ARTIFACTS_UNAVAILABLE,
        )));
        let work = summarise(&pool(), &[], &state(BTreeMap::new(), err));
        assert_eq!(work.conditions[0].reason, reasons::ARTIFACTS_UNAVAILABLE);
        assert!(
            work.conditions[0]
                .message
                .starts_with("checksum mismatch for rke2.linux-amd64.tar.gz")
        );
        assert_eq!(work.nodes[0].phase, "Pending");
    }
}
