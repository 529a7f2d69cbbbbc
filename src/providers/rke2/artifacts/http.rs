//! A small HTTP(S) GET client (I/O) for release mirrors: streams the body, follows redirects.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use url::Url;

use super::ArtifactError;

/// Most redirects followed (release downloads redirect once or twice).
const MAX_REDIRECTS: usize = 5;

/// GET `url`, following redirects; returns the response of the final hop when it is 200.
pub async fn get(url: &str) -> Result<Response<Incoming>, ArtifactError> {
    let mut current = Url::parse(url).map_err(|e| fetch_error(url, e))?;
    for _ in 0..=MAX_REDIRECTS {
        let response = get_once(&current).await?;
        let status = response.status();
        if status.is_redirection()
            && let Some(location) = response.headers().get(hyper::header::LOCATION)
        {
            let location = location
                .to_str()
                .map_err(|e| fetch_error(current.as_str(), e))?;
            current = current
                .join(location)
                .map_err(|e| fetch_error(current.as_str(), e))?;
            continue;
        }
        if status != StatusCode::OK {
            return Err(ArtifactError::Http {
                url: current.to_string(),
                status: status.as_u16(),
            });
        }
        return Ok(response);
    }
    Err(fetch_error(url, "too many redirects"))
}

/// Read the whole body of a response into memory (for the small checksum file).
pub async fn text(url: &str) -> Result<String, ArtifactError> {
    let body = get(url)
        .await?
        .into_body()
        .collect()
        .await
        .map_err(|e| fetch_error(url, e))?
        .to_bytes();
    String::from_utf8(body.to_vec()).map_err(|e| fetch_error(url, e))
}

async fn get_once(url: &Url) -> Result<Response<Incoming>, ArtifactError> {
    let host = url
        .host_str()
        .ok_or_else(|| fetch_error(url.as_str(), "no host in URL"))?
        .to_string();
    let port = url
        .port_or_known_default()
        .ok_or_else(|| fetch_error(url.as_str(), "unknown port"))?;
    let stream = TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|e| fetch_error(url.as_str(), e))?;
    let mut path = url.path().to_string();
    if let Some(q) = url.query() {
        path.push('?');
        path.push_str(q);
    }
    let request = Request::get(path)
        .header(hyper::header::HOST, url.authority())
        .header(hyper::header::USER_AGENT, "mk8")
        .body(Empty::<Bytes>::new())
        .map_err(|e| fetch_error(url.as_str(), e))?;
    match url.scheme() {
        "http" => send(TokioIo::new(stream), request, url).await,
        "https" => {
            let tls = tls_connector();
            let name = rustls::pki_types::ServerName::try_from(host.clone())
                .map_err(|e| fetch_error(url.as_str(), e))?;
            let stream = tls
                .connect(name, stream)
                .await
                .map_err(|e| fetch_error(url.as_str(), e))?;
            send(TokioIo::new(stream), request, url).await
        }
        other => Err(fetch_error(
            url.as_str(),
            format!("unsupported scheme {other}: use http, https or a directory"),
        )),
    }
}

async fn send<T>(
    io: TokioIo<T>,
    request: Request<Empty<Bytes>>,
    url: &Url,
) -> Result<Response<Incoming>, ArtifactError>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| fetch_error(url.as_str(), e))?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    sender
        .send_request(request)
        .await
        .map_err(|e| fetch_error(url.as_str(), e))
}

fn tls_connector() -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("ring supports the default TLS versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

fn fetch_error(url: &str, e: impl std::fmt::Display) -> ArtifactError {
    ArtifactError::Fetch {
        url: url.to_string(),
        reason: e.to_string(),
    }
}
