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
//! - Debian 12's 6.1 again: a receiver that stops reading (`run.sh
//!   --cut stallread`: the server's socket with an 8 KiB receive buffer
//!   stops reading for 5 s while the client sends 200 messages of 1000
//!   bytes a second). Its window closes and opens again; every
//!   `window_zero` / `window_open` the agent reports is an a_rwnd
//!   transition of the SACKs tshark decodes (same receiver, same path,
//!   within [`WINDOW_TOLERANCE_S`]) and every transition is reported, live
//!   and by `replay` of the capture alike.
//! - Debian 11's 5.10: the agent refuses the kernel before loading, naming
//!   its release, the missing bpf_loop and Linux 5.17.
//!
//! One boot per run, one at a time (about 50 s, 50 s and 25 s under
//! software emulation). Needs root, QEMU, virtme-ng and the kernel packages (`cargo
//! xtask setup --tests`); under CI what is missing fails the test, elsewhere
//! it is skipped. The deeper comparison (path states against the stack's
//! notifications, live against offline) is the fidelity comparer's, which
//! reads the same artifact directory; [`check_against_wire`] is this test's
//! part.

mod support;

use std::{
    collections::{BTreeSet, HashMap},
    net::IpAddr,
    path::{Path, PathBuf},
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

/// A reported window event and the wire's SACK that made it agree within
/// this (the agent stamps the kernel's time of the SACK, tcpdump its own).
const WINDOW_TOLERANCE_S: f64 = 0.005;

/// The live agent's window events and replay's of the capture agree within
/// this.
const REPLAY_TOLERANCE_S: f64 = 0.001;

/// One guest at a time: two under software emulation on two cores would
/// slow each other's timers.
static GUEST: Mutex<()> = Mutex::new(());

fn agent() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_sctp-monitor"))
}

/// A run of `cut` in the Linux 6.1 guest (one guest at a time, IPv4, PF
/// on), its directory holding the files every run leaves, checked; with
/// tshark to judge it. `None` (a message said why) without the guest's
/// kernel or tshark, outside CI.
fn run_6_1(test: &str, cut: &str) -> Option<(TempDir, PathBuf, &'static str)> {
    if !guest::ready(test, &["6.1"]) {
        return None;
    }
    let ts = tshark::find()?;
    let _one = GUEST.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = TempDir::new(&format!("linux-sctp-{cut}"));
    let dir = guest::failover_run("6.1", "ipv4", cut, "on", agent(), &tmp.path("run"));
    let mut files: Vec<String> =
        std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    files.sort();
    assert_eq!(files, ["agent.jsonl", "agent.log", "capture.pcap", "client.jsonl", "meta.json", "server.jsonl"]);
    Some((tmp, dir, ts))
}

#[test]
fn linux_6_1_ipv4_blackhole_failover() {
    let Some((_tmp, dir, ts)) = run_6_1("linux_6_1_ipv4_blackhole_failover", "blackhole") else { return };
    check_against_wire(&dir, ts);
}

#[test]
fn linux_6_1_receiver_that_stops_reading_closes_its_window() {
    let Some((_tmp, dir, ts)) = run_6_1("linux_6_1_receiver_that_stops_reading_closes_its_window", "stallread") else {
        return;
    };
    check_windows(&dir, ts);
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

/// A receiver's window closing or opening, as its SACKs on the wire show:
/// a_rwnd 0 after a nonzero one (or in its first SACK) closes it, a nonzero
/// one after 0 opens it.
#[derive(Debug)]
struct WindowChange {
    ts: f64,
    /// The receiver: the SACK's sender.
    end: End,
    src: IpAddr,
    dst: IpAddr,
    a_rwnd: u32,
    /// An opening: when the window closed.
    closed_at: Option<f64>,
}

/// Each end's SACKs on the wire: how many, and their smallest a_rwnd.
type SackSummary = HashMap<End, (u64, u32)>;

/// The wire's window changes, per receiver over all its paths (as the
/// agent keeps the state: the window is the receiver's, not a path's).
fn wire_windows(ts: &str, capture: &Path, client: &BTreeSet<IpAddr>) -> (Vec<WindowChange>, SackSummary) {
    let fields = ["frame.time_epoch", "ip.src", "ip.dst", "ipv6.src", "ipv6.dst", "sctp.sack_a_rwnd"];
    let text = tshark::sctp_fields(ts, capture, &fields);
    let mut closed_at: HashMap<End, f64> = HashMap::new();
    let mut summary = SackSummary::new();
    let mut changes = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        let rwnds: Vec<u32> = tshark::list(f[5]).iter().map(|r| tshark::num(r) as u32).collect();
        if rwnds.is_empty() {
            continue;
        }
        let (src, dst) = if f[1].is_empty() { (f[3], f[4]) } else { (f[1], f[2]) };
        let (src, dst): (IpAddr, IpAddr) = (src.parse().unwrap(), dst.parse().unwrap());
        let end = if client.contains(&src) { End::Client } else { End::Server };
        let t: f64 = f[0].parse().unwrap();
        for a_rwnd in rwnds {
            let s = summary.entry(end).or_insert((0, u32::MAX));
            *s = (s.0 + 1, s.1.min(a_rwnd));
            match (closed_at.get(&end).copied(), a_rwnd) {
                (None, 0) => {
                    closed_at.insert(end, t);
                    changes.push(WindowChange { ts: t, end, src, dst, a_rwnd, closed_at: None });
                }
                (Some(at), 1..) => {
                    closed_at.remove(&end);
                    changes.push(WindowChange { ts: t, end, src, dst, a_rwnd, closed_at: Some(at) });
                }
                _ => {}
            }
        }
    }
    (changes, summary)
}

/// A window event of the agent's (live or replayed).
#[derive(Debug)]
struct WindowEvent {
    open: bool,
    ts: f64,
    end: End,
    src: IpAddr,
    dst: IpAddr,
    a_rwnd: u32,
    window_zero_ms: Option<u64>,
}

fn window_events(events: &[Value]) -> Vec<WindowEvent> {
    events
        .iter()
        .filter(|e| e["event"] == "window_zero" || e["event"] == "window_open")
        .map(|e| {
            let end = match e["endpoint"].as_str() {
                Some("initiator") => End::Client,
                Some("responder") => End::Server,
                other => panic!("a window event without its endpoint ({other:?}): {e}"),
            };
            let addr = |k: &str| -> IpAddr { e["path"][k].as_str().expect("path").parse().unwrap() };
            WindowEvent {
                open: e["event"] == "window_open",
                ts: epoch(&e["ts"]),
                end,
                src: addr("src"),
                dst: addr("dst"),
                a_rwnd: e["a_rwnd"].as_u64().unwrap_or_else(|| panic!("a_rwnd: {e}")) as u32,
                window_zero_ms: e["window_zero_ms"].as_u64(),
            }
        })
        .collect()
}

/// The server's `ev` line's time.
fn line_ts(lines: &[Value], ev: &str) -> f64 {
    let l = lines.iter().find(|l| l["ev"] == ev).unwrap_or_else(|| panic!("no {ev} line of the server's"));
    l["ts"].as_f64().expect("ts")
}

/// This test's judgement of a stalled-reader run: the agent's window
/// events against the wire's a_rwnd transitions both ways, the server's
/// window closed while it did not read and opened when it read again, and
/// replay of the capture reporting the same.
fn check_windows(dir: &Path, ts: &str) {
    let client = up(&dir.join("client.jsonl"));
    let server = up(&dir.join("server.jsonl"));
    assert_eq!(client.paddrs, server.laddrs, "the client's peer addresses are the server's");
    let server_lines = json_lines(&dir.join("server.jsonl"));
    let (paused, resumed) = (line_ts(&server_lines, "pause_read"), line_ts(&server_lines, "resume_read"));
    let meta: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("meta.json")).unwrap()).unwrap();
    assert_eq!(meta["cut"], "stallread", "{meta}");

    let events = json_lines(&dir.join("agent.jsonl"));
    let ups: Vec<&Value> = events.iter().filter(|e| e["event"] == "association_up").collect();
    assert_eq!(ups.len(), 1, "one association: {ups:?}");

    let (wire, sacks) = wire_windows(ts, &dir.join("capture.pcap"), &client.laddrs);
    eprintln!("the server read nothing from {paused:.6} to {resumed:.6}; SACKs (count, smallest a_rwnd): {sacks:?}");
    eprintln!("wire window changes:");
    for c in &wire {
        let what = if c.closed_at.is_some() { "opens" } else { "closes" };
        eprintln!("  {:.6} {:?} {what} ({} -> {}, a_rwnd {})", c.ts, c.end, c.src, c.dst, c.a_rwnd);
    }
    // The run did what it is for: the server's window closed while it did
    // not read, and opened when it read again.
    let close = wire.iter().find(|c| c.end == End::Server && c.closed_at.is_none() && c.ts >= paused);
    let Some(close) = close.filter(|c| c.ts <= resumed) else {
        panic!(
            "the server's window did not close while it did not read ({paused:.6} to {resumed:.6}): its SACKs \
             (count, smallest a_rwnd) {:?}; a smaller --rcvbuf or a faster client is needed",
            sacks.get(&End::Server)
        );
    };
    let open = wire.iter().find(|c| c.end == End::Server && c.closed_at.is_some() && c.ts >= close.ts);
    let open =
        open.unwrap_or_else(|| panic!("the server's window did not open again after it read again at {resumed:.6}"));
    assert!(open.ts >= resumed, "the server's window opened at {:.6}, before it read again at {resumed:.6}", open.ts);
    eprintln!(
        "the server's window closed {:.0} ms after it stopped reading and opened {:.0} ms after it read again",
        (close.ts - paused) * 1e3,
        (open.ts - resumed) * 1e3
    );

    // Every event of the agent's is a transition on the wire, and every
    // transition is reported.
    let live = window_events(&events);
    let mut used = vec![false; wire.len()];
    for e in &live {
        let hit = wire.iter().enumerate().position(|(i, c)| {
            !used[i]
                && c.closed_at.is_some() == e.open
                && (c.end, c.src, c.dst) == (e.end, e.src, e.dst)
                && (c.ts - e.ts).abs() <= WINDOW_TOLERANCE_S
        });
        let Some(i) = hit else {
            panic!("a reported window event the wire does not show within {WINDOW_TOLERANCE_S} s: {e:?}");
        };
        used[i] = true;
        let c = &wire[i];
        eprintln!(
            "  reported {:.6} ({:+.3} ms from the wire's){}",
            e.ts,
            (e.ts - c.ts) * 1e3,
            match (e.window_zero_ms, c.closed_at) {
                (Some(ms), Some(at)) => format!(", window_zero_ms {ms} (the wire's {:.1})", (c.ts - at) * 1e3),
                _ => String::new(),
            }
        );
        assert_eq!(e.a_rwnd, c.a_rwnd, "the a_rwnd of {e:?}: the wire's SACK says {}", c.a_rwnd);
        if let Some(at) = c.closed_at {
            let wire_ms = (c.ts - at) * 1e3;
            let ms = e.window_zero_ms.unwrap_or_else(|| panic!("window_open without window_zero_ms: {e:?}"));
            // Each end of the interval within the tolerance, and whole
            // milliseconds.
            assert!(
                (ms as f64 - wire_ms).abs() <= 2.0 * WINDOW_TOLERANCE_S * 1e3 + 1.0,
                "window_zero_ms {ms} of {e:?}: the wire's window stayed closed {wire_ms:.1} ms"
            );
        }
    }
    let missed: Vec<&WindowChange> = wire.iter().zip(&used).filter(|(_, u)| !**u).map(|(c, _)| c).collect();
    assert!(missed.is_empty(), "window changes on the wire the agent did not report: {missed:?}");

    // Replay of the capture reports the same.
    let out = std::process::Command::new(agent())
        .arg("replay")
        .arg("--json")
        .arg("--path-max-retrans")
        .arg(meta["path_max_retrans"].to_string())
        .arg(dir.join("capture.pcap"))
        .output()
        .expect("run sctp-monitor replay");
    assert!(out.status.success(), "replay: {}", String::from_utf8_lossy(&out.stderr));
    let replayed: Vec<Value> =
        String::from_utf8_lossy(&out.stdout).lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let replayed = window_events(&replayed);
    assert_eq!(replayed.len(), live.len(), "window events live {live:?}, replayed {replayed:?}");
    for (l, r) in live.iter().zip(&replayed) {
        let same = (l.open, l.end, l.src, l.dst, l.a_rwnd) == (r.open, r.end, r.src, r.dst, r.a_rwnd)
            && (l.ts - r.ts).abs() <= REPLAY_TOLERANCE_S
            && l.window_zero_ms.is_some() == r.window_zero_ms.is_some()
            && l.window_zero_ms.unwrap_or(0).abs_diff(r.window_zero_ms.unwrap_or(0)) <= 1;
        assert!(same, "live and replay differ:\n live   {l:?}\n replay {r:?}");
    }
}
