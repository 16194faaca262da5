//! Failover reporting delay: from the kernel timestamp of the first new DATA
//! on the new path (the record's `ts_ns`, taken by the XDP program) to the
//! failover event written by the agent's pipeline (JSON line written to a
//! file, metrics and event log updated), over many failovers, with
//! background SCTP traffic on the same interface.
//!
//! Setup: two namespaces joined by a veth pair; the agent's programs attached
//! to the veth in ns a and the same pipeline `sctp-monitor run` uses (ring
//! drained through AsyncFd, path maps polled, tracker ticking) on one
//! thread; crafted frames sent from ns b with AF_PACKET.
//!
//! `sudo cargo bench -p sctp-monitor --bench agent_failover`.
//! Env: `SCTP_BENCH_FAILOVERS` (default 1000), `SCTP_BENCH_BG_ASSOCS`
//! (default 200 background associations), `SCTP_BENCH_BG_PPS` (default
//! 20000 background packets/s).

mod agent_common;
#[path = "../tests/support/mod.rs"]
mod support;

use std::{
    fs::File,
    os::fd::AsRawFd,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use agent_common::*;
use aya::maps::RingBuf;
use sctp_monitor::{
    agent::{
        pipeline::{Pipeline, PipelineOptions},
        ring::RingSource,
    },
    kernel::{self, LoadOptions, XdpModeChoice},
    sinks::events::EventWriter,
};
use sctp_monitor_common::maps;
use support::{NetNs, send_frames, veth};

fn enter(ns: &str) {
    let f = File::open(format!("/run/netns/{ns}")).expect("netns");
    // SAFETY: valid fd; moves only this thread.
    assert_eq!(unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) }, 0, "setns");
}

struct AgentResult {
    delays: Vec<u64>,
    failovers: u64,
    events: u64,
    records: u64,
    cpu_ns: u64,
    mode: String,
}

fn agent_thread(stop: Arc<AtomicBool>, ready: std::sync::mpsc::Sender<()>) -> anyhow::Result<AgentResult> {
    enter("smbench-fo-a");
    pin(1);
    let mut ebpf = kernel::load(&LoadOptions::default())?;
    let att = kernel::attach::attach(&mut ebpf, "bfo0", XdpModeChoice::Auto, 1)?;
    let ring = RingBuf::try_from(ebpf.take_map(maps::EVENTS).expect("EVENTS"))?;
    let devnull = std::fs::OpenOptions::new().write(true).open("/dev/null")?;
    let mut p = Pipeline::new(
        PipelineOptions { record_delays: true, ..PipelineOptions::default() },
        EventWriter::new(Some(Box::new(devnull))),
    );
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let cpu0 = thread_cpu_ns();
    rt.block_on(async {
        let mut src = RingSource::new(ring)?;
        let mut poll = tokio::time::interval(Duration::from_secs(1));
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        let mut check = tokio::time::interval(Duration::from_millis(20));
        let _ = ready.send(());
        loop {
            tokio::select! {
                n = src.drain_batches(4096, |items| p.on_items(items)) => { n?; }
                _ = poll.tick() => {
                    let paths = kernel::paths::read_all(&ebpf)?;
                    p.on_path_stats(&paths);
                }
                _ = tick.tick() => p.tick(),
                _ = check.tick() => if stop.load(Ordering::Acquire) { break; },
            }
        }
        anyhow::Ok(())
    })?;
    let cpu_ns = thread_cpu_ns() - cpu0;
    let failovers = p.metrics.failovers();
    Ok(AgentResult {
        delays: std::mem::take(&mut p.failover_delays),
        failovers,
        events: p.events(),
        records: p.records,
        cpu_ns,
        mode: att.xdp_mode.to_string(),
    })
}

fn main() -> anyhow::Result<()> {
    if std::env::args().any(|a| a == "--list") {
        return Ok(());
    }
    root_or_exit("agent_failover");
    let n_fail = env_u64("SCTP_BENCH_FAILOVERS", 1000) as u32;
    let bg_assocs = env_u64("SCTP_BENCH_BG_ASSOCS", 200) as u32;
    let bg_pps = env_u64("SCTP_BENCH_BG_PPS", 20_000);
    let a = NetNs::new("smbench-fo-a");
    let b = NetNs::new("smbench-fo-b");
    veth(&a, "bfo0", &b, "bfo1");

    let stop = Arc::new(AtomicBool::new(false));
    let (rtx, rrx) = std::sync::mpsc::channel();
    let agent = {
        let stop = stop.clone();
        std::thread::spawn(move || agent_thread(stop, rtx))
    };
    rrx.recv_timeout(Duration::from_secs(20)).map_err(|_| anyhow::anyhow!("the agent thread did not start"))?;

    // Background: associations handshaking, then DATA, SACKs and heartbeats.
    let bg_stop = Arc::new(AtomicBool::new(false));
    let bg_sent = Arc::new(AtomicU64::new(0));
    let bg = {
        let (bg_stop, bg_sent) = (bg_stop.clone(), bg_sent.clone());
        std::thread::spawn(move || {
            enter("smbench-fo-b");
            pin(0);
            let assocs: Vec<Assoc> = (0..bg_assocs).map(|i| Assoc::new(1000 + i)).collect();
            let hs: Vec<Vec<u8>> = assocs.iter().flat_map(|x| x.handshake()).collect();
            send_frames("bfo1", &hs);
            let mut tsn = 10u32;
            let batch = 100u64;
            let t0 = Instant::now();
            let mut sent = 0u64;
            while !bg_stop.load(Ordering::Acquire) {
                let mut frames = Vec::with_capacity(batch as usize);
                for k in 0..batch {
                    let x = &assocs[((sent + k) % assocs.len() as u64) as usize];
                    frames.push(match k % 10 {
                        0 => x.heartbeat(0, sent + k)[0].clone(),
                        1 => x.heartbeat(0, sent + k - 1)[1].clone(),
                        2 | 3 => x.sack(0, tsn),
                        _ => x.data(0, tsn + k as u32),
                    });
                }
                tsn = tsn.wrapping_add(batch as u32);
                send_frames("bfo1", &frames);
                sent += batch;
                bg_sent.store(sent, Ordering::Relaxed);
                let due = Duration::from_secs_f64(sent as f64 / bg_pps as f64);
                if let Some(wait) = due.checked_sub(t0.elapsed()) {
                    std::thread::sleep(wait);
                }
            }
        })
    };
    std::thread::sleep(Duration::from_millis(500));

    // The measured association: DATA alternating between its two paths.
    let t_start = Instant::now();
    b.run(move || {
        pin(0);
        let x = Assoc::new(1);
        send_frames("bfo1", &x.handshake());
        let mut tsn = 100u32;
        for i in 0..=n_fail {
            let p = (i % 2) as usize;
            // A few new DATA on the path, then the next failover.
            let frames: Vec<Vec<u8>> = (0..3).map(|k| x.data(p, tsn + k)).collect();
            tsn += 3;
            send_frames("bfo1", &frames);
            std::thread::sleep(Duration::from_millis(2));
        }
    });
    let elapsed = t_start.elapsed();
    std::thread::sleep(Duration::from_millis(300));
    bg_stop.store(true, Ordering::Release);
    let _ = bg.join();
    stop.store(true, Ordering::Release);
    let r = agent.join().map_err(|_| anyhow::anyhow!("agent thread panicked"))??;
    drop((a, b));

    let mut d = r.delays.clone();
    d.sort_unstable();
    let us = |ns: u64| ns as f64 / 1e3;
    println!(
        "### Failover reporting delay (kernel timestamp of the first new DATA on the new path -> event written)\n"
    );
    println!(
        "XDP {} mode on a veth; {} path switches sent over {:.1} s; background: {bg_assocs} associations, {} packets at ~{bg_pps}/s (DATA, SACK, HEARTBEAT/ACK).\n",
        r.mode,
        n_fail,
        elapsed.as_secs_f64(),
        bg_sent.load(Ordering::Relaxed)
    );
    println!("| moves reported | p50 | p90 | p99 | max | records | events | agent CPU |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
    println!(
        "| {} | {:.1} µs | {:.1} µs | {:.1} µs | {:.1} µs | {} | {} | {:.1}% of a core |",
        d.len(),
        us(percentile(&d, 0.5)),
        us(percentile(&d, 0.9)),
        us(percentile(&d, 0.99)),
        us(d.last().copied().unwrap_or(0)),
        r.records,
        r.events,
        r.cpu_ns as f64 / (elapsed.as_secs_f64() * 1e9) * 100.0
    );
    println!(
        "\n(failover events counted by the metrics: {}; the switches sent move no DATA away from a failure, so they are reported as primary changes, which the delay covers as it covers every move of new DATA)",
        r.failovers
    );
    let met = d.len() as u64 >= n_fail as u64 && percentile(&d, 0.99) <= 5_000_000;
    println!(
        "\nTarget: every switch reported, p99 at most 5 ms. Reproduce: `sudo cargo bench -p sctp-monitor --bench agent_failover` (or `cargo xtask bench`).\n\nFloor met: {}",
        if met { "yes" } else { "NO" }
    );
    anyhow::ensure!(!d.is_empty(), "no move of new DATA was reported: the bench measured nothing");
    Ok(())
}
