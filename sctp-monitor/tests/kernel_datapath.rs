//! The real compiled programs, run with BPF_PROG_TEST_RUN on crafted frames.
//! Each test asserts the verdict (always pass: the monitor never drops) and
//! exactly what reached the ring buffer and the maps.
//!
//! Needs root (or CAP_BPF + CAP_PERFMON + CAP_NET_ADMIN). Under CI (`CI` set)
//! a missing privilege fails the test; elsewhere the test says it skipped.

mod support;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use sctp_monitor::{
    craft::{self, AsconfReq, CookiePos, ExtHeader, FrameBuilder, InitSpec, ethertype},
    kernel::{
        LoadOptions, paths,
        testrun::{Prog, TestBed},
    },
};
use sctp_monitor_common::{
    ChunkRecord, RecordKind,
    counters::{self as c},
    direction,
    record::{RECORD_FLAG_BUNDLED_PAD, RECORD_FLAG_COMPACTED, RECORD_FLAG_UDP_ENCAP},
    sctp::{chunk, param},
};

fn bed() -> Option<TestBed> {
    support::test_bed("kernel_datapath")
}

const A4: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const B4: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const A6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1);
const B6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2);
const TAG: u32 = 0xdead_beef;

fn v4() -> FrameBuilder {
    FrameBuilder::ipv4(A4, B4).sctp(36412, 36413, TAG)
}

fn v6() -> FrameBuilder {
    FrameBuilder::ipv6(A6, B6).sctp(38412, 38413, TAG)
}

/// Both programs must pass the frame; returns the records of both runs.
fn run_both(bed: &mut TestBed, frame: &[u8]) -> (Vec<ChunkRecord>, Vec<ChunkRecord>) {
    bed.pass(Prog::Ingress, frame).expect("ingress run");
    let ing = bed.drain();
    bed.pass(Prog::Egress, frame).expect("egress run");
    let eg = bed.drain();
    (ing, eg)
}

/// Like `run_both`, for cut frames: BPF_PROG_TEST_RUN refuses skbs shorter
/// than their IP header (the stack never transmits such a frame), so egress
/// runs only where the kernel builds the skb. Returns whether it did.
fn run_cut(bed: &mut TestBed, frame: &[u8]) -> (Vec<ChunkRecord>, bool) {
    bed.pass(Prog::Ingress, frame).expect("ingress run");
    let mut recs = bed.drain();
    let egress = match bed.run(Prog::Egress, frame, 1) {
        Ok((ret, _)) => {
            assert_eq!(ret, sctp_monitor::kernel::testrun::TC_ACT_UNSPEC);
            true
        }
        Err(e) if frame.len() < 14 + 8 + 40 => {
            let _ = e;
            false
        }
        Err(e) => panic!("egress test run failed on a {}-byte frame: {e:?}", frame.len()),
    };
    recs.extend(bed.drain());
    (recs, egress)
}

fn joined(r: &ChunkRecord) -> Vec<u8> {
    let (a, b) = r.segments();
    [a, b].concat()
}

/// Address parameters found by a plain TLV walk over a record's chunk bytes.
fn addrs_in(r: &ChunkRecord, fixed: usize) -> Vec<IpAddr> {
    let b = joined(r);
    let mut out = Vec::new();
    let mut off = 4 + fixed;
    while off + 4 <= b.len() {
        let t = u16::from_be_bytes([b[off], b[off + 1]]);
        let l = u16::from_be_bytes([b[off + 2], b[off + 3]]) as usize;
        if l < 4 || off + l > b.len() {
            break;
        }
        match t {
            param::IPV4_ADDRESS if l == 8 => out.push(IpAddr::from(<[u8; 4]>::try_from(&b[off + 4..off + 8]).unwrap())),
            param::IPV6_ADDRESS if l == 20 => {
                out.push(IpAddr::from(<[u8; 16]>::try_from(&b[off + 4..off + 20]).unwrap()))
            }
            param::STATE_COOKIE => panic!("the State Cookie must not reach userspace"),
            _ => {}
        }
        off += (l + 3) & !3;
    }
    out
}

fn ctr(bed: &TestBed, dir: usize, which: u32) -> u64 {
    bed.counters().expect("read counters")[dir].get(which)
}

/// Every frame run (successfully) through a program is counted in exactly
/// one outcome: their sum is the number of frames.
fn assert_accounting(bed: &TestBed) {
    let runs = bed.runs.get();
    for (dir, k) in bed.counters().unwrap().iter().enumerate() {
        let outcomes: u64 = c::PACKET_OUTCOMES.iter().map(|&o| k.get(o)).sum();
        assert_eq!(outcomes, runs[dir], "direction {dir}: {k:?}");
    }
}

#[test]
fn every_control_chunk_type_makes_one_record_with_its_fields() {
    let Some(mut bed) = bed() else { return };
    let hb_info = craft::param(param::HEARTBEAT_INFO, &[7u8; 44]);
    let cases: Vec<(u8, Vec<u8>)> = vec![
        (chunk::INIT, craft::init(&InitSpec::new(0x1111, 100).addrs(&[A4.into(), B4.into()]))),
        (chunk::INIT_ACK, craft::init_ack(&InitSpec::new(0x2222, 200).addrs(&[B4.into()]))),
        (chunk::HEARTBEAT, craft::heartbeat(&hb_info)),
        (chunk::HEARTBEAT_ACK, craft::heartbeat_ack(&hb_info)),
        (chunk::ABORT, craft::abort(true, &[])),
        (chunk::SHUTDOWN, craft::shutdown(99)),
        (chunk::SHUTDOWN_ACK, craft::shutdown_ack()),
        (chunk::SHUTDOWN_COMPLETE, craft::shutdown_complete(false)),
        (chunk::COOKIE_ACK, craft::cookie_ack()),
        (chunk::ERROR, craft::error(&[craft::error_cause(1, &[0, 1, 0, 0])])),
        (chunk::ASCONF, craft::asconf(5, A4.into(), &[AsconfReq::Add { corr_id: 1, addr: B4.into() }])),
        (chunk::ASCONF_ACK, craft::asconf_ack(5, &[])),
        (chunk::RECONFIG, craft::reconfig(&[craft::param(13, &[0, 0, 0, 1])])),
        (chunk::FORWARD_TSN, craft::forward_tsn(42, &[(1, 2)])),
        (chunk::I_FORWARD_TSN, craft::raw_chunk(chunk::I_FORWARD_TSN, 0, &[0, 0, 0, 42])),
    ];
    for (t, ch) in cases {
        let frame = v4().chunk(ch.clone()).build();
        let (ing, eg) = run_both(&mut bed, &frame);
        for (recs, dir) in [(&ing, direction::INGRESS), (&eg, direction::EGRESS)] {
            assert_eq!(recs.len(), 1, "chunk type {t}: one record per run");
            let r = &recs[0];
            assert_eq!(r.kind(), Some(RecordKind::Control));
            assert_eq!(r.chunk_type, t);
            assert_eq!(r.chunk_flags, ch[1]);
            assert_eq!(r.chunk_len as usize, u16::from_be_bytes([ch[2], ch[3]]) as usize);
            assert_eq!(r.direction, dir);
            assert_eq!(r.ip_version, 4);
            assert_eq!(&r.src_addr[..4], &A4.octets());
            assert_eq!(&r.dst_addr[..4], &B4.octets());
            assert_eq!(&r.src_addr[4..], &[0; 12]);
            assert_eq!((r.src_port, r.dst_port, r.vtag), (36412, 36413, TAG));
            assert!(r.ts_ns > 0);
            assert_eq!(r.ip_len as usize, frame.len() - 14);
            // The chunk's bytes, exactly (none of these has a cookie).
            assert_eq!(joined(r), ch[..r.chunk_len as usize].to_vec(), "chunk type {t}");
        }
    }
    assert_eq!(ctr(&bed, 0, c::SCTP_PACKETS), 15);
    assert_eq!(ctr(&bed, 1, c::SCTP_PACKETS), 15);
    assert_eq!(ctr(&bed, 0, c::RINGBUF_RECORDS), 15);
    assert_eq!(ctr(&bed, 0, c::RINGBUF_LOST), 0);
    assert_accounting(&bed);
}

#[test]
fn count_only_chunks_make_no_record_but_are_counted() {
    let Some(mut bed) = bed() else { return };
    for t in [chunk::ECNE, chunk::CWR, chunk::AUTH, chunk::PAD, 0x3f, 0xff] {
        let frame = v4().chunk(craft::raw_chunk(t, 0, &[0, 0, 0, 1])).build();
        let (ing, eg) = run_both(&mut bed, &frame);
        assert!(ing.is_empty() && eg.is_empty(), "type {t} must not be sent");
    }
    let chunks = sctp_monitor::kernel::counters::read_chunks(&bed.ebpf).unwrap();
    for t in [chunk::ECNE, chunk::CWR, chunk::AUTH, chunk::PAD, 0x3f, 0xff] {
        for dir in 0..2u8 {
            let n = chunks.iter().find(|((_, d, ty), _)| *d == dir && *ty == t).map(|(_, n)| *n);
            assert_eq!(n, Some(1), "type {t} direction {dir}");
        }
    }
    assert_eq!(ctr(&bed, 0, c::CHUNKS), 6);
}

#[test]
fn cookie_echo_is_reported_without_its_cookie() {
    let Some(mut bed) = bed() else { return };
    let cookie = vec![0xAB; 300];
    let frame = v4().chunk(craft::cookie_echo(&cookie)).chunk(craft::data(1, 0, 0, 60, b"hello")).build();
    let (ing, _) = run_both(&mut bed, &frame);
    let ce: Vec<_> = ing.iter().filter(|r| r.kind() == Some(RecordKind::CookieEcho)).collect();
    assert_eq!(ce.len(), 1);
    assert_eq!(ce[0].chunk_len, 304);
    assert_eq!(joined(ce[0]), vec![chunk::COOKIE_ECHO, 0, 0x01, 0x30]);
    // The bundled DATA is the first on its path: a notification too.
    assert!(ing.iter().any(|r| r.kind() == Some(RecordKind::DataFirst)));
}

#[test]
fn init_ack_addresses_survive_a_large_cookie_in_either_place() {
    let Some(mut bed) = bed() else { return };
    let addrs: Vec<IpAddr> = vec![
        B4.into(),
        Ipv4Addr::new(10, 9, 9, 9).into(),
        B6.into(),
        Ipv6Addr::new(0xfd00, 9, 0, 0, 0, 0, 0, 9).into(),
    ];
    for pos in [CookiePos::Before, CookiePos::After] {
        let spec = InitSpec::new(0x5151, 9).addrs(&addrs).cookie(600, pos);
        let frame = v4().chunk(craft::init_ack(&spec)).build();
        let (ing, eg) = run_both(&mut bed, &frame);
        for r in ing.iter().chain(eg.iter()) {
            assert_eq!(r.chunk_type, chunk::INIT_ACK);
            assert!(r.flags & RECORD_FLAG_COMPACTED != 0, "{pos:?}: cookie cut out");
            assert!(r.chunk_len > 600);
            assert_eq!(addrs_in(r, 16), addrs, "{pos:?}");
            // Fixed fields intact: initiate tag.
            assert_eq!(&joined(r)[4..8], &0x5151u32.to_be_bytes());
        }
    }
}

#[test]
fn init_with_eight_addresses_reaches_userspace_whole() {
    let Some(mut bed) = bed() else { return };
    let addrs: Vec<IpAddr> = (1..=8).map(|i| IpAddr::from(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, i))).collect();
    let frame = v6().chunk(craft::init(&InitSpec::new(0x77, 1).addrs(&addrs))).build();
    let (ing, _) = run_both(&mut bed, &frame);
    assert_eq!(ing.len(), 1);
    assert_eq!(ing[0].ip_version, 6);
    assert_eq!(ing[0].src_addr, A6.octets());
    assert_eq!(addrs_in(&ing[0], 16), addrs);
}

#[test]
fn heartbeat_carries_its_full_info_and_pad_marks_a_pmtu_probe() {
    let Some(mut bed) = bed() else { return };
    let info: Vec<u8> = (0..52u8).collect();
    let hb = craft::heartbeat(&craft::param(param::HEARTBEAT_INFO, &info));
    let frame = v4().chunk(hb.clone()).build();
    let (ing, _) = run_both(&mut bed, &frame);
    assert_eq!(ing.len(), 1);
    assert_eq!(joined(&ing[0]), hb);
    assert_eq!(ing[0].flags & RECORD_FLAG_BUNDLED_PAD, 0);

    let probe = v4().chunk(hb.clone()).chunk(craft::pad(1200)).build();
    let (ing, _) = run_both(&mut bed, &probe);
    assert_eq!(ing.len(), 1);
    assert_eq!(ing[0].chunk_type, chunk::HEARTBEAT);
    assert!(ing[0].flags & RECORD_FLAG_BUNDLED_PAD != 0, "HEARTBEAT + PAD is a PMTU probe");
    assert_eq!(joined(&ing[0]), hb);
}

#[test]
fn data_and_sack_are_summarised_per_path_not_sent_one_by_one() {
    let Some(mut bed) = bed() else { return };
    // First DATA on the path: one notification.
    let f1 = v4().chunk(craft::data(1000, 1, 0, 60, &[1; 100])).build();
    bed.pass(Prog::Ingress, &f1).unwrap();
    let recs = bed.drain();
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].kind(), Some(RecordKind::DataFirst));
    assert_eq!(recs[0].chunk_type, chunk::DATA);
    assert_eq!(recs[0].chunk_len, 116);
    // Header only: TSN, stream, SSN, PPID; no payload bytes.
    assert_eq!(recs[0].segments().0.len(), 16);
    assert_eq!(&recs[0].segments().0[4..8], &1000u32.to_be_bytes());
    // More DATA on the same path: silent.
    let f2 = v4().chunks((1001..1005).map(|t| craft::data(t, 1, 0, 60, &[2; 50]))).build();
    bed.pass(Prog::Ingress, &f2).unwrap();
    assert!(bed.drain().is_empty(), "no records for new DATA on a known path");
    // A retransmission of 1002 (not above the highest): one record, the
    // kernel's verdict with it (a retransmission timeout is a path error).
    let f3 = v4().chunk(craft::data(1002, 1, 0, 60, &[2; 50])).build();
    bed.pass(Prog::Ingress, &f3).unwrap();
    let recs = bed.drain();
    assert_eq!(recs.iter().map(|r| r.kind()).collect::<Vec<_>>(), vec![Some(RecordKind::DataRetransmit)]);
    assert_eq!((recs[0].rtx_chunks, recs[0].high_rtx_tsn), (1, 1002));
    assert_eq!(recs[0].flags & sctp_monitor_common::record::RECORD_FLAG_NEW_DATA, 0);
    // SACK from the peer on the reverse path.
    let s = FrameBuilder::ipv4(B4, A4)
        .sctp(36413, 36412, 0x1234)
        .chunk(craft::sack(1004, 5000, &[(2, 3)], &[1001, 1002]))
        .build();
    bed.pass(Prog::Ingress, &s).unwrap();
    // The first SACK of its path: one record (an agent started mid-flight
    // learns every path from its first packet); the next is silent.
    let recs = bed.drain();
    assert_eq!(recs.iter().map(|r| r.kind()).collect::<Vec<_>>(), vec![Some(RecordKind::SackFirst)]);
    assert_eq!(&recs[0].segments().0[4..8], &1004u32.to_be_bytes());
    bed.pass(Prog::Ingress, &s).unwrap();
    assert!(bed.drain().is_empty(), "no record for a later SACK");

    let all = paths::read_all(&bed.ebpf).unwrap();
    assert_eq!(all.len(), 2);
    let (_, fwd) = all.iter().find(|(k, _)| k.vtag == TAG).unwrap();
    assert_eq!(fwd.packets, 3);
    assert_eq!(fwd.data_chunks, 6);
    assert_eq!(fwd.payload_bytes, 100 + 4 * 50 + 50);
    assert_eq!(fwd.highest_tsn, 1004);
    assert_eq!(fwd.retransmissions, 1);
    assert_eq!(fwd.bytes as usize, (f1.len() + f2.len() + f3.len()) - 3 * 14);
    assert!(fwd.first_ns > 0 && fwd.last_ns >= fwd.first_ns);
    let (k, rev) = all.iter().find(|(k, _)| k.vtag == 0x1234).unwrap();
    assert_eq!(k.direction, direction::INGRESS);
    assert_eq!((rev.sacks, rev.sack_cum_tsn, rev.sack_a_rwnd, rev.gap_blocks, rev.dup_tsns), (2, 1004, 5000, 2, 4));
    assert_eq!(rev.data_chunks, 0);
}

#[test]
fn a_sack_that_closes_or_opens_the_window_makes_a_record_and_the_smallest_window_is_kept() {
    let Some(mut bed) = bed() else { return };
    let sack = |cum: u32, a_rwnd: u32| {
        FrameBuilder::ipv4(B4, A4).sctp(36413, 36412, 0x1234).chunk(craft::sack(cum, a_rwnd, &[], &[])).build()
    };
    let mut kinds = Vec::new();
    for (cum, a_rwnd) in [(10, 8000), (11, 0), (11, 0), (12, 0), (13, 3000), (14, 9000), (15, 0)] {
        bed.pass(Prog::Ingress, &sack(cum, a_rwnd)).unwrap();
        let recs = bed.drain();
        assert!(recs.len() <= 1, "{recs:?}");
        if let Some(r) = recs.first() {
            assert_eq!(r.chunk_type, chunk::SACK);
            assert_eq!(&r.segments().0[4..12], &[cum.to_be_bytes(), a_rwnd.to_be_bytes()].concat()[..]);
        }
        kinds.push(recs.first().and_then(|r| r.kind()));
    }
    use RecordKind::{SackChange, SackFirst};
    assert_eq!(kinds, vec![Some(SackFirst), Some(SackChange), None, None, Some(SackChange), None, Some(SackChange)]);
    // Gap reports beginning and ending are changes too (the first also opens
    // the window); more of them not.
    let gapped = |cum: u32, gaps: &[(u16, u16)]| {
        FrameBuilder::ipv4(B4, A4).sctp(36413, 36412, 0x1234).chunk(craft::sack(cum, 9000, gaps, &[])).build()
    };
    let mut kinds = Vec::new();
    for (cum, gaps) in [(16, &[(2u16, 2u16)][..]), (16, &[(2, 3)][..]), (19, &[][..]), (20, &[][..])] {
        bed.pass(Prog::Ingress, &gapped(cum, gaps)).unwrap();
        kinds.push(bed.drain().first().and_then(|r| r.kind()));
    }
    assert_eq!(kinds, vec![Some(SackChange), None, Some(SackChange), None]);
    let all = paths::read_all(&bed.ebpf).unwrap();
    let (_, rev) = all.iter().find(|(k, _)| k.vtag == 0x1234).unwrap();
    assert_eq!((rev.sacks, rev.sack_a_rwnd, rev.sack_a_rwnd_min), (11, 9000, 0));
    // The state is the receiver's, not a path's: a window closed by a SACK
    // on one path opens with a SACK on the other, even when that path's
    // last SACK had an open window.
    let on = |src: Ipv4Addr, dst: Ipv4Addr, a_rwnd: u32| {
        FrameBuilder::ipv4(src, dst).sctp(40000, 40001, 0x4444).chunk(craft::sack(1, a_rwnd, &[], &[])).build()
    };
    let (x, y) = (
        (Ipv4Addr::new(10, 9, 1, 2), Ipv4Addr::new(10, 9, 1, 1)),
        (Ipv4Addr::new(10, 9, 2, 2), Ipv4Addr::new(10, 9, 2, 1)),
    );
    let mut kinds = Vec::new();
    for (p, a_rwnd) in [(y, 5000), (x, 5000), (x, 0), (y, 4000), (y, 0), (x, 0), (x, 100)] {
        bed.pass(Prog::Ingress, &on(p.0, p.1, a_rwnd)).unwrap();
        kinds.push(bed.drain().first().and_then(|r| r.kind()));
    }
    assert_eq!(
        kinds,
        vec![
            Some(SackFirst),
            Some(SackFirst),
            Some(SackChange),
            Some(SackChange),
            Some(SackChange),
            None,
            Some(SackChange)
        ]
    );
    // A zero window in a path's first SACK is a record too (bundled with
    // DATA, so not the first-SACK record).
    let f = FrameBuilder::ipv4(B4, A4)
        .sctp(36413, 36412, 0x5678)
        .chunk(craft::sack(20, 0, &[], &[]))
        .chunk(craft::data(7, 0, 0, 18, &[0; 8]))
        .build();
    bed.pass(Prog::Ingress, &f).unwrap();
    let kinds: Vec<_> = bed.drain().iter().map(|r| r.kind()).collect();
    assert!(kinds.contains(&Some(SackChange)), "{kinds:?}");
}

#[test]
fn window_events_and_path_quality_live_are_those_of_the_capture() {
    use sctp_monitor::decode::{DecodeStats, LinkType, decode_record, parse_frame};
    use sctp_monitor::event::EventKind;
    use sctp_monitor::tracker::{Config, Tracker};
    let Some(mut bed) = bed() else { return };
    const T0: u64 = 1_700_000_000_000_000_000;
    let (ta, tb) = (0x0a0a_0a0a, 0x0b0b_0b0b);
    let a2b = || FrameBuilder::ipv4(A4, B4).sctp(5000, 3868, tb);
    let b2a = || FrameBuilder::ipv4(B4, A4).sctp(3868, 5000, ta);
    let mut frames = vec![
        FrameBuilder::ipv4(A4, B4).sctp(5000, 3868, 0).chunk(craft::init(&InitSpec::new(ta, 1))).build(),
        b2a().chunk(craft::init_ack(&InitSpec::new(tb, 1))).build(),
        a2b().chunk(craft::cookie_echo(&[1; 16])).build(),
        b2a().chunk(craft::cookie_ack()).build(),
    ];
    // A's DATA, B's SACKs: the window shrinks, closes, stays closed
    // through probes, opens; a gap and a duplicate on the way.
    for (tsn, (a_rwnd, gaps, dups)) in (1..).zip([
        (60_000, vec![], vec![]),
        (30_000, vec![(2, 2)], vec![]),
        (0, vec![], vec![1]),
        (0, vec![], vec![]),
        (20_000, vec![], vec![]),
        (0, vec![], vec![]),
        (65_000, vec![], vec![]),
    ]) {
        frames.push(a2b().chunk(craft::data(tsn, 0, 0, 18, &[0; 64])).build());
        frames.push(b2a().chunk(craft::sack(tsn, a_rwnd, &gaps, &dups)).build());
    }
    // Heartbeats both ways, answered (RTT histograms), and an ERROR.
    for i in 0..3u8 {
        frames.push(a2b().chunk(craft::heartbeat(&[i; 8])).build());
        frames.push(b2a().chunk(craft::heartbeat_ack(&[i; 8])).build());
        frames.push(b2a().chunk(craft::heartbeat(&[9, i])).build());
        frames.push(a2b().chunk(craft::heartbeat_ack(&[9, i])).build());
    }
    frames.push(b2a().chunk(craft::error(&[craft::error_cause(5, &[])])).build());
    let step = 10_000_000;
    let mut offline = Tracker::new(Config::default());
    let mut off_ev = Vec::new();
    let mut live = Tracker::new(Config::default());
    let mut live_ev = Vec::new();
    let mut st = DecodeStats::default();
    for (i, f) in frames.iter().enumerate() {
        let ts = T0 + i as u64 * step;
        let p = parse_frame(LinkType::Ethernet, f, ts, 9899, &mut st).unwrap().unwrap();
        offline.process(&p.meta, &p.chunks, &mut off_ev);
        // A's packets leave the monitored host, B's arrive.
        let prog = if i % 2 == 0 { Prog::Egress } else { Prog::Ingress };
        bed.pass(prog, f).unwrap();
        for r in bed.drain() {
            let (m, c) = decode_record(&r, ts, &mut st).expect("decodes");
            live.process(&m, std::slice::from_ref(&c), &mut live_ev);
        }
        for (k, s) in paths::read_all(&bed.ebpf).unwrap() {
            live.observe_path_stats(&k, &s, ts, &mut live_ev);
        }
    }
    let windows = |ev: &[sctp_monitor::event::Event]| -> Vec<String> {
        ev.iter()
            .filter(|e| matches!(e.event, EventKind::WindowZero | EventKind::WindowOpen))
            .map(|e| e.to_json_line())
            .collect()
    };
    let want = windows(&off_ev);
    assert_eq!(want.len(), 4, "closed, opened, closed, opened: {want:?}");
    assert_eq!(windows(&live_ev), want, "live window events against the capture's");
    let quality = |t: &Tracker| -> Vec<_> {
        t.associations().flat_map(|a| a.paths.into_iter().map(|p| (p.src, p.dst, p.quality))).collect()
    };
    let q = quality(&offline);
    let b = q.iter().find(|(s, _, _)| *s == IpAddr::V4(B4)).expect("B's path").2;
    assert_eq!((b.sacks, b.gap_blocks, b.dup_tsns, b.a_rwnd, b.a_rwnd_min), (7, 1, 1, 65_000, 0));
    assert_eq!(quality(&live), q, "live path quality against the capture's");
    let hb = q.iter().map(|(_, _, q)| q.rtt.count()).sum::<u64>();
    assert_eq!(hb, 6, "every answered heartbeat in a path's RTT histogram: {q:?}");
    // Chunks by type, live as in the capture.
    let chunks = |t: &Tracker| -> Vec<Vec<(u8, u64)>> { t.associations().map(|a| a.chunks).collect() };
    let want = chunks(&offline);
    assert_eq!(want, [vec![(0, 7), (1, 1), (2, 1), (3, 7), (4, 6), (5, 6), (9, 1), (10, 1), (11, 1)]]);
    assert_eq!(chunks(&live), want, "live chunks by type against the capture's");
}

#[test]
fn new_data_on_another_path_is_a_failover_candidate_but_a_retransmission_is_not() {
    let Some(mut bed) = bed() else { return };
    let p1 = |tsn| FrameBuilder::ipv4(A4, B4).sctp(5000, 5000, TAG).chunk(craft::data(tsn, 0, 0, 18, &[0; 40])).build();
    let p2 = |tsn| {
        FrameBuilder::ipv4(Ipv4Addr::new(10, 1, 0, 1), Ipv4Addr::new(10, 1, 0, 2))
            .sctp(5000, 5000, TAG)
            .chunk(craft::data(tsn, 0, 0, 18, &[0; 40]))
            .build()
    };
    bed.pass(Prog::Egress, &p1(10)).unwrap();
    bed.pass(Prog::Egress, &p1(11)).unwrap();
    assert_eq!(bed.drain().iter().map(|r| r.kind()).collect::<Vec<_>>(), vec![Some(RecordKind::DataFirst)]);
    // Retransmission of 11 to the alternate path: first DATA there, not a path change.
    bed.pass(Prog::Egress, &p2(11)).unwrap();
    let r = bed.drain();
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].kind(), Some(RecordKind::DataFirst));
    // New DATA (12) on the alternate path: a failover candidate.
    bed.pass(Prog::Egress, &p2(12)).unwrap();
    let r = bed.drain();
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].kind(), Some(RecordKind::DataPathChange));
    assert_eq!(&r[0].dst_addr[..4], &[10, 1, 0, 2]);
    assert_eq!(&r[0].segments().0[4..8], &12u32.to_be_bytes());
    // More new DATA there: silent.
    bed.pass(Prog::Egress, &p2(13)).unwrap();
    assert!(bed.drain().is_empty());
    // Back to path 1: another candidate.
    bed.pass(Prog::Egress, &p1(14)).unwrap();
    assert_eq!(bed.drain()[0].kind(), Some(RecordKind::DataPathChange));
}

#[test]
fn tsn_wrap_is_new_data_not_a_retransmission() {
    let Some(bed) = bed() else { return };
    let f = |tsn| v4().chunk(craft::data(tsn, 0, 0, 46, &[0; 8])).build();
    for tsn in [u32::MAX - 1, u32::MAX, 0, 1] {
        bed.pass(Prog::Ingress, &f(tsn)).unwrap();
    }
    let all = paths::read_all(&bed.ebpf).unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].1.retransmissions, 0);
    assert_eq!(all[0].1.highest_tsn, 1);
}

#[test]
fn sixteen_chunk_bundle_and_i_data() {
    let Some(mut bed) = bed() else { return };
    let frame = v4().chunks((0..16).map(|t| craft::data(500 + t, 0, t as u16, 60, &[9; 20]))).build();
    bed.pass(Prog::Ingress, &frame).unwrap();
    let idata = v6().chunk(craft::i_data(0x03, 77, 2, 1, 60, &[1; 33])).build();
    bed.pass(Prog::Ingress, &idata).unwrap();
    let recs = bed.drain();
    assert_eq!(recs.len(), 2, "one first-DATA notification per path");
    let i = recs.iter().find(|r| r.chunk_type == chunk::I_DATA).unwrap();
    assert_eq!(i.segments().0.len(), 20);
    let all = paths::read_all(&bed.ebpf).unwrap();
    let v4p = all.iter().find(|(k, _)| k.ip_version == 4).unwrap();
    assert_eq!((v4p.1.data_chunks, v4p.1.highest_tsn, v4p.1.payload_bytes), (16, 515, 16 * 20));
    let v6p = all.iter().find(|(k, _)| k.ip_version == 6).unwrap();
    assert_eq!((v6p.1.data_chunks, v6p.1.payload_bytes), (1, 33));
    assert_eq!(ctr(&bed, 0, c::CHUNKS), 17);
}

#[test]
fn encapsulations_vlan_qinq_ip_options_ipv6_extensions_and_udp() {
    let Some(mut bed) = bed() else { return };
    let hb = || craft::heartbeat(&craft::param(param::HEARTBEAT_INFO, &[1; 8]));
    let frames: Vec<(&str, Vec<u8>, u8)> = vec![
        ("vlan", v4().vlan(ethertype::VLAN, 10).chunk(hb()).build(), 4),
        ("qinq", v4().vlan(ethertype::QINQ, 100).vlan(ethertype::VLAN, 10).chunk(hb()).build(), 4),
        ("ipv4 options", v4().ip_options(&[1; 40]).chunk(hb()).build(), 4),
        (
            "ipv6 ext",
            v6().ext_header(ExtHeader::HopByHop(0))
                .ext_header(ExtHeader::Routing(2))
                .ext_header(ExtHeader::DestOpts(1))
                .ext_header(ExtHeader::Fragment { offset: 0, more: false, id: 9 })
                .chunk(hb())
                .build(),
            6,
        ),
        ("udp v4", v4().udp_encap(9899, 9899).chunk(hb()).build(), 4),
        ("udp v6 vlan", v6().vlan(ethertype::VLAN, 3).udp_encap(40000, 9899).chunk(hb()).build(), 6),
    ];
    for (name, frame, ipv) in &frames {
        let (ing, eg) = run_both(&mut bed, frame);
        for r in ing.iter().chain(eg.iter()) {
            assert_eq!(r.chunk_type, chunk::HEARTBEAT, "{name}");
            assert_eq!(r.ip_version, *ipv, "{name}");
            assert_eq!(r.vtag, TAG, "{name}");
            assert_eq!(joined(r), hb(), "{name}");
        }
        assert_eq!((ing.len(), eg.len()), (1, 1), "{name}");
        if name.starts_with("udp") {
            assert!(ing[0].flags & RECORD_FLAG_UDP_ENCAP != 0);
            assert_eq!(ing[0].udp_dst_port, 9899);
        }
    }
    assert_eq!(ctr(&bed, 0, c::UDP_ENCAP_PACKETS), 2);
    // UDP to another port is not SCTP.
    let other = v4().udp_encap(9898, 53).chunk(hb()).build();
    let (ing, _) = run_both(&mut bed, &other);
    assert!(ing.is_empty());
    assert_eq!(ctr(&bed, 0, c::NOT_SCTP), 1);
    assert_accounting(&bed);
}

#[test]
fn udp_encap_port_is_set_at_load_time() {
    if unsafe { libc::geteuid() } != 0 {
        return;
    }
    let mut opts = LoadOptions::default();
    opts.config.udp_encap_port = 12345;
    let mut bed = TestBed::new(opts).unwrap();
    let hb = craft::heartbeat(&craft::param(param::HEARTBEAT_INFO, &[1; 8]));
    let (ing, _) = run_both(&mut bed, &v4().udp_encap(12345, 40000).chunk(hb.clone()).build());
    assert_eq!(ing.len(), 1);
    let (ing, _) = run_both(&mut bed, &v4().udp_encap(9899, 9899).chunk(hb).build());
    assert!(ing.is_empty(), "9899 is not SCTP when the port is 12345");
}

#[test]
fn non_sctp_and_non_first_fragments_pass_and_are_counted() {
    let Some(mut bed) = bed() else { return };
    let hb = craft::heartbeat(&craft::param(param::HEARTBEAT_INFO, &[1; 8]));
    let frag4 = v4().fragment(100, false).chunk(hb.clone()).build();
    let frag6 = v6().ext_header(ExtHeader::Fragment { offset: 8, more: true, id: 1 }).chunk(hb.clone()).build();
    let mut arp = vec![0xff; 12];
    arp.extend_from_slice(&[0x08, 0x06]);
    arp.extend_from_slice(&[0; 28]);
    for f in [&frag4, &frag6, &arp] {
        let (ing, eg) = run_both(&mut bed, f);
        assert!(ing.is_empty() && eg.is_empty());
    }
    assert_eq!(ctr(&bed, 0, c::NON_FIRST_FRAGMENT), 2);
    assert_eq!(ctr(&bed, 1, c::NON_FIRST_FRAGMENT), 2);
    assert_eq!(ctr(&bed, 0, c::NOT_SCTP), 1);
    assert_accounting(&bed);
}

#[test]
fn truncated_at_every_offset_of_the_headers() {
    let Some(mut bed) = bed() else { return };
    let hb = craft::heartbeat(&craft::param(param::HEARTBEAT_INFO, &[1; 8]));
    let frames = [
        v4().vlan(ethertype::VLAN, 1).chunk(hb.clone()).build(),
        v6().ext_header(ExtHeader::HopByHop(1)).chunk(hb.clone()).build(),
        v4().udp_encap(9899, 9899).chunk(hb.clone()).build(),
    ];
    let mut runs = 0u64;
    for f in &frames {
        // Cut inside every header, down to the Ethernet header (test_run
        // refuses frames shorter than 14 bytes).
        for cut in 14..f.len() {
            let t = &f[..cut];
            let (recs, _) = run_cut(&mut bed, t);
            assert!(recs.is_empty(), "cut at {cut}: a cut frame sends nothing");
            runs += 1;
        }
    }
    let k = bed.counters().unwrap();
    assert_eq!(k[0].get(c::PACKETS), runs);
    assert_eq!(k[0].get(c::SCTP_PACKETS), 0, "every cut frame's IP length is past its end");
    assert_eq!(k[0].get(c::MALFORMED_TRUNCATED), runs);
    assert_eq!(ctr(&bed, 0, c::RINGBUF_RECORDS), 0);
    assert_accounting(&bed);
}

#[test]
fn malformed_chunks_stop_the_walk_safely() {
    let Some(mut bed) = bed() else { return };
    let hb = craft::heartbeat(&craft::param(param::HEARTBEAT_INFO, &[1; 8]));
    // Zero-length chunk after a valid one.
    let zero = v4().chunk(hb.clone()).chunk(craft::raw_chunk_with_len(chunk::DATA, 0, 0, &[0; 12])).build();
    let (ing, _) = run_both(&mut bed, &zero);
    assert_eq!(ing.len(), 1, "the valid chunk before it is still reported");
    // Length past the end.
    let past = v4().chunk(craft::raw_chunk_with_len(chunk::HEARTBEAT, 0, 400, &[0; 8])).build();
    let (ing, _) = run_both(&mut bed, &past);
    assert!(ing.is_empty());
    // Length 3.
    let three = v4().chunk(craft::raw_chunk_with_len(chunk::ABORT, 0, 3, &[])).build();
    let (ing, _) = run_both(&mut bed, &three);
    assert!(ing.is_empty());
    assert_eq!(ctr(&bed, 0, c::MALFORMED_CHUNK_LEN), 3);
    assert_eq!(ctr(&bed, 0, c::SCTP_PACKETS), 3);

    // A hundred tiny chunks: the bound is walked, the rest counted.
    let tiny = v4().chunks((0..100).map(|_| craft::raw_chunk(chunk::CWR, 0, &[]))).build();
    let (ing, _) = run_both(&mut bed, &tiny);
    assert!(ing.is_empty());
    assert_eq!(ctr(&bed, 0, c::TOO_MANY_CHUNKS), 1);
    assert_eq!(ctr(&bed, 1, c::TOO_MANY_CHUNKS), 1);
    assert_accounting(&bed);
}

#[test]
fn bad_ip_headers_and_extension_chains_past_the_bound() {
    let Some(mut bed) = bed() else { return };
    let hb = craft::heartbeat(&craft::param(param::HEARTBEAT_INFO, &[1; 8]));
    let mut bad_ihl = v4().chunk(hb.clone()).build();
    bad_ihl[14] = 0x44; // IHL 4 (16 bytes): invalid.
    let mut bad_total = v4().chunk(hb.clone()).build();
    bad_total[16..18].copy_from_slice(&10u16.to_be_bytes()); // total < IHL
    let mut chain = v6();
    for _ in 0..9 {
        chain = chain.ext_header(ExtHeader::DestOpts(0));
    }
    let long = chain.chunk(hb.clone()).build();
    for f in [&bad_ihl, &bad_total, &long] {
        let (ing, eg) = run_both(&mut bed, f);
        assert!(ing.is_empty() && eg.is_empty());
    }
    assert_eq!(ctr(&bed, 0, c::MALFORMED_IP_HEADER), 2);
    assert_eq!(ctr(&bed, 0, c::MALFORMED_EXT_HDR_LIMIT), 1);
    assert_accounting(&bed);
}

#[test]
fn random_frames_always_pass_and_counters_add_up() {
    let Some(mut bed) = bed() else { return };
    // A small deterministic xorshift fuzz over valid-looking headers.
    let mut rng = craft::XorShift::new(0x9E37_79B9_7F4A_7C15);
    let mut next = || rng.next_u64();
    let base = v4().chunk(craft::data(1, 0, 0, 0, &[0; 64])).build();
    let mut egress_runs = 0u64;
    for i in 0..3000 {
        let mut f = base.clone();
        let flips = 1 + (next() % 8) as usize;
        for _ in 0..flips {
            let at = 14 + (next() as usize % (f.len() - 14));
            f[at] = next() as u8;
        }
        if i % 3 == 0 {
            let cut = 14 + next() as usize % (f.len() - 14);
            f.truncate(cut);
        }
        if run_cut(&mut bed, &f).1 {
            egress_runs += 1;
        }
    }
    let k = bed.counters().unwrap();
    assert_eq!(k[0].get(c::PACKETS), 3000);
    assert_eq!(k[1].get(c::PACKETS), egress_runs);
    assert!(egress_runs > 1500);
    assert_accounting(&bed);
}

#[test]
fn an_association_slot_taken_over_is_counted_and_starts_again() {
    if bed().is_none() {
        return;
    }
    // One ASSOC_DIRS slot: every association direction shares it.
    let mut bed = TestBed::new(LoadOptions { assoc_dir_entries: 1, ..LoadOptions::default() }).unwrap();
    let x = |tsn, last: u8| {
        FrameBuilder::ipv4(A4, Ipv4Addr::new(10, 0, 0, last))
            .sctp(5000, 5000, TAG)
            .chunk(craft::data(tsn, 0, 0, 18, &[0; 40]))
            .build()
    };
    let y = |tsn| {
        FrameBuilder::ipv4(A4, B4).sctp(6000, 6000, 0x1234_5678).chunk(craft::data(tsn, 0, 0, 18, &[0; 8])).build()
    };
    let replaced = |bed: &TestBed| bed.counters().unwrap()[0].get(c::ASSOC_DIR_REPLACED);
    bed.pass(Prog::Ingress, &x(10, 2)).unwrap();
    bed.pass(Prog::Ingress, &x(10, 2)).unwrap();
    assert_eq!(replaced(&bed), 0, "the first owner of an empty slot replaces nothing");
    bed.pass(Prog::Ingress, &y(500)).unwrap();
    assert_eq!(replaced(&bed), 1);
    // x takes the slot back and starts again: new DATA on its other path is
    // not a path change (the slot forgot where x's new DATA went).
    bed.drain();
    bed.pass(Prog::Ingress, &x(11, 3)).unwrap();
    assert_eq!(replaced(&bed), 2);
    assert_eq!(bed.drain().iter().map(|r| r.kind()).collect::<Vec<_>>(), vec![Some(RecordKind::DataFirst)]);
    // TSN 10 again: a retransmission once the slot knows 11.
    bed.drain();
    bed.pass(Prog::Ingress, &x(10, 2)).unwrap();
    let all = paths::read_all(&bed.ebpf).unwrap();
    let x2 = all.iter().find(|(k, _)| k.dst_addr[3] == 2 && k.vtag == TAG).unwrap();
    assert_eq!((x2.1.data_chunks, x2.1.retransmissions), (3, 2));
    assert_eq!(bed.drain().iter().map(|r| r.kind()).collect::<Vec<_>>(), vec![Some(RecordKind::DataRetransmit)]);
    // With the slot its own again, x's path change is seen.
    bed.pass(Prog::Ingress, &x(12, 2)).unwrap();
    assert_eq!(bed.drain().iter().map(|r| r.kind()).collect::<Vec<_>>(), vec![Some(RecordKind::DataPathChange)]);
}

#[test]
fn a_path_slot_taken_over_hands_its_totals_on_and_none_is_lost() {
    if bed().is_none() {
        return;
    }
    support::pin_to_cpu0();
    // One PATH_SLOTS slot: the two paths take it from each other.
    let mut bed = TestBed::new(LoadOptions { path_slots: 1, ..LoadOptions::default() }).unwrap();
    let x =
        |tsn| FrameBuilder::ipv4(A4, B4).sctp(5000, 5000, 0x1111).chunk(craft::data(tsn, 0, 0, 18, &[0; 40])).build();
    let y = |tsn| {
        FrameBuilder::ipv4(B4, A4)
            .sctp(6000, 6000, 0x2222)
            .chunk(craft::data(tsn, 0, 0, 18, &[0; 8]))
            .chunk(craft::sack(tsn, 4000, &[(2, 3)], &[]))
            .build()
    };
    let takeovers = |bed: &TestBed| bed.counters().unwrap()[0].get(c::PATH_SLOT_TAKEOVERS);
    for tsn in 10..13 {
        bed.pass(Prog::Ingress, &x(tsn)).unwrap();
    }
    assert_eq!(takeovers(&bed), 0, "the first path in an empty slot takes nothing over");
    for tsn in 500..502 {
        bed.pass(Prog::Ingress, &y(tsn)).unwrap();
    }
    bed.pass(Prog::Ingress, &x(10)).unwrap(); // a retransmission, after x came back
    bed.pass(Prog::Ingress, &x(13)).unwrap();
    bed.pass(Prog::Ingress, &y(502)).unwrap();
    assert_eq!(takeovers(&bed), 3);
    assert_eq!(bed.counters().unwrap()[0].get(c::PATH_UPDATE_FAILED), 0);
    // A path coming back into the slot starts from its totals: its DATA is
    // not "first on the path" again, nor its gap reports new (y's first
    // SACK began them: one record).
    let kinds: Vec<_> = bed.drain().iter().map(|r| r.kind()).collect();
    use RecordKind::{DataFirst, DataRetransmit, SackChange};
    assert_eq!(kinds, vec![Some(DataFirst), Some(SackChange), Some(DataFirst), Some(DataRetransmit)]);
    let all = paths::read_all(&bed.ebpf).unwrap();
    assert_eq!(all.len(), 2, "{all:?}");
    let get = |vtag| all.iter().find(|(k, _)| k.vtag == vtag).map(|p| p.1).unwrap();
    let (sx, sy) = (get(0x1111), get(0x2222));
    assert_eq!((sx.packets, sx.data_chunks, sx.payload_bytes, sx.retransmissions, sx.highest_tsn), (5, 5, 200, 1, 13));
    assert_eq!((sy.packets, sy.data_chunks, sy.payload_bytes, sy.sacks, sy.gap_blocks), (3, 3, 24, 3, 3));
    assert_eq!((sy.highest_tsn, sy.sack_cum_tsn), (502, 502));
    // The same totals with the slots and the overflow read key by key.
    let mut each = paths::read_each(&bed.ebpf).unwrap();
    let mut all = all;
    let key = |p: &(sctp_monitor_common::PathKey, sctp_monitor_common::PathStats)| p.0.vtag;
    all.sort_by_key(key);
    each.sort_by_key(key);
    assert_eq!(all, each);
}

#[test]
fn the_tc_ingress_program_reports_what_the_xdp_program_reports() {
    let Some(mut bed) = bed() else { return };
    let hb_info = craft::param(param::HEARTBEAT_INFO, &[9u8; 20]);
    let frames = [
        v4().chunk(craft::init(&InitSpec::new(0x1111, 100).addrs(&[A4.into(), B4.into()]))).build(),
        v4().chunk(craft::heartbeat(&hb_info)).build(),
        v6().chunk(craft::data(5, 0, 0, 18, &[1; 30])).chunk(craft::sack(4, 9000, &[], &[])).build(),
        v4().chunk(craft::cookie_echo(&[0; 40])).chunk(craft::data(77, 0, 0, 18, &[2; 10])).build(),
    ];
    // Without the timestamps, which differ from run to run.
    let strip = |mut v: Vec<ChunkRecord>| {
        for r in v.iter_mut() {
            r.ts_ns = 0;
        }
        v
    };
    for f in &frames {
        bed.pass(Prog::Ingress, f).unwrap();
        let xdp = strip(bed.drain());
        assert!(!xdp.is_empty());
        assert!(xdp.iter().all(|r| r.direction == direction::INGRESS));
        // The same records again (new paths: the XDP run made them known).
        let mut fresh = TestBed::new(LoadOptions::default()).unwrap();
        fresh.pass(Prog::IngressTc, f).unwrap();
        let tc = strip(fresh.drain());
        assert_eq!(tc.len(), xdp.len());
        for (a, b) in xdp.iter().zip(&tc) {
            assert_eq!(bytemuck::bytes_of(a), bytemuck::bytes_of(b), "record of {:?}", a.kind());
        }
        let counts = |bed: &TestBed| bed.counters().unwrap()[0].get(c::SCTP_PACKETS);
        assert_eq!(counts(&fresh), 1, "counted as ingress");
        assert_eq!(fresh.counters().unwrap()[1].get(c::SCTP_PACKETS), 0, "nothing counted as egress");
    }
    // The per-path summary of the DATA + SACK frame, from the TC program.
    let fresh = TestBed::new(LoadOptions::default()).unwrap();
    fresh.pass(Prog::IngressTc, &frames[2]).unwrap();
    let all = paths::read_all(&fresh.ebpf).unwrap();
    assert_eq!(all.len(), 1);
    let (k, s) = all[0];
    assert_eq!(k.direction, direction::INGRESS);
    assert_eq!((s.packets, s.data_chunks, s.payload_bytes, s.sacks, s.highest_tsn), (1, 1, 30, 1, 5));
}
