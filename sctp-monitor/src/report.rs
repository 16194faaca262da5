//! The readable replay report: counts, then every association with both
//! address sets, its paths (state, RTT, DATA counters), its failovers, the
//! ERROR chunks its endpoints sent and the causes of the ABORT that ended
//! it.

use std::io::{self, Write};

use crate::error_cause::{self, CauseEntry};
use crate::event::{DownReason, EventKind, rfc3339_micros};
use crate::replay::{ReplayOutcome, chunk_name};
use crate::tracker::{AssocView, EndpointView, FirstCause};

fn endpoint(e: &EndpointView) -> String {
    let addrs: Vec<String> = e.addrs.iter().map(|a| a.to_string()).collect();
    let tag = e.vtag.map_or("?".to_string(), |t| format!("0x{t:08x}"));
    format!("port {} tag {} addrs [{}]", e.port, tag, addrs.join(", "))
}

/// Writes the report of `o` to `out`.
pub fn write_report(o: &ReplayOutcome, out: &mut impl Write) -> io::Result<()> {
    writeln!(out, "{}", o.file.display())?;
    writeln!(
        out,
        "packets {} (SCTP {}, other {}, malformed {}, fragments {}, unsupported link {})",
        o.packets, o.sctp_packets, o.other_packets, o.malformed_packets, o.fragments, o.unsupported_link
    )?;
    // Copies of one packet (a Linux "any" capture) counted once.
    writeln!(out, "duplicate copies folded {}", o.duplicates_folded)?;
    let d = &o.decode;
    writeln!(
        out,
        "chunks {} (malformed {}, truncated {}, unknown {}; parameters malformed {}, unknown {})",
        d.chunks, d.malformed_chunks, d.truncated_chunks, d.unknown_chunks, d.malformed_params, d.unknown_params
    )?;
    writeln!(out, "associations {}", o.associations.len())?;
    for a in &o.associations {
        assoc(o, a, out)?;
    }
    if let Some(e) = &o.error {
        writeln!(out, "error: {e}")?;
    }
    Ok(())
}

fn assoc(o: &ReplayOutcome, a: &AssocView, out: &mut impl Write) -> io::Result<()> {
    writeln!(out)?;
    let ended = a.ended.map_or(String::new(), |r| format!(", ended: {r:?}").to_lowercase());
    let hs = if a.handshake_seen { "" } else { ", handshake not seen" };
    writeln!(out, "association {} ({:?}{hs}{ended})", a.id, a.state)?;
    let (i, r) = if a.handshake_seen { ("initiator", "responder") } else { ("first sender", "peer") };
    writeln!(out, "  {i}: {}", endpoint(&a.initiator))?;
    writeln!(out, "  {r}: {}", endpoint(&a.responder))?;
    for p in &a.paths {
        let rtt = p.rtt_us.map_or("-".to_string(), |r| format!("{:.1} ms", r as f64 / 1000.0));
        let last = p.last_data_ns.map_or("-".to_string(), rfc3339_micros);
        writeln!(
            out,
            "  path {} -> {} ({:?}){}: {:?}, rtt {rtt}, DATA {} packets {} bytes, {} retransmissions, last DATA {last}",
            p.src,
            p.dst,
            p.sender,
            if p.primary { " primary" } else { "" },
            p.state,
            p.data_packets,
            p.data_bytes,
            p.retransmissions
        )?;
        let q = &p.quality;
        if q.data_chunks > 0 || q.sacks > 0 || q.heartbeats > 0 {
            let mut ratio = if q.data_chunks > 0 {
                format!(" ({:.1}%)", 100.0 * p.retransmissions as f64 / q.data_chunks as f64)
            } else {
                String::new()
            };
            if q.spurious_retransmissions > 0 {
                ratio += &format!(", {} of them acknowledged already", q.spurious_retransmissions);
            }
            let window =
                if q.sacks > 0 { format!(", a_rwnd {} (min {})", q.a_rwnd, q.a_rwnd_min) } else { String::new() };
            writeln!(
                out,
                "    {} DATA chunks, {} retransmitted{ratio}, {} lost here{}; {} SACKs, {} gap blocks, {} duplicate TSNs{window}; {} heartbeats, {} unanswered",
                q.data_chunks,
                p.retransmissions,
                q.lost_chunks,
                if p.degraded { " (degraded)" } else { "" },
                q.sacks,
                q.gap_blocks,
                q.dup_tsns,
                q.heartbeats,
                q.heartbeats_unanswered
            )?;
            if q.rtt.count() > 0 {
                let buckets: Vec<String> = (q.rtt.buckets.iter().enumerate())
                    .filter(|(_, n)| **n > 0)
                    .map(|(i, n)| format!("{} {n}", crate::tracker::rtt::bucket_label(i)))
                    .collect();
                writeln!(
                    out,
                    "    heartbeat RTTs: {} (mean {:.2} ms)",
                    buckets.join(", "),
                    q.rtt.sum_us as f64 / q.rtt.count() as f64 / 1e3
                )?;
            }
        }
    }
    for (e, closed) in a.window_zero.iter().enumerate() {
        if *closed {
            let who = if e == 0 { "initiator" } else { "responder" };
            writeln!(out, "  the {who}'s peer advertises a zero window (at the end of the capture)")?;
        }
    }
    if let Some(c) = o.chunk_counts.get(&a.id) {
        let v: Vec<String> = c.total.iter().map(|(t, n)| format!("{} {n}", chunk_name(*t))).collect();
        writeln!(out, "  chunks: {}", v.join(", "))?;
    }
    if !a.errors.is_empty() {
        let total: u64 = a.errors.iter().map(|e| e.1).sum();
        let v: Vec<String> = a
            .errors
            .iter()
            .map(|&(first, n)| match first {
                FirstCause::Code(c) => format!("{} ({c}) {n}", error_cause::name(c)),
                FirstCause::None => format!("no cause {n}"),
                FirstCause::OtherCodes => format!("other codes {n}"),
            })
            .collect();
        writeln!(out, "  ERROR chunks {total}, by first cause: {}", v.join(", "))?;
    }
    let down = o.events.iter().find(|e| e.assoc == a.id && e.event == EventKind::AssociationDown);
    if let Some(d) = down.filter(|d| d.reason == Some(DownReason::Abort)) {
        let by = d.endpoint.map_or("?".to_string(), |r| format!("{r:?}").to_lowercase());
        let mut v: Vec<String> = d.causes.iter().flatten().map(cause).collect();
        if let Some(n) = d.causes_omitted {
            v.push(format!("{n} more"));
        }
        let causes = if v.is_empty() { "no cause given".to_string() } else { v.join("; ") };
        writeln!(out, "  aborted by the {by} at {}: {causes}", rfc3339_micros(d.ts))?;
    }
    for e in o.events.iter().filter(|e| e.assoc == a.id && e.event == EventKind::Failover) {
        let (Some(f), Some(t)) = (e.from, e.to) else {
            continue;
        };
        let last = e.last_old_data.map_or("-".to_string(), rfc3339_micros);
        let ev = e.evidence.map_or("no evidence on the old path".to_string(), |x| {
            format!(
                "{} unanswered heartbeats, {} retransmissions on the old path",
                x.unanswered_heartbeats, x.retransmissions
            )
        });
        writeln!(
            out,
            "  failover at {}: {} -> {} to {} -> {} (last DATA on old path {last}; {ev})",
            rfc3339_micros(e.ts),
            f.src,
            f.dst,
            t.src,
            t.dst
        )?;
    }
    Ok(())
}

/// One error cause: name, code, and its text or staleness.
fn cause(c: &CauseEntry) -> String {
    let mut s = format!("{} ({})", c.name, c.code);
    if let Some(t) = &c.text {
        s.push_str(&format!(" {t:?}"));
    }
    if let Some(us) = c.staleness_us {
        s.push_str(&format!(" stale by {us} us"));
    }
    s
}
