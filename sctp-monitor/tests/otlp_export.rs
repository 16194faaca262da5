//! The OTLP exporter (feature `otlp`) against a real OTLP/gRPC receiver:
//! `tests/otlp/receiver.py`, grpcio serving the OpenTelemetry collector's
//! LogsService and MetricsService from the official `opentelemetry-proto`
//! PyPI package's generated code (in the virtualenv that
//! `cargo xtask setup --tests` makes, `target/otlp-receiver`; another
//! Python with `SCTP_MONITOR_OTLP_PYTHON`). The receiver prints every
//! request it decoded as JSON (protobuf's JSON mapping).
//!
//! The agent's pipeline, fed kernel records from two interfaces, exports
//! over gRPC to it; the test checks what arrived: one log record per event
//! whose body is the event's JSON line, its name, attributes and the
//! resource (`service.name`, `host.name`), and the metrics (events by kind,
//! associations by state).
#![cfg(feature = "otlp")]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sctp_monitor::agent::pipeline::{Pipeline, PipelineOptions};
use sctp_monitor::craft::{self, InitSpec};
use sctp_monitor::sinks::events::EventWriter;
use sctp_monitor::sinks::otlp::{OtlpExporter, OtlpOptions};
use sctp_monitor_common::ChunkRecord;
use serde_json::Value;

fn receiver_python() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("SCTP_MONITOR_OTLP_PYTHON") {
        return Some(PathBuf::from(p));
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/otlp-receiver/bin/python");
    venv.exists().then_some(venv)
}

/// A kernel record of one chunk, as the programs write it.
fn record(chunk: &[u8], src: [u8; 4], dst: [u8; 4], port: u16, vtag: u32, ifindex: u32) -> ChunkRecord {
    craft::record_v4(chunk, (src, dst), (port, port), vtag, ifindex, sctp_monitor::agent::clock::mono_now())
}

/// `attributes` (a list of `{key, value: {stringValue|intValue}}`) as
/// `key=value` strings.
fn attrs(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .map(|a| {
            let val = &a["value"];
            let s = val["stringValue"]
                .as_str()
                .map(str::to_string)
                .or_else(|| val["intValue"].as_str().map(str::to_string));
            format!("{}={}", a["key"].as_str().unwrap_or("?"), s.unwrap_or_else(|| val.to_string()))
        })
        .collect()
}

#[test]
fn events_and_counts_reach_a_real_otlp_receiver() {
    let Some(python) = receiver_python() else {
        let msg = "no OTLP receiver: run `cargo xtask setup --tests` (makes target/otlp-receiver)";
        assert!(std::env::var_os("CI").is_none(), "{msg}");
        eprintln!("skipped: {msg}");
        return;
    };
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/otlp/receiver.py");
    let mut rx = Command::new(&python)
        .arg(&script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e}", python.display()));
    let mut out = BufReader::new(rx.stdout.take().expect("stdout"));
    let mut first = String::new();
    out.read_line(&mut first).expect("the receiver's first line");
    let port: u16 = first
        .strip_prefix("listening ")
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("the receiver did not start: {first:?}"));
    let got: Arc<Mutex<Vec<Value>>> = Arc::default();
    let g = got.clone();
    std::thread::spawn(move || {
        for line in out.lines().map_while(Result::ok) {
            g.lock().unwrap().push(serde_json::from_str(&line).expect("receiver JSON"));
        }
    });

    let mut p = Pipeline::new(PipelineOptions::default(), EventWriter::new(None));
    p.set_host("stp-3.example");
    p.set_ifnames([(4, "sig-a"), (5, "sig-b")].into_iter());
    let opts = OtlpOptions {
        endpoint: format!("http://127.0.0.1:{port}"),
        host: "stp-3.example".into(),
        metrics_interval: Duration::from_millis(300),
    };
    p.set_otlp(OtlpExporter::start(&opts).expect("exporter"));
    let (a, b) = ([10, 9, 0, 1], [10, 9, 0, 2]);
    // Two associations: M3UA on the first, the second aborted.
    for port in [2905, 2906] {
        p.on_record(&record(&craft::init(&InitSpec::new(0x1234, 1)), a, b, port, 0, 4));
        p.on_record(&record(&craft::init_ack(&InitSpec::new(0x5678, 1)), b, a, port, 0x1234, 5));
        p.on_record(&record(&craft::cookie_echo(&[0; 8]), a, b, port, 0x5678, 4));
        p.on_record(&record(&craft::cookie_ack(), b, a, port, 0x1234, 5));
    }
    p.on_record(&record(&craft::data(1, 0, 0, 3, b"m3ua"), a, b, 2905, 0x5678, 4));
    p.on_record(&record(&craft::abort(false, &[]), b, a, 2906, 0x1234, 5));
    p.tick();
    let lines: Vec<String> = p.log.since(0, 100).events.into_iter().map(|(_, l)| l).collect();
    assert!(lines.len() >= 2, "{lines:?}");
    // Flushes the logs and a last metrics export.
    p.shutdown_exporters();

    let deadline = Instant::now() + Duration::from_secs(20);
    let (logs, metrics) = loop {
        let v = got.lock().unwrap().clone();
        let logs: Vec<Value> = v.iter().filter(|x| x["signal"] == "logs").cloned().collect();
        let records: usize = logs
            .iter()
            .flat_map(|l| l["request"]["resourceLogs"].as_array().into_iter().flatten())
            .flat_map(|r| r["scopeLogs"].as_array().into_iter().flatten())
            .map(|s| s["logRecords"].as_array().map_or(0, Vec::len))
            .sum();
        let metrics: Vec<Value> = v.iter().filter(|x| x["signal"] == "metrics").cloned().collect();
        if records >= lines.len() && !metrics.is_empty() {
            break (logs, metrics);
        }
        assert!(Instant::now() < deadline, "the receiver got {records} log records of {}: {v:?}", lines.len());
        std::thread::sleep(Duration::from_millis(100));
    };
    drop(rx.stdin.take());
    let _ = rx.wait();

    // Logs: the resource, then one record per event, the event's line as body.
    let mut bodies = Vec::new();
    let mut warns = 0;
    for req in &logs {
        for rl in req["request"]["resourceLogs"].as_array().expect("resourceLogs") {
            let res = attrs(&rl["resource"]["attributes"]);
            assert!(res.contains(&"service.name=sctp-monitor".to_string()), "{res:?}");
            assert!(res.contains(&"host.name=stp-3.example".to_string()), "{res:?}");
            for sl in rl["scopeLogs"].as_array().expect("scopeLogs") {
                for r in sl["logRecords"].as_array().expect("logRecords") {
                    let body = r["body"]["stringValue"].as_str().expect("a string body").to_string();
                    let ev: Value = serde_json::from_str(&body).expect("the body is the event's JSON line");
                    assert_eq!(r["eventName"], ev["event"], "{r}");
                    let a = attrs(&r["attributes"]);
                    assert!(a.contains(&format!("sctp.event={}", ev["event"].as_str().unwrap())), "{a:?}");
                    assert!(a.contains(&format!("sctp.assoc={}", ev["assoc"])), "{a:?}");
                    if ev["event"] == "protocol_seen" {
                        assert!(a.contains(&"network.interface.name=sig-a".to_string()), "{a:?}");
                        assert!(a.contains(&"sctp.ppid=3".to_string()), "{a:?}");
                    }
                    // The abort is a WARN, the rest INFO.
                    let warn = ev["event"] == "association_down" && ev["reason"] != "shutdown";
                    assert_eq!(r["severityText"], if warn { "WARN" } else { "INFO" }, "{r}");
                    warns += warn as usize;
                    assert!(r["timeUnixNano"].as_str().is_some_and(|t| t.parse::<u64>().is_ok_and(|t| t > 0)), "{r}");
                    bodies.push(body);
                }
            }
        }
    }
    assert_eq!(bodies, lines, "every event, in order, as its JSON line");
    assert_eq!(warns, 1, "association_down (abort) is a WARN");

    // Metrics: the last export's events by kind and associations by state.
    let last = metrics.last().expect("a metrics export");
    let all: Vec<&Value> = last["request"]["resourceMetrics"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|r| r["scopeMetrics"].as_array().into_iter().flatten())
        .flat_map(|s| s["metrics"].as_array().into_iter().flatten())
        .collect();
    let points = |name: &str, kind: &str| -> Vec<(Vec<String>, String)> {
        let m = all.iter().find(|m| m["name"] == name).unwrap_or_else(|| panic!("no {name} in {last}"));
        m[kind]["dataPoints"]
            .as_array()
            .unwrap_or_else(|| panic!("{name} is not a {kind}: {m}"))
            .iter()
            // protobuf's JSON leaves a 0 out
            .map(|d| (attrs(&d["attributes"]), d["asInt"].as_str().unwrap_or("0").to_string()))
            .collect()
    };
    let events = points("sctp_monitor.events", "sum");
    let count = |k: &str| events.iter().find(|(a, _)| a == &[format!("event={k}")]).map(|(_, v)| v.clone());
    assert_eq!(count("association_up").as_deref(), Some("2"), "{events:?}");
    assert_eq!(count("association_down").as_deref(), Some("1"), "{events:?}");
    assert_eq!(count("protocol_seen").as_deref(), Some("1"), "{events:?}");
    assert_eq!(count("failover").as_deref(), Some("0"), "every kind from 0: {events:?}");
    let assocs = points("sctp_monitor.associations", "gauge");
    assert!(assocs.contains(&(vec!["state=established".to_string()], "1".to_string())), "{assocs:?}");
}
