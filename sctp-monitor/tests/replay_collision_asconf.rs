//! Replay of real usrsctp captures of an INIT collision (RFC 9260 5.2.1) and
//! of ADD-IP (RFC 5061 ASCONF) against tshark's reading of the same files,
//! run in the test (nothing expected is written down here).
//!
//! The captures were made with `tests/peer/make_collide_asconf.sh OUTDIR`
//! (root; the lab of `tests/peer/lab.sh`, tcpdump `-i any -s 1500` in
//! ns a: Linux cooked capture v2 of both veths):
//! - `usrsctp-init-collision.pcap`: both ends run `sctp_peer client
//!   --listen` and connect to each other at once; an nftables input drop in
//!   both namespaces for 0.3 s eats both first INITs (they are on the
//!   capture, taken before nftables). Each end is in COOKIE-WAIT when the
//!   other's retransmitted INIT (sent to the peer's second address)
//!   arrives: both answer with an INIT-ACK carrying their own tag, the first
//!   COOKIE-ECHO is answered, and each stack printed ONE COMM_UP; DATA then
//!   flows both ways.
//! - `usrsctp-asconf.pcap`: the client binds 10.201.1.1 only and, with DATA
//!   at 20/s, 1 s / 2 s / 3 s after COMM_UP adds 10.201.2.1 (ASCONF Add IP),
//!   asks the server to send to it (Set Primary Address), deletes it again
//!   (Delete IP), each ASCONF with AUTH and answered by an ASCONF-ACK. The
//!   lab's IPv4 source rewrite makes the client's heartbeats on path 2 leave
//!   from 10.201.2.1 while it is not an address of the association: the
//!   server answers them with ABORTs (T bit) that the client's stack drops.
//!
//! tshark is needed: the test skips with a message without it, and fails
//! under CI (`CI` set).

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use support::tshark::{self, Packet, list, num};

use sctp_monitor::event::{EventKind, Role};
use sctp_monitor::replay::{ReplayOptions, ReplayOutcome, replay};
use sctp_monitor::tracker::EndpointView;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn replay_ok(file: &Path) -> ReplayOutcome {
    let o = replay(file, &ReplayOptions::default()).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    assert!(o.error.is_none(), "{}: {:?}", file.display(), o.error);
    o
}

/// An endpoint as tshark shows it: its addresses (source of its INIT or
/// INIT-ACK plus the Address parameters) and the tag the peer puts on the
/// DATA it sends to it (the tag that survived the collision).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct End {
    addrs: BTreeSet<IpAddr>,
    tag: Option<u32>,
}

fn end_of(v: &EndpointView) -> End {
    End { addrs: v.addrs.iter().copied().collect(), tag: v.vtag }
}

/// Serial-number "a is after b" (RFC 1982, 32 bits).
fn after(a: u32, b: u32) -> bool {
    a != b && a.wrapping_sub(b) < 1 << 31
}

/// Per sender address set: how often tshark's new TSNs moved to another
/// (src, dst) path.
fn tsn_moves(pkts: &[Packet], ends: &[End]) -> Vec<u32> {
    let mut moves = vec![0; ends.len()];
    let mut last: Vec<Option<(IpAddr, IpAddr)>> = vec![None; ends.len()];
    let mut high: Vec<Option<u32>> = vec![None; ends.len()];
    for p in pkts {
        let Some(e) = ends.iter().position(|e| e.addrs.contains(&p.src)) else { continue };
        let new = p.tsns.iter().copied().filter(|&t| high[e].is_none_or(|h| after(t, h))).max();
        if let Some(t) = new {
            if last[e].is_some_and(|l| l != (p.src, p.dst)) {
                moves[e] += 1;
            }
            last[e] = Some((p.src, p.dst));
            high[e] = Some(t);
        }
    }
    moves
}

#[test]
fn init_collision_is_one_association_with_tsharks_addresses_and_surviving_tags() {
    let Some(ts) = support::tshark::find() else { return };
    let file = fixture("usrsctp-init-collision.pcap");
    let pkts = tshark::packets(ts, &file);
    let o = replay_ok(&file);
    assert_eq!(o.sctp_packets as usize, pkts.len(), "SCTP packets, replay against tshark");

    // The collision is on the wire: two INITs with different Initiate Tags,
    // from the two sides, and INIT-ACKs from both.
    let inits: Vec<&Packet> = pkts.iter().filter(|p| p.chunks.contains(&1) && p.vtag == 0).collect();
    let init_tags: BTreeSet<u32> = inits.iter().filter_map(|p| p.init_tag).collect();
    assert_eq!(init_tags.len(), 2, "tshark: the capture must hold INITs of both sides, {init_tags:x?}");
    let initacks: Vec<&Packet> = pkts.iter().filter(|p| p.chunks.contains(&2)).collect();
    let ack_senders: BTreeSet<IpAddr> = initacks.iter().map(|p| p.src).collect();
    assert!(ack_senders.len() >= 2, "tshark: INIT-ACKs from both sides, got from {ack_senders:?}");

    // Each side's address set, from its INIT as tshark decodes it.
    let mut ends: Vec<End> = Vec::new();
    for tag in &init_tags {
        let p = inits.iter().find(|p| p.init_tag == Some(*tag)).expect("INIT");
        let mut addrs: BTreeSet<IpAddr> = p.addr_params.iter().copied().collect();
        addrs.insert(p.src);
        if !ends.iter().any(|e| e.addrs == addrs) {
            ends.push(End { addrs, tag: None });
        }
    }
    assert_eq!(ends.len(), 2, "tshark: two address sets, {ends:?}");
    // The surviving tags: those on the DATA sent to each side (after the
    // collision each stack keeps one tag pair).
    for e in &mut ends {
        let tags: BTreeSet<u32> =
            pkts.iter().filter(|p| p.chunks.contains(&0) && e.addrs.contains(&p.dst)).map(|p| p.vtag).collect();
        assert_eq!(tags.len(), 1, "tshark: DATA to {:?} carries one tag, {tags:x?}", e.addrs);
        e.tag = tags.first().copied();
    }

    // ONE association, with both sides' address sets and surviving tags.
    assert_eq!(o.associations.len(), 1, "one association, replay: {:#?}", o.associations);
    let a = &o.associations[0];
    assert!(a.handshake_seen, "the handshake is in the capture");
    assert!(a.init_collision, "the replay must note the INIT collision");
    let got: BTreeSet<End> = [end_of(&a.initiator), end_of(&a.responder)].into();
    let want: BTreeSet<End> = ends.iter().cloned().collect();
    assert_eq!(got, want, "address sets and tags, replay against tshark");
    let ups = o.events.iter().filter(|e| e.event == EventKind::AssociationUp).count();
    assert_eq!(ups, 1, "one association_up");
    assert!(
        !o.events.iter().any(|e| e.event == EventKind::Restart),
        "a collision is no restart: {:?}",
        o.events.iter().map(|e| e.event).collect::<Vec<_>>()
    );

    // DATA both ways on the one association, and no failover where
    // tshark's new TSNs did not move path.
    let moves = tsn_moves(&pkts, &ends);
    for (role, v) in [(Role::Initiator, &a.initiator), (Role::Responder, &a.responder)] {
        let e = ends.iter().position(|e| *e == end_of(v)).expect("matched above");
        let idx = usize::from(role == Role::Responder);
        assert!(a.highest_tsn[idx].is_some(), "{role:?} sent DATA");
        assert!(
            u32::from(a.failovers[idx]) <= moves[e],
            "{role:?}: {} failovers, tshark's new TSNs moved {}",
            a.failovers[idx],
            moves[e]
        );
    }
    let fo: BTreeMap<Role, usize> =
        o.events.iter().filter(|e| e.event == EventKind::Failover).fold(BTreeMap::new(), |mut m, e| {
            *m.entry(e.endpoint.expect("failover names its endpoint")).or_default() += 1;
            m
        });
    assert_eq!(fo.values().sum::<usize>(), a.failovers.iter().map(|&n| n as usize).sum::<usize>(), "failover events");
}

// ------------------------------------------------------------------ ASCONF

/// One ASCONF or ASCONF-ACK as tshark decodes it.
#[derive(Debug)]
struct AsconfPkt {
    /// Index in `tshark::packets`'s order (the file's).
    at: usize,
    src: IpAddr,
    ack: bool,
    serial: u32,
    /// ASCONF: (parameter type, correlation id, address) of each request.
    /// ASCONF-ACK: (indication type, correlation id, -) of each response.
    items: Vec<(u16, u32, Option<IpAddr>)>,
}

fn tshark_asconf(ts: &str, file: &Path) -> Vec<AsconfPkt> {
    let fields = [
        "ip.src",
        "ipv6.src",
        "sctp.chunk_type",
        "sctp.asconf_seq_nr_number",
        "sctp.asconf_ack_seq_nr_number",
        "sctp.parameter_type",
        "sctp.correlation_id",
        "sctp.parameter_ipv4_address",
        "sctp.parameter_ipv6_address",
    ];
    let out = support::tshark::sctp_fields(ts, file, &fields);
    let mut v = Vec::new();
    for (at, l) in out.lines().enumerate() {
        let f: Vec<&str> = l.split('\t').collect();
        assert_eq!(f.len(), fields.len(), "tshark line: {l:?}");
        let chunks: Vec<u8> = list(f[2]).iter().map(|x| num(x) as u8).collect();
        let ack = chunks.contains(&0x80);
        if !ack && !chunks.contains(&0xc1) {
            continue;
        }
        assert!(list(f[8]).is_empty(), "these captures are IPv4: {l:?}");
        let serial = list(if ack { f[4] } else { f[3] }).first().map(|x| num(x) as u32).expect("serial");
        let mut addrs = list(f[7]).into_iter().map(|a| a.parse::<IpAddr>().expect("address"));
        let mut corrs = list(f[6]).into_iter().map(|c| num(c) as u32);
        let types: Vec<u16> = list(f[5]).iter().map(|x| num(x) as u16).collect();
        let mut items = Vec::new();
        let mut i = 0;
        while i < types.len() {
            match types[i] {
                // ASCONF: the Address Parameter of the sender
                5 => {
                    addrs.next().expect("address of the Address Parameter");
                }
                // Add IP, Delete IP, Set Primary: correlation id, then an
                // address parameter
                0xc001 | 0xc002 | 0xc004 => {
                    assert_eq!(types.get(i + 1), Some(&5), "request with an IPv4 address: {l:?}");
                    items.push((types[i], corrs.next().expect("correlation id"), addrs.next()));
                    i += 1;
                }
                // Error Cause Indication, Success Indication
                0xc003 | 0xc005 => items.push((types[i], corrs.next().expect("correlation id"), None)),
                _ => {}
            }
            i += 1;
        }
        v.push(AsconfPkt { at, src: f[0].parse().expect("src"), ack, serial, items });
    }
    v
}

#[test]
fn asconf_changes_match_tsharks_acknowledged_requests_and_moves_are_no_failover() {
    let Some(ts) = support::tshark::find() else { return };
    let file = fixture("usrsctp-asconf.pcap");
    let pkts = tshark::packets(ts, &file);
    let asconf = tshark_asconf(ts, &file);
    let o = replay_ok(&file);
    assert_eq!(o.sctp_packets as usize, pkts.len(), "SCTP packets, replay against tshark");
    assert_eq!(o.associations.len(), 1, "one association: {:#?}", o.associations);
    let a = &o.associations[0];

    // Initiator and responder address sets from the handshake.
    let init = pkts.iter().find(|p| p.chunks.contains(&1) && p.vtag == 0).expect("INIT");
    let initack = pkts.iter().find(|p| p.chunks.contains(&2)).expect("INIT-ACK");
    let set = |p: &Packet| -> BTreeSet<IpAddr> { p.addr_params.iter().copied().chain([p.src]).collect() };
    let mut sets = [set(init), set(initack)];
    let tags = [init.init_tag, initack.initack_tag];

    // Walk the file: each ASCONF-ACK applies its ASCONF's successful
    // requests (RFC 5061 §5.3: without a response, success before the first
    // failure); tshark's new TSN moves are classified as the README says.
    let mut want: Vec<(EventKind, Role, IpAddr)> = Vec::new();
    let mut open: Vec<(usize, &AsconfPkt)> = Vec::new();
    let mut requested: [Option<IpAddr>; 2] = [None; 2];
    let mut removed: BTreeSet<IpAddr> = BTreeSet::new();
    let mut last: [Option<(IpAddr, IpAddr)>; 2] = [None; 2];
    let mut high: [Option<u32>; 2] = [None; 2];
    let (mut asked_moves, mut other_moves) = ([0u32; 2], [0u32; 2]);
    let mut acked = 0;
    for (at, p) in pkts.iter().enumerate() {
        // The sender, by the tag it puts on the packet (the receiver's).
        let sender = (0..2).find(|&e| tags[1 - e] == Some(p.vtag));
        for c in asconf.iter().filter(|c| c.at == at) {
            let e = sender.unwrap_or_else(|| panic!("ASCONF(-ACK) from {} with an unknown tag", c.src));
            if !c.ack {
                assert!(p.chunks.contains(&15), "ASCONF goes with AUTH (RFC 5061 §4.1.1)");
                open.retain(|(s, q)| !(*s == e && q.serial == c.serial));
                open.push((e, c));
                continue;
            }
            let asker = 1 - e;
            let Some(i) = open.iter().position(|(s, q)| *s == asker && q.serial == c.serial) else { continue };
            let (_, q) = open.remove(i);
            acked += 1;
            let mut failed = false;
            for &(kind, corr, addr) in &q.items {
                let ok = match c.items.iter().find(|r| r.1 == corr) {
                    Some(r) if r.0 == 0xc005 => true,
                    Some(_) => {
                        failed = true;
                        false
                    }
                    None => !failed,
                };
                let addr = addr.expect("request address");
                assert!(!addr.is_unspecified(), "no wildcard requests in this capture");
                let role = if asker == 0 { Role::Initiator } else { Role::Responder };
                match (ok, kind) {
                    (true, 0xc001) if sets[asker].insert(addr) => want.push((EventKind::AddressAdded, role, addr)),
                    (true, 0xc002) if sets[asker].remove(&addr) => {
                        removed.insert(addr);
                        want.push((EventKind::AddressRemoved, role, addr))
                    }
                    (true, 0xc004) => {
                        requested[asker] = Some(addr);
                        want.push((EventKind::PrimaryRequested, role, addr))
                    }
                    _ => {}
                }
            }
        }
        // New DATA per sender: a move to the destination the receiver asked
        // for (once), or away from a removed address, is asked for.
        let Some(e) = sender else { continue };
        let new = p.tsns.iter().copied().filter(|&t| high[e].is_none_or(|h| after(t, h))).max();
        if let Some(t) = new {
            if let Some(old) = last[e].filter(|l| *l != (p.src, p.dst)) {
                if requested[1 - e] == Some(p.dst) {
                    requested[1 - e] = None;
                    asked_moves[e] += 1;
                } else if removed.contains(&old.0) || removed.contains(&old.1) {
                    asked_moves[e] += 1;
                } else {
                    other_moves[e] += 1;
                }
            }
            last[e] = Some((p.src, p.dst));
            high[e] = Some(t);
        }
    }
    assert!(acked >= 3, "tshark: the capture holds the acknowledged Add, Set Primary and Delete, {asconf:#?}");
    assert!(want.iter().any(|w| w.0 == EventKind::AddressAdded), "tshark: an acknowledged Add IP");
    assert!(want.iter().any(|w| w.0 == EventKind::AddressRemoved), "tshark: an acknowledged Delete IP");
    assert!(want.iter().any(|w| w.0 == EventKind::PrimaryRequested), "tshark: an acknowledged Set Primary");

    // The address events, in order, against tshark's acknowledged requests.
    let got: Vec<(EventKind, Role, IpAddr)> = o
        .events
        .iter()
        .filter(|e| {
            matches!(e.event, EventKind::AddressAdded | EventKind::AddressRemoved | EventKind::PrimaryRequested)
        })
        .map(|e| (e.event, e.endpoint.expect("endpoint"), e.addr.expect("addr")))
        .collect();
    assert_eq!(got, want, "address events, replay against tshark's ASCONF/ASCONF-ACK");

    // The address sets after the changes, and the tags.
    assert_eq!(end_of(&a.initiator), End { addrs: sets[0].clone(), tag: tags[0] }, "initiator");
    assert_eq!(end_of(&a.responder), End { addrs: sets[1].clone(), tag: tags[1] }, "responder");

    // Moves of new DATA: the asked-for ones are primary_changed with an
    // asconf cause, never failover; failovers only where tshark's new TSNs
    // moved without a request.
    for (e, role) in [(0, Role::Initiator), (1, Role::Responder)] {
        let asked = o
            .events
            .iter()
            .filter(|v| v.event == EventKind::PrimaryChanged && v.asconf.is_some() && v.endpoint == Some(role))
            .count();
        assert_eq!(
            asked as u32, asked_moves[e],
            "{role:?}: primary_changed with asconf, against tshark's asked-for moves"
        );
        assert!(
            u32::from(a.failovers[e]) <= other_moves[e],
            "{role:?}: {} failovers, tshark's unasked moves {}",
            a.failovers[e],
            other_moves[e]
        );
    }
    assert!(asked_moves.iter().sum::<u32>() > 0, "tshark: DATA moved after an ASCONF");
}
