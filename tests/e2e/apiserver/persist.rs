//! `data_dir` persistence across restarts.

use mk8::apiserver::{DevServer, DevServerConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_and_crds_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let config = DevServerConfig {
        data_dir: Some(dir.path().to_path_buf()),
        token: Some("fixed".into()),
        ..Default::default()
    };
    let first = DevServer::start(config.clone()).await.unwrap();
    let first_kubeconfig = first.kubeconfig();
    first.apply_manifests(super::WIDGET_CRD).await.unwrap();
    first.apply_manifests("apiVersion: test.mk8.io/v1\nkind: Widget\nmetadata: {name: kept, namespace: default}\nspec: {size: 2}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: extra}\n").await.unwrap();
    let client = first.client().await.unwrap();
    let before: k8s_openapi::api::core::v1::Namespace =
        kube::Api::all(client).get("extra").await.unwrap();
    first.shutdown().await;

    let second = DevServer::start(config).await.unwrap();
    // The CA is kept with the data: kubeconfigs handed out before the restart stay valid.
    assert_eq!(
        ca_line(&first_kubeconfig),
        ca_line(&second.kubeconfig()),
        "the restarted server has a new CA"
    );
    let client = second.client().await.unwrap();
    let after: k8s_openapi::api::core::v1::Namespace =
        kube::Api::all(client.clone()).get("extra").await.unwrap();
    assert_eq!(after.metadata.uid, before.metadata.uid);
    let ar = kube::core::ApiResource::from_gvk_with_plural(
        &kube::core::GroupVersionKind::gvk("test.mk8.io", "v1", "Widget"),
        "widgets",
    );
    let widgets: kube::Api<kube::core::DynamicObject> =
        kube::Api::namespaced_with(client.clone(), "default", &ar);
    let kept = widgets.get("kept").await.unwrap();
    assert_eq!(kept.data["spec"]["size"], 2);
    // The resourceVersion counter continues instead of restarting.
    let cm: k8s_openapi::api::core::v1::ConfigMap =
        serde_json::from_value(serde_json::json!({"metadata": {"name": "new"}})).unwrap();
    let created = kube::Api::namespaced(client, "default")
        .create(&Default::default(), &cm)
        .await
        .unwrap();
    let rv = |v: &Option<String>| v.as_deref().unwrap().parse::<u64>().unwrap();
    assert!(rv(&created.metadata.resource_version) > rv(&kept.metadata.resource_version));
    second.shutdown().await;
}

fn ca_line(kubeconfig: &str) -> String {
    kubeconfig
        .lines()
        .find(|l| l.contains("certificate-authority-data"))
        .expect("the kubeconfig pins a CA")
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_serving_certificate_covers_the_extra_names() {
    let server = DevServer::start(DevServerConfig {
        bind: "0.0.0.0".parse().unwrap(),
        tls_sans: vec!["apiserver.mk8.test".into(), "10.1.2.3".into()],
        ..Default::default()
    })
    .await
    .unwrap();
    // Listening everywhere, the kubeconfig uses loopback.
    assert!(
        server.url().starts_with("https://127.0.0.1:"),
        "{}",
        server.url()
    );
    let kubeconfig = kube::config::Kubeconfig::from_yaml(&server.kubeconfig()).unwrap();
    let connect = |name: Option<&str>| {
        let kubeconfig = kubeconfig.clone();
        let name = name.map(str::to_string);
        async move {
            let mut config = kube::Config::from_custom_kubeconfig(
                kubeconfig,
                &kube::config::KubeConfigOptions::default(),
            )
            .await
            .unwrap();
            config.tls_server_name = name;
            let client = kube::Client::try_from(config).unwrap();
            client.apiserver_version().await
        }
    };
    connect(Some("apiserver.mk8.test")).await.unwrap();
    connect(None).await.unwrap();
    let err = connect(Some("other.mk8.test")).await.unwrap_err();
    assert!(format!("{err:?}").contains("NotValidForName"), "{err:?}");
    server.shutdown().await;
}
