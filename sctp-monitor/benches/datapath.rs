//! ns per packet of the real kernel programs under BPF_PROG_TEST_RUN, against
//! an empty XDP program measured in the same run.
//!
//! `cargo xtask bench` (or `cargo bench -p sctp-monitor --bench datapath`).
//! Options (env): `SCTP_BENCH_REPEAT` (default 10^7 runs per call),
//! `SCTP_BENCH_ROUNDS` (default 5; the median is reported). Rounds alternate
//! the programs so drift in the machine hits every case alike. A thread on
//! the other core drains the ring buffer while control chunks are measured;
//! records it could not take are reported, not hidden.

use std::{
    net::{IpAddr, Ipv4Addr},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use sctp_monitor::{
    craft::{self, FrameBuilder, InitSpec},
    kernel::{
        LoadOptions, counters,
        testrun::{Prog, TestBed},
    },
};
use sctp_monitor_common::{
    counters as c,
    programs::{PROBES, XDP_INGRESS_LRU},
    sctp::param,
};

fn env(name: &str, default: u32) -> u32 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() -> anyhow::Result<()> {
    if std::env::args().any(|a| a == "--list") {
        return Ok(());
    }
    // SAFETY: no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        anyhow::bail!("the datapath benchmark needs root (BPF_PROG_TEST_RUN)");
    }
    let repeat = env("SCTP_BENCH_REPEAT", 10_000_000);
    let rounds = env("SCTP_BENCH_ROUNDS", 5).max(1);

    let mut bed = TestBed::new(LoadOptions { ring_bytes: 64 << 20, ..LoadOptions::default() })?;
    // Move the ring to a consumer thread on the other core.
    let mut ring = bed.take_ring().ok_or_else(|| anyhow::anyhow!("ring buffer missing"))?;
    let (stop, taken) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(0)));
    let consumer = {
        let (stop, taken) = (stop.clone(), taken.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let mut n = 0;
                while ring.next().is_some() {
                    n += 1;
                }
                taken.fetch_add(n, Ordering::Relaxed);
                if n == 0 {
                    std::thread::sleep(Duration::from_micros(50));
                }
            }
        })
    };
    let r = run(bed, repeat, rounds, Some(taken.clone()));
    stop.store(true, Ordering::Relaxed);
    let _ = consumer.join();
    r
}

fn run(mut bed: TestBed, repeat: u32, rounds: u32, taken: Option<Arc<AtomicU64>>) -> anyhow::Result<()> {
    let a = Ipv4Addr::new(10, 0, 0, 1);
    let b = Ipv4Addr::new(10, 0, 0, 2);
    let mut udp = FrameBuilder::ipv4(a, b).udp_encap(40000, 53).sctp(1, 2, 3).build();
    // Same shape as a DNS query over UDP: not SCTP.
    udp.truncate(14 + 20 + 8 + 32);
    let udp = {
        let mut f = udp;
        let ip_len = (f.len() - 14) as u16;
        f[16..18].copy_from_slice(&ip_len.to_be_bytes());
        f[38..40].copy_from_slice(&((ip_len - 20).to_be_bytes()));
        f
    };
    // The same frame as TCP (protocol 6): not SCTP, no port to check.
    let tcp = {
        let mut f = udp.clone();
        f[23] = 6;
        f
    };
    let one_data =
        FrameBuilder::ipv4(a, b).sctp(36412, 36412, 0xabcd).chunk(craft::data(1, 0, 0, 18, &[0; 100])).build();
    let bundle = FrameBuilder::ipv4(a, b)
        .sctp(36412, 36412, 0xabcd)
        .chunks((0..16).map(|t| craft::data(100 + t, 0, 0, 18, &[0; 32])))
        .build();
    let addrs: Vec<IpAddr> = (1..=8).map(|i| IpAddr::from(Ipv4Addr::new(10, 0, 1, i))).collect();
    let init =
        FrameBuilder::ipv4(a, b).sctp(36412, 36412, 0).chunk(craft::init(&InitSpec::new(7, 1).addrs(&addrs))).build();
    let hb = FrameBuilder::ipv4(a, b)
        .sctp(36412, 36412, 0xabcd)
        .chunk(craft::heartbeat(&craft::param(param::HEARTBEAT_INFO, &[7; 48])))
        .build();

    let data_sack = FrameBuilder::ipv4(a, b)
        .sctp(36412, 36412, 0xabcd)
        .chunk(craft::data(1, 0, 0, 18, &[0; 100]))
        .chunk(craft::sack(1, 65536, &[], &[]))
        .build();
    let lru = Prog::Probe(XDP_INGRESS_LRU);

    // (case, program, frame, floor probe: index of its row or NONE)
    const NONE: usize = usize::MAX;
    const SLOT_PROBE: usize = 10;
    const RECORD_PROBE: usize = 9;
    const DATA_PROBE: usize = 13;
    const NOT_SCTP_PROBE: usize = 15;
    let cases: [(&str, Prog, &[u8], usize); 17] = [
        ("empty XDP program (baseline)", Prog::Baseline, &udp, NONE),
        ("non-SCTP UDP frame", Prog::Ingress, &udp, NOT_SCTP_PROBE),
        ("one DATA chunk", Prog::Ingress, &one_data, DATA_PROBE),
        ("DATA + SACK (two chunks)", Prog::Ingress, &data_sack, SLOT_PROBE),
        ("16-chunk DATA bundle", Prog::Ingress, &bundle, SLOT_PROBE),
        ("INIT with 8 addresses", Prog::Ingress, &init, RECORD_PROBE),
        ("HEARTBEAT", Prog::Ingress, &hb, RECORD_PROBE),
        ("LRU design (sctp_ingress_lru): one DATA chunk", lru, &one_data, 11),
        // Floor probes: one requirement each, no parsing (see probes.rs).
        ("probe: precise clock read only", Prog::Probe(PROBES[0]), &hb, NONE),
        ("probe: clock + one HEARTBEAT-sized ring record only", Prog::Probe(PROBES[1]), &hb, NONE),
        ("probe: one PATH_SLOTS slot access only", Prog::Probe(PROBES[3]), &one_data, NONE),
        ("probe: one per-path LRU per-CPU lookup only", Prog::Probe(PROBES[2]), &one_data, NONE),
        ("LRU design (sctp_ingress_lru): 16-chunk DATA bundle", lru, &bundle, 11),
        (
            "probe: a DATA packet's required updates only (counters, TSN, clock, slot)",
            Prog::Probe(PROBES[4]),
            &one_data,
            NONE,
        ),
        ("probe: one per-CPU counter bump only", Prog::Probe(PROBES[5]), &udp, NONE),
        ("probe: EtherType, IPv4 protocol, one counter only", Prog::Probe(PROBES[6]), &tcp, NONE),
        ("non-SCTP TCP frame", Prog::Ingress, &tcp, NOT_SCTP_PROBE),
    ];
    // `SCTP_BENCH_ONLY=N`: run case N alone, over and over (to profile it
    // with `perf record -a`); nothing is reported.
    if let Some(only) = std::env::var("SCTP_BENCH_ONLY").ok().and_then(|v| v.parse::<usize>().ok()) {
        let (name, prog, frame, _) = cases.get(only).ok_or_else(|| anyhow::anyhow!("no case {only}"))?;
        eprintln!("running {name} alone, {rounds} calls of {repeat} runs");
        for _ in 0..rounds {
            bed.run(*prog, frame, repeat)?;
        }
        return Ok(());
    }
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); cases.len()];
    for _ in 0..rounds {
        for (i, (_, prog, frame, _)) in cases.iter().enumerate() {
            // A short warm-up of the same case first: the first call after
            // another program pays for that switch (caches, branch history),
            // which landed on whichever case came first in a round.
            bed.run(*prog, frame, (repeat / 20).max(1))?;
            let (_, d) = bed.run(*prog, frame, repeat)?;
            samples[i].push(d.as_nanos() as f64);
        }
    }
    let med: Vec<f64> = samples.iter_mut().map(|s| median(s)).collect();
    let base = med[0];
    let goals: [(usize, &str, f64, usize); 3] = [
        (1, "≤ 1.2x the baseline", 1.2, 0),
        (2, "≤ 3x the baseline", 3.0, 0),
        (6, "≤ 1.3x its probe", 1.3, RECORD_PROBE),
    ];
    println!("### Datapath: ns per packet (BPF_PROG_TEST_RUN, XDP ingress program)\n");
    println!("{repeat} runs per call, median of {rounds} rounds, cases alternating within each round.\n");
    println!("| case | ns/packet | x baseline | x its floor probe | goal | met |");
    println!("|---|---:|---:|---:|---|---|");
    let mut all_met = true;
    for (i, (name, _, _, probe)) in cases.iter().enumerate() {
        let x_probe = if *probe == NONE {
            String::new()
        } else {
            format!("{:.2} ({})", med[i] / med[*probe], short(cases[*probe].0))
        };
        let (goal, met) = match goals.iter().find(|g| g.0 == i) {
            Some(&(_, text, limit, against)) => {
                let ok = med[i] / med[against] <= limit;
                all_met &= ok;
                (text, if ok { "yes" } else { "no" })
            }
            None => ("", ""),
        };
        println!("| {name} | {:.1} | {:.2} | {x_probe} | {goal} | {met} |", med[i], med[i] / base);
    }
    let per_chunk = (med[4] - med[2]) / 15.0;
    let per_chunk_lru = (med[12] - med[7]) / 15.0;
    println!("\nEach extra bundled DATA chunk: {per_chunk:.1} ns (LRU design {per_chunk_lru:.1} ns).");
    println!(
        "Requirements alone (probes, above the baseline): precise clock {:.1} ns, clock + ring record {:.1} ns, PATH_SLOTS slot {:.1} ns, LRU lookup {:.1} ns.",
        med[8] - base,
        med[9] - base,
        med[10] - base,
        med[11] - base
    );
    println!("One DATA chunk, PATH_SLOTS against the LRU design: {:.2}x.", med[2] / med[7]);
    let k = counters::read(&bed.ebpf)?;
    let written = k[0].get(c::RINGBUF_RECORDS);
    let lost = k[0].get(c::RINGBUF_LOST);
    if let Some(t) = taken {
        std::thread::sleep(Duration::from_millis(200));
        println!(
            "Ring buffer during the control-chunk cases: {written} records written, {lost} lost (buffer full), {} drained by a consumer on the other core (the drained count includes the record probe's, which the kernel counters do not).",
            t.load(Ordering::Relaxed)
        );
    } else {
        let _ = bed.drain();
        println!("Ring buffer: {written} records written, {lost} lost.");
    }
    println!("\nGoals met: {}", if all_met { "all" } else { "NOT all" });
    Ok(())
}

/// A probe's row name without its prefix.
fn short(name: &str) -> &str {
    name.strip_prefix("probe: ").map(|n| n.trim_end_matches(" only")).unwrap_or(name)
}
