//! Restarts, faults, least privilege and exposure, with the real agent
//! binary, real network namespaces and veths, and a real SCTP stack (the
//! usrsctp peer of tests/peer/sctp_peer.c):
//! - `kill -9` under load, then a restart: a second agent started while the
//!   first runs is refused; after the kill the new agent attaches (one XDP
//!   and one tcx program of ours per interface, never two), picks the
//!   established association up mid-flight with its addresses, paths and
//!   DATA, and a later path cut is reported as a failover;
//! - a veth deleted while monitored and re-created with the same name: both
//!   agents (one on every interface, one with `-i`) log it, keep monitoring
//!   the other path, re-attach, and track the traffic on it again;
//! - least privilege: the agent as uid 65534 with CAP_BPF, CAP_NET_ADMIN and
//!   CAP_PERFMON only (setpriv) attaches, tracks an association, serves the
//!   API on loopback only (the default) and detaches on SIGTERM; without any
//!   one of the three it refuses to start and names it;
//! - DATA payload bytes never reach userspace: real usrsctp captures and
//!   crafted DATA of every shape through the real programs, and no
//!   ring-buffer record holds a byte run of their payloads.
//!
//! Needs root, gcc + libusrsctp-dev, nftables, setpriv (util-linux, on every
//! Debian system):
//! `cargo xtask setup --tests` installs them. Figures in RELIABILITY.md come
//! from `cargo test -p sctp-monitor --test faults -- --nocapture`.

mod support;

use std::{
    collections::BTreeSet,
    fs,
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use sctp_monitor::{
    agent::netlink,
    craft::{self, CookiePos, FrameBuilder, InitSpec},
    kernel::testrun::{Prog, TestBed},
};
use sctp_monitor_common::{ChunkRecord, RecordKind, programs};
use serde_json::Value;
use support::{
    NetNs, nft, privileged,
    process::{Lines, Proc, TempDir, collect_lines, have, json_lines, peer_binary, wait_until},
    sh,
};

const METRICS_PORT: u16 = 9108;

// ---------------------------------------------------------------------------
// Processes, files, waiting

fn wait_log(log: &Lines, needles: &[&str], timeout: Duration) -> String {
    wait_until(&format!("a log line with {needles:?}"), timeout, || {
        log.lock().unwrap().iter().find(|l| needles.iter().all(|n| l.contains(n))).cloned()
    })
}

fn http_get_at(ns: &NetNs, addr: &str, port: u16, path: &str) -> Option<(u16, String)> {
    support::http::get(ns, addr, port, path, None)
}

fn api(ns: &NetNs, path: &str) -> Option<Value> {
    let (st, body) = http_get_at(ns, "127.0.0.1", METRICS_PORT, path)?;
    (st == 200).then(|| serde_json::from_str(&body).ok()).flatten()
}

fn scrape(ns: &NetNs) -> String {
    let (st, body) = http_get_at(ns, "127.0.0.1", METRICS_PORT, "/metrics").expect("GET /metrics");
    assert_eq!(st, 200, "{body}");
    body
}

/// Sum of the samples of `name` whose labels contain every `label="value"`.
fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut found = None;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        if !(rest.starts_with('{') || rest.starts_with(' ')) {
            continue;
        }
        if !labels.iter().all(|(k, v)| rest.contains(&format!("{k}=\"{v}\""))) {
            continue;
        }
        let v: f64 = rest.rsplit(' ').next()?.parse().ok()?;
        *found.get_or_insert(0.0) += v;
    }
    found
}

// ---------------------------------------------------------------------------
// The lab: two namespaces, veth pairs, the usrsctp peer

/// Namespaces `smfl-{tag}-a` and `-b` joined by veth pairs
/// `fl{tag}A{p}` (10.{net}.{p}.1) <-> `fl{tag}B{p}` (10.{net}.{p}.2).
struct Lab {
    a: NetNs,
    b: NetNs,
    tag: &'static str,
    net: u8,
}

impl Lab {
    fn new(tag: &'static str, net: u8, paths: u32) -> Lab {
        let lab = Lab { a: NetNs::new(&format!("smfl-{tag}-a")), b: NetNs::new(&format!("smfl-{tag}-b")), tag, net };
        for p in 1..=paths {
            lab.add_path(p);
        }
        // usrsctp's raw IPv4 output does not pick the source address by
        // route: a stateless rule per side rewrites it to the outgoing
        // interface's (as tests/peer/lab.sh does). By name, so it holds for
        // a re-created interface.
        for (ns, side, last) in [(&lab.a, "A", 1), (&lab.b, "B", 2)] {
            let mut rules = String::from(
                "table ip smfl_src { chain post { type filter hook postrouting priority 100; policy accept;\n",
            );
            for p in 1..=paths {
                let src = format!("10.{net}.{p}.{last}");
                rules +=
                    &format!("oifname \"fl{tag}{side}{p}\" ip protocol sctp ip saddr != {src} ip saddr set {src}\n");
            }
            rules += "}\n}\n";
            nft(ns, &rules);
        }
        lab
    }

    fn a_if(&self, p: u32) -> String {
        format!("fl{}A{p}", self.tag)
    }

    fn b_if(&self, p: u32) -> String {
        format!("fl{}B{p}", self.tag)
    }

    fn addr(&self, side: u32, p: u32) -> String {
        format!("10.{}.{p}.{side}", self.net)
    }

    fn add_path(&self, p: u32) {
        let (ia, ib) = (self.a_if(p), self.b_if(p));
        sh(&[
            "ip",
            "link",
            "add",
            &ia,
            "netns",
            &self.a.name,
            "type",
            "veth",
            "peer",
            "name",
            &ib,
            "netns",
            &self.b.name,
        ]);
        self.a.ip(&["addr", "add", &format!("{}/24", self.addr(1, p)), "dev", &ia]);
        self.b.ip(&["addr", "add", &format!("{}/24", self.addr(2, p)), "dev", &ib]);
        self.a.ip(&["link", "set", &ia, "up"]);
        self.b.ip(&["link", "set", &ib, "up"]);
    }

    /// Deletes veth pair `p` (both ends).
    fn delete_path(&self, p: u32) {
        self.a.ip(&["link", "del", &self.a_if(p)]);
    }

    /// Black-holes path `p` in ns b (both directions); links stay up.
    fn cut(&self, p: u32) {
        let ib = self.b_if(p);
        nft(
            &self.b,
            &format!(
                "table inet smfl_cut {{ chain in {{ type filter hook prerouting priority -300; policy accept; \
                 iifname \"{ib}\" drop\n}}\n chain out {{ type filter hook postrouting priority -300; policy accept; \
                 oifname \"{ib}\" drop\n}}\n}}\n"
            ),
        );
    }

    fn addrs(&self, side: u32, paths: u32) -> Vec<String> {
        (1..=paths).map(|p| self.addr(side, p)).collect()
    }

    /// A usrsctp association over `paths` paths: the server in ns b, the
    /// client in ns a sending `rate` messages/s (echoed back). Returns the
    /// processes and the client's `up` line.
    fn association(&self, tmp: &TempDir, paths: u32, rate: u32) -> (Proc, Proc, Value) {
        let peer = peer_binary();
        let opts = [
            "--port",
            "5000",
            "--hb-interval",
            "200",
            "--rto-min",
            "100",
            "--rto-max",
            "400",
            "--path-max-retrans",
            "2",
        ];
        let mut sc = self.b.cmd(peer.to_str().unwrap());
        sc.args(["server", "--bind", &self.addrs(2, paths).join(",")])
            .args(opts)
            .stdout(fs::File::create(tmp.path("server.jsonl")).unwrap())
            .stderr(Stdio::null());
        let server = Proc::spawn(sc, "the usrsctp server");
        std::thread::sleep(Duration::from_millis(300));
        let mut cc = self.a.cmd(peer.to_str().unwrap());
        cc.args(["client", "--bind", &self.addrs(1, paths).join(","), "--connect", &self.addrs(2, paths).join(",")])
            .args(["--rate", &rate.to_string()])
            .args(opts)
            .stdout(fs::File::create(tmp.path("client.jsonl")).unwrap())
            .stderr(fs::File::create(tmp.path("client.err")).unwrap());
        let client = Proc::spawn(cc, "the usrsctp client");
        let up = wait_until("the usrsctp association to come up", Duration::from_secs(15), || {
            json_lines(&tmp.path("client.jsonl")).into_iter().find(|v| v["ev"] == "up")
        });
        (server, client, up)
    }
}

// ---------------------------------------------------------------------------
// The agent

struct Agent {
    proc: Proc,
    log: Lines,
}

/// Starts the agent in `ns` with `args` after `run`; events to `events`.
fn start_agent(ns: &NetNs, args: &[&str], events: &Path, who: &str) -> Agent {
    let mut c = ns.cmd(env!("CARGO_BIN_EXE_sctp-monitor"));
    c.arg("run")
        .args(args)
        .arg("--events")
        .arg(events)
        .args(["--poll-interval-ms", "200", "--tick-interval-ms", "100"])
        .args(["--hb-down-after", "2", "--hb-timeout-ms", "600"])
        .env("RUST_BACKTRACE", "0")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut proc = Proc::spawn(c, who);
    let log = collect_lines(proc.child.as_mut().unwrap().stderr.take().unwrap(), who);
    Agent { proc, log }
}

impl Agent {
    fn attached_line(&self, iface: &str) -> String {
        wait_log(&self.log, &[&format!("attached to {iface} ")], Duration::from_secs(15))
    }

    /// SIGTERM: exit 0 after detaching.
    fn stop(mut self) {
        self.proc.signal(libc::SIGTERM);
        let st = self.proc.wait(Duration::from_secs(15));
        assert!(st.success(), "{} exit status after SIGTERM: {st}", self.proc.what);
    }
}

/// Programs on `iface` in `ns`: (XDP program names, tcx egress program
/// names), asked of the kernel (rtnetlink for XDP, BPF_PROG_QUERY for tcx).
fn programs_on(ns: &NetNs, iface: &str) -> (Vec<String>, Vec<String>) {
    let iface = iface.to_string();
    ns.run(move || {
        let idx = sctp_monitor::kernel::attach::ifindex(&iface).expect("interface");
        let name = |id: u32| {
            aya::programs::loaded_programs()
                .filter_map(Result::ok)
                .find(|p| p.id() == id)
                .map_or_else(|| format!("id {id}?"), |p| p.name_as_str().unwrap_or("?").to_string())
        };
        let xdp =
            netlink::xdp_state(idx).expect("RTM_GETLINK").programs().into_iter().map(|(id, _)| name(id)).collect();
        let (_, tcx) = aya::programs::SchedClassifier::query_tcx(&iface, aya::programs::TcAttachType::Egress)
            .expect("query tcx egress");
        (xdp, tcx.iter().map(|p| p.name_as_str().unwrap_or("?").to_string()).collect())
    })
}

fn assert_ours_once(ns: &NetNs, iface: &str) {
    let (xdp, tcx) = programs_on(ns, iface);
    assert_eq!(xdp, vec![programs::XDP_INGRESS.to_string()], "{iface}: exactly one XDP program, ours");
    assert_eq!(tcx, vec![programs::TC_EGRESS.to_string()], "{iface}: exactly one tcx egress program, ours");
}

fn assert_none(ns: &NetNs, iface: &str, when: &str) {
    let (xdp, tcx) = programs_on(ns, iface);
    assert!(xdp.is_empty() && tcx.is_empty(), "{iface} {when}: XDP {xdp:?}, tcx {tcx:?}");
}

/// Address sets of an API association, as a set of sorted lists.
fn addr_sets(a: &Value) -> BTreeSet<Vec<String>> {
    ["initiator", "responder"]
        .iter()
        .map(|e| {
            let mut v: Vec<String> =
                a[e]["addrs"].as_array().into_iter().flatten().filter_map(|x| x.as_str().map(str::to_string)).collect();
            v.sort();
            v
        })
        .collect()
}

/// DATA packets per path (sender, src, dst) of an API association.
fn path_data(a: &Value) -> Vec<((String, String, String), u64)> {
    a["paths"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            let s = |k: &str| p[k].as_str().unwrap_or("").to_string();
            ((s("sender"), s("src"), s("dst")), p["data_packets"].as_u64().unwrap_or(0))
        })
        .collect()
}

fn total_data(a: &Value) -> u64 {
    path_data(a).iter().map(|(_, n)| n).sum()
}

fn only_association(ns: &NetNs) -> Option<Value> {
    let doc = api(ns, "/api/associations")?;
    let list = doc["associations"].as_array()?;
    (list.len() == 1).then(|| list[0].clone())
}

// ---------------------------------------------------------------------------
// 1. kill -9 under load

#[test]
fn kill_9_under_load_then_restart_picks_up_the_association_mid_flight() {
    if !privileged("kill_9_under_load_then_restart_picks_up_the_association_mid_flight") {
        return;
    }
    for tool in ["gcc", "nft"] {
        assert!(have(tool), "{tool} not found: run `cargo xtask setup --tests`");
    }
    let t0 = Instant::now();
    let tmp = TempDir::new("fl-kill9");
    let lab = Lab::new("k", 241, 2);
    let (a1, a2) = (lab.a_if(1), lab.a_if(2));
    let ifs = ["-i", a1.as_str(), "-i", a2.as_str(), "--metrics", "127.0.0.1:9108"];

    let events1 = tmp.path("events1.jsonl");
    let first = start_agent(&lab.a, &ifs, &events1, "agent1");
    first.attached_line(&a1);
    first.attached_line(&a2);
    let (_server, _client, up) = lab.association(&tmp, 2, 500);
    let primary = up["primary"].as_str().expect("primary in the peer's up line").to_string();
    let up1 = wait_until("association_up from the first agent", Duration::from_secs(10), || {
        json_lines(&events1).into_iter().find(|v| v["event"] == "association_up")
    });
    assert_eq!(up1["handshake_seen"], true, "the first agent saw the handshake: {up1}");
    // Under load: DATA flowing both ways (500 messages/s, echoed).
    let before = wait_until("DATA counted by the first agent", Duration::from_secs(10), || {
        only_association(&lab.a).filter(|a| total_data(a) > 100)
    });

    // A second agent on the same interfaces while the first runs: refused,
    // never a second program of ours.
    let dup_args = ["-i", a1.as_str(), "-i", a2.as_str(), "--metrics", "off"];
    let mut dup = start_agent(&lab.a, &dup_args, &tmp.path("events-dup.jsonl"), "agent-dup");
    let st = dup.proc.wait(Duration::from_secs(20));
    assert_eq!(st.code(), Some(1), "a second agent on the same interfaces exits 1: {st}");
    let refused = wait_log(&dup.log, &["another sctp-monitor is monitoring"], Duration::from_secs(2));
    assert!(refused.contains(&a1), "{refused}");
    for i in [&a1, &a2] {
        assert_ours_once(&lab.a, i);
    }
    assert!(total_data(&only_association(&lab.a).expect("the first agent still answers")) >= total_data(&before));

    // kill -9: no chance to detach.
    let mut first = first;
    first.proc.signal(libc::SIGKILL);
    let st = first.proc.wait(Duration::from_secs(10));
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(st.signal(), Some(libc::SIGKILL), "the first agent died of SIGKILL: {st}");
    eprintln!("first agent killed after {} DATA packets counted", total_data(&before));
    // Its attachments were BPF links owned by the process: gone with it.
    for i in [&a1, &a2] {
        assert_none(&lab.a, i, "after kill -9");
    }

    // The restart attaches, says what it found, and has exactly one program
    // of each kind on each interface.
    let events2 = tmp.path("events2.jsonl");
    let restarted = Instant::now();
    let second = start_agent(&lab.a, &ifs, &events2, "agent2");
    for i in [&a1, &a2] {
        let line = second.attached_line(i);
        assert!(line.contains("no program of an earlier run was left on it"), "{line}");
        assert_ours_once(&lab.a, i);
    }

    // Picked up mid-flight: both address sets, paths, DATA flowing.
    let want: BTreeSet<Vec<String>> = [lab.addrs(1, 2), lab.addrs(2, 2)].into_iter().collect();
    let picked =
        wait_until("the association with both address sets in the new agent's API", Duration::from_secs(15), || {
            only_association(&lab.a)
                .filter(|a| addr_sets(a) == want && a["paths"].as_array().is_some_and(|p| p.len() >= 4))
        });
    let picked_after = restarted.elapsed();
    assert_eq!(picked["handshake_seen"], false, "picked up mid-flight: {picked}");
    assert_eq!(picked["state"], "established", "{picked}");
    let up2 = json_lines(&events2).into_iter().find(|v| v["event"] == "association_up").expect("association_up");
    assert_eq!(up2["handshake_seen"], false, "{up2}");
    let d0 = total_data(&picked);
    std::thread::sleep(Duration::from_millis(1500));
    let later = only_association(&lab.a).expect("the association");
    let d1 = total_data(&later);
    assert!(d1 > d0, "DATA keeps being counted after the restart: {d0} then {d1}");
    eprintln!(
        "restart: association picked up {picked_after:?} after the new agent started, {} paths; DATA packets {d0} -> {d1} in 1.5 s",
        later["paths"].as_array().map_or(0, Vec::len)
    );

    // A path cut after the restart is a failover.
    let cut_path = if primary == lab.addr(2, 1) { 1 } else { 2 };
    let cut_at = Instant::now();
    lab.cut(cut_path);
    let fo = wait_until("a failover after the cut", Duration::from_secs(20), || {
        json_lines(&events2).into_iter().find(|v| v["event"] == "failover" && v["from"]["dst"] == primary.as_str())
    });
    let other = lab.addr(2, 3 - cut_path);
    assert_eq!(fo["to"]["dst"], other.as_str(), "failover to the other path: {fo}");
    assert_eq!(fo["assoc"], up2["assoc"], "the association picked up mid-flight: {fo}");
    eprintln!("failover reported {:?} after the cut: {fo}", cut_at.elapsed());

    second.stop();
    for i in [&a1, &a2] {
        assert_none(&lab.a, i, "after SIGTERM");
    }
    eprintln!("kill -9 test took {:?}", t0.elapsed());
}

// ---------------------------------------------------------------------------
// 2. An interface deleted while monitored, then re-created

/// `sctp_monitor_chunks_total` of `iface` (both directions, all types).
fn chunks_on(text: &str, iface: &str) -> f64 {
    metric(text, "sctp_monitor_chunks_total", &[("interface", iface)]).unwrap_or(0.0)
}

/// Programs `sctp_monitor_programs_attached` reports on `iface`, sorted.
fn attached_metric(text: &str, iface: &str) -> Vec<String> {
    let mut v: Vec<String> = text
        .lines()
        .filter(|l| l.starts_with("sctp_monitor_programs_attached{") && l.contains(&format!("interface=\"{iface}\"")))
        .filter(|l| l.ends_with(" 1"))
        .map(|l| {
            let p = l.split("program=\"").nth(1).unwrap_or("");
            p[..p.find('"').unwrap_or(0)].to_string()
        })
        .collect();
    v.sort();
    v
}

fn status_ifaces(ns: &NetNs) -> Vec<String> {
    let st = api(ns, "/api/status").expect("GET /api/status");
    let mut v: Vec<String> = st["interfaces"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| i["name"].as_str().map(str::to_string))
        .collect();
    v.sort();
    v
}

#[test]
fn an_interface_deleted_and_recreated_is_logged_and_reattached_while_the_others_stay_monitored() {
    if !privileged("an_interface_deleted_and_recreated_is_logged_and_reattached_while_the_others_stay_monitored") {
        return;
    }
    for tool in ["gcc", "nft"] {
        assert!(have(tool), "{tool} not found: run `cargo xtask setup --tests`");
    }
    let t0 = Instant::now();
    let tmp = TempDir::new("fl-churn");
    let lab = Lab::new("c", 242, 2);
    let (a1, a2, b1, b2) = (lab.a_if(1), lab.a_if(2), lab.b_if(1), lab.b_if(2));
    // Side a: every interface (no -i). Side b: the two named with -i.
    let (ev_a, ev_b) = (tmp.path("events-a.jsonl"), tmp.path("events-b.jsonl"));
    let auto = start_agent(&lab.a, &[], &ev_a, "agent-a(all)");
    let named = start_agent(&lab.b, &["-i", &b1, "-i", &b2], &ev_b, "agent-b(-i)");
    for (ag, i) in [(&auto, &a1), (&auto, &a2), (&named, &b1), (&named, &b2)] {
        ag.attached_line(i);
    }
    // Path 1 is the client's primary (first --connect address); the server
    // answers on the path the DATA came in on.
    let (_server, _client, up) = lab.association(&tmp, 2, 100);
    assert_eq!(up["primary"], lab.addr(2, 1).as_str(), "{up}");
    for (ns, ev) in [(&lab.a, &ev_a), (&lab.b, &ev_b)] {
        wait_until("association_up on both sides", Duration::from_secs(10), || {
            json_lines(ev).into_iter().find(|v| v["event"] == "association_up")
        });
        // Heartbeats seen on both paths.
        wait_until("traffic counted on both interfaces", Duration::from_secs(10), || {
            let m = scrape(ns);
            let names = status_ifaces(ns);
            names.iter().all(|i| chunks_on(&m, i) > 0.0).then_some(())
        });
    }
    let m = scrape(&lab.a);
    assert_eq!(attached_metric(&m, &a2), vec![programs::TC_EGRESS.to_string(), programs::XDP_INGRESS.to_string()]);

    // Delete veth pair 2 (both ends) while both agents watch it.
    let deleted = Instant::now();
    lab.delete_path(2);
    let gone_a = wait_log(&auto.log, &[&format!("interface {a2} "), "is gone"], Duration::from_secs(10));
    let gone_b = wait_log(&named.log, &[&format!("interface {b2} "), "is gone"], Duration::from_secs(10));
    eprintln!("deletion logged within {:?}", deleted.elapsed());
    assert!(gone_a.contains("still monitoring 1 other interface") && gone_a.contains("comes back up"), "{gone_a}");
    assert!(gone_b.contains("still monitoring 1 other interface") && gone_b.contains("when it is back"), "{gone_b}");
    for (ns, gone, kept) in [(&lab.a, &a2, &a1), (&lab.b, &b2, &b1)] {
        let m = scrape(ns);
        assert!(attached_metric(&m, gone).is_empty(), "{gone} still in programs_attached:\n{m}");
        assert_eq!(attached_metric(&m, kept).len(), 2, "{kept} in programs_attached:\n{m}");
        assert_eq!(status_ifaces(ns), vec![kept.clone()]);
        assert_ours_once(ns, kept);
    }
    // The others stay monitored: the association's DATA keeps being counted
    // on path 1, and its chunks on interface 1.
    for (ns, kept) in [(&lab.a, &a1), (&lab.b, &b1)] {
        let (c0, d0) = (chunks_on(&scrape(ns), kept), total_data(&only_association(ns).expect("association")));
        wait_until(&format!("traffic on {kept} counted after the deletion"), Duration::from_secs(10), || {
            let c1 = chunks_on(&scrape(ns), kept);
            let d1 = total_data(&only_association(ns)?);
            (c1 > c0 && d1 > d0).then_some(())
        });
    }
    for ag in [&auto, &named] {
        let l = ag.log.lock().unwrap();
        assert!(!l.iter().any(|x| x.contains("ERROR")), "no error logged: {l:?}");
    }
    std::thread::sleep(Duration::from_millis(500));

    // Re-create it with the same names and addresses.
    let (old_a, old_b) = (
        gone_a.split("(ifindex ").nth(1).and_then(|s| s.split(')').next()).unwrap_or("?").to_string(),
        gone_b.split("(ifindex ").nth(1).and_then(|s| s.split(')').next()).unwrap_or("?").to_string(),
    );
    let hb_before = chunks_on(&scrape(&lab.a), &a2);
    let recreated = Instant::now();
    lab.add_path(2);
    let back_a = wait_log(&auto.log, &[&format!("attached to {a2} "), "it is back"], Duration::from_secs(10));
    let back_b = wait_log(&named.log, &[&format!("attached to {b2} "), "it is back"], Duration::from_secs(10));
    eprintln!("re-attach logged within {:?}", recreated.elapsed());
    assert!(back_a.contains(&format!("it was ifindex {old_a}")), "{back_a}");
    assert!(back_b.contains(&format!("it was ifindex {old_b}")), "{back_b}");
    for (ns, back) in [(&lab.a, &a2), (&lab.b, &b2)] {
        assert_ours_once(ns, back);
        let m = scrape(ns);
        assert_eq!(attached_metric(&m, back).len(), 2, "{back} back in programs_attached:\n{m}");
        assert_eq!(status_ifaces(ns).len(), 2);
    }
    // Its traffic is tracked again: usrsctp's heartbeats on path 2 resume
    // and are counted on the re-created interfaces ...
    let hb_b = chunks_on(&scrape(&lab.b), &b2);
    for (ns, back, before) in [(&lab.a, &a2, hb_before), (&lab.b, &b2, hb_b)] {
        wait_until(&format!("chunks counted on the re-created {back}"), Duration::from_secs(15), || {
            (chunks_on(&scrape(ns), back) > before).then_some(())
        });
    }
    // ... and when path 1 is cut, DATA moves to the re-created path: both
    // agents report the failover to it and count its DATA.
    std::thread::sleep(Duration::from_secs(1));
    lab.cut(1);
    for (ns, ev, to) in [(&lab.a, &ev_a, lab.addr(2, 2)), (&lab.b, &ev_b, lab.addr(2, 2))] {
        let fo = wait_until("a failover to the re-created path", Duration::from_secs(20), || {
            json_lines(ev).into_iter().find(|v| v["event"] == "failover" && v["to"]["dst"] == to.as_str())
        });
        let n = wait_until("DATA counted on the re-created path", Duration::from_secs(10), || {
            let a = only_association(ns)?;
            let n: u64 = path_data(&a).iter().filter(|((_, _, dst), _)| *dst == to).map(|(_, n)| n).sum();
            (n > 0).then_some(n)
        });
        eprintln!("{}: {fo}; {n} DATA packets on the re-created path", ns.name);
    }
    eprintln!("path 2 tracked again {:?} after the re-creation", recreated.elapsed());

    auto.stop();
    named.stop();
    for (ns, i) in [(&lab.a, &a1), (&lab.a, &a2), (&lab.b, &b1), (&lab.b, &b2)] {
        assert_none(ns, i, "after SIGTERM");
    }
    eprintln!("interface churn test took {:?}", t0.elapsed());
}

// ---------------------------------------------------------------------------
// 3. Least privilege, and the listener's default address

/// Capability numbers (linux/capability.h).
const CAPS: [(&str, u32); 3] = [("net_admin", 12), ("perfmon", 38), ("bpf", 39)];

/// `sctp-monitor run ARGS` in `ns` as uid/gid 65534 (nobody) holding only
/// `caps` (setpriv names: bpf, net_admin, perfmon): inheritable, ambient and
/// bounding sets, no new privileges, as the systemd unit runs it.
fn unprivileged_agent(ns: &NetNs, caps: &[&str], args: &[&str]) -> Command {
    let set =
        std::iter::once("-all".to_string()).chain(caps.iter().map(|c| format!("+{c}"))).collect::<Vec<_>>().join(",");
    let mut c = ns.cmd("setpriv");
    c.args(["--reuid", "65534", "--regid", "65534", "--clear-groups", "--no-new-privs"])
        .args(["--inh-caps", &set, "--ambient-caps", &set, "--bounding-set", &set, "--"])
        .arg(env!("CARGO_BIN_EXE_sctp-monitor"))
        .arg("run")
        .args(args)
        .env("RUST_BACKTRACE", "0");
    c
}

fn proc_status(pid: i32, key: &str) -> String {
    let s = fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc/PID/status");
    s.lines().find_map(|l| l.strip_prefix(key)).unwrap_or_default().trim().to_string()
}

/// TCP sockets listening on `port` in `ns`: local addresses.
fn tcp_listeners(ns: &NetNs, port: u16) -> Vec<String> {
    ns.run(move || {
        let mut out = Vec::new();
        // thread-self: this thread's network namespace, not the process's.
        for f in ["/proc/thread-self/net/tcp", "/proc/thread-self/net/tcp6"] {
            for l in fs::read_to_string(f).unwrap_or_default().lines().skip(1) {
                let cols: Vec<&str> = l.split_whitespace().collect();
                let (Some(local), Some(state)) = (cols.get(1), cols.get(3)) else { continue };
                let Some((addr, p)) = local.split_once(':') else { continue };
                if *state == "0A" && u16::from_str_radix(p, 16) == Ok(port) {
                    out.push(addr.to_string());
                }
            }
        }
        out
    })
}

#[test]
fn least_privilege_agent_runs_with_cap_bpf_net_admin_perfmon_and_listens_on_loopback() {
    if !privileged("least_privilege_agent_runs_with_cap_bpf_net_admin_perfmon_and_listens_on_loopback") {
        return;
    }
    for tool in ["gcc", "nft", "setpriv"] {
        assert!(have(tool), "{tool} not found: run `cargo xtask setup --tests`");
    }
    let t0 = Instant::now();
    let tmp = TempDir::new("fl-lp");
    let lab = Lab::new("p", 243, 1);
    let a1 = lab.a_if(1);

    // Without any one of the three, the agent refuses to start and names
    // the missing capability; nothing is attached.
    for (missing, _) in CAPS {
        let others: Vec<&str> = CAPS.iter().map(|c| c.0).filter(|c| *c != missing).collect();
        let out = unprivileged_agent(&lab.a, &others, &["-i", &a1, "--events", "-"]).output().expect("setpriv");
        let err = String::from_utf8_lossy(&out.stderr);
        let want = format!("missing capabilities CAP_{}:", missing.to_ascii_uppercase());
        assert_eq!(out.status.code(), Some(3), "without CAP_{missing} (exit 3: privileges): {}\n{err}", out.status);
        let why = sctp_monitor::agent::preflight::needed_for(&format!("CAP_{}", missing.to_ascii_uppercase()));
        assert!(err.contains(&want) && err.contains(why) && err.contains("setcap"), "without CAP_{missing}: {err}");
        assert_none(&lab.a, &a1, &format!("after the refused start without CAP_{missing}"));
        eprintln!("without CAP_{}: exit 3, {}", missing.to_ascii_uppercase(), err.lines().next().unwrap_or(""));
    }

    // The systemd unit grants exactly what this test runs with.
    let unit = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/systemd/sctp-monitor.service"))
        .expect("deploy/systemd/sctp-monitor.service");
    let mut want_set: Vec<String> = CAPS.iter().map(|c| format!("CAP_{}", c.0.to_ascii_uppercase())).collect();
    want_set.sort();
    for key in ["AmbientCapabilities=", "CapabilityBoundingSet="] {
        let line = unit.lines().find(|l| l.starts_with(key)).unwrap_or_else(|| panic!("{key} in the unit"));
        let mut got: Vec<String> = line[key.len()..].split_whitespace().map(str::to_string).collect();
        got.sort();
        assert_eq!(got, want_set, "the unit's {key}");
    }
    assert!(unit.lines().any(|l| l == "NoNewPrivileges=yes") && unit.lines().any(|l| l == "DynamicUser=yes"));

    // With exactly the three, as nobody, with the default listener.
    let names: Vec<&str> = CAPS.iter().map(|c| c.0).collect();
    let mut c = unprivileged_agent(&lab.a, &names, &["-i", &a1, "--poll-interval-ms", "200"]);
    c.stdout(fs::File::create(tmp.path("events.jsonl")).unwrap()).stderr(Stdio::piped());
    let mut proc = Proc::spawn(c, "the unprivileged agent");
    let log = collect_lines(proc.child.as_mut().unwrap().stderr.take().unwrap(), "agent(nobody)");
    let mut agent = Agent { proc, log };
    agent.attached_line(&a1);
    let pid = agent.proc.pid();
    let want_caps: u64 = CAPS.iter().map(|c| 1u64 << c.1).sum();
    assert_eq!(proc_status(pid, "Uid:").split_whitespace().collect::<Vec<_>>(), vec!["65534"; 4], "runs as nobody");
    for set in ["CapEff:", "CapPrm:", "CapBnd:", "CapAmb:"] {
        let v = u64::from_str_radix(&proc_status(pid, set), 16).expect("capability set");
        assert_eq!(v, want_caps, "{set} {v:#x}: exactly CAP_BPF, CAP_NET_ADMIN, CAP_PERFMON");
    }
    assert_ours_once(&lab.a, &a1);
    let listen = wait_log(&agent.log, &["metrics on http://"], Duration::from_secs(5));
    assert!(listen.contains("http://127.0.0.1:9108/metrics"), "default listener: {listen}");

    // It sees the traffic: an association with its addresses.
    let (_server, _client, _) = lab.association(&tmp, 1, 50);
    let assoc = wait_until("the association in the unprivileged agent's API", Duration::from_secs(15), || {
        only_association(&lab.a).filter(|a| total_data(a) > 0)
    });
    assert_eq!(assoc["handshake_seen"], true, "{assoc}");
    let want: BTreeSet<Vec<String>> = [lab.addrs(1, 1), lab.addrs(2, 1)].into_iter().collect();
    assert_eq!(addr_sets(&assoc), want, "{assoc}");
    let events = json_lines(&tmp.path("events.jsonl"));
    assert!(events.iter().any(|e| e["event"] == "association_up"), "events on stdout: {events:?}");

    // The default listener is loopback only: the API answers on 127.0.0.1,
    // not on the interface's address, from this namespace or the peer's.
    assert_eq!(tcp_listeners(&lab.a, METRICS_PORT), vec!["0100007F".to_string()], "listening sockets on :9108");
    assert!(
        http_get_at(&lab.a, &lab.addr(1, 1), METRICS_PORT, "/healthz").is_none(),
        "reachable on {}",
        lab.addr(1, 1)
    );
    assert!(http_get_at(&lab.b, &lab.addr(1, 1), METRICS_PORT, "/healthz").is_none(), "reachable from the peer");
    assert_eq!(http_get_at(&lab.a, "127.0.0.1", METRICS_PORT, "/healthz").map(|r| r.0), Some(200));

    // SIGTERM: detaches (as nobody) and exits 0.
    agent.proc.signal(libc::SIGTERM);
    let st = agent.proc.wait(Duration::from_secs(15));
    assert!(st.success(), "exit status after SIGTERM: {st}");
    wait_log(&agent.log, &[&format!("detached from {a1}")], Duration::from_secs(2));
    assert_none(&lab.a, &a1, "after SIGTERM");
    eprintln!("least-privilege test took {:?}", t0.elapsed());
}

// ---------------------------------------------------------------------------
// 4. DATA payload bytes never reach userspace

/// Whether `hay` holds any `w`-byte window of `needle`.
fn holds_window(hay: &[u8], needle: &[u8], w: usize) -> bool {
    needle.windows(w).any(|n| hay.windows(w).any(|h| h == n))
}

/// Runs `frame` through both programs and returns the ring-buffer items
/// exactly as userspace receives them.
fn records_of(bed: &TestBed, ring: &mut aya::maps::RingBuf<aya::maps::MapData>, frame: &[u8]) -> Vec<Vec<u8>> {
    bed.pass(Prog::Ingress, frame).expect("ingress run");
    // The kernel builds no skb for a frame shorter than its IP header.
    if frame.len() >= 14 + 40 {
        bed.pass(Prog::Egress, frame).expect("egress run");
    }
    let mut out = Vec::new();
    while let Some(item) = ring.next() {
        out.push(item.to_vec());
    }
    out
}

#[test]
fn data_payload_bytes_never_reach_userspace() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        assert!(std::env::var_os("CI").is_none(), "needs root (BPF_PROG_TEST_RUN); CI must run it as root");
        eprintln!("SKIPPED data_payload_bytes_never_reach_userspace: needs root");
        return;
    }
    // The agent's load options (UDP port 9899), DATA "resumed" after 1 ms
    // so that every kind of DATA record is produced.
    let opts = sctp_monitor::agent::AgentOptions { data_idle: Duration::from_millis(1), ..Default::default() };
    let mut bed = TestBed::new(sctp_monitor::agent::load_options(&opts)).expect("load the eBPF object");
    let mut ring = bed.take_ring().expect("ring buffer");
    let mut kinds = std::collections::BTreeMap::<String, u64>::new();
    let mut count = |items: &[Vec<u8>]| {
        for i in items {
            let r = ChunkRecord::from_bytes(i).expect("record");
            *kinds.entry(format!("{:?}", r.kind())).or_default() += 1;
        }
    };

    // Real usrsctp traffic: every DATA payload of the peer is a 4-byte
    // sequence number and then 'x' bytes.
    let xs = [b'x'; 16];
    let (mut frames, mut with_payload, mut records) = (0, 0, 0);
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    for name in [
        "usrsctp-multihomed-failover.pcap",
        "usrsctp-multihomed-failover-ipv6.pcap",
        "usrsctp-multihomed-failover-mixed-v4v6.pcap",
        "usrsctp-multihomed-failover-udp.pcap",
    ] {
        let file = fs::File::open(fixtures.join(name)).expect("fixture");
        let mut reader = pcap_file::pcap::PcapReader::new(file).expect("pcap");
        while let Some(pkt) = reader.next_packet() {
            let pkt = pkt.expect("pcap packet");
            frames += 1;
            with_payload += holds_window(&pkt.data, &xs, 16) as u32;
            let items = records_of(&bed, &mut ring, &pkt.data);
            for i in &items {
                assert!(!holds_window(i, &xs, 16), "{name}: a record holds DATA payload bytes: {i:02x?}");
            }
            records += items.len();
            count(&items);
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    assert!(with_payload > 1000, "the captures carry DATA payload ({with_payload} frames)");

    // Crafted DATA in every shape the programs parse, with a marker payload.
    let marker = b"PAYLOAD-THAT-MUST-NOT-LEAVE-THE-KERNEL-0123456789";
    let a = std::net::Ipv4Addr::new(10, 9, 0, 1);
    let (b, a2) = (std::net::Ipv4Addr::new(10, 9, 0, 2), std::net::Ipv4Addr::new(10, 9, 1, 1));
    let a6: std::net::Ipv6Addr = "fd00:9::1".parse().unwrap();
    let b6: std::net::Ipv6Addr = "fd00:9::2".parse().unwrap();
    let v4 = |src| FrameBuilder::ipv4(src, b).sctp(5000, 5000, 0x0102_0304);
    let spec = InitSpec::new(0x0102_0304, 1).cookie(64, CookiePos::After);
    let crafted: Vec<Vec<u8>> = vec![
        v4(a).chunk(craft::data(1, 0, 0, 60, marker)).build(),
        v4(a2).chunk(craft::data(2, 0, 1, 60, marker)).build(),
        v4(a2).chunk(craft::data(3, 0, 2, 60, marker)).build(),
        v4(a).chunk(craft::i_data(craft::data_flags::BE, 4, 1, 7, 60, marker)).build(),
        v4(a).chunk(craft::cookie_echo(marker)).chunk(craft::data(5, 0, 3, 60, marker)).build(),
        v4(a).chunk(craft::sack(5, 65536, &[], &[])).chunk(craft::data(6, 0, 4, 60, marker)).build(),
        v4(a).chunk(craft::heartbeat(&craft::param(1, b"info"))).chunk(craft::data(7, 0, 5, 60, marker)).build(),
        v4(a).chunk(craft::init_ack(&spec)).chunk(craft::data(8, 0, 6, 60, marker)).build(),
        v4(a).chunks((9..25).map(|t| craft::data(t, 0, t as u16, 60, marker))).build(),
        v4(a).vlan(0x8100, 7).chunk(craft::data(30, 0, 9, 60, marker)).build(),
        v4(a).udp_encap(9899, 9899).chunk(craft::data(31, 0, 10, 60, marker)).build(),
        FrameBuilder::ipv6(a6, b6).sctp(5000, 5000, 0x0a0b_0c0d).chunk(craft::data(1, 0, 0, 60, marker)).build(),
        FrameBuilder::ipv6(a6, b6).sctp(5000, 5000, 0x0a0b_0c0d).chunk(craft::data(2, 0, 1, 60, marker)).build(),
        // A DATA chunk claiming more than the packet holds.
        v4(a).chunk(craft::raw_chunk_with_len(0, 3, 400, &[marker.as_slice(), marker].concat())).build(),
    ];
    let mut data_records = 0;
    for (n, f) in crafted.iter().enumerate() {
        std::thread::sleep(Duration::from_millis(3)); // past --data-idle-ms: "resumed"
        let items = records_of(&bed, &mut ring, f);
        for i in &items {
            assert!(!holds_window(i, marker, 8), "crafted frame {n}: a record holds payload bytes: {i:02x?}");
            let r = ChunkRecord::from_bytes(i).unwrap();
            if matches!(r.kind(), Some(RecordKind::DataFirst | RecordKind::DataPathChange | RecordKind::DataResumed)) {
                data_records += 1;
                assert!(r.seg1_len <= 20 && r.seg2_len == 0, "DATA record beyond the header: {r:?}");
            }
        }
        records += items.len();
        count(&items);
    }
    for k in ["Some(DataFirst)", "Some(DataPathChange)", "Some(DataResumed)", "Some(CookieEcho)", "Some(Control)"] {
        assert!(kinds.get(k).copied().unwrap_or(0) > 0, "no {k} record was produced: {kinds:?}");
    }
    eprintln!(
        "{frames} captured frames ({with_payload} with DATA payload) and {} crafted frames: {records} records \
         ({data_records} DATA records from crafted frames), none holding payload bytes; by kind {kinds:?}",
        crafted.len()
    );
}
