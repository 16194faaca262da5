//! One link-layer rule and one IP rule live and offline
//! (`sctp_monitor_common::l2`, `sctp_monitor_common::ip`). Link layer: the
//! same Ethernet frames, with 0 to 4 VLAN tags of every TPID, QinQ, and cut
//! inside their tags, go through the real compiled programs
//! (BPF_PROG_TEST_RUN, XDP ingress and TC egress) and, written into a pcap,
//! through `replay`. Per frame, the kernel's outcome (not SCTP / SCTP /
//! truncated) and its records must be what the userspace decoder makes of the
//! frame; and the tracker fed with the kernel's records (as the agent feeds
//! it) must give the same events and address sets as the replay. IP: frames
//! at every edge of the IP rule (header and total lengths, versions against
//! the EtherType, fragments, extension-header chains up to and past the
//! limit, UDP lengths) must have the same outcome in both programs and in
//! the decoder, and the one the rule gives.
//!
//! Needs root (BPF_PROG_TEST_RUN). Under CI (`CI` set) a missing privilege
//! fails the test; elsewhere the test says it skipped. Run under the shared
//! lock: `flock /tmp/sctpmon-kernel.lock cargo test -p sctp-monitor --test
//! framing_live_offline`.

mod support;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use sctp_monitor::craft::{self, CookiePos, FrameBuilder, InitSpec, ethertype};
use sctp_monitor::decode::{DecodeError, DecodeStats, LinkType, decode_record, parse_frame};
use sctp_monitor::event::Event;
use sctp_monitor::kernel::{
    paths,
    testrun::{Prog, TestBed},
};
use sctp_monitor::replay::{ReplayOptions, replay};
use sctp_monitor::tracker::Tracker;
use sctp_monitor_common::{
    ChunkRecord,
    counters::{self as c},
    l2,
};

fn bed() -> Option<TestBed> {
    support::pin_to_cpu0();
    support::test_bed("framing_live_offline")
}

/// What a parser made of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    NotSctp,
    Sctp,
    Truncated,
}

/// The tag stacks sent, outermost first: none, one of each TPID, QinQ in
/// its three spellings, three tags (the limit), and four (past it: the
/// EtherType left is a TPID, so not SCTP for either parser).
fn tag_stacks() -> Vec<Vec<u16>> {
    use ethertype::{QINQ, QINQ_9100, VLAN};
    let mut v = vec![vec![]];
    for t in l2::VLAN_TPIDS {
        v.push(vec![t]);
    }
    v.extend([
        vec![QINQ, VLAN],
        vec![QINQ_9100, VLAN],
        vec![VLAN, VLAN],
        vec![QINQ, VLAN, VLAN],
        vec![QINQ_9100, QINQ, VLAN],
        vec![QINQ, QINQ, VLAN, VLAN],
        vec![QINQ_9100; 4],
    ]);
    assert!(v.iter().any(|s| s.len() == l2::MAX_VLAN_TAGS));
    assert!(v.iter().any(|s| s.len() > l2::MAX_VLAN_TAGS));
    v
}

/// One short association per (tag stack, IP version), on its own ports and
/// tags: INIT and INIT-ACK with an extra address each, COOKIE-ECHO/ACK,
/// DATA, SACK, HEARTBEAT/ACK, SHUTDOWN, SHUTDOWN-ACK, SHUTDOWN-COMPLETE.
/// Then each tag stack's first frame cut inside its tags.
fn frames() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for (i, tags) in tag_stacks().iter().enumerate() {
        for v6 in [false, true] {
            let n = (i * 2 + v6 as usize) as u16;
            let addr = |host: u16, net: u16| -> IpAddr {
                if v6 {
                    IpAddr::V6(Ipv6Addr::new(0xfd00, n, net, 0, 0, 0, 0, host))
                } else {
                    IpAddr::V4(Ipv4Addr::new(10, n as u8, net as u8, host as u8))
                }
            };
            let (a, b, a2, b2) = (addr(1, 1), addr(2, 1), addr(1, 2), addr(2, 2));
            let (pa, pb) = (5000 + n, 6000 + n);
            let (ta, tb) = (0x1000_0000 + n as u32, 0x2000_0000 + n as u32);
            let name = format!("tags {:04x?} {}", tags, if v6 { "IPv6" } else { "IPv4" });
            let frame = |from_a: bool, chunk: Vec<u8>| {
                let (s, d, sp, dp, tag) = if from_a { (a, b, pa, pb, tb) } else { (b, a, pb, pa, ta) };
                let mut f = FrameBuilder::ip(s, d);
                for &t in tags {
                    f = f.vlan(t, 100 + n);
                }
                f.sctp(sp, dp, tag).chunk(chunk).build()
            };
            let init = {
                let mut f = FrameBuilder::ip(a, b);
                for &t in tags {
                    f = f.vlan(t, 100 + n);
                }
                f.sctp(pa, pb, 0).chunk(craft::init(&InitSpec::new(ta, 1000).addrs(&[a2]))).build()
            };
            out.push((format!("{name} INIT"), init.clone()));
            let seq: Vec<(&str, bool, Vec<u8>)> = vec![
                (
                    "INIT-ACK",
                    false,
                    craft::init_ack(&InitSpec::new(tb, 5000).addrs(&[b2]).cookie(40, CookiePos::After)),
                ),
                ("COOKIE-ECHO", true, craft::cookie_echo(&[7; 40])),
                ("COOKIE-ACK", false, craft::cookie_ack()),
                ("DATA", true, craft::data(1000, 0, 0, 60, b"payload")),
                ("SACK", false, craft::sack(1000, 65536, &[], &[])),
                ("HEARTBEAT", false, craft::heartbeat(&[n as u8; 12])),
                ("HEARTBEAT-ACK", true, craft::heartbeat_ack(&[n as u8; 12])),
                ("SHUTDOWN", true, craft::shutdown(4999)),
                ("SHUTDOWN-ACK", false, craft::shutdown_ack()),
                ("SHUTDOWN-COMPLETE", true, craft::shutdown_complete(false)),
            ];
            for (what, from_a, chunk) in seq {
                out.push((format!("{name} {what}"), frame(from_a, chunk)));
            }
            // The INIT cut one byte into the EtherType after the last tag
            // the rule walks: a truncated header for both parsers.
            if !v6 && !tags.is_empty() {
                let at = l2::ETH_HLEN + l2::VLAN_TAG_LEN * tags.len().min(l2::MAX_VLAN_TAGS) - 1;
                out.push((format!("{name} cut at {at}"), init[..at].to_vec()));
            }
        }
    }
    out
}

/// The userspace decoder's outcome for a frame.
fn offline_outcome(frame: &[u8]) -> Outcome {
    let mut st = DecodeStats::default();
    match parse_frame(LinkType::Ethernet, frame, 0, 9899, &mut st) {
        Ok(Some(_)) => Outcome::Sctp,
        Ok(None) => Outcome::NotSctp,
        Err(DecodeError::TooShort { .. }) => Outcome::Truncated,
        Err(e) => panic!("unexpected decode error {e}"),
    }
}

/// The kernel's outcome, from the counter that moved.
fn kernel_outcome(before: &[u64; 3], after: &[u64; 3]) -> Outcome {
    let moved: Vec<usize> = (0..3).filter(|&i| after[i] != before[i]).collect();
    assert_eq!(moved.len(), 1, "exactly one outcome per frame: {before:?} -> {after:?}");
    [Outcome::NotSctp, Outcome::Sctp, Outcome::Truncated][moved[0]]
}

fn outcome_counters(bed: &TestBed, dir: usize) -> [u64; 3] {
    let k = &bed.counters().expect("counters")[dir];
    [k.get(c::NOT_SCTP), k.get(c::SCTP_PACKETS), k.get(c::MALFORMED_TRUNCATED)]
}

/// A record reduced to what both directions and the decoder must agree on.
fn key(r: &ChunkRecord) -> (u8, IpAddr, IpAddr, u16, u16, u32, Vec<u8>) {
    let (a, b) = r.segments();
    let mut st = DecodeStats::default();
    let (m, _) = decode_record(r, 0, &mut st).expect("a kernel record decodes");
    (r.kind, m.src, m.dst, m.src_port, m.dst_port, m.vtag, [a, b].concat())
}

const T0: u64 = 1_700_000_000_000_000_000;
/// Frames 100 µs apart: the whole run stays under the replay's first
/// tracker tick (100 ms), so neither side ticks.
const STEP: u64 = 100_000;

#[test]
fn the_same_frames_live_and_from_a_capture_give_the_same_records_and_events() {
    let Some(mut bed) = bed() else { return };
    let frames = frames();
    let opts = ReplayOptions::default();
    let mut live = Tracker::new(opts.tracker.clone());
    let mut live_events: Vec<Event> = Vec::new();
    let mut seen = [0usize; 3];
    for (i, (name, f)) in frames.iter().enumerate() {
        let ts = T0 + i as u64 * STEP;
        let want = offline_outcome(f);
        let before = [outcome_counters(&bed, 0), outcome_counters(&bed, 1)];
        bed.pass(Prog::Ingress, f).expect("ingress run");
        let ing = bed.drain();
        // BPF_PROG_TEST_RUN builds no skb shorter than an Ethernet header
        // plus what it takes as L3; a cut frame runs on ingress only.
        let egress_ran = bed.pass(Prog::Egress, f).is_ok();
        let eg = bed.drain();
        let after = [outcome_counters(&bed, 0), outcome_counters(&bed, 1)];
        assert_eq!(kernel_outcome(&before[0], &after[0]), want, "{name}: XDP ingress against the decoder");
        if egress_ran {
            assert_eq!(kernel_outcome(&before[1], &after[1]), want, "{name}: TC egress against the decoder");
            assert_eq!(
                ing.iter().map(key).collect::<Vec<_>>(),
                eg.iter().map(key).collect::<Vec<_>>(),
                "{name}: ingress and egress records"
            );
        } else {
            assert!(f.len() < l2::ETH_HLEN + 2 * l2::MAX_VLAN_TAGS * l2::VLAN_TAG_LEN, "{name}: egress refused");
        }
        seen[want as usize] += 1;
        // The records against the decoder's packet: same addresses, ports
        // and tag, and one record per control chunk (DATA: the first on
        // its path; SACK: the first on its path, the others summarised in
        // the per-path map).
        let mut st = DecodeStats::default();
        match parse_frame(LinkType::Ethernet, f, ts, 9899, &mut st) {
            Ok(Some(p)) => {
                let first_sack = ing.iter().any(|r| r.kind() == Some(sctp_monitor_common::RecordKind::SackFirst));
                let types: Vec<u8> =
                    p.chunks.iter().map(|c| c.chunk_type()).filter(|&t| t != 3 || first_sack).collect();
                let mut got = Vec::new();
                for r in &ing {
                    let (m, chunk) = decode_record(r, ts, &mut st).expect("record decodes");
                    assert_eq!(
                        (m.src, m.dst, m.src_port, m.dst_port, m.vtag),
                        (p.meta.src, p.meta.dst, p.meta.src_port, p.meta.dst_port, p.meta.vtag),
                        "{name}"
                    );
                    got.push(chunk.chunk_type());
                    live.process(&m, std::slice::from_ref(&chunk), &mut live_events);
                }
                assert_eq!(got, types, "{name}: chunk types live against offline");
            }
            _ => assert!(ing.is_empty(), "{name}: records from a frame that is not SCTP offline: {}", ing.len()),
        }
        // SACK (and DATA after the first) live in the per-path map: the
        // agent hands them to the tracker from there.
        for (k, st) in paths::read_all(&bed.ebpf).expect("read the per-path map") {
            live.observe_path_stats(&k, &st, ts, &mut live_events);
        }
    }
    assert!(seen.iter().all(|&n| n > 0), "every outcome exercised: {seen:?}");

    // The same frames as a capture, through replay.
    let stamped: Vec<(u64, Vec<u8>)> =
        frames.iter().enumerate().map(|(i, (_, f))| (T0 + i as u64 * STEP, f.clone())).collect();
    let file = support::pcap::TempPcap::write("framing", &stamped);
    let o = replay(file.path(), &opts).expect("replay");
    assert!(o.error.is_none(), "{:?}", o.error);
    assert_eq!(o.sctp_packets as usize, seen[Outcome::Sctp as usize]);
    assert_eq!(o.malformed_packets as usize, seen[Outcome::Truncated as usize]);

    // Events: the same, in the same order, with the same times.
    assert!(!o.events.is_empty());
    support::assert_same_events(&live_events, &o.events);
    // Address sets, ports, tags and state of every association.
    let view = |v: Vec<sctp_monitor::tracker::AssocView>| {
        let mut v: Vec<_> = v.into_iter().map(|a| (a.initiator, a.responder, a.state, a.ended)).collect();
        v.sort_by_key(|x| format!("{x:?}"));
        v
    };
    let live_assocs: Vec<_> = live.associations().chain(live.closed().cloned()).collect();
    let want_assocs = tag_stacks().iter().filter(|s| s.len() <= l2::MAX_VLAN_TAGS).count() * 2;
    assert_eq!(o.associations.len(), want_assocs, "one association per tag stack the rule reads, per IP version");
    assert_eq!(view(live_assocs), view(o.associations.clone()));
}

/// What the IP rule makes of a frame (`sctp_monitor_common::ip`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IpOutcome {
    NotSctp,
    Sctp,
    Truncated,
    BadHeader,
    ExtHeaderLimit,
    LaterFragment,
}

const IP_OUTCOMES: [(u32, IpOutcome); 6] = [
    (c::NOT_SCTP, IpOutcome::NotSctp),
    (c::SCTP_PACKETS, IpOutcome::Sctp),
    (c::MALFORMED_TRUNCATED, IpOutcome::Truncated),
    (c::MALFORMED_IP_HEADER, IpOutcome::BadHeader),
    (c::MALFORMED_EXT_HDR_LIMIT, IpOutcome::ExtHeaderLimit),
    (c::NON_FIRST_FRAGMENT, IpOutcome::LaterFragment),
];

fn ip_offline(frame: &[u8]) -> IpOutcome {
    use sctp_monitor_common::ip::IpError;
    let mut st = DecodeStats::default();
    match parse_frame(LinkType::Ethernet, frame, 0, 9899, &mut st) {
        Ok(Some(_)) => IpOutcome::Sctp,
        Ok(None) => IpOutcome::NotSctp,
        Err(DecodeError::TooShort { .. } | DecodeError::Ip(IpError::Truncated)) => IpOutcome::Truncated,
        Err(DecodeError::Ip(IpError::BadHeader)) => IpOutcome::BadHeader,
        Err(DecodeError::Ip(IpError::ExtHeaderLimit)) => IpOutcome::ExtHeaderLimit,
        Err(DecodeError::Fragment | DecodeError::Ip(IpError::LaterFragment)) => IpOutcome::LaterFragment,
        Err(e) => panic!("unexpected decode error {e}"),
    }
}

fn ip_counters(bed: &TestBed, dir: usize) -> [u64; 6] {
    let k = &bed.counters().expect("counters")[dir];
    IP_OUTCOMES.map(|(i, _)| k.get(i))
}

/// IP frames the two parsers once read apart, and their neighbours: each
/// with the outcome the IP rule gives it (asserted too, so a change of
/// the rule shows here and in docs/datapath.md's table).
fn ip_cases() -> Vec<(&'static str, Vec<u8>, IpOutcome)> {
    use IpOutcome::*;
    use craft::ExtHeader::{DestOpts, Fragment, HopByHop, Routing};
    let (a4, b4) = (Ipv4Addr::new(10, 9, 0, 1), Ipv4Addr::new(10, 9, 0, 2));
    let (a6, b6): (Ipv6Addr, Ipv6Addr) = ("fd00:9::1".parse().unwrap(), "fd00:9::2".parse().unwrap());
    let hb = || craft::heartbeat(b"ip-rule");
    let v4 = || FrameBuilder::ipv4(a4, b4).sctp(7000, 7001, 0x77).chunk(hb());
    let v6 = || FrameBuilder::ipv6(a6, b6).sctp(7000, 7001, 0x77).chunk(hb());
    const IP: usize = l2::ETH_HLEN;
    let set16 = |mut f: Vec<u8>, at: usize, v: u16| {
        f[at..at + 2].copy_from_slice(&v.to_be_bytes());
        f
    };
    let set8 = |mut f: Vec<u8>, at: usize, v: u8| {
        f[at] = v;
        f
    };
    let whole = v4().build();
    let total = (whole.len() - IP) as u16;
    let whole6 = v6().build();
    let plen6 = (whole6.len() - IP - 40) as u16;
    let mut nine = v6();
    let mut eight = v6();
    for i in 0..9 {
        let h = [HopByHop(0), DestOpts(0), Routing(0)][i % 3];
        nine = nine.ext_header(h);
        if i < 8 {
            eight = eight.ext_header(h);
        }
    }
    let mut padded = whole.clone();
    padded.extend_from_slice(&[0; 16]);
    vec![
        ("IPv4", whole.clone(), Sctp),
        ("IPv4 with options", v4().ip_options(&[1, 1, 1, 1, 1, 1, 1, 1]).build(), Sctp),
        ("IPv4 with Ethernet padding after it", padded, Sctp),
        ("IPv4 total length below the header", set16(whole.clone(), IP + 2, 12), BadHeader),
        ("IPv4 total length 0", set16(whole.clone(), IP + 2, 0), BadHeader),
        ("IPv4 header length 4 words", set8(whole.clone(), IP, 0x44), BadHeader),
        ("IPv4 EtherType, version 6", set8(whole.clone(), IP, 0x65), BadHeader),
        ("IPv4 total length past the frame", set16(whole.clone(), IP + 2, total + 8), Truncated),
        ("IPv4 later fragment", v4().fragment(10, false).build(), LaterFragment),
        ("IPv4 first fragment", v4().fragment(0, true).build(), Sctp),
        ("IPv4 TCP with a bad version", set8(set8(whole.clone(), IP + 9, 6), IP, 0x25), NotSctp),
        ("IPv4 cut at 9 bytes", whole[..IP + 9].to_vec(), Truncated),
        ("IPv4 cut at 15 bytes, SCTP", whole[..IP + 15].to_vec(), Truncated),
        ("IPv4 cut at 15 bytes, TCP", set8(whole.clone(), IP + 9, 6)[..IP + 15].to_vec(), NotSctp),
        ("IPv4 SCTP common header past the total length", set16(whole.clone(), IP + 2, 28), Truncated),
        ("UDP encapsulation", v4().udp_encap(40000, 9899).build(), Sctp),
        ("UDP to another port", v4().udp_encap(40000, 9898).build(), NotSctp),
        ("UDP length below its header", set16(v4().udp_encap(40000, 9899).build(), IP + 24, 7), Truncated),
        ("UDP length past the IP packet", set16(v4().udp_encap(40000, 9899).build(), IP + 24, 900), Truncated),
        ("IPv6", whole6.clone(), Sctp),
        ("IPv6 eight extension headers", eight.build(), Sctp),
        ("IPv6 nine extension headers", nine.build(), ExtHeaderLimit),
        ("IPv6 first fragment", v6().ext_header(Fragment { offset: 0, more: true, id: 9 }).build(), Sctp),
        ("IPv6 later fragment", v6().ext_header(Fragment { offset: 3, more: false, id: 9 }).build(), LaterFragment),
        ("IPv6 payload length past the frame", set16(whole6.clone(), IP + 4, plen6 + 8), Truncated),
        ("IPv6 payload length 0", set16(whole6.clone(), IP + 4, 0), Truncated),
        ("IPv6 EtherType, version 4", set8(whole6.clone(), IP, 0x45), BadHeader),
        ("IPv6 TCP", set8(whole6.clone(), IP + 6, 6), NotSctp),
        ("IPv6 extension header past the payload", set8(v6().ext_header(HopByHop(0)).build(), IP + 41, 200), BadHeader),
        ("IPv6 cut inside an extension header", v6().ext_header(HopByHop(0)).build()[..IP + 42].to_vec(), Truncated),
    ]
}

#[test]
fn the_ip_rule_live_and_from_a_capture() {
    let Some(mut bed) = bed() else { return };
    let mut disagree = Vec::new();
    for (name, f, want) in ip_cases() {
        let offline = ip_offline(&f);
        let before = [ip_counters(&bed, 0), ip_counters(&bed, 1)];
        bed.pass(Prog::Ingress, &f).expect("ingress run");
        let _ = bed.drain();
        let egress_ran = bed.pass(Prog::Egress, &f).is_ok();
        let _ = bed.drain();
        let after = [ip_counters(&bed, 0), ip_counters(&bed, 1)];
        let kernel = |d: usize| {
            let moved: Vec<IpOutcome> =
                (0..6).filter(|&i| after[d][i] != before[d][i]).map(|i| IP_OUTCOMES[i].1).collect();
            assert_eq!(moved.len(), 1, "{name}: exactly one outcome per frame, got {moved:?}");
            moved[0]
        };
        let xdp = kernel(0);
        let tc = if egress_ran { kernel(1) } else { xdp };
        if xdp != offline || tc != offline || offline != want {
            disagree.push(format!("{name}: XDP {xdp:?}, TC {tc:?}, decoder {offline:?}, the rule {want:?}"));
        }
    }
    assert!(disagree.is_empty(), "the IP rule read apart:\n{}", disagree.join("\n"));
}
