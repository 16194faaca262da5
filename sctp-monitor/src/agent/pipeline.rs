//! One pass from kernel record to sinks: ring record -> `decode_record`
//! (monotonic -> wall clock) -> `Tracker::process` -> events to JSON Lines,
//! the event log and the metrics. Per-path kernel counters and the passage
//! of time enter here too. No I/O of its own besides the event writer, so
//! the benchmarks drive exactly what the agent runs.
//!
//! Records are decoded as they come and given to the tracker in batches
//! of up to [`BATCH`], after the tracker has prefetched what each will
//! touch (`tracker/prefetch.rs`): at 100,000 associations that overlaps
//! the batch's cache misses. [`Pipeline::flush`] ends a batch early; the
//! agent calls it after every drain of the ring, and `tick` and
//! `on_path_stats` call it first, so nothing waits behind a quiet ring.

use std::collections::HashMap;

use sctp_monitor_common::{ChunkRecord, PathKey, PathStats};

use super::clock::{WallClock, mono_now};
use crate::decode::{Chunk, DecodeError, DecodeStats, PacketMeta, decode_record};
use crate::event::{Event, EventKind};
use crate::fasthash::Seeded;
use crate::sinks::{
    events::{EventLog, EventWriter},
    metrics::Metrics,
};
use crate::tracker::{self, Tracker};

/// Records given to the tracker together.
pub const BATCH: usize = 32;

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
    /// Decoded records waiting for the tracker, with their kernel time.
    batch: Vec<(PacketMeta, Chunk, u64)>,
    scratch: Vec<Event>,
    /// Last per-path counters (packets, DATA chunks, payload bytes,
    /// retransmissions, last packet time), to turn absolute kernel values
    /// into totals that survive LRU eviction, and to leave out of the
    /// tracker what did not change; with whether the tracker took them.
    path_last: HashMap<PathKey, ([u64; 5], bool), Seeded>,
    /// The next poll's map, kept to reuse its allocation.
    path_next: HashMap<PathKey, ([u64; 5], bool), Seeded>,
    /// Records processed.
    pub records: u64,
    pub decode_errors: u64,
    /// Failover report delays in ns (kernel time of the triggering record ->
    /// event written), when `record_delays`.
    pub failover_delays: Vec<u64>,
    record_delays: bool,
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
            batch: Vec::with_capacity(BATCH),
            scratch: Vec::new(),
            path_last: HashMap::with_hasher(Seeded::random()),
            path_next: HashMap::with_hasher(Seeded::random()),
            records: 0,
            decode_errors: 0,
            failover_delays: Vec::new(),
            record_delays: opts.record_delays,
        }
    }

    /// One ring-buffer record: decoded now, tracked with its batch (see
    /// the module documentation; [`Pipeline::flush`]).
    pub fn on_record(&mut self, rec: &ChunkRecord) {
        self.records += 1;
        let wall = self.clock.to_wall(rec.ts_ns);
        match decode_record(rec, wall, &mut self.decode_stats) {
            Ok((meta, chunk)) => {
                self.tracker.prefetch_index(&meta);
                self.batch.push((meta, chunk, rec.ts_ns));
                if self.batch.len() >= BATCH {
                    self.flush();
                }
            }
            Err(e) => {
                self.decode_errors += 1;
                self.metrics.decode_error(match e {
                    DecodeError::TooShort { .. } => "too_short",
                    DecodeError::ChunkLength { .. } => "chunk_length",
                    DecodeError::BadIp(_) => "bad_ip",
                    DecodeError::Fragment => "fragment",
                    DecodeError::BadRecord(_) => "bad_record",
                });
            }
        }
    }

    /// Gives the batch of records decoded so far to the tracker.
    pub fn flush(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        let mut batch = std::mem::take(&mut self.batch);
        for (meta, _, _) in &batch {
            self.tracker.prefetch_entry(meta);
        }
        for (meta, _, _) in &batch {
            self.tracker.prefetch_arrays(meta);
        }
        for (meta, chunk, ts) in &batch {
            self.tracker.process(meta, std::slice::from_ref(chunk), &mut self.scratch);
            for rtt in self.tracker.take_rtt_samples() {
                self.metrics.observe_rtt(rtt as f64 / 1e9);
            }
            if !self.scratch.is_empty() {
                self.emit(Some(*ts));
            }
        }
        batch.clear();
        self.batch = batch;
    }

    /// The per-path kernel counters, read from the `PATHS` map. Paths whose
    /// counters did not move since the last read (most of a full map, most
    /// of the time) cost a map lookup, not a tracker update.
    pub fn on_path_stats(&mut self, paths: &[(PathKey, PathStats)]) {
        self.flush();
        let now = self.clock.now();
        let mut next = std::mem::take(&mut self.path_next);
        next.clear();
        next.reserve(paths.len());
        let (mut dp, mut dc, mut db, mut dr) = (0, 0, 0, 0);
        for (k, s) in paths {
            let cur = [s.packets, s.data_chunks, s.payload_bytes, s.retransmissions, s.last_ns];
            let (last, taken) = self.path_last.get(k).copied().unwrap_or_default();
            // A value below the last one: the entry was evicted and created
            // again; count it from zero.
            let d = |i: usize| if cur[i] >= last[i] { cur[i] - last[i] } else { cur[i] };
            dp += d(0);
            dc += d(1);
            db += d(2);
            dr += d(3);
            let taken =
                if taken && cur == last { true } else { self.tracker.observe_path_stats(k, s, now, &mut self.scratch) };
            next.insert(*k, (cur, taken));
        }
        self.path_next = std::mem::replace(&mut self.path_last, next);
        self.metrics.add_data(dp, dc, db, dr);
        if !self.scratch.is_empty() {
            self.emit(None);
        }
    }

    /// Lets time pass: tracker timeouts, unanswered heartbeats.
    pub fn tick(&mut self) {
        self.flush();
        let now = self.clock.now();
        self.tracker.tick(now, &mut self.scratch);
        let stats = self.tracker.stats();
        self.metrics.heartbeat_unanswered(stats.heartbeats_unanswered - self.unanswered_seen);
        self.unanswered_seen = stats.heartbeats_unanswered;
        self.metrics.set_tracker_stats(&stats);
        if !self.scratch.is_empty() {
            self.emit(None);
        }
    }

    /// Writes the pending events to every sink. `trigger` is the kernel
    /// timestamp of the record that caused them.
    fn emit(&mut self, trigger: Option<u64>) {
        let mut events = std::mem::take(&mut self.scratch);
        for ev in events.iter() {
            let line = self.writer.queue_event(ev);
            self.metrics.on_event(ev);
            self.log.push(line);
        }
        self.writer.flush();
        // The delay runs to the event written.
        if let Some(t) = trigger {
            for _ in events.iter().filter(|ev| ev.event == EventKind::Failover) {
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
    use sctp_monitor_common::RecordKind;
    use std::net::Ipv4Addr;

    fn rec(chunk: &[u8], src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, vtag: u32, ts: u64) -> ChunkRecord {
        let mut r = ChunkRecord::zeroed();
        r.kind = if chunk[0] == 0 { RecordKind::DataFirst as u8 } else { RecordKind::Control as u8 };
        r.ts_ns = ts;
        r.ip_version = 4;
        r.src_addr[..4].copy_from_slice(&src);
        r.dst_addr[..4].copy_from_slice(&dst);
        r.src_port = sport;
        r.dst_port = dport;
        r.vtag = vtag;
        r.chunk_type = chunk[0];
        r.chunk_len = u16::from_be_bytes([chunk[2], chunk[3]]);
        let n = chunk.len().min(r.data.len());
        r.data[..n].copy_from_slice(&chunk[..n]);
        r.seg1_len = n as u16;
        r
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
        assert_eq!(p.events(), 0, "waiting in the batch");
        p.flush();
        assert!(p.events() >= 1, "association_up");
        let page = p.log.since(0, 10);
        assert!(page.events[0].1.contains("\"association_up\""), "{:?}", page.events);
        assert!(page.events[0].1.contains("10.0.1.1"), "both addresses of the initiator");
        assert_eq!(p.tracker.len(), 1);
        let om = p.metrics.encode(true);
        assert!(om.contains("sctp_monitor_events_total{event=\"association_up\"} 1"), "{om}");
        assert!(om.contains("sctp_monitor_heartbeat_rtt_seconds_count 1"), "{om}");
    }
}
