//! The HTTP listener: `/metrics` and the JSON API (`super::api`) on one
//! address. Handlers do not touch agent state: each request becomes a
//! [`Query`] answered by the agent's loop, which owns the tracker and the
//! kernel maps.

use std::convert::Infallible;

use http_body_util::Full;
use hyper::{Request, Response, StatusCode, body::Bytes, header, server::conn::http1, service::service_fn};
use hyper_util::rt::TokioIo;
use tokio::{
    net::TcpListener,
    sync::{mpsc, oneshot},
};

use super::api::{ASSOC_LIMIT_DEFAULT, ASSOC_LIMIT_MAX, EVENTS_LIMIT_DEFAULT, query_param};
use super::metrics::{OPENMETRICS_CONTENT_TYPE, TEXT_CONTENT_TYPE};

/// What a request asks the agent for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Query {
    Metrics { openmetrics: bool },
    Associations { limit: usize, id: Option<u64> },
    Events { since: u64, limit: usize },
    Status,
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
        _ => Err((404, "not found: try /metrics, /api/associations, /api/events?since=N, /api/status".into())),
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

/// Serves until the task is dropped.
pub async fn serve(listener: TcpListener, tx: mpsc::Sender<Asked>) {
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                log::warn!("metrics listener: accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let tx = tx.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| handle(req, tx.clone()));
            let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
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
        assert_eq!(route("/nope", None, "").unwrap_err().0, 404);
    }
}
