//! The per-association and per-path series (capped: `--metrics-series-cap`
//! associations, lowest ids first), written straight from the views of the
//! last `Metrics::set_associations` at each scrape. A `Family` per metric
//! would hash and store every label set on every scrape and drop them all
//! on the next: a third of a scrape's cost at the default cap.

use std::sync::{Arc, Mutex};

use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet},
    metrics::{MetricType, counter::ConstCounter, gauge::ConstGauge},
    registry::Unit,
};

use super::api::{assoc_state_name, path_state_name};
use crate::tracker::rtt::{BOUNDS_US, RttHistogram};
use crate::tracker::{AssocView, EndpointView, PathView};

/// The views the series are written from; shared with `Metrics`.
#[derive(Debug, Default, Clone)]
pub struct AssocSeries {
    views: Arc<Mutex<Vec<AssocView>>>,
}

/// An endpoint's addresses, comma-separated (no port: IPv6 stays
/// unambiguous).
fn addrs(e: &EndpointView) -> String {
    e.addrs.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(",")
}

/// An association's identity labels: what the wire gives it (ports and
/// tags), the same after an agent restart; a tag not seen yet is empty.
struct Identity([String; 4]);

impl Identity {
    fn of(v: &AssocView) -> Identity {
        let tag = |e: &EndpointView| e.vtag.map_or_else(String::new, |t| t.to_string());
        Identity([v.initiator.port.to_string(), tag(&v.initiator), v.responder.port.to_string(), tag(&v.responder)])
    }

    fn labels(&self) -> [(&'static str, &str); 4] {
        let [ip, it, rp, rt] = &self.0;
        [("initiator_port", ip), ("initiator_vtag", it), ("responder_port", rp), ("responder_vtag", rt)]
    }
}

/// The labels shared by the per-path series of one path.
struct PathLabels<'a> {
    path: &'a PathView,
    id: &'a Identity,
    sender: &'static str,
    src: String,
    dst: String,
}

impl PathLabels<'_> {
    fn base(&self) -> [(&'static str, &str); 7] {
        let [a, b, c, d] = self.id.labels();
        [a, b, c, d, ("sender", self.sender), ("src", &self.src), ("dst", &self.dst)]
    }
}

impl AssocSeries {
    /// The associations to write at the next scrapes.
    pub fn set(&self, views: Vec<AssocView>) {
        *self.views.lock().unwrap_or_else(|e| e.into_inner()) = views;
    }
}

impl Collector for AssocSeries {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let views = self.views.lock().unwrap_or_else(|e| e.into_inner());
        let ids: Vec<Identity> = views.iter().map(Identity::of).collect();
        let sender = |i: usize| if i == 0 { "initiator" } else { "responder" };

        let mut m = enc.encode_descriptor(
            "association_info",
            "One series per association (capped), value 1",
            None,
            MetricType::Gauge,
        )?;
        for (v, id) in views.iter().zip(&ids) {
            let (i, r, p) = (addrs(&v.initiator), addrs(&v.responder), crate::ppid::labels(&v.ppids));
            let [a, b, c, d] = id.labels();
            let l = [
                a,
                b,
                c,
                d,
                ("state", assoc_state_name(v.state)),
                ("initiator_addrs", &i),
                ("responder_addrs", &r),
                ("ppids", &p),
            ];
            ConstGauge::new(1i64).encode(m.encode_family(&l)?)?;
        }

        let mut m = enc.encode_descriptor(
            "association_failovers",
            "Failovers per association (capped)",
            None,
            MetricType::Counter,
        )?;
        for (v, id) in views.iter().zip(&ids) {
            let n = v.failovers[0] as u64 + v.failovers[1] as u64;
            ConstCounter::new(n).encode(m.encode_family(&id.labels())?)?;
        }

        let mut m = enc.encode_descriptor(
            "association_chunks",
            "Chunks per association by type: control chunks, DATA/I_DATA and SACK (capped)",
            None,
            MetricType::Counter,
        )?;
        for (v, id) in views.iter().zip(&ids) {
            for (t, n) in &v.chunks {
                let name = crate::replay::chunk_name(*t);
                let [a, b, c, d] = id.labels();
                ConstCounter::new(*n).encode(m.encode_family(&[a, b, c, d, ("type", &name)])?)?;
            }
        }

        // Path labels, once for every per-path metric.
        let paths: Vec<PathLabels> = views
            .iter()
            .zip(&ids)
            .flat_map(|(v, id)| {
                v.paths.iter().map(move |p| PathLabels {
                    path: p,
                    id,
                    sender: sender(p.sender.index()),
                    src: p.src.to_string(),
                    dst: p.dst.to_string(),
                })
            })
            .collect();

        let mut m = enc.encode_descriptor(
            "path_state",
            "Path state per path (capped), value 1 on the current state",
            None,
            MetricType::Gauge,
        )?;
        for x in &paths {
            let [a, b, c, d, s, src, dst] = x.base();
            let l = [a, b, c, d, s, src, dst, ("state", path_state_name(x.path.state))];
            ConstGauge::new(1i64).encode(m.encode_family(&l)?)?;
        }

        let unit = Unit::Seconds;
        let mut m =
            enc.encode_descriptor("path_rtt", "Last heartbeat RTT per path (capped)", Some(&unit), MetricType::Gauge)?;
        for x in &paths {
            if let Some(rtt) = x.path.rtt_us {
                ConstGauge::new(rtt as f64 / 1e6).encode(m.encode_family(&x.base())?)?;
            }
        }

        let mut m =
            enc.encode_descriptor("path_data_packets", "DATA packets per path (capped)", None, MetricType::Counter)?;
        for x in &paths {
            ConstCounter::new(x.path.data_packets as u64).encode(m.encode_family(&x.base())?)?;
        }

        // Path quality: what Wireshark's TSN analysis shows, per path.
        type Get = fn(&PathView) -> u32;
        let counters: [(&str, &str, Get); 8] = [
            ("path_data_chunks", "DATA chunks sent on the path, retransmissions included (capped)", |p| {
                p.quality.data_chunks
            }),
            ("path_retransmitted_chunks", "DATA chunks retransmitting a TSN, per path carrying them (capped)", |p| {
                p.retransmissions
            }),
            (
                "path_lost_chunks",
                "DATA chunks last sent on the path that had to be sent again, wherever they went then (capped)",
                |p| p.quality.lost_chunks,
            ),
            ("path_sacks", "SACKs sent on the path by its sender, for the peer's DATA (capped)", |p| p.quality.sacks),
            ("path_gap_blocks", "Gap-ack blocks in the SACKs sent on the path (capped)", |p| p.quality.gap_blocks),
            ("path_duplicate_tsns", "Duplicate TSNs reported in the SACKs sent on the path (capped)", |p| {
                p.quality.dup_tsns
            }),
            ("path_heartbeats", "Liveness HEARTBEATs sent on the path (capped)", |p| p.quality.heartbeats),
            ("path_heartbeats_unanswered", "Liveness HEARTBEATs on the path left unanswered (capped)", |p| {
                p.quality.heartbeats_unanswered
            }),
        ];
        for (name, help, get) in counters {
            let mut m = enc.encode_descriptor(name, help, None, MetricType::Counter)?;
            for x in &paths {
                ConstCounter::new(get(x.path) as u64).encode(m.encode_family(&x.base())?)?;
            }
        }
        let mut m = enc.encode_descriptor(
            "path_heartbeat_rtt",
            "Liveness heartbeat RTTs per path (capped)",
            Some(&unit),
            MetricType::Histogram,
        )?;
        for x in &paths {
            RttBuckets(&x.path.quality.rtt).encode(m.encode_family(&x.base())?)?;
        }

        let bytes = Unit::Bytes;
        let gauges: [(&str, &str, Get); 2] = [
            ("path_a_rwnd", "Receiver window last advertised in the SACKs sent on the path (capped)", |p| {
                p.quality.a_rwnd
            }),
            ("path_a_rwnd_min", "Smallest receiver window advertised in the SACKs sent on the path (capped)", |p| {
                p.quality.a_rwnd_min
            }),
        ];
        for (name, help, get) in gauges {
            let mut m = enc.encode_descriptor(name, help, Some(&bytes), MetricType::Gauge)?;
            for x in paths.iter().filter(|x| x.path.quality.sacks > 0) {
                ConstGauge::new(get(x.path) as i64).encode(m.encode_family(&x.base())?)?;
            }
        }
        Ok(())
    }
}

/// A path's RTT histogram as a Prometheus histogram (seconds).
struct RttBuckets<'a>(&'a RttHistogram);

impl EncodeMetric for RttBuckets<'_> {
    fn encode(&self, mut encoder: prometheus_client::encoding::MetricEncoder) -> Result<(), std::fmt::Error> {
        let h = self.0;
        let bounds = BOUNDS_US.iter().map(|&b| b as f64 / 1e6).chain([f64::MAX]); // f64::MAX: written as "+Inf"
        let buckets: Vec<(f64, u64)> = bounds.zip(h.buckets.iter().map(|&n| n as u64)).collect();
        encoder.encode_histogram::<NoLabelSet>(h.sum_us as f64 / 1e6, h.count(), &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use crate::craft::{self, FrameBuilder, InitSpec};
    use crate::decode::{DecodeStats, LinkType, parse_frame};
    use crate::sinks::metrics::Metrics;
    use crate::tracker::{Config, Tracker};

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("address")
    }

    /// A multihomed association (2 + 2 addresses) with one answered
    /// heartbeat, through the tracker.
    fn tracker() -> Tracker {
        let mut t = Tracker::new(Config::default());
        let mut ev = Vec::new();
        let mut st = DecodeStats::default();
        let (a, a2, b, b2) = (ip("10.0.0.1"), ip("10.0.1.1"), ip("10.0.0.2"), ip("10.0.1.2"));
        let mut send = |ms: u64, s: IpAddr, d: IpAddr, sp: u16, dp: u16, tag: u32, c: Vec<u8>| {
            let f = FrameBuilder::ip(s, d).sctp(sp, dp, tag).chunk(c).build();
            let p = parse_frame(LinkType::Ethernet, &f, 1_700_000_000_000_000_000 + ms * 1_000_000, 9899, &mut st)
                .expect("parses")
                .expect("SCTP");
            t.process(&p.meta, &p.chunks, &mut ev);
        };
        send(0, a, b, 5000, 6000, 0, craft::init(&InitSpec::new(0x11, 1).addrs(&[a2])));
        send(1, b, a, 6000, 5000, 0x11, craft::init_ack(&InitSpec::new(0x22, 1).addrs(&[b2])));
        send(2, a, b, 5000, 6000, 0x22, craft::cookie_echo(&[0; 8]));
        send(3, b, a, 6000, 5000, 0x11, craft::cookie_ack());
        send(10, a2, b2, 5000, 6000, 0x22, craft::heartbeat(b"x"));
        send(14, b2, a2, 6000, 5000, 0x11, craft::heartbeat_ack(b"x"));
        send(20, a, b, 5000, 6000, 0x22, craft::data(1, 0, 0, 4242, b"abc"));
        send(21, a, b, 5000, 6000, 0x22, craft::data(2, 0, 1, 18, b"abc"));
        t
    }

    #[test]
    fn ipv6_addresses_and_identity_survive_an_agent_restart() {
        // The same association seen by two trackers (an agent restarted:
        // the second picks it up mid-flight, its per-run number differs).
        let (a, b) = (ip("fd00:1::1"), ip("fd00:2::2"));
        let frame = |s: IpAddr, d: IpAddr, sp: u16, dp: u16, tag: u32, c: Vec<u8>| {
            FrameBuilder::ip(s, d).sctp(sp, dp, tag).chunk(c).build()
        };
        let series = |skip: u32| {
            let mut t = Tracker::new(Config::default());
            let mut ev = Vec::new();
            let mut st = DecodeStats::default();
            for _ in 0..skip {
                // Another association first, so the numbers differ.
                let f = frame(ip("fd00::9"), b, 9, 9, 0, craft::init(&InitSpec::new(0x99, 1)));
                let p = parse_frame(LinkType::Ethernet, &f, 1, 9899, &mut st).expect("parses").expect("SCTP");
                t.process(&p.meta, &p.chunks, &mut ev);
            }
            for (ms, f) in [
                (1, frame(a, b, 36412, 36412, 0xbeef, craft::data(5, 0, 0, 18, b"x"))),
                (2, frame(b, a, 36412, 36412, 0xcafe, craft::sack(5, 1000, &[], &[]))),
            ] {
                let p =
                    parse_frame(LinkType::Ethernet, &f, ms * 1_000_000, 9899, &mut st).expect("parses").expect("SCTP");
                t.process(&p.meta, &p.chunks, &mut ev);
            }
            let m = Metrics::new();
            m.set_associations(&t, 10);
            m.encode(true)
                .lines()
                .filter(|l| l.contains("fd00:1::1") && !l.contains("fd00::9"))
                .map(str::to_string)
                .collect::<Vec<_>>()
        };
        let (first, second) = (series(0), series(3));
        assert!(!first.is_empty());
        assert_eq!(first, second, "the same series after a restart");
        let info = first.iter().find(|l| l.starts_with("sctp_monitor_association_info")).expect("info");
        assert!(
            info.contains(r#"initiator_addrs="fd00:1::1""#) && info.contains(r#"initiator_port="36412""#),
            "{info}"
        );
        assert!(info.contains(r#"ppids="S1AP""#), "{info}");
    }

    #[test]
    fn per_association_and_per_path_series_are_written_from_the_views() {
        let t = tracker();
        let m = Metrics::new();
        m.set_associations(&t, 10);
        let om = m.encode(true);
        let has = |line: &str| assert!(om.lines().any(|l| l == line), "missing {line:?} in\n{om}");
        let id = r#"initiator_port="5000",initiator_vtag="17",responder_port="6000",responder_vtag="34""#;
        has(&format!(
            r#"sctp_monitor_association_info{{{id},state="established",initiator_addrs="10.0.0.1,10.0.1.1",responder_addrs="10.0.0.2,10.0.1.2",ppids="S1AP,4242"}} 1"#
        ));
        has(&format!(r#"sctp_monitor_association_failovers_total{{{id}}} 0"#));
        has(&format!(
            r#"sctp_monitor_path_state{{{id},sender="initiator",src="10.0.1.1",dst="10.0.1.2",state="active"}} 1"#
        ));
        has(&format!(
            r#"sctp_monitor_path_rtt_seconds{{{id},sender="initiator",src="10.0.1.1",dst="10.0.1.2"}} 0.004"#
        ));
        has(&format!(
            r#"sctp_monitor_path_data_packets_total{{{id},sender="initiator",src="10.0.0.1",dst="10.0.0.2"}} 2"#
        ));
        // Chunks by type, per association.
        has(&format!(r#"sctp_monitor_association_chunks_total{{{id},type="INIT"}} 1"#));
        has(&format!(r#"sctp_monitor_association_chunks_total{{{id},type="HEARTBEAT_ACK"}} 1"#));
        has(&format!(r#"sctp_monitor_association_chunks_total{{{id},type="DATA"}} 2"#));
        assert!(!om.contains(r#"type="SACK""#), "no series for a type not seen:\n{om}");
        // The heartbeat answered after 4 ms: in the 4 ms bucket (bounds
        // inclusive), cumulative above it, none below.
        let rtt = format!(r#"{id},sender="initiator",src="10.0.1.1",dst="10.0.1.2""#);
        has("# TYPE sctp_monitor_path_heartbeat_rtt_seconds histogram");
        has(&format!(r#"sctp_monitor_path_heartbeat_rtt_seconds_bucket{{le="0.001",{rtt}}} 0"#));
        has(&format!(r#"sctp_monitor_path_heartbeat_rtt_seconds_bucket{{le="0.004",{rtt}}} 1"#));
        has(&format!(r#"sctp_monitor_path_heartbeat_rtt_seconds_bucket{{le="+Inf",{rtt}}} 1"#));
        has(&format!(r#"sctp_monitor_path_heartbeat_rtt_seconds_sum{{{rtt}}} 0.004"#));
        has(&format!(r#"sctp_monitor_path_heartbeat_rtt_seconds_count{{{rtt}}} 1"#));
        // A path without an answered heartbeat has an empty histogram.
        let data = format!(r#"{id},sender="initiator",src="10.0.0.1",dst="10.0.0.2""#);
        has(&format!(r#"sctp_monitor_path_heartbeat_rtt_seconds_count{{{data}}} 0"#));
        assert!(!om.contains("assoc=\""), "no per-run association number in labels:\n{om}");
        // Not capped: associations by protocol.
        has(r#"sctp_monitor_associations_by_protocol{ppid="S1AP"} 1"#);
        has(r#"sctp_monitor_associations_by_protocol{ppid="other"} 1"#);
        has(r#"sctp_monitor_associations_by_protocol{ppid="NGAP"} 0"#);
        has("# TYPE sctp_monitor_path_rtt_seconds gauge");
        has("# UNIT sctp_monitor_path_rtt_seconds seconds");
        has("# TYPE sctp_monitor_association_failovers counter");
        // Every path of the association has a state series.
        let states = om.lines().filter(|l| l.starts_with("sctp_monitor_path_state{")).count();
        assert_eq!(states, t.associations().next().expect("association").paths.len());
    }

    #[test]
    fn the_cap_leaves_associations_out() {
        let t = tracker();
        let m = Metrics::new();
        m.set_associations(&t, 0);
        let om = m.encode(true);
        assert!(!om.lines().any(|l| l.starts_with("sctp_monitor_association_info{")), "{om}");
        assert!(!om.lines().any(|l| l.starts_with("sctp_monitor_path_state{")), "{om}");
        assert!(om.lines().any(|l| l == "sctp_monitor_series_capped_associations 1"), "{om}");
    }
}
