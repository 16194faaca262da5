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
//!
//! With a web configuration ([`Security`], `run --web-config`) the same
//! listener speaks TLS (`super::tls`) and asks for basic authentication
//! (`super::auth`). The TLS handshake must be done within
//! `header_read_timeout` too, counted from the accept, and the idle timeout
//! watches the encrypted bytes. A plain-HTTP request to the TLS port gets a
//! plain 400 saying so. Over TLS, a connection past `max_connections` is
//! closed without an answer (a plain 503 would be noise to a TLS client).
//! `/healthz` and `/readyz` answer without credentials: kubelet's probes
//! cannot send any, and they tell only whether the agent is alive and
//! attached.

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
use super::{auth::BasicAuth, tls, webconfig::WebConfig};

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
    auth: Option<Arc<BasicAuth>>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if req.method() != hyper::Method::GET && req.method() != hyper::Method::HEAD {
        return Ok(respond(405, "text/plain", "only GET\n".into()));
    }
    if has_body(&req) {
        let mut r = respond(413, "text/plain", "a request body is not accepted: the API only answers GET\n".into());
        r.headers_mut().insert(header::CONNECTION, header::HeaderValue::from_static("close"));
        return Ok(r);
    }
    if let Some(auth) = &auth {
        let probe = matches!(req.uri().path(), "/healthz" | "/readyz");
        let given = req.headers().get(header::AUTHORIZATION).map(|v| v.as_bytes());
        if !probe && !auth.check(given).await {
            let mut r = respond(401, "text/plain", "401 Unauthorized: give a user and password (basic auth)\n".into());
            r.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static(super::auth::CHALLENGE));
            return Ok(r);
        }
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

/// The answer to a plain-HTTP request on the TLS listener.
const PLAIN_TO_TLS: &[u8] = b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-type: text/plain\r\n\
content-length: 59\r\n\r\nthis listener speaks HTTPS (TLS only): use an https:// URL\n";

/// The first byte of a TLS connection: a handshake record.
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// TLS and basic authentication of the listener (`run --web-config`);
/// the default is neither.
#[derive(Clone, Default)]
pub struct Security {
    pub tls: Option<Arc<tls::Reloading>>,
    pub auth: Option<Arc<BasicAuth>>,
}

impl Security {
    /// Loads what `c` names (certificate, key and client CA files): an
    /// error is one to stop at start for.
    pub fn from_config(c: &WebConfig) -> anyhow::Result<Security> {
        Ok(Security {
            tls: c.tls.clone().map(tls::Reloading::new).transpose()?.map(Arc::new),
            auth: BasicAuth::new(c.basic_auth_users.clone()),
        })
    }

    /// What a client gets, for the agent's log.
    pub fn describe(&self) -> &'static str {
        match (self.tls.is_some(), self.auth.is_some()) {
            (true, true) => "TLS, basic authentication",
            (true, false) => "TLS, no authentication",
            (false, true) => "plain HTTP (no TLS: credentials cross the network readable), basic authentication",
            (false, false) => "plain HTTP, no authentication",
        }
    }
}

/// Serves until the task is dropped, with [`Limits::DEFAULT`].
pub async fn serve(listener: TcpListener, tx: mpsc::Sender<Asked>, security: Security) {
    serve_secured(listener, tx, Limits::DEFAULT, security).await
}

/// Serves until the task is dropped.
pub async fn serve_secured(listener: TcpListener, tx: mpsc::Sender<Asked>, limits: Limits, security: Security) {
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
                    "metrics listener: {} connections open, refusing more (503; closed over TLS) until some close; \
                     first refused: {peer}",
                    limits.max_connections
                );
                refused_logged = true;
            }
            let tls = security.tls.is_some();
            tokio::spawn(async move {
                let _ = tokio::time::timeout(Duration::from_secs(1), async {
                    if !tls {
                        stream.write_all(BUSY).await?;
                    }
                    stream.shutdown().await
                })
                .await;
            });
            continue;
        };
        refused_logged = false;
        let conn = Conn { tx: tx.clone(), builder: builder.clone(), auth: security.auth.clone(), limits, peer };
        let tls = security.tls.clone();
        tokio::spawn(async move {
            let base = Instant::now();
            let last = Arc::new(AtomicU64::new(0));
            match tls {
                None => conn.drive(Watched { inner: stream, last: last.clone(), base }, last, base).await,
                Some(tls) => {
                    let deadline = base + limits.header_read_timeout;
                    if is_tls(&mut stream, deadline, peer).await {
                        let io = Watched { inner: stream, last: last.clone(), base };
                        let acceptor = tokio_rustls::TlsAcceptor::from(tls.current());
                        match tokio::time::timeout_at(deadline, acceptor.accept(io)).await {
                            Ok(Ok(io)) => conn.drive(io, last, base).await,
                            Ok(Err(e)) => log::debug!("metrics listener: TLS handshake with {peer} failed: {e}"),
                            Err(_) => log::debug!("metrics listener: no TLS handshake from {peer} in time, closed"),
                        }
                    }
                }
            }
            drop(permit);
        });
    }
}

/// Whether the client on `stream` starts a TLS handshake (by `deadline`).
/// One that speaks plain HTTP is told to use https and closed; one that
/// sends nothing in time is closed.
async fn is_tls(stream: &mut tokio::net::TcpStream, deadline: Instant, peer: std::net::SocketAddr) -> bool {
    let mut first = [0u8; 1];
    match tokio::time::timeout_at(deadline, stream.peek(&mut first)).await {
        Ok(Ok(1)) if first[0] == TLS_HANDSHAKE_RECORD => true,
        Ok(Ok(1)) => {
            log::debug!("metrics listener: plain HTTP from {peer} on the TLS listener");
            let _ = tokio::time::timeout(Duration::from_secs(1), async {
                stream.write_all(PLAIN_TO_TLS).await?;
                stream.shutdown().await
            })
            .await;
            false
        }
        _ => false,
    }
}

/// What serving one connection needs.
struct Conn {
    tx: mpsc::Sender<Asked>,
    builder: Arc<http1::Builder>,
    auth: Option<Arc<BasicAuth>>,
    limits: Limits,
    peer: std::net::SocketAddr,
}

impl Conn {
    /// Serves HTTP on `io` until it ends or no byte moved on it (`last`,
    /// milliseconds since `base`) for the idle timeout.
    async fn drive<I>(self, io: I, last: Arc<AtomicU64>, base: Instant)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let Conn { tx, builder, auth, limits, peer } = self;
        let svc = service_fn(move |req| handle(req, tx.clone(), auth.clone()));
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
