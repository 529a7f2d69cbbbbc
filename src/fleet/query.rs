//! One read on many clusters at once: a bounded number in flight, a deadline per cluster (client
//! creation, credential plugin, discovery and the read together), each cluster's outcome
//! classified (`Ok`, `Failed`, `Timeout`, `Forbidden`, `Unauthorized`, `Unreachable`), results in
//! a stable order whatever order the clusters answered in.

use std::future::Future;
use std::time::{Duration, Instant};

use futures::StreamExt;
use kube::Client;

use super::access::AccessError;

/// A cluster to query and how to reach it.
pub struct Target {
    /// `namespace/name` of its profile.
    pub key: String,
    /// Its name (the CLUSTER column).
    pub name: String,
    /// Client configuration, or why there is none.
    pub config: Result<kube::Config, AccessError>,
    /// How long it took to answer last time, when known: the slowest start first.
    pub expected: Option<Duration>,
}

impl Target {
    /// The target for a ClusterProfile, reached with `config`.
    pub fn of(profile: &serde_json::Value, config: Result<kube::Config, AccessError>) -> Self {
        Target {
            key: super::access::key(profile),
            name: profile["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            config,
            expected: None,
        }
    }
}

/// How a cluster answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum State {
    /// It answered.
    Ok,
    /// Something else went wrong (no access provider, unknown type, a server error).
    Failed,
    /// No answer within the deadline.
    Timeout,
    /// Authenticated but not allowed (403).
    Forbidden,
    /// Credentials refused (401).
    Unauthorized,
    /// No connection (refused, DNS, TLS).
    Unreachable,
}

impl State {
    /// The name written in statuses and printed.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Ok => "Ok",
            State::Failed => "Failed",
            State::Timeout => "Timeout",
            State::Forbidden => "Forbidden",
            State::Unauthorized => "Unauthorized",
            State::Unreachable => "Unreachable",
        }
    }
}

/// A failed query on one cluster.
#[derive(Debug)]
pub struct QueryError {
    /// How it failed.
    pub state: State,
    /// What happened, for people.
    pub message: String,
}

impl QueryError {
    /// A failure of kind `Failed`.
    pub fn failed(message: impl Into<String>) -> Self {
        QueryError {
            state: State::Failed,
            message: message.into(),
        }
    }
}

impl From<kube::Error> for QueryError {
    fn from(e: kube::Error) -> Self {
        classify(&e)
    }
}

/// Classify a client error.
pub fn classify(e: &kube::Error) -> QueryError {
    match e {
        kube::Error::Api(status) => {
            let state = match status.code {
                401 => State::Unauthorized,
                403 => State::Forbidden,
                _ => State::Failed,
            };
            let message = match (state, status.message.is_empty()) {
                (State::Unauthorized, _) => "Unauthorized".to_string(),
                (_, true) => format!("{} ({})", status.reason, status.code),
                (_, false) => status.message.clone(),
            };
            QueryError { state, message }
        }
        kube::Error::Auth(auth) => QueryError::failed(format!("credentials: {}", deepest(auth))),
        kube::Error::HyperError(_) | kube::Error::Service(_) | kube::Error::RustlsTls(_) => {
            QueryError {
                state: State::Unreachable,
                message: deepest(e),
            }
        }
        other => QueryError::failed(deepest(other)),
    }
}

/// The message of an error and its causes, outermost first, without repeats.
fn deepest(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}

/// The outcome on one cluster.
#[derive(Debug)]
pub struct Outcome<T> {
    /// `namespace/name` of its profile.
    pub key: String,
    /// Its name.
    pub name: String,
    /// How it answered.
    pub state: State,
    /// Time to the answer (or to the failure).
    pub latency: Duration,
    /// What went wrong.
    pub message: Option<String>,
    /// What it answered.
    pub value: Option<T>,
}

/// Limits of a fan-out.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Clusters queried at once.
    pub concurrency: usize,
    /// Deadline per cluster.
    pub timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            concurrency: 16,
            timeout: Duration::from_secs(10),
        }
    }
}

/// Human form of a duration (`10s`, `1.5s`, `250ms`).
pub fn human(d: Duration) -> String {
    if d.as_millis() < 1000 {
        format!("{}ms", d.as_millis())
    } else if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

/// Run `query` on every target, at most `limits.concurrency` at a time, each within
/// `limits.timeout`; outcomes in the targets' order.
///
/// The targets start slowest first by their [`Target::expected`] time (those never timed count
/// as slowest): when more clusters are selected than run at once, a cluster known to be slow
/// does not wait for a free slot and then stretch the end of the run.
pub async fn fan_out<T, F, Fut>(targets: Vec<Target>, limits: Limits, query: F) -> Vec<Outcome<T>>
where
    F: Fn(Client, String) -> Fut + Clone,
    Fut: Future<Output = Result<T, QueryError>>,
{
    let concurrency = limits.concurrency.max(1);
    let mut order: Vec<(usize, Target)> = targets.into_iter().enumerate().collect();
    order.sort_by_key(|(_, t)| std::cmp::Reverse(t.expected.unwrap_or(Duration::MAX)));
    let runs = order.into_iter().map(|(i, target)| {
        let query = query.clone();
        async move {
            let started = Instant::now();
            let run = async {
                let config = target.config.map_err(|e| QueryError::failed(e.message))?;
                let client = client(config).await?;
                query(client, target.name.clone()).await
            };
            let result = tokio::time::timeout(limits.timeout, run).await;
            let latency = started.elapsed();
            let (state, message, value) = match result {
                Ok(Ok(value)) => (State::Ok, None, Some(value)),
                Ok(Err(e)) => (e.state, Some(e.message), None),
                Err(_) => (
                    State::Timeout,
                    Some(format!("timeout after {}", human(limits.timeout))),
                    None,
                ),
            };
            let outcome = Outcome {
                key: target.key,
                name: target.name,
                state,
                latency,
                message,
                value,
            };
            (i, outcome)
        }
    });
    let mut done: Vec<(usize, Outcome<T>)> = futures::stream::iter(runs)
        .buffer_unordered(concurrency)
        .collect()
        .await;
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, o)| o).collect()
}

/// A client for `config`; its exec credential plugin runs here once, as a child process the
/// caller's deadline can kill.
pub async fn client(config: kube::Config) -> Result<Client, QueryError> {
    let config = super::access::run_exec(config)
        .await
        .map_err(|e| QueryError::failed(format!("credentials: {e}")))?;
    Client::try_from(config).map_err(|e| classify(&e))
}

/// `2 of 50 clusters failed: east: timeout after 10s; west: Unauthorized`, or None.
pub fn failure_summary<T>(outcomes: &[Outcome<T>]) -> Option<String> {
    let failed: Vec<String> = outcomes
        .iter()
        .filter(|o| o.state != State::Ok)
        .map(|o| {
            format!(
                "{}: {}",
                o.name,
                o.message.as_deref().unwrap_or(o.state.as_str())
            )
        })
        .collect();
    if failed.is_empty() {
        return None;
    }
    let noun = if outcomes.len() == 1 {
        "cluster"
    } else {
        "clusters"
    };
    Some(format!(
        "{} of {} {noun} failed: {}",
        failed.len(),
        outcomes.len(),
        failed.join("; ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(name: &str, config: Result<kube::Config, AccessError>) -> Target {
        Target {
            key: format!("fleet/{name}"),
            name: name.into(),
            config,
            expected: None,
        }
    }

    fn unreachable_config() -> kube::Config {
        // Port 9 (discard) on loopback: nothing listens there in the test environment.
        kube::Config::new("http://127.0.0.1:9".parse().unwrap())
    }

    #[tokio::test]
    async fn outcomes_keep_the_targets_order_and_each_failure_is_classified() {
        let no_access = Err(AccessError {
            reason: "NoAccessProvider",
            message: "its ClusterProfile offers no access provider".into(),
        });
        let targets = vec![
            target("slow", Ok(unreachable_config())),
            target("none", no_access),
            target("down", Ok(unreachable_config())),
            target("fast", Ok(unreachable_config())),
        ];
        let limits = Limits {
            concurrency: 2,
            timeout: Duration::from_millis(300),
        };
        let outcomes = fan_out(targets, limits, |client, name| async move {
            match name.as_str() {
                "slow" => {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    Ok(0)
                }
                "fast" => Ok(7),
                _ => {
                    client.apiserver_version().await?;
                    Ok(1)
                }
            }
        })
        .await;
        let names: Vec<&str> = outcomes.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(names, ["slow", "none", "down", "fast"]);
        let states: Vec<State> = outcomes.iter().map(|o| o.state).collect();
        assert_eq!(
            states,
            [State::Timeout, State::Failed, State::Unreachable, State::Ok]
        );
        assert_eq!(outcomes[3].value, Some(7));
        assert!(outcomes[0].latency >= Duration::from_millis(300));
        assert!(
            outcomes[0].latency < Duration::from_secs(2),
            "the deadline cut it"
        );
        let summary = failure_summary(&outcomes).unwrap();
        assert!(
            summary.starts_with(
                "3 of 4 clusters failed: slow: timeout after 300ms; none: its ClusterProfile offers no access provider; down: "
            ),
            "{summary}"
        );
        assert!(failure_summary(&outcomes[3..]).is_none());
    }

    #[tokio::test]
    async fn the_slowest_last_time_start_first_and_outcomes_keep_the_targets_order() {
        let timed = |name: &str, ms: Option<u64>| Target {
            expected: ms.map(Duration::from_millis),
            ..target(name, Ok(unreachable_config()))
        };
        let targets = vec![
            timed("a", Some(20)),
            timed("b", Some(900)),
            timed("c", None),
            timed("d", Some(300)),
            timed("e", Some(20)),
        ];
        let started = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let limits = Limits {
            concurrency: 1,
            timeout: Duration::from_secs(5),
        };
        let log = started.clone();
        let outcomes = fan_out(targets, limits, move |_, name| {
            let log = log.clone();
            async move {
                log.lock().unwrap().push(name);
                Ok(())
            }
        })
        .await;
        // Never timed counts as slowest; equal times keep the targets' order.
        assert_eq!(*started.lock().unwrap(), ["c", "b", "d", "a", "e"]);
        let names: Vec<&str> = outcomes.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "c", "d", "e"]);
    }

    #[test]
    fn api_errors_are_classified_by_code() {
        let status = |code: u16, reason: &str, message: &str| {
            kube::Error::Api(Box::new(kube::core::Status {
                code,
                reason: reason.into(),
                message: message.into(),
                ..Default::default()
            }))
        };
        let forbidden = classify(&status(
            403,
            "Forbidden",
            "pods is forbidden: User \"x\" cannot list",
        ));
        assert_eq!(forbidden.state, State::Forbidden);
        assert!(forbidden.message.starts_with("pods is forbidden"));
        assert_eq!(
            classify(&status(401, "Unauthorized", "")).message,
            "Unauthorized"
        );
        assert_eq!(
            classify(&status(500, "InternalError", "")).state,
            State::Failed
        );
        assert_eq!(human(Duration::from_secs(10)), "10s");
        assert_eq!(human(Duration::from_millis(1500)), "1.5s");
    }
}
