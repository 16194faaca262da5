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
use sctp_monitor_common::{counters as c, programs::PROBES, sctp::param};

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

    let cases: [(&str, Prog, &[u8]); 9] = [
        ("empty XDP program (baseline)", Prog::Baseline, &udp),
        ("non-SCTP UDP frame", Prog::Ingress, &udp),
        ("one DATA chunk", Prog::Ingress, &one_data),
        ("16-chunk DATA bundle", Prog::Ingress, &bundle),
        ("INIT with 8 addresses", Prog::Ingress, &init),
        ("HEARTBEAT", Prog::Ingress, &hb),
        // Floor probes: one requirement each, no parsing (see probes.rs).
        ("probe: precise clock read only", Prog::Probe(PROBES[0]), &hb),
        ("probe: clock + one HEARTBEAT-sized ring record only", Prog::Probe(PROBES[1]), &hb),
        ("probe: one per-path LRU per-CPU lookup only", Prog::Probe(PROBES[2]), &one_data),
    ];
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); cases.len()];
    for _ in 0..rounds {
        for (i, (_, prog, frame)) in cases.iter().enumerate() {
            let (_, d) = bed.run(*prog, frame, repeat)?;
            samples[i].push(d.as_nanos() as f64);
        }
    }
    let med: Vec<f64> = samples.iter_mut().map(|s| median(s)).collect();
    let base = med[0];
    println!("### Datapath: ns per packet (BPF_PROG_TEST_RUN, XDP ingress program)\n");
    println!("{repeat} runs per call, median of {rounds} rounds, cases alternating within each round.\n");
    println!("| case | ns/packet | x baseline | floor |");
    println!("|---|---:|---:|---|");
    let floors = ["", "≤ 1.2x", "≤ 3x", "≤ 15 ns per extra chunk", "≤ 5x", "≤ 5x", "", "", ""];
    for (i, (name, _, _)) in cases.iter().enumerate() {
        println!("| {name} | {:.1} | {:.2} | {} |", med[i], med[i] / base, floors[i]);
    }
    let per_chunk = (med[3] - med[2]) / 15.0;
    println!("\nEach extra bundled DATA chunk: {per_chunk:.1} ns (floor ≤ 15 ns).");
    println!(
        "Requirements alone (probes, above the baseline): precise clock {:.1} ns, clock + ring record {:.1} ns, path lookup {:.1} ns.",
        med[6] - base,
        med[7] - base,
        med[8] - base
    );
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
    let ok = med[1] / base <= 1.2
        && med[2] / base <= 3.0
        && per_chunk <= 15.0
        && med[4] / base <= 5.0
        && med[5] / base <= 5.0;
    println!("\nAll floors met: {}", if ok { "yes" } else { "NO" });
    Ok(())
}
