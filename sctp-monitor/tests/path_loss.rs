//! A lossy path, live: a real multihomed usrsctp association in two
//! namespaces, the agent on the client's interfaces, and nftables dropping
//! one packet in ten at random (`numgen random mod 10 == 0`) of what the
//! client sends on its primary path, after the agent has seen it (prerouting
//! in the server's namespace). The truth is nftables' own counters: the
//! packets that crossed and those it dropped.
//!
//! - The primary path's loss ratio the agent reports (`/api/associations`:
//!   `lost_chunks / data_chunks`, the same counters as the metrics) is
//!   within 20% of the loss nftables put in; the other paths lose nothing.
//! - `path_degraded` for that path, for no other, and `path_degraded_end`
//!   once the drop is gone; never before the loss began.
//! - No path state change: the stack's notifications show none (a fast
//!   retransmit moves no error counter), and the agent reports none.
//!
//! Needs root, gcc + libusrsctp-dev and nftables (`cargo xtask setup
//! --tests`); fails without them under CI.

mod support;

use std::{path::Path, process::Stdio, time::Duration};

use serde_json::Value;
use support::{
    NetNs, nft, privileged,
    process::{Proc, TempDir, collect_lines, have, json_lines, wait_until},
    sh,
};

const NS_A: &str = "smloss-a";
const NS_B: &str = "smloss-b";
const PORT: u16 = 9118;
/// The agent's quality window (`--degraded-window-s`).
const WINDOW_S: u64 = 4;

/// The packets the client sent on path `p` that reached ns b, and those of
/// them nftables dropped: its two counters.
fn counted(b: &NetNs) -> (u64, u64) {
    let out = b.cmd("nft").args(["list", "table", "inet", "smloss_drop"]).output().expect("nft list");
    let text = String::from_utf8_lossy(&out.stdout);
    let n: Vec<u64> = text
        .split("counter packets ")
        .skip(1)
        .map(|s| s.split_whitespace().next().and_then(|n| n.parse().ok()).expect("a packet count"))
        .collect();
    assert_eq!(n.len(), 2, "two counters: {text}");
    (n[0], n[1])
}

fn api(a: &NetNs) -> Value {
    let (st, body) =
        support::http::get(a, "127.0.0.1", PORT, "/api/associations", None).expect("GET /api/associations");
    assert_eq!(st, 200, "{body}");
    serde_json::from_str(&body).expect("JSON")
}

fn paths(doc: &Value) -> Vec<Value> {
    let assocs = doc["associations"].as_array().expect("associations");
    assert_eq!(assocs.len(), 1, "one association: {doc}");
    assocs[0]["paths"].as_array().expect("paths").clone()
}

fn events(path: &Path, kind: &str) -> Vec<Value> {
    json_lines(path).into_iter().filter(|v| v["event"] == kind).collect()
}

fn path_of(v: &Value) -> (String, String) {
    (v["src"].as_str().unwrap_or("").to_string(), v["dst"].as_str().unwrap_or("").to_string())
}

#[test]
fn a_path_that_drops_one_packet_in_ten_shows_its_loss_and_is_degraded_then_recovers() {
    if !privileged("a_path_that_drops_one_packet_in_ten_shows_its_loss_and_is_degraded_then_recovers") {
        return;
    }
    for tool in ["gcc", "nft"] {
        assert!(have(tool), "{tool} not found: run `cargo xtask setup --tests` (Debian packages)");
    }
    let tmp = TempDir::new("path-loss");
    let (a, b) = support::two_path_lab(NS_A, NS_B, "pl", 213);
    let ev = tmp.0.join("events.jsonl");

    let mut c = a.cmd(env!("CARGO_BIN_EXE_sctp-monitor"));
    c.args(["run", "-i", "plA1", "-i", "plA2", "--metrics", &format!("127.0.0.1:{PORT}")])
        .arg("--events")
        .arg(&ev)
        .args(["--poll-interval-ms", "200", "--degraded-window-s", &WINDOW_S.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut agent = Proc::spawn(c, "the agent");
    let log = collect_lines(agent.child.as_mut().unwrap().stderr.take().unwrap(), "agent");
    for iface in ["plA1", "plA2"] {
        wait_until(&format!("the agent to attach to {iface}"), Duration::from_secs(15), || {
            log.lock().unwrap().iter().find(|x| x.contains(&format!("attached to {iface} "))).cloned()
        });
    }

    // RTO.Min 1 s: no retransmission but of what was lost (a 100 ms RTO
    // below usrsctp's 200 ms delayed SACK retransmits spuriously);
    // Path.Max.Retrans 8: the loss does not end in a failover.
    let opts = ["--port", "5000", "--hb-interval", "500", "--rto-min", "1000", "--rto-max", "3000"];
    let pmr = ["--path-max-retrans", "8"];
    let server = [&["--no-echo"][..], &pmr].concat();
    let client = [&["--rate", "200"][..], &pmr].concat();
    let pair = support::usrsctp_pair(&a, &b, 213, &opts, &server, &client, &tmp.0);
    let up = &pair.up;
    let primary = up["primary"].as_str().expect("primary").to_string();
    let p = if primary.starts_with("10.213.1.") { 1 } else { 2 };
    let lossy = (format!("10.213.{p}.1"), format!("10.213.{p}.2"));
    std::thread::sleep(Duration::from_millis(1500));
    assert!(events(&ev, "path_degraded").is_empty(), "degraded before any loss: {:?}", events(&ev, "path_degraded"));

    // One packet in ten the client sends on its primary, dropped after the
    // agent's egress program saw it.
    let before = api(&a);
    nft(
        &b,
        &format!(
            "table inet smloss_drop {{ chain in {{ type filter hook prerouting priority -300; policy accept;\n\
             iifname \"plB{p}\" ip saddr 10.213.{p}.1 ip protocol sctp counter\n\
             iifname \"plB{p}\" ip saddr 10.213.{p}.1 ip protocol sctp numgen random mod 10 == 0 counter drop\n}}\n}}\n"
        ),
    );
    std::thread::sleep(Duration::from_secs(3 * WINDOW_S));
    let (crossed, dropped) = counted(&b);
    sh(&["ip", "netns", "exec", NS_B, "nft", "delete", "table", "inet", "smloss_drop"]);
    // The last drops' retransmissions and one more poll.
    std::thread::sleep(Duration::from_millis(1500));
    let after = api(&a);

    let find = |doc: &Value, k: &(String, String)| -> Value {
        paths(doc).into_iter().find(|x| &path_of(x) == k).unwrap_or_else(|| panic!("path {k:?} in {doc}"))
    };
    let delta = |k: &(String, String), f: &str| -> u64 {
        find(&after, k)[f].as_u64().unwrap_or(0) - find(&before, k)[f].as_u64().unwrap_or(0)
    };
    let (data, lost) = (delta(&lossy, "data_chunks"), delta(&lossy, "lost_chunks"));
    let truth = dropped as f64 / crossed as f64;
    let seen = lost as f64 / data as f64;
    eprintln!(
        "path {lossy:?}: nftables dropped {dropped} of {crossed} packets ({:.1}%); the agent: {lost} of {data} DATA chunks lost ({:.1}%)",
        100.0 * truth,
        100.0 * seen
    );
    assert!(dropped >= 50, "too few drops to judge: {dropped} of {crossed}");
    assert!((seen - truth).abs() <= 0.2 * truth, "loss ratio {seen:.4} against {truth:.4} put in");
    for x in paths(&after) {
        if path_of(&x) != lossy && x["sender"] == "initiator" {
            assert_eq!(x["lost_chunks"], before_lost(&before, &x), "a path without loss lost chunks: {x}");
        }
    }

    // Loss is not failure: the stack marked no path unreachable and did
    // not move its DATA (fast retransmits move no error counter), and the
    // agent says no more.
    let stack: Vec<Value> = json_lines(&tmp.0.join("client.jsonl"))
        .into_iter()
        .filter(|v| v["ev"] == "peer_addr_change" && v["state"] != "ADDR_AVAILABLE" && v["state"] != "ADDR_CONFIRMED")
        .collect();
    assert!(stack.is_empty(), "the stack saw a path fail, the scenario is not a lossy path: {stack:?}");
    for kind in ["path_down", "path_potentially_failed", "failover", "failback"] {
        let e = events(&ev, kind);
        assert!(e.is_empty(), "{kind} where the stack saw none: {e:?}");
    }

    // Degraded: that path, no other; then no longer.
    let degraded = events(&ev, "path_degraded");
    assert!(!degraded.is_empty(), "no path_degraded: {:?}", json_lines(&ev));
    for d in &degraded {
        assert_eq!(path_of(&d["path"]), lossy, "path_degraded for a path without loss: {d}");
    }
    let end = wait_until("path_degraded_end", Duration::from_secs(3 * WINDOW_S), || {
        events(&ev, "path_degraded_end").into_iter().next()
    });
    assert_eq!(path_of(&end["path"]), lossy, "{end}");
    assert!(find(&api(&a), &lossy)["degraded"] == false);
    agent.stop();
}

/// The lost chunks of `x`'s path in the earlier document.
fn before_lost(before: &Value, x: &Value) -> Value {
    paths(before).into_iter().find(|y| path_of(y) == path_of(x)).map_or(Value::from(0), |y| y["lost_chunks"].clone())
}
