//! The agent end to end, on a real SCTP stack: two namespaces joined by two
//! veth pairs, a multihomed association between two usrsctp peers
//! (tests/peer/sctp_peer.c), the agent attached to both veths of one side,
//! the primary path cut with nftables. Then:
//! - the JSON events show the association with both address sets and the
//!   failover;
//! - a real Prometheus server scrapes the agent, and a query for the
//!   failover counter returns the number of failover events;
//! - `promtool check metrics` accepts a real scrape;
//! - the API answers (`/api/associations`, `/api/events`);
//! - after SIGTERM no XDP or tcx program is left on any interface;
//! - a restart after `kill -9` attaches cleanly, and a stale netlink-attached
//!   `sctp_ingress` is replaced and reported.
//!
//! Needs root, gcc + libusrsctp-dev, nftables, prometheus (promtool):
//! `cargo xtask setup --tests` installs them.

mod support;

use std::{
    fs,
    io::Write,
    path::Path,
    process::{Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use support::{
    NetNs, privileged,
    process::{Proc, TempDir, collect_lines, have, json_lines, wait_until},
};

const NS_A: &str = "smagent-a";
const NS_B: &str = "smagent-b";
const METRICS_PORT: u16 = 9108;
const PROM_PORT: u16 = 9090;

/// GET on 127.0.0.1:`port` inside `ns`: (status, body).
fn http_get(ns: &NetNs, port: u16, path: &str, accept: Option<&str>) -> Option<(u16, String)> {
    support::http::get(ns, "127.0.0.1", port, path, accept)
}

fn xdp_attached(ns: &NetNs, iface: &str) -> bool {
    let out = ns.cmd("ip").args(["-d", "link", "show", iface]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).contains("prog/xdp")
}

fn tcx_egress_programs(ns: &NetNs, iface: &'static str) -> Vec<String> {
    ns.run(move || {
        let (_, progs) =
            aya::programs::SchedClassifier::query_tcx(iface, aya::programs::TcAttachType::Egress).expect("query tcx");
        progs.iter().map(|p| p.name_as_str().unwrap_or("?").to_string()).collect()
    })
}

/// The two-path lab: ns a `aeA1` 10.211.1.1, `aeA2` 10.211.2.1; ns b
/// `aeB1` 10.211.1.2, `aeB2` 10.211.2.2.
fn lab() -> (NetNs, NetNs) {
    support::two_path_lab(NS_A, NS_B, "ae", 211)
}

/// Black-holes path `p` in ns b (both directions), links stay up.
fn cut(b: &NetNs, p: u32) {
    let rules = format!(
        "table inet smagent_cut {{ chain in {{ type filter hook prerouting priority -300; policy accept; \
         iifname \"aeB{p}\" drop\n}}\n chain out {{ type filter hook postrouting priority -300; policy accept; \
         oifname \"aeB{p}\" drop\n}}\n}}\n"
    );
    let mut nft = b.cmd("nft").args(["-f", "-"]).stdin(Stdio::piped()).spawn().expect("nft");
    nft.stdin.take().unwrap().write_all(rules.as_bytes()).unwrap();
    assert!(nft.wait().unwrap().success(), "nft cut");
}

fn agent_cmd(ns: &NetNs, events: &Path) -> Command {
    let mut c = ns.cmd(env!("CARGO_BIN_EXE_sctp-monitor"));
    c.args(["run", "-i", "aeA1", "-i", "aeA2", "--xdp-mode", "auto"])
        .args(["--metrics", &format!("127.0.0.1:{METRICS_PORT}")])
        .arg("--events")
        .arg(events)
        .args(["--poll-interval-ms", "200", "--tick-interval-ms", "100"])
        .args(["--hb-down-after", "2", "--hb-timeout-ms", "600"])
        .env("RUST_BACKTRACE", "0")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    c
}

fn start_agent(ns: &NetNs, events: &Path) -> (Proc, Arc<Mutex<Vec<String>>>) {
    let mut p = Proc::spawn(agent_cmd(ns, events), "the agent");
    let lines = collect_lines(p.child.as_mut().unwrap().stderr.take().unwrap(), "agent");
    for iface in ["aeA1", "aeA2"] {
        let l = lines.clone();
        wait_until(&format!("the agent to attach to {iface}"), Duration::from_secs(15), || {
            l.lock().unwrap().iter().find(|x| x.contains(&format!("attached to {iface} "))).cloned()
        });
    }
    (p, lines)
}

fn addrs(v: &serde_json::Value) -> Vec<String> {
    let mut a: Vec<String> =
        v["addrs"].as_array().into_iter().flatten().filter_map(|x| x.as_str().map(str::to_string)).collect();
    a.sort();
    a
}

#[test]
fn agent_end_to_end_failover_prometheus_api_restart() {
    if !privileged("agent_end_to_end_failover_prometheus_api_restart") {
        return;
    }
    for tool in ["gcc", "nft", "prometheus", "promtool"] {
        assert!(have(tool), "{tool} not found: run `cargo xtask setup --tests` (Debian packages)");
    }
    let t0 = Instant::now();
    let tmp = TempDir::new("agent-e2e");
    let (a, b) = lab();
    let events = tmp.0.join("events.jsonl");

    // 1. Agent first, so it sees the handshake.
    let (mut agent, log) = start_agent(&a, &events);
    assert!(xdp_attached(&a, "aeA1") && xdp_attached(&a, "aeA2"), "XDP on both veths");

    // 2. Prometheus in ns a, scraping the agent every second.
    let prom_dir = tmp.0.join("prom");
    fs::create_dir_all(prom_dir.join("data")).unwrap();
    let cfg = prom_dir.join("prometheus.yml");
    fs::write(
        &cfg,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: sctp-monitor\n    \
             scrape_interval: 1s\n    scrape_timeout: 900ms\n    static_configs:\n      - targets: ['127.0.0.1:{METRICS_PORT}']\n"
        ),
    )
    .unwrap();
    let mut pc = a.cmd("prometheus");
    pc.arg(format!("--config.file={}", cfg.display()))
        .arg(format!("--web.listen-address=127.0.0.1:{PROM_PORT}"))
        .arg(format!("--storage.tsdb.path={}", prom_dir.join("data").display()))
        .stdout(Stdio::null())
        .stderr(fs::File::create(prom_dir.join("prometheus.log")).unwrap());
    let _prom = Proc::spawn(pc, "prometheus");

    // 3. A multihomed association: server in ns b, client in ns a.
    let opts =
        ["--port", "5000", "--hb-interval", "200", "--rto-min", "100", "--rto-max", "400", "--path-max-retrans", "2"];
    let pair = support::usrsctp_pair(&a, &b, 211, &opts, &[], &["--rate", "50"], &tmp.0);
    let up = &pair.up;
    let primary = up["primary"].as_str().expect("primary in the peer's up line").to_string();
    let cut_path: u32 = if primary.starts_with("10.211.1.") { 1 } else { 2 };
    eprintln!("association up, client primary {primary}: cutting path {cut_path}");

    // 4. The association, with both address sets, in the JSON events.
    let up_ev = wait_until("association_up in the agent's JSON events", Duration::from_secs(10), || {
        json_lines(&events).into_iter().find(|v| v["event"] == "association_up")
    });
    assert_eq!(addrs(&up_ev["initiator"]), vec!["10.211.1.1", "10.211.2.1"], "initiator address set: {up_ev}");
    assert_eq!(addrs(&up_ev["responder"]), vec!["10.211.1.2", "10.211.2.2"], "responder address set: {up_ev}");
    std::thread::sleep(Duration::from_millis(1500)); // DATA flowing on the primary

    // 5. Cut the primary path: the failover shows in the events.
    cut(&b, cut_path);
    let fo = wait_until("a failover event after the cut", Duration::from_secs(20), || {
        json_lines(&events)
            .into_iter()
            .find(|v| v["event"] == "failover" && v["endpoint"] != "responder" && v["from"]["dst"] == primary.as_str())
            .or_else(|| {
                json_lines(&events)
                    .into_iter()
                    .find(|v| v["event"] == "failover" && v["from"]["dst"] == primary.as_str())
            })
    });
    let other = if cut_path == 1 { "10.211.2.2" } else { "10.211.1.2" };
    assert_eq!(fo["to"]["dst"], other, "failover to the other path: {fo}");
    assert_eq!(fo["assoc"], up_ev["assoc"], "same association: {fo}");
    std::thread::sleep(Duration::from_secs(2)); // let both directions settle

    // 6. The API answers.
    let (st, body) = http_get(&a, METRICS_PORT, "/api/associations", None).expect("GET /api/associations");
    assert_eq!(st, 200, "{body}");
    let doc: serde_json::Value = serde_json::from_str(&body).expect("associations JSON");
    let assoc = doc["associations"]
        .as_array()
        .and_then(|v| v.iter().find(|x| x["id"] == up_ev["assoc"]))
        .unwrap_or_else(|| panic!("association {} in {body}", up_ev["assoc"]))
        .clone();
    assert_eq!(addrs(&assoc["initiator"]), vec!["10.211.1.1", "10.211.2.1"], "{assoc}");
    assert_eq!(addrs(&assoc["responder"]), vec!["10.211.1.2", "10.211.2.2"], "{assoc}");
    // Exactly one failover per sender that moved (the client moves; the
    // server may, if it had DATA outstanding at the cut), none twice, and
    // the API counts what the events say.
    let fos: Vec<serde_json::Value> = json_lines(&events).into_iter().filter(|v| v["event"] == "failover").collect();
    let per = |who: &str| fos.iter().filter(|v| v["endpoint"] == who).count() as u64;
    assert_eq!(per("initiator"), 1, "the client's one failover: {fos:#?}");
    assert!(per("responder") <= 1, "the server fails over at most once: {fos:#?}");
    assert_eq!(assoc["failovers"]["initiator"].as_u64(), Some(per("initiator")), "{assoc}");
    assert_eq!(assoc["failovers"]["responder"].as_u64(), Some(per("responder")), "{assoc}");
    assert!(assoc["paths"].as_array().is_some_and(|p| p.len() >= 2), "paths: {assoc}");
    assert!(assoc["primary"]["initiator"]["dst"] == other, "initiator's primary moved to {other}: {assoc}");
    let (st, body) = http_get(&a, METRICS_PORT, "/api/events?since=0", None).expect("GET /api/events");
    assert_eq!(st, 200);
    let page: serde_json::Value = serde_json::from_str(&body).expect("events JSON");
    let evs = page["events"].as_array().expect("events array");
    assert!(evs.iter().any(|e| e["event"] == "failover" && e["seq"].is_u64()), "{body}");
    let next = page["next"].as_u64().expect("next");
    let (_, body) = http_get(&a, METRICS_PORT, &format!("/api/events?since={next}"), None).expect("GET since=next");
    let later: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(later["events"].as_array().is_some_and(|e| e.iter().all(|e| e["seq"].as_u64() >= Some(next))));

    // 7. promtool on a real scrape (both formats).
    let (st, text) = http_get(&a, METRICS_PORT, "/metrics", None).expect("GET /metrics");
    assert_eq!(st, 200);
    for needle in [
        "sctp_monitor_events_total{event=\"failover\"}",
        "sctp_monitor_associations{state=\"established\"} 1",
        // The upper-layer protocol of the peer's DATA (PPID 60).
        "ppids=\"NGAP\"",
        "sctp_monitor_chunks_total{",
        "sctp_monitor_programs_attached{",
        "sctp_monitor_heartbeat_rtt_seconds_bucket",
    ] {
        assert!(text.contains(needle), "{needle} missing from the scrape:\n{text}");
    }
    // promtool 2.42 parses the Prometheus text format (what /metrics serves
    // unless OpenMetrics is asked for, as Prometheus itself does).
    let path = tmp.0.join("scrape.txt");
    fs::write(&path, &text).unwrap();
    let out = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(fs::File::open(&path).unwrap())
        .output()
        .expect("promtool");
    assert!(
        out.status.success(),
        "promtool check metrics failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let (_, om) =
        http_get(&a, METRICS_PORT, "/metrics", Some("application/openmetrics-text; version=1.0.0")).expect("GET");
    assert!(
        om.ends_with("# EOF\n") && om.contains("# TYPE sctp_monitor_events counter"),
        "OpenMetrics exposition:\n{om}"
    );

    // 8. Prometheus has scraped the failover counter.
    let n_failovers = json_lines(&events).iter().filter(|v| v["event"] == "failover").count();
    let got = wait_until("Prometheus to return the failover counter", Duration::from_secs(20), || {
        let q = "/api/v1/query?query=sctp_monitor_events_total%7Bevent%3D%22failover%22%7D";
        let (_, body) = http_get(&a, PROM_PORT, q, None)?;
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        let val: f64 = v["data"]["result"][0]["value"][1].as_str()?.parse().ok()?;
        let want = json_lines(&events).iter().filter(|v| v["event"] == "failover").count();
        (val as usize == want && want >= n_failovers).then_some(val)
    });
    eprintln!("Prometheus: sctp_monitor_events_total{{event=\"failover\"}} = {got}");

    // 9. SIGTERM: exit 0, nothing left attached.
    agent.signal(libc::SIGTERM);
    let st = agent.wait(Duration::from_secs(10));
    assert!(st.success(), "agent exit status after SIGTERM: {st}");
    for iface in ["aeA1", "aeA2"] {
        assert!(!xdp_attached(&a, iface), "XDP program left on {iface} after SIGTERM");
        assert!(tcx_egress_programs(&a, iface).is_empty(), "tcx program left on {iface} after SIGTERM");
    }
    assert!(log.lock().unwrap().iter().any(|l| l.contains("detached from aeA1")));

    // 9b. Every event the live agent wrote follows the events' JSON Schema,
    // with this host's name, and the interface where a packet decided it.
    let schema: serde_json::Value =
        serde_json::from_str(include_str!("../schema/events.schema.json")).expect("schema JSON");
    let v = jsonschema::options().should_validate_formats(true).build(&schema).expect("schema");
    let host = sctp_monitor::agent::hostname();
    let live = json_lines(&events);
    for e in &live {
        let errors: Vec<String> = v.iter_errors(e).map(|x| format!("{x} at {}", x.instance_path())).collect();
        assert!(errors.is_empty(), "live event {e} does not follow the schema: {errors:?}");
        assert_eq!(e["host"], host.as_str(), "{e}");
        if ["association_up", "failover", "protocol_seen"].contains(&e["event"].as_str().unwrap_or("")) {
            assert!(matches!(e["ifname"].as_str(), Some("aeA1" | "aeA2")), "ifname of {e}");
        }
    }
    let proto = live.iter().find(|e| e["event"] == "protocol_seen").expect("a protocol_seen event");
    assert_eq!(proto["ppid"], serde_json::json!({"id": 60, "name": "NGAP"}), "{proto}");

    // 10. kill -9, then a restart attaches cleanly. Also leave a stale
    // netlink-attached sctp_ingress on aeA2 (what an older loader leaves):
    // the restart must replace it and say so.
    let (mut agent2, _) = start_agent(&a, &events);
    agent2.signal(libc::SIGKILL);
    agent2.wait(Duration::from_secs(5));
    a.run(|| {
        let mut ebpf = sctp_monitor::kernel::load(&Default::default()).expect("load");
        let xdp: &mut aya::programs::Xdp =
            ebpf.program_mut(sctp_monitor_common::programs::XDP_INGRESS).unwrap().try_into().unwrap();
        let fd = {
            use std::os::fd::{AsFd, AsRawFd};
            xdp.fd().unwrap().as_fd().as_raw_fd()
        };
        let idx = sctp_monitor::kernel::attach::ifindex("aeA2").unwrap();
        sctp_monitor::agent::netlink::xdp_set(idx, fd, sctp_monitor::agent::netlink::SKB_MODE).expect("netlink attach");
    });
    assert!(xdp_attached(&a, "aeA2"), "the stale program stays after its loader is gone");
    let (mut agent3, log3) = start_agent(&a, &events);
    let lines = log3.lock().unwrap().clone();
    assert!(
        lines.iter().any(|l| l.contains("attached to aeA1") && l.contains("no program of an earlier run")),
        "{lines:?}"
    );
    assert!(
        lines.iter().any(|l| l.contains("attached to aeA2") && l.contains("removed a stale sctp_ingress")),
        "{lines:?}"
    );
    agent3.signal(libc::SIGTERM);
    assert!(agent3.wait(Duration::from_secs(10)).success());
    for iface in ["aeA1", "aeA2"] {
        assert!(!xdp_attached(&a, iface), "XDP program left on {iface}");
        assert!(tcx_egress_programs(&a, iface).is_empty(), "tcx program left on {iface}");
    }
    eprintln!("end-to-end test took {:?}", t0.elapsed());
}
