//! One pass from kernel record to sinks: ring record -> `decode_parts`
//! (monotonic -> wall clock) -> `Tracker::process` -> events to JSON Lines,
//! the event log and the metrics. Per-path kernel counters and the passage
//! of time enter here too. No I/O of its own besides the event writer, so
//! the benchmarks drive exactly what the agent runs.
//!
//! Records come as the ring buffer holds them ([`Pipeline::on_items`]),
//! read in place: no copy, no queue of decoded records. They are taken in
//! groups of up to [`BATCH`]: the tracker first prefetches, from the
//! records' headers, what each will touch (`tracker/prefetch.rs`: at
//! 100,000 associations that overlaps the group's cache misses), then each
//! record is decoded and tracked in turn. Nothing waits for a later call.

use std::collections::HashMap;

use sctp_monitor_common::record::{RecordHeader, split_item};
use sctp_monitor_common::{ChunkRecord, PathKey, PathStats};

use super::clock::{WallClock, mono_now};
use crate::decode::{Chunk, DecodeError, DecodeStats, PacketMeta, decode_record, record_chunk, record_meta};
use crate::event::Event;
use crate::fasthash::Seeded;
use crate::sinks::{
    events::{EventLog, EventWriter},
    metrics::Metrics,
};
use crate::tracker::{self, Hint, Tracker};

/// One path's counters as last read.
#[derive(Debug, Clone, Copy, Default)]
struct PathLast {
    /// Packets, DATA chunks, payload bytes, retransmissions, last packet time.
    counters: [u64; 5],
    /// The tracker took these counters.
    taken: bool,
    /// The poll that saw the path last.
    poll: u32,
}

/// Records prefetched for together (the tracker's group size).
const BATCH: usize = tracker::PREFETCH_BATCH;

/// A ring item read in place: header, segment 1, segment 2.
type Parts<'a> = (&'a RecordHeader, &'a [u8], &'a [u8]);

/// Settings of the pipeline.
#[derive(Clone, Debug)]
pub struct PipelineOptions {
    pub tracker: tracker::Config,
    /// Events kept for `/api/events`.
    pub event_log: usize,
    /// Keep every failover report delay (benchmarks).
    pub record_delays: bool,
}

impl Default for PipelineOptions {
    fn default() -> Self {
        PipelineOptions { tracker: tracker::Config::default(), event_log: 10_000, record_delays: false }
    }
}

pub struct Pipeline {
    pub tracker: Tracker,
    pub clock: WallClock,
    pub decode_stats: DecodeStats,
    pub metrics: Metrics,
    pub log: EventLog,
    writer: EventWriter,
    /// `TrackerStats::heartbeats_unanswered` already in the metrics.
    unanswered_seen: u64,
    scratch: Vec<Event>,
    /// Last per-path counters, to turn absolute kernel values into totals
    /// that survive LRU eviction, and to leave out of the tracker what did
    /// not change. Updated in place; paths the last poll did not see are
    /// dropped after it.
    path_last: HashMap<PathKey, PathLast, Seeded>,
    /// The number of the current per-path poll.
    path_poll: u32,
    /// Records processed.
    pub records: u64,
    pub decode_errors: u64,
    /// Report delays of moves of new DATA (failover, failback, primary
    /// change) in ns (kernel time of the triggering record -> event
    /// written), when `record_delays`.
    pub failover_delays: Vec<u64>,
    record_delays: bool,
    /// Every event's `host`.
    host: Option<String>,
    /// Interface names by ifindex (attached now or before), for `ifname`.
    ifnames: Vec<(u32, String)>,
    /// OTLP logs and metrics (`--otlp-endpoint`).
    #[cfg(feature = "otlp")]
    otlp: Option<crate::sinks::otlp::OtlpExporter>,
}

impl Pipeline {
    pub fn new(opts: PipelineOptions, writer: EventWriter) -> Pipeline {
        Pipeline {
            tracker: Tracker::new(tracker::Config { rtt_samples: true, ..opts.tracker }),
            clock: WallClock::measure(),
            decode_stats: DecodeStats::default(),
            metrics: Metrics::new(),
            log: EventLog::new(opts.event_log),
            writer,
            unanswered_seen: 0,
            scratch: Vec::new(),
            path_last: HashMap::with_hasher(Seeded::random()),
            path_poll: 0,
            records: 0,
            decode_errors: 0,
            failover_delays: Vec::new(),
            record_delays: opts.record_delays,
            host: None,
            ifnames: Vec::new(),
            #[cfg(feature = "otlp")]
            otlp: None,
        }
    }

    /// Exports events and counts over OTLP from now on.
    #[cfg(feature = "otlp")]
    pub fn set_otlp(&mut self, exporter: crate::sinks::otlp::OtlpExporter) {
        self.otlp = Some(exporter);
    }

    /// Flushes and stops the exporters that send in the background (OTLP);
    /// the agent calls it when it stops.
    pub fn shutdown_exporters(&mut self) {
        #[cfg(feature = "otlp")]
        if let Some(o) = self.otlp.take() {
            o.set_census(&self.tracker.census());
            o.shutdown();
        }
    }

    /// The `host` of every event from now on.
    pub fn set_host(&mut self, host: &str) {
        self.host = Some(host.to_string());
    }

    /// Interfaces (ifindex, name) the records come from; one seen before
    /// keeps its name until its ifindex is given another.
    pub fn set_ifnames<'a>(&mut self, attached: impl Iterator<Item = (u32, &'a str)>) {
        for (idx, name) in attached {
            match self.ifnames.iter_mut().find(|(i, _)| *i == idx) {
                Some((_, n)) if n == name => {}
                Some((_, n)) => *n = name.to_string(),
                None => self.ifnames.push((idx, name.to_string())),
            }
        }
    }

    /// Ring-buffer records, each the bytes of one ring item (see the module
    /// documentation).
    pub fn on_items(&mut self, items: &[&[u8]]) {
        for group in items.chunks(BATCH) {
            let mut parts: [Option<Parts<'_>>; BATCH] = [None; BATCH];
            let mut hints = [Hint::default(); BATCH];
            let (parts, hints) = (&mut parts[..group.len()], &mut hints[..group.len()]);
            for ((p, hint), item) in parts.iter_mut().zip(hints.iter_mut()).zip(group) {
                *p = split_item(item);
                if let Some((h, ..)) = p {
                    *hint = self.tracker.prefetch_index(h.vtag, h.src_port, h.dst_port);
                }
            }
            for hint in hints.iter_mut() {
                self.tracker.prefetch_entry(hint);
            }
            for hint in hints.iter() {
                self.tracker.prefetch_arrays(hint);
            }
            for (p, item) in parts.iter().zip(group) {
                self.one(*p, item);
            }
            // The group's heartbeat RTTs (the tracker keeps them until
            // taken): one look per group rather than per record.
            for rtt in self.tracker.take_rtt_samples() {
                self.metrics.observe_rtt(rtt as f64 / 1e9);
            }
        }
    }

    /// One record, copied out of the ring (tests, tools).
    pub fn on_record(&mut self, rec: &ChunkRecord) {
        let n = ChunkRecord::wire_len(rec.seg1_len, rec.seg2_len).min(size_of::<ChunkRecord>());
        self.on_items(&[&bytemuck::bytes_of(rec)[..n]]);
    }

    /// Decodes and tracks one ring item (`parts`: its `split_item`).
    fn one(&mut self, parts: Option<Parts<'_>>, item: &[u8]) {
        self.records += 1;
        let Some((h, seg1, seg2)) = parts else {
            // Shorter than its header says: copied, the missing bytes read
            // as zero (the kernel always writes whole records).
            match ChunkRecord::from_bytes(item) {
                Some(rec) => match decode_record(&rec, self.clock.to_wall(rec.ts_ns), &mut self.decode_stats) {
                    Ok((meta, chunk)) => self.track(&meta, chunk, rec.ts_ns),
                    Err(e) => self.decode_error(e),
                },
                None => self.decode_error(DecodeError::BadRecord("shorter than a record header")),
            }
            return;
        };
        // The two halves of `decode_parts`, kept apart: joined in one
        // value, they were written and read back once more per record.
        let meta = match record_meta(h, self.clock.to_wall(h.ts_ns)) {
            Ok(m) => m,
            Err(e) => return self.decode_error(e),
        };
        match record_chunk(h, seg1, seg2, &mut self.decode_stats) {
            Ok(chunk) => self.track(&meta, chunk, h.ts_ns),
            Err(e) => self.decode_error(e),
        }
    }

    /// A decoded record to the tracker; `ts` is its kernel time.
    #[inline]
    fn track(&mut self, meta: &PacketMeta, chunk: Chunk, ts: u64) {
        self.tracker.process(meta, std::slice::from_ref(&chunk), &mut self.scratch);
        if !self.scratch.is_empty() {
            self.emit(Some(ts), Some(meta.interface));
        }
        chunk.discard();
    }

    fn decode_error(&mut self, e: DecodeError) {
        self.decode_errors += 1;
        self.metrics.decode_error(match e {
            DecodeError::TooShort { .. } => "too_short",
            DecodeError::ChunkLength { .. } => "chunk_length",
            DecodeError::BadIp(_) | DecodeError::Ip(_) => "bad_ip",
            DecodeError::Fragment => "fragment",
            DecodeError::BadRecord(_) => "bad_record",
        });
    }

    /// The per-path kernel counters, read from the `PATHS` map. Paths whose
    /// counters did not move since the last read (most of a full map, most
    /// of the time) cost a map lookup, not a tracker update.
    pub fn on_path_stats(&mut self, paths: &[(PathKey, PathStats)]) {
        let now = self.clock.now();
        self.path_poll = self.path_poll.wrapping_add(1);
        let poll = self.path_poll;
        let (mut dp, mut dc, mut db, mut dr) = (0, 0, 0, 0);
        for (k, s) in paths {
            let cur = [s.packets, s.data_chunks, s.payload_bytes, s.retransmissions, s.last_ns];
            let e = self.path_last.entry(*k).or_default();
            let last = e.counters;
            // A value below the last one: the entry was evicted and created
            // again; count it from zero.
            let d = |i: usize| if cur[i] >= last[i] { cur[i] - last[i] } else { cur[i] };
            dp += d(0);
            dc += d(1);
            db += d(2);
            dr += d(3);
            if !(e.taken && cur == last) {
                e.taken = self.tracker.observe_path_stats(k, s, now, &mut self.scratch);
            }
            e.counters = cur;
            e.poll = poll;
        }
        // Paths gone from the kernel map (LRU eviction): forget them.
        if self.path_last.len() > paths.len() {
            self.path_last.retain(|_, e| e.poll == poll);
        }
        self.metrics.add_data(dp, dc, db, dr);
        if !self.scratch.is_empty() {
            self.emit(None, None);
        }
    }

    /// Lets time pass: tracker timeouts, unanswered heartbeats.
    pub fn tick(&mut self) {
        let now = self.clock.now();
        self.tracker.tick(now, &mut self.scratch);
        let stats = self.tracker.stats();
        self.metrics.heartbeat_unanswered(stats.heartbeats_unanswered - self.unanswered_seen);
        self.unanswered_seen = stats.heartbeats_unanswered;
        self.metrics.set_tracker_stats(&stats);
        #[cfg(feature = "otlp")]
        if let Some(o) = &self.otlp {
            o.set_census(&self.tracker.census());
        }
        if !self.scratch.is_empty() {
            self.emit(None, None);
        }
    }

    /// A monitored interface went down: the paths through it are down.
    pub fn link_down(&mut self, ifindex: u32) {
        let now = self.clock.now();
        self.tracker.link_down(ifindex, now, &mut self.scratch);
        if !self.scratch.is_empty() {
            self.emit(None, Some(ifindex));
        }
    }

    /// Writes the pending events to every sink. `trigger` is the kernel
    /// timestamp of the record that caused them, `ifindex` the interface it
    /// was seen on.
    fn emit(&mut self, trigger: Option<u64>, ifindex: Option<u32>) {
        let mut events = std::mem::take(&mut self.scratch);
        let ifname = ifindex.and_then(|i| self.ifnames.iter().find(|(x, _)| *x == i)).map(|(_, n)| n);
        for ev in events.iter_mut() {
            ev.host.clone_from(&self.host);
            ev.ifname = ifname.cloned();
        }
        for ev in events.iter() {
            let line = self.writer.queue_event(ev);
            self.metrics.on_event(ev);
            #[cfg(feature = "otlp")]
            if let Some(o) = &self.otlp {
                o.on_event(ev, &line);
            }
            self.log.push(line);
        }
        self.writer.flush();
        // The delay runs to the event written.
        if let Some(t) = trigger {
            for _ in events.iter().filter(|ev| ev.is_move()) {
                let delay = mono_now().saturating_sub(t);
                self.metrics.observe_report_delay(delay as f64 / 1e9);
                if self.record_delays {
                    self.failover_delays.push(delay);
                }
            }
        }
        events.clear();
        self.scratch = events;
    }

    /// Events written.
    pub fn events(&self) -> u64 {
        self.log.next_seq()
    }

    pub fn write_errors(&self) -> u64 {
        self.writer.errors
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::craft::{self, InitSpec};
    use bytemuck::Zeroable;
    use sctp_monitor_common::{PathKey, PathStats};
    use std::net::Ipv4Addr;

    fn rec(chunk: &[u8], src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, vtag: u32, ts: u64) -> ChunkRecord {
        crate::craft::record_v4(chunk, (src, dst), (sport, dport), vtag, 0, ts)
    }

    #[test]
    fn handshake_records_produce_an_association_event_in_every_sink() {
        let mut p = Pipeline::new(PipelineOptions::default(), EventWriter::new(None));
        p.clock = WallClock::with_offset(1_700_000_000_000_000_000);
        let a = [10, 0, 0, 1];
        let b = [10, 0, 0, 2];
        let init = craft::init(&InitSpec::new(0x1111, 1).addrs(&[Ipv4Addr::new(10, 0, 1, 1).into()]));
        let init_ack = craft::init_ack(&InitSpec::new(0x2222, 1));
        p.on_record(&rec(&init, a, b, 5000, 6000, 0, 1_000));
        p.on_record(&rec(&init_ack, b, a, 6000, 5000, 0x1111, 2_000));
        p.on_record(&rec(&craft::cookie_echo(&[0; 8]), a, b, 5000, 6000, 0x2222, 3_000));
        p.on_record(&rec(&craft::cookie_ack(), b, a, 6000, 5000, 0x1111, 4_000));
        let info = craft::param(1, &[7; 12]);
        p.on_record(&rec(&craft::heartbeat(&info), a, b, 5000, 6000, 0x2222, 5_000));
        let ack = craft::heartbeat_ack(&info);
        p.on_record(&rec(&ack, b, a, 6000, 5000, 0x1111, 7_000));
        assert_eq!(p.records, 6);
        assert!(p.events() >= 1, "association_up");
        let page = p.log.since(0, 10);
        assert!(page.events[0].1.contains("\"association_up\""), "{:?}", page.events);
        assert!(page.events[0].1.contains("10.0.1.1"), "both addresses of the initiator");
        assert_eq!(p.tracker.len(), 1);
        let om = p.metrics.encode(true);
        assert!(om.contains("sctp_monitor_events_total{event=\"association_up\"} 1"), "{om}");
        assert!(om.contains("sctp_monitor_heartbeat_rtt_seconds_count 1"), "{om}");
    }

    /// A move of new DATA with no failure behind it (a primary change) is
    /// a move the report delay covers, as a failover is; the first
    /// primary of a direction is none.
    #[test]
    fn the_report_delay_covers_every_move_of_new_data() {
        let opts = PipelineOptions { record_delays: true, ..PipelineOptions::default() };
        let mut p = Pipeline::new(opts, EventWriter::new(None));
        p.clock = WallClock::with_offset(1_700_000_000_000_000_000);
        let (a, b, a2, b2) = ([10, 0, 0, 1], [10, 0, 0, 2], [10, 0, 1, 1], [10, 0, 1, 2]);
        let init = craft::init(&InitSpec::new(0x1111, 1).addrs(&[Ipv4Addr::from(a2).into()]));
        let init_ack = craft::init_ack(&InitSpec::new(0x2222, 1).addrs(&[Ipv4Addr::from(b2).into()]));
        p.on_record(&rec(&init, a, b, 5000, 6000, 0, 1_000));
        p.on_record(&rec(&init_ack, b, a, 6000, 5000, 0x1111, 2_000));
        p.on_record(&rec(&craft::cookie_echo(&[0; 8]), a, b, 5000, 6000, 0x2222, 3_000));
        p.on_record(&rec(&craft::cookie_ack(), b, a, 6000, 5000, 0x1111, 4_000));
        p.on_record(&rec(&craft::data(1, 0, 0, 18, b"x"), a, b, 5000, 6000, 0x2222, 5_000));
        assert!(p.failover_delays.is_empty(), "the first primary is no move");
        let mut moved = rec(&craft::data(2, 0, 1, 18, b"y"), a2, b2, 5000, 6000, 0x2222, 6_000);
        moved.kind = sctp_monitor_common::RecordKind::DataPathChange as u8;
        p.on_record(&moved);
        let lines: Vec<String> = p.log.since(0, 20).events.into_iter().map(|(_, l)| l).collect();
        let moves = lines.iter().filter(|l| l.contains("\"primary_changed\"") && l.contains("\"from\"")).count();
        assert_eq!(moves, 1, "{lines:?}");
        assert_eq!(p.failover_delays.len(), 1, "{lines:?}");
        let om = p.metrics.encode(false);
        assert!(om.contains("sctp_monitor_failover_report_delay_seconds_count 1"), "{om}");
    }

    /// ERROR and ABORT records: the events in the log, the cause counters
    /// on the next tick.
    #[test]
    fn error_and_abort_records_reach_the_log_and_the_cause_counters() {
        let mut p = Pipeline::new(PipelineOptions::default(), EventWriter::new(None));
        p.clock = WallClock::with_offset(1_700_000_000_000_000_000);
        let (a, b) = ([10, 0, 0, 1], [10, 0, 0, 2]);
        p.on_record(&rec(&craft::init(&InitSpec::new(0x1111, 1)), a, b, 5000, 6000, 0, 1_000));
        p.on_record(&rec(&craft::init_ack(&InitSpec::new(0x2222, 1)), b, a, 6000, 5000, 0x1111, 2_000));
        p.on_record(&rec(&craft::cookie_echo(&[0; 8]), a, b, 5000, 6000, 0x2222, 3_000));
        p.on_record(&rec(&craft::cookie_ack(), b, a, 6000, 5000, 0x1111, 4_000));
        let error = craft::error(&[craft::error_cause(6, &craft::raw_chunk(0xee, 0, &[]))]);
        for i in 0..3 {
            p.on_record(&rec(&error, b, a, 6000, 5000, 0x1111, 5_000 + i));
        }
        let abort = craft::abort(false, &[craft::error_cause(12, b"bye")]);
        p.on_record(&rec(&abort, a, b, 5000, 6000, 0x2222, 9_000));
        p.tick();
        let lines: Vec<String> = p.log.since(0, 10).events.into_iter().map(|(_, l)| l).collect();
        let of = |k: &str| lines.iter().filter(|l| l.contains(&format!("\"event\":\"{k}\""))).count();
        assert_eq!(of("error_reported"), 1, "three ERRORs within a second: one event {lines:?}");
        let down = lines.iter().find(|l| l.contains("\"association_down\"")).expect("down");
        assert!(
            down.contains(
                r#""endpoint":"initiator","causes":[{"code":12,"name":"user_initiated_abort","text":"bye"}]"#
            ),
            "{down}"
        );
        let om = p.metrics.encode(false);
        assert!(om.contains("sctp_monitor_error_causes_total{cause=\"unrecognized_chunk_type\"} 3"), "{om}");
        assert!(om.contains("sctp_monitor_abort_causes_total{cause=\"user_initiated_abort\"} 1"), "{om}");
        assert!(om.contains("sctp_monitor_events_total{event=\"error_reported\"} 1"), "{om}");
    }

    #[test]
    fn per_path_counters_become_totals_across_polls_evictions_and_returns() {
        let mut p = Pipeline::new(PipelineOptions::default(), EventWriter::new(None));
        let key = |vtag: u32| {
            let mut k = PathKey::zeroed();
            k.ip_version = 4;
            k.src_addr[..4].copy_from_slice(&[10, 0, 0, 1]);
            k.dst_addr[..4].copy_from_slice(&[10, 0, 0, 2]);
            (k.src_port, k.dst_port, k.vtag) = (5000, 6000, vtag);
            k
        };
        let stats = |packets: u64| PathStats { packets, data_chunks: packets, ..PathStats::zeroed() };
        let total = |p: &Pipeline| {
            let om = p.metrics.encode(true);
            let line = om.lines().find(|l| l.starts_with("sctp_monitor_data_packets_total ")).map(str::to_string);
            line.and_then(|l| l.rsplit(' ').next()?.parse::<u64>().ok()).expect("data_packets_total")
        };
        let (a, b) = (key(1), key(2));
        p.on_path_stats(&[(a, stats(10))]);
        assert_eq!(total(&p), 10);
        p.on_path_stats(&[(a, stats(15)), (b, stats(3))]);
        assert_eq!(total(&p), 18, "the increase of a, all of the new b");
        p.on_path_stats(&[(b, stats(5))]);
        assert_eq!(total(&p), 20, "a evicted from the kernel map");
        assert_eq!(p.path_last.len(), 1, "and forgotten");
        p.on_path_stats(&[(a, stats(2)), (b, stats(5))]);
        assert_eq!(total(&p), 22, "a created again counts from zero");
        p.on_path_stats(&[(a, stats(1)), (b, stats(5))]);
        assert_eq!(total(&p), 23, "a counter going back: evicted and created between polls");
    }
}
