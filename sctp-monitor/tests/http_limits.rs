//! The metrics/API listener (`sinks::http::serve_secured`, the code the agent
//! runs) against clients that hold or flood it, over real loopback TCP: a
//! slowloris that trickles its headers, a kept-alive connection left idle,
//! a client that never reads a large answer, more connections than the
//! limit, oversized headers, request line and bodies. Short limits keep the
//! test quick; the agent's defaults are `Limits::DEFAULT` (checked against
//! the real agent in tests/readiness.rs). No root needed.

use std::{
    io::{ErrorKind, Read, Write},
    net::{SocketAddr, TcpStream},
    time::{Duration, Instant},
};

mod support;

use sctp_monitor::sinks::http::{Limits, Security};
use support::listener::{self, BIG};

const LIMITS: Limits = Limits {
    header_read_timeout: Duration::from_millis(1500),
    idle_timeout: Duration::from_millis(1500),
    max_connections: 4,
    max_header_bytes: 8192,
};

/// The listener on 127.0.0.1 with `LIMITS`, plain HTTP.
fn start() -> SocketAddr {
    listener::start(LIMITS, Security::default())
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    s
}

/// Reads until the server closes; `None` when it did not within the read
/// timeout.
fn read_to_close(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return Some(out),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return Some(out),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => return None,
            Err(e) => panic!("read: {e}"),
        }
    }
}

fn status(raw: &[u8]) -> u16 {
    let text = String::from_utf8_lossy(&raw[..raw.len().min(64)]).into_owned();
    text.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or_else(|| panic!("no status line in {text:?}"))
}

fn get(addr: SocketAddr, path: &str) -> u16 {
    let mut s = connect(addr);
    write!(s, "GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").expect("write");
    status(&read_to_close(&mut s).expect("answered and closed"))
}

#[test]
fn slowloris_headers_are_cut_at_the_header_read_timeout() {
    let addr = start();
    let mut s = connect(addr);
    let request = b"GET /metrics HTTP/1.1\r\nHost: t\r\nUser-Agent: slow\r\nAccept: */*\r\nX-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    // One byte every 100 ms: the whole request would take over 12 s.
    let started = Instant::now();
    let mut sent = 0;
    let mut closed = false;
    for b in request.iter() {
        if s.write_all(&[*b]).is_err() {
            closed = true;
            break;
        }
        sent += 1;
        std::thread::sleep(Duration::from_millis(100));
        // The server's close shows as EOF on a non-blocking peek.
        s.set_nonblocking(true).expect("nonblocking");
        let mut one = [0u8; 1];
        let peek = s.peek(&mut one);
        s.set_nonblocking(false).expect("blocking");
        if matches!(peek, Ok(0)) || matches!(&peek, Err(e) if e.kind() == ErrorKind::ConnectionReset) {
            closed = true;
            break;
        }
        if peek.is_ok() {
            // An answer (hyper's 408) before the close.
            closed = read_to_close(&mut s).is_some();
            break;
        }
    }
    assert!(closed, "the listener kept a connection that trickled {sent} header bytes for {:?}", started.elapsed());
    assert!(sent < request.len(), "closed only after the whole request ({sent} bytes)");
    eprintln!("slowloris cut after {sent} of {} bytes, {:?}", request.len(), started.elapsed());
    assert_eq!(get(addr, "/healthz"), 200, "the listener still answers");
}

#[test]
fn an_idle_kept_alive_connection_is_closed() {
    let addr = start();
    let mut s = connect(addr);
    write!(s, "GET /api/status HTTP/1.1\r\nHost: t\r\n\r\n").expect("write");
    let mut buf = [0u8; 4096];
    let n = s.read(&mut buf).expect("answer");
    assert_eq!(status(&buf[..n]), 200);
    // Kept alive (no Connection: close); send nothing more.
    let rest = read_to_close(&mut s).expect("the server closes an idle kept-alive connection");
    assert!(rest.is_empty() || status(&rest) == 408, "{:?}", String::from_utf8_lossy(&rest));
}

#[test]
fn a_client_that_stops_reading_a_large_answer_is_dropped() {
    let addr = start();
    let mut s = connect(addr);
    write!(s, "GET /api/events HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").expect("write");
    // Read a little, then stop for longer than the idle timeout.
    let mut first = vec![0u8; 1024];
    s.read_exact(&mut first).expect("the answer starts");
    assert_eq!(status(&first), 200);
    std::thread::sleep(LIMITS.idle_timeout * 3);
    let rest = read_to_close(&mut s).expect("closed after the stall");
    let got = first.len() + rest.len();
    assert!(got < BIG, "the whole {BIG}-byte answer arrived ({got} bytes): the stalled writer was not dropped");
    eprintln!("stalled reader: {got} of {BIG}+ bytes delivered before the close");
}

#[test]
fn connections_past_the_limit_get_503_and_slots_come_back() {
    let addr = start();
    let held: Vec<TcpStream> = (0..LIMITS.max_connections).map(|_| connect(addr)).collect();
    // Let the listener accept them all.
    std::thread::sleep(Duration::from_millis(200));
    let mut extra = connect(addr);
    let raw = read_to_close(&mut extra).expect("refused and closed at once");
    assert_eq!(status(&raw), 503, "{}", String::from_utf8_lossy(&raw));
    assert!(String::from_utf8_lossy(&raw).contains("too many connections"));
    drop(held);
    // Slots free as the server sees the closes.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let code = get(addr, "/readyz");
        if code == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "still {code} after the held connections closed");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn oversized_headers_request_lines_and_bodies_are_refused() {
    let addr = start();
    let raw = |req: String| {
        let mut s = connect(addr);
        // The server may answer and close before it read everything.
        let _ = s.write_all(req.as_bytes());
        let out = read_to_close(&mut s).expect("answered and closed");
        (status(&out), String::from_utf8_lossy(&out).into_owned())
    };
    let big_header = format!("GET /metrics HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\n\r\n", "a".repeat(20_000));
    assert_eq!(raw(big_header).0, 431, "20 kB of headers");
    let long_uri = format!("GET /api/events?since=1&{} HTTP/1.1\r\nHost: t\r\n\r\n", "a=b&".repeat(4000));
    let (code, _) = raw(long_uri);
    assert!(code == 414 || code == 431, "a 16 kB request line: {code}");
    let body = format!("GET /metrics HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n{}", "b".repeat(1000));
    let (code, text) = raw(body);
    assert_eq!(code, 413, "{text}");
    assert!(text.contains("request body is not accepted"), "{text}");
    let chunked =
        "GET /metrics HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n".to_string();
    assert_eq!(raw(chunked).0, 413);
    let post = "POST /metrics HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_string();
    assert_eq!(raw(post).0, 405);
    // A normal request of the largest allowed size still works.
    let fits = format!("GET /metrics HTTP/1.1\r\nHost: t\r\nX-Pad: {}\r\nConnection: close\r\n\r\n", "a".repeat(6000));
    assert_eq!(raw(fits).0, 200);
}
