//! Every event kind against the JSON Schema of the events,
//! `sctp-monitor/schema/events.schema.json`, validated with the
//! `jsonschema` crate (draft 2020-12, formats checked: date-time, IPv4/IPv6).
//!
//! The events are made by the code that makes them for users, never
//! written by hand: `replay --json` of every real capture in
//! `tests/fixtures/` (association up/down, path up/down, primary changes,
//! failovers, protocol_seen), wire scenarios through the decoder and the
//! tracker for what those captures do not hold (restart, ASCONF address
//! changes and Set Primary, stalled, a window closing and opening, abort
//! with its causes, ERROR chunks,
//! idle timeout, eviction, an unknown PPID), and the agent's own pipeline fed kernel records, which
//! stamps `host` and `ifname` (the live agent's events file is validated
//! too, by `agent_e2e`). The test fails if a kind of `EventKind::ALL` was
//! not produced, and checks that the schema does refuse broken events.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::process::Command;

use sctp_monitor::agent::pipeline::{Pipeline, PipelineOptions};
use sctp_monitor::craft::wire::{MS, T0, TA, TB, Wire};
use sctp_monitor::craft::{self, AsconfReq, InitSpec};
use sctp_monitor::error_cause;
use sctp_monitor::event::EventKind;
use sctp_monitor::sinks::events::EventWriter;
use sctp_monitor::tracker::Config;
use sctp_monitor_common::ChunkRecord;
use serde_json::Value;

const PA: u16 = 36412;
const PB: u16 = 36412;

fn validator() -> jsonschema::Validator {
    let text = include_str!("../schema/events.schema.json");
    let schema: Value = serde_json::from_str(text).expect("the schema is JSON");
    jsonschema::options().should_validate_formats(true).build(&schema).expect("the schema compiles")
}

/// Validates one JSON line; returns its `event`.
fn check(v: &jsonschema::Validator, line: &str, source: &str) -> String {
    let doc: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{source}: not JSON ({e}): {line}"));
    let errors: Vec<String> = v.iter_errors(&doc).map(|e| format!("{} at {}", e, e.instance_path())).collect();
    assert!(errors.is_empty(), "{source}: {line}\ndoes not follow the schema:\n{}", errors.join("\n"));
    doc["event"].as_str().expect("event").to_string()
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("address")
}

/// Two multihomed endpoints (IPv4 and IPv6) on the S1AP port, through the
/// decoder and the tracker.
fn wire(cfg: Config) -> Wire {
    Wire::new(cfg).ends([ip("10.0.0.1"), ip("fd00:1::1")], [ip("10.0.0.2"), ip("fd00:1::2")]).ports(PA, PB)
}

/// What the captures do not hold, through the decoder and the tracker.
fn wire_scenarios() -> Vec<String> {
    let mut out = Vec::new();
    // S1AP and an unknown PPID; ASCONF add, delete, Set Primary; stalled;
    // abort.
    let mut w = wire(Config { stall_after_ns: 2_000 * MS, ..Config::default() });
    w.handshake();
    w.a2b(10, 0, vec![craft::data(100, 0, 0, 18, b"s1ap")]);
    w.b2a(11, 0, vec![craft::sack(100, 1000, &[], &[])]);
    w.a2b(12, 0, vec![craft::data(101, 0, 1, 4242, b"other")]);
    w.b2a(13, 0, vec![craft::sack(101, 1000, &[], &[])]);
    let new = ip("10.0.9.1");
    w.a2b(20, 0, vec![craft::asconf(1, w.a[0], &[AsconfReq::Add { corr_id: 1, addr: new }])]);
    w.b2a(21, 0, vec![craft::asconf_ack(1, &[])]);
    w.a2b(30, 0, vec![craft::asconf(2, w.a[0], &[AsconfReq::Delete { corr_id: 2, addr: new }])]);
    w.b2a(31, 0, vec![craft::asconf_ack(2, &[])]);
    w.a2b(40, 0, vec![craft::asconf(3, w.a[0], &[AsconfReq::SetPrimary { corr_id: 3, addr: w.b[1] }])]);
    w.b2a(41, 0, vec![craft::asconf_ack(3, &[])]);
    w.a2b(100, 0, vec![craft::data(102, 0, 2, 18, b"x")]);
    w.a2b(500, 0, vec![craft::heartbeat(b"h")]);
    w.b2a(510, 0, vec![craft::heartbeat_ack(b"h")]);
    // ERROR chunks: one reported, one held back, one reported with the
    // count (a second later), another cause on the other path.
    let unrecognized = || craft::error(&[craft::error_cause(6, &craft::raw_chunk(0xee, 0, &[]))]);
    w.b2a(600, 0, vec![unrecognized()]);
    w.b2a(601, 0, vec![unrecognized()]);
    w.b2a(1700, 0, vec![unrecognized()]);
    w.a2b(1800, 1, vec![craft::error(&[craft::error_cause(3, &2_000u32.to_be_bytes())])]);
    w.t.tick(T0 + 2300 * MS, &mut w.ev);
    w.b2a(3000, 0, vec![craft::abort(false, &[craft::error_cause(12, b"bye"), craft::error_cause(0x4242, &[])])]);
    out.extend(w.lines());
    // The responder's window closes and opens again.
    let mut w = wire(Config::default());
    w.handshake();
    w.a2b(10, 0, vec![craft::data(100, 0, 0, 18, b"y")]);
    w.b2a(11, 0, vec![craft::sack(100, 0, &[], &[])]);
    w.b2a(60, 0, vec![craft::sack(100, 4096, &[], &[])]);
    out.extend(w.lines());
    // A path that loses a tenth of its DATA over a window, then none.
    let mut w = wire(Config { degraded_window_ns: 1_000 * MS, ..Config::default() });
    w.handshake();
    w.t.tick(T0 + 5 * MS, &mut w.ev);
    for i in 0..200u32 {
        let ms = 10 + i as u64 * 9;
        w.a2b(ms, 0, vec![craft::data(100 + i, 0, 0, 18, b"x")]);
        if i < 100 && i % 10 == 0 {
            w.a2b(ms + 3, 1, vec![craft::data(100 + i, 0, 0, 18, b"x")]);
        }
        w.b2a(ms + 5, 0, vec![craft::sack(100 + i, 65_536, &[], &[])]);
        w.t.tick(T0 + (ms + 6) * MS, &mut w.ev);
    }
    w.t.tick(T0 + 3_001 * MS, &mut w.ev);
    out.extend(w.lines());
    // Restart: a new INIT between the same endpoints.
    let mut w = wire(Config::default());
    w.handshake();
    let (a, b) = (w.a, w.b);
    w.send(100, a[0], b[0], PA, PB, 0, vec![craft::init(&InitSpec::new(0x1111, 9).addrs(&[a[1]]))]);
    w.send(101, b[0], a[0], PB, PA, 0x1111, vec![craft::init_ack(&InitSpec::new(0x2222, 9))]);
    w.send(102, a[0], b[0], PA, PB, 0x2222, vec![craft::cookie_echo(&[1; 40])]);
    w.send(103, b[0], a[0], PB, PA, 0x1111, vec![craft::cookie_ack()]);
    out.extend(w.lines());
    // Idle timeout, and eviction past the cap.
    let mut w = wire(Config { idle_timeout_ns: 1_000 * MS, max_assocs: 1, ..Config::default() });
    w.handshake();
    w.t.tick(T0 + 5_000 * MS, &mut w.ev);
    w.handshake();
    w.send(6_000, ip("10.0.5.1"), ip("10.0.5.2"), 7, 7, 0, vec![craft::init(&InitSpec::new(0x77, 1))]);
    w.send(6_001, ip("10.0.5.2"), ip("10.0.5.1"), 7, 7, 0x77, vec![craft::init_ack(&InitSpec::new(0x78, 1))]);
    w.send(6_002, ip("10.0.5.1"), ip("10.0.5.2"), 7, 7, 0x78, vec![craft::cookie_echo(&[1; 8])]);
    w.send(6_003, ip("10.0.5.2"), ip("10.0.5.1"), 7, 7, 0x77, vec![craft::cookie_ack()]);
    out.extend(w.lines());
    out
}

/// A kernel record of one chunk, as the programs write it.
fn record(chunk: &[u8], src: [u8; 4], dst: [u8; 4], vtag: u32, ifindex: u32, ts: u64) -> ChunkRecord {
    craft::record_v4(chunk, (src, dst), (PA, PB), vtag, ifindex, ts)
}

/// The agent's pipeline fed kernel records from two interfaces: its
/// events carry `host` and the interface's name.
fn pipeline_events() -> (Vec<String>, String) {
    let mut p = Pipeline::new(PipelineOptions::default(), EventWriter::new(None));
    p.set_host("mme-7.example");
    p.set_ifnames([(7, "s1-a"), (9, "s1-b")].into_iter());
    let (a, b) = ([10, 1, 0, 1], [10, 1, 0, 2]);
    p.on_record(&record(&craft::init(&InitSpec::new(TA, 1)), a, b, 0, 7, 1_000));
    p.on_record(&record(&craft::init_ack(&InitSpec::new(TB, 1)), b, a, TA, 9, 2_000));
    p.on_record(&record(&craft::cookie_echo(&[0; 8]), a, b, TB, 7, 3_000));
    p.on_record(&record(&craft::cookie_ack(), b, a, TA, 9, 4_000));
    p.on_record(&record(&craft::data(1, 0, 0, 3, b"m3ua"), a, b, TB, 7, 5_000));
    p.tick();
    let lines = p.log.since(0, 100).events.into_iter().map(|(_, l)| l).collect();
    (lines, p.log.page_json(0, 100))
}

#[test]
fn every_event_kind_follows_the_schema() {
    let v = validator();
    let mut kinds = BTreeSet::new();
    // 1. Real captures, through `replay --json`.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut captures: Vec<_> = std::fs::read_dir(&dir)
        .expect("fixtures")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "pcap" || x == "pcapng"))
        .collect();
    captures.sort();
    assert!(captures.len() >= 5, "{captures:?}");
    for c in &captures {
        let out =
            Command::new(env!("CARGO_BIN_EXE_sctp-monitor")).arg("replay").arg("--json").arg(c).output().expect("run");
        assert!(out.status.success(), "{}: {}", c.display(), String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8(out.stdout).expect("UTF-8");
        assert!(text.lines().count() > 3, "{}: {text}", c.display());
        // The last line is the replay's summary, not an event.
        let (events, summary) = text.trim_end().rsplit_once('\n').expect("events and a summary");
        assert!(summary.starts_with("{\"summary\":"), "{}: {summary}", c.display());
        for line in events.lines() {
            kinds.insert(check(&v, line, &c.display().to_string()));
        }
    }
    // 2. Wire scenarios the captures do not hold.
    let wire_lines = wire_scenarios();
    for line in &wire_lines {
        kinds.insert(check(&v, line, "wire scenario"));
    }
    // 3. The agent's pipeline: host and ifname stamped.
    let (lines, page) = pipeline_events();
    for line in &lines {
        let k = check(&v, line, "pipeline");
        let doc: Value = serde_json::from_str(line).expect("JSON");
        assert_eq!(doc["host"], "mme-7.example", "{line}");
        match k.as_str() {
            // Decided by the COOKIE-ACK seen on s1-b, the DATA on s1-a.
            "association_up" => assert_eq!(doc["ifname"], "s1-b", "{line}"),
            "protocol_seen" => {
                assert_eq!(doc["ifname"], "s1-a", "{line}");
                assert_eq!(doc["ppid"]["name"], "M3UA", "{line}");
            }
            _ => {}
        }
        kinds.insert(k);
    }
    assert!(lines.iter().any(|l| l.contains("\"protocol_seen\"")), "{lines:?}");
    // /api/events: the same objects with `seq`.
    let page: Value = serde_json::from_str(&page).expect("page JSON");
    for e in page["events"].as_array().expect("events") {
        check(&v, &e.to_string(), "/api/events");
    }
    // The abort's causes and the ERRORs' coalescing, as made.
    let down = lines_of(&wire_lines, "association_down").into_iter().find(|d| d["reason"] == "abort").expect("abort");
    assert_eq!(down["endpoint"], "responder", "{down}");
    assert_eq!(down["causes"][0]["text"], "bye", "{down}");
    assert_eq!(down["causes"][1]["name"], "unknown", "{down}");
    let errors = lines_of(&wire_lines, "error_reported");
    let repeated: Vec<&Value> = errors.iter().map(|e| &e["repeated"]).collect();
    assert_eq!(repeated, [&Value::Null, &1.into(), &Value::Null], "{errors:?}");
    assert_eq!(errors[2]["causes"][0]["staleness_us"], 2_000, "{errors:?}");
    let want: BTreeSet<String> = EventKind::ALL.iter().map(|k| k.name().to_string()).collect();
    let missing: Vec<_> = want.difference(&kinds).collect();
    assert!(missing.is_empty(), "kinds never produced, so never checked: {missing:?}");
}

/// The events of `kind` among `lines`, parsed.
fn lines_of(lines: &[String], kind: &str) -> Vec<Value> {
    lines.iter().map(|l| serde_json::from_str::<Value>(l).expect("JSON")).filter(|d| d["event"] == kind).collect()
}

#[test]
fn the_schema_names_every_error_cause_the_code_names() {
    let schema: Value = serde_json::from_str(include_str!("../schema/events.schema.json")).expect("JSON");
    let names: BTreeSet<&str> = schema["$defs"]["error_cause"]["properties"]["name"]["enum"]
        .as_array()
        .expect("enum")
        .iter()
        .map(|n| n.as_str().expect("name"))
        .collect();
    let code: BTreeSet<&str> = (0..error_cause::LABELS).map(error_cause::label).collect();
    assert_eq!(names, code);
    assert_eq!(schema["properties"]["causes"]["maxItems"], error_cause::MAX_LISTED);
}

#[test]
fn the_schema_refuses_broken_events() {
    let v = validator();
    let good = r#"{"ts":"2026-11-26T10:58:43.426062Z","event":"path_down","schema":2,"host":"h","ifname":"eth0","assoc":1,"path":{"src":"10.0.0.1","dst":"fd00::2"},"endpoint":"initiator"}"#;
    check(&v, good, "a good event");
    let doc: Value = serde_json::from_str(good).expect("JSON");
    type Break = Box<dyn Fn(&mut Value)>;
    let broken: [(&str, Break); 10] = [
        ("no assoc", Box::new(|d| drop(d.as_object_mut().map(|o| o.remove("assoc"))))),
        ("another schema version", Box::new(|d| d["schema"] = 1.into())),
        ("a bad address", Box::new(|d| d["path"]["src"] = "10.0.0.256".into())),
        ("a time without microseconds", Box::new(|d| d["ts"] = "2026-11-26T10:58:43Z".into())),
        ("an unknown kind", Box::new(|d| d["event"] = "path_sideways".into())),
        ("a path event without its path", Box::new(|d| drop(d.as_object_mut().map(|o| o.remove("path"))))),
        ("an empty ifname", Box::new(|d| d["ifname"] = "".into())),
        ("an unknown field", Box::new(|d| d["color"] = "red".into())),
        ("causes on a path event", Box::new(|d| d["causes"] = serde_json::json!([{"code": 1, "name": "unknown"}]))),
        ("an unnamed error cause name", Box::new(|d| d["causes"] = serde_json::json!([{"code": 1, "name": "oops"}]))),
    ];
    for (what, f) in broken {
        let mut d = doc.clone();
        f(&mut d);
        assert!(!v.is_valid(&d), "the schema accepts {what}: {d}");
    }
}
