//! The bodies of the fuzz targets, shared with `tests/fuzz_regressions.rs`
//! (which includes this file) so a committed crash input runs through
//! exactly the code the fuzzer ran. Each returns what it decoded, for the
//! regression tests to assert on; each panics on a broken invariant.

#![allow(dead_code)]

use std::path::Path;

use sctp_monitor::decode::{
    Chunk, DecodeError, DecodeStats, LinkType, Packet, PacketMeta, decode_parts, decode_record as decode_rec,
    parse_frame, walk_chunks,
};
use sctp_monitor::event::{DownReason, Event, EventKind};
use sctp_monitor::replay::{ReplayError, ReplayOptions, ReplayOutcome, replay_bytes};
use sctp_monitor::tracker::{Config, Tracker};
use sctp_monitor_common::record::{RECORD_HEADER_LEN, split_item};
use sctp_monitor_common::{ChunkRecord, PathKey, PathStats, RecordKind};

use crate::script::{OP_COUNTERS, OP_PACKET, OP_RECORD, OP_TICK, Reader, T0_MS};

/// Link types by the first input byte of `decode_packet`.
pub const LINKS: [LinkType; 5] =
    [LinkType::Ethernet, LinkType::LinuxSll, LinkType::LinuxSll2, LinkType::RawIp, LinkType::Null];

/// The UDP port of SCTP over UDP the targets use (the agent's default).
pub const UDP_PORT: u16 = 9899;

/// The file name capture errors carry.
pub const CAPTURE_NAME: &str = "fuzz-input";

/// Checks what the decoder said of one chunk against the bytes it came from.
fn check_stats(before: &DecodeStats, after: &DecodeStats, decoded: u64) {
    assert_eq!(after.chunks - before.chunks, decoded, "chunks counted");
    assert!(after.malformed_chunks >= before.malformed_chunks);
}

/// Ring-record bytes -> `ChunkRecord::from_bytes` -> `decode_record`, and
/// read in place as the agent's pipeline does (`split_item` ->
/// `decode_parts`), which must give the same when the bytes hold what
/// their header says. `None`: too short to be a record (counted by the
/// agent as a short item).
pub fn decode_record(data: &[u8]) -> Option<Result<(PacketMeta, Chunk), DecodeError>> {
    let rec = ChunkRecord::from_bytes(data)?;
    let mut st = DecodeStats::default();
    let r = decode_rec(&rec, 42, &mut st);
    // Ring items start 8-byte aligned: the bytes copied to a word buffer.
    let mut words = vec![0u64; data.len().div_ceil(8)];
    // SAFETY: `data.len()` bytes fit in the buffer, u8 needs no alignment
    // and any byte is a valid part of a u64.
    let item = unsafe { std::slice::from_raw_parts_mut(words.as_mut_ptr().cast::<u8>(), data.len()) };
    item.copy_from_slice(data);
    if let Some((h, seg1, seg2)) = split_item(item) {
        let mut in_place = DecodeStats::default();
        assert_eq!(decode_parts(h, seg1, seg2, 42, &mut in_place), r, "read in place as copied");
        assert_eq!(in_place, st, "counted in place as copied");
    }
    match &r {
        Ok((meta, chunk)) => {
            check_stats(&DecodeStats::default(), &st, 1);
            assert_eq!(meta.ts_ns, 42);
            assert_eq!((meta.src_port, meta.dst_port), (rec.src_port, rec.dst_port));
            assert_eq!(meta.vtag, rec.vtag);
            assert_eq!(meta.record, rec.kind());
            if rec.kind() == Some(RecordKind::CookieEcho) {
                assert_eq!(chunk, &Chunk::CookieEcho { len: rec.chunk_len });
            }
            // What came out fits in what went in.
            let present = data.len().saturating_sub(RECORD_HEADER_LEN);
            if let Chunk::Init(i) | Chunk::InitAck(i) = chunk {
                assert!(i.addrs.len() * 8 <= present, "addresses from nowhere");
            }
        }
        Err(_) => assert_eq!(st.chunks, 0),
    }
    Some(r)
}

/// Frame bytes: the first byte picks the link type, the rest is the frame,
/// through `parse_frame` as replay uses it.
pub fn decode_packet(data: &[u8]) -> Result<Option<Packet>, DecodeError> {
    let Some((&sel, frame)) = data.split_first() else {
        return Ok(None);
    };
    let link = LINKS[sel as usize % LINKS.len()];
    let mut st = DecodeStats::default();
    let r = parse_frame(link, frame, 7, UDP_PORT, &mut st);
    if let Ok(Some(p)) = &r {
        // Every chunk takes at least 4 bytes of the frame.
        assert!(p.chunks.len() * 4 <= frame.len(), "more chunks than bytes");
        assert_eq!(st.chunks, p.chunks.len() as u64, "chunks counted");
        assert_eq!(p.meta.ts_ns, 7);
        assert_eq!(p.meta.record, None);
        assert_eq!(p.meta.bundled_pad, p.chunks.iter().any(|c| matches!(c, Chunk::Pad { .. })));
        for c in &p.chunks {
            match c {
                Chunk::Init(i) | Chunk::InitAck(i) => {
                    assert!(i.addrs.len() * 8 <= frame.len(), "addresses from nowhere")
                }
                Chunk::Sack(s) => {
                    assert!(s.gaps.len() <= s.n_gaps as usize);
                    assert!(s.dups.len() <= s.n_dups as usize);
                }
                _ => {}
            }
        }
    }
    r
}

/// Bytes as a capture file through the replay reader. Never a panic; the
/// memory bound is libFuzzer's `-malloc_limit_mb` / `-rss_limit_mb`.
pub fn capture_reader(data: &[u8]) -> Result<ReplayOutcome, ReplayError> {
    let r = replay_bytes(data, Path::new(CAPTURE_NAME), &ReplayOptions::default());
    match &r {
        Ok(o) => {
            // A pcap record takes at least 16 bytes, a pcapng block 12
            // (a gzip-compressed capture may hold more in fewer bytes).
            let gzip = data.starts_with(&[0x1f, 0x8b]);
            assert!(gzip || o.packets as usize * 12 <= data.len(), "packets from nowhere");
            assert_eq!(
                o.packets,
                o.sctp_packets
                    + o.other_packets
                    + o.malformed_packets
                    + o.fragments
                    + o.unsupported_link
                    + o.duplicates_folded,
                "every packet counted once"
            );
            if let Some(e) = &o.error {
                check_capture_error(e, data.len());
            }
        }
        Err(e) => check_capture_error(e, data.len()),
    }
    r
}

/// A capture error names the file and, when damaged, an offset inside it.
pub fn check_capture_error(e: &ReplayError, len: usize) {
    let msg = e.to_string();
    assert!(msg.starts_with(CAPTURE_NAME), "{msg}");
    // A gzip-compressed capture's offsets count decompressed bytes.
    if let ReplayError::Damaged { offset, what, .. } = e
        && !what.contains("decompressed")
    {
        assert!(*offset < len.max(1), "offset {offset} past the end ({len}): {msg}");
    }
}

/// What a tracker script did.
#[derive(Debug, Default)]
pub struct TrackerRun {
    pub steps: u64,
    pub events: u64,
    pub downs: u64,
    pub associations: usize,
    pub created: u64,
}

/// A tracker's heap stays within this for `max_assocs` associations: the
/// slab and its indexes, 16 addresses and 255 paths per association, the
/// bounded ASCONF queue, and the in-flight heartbeat table (at most
/// max(4 x associations, 4096) entries).
pub fn memory_cap(max_assocs: usize) -> usize {
    (1 << 20) + max_assocs * (64 << 10)
}

/// A script of packets, kernel records, kernel counters and ticks through
/// one tracker, checking after every step what must always hold.
pub fn tracker_sequence(data: &[u8]) -> TrackerRun {
    let mut r = Reader::new(data);
    let cfg = Config {
        max_assocs: 1 + (r.u8() & 7) as usize,
        keep_closed: (r.u8() & 7) as usize,
        hb_down_after: 1 + (r.u8() & 7),
        retrans_down_after: 1 + (r.u8() & 7) as u16,
        idle_timeout_ns: (1 + r.u8() as u64) * 1_000_000_000,
        ..Config::default()
    };
    // FUZZ_TRACE=1: every step and its events on stderr (triage).
    let trace = std::env::var_os("FUZZ_TRACE").is_some();
    if trace {
        eprintln!("config {cfg:?}");
    }
    let mut t = Tracker::new(cfg.clone());
    let mut now_ms = T0_MS;
    let mut out: Vec<Event> = Vec::new();
    let mut run = TrackerRun::default();
    let mut st = DecodeStats::default();
    let mut chunks = Vec::new();
    let (mut downs, mut evicted) = (0u64, 0u64);
    // Associations reported up and not yet down: each must be tracked.
    let mut up: std::collections::BTreeSet<u64> = Default::default();
    let step = |now: &mut u64, dt: i64| {
        *now = now.saturating_add_signed(dt);
    };
    while !r.is_empty() {
        run.steps += 1;
        match r.u8() % 4 {
            OP_PACKET => {
                step(&mut now_ms, r.i16() as i64);
                let src = r.addr();
                let dst = r.addr();
                let (sp, dp, vtag, kind) = (r.u16(), r.u16(), r.u32(), r.u8());
                let n = r.u16() as usize;
                let bytes = r.bytes(n);
                chunks.clear();
                walk_chunks(bytes, &mut st, &mut chunks);
                let meta = PacketMeta {
                    ts_ns: now_ms * 1_000_000,
                    src,
                    dst,
                    src_port: sp,
                    dst_port: dp,
                    vtag,
                    udp_ports: None,
                    ip_len: bytes.len() as u32 + 32,
                    bundled_pad: kind & 0x80 != 0,
                    record: match kind & 0x7f {
                        0 => None,
                        k => RecordKind::from_u8(k - 1),
                    },
                    interface: 0,
                    kdata: None,
                };
                if trace {
                    eprintln!("{} packet {meta:?} {chunks:?}", run.steps);
                }
                t.process(&meta, &chunks, &mut out);
            }
            OP_TICK => {
                step(&mut now_ms, r.u32() as i64);
                if trace {
                    eprintln!("{} tick {now_ms}", run.steps);
                }
                t.tick(now_ms * 1_000_000, &mut out);
            }
            OP_COUNTERS => {
                let (src, dst) = (r.addr(), r.addr());
                let mut key = PathKey {
                    src_addr: [0; 16],
                    dst_addr: [0; 16],
                    src_port: r.u16(),
                    dst_port: r.u16(),
                    vtag: r.u32(),
                    direction: 0,
                    ip_version: if src.is_ipv4() { 4 } else { 6 },
                    _pad: [0; 2],
                };
                for (a, k) in [(src, &mut key.src_addr), (dst, &mut key.dst_addr)] {
                    match a {
                        std::net::IpAddr::V4(a) => k[..4].copy_from_slice(&a.octets()),
                        std::net::IpAddr::V6(a) => k.copy_from_slice(&a.octets()),
                    }
                }
                let s = PathStats {
                    packets: r.u32() as u64,
                    payload_bytes: r.u32() as u64,
                    retransmissions: r.u32() as u64,
                    highest_tsn: r.u32(),
                    sack_cum_tsn: r.u32(),
                    flags: r.u8() as u32,
                    ..PathStats::default()
                };
                if trace {
                    eprintln!("{} counters {key:?} {s:?}", run.steps);
                }
                t.observe_path_stats(&key, &s, now_ms * 1_000_000, &mut out);
            }
            OP_RECORD => {
                step(&mut now_ms, r.i16() as i64);
                let n = r.u16() as usize;
                let bytes = r.bytes(n);
                if let Some(rec) = ChunkRecord::from_bytes(bytes)
                    && let Ok((meta, chunk)) = decode_rec(&rec, now_ms * 1_000_000, &mut st)
                {
                    if trace {
                        eprintln!("{} record {meta:?} {chunk:?}", run.steps);
                    }
                    t.process(&meta, std::slice::from_ref(&chunk), &mut out);
                }
            }
            _ => unreachable!(),
        }
        for e in &out {
            if trace {
                eprintln!("  -> {}", e.to_json_line());
            }
            assert!(
                e.assoc >= 1 && e.assoc <= t.stats().associations_created,
                "event for an association never created: {e:?}"
            );
            match e.event {
                EventKind::AssociationUp => {
                    assert!(up.insert(e.assoc), "association {} up twice", e.assoc);
                }
                EventKind::AssociationDown => {
                    downs += 1;
                    up.remove(&e.assoc);
                    if e.reason == Some(DownReason::Evicted) {
                        evicted += 1;
                    }
                }
                _ => {}
            }
        }
        run.events += out.len() as u64;
        out.clear();
        check_tracker(&t, &cfg, downs, evicted, &up);
    }
    let s = t.stats();
    run.downs = downs;
    run.associations = t.len();
    run.created = s.associations_created;
    run
}

/// What holds after every step, whatever the input.
fn check_tracker(t: &Tracker, cfg: &Config, downs: u64, evicted: u64, up: &std::collections::BTreeSet<u64>) {
    let s = t.stats();
    let views: Vec<_> = t.associations().collect();
    assert_eq!(views.len(), t.len(), "len() and the views agree");
    assert!(t.len() <= cfg.max_assocs, "{} associations over the cap {}", t.len(), cfg.max_assocs);
    // Every association created is tracked, ended with an event, or dropped
    // without one because it never came up: an INIT collision's loser, or
    // an eviction of one never reported up (an INIT flood must not become
    // an event flood). The `up` check below keeps the latter honest.
    assert!(evicted <= s.evictions, "more eviction events than evictions: {s:?}");
    let silent_evictions = s.evictions - evicted;
    let gone = s.associations_created.checked_sub(t.len() as u64 + downs);
    let silent = gone.unwrap_or_else(|| panic!("more ended than created: {s:?}"));
    assert!(silent <= s.init_collisions + silent_evictions, "{silent} associations vanished: {s:?}");
    for id in up {
        assert!(views.iter().any(|v| v.id == *id), "association {id} was reported up, never down, and is gone");
    }
    assert!(t.closed().count() <= cfg.keep_closed, "kept closed over the cap");
    let mut ids: Vec<u64> = views.iter().map(|v| v.id).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), views.len(), "association ids are unique");
    for v in &views {
        assert!(v.initiator.addrs.len() + v.responder.addrs.len() <= 16, "address slots over the cap: {v:?}");
        assert!(v.paths.len() <= 2 * 255, "paths over the cap");
        assert!(v.ended.is_none(), "a live association is not ended");
    }
    let mem = t.memory_bytes();
    assert!(
        mem <= memory_cap(cfg.max_assocs),
        "tracker memory {mem} over {} for {} associations",
        memory_cap(cfg.max_assocs),
        t.len()
    );
}
