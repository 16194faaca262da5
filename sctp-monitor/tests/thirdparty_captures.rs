//! Captures made by other SCTP stacks and tools (`tests/fixtures/thirdparty`,
//! see its PROVENANCE): the Linux kernel's SCTP under Open5GS (NGAP, S1AP,
//! Diameter; Linux cooked SLL pcapng) and a big-endian Ethernet pcap of
//! SIGTRAN traffic. Each is replayed as it is and rewrapped into every link
//! type the replay reads (Ethernet, SLL, SLL2, raw IP, BSD loopback in both
//! byte orders), and tshark reads the same file in the test:
//! - the replay reads every SCTP packet tshark reads, and nothing crashes;
//! - it reports each association with both address sets as tshark decodes
//!   them (RFC 9260 §5.1.2: the INIT's / INIT-ACK's IPv4 and IPv6 Address
//!   parameters plus the packet's source; for an association picked up
//!   mid-flight, the addresses each endpoint sent from and was sent to),
//!   their ports and tags, and the chunks of each association by type;
//! - it reports a failover only where tshark's new TSNs (above the highest so
//!   far in that direction) moved to another path, and its primary path per
//!   direction is where tshark's last new TSN went;
//! - mutated copies of the files (a deterministic mutator) never crash the
//!   replay, and the damage it can see is a clear error or a counter.
//!
//! How each association ended (shutdown or abort) is compared, and one the
//! wire ended must be in state `Closed`. None of these captures has the
//! other hard shapes (any-interface duplicates, stray closing chunks
//! after an ABORT, other pcap magics, gzip, Set-Primary, colliding tags):
//! their SCTP packet counts equal tshark's.
//!
//! tshark is needed: the test skips with a message without it, and fails
//! under CI (`CI` set), where `cargo xtask setup --tests` installs it.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use support::process::TempDir;
use support::tshark::{self, Packet};

use pcap_file::pcap::{PcapHeader, PcapPacket, PcapReader, PcapWriter};
use pcap_file::{DataLink, Endianness, TsResolution};

use sctp_monitor::craft::XorShift;
use sctp_monitor::event::{DownReason, EventKind, PathRef, Role};
use sctp_monitor::replay::{ReplayError, ReplayOptions, ReplayOutcome, replay, replay_bytes};
use sctp_monitor::tracker::AssocState;
use sctp_monitor::tracker::AssocView;

/// The committed captures (file names under `tests/fixtures/thirdparty`).
const FILES: &[&str] = &[
    "open5gs-5g-roaming-lbo.pcapng",
    "open5gs-testregistration.pcapng",
    "open5gs-srsenb.pcapng",
    "pcapfile-sctp-bigendian.pcap",
    "magma-nsa-connection.pcap",
    "magma-gx-gy-combined-04.pcapng",
];

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/thirdparty").join(name)
}

// ------------------------------------------------------------- rewrapping

/// The IP packets of a capture with their times, whatever its link type
/// (the fixtures have SLL and Ethernet without VLAN tags; frames that carry
/// no IP, such as ARP, are left out).
fn ip_packets(path: &Path) -> Vec<(Duration, Vec<u8>)> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let ip_of = |dl: DataLink, f: &[u8]| -> Option<Vec<u8>> {
        let (et, off) = match dl {
            DataLink::LINUX_SLL => (u16::from_be_bytes([*f.get(14)?, *f.get(15)?]), 16),
            DataLink::ETHERNET => (u16::from_be_bytes([*f.get(12)?, *f.get(13)?]), 14),
            other => panic!("{}: link type {other:?} not expected in the fixtures", path.display()),
        };
        matches!(et, 0x0800 | 0x86DD).then(|| f[off..].to_vec())
    };
    let mut out = Vec::new();
    if bytes.starts_with(&[0x0a, 0x0d, 0x0d, 0x0a]) {
        // Read here block by block (little-endian sections, as the fixtures
        // are), not with pcap-file's reader: that one refuses interface
        // options without the closing opt_endofopt, which magma's files have.
        let le32 = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4"));
        let le16 = |at: usize| u16::from_le_bytes(bytes[at..at + 2].try_into().expect("2"));
        assert_eq!(le32(8), 0x1A2B_3C4D, "{}: a little-endian section", path.display());
        // Per interface: link type and nanoseconds per timestamp unit.
        let mut links: Vec<(DataLink, u64)> = Vec::new();
        let mut at = 0;
        while at + 12 <= bytes.len() {
            let (kind, len) = (le32(at), le32(at + 4) as usize);
            match kind {
                1 => {
                    let mut ns = 1_000;
                    let mut o = at + 16;
                    while o + 4 <= at + len - 4 && le16(o) != 0 {
                        let l = le16(o + 2) as usize;
                        if le16(o) == 9 {
                            let r = bytes[o + 4];
                            assert!(r & 0x80 == 0 && r <= 9, "{}: if_tsresol {r}", path.display());
                            ns = 10u64.pow(9 - u32::from(r));
                        }
                        o += 4 + l.div_ceil(4) * 4;
                    }
                    links.push((DataLink::from(u32::from(le16(at + 8))), ns));
                }
                6 => {
                    let (dl, ns) = links[le32(at + 8) as usize];
                    let t = (u64::from(le32(at + 12)) << 32 | u64::from(le32(at + 16))) * ns;
                    let cap = le32(at + 20) as usize;
                    if let Some(ip) = ip_of(dl, &bytes[at + 28..at + 28 + cap]) {
                        out.push((Duration::from_nanos(t), ip));
                    }
                }
                _ => {}
            }
            at += len;
        }
    } else {
        let mut r = PcapReader::new(&bytes[..]).expect("pcap header");
        let dl = r.header().datalink;
        while let Some(p) = r.next_packet() {
            let p = p.expect("pcap record");
            if let Some(ip) = ip_of(dl, &p.data) {
                out.push((p.timestamp, ip));
            }
        }
    }
    out
}

/// Link types the replay reads, as rewrapping targets.
#[derive(Debug, Clone, Copy)]
enum Wrap {
    Ethernet,
    Sll,
    Sll2,
    RawIp,
    /// BSD loopback, address family in little-endian (the writer's order).
    Null,
    /// OpenBSD loopback, address family big-endian.
    Loop,
}

const WRAPS: [Wrap; 6] = [Wrap::Ethernet, Wrap::Sll, Wrap::Sll2, Wrap::RawIp, Wrap::Null, Wrap::Loop];

impl Wrap {
    fn datalink(self) -> DataLink {
        match self {
            Wrap::Ethernet => DataLink::ETHERNET,
            Wrap::Sll => DataLink::LINUX_SLL,
            Wrap::Sll2 => DataLink::LINUX_SLL2,
            Wrap::RawIp => DataLink::RAW,
            Wrap::Null => DataLink::NULL,
            Wrap::Loop => DataLink::LOOP,
        }
    }

    /// The link-layer header of one IP packet.
    fn header(self, ip: &[u8]) -> Vec<u8> {
        let v6 = ip.first().is_some_and(|b| b >> 4 == 6);
        let et: u16 = if v6 { 0x86DD } else { 0x0800 };
        let af: u32 = if v6 { 24 } else { 2 };
        match self {
            Wrap::Ethernet => {
                let mut h = vec![0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01];
                h.extend_from_slice(&et.to_be_bytes());
                h
            }
            Wrap::Sll => {
                // Packet type 0 (to us), ARPHRD_LOOPBACK 772, address length 6.
                let mut h = vec![0, 0, 0x03, 0x04, 0, 6, 0, 0, 0, 0, 0, 0, 0, 0];
                h.extend_from_slice(&et.to_be_bytes());
                h
            }
            Wrap::Sll2 => {
                // Protocol, reserved, ifindex 1, ARPHRD_LOOPBACK, type 0,
                // address length 6, address (8).
                let mut h = et.to_be_bytes().to_vec();
                h.extend_from_slice(&[0, 0, 0, 0, 0, 1, 0x03, 0x04, 0, 6, 0, 0, 0, 0, 0, 0, 0, 0]);
                h
            }
            Wrap::RawIp => Vec::new(),
            Wrap::Null => af.to_le_bytes().to_vec(),
            Wrap::Loop => af.to_be_bytes().to_vec(),
        }
    }
}

/// A nanosecond pcap of `packets` behind `wrap`'s header.
fn rewrap(packets: &[(Duration, Vec<u8>)], wrap: Wrap) -> Vec<u8> {
    let header = PcapHeader {
        datalink: wrap.datalink(),
        ts_resolution: TsResolution::NanoSecond,
        snaplen: 262_144,
        endianness: Endianness::Little,
        ..PcapHeader::default()
    };
    let mut w = PcapWriter::with_header(Vec::new(), header).expect("pcap header");
    for (ts, ip) in packets {
        let mut f = wrap.header(ip);
        f.extend_from_slice(ip);
        w.write_packet(&PcapPacket::new(*ts, f.len() as u32, &f)).expect("pcap record");
    }
    w.into_writer()
}

/// Every file to check: each fixture as committed, then rewrapped into
/// each link type (written to `tmp`).
fn all_files(tmp: &TempDir) -> Vec<PathBuf> {
    let mut v = Vec::new();
    for name in FILES {
        let orig = fixture(name);
        let ips = ip_packets(&orig);
        assert!(!ips.is_empty(), "{name}: no IP packets");
        v.push(orig);
        for w in WRAPS {
            v.push(tmp.write(&format!("{name}.{w:?}.pcap"), &rewrap(&ips, w)));
        }
    }
    v
}

// ------------------------------------------------------------- tshark's reading

/// One endpoint of an association as tshark's packets show it: its port,
/// the tag the peer puts on packets to it, and its addresses.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord)]
struct End {
    port: u16,
    tag: Option<u32>,
    addrs: BTreeSet<IpAddr>,
}

/// An association from tshark's packets.
#[derive(Debug, Default)]
struct Want {
    /// [initiator, responder] when the handshake is in the capture; else
    /// [first sender, peer].
    ends: [End; 2],
    handshake: bool,
    /// Chunk type -> count.
    chunks: BTreeMap<u8, u64>,
    /// Per sending end: moves of new DATA to another path, and the path of
    /// the last new DATA.
    moves: [u32; 2],
    last_new: [Option<(IpAddr, IpAddr)>; 2],
    highest: [Option<u32>; 2],
}

/// Serial-number "a is after b" (RFC 1982, 32 bits).
fn after(a: u32, b: u32) -> bool {
    a != b && a.wrapping_sub(b) < 1 << 31
}

/// Associations from tshark's packets: an INIT opens one (its Initiate Tag
/// names the initiator), the INIT-ACK carrying that tag gives the responder;
/// any other packet belongs to the association whose end owns its tag, or is
/// the first packet the other way of one picked up mid-flight (same ports
/// and addresses, reversed), or else starts one picked up mid-flight.
fn tshark_associations(pkts: &[Packet]) -> Vec<Want> {
    let mut v: Vec<Want> = Vec::new();
    let end_of = |w: &Want, p: &Packet| -> Option<usize> {
        // The end the packet is sent by.
        let by_tag = if p.reflected {
            (0..2).find(|&e| w.ends[e].tag == Some(p.vtag) && w.ends[e].port == p.sport)
        } else {
            (0..2).find(|&e| w.ends[1 - e].tag == Some(p.vtag) && w.ends[1 - e].port == p.dport)
        };
        if by_tag.is_some() || w.handshake || p.vtag == 0 {
            return by_tag;
        }
        // Picked up mid-flight, the receiver's tag not seen yet: the
        // reverse of a direction already seen (same ports and addresses).
        (0..2).find(|&e| {
            w.ends[1 - e].tag.is_none()
                && (w.ends[e].port, w.ends[1 - e].port) == (p.sport, p.dport)
                && w.ends[e].addrs.contains(&p.src)
                && w.ends[1 - e].addrs.contains(&p.dst)
        })
    };
    for p in pkts {
        let mut src_params: BTreeSet<IpAddr> = p.addr_params.iter().copied().collect();
        src_params.insert(p.src);
        if p.chunks.contains(&1) && p.vtag == 0 {
            let tag = p.init_tag.expect("INIT has an initiate tag");
            if let Some(w) = v.iter_mut().find(|w| w.handshake && w.ends[0].tag == Some(tag)) {
                *w.chunks.entry(1).or_default() += 1;
                continue;
            }
            let mut w = Want { handshake: true, ..Want::default() };
            w.ends[0] = End { port: p.sport, tag: Some(tag), addrs: src_params };
            w.ends[1] = End { port: p.dport, tag: None, addrs: [p.dst].into() };
            *w.chunks.entry(1).or_default() += 1;
            v.push(w);
            continue;
        }
        if p.chunks.contains(&2)
            && let Some(w) = v.iter_mut().find(|w| w.handshake && w.ends[0].tag == Some(p.vtag))
        {
            w.ends[1] = End { port: p.sport, tag: p.initack_tag, addrs: src_params };
            *w.chunks.entry(2).or_default() += 1;
            continue;
        }
        let found = v.iter().enumerate().rev().find_map(|(i, w)| end_of(w, p).map(|e| (i, e)));
        let (i, e) = match found {
            Some(x) => x,
            None => {
                let mut w = Want::default();
                w.ends[0].port = p.sport;
                w.ends[1].port = p.dport;
                v.push(w);
                (v.len() - 1, 0)
            }
        };
        let w = &mut v[i];
        if !w.handshake {
            w.ends[e].addrs.insert(p.src);
            w.ends[1 - e].addrs.insert(p.dst);
            if !p.reflected && w.ends[1 - e].tag.is_none() {
                w.ends[1 - e].tag = Some(p.vtag);
            }
        }
        for c in &p.chunks {
            *w.chunks.entry(*c).or_default() += 1;
        }
        let new = p.tsns.iter().copied().filter(|&t| w.highest[e].is_none_or(|h| after(t, h))).max();
        if let Some(t) = new {
            let path = (p.src, p.dst);
            if w.last_new[e].is_some_and(|l| l != path) {
                w.moves[e] += 1;
            }
            w.last_new[e] = Some(path);
            w.highest[e] = Some(t);
        }
    }
    v
}

fn end_view(v: &sctp_monitor::tracker::EndpointView) -> End {
    End { port: v.port, tag: v.vtag, addrs: v.addrs.iter().copied().collect() }
}

fn replay_ok(file: &Path) -> ReplayOutcome {
    let o = replay(file, &ReplayOptions::default()).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    assert!(o.error.is_none(), "{}: {:?}", file.display(), o.error);
    o
}

/// The replay's association matching `w`: the same two ends (in the same
/// roles when the handshake was seen).
fn matching<'a>(o: &'a ReplayOutcome, w: &Want) -> Option<(&'a AssocView, bool)> {
    o.associations.iter().find_map(|a| {
        let (i, r) = (end_view(&a.initiator), end_view(&a.responder));
        if i == w.ends[0] && r == w.ends[1] {
            Some((a, false))
        } else if !w.handshake && i == w.ends[1] && r == w.ends[0] {
            Some((a, true))
        } else {
            None
        }
    })
}

/// The replay against tshark on every fixture in every link type:
/// packets, associations with both address sets, chunks per association,
/// failovers and primaries.
#[test]
fn every_link_type_gives_tsharks_associations_address_sets_and_no_false_failover() {
    let Some(ts) = support::tshark::find() else { return };
    let tmp = TempDir::new("wraps");
    let mut checked = 0;
    for file in all_files(&tmp) {
        let name = file.display().to_string();
        let o = replay_ok(&file);
        let pkts = tshark::packets(ts, &file);
        assert!(!pkts.is_empty(), "{name}: tshark read no SCTP");
        assert_eq!(o.sctp_packets as usize, pkts.len(), "{name}: SCTP packets, replay against tshark");
        assert_eq!(o.malformed_packets, 0, "{name}");
        assert_eq!(o.decode.malformed_chunks, 0, "{name}");
        let want = tshark_associations(&pkts);
        assert_eq!(
            o.associations.len(),
            want.len(),
            "{name}: associations, replay {:#?}\nagainst tshark {want:#?}",
            o.associations
        );
        for w in &want {
            let Some((a, swapped)) = matching(&o, w) else {
                panic!("{name}: tshark's association {w:#?} is not in the replay's {:#?}", o.associations)
            };
            assert_eq!(a.handshake_seen, w.handshake, "{name}: {w:?}");
            // How it ended, from the closing chunks tshark saw; one the wire
            // ended is in state Closed.
            let ended = if w.chunks.contains_key(&6) {
                Some(DownReason::Abort)
            } else if w.chunks.contains_key(&14) {
                Some(DownReason::Shutdown)
            } else {
                None
            };
            assert_eq!(a.ended, ended, "{name}: association {} ended", a.id);
            if ended.is_some() {
                assert_eq!(a.state, AssocState::Closed, "{name}: association {} state", a.id);
            }
            // Chunks by type, as tshark counts them.
            let counts = &o.chunk_counts.get(&a.id).expect("chunks counted").total;
            assert_eq!(counts, &w.chunks, "{name}: chunks of association {}", a.id);
            // Failovers: only where new TSNs moved path, never more than they
            // moved; the primary is where the last new TSN went.
            let fo: Vec<_> = o.events.iter().filter(|e| e.event == EventKind::Failover && e.assoc == a.id).collect();
            for e in 0..2 {
                let role = if (e == 0) != swapped { Role::Initiator } else { Role::Responder };
                let ri = role as usize;
                let n = fo.iter().filter(|f| f.endpoint == Some(role)).count() as u32;
                assert!(n <= w.moves[e], "{name}: {n} failovers of {role:?}, tshark's new TSNs moved {}", w.moves[e]);
                assert_eq!(u32::from(a.failovers[ri]), n, "{name}: {role:?} failovers in the view and the events");
                if let Some((s, d)) = w.last_new[e] {
                    assert_eq!(a.primary[ri], Some(PathRef { src: s, dst: d }), "{name}: {role:?} primary");
                }
            }
        }
        checked += 1;
    }
    assert_eq!(checked, FILES.len() * (1 + WRAPS.len()));
}

/// The Linux client's INIT lists every address of its host: seven IPv4
/// addresses, all of them in the initiator's set (tshark's list, not a
/// hard-coded one), and nothing else.
#[test]
fn the_linux_init_with_seven_addresses_gives_the_whole_set() {
    let Some(ts) = support::tshark::find() else { return };
    let file = fixture("open5gs-5g-roaming-lbo.pcapng");
    let pkts = tshark::packets(ts, &file);
    let init = pkts.iter().find(|p| p.chunks == [1] && p.addr_params.len() > 1).expect("a multi-address INIT");
    let mut want: BTreeSet<IpAddr> = init.addr_params.iter().copied().collect();
    want.insert(init.src);
    assert!(want.len() >= 2);
    let o = replay_ok(&file);
    let a = o.associations.iter().find(|a| a.initiator.vtag == init.init_tag).expect("the association");
    assert_eq!(a.initiator.addrs.iter().copied().collect::<BTreeSet<_>>(), want);
    assert!(a.handshake_seen);
    assert!(a.paths.iter().all(|p| want.contains(&p.src) || want.contains(&p.dst)), "{:?}", a.paths);
}

// ------------------------------------------------------------- mutated files

/// One deterministic mutation of `b`: byte flips, a 32-bit field set to 0 or
/// all ones, a cut, a duplicated range or a swapped pair of ranges.
fn mutate(b: &[u8], rng: &mut XorShift) -> Vec<u8> {
    let mut m = b.to_vec();
    let n = m.len();
    match rng.below(6) {
        0 => {
            for _ in 0..1 + rng.below(8) {
                let i = rng.below(n);
                m[i] ^= 1 << rng.below(8);
            }
        }
        1 => {
            let i = rng.below(n.saturating_sub(4).max(1));
            let v: [u8; 4] = if rng.below(2) == 0 { [0; 4] } else { [0xff; 4] };
            m[i..(i + 4).min(n)].copy_from_slice(&v[..(i + 4).min(n) - i]);
        }
        2 => m.truncate(rng.below(n)),
        3 => {
            let (a, l) = (rng.below(n), 1 + rng.below(256));
            let chunk = m[a..(a + l).min(n)].to_vec();
            let at = rng.below(n);
            m.splice(at..at, chunk);
        }
        4 => {
            // A 16-bit length-sized field anywhere: 0, 1, 3 or 0xffff.
            let i = rng.below(n.saturating_sub(2).max(1));
            let v = [0u16, 1, 3, 0xffff][rng.below(4)];
            m[i..(i + 2).min(n)].copy_from_slice(&v.to_be_bytes()[..(i + 2).min(n) - i]);
        }
        _ => {
            for _ in 0..16 {
                let i = rng.below(n);
                m[i] = rng.next_u64() as u8;
            }
        }
    }
    m
}

/// Checks one replay of damaged input: either an error naming the file,
/// or an outcome whose error (if any) names the file and an offset inside it.
fn check_damaged(r: Result<ReplayOutcome, ReplayError>, path: &Path, len: usize) -> Option<ReplayOutcome> {
    let shown = path.display().to_string();
    match r {
        Err(e) => {
            assert!(e.to_string().contains(&shown), "error without the file name: {e}");
            None
        }
        Ok(o) => {
            if let Some(e) = &o.error {
                assert!(e.to_string().contains(&shown), "error without the file name: {e}");
                if let ReplayError::Damaged { offset, .. } = e {
                    assert!(*offset <= len, "offset {offset} past the {len}-byte file");
                }
            }
            Some(o)
        }
    }
}

/// 300 mutants of each fixture and of its raw-IP rewrap: no panic, every
/// error names the file (and an offset inside it), and every outcome's
/// counts add up.
#[test]
fn mutated_captures_never_crash_and_say_what_was_wrong() {
    let tmp = TempDir::new("mut");
    let opts = ReplayOptions::default();
    let mut rng = XorShift::new(0x5c7f_0013);
    let mut inputs: Vec<(String, Vec<u8>)> = Vec::new();
    for name in FILES {
        let f = fixture(name);
        inputs.push((name.to_string(), std::fs::read(&f).expect("read")));
        inputs.push((format!("{name}.raw.pcap"), rewrap(&ip_packets(&f), Wrap::RawIp)));
    }
    let (mut errors, mut damaged, mut counted) = (0, 0, 0);
    for (name, bytes) in &inputs {
        let path = tmp.0.join(name);
        for _ in 0..300 {
            let m = mutate(bytes, &mut rng);
            let r = replay_bytes(&m, &path, &opts);
            match check_damaged(r, &path, m.len()) {
                None => errors += 1,
                Some(o) => {
                    assert_eq!(
                        o.packets,
                        o.sctp_packets + o.other_packets + o.malformed_packets + o.fragments + o.unsupported_link,
                        "{name}: every packet counted once"
                    );
                    if o.error.is_some() {
                        damaged += 1;
                    } else if o.malformed_packets
                        + o.decode.malformed_chunks
                        + o.decode.truncated_chunks
                        + o.decode.malformed_params
                        > 0
                    {
                        counted += 1;
                    }
                }
            }
        }
    }
    // The mutator reaches every kind of outcome.
    assert!(errors > 0 && damaged > 0 && counted > 0, "errors {errors}, damaged {damaged}, counted {counted}");
}

/// Offsets of the records of a pcap written by `rewrap` (little-endian).
fn records(b: &[u8]) -> Vec<usize> {
    let mut v = Vec::new();
    let mut at = 24;
    while at + 16 <= b.len() {
        v.push(at);
        at += 16 + u32::from_le_bytes(b[at + 8..at + 12].try_into().expect("4")) as usize;
    }
    v
}

/// Damage at known places of a real capture (the raw-IP rewrap of the Linux
/// NGAP association, where every byte's meaning is known) gives the error
/// or the counter that names it; the rest of the file is still reported.
#[test]
fn targeted_damage_gives_the_matching_error_or_counter() {
    let tmp = TempDir::new("target");
    let opts = ReplayOptions::default();
    let src = rewrap(&ip_packets(&fixture("open5gs-5g-roaming-lbo.pcapng")), Wrap::RawIp);
    let path = tmp.write("lbo.raw.pcap", &src);
    let clean = replay_bytes(&src, &path, &opts).expect("clean replay");
    assert!(clean.error.is_none());
    let recs = records(&src);
    // The first SCTP record with a DATA chunk: IPv4, protocol 132, no options.
    let data_rec = *recs
        .iter()
        .find(|&&r| src[r + 16] == 0x45 && src[r + 16 + 9] == 132 && src[r + 16 + 20 + 12] == 0)
        .expect("a DATA packet");
    let chunk = data_rec + 16 + 20 + 12;

    // A chunk length under 4: the walk ends, counted as a malformed chunk.
    let mut m = src.clone();
    m[chunk + 2..chunk + 4].copy_from_slice(&2u16.to_be_bytes());
    let o = replay_bytes(&m, &path, &opts).expect("replay");
    assert!(o.error.is_none());
    assert_eq!(o.decode.malformed_chunks, clean.decode.malformed_chunks + 1);
    assert_eq!(o.packets, clean.packets);

    // An IPv4 header length under 20: a malformed packet, not SCTP.
    let mut m = src.clone();
    m[data_rec + 16] = 0x43;
    let o = replay_bytes(&m, &path, &opts).expect("replay");
    assert!(o.error.is_none());
    assert_eq!(o.malformed_packets, 1);
    assert_eq!(o.sctp_packets, clean.sctp_packets - 1);

    // A record length far past the file: damaged at that record's offset,
    // what came before still reported.
    let mut m = src.clone();
    m[data_rec + 8..data_rec + 12].copy_from_slice(&0x7fff_fff0u32.to_le_bytes());
    let o = replay_bytes(&m, &path, &opts).expect("replay");
    match &o.error {
        Some(ReplayError::Damaged { offset, .. }) => assert_eq!(*offset, data_rec),
        other => panic!("expected damage at {data_rec}, got {other:?}"),
    }
    assert_eq!(o.packets as usize, recs.iter().position(|&r| r == data_rec).expect("index"));

    // Not a capture at all.
    let mut m = src.clone();
    m[..4].copy_from_slice(b"GIF8");
    match replay_bytes(&m, &path, &opts) {
        Err(ReplayError::Format { file }) => assert_eq!(file, path),
        other => panic!("expected a format error, got {:?}", other.map(|o| o.packets)),
    }
}
