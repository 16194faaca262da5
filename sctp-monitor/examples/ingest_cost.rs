//! The agent's cost per ring record, in instructions (callgrind) and in
//! time: the real XDP program (BPF_PROG_TEST_RUN) fills a ring, mapped
//! first, with HEARTBEAT records of one established association, as
//! `agent_ingest`'s consumer capacity case does; then one consumer drains
//! it:
//!
//! - `bare`: the reader, counting items (`agent_ingest`'s bare consumer);
//! - `agent`: `RingSource::drain_batches` -> `Pipeline::on_items`, as
//!   `agent::run` does;
//! - `decode`: the records read and decoded in place as the pipeline does,
//!   nothing tracked;
//! - `track`: no ring; one decoded HEARTBEAT given to the tracker N times,
//!   1 µs apart (the tracking alone).
//!
//! Only that part runs in a `run_*` function, so callgrind can count it
//! alone:
//!
//! ```sh
//! cargo build --release -p sctp-monitor --example ingest_cost
//! sudo valgrind --tool=callgrind --toggle-collect='ingest_cost::run_*' \
//!     --callgrind-out-file=/tmp/agent.cg target/release/examples/ingest_cost agent
//! callgrind_annotate --inclusive=yes /tmp/agent.cg | head -40
//! ```
//!
//! It prints the records handled and, outside valgrind, their rate (wall
//! clock and thread CPU time); instructions / records is the cost per
//! record. `--records N` (default 200,000); the ring is sized to hold them.

#[path = "../benches/agent_common/mod.rs"]
mod agent_common;

use agent_common::{Assoc, root_or_exit, thread_cpu_ns};
use anyhow::Context as _;
use aya::maps::{MapData, RingBuf};
use sctp_monitor::{
    agent::{
        pipeline::{Pipeline, PipelineOptions},
        ring::{RingReader, RingSource},
    },
    decode::{Chunk, DecodeStats, PacketMeta, decode_record, record_chunk, record_meta},
    kernel::{
        LoadOptions,
        testrun::{Prog, TestBed},
    },
    sinks::events::EventWriter,
};
use sctp_monitor_common::{ChunkRecord, record::split_item};

/// Records per drain, as the agent (`agent::run`) and the bench ask.
const DRAIN: usize = 4096;

#[inline(never)]
fn run_bare(ring: &mut RingReader) -> u64 {
    let mut n = 0u64;
    loop {
        let mut got = 0;
        while got < DRAIN && ring.next().is_some() {
            got += 1;
        }
        let more = ring.publish();
        n += got as u64;
        if got == 0 && !more {
            return n;
        }
    }
}

#[inline(never)]
fn run_agent(rt: &tokio::runtime::Runtime, src: &mut RingSource, p: &mut Pipeline, expect: u64) -> anyhow::Result<u64> {
    rt.block_on(async {
        while p.records < expect {
            src.drain_batches(DRAIN, |items| p.on_items(items)).await?;
        }
        anyhow::Ok(())
    })?;
    Ok(p.records)
}

/// The decoding alone: each record read in place and decoded as the
/// pipeline does, nothing tracked. Returns the records decoded.
#[inline(never)]
fn run_decode(rt: &tokio::runtime::Runtime, src: &mut RingSource, expect: u64) -> anyhow::Result<u64> {
    let (mut n, mut stats) = (0u64, DecodeStats::default());
    rt.block_on(async {
        while n < expect {
            src.drain_batches(DRAIN, |items| {
                for item in items {
                    let (h, seg1, seg2) = split_item(item).expect("a whole record");
                    let meta = record_meta(h, h.ts_ns).expect("decodes");
                    let chunk = record_chunk(h, seg1, seg2, &mut stats).expect("decodes");
                    std::hint::black_box((&meta, &chunk));
                    chunk.discard();
                    n += 1;
                }
            })
            .await?;
        }
        anyhow::Ok(())
    })?;
    Ok(n)
}

/// The tracking alone: one decoded HEARTBEAT record given to the tracker
/// `n` times, 1 µs apart, as the pipeline gives it (with the RTT samples
/// taken after each).
#[inline(never)]
fn run_track(p: &mut Pipeline, mut meta: PacketMeta, chunk: &Chunk, n: u64) -> u64 {
    let mut events = Vec::new();
    for _ in 0..n {
        meta.ts_ns += 1_000;
        p.tracker.process(&meta, std::slice::from_ref(chunk), &mut events);
        std::hint::black_box(p.tracker.take_rtt_samples().count());
        events.clear();
    }
    n
}

/// The ring, mapped by `consumer` before the real XDP program fills it
/// (as `agent_ingest` maps it in its consumer thread first), and how many
/// records were written.
fn filled<C>(
    records: u64,
    consumer: impl FnOnce(RingBuf<MapData>) -> anyhow::Result<C>,
) -> anyhow::Result<(TestBed, C, u64)> {
    // 112 ring bytes per HEARTBEAT record; room for all of them.
    let ring_bytes = (records * 128).next_power_of_two().max(1 << 20) as u32;
    let mut bed = TestBed::new(LoadOptions { ring_bytes, ..LoadOptions::default() })?;
    let c = consumer(bed.take_ring().context("ring buffer missing")?)?;
    let assoc = Assoc::new(1);
    let setup = assoc.handshake();
    let [hb, _ack] = assoc.heartbeat(0, 7);
    for f in &setup {
        bed.run(Prog::Ingress, f, 1)?;
    }
    let n = records.saturating_sub(setup.len() as u64);
    bed.run(Prog::Ingress, &hb, n as u32)?;
    Ok((bed, c, setup.len() as u64 + n))
}

/// Rate of `n` records in `secs` wall and `cpu` thread-CPU seconds.
fn report(kind: &str, n: u64, secs: f64, cpu: f64) {
    println!(
        "{kind}: {n} records drained (outside valgrind: {:.2} M records/s, {:.2} M per CPU second)",
        n as f64 / secs / 1e6,
        n as f64 / cpu / 1e6
    );
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let kind = args.first().map(String::as_str).unwrap_or("agent");
    let records = args
        .iter()
        .position(|a| a == "--records")
        .and_then(|i| args.get(i + 1))
        .map(|v| v.parse::<u64>().context("--records N"))
        .transpose()?
        .unwrap_or(200_000);
    root_or_exit("ingest_cost");
    let clock = || (std::time::Instant::now(), thread_cpu_ns());
    let elapsed =
        |(t0, c0): (std::time::Instant, u64)| (t0.elapsed().as_secs_f64(), (thread_cpu_ns() - c0) as f64 / 1e9);
    match kind {
        "bare" => {
            let (_bed, mut ring, written) = filled(records, RingReader::new)?;
            let t = clock();
            let drained = run_bare(&mut ring);
            let (secs, cpu) = elapsed(t);
            anyhow::ensure!(drained == written, "drained {drained} of {written} records");
            report(kind, drained, secs, cpu);
        }
        "agent" => {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            let (_bed, mut src, written) = filled(records, |ring| rt.block_on(async { RingSource::new(ring) }))?;
            let mut p = Pipeline::new(PipelineOptions::default(), EventWriter::new(None));
            let t = clock();
            let drained = run_agent(&rt, &mut src, &mut p, written)?;
            let (secs, cpu) = elapsed(t);
            anyhow::ensure!(drained == written, "drained {drained} of {written} records");
            anyhow::ensure!(p.decode_errors == 0, "{} records did not decode", p.decode_errors);
            eprintln!("events {}, tracker packets {}", p.events(), p.tracker.stats().packets);
            report(kind, drained, secs, cpu);
        }
        "decode" => {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            let (_bed, mut src, written) = filled(records, |ring| rt.block_on(async { RingSource::new(ring) }))?;
            let t = clock();
            let drained = run_decode(&rt, &mut src, written)?;
            let (secs, cpu) = elapsed(t);
            report(kind, drained, secs, cpu);
        }
        "track" => {
            // The handshake and one heartbeat through the pipeline, then
            // the heartbeat again and again to the tracker alone.
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            let (_bed, mut src, written) = filled(6, |ring| rt.block_on(async { RingSource::new(ring) }))?;
            let mut p = Pipeline::new(PipelineOptions::default(), EventWriter::new(None));
            let mut last = None;
            rt.block_on(async {
                while p.records < written {
                    src.drain_batches(DRAIN, |items| {
                        p.on_items(items);
                        last = items.last().and_then(|i| ChunkRecord::from_bytes(i));
                    })
                    .await?;
                }
                anyhow::Ok(())
            })?;
            let rec = last.context("no record")?;
            let (meta, chunk) = decode_record(&rec, p.clock.to_wall(rec.ts_ns), &mut DecodeStats::default())?;
            anyhow::ensure!(matches!(chunk, Chunk::Heartbeat { .. }), "the last record is a heartbeat");
            let t = clock();
            let n = run_track(&mut p, meta, &chunk, records);
            let (secs, cpu) = elapsed(t);
            report(kind, n, secs, cpu);
        }
        other => anyhow::bail!("unknown consumer {other:?}: bare, agent, decode or track"),
    }
    Ok(())
}
