//! `/etc/rancher/rke2/config.yaml` (pure): rendered from the spec, every value YAML-escaped.

use std::collections::BTreeMap;

use serde_yaml::{Mapping, Value};

/// RKE2's registration (supervisor) port.
pub const REGISTRATION_PORT: u16 = 9345;

/// What goes into one node's config.yaml.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NodeConfig {
    /// Cluster join secret.
    pub token: String,
    /// Registration address of an existing server; `None` for the first server.
    pub server: Option<String>,
    /// Whether the node is a server (servers carry `tls-san` and `cni`).
    pub is_server: bool,
    /// Extra subject alternative names of the API certificate.
    pub tls_san: Vec<String>,
    /// Kubernetes node name.
    pub node_name: String,
    /// Node labels.
    pub labels: BTreeMap<String, String>,
    /// Taints as `key[=value]:Effect`.
    pub taints: Vec<String>,
    /// CNI plugin name.
    pub cni: String,
    /// Extra keys, passed through unless mk8 manages them.
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// Keys mk8 writes itself; pass-through keys with these names are ignored.
pub const MANAGED_KEYS: &[&str] = &[
    "token",
    "server",
    "tls-san",
    "node-name",
    "node-label",
    "node-taint",
    "cni",
];

/// Render config.yaml. Serialisation through serde_yaml quotes anything that needs it.
pub fn render(config: &NodeConfig) -> String {
    let mut map = Mapping::new();
    let s = |v: &str| Value::String(v.to_string());
    let list = |items: Vec<String>| Value::Sequence(items.into_iter().map(Value::String).collect());
    map.insert(s("token"), s(&config.token));
    if let Some(server) = &config.server {
        map.insert(
            s("server"),
            s(&format!(
                "https://{}",
                join_host_port(server, REGISTRATION_PORT)
            )),
        );
    }
    if config.is_server && !config.tls_san.is_empty() {
        map.insert(s("tls-san"), list(config.tls_san.clone()));
    }
    map.insert(s("node-name"), s(&config.node_name));
    if !config.labels.is_empty() {
        let labels = config
            .labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        map.insert(s("node-label"), list(labels));
    }
    if !config.taints.is_empty() {
        map.insert(s("node-taint"), list(config.taints.clone()));
    }
    if config.is_server {
        map.insert(s("cni"), s(&config.cni));
    }
    for (key, value) in &config.extra {
        if MANAGED_KEYS.contains(&key.as_str()) {
            continue;
        }
        if let Ok(value) = serde_yaml::to_value(value) {
            map.insert(s(key), value);
        }
    }
    serde_yaml::to_string(&Value::Mapping(map)).unwrap_or_default()
}

/// `host:port`, bracketing IPv6 literals.
pub fn join_host_port(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> NodeConfig {
        NodeConfig {
            token: "s3cret".into(),
            node_name: "srv-1".into(),
            cni: "canal".into(),
            is_server: true,
            ..Default::default()
        }
    }

    #[test]
    fn the_first_server_has_no_server_line() {
        let mut c = base();
        c.tls_san = vec!["api.example".into()];
        assert_eq!(
            render(&c),
            "token: s3cret\ntls-san:\n- api.example\nnode-name: srv-1\ncni: canal\n"
        );
    }

    #[test]
    fn joiners_point_at_the_registration_address() {
        let mut c = base();
        c.is_server = false;
        c.server = Some("10.0.0.10".into());
        c.labels = BTreeMap::from([("gpu".to_string(), "true".to_string())]);
        c.taints = vec!["gpu=true:NoSchedule".into()];
        let yaml = render(&c);
        assert_eq!(
            yaml,
            "token: s3cret\nserver: https://10.0.0.10:9345\nnode-name: srv-1\nnode-label:\n- gpu=true\nnode-taint:\n- gpu=true:NoSchedule\n"
        );
        c.server = Some("fd00::10".into());
        assert!(render(&c).contains("server: https://[fd00::10]:9345\n"));
    }

    #[test]
    fn hostile_values_stay_values() {
        let mut c = base();
        c.token = "a: b\n- c # d".into();
        c.node_name = "x\"; touch /tmp/pwned".into();
        c.labels = BTreeMap::from([("k".to_string(), "'quoted' {flow}".to_string())]);
        let yaml = render(&c);
        let parsed: serde_yaml::Value = serde_yaml::from_str(&yaml).unwrap();
        assert_eq!(parsed["token"].as_str(), Some("a: b\n- c # d"));
        assert_eq!(parsed["node-name"].as_str(), Some("x\"; touch /tmp/pwned"));
        assert_eq!(parsed["node-label"][0].as_str(), Some("k='quoted' {flow}"));
        assert_eq!(parsed.as_mapping().unwrap().len(), 4);
    }

    #[test]
    fn pass_through_keys_are_kept_but_cannot_override_managed_ones() {
        let mut c = base();
        c.extra = serde_json::from_str(
            r#"{"write-kubeconfig-mode": "0644", "cluster-cidr": "10.42.0.0/16", "token": "stolen", "disable": ["rke2-ingress-nginx"]}"#,
        )
        .unwrap();
        let parsed: serde_yaml::Value = serde_yaml::from_str(&render(&c)).unwrap();
        assert_eq!(parsed["token"].as_str(), Some("s3cret"));
        assert_eq!(parsed["write-kubeconfig-mode"].as_str(), Some("0644"));
        assert_eq!(parsed["cluster-cidr"].as_str(), Some("10.42.0.0/16"));
        assert_eq!(parsed["disable"][0].as_str(), Some("rke2-ingress-nginx"));
    }
}
