//! The `serve` HTTP server: `/`, `/metrics`, `/healthz`, `/api/status`.
//!
//! hyper's HTTP/1 server with a hand-written match on the path: four GET
//! routes do not need a router framework. [`serve_with`], [`response`] and
//! [`reject_non_get`] are the reusable parts; [`serve_metrics`] serves just
//! `/metrics` and `/healthz` (the scheduler's endpoint and a migration's).

use crate::monitor::Monitor;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use std::convert::Infallible;
use std::future::Future;
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

/// Answers one request.
pub async fn handle<B>(
    monitor: Arc<Monitor>,
    req: Request<B>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if let Some(r) = reject_non_get(req.method()) {
        return Ok(r);
    }
    let r = match req.uri().path() {
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
    };
    Ok(r)
}

/// Serves `monitor` on `listener` until `shutdown` completes.
pub async fn serve(
    monitor: Arc<Monitor>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    serve_with(listener, shutdown, move |req| handle(monitor.clone(), req)).await
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
    serve_with(listener, shutdown, move |req: Request<Incoming>| {
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
    })
    .await
}

/// Serves HTTP/1 on `listener` until `shutdown` completes, answering every
/// request with `handler`. Each connection runs in its own task; a failed
/// `accept` is logged and retried.
pub async fn serve_with<H, F>(
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
    handler: H,
) -> std::io::Result<()>
where
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Result<Response<Full<Bytes>>, Infallible>> + Send + 'static,
{
    tokio::pin!(shutdown);
    loop {
        let (stream, _) = tokio::select! {
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
        tokio::spawn(async move {
            let io = hyper_util::rt::TokioIo::new(stream);
            let service = hyper::service::service_fn(handler);
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, service)
                .await
            {
                tracing::debug!("HTTP connection ended: {e}");
            }
        });
    }
}
