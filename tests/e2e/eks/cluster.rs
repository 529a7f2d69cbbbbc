//! Cluster (eks): create, poll, adopt or refuse, FAILED, token refresh, deletion, restarts.

use k8s_openapi::api::core::v1::Secret;
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::{Api, ResourceExt};
use mk8::api::Cluster;
use mk8::providers::eks::{ClusterRequest, EksApi, OWNER_TAG, SdkEks, Target, token};
use serde_json::json;

use super::aws::{self, REGION, Rewrite};
use super::{Env, NS, SECRET_KEY, WAIT, condition, eks_spec, ready, until};

/// The kubeconfig in `<cluster>-kubeconfig`, parsed.
fn kubeconfig(env: &Env, cluster: &str) -> serde_json::Value {
    let secret = env.get("secret", &format!("{cluster}-kubeconfig"));
    let encoded = secret["data"]["value"]
        .as_str()
        .expect("kubeconfig in data.value");
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .unwrap();
    serde_yaml::from_slice(&bytes).expect("kubeconfig is YAML")
}

fn assert_no_secret_anywhere(env: &Env) {
    let everything = env
        .k8s
        .kubectl(&["get", "-n", NS, "clusters,nodepools,events", "-o", "json"]);
    assert!(
        !everything.contains(SECRET_KEY),
        "the AWS secret key leaked into status or Events"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eks_cluster_is_created_once_reported_ready_and_deleted_across_restarts() {
    let mut env = Env::start().await;
    env.start_operator().await;
    let created = env.cluster("prod", eks_spec(json!({}))).await;
    let uid = created.uid().unwrap();

    let obj = ready(&env, "cluster", "prod", "True", "ControlPlaneReady").await;
    assert_eq!(obj["status"]["phase"], "Ready");
    assert_eq!(obj["status"]["kubernetesVersion"], "1.31");
    let endpoint = obj["status"]["endpoint"].as_str().unwrap().to_string();
    assert!(endpoint.starts_with("https://"), "{endpoint}");
    assert_eq!(obj["status"]["kubeconfigSecretName"], "prod-kubeconfig");

    let described = env
        .eks
        .describe_cluster()
        .name("prod")
        .send()
        .await
        .unwrap();
    let eks = described.cluster().unwrap();
    assert_eq!(eks.tags().unwrap()[OWNER_TAG], uid);
    assert_eq!(eks.tags().unwrap()["mk8.io/owner"], "fleet/prod");
    assert_eq!(eks.tags().unwrap()["team"], "platform");
    assert_eq!(
        eks.role_arn(),
        Some("arn:aws:iam::123456789012:role/eks-control-plane")
    );

    // The kubeconfig Secret: owned by the Cluster, server and CA from EKS, a token for it.
    let secret = env.get("secret", "prod-kubeconfig");
    assert_eq!(
        secret["metadata"]["ownerReferences"][0]["uid"],
        uid.as_str()
    );
    let config = kubeconfig(&env, "prod");
    assert_eq!(
        config["clusters"][0]["cluster"]["server"],
        endpoint.as_str()
    );
    assert!(config["clusters"][0]["cluster"]["certificate-authority-data"].is_string());
    let bearer = config["users"][0]["user"]["token"].as_str().unwrap();
    let url = url::Url::parse(&token::decode(bearer).expect("a k8s-aws-v1 token")).unwrap();
    let query: std::collections::BTreeMap<String, String> =
        url.query_pairs().into_owned().collect();
    assert_eq!(query["Action"], "GetCallerIdentity");
    assert_eq!(query["X-Amz-Expires"], "60");
    assert!(query["X-Amz-SignedHeaders"].contains("x-k8s-aws-id"));
    assert!(query["X-Amz-Credential"].starts_with("AKIATESTKEY/"));
    assert_no_secret_anywhere(&env);

    // The human variant: `mk8 kubeconfig get` prints an exec user running this mk8 (`mk8 credentials eks`), not the AWS CLI.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mk8"))
        .args(["kubeconfig", "get", "prod", "-n", NS])
        .env("KUBECONFIG", &env.k8s.kubeconfig)
        .output()
        .expect("mk8 runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let human: serde_json::Value = serde_yaml::from_slice(&out.stdout).unwrap();
    assert_eq!(human["clusters"][0]["cluster"]["server"], endpoint.as_str());
    let exec = &human["users"][0]["user"]["exec"];
    assert_eq!(exec["command"], env!("CARGO_BIN_EXE_mk8"));
    assert_eq!(exec["apiVersion"], "client.authentication.k8s.io/v1");
    assert_eq!(exec["interactiveMode"], "Never");
    assert_eq!(exec["provideClusterInfo"], false);
    assert_eq!(
        exec["args"],
        json!([
            "credentials",
            "eks",
            "--cluster-name",
            "prod",
            "--region",
            REGION
        ])
    );
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("k8s-aws-v1"),
        "no operator token"
    );

    // A restart converges without a second CreateCluster.
    env.start_operator().await;
    env.k8s
        .kubectl(&["annotate", "-n", NS, "cluster", "prod", "touch=1"]);
    ready(&env, "cluster", "prod", "True", "ControlPlaneReady").await;
    assert_eq!(aws::clusters(&env.eks).await, vec!["prod".to_string()]);
    assert_eq!(
        env.proxy.faults.count("POST /clusters -> 200"),
        1,
        "{:?}",
        env.proxy.faults.calls()
    );

    // Deletion behind the finalizer, resumed by a restarted operator.
    env.stop_operator().await;
    Api::<Cluster>::namespaced(env.client.clone(), NS)
        .delete("prod", &DeleteParams::default())
        .await
        .unwrap();
    env.start_operator().await;
    env.gone("cluster", "prod").await;
    assert!(
        aws::clusters(&env.eks).await.is_empty(),
        "nothing of ours remains in moto"
    );
    assert_eq!(env.proxy.faults.count("DELETE /clusters/prod"), 1);
    env.stop_operator().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creating_is_polled_by_requeue_and_a_failed_control_plane_is_surfaced_then_recreated() {
    let mut env = Env::start().await;
    env.proxy.faults.rewrite(Rewrite {
        path: "/clusters/slow".into(),
        status: "CREATING".into(),
        issue: None,
        times: 3,
    });
    env.proxy.faults.rewrite(Rewrite {
        path: "/clusters/broken".into(),
        status: "FAILED".into(),
        issue: Some((
            "Ec2SubnetNotFound".into(),
            "subnet-0a1b2c3d4e5f60001 does not exist".into(),
        )),
        times: 1,
    });
    env.start_operator().await;
    env.cluster("slow", eks_spec(json!({}))).await;
    env.cluster("broken", eks_spec(json!({}))).await;

    // FAILED is shown with AWS's reason; a control plane that never served is deleted and made again.
    let failed = ready(&env, "cluster", "broken", "False", "ControlPlaneFailed").await;
    assert_eq!(failed["status"]["phase"], "Failed");
    let (_, _, message) = condition(&failed, "Ready").unwrap();
    assert!(
        message.contains("Ec2SubnetNotFound: subnet-0a1b2c3d4e5f60001 does not exist"),
        "{message}"
    );

    let creating = ready(&env, "cluster", "slow", "False", "ControlPlaneCreating").await;
    assert_eq!(creating["status"]["phase"], "Provisioning");
    ready(&env, "cluster", "slow", "True", "ControlPlaneReady").await;
    let polls = env.proxy.faults.count("GET /clusters/slow");
    assert!(polls >= 4, "polled while CREATING: {polls}");
    assert!(polls < 15, "no hot loop: {polls} DescribeCluster calls");

    let retried = ready(&env, "cluster", "broken", "True", "ControlPlaneReady").await;
    assert_eq!(
        retried["metadata"]["annotations"]["mk8.io/eks-create-failures"],
        "1"
    );
    assert_eq!(env.proxy.faults.count("DELETE /clusters/broken"), 1);
    assert_eq!(env.proxy.faults.count("POST /clusters -> 200"), 3);
    assert_eq!(
        aws::clusters(&env.eks).await,
        vec!["broken".to_string(), "slow".to_string()]
    );
    env.stop_operator().await;
}

/// Create an EKS cluster in moto directly, tagged with `owner`.
async fn precreate(env: &Env, name: &str, owner: &str) {
    let driver = SdkEks::new(Some(env.moto.url()));
    let target = Target {
        region: REGION.into(),
        credentials: Some(mk8::providers::eks::AwsCredentials {
            access_key_id: "test".into(),
            secret_access_key: "test".into(),
            session_token: None,
            role_arn: None,
        }),
    };
    let request = ClusterRequest {
        name: name.into(),
        role_arn: "arn:aws:iam::123456789012:role/eks-control-plane".into(),
        version: Some("1.31".into()),
        subnet_ids: vec![
            "subnet-0a1b2c3d4e5f60001".into(),
            "subnet-0a1b2c3d4e5f60002".into(),
        ],
        endpoint_public_access: true,
        tags: [(OWNER_TAG.to_string(), owner.to_string())].into(),
        client_request_token: format!("pre-{name}"),
        ..Default::default()
    };
    driver
        .create_cluster(&target, &request)
        .await
        .expect("pre-created");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_existing_cluster_is_adopted_only_when_its_ownership_tag_matches() {
    let mut env = Env::start().await;
    let mine = env.cluster("mine", eks_spec(json!({"paused": true}))).await;
    env.cluster("theirs", eks_spec(json!({"paused": true})))
        .await;
    precreate(&env, "mine", &mine.uid().unwrap()).await;
    precreate(&env, "theirs", "another-owner").await;
    env.start_operator().await;
    env.patch_spec::<Cluster>("mine", json!({"paused": false}))
        .await;
    env.patch_spec::<Cluster>("theirs", json!({"paused": false}))
        .await;

    ready(&env, "cluster", "mine", "True", "ControlPlaneReady").await;
    let refused = ready(&env, "cluster", "theirs", "False", "OwnershipConflict").await;
    let (_, _, message) = condition(&refused, "Ready").unwrap();
    assert!(
        message.contains("mk8.io/owner-uid is another-owner"),
        "{message}"
    );
    assert_eq!(
        env.proxy.faults.count("POST /clusters"),
        0,
        "nothing created"
    );

    // Deleting the refused Cluster leaves the foreign EKS cluster alone.
    Api::<Cluster>::namespaced(env.client.clone(), NS)
        .delete("theirs", &DeleteParams::default())
        .await
        .unwrap();
    env.gone("cluster", "theirs").await;
    assert_eq!(
        aws::clusters(&env.eks).await,
        vec!["mine".to_string(), "theirs".to_string()]
    );
    assert_eq!(env.proxy.faults.count("DELETE /clusters/theirs"), 0);
    env.stop_operator().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_and_5xx_are_retried_with_backoff_then_succeed() {
    let mut env = Env::start().await;
    env.proxy
        .faults
        .throttle
        .store(4, std::sync::atomic::Ordering::SeqCst);
    env.proxy
        .faults
        .unavailable
        .store(4, std::sync::atomic::Ordering::SeqCst);
    env.start_operator().await;
    env.cluster("flaky", eks_spec(json!({}))).await;
    ready(&env, "cluster", "flaky", "True", "ControlPlaneReady").await;
    let calls = env.proxy.faults.calls();
    assert_eq!(
        calls.iter().filter(|c| c.ends_with("-> 400")).count(),
        4,
        "{calls:?}"
    );
    assert_eq!(
        calls.iter().filter(|c| c.ends_with("-> 503")).count(),
        4,
        "{calls:?}"
    );
    assert_eq!(aws::clusters(&env.eks).await, vec!["flaky".to_string()]);
    // While it retried, Ready said why (and an Event recorded it).
    let events = env
        .k8s
        .kubectl(&["get", "events.events.k8s.io", "-n", NS, "-o", "json"]);
    assert!(events.contains("AwsThrottled"), "{events}");
    assert!(
        events.contains("ThrottlingException: Rate exceeded"),
        "{events}"
    );
    env.stop_operator().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_is_refreshed_before_it_expires_and_a_role_is_assumed() {
    let mut env = Env::start().await;
    env.credentials("aws-role", Some("arn:aws:iam::123456789012:role/mk8-fleet"))
        .await;
    env.start_operator().await;
    env.cluster(
        "tok",
        eks_spec(json!({"eks": {"credentialsSecretRef": {"name": "aws-role"}}})),
    )
    .await;
    ready(&env, "cluster", "tok", "True", "ControlPlaneReady").await;
    assert!(
        env.proxy.faults.count("POST / Action=AssumeRole") >= 1,
        "{:?}",
        env.proxy.faults.calls()
    );
    let first = kubeconfig(&env, "tok")["users"][0]["user"]["token"].clone();
    let secrets: Api<Secret> = Api::namespaced(env.client.clone(), NS);
    let annotation = "mk8.io/token-expires-at";
    let expires = secrets.get("tok-kubeconfig").await.unwrap().annotations()[annotation].clone();
    let expires = chrono::DateTime::parse_from_rfc3339(&expires).unwrap();
    let left = expires.signed_duration_since(chrono::Utc::now());
    assert!(
        left > chrono::Duration::minutes(13) && left <= chrono::Duration::minutes(14),
        "{left}"
    );

    // Pretend time passed: the token now has 8 minutes left, inside the refresh window.
    let soon = (chrono::Utc::now() + chrono::Duration::minutes(8)).to_rfc3339();
    secrets
        .patch(
            "tok-kubeconfig",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {annotation: soon}}})),
        )
        .await
        .unwrap();
    env.k8s
        .kubectl(&["annotate", "-n", NS, "cluster", "tok", "touch=1"]);
    let secrets = &secrets;
    until("a fresh token", WAIT, || async move {
        let secret = secrets.get("tok-kubeconfig").await.unwrap();
        let expires =
            chrono::DateTime::parse_from_rfc3339(&secret.annotations()[annotation]).unwrap();
        if expires.signed_duration_since(chrono::Utc::now()) > chrono::Duration::minutes(13) {
            Ok(())
        } else {
            Err(format!("expires {expires}"))
        }
    })
    .await;
    let second = kubeconfig(&env, "tok")["users"][0]["user"]["token"].clone();
    assert_ne!(first, second, "a new token was written");
    assert_no_secret_anywhere(&env);
    env.stop_operator().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_entries_are_created_and_associated_once_per_change() {
    let mut env = Env::start().await;
    env.start_operator().await;
    let admins = "arn:aws:iam::123456789012:role/platform-admins";
    env.cluster(
        "acl",
        eks_spec(json!({"eks": {"accessEntries": [{"principalArn": admins}]}})),
    )
    .await;
    ready(&env, "cluster", "acl", "True", "ControlPlaneReady").await;
    let calls = env.proxy.faults.calls();
    assert_eq!(
        env.proxy
            .faults
            .count("POST /clusters/acl/access-entries -> 200"),
        1,
        "{calls:?}"
    );
    let associations = calls
        .iter()
        .filter(|c| {
            c.starts_with("POST /clusters/acl/access-entries/") && c.contains("/access-policies")
        })
        .count();
    assert_eq!(associations, 1, "{calls:?}");
    // Another reconcile (after a restart) sends nothing again.
    env.start_operator().await;
    env.k8s
        .kubectl(&["annotate", "-n", NS, "cluster", "acl", "touch=1"]);
    ready(&env, "cluster", "acl", "True", "ControlPlaneReady").await;
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert_eq!(
        env.proxy
            .faults
            .count("POST /clusters/acl/access-entries -> 200"),
        1
    );
    env.stop_operator().await;
}
