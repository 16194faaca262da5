//! The HTTP listener: `/metrics` and the JSON API (`super::api`) on one
//! address. Handlers do not touch agent state: each request becomes a
//! [`Query`] answered by the agent's loop, which owns the tracker and the
//! kernel maps.
//!
//! The listener is hardened against clients that hold or flood it (see
//! [`Limits`]): a request's line and headers must arrive within
//! `header_read_timeout` (also the longest a kept-alive connection may wait
//! for its next request), a connection on which no byte moves either way
//! for `idle_timeout` is closed (a client that stops reading a large
//! answer), at most `max_connections` are served at once (the next ones get
//! a 503 and are closed), request line and headers are limited to
//! `max_header_bytes` (431, or 414 for the request line alone), and a
//! request with a body is refused (413): the API has nothing to post.

use std::{
    convert::Infallible,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use http_body_util::Full;
use hyper::{Request, Response, StatusCode, body::Bytes, header, server::conn::http1, service::service_fn};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::{
    io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf},
    net::TcpListener,
    sync::{Semaphore, mpsc, oneshot},
    time::Instant,
};

use super::api::{ASSOC_LIMIT_DEFAULT, ASSOC_LIMIT_MAX, EVENTS_LIMIT_DEFAULT, query_param};
use super::metrics::{OPENMETRICS_CONTENT_TYPE, TEXT_CONTENT_TYPE};

/// What a request asks the agent for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Query {
    Metrics {
        openmetrics: bool,
    },
    Associations {
        limit: usize,
        id: Option<u64>,
    },
    Events {
        since: u64,
        limit: usize,
    },
    Status,
    /// `/readyz`: 200 when every requested interface has its programs, 503
    /// naming the missing ones.
    Ready,
}

/// The agent's answer: status, content type, body.
pub type Answer = (u16, &'static str, String);

pub struct Asked {
    pub query: Query,
    pub reply: oneshot::Sender<Answer>,
}

pub const JSON: &str = "application/json";

/// Maps a request line to a query; `Err` is the status and message.
pub fn route(path: &str, query: Option<&str>, accept: &str) -> Result<Query, (u16, String)> {
    let num = |k: &str| -> Result<Option<u64>, (u16, String)> {
        match query_param(query, k) {
            None => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| (400, format!("{k} must be a number"))),
        }
    };
    match path {
        "/metrics" => Ok(Query::Metrics { openmetrics: accept.contains("application/openmetrics-text") }),
        "/api/associations" => Ok(Query::Associations {
            limit: (num("limit")?.unwrap_or(ASSOC_LIMIT_DEFAULT as u64) as usize).min(ASSOC_LIMIT_MAX),
            id: num("id")?,
        }),
        "/api/events" => Ok(Query::Events {
            since: num("since")?.unwrap_or(0),
            limit: (num("limit")?.unwrap_or(EVENTS_LIMIT_DEFAULT as u64) as usize).min(100_000),
        }),
        "/api/status" | "/healthz" => Ok(Query::Status),
        "/readyz" => Ok(Query::Ready),
        _ => Err((
            404,
            "not found: try /metrics, /api/associations, /api/events?since=N, /api/status, /healthz, /readyz".into(),
        )),
    }
}

fn respond(status: u16, ctype: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static(ctype));
    r
}

async fn handle(
    req: Request<hyper::body::Incoming>,
    tx: mpsc::Sender<Asked>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if req.method() != hyper::Method::GET && req.method() != hyper::Method::HEAD {
        return Ok(respond(405, "text/plain", "only GET\n".into()));
    }
    if has_body(&req) {
        let mut r = respond(413, "text/plain", "a request body is not accepted: the API only answers GET\n".into());
        r.headers_mut().insert(header::CONNECTION, header::HeaderValue::from_static("close"));
        return Ok(r);
    }
    let accept = req.headers().get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("");
    let query = match route(req.uri().path(), req.uri().query(), accept) {
        Ok(q) => q,
        Err((code, msg)) => return Ok(respond(code, "text/plain", msg + "\n")),
    };
    let (rtx, rrx) = oneshot::channel();
    if tx.send(Asked { query, reply: rtx }).await.is_err() {
        return Ok(respond(503, "text/plain", "agent stopping\n".into()));
    }
    Ok(match rrx.await {
        Ok((status, ctype, body)) => respond(status, ctype, body),
        Err(_) => respond(503, "text/plain", "agent stopping\n".into()),
    })
}

/// A request that announces a body (Content-Length above 0, or any
/// Transfer-Encoding).
fn has_body<B>(req: &Request<B>) -> bool {
    let h = req.headers();
    h.contains_key(header::TRANSFER_ENCODING)
        || h.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).is_some_and(|v| v.trim() != "0")
}

/// What the listener allows a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The request line and headers must be in within this time, counted
    /// from the first wait for them (so also an idle kept-alive connection's
    /// wait for its next request).
    pub header_read_timeout: Duration,
    /// A connection on which no byte is read or written for this long is
    /// closed.
    pub idle_timeout: Duration,
    /// Connections served at once; one more gets a 503 and is closed.
    pub max_connections: usize,
    /// Request line plus headers, in bytes (hyper's floor is 8192 for its
    /// read buffer; headers alone may be limited lower).
    pub max_header_bytes: usize,
}

impl Limits {
    pub const DEFAULT: Limits = Limits {
        header_read_timeout: Duration::from_secs(10),
        idle_timeout: Duration::from_secs(60),
        max_connections: 64,
        max_header_bytes: 8192,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}

/// A stream that records when a byte last moved either way.
struct Watched<S> {
    inner: S,
    /// Milliseconds since `base` of the last byte moved.
    last: Arc<AtomicU64>,
    base: Instant,
}

impl<S> Watched<S> {
    fn touch(&self) {
        self.last.store(self.base.elapsed().as_millis() as u64, Ordering::Relaxed);
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.touch();
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The answer to a connection over [`Limits::max_connections`].
const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\nretry-after: 1\r\n\
content-type: text/plain\r\ncontent-length: 38\r\n\r\ntoo many connections to sctp-monitor\r\n";

/// Serves until the task is dropped, with [`Limits::DEFAULT`].
pub async fn serve(listener: TcpListener, tx: mpsc::Sender<Asked>) {
    serve_with(listener, tx, Limits::DEFAULT).await
}

/// Serves until the task is dropped.
pub async fn serve_with(listener: TcpListener, tx: mpsc::Sender<Asked>, limits: Limits) {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_header_size(limits.max_header_bytes)
        .max_buf_size(limits.max_header_bytes.max(8192))
        .max_headers(64);
    let builder = Arc::new(builder);
    let mut refused_logged = false;
    loop {
        let (mut stream, peer) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                log::warn!("metrics listener: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            if !refused_logged {
                log::warn!(
                    "metrics listener: {} connections open, refusing more (503) until some close; first refused: {peer}",
                    limits.max_connections
                );
                refused_logged = true;
            }
            tokio::spawn(async move {
                let _ = tokio::time::timeout(Duration::from_secs(1), async {
                    stream.write_all(BUSY).await?;
                    stream.shutdown().await
                })
                .await;
            });
            continue;
        };
        refused_logged = false;
        let (tx, builder) = (tx.clone(), builder.clone());
        tokio::spawn(async move {
            let base = Instant::now();
            let last = Arc::new(AtomicU64::new(0));
            let io = Watched { inner: stream, last: last.clone(), base };
            let svc = service_fn(move |req| handle(req, tx.clone()));
            let conn = builder.serve_connection(TokioIo::new(io), svc);
            tokio::pin!(conn);
            loop {
                let deadline = base + Duration::from_millis(last.load(Ordering::Relaxed)) + limits.idle_timeout;
                tokio::select! {
                    _ = &mut conn => break,
                    _ = tokio::time::sleep_until(deadline) => {
                        let idle = base.elapsed().saturating_sub(Duration::from_millis(last.load(Ordering::Relaxed)));
                        if idle >= limits.idle_timeout {
                            log::debug!("metrics listener: closing {peer}, idle for {} s", idle.as_secs());
                            break;
                        }
                    }
                }
            }
            drop(permit);
        });
    }
}

/// The content type of a metrics answer.
pub fn metrics_content_type(openmetrics: bool) -> &'static str {
    if openmetrics { OPENMETRICS_CONTENT_TYPE } else { TEXT_CONTENT_TYPE }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(
            route("/metrics", None, "application/openmetrics-text;version=1.0.0"),
            Ok(Query::Metrics { openmetrics: true })
        );
        assert_eq!(route("/metrics", None, "*/*"), Ok(Query::Metrics { openmetrics: false }));
        assert_eq!(route("/api/events", Some("since=5"), ""), Ok(Query::Events { since: 5, limit: 1000 }));
        assert_eq!(
            route("/api/associations", Some("limit=2&id=9"), ""),
            Ok(Query::Associations { limit: 2, id: Some(9) })
        );
        assert_eq!(route("/api/events", Some("since=x"), "").unwrap_err().0, 400);
        assert_eq!(route("/readyz", None, ""), Ok(Query::Ready));
        assert_eq!(route("/healthz", None, ""), Ok(Query::Status));
        assert_eq!(route("/nope", None, "").unwrap_err().0, 404);
    }
}
