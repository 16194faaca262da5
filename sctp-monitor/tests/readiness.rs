//! Readiness means attached, on the real agent over real veths: `/readyz`
//! answers 200 only while every interface named with `-i` has its
//! programs, and 503 naming the missing one while it is gone, until the
//! agent attaches it again; `/healthz` (liveness) stays 200 throughout.
//! The same run checks what a Prometheus server sees on `/metrics`
//! (`promtool check metrics`, build_info and the process metrics) and the
//! listener's default limits on the real agent (431 for oversized headers,
//! a connection that never finishes its headers is closed).
//!
//! Needs root; fixed namespace and interface names, so run it under the
//! shared lock: `flock /tmp/sctpmon-kernel.lock cargo test -p sctp-monitor
//! --test readiness`.

mod support;

use std::{
    io::{Read, Write},
    net::TcpStream,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use support::{
    NetNs,
    http::get,
    privileged,
    process::{Proc, have, wait_until},
    veth,
};

const PORT: u16 = 9118;

fn ready(ns: &NetNs) -> Option<(u16, serde_json::Value)> {
    let (code, body) = get(ns, "127.0.0.1", PORT, "/readyz", None)?;
    Some((code, serde_json::from_str(&body).unwrap_or_else(|e| panic!("/readyz is not JSON ({e}): {body}"))))
}

fn missing(doc: &serde_json::Value) -> Vec<String> {
    doc["missing"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["interface"].as_str().map(str::to_string))
        .collect()
}

#[test]
fn readyz_follows_the_attachment_of_every_named_interface() {
    if !privileged("readyz_follows_the_attachment_of_every_named_interface") {
        return;
    }
    let a = NetNs::new("sctpmon-rdy-a");
    let b = NetNs::new("sctpmon-rdy-b");
    veth(&a, "smrdy1", &b, "smrdy1p");
    veth(&a, "smrdy2", &b, "smrdy2p");
    let mut cmd = a.cmd(env!("CARGO_BIN_EXE_sctp-monitor"));
    cmd.args(["run", "-i", "smrdy1", "-i", "smrdy2", "--events", "off", "--poll-interval-ms", "200"])
        .args(["--metrics", &format!("127.0.0.1:{PORT}")])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    let mut agent = Proc::spawn(cmd, "the agent");

    // Attached: ready, both named.
    let (code, doc) = wait_until("the agent answers /readyz", Duration::from_secs(60), || ready(&a));
    assert_eq!(code, 200, "{doc}");
    assert_eq!(doc["ready"], true);
    assert_eq!(doc["mode"], "named");
    assert_eq!(doc["attached"], serde_json::json!(["smrdy1", "smrdy2"]), "{doc}");

    // One interface gone: 503 naming it; liveness unaffected.
    a.ip(&["link", "del", "smrdy2"]);
    let (code, doc) = wait_until("/readyz turns 503", Duration::from_secs(10), || ready(&a).filter(|(c, _)| *c == 503));
    assert_eq!(code, 503);
    assert_eq!(doc["ready"], false);
    assert_eq!(missing(&doc), ["smrdy2"], "{doc}");
    let reason = doc["missing"][0]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("gone") || reason.contains("does not exist"), "{doc}");
    assert_eq!(doc["attached"], serde_json::json!(["smrdy1"]), "{doc}");
    let (hcode, _) = get(&a, "127.0.0.1", PORT, "/healthz", None).expect("/healthz");
    assert_eq!(hcode, 200, "liveness stays up while an interface is missing");

    // Back: the agent attaches it again (-i) and is ready again.
    veth(&a, "smrdy2", &b, "smrdy2p");
    let (_, doc) =
        wait_until("/readyz turns 200 again", Duration::from_secs(10), || ready(&a).filter(|(c, _)| *c == 200));
    assert_eq!(doc["attached"], serde_json::json!(["smrdy1", "smrdy2"]), "{doc}");

    // What Prometheus scrapes: valid exposition with build and process metrics.
    let (code, metrics) = get(&a, "127.0.0.1", PORT, "/metrics", None).expect("/metrics");
    assert_eq!(code, 200);
    for family in [
        "sctp_monitor_build_info{",
        "process_cpu_seconds_total ",
        "process_resident_memory_bytes ",
        "process_virtual_memory_bytes ",
        "process_open_fds ",
        "process_max_fds ",
        "process_start_time_seconds ",
    ] {
        assert!(metrics.contains(family), "/metrics has no {family}");
    }
    let value = |name: &str| -> f64 {
        let line = metrics.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("{name}"));
        line.rsplit(' ').next().and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("{line}"))
    };
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs_f64();
    let start = value("process_start_time_seconds ");
    assert!(start <= now + 1.0 && start > now - 600.0, "start time {start} is not within the test ({now})");
    assert!(value("process_resident_memory_bytes ") > 1e6, "resident memory");
    assert!(value("process_open_fds ") >= 3.0, "open fds");
    if have("promtool") {
        let mut p = Command::new("promtool")
            .args(["check", "metrics"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("promtool");
        p.stdin.take().expect("stdin").write_all(metrics.as_bytes()).expect("write");
        let out = p.wait_with_output().expect("promtool");
        assert!(
            out.status.success(),
            "promtool check metrics: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    } else if std::env::var_os("CI").is_some() {
        panic!("promtool missing (Debian's prometheus package; `cargo xtask setup --tests`)");
    }

    // The real agent's listener limits (defaults): oversized headers 431; a
    // client that never finishes its headers is cut (10 s), and meanwhile
    // others are served.
    let held = a.run(|| {
        let mut s = TcpStream::connect(("127.0.0.1", PORT)).expect("connect");
        s.write_all(format!("GET /metrics HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(20_000)).as_bytes()).ok();
        let mut out = Vec::new();
        s.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
        let _ = s.read_to_end(&mut out);
        let head = String::from_utf8_lossy(&out[..out.len().min(32)]).into_owned();
        assert!(head.starts_with("HTTP/1.1 431"), "20 kB of headers: {head:?}");
        let mut slow = TcpStream::connect(("127.0.0.1", PORT)).expect("connect");
        slow.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n").expect("half a request");
        slow
    });
    assert_eq!(get(&a, "127.0.0.1", PORT, "/healthz", None).map(|r| r.0), Some(200), "served beside the slow one");
    let closed_after = a.run(move || {
        let mut slow = held;
        let started = Instant::now();
        slow.set_read_timeout(Some(Duration::from_secs(40))).expect("timeout");
        let mut buf = Vec::new();
        match slow.read_to_end(&mut buf) {
            Ok(_) => Some(started.elapsed()),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => Some(started.elapsed()),
            Err(_) => None,
        }
    });
    let closed_after = closed_after.expect("the agent kept a connection with unfinished headers for 40 s");
    eprintln!("unfinished headers: closed by the agent after {closed_after:?} (header-read timeout 10 s)");

    let st = agent.stop();
    assert!(st.success(), "exit status after SIGTERM: {st}");
}
