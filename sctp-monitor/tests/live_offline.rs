//! Live = offline, deterministically: every capture fixture is fed frame by
//! frame through the real kernel programs (BPF_PROG_TEST_RUN: one host's
//! packets through the egress program, its peers' through the ingress one,
//! sharing the maps as on a monitored host), the ring-buffer records go to
//! the tracker as the agent gives them, with the agent's per-path poll and
//! tick on capture time; the events must be `replay`'s of the same capture.
//!
//! The live path sees only what the kernel chooses to send (control chunks,
//! and DATA when a decision rests on it) and per-path counters once a poll;
//! replay sees every chunk. Whatever the product reports about associations,
//! moves of new DATA and path states must not depend on which it saw. Each
//! capture is also replayed from many start offsets, as an agent started
//! or restarted mid-flight sees it: one association per real one, and no
//! event that the full replay does not have at that time.
//!
//! Needs root (BPF); fails under CI without it.

mod support;

use std::{
    collections::BTreeSet,
    net::IpAddr,
    path::{Path, PathBuf},
};

use pcap_file::{
    DataLink,
    pcap::PcapReader,
    pcapng::{Block, PcapNgReader},
};
use sctp_monitor::{
    decode::{DecodeStats, LinkType, decode_record, parse_frame},
    event::{Event, EventKind},
    kernel::{
        paths,
        testrun::{Prog, TestBed},
    },
    replay::{ReplayOptions, replay_bytes},
    tracker::Tracker,
};

/// The agent's defaults: per-path maps read every second, time passes for
/// the tracker every 100 ms (replay's tick).
const POLL_NS: u64 = 1_000_000_000;
const TICK_NS: u64 = 100_000_000;

/// The events compared: what the product reports of associations, of the
/// moves of new DATA and of path states.
const COMPARED: &[EventKind] = &[
    EventKind::AssociationUp,
    EventKind::AssociationDown,
    EventKind::Restart,
    EventKind::AddressAdded,
    EventKind::AddressRemoved,
    EventKind::PrimaryChanged,
    EventKind::Failover,
    EventKind::Failback,
    EventKind::PathDown,
    EventKind::PathPotentiallyFailed,
];

fn fixtures() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("fixtures")
        .chain(std::fs::read_dir(dir.join("thirdparty")).expect("third-party fixtures"))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "pcap" || x == "pcapng"))
        .collect();
    v.sort();
    v
}

/// A capture's frames as Ethernet (what XDP and TC see), with their times.
fn frames(path: &Path) -> Vec<(u64, Vec<u8>)> {
    let bytes = std::fs::read(path).expect("read capture");
    let mut out = Vec::new();
    let to_eth = |link: DataLink, data: &[u8]| -> Option<Vec<u8>> {
        let (ethertype, l3) = match link {
            DataLink::ETHERNET => return Some(data.to_vec()),
            DataLink::LINUX_SLL => (u16::from_be_bytes(data.get(14..16)?.try_into().ok()?), data.get(16..)?),
            DataLink::LINUX_SLL2 => (u16::from_be_bytes(data.get(0..2)?.try_into().ok()?), data.get(20..)?),
            DataLink::RAW | DataLink::IPV4 | DataLink::IPV6 => {
                (if data.first()? >> 4 == 6 { 0x86dd } else { 0x0800 }, data)
            }
            _ => return None,
        };
        let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1];
        f.extend_from_slice(&ethertype.to_be_bytes());
        f.extend_from_slice(l3);
        Some(f)
    };
    if bytes.starts_with(&[0x0a, 0x0d, 0x0d, 0x0a]) {
        let Ok(mut r) = PcapNgReader::new(&bytes[..]) else { return via_editcap(path) };
        let mut links = Vec::new();
        while let Some(b) = r.next_block() {
            match b {
                Ok(Block::InterfaceDescription(i)) => links.push(i.linktype),
                Ok(Block::EnhancedPacket(p)) => {
                    let link = links.get(p.interface_id as usize).copied().unwrap_or(DataLink::ETHERNET);
                    if let Some(f) = to_eth(link, &p.data) {
                        out.push((p.timestamp.as_nanos() as u64, f));
                    }
                }
                Ok(_) => {}
                // A block this reader does not take: tshark's tools do.
                Err(_) => return via_editcap(path),
            }
        }
    } else {
        let mut r = PcapReader::new(&bytes[..]).expect("pcap");
        let link = r.header().datalink;
        while let Some(p) = r.next_packet() {
            let Ok(p) = p else { break };
            if let Some(f) = to_eth(link, &p.data) {
                out.push((p.timestamp.as_nanos() as u64, f));
            }
        }
    }
    out.sort_by_key(|f| f.0);
    // A capture of several interfaces (`-i any`, a bridge and its ports)
    // holds copies of one packet; a monitored interface sees it once.
    let mut kept: Vec<(u64, Vec<u8>)> = Vec::with_capacity(out.len());
    for (ts, f) in out {
        let copy = kept.iter().rev().take(32).any(|(t, g)| ts - t <= 1_000_000 && g[14..] == f[14..]);
        if !copy {
            kept.push((ts, f));
        }
    }
    kept
}

/// The capture as classic pcap (`editcap -F pcap`), for a pcapng the
/// reader here does not take whole.
fn via_editcap(path: &Path) -> Vec<(u64, Vec<u8>)> {
    let dir = support::process::TempDir::new("live-offline");
    let out = dir.0.join("capture.pcap");
    let ok = std::process::Command::new("editcap")
        .args(["-F", "pcap"])
        .arg(path)
        .arg(&out)
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "editcap -F pcap {} (wireshark's tools: cargo xtask setup --tests)", path.display());
    frames(&out)
}

/// The addresses of "this host": the senders of INIT chunks, else the
/// first SCTP packet's source. Their packets leave through egress.
fn local_host(frames: &[(u64, Vec<u8>)]) -> BTreeSet<IpAddr> {
    let mut st = DecodeStats::default();
    let mut first = None;
    let mut inits = BTreeSet::new();
    for (ts, f) in frames {
        let Ok(Some(p)) = parse_frame(LinkType::Ethernet, f, *ts, 9899, &mut st) else { continue };
        first.get_or_insert(p.meta.src);
        if p.chunks.iter().any(|c| c.chunk_type() == 1) {
            inits.insert(p.meta.src);
        }
    }
    if inits.is_empty() {
        inits.extend(first);
    }
    inits
}

/// The events the live pipeline gives for `frames`.
fn live(bed: &mut TestBed, frames: &[(u64, Vec<u8>)], opts: &ReplayOptions) -> Vec<Event> {
    support::pin_to_cpu0();
    let local = local_host(frames);
    let mut t = Tracker::new(opts.tracker.clone());
    let mut out = Vec::new();
    let mut st = DecodeStats::default();
    let (mut next_poll, mut next_tick) = (0u64, 0u64);
    let mut pst = DecodeStats::default();
    for (ts, f) in frames {
        let ts = *ts;
        if next_tick == 0 {
            (next_tick, next_poll) = (ts + TICK_NS, ts + POLL_NS);
        }
        if ts >= next_tick {
            t.tick(ts, &mut out);
            next_tick = ts + TICK_NS;
        }
        if ts >= next_poll {
            for (k, s) in paths::read_all(&bed.ebpf).expect("read the per-path maps") {
                t.observe_path_stats(&k, &s, ts, &mut out);
            }
            next_poll = ts + POLL_NS;
        }
        let egress = matches!(parse_frame(LinkType::Ethernet, f, ts, 9899, &mut pst), Ok(Some(p)) if local.contains(&p.meta.src));
        bed.pass(if egress { Prog::Egress } else { Prog::Ingress }, f).expect("the program passes the frame");
        for r in bed.drain() {
            // The record's time is the frame's: the kernel stamps it now.
            if let Ok((meta, c)) = decode_record(&r, ts, &mut st) {
                t.process(&meta, std::slice::from_ref(&c), &mut out);
            }
        }
    }
    out
}

fn key(e: &Event) -> String {
    let v: serde_json::Value = serde_json::from_str(&e.to_json_line()).expect("json");
    let f = |k: &str| v.get(k).map(|x| x.to_string()).unwrap_or_default();
    format!(
        "{} assoc={} endpoint={} path={} from={} to={} cause={} reason={} addr={}",
        f("event"),
        f("assoc"),
        f("endpoint"),
        f("path"),
        f("from"),
        f("to"),
        f("cause"),
        f("reason"),
        f("addr")
    )
}

/// Differences between two event lists: each event of one unmatched in the
/// other (same key, times within `tol_ns`).
fn diff(live: &[&Event], offline: &[&Event], tol_ns: u64) -> Vec<String> {
    let mut by_key: std::collections::HashMap<String, Vec<(u64, bool)>> = Default::default();
    for o in offline {
        by_key.entry(key(o)).or_default().push((o.ts, false));
    }
    let mut out = Vec::new();
    for l in live {
        let k = key(l);
        let hit =
            by_key.get_mut(&k).and_then(|v| v.iter_mut().find(|(ts, used)| !*used && ts.abs_diff(l.ts) <= tol_ns));
        match hit {
            Some(h) => h.1 = true,
            None => out.push(format!("live only:    {} {k}", l.ts)),
        }
    }
    for (k, v) in by_key {
        for (ts, used) in v {
            if !used {
                out.push(format!("offline only: {ts} {k}"));
            }
        }
    }
    out.sort();
    out
}

fn compared(ev: &[Event]) -> Vec<&Event> {
    ev.iter().filter(|e| COMPARED.contains(&e.event)).collect()
}

#[test]
fn every_fixture_reads_the_same_through_the_kernel_programs_as_in_replay() {
    if !support::privileged("live_offline") {
        return;
    }
    let opts = ReplayOptions::default();
    let mut failures = Vec::new();
    let mut checked = 0;
    for path in fixtures() {
        let frames = frames(&path);
        if frames.is_empty() {
            continue;
        }
        let bytes = std::fs::read(&path).expect("read");
        let offline = replay_bytes(&bytes, &path, &opts).expect("replay").events;
        let mut bed = TestBed::new(sctp_monitor::kernel::LoadOptions::default()).expect("load the eBPF object");
        let live = live(&mut bed, &frames, &opts);
        // Packet-driven events carry the packet's time both ways; those of
        // the passage of time may differ by one tick.
        let d = diff(&compared(&live), &compared(&offline), TICK_NS);
        // LIVE_OFFLINE_DUMP=NAME prints both sides of the fixtures whose
        // file name contains NAME.
        if let Ok(name) = std::env::var("LIVE_OFFLINE_DUMP")
            && path.to_string_lossy().contains(&name)
        {
            for (side, ev) in [("live", &live), ("offline", &offline)] {
                for e in ev.iter() {
                    eprintln!("{side}: {}", e.to_json_line());
                }
            }
        }
        let moves =
            compared(&offline).iter().filter(|e| matches!(e.event, EventKind::Failover | EventKind::Failback)).count();
        eprintln!(
            "{}: {} frames, {} events compared ({moves} failovers/failbacks), {} differences",
            path.file_name().unwrap().to_string_lossy(),
            frames.len(),
            compared(&offline).len(),
            d.len()
        );
        if !d.is_empty() {
            failures.push(format!("{}:\n  {}", path.display(), d.join("\n  ")));
        }
        checked += 1;
    }
    assert!(checked >= 8, "only {checked} captures could be fed");
    assert!(failures.is_empty(), "live and offline disagree:\n{}", failures.join("\n"));
}

/// Associations reported, less those folded into another (`merged`: two
/// directions picked up apart, found to be one).
fn associations(ev: &[Event]) -> usize {
    let up = ev.iter().filter(|e| e.event == EventKind::AssociationUp).count();
    let merged = ev
        .iter()
        .filter(|e| e.event == EventKind::AssociationDown && e.reason == Some(sctp_monitor::event::DownReason::Merged))
        .count();
    up - merged
}

/// What an agent started (or restarted) in the middle of the captures sees:
/// each usrsctp capture from ten start offsets, through the kernel programs
/// and through replay of the same cut capture. Both give one association
/// (the real one), the same events, and no path down, failover or failback
/// that the whole capture's replay does not have at the same time.
#[test]
fn from_every_start_offset_one_association_and_no_false_event() {
    if !support::privileged("live_offline") {
        return;
    }
    let opts = ReplayOptions::default();
    let mut failures = Vec::new();
    // Not the wrong-source capture: there usrsctp sends from the address of
    // the other path (its raw-IPv4 bug), which only the handshake's address
    // lists tell from a path of its own; mid-flight it is a path (README,
    // limits).
    let captures = fixtures().into_iter().filter(|p| {
        let name = p.to_string_lossy();
        name.contains("multihomed-failover") && !name.contains("wrong-source")
    });
    for path in captures {
        let all = frames(&path);
        let full = replay_bytes(&support::pcap::ethernet(&all), &path, &opts).expect("replay").events;
        let whole: Vec<&Event> = full.iter().filter(|e| COMPARED.contains(&e.event)).collect();
        for k in 1..10 {
            let cut = &all[all.len() * k / 10..];
            let name = format!("{} from {}0%", path.file_name().unwrap().to_string_lossy(), k);
            let offline = replay_bytes(&support::pcap::ethernet(cut), &path, &opts).expect("replay").events;
            let mut bed = TestBed::new(sctp_monitor::kernel::LoadOptions::default()).expect("load the eBPF object");
            let live = live(&mut bed, cut, &opts);
            let mut problems = diff(&compared(&live), &compared(&offline), TICK_NS);
            if associations(&live) > 1 || associations(&offline) > 1 {
                problems.push(format!("{} associations live, {} offline", associations(&live), associations(&offline)));
            }
            // Every path down, failover and failback is the whole capture's
            // (which endpoint initiated is unknown mid-flight: compared by
            // addresses).
            let anon = |e: &Event| {
                let mut e = e.clone();
                (e.assoc, e.endpoint) = (0, None);
                key(&e)
            };
            // A path found down later than the whole capture found it (the
            // errors that took it down are before the cut) is no false
            // report: the whole capture's last word on the path then must be
            // that it is down or potentially failed.
            let down_then = |e: &Event| {
                whole
                    .iter()
                    .filter(|w| w.path == e.path && w.ts <= e.ts + 1_000_000_000)
                    .rfind(|w| {
                        matches!(w.event, EventKind::PathDown | EventKind::PathPotentiallyFailed | EventKind::PathUp)
                    })
                    .is_some_and(|w| w.event != EventKind::PathUp)
            };
            for e in offline
                .iter()
                .filter(|e| matches!(e.event, EventKind::PathDown | EventKind::Failover | EventKind::Failback))
            {
                let k = anon(e);
                let real = whole.iter().any(|w| anon(w) == k && w.ts.abs_diff(e.ts) <= 1_000_000_000)
                    || (e.event == EventKind::PathDown && down_then(e));
                if !real {
                    problems.push(format!("not in the whole capture's replay: {} {}", e.ts, key(e)));
                }
            }
            eprintln!("{name}: {} frames, {} events, {} problems", cut.len(), compared(&offline).len(), problems.len());
            if !problems.is_empty() {
                failures.push(format!("{name}:\n  {}", problems.join("\n  ")));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
