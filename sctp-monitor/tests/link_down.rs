//! A monitored interface going down takes every path through it down at
//! once, with cause `link_down`, and the path comes up again when a
//! heartbeat on it is answered: the real agent on a veth pair, an
//! association's handshake and heartbeats sent through it (crafted frames),
//! the veth set down and up. Paths through another interface are not
//! touched.
//!
//! Needs root (BPF, namespaces); fails under CI without it.

mod support;

use std::{
    net::Ipv4Addr,
    process::Stdio,
    time::{Duration, Instant},
};

use sctp_monitor::craft::{self, CookiePos, FrameBuilder, InitSpec};
use serde_json::Value;
use support::{NetNs, privileged, process::TempDir, send_frames, veth};

const TA: u32 = 0x1111_0001;
const TB: u32 = 0x2222_0002;

fn events(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path).unwrap_or_default().lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
}

fn wait_for(path: &std::path::Path, what: &str, f: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let ev = events(path);
        if f(&ev) {
            return ev;
        }
        assert!(Instant::now() < deadline, "no {what} within 10 s; events: {ev:#?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_link_going_down_takes_its_paths_down_at_once() {
    if !privileged("link_down") {
        return;
    }
    let a = NetNs::new("smtest-ld-a");
    let b = NetNs::new("smtest-ld-b");
    // Path 1 crosses smld1 (monitored, taken down), path 2 smld2 (monitored).
    veth(&a, "smld1", &b, "smld1p");
    veth(&a, "smld2", &b, "smld2p");
    let dir = TempDir::new("link-down");
    let out = dir.path("events.jsonl");
    let mut agent = a
        .cmd(env!("CARGO_BIN_EXE_sctp-monitor"))
        .args(["run", "-i", "smld1", "-i", "smld2", "--metrics", "off", "--events"])
        .arg(&out)
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("start the agent");
    let log = support::process::collect_lines(agent.stderr.take().unwrap(), "agent");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !["smld1", "smld2"]
        .iter()
        .all(|i| log.lock().unwrap().iter().any(|l| l.contains(&format!("attached to {i}"))))
    {
        assert!(Instant::now() < deadline, "the agent did not attach: {:?}", log.lock().unwrap());
        std::thread::sleep(Duration::from_millis(50));
    }
    let (a1, b1) = (Ipv4Addr::new(10, 91, 1, 1), Ipv4Addr::new(10, 91, 1, 2));
    let (a2, b2) = (Ipv4Addr::new(10, 91, 2, 1), Ipv4Addr::new(10, 91, 2, 2));
    let ab = |s, d, tag| FrameBuilder::ipv4(s, d).sctp(5000, 5000, tag);
    // The handshake on path 1, announcing both addresses of each side; then
    // a heartbeat answered on each path. Frames sent from b's end arrive on
    // the monitored interface (XDP ingress).
    send_frames_in(
        &b,
        "smld1p",
        &[ab(b1, a1, 0).chunk(craft::init(&InitSpec::new(TB, 1).addrs(&[b2.into()]))).build()],
    );
    send_frames_in(
        &b,
        "smld1p",
        &[ab(a1, b1, TB)
            .chunk(craft::init_ack(&InitSpec::new(TA, 1).addrs(&[a2.into()]).cookie(40, CookiePos::Before)))
            .build()],
    );
    send_frames_in(&b, "smld1p", &[ab(b1, a1, TA).chunk(craft::cookie_echo(&[7; 40])).build()]);
    send_frames_in(&b, "smld1p", &[ab(a1, b1, TB).chunk(craft::cookie_ack()).build()]);
    for (iface, s, d, info) in [("smld1p", b1, a1, b"p1"), ("smld2p", b2, a2, b"p2")] {
        send_frames_in(&b, iface, &[ab(s, d, TA).chunk(craft::heartbeat(info)).build()]);
        send_frames_in(&b, iface, &[ab(d, s, TB).chunk(craft::heartbeat_ack(info)).build()]);
    }
    wait_for(&out, "association_up and both paths up", |ev| {
        ev.iter().any(|e| e["event"] == "association_up")
            && ev.iter().filter(|e| e["event"] == "path_up" && e["cause"] == "heartbeat_ack").count() >= 2
    });
    // Down: both directions of path 1, at once, and nothing of path 2.
    let t0 = std::time::SystemTime::now();
    a.ip(&["link", "set", "smld1", "down"]);
    let ev = wait_for(&out, "path_down with cause link_down", |ev| {
        ev.iter().filter(|e| e["event"] == "path_down" && e["cause"] == "link_down").count() >= 2
    });
    let waited = t0.elapsed().unwrap();
    let downs: Vec<&Value> = ev.iter().filter(|e| e["event"] == "path_down").collect();
    assert_eq!(downs.len(), 2, "{downs:#?}");
    for d in &downs {
        let p = &d["path"];
        assert!(
            (p["src"] == "10.91.1.2" && p["dst"] == "10.91.1.1")
                || (p["src"] == "10.91.1.1" && p["dst"] == "10.91.1.2"),
            "only path 1 goes down: {d}"
        );
        assert_eq!(d["ifname"], "smld1");
    }
    assert!(waited < Duration::from_secs(2), "reported {waited:?} after the link went down");
    // Up again: the link back, a heartbeat answered on path 1.
    a.ip(&["link", "set", "smld1", "up"]);
    b.ip(&["link", "set", "smld1p", "up"]);
    std::thread::sleep(Duration::from_millis(300));
    send_frames_in(&b, "smld1p", &[ab(b1, a1, TA).chunk(craft::heartbeat(b"back")).build()]);
    send_frames_in(&b, "smld1p", &[ab(a1, b1, TB).chunk(craft::heartbeat_ack(b"back")).build()]);
    wait_for(&out, "path_up after the link came back", |ev| {
        ev.iter().any(|e| {
            e["event"] == "path_up" && e["path"]["src"] == "10.91.1.2" && e["ts"].as_str() > downs[0]["ts"].as_str()
        })
    });
    // SAFETY: signalling our child.
    unsafe { libc::kill(agent.id() as i32, libc::SIGTERM) };
    assert!(agent.wait().unwrap().success());
}

/// `send_frames` from inside namespace `ns`.
fn send_frames_in(ns: &NetNs, iface: &str, frames: &[Vec<u8>]) {
    let (iface, frames) = (iface.to_string(), frames.to_vec());
    ns.run(move || send_frames(&iface, &frames));
}
