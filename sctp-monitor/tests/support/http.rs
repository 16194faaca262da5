//! A plain HTTP/1.1 GET from inside a network namespace, for the tests that
//! query the agent's metrics and API listener.

use std::{
    io::{Read, Write},
    net::TcpStream,
    time::Duration,
};

use super::NetNs;

/// GET `path` on `addr:port` inside `ns`, optionally with an `Accept`
/// header: the status and the (de-chunked) body, or `None` when the
/// connection or the response fails.
pub fn get(ns: &NetNs, addr: &str, port: u16, path: &str, accept: Option<&str>) -> Option<(u16, String)> {
    let (addr, path) = (addr.to_string(), path.to_string());
    let accept = accept.map(|a| format!("Accept: {a}\r\n")).unwrap_or_default();
    ns.run(move || {
        let mut s = TcpStream::connect((addr.as_str(), port)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(20))).ok()?;
        write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n{accept}Connection: close\r\n\r\n").ok()?;
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).ok()?;
        let text = String::from_utf8_lossy(&raw).into_owned();
        let (head, body) = text.split_once("\r\n\r\n")?;
        let status = head.split(' ').nth(1)?.parse().ok()?;
        let body = if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
            dechunk(body)
        } else {
            body.to_string()
        };
        Some((status, body))
    })
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((len, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(len.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}
