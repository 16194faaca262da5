//! Replay's hard cases, each on a capture that shows it:
//! - copies of one packet in a Linux "any" capture (`tests/fixtures/
//!   usrsctp-bridge-any.pcap`, a real usrsctp association across two
//!   bridges captured with `tcpdump -i any` in the bridges' namespace; and
//!   a crafted SLL2 capture for the heartbeat threshold);
//! - stray closing chunks after an ABORT;
//! - two hosts with the same ports and the same tag;
//! - ASCONF Set Primary and Delete IP against failover;
//! - a graceful close ends in state Closed (the real usrsctp fixture).
//!
//! The capture formats, stdin, gzip and the closed pipe are in
//! `replay_formats.rs`; the live "any" capture in `any_capture.rs`.

mod support;

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use support::process::TempDir;

use pcap_file::DataLink;
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use serde_json::Value;

use sctp_monitor::craft::{self, AsconfReq, AsconfResult, CookiePos, FrameBuilder, InitSpec};
use sctp_monitor::event::{AsconfCause, DownReason, EventKind, Role};
use sctp_monitor::replay::{ReplayOptions, ReplayOutcome, replay};
use sctp_monitor::tracker::{AssocState, Config};

const T0: u64 = 1_790_000_000_000_000_000;
const MS: u64 = 1_000_000;

fn ip(s: &str) -> IpAddr {
    s.parse().expect("addr")
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

/// Writes `frames` (time since T0 in ns, frame) as a nanosecond pcap.
fn write_pcap(path: &Path, frames: &[(u64, Vec<u8>)], datalink: DataLink) {
    let file = std::fs::File::create(path).expect("create capture");
    let header = PcapHeader { datalink, ts_resolution: pcap_file::TsResolution::NanoSecond, ..PcapHeader::default() };
    let mut w = PcapWriter::with_header(file, header).expect("pcap header");
    for (ts, f) in frames {
        w.write_packet(&PcapPacket::new(Duration::from_nanos(T0 + ts), f.len() as u32, f)).expect("write packet");
    }
}

/// Raw IP frames at millisecond times, as a pcap; replayed.
fn replay_frames(tmp: &TempDir, name: &str, frames: Vec<(u64, FrameBuilder)>, opts: &ReplayOptions) -> ReplayOutcome {
    let frames: Vec<(u64, Vec<u8>)> = frames.into_iter().map(|(t, f)| (t * MS, f.raw_ip().build())).collect();
    let file = tmp.path(name);
    write_pcap(&file, &frames, DataLink::RAW);
    replay(&file, opts).expect("replay")
}

fn of(o: &ReplayOutcome, k: EventKind) -> Vec<&sctp_monitor::event::Event> {
    o.events.iter().filter(|e| e.event == k).collect()
}

fn cli(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_sctp-monitor")).args(args).output().expect("run sctp-monitor");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// tshark, or `None` (skip with a message) outside CI; under CI a missing
/// tshark fails (`cargo xtask setup --tests` installs it).
fn tshark(test: &str) -> Option<&'static str> {
    if Command::new("tshark").arg("--version").output().is_ok_and(|o| o.status.success()) {
        return Some("tshark");
    }
    assert!(std::env::var_os("CI").is_none(), "{test}: tshark is missing (cargo xtask setup --tests)");
    eprintln!("SKIPPED {test}: tshark is missing");
    None
}

// ------------------------------------------------ "any" captures: copies

/// What a replay says, without the counts that copies change.
fn view(o: &ReplayOutcome) -> (Vec<String>, Vec<String>, String) {
    let ev = o.events.iter().map(|e| e.to_json_line()).collect();
    let assocs = o.associations.iter().map(|a| format!("{a:?}")).collect();
    (ev, assocs, format!("{:?}", o.chunk_counts))
}

#[test]
fn any_capture_replays_as_its_single_copy_twin() {
    let Some(tshark) = tshark("any_capture_replays_as_its_single_copy_twin") else {
        return;
    };
    let any = fixture("usrsctp-bridge-any.pcap");
    let tmp = TempDir::new("any");
    // tshark keeps one copy of each packet: the first, in on a bridge port
    // (every packet crossed the bridge: in on one port, out on another).
    let single = tmp.path("single.pcap");
    let st = Command::new(tshark)
        .args(["-r"])
        .arg(&any)
        .args(["-Y", "sll.pkttype == 3", "-F", "pcap", "-w"])
        .arg(&single)
        .status()
        .expect("tshark");
    assert!(st.success());
    for hb_down_after in [3u8, 5] {
        let mut opts = ReplayOptions::default();
        opts.tracker = Config { hb_down_after, ..opts.tracker };
        let a = replay(&any, &opts).expect("replay any");
        let s = replay(&single, &opts).expect("replay single");
        assert_eq!(s.duplicates_folded, 0);
        assert!(s.packets > 100, "a real association: {} packets", s.packets);
        assert_eq!(a.packets, 2 * s.packets, "every packet twice in the any capture");
        assert_eq!(a.duplicates_folded, s.packets, "each copy folded");
        assert_eq!(a.sctp_packets, s.sctp_packets);
        assert_eq!(view(&a), view(&s), "threshold {hb_down_after}: the any capture reads as its single-copy twin");
        assert_eq!(a.tracker.heartbeats_unanswered, s.tracker.heartbeats_unanswered);
        let paths: u32 = a.associations.iter().flat_map(|x| &x.paths).map(|p| p.retransmissions).sum();
        let single_paths: u32 = s.associations.iter().flat_map(|x| &x.paths).map(|p| p.retransmissions).sum();
        assert_eq!(paths, single_paths, "copies are not retransmissions");
        // Counted every copy: what a naive reader reports.
        let unfolded = replay(&any, &ReplayOptions { fold_copies: false, ..opts.clone() }).expect("replay");
        let up: u32 = unfolded.associations.iter().flat_map(|x| &x.paths).map(|p| p.retransmissions).sum();
        assert!(up > paths, "counting copies shows retransmissions: {up} against {paths}");
    }
    let (ok, out, err) = cli(&["replay", any.to_str().expect("path")]);
    assert!(ok, "{err}");
    let s = replay(&single, &ReplayOptions::default()).expect("replay");
    assert!(out.contains(&format!("duplicate copies folded {}\n", s.packets)), "{out}");
    let (ok, out, err) = cli(&["replay", "--json", any.to_str().expect("path")]);
    assert!(ok, "{err}");
    let last: Value = serde_json::from_str(out.lines().last().expect("lines")).expect("json");
    assert_eq!(last["summary"]["duplicates_folded"], s.packets, "{last}");
}

/// A Linux cooked v2 frame: `ip` seen on `ifindex` with packet type `t`.
fn sll2(ip: &[u8], ifindex: u32, t: u8) -> Vec<u8> {
    let mut f = vec![0x08, 0x00, 0, 0];
    f.extend_from_slice(&ifindex.to_be_bytes());
    f.extend_from_slice(&[0, 1, t, 6, 2, 0, 0, 0, 0, 1, 0, 0]);
    f.extend_from_slice(ip);
    f
}

/// A multihomed association whose path a1 -> b1 stops answering
/// heartbeats (one every 500 ms), as an "any" capture of a bridge: every
/// packet twice, in on one port (OTHERHOST) and out on another (OUTGOING),
/// 10 µs apart. Returns the capture and the times of the heartbeats.
fn any_heartbeats(tmp: &TempDir, copies: bool) -> (PathBuf, Vec<u64>) {
    let (a0, a1, b0, b1) = (ip("10.0.0.1"), ip("10.0.1.1"), ip("10.0.0.2"), ip("10.0.1.2"));
    let (ta, tb) = (0xA1A1_0001, 0xB2B2_0002);
    let ab = |s, d, tag| FrameBuilder::ip(s, d).sctp(2905, 2905, tag).raw_ip();
    let ba = |s, d, tag| FrameBuilder::ip(s, d).sctp(2905, 2905, tag).raw_ip();
    let mut v = vec![
        (0, ab(a0, b0, 0).chunk(craft::init(&InitSpec::new(ta, 1).addrs(&[a1])))),
        (1, ba(b0, a0, ta).chunk(craft::init_ack(&InitSpec::new(tb, 1).addrs(&[b1]).cookie(64, CookiePos::After)))),
        (2, ab(a0, b0, tb).chunk(craft::cookie_echo(&[0; 64]))),
        (3, ba(b0, a0, ta).chunk(craft::cookie_ack())),
    ];
    let mut hbs = Vec::new();
    for i in 0..12u64 {
        let t = 100 + i * 500;
        let info = (i as u32).to_be_bytes();
        // The primary path answers, the other does not.
        v.push((t, ab(a0, b0, tb).chunk(craft::heartbeat(&[&info[..], b"p0"].concat()))));
        v.push((t + 1, ba(b0, a0, ta).chunk(craft::heartbeat_ack(&[&info[..], b"p0"].concat()))));
        v.push((t + 2, ab(a1, b1, tb).chunk(craft::heartbeat(&[&info[..], b"p1"].concat()))));
        hbs.push((t + 2) * MS);
    }
    let mut frames = Vec::new();
    for (t, f) in v {
        let ipb = f.build();
        frames.push((t * MS, sll2(&ipb, 7, 3)));
        if copies {
            frames.push((t * MS + 10_000, sll2(&ipb, 9, 4)));
        }
    }
    let file = tmp.path(if copies { "hb-any.pcap" } else { "hb-single.pcap" });
    write_pcap(&file, &frames, DataLink::LINUX_SLL2);
    (file, hbs)
}

#[test]
fn heartbeats_down_after_the_configured_count_in_an_any_capture() {
    let tmp = TempDir::new("hb");
    let (any, hbs) = any_heartbeats(&tmp, true);
    let (single, _) = any_heartbeats(&tmp, false);
    let down_at = |o: &ReplayOutcome| {
        let d = of(o, EventKind::PathDown);
        assert_eq!(d.len(), 1, "one path down: {:?}", o.events);
        let p = d[0].path.expect("path");
        assert_eq!((p.src, p.dst), (ip("10.0.1.1"), ip("10.0.1.2")));
        d[0].ts - T0
    };
    for n in [3u8, 5] {
        let mut opts = ReplayOptions::default();
        opts.tracker = Config { hb_down_after: n, ..opts.tracker };
        let o = replay(&any, &opts).expect("replay");
        // Every heartbeat before the (n+1)th went unanswered when it was
        // sent: the path is down then, not earlier.
        assert_eq!(down_at(&o), hbs[n as usize], "threshold {n}");
        assert_eq!(o.duplicates_folded, o.packets / 2);
        assert_eq!(down_at(&replay(&single, &opts).expect("replay")), hbs[n as usize]);
        // Counting copies: down at the second copy of heartbeat (n-1)/2,
        // the third for 5 (what a naive reader reports).
        let o = replay(&any, &ReplayOptions { fold_copies: false, ..opts.clone() }).expect("replay");
        let early = (n as usize - 1).div_ceil(2);
        assert_eq!(down_at(&o), hbs[early] + 10_000, "threshold {n}, unfolded");
    }
}

#[test]
fn an_identical_resend_from_the_same_place_is_not_folded() {
    let tmp = TempDir::new("resend");
    let f = FrameBuilder::ip(ip("10.0.0.1"), ip("10.0.0.2"))
        .sctp(2905, 2905, 0x1234_5678)
        .chunk(craft::data(7, 0, 0, 3, &[9; 40]))
        .raw_ip()
        .build();
    // Sent, copied, sent again 0.5 ms later from the same place, copied.
    let frames = vec![
        (0, sll2(&f, 7, 4)),
        (10_000, sll2(&f, 9, 0)),
        (500_000, sll2(&f, 7, 4)),
        (510_000, sll2(&f, 9, 0)),
        (520_000, sll2(&f, 7, 4)),
    ];
    let file = tmp.path("resend.pcap");
    write_pcap(&file, &frames, DataLink::LINUX_SLL2);
    let o = replay(&file, &ReplayOptions::default()).expect("replay");
    assert_eq!(o.packets, 5);
    assert_eq!(o.duplicates_folded, 2, "each send's copy folded, the resends kept");
    assert_eq!(o.sctp_packets, 3);
    let a = &o.associations[0];
    assert_eq!(a.paths[0].data_packets, 3);
    assert_eq!(a.paths[0].retransmissions, 2);
}

// ------------------------------------------- stray closing chunks, Closed

#[test]
fn stray_closing_chunks_after_an_abort_start_nothing() {
    let tmp = TempDir::new("stray");
    let (a, b) = (ip("192.0.2.1"), ip("192.0.2.2"));
    let (ta, tb) = (0x0101_0101, 0x0202_0202);
    let ab = |tag| FrameBuilder::ip(a, b).sctp(3868, 3868, tag);
    let ba = |tag| FrameBuilder::ip(b, a).sctp(3868, 3868, tag);
    let frames = vec![
        (0, ab(0).chunk(craft::init(&InitSpec::new(ta, 1)))),
        (1, ba(ta).chunk(craft::init_ack(&InitSpec::new(tb, 1).cookie(32, CookiePos::After)))),
        (2, ab(tb).chunk(craft::cookie_echo(&[0; 32]))),
        (3, ba(ta).chunk(craft::cookie_ack())),
        (10, ab(tb).chunk(craft::data(1, 0, 0, 46, &[1; 20]))),
        (20, ab(tb).chunk(craft::shutdown(0))),
        (30, ba(ta).chunk(craft::abort(false, &[]))),
        // The other side had not seen the ABORT yet: its SHUTDOWN-ACK and
        // a SHUTDOWN-COMPLETE, retransmitted, then a reflected ABORT.
        (40, ba(ta).chunk(craft::shutdown_ack())),
        (50, ab(tb).chunk(craft::shutdown_complete(false))),
        (60, ba(ta).chunk(craft::shutdown_ack())),
        (70, ab(tb).chunk(craft::abort(true, &[]))),
        (80, ab(tb).chunk(craft::data(2, 0, 1, 46, &[1; 20]))),
    ];
    let o = replay_frames(&tmp, "stray.pcap", frames, &ReplayOptions::default());
    assert_eq!(o.associations.len(), 1, "{:?}", o.associations);
    assert_eq!(of(&o, EventKind::AssociationUp).len(), 1, "{:?}", o.events);
    let down = of(&o, EventKind::AssociationDown);
    assert_eq!(down.len(), 1, "{:?}", o.events);
    assert_eq!(down[0].reason, Some(DownReason::Abort));
    assert_eq!(o.associations[0].state, AssocState::Closed);
    assert_eq!(o.tracker.after_close_packets, 4, "SHUTDOWN-ACK twice, SHUTDOWN-COMPLETE and the late DATA");
}

#[test]
fn a_graceful_close_ends_in_state_closed() {
    let file = fixture("usrsctp-multihomed-failover.pcap");
    let o = replay(&file, &ReplayOptions::default()).expect("replay");
    assert_eq!(o.associations.len(), 1);
    assert_eq!(o.associations[0].ended, Some(DownReason::Shutdown));
    assert_eq!(o.associations[0].state, AssocState::Closed);
    let (ok, out, err) = cli(&["replay", file.to_str().expect("path")]);
    assert!(ok, "{err}");
    assert!(out.contains("association 1 (Closed, ended: shutdown)"), "{out}");
}

// ------------------------------------------- two hosts, same ports and tag

#[test]
fn two_hosts_with_the_same_ports_and_tag_are_two_associations() {
    let tmp = TempDir::new("twohosts");
    let (a, c, s) = (ip("10.1.0.1"), ip("10.1.0.3"), ip("10.1.0.2"));
    // Both clients pick the same tag; in the second round the server does
    // too (a stack with a constant tag).
    for server_tags in [(0x5A5A_0001u32, 0x5A5A_0002u32), (0x7777_7777, 0x7777_7777)] {
        let t = 0x1111_1111;
        let to = |x, tag| FrameBuilder::ip(x, s).sctp(36412, 36412, tag);
        let from = |x, tag| FrameBuilder::ip(s, x).sctp(36412, 36412, tag);
        let (sa, sc) = server_tags;
        let mut frames = vec![
            (0, to(a, 0).chunk(craft::init(&InitSpec::new(t, 1)))),
            (1, to(c, 0).chunk(craft::init(&InitSpec::new(t, 1)))),
            // A retransmitted INIT of c: still c's, not a's.
            (2, to(c, 0).chunk(craft::init(&InitSpec::new(t, 1)))),
            (3, from(a, t).chunk(craft::init_ack(&InitSpec::new(sa, 1).cookie(32, CookiePos::After)))),
            (4, from(c, t).chunk(craft::init_ack(&InitSpec::new(sc, 1).cookie(32, CookiePos::After)))),
            (5, to(a, sa).chunk(craft::cookie_echo(&[0; 32]))),
            (6, to(c, sc).chunk(craft::cookie_echo(&[0; 32]))),
            (7, from(a, t).chunk(craft::cookie_ack())),
            (8, from(c, t).chunk(craft::cookie_ack())),
        ];
        for i in 0..5u32 {
            if i < 3 {
                frames.push((10 + 10 * i as u64, to(a, sa).chunk(craft::data(1 + i, 0, i as u16, 18, &[1; 30]))));
            }
            frames.push((11 + 10 * i as u64, to(c, sc).chunk(craft::data(1 + i, 0, i as u16, 18, &[2; 50]))));
            frames.push((12 + 10 * i as u64, from(c, t).chunk(craft::sack(1 + i, 1000, &[], &[]))));
        }
        let o = replay_frames(&tmp, "twohosts.pcap", frames, &ReplayOptions::default());
        assert_eq!(o.associations.len(), 2, "{server_tags:x?}: {:#?}", o.associations);
        assert_eq!(of(&o, EventKind::AssociationUp).len(), 2, "{:?}", o.events);
        for (host, tag, n, bytes) in [(a, sa, 3, 90), (c, sc, 5, 250)] {
            let x = o
                .associations
                .iter()
                .find(|x| x.initiator.addrs == vec![host])
                .unwrap_or_else(|| panic!("{server_tags:x?}: no association of {host}: {:#?}", o.associations));
            assert_eq!(x.responder.addrs, vec![s]);
            assert_eq!((x.initiator.vtag, x.responder.vtag), (Some(t), Some(tag)));
            assert_eq!(x.state, AssocState::Established);
            let p = x.paths.iter().find(|p| p.sender == Role::Initiator).expect("path");
            assert_eq!((p.data_packets, p.data_bytes, p.retransmissions), (n, bytes, 0), "{host}");
        }
        assert!(o.tracker.shared_tags >= 1);
    }
}

// -------------------------------------------------------- ASCONF rule

/// An established multihomed association (a0, a1 - b0, b1) whose initiator
/// sends new DATA on a0 -> b0, then `middle` at 100 ms, then new DATA on
/// a0 -> b1 at 200 ms.
fn asconf_scenario(tmp: &TempDir, name: &str, middle: Vec<(u64, FrameBuilder)>) -> ReplayOutcome {
    let (a0, a1, b0, b1) = (ip("10.2.0.1"), ip("10.2.1.1"), ip("10.2.0.2"), ip("10.2.1.2"));
    let (ta, tb) = (0x0A0A_0001, 0x0B0B_0002);
    let ab = |s, d, tag| FrameBuilder::ip(s, d).sctp(5000, 5000, tag);
    let ba = |s, d, tag| FrameBuilder::ip(s, d).sctp(5000, 5000, tag);
    let mut frames = vec![
        (0, ab(a0, b0, 0).chunk(craft::init(&InitSpec::new(ta, 1).addrs(&[a1])))),
        (1, ba(b0, a0, ta).chunk(craft::init_ack(&InitSpec::new(tb, 1).addrs(&[b1]).cookie(32, CookiePos::After)))),
        (2, ab(a0, b0, tb).chunk(craft::cookie_echo(&[0; 32]))),
        (3, ba(b0, a0, ta).chunk(craft::cookie_ack())),
        (10, ab(a0, b0, tb).chunk(craft::data(1, 0, 0, 46, &[1; 20]))),
        (11, ba(b0, a0, ta).chunk(craft::sack(1, 1000, &[], &[]))),
    ];
    frames.extend(middle);
    frames.push((200, ab(a0, b1, tb).chunk(craft::data(2, 0, 1, 46, &[1; 20]))));
    frames.push((201, ba(b1, a0, ta).chunk(craft::sack(2, 1000, &[], &[]))));
    replay_frames(tmp, name, frames, &ReplayOptions::default())
}

#[test]
fn asconf_moves_are_primary_changed_and_never_failover() {
    let tmp = TempDir::new("asconf");
    let (a0, b0, b1) = (ip("10.2.0.1"), ip("10.2.0.2"), ip("10.2.1.2"));
    let (ta, tb) = (0x0A0A_0001, 0x0B0B_0002);
    let ab = |s, d, tag| FrameBuilder::ip(s, d).sctp(5000, 5000, tag);
    let ba = |s, d, tag| FrameBuilder::ip(s, d).sctp(5000, 5000, tag);
    let auth = || craft::auth(1, 1, &[0; 20]);
    let moved = |o: &ReplayOutcome| {
        let pc: Vec<_> = of(o, EventKind::PrimaryChanged).into_iter().filter(|e| e.from.is_some()).collect();
        assert_eq!(pc.len(), 1, "{:?}", o.events);
        let p = pc[0].path.expect("path");
        assert_eq!((p.src, p.dst), (a0, b1));
        pc[0].asconf
    };

    // Set Primary, acknowledged: the responder asks for b1.
    let set = vec![
        (100, ba(b0, a0, ta).chunks([auth(), craft::asconf(1, b0, &[AsconfReq::SetPrimary { corr_id: 7, addr: b1 }])])),
        (101, ab(a0, b0, tb).chunk(craft::asconf_ack(1, &[AsconfResult::Success { corr_id: 7 }]))),
    ];
    let o = asconf_scenario(&tmp, "set.pcap", set);
    let req = of(&o, EventKind::PrimaryRequested);
    assert_eq!(req.len(), 1, "{:?}", o.events);
    assert_eq!((req[0].endpoint, req[0].addr), (Some(Role::Responder), Some(b1)));
    assert_eq!(req[0].ts - T0, 101 * MS, "on the ASCONF-ACK");
    assert_eq!(moved(&o), Some(AsconfCause::SetPrimary));
    assert!(of(&o, EventKind::Failover).is_empty(), "{:?}", o.events);
    let line = req[0].to_json_line();
    assert!(line.contains("\"event\":\"primary_requested\"") && line.contains("\"addr\":\"10.2.1.2\""), "{line}");

    // Delete IP of the old destination, acknowledged.
    let del = vec![
        (100, ba(b1, a0, ta).chunks([auth(), craft::asconf(2, b1, &[AsconfReq::Delete { corr_id: 8, addr: b0 }])])),
        (101, ab(a0, b1, tb).chunk(craft::asconf_ack(2, &[]))),
    ];
    let o = asconf_scenario(&tmp, "del.pcap", del);
    assert_eq!(of(&o, EventKind::AddressRemoved).len(), 1, "{:?}", o.events);
    assert_eq!(moved(&o), Some(AsconfCause::DeleteIp));
    assert!(of(&o, EventKind::Failover).is_empty(), "{:?}", o.events);

    // The same move with no ASCONF, or with a Set Primary never
    // acknowledged, and no failure anywhere: the sender's own choice, not a
    // failover.
    let unacked = vec![(
        100,
        ba(b0, a0, ta).chunks([auth(), craft::asconf(3, b0, &[AsconfReq::SetPrimary { corr_id: 9, addr: b1 }])]),
    )];
    for (name, middle) in [("none.pcap", vec![]), ("unacked.pcap", unacked)] {
        let o = asconf_scenario(&tmp, name, middle);
        assert_eq!(moved(&o), None, "{name}");
        assert!(of(&o, EventKind::Failover).is_empty(), "{name}: {:?}", o.events);
        let pc: Vec<_> = of(&o, EventKind::PrimaryChanged).into_iter().filter(|e| e.from.is_some()).collect();
        assert_eq!(pc[0].cause, Some(sctp_monitor::event::Cause::Sender), "{name}");
        assert!(of(&o, EventKind::PrimaryRequested).is_empty());
    }
}
