//! Overload, with every loss counted. The real agent binary on
//! veths in its own namespaces:
//!
//! - ring buffer full: control chunks arrive far faster than the agent can
//!   drain a one-page ring. Every record the kernel tried to emit is either
//!   received by the agent or counted lost; the kernel's count (read here
//!   from the programs' own `COUNTERS` map, not from the agent) equals the
//!   agent's metric, `/api/status` and the `top` footer; after the load the
//!   agent tracks a new association by itself.
//! - association flood: 1,000,000 INITs with random tags and addresses
//!   (plus INIT-ACKs and DATA on random paths) beside a real multihomed
//!   usrsctp association. The tracker stays at its cap, evicting flood
//!   entries (counted), the kernel LRU maps stay at their size, resident
//!   memory stays under the bound stated in RELIABILITY.md, and the real
//!   association stays tracked and its failover is reported.
//!
//! Needs root; the flood also gcc + libusrsctp-dev and nftables, and the
//! ring test tmux (`cargo xtask setup --tests`).

mod support;

use std::{
    fs,
    io::{BufRead, BufReader},
    net::{IpAddr, Ipv4Addr},
    path::Path,
    process::{Command, Stdio},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use aya::maps::{Map, MapData, MapInfo, PerCpuArray, PerCpuHashMap};
use sctp_monitor::craft::{self, FrameBuilder, InitSpec, XorShift};
use sctp_monitor_common::{AssocDirState, PathKey, PathStats, counters as kc, maps};
use support::{
    NetNs, nft, privileged,
    process::{Proc, TempDir, have, json_lines, wait_until},
    send_frames, veth,
};

const METRICS_PORT: u16 = 9108;

/// The two tests run one after the other: each loads the machine's two
/// cores on its own.
static SERIAL: Mutex<()> = Mutex::new(());

// ------------------------------------------------------------------ helpers

/// A child process killed (SIGKILL) and reaped on drop.
/// GET http://127.0.0.1:`METRICS_PORT``path` inside `ns`: the body of a 200.
fn http_get(ns: &NetNs, path: &str) -> Option<String> {
    support::http::get(ns, "127.0.0.1", METRICS_PORT, path, None).and_then(|(st, body)| (st == 200).then_some(body))
}

fn api(ns: &NetNs, path: &str) -> serde_json::Value {
    let body = http_get(ns, path).unwrap_or_else(|| panic!("GET {path} failed"));
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: {e}: {body}"))
}

/// The value of an unlabelled sample in a Prometheus scrape.
fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// The agent in `ns` on `ifaces`, its stderr collected; returns once it has
/// attached to every interface.
fn start_agent(ns: &NetNs, ifaces: &[&str], events: &Path, extra: &[&str]) -> (Proc, Arc<Mutex<Vec<String>>>) {
    let mut c = ns.cmd(env!("CARGO_BIN_EXE_sctp-monitor"));
    c.arg("run");
    for i in ifaces {
        c.args(["-i", i]);
    }
    c.args(["--metrics", &format!("127.0.0.1:{METRICS_PORT}")])
        .arg("--events")
        .arg(events)
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut p = Proc::spawn(c, "the agent");
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let l = lines.clone();
    let stderr = p.child.as_mut().unwrap().stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if !line.contains("ring buffer full") {
                eprintln!("  agent: {line}");
            }
            l.lock().unwrap().push(line);
        }
    });
    for iface in ifaces {
        wait_until(&format!("the agent to attach to {iface}"), Duration::from_secs(20), || {
            lines.lock().unwrap().iter().any(|x| x.contains(&format!("attached to {iface} "))).then_some(())
        });
    }
    (p, lines)
}

/// Resident and peak resident memory of a process, in KiB.
fn rss_kib(pid: i32) -> (u64, u64) {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc/PID/status");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or_else(|| panic!("{name} in /proc/{pid}/status"))
    };
    (field("VmRSS:"), field("VmHWM:"))
}

// ------------------------------------------- the kernel's maps, read directly

/// The map `name` of the XDP program attached to `iface` in `ns`: found
/// through the program the interface runs (other agents may be loaded on
/// this machine), not through the agent.
fn kernel_map(ns: &NetNs, iface: &str, name: &str) -> MapData {
    let out = ns.cmd("ip").args(["-d", "link", "show", "dev", iface]).output().expect("ip link show");
    let text = String::from_utf8_lossy(&out.stdout);
    let prog_id: u32 = text
        .split("prog/xdp id ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no XDP program on {iface}: {text}"));
    let prog = aya::programs::loaded_programs()
        .filter_map(Result::ok)
        .find(|p| p.id() == prog_id)
        .unwrap_or_else(|| panic!("program {prog_id} not loaded"));
    for id in prog.map_ids().expect("map ids").expect("kernel gives map ids") {
        if MapInfo::from_id(id).ok().and_then(|m| m.name_as_str().map(|n| n == name)) == Some(true) {
            return MapData::from_id(id).expect("open map by id");
        }
    }
    panic!("program {prog_id} on {iface} has no map {name}");
}

/// The `COUNTERS` array of both directions, summed over CPUs.
fn kernel_counters(ns: &NetNs, iface: &str) -> [[u64; kc::COUNT as usize]; 2] {
    let map: PerCpuArray<_, u64> =
        PerCpuArray::try_from(Map::PerCpuArray(kernel_map(ns, iface, maps::COUNTERS))).expect("COUNTERS");
    let mut out = [[0u64; kc::COUNT as usize]; 2];
    for (dir, c) in out.iter_mut().enumerate() {
        for i in 0..kc::COUNT {
            c[i as usize] = map.get(&(dir as u32 * kc::COUNT + i), 0).expect("read counter").iter().sum();
        }
    }
    out
}

/// Entries in use, size and locked kernel memory (bytes, from the map fd's
/// fdinfo) of PATHS (LRU hash) or ASSOC_DIRS (direct-mapped array).
fn lru_map(ns: &NetNs, iface: &str, name: &str) -> (usize, u32, u64) {
    let data = kernel_map(ns, iface, name);
    let memlock = memlock_bytes(&data);
    let size = data.info().expect("map info").max_entries();
    let entries = if name == maps::PATHS {
        let m: PerCpuHashMap<_, PathKey, PathStats> =
            PerCpuHashMap::try_from(Map::PerCpuLruHashMap(data)).expect("PATHS");
        m.keys().filter_map(Result::ok).count()
    } else {
        // Direct-mapped array: a slot is in use once a direction owns it.
        let m: aya::maps::Array<_, AssocDirState> = aya::maps::Array::try_from(Map::Array(data)).expect("ASSOC_DIRS");
        m.iter().filter_map(Result::ok).filter(|s| s.key.vtag != 0 || s.key.src_port != 0).count()
    };
    (entries, size, memlock)
}

fn memlock_bytes(m: &MapData) -> u64 {
    use std::os::fd::{AsFd, AsRawFd};
    let fd = m.fd().as_fd().as_raw_fd();
    fs::read_to_string(format!("/proc/self/fdinfo/{fd}"))
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("memlock:")?.trim().parse().ok()))
        .unwrap_or(0)
}

// ------------------------------------------------------------ ring full

/// Control chunks per blast frame (the kernel walks 32 at most).
const CHUNKS_PER_FRAME: usize = 30;
const BLAST_FRAMES: usize = 20_000;

/// One frame of the blast: `CHUNKS_PER_FRAME` HEARTBEATs of one association,
/// each with its own Heartbeat Info.
fn blast_frame(i: usize) -> Vec<u8> {
    let chunks = (0..CHUNKS_PER_FRAME).map(|k| craft::heartbeat(&((i * CHUNKS_PER_FRAME + k) as u64).to_be_bytes()));
    FrameBuilder::ipv4(Ipv4Addr::new(10, 93, 0, 2), Ipv4Addr::new(10, 93, 0, 1))
        .sctp(2905, 2905, 0x0bad_cafe)
        .chunks(chunks)
        .build()
}

/// A full handshake: INIT, INIT-ACK, COOKIE-ECHO, COOKIE-ACK.
fn handshake_frames(tag_i: u32, tag_r: u32) -> Vec<Vec<u8>> {
    let (i, r) = (Ipv4Addr::new(10, 93, 1, 1), Ipv4Addr::new(10, 93, 1, 2));
    vec![
        FrameBuilder::ipv4(i, r).sctp(4000, 4001, 0).chunk(craft::init(&InitSpec::new(tag_i, 1))).build(),
        FrameBuilder::ipv4(r, i).sctp(4001, 4000, tag_i).chunk(craft::init_ack(&InitSpec::new(tag_r, 1))).build(),
        FrameBuilder::ipv4(i, r).sctp(4000, 4001, tag_r).chunk(craft::cookie_echo(&[9; 16])).build(),
        FrameBuilder::ipv4(r, i).sctp(4001, 4000, tag_i).chunk(craft::cookie_ack()).build(),
    ]
}

/// Removes the tmux session on drop.
struct Tmux(String);

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux").args(["kill-session", "-t", &self.0]).stderr(Stdio::null()).status();
    }
}

#[test]
fn ring_buffer_full_every_loss_counted_and_the_agent_recovers() {
    if !privileged("ring_buffer_full_every_loss_counted_and_the_agent_recovers") {
        return;
    }
    assert!(have("tmux"), "tmux not found: run `cargo xtask setup --tests`");
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = TempDir::new("ov-ring");
    let a = NetNs::new("smov-ra");
    let b = NetNs::new("smov-rb");
    veth(&a, "smovr0", &b, "smovr1");
    let events = tmp.0.join("events.jsonl");
    // A one-page ring (the smallest the kernel takes) holds about 40 of these
    // records; one frame brings 30.
    let (mut agent, log) =
        start_agent(&a, &["smovr0"], &events, &["--ring-bytes", "4096", "--poll-interval-ms", "200"]);

    let t0 = Instant::now();
    b.run(|| {
        for batch in (0..BLAST_FRAMES).collect::<Vec<_>>().chunks(1000) {
            let frames: Vec<Vec<u8>> = batch.iter().map(|&i| blast_frame(i)).collect();
            send_frames("smovr1", &frames);
        }
    });
    let blast_time = t0.elapsed();
    let attempted = (BLAST_FRAMES * CHUNKS_PER_FRAME) as u64;

    // The kernel's own account, read from its map.
    let k = kernel_counters(&a, "smovr0");
    let (written, lost) = (k[0][kc::RINGBUF_RECORDS as usize], k[0][kc::RINGBUF_LOST as usize]);
    assert_eq!(k[0][kc::SCTP_PACKETS as usize], BLAST_FRAMES as u64, "every blast frame reached XDP");
    assert_eq!((k[1][kc::RINGBUF_RECORDS as usize], k[1][kc::RINGBUF_LOST as usize]), (0, 0), "no egress records");
    assert_eq!(written + lost, attempted, "the kernel tried one record per control chunk");
    assert!(lost > 0, "the ring never filled: {written} written, 0 lost");
    assert!(written > 0, "nothing written");

    // The agent receives exactly what was written, and reports the rest lost.
    let status = wait_until("the agent to drain the ring and count the loss", Duration::from_secs(60), || {
        let s = api(&a, "/api/status");
        (s["records"] == written && s["records_lost"] == lost).then_some(s)
    });
    let scrape = http_get(&a, "/metrics").expect("GET /metrics");
    assert_eq!(metric(&scrape, "sctp_monitor_ring_buffer_records_lost_total"), Some(lost as f64), "{scrape}");
    assert_eq!(metric(&scrape, "sctp_monitor_ring_buffer_records_total"), Some(written as f64));
    let received = status["records"].as_u64().unwrap();
    assert_eq!(received + lost, attempted, "received + lost = records the kernel tried to emit");
    assert!(
        log.lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("ring-buffer records lost") && l.contains(&format!("total {lost}"))),
        "the agent's log names the loss"
    );
    eprintln!(
        "ring full: {BLAST_FRAMES} frames x {CHUNKS_PER_FRAME} chunks = {attempted} records attempted in {blast_time:?}: \
         {received} received, {lost} lost ({:.1}%)",
        lost as f64 * 100.0 / attempted as f64
    );

    // The live view's footer shows the same numbers.
    let session = Tmux(format!("smov-top-{}", std::process::id()));
    let script =
        format!("ip netns exec smov-ra {} top --interval-ms 300; sleep 30", env!("CARGO_BIN_EXE_sctp-monitor"));
    let st = Command::new("tmux")
        .args(["-u", "new-session", "-d", "-s", &session.0, "-x", "80", "-y", "24", &script])
        .status()
        .expect("tmux");
    assert!(st.success(), "tmux new-session");
    let want = format!("records {received} lost {lost} ");
    let pane = wait_until("the top footer with the loss", Duration::from_secs(15), || {
        let out = Command::new("tmux").args(["capture-pane", "-p", "-t", &session.0]).output().ok()?;
        let pane = String::from_utf8_lossy(&out.stdout).into_owned();
        pane.contains(&want).then_some(pane)
    });
    eprintln!("top footer: {}", pane.lines().find(|l| l.contains(&want)).unwrap_or("").trim());
    drop(session);

    // Load gone: a new association is tracked without any intervention, and
    // nothing more is lost.
    b.run(|| send_frames("smovr1", &handshake_frames(0x1234_5678, 0x8765_4321)));
    let doc = wait_until("the new association in /api/associations", Duration::from_secs(10), || {
        let doc = api(&a, "/api/associations");
        let found = doc["associations"].as_array()?.iter().find(|x| x["initiator"]["vtag"] == 0x1234_5678u32)?.clone();
        Some(found)
    });
    assert_eq!(doc["responder"]["vtag"], 0x8765_4321u32, "{doc}");
    assert!(
        json_lines(&events).iter().any(|e| e["event"] == "association_up" && e["initiator"]["vtag"] == 0x1234_5678u32),
        "association_up in the events"
    );
    let k = kernel_counters(&a, "smovr0");
    assert_eq!(k[0][kc::RINGBUF_LOST as usize], lost, "nothing lost after the load");
    assert_eq!(k[0][kc::RINGBUF_RECORDS as usize], written + 4, "the handshake's four records written");
    wait_until("the handshake records received", Duration::from_secs(10), || {
        (api(&a, "/api/status")["records"] == written + 4).then_some(())
    });
    assert!(agent.stop().success(), "agent exit status");
}

// ------------------------------------------------------------- INIT flood

const NS_FA: &str = "smov-fa";
const NS_FB: &str = "smov-fb";
/// INITs in the flood.
const FLOOD_INITS: usize = 1_000_000;
/// Every 16th frame besides them: one INIT-ACK answering the INIT before it
/// (a half-open association), one DATA on a random path.
const FLOOD_EVERY: usize = 14;
const MAX_ASSOCS: usize = 100_000;
const LRU_ENTRIES: u32 = 4096;

/// Flood frame `i`, deterministic: of each 16, 14 INITs with random tags,
/// ports and addresses (two address parameters each), an INIT-ACK answering
/// the 14th, and a DATA with a random tag on a random path.
fn flood_frame(i: usize) -> Vec<u8> {
    let group = i / 16;
    let k = i % 16;
    let rnd = |n: usize| {
        let mut r = XorShift::new((n as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        [r.next_u64(), r.next_u64(), r.next_u64()]
    };
    let ip4 = |x: u64| Ipv4Addr::from((x as u32) | 0x0100_0000);
    match k {
        0..14 => {
            let [x, y, z] = rnd(group * 14 + k);
            let (src, dst) = (ip4(x), ip4(y));
            let extra = IpAddr::V4(ip4(x >> 32));
            FrameBuilder::ipv4(src, dst)
                .sctp(z as u16 | 1024, (z >> 16) as u16 | 1024, 0)
                .chunk(craft::init(&InitSpec::new((z >> 32) as u32 | 1, 1).addrs(&[src.into(), extra])))
                .build()
        }
        14 => {
            let [x, y, z] = rnd(group * 14 + 13);
            let (src, dst) = (ip4(x), ip4(y));
            let tag = (z >> 32) as u32 | 1;
            FrameBuilder::ipv4(dst, src)
                .sctp((z >> 16) as u16 | 1024, z as u16 | 1024, tag)
                .chunk(craft::init_ack(&InitSpec::new(!tag | 1, 1).cookie(64, craft::CookiePos::Before)))
                .build()
        }
        _ => {
            let [x, y, z] = rnd(usize::MAX / 2 + group);
            FrameBuilder::ipv4(ip4(x), ip4(y))
                .sctp(z as u16, (z >> 16) as u16, (z >> 32) as u32 | 1)
                .chunk(craft::data(x as u32, 0, 0, 0, &[0; 32]))
                .build()
        }
    }
}

/// Two paths for usrsctp (`ovA1`/`ovB1` 10.212.1.0/24, `ovA2`/`ovB2`
/// 10.212.2.0/24) and a third veth (`ovA3`/`ovB3`) for the flood. usrsctp's
/// raw IPv4 output does not pick the source address by route: a stateless
/// nftables rule per side rewrites it (as tests/peer/lab.sh does).
fn flood_lab() -> (NetNs, NetNs) {
    let (a, b) = support::two_path_lab(NS_FA, NS_FB, "ov", 212);
    veth(&a, "ovA3", &b, "ovB3");
    (a, b)
}

fn sorted_addrs(v: &serde_json::Value) -> Vec<String> {
    let mut a: Vec<String> =
        v["addrs"].as_array().into_iter().flatten().filter_map(|x| x.as_str().map(str::to_string)).collect();
    a.sort();
    a
}

#[test]
fn a_million_inits_beside_a_real_association() {
    if !privileged("a_million_inits_beside_a_real_association") {
        return;
    }
    for tool in ["gcc", "nft"] {
        assert!(have(tool), "{tool} not found: run `cargo xtask setup --tests`");
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = TempDir::new("ov-flood");
    let (a, b) = flood_lab();
    let events = tmp.0.join("events.jsonl");
    let cap = MAX_ASSOCS.to_string();
    let lru = LRU_ENTRIES.to_string();
    let (mut agent, _log) = start_agent(
        &a,
        &["ovA1", "ovA2", "ovA3"],
        &events,
        &[
            "--max-assocs",
            &cap,
            "--path-entries",
            &lru,
            "--assoc-entries",
            &lru,
            "--poll-interval-ms",
            "200",
            "--tick-interval-ms",
            "100",
            "--hb-down-after",
            "2",
            "--hb-timeout-ms",
            "600",
        ],
    );
    let (rss_idle, _) = rss_kib(agent.pid());

    // The real association: server in ns b, client in ns a, DATA at 50/s.
    let opts =
        ["--port", "5000", "--hb-interval", "200", "--rto-min", "100", "--rto-max", "400", "--path-max-retrans", "2"];
    let pair = support::usrsctp_pair(&a, &b, 212, &opts, &[], &["--rate", "50"], &tmp.0);
    let up = &pair.up;
    let primary = up["primary"].as_str().expect("primary in the peer's up line").to_string();
    let real = wait_until("association_up in the agent's events", Duration::from_secs(10), || {
        json_lines(&events).into_iter().find(|v| v["event"] == "association_up" && v["initiator"]["port"] == 5000)
    });
    let real_id = real["assoc"].as_u64().expect("assoc id");
    std::thread::sleep(Duration::from_secs(1)); // DATA flowing on the primary
    let (rss_before, _) = rss_kib(agent.pid());

    // The flood, from ns b into ovA3, sampling the agent's memory meanwhile.
    let groups = FLOOD_INITS.div_ceil(FLOOD_EVERY);
    let frames = groups * 16;
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (done, pid) = (done.clone(), agent.pid());
        std::thread::spawn(move || {
            let mut max = 0;
            while !done.load(Ordering::Relaxed) {
                max = max.max(rss_kib(pid).0);
                std::thread::sleep(Duration::from_millis(250));
            }
            max
        })
    };
    let t0 = Instant::now();
    b.run(move || {
        for batch in (0..frames).collect::<Vec<_>>().chunks(4096) {
            let fs: Vec<Vec<u8>> = batch.iter().map(|&i| flood_frame(i)).collect();
            send_frames("ovB3", &fs);
        }
    });
    let flood_time = t0.elapsed();
    let k = kernel_counters(&a, "ovA3");
    // The agent has caught up when every written record has been received.
    wait_until("the agent to drain the flood", Duration::from_secs(120), || {
        (api(&a, "/api/status")["records"].as_u64()? >= k[0][kc::RINGBUF_RECORDS as usize]).then_some(())
    });
    done.store(true, Ordering::Relaxed);
    let rss_max_sampled = sampler.join().unwrap();
    let (rss_after, rss_peak) = rss_kib(agent.pid());
    let sctp_packets = k[0][kc::SCTP_PACKETS as usize];
    eprintln!(
        "flood: {frames} frames ({} INIT) in {flood_time:?}; kernel: {sctp_packets} SCTP packets, {} records written, {} lost",
        groups * FLOOD_EVERY,
        k[0][kc::RINGBUF_RECORDS as usize],
        k[0][kc::RINGBUF_LOST as usize],
    );
    assert!(sctp_packets >= frames as u64, "every flood frame reached XDP on ovA3: {sctp_packets}");

    // Tracker: at its cap, the flood evicted (and counted).
    let status = api(&a, "/api/status");
    let scrape = http_get(&a, "/metrics").expect("GET /metrics");
    let evictions = metric(&scrape, "sctp_monitor_tracker_evictions_total").expect("evictions metric");
    let tracked = status["associations"].as_u64().unwrap();
    let created = metric(&scrape, "sctp_monitor_tracker_associations_created_total").expect("created metric");
    eprintln!("tracker: {tracked} associations (cap {MAX_ASSOCS}), {created} created, {evictions} evicted");
    assert!(tracked as usize <= MAX_ASSOCS, "tracker above its cap: {tracked}");
    assert!(evictions > 0.0, "no eviction counted");
    assert!(created - evictions >= tracked as f64, "created {created} - evicted {evictions} accounts for {tracked}");

    // Kernel maps: within their configured size.
    for name in [maps::PATHS, maps::ASSOC_DIRS] {
        let (entries, size, memlock) = lru_map(&a, "ovA3", name);
        eprintln!("kernel map {name}: {entries} entries of {size}, {memlock} bytes locked");
        assert_eq!(size, LRU_ENTRIES, "{name} has the configured size");
        assert!(entries <= size as usize, "{name}: {entries} entries > {size}");
        assert!(entries > 0, "{name} is empty: the flood's DATA did not reach it");
    }
    let ring = kernel_map(&a, "ovA3", maps::EVENTS);
    eprintln!("kernel map EVENTS: {} bytes locked", memlock_bytes(&ring));

    // Memory: under the bound of RELIABILITY.md ("Memory bound"): the idle
    // agent + 1.25 KiB per association of the cap (tracker and heartbeat
    // matching) + the ring mapped twice + 1 KiB per event-log line + 256 B
    // per kernel path entry (the agent's copy) + 16 MiB.
    let ring_bytes = 4u64 << 20;
    let bound = rss_idle
        + (MAX_ASSOCS as u64 * 1280 + 2 * ring_bytes + 10_000 * 1024 + LRU_ENTRIES as u64 * 256) / 1024
        + 16 * 1024;
    eprintln!(
        "agent RSS: idle {rss_idle} KiB, before the flood {rss_before} KiB, max sampled {rss_max_sampled} KiB, \
         after {rss_after} KiB, peak (VmHWM) {rss_peak} KiB; bound {bound} KiB"
    );
    assert!(rss_peak <= bound, "agent peak RSS {rss_peak} KiB above the bound {bound} KiB");

    // The real association: still tracked with both address sets.
    let doc = api(&a, &format!("/api/associations?id={real_id}"));
    let assoc = doc["associations"]
        .as_array()
        .and_then(|v| v.first())
        .unwrap_or_else(|| panic!("the real association {real_id} is gone after the flood: {doc}"))
        .clone();
    assert_eq!(sorted_addrs(&assoc["initiator"]), vec!["10.212.1.1", "10.212.2.1"], "{assoc}");
    assert_eq!(sorted_addrs(&assoc["responder"]), vec!["10.212.1.2", "10.212.2.2"], "{assoc}");
    assert!(
        !json_lines(&events).iter().any(|e| e["event"] == "association_down" && e["assoc"] == real_id),
        "the real association was ended"
    );

    // And its failover is reported when its primary path is cut.
    let cut_path = if primary.starts_with("10.212.1.") { 1 } else { 2 };
    nft(
        &b,
        &format!(
            "table inet smov_cut {{ chain in {{ type filter hook prerouting priority -300; policy accept; \
             iifname \"ovB{cut_path}\" drop\n}}\n chain out {{ type filter hook postrouting priority -300; policy accept; \
             oifname \"ovB{cut_path}\" drop\n}}\n}}\n"
        ),
    );
    let fo = wait_until("the real association's failover after the cut", Duration::from_secs(20), || {
        json_lines(&events)
            .into_iter()
            .find(|v| v["event"] == "failover" && v["assoc"] == real_id && v["from"]["dst"] == primary.as_str())
    });
    let other = if cut_path == 1 { "10.212.2.2" } else { "10.212.1.2" };
    assert_eq!(fo["to"]["dst"], other, "failover to the other path: {fo}");
    assert!(agent.stop().success(), "agent exit status");
}
