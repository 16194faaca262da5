//! The per-association and per-path series (capped: `--metrics-series-cap`
//! associations, lowest ids first), written straight from the views of the
//! last `Metrics::set_associations` at each scrape. A `Family` per metric
//! would hash and store every label set on every scrape and drop them all
//! on the next: a third of a scrape's cost at the default cap.

use std::sync::{Arc, Mutex};

use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeMetric},
    metrics::{MetricType, counter::ConstCounter, gauge::ConstGauge},
    registry::Unit,
};

use super::api::{assoc_state_name, path_state_name};
use crate::tracker::{AssocView, EndpointView, PathView};

/// The views the series are written from; shared with `Metrics`.
#[derive(Debug, Default, Clone)]
pub struct AssocSeries {
    views: Arc<Mutex<Vec<AssocView>>>,
}

fn endpoint(e: &EndpointView) -> String {
    let addrs: Vec<String> = e.addrs.iter().map(|a| a.to_string()).collect();
    format!("{}:{}", addrs.join(","), e.port)
}

/// The labels shared by the per-path series of one path.
struct PathLabels<'a> {
    path: &'a PathView,
    assoc: &'a str,
    sender: &'static str,
    src: String,
    dst: String,
}

impl PathLabels<'_> {
    fn base(&self) -> [(&'static str, &str); 4] {
        [("assoc", self.assoc), ("sender", self.sender), ("src", &self.src), ("dst", &self.dst)]
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
        let ids: Vec<String> = views.iter().map(|v| v.id.to_string()).collect();
        let sender = |i: usize| if i == 0 { "initiator" } else { "responder" };

        let mut m = enc.encode_descriptor(
            "association_info",
            "One series per association (capped), value 1",
            None,
            MetricType::Gauge,
        )?;
        for (v, id) in views.iter().zip(&ids) {
            let (i, r) = (endpoint(&v.initiator), endpoint(&v.responder));
            let l =
                [("assoc", id.as_str()), ("state", assoc_state_name(v.state)), ("initiator", &i), ("responder", &r)];
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
            ConstCounter::new(n).encode(m.encode_family(&[("assoc", id.as_str())])?)?;
        }

        // Path labels, once for the three per-path metrics.
        let paths: Vec<PathLabels> = views
            .iter()
            .zip(&ids)
            .flat_map(|(v, id)| {
                v.paths.iter().map(move |p| PathLabels {
                    path: p,
                    assoc: id,
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
            let [a, s, src, dst] = x.base();
            let l = [a, s, src, dst, ("state", path_state_name(x.path.state))];
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
        Ok(())
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
        t
    }

    #[test]
    fn per_association_and_per_path_series_are_written_from_the_views() {
        let t = tracker();
        let m = Metrics::new();
        m.set_associations(&t, 10);
        let om = m.encode(true);
        let has = |line: &str| assert!(om.lines().any(|l| l == line), "missing {line:?} in\n{om}");
        has(
            r#"sctp_monitor_association_info{assoc="1",state="established",initiator="10.0.0.1,10.0.1.1:5000",responder="10.0.0.2,10.0.1.2:6000"} 1"#,
        );
        has(r#"sctp_monitor_association_failovers_total{assoc="1"} 0"#);
        has(r#"sctp_monitor_path_state{assoc="1",sender="initiator",src="10.0.1.1",dst="10.0.1.2",state="active"} 1"#);
        has(r#"sctp_monitor_path_rtt_seconds{assoc="1",sender="initiator",src="10.0.1.1",dst="10.0.1.2"} 0.004"#);
        has(r#"sctp_monitor_path_data_packets_total{assoc="1",sender="initiator",src="10.0.1.1",dst="10.0.1.2"} 0"#);
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
