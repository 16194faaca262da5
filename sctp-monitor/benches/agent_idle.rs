//! Idle cost: CPU of the whole agent process (`sctp-monitor run`, its
//! default loop: ring drained through AsyncFd, per-path maps and kernel
//! counters read every second, tracker tick every 500 ms, the HTTP listener)
//! while 100,000 established multihomed associations heartbeat as SCTP
//! does by default: each endpoint sends a HEARTBEAT to each of its peer's
//! two addresses every 30 s, answered after 1 ms. That is 4 HEARTBEATs and
//! 4 HEARTBEAT-ACKs per association per 30 s, 26,667 records/s for 100,000
//! associations, spread evenly in time (not in bursts, so the agent is woken
//! as a real network would wake it). A Prometheus scrape of `/metrics` every
//! 15 s is part of the load.
//!
//! Setup: two namespaces joined by a veth pair; the agent (the release
//! binary, pinned to CPU 1) attached to the veth in ns a; frames crafted and
//! sent from ns b with AF_PACKET by a thread pinned to CPU 0, where the XDP
//! program runs too (network CPU, not the agent's). The agent's CPU is
//! user + system time of its process from `/proc/PID/stat` over the window.
//!
//! Two configurations: heartbeats only (the kernel's per-path DATA map stays
//! empty), and the same after one DATA + SACK exchange per association, so
//! the per-path map the agent reads every second is full (65,536 entries).
//!
//! `sudo cargo bench -p sctp-monitor --bench agent_idle`.
//! Env: `SCTP_BENCH_IDLE_ASSOCS` (default 100000), `SCTP_BENCH_IDLE_SECS`
//! (measurement window, default 60), `SCTP_BENCH_HB_INTERVAL_S` (default
//! 30), `SCTP_BENCH_SCRAPE_S` (default 15, 0: no scrape),
//! `SCTP_BENCH_IDLE_CONFIGS` (default `hb,data`).

mod agent_common;
#[path = "../tests/support/mod.rs"]
mod support;

use std::{
    collections::VecDeque,
    fs::File,
    io::{Read, Write},
    net::TcpStream,
    os::fd::AsRawFd,
    process::{Child, Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use agent_common::*;
use sctp_monitor::craft::{self, FrameBuilder};
use sctp_monitor_common::sctp::param;
use support::{NetNs, veth};

const NS_A: &str = "smpf-idle-a";
const NS_B: &str = "smpf-idle-b";
const IF_A: &str = "pfidle0";
const IF_B: &str = "pfidle1";
const PORT: u16 = 19108;

fn enter(ns: &str) {
    let f = File::open(format!("/run/netns/{ns}")).expect("netns");
    // SAFETY: valid fd; moves only this thread.
    assert_eq!(unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) }, 0, "setns");
}

/// HTTP GET on the agent (from inside its namespace): the body.
fn get(path: &str) -> Option<String> {
    let path = path.to_string();
    std::thread::spawn(move || {
        enter(NS_A);
        let mut s = TcpStream::connect(("127.0.0.1", PORT)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
        write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").ok()?;
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).ok()?;
        let text = String::from_utf8_lossy(&raw).into_owned();
        Some(text.split_once("\r\n\r\n")?.1.to_string())
    })
    .join()
    .ok()
    .flatten()
}

fn status() -> Option<serde_json::Value> {
    serde_json::from_str(&get("/api/status")?).ok()
}

/// User + system CPU time of a process, in ns.
fn proc_cpu_ns(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("agent /proc stat");
    // Fields after the command name (which may hold spaces) start at ')'.
    let rest = &s[s.rfind(')').expect("stat format") + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    let ticks: u64 = f[11].parse::<u64>().expect("utime") + f[12].parse::<u64>().expect("stime");
    // SAFETY: no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
    ticks * 1_000_000_000 / hz
}

fn rss_mib(pid: u32) -> f64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

struct Agent {
    child: Child,
}

impl Drop for Agent {
    fn drop(&mut self) {
        // SAFETY: signalling our own child; SIGTERM detaches its programs.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn hb_pair(x: &Assoc, sender: usize, p: usize, n: u64) -> [Vec<u8>; 2] {
    let mut info = [0u8; 40];
    info[..8].copy_from_slice(&n.to_be_bytes());
    let info = craft::param(param::HEARTBEAT_INFO, &info);
    let (a, b) = (x.a[p], x.b[p]);
    let (from_a, from_b) =
        (FrameBuilder::ipv4(a, b).sctp(x.pa, x.pb, x.tb), FrameBuilder::ipv4(b, a).sctp(x.pb, x.pa, x.ta));
    if sender == 0 {
        [from_a.chunk(craft::heartbeat(&info)).build(), from_b.chunk(craft::heartbeat_ack(&info)).build()]
    } else {
        [from_b.chunk(craft::heartbeat(&info)).build(), from_a.chunk(craft::heartbeat_ack(&info)).build()]
    }
}

struct Row {
    config: &'static str,
    tracked: u64,
    records: u64,
    lost: u64,
    rate: f64,
    cpu_pct: f64,
    rss: f64,
    scrapes: u64,
    scrape_ms: f64,
    setup_s: f64,
    window_s: f64,
}

fn one(config: &'static str, n: u32, window: Duration, period: f64, scrape_every: u64) -> anyhow::Result<Row> {
    let a = NetNs::new(NS_A);
    let b = NetNs::new(NS_B);
    veth(&a, IF_A, &b, IF_B);
    let stderr = std::fs::File::create(std::env::temp_dir().join("sctp-monitor-agent_idle.log"))?;
    let child = Command::new("taskset")
        .args(["-c", "1", "ip", "netns", "exec", NS_A, env!("CARGO_BIN_EXE_sctp-monitor")])
        .args(["run", "-i", IF_A, "--events", "/dev/null", "--metrics", &format!("127.0.0.1:{PORT}")])
        .args(["--max-assocs", "262144"])
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()?;
    let agent = Agent { child };
    let pid = agent.child.id();
    let t = Instant::now();
    while status().is_none() {
        anyhow::ensure!(t.elapsed() < Duration::from_secs(30), "the agent did not answer on /api/status");
        std::thread::sleep(Duration::from_millis(100));
    }
    let assocs: Arc<Vec<Assoc>> = Arc::new((0..n).map(Assoc::new).collect());

    // Setup, paced so the agent's 4 MiB ring does not overflow.
    let t_setup = Instant::now();
    let data = config == "data";
    {
        let assocs = assocs.clone();
        b.run(move || {
            pin(0);
            let tx = support::RawSender::new(IF_B);
            let t0 = Instant::now();
            let mut sent = 0u64;
            for x in assocs.iter() {
                let mut frames = x.handshake();
                if data {
                    frames.push(x.data(0, 1));
                    frames.push(x.sack(0, 1));
                }
                for f in &frames {
                    tx.send(f);
                }
                sent += frames.len() as u64;
                let due = Duration::from_secs_f64(sent as f64 / 50_000.0);
                if let Some(w) = due.checked_sub(t0.elapsed()) {
                    std::thread::sleep(w);
                }
            }
        });
    }
    let t = Instant::now();
    loop {
        let s = status().ok_or_else(|| anyhow::anyhow!("/api/status"))?;
        if s["associations"].as_u64() == Some(n as u64) {
            break;
        }
        anyhow::ensure!(
            t.elapsed() < Duration::from_secs(60),
            "the agent tracks {} associations, not {n} ({} ring records lost)",
            s["associations"],
            s["records_lost"]
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let setup_s = t_setup.elapsed().as_secs_f64();

    // Steady state: 4 heartbeats per association per period, spread evenly.
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let sender = {
        let (stop, sent, assocs) = (stop.clone(), sent.clone(), assocs.clone());
        std::thread::spawn(move || {
            enter(NS_B);
            pin(0);
            let tx = support::RawSender::new(IF_B);
            let rate = 4.0 * assocs.len() as f64 / period;
            let rtt = 0.001;
            let t0 = Instant::now();
            let mut j = 0u64;
            let mut acks: VecDeque<(f64, Vec<u8>)> = VecDeque::new();
            while !stop.load(Ordering::Relaxed) {
                let now = t0.elapsed().as_secs_f64();
                while acks.front().is_some_and(|a| a.0 <= now) {
                    let (_, f) = acks.pop_front().expect("front");
                    tx.send(&f);
                }
                while j as f64 / rate <= now {
                    let n = assocs.len() as u64;
                    let x = &assocs[(j % n) as usize];
                    let kind = ((j / n) % 4) as usize;
                    let [hb, ack] = hb_pair(x, kind / 2, kind % 2, j);
                    tx.send(&hb);
                    acks.push_back((j as f64 / rate + rtt, ack));
                    j += 1;
                    sent.fetch_add(2, Ordering::Relaxed);
                }
                let next = (j as f64 / rate).min(acks.front().map_or(f64::MAX, |a| a.0));
                let wait = next - t0.elapsed().as_secs_f64();
                if wait > 300e-6 {
                    std::thread::sleep(Duration::from_secs_f64(wait - 150e-6));
                } else {
                    std::hint::spin_loop();
                }
            }
        })
    };
    // Warm-up: one heartbeat period and a bit, so that every path has been
    // confirmed (its path_up event written) before the window opens.
    std::thread::sleep(Duration::from_secs_f64(env_u64("SCTP_BENCH_WARMUP_S", period as u64 + 3) as f64));
    let s0 = status().ok_or_else(|| anyhow::anyhow!("/api/status"))?;
    let (cpu0, t0, sent0) = (proc_cpu_ns(pid), Instant::now(), sent.load(Ordering::Relaxed));
    let mut scrapes = 0u64;
    let mut scrape_ms = 0.0;
    let mut next_scrape = Duration::from_secs(scrape_every.max(1) / 2);
    while t0.elapsed() < window {
        if scrape_every > 0 && t0.elapsed() >= next_scrape {
            let ts = Instant::now();
            let body = get("/metrics").ok_or_else(|| anyhow::anyhow!("/metrics"))?;
            anyhow::ensure!(body.contains("sctp_monitor_associations"), "not a metrics page");
            scrape_ms += ts.elapsed().as_secs_f64() * 1e3;
            scrapes += 1;
            next_scrape += Duration::from_secs(scrape_every);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let (cpu1, window_s, sent1) = (proc_cpu_ns(pid), t0.elapsed().as_secs_f64(), sent.load(Ordering::Relaxed));
    let s1 = status().ok_or_else(|| anyhow::anyhow!("/api/status"))?;
    stop.store(true, Ordering::Relaxed);
    let _ = sender.join();
    let rss = rss_mib(pid);
    drop(agent);
    drop((a, b));
    let u = |v: &serde_json::Value, k: &str| v[k].as_u64().unwrap_or(0);
    Ok(Row {
        config,
        tracked: u(&s1, "associations"),
        records: u(&s1, "records") - u(&s0, "records"),
        lost: u(&s1, "records_lost"),
        rate: (sent1 - sent0) as f64 / window_s,
        cpu_pct: (cpu1 - cpu0) as f64 / (window_s * 1e9) * 100.0,
        rss,
        scrapes,
        scrape_ms: if scrapes > 0 { scrape_ms / scrapes as f64 } else { 0.0 },
        setup_s,
        window_s,
    })
}

fn main() -> anyhow::Result<()> {
    if std::env::args().any(|a| a == "--list") {
        return Ok(());
    }
    root_or_exit("agent_idle");
    let n = env_u64("SCTP_BENCH_IDLE_ASSOCS", 100_000) as u32;
    let window = Duration::from_secs(env_u64("SCTP_BENCH_IDLE_SECS", 60));
    let period = env_u64("SCTP_BENCH_HB_INTERVAL_S", 30) as f64;
    let scrape = env_u64("SCTP_BENCH_SCRAPE_S", 15);
    let configs = std::env::var("SCTP_BENCH_IDLE_CONFIGS").unwrap_or_else(|_| "hb,data".into());
    let mut rows = Vec::new();
    for c in configs.split(',') {
        let c: &'static str = match c.trim() {
            "hb" => "hb",
            "data" => "data",
            other => anyhow::bail!("SCTP_BENCH_IDLE_CONFIGS: unknown {other:?} (hb, data)"),
        };
        rows.push(one(c, n, window, period, scrape)?);
    }
    println!("### Idle cost: {n} associations, each endpoint heartbeating each peer address every {period} s\n");
    println!(
        "The whole `sctp-monitor run` process (default settings), CPU from /proc over the window; /metrics scraped every {scrape} s.\n"
    );
    println!(
        "| configuration | associations tracked | records/s sent | records in window | ring lost | agent CPU | RSS | scrape |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for r in &rows {
        let name = if r.config == "hb" { "heartbeats only" } else { "heartbeats, per-path DATA map full" };
        println!(
            "| {name} | {} | {:.0} | {} | {} | {:.2}% of one core | {:.0} MiB | {} x {:.0} ms |",
            r.tracked, r.rate, r.records, r.lost, r.cpu_pct, r.rss, r.scrapes, r.scrape_ms
        );
    }
    for r in &rows {
        println!("\n{}: setup {:.1} s, window {:.1} s.", r.config, r.setup_s, r.window_s);
    }
    println!(
        "\nTarget: at most 1% of one core. Reproduce: `sudo cargo bench -p sctp-monitor --bench agent_idle` (or `cargo xtask bench`).\n"
    );
    Ok(())
}
