//! Leader election: two replicas against one API server never reconcile at once.

use std::time::Duration;

use crate::operator::{apply_stdin, http_get, ready_reason, start_operator};
use crate::support::TestCluster;

async fn wait_ready(admin: std::net::SocketAddr) {
    let started = std::time::Instant::now();
    loop {
        let (code, body) = http_get(admin, "/readyz").await;
        if code == 200 {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "replica at {admin} never ready: {code} {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn stack_json(name: &str) -> String {
    format!(
        r#"{{"apiVersion":"mk8.io/v1alpha1","kind":"Stack","metadata":{{"name":"{name}","namespace":"fleet"}},
        "spec":{{"components":[{{"name":"certs","preset":"cert-manager"}}]}}}}"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_replica_stays_idle_until_the_leader_stops() {
    let cluster = TestCluster::with_mk8_crds().await;
    apply_stdin(
        &cluster,
        r#"{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"fleet"}}"#,
    );
    let leader = start_operator(&cluster).await;
    wait_ready(leader.admin).await;
    let standby = start_operator(&cluster).await;
    wait_ready(standby.admin).await; // a standby is ready, so rollouts can proceed

    apply_stdin(&cluster, &stack_json("first"));
    ready_reason(&cluster, "stack", "first", "ClusterInventoryMissing").await;
    let (_, metrics) = http_get(standby.admin, "/metrics").await;
    assert!(
        !metrics.contains("mk8_reconciliations_total{"),
        "the standby reconciled:\n{metrics}"
    );

    // The leader stops and releases the Lease; the standby takes over.
    let _ = leader.stop.send(());
    leader.done.await.unwrap().expect("leader stops cleanly");
    apply_stdin(&cluster, &stack_json("second"));
    ready_reason(&cluster, "stack", "second", "ClusterInventoryMissing").await;
    let (_, metrics) = http_get(standby.admin, "/metrics").await;
    assert!(
        metrics.contains("mk8_reconciliations_total{controller=\"stack\"}"),
        "{metrics}"
    );

    let _ = standby.stop.send(());
    standby.done.await.unwrap().expect("standby stops cleanly");
}
