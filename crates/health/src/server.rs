//! The `serve` HTTP server: `/`, `/metrics`, `/healthz`, `/api/status`.
//!
//! hyper's HTTP/1 server with a hand-written match on the path: four GET
//! routes do not need a router framework. Each request to [`serve`] passes
//! the `Host` check ([`HostPolicy`]), then the credentials check
//! ([`crate::auth`]), before its route; every answer carries the
//! browser-hygiene headers ([`crate::browser`]). [`serve_with`] (HTTP or
//! HTTPS), [`response`] and [`reject_non_get`] are the reusable parts;
//! [`serve_metrics`] serves just `/metrics` and `/healthz` (the scheduler's
//! endpoint and a migration's).

use crate::auth::{Endpoint, Verdict};
use crate::browser::{host_part, HostPolicy};
use crate::monitor::Monitor;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{
    HeaderValue, AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, HOST, WWW_AUTHENTICATE,
};
use hyper::{Method, Request, Response, StatusCode};
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;

/// A response of `status` with `body`, its `Content-Type`, and
/// `Cache-Control: no-store` (every answer is live state).
pub fn response(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// `405 Method Not Allowed` for anything but GET and HEAD, `None` for those.
pub fn reject_non_get(method: &Method) -> Option<Response<Full<Bytes>>> {
    if method == Method::GET || method == Method::HEAD {
        return None;
    }
    let mut r = response(
        StatusCode::METHOD_NOT_ALLOWED,
        "text/plain; charset=utf-8",
        "only GET\n",
    );
    r.headers_mut()
        .insert(hyper::header::ALLOW, HeaderValue::from_static("GET, HEAD"));
    Some(r)
}

/// What `serve` serves: the monitor, and which `Host` names it answers to.
pub struct Site {
    monitor: Arc<Monitor>,
    hosts: HostPolicy,
}

impl Site {
    /// The site of `monitor` listening on `listen` (its host name, if it is
    /// one, joins the configuration's `allowed_hosts`).
    pub fn new(monitor: Arc<Monitor>, listen: &str) -> Site {
        let hosts = HostPolicy::new(listen, &monitor.watchlist().allowed_hosts);
        Site { monitor, hosts }
    }
}

/// Answers one request from `peer`, with the browser-hygiene headers.
pub async fn handle<B>(
    site: Arc<Site>,
    peer: SocketAddr,
    req: Request<B>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let mut r = answer(&site, peer, &req).await;
    crate::browser::add_security_headers(r.headers_mut());
    Ok(r)
}

/// The method, then the `Host` header, then the credentials, then the route.
async fn answer<B>(site: &Site, peer: SocketAddr, req: &Request<B>) -> Response<Full<Bytes>> {
    if let Some(r) = reject_non_get(req.method()) {
        return r;
    }
    let text = "text/plain; charset=utf-8";
    let host = req.headers().get(HOST).map(|h| h.to_str().unwrap_or(""));
    if !site.hosts.allows(host) {
        tracing::info!("{peer}: refused Host {:?}", host.unwrap_or(""));
        return response(
            StatusCode::FORBIDDEN,
            text,
            format!(
                "this server does not answer to the host name {:?}; add it to allowed_hosts in the configuration\n",
                host_part(host.unwrap_or(""))
            ),
        );
    }
    let path = req.uri().path();
    let authorization = req.headers().get(AUTHORIZATION).map(|v| v.as_bytes());
    let auth = &site.monitor.watchlist().auth;
    match auth.check(Endpoint::of_path(path), authorization) {
        Verdict::Allowed => route(&site.monitor, path).await,
        Verdict::Missing => {
            tracing::debug!("{peer}: no credentials for {path:?}");
            unauthorized("credentials required")
        }
        Verdict::Wrong => {
            tracing::warn!("{peer}: wrong credentials for {path:?}");
            unauthorized("wrong credentials")
        }
    }
}

/// `401 Unauthorized`, offering Bearer and Basic (which makes a browser ask).
fn unauthorized(why: &str) -> Response<Full<Bytes>> {
    let mut r = response(
        StatusCode::UNAUTHORIZED,
        "text/plain; charset=utf-8",
        format!("{why}: send Authorization: Bearer <token>, or Basic credentials\n"),
    );
    for challenge in [
        "Bearer realm=\"pgharbor\"",
        "Basic realm=\"pgharbor\", charset=\"UTF-8\"",
    ] {
        r.headers_mut()
            .append(WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
    }
    r
}

/// The answer for `path` once the request may have it.
async fn route(monitor: &Monitor, path: &str) -> Response<Full<Bytes>> {
    match path {
        // The monitor itself is alive: it answers. Server health is in /api/status and pg_up.
        "/healthz" => response(StatusCode::OK, "text/plain; charset=utf-8", "ok\n"),
        "/metrics" => {
            let snap = monitor.snapshot().await;
            response(
                StatusCode::OK,
                crate::metrics::CONTENT_TYPE,
                crate::metrics::render(&snap),
            )
        }
        "/api/status" => {
            let snap = monitor.snapshot().await;
            match serde_json::to_vec_pretty(&*snap) {
                Ok(body) => response(StatusCode::OK, "application/json", body),
                Err(e) => response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "text/plain; charset=utf-8",
                    format!("cannot encode the status: {e}\n"),
                ),
            }
        }
        "/" | "/index.html" => {
            let snap = monitor.snapshot().await;
            response(
                StatusCode::OK,
                "text/html; charset=utf-8",
                crate::dashboard::render(&snap),
            )
        }
        _ => response(
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "not found; try /, /metrics, /healthz or /api/status\n",
        ),
    }
}

/// Serves `site` on `listener` — over TLS with `tls` — until `shutdown` completes.
pub async fn serve(
    site: Arc<Site>,
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    serve_with(listener, shutdown, tls, move |peer, req| {
        handle(site.clone(), peer, req)
    })
    .await
}

/// Serves `/metrics` (the text `render` returns at each request) and
/// `/healthz` on `listener` until `shutdown` completes.
pub async fn serve_metrics<R>(
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
    render: R,
) -> std::io::Result<()>
where
    R: Fn() -> String + Clone + Send + Sync + 'static,
{
    serve_with(
        listener,
        shutdown,
        None,
        move |_, req: Request<Incoming>| {
            let render = render.clone();
            async move {
                if let Some(r) = reject_non_get(req.method()) {
                    return Ok(r);
                }
                let text = "text/plain; charset=utf-8";
                Ok(match req.uri().path() {
                    "/metrics" => response(StatusCode::OK, crate::metrics::CONTENT_TYPE, render()),
                    "/healthz" => response(StatusCode::OK, text, "ok\n"),
                    _ => response(
                        StatusCode::NOT_FOUND,
                        text,
                        "not found; try /metrics or /healthz\n",
                    ),
                })
            }
        },
    )
    .await
}

/// Serves HTTP/1 on `listener` until `shutdown` completes, over TLS when
/// `tls` is given, answering every request with `handler` (called with the
/// peer's address). Each connection runs in its own task; a failed
/// `accept` is logged and retried, a TLS handshake gets
/// [`TLS_HANDSHAKE_TIMEOUT`].
pub async fn serve_with<H, F>(
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
    tls: Option<Arc<rustls::ServerConfig>>,
    handler: H,
) -> std::io::Result<()>
where
    H: Fn(SocketAddr, Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Result<Response<Full<Bytes>>, Infallible>> + Send + 'static,
{
    let tls = tls.map(tokio_rustls::TlsAcceptor::from);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => return Ok(()),
        };
        let handler = handler.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let Some(acceptor) = tls else {
                return serve_connection(stream, peer, handler).await;
            };
            match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(stream)) => serve_connection(stream, peer, handler).await,
                Ok(Err(e)) => tracing::debug!("{peer}: TLS handshake failed: {e}"),
                Err(_) => {
                    tracing::debug!("{peer}: no TLS handshake within {TLS_HANDSHAKE_TIMEOUT:?}")
                }
            }
        });
    }
}

/// How long a client may take to complete a TLS handshake.
pub const TLS_HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Serves HTTP/1 requests on one connection until it closes.
async fn serve_connection<S, H, F>(stream: S, peer: SocketAddr, handler: H)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    H: Fn(SocketAddr, Request<Incoming>) -> F + Send + Sync + 'static,
    F: Future<Output = Result<Response<Full<Bytes>>, Infallible>> + Send + 'static,
{
    let io = hyper_util::rt::TokioIo::new(stream);
    let service = hyper::service::service_fn(move |req| handler(peer, req));
    if let Err(e) = hyper::server::conn::http1::Builder::new()
        .serve_connection(io, service)
        .await
    {
        tracing::debug!("{peer}: HTTP connection ended: {e}");
    }
}
