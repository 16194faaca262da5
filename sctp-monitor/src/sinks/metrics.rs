//! Prometheus / OpenMetrics exposition (prometheus-client).
//!
//! Every name starts with `sctp_monitor_`; counters end in `_total`, times
//! are `_seconds`, sizes `_bytes`.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `associations` | gauge | `state` |
//! | `paths` | gauge | `state` |
//! | `associations_by_protocol` | gauge | `ppid` (name; `other` for the rest; an association in each of its own) |
//! | `events_total` | counter | `event` (every kind, from 0: failovers, path down/up, restarts...) |
//! | `heartbeat_rtt_seconds` | histogram | |
//! | `heartbeats_unanswered_total` | counter | |
//! | `paths_unanswered_heartbeats` | gauge | (sum over paths now) |
//! | `chunks_total` | counter | `interface`, `direction`, `type` |
//! | `data_packets_total`, `data_chunks_total`, `data_bytes_total` | counter | |
//! | `retransmissions_total` | counter | |
//! | `kernel_packets_total` | counter | `direction`, `class` (each frame in exactly one) |
//! | `kernel_sctp_over_udp_packets_total` | counter | `direction` (part of `class="sctp"`) |
//! | `malformed_packets_total` | counter | `direction`, `reason` |
//! | `decode_errors_total` | counter | `reason` |
//! | `ring_buffer_records_total` | counter | |
//! | `ring_buffer_records_lost_total` | counter | |
//! | `programs_attached` | gauge | `interface`, `program`, `mode` |
//! | `kernel_assoc_slots_replaced_total` | counter | (kernel `ASSOC_DIRS` slot takeovers) |
//! | `kernel_path_slots_taken_over_total` | counter | (kernel `PATH_SLOTS` takeovers; no total is lost) |
//! | `tracker_evictions_total` | counter | |
//! | `tracker_expired_total`, `tracker_unmatched_packets_total` | counter | |
//! | `tracker_associations_created_total` | counter | |
//! | `abort_causes_total` | counter | `cause` (error cause name, `crate::error_cause`; `unknown` for the rest) of the ABORTs that ended an association |
//! | `error_causes_total` | counter | `cause`, of every ERROR chunk (also those the event log coalesced) |
//! | `failover_report_delay_seconds` | histogram | kernel record -> event written, for every move of new DATA (failover, failback, primary change) |
//! | `series_capped_associations` | gauge | associations left out of per-association series |
//! | `association_info` | gauge (1) | identity, `state`, `initiator_addrs`, `responder_addrs`, `ppids` |
//! | `association_failovers_total` | counter | identity |
//! | `path_state` | gauge (1) | identity, `sender`, `src`, `dst`, `state` |
//! | `path_rtt_seconds` | gauge | identity, `sender`, `src`, `dst` |
//! | `path_data_packets_total` | counter | identity, `sender`, `src`, `dst` |
//! | `path_data_chunks_total`, `path_retransmitted_chunks_total` | counter | identity, `sender`, `src`, `dst` (DATA chunks the sender sent on the path; of them retransmissions) |
//! | `path_lost_chunks_total` | counter | identity, `sender`, `src`, `dst` (DATA chunks last sent on the path that had to be sent again: its losses, over `path_data_chunks_total` its loss ratio) |
//! | `path_sacks_total`, `path_gap_blocks_total`, `path_duplicate_tsns_total` | counter | identity, `sender`, `src`, `dst` (SACKs the sender sent on the path, for the peer's DATA) |
//! | `path_a_rwnd_bytes`, `path_a_rwnd_min_bytes` | gauge | identity, `sender`, `src`, `dst` (last and smallest window those SACKs advertised) |
//! | `path_heartbeats_total`, `path_heartbeats_unanswered_total` | counter | identity, `sender`, `src`, `dst` |
//! | `path_heartbeat_rtt_seconds` | histogram | identity, `sender`, `src`, `dst` (liveness heartbeats' RTTs, `tracker/rtt.rs` buckets) |
//! | `association_chunks_total` | counter | identity, `type` (control chunks, DATA/I_DATA and SACK: `tracker/chunks.rs`) |
//! | `associations_window_zero` | gauge | (receivers advertising a zero window now) |
//!
//! The per-association and per-path series exist for at most
//! `--metrics-series-cap` associations (lowest ids first), so a host with
//! 100,000 associations cannot flood a Prometheus server. An association's
//! identity is what the wire gives it, the same after an agent restart:
//! `initiator_port`, `initiator_vtag`, `responder_port`, `responder_vtag`
//! (tags in decimal, as in the events; empty while not seen). Addresses
//! are labels of their own (a port is never appended to an address, so
//! IPv6 reads unambiguously); `ppids` is the association's upper-layer
//! protocols by name (`crate::ppid`), comma-separated.

use std::sync::atomic::Ordering;

use prometheus_client::{
    encoding::text::encode,
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::{Registry, Unit},
};
use sctp_monitor_common::{counters as kc, direction, sctp::chunk};

use super::api::{ASSOC_STATES, PATH_STATES, assoc_state_name, path_state_name};
use super::series::AssocSeries;
use crate::error_cause;
use crate::event::{Event, EventKind};
use crate::kernel::counters::Counters;
use crate::tracker::{Tracker, TrackerStats};

type Labels = Vec<(&'static str, String)>;

fn l1(k: &'static str, v: impl Into<String>) -> Labels {
    vec![(k, v.into())]
}

/// Counter set to an absolute value read elsewhere (kernel maps, tracker).
fn set_counter(c: &Counter, v: u64) {
    c.inner().store(v, Ordering::Relaxed);
}

pub fn direction_name(d: u8) -> &'static str {
    if d == direction::INGRESS { "ingress" } else { "egress" }
}

pub fn chunk_type_name(t: u8) -> String {
    chunk::name(t).map(|n| n.to_ascii_lowercase().replace('-', "_")).unwrap_or_else(|| format!("type_{t}"))
}

/// Kernel `COUNTERS` that count malformed packets, with the reason label.
const MALFORMED: [(u32, &str); 5] = [
    (kc::MALFORMED_TRUNCATED, "truncated"),
    (kc::MALFORMED_IP_HEADER, "ip_header"),
    (kc::MALFORMED_EXT_HDR_LIMIT, "ext_hdr_limit"),
    (kc::MALFORMED_CHUNK_LEN, "chunk_len"),
    (kc::TOO_MANY_CHUNKS, "too_many_chunks"),
];

/// Kernel `COUNTERS` of packet classes: every frame is in exactly one
/// (`counters::PACKET_OUTCOMES`), the header-level malformed ones together.
const CLASSES: [(&[u32], &str); 4] = [
    (&[kc::NOT_SCTP], "not_sctp"),
    (&[kc::SCTP_PACKETS], "sctp"),
    (&[kc::NON_FIRST_FRAGMENT], "non_first_fragment"),
    (&[kc::MALFORMED_TRUNCATED, kc::MALFORMED_IP_HEADER, kc::MALFORMED_EXT_HDR_LIMIT], "malformed"),
];

pub struct Metrics {
    registry: Registry,
    associations: Family<Labels, Gauge>,
    by_protocol: Family<Labels, Gauge>,
    paths: Family<Labels, Gauge>,
    events: Family<Labels, Counter>,
    /// `events` series by `EventKind as usize`, each created at start (a
    /// kind never seen reads 0, so `rate()` and alerts work from the start).
    event_counters: [Counter; EventKind::ALL.len()],
    hb_rtt: Histogram,
    hb_unanswered: Counter,
    paths_unanswered: Gauge,
    window_zero: Gauge,
    chunks: Family<Labels, Counter>,
    data_packets: Counter,
    data_chunks: Counter,
    data_bytes: Counter,
    retransmissions: Counter,
    kernel_packets: Family<Labels, Counter>,
    udp_encap: Family<Labels, Counter>,
    malformed: Family<Labels, Counter>,
    decode_errors: Family<Labels, Counter>,
    ring_records: Counter,
    ring_lost: Counter,
    assoc_slots_replaced: Counter,
    path_slots_taken_over: Counter,
    programs: Family<Labels, Gauge>,
    evictions: Counter,
    expired: Counter,
    unmatched: Counter,
    created: Counter,
    /// By `crate::error_cause::label_index`, each created at start.
    abort_causes: [Counter; error_cause::LABELS],
    error_causes: [Counter; error_cause::LABELS],
    report_delay: Histogram,
    capped: Gauge,
    /// `association_info`, `association_failovers_total`, `path_state`,
    /// `path_rtt_seconds`, `path_data_packets_total`.
    series: AssocSeries,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut r = Registry::with_prefix("sctp_monitor");
        let events: Family<Labels, Counter> = Family::default();
        let abort_causes: Family<Labels, Counter> = Family::default();
        let error_causes: Family<Labels, Counter> = Family::default();
        let by_cause = |f: &Family<Labels, Counter>| {
            std::array::from_fn(|i| f.get_or_create(&l1("cause", error_cause::label(i))).clone())
        };
        let m = Metrics {
            registry: Registry::default(),
            associations: Family::default(),
            by_protocol: Family::default(),
            paths: Family::default(),
            events: events.clone(),
            event_counters: EventKind::ALL.map(|k| events.get_or_create(&l1("event", k.name())).clone()),
            // 50 us .. ~13 s
            hb_rtt: Histogram::new([
                0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                5.0, 10.0,
            ]),
            hb_unanswered: Counter::default(),
            paths_unanswered: Gauge::default(),
            window_zero: Gauge::default(),
            chunks: Family::default(),
            data_packets: Counter::default(),
            data_chunks: Counter::default(),
            data_bytes: Counter::default(),
            retransmissions: Counter::default(),
            kernel_packets: Family::default(),
            udp_encap: Family::default(),
            malformed: Family::default(),
            decode_errors: Family::default(),
            ring_records: Counter::default(),
            ring_lost: Counter::default(),
            assoc_slots_replaced: Counter::default(),
            path_slots_taken_over: Counter::default(),
            programs: Family::default(),
            evictions: Counter::default(),
            expired: Counter::default(),
            unmatched: Counter::default(),
            created: Counter::default(),
            abort_causes: by_cause(&abort_causes),
            error_causes: by_cause(&error_causes),
            report_delay: Histogram::new([
                0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.1, 1.0,
            ]),
            capped: Gauge::default(),
            series: AssocSeries::default(),
        };
        r.register("associations", "SCTP associations tracked, by state", m.associations.clone());
        r.register(
            "associations_by_protocol",
            "Associations whose DATA carried each upper-layer protocol (PPID), every association counted",
            m.by_protocol.clone(),
        );
        r.register("paths", "Paths of tracked associations, by state", m.paths.clone());
        r.register(
            "events",
            "Events emitted, by kind (failover: new DATA moved to another destination; restart: new INIT between \
             the same endpoints; ...)",
            m.events.clone(),
        );
        r.register_with_unit(
            "heartbeat_rtt",
            "HEARTBEAT to HEARTBEAT-ACK round-trip time",
            Unit::Seconds,
            m.hb_rtt.clone(),
        );
        r.register(
            "heartbeats_unanswered",
            "HEARTBEATs not answered within the heartbeat timeout",
            m.hb_unanswered.clone(),
        );
        r.register(
            "paths_unanswered_heartbeats",
            "Consecutive unanswered heartbeats, summed over all paths",
            m.paths_unanswered.clone(),
        );
        r.register(
            "associations_window_zero",
            "Receivers advertising a zero window now (one per association and direction of DATA)",
            m.window_zero.clone(),
        );
        r.register("chunks", "SCTP chunks seen by the kernel programs", m.chunks.clone());
        r.register("data_packets", "Packets carrying DATA/I-DATA or SACK, all paths", m.data_packets.clone());
        r.register("data_chunks", "DATA/I-DATA chunks, all paths", m.data_chunks.clone());
        r.register_with_unit("data", "User data bytes in DATA/I-DATA, all paths", Unit::Bytes, m.data_bytes.clone());
        r.register("retransmissions", "DATA chunks retransmitted (TSN not new)", m.retransmissions.clone());
        r.register(
            "kernel_packets",
            "Frames seen by the kernel programs, by class (each frame in one)",
            m.kernel_packets.clone(),
        );
        r.register(
            "kernel_sctp_over_udp_packets",
            "SCTP packets carried over UDP (RFC 6951), part of kernel_packets class sctp",
            m.udp_encap.clone(),
        );
        r.register("malformed_packets", "Malformed frames or chunks, by reason", m.malformed.clone());
        r.register("decode_errors", "Kernel records the userspace decoder rejected", m.decode_errors.clone());
        r.register("ring_buffer_records", "Records written to the ring buffer", m.ring_records.clone());
        r.register("ring_buffer_records_lost", "Records lost because the ring buffer was full", m.ring_lost.clone());
        r.register(
            "kernel_assoc_slots_replaced",
            "Kernel association-direction slots taken over by another association (its TSN history restarts)",
            m.assoc_slots_replaced.clone(),
        );
        r.register(
            "kernel_path_slots_taken_over",
            "Kernel per-path slots taken over by another path (the old path's totals move to the overflow map)",
            m.path_slots_taken_over.clone(),
        );
        r.register("programs_attached", "eBPF programs attached, by interface, program and mode", m.programs.clone());
        r.register("tracker_evictions", "Associations evicted to respect the cap", m.evictions.clone());
        r.register("tracker_expired", "Associations ended by idle timeout", m.expired.clone());
        r.register(
            "tracker_unmatched_packets",
            "Records that matched no association and started none",
            m.unmatched.clone(),
        );
        r.register("tracker_associations_created", "Associations created", m.created.clone());
        r.register(
            "abort_causes",
            "Error causes of the ABORTs that ended an association, by cause (RFC 9260 3.3.10 and extensions)",
            abort_causes,
        );
        r.register(
            "error_causes",
            "Error causes of the ERROR chunks of associations, by cause (every chunk, also those the event log \
             coalesced)",
            error_causes,
        );
        r.register_with_unit(
            "failover_report_delay",
            "Kernel timestamp of the triggering record to the event reporting a move of new DATA (failover, failback, primary change) written",
            Unit::Seconds,
            m.report_delay.clone(),
        );
        r.register(
            "series_capped_associations",
            "Associations left out of the per-association series (--metrics-series-cap)",
            m.capped.clone(),
        );
        r.register_collector(Box::new(m.series.clone()));
        Metrics { registry: r, ..m }
    }

    /// Counts an emitted event.
    pub fn on_event(&self, ev: &Event) {
        // The series of each kind, looked up once (label vector, lock and
        // hash per event before).
        self.event_counters[ev.event as usize].inc();
    }

    pub fn observe_rtt(&self, secs: f64) {
        self.hb_rtt.observe(secs);
    }

    pub fn heartbeat_unanswered(&self, n: u64) {
        self.hb_unanswered.inc_by(n);
    }

    pub fn observe_report_delay(&self, secs: f64) {
        self.report_delay.observe(secs);
    }

    pub fn decode_error(&self, reason: &'static str) {
        self.decode_errors.get_or_create(&l1("reason", reason)).inc();
    }

    /// Totals accumulated from the per-path kernel maps.
    pub fn add_data(&self, packets: u64, chunks: u64, bytes: u64, retrans: u64) {
        self.data_packets.inc_by(packets);
        self.data_chunks.inc_by(chunks);
        self.data_bytes.inc_by(bytes);
        self.retransmissions.inc_by(retrans);
    }

    /// Kernel `COUNTERS` (index 0 ingress, 1 egress) and chunk counts by
    /// (interface slot, direction, type); `slot_name` names a slot.
    pub fn set_kernel(
        &self,
        counters: &[Counters; 2],
        chunks: &[((u32, u8, u8), u64)],
        slot_name: impl Fn(u32) -> String,
    ) {
        let mut records = 0;
        let mut lost = 0;
        let mut replaced = 0;
        let mut taken_over = 0;
        for (d, c) in counters.iter().enumerate() {
            let dir = direction_name(d as u8);
            for (idx, reason) in MALFORMED {
                let l = vec![("direction", dir.to_string()), ("reason", reason.to_string())];
                set_counter(&self.malformed.get_or_create(&l), c.get(idx));
            }
            for (idxs, class) in CLASSES {
                let l = vec![("direction", dir.to_string()), ("class", class.to_string())];
                set_counter(&self.kernel_packets.get_or_create(&l), idxs.iter().map(|&i| c.get(i)).sum());
            }
            set_counter(&self.udp_encap.get_or_create(&l1("direction", dir)), c.get(kc::UDP_ENCAP_PACKETS));
            records += c.get(kc::RINGBUF_RECORDS);
            lost += c.get(kc::RINGBUF_LOST);
            replaced += c.get(kc::ASSOC_DIR_REPLACED);
            taken_over += c.get(kc::PATH_SLOT_TAKEOVERS);
        }
        set_counter(&self.assoc_slots_replaced, replaced);
        set_counter(&self.path_slots_taken_over, taken_over);
        set_counter(&self.ring_records, records);
        set_counter(&self.ring_lost, lost);
        for &((slot, dir, t), n) in chunks {
            let l = vec![
                ("interface", slot_name(slot)),
                ("direction", direction_name(dir).to_string()),
                ("type", chunk_type_name(t)),
            ];
            set_counter(&self.chunks.get_or_create(&l), n);
        }
    }

    /// Programs attached now: `(interface, program, mode)`.
    pub fn set_attached(&self, attached: &[(String, &'static str, String)]) {
        self.programs.clear();
        for (iface, prog, mode) in attached {
            let l = vec![("interface", iface.clone()), ("program", prog.to_string()), ("mode", mode.clone())];
            self.programs.get_or_create(&l).set(1);
        }
    }

    pub fn set_tracker_stats(&self, s: &TrackerStats) {
        set_counter(&self.evictions, s.evictions);
        set_counter(&self.expired, s.expired);
        set_counter(&self.unmatched, s.unmatched_packets);
        set_counter(&self.created, s.associations_created);
        for i in 0..error_cause::LABELS {
            set_counter(&self.abort_causes[i], s.abort_causes[i]);
            set_counter(&self.error_causes[i], s.error_causes[i]);
        }
    }

    /// Gauges over all associations, and per-association/per-path series for
    /// at most `cap` of them (lowest ids first). Views are built for those
    /// only: a scrape at 100,000 associations costs a pass over the slab.
    pub fn set_associations(&self, tracker: &Tracker, cap: usize) {
        let census = tracker.census();
        let detailed = tracker.lowest_ids(cap);
        let total = tracker.len();
        for s in ASSOC_STATES {
            self.associations.get_or_create(&l1("state", assoc_state_name(s))).set(census.associations_in(s) as i64);
        }
        for s in PATH_STATES {
            self.paths.get_or_create(&l1("state", path_state_name(s))).set(census.paths_in(s) as i64);
        }
        for (i, n) in census.by_ppid_bit.iter().enumerate() {
            self.by_protocol.get_or_create(&l1("ppid", crate::ppid::bit_label(i))).set(*n as i64);
        }
        self.paths_unanswered.set(census.unanswered_heartbeats as i64);
        self.window_zero.set(census.windows_zero as i64);
        self.capped.set(total.saturating_sub(detailed.len()) as i64);
        self.series.set(detailed);
    }

    /// The exposition: OpenMetrics, or Prometheus text 0.0.4.
    pub fn encode(&self, openmetrics: bool) -> String {
        let mut s = String::with_capacity(16 * 1024);
        // Writing into a String cannot fail.
        let _ = encode(&mut s, &self.registry);
        if openmetrics { s } else { openmetrics_to_text(&s) }
    }

    /// Failover events counted.
    pub fn failovers(&self) -> u64 {
        self.event_counters[EventKind::Failover as usize].get()
    }
}

pub const OPENMETRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// OpenMetrics text -> Prometheus text 0.0.4: counter families are named
/// with their `_total` suffix, `# UNIT` and `# EOF` go away.
pub fn openmetrics_to_text(om: &str) -> String {
    let counters: std::collections::HashSet<&str> =
        om.lines().filter_map(|l| l.strip_prefix("# TYPE ")).filter_map(|l| l.strip_suffix(" counter")).collect();
    let mut out = String::with_capacity(om.len());
    for line in om.lines() {
        if line.starts_with("# UNIT ") || line == "# EOF" {
            continue;
        }
        for prefix in ["# HELP ", "# TYPE "] {
            if let Some(rest) = line.strip_prefix(prefix) {
                let name = rest.split(' ').next().unwrap_or("");
                if counters.contains(name) {
                    out.push_str(prefix);
                    out.push_str(name);
                    out.push_str("_total");
                    out.push_str(&rest[name.len()..]);
                    out.push('\n');
                }
            }
        }
        if (line.starts_with("# HELP ") || line.starts_with("# TYPE "))
            && counters.contains(line[7..].split(' ').next().unwrap_or(""))
        {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_format_names_counters_with_total() {
        let m = Metrics::new();
        let mut ev = Event::new(0, EventKind::Failover, 1);
        ev.from = None;
        m.on_event(&ev);
        m.observe_rtt(0.002);
        let om = m.encode(true);
        assert!(om.contains("# TYPE sctp_monitor_events counter"), "{om}");
        assert!(om.contains("sctp_monitor_events_total{event=\"failover\"} 1"), "{om}");
        assert!(om.ends_with("# EOF\n"));
        let t = m.encode(false);
        assert!(t.contains("# TYPE sctp_monitor_events_total counter"), "{t}");
        assert!(t.contains("# HELP sctp_monitor_events_total "), "{t}");
        assert!(t.contains("sctp_monitor_heartbeat_rtt_seconds_bucket{le=\"0.0025\"} 1"), "{t}");
        assert!(!t.contains("# EOF") && !t.contains("# UNIT"));
    }

    #[test]
    fn no_total_beside_its_parts_and_no_counter_twice() {
        let m = Metrics::new();
        let mut c = [Counters::default(), Counters::default()];
        let set = [
            (kc::NOT_SCTP, 7),
            (kc::SCTP_PACKETS, 5),
            (kc::NON_FIRST_FRAGMENT, 1),
            (kc::MALFORMED_TRUNCATED, 2),
            (kc::MALFORMED_IP_HEADER, 1),
            (kc::UDP_ENCAP_PACKETS, 3),
            (kc::PACKETS, 16),
        ];
        for (i, v) in set {
            c[0].values[i as usize] = v;
        }
        m.set_kernel(&c, &[], |_| String::new());
        let om = m.encode(true);
        let value = |series: &str| {
            om.lines()
                .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse::<u64>().ok())
                .unwrap_or_else(|| panic!("no {series} in\n{om}"))
        };
        assert!(!om.contains("class=\"all\""), "{om}");
        let classes = ["not_sctp", "sctp", "non_first_fragment", "malformed"];
        let sum: u64 = classes
            .iter()
            .map(|c| value(&format!("sctp_monitor_kernel_packets_total{{direction=\"ingress\",class=\"{c}\"}}")))
            .sum();
        assert_eq!(sum, 16, "the classes add up to every frame");
        assert_eq!(value("sctp_monitor_kernel_sctp_over_udp_packets_total{direction=\"ingress\"}"), 3);
        // Every event kind from 0, and no second counter of any of them.
        for k in EventKind::ALL {
            assert_eq!(value(&format!("sctp_monitor_events_total{{event=\"{}\"}}", k.name())), 0);
        }
        for gone in ["sctp_monitor_failovers_total", "sctp_monitor_path_down_total", "sctp_monitor_restarts_total"] {
            assert!(!om.contains(gone), "{gone} duplicates events_total");
        }
    }

    #[test]
    fn cause_counters_have_a_bounded_label_set_from_zero() {
        let m = Metrics::new();
        let mut s = TrackerStats::default();
        s.abort_causes[error_cause::label_index(12)] = 3;
        s.error_causes[error_cause::label_index(0x7777)] = 2;
        m.set_tracker_stats(&s);
        let t = m.encode(false);
        assert!(t.contains("sctp_monitor_abort_causes_total{cause=\"user_initiated_abort\"} 3"), "{t}");
        assert!(t.contains("sctp_monitor_error_causes_total{cause=\"unknown\"} 2"), "{t}");
        assert!(t.contains("sctp_monitor_error_causes_total{cause=\"stale_cookie_error\"} 0"), "{t}");
        for family in ["sctp_monitor_abort_causes_total{", "sctp_monitor_error_causes_total{"] {
            assert_eq!(t.lines().filter(|l| l.starts_with(family)).count(), error_cause::LABELS, "{t}");
        }
    }

    #[test]
    fn chunk_type_names_are_label_friendly() {
        assert_eq!(chunk_type_name(5), "heartbeat_ack");
        assert_eq!(chunk_type_name(0), "data");
        assert_eq!(chunk_type_name(250), "type_250");
    }
}
