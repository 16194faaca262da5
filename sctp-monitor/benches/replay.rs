//! Replay throughput on a generated capture against tshark on the same file,
//! in the same run (the floor: at least 50x faster than
//! `tshark -r FILE -T fields -e sctp.verification_tag -e sctp.data_tsn -e sctp.data_sid`).
//!
//! Then the same comparison on the largest committed third-party capture
//! (`tests/fixtures/thirdparty`), reported as a ratio, no floor.
//!
//! `cargo xtask bench` (or `cargo bench -p sctp-monitor --bench replay`).
//! Options (env): `SCTP_BENCH_PACKETS` (default 200,000; the floor needs at
//! least that), `SCTP_BENCH_ROUNDS` (default 5 replay rounds, median), and
//! `SCTP_BENCH_TSHARK_ROUNDS` (default 1: tshark takes seconds).
//!
//! The capture (pcap, Ethernet, written with craft + pcap-file into a
//! temporary directory): 64 multihomed associations (two addresses per
//! endpoint) with handshakes, DATA both ways with SACKs, bundles,
//! HEARTBEAT/HEARTBEAT-ACK on the alternate paths, and in a quarter of them
//! a cut primary: retransmissions on the alternate, then a failover, then
//! back, then SHUTDOWN. A replay round is the whole of `replay()` as the CLI
//! runs it (read the file, decode, track, collect events), nothing cached
//! between rounds.

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use pcap_file::DataLink;
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use sctp_monitor::craft::{self, CookiePos, FrameBuilder, InitSpec};
use sctp_monitor::replay::{ReplayOptions, replay};

const FLOOR: f64 = 50.0;
const ASSOCS: u32 = 64;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Writes the capture; returns the number of packets.
fn generate(path: &Path, target: u64) -> anyhow::Result<u64> {
    let file = std::fs::File::create(path)?;
    let mut w = PcapWriter::with_header(
        std::io::BufWriter::new(file),
        PcapHeader {
            datalink: DataLink::ETHERNET,
            ts_resolution: pcap_file::TsResolution::MicroSecond,
            ..PcapHeader::default()
        },
    )?;
    let t0: u64 = 1_700_000_000_000_000_000;
    let mut ts = t0;
    let mut n = 0u64;
    let mut put = |ts: u64, f: Vec<u8>, n: &mut u64| -> anyhow::Result<()> {
        w.write_packet(&PcapPacket::new(Duration::from_nanos(ts), f.len() as u32, &f))?;
        *n += 1;
        Ok(())
    };
    struct A {
        a: [IpAddr; 2],
        b: [IpAddr; 2],
        pa: u16,
        pb: u16,
        ta: u32,
        tb: u32,
        tsn_a: u32,
        tsn_b: u32,
        cut: bool,
    }
    let mut assocs: Vec<A> = (0..ASSOCS)
        .map(|i| {
            let v4 = |x: u8, y: u8| IpAddr::V4(Ipv4Addr::new(10, x, (i / 200) as u8, (i % 200) as u8 + y));
            A {
                a: [v4(1, 1), v4(2, 1)],
                b: [v4(3, 1), v4(4, 1)],
                pa: 36412,
                pb: 36412 + (i % 7) as u16,
                ta: 0x1000_0000 + i * 7919,
                tb: 0x2000_0000 + i * 104_729,
                tsn_a: u32::MAX - 50 + i, // some wrap on the way
                tsn_b: 1_000 * i,
                cut: i % 4 == 0,
            }
        })
        .collect();
    // Handshakes.
    for x in &assocs {
        let ab = |s: IpAddr, d: IpAddr, tag| FrameBuilder::ip(s, d).sctp(x.pa, x.pb, tag);
        let ba = |s: IpAddr, d: IpAddr, tag| FrameBuilder::ip(s, d).sctp(x.pb, x.pa, tag);
        put(
            ts,
            ab(x.a[0], x.b[0], 0).chunk(craft::init(&InitSpec::new(x.ta, x.tsn_a).addrs(&[x.a[1]]))).build(),
            &mut n,
        )?;
        let spec = InitSpec::new(x.tb, x.tsn_b).addrs(&[x.b[1]]).cookie(200, CookiePos::Before);
        put(ts + 100_000, ba(x.b[0], x.a[0], x.ta).chunk(craft::init_ack(&spec)).build(), &mut n)?;
        put(ts + 200_000, ab(x.a[0], x.b[0], x.tb).chunk(craft::cookie_echo(&[7; 200])).build(), &mut n)?;
        put(ts + 300_000, ba(x.b[0], x.a[0], x.ta).chunk(craft::cookie_ack()).build(), &mut n)?;
        ts += 1_000_000;
    }
    // Traffic: rounds of one step per association, 50 µs apart.
    let payload = [0x5au8; 120];
    let end = target.saturating_sub(3 * ASSOCS as u64); // room for the shutdowns
    let mut r = 0u64;
    while n < end {
        r += 1;
        let phase = n * 100 / end.max(1); // 0..100 % of the run
        for x in assocs.iter_mut() {
            ts += 50_000;
            // The cut associations lose path 0 between 40 % and 60 %.
            let down = x.cut && (40..60).contains(&phase);
            let p = if x.cut && (41..60).contains(&phase) { 1 } else { 0 };
            let ab = FrameBuilder::ip(x.a[p], x.b[p]).sctp(x.pa, x.pb, x.tb);
            let ba = FrameBuilder::ip(x.b[p], x.a[p]).sctp(x.pb, x.pa, x.ta);
            match r % 8 {
                // Every 8th round a bundle of four DATA chunks.
                7 => {
                    let c: Vec<Vec<u8>> = (0..4)
                        .map(|k| craft::data(x.tsn_a.wrapping_add(k), (k % 3) as u16, r as u16, 60, &payload[..32]))
                        .collect();
                    put(ts, ab.clone().chunks(c).build(), &mut n)?;
                    x.tsn_a = x.tsn_a.wrapping_add(4);
                }
                _ => {
                    put(ts, ab.clone().chunk(craft::data(x.tsn_a, 1, r as u16, 60, &payload)).build(), &mut n)?;
                    x.tsn_a = x.tsn_a.wrapping_add(1);
                }
            }
            if down {
                // Lost on path 0: retransmitted on the alternate (path 1).
                let rtx = FrameBuilder::ip(x.a[1], x.b[1]).sctp(x.pa, x.pb, x.tb);
                put(
                    ts + 20_000,
                    rtx.chunk(craft::data(x.tsn_a.wrapping_sub(1), 1, r as u16, 60, &payload)).build(),
                    &mut n,
                )?;
                let back = FrameBuilder::ip(x.b[1], x.a[1]).sctp(x.pb, x.pa, x.ta);
                put(ts + 30_000, back.chunk(craft::sack(x.tsn_a.wrapping_sub(1), 65_536, &[], &[])).build(), &mut n)?;
                continue;
            }
            // SACK bundled with the peer's DATA, or alone.
            if r.is_multiple_of(2) {
                let c = vec![
                    craft::sack(x.tsn_a.wrapping_sub(1), 65_536, &[], &[]),
                    craft::data(x.tsn_b, 0, r as u16, 60, &payload),
                ];
                put(ts + 20_000, ba.clone().chunks(c).build(), &mut n)?;
                x.tsn_b = x.tsn_b.wrapping_add(1);
            } else {
                put(
                    ts + 20_000,
                    ba.clone().chunk(craft::sack(x.tsn_a.wrapping_sub(1), 65_536, &[], &[])).build(),
                    &mut n,
                )?;
                let ack = FrameBuilder::ip(x.a[p], x.b[p]).sctp(x.pa, x.pb, x.tb);
                put(ts + 30_000, ack.chunk(craft::sack(x.tsn_b.wrapping_sub(1), 65_536, &[], &[])).build(), &mut n)?;
            }
            // Heartbeats on the idle alternate, every 16th round.
            if r % 16 == 3 {
                let q = 1 - p;
                let info = craft::param(1, &[(r % 251) as u8; 36]);
                let hb = FrameBuilder::ip(x.a[q], x.b[q]).sctp(x.pa, x.pb, x.tb).chunk(craft::heartbeat(&info)).build();
                let hba =
                    FrameBuilder::ip(x.b[q], x.a[q]).sctp(x.pb, x.pa, x.ta).chunk(craft::heartbeat_ack(&info)).build();
                put(ts + 35_000, hb, &mut n)?;
                put(ts + 36_000, hba, &mut n)?;
            }
        }
    }
    // Graceful ends.
    for x in &assocs {
        ts += 100_000;
        let ab = FrameBuilder::ip(x.a[0], x.b[0]).sctp(x.pa, x.pb, x.tb);
        let ba = FrameBuilder::ip(x.b[0], x.a[0]).sctp(x.pb, x.pa, x.ta);
        put(ts, ab.clone().chunk(craft::shutdown(x.tsn_b.wrapping_sub(1))).build(), &mut n)?;
        put(ts + 10_000, ba.chunk(craft::shutdown_ack()).build(), &mut n)?;
        put(ts + 20_000, ab.chunk(craft::shutdown_complete(false)).build(), &mut n)?;
    }
    Ok(n)
}

fn main() -> anyhow::Result<()> {
    if std::env::args().any(|a| a == "--list") {
        return Ok(());
    }
    let target = env("SCTP_BENCH_PACKETS", 200_000);
    let rounds = env("SCTP_BENCH_ROUNDS", 5).max(1);
    let ts_rounds = env("SCTP_BENCH_TSHARK_ROUNDS", 1).max(1);
    let dir = std::env::temp_dir().join(format!("sctp-monitor-bench-replay-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let file = dir.join("generated.pcap");
    let result = run(&file, target, rounds, ts_rounds);
    let _ = std::fs::remove_dir_all(&dir);
    result?;
    run_thirdparty(env("SCTP_BENCH_THIRDPARTY_ROUNDS", 20).max(1), ts_rounds)
}

/// tshark on `file` with the three fields, output to /dev/null; `None`
/// when tshark is not installed.
fn time_tshark(file: &Path, rounds: u64) -> anyhow::Result<Option<f64>> {
    let ok = Command::new("tshark")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        return Ok(None);
    }
    let mut v = Vec::new();
    for _ in 0..rounds {
        let t = Instant::now();
        let st = Command::new("tshark")
            .arg("-r")
            .arg(file)
            .args(["-T", "fields", "-e", "sctp.verification_tag", "-e", "sctp.data_tsn", "-e", "sctp.data_sid"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()?;
        v.push(t.elapsed().as_secs_f64());
        anyhow::ensure!(st.success(), "tshark failed: {st}");
    }
    Ok(Some(median(&mut v)))
}

/// The largest committed third-party capture (`tests/fixtures/thirdparty`,
/// real SCTP from the Linux kernel under Open5GS) through `replay()` and
/// through tshark, in the same run. No floor: on a file this size tshark's
/// start-up is most of its time, and the ratio says what a user waits.
fn run_thirdparty(rounds: u64, ts_rounds: u64) -> anyhow::Result<()> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/thirdparty");
    let mut files: Vec<(u64, std::path::PathBuf)> = std::fs::read_dir(&dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "pcap" || x == "pcapng"))
        .filter_map(|p| std::fs::metadata(&p).ok().map(|m| (m.len(), p)))
        .collect();
    files.sort();
    let Some((bytes, file)) = files.pop() else { anyhow::bail!("no capture in {}", dir.display()) };
    let opts = ReplayOptions::default();
    let mut ours = Vec::new();
    let mut seen = (0, 0, 0);
    for _ in 0..rounds {
        let t = Instant::now();
        let o = replay(&file, &opts)?;
        ours.push(t.elapsed().as_secs_f64());
        anyhow::ensure!(o.error.is_none(), "{}: {:?}", file.display(), o.error);
        seen = (o.packets, o.sctp_packets, o.associations.len());
    }
    let ours = median(&mut ours);
    let (packets, sctp, assocs) = seen;
    let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    println!("\n### Replay against tshark on the largest third-party capture\n");
    println!(
        "`tests/fixtures/thirdparty/{name}` ({:.2} MB, {packets} packets of which {sctp} SCTP, {assocs} associations). \
         Replay: median of {rounds} rounds; tshark: median of {ts_rounds}.\n",
        bytes as f64 / 1e6
    );
    println!("| reader | seconds | packets/s | ratio |");
    println!("|---|---:|---:|---:|");
    println!("| `sctp-monitor` replay (decode + track + events) | {ours:.4} | {:.0} | 1 |", packets as f64 / ours);
    match time_tshark(&file, ts_rounds)? {
        Some(t) => println!(
            "| `tshark -r FILE -T fields -e sctp.verification_tag -e sctp.data_tsn -e sctp.data_sid` | {t:.3} | {:.0} | {:.1}x slower |",
            packets as f64 / t,
            t / ours
        ),
        None => println!("| tshark | not installed (cargo xtask setup --tests) | | |"),
    }
    println!("\nReproduce: `cargo bench -p sctp-monitor --bench replay` (`SCTP_BENCH_THIRDPARTY_ROUNDS`, default 20).");
    Ok(())
}

fn run(file: &Path, target: u64, rounds: u64, ts_rounds: u64) -> anyhow::Result<()> {
    let packets = generate(file, target)?;
    let bytes = std::fs::metadata(file)?.len();

    let opts = ReplayOptions::default();
    let mut ours = Vec::new();
    let mut check = None;
    for _ in 0..rounds {
        let t = Instant::now();
        let o = replay(file, &opts)?;
        ours.push(t.elapsed().as_secs_f64());
        check = Some((o.packets, o.sctp_packets, o.associations.len(), o.events.len(), o.malformed_packets));
    }
    let (read, sctp, assocs, events, malformed) = check.unwrap_or_default();
    anyhow::ensure!(
        read == packets && sctp == packets && malformed == 0,
        "replay read {read}/{packets} packets ({sctp} SCTP, {malformed} malformed)"
    );
    anyhow::ensure!(assocs == ASSOCS as usize, "replay found {assocs} associations, expected {ASSOCS}");
    let ours = median(&mut ours);

    let theirs = time_tshark(file, ts_rounds)?;

    println!("### Replay throughput (generated capture, same file, same run)\n");
    println!(
        "{packets} packets ({:.1} MB pcap), {ASSOCS} multihomed associations ({} with a failover and back), {events} events. \
         Replay: median of {rounds} rounds; tshark: median of {ts_rounds}.\n",
        bytes as f64 / 1e6,
        ASSOCS / 4
    );
    println!("| reader | seconds | packets/s | ratio | floor |");
    println!("|---|---:|---:|---:|---|");
    println!("| `sctp-monitor` replay (decode + track + events) | {ours:.3} | {:.0} | 1 | |", packets as f64 / ours);
    let ok = if let Some(t) = theirs {
        let ratio = t / ours;
        println!(
            "| `tshark -r FILE -T fields -e sctp.verification_tag -e sctp.data_tsn -e sctp.data_sid` | {t:.3} | {:.0} | {:.1}x slower | replay ≥ {FLOOR}x faster: {} |",
            packets as f64 / t,
            ratio,
            if ratio >= FLOOR { "met" } else { "NOT met" }
        );
        ratio >= FLOOR
    } else {
        println!("| tshark | not installed (cargo xtask setup --tests) | | | not measured |");
        false
    };
    println!("\nReproduce: `cargo xtask bench` or `cargo bench -p sctp-monitor --bench replay`.");
    println!("\nFloor met: {}", if ok { "yes" } else { "NO" });
    Ok(())
}
