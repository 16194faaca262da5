//! Path quality against Wireshark's own SCTP TSN analysis (`tshark -o
//! sctp.tsn_analysis:TRUE`): on every capture fixture (third-party and
//! usrsctp), the per-path counts `replay` reports (the same counters the
//! API, the metrics and `top` show) equal tshark's, per source and
//! destination address: DATA chunks, retransmitted chunks
//! (`sctp.retransmission`), retransmissions of DATA already acknowledged
//! (spurious: a chunk tshark marks retransmitted whose TSN a cumulative ack
//! tshark decoded earlier in the capture covers; tshark's own
//! `sctp.retransmitted_after_ack` marks none in these captures, not even
//! the DATA a black hole's SACK acknowledged on the wire before the stack
//! sent it again), SACKs, gap-ack blocks
//! (`sctp.sack_gap_block_start`), duplicate TSNs (`sctp.sack_duplicate_tsn`),
//! and the last and smallest advertised window (`sctp.sack_a_rwnd`).
//! Counts that differ in either direction fail: a path tshark has and the
//! monitor lacks, a count too high, a count too low.
//!
//! Needs tshark (`cargo xtask setup --tests`); skipped with a message
//! without it, except under CI.

mod support;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;

use sctp_monitor::replay::{ReplayOptions, replay};
use support::tshark::{find, list, num, sctp_fields_with};

/// What one path (source and destination address) carried.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Counts {
    data_chunks: u64,
    retransmitted: u64,
    spurious: u64,
    sacks: u64,
    gap_blocks: u64,
    dup_tsns: u64,
    /// Last and smallest a_rwnd (with `sacks` > 0).
    a_rwnd: u64,
    a_rwnd_min: u64,
}

type ByPath = BTreeMap<(IpAddr, IpAddr), Counts>;

/// Serial-number order of TSNs (RFC 1982).
fn serial_gt(a: u32, b: u32) -> bool {
    a != b && a.wrapping_sub(b) < 1 << 31
}

/// tshark's per-path counts of `file`.
fn tshark_counts(ts: &str, file: &Path) -> ByPath {
    let fields = [
        "ip.src",
        "ip.dst",
        "ipv6.src",
        "ipv6.dst",
        "sctp.assoc_index",
        "sctp.verification_tag",
        "sctp.data_tsn_raw",
        "sctp.retransmission",
        "sctp.sack_cumulative_tsn_ack_raw",
        "sctp.sack_a_rwnd",
        "sctp.sack_gap_block_start",
        "sctp.sack_duplicate_tsn",
    ];
    let prefs = ["-o", "sctp.tsn_analysis:TRUE", "-o", "sctp.association_index:TRUE"];
    let out = sctp_fields_with(ts, file, &prefs, &fields);
    let mut m = ByPath::new();
    // The highest cumulative ack sent so far, by tshark's association and
    // the tag of the packets carrying it (with the packet's number): it
    // acknowledges the DATA of that association carrying the other tag.
    let mut acked: BTreeMap<(u64, u32), (u32, usize)> = BTreeMap::new();
    for (n, line) in out.lines().enumerate() {
        let v: Vec<&str> = line.split('\t').collect();
        assert_eq!(v.len(), fields.len(), "tshark line {line:?}");
        // Tunnelled packets (SCTP over IP in IP) name the inner addresses
        // last.
        let addr = |a: &str, b: &str| -> IpAddr {
            let s = if a.is_empty() { b } else { a };
            list(s).last().unwrap_or_else(|| panic!("no address: {line:?}")).parse().expect("address")
        };
        let (src, dst) = (addr(v[0], v[2]), addr(v[1], v[3]));
        let (assoc, tag) = (list(v[4]).first().map_or(u64::MAX, |a| num(a)), num(v[5]) as u32);
        let c = m.entry((src, dst)).or_default();
        let tsns = list(v[6]);
        c.data_chunks += tsns.len() as u64;
        // `sctp.retransmission` is the frame of the first transmission, for
        // each retransmitted chunk: which chunk it marks is not said, so a
        // packet's retransmitted chunks are taken as its lowest TSNs (a
        // retransmission goes first in its packet).
        let rtx = list(v[7]).len();
        c.retransmitted += rtx as u64;
        let cum = acked.range((assoc, 0)..=(assoc, u32::MAX)).filter(|(k, _)| k.1 != tag).max_by_key(|(_, v)| v.1);
        if let Some((_, &(cum, _))) = cum {
            let mut t: Vec<u32> = tsns.iter().map(|t| num(t) as u32).collect();
            t.sort_by(|a, b| {
                if a == b {
                    std::cmp::Ordering::Equal
                } else if serial_gt(*a, *b) {
                    std::cmp::Ordering::Greater
                } else {
                    std::cmp::Ordering::Less
                }
            });
            c.spurious += t.iter().take(rtx).filter(|&&t| !serial_gt(t, cum)).count() as u64;
        }
        if let Some(cum) = list(v[8]).last() {
            let cum = num(cum) as u32;
            let e = acked.entry((assoc, tag)).or_insert((cum, n));
            if serial_gt(cum, e.0) {
                *e = (cum, n);
            }
        }
        for w in list(v[9]) {
            let w = num(w);
            c.a_rwnd_min = if c.sacks == 0 { w } else { c.a_rwnd_min.min(w) };
            c.a_rwnd = w;
            c.sacks += 1;
        }
        c.gap_blocks += list(v[10]).len() as u64;
        c.dup_tsns += list(v[11]).len() as u64;
    }
    m.retain(|_, c| *c != Counts::default());
    m
}

/// The monitor's per-path counts of `file` (`replay`, summed over the
/// associations that used the path).
fn monitor_counts(file: &Path) -> (ByPath, u64) {
    let o = replay(file, &ReplayOptions::default()).expect("replay");
    assert!(o.error.is_none(), "{}: {:?}", file.display(), o.error);
    let mut m = ByPath::new();
    for a in &o.associations {
        for p in &a.paths {
            let q = &p.quality;
            let c = m.entry((p.src, p.dst)).or_default();
            c.data_chunks += q.data_chunks as u64;
            c.retransmitted += p.retransmissions as u64;
            c.spurious += q.spurious_retransmissions as u64;
            if q.sacks > 0 {
                c.a_rwnd_min = if c.sacks == 0 { q.a_rwnd_min as u64 } else { c.a_rwnd_min.min(q.a_rwnd_min as u64) };
                c.a_rwnd = q.a_rwnd as u64;
            }
            c.sacks += q.sacks as u64;
            c.gap_blocks += q.gap_blocks as u64;
            c.dup_tsns += q.dup_tsns as u64;
        }
    }
    m.retain(|_, c| *c != Counts::default());
    (m, o.duplicates_folded)
}

#[test]
fn per_path_counts_of_every_fixture_are_wiresharks_tsn_analysis() {
    let Some(ts) = find() else { return };
    let files = support::fixtures();
    assert!(files.len() >= 10, "{files:?}");
    let (mut compared, mut rtx, mut gaps, mut dups, mut spurious) = (0, 0, 0, 0, 0);
    let mut wrong = Vec::new();
    for f in &files {
        let (got, folded) = monitor_counts(f);
        if folded > 0 {
            // A Linux "any" capture holds each packet twice; tshark counts
            // both copies, the monitor one (replay/dedup.rs).
            continue;
        }
        let want = tshark_counts(ts, f);
        compared += 1;
        for (path, w) in &want {
            rtx += w.retransmitted;
            gaps += w.gap_blocks;
            dups += w.dup_tsns;
            spurious += w.spurious;
            let g = got.get(path).copied().unwrap_or_default();
            if g != *w {
                wrong.push(format!("{} {} -> {}:\n  tshark  {w:?}\n  monitor {g:?}", f.display(), path.0, path.1));
            }
        }
        for (path, g) in &got {
            if !want.contains_key(path) {
                wrong.push(format!("{} {} -> {}: tshark has none, monitor {g:?}", f.display(), path.0, path.1));
            }
        }
    }
    assert!(wrong.is_empty(), "{} path(s) differ from tshark:\n{}", wrong.len(), wrong.join("\n"));
    assert!(compared >= 10, "only {compared} captures compared");
    // The fixtures exercise what is compared.
    assert!(rtx > 0 && gaps > 0 && spurious > 0, "retransmissions {rtx}, gap blocks {gaps}, spurious {spurious}");
    eprintln!(
        "{compared} captures: {rtx} retransmitted chunks, {spurious} spurious, {gaps} gap blocks, {dups} duplicate TSNs, as tshark"
    );
}

/// A capture time as tshark prints it (`1795690721.410647112`), in ns.
fn epoch_ns(s: &str) -> u64 {
    let (sec, frac) = s.split_once('.').unwrap_or((s, ""));
    let frac = format!("{frac:0<9}");
    num(sec) * 1_000_000_000 + num(&frac[..9])
}

/// Per path (the HEARTBEAT's source and destination): the RTTs (µs) of the
/// liveness heartbeats tshark shows answered, a HEARTBEAT-ACK matched to
/// the HEARTBEAT of its association with the same Heartbeat Information
/// (the first answer; a HEARTBEAT bundled with PAD is a PMTU probe, left
/// out), packets taken in time order as replay takes them.
fn tshark_rtts(ts: &str, file: &Path) -> BTreeMap<(IpAddr, IpAddr), Vec<u64>> {
    let fields = [
        "frame.time_epoch",
        "ip.src",
        "ip.dst",
        "ipv6.src",
        "ipv6.dst",
        "sctp.assoc_index",
        "sctp.chunk_type",
        "sctp.parameter_heartbeat_information",
    ];
    let out = sctp_fields_with(ts, file, &["-o", "sctp.association_index:TRUE"], &fields);
    let mut rows: Vec<Vec<&str>> = out.lines().map(|l| l.split('\t').collect()).collect();
    rows.sort_by_key(|v| epoch_ns(v[0]));
    let mut sent: BTreeMap<(u64, String), (u64, IpAddr, IpAddr)> = BTreeMap::new();
    let mut m: BTreeMap<(IpAddr, IpAddr), Vec<u64>> = BTreeMap::new();
    for v in rows {
        assert_eq!(v.len(), fields.len(), "tshark line {v:?}");
        let addr = |a: &str, b: &str| -> IpAddr {
            let s = if a.is_empty() { b } else { a };
            list(s).last().expect("address").parse().expect("address")
        };
        let (t, src, dst) = (epoch_ns(v[0]), addr(v[1], v[3]), addr(v[2], v[4]));
        let assoc = list(v[5]).first().map_or(u64::MAX, |a| num(a));
        let types: Vec<u64> = list(v[6]).iter().map(|t| num(t)).collect();
        let Some(info) = list(v[7]).first().map(|s| s.to_string()) else { continue };
        if types.contains(&4) && !types.contains(&132) {
            sent.insert((assoc, info), (t, src, dst));
        } else if types.contains(&5)
            && let Some((t0, s, d)) = sent.remove(&(assoc, info))
        {
            m.entry((s, d)).or_default().push((t - t0) / 1_000);
        }
    }
    m
}

/// Every path's heartbeat RTT histogram (buckets and sum) in replay is the
/// one tshark's own decode of the same capture gives: each answered
/// liveness heartbeat counted once, in the right bucket, on the path it
/// was sent on; none invented, none missed.
#[test]
fn per_path_heartbeat_rtt_histograms_of_every_fixture_are_tsharks() {
    use sctp_monitor::tracker::rtt::RttHistogram;
    let Some(ts) = find() else { return };
    let (mut samples, mut paths) = (0, 0);
    let mut wrong = Vec::new();
    for f in &support::fixtures() {
        let o = replay(f, &ReplayOptions::default()).expect("replay");
        if o.duplicates_folded > 0 {
            continue;
        }
        let mut got: BTreeMap<(IpAddr, IpAddr), RttHistogram> = BTreeMap::new();
        for p in o.associations.iter().flat_map(|a| &a.paths) {
            let h = got.entry((p.src, p.dst)).or_default();
            for (i, n) in p.quality.rtt.buckets.iter().enumerate() {
                h.buckets[i] += n;
            }
            h.sum_us += p.quality.rtt.sum_us;
        }
        got.retain(|_, h| h.count() > 0);
        let want: BTreeMap<(IpAddr, IpAddr), RttHistogram> = tshark_rtts(ts, f)
            .into_iter()
            .map(|(k, rtts)| {
                let mut h = RttHistogram::NEW;
                rtts.iter().for_each(|&r| h.record(r as u32));
                (k, h)
            })
            .collect();
        samples += want.values().map(|h| h.count()).sum::<u64>();
        paths += want.len();
        if got != want {
            wrong.push(format!("{}:\n  tshark  {want:?}\n  monitor {got:?}", f.display()));
        }
    }
    assert!(wrong.is_empty(), "{} capture(s) differ from tshark:\n{}", wrong.len(), wrong.join("\n"));
    assert!(samples >= 50 && paths >= 10, "the fixtures answer {samples} heartbeats on {paths} paths");
    eprintln!("{samples} heartbeat RTTs on {paths} paths, as tshark");
}
