//! Ingest: ring-buffer records per second the agent's pipeline consumes
//! (`RingSource`: wakeups or its adaptive wait, decoder, tracker,
//! metrics) with the producer (BPF_PROG_TEST_RUN of the real XDP
//! program, one call repeating it for every record) pinned to the other
//! core, against a bare consumer
//! that only counts ring items (the same reader, draining the same way), in
//! the same run. Records lost (ring full) are read from the kernel's own
//! counter and reported exactly: written = consumed, lost counted apart.
//!
//! `cargo bench -p sctp-monitor --bench agent_ingest` (root).
//! Env: `SCTP_BENCH_INGEST_RECORDS` (default 4,000,000 per consumer),
//! `SCTP_BENCH_INGEST_ROUNDS` (default 3; the median is reported).

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
        ring::{RingReader, RingSource},
    },
    kernel::{
        LoadOptions, counters,
        testrun::{Prog, TestBed},
    },
    sinks::events::EventWriter,
};
use sctp_monitor_common::counters as c;

#[derive(Clone, Copy, PartialEq)]
enum Consumer {
    Bare,
    Agent,
}

struct Outcome {
    written: u64,
    lost: u64,
    consumed: u64,
    secs: f64,
    /// Program runs per second of the producer's call, wall clock (with
    /// the ring filled first: alone on the machine's other core).
    prod_rate: f64,
    /// The kernel's own mean time per run of the program in that call.
    prod_ns: f64,
    /// Share of the producer's wall-clock time its thread was on a CPU: on
    /// a shared machine, below 1 when other work took its core.
    prod_on_cpu: f64,
    /// The consumer thread's CPU time per record consumed.
    cons_cpu_ns: f64,
    /// Share of the consumer's timed span its thread was on a CPU (it
    /// naps when the ring is empty).
    cons_on_cpu: f64,
}

/// `prefill`: the producer fills the ring first and the consumer starts
/// after it: the consumer's own capacity, not bounded by the producer.
fn one(kind: Consumer, records: u64, prefill: bool) -> anyhow::Result<Outcome> {
    let ring_bytes = if prefill { 512 << 20 } else { 64 << 20 };
    let mut bed = TestBed::new(LoadOptions { ring_bytes, ..LoadOptions::default() })?;
    let ring = bed.take_ring().ok_or_else(|| anyhow::anyhow!("ring buffer missing"))?;
    let assoc = Assoc::new(1);
    let setup = assoc.handshake();
    let [hb, _ack] = assoc.heartbeat(0, 7);
    let done = Arc::new(AtomicBool::new(false));
    let start = Arc::new(AtomicBool::new(!prefill));
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let consumer = {
        let done = done.clone();
        let start = start.clone();
        // (records, seconds from the start to the last record, thread CPU ns)
        std::thread::spawn(move || -> anyhow::Result<(u64, f64, u64)> {
            pin(1);
            let wait_start = || {
                while !start.load(Ordering::Acquire) {
                    std::thread::sleep(Duration::from_millis(1));
                }
            };
            match kind {
                Consumer::Bare => {
                    // The agent's reader, draining as the agent does (up to
                    // 4096 records, then the position published; when the
                    // ring is empty, a look again 1 ms later, the agent's
                    // shortest wait), counting only.
                    let mut ring = RingReader::new(ring)?;
                    let mut n = 0u64;
                    let _ = tx.send(());
                    wait_start();
                    let cpu0 = thread_cpu_ns();
                    let mut t0 = Some(Instant::now());
                    let mut t_last = Instant::now();
                    loop {
                        let mut got = 0;
                        while got < 4096 && ring.next().is_some() {
                            got += 1;
                        }
                        let more = ring.publish();
                        n += got;
                        if got > 0 {
                            t_last = Instant::now();
                            if t0.is_none() {
                                t0 = Some(t_last);
                            }
                        }
                        if got == 0 && !more {
                            if done.load(Ordering::Acquire) {
                                break;
                            }
                            std::thread::sleep(Duration::from_millis(1));
                        }
                    }
                    Ok((n, t0.map_or(0.0, |t| (t_last - t).as_secs_f64()), thread_cpu_ns() - cpu0))
                }
                Consumer::Agent => {
                    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
                    rt.block_on(async move {
                        let mut src = RingSource::new(ring)?;
                        let mut p = Pipeline::new(PipelineOptions::default(), EventWriter::new(None));
                        let _ = tx.send(());
                        wait_start();
                        let cpu0 = thread_cpu_ns();
                        let mut t0 = Some(Instant::now());
                        let mut t_last = Instant::now();
                        loop {
                            let r = tokio::time::timeout(
                                Duration::from_millis(200),
                                src.drain_batches(4096, |items| p.on_items(items)),
                            )
                            .await;
                            match r {
                                Ok(n) => {
                                    n?;
                                    t_last = Instant::now();
                                    if t0.is_none() {
                                        t0 = Some(t_last);
                                    }
                                }
                                Err(_) if done.load(Ordering::Acquire) => break,
                                Err(_) => {}
                            }
                        }
                        let secs = t0.map_or(0.0, |t: Instant| (t_last - t).as_secs_f64());
                        Ok((p.records, secs, thread_cpu_ns() - cpu0))
                    })
                }
            }
        })
    };
    rx.recv()?;
    pin(0);
    for f in &setup {
        bed.run(Prog::Ingress, f, 1)?;
    }
    // One call for every heartbeat: each BPF_PROG_TEST_RUN call with a
    // repeat count points the kernel's XDP dispatcher at the program and
    // back, each change followed by a synchronize_rcu (~10 ms here, asleep;
    // see BENCHMARKS.md). At 100,000 runs per call that was 160-200 ns per
    // record: the wall-clock rate measured the test harness, not the
    // program. A packet stream through an attached program pays neither.
    let n = records.saturating_sub(setup.len() as u64).max(1);
    let (t_prod, cpu_prod) = (Instant::now(), thread_cpu_ns());
    let (_, per_run) = bed.run(Prog::Ingress, &hb, u32::try_from(n)?)?;
    let prod_wall = t_prod.elapsed().as_secs_f64();
    let (prod_rate, prod_on_cpu) = (n as f64 / prod_wall, (thread_cpu_ns() - cpu_prod) as f64 / 1e9 / prod_wall);
    start.store(true, Ordering::Release);
    std::thread::sleep(Duration::from_millis(100));
    done.store(true, Ordering::Release);
    // Timing runs from the consumer's start to the last record it took.
    let (consumed, secs, cons_cpu) = consumer.join().map_err(|_| anyhow::anyhow!("consumer panicked"))??;
    let k = counters::read(&bed.ebpf)?;
    Ok(Outcome {
        written: k[0].get(c::RINGBUF_RECORDS),
        lost: k[0].get(c::RINGBUF_LOST),
        consumed,
        secs,
        prod_rate,
        prod_ns: per_run.as_nanos() as f64,
        prod_on_cpu,
        cons_cpu_ns: cons_cpu as f64 / consumed.max(1) as f64,
        cons_on_cpu: cons_cpu as f64 / 1e9 / secs,
    })
}

fn main() -> anyhow::Result<()> {
    if std::env::args().any(|a| a == "--list") {
        return Ok(());
    }
    root_or_exit("agent_ingest");
    let records = env_u64("SCTP_BENCH_INGEST_RECORDS", 4_000_000);
    let rounds = env_u64("SCTP_BENCH_INGEST_ROUNDS", 3).max(1);
    for prefill in [false, true] {
        report(records, rounds, prefill)?;
    }
    println!("Reproduce: `sudo cargo bench -p sctp-monitor --bench agent_ingest` (or `cargo xtask bench`).\n");
    Ok(())
}

fn report(records: u64, rounds: u64, prefill: bool) -> anyhow::Result<()> {
    let records = if prefill { records.min(3_000_000) } else { records };
    let mut rows: Vec<(Consumer, Outcome)> = Vec::new();
    for _ in 0..rounds {
        for kind in [Consumer::Bare, Consumer::Agent] {
            rows.push((kind, one(kind, records, prefill)?));
        }
    }
    let med = |kind: Consumer| {
        let mut v: Vec<f64> = rows.iter().filter(|r| r.0 == kind).map(|r| r.1.consumed as f64 / r.1.secs).collect();
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    if prefill {
        println!(
            "### Agent ingest, consumer capacity: a 512 MiB ring filled first, then drained ({records} HEARTBEAT records)\n"
        );
    } else {
        println!(
            "### Agent ingest, live: producer (BPF_PROG_TEST_RUN of sctp_ingress, CPU 0) and consumer (CPU 1) concurrently\n"
        );
        println!("64 MiB ring; {records} HEARTBEAT records of one established association per run.\n");
    }
    println!(
        "| consumer | round | written | lost (ring full) | consumed | consumed = written | records/s | consumer CPU ns/record | consumer on CPU | producer runs/s | producer ns/run (kernel clock) | producer on CPU |"
    );
    println!("|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|");
    for (i, (kind, o)) in rows.iter().enumerate() {
        let name = if *kind == Consumer::Bare { "bare (count only)" } else { "agent pipeline" };
        println!(
            "| {name} | {} | {} | {} | {} | {} | {:.0} | {:.0} | {:.0}% | {:.0} | {:.0} | {:.0}% |",
            i / 2 + 1,
            o.written,
            o.lost,
            o.consumed,
            if o.consumed == o.written { "yes" } else { "NO" },
            o.consumed as f64 / o.secs,
            o.cons_cpu_ns,
            o.cons_on_cpu * 100.0,
            o.prod_rate,
            o.prod_ns,
            o.prod_on_cpu * 100.0
        );
    }
    let (bare, agent) = (med(Consumer::Bare), med(Consumer::Agent));
    let median = |f: fn(&Outcome) -> f64| {
        let mut v: Vec<f64> = rows.iter().map(|r| f(&r.1)).collect();
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    let (prod, prod_ns) = (median(|o| o.prod_rate), median(|o| o.prod_ns));
    println!(
        "\nMedian: bare {:.2} M records/s, agent {:.2} M records/s = {:.0}% of bare (targets: >= 50% and >= 3 M/s).",
        bare / 1e6,
        agent / 1e6,
        agent / bare * 100.0
    );
    if prefill {
        println!(
            "The producer alone (ring filled before any consumer ran): {:.2} M records/s (median), {prod_ns:.0} ns per run by the kernel's clock.",
            prod / 1e6
        );
    } else {
        println!(
            "Live, a consumer that loses nothing runs at the producer's rate: read the lost column first. The producer ran at {:.2} M records/s (median), {prod_ns:.0} ns per run by the kernel's clock.",
            prod / 1e6
        );
    }
    println!();
    Ok(())
}
