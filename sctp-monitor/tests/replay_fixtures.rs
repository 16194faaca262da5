//! The committed captures of real usrsctp associations (`tests/fixtures`)
//! through `replay`, compared with what the stack itself said and with
//! tshark's reading of the same files.
//!
//! Each `NAME.pcap` has a `NAME.expect.json` sidecar written by
//! `tests/peer/analyze.py` (via `selftest.sh`): the client's and the server's
//! `usrsctp_getladdrs`/`getpaddrs`, their SCTP_PEER_ADDR_CHANGE and
//! SCTP_ASSOC_CHANGE notifications with CLOCK_REALTIME times (the capture's
//! clock), the lab's cut and restore times, and `wire_tshark`, tshark's
//! reading of the capture (tags, address sets, chunk counts total and per lab
//! path, failover per direction).
//!
//! Where the capture sits matters for the comparisons. It was taken on both
//! veths of the client's namespace (sctpmon-a); the cut is an nftables drop
//! in the server's namespace (sctpmon-b), in and out. So:
//! - everything the client sends is on the wire, including what the cut then
//!   drops: its heartbeats and T3 retransmissions are visible, and the
//!   monitor's view of its paths can be held close to its notifications;
//! - what the server sends on the cut path is dropped before it reaches the
//!   capture: its heartbeats to the cut address and the first transmissions
//!   of its DATA there are never seen. Its notifications can only bound the
//!   monitor's view (nothing before the cut, nothing the wire contradicts).
//!
//! tshark is run live by `tshark_chunk_counts_per_association_and_path`; it
//! skips with a message when tshark is missing, and fails under CI (`CI` set)
//! where `cargo xtask setup --tests` installs it.

mod support;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use support::process::TempDir;

use serde_json::Value;

use sctp_monitor::event::{DownReason, Event, EventKind, PathRef, Role};
use sctp_monitor::replay::{ReplayError, ReplayOptions, ReplayOutcome, chunk_name, replay};
use sctp_monitor::tracker::{AssocView, Config, PathState};

const FIXTURES: &[&str] = &[
    "usrsctp-multihomed-failover",
    "usrsctp-multihomed-failover-ipv6",
    "usrsctp-multihomed-failover-mixed-v4v6",
    "usrsctp-multihomed-failover-udp",
    "usrsctp-multihomed-failover-wrong-source",
];

const MS: i64 = 1_000_000;

/// The failover's first new DATA against tshark's: the same packet of the
/// same file, so the only difference is tshark's float seconds (sub-µs).
const FAILOVER_TOLERANCE_NS: i64 = 2 * MS;

/// The client's "unreachable" against the monitor's path_down. The client
/// declares the address unreachable when an error takes its error count over
/// Path.Max.Retrans. When that error is a T3-rtx expiry, the retransmission
/// the monitor counts follows at once: the monitor is late by the time the
/// stack takes to build that packet (tens of µs in these captures; 10 ms
/// leaves room for a loaded machine). But usrsctp's heartbeat timer also
/// counts an error for a path whose heartbeat went unanswered without
/// sending anything (`sctp_heartbeat_timer`, `hb_responded == 0`): that error
/// is not on the wire. The decision then shows when the next new DATA goes
/// to the alternate (the failover, which with evidence on the old path
/// takes it down): at most one message interval (1 / params.rate) later.
/// It is never earlier than the stack by more than the 10 ms.
const DOWN_EARLY_NS: i64 = 10 * MS;

/// The client's "available" against the monitor's path_up. The client marks
/// the address available when it receives the HEARTBEAT-ACK that the monitor
/// sees on the wire just before (tens of µs).
const UP_TOLERANCE_NS: i64 = 10 * MS;

/// Association up/down against COMM_UP / SHUTDOWN_COMP of the stack: the
/// monitor reports up on COOKIE-ACK and down on SHUTDOWN-COMPLETE, the two
/// stacks on sending or receiving them.
const ASSOC_TOLERANCE_NS: i64 = 20 * MS;

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

struct Fixture {
    name: &'static str,
    pcap: PathBuf,
    x: Value,
}

impl Fixture {
    fn load(name: &'static str) -> Fixture {
        let dir = fixture_dir();
        let json = dir.join(format!("{name}.expect.json"));
        let text = std::fs::read_to_string(&json).unwrap_or_else(|e| panic!("{}: {e}", json.display()));
        let x: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", json.display()));
        Fixture { name, pcap: dir.join(format!("{name}.pcap")), x }
    }

    fn all() -> Vec<Fixture> {
        FIXTURES.iter().map(|n| Fixture::load(n)).collect()
    }

    fn pcapng(&self) -> Option<PathBuf> {
        self.x["capture"]["pcapng_twin"].as_str().map(|f| fixture_dir().join(f))
    }

    fn param(&self, k: &str) -> u64 {
        self.x["params"][k].as_u64().unwrap_or_else(|| panic!("{}: params.{k} missing", self.name))
    }

    /// The tracker set up like the stack was: a path is unreachable for
    /// usrsctp once its error count exceeds Path.Max.Retrans (errors being
    /// T3-rtx expiries and unanswered heartbeats), so the monitor declares
    /// it down at Path.Max.Retrans + 1 retransmission events or unanswered
    /// heartbeats; a heartbeat is unanswered after RTO.Max.
    fn options(&self) -> ReplayOptions {
        let pmr = self.param("path_max_retrans");
        let mut o = ReplayOptions::default();
        o.tracker = Config {
            hb_down_after: (pmr + 1) as u8,
            retrans_down_after: (pmr + 1) as u16,
            hb_answer_timeout_ns: self.param("rto_max_ms") * 1_000_000,
            ..o.tracker
        };
        if let Some(p) = self.x["udp_port"].as_u64() {
            o.udp_port = p as u16;
        }
        o
    }

    fn replay(&self) -> ReplayOutcome {
        replay_file(&self.pcap, &self.options())
    }

    fn t(&self, v: &Value) -> i64 {
        secs_to_ns(v).unwrap_or_else(|| panic!("{}: not a time: {v}", self.name))
    }

    fn cut_at(&self) -> i64 {
        self.t(&self.x["lab"]["cut_at"])
    }

    fn restored_at(&self) -> i64 {
        self.t(&self.x["lab"]["restored_at"])
    }

    /// Addresses of the lab path `n` (both ends, v4 and v6).
    fn lab_path_addrs(&self, n: u64) -> Vec<IpAddr> {
        let p = &self.x["lab"]["paths"][n.to_string()];
        ["client", "server"].iter().flat_map(|s| addrs(&p[*s])).collect()
    }

    /// Lab path number of an address.
    fn lab_path_of(&self, a: IpAddr) -> Option<u64> {
        (1..=2).find(|&n| self.lab_path_addrs(n).contains(&a))
    }
}

fn replay_file(path: &Path, opts: &ReplayOptions) -> ReplayOutcome {
    let o = replay(path, opts).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(o.error.is_none(), "{}: {:?}", path.display(), o.error);
    o
}

fn secs_to_ns(v: &Value) -> Option<i64> {
    v.as_f64().map(|s| (s * 1e9).round() as i64)
}

fn addrs(v: &Value) -> Vec<IpAddr> {
    v.as_array()
        .map(|a| a.iter().map(|x| x.as_str().expect("address string").parse().expect("address")).collect())
        .unwrap_or_default()
}

fn sorted(mut v: Vec<IpAddr>) -> Vec<IpAddr> {
    v.sort();
    v
}

fn path_ref(v: &Value) -> PathRef {
    PathRef {
        src: v["src"].as_str().expect("src").parse().expect("src address"),
        dst: v["dst"].as_str().expect("dst").parse().expect("dst address"),
    }
}

fn ms(d: i64) -> String {
    format!("{:.3} ms", d as f64 / 1e6)
}

fn the_association(f: &Fixture, o: &ReplayOutcome) -> AssocView {
    assert_eq!(o.associations.len(), 1, "{}: one association, not {:#?}", f.name, o.associations);
    o.associations[0].clone()
}

fn of(o: &ReplayOutcome, k: EventKind) -> Vec<&Event> {
    o.events.iter().filter(|e| e.event == k).collect()
}

/// (sidecar key, the sending endpoint's role, its stack view key).
const DIRECTIONS: [(&str, Role, &str); 2] = [
    ("failover_client_to_server", Role::Initiator, "client"),
    ("failover_server_to_client", Role::Responder, "server"),
];

#[test]
fn address_sets_and_tags_match_the_stack() {
    for f in Fixture::all() {
        let o = f.replay();
        let a = the_association(&f, &o);
        let (client, server) = (&f.x["client"], &f.x["server"]);
        assert!(a.handshake_seen, "{}", f.name);
        // Both views of each endpoint's set: its own getladdrs and the
        // peer's getpaddrs. In `wrong-source` the INIT left from the other
        // path's address: still the same set, no address invented.
        for (ep, own, peer) in [(&a.initiator, client, server), (&a.responder, server, client)] {
            assert_eq!(sorted(ep.addrs.clone()), sorted(addrs(&own["laddrs"])), "{}: getladdrs", f.name);
            assert_eq!(sorted(ep.addrs.clone()), sorted(addrs(&peer["paddrs"])), "{}: peer's getpaddrs", f.name);
            assert_eq!(Some(ep.port as u64), own["port"].as_u64(), "{}", f.name);
        }
        let w = &f.x["wire_tshark"]["association"];
        assert_eq!(a.initiator.vtag.map(u64::from), w["initiator"]["vtag"].as_u64(), "{}: initiator's tag", f.name);
        assert_eq!(a.responder.vtag.map(u64::from), w["responder"]["vtag"].as_u64(), "{}: responder's tag", f.name);
        // Every path is between the two sets, in the right direction.
        for p in &a.paths {
            let (s, d) = match p.sender {
                Role::Initiator => (&a.initiator, &a.responder),
                Role::Responder => (&a.responder, &a.initiator),
            };
            assert!(s.addrs.contains(&p.src) && d.addrs.contains(&p.dst), "{}: path {p:?}", f.name);
        }
        assert_eq!(o.tracker.unmatched_packets, 0, "{}", f.name);
        assert_eq!(o.tracker.associations_created, 1, "{}", f.name);
        assert_eq!(o.malformed_packets, 0, "{}", f.name);
        for k in [EventKind::AddressAdded, EventKind::AddressRemoved, EventKind::Restart, EventKind::Stalled] {
            assert!(of(&o, k).is_empty(), "{}: unexpected {k:?}", f.name);
        }
    }
}

#[test]
fn association_up_and_down_with_reason_shutdown() {
    for f in Fixture::all() {
        let o = f.replay();
        let a = the_association(&f, &o);
        assert_eq!(a.ended, Some(DownReason::Shutdown), "{}", f.name);
        let up = of(&o, EventKind::AssociationUp);
        let down = of(&o, EventKind::AssociationDown);
        assert_eq!((up.len(), down.len()), (1, 1), "{}", f.name);
        assert_eq!(up[0].handshake_seen, Some(true));
        assert_eq!(down[0].reason, Some(DownReason::Shutdown), "{}", f.name);
        let change = |who: &str, state: &str| {
            f.x[who]["assoc_changes"]
                .as_array()
                .expect("assoc_changes")
                .iter()
                .find(|c| c["state"] == state)
                .map(|c| f.t(&c["ts"]))
                .unwrap_or_else(|| panic!("{}: {who} {state}", f.name))
        };
        for who in ["client", "server"] {
            let d = up[0].ts as i64 - change(who, "COMM_UP");
            assert!(d.abs() <= ASSOC_TOLERANCE_NS, "{}: up vs {who} COMM_UP {}", f.name, ms(d));
            let d = down[0].ts as i64 - change(who, "SHUTDOWN_COMP");
            assert!(d.abs() <= ASSOC_TOLERANCE_NS, "{}: down vs {who} SHUTDOWN_COMP {}", f.name, ms(d));
        }
        for e in up.iter().chain(&down) {
            let i = e.initiator.as_ref().expect("initiator");
            let r = e.responder.as_ref().expect("responder");
            assert_eq!(sorted(i.addrs.clone()), sorted(a.initiator.addrs.clone()));
            assert_eq!(sorted(r.addrs.clone()), sorted(a.responder.addrs.clone()));
        }
    }
}

#[test]
fn failover_per_direction_matches_the_wire() {
    for f in Fixture::all() {
        let o = f.replay();
        let (cut, restored) = (f.cut_at(), f.restored_at());
        for (key, role, _) in DIRECTIONS {
            let w = &f.x["wire_tshark"][key];
            let fos: Vec<&Event> =
                of(&o, EventKind::Failover).into_iter().filter(|e| e.endpoint == Some(role)).collect();
            let Some(fo) = w.get("failover") else {
                // `wrong-source`: the server's primary was the path that
                // survived; its DATA never moved.
                assert!(fos.is_empty(), "{}: {role:?}: no failover on the wire: {fos:#?}", f.name);
                continue;
            };
            let back = w.get("back_on_restored_path");
            assert_eq!(fos.len(), 1, "{}: {role:?} failovers: {fos:#?}", f.name);
            let backs: Vec<&Event> =
                of(&o, EventKind::Failback).into_iter().filter(|e| e.endpoint == Some(role)).collect();
            assert_eq!(backs.len(), back.is_some() as usize, "{}: {role:?} failbacks: {backs:#?}", f.name);
            let first = fos[0];
            let (from, to) = (path_ref(&fo["from"]), path_ref(&fo["to"]));
            assert_eq!(first.from, Some(from), "{}: {role:?}", f.name);
            assert_eq!(first.to, Some(to), "{}: {role:?}", f.name);
            let d = first.ts as i64 - f.t(&fo["ts"]);
            assert!(d.abs() <= FAILOVER_TOLERANCE_NS, "{}: {role:?} failover {} from tshark's", f.name, ms(d));
            assert_eq!(first.first_new_data, Some(first.ts));
            assert!(first.ts as i64 > cut && (first.ts as i64) < restored);
            // The retransmission to the alternate path came first and was
            // not taken for the failover.
            let rtx = &w["first_retransmission_on_alternate"];
            let rtx_ts = f.t(&rtx["ts"]);
            assert!(rtx_ts < first.ts as i64, "{}: the capture has the case", f.name);
            assert_eq!(path_ref(rtx), to, "{}: retransmitted on the failover's path", f.name);
            // Last DATA on the old path, and the evidence against it: the
            // DATA it lost went again on the alternate.
            if let Some(last) = w.get("last_data_on_old_path_ts") {
                let d = first.last_old_data.expect("last_old_data") as i64 - f.t(last);
                assert!(d.abs() <= FAILOVER_TOLERANCE_NS, "{}: last old DATA {}", f.name, ms(d));
            }
            let ev = first.evidence.unwrap_or_else(|| panic!("{}: {role:?}: no evidence", f.name));
            assert!(ev.retransmissions >= 1, "{}: {role:?}: {ev:?}", f.name);
            if let Some(b) = back {
                let again = backs[0];
                let d = again.ts as i64 - f.t(&b["ts"]);
                assert!(d.abs() <= FAILOVER_TOLERANCE_NS, "{}: back {}", f.name, ms(d));
                assert_eq!(again.from, Some(to), "{}: back from the alternate", f.name);
                assert_eq!(again.to, Some(path_ref(b)), "{}: back on the restored path", f.name);
            }
        }
    }
}

/// Path down/up against SCTP_PEER_ADDR_CHANGE. The monitor's paths are
/// (source, destination) per sending endpoint; the stack's notification is
/// about a destination address, so "the endpoint's path to X" is any path it
/// sends on with destination X.
#[test]
fn path_events_agree_with_peer_addr_change() {
    for f in Fixture::all() {
        let o = f.replay();
        let (cut, restored) = (f.cut_at(), f.restored_at());
        let cut_addrs = f.lab_path_addrs(f.x["lab"]["cut_path"].as_u64().expect("cut_path"));
        let downs = of(&o, EventKind::PathDown);
        // Only the cut path goes down, and only while it is cut: the
        // alternate carrying the retransmissions stays up.
        for d in &downs {
            let p = d.path.expect("path");
            assert!(cut_addrs.contains(&p.dst), "{}: {d:?} is not the cut path", f.name);
            assert!(d.ts as i64 > cut && (d.ts as i64) < restored, "{}: {d:?} outside the cut", f.name);
        }
        for (_, role, who) in DIRECTIONS {
            let notes = f.x[who]["peer_addr_changes"].as_array().expect("notes");
            let first = |state: &str, after: i64| {
                notes
                    .iter()
                    .find(|n| n["state"] == state && f.t(&n["ts"]) >= after)
                    .map(|n| (n["addr"].as_str().expect("addr").parse::<IpAddr>().expect("a"), f.t(&n["ts"])))
            };
            let unreachable = first("ADDR_UNREACHABLE", cut);
            let available = first("ADDR_AVAILABLE", restored);
            let mine = |k: EventKind, dst: IpAddr| -> Vec<&Event> {
                of(&o, k)
                    .into_iter()
                    .filter(|e| e.endpoint == Some(role) && e.path.is_some_and(|p| p.dst == dst))
                    .collect()
            };
            let (Some((x, t_down)), Some((y, t_up))) = (unreachable, available) else {
                panic!("{}: {who}: no unreachable/available pair after the cut", f.name);
            };
            assert_eq!(x, y, "{}: {who}", f.name);
            assert!(cut_addrs.contains(&x), "{}: {who} lost {x}", f.name);
            let down = mine(EventKind::PathDown, x);
            let up: Vec<&Event> = mine(EventKind::PathUp, x).into_iter().filter(|e| e.ts as i64 > cut).collect();
            if role == Role::Initiator {
                // The capture side: both transitions are on the wire.
                assert_eq!(down.len(), 1, "{}: {who} path down to {x}: {:#?}", f.name, o.events);
                let d = down[0].ts as i64 - t_down;
                let late = 1_000 * MS / f.param("rate") as i64 + DOWN_EARLY_NS;
                assert!(
                    (-DOWN_EARLY_NS..=late).contains(&d),
                    "{}: {who} down {} from the stack's (allowed -{} .. +{})",
                    f.name,
                    ms(d),
                    ms(DOWN_EARLY_NS),
                    ms(late)
                );
                assert_eq!(up.len(), 1, "{}: {who} path up to {x}", f.name);
                let d = up[0].ts as i64 - t_up;
                assert!(d.abs() <= UP_TOLERANCE_NS, "{}: {who} up {} from the stack's", f.name, ms(d));
                assert!(up[0].rtt_us.is_some(), "{}: up by an answered heartbeat", f.name);
            } else {
                // The far side: its packets on the cut path were dropped
                // before the capture. A path down, if any, is not before
                // the stack's own; a path up follows one. Where its DATA
                // moved on the wire (a failover with a retransmission
                // first), that failover shows the down: within the same
                // bounds as the client's.
                for d in &down {
                    assert!(d.ts as i64 >= t_down - DOWN_EARLY_NS, "{}: {who} {d:?}", f.name);
                }
                assert!(up.len() <= down.len(), "{}: {who} up without down", f.name);
                if f.x["wire_tshark"]["failover_server_to_client"].get("failover").is_some() {
                    assert_eq!(down.len(), 1, "{}: {who} path down to {x}", f.name);
                    let d = down[0].ts as i64 - t_down;
                    let late = 1_000 * MS / f.param("rate") as i64 + DOWN_EARLY_NS;
                    assert!((-DOWN_EARLY_NS..=late).contains(&d), "{}: {who} down {}", f.name, ms(d));
                }
            }
        }
        // At the end every path is up again.
        let a = the_association(&f, &o);
        for p in &a.paths {
            assert_eq!(p.state, PathState::Active, "{}: {p:?}", f.name);
        }
    }
}

/// Chunks counted per association by the replay against tshark's reading
/// at fixture time (the sidecar): in total and per lab path (packets whose
/// destination is on it, both directions).
#[test]
fn chunk_counts_match_the_sidecar() {
    for f in Fixture::all() {
        let o = f.replay();
        let a = the_association(&f, &o);
        let c = o.chunk_counts.get(&a.id).expect("counts");
        let named = |m: &BTreeMap<u8, u64>| -> BTreeMap<String, u64> {
            m.iter().map(|(t, n)| (chunk_name(*t).into_owned(), *n)).collect()
        };
        let want: BTreeMap<String, u64> =
            serde_json::from_value(f.x["wire_tshark"]["chunk_counts"].clone()).expect("counts");
        assert_eq!(named(&c.total), want, "{}: total", f.name);
        let mut by_lab: BTreeMap<String, BTreeMap<u8, u64>> = BTreeMap::new();
        for ((_, _, dst), m) in &c.by_path {
            let n = f.lab_path_of(*dst).expect("lab path");
            let e = by_lab.entry(n.to_string()).or_default();
            for (t, k) in m {
                *e.entry(*t).or_default() += k;
            }
        }
        let got: BTreeMap<String, BTreeMap<String, u64>> = by_lab.iter().map(|(k, m)| (k.clone(), named(m))).collect();
        let want: BTreeMap<String, BTreeMap<String, u64>> =
            serde_json::from_value(f.x["wire_tshark"]["chunk_counts_by_path"].clone()).expect("by path");
        assert_eq!(got, want, "{}: per path", f.name);
        assert_eq!(o.sctp_packets, f.x["wire_tshark"]["sctp_packets"].as_u64().expect("n"), "{}", f.name);
    }
}

/// What the monitor reports, minus what the file's timestamp resolution
/// changes (pcap: µs, dumpcap's pcapng: ns).
fn comparable(o: &ReplayOutcome) -> (Vec<String>, Vec<String>) {
    let ev = o
        .events
        .iter()
        .map(|e| {
            let mut e = e.clone();
            e.rtt_us = e.rtt_us.map(|r| r / 10);
            e.to_json_line()
        })
        .collect();
    let assocs = o
        .associations
        .iter()
        .map(|a| {
            let paths: Vec<String> = a
                .paths
                .iter()
                .map(|p| {
                    format!(
                        "{:?} {}->{} {:?} {} {} {} {}",
                        p.sender, p.src, p.dst, p.state, p.data_packets, p.data_bytes, p.retransmissions, p.primary
                    )
                })
                .collect();
            format!(
                "{:?} {:?} {:?} {:?} {:?} {:?} {:?} {paths:?}",
                a.state, a.ended, a.initiator, a.responder, a.primary, a.failovers, a.highest_tsn
            )
        })
        .collect();
    (ev, assocs)
}

#[test]
fn pcapng_twin_gives_the_same_result() {
    let mut twins = 0;
    for f in Fixture::all() {
        let Some(ng) = f.pcapng() else { continue };
        twins += 1;
        let a = f.replay();
        let b = replay_file(&ng, &f.options());
        assert!(b.reordered > 0, "dumpcap's pcapng is out of order: the case is tested");
        assert_eq!(comparable(&a), comparable(&b), "{}", f.name);
        assert_eq!(a.chunk_counts, b.chunk_counts);
        assert_eq!((a.packets, a.sctp_packets), (b.packets, b.sctp_packets));
    }
    assert!(twins >= 1, "a pcapng twin is committed");
}

// ------------------------------------------------------------------ CLI

fn cli(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_sctp-monitor")).args(args).output().expect("run sctp-monitor");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn is_rfc3339_micros(s: &str) -> bool {
    // YYYY-MM-DDTHH:MM:SS.uuuuuuZ
    let b = s.as_bytes();
    b.len() == 27
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && b[19] == b'.'
        && b[26] == b'Z'
        && b.iter().enumerate().all(|(i, c)| [4, 7, 10, 13, 16, 19, 26].contains(&i) || c.is_ascii_digit())
}

fn check_endpoint(v: &Value, what: &str) {
    assert!(v["port"].is_u64(), "{what}.port: {v}");
    assert!(v["vtag"].is_u64(), "{what}.vtag: {v}");
    let a = v["addrs"].as_array().unwrap_or_else(|| panic!("{what}.addrs: {v}"));
    assert!(!a.is_empty());
    for x in a {
        x.as_str().and_then(|s| s.parse::<IpAddr>().ok()).unwrap_or_else(|| panic!("{what}.addrs: {x}"));
    }
}

fn check_path(v: &Value, what: &str) {
    for k in ["src", "dst"] {
        v[k].as_str().and_then(|s| s.parse::<IpAddr>().ok()).unwrap_or_else(|| panic!("{what}.{k}: {v}"));
    }
}

#[test]
fn replay_json_is_json_lines_with_the_schema_field_names() {
    for f in Fixture::all() {
        let file = f.pcap.to_str().expect("path");
        let (ok, out, err) = cli(&["replay", "--json", file]);
        assert!(ok, "{}: {err}", f.name);
        let mut kinds = BTreeMap::new();
        // The PPID the peer sent (`params.ppid`): reported once, by number
        // and name, and listed by the association's end.
        let sent = f.x["params"]["ppid"].as_u64().expect("params.ppid");
        let (events, last) = out.trim_end().rsplit_once('\n').expect("events and a summary");
        let summary: Value = serde_json::from_str(last).unwrap_or_else(|e| panic!("{}: {e}: {last}", f.name));
        let o = f.replay();
        assert_eq!(summary["summary"]["packets"], o.packets, "{last}");
        assert_eq!(summary["summary"]["sctp_packets"], o.sctp_packets, "{last}");
        assert_eq!(summary["summary"]["duplicates_folded"], 0, "{last}");
        assert_eq!(summary["summary"]["events"], events.lines().count(), "{last}");
        assert!(summary.get("event").is_none(), "the summary is not an event: {last}");
        for line in events.lines() {
            let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{}: {e}: {line}", f.name));
            let ts = v["ts"].as_str().expect("ts");
            assert!(is_rfc3339_micros(ts), "{ts}");
            assert!(v["assoc"].is_u64(), "{line}");
            assert_eq!(v["schema"], 2, "{line}");
            let k = v["event"].as_str().expect("event").to_string();
            match k.as_str() {
                "association_up" | "association_down" | "restart" => {
                    check_endpoint(&v["initiator"], "initiator");
                    check_endpoint(&v["responder"], "responder");
                    if k == "association_down" {
                        assert_eq!(v["reason"], "shutdown", "{line}");
                        assert_eq!(v["ppids"][0]["id"], sent, "{line}");
                        assert_eq!(v["ppids"].as_array().map(Vec::len), Some(1), "{line}");
                    }
                }
                "protocol_seen" => {
                    check_path(&v["path"], &k);
                    assert_eq!(v["ppid"]["id"], sent, "{line}");
                    assert_eq!(v["ppid"]["name"], "NGAP", "{line}");
                }
                "path_up" | "path_down" | "path_potentially_failed" | "primary_changed" | "stalled" => {
                    check_path(&v["path"], &k)
                }
                "path_degraded" | "path_degraded_end" => {
                    check_path(&v["path"], &k);
                    let w = &v["window"];
                    assert!(w["seconds"].as_u64().is_some_and(|s| s > 0), "{line}");
                    assert!(w["lost_chunks"].as_u64() <= w["data_chunks"].as_u64().map(|d| d * 2), "{line}");
                }
                "failover" | "failback" => {
                    check_path(&v["from"], "from");
                    check_path(&v["to"], "to");
                }
                "address_added" | "address_removed" => {
                    assert!(matches!(v["endpoint"].as_str(), Some("initiator" | "responder")));
                    assert!(v["addr"].is_string());
                }
                other => panic!("{}: unknown event {other}", f.name),
            }
            *kinds.entry(k).or_insert(0) += 1;
        }
        assert_eq!(kinds.get("association_up"), Some(&1), "{}: {kinds:?}", f.name);
        assert_eq!(kinds.get("association_down"), Some(&1), "{}: {kinds:?}", f.name);
        assert!(kinds.get("failover").is_some_and(|&n| n >= 1), "{}: {kinds:?}", f.name);
        // One PPID: reported once for the association.
        assert_eq!(kinds.get("protocol_seen"), Some(&1), "{}: {kinds:?}", f.name);
    }
}

#[test]
fn readable_report_lists_address_sets_paths_and_failover() {
    let f = Fixture::load("usrsctp-multihomed-failover");
    let (ok, out, err) = cli(&["replay", f.pcap.to_str().expect("path")]);
    assert!(ok, "{err}");
    let set = |who: &str| {
        let a: Vec<String> = addrs(&f.x[who]["laddrs"]).iter().map(|a| a.to_string()).collect();
        a
    };
    let line = |prefix: &str| {
        out.lines()
            .find(|l| l.trim_start().starts_with(prefix))
            .unwrap_or_else(|| panic!("no '{prefix}' line in:\n{out}"))
            .to_string()
    };
    for (prefix, who) in [("initiator:", "client"), ("responder:", "server")] {
        let l = line(prefix);
        for a in set(who) {
            assert!(l.contains(&a), "{l} lacks {a}");
        }
    }
    let paths: Vec<&str> = out.lines().filter(|l| l.trim_start().starts_with("path ")).collect();
    assert_eq!(paths.len(), 4, "two lab paths, both directions:\n{out}");
    for p in &paths {
        assert!(p.contains("Active"), "{p}");
        assert!(p.contains("rtt "), "{p}");
        assert!(p.contains("DATA ") && p.contains(" packets "), "{p}");
    }
    let fo = &f.x["wire_tshark"]["failover_client_to_server"]["failover"];
    let (from, to) = (path_ref(&fo["from"]), path_ref(&fo["to"]));
    let want = format!("{} -> {} to {} -> {}", from.src, from.dst, to.src, to.dst);
    assert!(out.lines().any(|l| l.contains("failover at") && l.contains(&want)), "no failover '{want}' in:\n{out}");
}

// ----------------------------------------------------------- tshark, live

/// Chunk type -> count.
type Counts = BTreeMap<u8, u64>;

/// Per packet from tshark: (source, destination, tag, INIT's initiate tag,
/// chunk types).
type TsharkPacket = (IpAddr, IpAddr, u32, Option<u32>, Vec<u8>);

fn tshark_packets(tshark: &str, file: &Path, udp_port: u16) -> Vec<TsharkPacket> {
    let out = Command::new(tshark)
        .arg("-r")
        .arg(file)
        .args(["-n", "-o", "sctp.checksum:crc-32c", "-d"])
        .arg(format!("udp.port=={udp_port},sctp"))
        .args(["-Y", "sctp", "-T", "fields", "-E", "separator=\t", "-E", "occurrence=a", "-E", "aggregator=,"])
        .args(["-e", "ip.src", "-e", "ip.dst", "-e", "ipv6.src", "-e", "ipv6.dst"])
        .args(["-e", "sctp.verification_tag", "-e", "sctp.init_initiate_tag", "-e", "sctp.chunk_type"])
        .output()
        .expect("run tshark");
    assert!(out.status.success(), "tshark: {}", String::from_utf8_lossy(&out.stderr));
    let num = |s: &str| -> u64 {
        let s = s.split(',').next().unwrap_or(s);
        match s.strip_prefix("0x") {
            Some(h) => u64::from_str_radix(h, 16).expect("hex"),
            None => s.parse().expect("number"),
        }
    };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let v: Vec<&str> = l.split('\t').collect();
            let (src, dst) = if v[0].is_empty() { (v[2], v[3]) } else { (v[0], v[1]) };
            // ICMP errors quote an inner header: not an SCTP packet.
            if src.contains(',') || dst.contains(',') {
                return None;
            }
            let chunks = v[6].split(',').filter(|s| !s.is_empty()).map(|s| num(s) as u8).collect();
            Some((
                src.parse().expect("src"),
                dst.parse().expect("dst"),
                num(v[4]) as u32,
                (!v[5].is_empty()).then(|| num(v[5]) as u32),
                chunks,
            ))
        })
        .collect()
}

/// tshark run on the same files: every packet mapped to an association by
/// its verification tag (INIT by its Initiate Tag), chunk types counted per
/// association and per (sender, source, destination): the replay's counts
/// must be the same.
#[test]
fn tshark_chunk_counts_per_association_and_path() {
    let Some(ts) = support::tshark::find() else { return };
    let mut files: Vec<(Fixture, PathBuf)> = Vec::new();
    for f in Fixture::all() {
        let ng = f.pcapng();
        let p = f.pcap.clone();
        files.push((Fixture::load(f.name), p));
        if let Some(ng) = ng {
            files.push((f, ng));
        }
    }
    for (f, file) in files {
        let opts = f.options();
        let o = replay_file(&file, &opts);
        // Per association: its counts, and per (direction, src, dst) path.
        type PathCounts = BTreeMap<(Role, IpAddr, IpAddr), Counts>;
        let mut want: BTreeMap<u64, (Counts, PathCounts)> = BTreeMap::new();
        let mut unmatched = 0;
        for (src, dst, vtag, init_tag, chunks) in tshark_packets(ts, &file, opts.udp_port) {
            // Packets to the responder carry the responder's tag; an INIT
            // (tag 0) is the initiator's.
            let hit = o.associations.iter().find_map(|a| {
                let init = vtag == 0 && init_tag.is_some() && a.initiator.vtag == init_tag;
                if init || a.responder.vtag == Some(vtag) {
                    Some((a.id, Role::Initiator))
                } else if a.initiator.vtag == Some(vtag) {
                    Some((a.id, Role::Responder))
                } else {
                    None
                }
            });
            let Some((id, sender)) = hit else {
                unmatched += 1;
                continue;
            };
            let e = want.entry(id).or_default();
            for c in chunks {
                *e.0.entry(c).or_default() += 1;
                *e.1.entry((sender, src, dst)).or_default().entry(c).or_default() += 1;
            }
        }
        assert_eq!(unmatched, 0, "{}: packets of no association", file.display());
        assert_eq!(want.len(), o.chunk_counts.len(), "{}", file.display());
        for (id, (total, by_path)) in want {
            let c = o.chunk_counts.get(&id).expect("association counted");
            assert_eq!(c.total, total, "{}: association {id}", file.display());
            assert_eq!(c.by_path, by_path, "{}: association {id} per path", file.display());
            // The association's own counts (the API's, the metrics' and
            // top's, live too): tshark's, for every type they count.
            let counted = |t: u8| sctp_monitor::tracker::chunks::TYPES.contains(&t) || matches!(t, 0 | 3 | 64);
            let view = o.associations.iter().find(|a| a.id == id).expect("association");
            let mine: Vec<(u8, u64)> = view.chunks.clone();
            let theirs: Vec<(u8, u64)> = total.iter().filter(|(t, _)| counted(**t)).map(|(t, n)| (*t, *n)).collect();
            assert_eq!(mine, theirs, "{}: association {id}'s chunks by type", file.display());
        }
    }
}

// ----------------------------------------------------------- robustness

/// Offsets where a pcap record or a pcapng block ends: a file cut there is
/// shorter, not damaged.
fn boundaries(b: &[u8], pcapng: bool) -> Vec<usize> {
    let le = |at: usize| u32::from_le_bytes(b[at..at + 4].try_into().expect("4")) as usize;
    let mut v = Vec::new();
    let mut at = if pcapng { 0 } else { 24 };
    while at < b.len() {
        v.push(at);
        at += if pcapng { le(at + 4) } else { 16 + le(at + 8) };
    }
    v.push(at);
    v
}

/// The real captures cut at many offsets: no panic, an error naming the
/// file and an offset inside it, and everything before the cut reported.
#[test]
fn truncated_fixtures_report_file_offset_and_what_was_read() {
    let tmp = TempDir::new("cut");
    let f = Fixture::load("usrsctp-multihomed-failover");
    for src in [f.pcap.clone(), f.pcapng().expect("twin")] {
        let bytes = std::fs::read(&src).expect("read");
        let full = replay_file(&src, &f.options());
        let ext = src.extension().and_then(|e| e.to_str()).expect("ext");
        let ends = boundaries(&bytes, ext == "pcapng");
        // The file header (pcapng: the section header block).
        let header_end = if ext == "pcapng" { ends[1] } else { 24 };
        let mut offsets: Vec<usize> = vec![5, 23, 24, 25, 40, 100, 1000, 3333];
        offsets.extend((1..10).map(|i| bytes.len() * i / 10 + i));
        offsets.push(bytes.len() - 1);
        for cut in offsets {
            let file = tmp.0.join(format!("cut-{cut}.{ext}"));
            std::fs::write(&file, &bytes[..cut]).expect("write");
            match replay(&file, &f.options()) {
                Ok(o) if ends.contains(&cut) => {
                    assert!(o.error.is_none(), "cut at a block end {cut}: {:?}", o.error);
                }
                Ok(o) => {
                    let e = o.error.as_ref().unwrap_or_else(|| panic!("{}: cut at {cut}: no error", file.display()));
                    let msg = e.to_string();
                    assert!(msg.contains(&file.display().to_string()), "{msg}");
                    let ReplayError::Damaged { offset, .. } = e else { panic!("{msg}") };
                    assert!(*offset <= cut, "{msg}");
                    assert!(o.packets <= full.packets);
                    if o.packets > 20 {
                        // The association and what it did so far are there.
                        assert_eq!(o.associations.len(), 1, "cut at {cut}");
                        assert_eq!(o.associations[0].initiator.addrs, full.associations[0].initiator.addrs);
                    }
                }
                // Too short for a file header: nothing was read.
                Err(e) => {
                    let msg = e.to_string();
                    assert!(cut < header_end, "cut at {cut}: {msg}");
                    assert!(msg.contains(&file.display().to_string()), "{msg}");
                }
            }
        }
        // The CLI prints what it read, then fails naming file and offset.
        let file = tmp.0.join(format!("half.{ext}"));
        std::fs::write(&file, &bytes[..bytes.len() / 2]).expect("write");
        let (ok, out, err) = cli(&["replay", "--json", file.to_str().expect("p")]);
        assert!(!ok);
        assert!(out.contains("\"association_up\""), "{out}");
        assert!(err.contains("half.") && err.contains("offset"), "{err}");
    }
}

#[test]
fn bad_magic_and_huge_lengths_are_clear_errors() {
    let tmp = TempDir::new("bad");
    let f = Fixture::load("usrsctp-multihomed-failover");
    let pcap = std::fs::read(&f.pcap).expect("read");
    let ng = std::fs::read(f.pcapng().expect("twin")).expect("read");

    let mut bad = pcap.clone();
    bad[..4].copy_from_slice(b"XXXX");
    let file = tmp.0.join("magic.pcap");
    std::fs::write(&file, &bad).expect("write");
    let e = replay(&file, &f.options()).expect_err("bad magic");
    assert!(matches!(e, ReplayError::Format { .. }), "{e}");
    assert!(e.to_string().contains("magic.pcap"), "{e}");

    // pcap: the 5th packet's captured length (record header + 8) set huge.
    let mut off = 24;
    for _ in 0..4 {
        let caplen = u32::from_le_bytes(pcap[off + 8..off + 12].try_into().expect("4")) as usize;
        off += 16 + caplen;
    }
    for huge in [0xFFFF_FFF0u32, 0x7FFF_FFFF, 0x0100_0000] {
        let mut bad = pcap.clone();
        bad[off + 8..off + 12].copy_from_slice(&huge.to_le_bytes());
        bad[off + 12..off + 16].copy_from_slice(&huge.to_le_bytes());
        let file = tmp.0.join("huge.pcap");
        std::fs::write(&file, &bad).expect("write");
        let o = replay(&file, &f.options()).expect("header is fine");
        assert_eq!(o.packets, 4, "read up to the damage");
        let e = o.error.expect("damage");
        assert!(matches!(e, ReplayError::Damaged { offset, .. } if offset == off), "{e}");
        assert!(e.to_string().contains("huge.pcap"));
    }

    // pcapng: a block after the first ones with a huge total length.
    let block_len = |b: &[u8], at: usize| u32::from_le_bytes(b[at + 4..at + 8].try_into().expect("4")) as usize;
    let mut at = 0;
    for _ in 0..6 {
        at += block_len(&ng, at);
    }
    for huge in [0xFFFF_FFF0u32, 0x7FFF_FFFC, 0x0100_0000, 8, 0] {
        let mut bad = ng.clone();
        bad[at + 4..at + 8].copy_from_slice(&huge.to_le_bytes());
        let file = tmp.0.join("huge.pcapng");
        std::fs::write(&file, &bad).expect("write");
        let o = replay(&file, &f.options()).expect("section header is fine");
        let e = o.error.expect("damage");
        assert!(matches!(e, ReplayError::Damaged { offset, .. } if offset == at), "len {huge}: {e}");
        assert!(o.packets >= 1, "packets before the damage are reported");
    }

    // Garbage after a valid pcap header.
    let mut bad = pcap[..24].to_vec();
    bad.extend(std::iter::repeat_n(0xA5u8, 4096));
    let file = tmp.0.join("garbage.pcap");
    std::fs::write(&file, &bad).expect("write");
    let o = replay(&file, &f.options()).expect("header is fine");
    assert!(o.error.is_some());
}
