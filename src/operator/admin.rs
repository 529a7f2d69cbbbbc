//! The admin HTTP server: `/metrics`, `/livez`, `/readyz`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::registry::Registry;

/// Readiness as the admin server reports it.
#[derive(Debug, Default)]
pub struct Health {
    leadership_known: AtomicBool,
    leader: AtomicBool,
    synced: AtomicBool,
}

impl Health {
    /// Record the outcome of the latest leader election round.
    pub fn set_leader(&self, leader: bool) {
        self.leader.store(leader, Ordering::SeqCst);
        self.leadership_known.store(true, Ordering::SeqCst);
    }

    /// Record that every controller cache has synced.
    pub fn set_synced(&self) {
        self.synced.store(true, Ordering::SeqCst);
    }

    /// Ready once leadership is known and, as leader, once the caches have synced; a standby
    /// replica is ready so that a rollout can proceed.
    pub fn ready(&self) -> Result<(), &'static str> {
        if !self.leadership_known.load(Ordering::SeqCst) {
            return Err("leadership not known yet");
        }
        if self.leader.load(Ordering::SeqCst) && !self.synced.load(Ordering::SeqCst) {
            return Err("caches not synced yet");
        }
        Ok(())
    }
}

struct AdminState {
    registry: Registry,
    health: Arc<Health>,
}

/// Bind the admin server; returns the bound address and the serving future.
pub async fn bind(
    addr: SocketAddr,
    registry: Registry,
    health: Arc<Health>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<(
    SocketAddr,
    impl std::future::Future<Output = std::io::Result<()>>,
)> {
    let state = Arc::new(AdminState { registry, health });
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/livez", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    Ok((local, async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
    }))
}

async fn metrics(State(state): State<Arc<AdminState>>) -> impl IntoResponse {
    let mut body = String::new();
    match prometheus_client::encoding::text::encode(&mut body, &state.registry) {
        Ok(()) => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            body,
        ),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "text/plain")],
            e.to_string(),
        ),
    }
}

async fn readyz(State(state): State<Arc<AdminState>>) -> impl IntoResponse {
    match state.health.ready() {
        Ok(()) => (StatusCode::OK, "ok".to_string()),
        Err(why) => (StatusCode::SERVICE_UNAVAILABLE, why.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_starting_replica_is_not_ready() {
        assert!(Health::default().ready().is_err());
    }

    #[test]
    fn a_leader_is_ready_only_after_sync() {
        let h = Health::default();
        h.set_leader(true);
        assert_eq!(h.ready(), Err("caches not synced yet"));
        h.set_synced();
        assert_eq!(h.ready(), Ok(()));
    }

    #[test]
    fn a_standby_is_ready_once_leadership_is_known() {
        let h = Health::default();
        h.set_leader(false);
        assert_eq!(h.ready(), Ok(()));
    }
}
