//! The metrics/API listener (`sinks::http::serve_secured`, the code the
//! agent runs) on 127.0.0.1, with a loop answering its queries as the
//! agent's does, on a runtime of its own: for the tests of the listener's
//! limits, TLS and authentication that need no root.

use std::{net::SocketAddr, time::Duration};

use sctp_monitor::sinks::http::{Asked, Limits, Query, Security, serve_secured};
use tokio::sync::mpsc;

/// The answer of `/api/events` here: 64 MiB, far more than the two sockets
/// buffer (a client that stops reading it stalls the writer).
pub const BIG: usize = 64 << 20;

/// The listener's address; it serves until the test process ends.
pub fn start(limits: Limits, security: Security) -> SocketAddr {
    let (atx, arx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
            atx.send(listener.local_addr().expect("addr")).expect("send addr");
            let (tx, mut rx) = mpsc::channel::<Asked>(64);
            tokio::spawn(serve_secured(listener, tx, limits, security));
            while let Some(asked) = rx.recv().await {
                let answer = match asked.query {
                    Query::Events { .. } => (200, "application/json", "x".repeat(BIG)),
                    q => (200, "text/plain", format!("{q:?}\n")),
                };
                let _ = asked.reply.send(answer);
            }
        });
    });
    arx.recv_timeout(Duration::from_secs(10)).expect("listener up")
}
