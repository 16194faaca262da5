//! The error causes of ABORT and ERROR chunks, against tshark and through
//! the kernel programs.
//!
//! tshark is the reference: on every capture fixture and on a capture
//! written here from crafted frames (ERRORs with every kind of cause, alone
//! and several together, without any; ABORTs with a user's reason, one
//! longer than a kernel record, a protocol violation, more causes than an
//! event lists, none, the T bit; one association flooding ERRORs), the cause codes of every ABORT and
//! ERROR replay reports are tshark's, chunk for chunk, at tshark's time; an
//! ABORT replay does not report as an end is one the tracker counted as
//! stray; the flood's ERRORs held back add up with the reported ones to
//! tshark's count, and the cause counters (the metrics) to tshark's causes.
//! Then the same frames go through the real compiled programs
//! (BPF_PROG_TEST_RUN, XDP ingress) and the tracker fed their records must
//! give the same events as the replay. Last, a real stack: a usrsctp client
//! aborting with a reason (`tests/peer/sctp_peer.c --abort-reason`),
//! captured between two namespaces, replayed against tshark.
//!
//! The live and usrsctp parts need root (BPF_PROG_TEST_RUN, namespaces
//! with fixed names); run under the shared lock: `flock
//! /tmp/sctpmon-kernel.lock cargo test -p sctp-monitor --test
//! abort_error_causes`.

mod support;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use sctp_monitor::craft::{self, FrameBuilder, InitSpec};
use sctp_monitor::decode::{DecodeStats, decode_record};
use sctp_monitor::error_cause;
use sctp_monitor::event::{DownReason, Event, EventKind};
use sctp_monitor::kernel::{paths, testrun::Prog};
use sctp_monitor::replay::{ReplayOptions, ReplayOutcome, replay};
use sctp_monitor::tracker::Tracker;

const T0: u64 = 1_700_000_000_000_000_000;
const MS: u64 = 1_000_000;

/// One ABORT or ERROR chunk: when, which, its cause codes in order.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Seen {
    ts_ns: u64,
    chunk_type: u8,
    codes: Vec<u16>,
}

/// What tshark decodes of one ABORT or ERROR chunk, beyond [`Seen`].
#[derive(Debug, Clone)]
struct TsharkChunk {
    seen: Seen,
    src_port: u16,
    staleness_us: Vec<u32>,
    /// `sctp.cause_information` of each cause that has it, as bytes.
    info: Vec<Vec<u8>>,
}

/// `frame.time_epoch` as nanoseconds, read as the decimal it is.
fn epoch_ns(s: &str) -> u64 {
    let (sec, frac) = s.split_once('.').unwrap_or((s, ""));
    let frac = format!("{frac:0<9}");
    sec.parse::<u64>().expect("seconds") * 1_000_000_000 + frac[..9].parse::<u64>().expect("fraction")
}

fn hex_bytes(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| c.is_ascii_hexdigit()).collect();
    (0..s.len() / 2).map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).expect("hex")).collect()
}

/// Every ABORT and ERROR chunk of `file` as tshark decodes it (the
/// command of the monitor's docs: `-Y 'sctp.chunk_type == 6 ||
/// sctp.chunk_type == 9'`). Each packet of these captures holds one of
/// them at most.
fn tshark_chunks(ts: &str, file: &Path) -> Vec<TsharkChunk> {
    let fields = [
        "frame.time_epoch",
        "sctp.srcport",
        "sctp.chunk_type",
        "sctp.cause_code",
        "sctp.cause_measure_of_staleness",
        "sctp.cause_information",
    ];
    let mut cmd = Command::new(ts);
    cmd.arg("-r").arg(file).arg("-n");
    cmd.args(["-Y", "(sctp.chunk_type == 6 || sctp.chunk_type == 9) && !icmp && !icmpv6", "-T", "fields"]);
    cmd.args(["-E", "separator=\t", "-E", "occurrence=a", "-E", "aggregator=;"]);
    for f in fields {
        cmd.args(["-e", f]);
    }
    let out = cmd.output().expect("run tshark");
    assert!(out.status.success(), "tshark on {}: {}", file.display(), String::from_utf8_lossy(&out.stderr));
    let list = |s: &str| -> Vec<String> { s.split(';').filter(|x| !x.is_empty()).map(str::to_string).collect() };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let v: Vec<&str> = l.split('\t').collect();
            assert_eq!(v.len(), fields.len(), "tshark line {l:?}");
            let types: Vec<u8> = list(v[2]).iter().map(|t| support::tshark::num(t) as u8).collect();
            let ours: Vec<u8> = types.iter().copied().filter(|&t| t == 6 || t == 9).collect();
            assert_eq!(ours.len(), 1, "{}: one ABORT or ERROR a packet: {l:?}", file.display());
            TsharkChunk {
                seen: Seen {
                    ts_ns: epoch_ns(v[0]),
                    chunk_type: ours[0],
                    codes: list(v[3]).iter().map(|c| support::tshark::num(c) as u16).collect(),
                },
                src_port: support::tshark::num(v[1]) as u16,
                staleness_us: list(v[4]).iter().map(|c| support::tshark::num(c) as u32).collect(),
                info: list(v[5]).iter().map(|h| hex_bytes(h)).collect(),
            }
        })
        .collect()
}

/// The ABORTs replay reports (an `association_down` with reason abort) and
/// the ERRORs (`error_reported`), with the codes of the causes listed.
fn reported(events: &[Event]) -> Vec<(Seen, &Event)> {
    events
        .iter()
        .filter_map(|e| {
            let chunk_type = match (e.event, e.reason) {
                (EventKind::AssociationDown, Some(DownReason::Abort)) => 6,
                (EventKind::ErrorReported, _) => 9,
                _ => return None,
            };
            let codes = e.causes.iter().flatten().map(|c| c.code).collect();
            Some((Seen { ts_ns: e.ts, chunk_type, codes }, e))
        })
        .collect()
}

/// tshark's causes of a chunk as an event lists them: the first
/// [`error_cause::MAX_LISTED`].
fn listed(s: &Seen) -> Seen {
    Seen { codes: s.codes.iter().copied().take(error_cause::MAX_LISTED).collect(), ..s.clone() }
}

fn replay_file(file: &Path) -> ReplayOutcome {
    let o = replay(file, &ReplayOptions::default()).expect("replay");
    assert!(o.error.is_none(), "{}: {:?}", file.display(), o.error);
    o
}

#[test]
fn the_causes_of_every_abort_and_error_in_the_fixtures_are_tsharks() {
    let Some(ts) = support::tshark::find() else { return };
    let files = support::fixtures();
    assert!(files.len() >= 10, "{files:?}");
    let mut aborts = 0;
    for f in &files {
        let want = tshark_chunks(ts, f);
        let o = replay_file(f);
        let got = reported(&o.events);
        // No extra: every reported ABORT or ERROR is one of tshark's, its
        // causes those tshark decodes.
        let mut left: Vec<Seen> = want.iter().map(|c| listed(&c.seen)).collect();
        for (s, e) in &got {
            let i = left.iter().position(|w| w == s);
            assert!(i.is_some(), "{}: replay reports {s:?} ({e:?}), tshark has no such chunk: {want:?}", f.display());
            left.remove(i.unwrap_or_default());
        }
        // None missing: what is left are ABORTs the tracker found stray
        // (to an address never announced: no end).
        assert!(left.iter().all(|s| s.chunk_type == 6), "{}: ERRORs not reported: {left:?}", f.display());
        assert_eq!(left.len() as u64, o.tracker.stray_aborts, "{}: ABORTs not reported: {left:?}", f.display());
        aborts += want.len();
    }
    assert!(aborts > 0, "the fixtures hold ABORTs");
}

/// One association of the crafted capture: ends, ports, tags.
struct Assoc {
    a: IpAddr,
    b: IpAddr,
    pa: u16,
    pb: u16,
    ta: u32,
    tb: u32,
}

impl Assoc {
    fn new(n: u16, v6: bool) -> Assoc {
        let addr = |host: u16| -> IpAddr {
            if v6 {
                IpAddr::V6(Ipv6Addr::new(0xfd00, 0xcafe, n, 0, 0, 0, 0, host))
            } else {
                IpAddr::V4(Ipv4Addr::new(10, 77, n as u8, host as u8))
            }
        };
        Assoc {
            a: addr(1),
            b: addr(2),
            pa: 5000 + n,
            pb: 6000 + n,
            ta: 0x1100_0000 + n as u32,
            tb: 0x2200_0000 + n as u32,
        }
    }

    /// A frame from A (initiator) or B with the tag its receiver expects.
    fn frame(&self, from_a: bool, chunk: Vec<u8>) -> Vec<u8> {
        let (s, d, sp, dp, tag) = if from_a {
            (self.a, self.b, self.pa, self.pb, self.tb)
        } else {
            (self.b, self.a, self.pb, self.pa, self.ta)
        };
        FrameBuilder::ip(s, d).sctp(sp, dp, tag).chunk(chunk).build()
    }

    /// An ABORT with the T bit: the sender's own tag.
    fn reflected_abort(&self, from_a: bool, chunk: Vec<u8>) -> Vec<u8> {
        let (s, d, sp, dp, tag) = if from_a {
            (self.a, self.b, self.pa, self.pb, self.ta)
        } else {
            (self.b, self.a, self.pb, self.pa, self.tb)
        };
        FrameBuilder::ip(s, d).sctp(sp, dp, tag).chunk(chunk).build()
    }

    fn handshake(&self) -> Vec<Vec<u8>> {
        let init = FrameBuilder::ip(self.a, self.b)
            .sctp(self.pa, self.pb, 0)
            .chunk(craft::init(&InitSpec::new(self.ta, 1)))
            .build();
        vec![
            init,
            self.frame(false, craft::init_ack(&InitSpec::new(self.tb, 1))),
            self.frame(true, craft::cookie_echo(&[9; 32])),
            self.frame(false, craft::cookie_ack()),
        ]
    }
}

/// The flood's association (its ports tell its chunks apart).
const FLOOD: u16 = 9;
const FLOOD_ERRORS: usize = 150;

/// Timed frames: the associations one after another; ERRORs of one
/// association 1.1 s apart (each reported), but the flood's, 10 ms apart.
fn crafted() -> Vec<(u64, Vec<u8>)> {
    use craft::error_cause as cause;
    let mut t = T0;
    let mut out = Vec::new();
    let mut at = |step: u64, f: Vec<u8>| {
        t += step;
        out.push((t, f));
    };
    // 1: ERRORs of every kind, then the responder's user-initiated abort.
    let x = Assoc::new(1, false);
    for f in x.handshake() {
        at(MS, f);
    }
    let errors = [
        vec![cause(6, &craft::raw_chunk(0xee, 0, &[1, 2, 3, 4]))],
        vec![cause(3, &2_500u32.to_be_bytes())],
        vec![cause(8, &craft::param(0x8009, &[0; 4])), cause(9, &77u32.to_be_bytes())],
        vec![],
        vec![cause(1, &[0, 7, 0, 0])],
        vec![cause(0x00A2, &craft::addr_param(x.a)), cause(0x0105, &[])],
        vec![cause(0x7777, b"??")],
        vec![cause(13, b"peer sent a TSN out of window")],
        vec![
            cause(2, &[0, 0, 0, 1, 0, 7]),
            cause(5, &craft::addr_param(x.b)),
            cause(10, &[]),
            cause(11, &craft::addr_param(x.b)),
        ],
    ];
    for (i, c) in errors.into_iter().enumerate() {
        at(1_100 * MS, x.frame(i % 2 == 0, craft::error(&c)));
    }
    at(1_100 * MS, x.frame(false, craft::abort(false, &[cause(12, b"maintenance window\0")])));
    // 2: IPv6, the initiator aborts with its own tag: a protocol
    // violation, with a line break and a direction override in the text,
    // and Out of Resource.
    let x = Assoc::new(2, true);
    for f in x.handshake() {
        at(MS, f);
    }
    let reason = "bad\nlength \u{202E}gnol".as_bytes();
    at(MS, x.reflected_abort(true, craft::abort(true, &[cause(13, reason), cause(4, &[])])));
    // 3: an ABORT without causes; 4: one with more causes than an event
    // lists (a binary user reason first, the A0-A4 codes, unknown ones).
    let x = Assoc::new(3, false);
    for f in x.handshake() {
        at(MS, f);
    }
    at(MS, x.frame(true, craft::abort(false, &[])));
    let x = Assoc::new(4, false);
    for f in x.handshake() {
        at(MS, f);
    }
    let mut many = vec![cause(12, &[0x01, 0xff, 0xfe, 0x02, 0x80, 0x00, 0x1b])];
    // RFC 5061's causes carry the ASCONF request refused (Delete IP).
    let refused = craft::param(0xC002, &[&7u32.to_be_bytes()[..], &craft::addr_param(x.b)].concat());
    many.extend((0..5).map(|i| cause(0x00A0 + i, &refused)));
    many.extend((0..14).map(|i| cause(0x4000 + i, &[i as u8])));
    at(MS, x.frame(false, craft::abort(false, &many)));
    // 5: a user's reason longer than the kernel's 512 bytes of a chunk:
    // live, the record keeps part of it, which is still more than the
    // text an event carries.
    let x = Assoc::new(5, false);
    for f in x.handshake() {
        at(MS, f);
    }
    let long: Vec<u8> = b"0123456789 abcdefghijklmnopqrstuvwxyz ".iter().copied().cycle().take(600).collect();
    at(MS, x.frame(true, craft::abort(false, &[cause(12, &long)])));
    // The flood: unrecognized chunk type, 10 ms apart, then an abort.
    let x = Assoc::new(FLOOD, false);
    for f in x.handshake() {
        at(MS, f);
    }
    for i in 0..FLOOD_ERRORS {
        let c = if i % 50 == 49 { cause(1, &[0, 9, 0, 0]) } else { cause(6, &craft::raw_chunk(0xef, 0, &[])) };
        at(10 * MS, x.frame(true, craft::error(&[c])));
    }
    at(10 * MS, x.frame(false, craft::abort(false, &[cause(12, b"enough")])));
    out
}

fn write_pcap(frames: &[(u64, Vec<u8>)]) -> support::pcap::TempPcap {
    support::pcap::TempPcap::write("causes", frames)
}

fn is_flood(port: u16) -> bool {
    port == 5000 + FLOOD || port == 6000 + FLOOD
}

#[test]
fn crafted_aborts_and_errors_are_reported_as_tshark_decodes_them() {
    let Some(ts) = support::tshark::find() else { return };
    let frames = crafted();
    let file = write_pcap(&frames);
    let want = tshark_chunks(ts, file.path());
    let o = replay_file(file.path());
    let got = reported(&o.events);
    let flood_assoc = o.associations.iter().find(|a| is_flood(a.initiator.port)).expect("flood association").id;

    // Outside the flood, every chunk is reported once: the same chunks,
    // the same causes, at the same times.
    let mut w: Vec<Seen> = want.iter().filter(|c| !is_flood(c.src_port)).map(|c| listed(&c.seen)).collect();
    let mut g: Vec<Seen> = got.iter().filter(|(_, e)| e.assoc != flood_assoc).map(|(s, _)| s.clone()).collect();
    w.sort();
    g.sort();
    assert_eq!(g, w, "replay against tshark");
    assert!(w.iter().filter(|s| s.chunk_type == 9).count() >= 9 && w.iter().any(|s| s.chunk_type == 6));

    // Per chunk, what goes with the codes.
    for c in want.iter().filter(|c| !is_flood(c.src_port)) {
        let (_, e) = got.iter().find(|(s, _)| *s == listed(&c.seen)).expect("reported");
        let causes = e.causes.clone().unwrap_or_default();
        let omitted = c.seen.codes.len().saturating_sub(error_cause::MAX_LISTED);
        assert_eq!(e.causes_omitted.unwrap_or(0) as usize, omitted, "{e:?}");
        // The sender: the packet's source port is the endpoint's.
        let sender = if c.src_port < 6000 { "initiator" } else { "responder" };
        assert_eq!(e.endpoint.map(|r| format!("{r:?}").to_lowercase()).as_deref(), Some(sender), "{e:?}");
        for x in &causes {
            assert_eq!(x.name, error_cause::name(x.code));
        }
        let stale: Vec<u32> = causes.iter().filter_map(|x| x.staleness_us).collect();
        assert_eq!(stale, c.staleness_us, "{e:?}");
        // The texts: tshark's information bytes of each user-initiated
        // abort and protocol violation, as text where it is printable.
        let texts: Vec<Option<&str>> =
            causes.iter().filter(|x| x.code == 12 || x.code == 13).map(|x| x.text.as_deref()).collect();
        let mut infos = c.info.iter();
        for (x, text) in causes.iter().filter(|x| x.code == 12 || x.code == 13).zip(&texts) {
            // tshark shows information for causes it has no decoder of
            // its own for; these two it keeps as bytes.
            let Some(info) = infos.next() else { panic!("tshark gives no information for {x:?}: {c:?}") };
            let trimmed: &[u8] = &info[..info.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1)];
            if trimmed.iter().all(|b| (0x20..0x7f).contains(b)) {
                // Whole, or its first characters and an ellipsis.
                let ascii = std::str::from_utf8(trimmed).expect("ASCII");
                let n = error_cause::MAX_TEXT_CHARS;
                let want = if ascii.len() > n { format!("{}…", &ascii[..n]) } else { ascii.to_string() };
                assert_eq!(*text, Some(want.as_str()), "{e:?}");
            } else if let Some(t) = text {
                assert!(!t.chars().any(|ch| ch.is_control() || ch == '\u{202E}'), "{t:?}");
            }
        }
    }
    // Texts as a reader sees them.
    let texts: Vec<String> =
        got.iter().flat_map(|(_, e)| e.causes.iter().flatten()).filter_map(|c| c.text.clone()).collect();
    assert!(texts.contains(&"maintenance window".to_string()), "{texts:?}");
    assert!(texts.contains(&"bad\u{FFFD}length \u{FFFD}gnol".to_string()), "{texts:?}");
    assert!(
        texts.iter().any(|t| t.chars().count() == error_cause::MAX_TEXT_CHARS + 1 && t.ends_with('…')),
        "{texts:?}"
    );

    // The flood: few events, and what they say adds up to tshark's count.
    let flood_want: Vec<&TsharkChunk> =
        want.iter().filter(|c| is_flood(c.src_port) && c.seen.chunk_type == 9).collect();
    let flood_got: Vec<&Event> =
        got.iter().filter(|(s, e)| e.assoc == flood_assoc && s.chunk_type == 9).map(|(_, e)| *e).collect();
    assert_eq!(flood_want.len(), FLOOD_ERRORS);
    let span_s = (flood_want.last().expect("last").seen.ts_ns - flood_want[0].seen.ts_ns) / 1_000_000_000;
    let codes: std::collections::BTreeSet<u16> = flood_want.iter().flat_map(|c| c.seen.codes.clone()).collect();
    assert!(
        flood_got.len() <= codes.len() * (span_s as usize + 1),
        "at most one a second per code: {} events over {span_s} s",
        flood_got.len()
    );
    for e in &flood_got {
        let s =
            listed(&Seen { ts_ns: e.ts, chunk_type: 9, codes: e.causes.iter().flatten().map(|c| c.code).collect() });
        assert!(flood_want.iter().any(|c| listed(&c.seen) == s), "{e:?} is no chunk of tshark's");
    }
    // Reported, and held back and counted in the next report of the code;
    // the rest after each code's last report is in the replay's tally.
    let tally: u64 =
        o.associations.iter().find(|a| a.id == flood_assoc).expect("flood").errors.iter().map(|e| e.1).sum();
    assert_eq!(tally as usize, FLOOD_ERRORS, "replay's tally of the flood's ERRORs");
    for code in &codes {
        let of = |c: &[u16]| c.first() == Some(code);
        let ev: Vec<&&Event> =
            flood_got.iter().filter(|e| of(&e.causes.iter().flatten().map(|c| c.code).collect::<Vec<_>>())).collect();
        let last = ev.last().expect("each code reported").ts;
        let up_to_last = flood_want.iter().filter(|c| of(&c.seen.codes) && c.seen.ts_ns <= last).count();
        let said: u32 = ev.iter().map(|e| 1 + e.repeated.unwrap_or(0)).sum();
        assert_eq!(said as usize, up_to_last, "code {code}: events and their repeated counts against tshark");
    }

    // The cause counters (the metrics): every cause tshark decodes, by name.
    let mut want_abort = [0u64; error_cause::LABELS];
    let mut want_error = [0u64; error_cause::LABELS];
    for c in &want {
        let into = if c.seen.chunk_type == 6 { &mut want_abort } else { &mut want_error };
        for &code in &c.seen.codes {
            into[error_cause::label_index(code)] += 1;
        }
    }
    assert_eq!(o.tracker.abort_causes, want_abort, "abort_causes_total against tshark");
    assert_eq!(o.tracker.error_causes, want_error, "error_causes_total against tshark");

    // The report says it too.
    let mut report = Vec::new();
    sctp_monitor::report::write_report(&o, &mut report).expect("report");
    let report = String::from_utf8(report).expect("UTF-8");
    assert!(report.contains("aborted by the responder at"), "{report}");
    assert!(report.contains("user_initiated_abort (12) \"maintenance window\""), "{report}");
    let first_6 = flood_want.iter().filter(|c| c.seen.codes.first() == Some(&6)).count();
    let line = format!("ERROR chunks {}, by first cause: unrecognized_chunk_type (6) {first_6}", flood_want.len());
    assert!(report.contains(&line), "{line}\n{report}");
}

#[test]
fn the_same_aborts_and_errors_live_give_the_same_events() {
    let Some(mut bed) = support::test_bed("abort_error_causes") else { return };
    let frames = crafted();
    let opts = ReplayOptions::default();
    let mut live = Tracker::new(opts.tracker.clone());
    let mut live_events: Vec<Event> = Vec::new();
    let mut st = DecodeStats::default();
    // Records of chunks the kernel cut (the long reason's ABORT).
    let mut cut = 0;
    for (ts, f) in &frames {
        bed.pass(Prog::Ingress, f).expect("ingress run");
        for r in bed.drain() {
            let (a, b) = r.segments();
            cut += (r.chunk_len as usize > a.len() + b.len()) as usize;
            let (m, chunk) = decode_record(&r, *ts, &mut st).expect("a kernel record decodes");
            live.process(&m, std::slice::from_ref(&chunk), &mut live_events);
        }
        for (k, s) in paths::read_all(&bed.ebpf).expect("read the per-path map") {
            live.observe_path_stats(&k, &s, *ts, &mut live_events);
        }
        live.tick(*ts, &mut live_events);
    }
    assert!(cut >= 1, "the long reason's ABORT reached userspace cut");
    let file = write_pcap(&frames);
    let o = replay_file(file.path());
    let kinds = |ev: &[Event]| {
        let mut m: BTreeMap<&str, usize> = BTreeMap::new();
        for e in ev {
            *m.entry(e.event.name()).or_default() += 1;
        }
        m
    };
    assert!(kinds(&o.events).get("error_reported").is_some_and(|&n| n >= 9), "{:?}", kinds(&o.events));
    support::assert_same_events(&live_events, &o.events);
    assert_eq!(live.stats().abort_causes, o.tracker.abort_causes);
    assert_eq!(live.stats().error_causes, o.tracker.error_causes);
}

/// A real stack's user-initiated abort: a usrsctp client
/// (`tests/peer/sctp_peer.c --abort-reason`) sends DATA for a second, then
/// aborts with a reason; `tcpdump` captures it between two namespaces. The
/// replay says the initiator aborted with that reason, as tshark decodes
/// the ABORT.
#[test]
fn a_usrsctp_user_initiated_abort_is_reported_with_its_reason() {
    use std::process::Stdio;
    use support::process::{Proc, TempDir, have, peer_binary};
    if !support::privileged("a_usrsctp_user_initiated_abort_is_reported_with_its_reason") {
        return;
    }
    let Some(ts) = support::tshark::find() else { return };
    if !have("tcpdump") {
        assert!(std::env::var_os("CI").is_none(), "tcpdump is missing (cargo xtask setup --tests)");
        eprintln!("SKIPPED: tcpdump is missing");
        return;
    }
    let peer = peer_binary();
    let (c, s) = (support::NetNs::new("sctpmon-abrtc"), support::NetNs::new("sctpmon-abrts"));
    support::sh(&[
        "ip", "link", "add", "abrtc", "netns", &c.name, "type", "veth", "peer", "name", "abrts", "netns", &s.name,
    ]);
    for (ns, dev, addr) in [(&c, "abrtc", "10.96.1.1/24"), (&s, "abrts", "10.96.1.2/24")] {
        ns.ip(&["addr", "add", addr, "dev", dev]);
        ns.ip(&["link", "set", dev, "up"]);
    }
    let tmp = TempDir::new("abort-reason");
    let cap = tmp.path("abort.pcap");
    let mut tcpdump = s.cmd("tcpdump");
    // --immediate-mode: else the last packets wait in the kernel for a
    // block timeout that the stop below comes before.
    tcpdump.args(["-i", "abrts", "-Z", "root", "-U", "--immediate-mode", "-w"]).arg(&cap).arg("sctp");
    tcpdump.stdout(Stdio::null()).stderr(Stdio::null());
    let mut tcpdump = Proc::spawn(tcpdump, "tcpdump");
    std::thread::sleep(Duration::from_millis(1500));
    let mut server = s.cmd(peer.to_str().expect("path"));
    server.args(["server", "--bind", "10.96.1.2", "--port", "5000", "--once", "--stats-interval", "0"]);
    server.stdout(std::fs::File::create(tmp.path("server.log")).expect("log")).stderr(Stdio::null());
    let mut server = Proc::spawn(server, "server");
    std::thread::sleep(Duration::from_millis(500));
    let reason = "operator: maintenance of link 7";
    let mut client = c.cmd(peer.to_str().expect("path"));
    client.args(["client", "--bind", "10.96.1.1", "--connect", "10.96.1.2", "--port", "5000"]);
    client.args(["--rate", "20", "--duration", "1", "--abort-reason", reason, "--stats-interval", "0"]);
    client.stdout(std::fs::File::create(tmp.path("client.log")).expect("log")).stderr(Stdio::null());
    let mut client = Proc::spawn(client, "client");
    let st = client.wait(Duration::from_secs(20));
    assert!(st.success(), "client: {st:?}");
    server.wait(Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(300));
    tcpdump.signal(libc::SIGINT);
    tcpdump.wait(Duration::from_secs(10));

    let want = tshark_chunks(ts, &cap);
    let o = replay_file(&cap);
    let got = reported(&o.events);
    let aborts: Vec<&TsharkChunk> = want.iter().filter(|c| c.seen.chunk_type == 6).collect();
    let packets = support::tshark::packets(ts, &cap).len();
    assert_eq!(aborts.len(), 1, "one ABORT on the wire: {want:?} ({packets} SCTP packets captured)");
    assert_eq!(aborts[0].seen.codes, [12], "tshark: a user-initiated abort");
    assert_eq!(
        got.iter().map(|g| listed(&g.0)).collect::<Vec<_>>(),
        [listed(&aborts[0].seen)],
        "replay against tshark"
    );
    let down = got[0].1;
    assert_eq!(down.endpoint, Some(sctp_monitor::event::Role::Initiator), "{down:?}");
    let causes = down.causes.clone().unwrap_or_default();
    assert_eq!(causes[0].name, "user_initiated_abort");
    assert_eq!(causes[0].text.as_deref(), Some(reason), "{down:?}");
    // tshark's bytes of the reason are the reason.
    assert_eq!(aborts[0].info.first().map(|b| b.as_slice()), Some(reason.as_bytes()));
}
