//! Idle cost: CPU of the agent's loop (ring drained through AsyncFd, path
//! maps polled every second, tracker ticking every 500 ms: the `run`
//! defaults) while 100,000 established associations each send a HEARTBEAT
//! (and get its ACK) every 30 s, i.e. ~6,667 records/s. The producer is
//! BPF_PROG_TEST_RUN of the real XDP program on the other core, paced; its
//! CPU is the network's, not the agent's, and is not counted. The agent's
//! CPU is its thread's CLOCK_THREAD_CPUTIME_ID over the window.
//!
//! `sudo cargo bench -p sctp-monitor --bench agent_idle`.
//! Env: `SCTP_BENCH_IDLE_ASSOCS` (default 100000), `SCTP_BENCH_IDLE_SECS`
//! (measurement window, default 15), `SCTP_BENCH_HB_INTERVAL_S` (default 30),
//! `SCTP_BENCH_TICK_MS` (tracker tick, default 500 as `run`).

mod agent_common;

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use agent_common::*;
use sctp_monitor::{
    agent::{
        pipeline::{Pipeline, PipelineOptions},
        ring::RingSource,
    },
    kernel::{LoadOptions, counters, testrun::{Prog, TestBed}},
    sinks::events::EventWriter,
};
use sctp_monitor_common::counters as c;

fn main() -> anyhow::Result<()> {
    if std::env::args().any(|a| a == "--list") {
        return Ok(());
    }
    root_or_exit("agent_idle");
    let n = env_u64("SCTP_BENCH_IDLE_ASSOCS", 100_000) as u32;
    let window = Duration::from_secs(env_u64("SCTP_BENCH_IDLE_SECS", 15));
    let hb_interval = env_u64("SCTP_BENCH_HB_INTERVAL_S", 30) as f64;
    let tick_ms = env_u64("SCTP_BENCH_TICK_MS", 500);
    let mut bed = TestBed::new(LoadOptions { ring_bytes: 64 << 20, ..LoadOptions::default() })?;
    let ring = bed.take_ring().ok_or_else(|| anyhow::anyhow!("ring buffer missing"))?;
    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    // The agent: its loop on one thread, CPU time taken over the window.
    let agent = {
        let (measuring, stop) = (measuring.clone(), stop.clone());
        // Without DATA the kernel's PATHS map stays empty: the 1 s poll
        // hands the pipeline an empty list (the map read itself, one
        // syscall on an empty map, is not made here: the map belongs to
        // the producer's object).
        std::thread::spawn(move || -> anyhow::Result<(u64, f64, usize, u64, u64)> {
            pin(1);
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            rt.block_on(async move {
                let mut src = RingSource::new(ring)?;
                let opts = PipelineOptions {
                    tracker: sctp_monitor::tracker::Config { max_assocs: 262_144, ..Default::default() },
                    ..PipelineOptions::default()
                };
                let mut p = Pipeline::new(opts, EventWriter::new(None));
                let mut poll = tokio::time::interval(Duration::from_secs(1));
                let mut tick = tokio::time::interval(Duration::from_millis(tick_ms));
                let mut check = tokio::time::interval(Duration::from_millis(100));
                let _ = tx.send(());
                let (mut cpu0, mut t0, mut rec0) = (None, Instant::now(), 0);
                loop {
                    tokio::select! {
                        r = src.drain(4096, |r| p.on_record(r)) => { r?; }
                        _ = poll.tick() => p.on_path_stats(&[]),
                        _ = tick.tick() => p.tick(),
                        _ = check.tick() => {
                            if cpu0.is_none() && measuring.load(Ordering::Acquire) {
                                cpu0 = Some(thread_cpu_ns());
                                t0 = Instant::now();
                                rec0 = p.records;
                            }
                            if stop.load(Ordering::Acquire) { break; }
                        }
                    }
                }
                let cpu = thread_cpu_ns() - cpu0.unwrap_or(0);
                let secs = t0.elapsed().as_secs_f64();
                anyhow::Ok((cpu, secs, p.tracker.len(), p.records - rec0, p.tracker.memory_bytes() as u64))
            })
        })
    };
    rx.recv()?;
    pin(0);
    // Establish the associations.
    let t_setup = Instant::now();
    let assocs: Vec<Assoc> = (0..n).map(Assoc::new).collect();
    for x in &assocs {
        for f in x.handshake() {
            bed.run(Prog::Ingress, &f, 1)?;
        }
    }
    let setup_secs = t_setup.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_secs(2));
    // Steady state: each association heartbeats every `hb_interval`.
    let per_sec = n as f64 / hb_interval;
    measuring.store(true, Ordering::Release);
    std::thread::sleep(Duration::from_millis(150));
    let t0 = Instant::now();
    let mut sent = 0u64;
    let mut i = 0usize;
    while t0.elapsed() < window {
        let due = (t0.elapsed().as_secs_f64() * per_sec) as u64;
        while sent < due {
            let x = &assocs[i % assocs.len()];
            let [hb, ack] = x.heartbeat(i % 2, i as u64);
            bed.run(Prog::Ingress, &hb, 1)?;
            bed.run(Prog::Ingress, &ack, 1)?;
            sent += 1;
            i += 1;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    stop.store(true, Ordering::Release);
    let (cpu, secs, tracked, records, mem) = agent.join().map_err(|_| anyhow::anyhow!("agent panicked"))??;
    let k = counters::read(&bed.ebpf)?;
    let pct = cpu as f64 / (secs * 1e9) * 100.0;
    println!("### Idle cost: {n} associations, each heartbeating every {hb_interval} s\n");
    println!(
        "Associations established in {setup_secs:.1} s (BPF_PROG_TEST_RUN, 4 frames each); window {:.1} s; tick {tick_ms} ms, path poll 1 s.\n",
        secs
    );
    println!("| associations tracked | HEARTBEAT+ACK pairs/s | records in window | ring lost | agent CPU | tracker memory |");
    println!("|---:|---:|---:|---:|---:|---:|");
    println!(
        "| {tracked} | {:.0} | {records} | {} | {pct:.2}% of one core | {:.1} MiB |",
        sent as f64 / window.as_secs_f64(),
        k[0].get(c::RINGBUF_LOST),
        mem as f64 / (1 << 20) as f64
    );
    println!("\nTarget: at most 1% of one core. Reproduce: `sudo cargo bench -p sctp-monitor --bench agent_idle` (or `cargo xtask bench`).\n");
    Ok(())
}
