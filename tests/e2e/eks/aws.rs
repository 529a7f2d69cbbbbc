//! Real AWS-protocol peers for the EKS tests: `moto_server` on a free port, and a small proxy in
//! front of it that records every call and injects throttling, 5xx and status rewrites.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};

/// Region every test uses.
pub const REGION: &str = "us-east-1";

/// A `moto_server` child process, killed on drop.
pub struct Moto {
    child: tokio::process::Child,
    pub addr: SocketAddr,
}

impl Moto {
    /// Start moto on a free port and wait until it answers.
    pub async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let child = tokio::process::Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            // AWS-managed IAM policies (the EKS node policies) exist only when loaded.
            .env("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("moto_server runs (pip install \"moto[server]\")");
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let started = Instant::now();
        while TcpStream::connect(addr).await.is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "moto_server did not listen on {addr} within 30s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Self { child, addr }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// Rewrite the `status` (and health) of DescribeCluster/DescribeNodegroup answers for a path.
#[derive(Clone, Debug)]
pub struct Rewrite {
    /// Exact request path, such as `/clusters/prod`.
    pub path: String,
    /// Status to report instead of moto's.
    pub status: String,
    /// A health issue `(code, message)` to report.
    pub issue: Option<(String, String)>,
    /// How many answers to rewrite.
    pub times: u32,
}

/// Faults and records shared between a test and its proxy.
#[derive(Default)]
pub struct Faults {
    /// The next N EKS calls answer 400 ThrottlingException.
    pub throttle: AtomicU32,
    /// The next N EKS calls answer 503.
    pub unavailable: AtomicU32,
    rewrites: Mutex<VecDeque<Rewrite>>,
    /// Version updates moto does not implement, played here: path → (version, UPDATING answers left).
    versions: Mutex<std::collections::HashMap<String, (String, u32)>>,
    log: Mutex<Vec<String>>,
}

impl Faults {
    /// Add a status rewrite.
    pub fn rewrite(&self, rewrite: Rewrite) {
        self.rewrites.lock().unwrap().push_back(rewrite);
    }

    /// Every call so far as `METHOD /path` (STS and IAM calls as `POST / Action=<name>`), with
    /// the answer's status code.
    pub fn calls(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// Calls whose line starts with `prefix`.
    pub fn count(&self, prefix: &str) -> usize {
        self.calls()
            .iter()
            .filter(|c| c.starts_with(prefix))
            .count()
    }
}

/// The fault-injecting proxy in front of moto.
pub struct Proxy {
    pub addr: SocketAddr,
    pub faults: Arc<Faults>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Proxy {
    /// Listen on a free port, forwarding to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("proxy binds");
        let addr = listener.local_addr().unwrap();
        let faults = Arc::new(Faults::default());
        let shared = faults.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let faults = shared.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let faults = faults.clone();
                        async move { handle(req, upstream, &faults).await }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self { addr, faults, task }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

fn answer(status: u16, error_type: &str, message: &str) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .header("x-amzn-errortype", error_type)
        .body(Full::new(Bytes::from(
            serde_json::json!({"message": message}).to_string(),
        )))
        .unwrap()
}

fn take(counter: &AtomicU32) -> bool {
    counter
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
}

async fn handle(
    req: Request<Incoming>,
    upstream: SocketAddr,
    faults: &Faults,
) -> Result<Response<Full<Bytes>>, hyper::Error> {
    let (parts, body) = req.into_parts();
    let body = body.collect().await?.to_bytes();
    let path = parts.uri.path().to_string();
    let mut line = format!("{} {}", parts.method, path);
    if let Some(action) = url::form_urlencoded::parse(&body)
        .find(|(k, _)| k == "Action")
        .map(|(_, v)| v.to_string())
    {
        line = format!("{line} Action={action}");
    }
    let eks = path.starts_with("/clusters");
    if parts.method == hyper::Method::POST
        && let Some(response) = emulate_version_update(faults, &path, &body)
    {
        faults.log.lock().unwrap().push(format!("{line} -> 200"));
        return Ok(response);
    }
    let injected = if eks && take(&faults.throttle) {
        Some(answer(400, "ThrottlingException", "Rate exceeded"))
    } else if eks && take(&faults.unavailable) {
        Some(answer(
            503,
            "ServiceUnavailableException",
            "Service unavailable",
        ))
    } else {
        None
    };
    if let Some(response) = injected {
        faults
            .log
            .lock()
            .unwrap()
            .push(format!("{line} -> {}", response.status().as_u16()));
        return Ok(response);
    }
    let stream = TcpStream::connect(upstream).await.expect("moto reachable");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let mut forward = Request::builder().method(parts.method.clone()).uri(
        parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/"),
    );
    for (name, value) in &parts.headers {
        forward = forward.header(name, value);
    }
    let response = sender
        .send_request(forward.body(Full::new(body)).unwrap())
        .await?;
    let (mut head, body) = response.into_parts();
    let mut body = body.collect().await?.to_bytes();
    if parts.method == hyper::Method::GET {
        body = rewrite(faults, &path, body);
        head.headers.remove(hyper::header::CONTENT_LENGTH);
    }
    faults
        .log
        .lock()
        .unwrap()
        .push(format!("{line} -> {}", head.status.as_u16()));
    Ok(Response::from_parts(head, Full::new(body)))
}

/// UpdateClusterVersion (`POST /clusters/<c>/updates`) and UpdateNodegroupVersion
/// (`POST /clusters/<c>/node-groups/<n>/update-version`), which moto lacks: remember the version
/// and report UPDATING for a few DescribeCluster/DescribeNodegroup answers.
fn emulate_version_update(
    faults: &Faults,
    path: &str,
    body: &[u8],
) -> Option<Response<Full<Bytes>>> {
    if let Some(response) = emulate_access_entries(path, body) {
        return Some(response);
    }
    let target = if let Some(cluster) = path.strip_suffix("/updates") {
        (cluster.matches('/').count() == 2).then(|| cluster.to_string())?
    } else {
        path.strip_suffix("/update-version")?.to_string()
    };
    let version = serde_json::from_slice::<serde_json::Value>(body).ok()?["version"]
        .as_str()?
        .to_string();
    faults
        .versions
        .lock()
        .unwrap()
        .insert(target, (version.clone(), 2));
    let update = serde_json::json!({"update": {
        "id": "00000000-0000-0000-0000-000000000001", "status": "InProgress", "type": "VersionUpdate",
        "params": [{"type": "Version", "value": version}], "errors": [],
    }});
    Some(
        Response::builder()
            .status(200)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(update.to_string())))
            .unwrap(),
    )
}

/// CreateAccessEntry (`POST /clusters/<c>/access-entries`) and AssociateAccessPolicy
/// (`POST /clusters/<c>/access-entries/<principal>/access-policies`), which moto lacks.
fn emulate_access_entries(path: &str, body: &[u8]) -> Option<Response<Full<Bytes>>> {
    let request = serde_json::from_slice::<serde_json::Value>(body).ok()?;
    let answer = if path.ends_with("/access-entries") {
        serde_json::json!({"accessEntry": {"principalArn": request["principalArn"], "type": "STANDARD"}})
    } else if path.ends_with("/access-policies") && path.contains("/access-entries/") {
        serde_json::json!({"associatedAccessPolicy": {"policyArn": request["policyArn"], "accessScope": request["accessScope"]}})
    } else {
        return None;
    };
    Some(
        Response::builder()
            .status(200)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(answer.to_string())))
            .unwrap(),
    )
}

fn rewrite(faults: &Faults, path: &str, body: Bytes) -> Bytes {
    let body = apply_version(faults, path, body);
    let mut rules = faults.rewrites.lock().unwrap();
    let Some(rule) = rules.iter_mut().find(|r| r.path == path && r.times > 0) else {
        return body;
    };
    let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return body;
    };
    let key = if value.get("cluster").is_some() {
        "cluster"
    } else if value.get("nodegroup").is_some() {
        "nodegroup"
    } else {
        return body;
    };
    rule.times -= 1;
    value[key]["status"] = rule.status.clone().into();
    if let Some((code, message)) = &rule.issue {
        value[key]["health"] = serde_json::json!({"issues": [{"code": code, "message": message}]});
    }
    Bytes::from(value.to_string())
}

fn apply_version(faults: &Faults, path: &str, body: Bytes) -> Bytes {
    let mut versions = faults.versions.lock().unwrap();
    let Some((version, updating)) = versions.get_mut(path) else {
        return body;
    };
    let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return body;
    };
    for key in ["cluster", "nodegroup"] {
        if value.get(key).is_some() {
            value[key]["version"] = version.clone().into();
            if *updating > 0 {
                *updating -= 1;
                value[key]["status"] = "UPDATING".into();
            }
        }
    }
    Bytes::from(value.to_string())
}

/// An EKS client talking to moto directly (not through the proxy), for assertions.
pub fn eks_client(moto: &Moto) -> aws_sdk_eks::Client {
    let config = aws_sdk_eks::Config::builder()
        .behavior_version(aws_sdk_eks::config::BehaviorVersion::latest())
        .region(aws_sdk_eks::config::Region::new(REGION))
        .endpoint_url(moto.url())
        .credentials_provider(aws_credential_types::Credentials::new(
            "test", "test", None, None, "test",
        ))
        .http_client(aws_smithy_http_client::Builder::new().build_http())
        .build();
    aws_sdk_eks::Client::from_conf(config)
}

/// Names of the EKS clusters in moto.
pub async fn clusters(client: &aws_sdk_eks::Client) -> Vec<String> {
    let out = client.list_clusters().send().await.expect("ListClusters");
    let mut names = out.clusters().to_vec();
    names.sort();
    names
}

/// Names of the node groups of `cluster` in moto (empty when the cluster is gone).
pub async fn nodegroups(client: &aws_sdk_eks::Client, cluster: &str) -> Vec<String> {
    match client.list_nodegroups().cluster_name(cluster).send().await {
        Ok(out) => {
            let mut names = out.nodegroups().to_vec();
            names.sort();
            names
        }
        Err(_) => Vec::new(),
    }
}

/// An IAM client talking to moto directly, for assertions.
pub fn iam_client(moto: &Moto) -> aws_sdk_iam::Client {
    let config = aws_sdk_iam::Config::builder()
        .behavior_version(aws_sdk_iam::config::BehaviorVersion::latest())
        .region(aws_sdk_iam::config::Region::new(REGION))
        .endpoint_url(moto.url())
        .credentials_provider(aws_credential_types::Credentials::new(
            "test", "test", None, None, "test",
        ))
        .http_client(aws_smithy_http_client::Builder::new().build_http())
        .build();
    aws_sdk_iam::Client::from_conf(config)
}

/// An EC2 client talking to moto directly, for assertions.
pub fn ec2_client(moto: &Moto) -> aws_sdk_ec2::Client {
    let config = aws_sdk_ec2::Config::builder()
        .behavior_version(aws_sdk_ec2::config::BehaviorVersion::latest())
        .region(aws_sdk_ec2::config::Region::new(REGION))
        .endpoint_url(moto.url())
        .credentials_provider(aws_credential_types::Credentials::new(
            "test", "test", None, None, "test",
        ))
        .http_client(aws_smithy_http_client::Builder::new().build_http())
        .build();
    aws_sdk_ec2::Client::from_conf(config)
}
