//! Soak: the real agent (release build) on a veth for N minutes under a high
//! record rate, its resident memory sampled every few seconds. Prints a
//! table and a verdict: after warm-up, resident memory must stay within a
//! tolerance of its level at the end of warm-up.
//!
//! `cargo xtask soak [--minutes 10]` (builds, then runs
//! `target/release/examples/soak --agent target/release/sctp-monitor ...`).
//!
//! Traffic, from a second namespace into the monitored veth, paced to
//! `--rate` records per second, in rounds:
//! - 2,000 long-lived associations (handshake once) exchange a HEARTBEAT and
//!   its ACK every round;
//! - 500 new associations per round live a whole life: handshake, two
//!   heartbeats answered, DATA and SACK, SHUTDOWN / SHUTDOWN-ACK /
//!   SHUTDOWN-COMPLETE (one in four ends with an ABORT instead);
//! - INITs with random tags and addresses that are never answered, so the
//!   tracker runs at its cap (`--max-assocs`, default 262,144) and evicts;
//! - DATA on random paths, so the kernel LRU maps run full and evict.

#[path = "../tests/support/mod.rs"]
mod support;

use std::{
    io::{Read, Write},
    net::{IpAddr, Ipv4Addr, TcpStream},
    process::{Child, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail, ensure};
use aya::maps::{Map, MapData, MapInfo, PerCpuArray};
use sctp_monitor::craft::{self, CookiePos, FrameBuilder, InitSpec, XorShift};
use sctp_monitor_common::{counters as kc, maps};
use support::{NetNs, send_frames, veth};

const NS_A: &str = "smov-sa";
const NS_B: &str = "smov-sb";
const IF_A: &str = "smovs0";
const IF_B: &str = "smovs1";
const PORT: u16 = 9108;
const LONG_LIVED: u32 = 2_000;
const PER_ROUND_LIVES: u32 = 500;
const PER_ROUND_INITS: u32 = 2_000;
const PER_ROUND_DATA: u32 = 500;

struct Opts {
    agent: String,
    minutes: f64,
    rate: u64,
    sample_secs: u64,
    warmup_secs: u64,
    tolerance_pct: f64,
    /// Extra arguments for `sctp-monitor run`.
    agent_args: Vec<String>,
}

fn parse() -> anyhow::Result<Opts> {
    let mut o = Opts {
        agent: "target/release/sctp-monitor".into(),
        minutes: 10.0,
        rate: 50_000,
        sample_secs: 5,
        warmup_secs: 0,
        tolerance_pct: 10.0,
        agent_args: Vec::new(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut v = || args.next().with_context(|| format!("{a} needs a value"));
        match a.as_str() {
            "--agent" => o.agent = v()?,
            "--minutes" => o.minutes = v()?.parse()?,
            "--rate" => o.rate = v()?.parse()?,
            "--sample-secs" => o.sample_secs = v()?.parse()?,
            "--warmup-secs" => o.warmup_secs = v()?.parse()?,
            "--tolerance-pct" => o.tolerance_pct = v()?.parse()?,
            "--agent-arg" => o.agent_args.push(v()?),
            _ => bail!(
                "unknown argument {a}; usage: soak [--agent PATH] [--minutes 10] [--rate RECORDS_PER_S] \
                 [--sample-secs 5] [--warmup-secs N] [--tolerance-pct 10] [--agent-arg ARG]..."
            ),
        }
    }
    if o.warmup_secs == 0 {
        // A fifth of the run, at least a minute: the tracker and the LRU
        // maps fill to their caps in the first seconds at the default rate.
        o.warmup_secs = ((o.minutes * 60.0 / 5.0) as u64).max(60.min((o.minutes * 30.0) as u64));
    }
    Ok(o)
}

fn ip4(x: u32) -> Ipv4Addr {
    Ipv4Addr::from(x | 0x0100_0000)
}

/// A handshake between `a` and `b` with tags `ta` (initiator's) and `tb`.
fn handshake(out: &mut Vec<Vec<u8>>, a: Ipv4Addr, b: Ipv4Addr, pa: u16, pb: u16, ta: u32, tb: u32) {
    out.push(
        FrameBuilder::ipv4(a, b).sctp(pa, pb, 0).chunk(craft::init(&InitSpec::new(ta, 1).addrs(&[a.into()]))).build(),
    );
    out.push(
        FrameBuilder::ipv4(b, a)
            .sctp(pb, pa, ta)
            .chunk(craft::init_ack(&InitSpec::new(tb, 1).addrs(&[b.into()]).cookie(64, CookiePos::Before)))
            .build(),
    );
    out.push(FrameBuilder::ipv4(a, b).sctp(pa, pb, tb).chunk(craft::cookie_echo(&[5; 64])).build());
    out.push(FrameBuilder::ipv4(b, a).sctp(pb, pa, ta).chunk(craft::cookie_ack()).build());
}

#[allow(clippy::too_many_arguments)]
fn heartbeat_pair(out: &mut Vec<Vec<u8>>, a: Ipv4Addr, b: Ipv4Addr, pa: u16, pb: u16, ta: u32, tb: u32, n: u64) {
    let info = n.to_be_bytes();
    out.push(FrameBuilder::ipv4(a, b).sctp(pa, pb, tb).chunk(craft::heartbeat(&info)).build());
    out.push(FrameBuilder::ipv4(b, a).sctp(pb, pa, ta).chunk(craft::heartbeat_ack(&info)).build());
}

/// The frames of round `r`, and the ring records they ask for.
fn round(r: u64, rng: &mut XorShift) -> (Vec<Vec<u8>>, u64) {
    let mut out = Vec::with_capacity(20_000);
    let mut records = 0u64;
    if r == 0 {
        for j in 0..LONG_LIVED {
            handshake(
                &mut out,
                ip4(0x0a10_0000 + j),
                ip4(0x0a20_0000 + j),
                5000,
                3868,
                0x1000_0000 + j,
                0x2000_0000 + j,
            );
            records += 4;
        }
    }
    for j in 0..LONG_LIVED {
        let (ta, tb) = (0x1000_0000 + j, 0x2000_0000 + j);
        heartbeat_pair(&mut out, ip4(0x0a10_0000 + j), ip4(0x0a20_0000 + j), 5000, 3868, ta, tb, r << 20 | j as u64);
        records += 2;
    }
    for j in 0..PER_ROUND_LIVES {
        let n = (r as u32).wrapping_mul(PER_ROUND_LIVES).wrapping_add(j);
        let (a, b) = (ip4(0x0b00_0000 ^ n), ip4(0x0c00_0000 ^ n));
        let (ta, tb) = (rng.next_u64() as u32 | 1, rng.next_u64() as u32 | 1);
        let (pa, pb) = (2905, 2905);
        handshake(&mut out, a, b, pa, pb, ta, tb);
        heartbeat_pair(&mut out, a, b, pa, pb, ta, tb, (r << 20 | j as u64) << 1);
        heartbeat_pair(&mut out, b, a, pb, pa, tb, ta, (r << 20 | j as u64) << 1 | 1);
        out.push(FrameBuilder::ipv4(a, b).sctp(pa, pb, tb).chunk(craft::data(1, 0, 0, 0, &[0; 64])).build());
        out.push(FrameBuilder::ipv4(b, a).sctp(pb, pa, ta).chunk(craft::sack(1, 100_000, &[], &[])).build());
        records += 4 + 4 + 1;
        if j % 4 == 0 {
            out.push(FrameBuilder::ipv4(a, b).sctp(pa, pb, tb).chunk(craft::abort(false, &[])).build());
            records += 1;
        } else {
            out.push(FrameBuilder::ipv4(a, b).sctp(pa, pb, tb).chunk(craft::shutdown(1)).build());
            out.push(FrameBuilder::ipv4(b, a).sctp(pb, pa, ta).chunk(craft::shutdown_ack()).build());
            out.push(FrameBuilder::ipv4(a, b).sctp(pa, pb, tb).chunk(craft::shutdown_complete(false)).build());
            records += 3;
        }
    }
    for _ in 0..PER_ROUND_INITS {
        let (x, y, z) = (rng.next_u64(), rng.next_u64(), rng.next_u64());
        out.push(
            FrameBuilder::ipv4(ip4(x as u32), ip4(y as u32))
                .sctp(z as u16 | 1024, (z >> 16) as u16 | 1024, 0)
                .chunk(craft::init(&InitSpec::new((z >> 32) as u32 | 1, 1).addrs(&[IpAddr::V4(ip4((x >> 32) as u32))])))
                .build(),
        );
        records += 1;
    }
    for _ in 0..PER_ROUND_DATA {
        let (x, y, z) = (rng.next_u64(), rng.next_u64(), rng.next_u64());
        out.push(
            FrameBuilder::ipv4(ip4(x as u32), ip4(y as u32))
                .sctp(z as u16, (z >> 16) as u16, (z >> 32) as u32 | 1)
                .chunk(craft::data(x as u32, 0, 0, 0, &[0; 32]))
                .build(),
        );
        records += 1;
    }
    (out, records)
}

/// GET /api/status from the agent in ns a.
fn status(ns: &NetNs) -> Option<serde_json::Value> {
    ns.run(|| {
        let mut s = TcpStream::connect(("127.0.0.1", PORT)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
        write!(s, "GET /api/status HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").ok()?;
        let mut raw = String::new();
        s.read_to_string(&mut raw).ok()?;
        let body = raw.split_once("\r\n\r\n")?.1;
        let body = body.find('{').map(|i| &body[i..])?;
        let body = &body[..=body.rfind('}')?];
        serde_json::from_str(body).ok()
    })
}

fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).context("the agent is gone")?;
    s.lines().find_map(|l| l.strip_prefix("VmRSS:")?.split_whitespace().next()?.parse().ok()).context("VmRSS missing")
}

/// A map of the XDP program on `IF_A`, by name.
fn kernel_map(ns: &NetNs, name: &str) -> anyhow::Result<MapData> {
    let out = ns.cmd("ip").args(["-d", "link", "show", "dev", IF_A]).output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let prog_id: u32 = text
        .split("prog/xdp id ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .context("no XDP program on the monitored veth")?;
    let prog = aya::programs::loaded_programs()
        .filter_map(Result::ok)
        .find(|p| p.id() == prog_id)
        .context("XDP program not loaded")?;
    for id in prog.map_ids()?.unwrap_or_default() {
        if MapInfo::from_id(id)?.name_as_str() == Some(name) {
            return Ok(MapData::from_id(id)?);
        }
    }
    bail!("no map {name}")
}

/// Ring records written and lost (ingress), from the kernel's counters.
fn ring_counts(ns: &NetNs) -> anyhow::Result<(u64, u64)> {
    let m: PerCpuArray<_, u64> = PerCpuArray::try_from(Map::PerCpuArray(kernel_map(ns, maps::COUNTERS)?))?;
    let get = |i: u32| -> anyhow::Result<u64> { Ok(m.get(&i, 0)?.iter().sum()) };
    Ok((
        get(kc::RINGBUF_RECORDS)? + get(kc::COUNT + kc::RINGBUF_RECORDS)?,
        get(kc::RINGBUF_LOST)? + get(kc::COUNT + kc::RINGBUF_LOST)?,
    ))
}

fn memlock(m: &MapData) -> u64 {
    use std::os::fd::{AsFd, AsRawFd};
    std::fs::read_to_string(format!("/proc/self/fdinfo/{}", m.fd().as_fd().as_raw_fd()))
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("memlock:")?.trim().parse().ok()))
        .unwrap_or(0)
}

/// The agent, killed on drop when the soak ends early.
struct Agent(Child);

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn main() -> anyhow::Result<()> {
    let o = parse()?;
    // SAFETY: no preconditions.
    ensure!(unsafe { libc::geteuid() } == 0, "the soak needs root (BPF, network namespaces)");
    ensure!(
        std::path::Path::new(&o.agent).exists(),
        "no agent binary at {}: build it (cargo build --release)",
        o.agent
    );
    let a = NetNs::new(NS_A);
    let b = NetNs::new(NS_B);
    veth(&a, IF_A, &b, IF_B);
    let mut agent = Agent(
        a.cmd(&std::fs::canonicalize(&o.agent)?.to_string_lossy())
            .args(["run", "-i", IF_A, "--events", "/dev/null", "--metrics", &format!("127.0.0.1:{PORT}")])
            .args(&o.agent_args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting the agent")?,
    );
    let pid = agent.0.id();
    let stderr = agent.0.stderr.take().unwrap();
    let attached = Arc::new(AtomicBool::new(false));
    let lost_warnings = Arc::new(AtomicU64::new(0));
    {
        let (attached, lost_warnings) = (attached.clone(), lost_warnings.clone());
        std::thread::spawn(move || {
            use std::io::BufRead;
            for l in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
                if l.contains("attached to") {
                    attached.store(true, Ordering::Relaxed);
                }
                if l.contains("ring-buffer records lost") {
                    lost_warnings.fetch_add(1, Ordering::Relaxed);
                } else if !l.contains("ring buffer full") {
                    eprintln!("  agent: {l}");
                }
            }
        });
    }
    let t_attach = Instant::now();
    while !attached.load(Ordering::Relaxed) {
        ensure!(t_attach.elapsed() < Duration::from_secs(30), "the agent did not attach");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(500));
    let rss_start = rss_kib(pid)?;
    eprintln!(
        "soak: {} min at {} records/s, sample every {} s, warm-up {} s, tolerance {}%; agent pid {pid}, RSS at start {} KiB",
        o.minutes, o.rate, o.sample_secs, o.warmup_secs, o.tolerance_pct, rss_start
    );

    let stop = Arc::new(AtomicBool::new(false));
    let sent_records = Arc::new(AtomicU64::new(0));
    let sender = {
        let (stop, sent_records, rate) = (stop.clone(), sent_records.clone(), o.rate);
        let path = format!("/run/netns/{NS_B}");
        std::thread::spawn(move || {
            let ns = std::fs::File::open(&path).expect("netns");
            // SAFETY: valid fd; moves only this thread.
            assert_eq!(unsafe { libc::setns(std::os::fd::AsRawFd::as_raw_fd(&ns), libc::CLONE_NEWNET) }, 0);
            let mut rng = XorShift::new(0x50a4);
            let t0 = Instant::now();
            let mut r = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let (frames, records) = round(r, &mut rng);
                for batch in frames.chunks(1000) {
                    send_frames(IF_B, batch);
                }
                let total = sent_records.fetch_add(records, Ordering::Relaxed) + records;
                // Pace: sleep until this many records are due.
                let due = Duration::from_secs_f64(total as f64 / rate as f64);
                if let Some(ahead) = due.checked_sub(t0.elapsed()) {
                    std::thread::sleep(ahead);
                }
                r += 1;
            }
        })
    };

    println!("| t (s) | RSS (KiB) | records/s (agent) | lost (total) | associations |");
    println!("|---:|---:|---:|---:|---:|");
    let t0 = Instant::now();
    let end = Duration::from_secs_f64(o.minutes * 60.0);
    let mut samples: Vec<(f64, u64)> = Vec::new();
    let (mut last_t, mut last_records) = (0.0f64, 0u64);
    let mut max_rss = rss_start;
    loop {
        std::thread::sleep(Duration::from_secs(o.sample_secs));
        let t = t0.elapsed().as_secs_f64();
        let rss = rss_kib(pid)?;
        max_rss = max_rss.max(rss);
        let st = status(&a).unwrap_or_default();
        let records = st["records"].as_u64().unwrap_or(last_records);
        let rate = (records - last_records) as f64 / (t - last_t);
        println!(
            "| {t:.0} | {rss} | {rate:.0} | {} | {} |",
            st["records_lost"].as_u64().unwrap_or(0),
            st["associations"].as_u64().unwrap_or(0)
        );
        samples.push((t, rss));
        (last_t, last_records) = (t, records);
        if t0.elapsed() >= end {
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    sender.join().expect("sender thread");
    std::thread::sleep(Duration::from_secs(2));
    let elapsed = t0.elapsed().as_secs_f64();
    let st = status(&a).unwrap_or_default();
    let (written, lost) = ring_counts(&a)?;
    let maps_mem: Vec<String> = [
        maps::EVENTS,
        maps::PATH_SLOTS,
        maps::PATH_SLOTS_USED,
        maps::PATHS,
        maps::ASSOC_DIRS,
        maps::COUNTERS,
        maps::CHUNK_COUNTERS,
    ]
    .iter()
    .map(|n| {
        let m = kernel_map(&a, n).ok();
        let size = m.as_ref().and_then(|m| m.info().ok()).map_or(0, |i| i.max_entries());
        format!("{n} {} bytes ({size} entries)", m.as_ref().map_or(0, memlock))
    })
    .collect();
    let rss_end = rss_kib(pid)?;
    // SAFETY: signalling our child.
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    let exit = agent.0.wait()?;

    let sent = sent_records.load(Ordering::Relaxed);
    let after: Vec<&(f64, u64)> = samples.iter().filter(|(t, _)| *t >= o.warmup_secs as f64).collect();
    ensure!(!after.is_empty(), "no sample after the warm-up: run longer than --warmup-secs");
    let base = after[0].1;
    let max_after = after.iter().map(|s| s.1).max().unwrap_or(base);
    // Least-squares slope of RSS after warm-up, KiB per minute.
    let n = after.len() as f64;
    let (mt, mr) = (after.iter().map(|s| s.0).sum::<f64>() / n, after.iter().map(|s| s.1 as f64).sum::<f64>() / n);
    let var = after.iter().map(|s| (s.0 - mt).powi(2)).sum::<f64>();
    let slope =
        if var > 0.0 { after.iter().map(|s| (s.0 - mt) * (s.1 as f64 - mr)).sum::<f64>() / var * 60.0 } else { 0.0 };
    let limit = base as f64 * (1.0 + o.tolerance_pct / 100.0);
    println!();
    println!("duration {elapsed:.0} s; records sent {sent} ({:.0}/s)", sent as f64 / elapsed);
    println!(
        "kernel: {written} records written, {lost} lost ({:.3}%); agent received {} ({:.0}/s), tracking {} associations",
        lost as f64 * 100.0 / (written + lost).max(1) as f64,
        st["records"].as_u64().unwrap_or(0),
        st["records"].as_u64().unwrap_or(0) as f64 / elapsed,
        st["associations"].as_u64().unwrap_or(0)
    );
    println!("kernel maps (locked memory): {}", maps_mem.join(", "));
    println!(
        "RSS: start {rss_start} KiB, after warm-up {base} KiB, max after warm-up {max_after} KiB, max {max_rss} KiB, \
         end {rss_end} KiB; slope after warm-up {slope:+.1} KiB/min; limit {limit:.0} KiB (+{}%)",
        o.tolerance_pct
    );
    ensure!(exit.success(), "agent exit status {exit}");
    if max_after as f64 > limit || rss_end as f64 > limit {
        bail!(
            "resident memory grew beyond {}% after warm-up: {base} -> max {max_after}, end {rss_end} KiB",
            o.tolerance_pct
        );
    }
    println!("PASS: resident memory flat within {}% after warm-up", o.tolerance_pct);
    Ok(())
}
