//! A small blocking HTTP/1.1 client for the agent's JSON API (see
//! `crate::sinks::api` for the documents), and the documents' shapes as the
//! live view reads them. Only what `top` needs: `GET`, `Connection: close`,
//! plain or chunked bodies, `http://HOST:PORT[/PREFIX]` URLs.

use std::{
    io::{Read, Write},
    net::{TcpStream, ToSocketAddrs},
    time::Duration,
};

use anyhow::{Context as _, anyhow, bail};
use serde::Deserialize;

/// Where the agent's API is: `host:port` and a path prefix (usually empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiUrl {
    pub authority: String,
    pub prefix: String,
}

impl ApiUrl {
    /// `http://127.0.0.1:9108`, `127.0.0.1:9108`, `http://[::1]:9108/x`.
    pub fn parse(url: &str) -> anyhow::Result<ApiUrl> {
        let rest = if let Some(r) = url.strip_prefix("http://") {
            r
        } else if url.starts_with("https://") {
            bail!("{url}: https is not supported (the agent serves plain HTTP)");
        } else {
            url
        };
        let (auth, path) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
            None => (rest, ""),
        };
        if auth.is_empty() {
            bail!("{url}: no host");
        }
        let has_port = auth.rsplit_once(':').is_some_and(|(h, p)| {
            !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) && (!h.contains(':') || h.ends_with(']'))
        });
        let authority = if has_port { auth.to_string() } else { format!("{auth}:80") };
        Ok(ApiUrl { authority, prefix: path.to_string() })
    }
}

/// `GET prefix+path`: the body of a 200 answer.
pub fn get(url: &ApiUrl, path: &str, timeout: Duration) -> anyhow::Result<String> {
    let addr = url
        .authority
        .to_socket_addrs()
        .with_context(|| format!("resolving {}", url.authority))?
        .next()
        .ok_or_else(|| anyhow!("{}: no address", url.authority))?;
    let mut s = TcpStream::connect_timeout(&addr, timeout).with_context(|| format!("connecting to {addr}"))?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    write!(
        s,
        "GET {}{} HTTP/1.1\r\nHost: {}\r\nAccept: application/json\r\nConnection: close\r\n\r\n",
        url.prefix, path, url.authority
    )?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).with_context(|| format!("reading the answer from {addr}"))?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").ok_or_else(|| anyhow!("{addr}: not an HTTP answer"))?;
    let status: u16 =
        head.split(' ').nth(1).and_then(|s| s.parse().ok()).ok_or_else(|| anyhow!("{addr}: not an HTTP answer"))?;
    let body =
        if head.to_ascii_lowercase().contains("transfer-encoding: chunked") { dechunk(body) } else { body.to_string() };
    if status != 200 {
        bail!("GET {path}: HTTP {status}: {}", body.trim());
    }
    Ok(body)
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((len, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(len.split(';').next().unwrap_or("").trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].strip_prefix("\r\n").unwrap_or(&rest[n..]);
    }
    out
}

#[derive(Debug, Clone, Deserialize, Default)]
pub struct AssociationsDoc {
    #[serde(default)]
    pub generated: String,
    #[serde(default)]
    pub count: usize,
    #[serde(default)]
    pub truncated: bool,
    #[serde(default)]
    pub associations: Vec<Assoc>,
}

#[derive(Debug, Clone, Deserialize, Default)]
pub struct Endpoint {
    pub port: u16,
    #[serde(default)]
    pub vtag: Option<u32>,
    #[serde(default)]
    pub addrs: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct PathRef {
    pub src: String,
    pub dst: String,
}

#[derive(Debug, Clone, Deserialize, Default)]
pub struct PerEndpoint<T> {
    pub initiator: T,
    pub responder: T,
}

#[derive(Debug, Clone, Deserialize, Default)]
pub struct Path {
    pub sender: String,
    pub src: String,
    pub dst: String,
    pub state: String,
    #[serde(default)]
    pub primary: bool,
    #[serde(default)]
    pub rtt_us: Option<u32>,
    #[serde(default)]
    pub unanswered_heartbeats: u32,
    #[serde(default)]
    pub data_packets: u64,
    #[serde(default)]
    pub data_bytes: u64,
    #[serde(default)]
    pub retransmissions: u64,
    #[serde(default)]
    pub last_data: Option<String>,
    #[serde(default)]
    pub data_chunks: u64,
    #[serde(default)]
    pub lost_chunks: u64,
    #[serde(default)]
    pub gap_blocks: u64,
    #[serde(default)]
    pub duplicate_tsns: u64,
    #[serde(default)]
    pub a_rwnd: Option<u32>,
    #[serde(default)]
    pub a_rwnd_min: Option<u32>,
    #[serde(default)]
    pub heartbeats: u64,
    #[serde(default)]
    pub heartbeats_unanswered: u64,
    #[serde(default)]
    pub rtt_histogram: RttHistogram,
    #[serde(default)]
    pub degraded: bool,
}

/// A path's heartbeat RTTs as the agent gives them: `counts[i]` at most
/// `bounds_us[i]`, the one past the bounds above them all.
#[derive(Debug, Clone, Deserialize, Default)]
pub struct RttHistogram {
    #[serde(default)]
    pub bounds_us: Vec<u32>,
    #[serde(default)]
    pub counts: Vec<u64>,
    #[serde(default)]
    pub sum_us: u64,
}

impl RttHistogram {
    /// The upper bound (µs) of the bucket holding the `q` quantile; `None`
    /// without samples or when it is the bucket above every bound.
    pub fn quantile_bound_us(&self, q: f64) -> Option<u32> {
        crate::tracker::rtt::quantile_bucket(&self.counts, q).and_then(|i| self.bounds_us.get(i).copied())
    }
}

#[derive(Debug, Clone, Deserialize, Default)]
pub struct Assoc {
    pub id: u64,
    pub state: String,
    #[serde(default)]
    pub handshake_seen: bool,
    pub initiator: Endpoint,
    pub responder: Endpoint,
    #[serde(default)]
    pub primary: PerEndpoint<Option<PathRef>>,
    #[serde(default)]
    pub failovers: PerEndpoint<u32>,
    #[serde(default)]
    pub highest_tsn: PerEndpoint<Option<u32>>,
    #[serde(default)]
    pub cum_ack: PerEndpoint<Option<u32>>,
    #[serde(default)]
    pub restart_of: Option<u64>,
    /// Upper-layer protocols (PPIDs) seen in the association's DATA.
    #[serde(default)]
    pub ppids: Vec<Ppid>,
    #[serde(default)]
    pub last_seen: String,
    /// Chunks by type name.
    #[serde(default)]
    pub chunks: std::collections::BTreeMap<String, u64>,
    #[serde(default)]
    pub paths: Vec<Path>,
}

/// A PPID as the API gives it: number, and name when known.
#[derive(Debug, Clone, Deserialize, Default, PartialEq, Eq)]
pub struct Ppid {
    pub id: u32,
    #[serde(default)]
    pub name: Option<String>,
}

impl Ppid {
    /// The name, or the number when it has none.
    pub fn label(&self) -> String {
        self.name.clone().unwrap_or_else(|| self.id.to_string())
    }
}

impl Assoc {
    /// The protocols, comma-separated (`-` for none yet).
    pub fn protocols(&self) -> String {
        if self.ppids.is_empty() {
            return "-".into();
        }
        self.ppids.iter().map(Ppid::label).collect::<Vec<_>>().join(",")
    }
}

#[derive(Debug, Clone, Deserialize, Default)]
pub struct EventsPage {
    #[serde(default)]
    pub first: u64,
    #[serde(default)]
    pub next: u64,
    #[serde(default)]
    pub missed: u64,
    #[serde(default)]
    pub events: Vec<serde_json::Value>,
}

#[derive(Debug, Clone, Deserialize, Default)]
pub struct Iface {
    pub name: String,
    #[serde(default)]
    pub xdp_mode: String,
}

#[derive(Debug, Clone, Deserialize, Default)]
pub struct Status {
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub started: String,
    #[serde(default)]
    pub interfaces: Vec<Iface>,
    #[serde(default)]
    pub associations: usize,
    #[serde(default)]
    pub events: u64,
    #[serde(default)]
    pub records: u64,
    #[serde(default)]
    pub records_lost: u64,
}

/// Sum of the `sctp_monitor_malformed_packets_total` series of a scrape.
pub fn malformed_total(metrics: &str) -> u64 {
    metrics
        .lines()
        .filter(|l| l.starts_with("sctp_monitor_malformed_packets_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// One poll of the agent.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub status: Status,
    pub assocs: AssociationsDoc,
    pub events: EventsPage,
    pub malformed: Option<u64>,
}

/// Where the view reads the agent's API documents: over HTTP ([`ApiUrl`]),
/// or from an agent in the same process (`super::inproc`).
pub trait Api: Send {
    /// The body of a 200 answer to `GET path` (`path` may carry `?query`).
    fn get(&self, path: &str) -> anyhow::Result<String>;
}

impl Api for ApiUrl {
    fn get(&self, path: &str) -> anyhow::Result<String> {
        get(self, path, Duration::from_secs(2))
    }
}

/// Polls `/api/status`, `/api/associations` and `/api/events?since=`.
pub fn poll(api: &dyn Api, since: u64, with_metrics: bool) -> anyhow::Result<Snapshot> {
    let status: Status = serde_json::from_str(&api.get("/api/status")?).context("/api/status")?;
    let assocs: AssociationsDoc = serde_json::from_str(&api.get("/api/associations")?).context("/api/associations")?;
    let events: EventsPage =
        serde_json::from_str(&api.get(&format!("/api/events?since={since}&limit=1000"))?).context("/api/events")?;
    let malformed = if with_metrics { api.get("/metrics").ok().map(|m| malformed_total(&m)) } else { None };
    Ok(Snapshot { status, assocs, events, malformed })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = ApiUrl::parse("http://127.0.0.1:9108").unwrap();
        assert_eq!((u.authority.as_str(), u.prefix.as_str()), ("127.0.0.1:9108", ""));
        let u = ApiUrl::parse("[::1]:9108/mon/").unwrap();
        assert_eq!((u.authority.as_str(), u.prefix.as_str()), ("[::1]:9108", "/mon"));
        assert_eq!(ApiUrl::parse("http://host").unwrap().authority, "host:80");
        assert!(ApiUrl::parse("https://x:1").is_err());
    }

    #[test]
    fn chunked() {
        assert_eq!(dechunk("3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"), "abcde");
    }

    /// What the agent's API writes (its own serializer) is what `top`
    /// reads: the RTT histogram's percentiles and the chunks by type.
    #[test]
    fn top_reads_the_apis_rtt_histograms_and_chunks() {
        use crate::craft::{self, FrameBuilder, InitSpec};
        use crate::decode::{DecodeStats, LinkType, parse_frame};
        use crate::tracker::{Config, Tracker};
        let mut t = Tracker::new(Config::default());
        let (mut ev, mut st) = (Vec::new(), DecodeStats::default());
        let (a, b): (std::net::IpAddr, std::net::IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let mut send = |ns: u64, s, d, sp, dp, tag, c| {
            let f = FrameBuilder::ip(s, d).sctp(sp, dp, tag).chunk(c).build();
            let p = parse_frame(LinkType::Ethernet, &f, ns, 9899, &mut st).unwrap().unwrap();
            t.process(&p.meta, &p.chunks, &mut ev);
        };
        const MS: u64 = 1_000_000;
        send(0, a, b, 1, 2, 0, craft::init(&InitSpec::new(0x11, 1)));
        send(MS, b, a, 2, 1, 0x11, craft::init_ack(&InitSpec::new(0x22, 1)));
        // 99 heartbeats answered in 0.5 ms, one in 20 ms.
        for i in 0..100u64 {
            let (info, at) = (i.to_be_bytes(), (1000 * i + 10) * MS);
            send(at, a, b, 1, 2, 0x22, craft::heartbeat(&info));
            let rtt_us = if i == 50 { 20_000 } else { 500 };
            send(at + rtt_us * 1_000, b, a, 2, 1, 0x11, craft::heartbeat_ack(&info));
        }
        let view = t.associations().next().expect("association");
        let json = serde_json::to_string(&crate::sinks::api::AssociationJson::from(&view)).expect("json");
        let assoc: Assoc = serde_json::from_str(&json).expect("top reads it");
        let p = assoc.paths.iter().find(|p| p.src == "10.0.0.1").expect("a's path");
        assert_eq!(p.rtt_histogram.counts.iter().sum::<u64>(), 100);
        assert_eq!(p.rtt_histogram.quantile_bound_us(0.5), Some(1_000));
        assert_eq!(p.rtt_histogram.quantile_bound_us(0.99), Some(1_000));
        assert_eq!(p.rtt_histogram.quantile_bound_us(1.0), Some(64_000));
        let chunks: Vec<(&str, u64)> = assoc.chunks.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        assert_eq!(chunks, [("HEARTBEAT", 100), ("HEARTBEAT_ACK", 100), ("INIT", 1), ("INIT_ACK", 1)]);
    }

    #[test]
    fn malformed_sum() {
        let m = "# TYPE x counter\nsctp_monitor_malformed_packets_total{direction=\"in\",reason=\"a\"} 2\n\
                 sctp_monitor_malformed_packets_total{direction=\"out\",reason=\"b\"} 3\nother 9\n";
        assert_eq!(malformed_total(m), 5);
    }
}
