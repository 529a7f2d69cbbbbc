//! `pods/log`, a stand-in of the development server: there is no kubelet, so a container's log is
//! the text of a pod annotation — `dev.mk8.io/log` for the only container, or
//! `dev.mk8.io/log.<container>` — one line per `\n`. `tailLines` and `limitBytes` are honoured,
//! `timestamps`, `previous` and `sinceSeconds` are accepted and ignored. `follow=true` streams the
//! current lines, then every line appended to the annotation later, until the pod is deleted, the
//! server stops or the client hangs up.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper::Response;
use hyper::body::Frame;
use serde_json::Value;
use tokio::sync::{broadcast, mpsc};

use super::http::{ApiRequest, Body, full};
use super::state::{State, Target};
use super::status::{ApiError, ApiResult};

/// The annotation holding the log of a single-container pod; `<this>.<container>` names one
/// container's log.
pub const LOG_ANNOTATION: &str = "dev.mk8.io/log";

/// How often a follower looks at the pod when no change event arrives (a backstop for events
/// lost to a lagging subscription).
const FOLLOW_POLL: Duration = Duration::from_secs(1);

/// GET `pods/NAME/log`.
pub fn logs(state: &Arc<State>, target: &Target, req: &ApiRequest) -> ApiResult<Response<Body>> {
    let name = target.name.clone().unwrap_or_default();
    let gr = target.gr();
    let key = target.key();
    // Subscribe before reading, so a line appended in between is not missed.
    let changes = state
        .store
        .subscribe_from(&gr, state.store.current_rv())
        .ok();
    let pod = state
        .store
        .get(&gr, &key)
        .ok_or_else(|| ApiError::NotFound(target.subject(&name)))?;
    let container = container_of(&pod, &name, req.query.get("container"))?;
    let tail = number(req, "tailLines")?;
    let limit = number(req, "limitBytes")?.filter(|l| *l > 0);
    let lines = log_lines(&pod, &container);
    let start = tail.map_or(0, |n| lines.len().saturating_sub(n));
    let mut text = join(&lines[start..]);
    if let Some(limit) = limit {
        text.truncate(limit.min(text.len()));
    }
    if !req.query.flag("follow") {
        return Ok(text_response(full(text)));
    }
    let Some(changes) = changes else {
        return Ok(text_response(full(text)));
    };
    let follower = Follower {
        state: state.clone(),
        target: target.clone(),
        container,
        uid: pod.pointer("/metadata/uid").cloned(),
        sent: lines.len(),
    };
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    tokio::spawn(follower.run(Bytes::from(text), changes.rx, tx));
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<_, std::io::Error>(Frame::data(b)), rx))
    });
    Ok(text_response(BodyExt::boxed(StreamBody::new(stream))))
}

/// The container a request reads: the named one, or the only one; errors read like the kubelet's.
fn container_of(pod: &Value, pod_name: &str, requested: Option<&str>) -> ApiResult<String> {
    let names: Vec<&str> = ["/spec/containers", "/spec/initContainers"]
        .iter()
        .filter_map(|p| pod.pointer(p).and_then(Value::as_array))
        .flatten()
        .filter_map(|c| c["name"].as_str())
        .collect();
    let main: Vec<&str> = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| c["name"].as_str())
        .collect();
    match requested.filter(|c| !c.is_empty()) {
        Some(c) if names.contains(&c) => Ok(c.to_string()),
        Some(c) => Err(ApiError::BadRequest(format!(
            "container {c} is not valid for pod {pod_name}"
        ))),
        None if main.len() > 1 => Err(ApiError::BadRequest(format!(
            "a container name must be specified for pod {pod_name}, choose one of: [{}]",
            main.join(" ")
        ))),
        None => Ok(main.first().copied().unwrap_or_default().to_string()),
    }
}

/// The log lines of one container: its own annotation, else (a single-container pod) the
/// pod's.
fn log_lines(pod: &Value, container: &str) -> Vec<String> {
    let annotations = pod.pointer("/metadata/annotations");
    let own = annotations.and_then(|a| a.get(format!("{LOG_ANNOTATION}.{container}")));
    let single = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .is_none_or(|c| c.len() <= 1);
    let text = own
        .or_else(|| {
            single
                .then(|| annotations.and_then(|a| a.get(LOG_ANNOTATION)))
                .flatten()
        })
        .and_then(Value::as_str)
        .unwrap_or_default();
    text.lines().map(str::to_string).collect()
}

fn join(lines: &[String]) -> String {
    lines.iter().map(|l| format!("{l}\n")).collect()
}

fn number(req: &ApiRequest, key: &str) -> ApiResult<Option<usize>> {
    match req.query.get(key).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => v
            .parse::<i64>()
            .map(|n| Some(n.max(0) as usize))
            .map_err(|_| ApiError::BadRequest(format!("invalid {key} {v:?}"))),
    }
}

fn text_response(body: Body) -> Response<Body> {
    Response::builder()
        .status(200)
        .header("content-type", "text/plain")
        .body(body)
        .unwrap_or_else(|_| Response::new(full(Bytes::new())))
}

/// One `follow=true` stream.
struct Follower {
    state: Arc<State>,
    target: Target,
    container: String,
    uid: Option<Value>,
    /// Lines of the annotation already streamed.
    sent: usize,
}

impl Follower {
    async fn run(
        mut self,
        first: Bytes,
        mut changes: broadcast::Receiver<Arc<super::store::StoredEvent>>,
        tx: mpsc::Sender<Bytes>,
    ) {
        if !first.is_empty() && tx.send(first).await.is_err() {
            return;
        }
        let epoch = self.state.store.watch_epoch();
        let (namespace, name) = self.target.key();
        loop {
            tokio::select! {
                received = changes.recv() => match received {
                    Ok(event) => {
                        let meta = &event.object["metadata"];
                        if meta["name"] != name.as_str() || meta["namespace"] != namespace.as_str() {
                            continue;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                _ = tokio::time::sleep(FOLLOW_POLL) => {}
                _ = epoch.cancelled() => return,
                _ = tx.closed() => return,
            }
            let Some(pod) = self.state.store.get(&self.target.gr(), &self.target.key()) else {
                return;
            };
            if pod.pointer("/metadata/uid").cloned() != self.uid {
                return;
            }
            let lines = log_lines(&pod, &self.container);
            if lines.len() > self.sent {
                let text = join(&lines[self.sent..]);
                if tx.send(Bytes::from(text)).await.is_err() {
                    return;
                }
            }
            self.sent = lines.len();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(containers: &[&str], annotations: Value) -> Value {
        let containers: Vec<Value> = containers.iter().map(|c| json!({"name": c})).collect();
        json!({"metadata": {"name": "p", "annotations": annotations}, "spec": {"containers": containers}})
    }

    #[test]
    fn a_single_container_reads_the_pod_annotation_and_others_their_own() {
        let single = pod(&["app"], json!({LOG_ANNOTATION: "one\ntwo\n"}));
        assert_eq!(container_of(&single, "p", None).unwrap(), "app");
        assert_eq!(log_lines(&single, "app"), ["one", "two"]);
        let multi = pod(
            &["a", "b"],
            json!({LOG_ANNOTATION: "shared", "dev.mk8.io/log.b": "mine"}),
        );
        assert_eq!(log_lines(&multi, "b"), ["mine"]);
        assert!(log_lines(&multi, "a").is_empty());
    }

    #[test]
    fn containers_are_checked_like_the_kubelet_does() {
        let multi = pod(&["a", "b"], json!({}));
        assert_eq!(
            container_of(&multi, "p", None).unwrap_err().to_string(),
            "a container name must be specified for pod p, choose one of: [a b]"
        );
        assert_eq!(
            container_of(&multi, "p", Some("c"))
                .unwrap_err()
                .to_string(),
            "container c is not valid for pod p"
        );
        assert_eq!(container_of(&multi, "p", Some("b")).unwrap(), "b");
    }
}
