//! Tracker rules on crafted packets that go through the real decoder.

use std::net::IpAddr;

use crate::craft::wire::{MS, T0, TA, TB, Wire};
use crate::craft::{self, AsconfReq, AsconfResult, CookiePos, InitSpec};
use crate::decode::DecodeStats;
use crate::event::{DownReason, EventKind, PathRef, Role};

use super::{Config, PathState, Tracker};

const PA: u16 = 5000;
const PB: u16 = 3868;

fn ip(s: &str) -> IpAddr {
    s.parse().expect("test address")
}

fn data(tsn: u32) -> Vec<u8> {
    craft::data(tsn, 0, 0, 46, &[0u8; 100])
}

fn pr(s: IpAddr, d: IpAddr) -> PathRef {
    PathRef { src: s, dst: d }
}

#[test]
fn handshake_gives_tags_address_sets_and_up() {
    let mut s = Wire::new(Config::default());
    s.handshake();
    assert_eq!(s.kinds(), vec![EventKind::AssociationUp]);
    let up = &s.ev[0];
    let i = up.initiator.as_ref().expect("initiator");
    let r = up.responder.as_ref().expect("responder");
    assert_eq!((i.port, i.vtag, i.addrs.clone()), (PA, TA, vec![s.a[0], s.a[1]]));
    assert_eq!((r.port, r.vtag, r.addrs.clone()), (PB, TB, vec![s.b[0], s.b[1]]));
    assert_eq!(up.handshake_seen, Some(true));
    assert_eq!(up.ts, T0 + 3 * MS);
}

#[test]
fn init_without_address_params_uses_the_source_alone() {
    let mut s = Wire::new(Config::default());
    let (a, b) = (s.a, s.b);
    s.send(0, a[0], b[0], PA, PB, 0, vec![craft::init(&InitSpec::new(TA, 1))]);
    s.send(1, b[0], a[0], PB, PA, TA, vec![craft::init_ack(&InitSpec::new(TB, 1).cookie(8, CookiePos::After))]);
    s.a2b(2, 0, vec![craft::cookie_echo(&[1; 8])]);
    s.b2a(3, 0, vec![craft::cookie_ack()]);
    let v = s.t.associations().next().expect("one association");
    assert_eq!(v.initiator.addrs, vec![a[0]]);
    assert_eq!(v.responder.addrs, vec![b[0]]);
}

#[test]
fn multihomed_packets_map_to_one_association() {
    let mut s = Wire::new(Config::default());
    s.handshake();
    s.a2b(10, 0, vec![data(100)]);
    s.a2b(11, 1, vec![data(100)]);
    s.b2a(12, 1, vec![craft::sack(100, 1000, &[], &[])]);
    assert_eq!(s.t.len(), 1);
    let v = s.t.associations().next().expect("association");
    assert_eq!(v.paths.len(), 4, "a0->b0, b0->a0 (handshake), a1->b1, b1->a1");
}

#[test]
fn new_data_sets_primary_and_failover_reports_evidence() {
    let mut s = Wire::new(Config { hb_answer_timeout_ns: 500 * MS, ..Config::default() });
    s.handshake();
    s.a2b(10, 0, vec![data(100)]);
    s.b2a(20, 0, vec![craft::sack(100, 1000, &[], &[])]);
    s.a2b(30, 0, vec![data(101)]);
    // The old path goes quiet: heartbeats unanswered, a retransmission.
    s.a2b(1000, 0, vec![craft::heartbeat(b"hb-1")]);
    s.a2b(2000, 0, vec![craft::heartbeat(b"hb-2")]);
    s.a2b(2100, 0, vec![data(101)]);
    s.a2b(3000, 1, vec![data(102)]);
    let f = s.of(EventKind::Failover);
    assert_eq!(f.len(), 1, "events: {:?}", s.kinds());
    let f = f[0];
    assert_eq!(f.from, Some(pr(s.a[0], s.b[0])));
    assert_eq!(f.to, Some(pr(s.a[1], s.b[1])));
    assert_eq!(f.first_new_data, Some(T0 + 3000 * MS));
    assert_eq!(f.last_old_data, Some(T0 + 2100 * MS));
    let ev = f.evidence.expect("evidence");
    assert_eq!(ev.unanswered_heartbeats, 2);
    assert_eq!(ev.retransmissions, 1);
    assert_eq!(f.endpoint, Some(Role::Initiator));
    let v = s.t.associations().next().expect("association");
    assert_eq!(v.primary[0], Some(pr(s.a[1], s.b[1])));
    assert_eq!(v.failovers, [1, 0]);
    let p = s.of(EventKind::PrimaryChanged);
    assert_eq!(p.len(), 1, "the initial primary; the move is the failover");
    assert_eq!(p[0].cause, Some(crate::event::Cause::Initial));
    let down = s.of(EventKind::PathDown);
    assert_eq!(down.len(), 1, "three errors, then a move on the sender's own timer: {:?}", s.kinds());
    assert_eq!(down[0].path, Some(pr(s.a[0], s.b[0])));
}

/// The stacks' Path.Max.Retrans 2 (`--path-max-retrans 2`): down at the
/// third error in a row.
fn path_max_retrans_2() -> Config {
    Config { hb_down_after: 3, retrans_down_after: 3, ..Config::default() }
}

#[test]
fn fast_retransmits_while_the_receiver_reports_gaps_are_no_path_errors_but_timeouts_are() {
    // Random loss on A's primary: 100, 102 and 104 lost, B reports them
    // missing (gap blocks), A sends each again on the same path before any
    // ack moves (fast retransmits, RFC 9260 7.2.4): the stack's error
    // counter does not move. The same three retransmissions without a gap
    // report are timeouts: three errors, down (Path.Max.Retrans 2).
    let run = |gaps: bool| {
        let mut w = Wire::new(path_max_retrans_2());
        w.handshake();
        for tsn in 100..=107u32 {
            w.a2b(10 + tsn as u64 - 100, 0, vec![craft::data(tsn, 0, 0, 18, b"x")]);
        }
        let g: &[(u16, u16)] = if gaps { &[(2, 2), (4, 4), (6, 8)] } else { &[] };
        w.b2a(20, 0, vec![craft::sack(99, 65_536, g, &[])]);
        for (k, tsn) in [100u32, 102, 104].into_iter().enumerate() {
            w.a2b(21 + k as u64, 0, vec![craft::data(tsn, 0, 0, 18, b"x")]);
        }
        let v = w.t.associations().next().expect("the association");
        let p = v.paths.iter().find(|p| p.src == w.a[0]).expect("A's primary").quality;
        (w.kinds(), p.lost_chunks)
    };
    let (kinds, lost) = run(true);
    assert_eq!(lost, 3, "every retransmission is a loss of the path");
    assert!(!kinds.contains(&EventKind::PathDown), "fast retransmits took the path down: {kinds:?}");
    let (kinds, lost) = run(false);
    assert_eq!(lost, 3);
    assert!(kinds.contains(&EventKind::PathDown), "three timeouts: {kinds:?}");
}

#[test]
fn timeouts_after_the_gap_reports_ended_count_again() {
    let mut w = Wire::new(path_max_retrans_2());
    w.handshake();
    w.a2b(10, 0, vec![craft::data(100, 0, 0, 18, b"a")]);
    w.a2b(11, 0, vec![craft::data(101, 0, 0, 18, b"b")]);
    w.b2a(12, 0, vec![craft::sack(99, 65_536, &[(2, 2)], &[])]);
    w.a2b(13, 0, vec![craft::data(100, 0, 0, 18, b"a")]);
    w.b2a(14, 0, vec![craft::sack(101, 65_536, &[], &[])]);
    // Then a black hole: new DATA, three timeouts, no SACK.
    w.a2b(20, 0, vec![craft::data(102, 0, 0, 18, b"c")]);
    for (i, ms) in [1020u64, 2020, 3020].into_iter().enumerate() {
        w.a2b(ms, 0, vec![craft::data(102, 0, 0, 18, b"c")]);
        let down = w.of(EventKind::PathDown).len();
        assert_eq!(down, usize::from(i == 2), "after timeout {}: {:?}", i + 1, w.kinds());
    }
}

#[test]
fn a_retransmission_sent_back_after_the_alternates_timeout_is_the_alternates_error() {
    // usrsctp with a black-holed primary A (Path.Max.Retrans 2): each T3
    // expiry of A retransmits on B; B's receiver delays its SACK past B's
    // RTO, B's own timer expires and the same TSNs go back to A. Those
    // second copies are B's errors, not A's (B's heartbeats answer): A is
    // not down after two timeouts of its own. It is down when new DATA
    // leaves it.
    let mut s = Wire::new(path_max_retrans_2());
    s.handshake();
    s.a2b(10, 0, vec![data(20)]);
    s.b2a(20, 0, vec![craft::sack(20, 1000, &[], &[])]);
    s.a2b(100, 0, vec![data(21)]);
    s.a2b(200, 0, vec![data(22)]);
    s.a2b(350, 1, vec![data(21)]); // A's first timeout
    s.a2b(450, 0, vec![data(21)]); // B's timeout: back to A
    s.b2a(460, 1, vec![craft::heartbeat_ack(b"hb-b")]);
    s.a2b(500, 0, vec![data(23)]);
    s.a2b(900, 1, vec![data(22), data(23)]); // A's second timeout
    s.a2b(1000, 0, vec![data(22), data(23)]); // B's timeout again
    s.b2a(1010, 1, vec![craft::heartbeat_ack(b"hb-b2")]);
    assert!(s.of(EventKind::PathDown).is_empty(), "two timeouts of A, two of B: {:?}", s.lines());
    s.a2b(1100, 0, vec![data(24)]);
    s.a2b(1600, 1, vec![data(24)]); // A's third timeout
    let down = s.of(EventKind::PathDown);
    assert_eq!(down.len(), 1, "{:?}", s.lines());
    assert_eq!(down[0].path, Some(pr(s.a[0], s.b[0])));
    assert_eq!(down[0].ts, T0 + 1600 * MS);
}

#[test]
fn the_rest_of_one_timeouts_retransmissions_in_a_later_packet_is_no_new_error() {
    // Linux, black-holed primary A, PF off, Path.Max.Retrans 2: A's timeout
    // marks 23-37 for retransmission; the window takes 23-34 now and 35-37
    // 60 ms later. One expiry, one error: A is down at its third timeout.
    let mut s = Wire::new(path_max_retrans_2());
    s.handshake();
    s.a2b(10, 0, vec![data(22)]);
    s.b2a(20, 0, vec![craft::sack(22, 1000, &[], &[])]);
    for t in 23..=37u32 {
        s.a2b(100 + (t as u64 - 23) * 10, 0, vec![data(t)]);
    }
    let batch = |s: &mut Wire, at: u64, r: std::ops::RangeInclusive<u32>| s.a2b(at, 0, r.map(data).collect());
    batch(&mut s, 600, 23..=34);
    batch(&mut s, 660, 35..=37);
    batch(&mut s, 1100, 23..=34);
    assert!(s.of(EventKind::PathDown).is_empty(), "two timeouts: {:?}", s.lines());
    batch(&mut s, 1600, 23..=34);
    let down = s.of(EventKind::PathDown);
    assert_eq!(down.len(), 1, "{:?}", s.lines());
    assert_eq!(down[0].ts, T0 + 1600 * MS);
}

#[test]
fn retransmission_on_alternate_path_is_not_a_failover() {
    let mut s = Wire::new(Config::default());
    s.handshake();
    s.a2b(10, 0, vec![data(100)]);
    s.a2b(11, 0, vec![data(101)]);
    s.a2b(500, 1, vec![data(101)]);
    s.a2b(600, 0, vec![data(102)]);
    assert!(s.of(EventKind::Failover).is_empty(), "events: {:?}", s.kinds());
    let v = s.t.associations().next().expect("association");
    let alt = v.paths.iter().find(|p| p.src == s.a[1]).expect("alternate path");
    assert_eq!(alt.retransmissions, 1);
    assert!(!alt.primary);
    assert_eq!(v.primary[0], Some(pr(s.a[0], s.b[0])));
}

#[test]
fn tsn_wrap_is_new_data() {
    let mut s = Wire::new(Config::default());
    s.handshake();
    s.a2b(10, 0, vec![data(u32::MAX - 1)]);
    s.a2b(11, 0, vec![data(u32::MAX)]);
    // TSN 0 after 2^32-1 is new DATA: a move when it goes elsewhere (with
    // no failure anywhere: the sender's choice).
    let moves = |s: &Wire| s.of(EventKind::PrimaryChanged).iter().filter(|e| e.from.is_some()).count();
    s.a2b(12, 1, vec![data(0)]);
    assert_eq!(moves(&s), 1);
    // u32::MAX again is now a retransmission, not new DATA.
    s.a2b(13, 0, vec![data(u32::MAX)]);
    assert_eq!(moves(&s), 1);
    assert_eq!(s.of(EventKind::Failover).len(), 0, "{:?}", s.kinds());
    let v = s.t.associations().next().expect("association");
    assert_eq!(v.highest_tsn[0], Some(0));
    let p0 = v.paths.iter().find(|p| p.src == s.a[0] && p.sender == Role::Initiator).expect("path");
    assert_eq!(p0.retransmissions, 1);
}

#[test]
fn restart_replaces_the_association() {
    let mut s = Wire::new(Config::default());
    s.handshake();
    let old = s.ev[0].assoc;
    let (a, b) = (s.a, s.b);
    let (ta2, tb2) = (0x1111_2222, 0x3333_4444);
    s.send(100, a[0], b[0], PA, PB, 0, vec![craft::init(&InitSpec::new(ta2, 9).addrs(&[a[1]]))]);
    s.send(101, b[0], a[0], PB, PA, ta2, vec![craft::init_ack(&InitSpec::new(tb2, 9).cookie(40, CookiePos::After))]);
    s.send(102, a[0], b[0], PA, PB, tb2, vec![craft::cookie_echo(&[1; 40])]);
    s.send(103, b[0], a[0], PB, PA, ta2, vec![craft::cookie_ack()]);
    let k = s.kinds();
    assert_eq!(
        k,
        vec![EventKind::AssociationUp, EventKind::AssociationDown, EventKind::Restart, EventKind::AssociationUp]
    );
    assert_eq!(s.ev[1].assoc, old);
    assert_eq!(s.ev[1].reason, Some(DownReason::Restart));
    assert_eq!(s.ev[2].previous_assoc, Some(old));
    assert_eq!(s.ev[2].initiator.as_ref().map(|e| e.vtag), Some(ta2));
    assert_eq!(s.t.len(), 1);
    // Old tags no longer match; new ones do.
    s.send(200, a[0], b[0], PA, PB, tb2, vec![data(9)]);
    assert_eq!(s.t.len(), 1);
}

#[test]
fn mid_flight_pick_up_learns_both_directions() {
    let mut s = Wire::new(Config::default());
    s.a2b(0, 0, vec![data(7)]);
    s.b2a(1, 0, vec![craft::sack(7, 1000, &[], &[])]);
    assert_eq!(s.t.len(), 1, "the reverse direction joins the same association");
    let up = s.of(EventKind::AssociationUp);
    assert_eq!(up.len(), 1);
    assert_eq!(up[0].handshake_seen, Some(false));
    let v = s.t.associations().next().expect("association");
    assert!(!v.handshake_seen);
    assert_eq!(v.responder.vtag, Some(TB));
    assert_eq!(v.initiator.vtag, Some(TA));
    assert_eq!(v.cum_ack[0], Some(7));
}

/// An association picked up mid-flight while one path is cut one way: A's
/// heartbeat answer on path 1, then DATA both ways on path 0. B's DATA has a
/// tag no association knows, on an address pair that is not the first
/// association's first: it starts a second association, folded into the
/// first (`merged`) once a path of one is the reverse of the other's. Every
/// tracker (each hashes with a seed of its own) must say so alike: the
/// index used to find the first association by chance, once in about 127
/// seeds (a fingerprint match on the probe's way), so that live and replay
/// of one capture told two stories (CI, live_offline).
#[test]
fn a_mid_flight_pick_up_is_the_same_under_every_seed() {
    let run = || {
        let mut s = Wire::new(Config::default());
        s.a2b(0, 1, vec![craft::heartbeat_ack(&[1, 2, 3, 4])]);
        s.a2b(10, 0, vec![data(7)]);
        s.b2a(11, 0, vec![data(90)]);
        s.b2a(20, 1, vec![craft::heartbeat(&[5, 6, 7, 8])]);
        s.a2b(30, 0, vec![craft::sack(90, 1000, &[], &[])]);
        s.lines()
    };
    let first = run();
    let ups = first.iter().filter(|l| l.contains("association_up")).count();
    let merged = first.iter().filter(|l| l.contains("merged")).count();
    assert_eq!((ups, merged), (2, 1), "B's DATA starts an association that is then merged:\n{}", first.join("\n"));
    for i in 0..1000 {
        let again = run();
        assert_eq!(again, first, "tracker {i} (another seed) read the same packets differently");
    }
}

#[test]
fn asconf_applies_only_on_matching_ack_and_honours_rejections() {
    let mut s = Wire::new(Config::default());
    s.handshake();
    let new1 = ip("10.0.2.1");
    let new2 = ip("10.0.3.1");
    s.a2b(
        10,
        0,
        vec![
            craft::auth(1, 1, &[0; 20]),
            craft::asconf(
                1,
                s.a[0],
                &[AsconfReq::Add { corr_id: 1, addr: new1 }, AsconfReq::Add { corr_id: 2, addr: new2 }],
            ),
        ],
    );
    let v = s.t.associations().next().expect("association");
    assert_eq!(v.initiator.addrs.len(), 2, "nothing changes before the ACK");
    // An ACK with another serial does nothing.
    s.b2a(11, 0, vec![craft::asconf_ack(99, &[])]);
    assert!(s.of(EventKind::AddressAdded).is_empty());
    // The peer rejects corr 1; corr 2 comes after the failure without a
    // response, so it failed too (RFC 5061 §5.3).
    s.b2a(
        12,
        0,
        vec![craft::asconf_ack(
            1,
            &[AsconfResult::Error { corr_id: 1, causes: vec![craft::error_cause(0x00A2, &[])] }],
        )],
    );
    assert!(s.of(EventKind::AddressAdded).is_empty(), "events: {:?}", s.kinds());
    assert_eq!(s.t.associations().next().expect("a").initiator.addrs.len(), 2);
    // Accepted: added.
    s.a2b(20, 0, vec![craft::asconf(2, s.a[0], &[AsconfReq::Add { corr_id: 3, addr: new1 }])]);
    s.b2a(21, 0, vec![craft::asconf_ack(2, &[])]);
    let added = s.of(EventKind::AddressAdded);
    assert_eq!(added.len(), 1);
    assert_eq!(added[0].addr, Some(new1));
    assert_eq!(added[0].endpoint, Some(Role::Initiator));
    assert!(s.t.associations().next().expect("a").initiator.addrs.contains(&new1));
}

#[test]
fn asconf_wildcards() {
    let mut s = Wire::new(Config::default());
    s.handshake();
    // Delete wildcard from a0: every address but a0.
    s.a2b(10, 0, vec![craft::asconf(5, s.a[0], &[AsconfReq::Delete { corr_id: 1, addr: ip("0.0.0.0") }])]);
    s.b2a(11, 0, vec![craft::asconf_ack(5, &[AsconfResult::Success { corr_id: 1 }])]);
    let rm = s.of(EventKind::AddressRemoved);
    assert_eq!(rm.len(), 1);
    assert_eq!(rm[0].addr, Some(s.a[1]));
    assert_eq!(s.t.associations().next().expect("a").initiator.addrs, vec![s.a[0]]);
    // Add wildcard sent from a1: a1 (the packet's source) comes back.
    s.a2b(20, 1, vec![craft::asconf(6, s.a[1], &[AsconfReq::Add { corr_id: 1, addr: ip("0.0.0.0") }])]);
    s.b2a(21, 1, vec![craft::asconf_ack(6, &[])]);
    assert_eq!(s.of(EventKind::AddressAdded)[0].addr, Some(s.a[1]));
}

#[test]
fn several_heartbeats_in_flight_match_by_info() {
    let mut s = Wire::new(Config::default());
    s.handshake();
    s.a2b(100, 0, vec![craft::heartbeat(b"first")]);
    s.a2b(110, 1, vec![craft::heartbeat(b"second")]);
    s.a2b(120, 0, vec![craft::heartbeat(b"third")]);
    // Answers out of order.
    s.b2a(130, 1, vec![craft::heartbeat_ack(b"second")]);
    s.b2a(150, 0, vec![craft::heartbeat_ack(b"third")]);
    s.b2a(300, 0, vec![craft::heartbeat_ack(b"first")]);
    let v = s.t.associations().next().expect("association");
    let rtt = |src: IpAddr| v.paths.iter().find(|p| p.src == src && p.sender == Role::Initiator).and_then(|p| p.rtt_us);
    assert_eq!(rtt(s.a[1]), Some(20_000));
    assert_eq!(rtt(s.a[0]), Some(200_000), "last answer: 'first' sent at 100, answered at 300");
    let ups = s.of(EventKind::PathUp);
    assert_eq!(ups.len(), 1, "the alternate confirmed by its heartbeat (the primary silently, by its DATA's ack)");
    assert_eq!(ups[0].rtt_us, Some(20_000));
}

#[test]
fn path_down_after_unanswered_heartbeats_and_up_when_answered() {
    let mut s = Wire::new(Config { hb_down_after: 2, hb_answer_timeout_ns: 300 * MS, ..Config::default() });
    s.handshake();
    s.a2b(1000, 1, vec![craft::heartbeat(b"1")]);
    s.a2b(2000, 1, vec![craft::heartbeat(b"2")]);
    assert!(s.of(EventKind::PathDown).is_empty());
    s.tick(2500);
    let down = s.of(EventKind::PathDown);
    assert_eq!(down.len(), 1, "two unanswered once the second times out");
    assert_eq!(down[0].path, Some(pr(s.a[1], s.b[1])));
    assert_eq!(down[0].ts, T0 + 2500 * MS);
    s.a2b(3000, 1, vec![craft::heartbeat(b"3")]);
    s.b2a(3010, 1, vec![craft::heartbeat_ack(b"3")]);
    let up = s.of(EventKind::PathUp);
    assert_eq!(up.len(), 1);
    assert_eq!(up[0].rtt_us, Some(10_000));
    let v = s.t.associations().next().expect("association");
    let p = v.paths.iter().find(|p| p.src == s.a[1]).expect("path");
    assert_eq!(p.state, PathState::Active);
}

#[test]
fn unanswered_heartbeats_are_counted_once_each_and_answered_ones_give_rtt_samples() {
    let mut s = Wire::new(Config { hb_answer_timeout_ns: 300 * MS, rtt_samples: true, ..Config::default() });
    s.handshake();
    let unanswered = |s: &Wire| s.t.stats().heartbeats_unanswered;
    // Answered: one RTT sample, nothing unanswered.
    s.a2b(100, 0, vec![craft::heartbeat(b"a")]);
    s.b2a(104, 0, vec![craft::heartbeat_ack(b"a")]);
    assert_eq!(s.t.take_rtt_samples().collect::<Vec<_>>(), vec![4 * MS]);
    assert_eq!(s.t.take_rtt_samples().count(), 0, "taken");
    // Lost: counted at its answer timeout, once however often time passes.
    s.a2b(1000, 1, vec![craft::heartbeat(b"b")]);
    s.tick(1200);
    assert_eq!(unanswered(&s), 0, "still within its answer timeout");
    s.tick(1400);
    s.tick(1900);
    assert_eq!(unanswered(&s), 1);
    // The next one on the same path goes out before its predecessor's
    // timeout: the predecessor is unanswered then (the path's streak).
    s.a2b(2000, 1, vec![craft::heartbeat(b"c")]);
    s.a2b(2100, 1, vec![craft::heartbeat(b"d")]);
    assert_eq!(unanswered(&s), 2, "c superseded by d");
    s.b2a(2150, 1, vec![craft::heartbeat_ack(b"d")]);
    s.tick(3000);
    assert_eq!(unanswered(&s), 2, "d answered");
    assert_eq!(s.t.take_rtt_samples().collect::<Vec<_>>(), vec![50 * MS]);
    // A PMTU probe (HEARTBEAT + PAD) is neither a sample nor unanswered.
    s.a2b(4000, 0, vec![craft::heartbeat(b"p"), craft::pad(1200)]);
    s.tick(5000);
    assert_eq!(unanswered(&s), 2);
}

#[test]
fn pmtu_probes_are_not_liveness() {
    let mut s = Wire::new(Config { hb_down_after: 1, hb_answer_timeout_ns: 100 * MS, ..Config::default() });
    s.handshake();
    for i in 0..5u64 {
        s.a2b(1000 * (i + 1), 0, vec![craft::heartbeat(&i.to_be_bytes()), craft::pad(1200)]);
    }
    s.tick(9000);
    assert!(s.of(EventKind::PathDown).is_empty(), "events: {:?}", s.kinds());
    // The same without PAD is a liveness failure.
    s.a2b(10_000, 0, vec![craft::heartbeat(b"x")]);
    s.tick(10_500);
    assert_eq!(s.of(EventKind::PathDown).len(), 1);
}

#[test]
fn retransmissions_without_progress_take_a_path_down() {
    let mut s = Wire::new(Config { retrans_down_after: 3, ..Config::default() });
    s.handshake();
    s.a2b(10, 0, vec![data(100)]);
    s.b2a(15, 0, vec![craft::sack(99, 1000, &[], &[])]);
    s.a2b(20, 0, vec![data(100)]);
    s.a2b(30, 0, vec![data(100)]);
    s.b2a(35, 0, vec![craft::sack(99, 1000, &[], &[])]);
    assert!(s.of(EventKind::PathDown).is_empty(), "a SACK without progress resets nothing");
    s.a2b(40, 0, vec![data(100)]);
    assert_eq!(s.of(EventKind::PathDown).len(), 1);
    // Progress resets the count.
    s.b2a(50, 0, vec![craft::sack(100, 1000, &[], &[])]);
    s.a2b(60, 0, vec![data(101)]);
    s.a2b(70, 0, vec![data(101)]);
    let v = s.t.associations().next().expect("association");
    let p = v.paths.iter().find(|p| p.src == s.a[0] && p.sender == Role::Initiator).expect("path");
    assert_eq!(p.retransmissions, 4);
}

#[test]
fn stalled_when_heartbeats_answered_but_no_ack_progress() {
    let mut s = Wire::new(Config { stall_after_ns: 2_000 * MS, ..Config::default() });
    s.handshake();
    s.a2b(100, 0, vec![data(100)]);
    s.b2a(150, 0, vec![craft::sack(100, 1000, &[], &[])]);
    s.a2b(200, 0, vec![data(101)]);
    s.a2b(500, 0, vec![craft::heartbeat(b"h")]);
    s.b2a(510, 0, vec![craft::heartbeat_ack(b"h")]);
    s.tick(2000);
    assert!(s.of(EventKind::Stalled).is_empty(), "not yet 2 s");
    s.tick(2300);
    let st = s.of(EventKind::Stalled);
    assert_eq!(st.len(), 1);
    assert_eq!(st[0].path, Some(pr(s.a[0], s.b[0])));
    assert_eq!(st[0].stalled_ms, Some(2100));
    s.tick(2400);
    assert_eq!(s.of(EventKind::Stalled).len(), 1, "reported once");
}

#[test]
fn abort_with_and_without_t_flag() {
    let mut s = Wire::new(Config::default());
    s.handshake();
    // T flag: B puts its own tag on the packet.
    s.send(10, s.b[0], s.a[0], PB, PA, TB, vec![craft::abort(true, &[])]);
    let d = s.of(EventKind::AssociationDown);
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].reason, Some(DownReason::Abort));
    assert_eq!(s.t.len(), 0);

    let mut s = Wire::new(Config::default());
    s.handshake();
    s.b2a(10, 0, vec![craft::abort(false, &[craft::error_cause(12, b"bye")])]);
    assert_eq!(s.of(EventKind::AssociationDown).len(), 1);
    // An ABORT with the wrong tag is ignored.
    let mut s = Wire::new(Config::default());
    s.handshake();
    s.send(10, s.b[0], s.a[0], PB, PA, TA, vec![craft::abort(true, &[])]);
    assert!(s.of(EventKind::AssociationDown).is_empty());
}

#[test]
fn shutdown_sequence_ends_the_association() {
    let mut s = Wire::new(Config::default());
    s.handshake();
    s.a2b(10, 0, vec![craft::shutdown(499)]);
    s.b2a(11, 0, vec![craft::shutdown_ack()]);
    assert_eq!(s.t.len(), 1);
    s.a2b(12, 0, vec![craft::shutdown_complete(false)]);
    let d = s.of(EventKind::AssociationDown);
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].reason, Some(DownReason::Shutdown));
    assert_eq!(s.t.len(), 0);
}

#[test]
fn idle_associations_expire_on_tick() {
    let mut s = Wire::new(Config { idle_timeout_ns: 10_000 * MS, ..Config::default() });
    s.handshake();
    s.tick(9_000);
    assert_eq!(s.t.len(), 1);
    s.tick(10_004);
    let d = s.of(EventKind::AssociationDown);
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].reason, Some(DownReason::Timeout));
    assert_eq!(s.t.stats().expired, 1);
}

#[test]
fn cap_evicts_the_longest_idle_first() {
    let mut s = Wire::new(Config { max_assocs: 2, ..Config::default() });
    s.send(0, ip("10.9.0.1"), ip("10.9.0.2"), 1, 2, 11, vec![data(1)]);
    s.send(1, ip("10.9.0.3"), ip("10.9.0.4"), 1, 2, 22, vec![data(1)]);
    s.send(2, ip("10.9.0.1"), ip("10.9.0.2"), 1, 2, 11, vec![data(2)]);
    s.send(3, ip("10.9.0.5"), ip("10.9.0.6"), 1, 2, 33, vec![data(1)]);
    assert_eq!(s.t.len(), 2);
    assert_eq!(s.t.stats().evictions, 1);
    let d = s.of(EventKind::AssociationDown);
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].reason, Some(DownReason::Evicted));
    assert_eq!(d[0].responder.as_ref().map(|r| r.vtag), Some(22), "the idle one went");
}

#[test]
fn an_init_flood_evicts_half_open_associations_not_an_established_one() {
    let mut s = Wire::new(Config { max_assocs: 3, ..Config::default() });
    // The real association: handshake at 0..3 ms, then silent (the
    // longest idle of all from here on).
    s.handshake();
    // A half-open one: INIT and INIT-ACK, no cookie.
    let (h0, h1) = (ip("10.8.0.1"), ip("10.8.0.2"));
    s.send(5, h0, h1, 7, 8, 0, vec![craft::init(&InitSpec::new(0x51, 1))]);
    s.send(6, h1, h0, 8, 7, 0x51, vec![craft::init_ack(&InitSpec::new(0x52, 1))]);
    // A flood of INITs with their own tags and addresses.
    let mut rng = craft::XorShift::new(7);
    for i in 0..200u64 {
        let tag = (rng.next_u64() as u32) | 1;
        let src = IpAddr::from((rng.next_u64() as u32).to_be_bytes());
        let dst = IpAddr::from((rng.next_u64() as u32).to_be_bytes());
        s.send(10 + i, src, dst, 1000, 2000, 0, vec![craft::init(&InitSpec::new(tag, 1))]);
    }
    assert_eq!(s.t.len(), 3);
    assert_eq!(s.t.stats().evictions, 199, "every INIT past the cap evicted one");
    assert!(s.of(EventKind::AssociationDown).is_empty(), "associations never reported up go without an event");
    let tags: Vec<u32> = s.t.associations().filter_map(|v| v.initiator.vtag).collect();
    assert!(tags.contains(&TA), "the established association stays: {tags:x?}");
    assert!(tags.contains(&0x51), "the half-open one outranks INIT-only ones: {tags:x?}");

    // With no one-sided association left to take, the half-open one goes
    // before the established one, although that one is idle for longer.
    let mut s = Wire::new(Config { max_assocs: 2, ..Config::default() });
    s.handshake();
    s.send(5, h0, h1, 7, 8, 0, vec![craft::init(&InitSpec::new(0x51, 1))]);
    s.send(6, h1, h0, 8, 7, 0x51, vec![craft::init_ack(&InitSpec::new(0x52, 1))]);
    s.send(9, h0, h1, 9, 9, 0, vec![craft::init(&InitSpec::new(0x61, 1))]);
    assert_eq!(s.t.stats().evictions, 1);
    let mut tags: Vec<u32> = s.t.associations().filter_map(|v| v.initiator.vtag).collect();
    tags.sort();
    assert_eq!(tags, vec![0x61, TA]);
}

#[test]
fn evicting_an_association_that_was_up_reports_it() {
    let mut s = Wire::new(Config { max_assocs: 1, ..Config::default() });
    s.handshake();
    let (h0, h1) = (ip("10.8.0.1"), ip("10.8.0.2"));
    s.send(9, h0, h1, 9, 9, 0, vec![craft::init(&InitSpec::new(0x61, 1))]);
    let d = s.of(EventKind::AssociationDown);
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].reason, Some(DownReason::Evicted));
    assert_eq!(d[0].initiator.as_ref().map(|i| i.vtag), Some(TA));
}

#[test]
fn init_collision_yields_one_association() {
    let mut s = Wire::new(Config::default());
    let (a, b) = (s.a, s.b);
    s.send(0, a[0], b[0], PA, PB, 0, vec![craft::init(&InitSpec::new(TA, 1))]);
    s.send(1, b[0], a[0], PB, PA, 0, vec![craft::init(&InitSpec::new(TB, 1))]);
    // Each answers the other's INIT with its own tag unchanged.
    s.send(2, a[0], b[0], PA, PB, TB, vec![craft::init_ack(&InitSpec::new(TA, 1).cookie(8, CookiePos::After))]);
    s.send(3, b[0], a[0], PB, PA, TA, vec![craft::init_ack(&InitSpec::new(TB, 1).cookie(8, CookiePos::After))]);
    s.a2b(4, 0, vec![craft::cookie_echo(&[0; 8])]);
    s.b2a(5, 0, vec![craft::cookie_ack()]);
    assert_eq!(s.t.len(), 1, "one association for one tag pair");
    assert_eq!(s.of(EventKind::AssociationUp).len(), 1);
    assert!(s.t.stats().init_collisions >= 1);
    assert!(s.t.associations().next().expect("a").init_collision);
}

#[test]
fn init_collision_with_an_init_retransmitted_to_another_address_and_one_init_ack_is_one_association() {
    // As usrsctp does it (tests/fixtures/usrsctp-init-collision.pcap): both
    // INITs lost, B's retransmission goes to A's other address, A answers
    // it from COOKIE-WAIT with its own tag, B's COOKIE-ECHO gets A's
    // COOKIE-ACK; A's INIT-ACK to B's INIT comes before B answers A's.
    let mut s = Wire::new(Config::default());
    let (a, b) = (s.a, s.b);
    let spec = |tag, mine: IpAddr| InitSpec::new(tag, 1).addrs(&[mine]);
    s.send(0, b[0], a[0], PB, PA, 0, vec![craft::init(&spec(TB, b[1]))]);
    s.send(1, a[0], b[0], PA, PB, 0, vec![craft::init(&spec(TA, a[1]))]);
    s.send(400, b[1], a[1], PB, PA, 0, vec![craft::init(&spec(TB, b[1]))]);
    s.send(401, a[0], b[0], PA, PB, TB, vec![craft::init_ack(&spec(TA, a[1]).cookie(8, CookiePos::After))]);
    s.send(402, a[1], b[1], PA, PB, 0, vec![craft::init(&spec(TA, a[1]))]);
    s.b2a(403, 0, vec![craft::cookie_echo(&[0; 8])]);
    s.a2b(404, 0, vec![craft::cookie_ack()]);
    s.send(405, b[1], a[1], PB, PA, TA, vec![craft::init_ack(&spec(TB, b[1]).cookie(8, CookiePos::After))]);
    s.a2b(406, 1, vec![data(1)]);
    s.b2a(407, 1, vec![data(1)]);
    assert_eq!(s.t.len(), 1, "one association");
    assert_eq!(s.of(EventKind::AssociationUp).len(), 1);
    let v = s.t.associations().next().expect("the association");
    assert!(v.init_collision);
    let mut tags = [v.initiator.vtag, v.responder.vtag];
    tags.sort();
    assert_eq!(tags, [Some(TA.min(TB)), Some(TA.max(TB))], "each side keeps its own tag");
    assert_eq!(v.highest_tsn, [Some(1), Some(1)], "DATA both ways on it");
}

#[test]
fn abort_to_an_address_never_announced_ends_nothing() {
    // A sends from an address it has not added (a source rewritten on the
    // way); B's stack answers out of the blue with an ABORT (T bit, its own
    // tag), which A's stack drops: the association goes on.
    let mut s = Wire::new(Config::default());
    let (a, b) = (s.a, s.b);
    s.send(0, a[0], b[0], PA, PB, 0, vec![craft::init(&InitSpec::new(TA, 100))]);
    s.send(1, b[0], a[0], PB, PA, TA, vec![craft::init_ack(&InitSpec::new(TB, 500).cookie(8, CookiePos::After))]);
    s.a2b(2, 0, vec![craft::cookie_echo(&[0; 8])]);
    s.b2a(3, 0, vec![craft::cookie_ack()]);
    s.send(4, a[1], b[0], PA, PB, TB, vec![data(100)]);
    s.send(5, b[0], a[1], PB, PA, TB, vec![craft::abort(true, &[])]);
    assert!(s.of(EventKind::AssociationDown).is_empty(), "{:?}", s.kinds());
    assert_eq!(s.t.stats().stray_aborts, 1);
    // An ABORT to an announced address still ends it.
    s.b2a(6, 0, vec![craft::abort(false, &[])]);
    assert_eq!(s.of(EventKind::AssociationDown).len(), 1);
}

#[test]
fn live_path_counters_update_paths() {
    use sctp_monitor_common::stats::{PATH_FLAG_HAS_SACK, PATH_FLAG_HAS_TSN};
    use sctp_monitor_common::{PathKey, PathStats};
    let mut s = Wire::new(Config::default());
    s.handshake();
    let mut key = PathKey {
        src_addr: [0; 16],
        dst_addr: [0; 16],
        src_port: PA,
        dst_port: PB,
        vtag: TB,
        direction: 1,
        ip_version: 4,
        _pad: [0; 2],
    };
    key.src_addr[..4].copy_from_slice(&[10, 0, 0, 1]);
    key.dst_addr[..4].copy_from_slice(&[10, 0, 0, 2]);
    let st = PathStats {
        packets: 40,
        payload_bytes: 4000,
        data_chunks: 40,
        retransmissions: 2,
        highest_tsn: 539,
        flags: PATH_FLAG_HAS_TSN,
        ..PathStats::default()
    };
    assert!(s.t.observe_path_stats(&key, &st, T0 + 50 * MS, &mut s.ev));
    let v = s.t.associations().next().expect("association");
    let p = v.paths.iter().find(|p| p.src == s.a[0] && p.sender == Role::Initiator).expect("path");
    assert_eq!((p.data_packets, p.data_bytes, p.retransmissions), (40, 4000, 2));
    assert_eq!(p.last_data_ns, Some(T0 + 50 * MS));
    assert_eq!(v.highest_tsn[0], Some(539));
    // The peer's SACK counters: cumulative ack of the initiator's DATA.
    let rkey = PathKey { src_addr: key.dst_addr, dst_addr: key.src_addr, src_port: PB, dst_port: PA, vtag: TA, ..key };
    let sack = PathStats { sacks: 10, sack_cum_tsn: 539, flags: PATH_FLAG_HAS_SACK, ..PathStats::default() };
    assert!(s.t.observe_path_stats(&rkey, &sack, T0 + 60 * MS, &mut s.ev));
    assert_eq!(s.t.associations().next().expect("a").cum_ack[0], Some(539));
    key.vtag = 1;
    assert!(!s.t.observe_path_stats(&key, &st, T0, &mut s.ev), "unknown tag");
}

#[test]
fn kernel_records_drive_failover_like_captures() {
    use crate::decode::decode_record;
    use bytemuck::Zeroable;
    use sctp_monitor_common::{ChunkRecord, RecordKind};
    let mut s = Wire::new(Config::default());
    s.handshake();
    let rec = |kind: RecordKind, src: [u8; 4], dst: [u8; 4], tsn: u32, ms: u64, new: bool| {
        let mut r = ChunkRecord::zeroed();
        r.kind = kind as u8;
        // The kernel's verdict on the packet, which holds this one chunk.
        if new {
            r.flags = sctp_monitor_common::record::RECORD_FLAG_NEW_DATA;
        } else {
            r.rtx_chunks = 1;
            r.high_rtx_tsn = tsn;
        }
        r.ip_version = 4;
        r.src_addr[..4].copy_from_slice(&src);
        r.dst_addr[..4].copy_from_slice(&dst);
        r.src_port = PA;
        r.dst_port = PB;
        r.vtag = TB;
        let c = data(tsn);
        r.chunk_len = c.len() as u16;
        r.data[..16].copy_from_slice(&c[..16]);
        r.seg1_len = 16;
        (r, T0 + ms * MS)
    };
    for (r, ts) in [
        rec(RecordKind::DataFirst, [10, 0, 0, 1], [10, 0, 0, 2], 100, 10, true),
        // The first DATA on the alternate is a retransmission of TSN 120:
        // the kernel saw 101..=149 go out on the primary (userspace, which
        // last heard of 100, did not), and says so.
        rec(RecordKind::DataFirst, [10, 0, 1, 1], [10, 0, 1, 2], 120, 20, false),
        rec(RecordKind::DataPathChange, [10, 0, 1, 1], [10, 0, 1, 2], 150, 30, true),
    ] {
        let mut st = DecodeStats::default();
        let (meta, c) = decode_record(&r, ts, &mut st).expect("decodes");
        s.t.process(&meta, std::slice::from_ref(&c), &mut s.ev);
    }
    let f = s.of(EventKind::Failover);
    assert_eq!(f.len(), 1, "the retransmission on the alternate path was not one; the path change was");
    assert_eq!(f[0].to, Some(pr(s.a[1], s.b[1])));
    assert_eq!(f[0].first_new_data, Some(T0 + 30 * MS));
}

#[test]
fn memory_per_association_with_two_paths_is_within_budget() {
    use crate::decode::{Chunk, DataHeader, PacketMeta, Sack};
    let n: u32 = 131_072;
    let mut t = Tracker::new(Config::default());
    let mut ev = Vec::new();
    for i in 0..n {
        let a = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i * 2));
        let b = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i * 2 + 1));
        let meta = PacketMeta {
            ts_ns: T0 + i as u64,
            src: a,
            dst: b,
            src_port: 5000,
            dst_port: 3868,
            vtag: i.wrapping_mul(2_654_435_761) | 1,
            udp_ports: None,
            ip_len: 148,
            bundled_pad: false,
            record: None,
            interface: 0,
            kdata: None,
        };
        let d = DataHeader { i_data: false, flags: 3, tsn: i, stream: 0, seq: 0, ppid: 46, payload_len: 100 };
        t.process(&meta, &[Chunk::Data(d)], &mut ev);
        let back = PacketMeta { src: b, dst: a, src_port: 3868, dst_port: 5000, vtag: !i, ..meta };
        t.process(&back, &[Chunk::Sack(Sack { cum_tsn: i, a_rwnd: 65_536, ..Sack::default() })], &mut ev);
    }
    assert_eq!(t.len(), n as usize);
    assert!(t.associations().all(|a| a.paths.len() == 2));
    let per = t.memory_bytes() / n as usize;
    eprintln!("tracker memory: {per} bytes per association");
    // 252 bytes before the paths' quality counters and their window marks
    // (2 x 56), 364 before the paths' heartbeat RTT histograms (2 x 40)
    // and the control chunks by type (64): BENCHMARKS.md#tracker-memory.
    assert!(per <= 512, "{per} bytes per association");
}

/// Regression (usrsctp captures): T3 retransmissions of DATA lost on the
/// primary travel on the alternate. They count against the primary, which
/// lost the DATA, and not against the alternate, whose SACKs keep the cum
/// ack moving: the alternate must never be reported down.
#[test]
fn retransmissions_on_the_alternate_count_against_the_path_that_lost_the_data() {
    let mut s = Wire::new(Config { retrans_down_after: 3, ..Config::default() });
    s.handshake();
    s.a2b(10, 0, vec![data(100)]);
    s.b2a(11, 0, vec![craft::sack(100, 1000, &[], &[])]);
    // The primary is cut: 101..=108 are lost there.
    for t in 101..=108u32 {
        s.a2b(20 + t as u64, 0, vec![data(t)]);
    }
    // T3 expiries: retransmissions on the alternate, each acked there.
    s.a2b(300, 1, vec![data(101)]);
    s.b2a(301, 1, vec![craft::sack(101, 1000, &[], &[])]);
    s.a2b(600, 1, vec![data(102), data(103), data(104)]);
    s.b2a(601, 1, vec![craft::sack(104, 1000, &[], &[])]);
    assert!(s.of(EventKind::PathDown).is_empty(), "two events: {:?}", s.kinds());
    s.a2b(900, 1, vec![data(105), data(106), data(107), data(108)]);
    let down = s.of(EventKind::PathDown);
    assert_eq!(down.len(), 1, "{:#?}", s.ev);
    assert_eq!(down[0].path, Some(pr(s.a[0], s.b[0])), "the path that lost the DATA");
    s.b2a(901, 1, vec![craft::sack(108, 1000, &[], &[])]);
    // New DATA on the alternate: the failover, with the evidence.
    s.a2b(950, 1, vec![data(109)]);
    let f = s.of(EventKind::Failover);
    assert_eq!(f.len(), 1);
    let ev = f[0].evidence.expect("evidence");
    assert_eq!(ev.retransmissions, 8, "chunks first sent on the old path");
    s.b2a(951, 1, vec![craft::sack(109, 1000, &[], &[])]);
    assert_eq!(s.of(EventKind::PathDown).len(), 1, "{:?}", s.kinds());
    let v = s.t.associations().next().expect("association");
    let alt = v.paths.iter().find(|p| p.src == s.a[1]).expect("alternate");
    assert_eq!(alt.state, PathState::Active);
    assert_eq!(alt.retransmissions, 8, "the wire counter stays per carrying path");
    let old = v.paths.iter().find(|p| p.src == s.a[0] && p.sender == Role::Initiator).expect("old");
    assert_eq!(old.state, PathState::Down, "an ack of DATA resent elsewhere proves nothing");
    // Back: a heartbeat answered on the old path brings it up.
    s.a2b(1500, 0, vec![craft::heartbeat(b"back")]);
    s.b2a(1501, 0, vec![craft::heartbeat_ack(b"back")]);
    assert_eq!(
        s.of(EventKind::PathUp).iter().filter(|e| e.path == Some(pr(s.a[0], s.b[0]))).count(),
        1,
        "confirmed silently by the handshake's first ack, up again now"
    );
}

/// Regression (usrsctp captures): the stack may count an error the wire
/// never shows (a heartbeat timer expiry that sends nothing); its moving new
/// DATA away from a path with evidence against it shows the path is down.
/// Without evidence (an application's Set Primary) it is not.
#[test]
fn failover_with_evidence_takes_the_old_path_down() {
    let mut s = Wire::new(Config::default());
    s.handshake();
    s.a2b(10, 0, vec![data(100)]);
    s.b2a(11, 0, vec![craft::sack(100, 1000, &[], &[])]);
    s.a2b(20, 0, vec![data(101)]);
    s.a2b(400, 1, vec![data(101)]);
    assert!(s.of(EventKind::PathDown).is_empty());
    // usrsctp moves 650 ms after its first retransmission timeout: later
    // than a quick failover would, so the stack holds the path inactive.
    s.a2b(1050, 1, vec![data(102)]);
    let down = s.of(EventKind::PathDown);
    assert_eq!(down.len(), 1, "{:?}", s.kinds());
    assert_eq!(down[0].path, Some(pr(s.a[0], s.b[0])));
    assert_eq!(down[0].ts, T0 + 1050 * MS);
    // The peer moves its DATA without any loss: no failover, no path down.
    s.b2a(1100, 0, vec![data(7000)]);
    s.b2a(1150, 1, vec![data(7001)]);
    assert_eq!(s.of(EventKind::Failover).len(), 1);
    let sender = s.of(EventKind::PrimaryChanged);
    assert!(sender.iter().any(|e| e.cause == Some(crate::event::Cause::Sender)), "{:?}", s.kinds());
    assert_eq!(s.of(EventKind::PathDown).len(), 1);
}

/// Linux without quick failover, at a T3-rtx expiry: the retransmission
/// goes to the alternate with new DATA bundled, and the next new DATA is
/// back on the primary. The stack did not move: no event.
#[test]
fn new_data_bundled_with_a_retransmission_then_back_is_no_move() {
    let mut s = Wire::new(Config::default());
    s.handshake();
    s.a2b(10, 0, vec![data(428)]);
    s.a2b(1010, 1, vec![data(428), data(429)]);
    assert!(s.of(EventKind::Failover).is_empty(), "unsettled until the next new DATA");
    s.a2b(1020, 0, vec![data(430)]);
    let moves = s.of(EventKind::PrimaryChanged).iter().filter(|e| e.from.is_some()).count();
    assert_eq!((s.of(EventKind::Failover).len(), moves), (0, 0), "{:?}", s.kinds());
    assert_eq!(s.t.stats().bundled_excursions, 1);
    let v = s.t.associations().next().expect("association");
    assert_eq!(v.primary[0], Some(pr(s.a[0], s.b[0])));
}

/// Quick failover (RFC 7829, Linux's default): at the first T3-rtx expiry
/// the stack moves, retransmission and new DATA together on the alternate,
/// and new DATA stays there. One failover, dated at that first packet; the
/// old path is potentially failed, not down. When its heartbeat is answered
/// and new DATA goes back, that is a failback.
#[test]
fn quick_failover_is_potentially_failed_and_the_return_is_a_failback() {
    let mut s = Wire::new(Config::default());
    s.handshake();
    s.a2b(10, 0, vec![data(428)]);
    s.b2a(12, 0, vec![craft::sack(427, 1000, &[], &[])]);
    s.a2b(1010, 1, vec![data(428), data(429)]);
    s.a2b(1030, 1, vec![data(430)]);
    let f = s.of(EventKind::Failover);
    assert_eq!(f.len(), 1, "{:?}", s.kinds());
    assert_eq!(f[0].first_new_data, Some(T0 + 1010 * MS));
    assert_eq!(f[0].ts, T0 + 1030 * MS);
    assert_eq!(f[0].evidence.map(|e| e.retransmissions), Some(1));
    let pf = s.of(EventKind::PathPotentiallyFailed);
    assert_eq!(pf.len(), 1, "{:?}", s.kinds());
    assert_eq!(pf[0].path, Some(pr(s.a[0], s.b[0])));
    assert!(s.of(EventKind::PathDown).is_empty(), "potentially failed is not down");
    // The old path answers a heartbeat: up; new DATA returns: failback.
    s.a2b(2000, 0, vec![craft::heartbeat(b"pf")]);
    s.b2a(2001, 0, vec![craft::heartbeat_ack(b"pf")]);
    assert_eq!(s.of(EventKind::PathUp).last().and_then(|e| e.path), Some(pr(s.a[0], s.b[0])));
    s.a2b(2010, 0, vec![data(431)]);
    let back = s.of(EventKind::Failback);
    assert_eq!(back.len(), 1, "{:?}", s.kinds());
    assert_eq!(back[0].to, Some(pr(s.a[0], s.b[0])));
    assert_eq!(s.of(EventKind::Failover).len(), 1, "the return is not a failover");
}

/// The interface a path crosses goes down: the path is down at once, with
/// cause `link_down`, and comes up with its next answered heartbeat.
#[test]
fn link_down_takes_the_paths_through_it_down() {
    use crate::decode::decode_record;
    use sctp_monitor_common::{ChunkRecord, RecordKind};
    let mut s = Wire::new(Config::default());
    s.handshake();
    // A heartbeat and its answer seen by the kernel on interface 7 (path 1).
    for (src, dst, vtag, chunk, ms) in [
        ([10, 0, 1, 1], [10, 0, 1, 2], TB, craft::heartbeat(b"l"), 100u64),
        ([10, 0, 1, 2], [10, 0, 1, 1], TA, craft::heartbeat_ack(b"l"), 101),
    ] {
        let mut r = <ChunkRecord as bytemuck::Zeroable>::zeroed();
        r.kind = RecordKind::Control as u8;
        r.ifindex = 7;
        r.ip_version = 4;
        r.src_addr[..4].copy_from_slice(&src);
        r.dst_addr[..4].copy_from_slice(&dst);
        (r.src_port, r.dst_port, r.vtag) = if vtag == TB { (PA, PB, TB) } else { (PB, PA, TA) };
        r.chunk_type = chunk[0];
        r.chunk_len = chunk.len() as u16;
        r.data[..chunk.len()].copy_from_slice(&chunk);
        r.seg1_len = chunk.len() as u16;
        let (meta, c) = decode_record(&r, T0 + ms * MS, &mut DecodeStats::default()).expect("decodes");
        s.t.process(&meta, std::slice::from_ref(&c), &mut s.ev);
    }
    s.t.link_down(3, T0 + 200 * MS, &mut s.ev);
    assert!(s.of(EventKind::PathDown).is_empty(), "another interface");
    s.t.link_down(7, T0 + 300 * MS, &mut s.ev);
    let down = s.of(EventKind::PathDown);
    assert_eq!(down.len(), 2, "both directions of path 1: {:?}", s.kinds());
    assert!(down.iter().all(|e| e.cause == Some(crate::event::Cause::LinkDown) && e.ts == T0 + 300 * MS));
    s.a2b(1000, 1, vec![craft::heartbeat(b"m")]);
    s.b2a(1001, 1, vec![craft::heartbeat_ack(b"m")]);
    let up = s.of(EventKind::PathUp);
    assert_eq!(up.last().and_then(|e| e.path), Some(pr(s.a[1], s.b[1])));
}

/// Quick failover seen as Linux sends it here: the T3 retransmission alone
/// on the alternate, and the next new DATA (the application's next message,
/// 50 ms later) there too: the stack moved at the path's first error, which
/// it holds potentially failed, not down.
#[test]
fn a_move_at_the_first_new_data_after_the_first_error_is_potentially_failed() {
    let mut s = Wire::new(Config::default());
    s.handshake();
    s.a2b(10, 0, vec![data(100)]);
    s.b2a(11, 0, vec![craft::sack(100, 1000, &[], &[])]);
    s.a2b(20, 0, vec![data(101)]);
    s.a2b(400, 1, vec![data(101)]);
    s.a2b(450, 1, vec![data(102)]);
    assert_eq!(s.of(EventKind::Failover).len(), 1, "{:?}", s.kinds());
    assert!(s.of(EventKind::PathDown).is_empty(), "{:?}", s.kinds());
    let pf = s.of(EventKind::PathPotentiallyFailed);
    assert_eq!(pf.len(), 1, "{:?}", s.kinds());
    assert_eq!(pf[0].path, Some(pr(s.a[0], s.b[0])));
}
