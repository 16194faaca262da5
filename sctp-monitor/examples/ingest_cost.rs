//! The agent's cost per ring record in instructions, for callgrind: the
//! real XDP program (BPF_PROG_TEST_RUN) fills the ring with HEARTBEAT
//! records of one established association, as `agent_ingest`'s consumer
//! capacity case does, then one consumer drains it: `bare` (the reader,
//! counting items) or `agent` (`RingSource::drain_batches` ->
//! `Pipeline::on_items`, as `agent::run` does). Only the drain runs in [`drain_bare`] /
//! [`drain_agent`], so callgrind can count them alone:
//!
//! ```sh
//! cargo build --release -p sctp-monitor --example ingest_cost
//! sudo valgrind --tool=callgrind --toggle-collect='ingest_cost::drain_*' \
//!     --callgrind-out-file=/tmp/agent.cg target/release/examples/ingest_cost agent
//! callgrind_annotate --inclusive=yes /tmp/agent.cg | head -40
//! ```
//!
//! The program prints the records drained; instructions / records is the
//! cost per record. `--records N` (default 200,000); the ring is sized to
//! hold them.

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
    kernel::{
        LoadOptions,
        testrun::{Prog, TestBed},
    },
    sinks::events::EventWriter,
};

/// Records per drain, as the agent (`agent::run`) and the bench ask.
const DRAIN: usize = 4096;

#[inline(never)]
fn drain_bare(ring: &mut RingReader) -> u64 {
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
fn drain_agent(
    rt: &tokio::runtime::Runtime,
    src: &mut RingSource,
    p: &mut Pipeline,
    expect: u64,
) -> anyhow::Result<u64> {
    rt.block_on(async {
        while p.records < expect {
            src.drain_batches(DRAIN, |items| p.on_items(items)).await?;
        }
        anyhow::Ok(())
    })?;
    Ok(p.records)
}

fn fill(records: u64) -> anyhow::Result<(TestBed, RingBuf<MapData>, u64)> {
    // 112 ring bytes per HEARTBEAT record; room for all of them.
    let ring_bytes = (records * 128).next_power_of_two().max(1 << 20) as u32;
    let mut bed = TestBed::new(LoadOptions { ring_bytes, ..LoadOptions::default() })?;
    let ring = bed.take_ring().context("ring buffer missing")?;
    let assoc = Assoc::new(1);
    let setup = assoc.handshake();
    let [hb, _ack] = assoc.heartbeat(0, 7);
    for f in &setup {
        bed.run(Prog::Ingress, f, 1)?;
    }
    let n = records.saturating_sub(setup.len() as u64);
    bed.run(Prog::Ingress, &hb, n as u32)?;
    Ok((bed, ring, setup.len() as u64 + n))
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
    let (_bed, ring, written) = fill(records)?;
    let (t0, cpu0) = (std::time::Instant::now(), thread_cpu_ns());
    let drained = match kind {
        "bare" => drain_bare(&mut RingReader::new(ring)?),
        "agent" => {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            let mut src = rt.block_on(async { RingSource::new(ring) })?;
            let mut p = Pipeline::new(PipelineOptions::default(), EventWriter::new(None));
            let n = drain_agent(&rt, &mut src, &mut p, written)?;
            anyhow::ensure!(p.decode_errors == 0, "{} records did not decode", p.decode_errors);
            eprintln!("events {}, tracker packets {}", p.events(), p.tracker.stats().packets);
            n
        }
        other => anyhow::bail!("unknown consumer {other:?}: bare or agent"),
    };
    anyhow::ensure!(drained == written, "drained {drained} of {written} records");
    let (secs, cpu) = (t0.elapsed().as_secs_f64(), (thread_cpu_ns() - cpu0) as f64 / 1e9);
    println!(
        "{kind}: {drained} records drained (outside valgrind: {:.2} M records/s, {:.2} M per CPU second)",
        drained as f64 / secs / 1e6,
        drained as f64 / cpu / 1e6
    );
    Ok(())
}
