//! The network side: TCP accept loop, optional TLS with ALPN (HTTP/1.1 and HTTP/2), bearer-token
//! authentication, injected faults, body size limit, and turning handler panics into 500s.

use std::convert::Infallible;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use super::handlers;
use super::http::{ApiRequest, Body, MAX_BODY, Query, error_response};
use super::state::State;
use super::status::ApiError;

/// Accept connections until `cancel` fires.
pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    state: Arc<State>,
    address: String,
    cancel: CancellationToken,
) {
    let address: Arc<str> = address.into();
    loop {
        let (tcp, _) = tokio::select! {
            _ = cancel.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    tracing::debug!(error = %e, "development API server: accept failed");
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let (state, address, tls, cancel) =
            (state.clone(), address.clone(), tls.clone(), cancel.clone());
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let (state, address) = (state.clone(), address.clone());
                async move { Ok::<_, Infallible>(respond(state, &address, req).await) }
            });
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            let served = async {
                match tls {
                    Some(acceptor) => match acceptor.accept(tcp).await {
                        Ok(stream) => {
                            builder
                                .serve_connection(TokioIo::new(stream), service)
                                .await
                        }
                        Err(_) => Ok(()),
                    },
                    None => builder.serve_connection(TokioIo::new(tcp), service).await,
                }
            };
            tokio::select! {
                _ = served => {}
                _ = cancel.cancelled() => {}
            }
        });
    }
}

fn authorized(req: &Request<Incoming>, token: Option<&str>) -> bool {
    let Some(token) = token else { return true };
    let header = req
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    header
        .strip_prefix("Bearer ")
        .is_some_and(|t| t.trim() == token)
}

async fn respond(state: Arc<State>, address: &str, req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path().to_string();
    state
        .requests
        .record(req.method(), &path, &Query::parse(req.uri().query()));
    // Injected latency comes first, so even a refused request is slow, as over a slow link.
    if let Some(latency) = state.faults.delay(&path) {
        tokio::time::sleep(latency).await;
    }
    if !handlers::is_public(&path) && !authorized(&req, state.token.as_deref()) {
        return error_response(&ApiError::Unauthorized);
    }
    if let Some(denied) = state
        .faults
        .denial(req.method(), &path, &Query::parse(req.uri().query()))
    {
        return error_response(&denied);
    }
    let (parts, body) = req.into_parts();
    let body = match read_body(body).await {
        Ok(bytes) => bytes,
        Err(e) => return error_response(&e),
    };
    let mut method = parts.method;
    if method == hyper::Method::HEAD {
        method = hyper::Method::GET;
    }
    let api_request = ApiRequest {
        method,
        path,
        query: Query::parse(parts.uri.query()),
        headers: parts.headers,
        body,
    };
    let response = guarded(&api_request.path, || {
        handlers::handle(&state, &api_request, address)
    });
    tracing::debug!(method = %api_request.method, path = %api_request.path, status = response.status().as_u16(), "development API server request");
    response
}

/// Run a handler, answering its error as a `Status` and a panic as a 500, so one bad request can
/// never take the server down.
fn guarded(
    path: &str,
    handler: impl FnOnce() -> Result<Response<Body>, ApiError>,
) -> Response<Body> {
    match std::panic::catch_unwind(AssertUnwindSafe(handler)) {
        Ok(Ok(response)) => response,
        Ok(Err(e)) => error_response(&e),
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            tracing::error!(panic = %what, %path, "development API server: handler panicked");
            error_response(&ApiError::Internal(format!("handler panicked: {what}")))
        }
    }
}

/// Largest body read (and discarded) before answering 413, so the client sees the answer instead of
/// a reset connection.
const DRAIN_LIMIT: usize = 64 * 1024 * 1024;

async fn read_body(mut body: Incoming) -> Result<Bytes, ApiError> {
    let mut buf = BytesMut::new();
    let mut total = 0usize;
    while let Some(frame) = body.frame().await {
        let frame =
            frame.map_err(|e| ApiError::BadRequest(format!("reading request body: {e}")))?;
        if let Ok(data) = frame.into_data() {
            total += data.len();
            if total > DRAIN_LIMIT {
                break;
            }
            if total <= MAX_BODY {
                buf.extend_from_slice(&data);
            }
        }
    }
    if total > MAX_BODY {
        Err(ApiError::TooLarge)
    } else {
        Ok(buf.freeze())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panicking_handler_becomes_a_500_status() {
        let response = guarded("/boom", || panic!("boom"));
        assert_eq!(response.status().as_u16(), 500);
        let response = guarded("/missing", || Err(ApiError::UnknownPath));
        assert_eq!(response.status().as_u16(), 404);
    }
}
