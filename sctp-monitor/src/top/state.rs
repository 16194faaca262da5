//! The live view's state: the latest poll, DATA rates and their history per
//! path, the event log, the selection, sort order and filter. No terminal
//! code here, so it is tested without one.

use std::{
    collections::{HashMap, VecDeque},
    time::Instant,
};

use super::client::{Assoc, Path, Snapshot};

/// Samples kept per path for the sparkline.
pub const HISTORY: usize = 40;
/// Event lines kept.
pub const LOG_LINES: usize = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    Id,
    State,
    Rate,
    Rtt,
    Failovers,
    Age,
}

impl SortKey {
    pub fn next(self) -> SortKey {
        match self {
            SortKey::Id => SortKey::Rate,
            SortKey::Rate => SortKey::Rtt,
            SortKey::Rtt => SortKey::Failovers,
            SortKey::Failovers => SortKey::Age,
            SortKey::Age => SortKey::State,
            SortKey::State => SortKey::Id,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            SortKey::Id => "id",
            SortKey::State => "state",
            SortKey::Rate => "rate",
            SortKey::Rtt => "rtt",
            SortKey::Failovers => "failovers",
            SortKey::Age => "age",
        }
    }
}

/// A path's identity across polls.
pub type PathKey = (u64, String, String, String);

pub fn path_key(assoc: u64, p: &Path) -> PathKey {
    (assoc, p.sender.clone(), p.src.clone(), p.dst.clone())
}

#[derive(Debug, Default, Clone)]
pub struct PathRate {
    last_packets: u64,
    last_at: Option<Instant>,
    /// DATA packets per second, newest last.
    pub history: VecDeque<f64>,
}

impl PathRate {
    pub fn current(&self) -> f64 {
        self.history.back().copied().unwrap_or(0.0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    Normal,
    /// Typing a filter.
    Filter,
    /// Full-screen detail of the selected association.
    Detail,
}

pub struct App {
    pub url: String,
    pub snapshot: Option<Snapshot>,
    pub connected: bool,
    pub error: Option<String>,
    pub last_ok: Option<Instant>,
    pub rates: HashMap<PathKey, PathRate>,
    /// Association id -> when it came up (event `ts`), or was first seen here.
    pub started: HashMap<u64, (String, bool)>,
    pub first_seen: HashMap<u64, Instant>,
    pub log: VecDeque<String>,
    /// Lines scrolled back from the newest (0: follow).
    pub log_scroll: usize,
    pub since: u64,
    pub malformed: Option<u64>,
    pub sort: SortKey,
    pub filter: String,
    pub mode: Mode,
    /// Selected association id (survives re-sorting).
    pub selected: Option<u64>,
    pub quit: bool,
}

impl App {
    pub fn new(url: String) -> App {
        App {
            url,
            snapshot: None,
            connected: false,
            error: None,
            last_ok: None,
            rates: HashMap::new(),
            started: HashMap::new(),
            first_seen: HashMap::new(),
            log: VecDeque::new(),
            log_scroll: 0,
            since: 0,
            malformed: None,
            sort: SortKey::Id,
            filter: String::new(),
            mode: Mode::Normal,
            selected: None,
            quit: false,
        }
    }

    /// A poll answered.
    pub fn apply(&mut self, snap: Snapshot, now: Instant) {
        self.connected = true;
        self.error = None;
        self.last_ok = Some(now);
        if snap.events.next < self.since {
            self.push_log("-- the agent restarted: event log reset --".into());
            self.since = 0;
        }
        if snap.events.missed > 0 {
            self.push_log(format!(
                "-- {} events dropped from the agent's log before they were read --",
                snap.events.missed
            ));
        }
        for e in &snap.events.events {
            if e["event"] == "association_up"
                && let (Some(a), Some(ts)) = (e["assoc"].as_u64(), e["ts"].as_str())
            {
                self.started.insert(a, (ts.to_string(), true));
            }
            self.push_log(event_line(e));
        }
        if !snap.events.events.is_empty() || snap.events.next > self.since {
            self.since = snap.events.next;
        }
        for a in &snap.assocs.associations {
            self.first_seen.entry(a.id).or_insert(now);
            for p in &a.paths {
                let r = self.rates.entry(path_key(a.id, p)).or_default();
                if let Some(at) = r.last_at {
                    let dt = now.duration_since(at).as_secs_f64().max(0.001);
                    let rate = p.data_packets.saturating_sub(r.last_packets) as f64 / dt;
                    r.history.push_back(rate);
                    while r.history.len() > HISTORY {
                        r.history.pop_front();
                    }
                }
                r.last_packets = p.data_packets;
                r.last_at = Some(now);
            }
        }
        let live: std::collections::HashSet<u64> = snap.assocs.associations.iter().map(|a| a.id).collect();
        self.rates.retain(|k, _| live.contains(&k.0));
        self.first_seen.retain(|k, _| live.contains(k));
        if snap.malformed.is_some() {
            self.malformed = snap.malformed;
        }
        self.snapshot = Some(snap);
        self.fix_selection();
    }

    /// A poll failed.
    pub fn failed(&mut self, err: String) {
        self.connected = false;
        self.error = Some(err);
    }

    /// A line of the in-process agent's own log (see `super::logpipe`).
    pub fn agent_log(&mut self, line: String) {
        self.push_log(line);
    }

    fn push_log(&mut self, line: String) {
        self.log.push_back(line);
        while self.log.len() > LOG_LINES {
            self.log.pop_front();
        }
        if self.log_scroll > 0 {
            self.log_scroll = (self.log_scroll + 1).min(self.log.len().saturating_sub(1));
        }
    }

    pub fn path_rate(&self, assoc: u64, p: &Path) -> Option<&PathRate> {
        self.rates.get(&path_key(assoc, p))
    }

    /// DATA packets per second of the whole association.
    pub fn assoc_rate(&self, a: &Assoc) -> f64 {
        a.paths.iter().filter_map(|p| self.path_rate(a.id, p)).map(PathRate::current).sum()
    }

    /// Seconds since the association came up (or since this view first saw it).
    pub fn age_secs(&self, a: &Assoc, now_unix: f64, now: Instant) -> Option<f64> {
        if let Some((ts, _)) = self.started.get(&a.id)
            && let Some(t) = parse_rfc3339(ts)
        {
            return Some((now_unix - t).max(0.0));
        }
        self.first_seen.get(&a.id).map(|t| now.duration_since(*t).as_secs_f64())
    }

    /// The associations shown, filtered and sorted.
    pub fn visible(&self) -> Vec<&Assoc> {
        let Some(s) = &self.snapshot else {
            return Vec::new();
        };
        let f = self.filter.trim().to_ascii_lowercase();
        let mut v: Vec<&Assoc> = s.assocs.associations.iter().filter(|a| f.is_empty() || matches(a, &f)).collect();
        let now = Instant::now();
        let unix = unix_now();
        match self.sort {
            SortKey::Id => v.sort_by_key(|a| a.id),
            SortKey::State => v.sort_by(|a, b| a.state.cmp(&b.state).then(a.id.cmp(&b.id))),
            SortKey::Rate => v.sort_by(|a, b| self.assoc_rate(b).total_cmp(&self.assoc_rate(a)).then(a.id.cmp(&b.id))),
            SortKey::Rtt => v.sort_by_key(|a| (std::cmp::Reverse(assoc_rtt(a).unwrap_or(0)), a.id)),
            SortKey::Failovers => {
                v.sort_by_key(|a| (std::cmp::Reverse(a.failovers.initiator + a.failovers.responder), a.id))
            }
            SortKey::Age => v.sort_by(|a, b| {
                let (x, y) = (self.age_secs(a, unix, now).unwrap_or(0.0), self.age_secs(b, unix, now).unwrap_or(0.0));
                y.total_cmp(&x).then(a.id.cmp(&b.id))
            }),
        }
        v
    }

    pub fn selected_index(&self, vis: &[&Assoc]) -> Option<usize> {
        let id = self.selected?;
        vis.iter().position(|a| a.id == id)
    }

    pub fn selected_assoc(&self) -> Option<&Assoc> {
        let id = self.selected?;
        self.snapshot.as_ref()?.assocs.associations.iter().find(|a| a.id == id)
    }

    /// Keeps the selection on a visible association.
    pub fn fix_selection(&mut self) {
        let vis: Vec<u64> = self.visible().iter().map(|a| a.id).collect();
        if self.selected.is_none_or(|s| !vis.contains(&s)) {
            self.selected = vis.first().copied();
        }
    }

    pub fn move_selection(&mut self, delta: isize) {
        let vis: Vec<u64> = self.visible().iter().map(|a| a.id).collect();
        if vis.is_empty() {
            self.selected = None;
            return;
        }
        let i = self.selected.and_then(|s| vis.iter().position(|x| *x == s)).unwrap_or(0) as isize;
        let j = (i + delta).clamp(0, vis.len() as isize - 1) as usize;
        self.selected = Some(vis[j]);
    }

    /// Paths down over all associations, and the number of paths.
    pub fn paths_down(&self) -> (usize, usize) {
        let Some(s) = &self.snapshot else {
            return (0, 0);
        };
        let all = s.assocs.associations.iter().flat_map(|a| a.paths.iter());
        let (mut down, mut n) = (0, 0);
        for p in all {
            n += 1;
            if p.state == "down" {
                down += 1;
            }
        }
        (down, n)
    }
}

fn matches(a: &Assoc, f: &str) -> bool {
    a.state.contains(f)
        || a.id.to_string() == f
        || a.initiator.port.to_string() == f
        || a.responder.port.to_string() == f
        || a.initiator.addrs.iter().chain(a.responder.addrs.iter()).any(|x| x.to_ascii_lowercase().contains(f))
        || a.paths.iter().any(|p| p.state == f)
        || a.ppids.iter().any(|p| p.label().to_ascii_lowercase() == f || p.id.to_string() == f)
}

/// The RTT shown for an association: the initiator's primary path's, else the
/// largest answered one.
pub fn assoc_rtt(a: &Assoc) -> Option<u32> {
    a.paths
        .iter()
        .find(|p| p.primary && p.sender == "initiator" && p.rtt_us.is_some())
        .and_then(|p| p.rtt_us)
        .or_else(|| a.paths.iter().filter_map(|p| p.rtt_us).max())
}

pub fn unix_now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

/// `YYYY-MM-DDTHH:MM:SS[.frac]Z` to seconds since the Unix epoch.
pub fn parse_rfc3339(s: &str) -> Option<f64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[10] != b'T' {
        return None;
    }
    let n = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (n(0..4)?, n(5..7)?, n(8..10)?);
    let (hh, mm, ss) = (n(11..13)?, n(14..16)?, n(17..19)?);
    let frac = s[19..].trim_end_matches('Z');
    let frac: f64 = if let Some(f) = frac.strip_prefix('.') { format!("0.{f}").parse().ok()? } else { 0.0 };
    // days from civil (H. Hinnant)
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some((days * 86_400 + hh * 3600 + mm * 60 + ss) as f64 + frac)
}

/// `2026-11-26T11:00:00.123Z` -> `11:00:00`.
pub fn hms(ts: &str) -> &str {
    ts.get(11..19).unwrap_or(ts)
}

fn pathref(v: &serde_json::Value) -> String {
    match (v["src"].as_str(), v["dst"].as_str()) {
        (Some(s), Some(d)) => format!("{s}>{d}"),
        _ => "?".into(),
    }
}

fn role(v: &serde_json::Value) -> &'static str {
    match v.as_str() {
        Some("initiator") => "I",
        Some("responder") => "R",
        _ => "",
    }
}

/// An abort's or ERROR's causes, short: `: name "text", name`. The text
/// is the agent's, already cleaned; control characters are dropped again,
/// as the log pane is a terminal.
fn causes(e: &serde_json::Value) -> String {
    let v: Vec<String> = e["causes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            let name = c["name"].as_str().unwrap_or("?");
            match c["text"].as_str() {
                Some(t) => {
                    let t: String = t.chars().filter(|ch| !ch.is_control()).take(60).collect();
                    format!("{name} \"{t}\"")
                }
                None => name.to_string(),
            }
        })
        .collect();
    if v.is_empty() { String::new() } else { format!(": {}", v.join(", ")) }
}

/// One line of the event log.
pub fn event_line(e: &serde_json::Value) -> String {
    let ts = e["ts"].as_str().map(hms).unwrap_or("--:--:--");
    let kind = e["event"].as_str().unwrap_or("?");
    let id = e["assoc"].as_u64().map(|a| format!("#{a}")).unwrap_or_default();
    let detail = match kind {
        "failover" => {
            let mut s = format!("{} {} -> {}", role(&e["endpoint"]), pathref(&e["from"]), pathref(&e["to"]));
            if let Some(ev) = e.get("evidence") {
                s += &format!(" (hb {} rtx {})", ev["unanswered_heartbeats"], ev["retransmissions"]);
            }
            s
        }
        "path_down" | "path_up" => {
            let mut s = format!("{} {}", role(&e["endpoint"]), pathref(&e["path"]));
            if let Some(r) = e["rtt_us"].as_u64() {
                s += &format!(" rtt {}", fmt_rtt(r as u32));
            }
            s
        }
        "association_up" | "association_down" | "restart" => {
            let ep = |v: &serde_json::Value| {
                let addrs: Vec<String> = v["addrs"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect();
                let a = compact_addrs(&addrs);
                // `[...]` keeps an IPv6 address's colons apart from the port's
                if a.contains(':') { format!("[{a}]:{}", v["port"]) } else { format!("{a}:{}", v["port"]) }
            };
            let mut s = String::new();
            if e.get("initiator").is_some() {
                s = format!("{} - {}", ep(&e["initiator"]), ep(&e["responder"]));
            }
            if let Some(r) = e["reason"].as_str() {
                match e.get("endpoint") {
                    // An abort: who sent it and why.
                    Some(who) => s += &format!(" ({r} by {}{})", role(who), causes(e)),
                    None => s += &format!(" ({r})"),
                }
            }
            if let Some(p) = e["previous_assoc"].as_u64() {
                s += &format!(" replaces #{p}");
            }
            s
        }
        "primary_changed" => match e["addr"].as_str() {
            Some(a) => format!("{} requested {a}", role(&e["endpoint"])),
            None => match e["asconf"].as_str() {
                Some(c) => format!("{} {} (asconf {c})", role(&e["endpoint"]), pathref(&e["path"])),
                None => format!("{} {}", role(&e["endpoint"]), pathref(&e["path"])),
            },
        },
        "primary_requested" => {
            format!("{} asks for {}", role(&e["endpoint"]), e["addr"].as_str().unwrap_or("?"))
        }
        "address_added" | "address_removed" => {
            format!("{} {}", role(&e["endpoint"]), e["addr"].as_str().unwrap_or("?"))
        }
        "stalled" => format!("{} ms without ack progress", e["stalled_ms"]),
        "error_reported" => {
            let mut s = format!("{} {}{}", role(&e["endpoint"]), pathref(&e["path"]), causes(e));
            if let Some(n) = e["repeated"].as_u64() {
                s += &format!(" (+{n} held back)");
            }
            s
        }
        "path_degraded" | "path_degraded_end" => {
            let w = &e["window"];
            format!(
                "{} {}: lost {}/{} DATA chunks, {}/{} heartbeats unanswered in {} s",
                role(&e["endpoint"]),
                pathref(&e["path"]),
                w["lost_chunks"],
                w["data_chunks"],
                w["heartbeats_unanswered"],
                w["heartbeats"],
                w["seconds"]
            )
        }
        "window_zero" => format!("{} {} advertises a zero window", role(&e["endpoint"]), pathref(&e["path"])),
        "window_open" => format!(
            "{} {} window open again ({} bytes) after {} ms",
            role(&e["endpoint"]),
            pathref(&e["path"]),
            e["a_rwnd"],
            e["window_zero_ms"]
        ),
        "protocol_seen" => {
            let p = &e["ppid"];
            let proto = match p["name"].as_str() {
                Some(n) => format!("{n} ({})", p["id"]),
                None => format!("PPID {}", p["id"]),
            };
            format!("{} {} {proto}", role(&e["endpoint"]), pathref(&e["path"]))
        }
        _ => String::new(),
    };
    format!("{ts} {id} {kind} {detail}").trim_end().to_string()
}

/// An address set, compact: see [`compact_family`]; IPv4 and IPv6 addresses
/// compacted apart and joined with `,`.
pub fn compact_addrs(addrs: &[String]) -> String {
    addr_groups(addrs).join(",")
}

/// An address set, one compact string per address family (IPv4 first),
/// for a view that shows each on its own line.
pub fn addr_groups(addrs: &[String]) -> Vec<String> {
    let (v6, v4): (Vec<String>, Vec<String>) = addrs.iter().cloned().partition(|a| a.contains(':'));
    let mut out: Vec<String> = [v4, v6].iter().filter(|g| !g.is_empty()).map(|g| compact_family(g)).collect();
    if out.is_empty() {
        out.push("-".into());
    }
    out
}

/// Addresses of one family that differ in one part only share the rest:
/// `10.201.1.1`,`10.201.2.1` -> `10.201.{1,2}.1`.
fn compact_family(addrs: &[String]) -> String {
    match addrs.len() {
        0 => "-".into(),
        1 => addrs[0].clone(),
        _ => {
            let sep = if addrs[0].contains(':') { ':' } else { '.' };
            let parts: Vec<Vec<&str>> = addrs.iter().map(|a| a.split(sep).collect()).collect();
            let n = parts[0].len();
            if parts.iter().any(|p| p.len() != n) {
                return addrs.join(",");
            }
            let differing: Vec<usize> = (0..n).filter(|&i| parts.iter().any(|p| p[i] != parts[0][i])).collect();
            if differing.len() != 1 {
                return addrs.join(",");
            }
            let i = differing[0];
            let mut out: Vec<String> = parts[0].iter().map(|s| s.to_string()).collect();
            out[i] = format!("{{{}}}", parts.iter().map(|p| p[i]).collect::<Vec<_>>().join(","));
            out.join(&sep.to_string())
        }
    }
}

pub fn fmt_rtt(us: u32) -> String {
    if us < 10_000 { format!("{:.1}ms", us as f64 / 1000.0) } else { format!("{}ms", us / 1000) }
}

pub fn fmt_rate(r: f64) -> String {
    if r < 9.95 {
        format!("{r:.1}/s")
    } else if r < 10_000.0 {
        format!("{r:.0}/s")
    } else {
        format!("{:.0}k/s", r / 1000.0)
    }
}

pub fn fmt_age(secs: f64) -> String {
    let s = secs as u64;
    if s < 100 {
        format!("{s}s")
    } else if s < 6000 {
        format!("{}m{:02}", s / 60, s % 60)
    } else if s < 100 * 3600 {
        format!("{}h{:02}", s / 3600, (s % 3600) / 60)
    } else {
        format!("{}d", s / 86_400)
    }
}

/// A text sparkline of the last `width` samples.
pub fn sparkline(history: &VecDeque<f64>, width: usize) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let take = history.len().min(width);
    let s: Vec<f64> = history.iter().skip(history.len() - take).copied().collect();
    let max = s.iter().copied().fold(0.0, f64::max);
    let mut out: String = std::iter::repeat_n(' ', width - take).collect();
    for v in s {
        out.push(if max <= 0.0 || v <= 0.0 { ' ' } else { BARS[(((v / max) * 7.0).round() as usize).min(7)] });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact() {
        let v = |x: &[&str]| x.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(compact_addrs(&v(&["10.201.1.1", "10.201.2.1"])), "10.201.{1,2}.1");
        assert_eq!(compact_addrs(&v(&["fd00:201:1::1", "fd00:201:2::1"])), "fd00:201:{1,2}::1");
        assert_eq!(compact_addrs(&v(&["10.0.0.1", "fd00::1"])), "10.0.0.1,fd00::1");
        assert_eq!(compact_addrs(&v(&["10.0.0.1", "10.0.1.2"])), "10.0.0.1,10.0.1.2");
        assert_eq!(compact_addrs(&v(&["10.0.0.1"])), "10.0.0.1");
        assert_eq!(compact_addrs(&v(&[])), "-");
        assert_eq!(addr_groups(&v(&["fd00:201:2::1", "10.201.1.1"])), v(&["10.201.1.1", "fd00:201:2::1"]));
        assert_eq!(
            addr_groups(&v(&["10.201.1.1", "fd00:201:1::1", "10.201.2.1", "fd00:201:2::1"])),
            v(&["10.201.{1,2}.1", "fd00:201:{1,2}::1"])
        );
    }

    #[test]
    fn rfc3339() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:01.500000Z"), Some(1.5));
        assert_eq!(parse_rfc3339("2000-03-01T00:00:00Z"), Some(951_868_800.0));
        assert_eq!(hms("2026-11-26T11:00:00.123456Z"), "11:00:00");
    }

    #[test]
    fn failover_line() {
        let e: serde_json::Value = serde_json::from_str(
            r#"{"seq":4,"ts":"2026-11-26T11:00:00.1Z","event":"failover","assoc":7,"endpoint":"initiator",
            "from":{"src":"10.0.0.1","dst":"10.0.0.2"},"to":{"src":"10.0.1.1","dst":"10.0.1.2"},
            "evidence":{"unanswered_heartbeats":2,"retransmissions":3}}"#,
        )
        .unwrap();
        assert_eq!(event_line(&e), "11:00:00 #7 failover I 10.0.0.1>10.0.0.2 -> 10.0.1.1>10.0.1.2 (hb 2 rtx 3)");
        let p: serde_json::Value = serde_json::from_str(
            r#"{"ts":"2026-11-26T11:00:01.1Z","event":"protocol_seen","assoc":7,"endpoint":"responder",
                "path":{"src":"10.0.0.2","dst":"10.0.0.1"},"ppid":{"id":18,"name":"S1AP"}}"#,
        )
        .expect("json");
        assert_eq!(event_line(&p), "11:00:01 #7 protocol_seen R 10.0.0.2>10.0.0.1 S1AP (18)");
    }

    #[test]
    fn abort_and_error_lines_say_who_and_why() {
        let mut d = crate::event::Event::new(1_764_154_800_000_000_000, crate::event::EventKind::AssociationDown, 7);
        d.reason = Some(crate::event::DownReason::Abort);
        d.endpoint = Some(crate::event::Role::Responder);
        let ep = |a: &str| crate::event::Endpoint { port: 36412, vtag: 1, addrs: vec![a.parse().expect("addr")] };
        (d.initiator, d.responder) = (Some(ep("10.0.0.1")), Some(ep("10.0.0.2")));
        let bye = crate::decode::ErrorCause { code: 12, info: b"bye\nnow".to_vec() };
        d.causes = Some(vec![crate::error_cause::CauseEntry::of(&bye)]);
        let d: serde_json::Value = serde_json::from_str(&d.to_json_line()).expect("json");
        assert_eq!(
            event_line(&d),
            "11:00:00 #7 association_down 10.0.0.1:36412 - 10.0.0.2:36412 (abort by R: user_initiated_abort \"bye\u{FFFD}now\")"
        );
        let e: serde_json::Value = serde_json::from_str(
            r#"{"ts":"2026-11-26T11:00:02.1Z","event":"error_reported","assoc":7,"endpoint":"initiator",
                "path":{"src":"10.0.0.1","dst":"10.0.0.2"},"causes":[{"code":6,"name":"unrecognized_chunk_type"}],
                "repeated":41}"#,
        )
        .expect("json");
        assert_eq!(
            event_line(&e),
            "11:00:02 #7 error_reported I 10.0.0.1>10.0.0.2: unrecognized_chunk_type (+41 held back)"
        );
    }

    #[test]
    fn spark() {
        let h: VecDeque<f64> = [0.0, 5.0, 10.0].into_iter().collect();
        assert_eq!(sparkline(&h, 5), "   ▅█");
    }
}
