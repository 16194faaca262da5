//! The agent against the Linux kernel's own SCTP, the stack most signalling
//! software uses, in guests booted from Debian's kernel packages under QEMU
//! (`support::guest`; `tests/guest/run.sh` says what a run does):
//!
//! - Debian 12's 6.1: one multihomed IPv4 association between two
//!   kernel-SCTP peers (`tests/peer/lksctp_peer.c`), the agent live on the
//!   server's interfaces, path 1 black-holed for 5 s and restored. The
//!   agent reports the association with both address sets as the peers'
//!   `up` lines give them, and every move of new DATA it reports (a
//!   failover, or a return) is one the wire shows: the first new TSN to
//!   another destination, found with tshark, within [`MOVE_TOLERANCE_S`];
//!   none is reported twice or without one, and the client's failover away
//!   from the cut path is among them.
//! - Debian 11's 5.10: the agent refuses the kernel before loading, naming
//!   its release, the missing bpf_loop and Linux 5.17.
//!
//! One boot per kernel, one at a time (about 50 s and 25 s under software
//! emulation). Needs root, QEMU, virtme-ng and the kernel packages (`cargo
//! xtask setup --tests`); under CI what is missing fails the test, elsewhere
//! it is skipped. The deeper comparison (path states against the stack's
//! notifications, live against offline) is the fidelity comparer's, which
//! reads the same artifact directory; [`check_against_wire`] is this test's
//! part.

mod support;

use std::{
    collections::{BTreeSet, HashMap},
    net::IpAddr,
    path::Path,
    sync::Mutex,
};

use serde_json::Value;
use support::{
    guest,
    process::{TempDir, json_lines},
    tshark,
};

/// A reported move and the wire's first new DATA there agree within this.
const MOVE_TOLERANCE_S: f64 = 0.05;

/// One guest at a time: two under software emulation on two cores would
/// slow each other's timers.
static GUEST: Mutex<()> = Mutex::new(());

fn agent() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_sctp-monitor"))
}

#[test]
fn linux_6_1_ipv4_blackhole_failover() {
    let test = "linux_6_1_ipv4_blackhole_failover";
    if !guest::ready(test, &["6.1"]) {
        return;
    }
    let Some(ts) = tshark::find() else { return };
    let _one = GUEST.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = TempDir::new("linux-sctp");
    let dir = guest::failover_run("6.1", "ipv4", "blackhole", "on", agent(), &tmp.path("run"));
    let mut files: Vec<String> =
        std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    files.sort();
    assert_eq!(files, ["agent.jsonl", "agent.log", "capture.pcap", "client.jsonl", "meta.json", "server.jsonl"]);
    check_against_wire(&dir, ts);
}

#[test]
fn linux_5_10_is_refused_with_the_reason() {
    if !guest::ready("linux_5_10_is_refused_with_the_reason", &["5.10"]) {
        return;
    }
    let _one = GUEST.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = TempDir::new("linux-5.10");
    let (rc, log) = guest::agent_check("5.10", agent(), &tmp.path("check"));
    assert_eq!(rc, "1", "the agent exits 1 on 5.10; its log:\n{log}");
    for part in ["kernel 5.10.", "too old", "bpf_loop", "Linux 5.17 or later"] {
        assert!(log.contains(part), "{part:?} in the agent's message:\n{log}");
    }
    assert!(!log.contains("verifier"), "refused before the verifier runs:\n{log}");
}

/// A peer's own view: its `up` line.
struct Up {
    laddrs: BTreeSet<IpAddr>,
    paddrs: BTreeSet<IpAddr>,
}

fn addrs(v: &Value) -> BTreeSet<IpAddr> {
    v.as_array().expect("address list").iter().map(|a| a.as_str().unwrap().parse().unwrap()).collect()
}

fn up(file: &Path) -> Up {
    let lines = json_lines(file);
    let up = lines.iter().find(|l| l["ev"] == "up").unwrap_or_else(|| panic!("no up line in {}", file.display()));
    let exit = lines.iter().find(|l| l["ev"] == "exit").unwrap_or_else(|| panic!("no exit in {}", file.display()));
    assert_eq!(exit["code"], 0, "{} ended badly: {exit}", file.display());
    Up { laddrs: addrs(&up["laddrs"]), paddrs: addrs(&up["paddrs"]) }
}

/// Which end sends: the client started the association (the initiator).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum End {
    Client,
    Server,
}

/// New DATA going to another destination than the previous new DATA of the
/// same sender.
#[derive(Debug)]
struct Move {
    ts: f64,
    end: End,
    to: IpAddr,
}

/// The wire's moves: per sender, a DATA chunk is new when its TSN is above
/// every TSN that sender sent before (serial arithmetic); a move is the
/// first new DATA to another destination.
fn wire_moves(ts: &str, capture: &Path, client: &BTreeSet<IpAddr>) -> Vec<Move> {
    let fields = ["frame.time_epoch", "ip.src", "ip.dst", "ipv6.src", "ipv6.dst", "sctp.data_tsn"];
    let text = tshark::sctp_fields(ts, capture, &fields);
    let mut highest: HashMap<End, u32> = HashMap::new();
    let mut last_dst: HashMap<End, IpAddr> = HashMap::new();
    let mut moves = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        let tsns: Vec<u32> = tshark::list(f[5]).iter().map(|t| tshark::num(t) as u32).collect();
        if tsns.is_empty() {
            continue;
        }
        let (src, dst) = if f[1].is_empty() { (f[3], f[4]) } else { (f[1], f[2]) };
        let (src, dst): (IpAddr, IpAddr) = (src.parse().unwrap(), dst.parse().unwrap());
        let end = if client.contains(&src) { End::Client } else { End::Server };
        let mut new = false;
        for tsn in tsns {
            if highest.get(&end).is_none_or(|&h| (tsn.wrapping_sub(h) as i32) > 0) {
                highest.insert(end, tsn);
                new = true;
            }
        }
        if !new {
            continue;
        }
        if last_dst.get(&end).is_some_and(|&d| d != dst) {
            moves.push(Move { ts: f[0].parse().unwrap(), end, to: dst });
        }
        last_dst.insert(end, dst);
    }
    moves
}

/// Whether an event reports a move of new DATA (by the schema's names, or
/// by carrying its first new DATA).
fn is_move(e: &Value) -> bool {
    // Every move of new DATA names the path it left (the association's
    // first new DATA, `primary_changed` with cause initial, moves nothing).
    e.get("first_new_data").is_some() && e.get("from").is_some()
}

fn epoch(rfc3339: &Value) -> f64 {
    let s = rfc3339.as_str().expect("a time stamp");
    sctp_monitor::top::state::parse_rfc3339(s).unwrap_or_else(|| panic!("time stamp {s}"))
}

/// This test's judgement of one artifact directory: the association and
/// its address sets as the peers have them, and the agent's moves against
/// the wire's.
fn check_against_wire(dir: &Path, ts: &str) {
    let client = up(&dir.join("client.jsonl"));
    let server = up(&dir.join("server.jsonl"));
    assert_eq!(client.paddrs, server.laddrs, "the client's peer addresses are the server's");
    assert_eq!(server.paddrs, client.laddrs, "the server's peer addresses are the client's");
    assert_eq!(client.laddrs.len(), 2, "multihomed");

    let events = json_lines(&dir.join("agent.jsonl"));
    let ups: Vec<&Value> = events.iter().filter(|e| e["event"] == "association_up").collect();
    assert_eq!(ups.len(), 1, "one association: {ups:?}");
    assert_eq!(addrs(&ups[0]["initiator"]["addrs"]), client.laddrs, "the initiator's addresses: {}", ups[0]);
    assert_eq!(addrs(&ups[0]["responder"]["addrs"]), server.laddrs, "the responder's addresses: {}", ups[0]);

    let wire = wire_moves(ts, &dir.join("capture.pcap"), &client.laddrs);
    let reported: Vec<&Value> = events.iter().filter(|e| is_move(e)).collect();
    eprintln!("wire moves of new DATA:");
    for m in &wire {
        eprintln!("  {:.6} {:?} -> {}", m.ts, m.end, m.to);
    }
    let mut used = vec![false; wire.len()];
    for e in &reported {
        let end = match e["endpoint"].as_str() {
            Some("initiator") => End::Client,
            Some("responder") => End::Server,
            other => panic!("a move without its endpoint ({other:?}): {e}"),
        };
        let at = epoch(e.get("first_new_data").unwrap_or(&e["ts"]));
        let to: IpAddr = e["to"]["dst"].as_str().expect("to.dst").parse().unwrap();
        let hit = wire
            .iter()
            .enumerate()
            .position(|(i, m)| !used[i] && m.end == end && m.to == to && (m.ts - at).abs() <= MOVE_TOLERANCE_S);
        eprintln!(
            "  reported {:.6} {end:?} -> {to}: {}",
            at,
            if hit.is_some() { "on the wire" } else { "NOT on the wire" }
        );
        let Some(i) = hit else {
            let nearest = wire
                .iter()
                .filter(|m| m.end == end && m.to == to)
                .map(|m| m.ts - at)
                .min_by(|a, b| a.abs().total_cmp(&b.abs()));
            panic!(
                "a reported move the wire does not show within {MOVE_TOLERANCE_S} s (the wire's nearest move of \
                 that sender to that destination: {}; is its first_new_data a retransmission?): {e}",
                nearest.map_or("none".into(), |d| format!("{d:+.3} s"))
            );
        };
        used[i] = true;
    }

    let meta: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("meta.json")).unwrap()).unwrap();
    let (cut, restore) = (meta["cut_ts"].as_f64().unwrap(), meta["restore_ts"].as_f64().unwrap());
    let primary: IpAddr = "10.201.1.2".parse().unwrap();
    let failover = wire.iter().position(|m| m.end == End::Client && m.ts >= cut && m.ts < restore && m.to != primary);
    let failover = failover.expect("the client moved its new DATA off the cut path during the cut");
    assert!(used[failover], "the client's failover at {:.6} is reported", wire[failover].ts);
}
