//! The `serve` HTTP server: `/`, `/metrics`, `/healthz`, `/api/status`.
//!
//! hyper's HTTP/1 server with a hand-written match on the path: four GET
//! routes do not need a router framework.

use crate::monitor::Monitor;
use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use tokio::net::TcpListener;

fn response(
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

/// Answers one request.
pub async fn handle<B>(
    monitor: Arc<Monitor>,
    req: Request<B>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut r = response(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain; charset=utf-8",
            "only GET\n",
        );
        r.headers_mut()
            .insert(hyper::header::ALLOW, HeaderValue::from_static("GET, HEAD"));
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
        let monitor = monitor.clone();
        tokio::spawn(async move {
            let io = hyper_util::rt::TokioIo::new(stream);
            let service = hyper::service::service_fn(move |req| handle(monitor.clone(), req));
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, service)
                .await
            {
                tracing::debug!("HTTP connection ended: {e}");
            }
        });
    }
}
