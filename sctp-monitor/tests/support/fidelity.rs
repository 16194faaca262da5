//! The fidelity comparer: judges the monitor against the SCTP stack's own
//! truth, from one artifact directory of a run (usrsctp in the lab, or the
//! Linux kernel's SCTP in a guest):
//!
//! - `client.jsonl`, `server.jsonl`: the peers' JSON Lines (sctp_peer.c's
//!   format: `up` with `laddrs` / `primary`, `peer_addr_change`, `primary`,
//!   `stats`);
//! - `capture.pcap`: the monitored interfaces, read with tshark (the
//!   independent decoder);
//! - `agent.jsonl`: the live agent's events; `meta.json`: the run
//!   (`cut`, `cut_ts`, `restore_ts`; optional: `agents`, each agent's
//!   `attached_ts` / `end_ts` / `killed`, else one agent for the whole run;
//!   `hb_interval_ms` when the peers' start lines lack it);
//! - optional `client-sent.pcap` / `server-sent.pcap` (below).
//!
//! The verdict goes to `fidelity.txt` in the directory.
//!
//! Truth. The wire gives every move of the path new DATA is sent on: per
//! sending endpoint, a DATA chunk is new when its TSN is above every TSN
//! that endpoint sent before (serial arithmetic); a move is new DATA going to
//! another destination than the previous new DATA, at the time of the first
//! new DATA there on the monitored interfaces. What was sent before is read
//! from `client-sent.pcap` / `server-sent.pcap` when the run recorded them
//! (every packet each stack handed to IP, in order: a link that is down
//! drops what is sent into it before any capture of it), else from the
//! capture. A move that carries one packet of new DATA and returns is
//! a blip (a stack may bundle new DATA with a retransmission on the
//! alternate path): neither required nor false. Moves are classified:
//! failover (away from the path in use when the cut began, during the cut),
//! failback (back to the endpoint's primary after a failover), switch (any
//! other: the application's or the peer's primary choice, no failure). The
//! stack gives the path states: `peer_addr_change` (ADDR_UNREACHABLE down,
//! ADDR_AVAILABLE / ADDR_CONFIRMED up, ADDR_POTENTIALLY_FAILED potentially
//! failed).
//!
//! Monitor. The live agent's events and `sctp-monitor replay` of the
//! capture, read through [`MOVE_EVENTS`] and [`PATH_EVENTS`] (the only place
//! event names are spelled). Every observable stack move is reported once
//! within [`MOVE_TOLERANCE_S`] of its first new DATA; a reported move that
//! matches none is false; path_down / path_up agree with the stack within a
//! heartbeat interval; live = offline (same associations, same moves and path
//! events within [`LIVE_OFFLINE_TOLERANCE_S`]).

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    net::IpAddr,
    path::{Path, PathBuf},
    process::Command,
};

use serde_json::Value;

use crate::support::tshark;

/// Reported moves: event name -> the kind it claims (`None`: any kind).
/// A move event needs `from` and `to`; one without `from` (the first
/// primary of an association) is no move.
pub const MOVE_EVENTS: &[(&str, Option<MoveKind>)] = &[
    ("failover", Some(MoveKind::Failover)),
    ("failback", Some(MoveKind::Failback)),
    ("primary_changed", Some(MoveKind::Switch)),
    ("active_path_changed", None),
];

/// Path state events: event name -> the state it reports.
pub const PATH_EVENTS: &[(&str, PathState)] =
    &[("path_down", PathState::Down), ("path_up", PathState::Up), ("path_potentially_failed", PathState::Pf)];

/// A reported move within this of the stack's first new DATA there is on
/// time (50 ms: the bound the matrix holds every run to).
pub const MOVE_TOLERANCE_S: f64 = 0.050;
/// A reported move this far from any stack move of the same endpoint and
/// destinations is no report of it.
pub const MOVE_MATCH_WINDOW_S: f64 = 2.0;
/// Live and offline events of the same kind match within this.
pub const LIVE_OFFLINE_TOLERANCE_S: f64 = 0.005;
/// The recorded cut time is taken when the cutting command returned: what
/// the cut causes at once (an interface going down) may come this much
/// earlier.
pub const CUT_SLACK_S: f64 = 0.2;
/// Moves closer than this to an agent's attach (it has no baseline yet) or
/// to its end are not expected of it.
pub const SETTLE_S: f64 = 0.5;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum MoveKind {
    Failover,
    Failback,
    Switch,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathState {
    Up,
    Down,
    Pf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Side {
    Client,
    Server,
}

impl Side {
    fn name(self) -> &'static str {
        match self {
            Side::Client => "client",
            Side::Server => "server",
        }
    }
    /// The event schema's endpoint: the client initiates.
    fn from_endpoint(s: &str) -> Option<Side> {
        match s {
            "initiator" => Some(Side::Client),
            "responder" => Some(Side::Server),
            _ => None,
        }
    }
}

/// meta.json, and the agents' lifetimes (one span when it has none).
#[derive(Debug, Clone)]
pub struct Meta {
    pub raw: Value,
    pub stack: String,
    pub family: String,
    pub encap: String,
    pub cut: String,
    pub cut_ts: Option<f64>,
    pub restore_ts: Option<f64>,
    pub agents: Vec<AgentSpan>,
    /// Packets the captures of the run lost (`capture_dropped` +
    /// `sent_dropped`): its truth and its replay are incomplete.
    pub lost: u64,
}

#[derive(Debug, Clone, Copy)]
pub struct AgentSpan {
    pub attached: f64,
    pub end: f64,
    pub killed: bool,
}

impl Meta {
    pub fn read(dir: &Path) -> Meta {
        let raw: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("meta.json")).expect("meta.json"))
            .expect("meta.json is JSON");
        let s = |k: &str| raw[k].as_str().unwrap_or("?").to_string();
        let agents = raw["agents"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|x| AgentSpan {
                        attached: x["attached_ts"].as_f64().or(x["start_ts"].as_f64()).unwrap_or(f64::MIN),
                        end: x["end_ts"].as_f64().unwrap_or(f64::MAX),
                        killed: x["killed"].as_bool().unwrap_or(false),
                    })
                    .collect()
            })
            .unwrap_or_else(|| vec![AgentSpan { attached: f64::MIN, end: f64::MAX, killed: false }]);
        Meta {
            stack: s("stack"),
            family: s("family"),
            encap: s("encap"),
            cut: s("cut"),
            cut_ts: raw["cut_ts"].as_f64(),
            restore_ts: raw["restore_ts"].as_f64(),
            agents,
            lost: raw["capture_dropped"].as_u64().unwrap_or(0) + raw["sent_dropped"].as_u64().unwrap_or(0),
            raw,
        }
    }

    /// The scenario's name in the table: stack, family, encapsulation, cut.
    pub fn scenario(&self) -> String {
        format!("{} {} {} {}{}", self.stack, self.family, self.encap, self.cut, self.pf_label())
    }

    fn pf_label(&self) -> String {
        match &self.raw["pf"] {
            Value::Null => String::new(),
            v => format!(" pf={}", v.as_str().map_or_else(|| v.to_string(), str::to_string)),
        }
    }

    /// Whether a failure (black hole, link down) was in force at `t`.
    fn in_cut(&self, t: f64) -> bool {
        matches!(self.cut.as_str(), "blackhole" | "linkdown" | "midflight-start" | "midflight-kill")
            && self.cut_ts.is_some_and(|c| t >= c)
            && self.restore_ts.is_none_or(|r| t < r)
    }

    /// Whether an agent was attached, with its baseline, at `t`.
    fn observed(&self, t: f64) -> bool {
        self.agents.iter().any(|a| t >= a.attached + SETTLE_S && t <= a.end - if a.killed { SETTLE_S } else { 0.0 })
    }
}

/// One peer's own view.
#[derive(Debug, Clone, Default)]
pub struct Peer {
    pub laddrs: Vec<IpAddr>,
    /// (time, primary destination) from `up` and `primary` lines.
    pub primary: Vec<(f64, IpAddr)>,
    /// (time, peer address, state) from `peer_addr_change`; for an address
    /// the stack never notified a failure of, from the changes of state in
    /// its `stats` lines (SCTP_GET_PEER_ADDR_INFO, polled).
    pub states: Vec<(f64, IpAddr, PathState)>,
    pub hb_interval_s: Option<f64>,
}

impl Peer {
    pub fn read(file: &Path) -> Peer {
        let mut p = Peer::default();
        let mut polled: Vec<(f64, IpAddr, PathState)> = Vec::new();
        let text = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        for v in text.lines().filter_map(|l| serde_json::from_str::<Value>(l).ok()) {
            let ts = v["ts"].as_f64().unwrap_or(0.0);
            let ip = |k: &str| v[k].as_str().and_then(|a| a.parse::<IpAddr>().ok());
            match v["ev"].as_str().unwrap_or("") {
                "start" => p.hb_interval_s = v["hb_interval_ms"].as_f64().map(|ms| ms / 1000.0),
                "up" => {
                    p.laddrs =
                        v["laddrs"].as_array().into_iter().flatten().filter_map(|a| a.as_str()?.parse().ok()).collect();
                    if let Some(a) = ip("primary") {
                        p.primary.push((ts, a));
                    }
                }
                "primary" => {
                    if let Some(a) = ip("addr") {
                        p.primary.push((ts, a));
                    }
                }
                "peer_addr_change" => {
                    let st = match v["state"].as_str().unwrap_or("") {
                        "ADDR_UNREACHABLE" => Some(PathState::Down),
                        "ADDR_AVAILABLE" | "ADDR_CONFIRMED" => Some(PathState::Up),
                        "ADDR_POTENTIALLY_FAILED" => Some(PathState::Pf),
                        _ => None,
                    };
                    if let (Some(a), Some(st)) = (ip("addr"), st) {
                        p.states.push((ts, a, st));
                    }
                }
                "stats" => {
                    for path in v["paths"].as_array().into_iter().flatten() {
                        let st = match path["state"].as_str().unwrap_or("") {
                            "active" => PathState::Up,
                            "inactive" => PathState::Down,
                            "potentially_failed" => PathState::Pf,
                            _ => continue,
                        };
                        let Some(a) = path["addr"].as_str().and_then(|a| a.parse::<IpAddr>().ok()) else { continue };
                        if polled.iter().rfind(|x| x.1 == a).is_none_or(|x| x.2 != st) {
                            polled.push((ts, a, st));
                        }
                    }
                }
                _ => {}
            }
        }
        let notified = |a: IpAddr| p.states.iter().any(|x| x.1 == a && x.2 != PathState::Up);
        let fallback: Vec<_> = polled.into_iter().filter(|x| !notified(x.1)).collect();
        if !fallback.is_empty() {
            p.states.extend(fallback);
            p.states.sort_by(|a, b| a.0.total_cmp(&b.0));
        }
        p
    }

    fn primary_at(&self, t: f64) -> Option<IpAddr> {
        self.primary.iter().take_while(|(ts, _)| *ts <= t).last().map(|(_, a)| *a)
    }

    /// The stack's state of the path to `dst` at `t` (up before any note).
    fn state_at(&self, dst: IpAddr, t: f64) -> PathState {
        self.states.iter().rfind(|(ts, a, _)| *a == dst && *ts <= t).map_or(PathState::Up, |x| x.2)
    }

    /// Whether the stack held `dst` in `want` at some time of [t0, t1].
    fn state_within(&self, dst: IpAddr, want: PathState, t0: f64, t1: f64) -> bool {
        let ok = |s: PathState| s == want || (want == PathState::Pf && s == PathState::Down);
        ok(self.state_at(dst, t0)) || self.states.iter().any(|(ts, a, s)| *a == dst && *ts >= t0 && *ts <= t1 && ok(*s))
    }
}

/// One SCTP packet as tshark decodes it.
#[derive(Debug, Clone)]
pub struct WirePacket {
    pub ts: f64,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub tsns: Vec<u32>,
}

/// The capture's SCTP packets (tshark decodes UDP port 9899 as SCTP), in
/// the file's order.
pub fn wire(capture: &Path) -> Vec<WirePacket> {
    let fields = ["frame.time_epoch", "ip.src", "ip.dst", "ipv6.src", "ipv6.dst", "sctp.data_tsn_raw"];
    tshark::sctp_fields("tshark", capture, &fields)
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            let (s, d) = if f[1].is_empty() { (f[3], f[4]) } else { (f[1], f[2]) };
            Some(WirePacket {
                ts: f[0].parse().ok()?,
                src: s.parse().ok()?,
                dst: d.parse().ok()?,
                tsns: tshark::list(f[5]).iter().map(|x| tshark::num(x) as u32).collect(),
            })
        })
        .collect()
}

/// A move of the path new DATA is sent on, as the stack made it.
#[derive(Debug, Clone)]
pub struct StackMove {
    pub side: Side,
    pub ts: f64,
    pub from: IpAddr,
    pub to: IpAddr,
    pub tsn: u32,
    pub kind: MoveKind,
    /// One packet of new DATA, then back: neither required nor false.
    pub blip: bool,
}

fn serial_gt(a: u32, b: u32) -> bool {
    a != b && a.wrapping_sub(b) < 0x8000_0000
}

/// The moves of new DATA of the endpoint sending from `laddrs`: the order
/// of first transmissions from `sent` (what the stack sent, in order), each
/// move timed by the first packet on the monitored interfaces (`capture`)
/// that carries its first TSN (or, that packet lost, a later one) to its
/// destination; a move never seen there is left out.
pub fn stack_moves(sent: &[WirePacket], capture: &[WirePacket], side: Side, laddrs: &[IpAddr]) -> Vec<StackMove> {
    let mut highest: Option<u32> = None;
    let mut cur: Option<IpAddr> = None;
    // (move, new-DATA packets on its destination before the next move)
    let mut moves: Vec<(StackMove, u32)> = Vec::new();
    for p in sent.iter().filter(|p| laddrs.contains(&p.src)) {
        let mut new = None;
        for &t in &p.tsns {
            if highest.is_none_or(|h| serial_gt(t, h)) {
                highest = Some(t);
                new.get_or_insert(t);
            }
        }
        let Some(tsn) = new else { continue };
        match cur {
            Some(c) if c != p.dst => {
                moves.push((
                    StackMove { side, ts: p.ts, from: c, to: p.dst, tsn, kind: MoveKind::Switch, blip: false },
                    1,
                ));
                cur = Some(p.dst);
            }
            Some(_) => {
                if let Some(m) = moves.last_mut() {
                    m.1 += 1;
                }
            }
            None => cur = Some(p.dst),
        }
    }
    let mut i = 0;
    while i < moves.len() {
        let back = moves.get(i + 1).is_some_and(|n| n.0.to == moves[i].0.from);
        if moves[i].1 == 1 && back {
            moves[i].0.blip = true;
            moves[i + 1].0.blip = true;
            i += 1; // the return is no start of another blip
        }
        i += 1;
    }
    moves
        .into_iter()
        .filter_map(|(mut m, _)| {
            // its first TSN, or the first above it (a packet lost on the way)
            let seen = capture.iter().find(|p| {
                laddrs.contains(&p.src) && p.dst == m.to && p.tsns.iter().any(|&t| t == m.tsn || serial_gt(t, m.tsn))
            })?;
            m.ts = seen.ts;
            Some(m)
        })
        .collect()
}

/// Failover, failback or switch, from the cut and the stack's primary.
pub fn classify(meta: &Meta, peer: &Peer, pkts: &[WirePacket], moves: &mut [StackMove]) {
    let in_use_at_cut = meta.cut_ts.and_then(|c| {
        let laddrs = &peer.laddrs;
        let mut highest: Option<u32> = None;
        let mut dst = None;
        for p in pkts.iter().filter(|p| laddrs.contains(&p.src) && p.ts < c) {
            for &t in &p.tsns {
                if highest.is_none_or(|h| serial_gt(t, h)) {
                    highest = Some(t);
                    dst = Some(p.dst);
                }
            }
        }
        dst
    });
    let mut failed_over = false;
    for m in moves.iter_mut() {
        m.kind = if meta.in_cut(m.ts) && Some(m.from) == in_use_at_cut {
            failed_over = true;
            MoveKind::Failover
        } else if failed_over && Some(m.to) == peer.primary_at(m.ts) {
            failed_over = false;
            MoveKind::Failback
        } else {
            MoveKind::Switch
        };
    }
}

/// One event of the monitor, as the comparer reads it.
#[derive(Debug, Clone)]
pub struct MonEvent {
    pub ts: f64,
    pub name: String,
    pub assoc: u64,
    pub schema: u64,
    pub side: Option<Side>,
    pub from: Option<(IpAddr, IpAddr)>,
    pub to: Option<(IpAddr, IpAddr)>,
    pub path: Option<(IpAddr, IpAddr)>,
    /// Moves: the first new DATA on the new path, as the monitor names it
    /// (`ts` may be later: when the move was confirmed).
    pub first_new_data: Option<f64>,
    pub raw: Value,
}

impl MonEvent {
    fn parse(v: Value) -> Option<MonEvent> {
        let name = v["event"].as_str()?.to_string();
        let path = |k: &str| Some((v[k]["src"].as_str()?.parse().ok()?, v[k]["dst"].as_str()?.parse().ok()?));
        Some(MonEvent {
            ts: rfc3339(v["ts"].as_str()?)?,
            assoc: v["assoc"].as_u64().unwrap_or(0),
            schema: v["schema"].as_u64().unwrap_or(1),
            side: v["endpoint"].as_str().and_then(Side::from_endpoint),
            from: path("from"),
            to: path("to"),
            path: path("path"),
            first_new_data: v["first_new_data"].as_str().and_then(rfc3339),
            name,
            raw: v,
        })
    }

    /// A reported move: its claimed kind (`None`: any).
    fn move_kind(&self) -> Option<Option<MoveKind>> {
        let k = MOVE_EVENTS.iter().find(|(n, _)| *n == self.name)?.1;
        (self.from.is_some() && self.to.is_some()).then_some(k)
    }

    fn path_state(&self) -> Option<PathState> {
        let st = PATH_EVENTS.iter().find(|(n, _)| *n == self.name)?.1;
        self.path.is_some().then_some(st)
    }

    fn short(&self) -> String {
        let p = |x: Option<(IpAddr, IpAddr)>| x.map_or("-".into(), |(s, d)| format!("{s}->{d}"));
        let what = if self.from.is_some() { format!("{} => {}", p(self.from), p(self.to)) } else { p(self.path) };
        format!("{} {} {} assoc {} {}", clock(self.ts), self.name, self.side.map_or("-", Side::name), self.assoc, what)
    }
}

/// Names each event's sending endpoint by the source address of its path:
/// the roles of an association picked up mid-flight are the monitor's guess
/// (nothing on the wire tells the initiator then), the addresses are not.
pub fn set_sides(events: &mut [MonEvent], client: &[IpAddr], server: &[IpAddr]) {
    for e in events {
        if let Some((src, _)) = e.to.or(e.path).or(e.from) {
            if client.contains(&src) {
                e.side = Some(Side::Client);
            } else if server.contains(&src) {
                e.side = Some(Side::Server);
            }
        }
    }
}

/// RFC 3339 UTC (`2026-12-07T10:04:00.672163Z`) as Unix seconds.
pub fn rfc3339(s: &str) -> Option<f64> {
    let s = s.strip_suffix('Z')?;
    let (date, time) = s.split_once('T')?;
    let mut d = date.split('-').map(|x| x.parse::<i64>());
    let (y, m, dd) = (d.next()?.ok()?, d.next()?.ok()?, d.next()?.ok()?);
    let mut t = time.split(':');
    let (hh, mm) = (t.next()?.parse::<i64>().ok()?, t.next()?.parse::<i64>().ok()?);
    let sec: f64 = t.next()?.parse().ok()?;
    // days from civil (Howard Hinnant)
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + dd - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some((days * 86_400 + hh * 3600 + mm * 60) as f64 + sec)
}

/// Seconds of the minute with milliseconds, for readable diffs.
fn clock(t: f64) -> String {
    let s = t.rem_euclid(3600.0);
    format!("{:02}:{:06.3}", (s / 60.0) as u64, s % 60.0)
}

/// JSON Lines of events (a replay's summary line and junk skipped).
pub fn events(text: &str) -> Vec<MonEvent> {
    text.lines().filter_map(|l| serde_json::from_str::<Value>(l).ok()).filter_map(MonEvent::parse).collect()
}

/// `sctp-monitor replay --json` of `capture`, from `from` to `to` (Unix
/// seconds; editcap cuts the capture first when either is given).
/// `pmr`: the stacks' Path.Max.Retrans, given to replay as to the agent.
pub fn replay(
    agent: &Path,
    capture: &Path,
    from: Option<f64>,
    to: Option<f64>,
    pmr: Option<u64>,
    scratch: &Path,
) -> Vec<MonEvent> {
    let mut file = capture.to_path_buf();
    if from.is_some() || to.is_some() {
        file = scratch.join(format!("replay-{}-{}.pcap", from.unwrap_or(0.0), to.unwrap_or(0.0)));
        let mut c = Command::new("editcap");
        if let Some(a) = from {
            c.args(["-A", &format!("{a:.6}")]);
        }
        if let Some(b) = to {
            c.args(["-B", &format!("{b:.6}")]);
        }
        let st = c.arg(capture).arg(&file).status().expect("run editcap");
        assert!(st.success(), "editcap on {}", capture.display());
    }
    let mut c = Command::new(agent);
    c.args(["replay", "--json"]);
    if let Some(n) = pmr {
        c.args(["--path-max-retrans", &n.to_string()]);
    }
    let out = c.arg(&file).output().expect("run sctp-monitor replay");
    assert!(out.status.success(), "replay {}: {}", file.display(), String::from_utf8_lossy(&out.stderr));
    events(&String::from_utf8_lossy(&out.stdout))
}

/// The judgement of one monitor (live or offline) against the stack.
#[derive(Debug, Clone, Default)]
pub struct Judgement {
    /// Observable stack moves by kind (blips left out).
    pub stack: BTreeMap<MoveKind, u32>,
    pub reported: u32,
    pub false_moves: u32,
    /// Of the false ones: a second report of a move already reported.
    pub second_reports: u32,
    pub missed: u32,
    /// Matched, but more than [`MOVE_TOLERANCE_S`] off.
    pub off_time: u32,
    /// Matched, claimed another kind (judged from schema 2 on).
    pub wrong_kind: u32,
    /// Matched, but its `first_new_data` is not the wire's first new DATA
    /// (within [`LIVE_OFFLINE_TOLERANCE_S`]).
    pub wrong_first: u32,
    /// Report delays (event ts - first new DATA), seconds.
    pub delays: Vec<f64>,
    /// Stack path transitions expected, matched; path events that disagree.
    pub path_expected: u32,
    pub path_matched: u32,
    pub path_false: u32,
    pub diff: Vec<String>,
}

impl Judgement {
    pub fn exact(&self) -> bool {
        self.false_moves == 0
            && self.missed == 0
            && self.off_time == 0
            && self.wrong_kind == 0
            && self.wrong_first == 0
            && self.path_false == 0
            && self.path_matched == self.path_expected
    }
}

/// Everything the comparer says of one run.
#[derive(Debug, Clone)]
pub struct RunReport {
    pub dir: PathBuf,
    pub meta: Meta,
    pub moves: Vec<StackMove>,
    pub live: Judgement,
    pub offline: Judgement,
    pub live_offline_equal: bool,
    pub live_offline_diff: Vec<String>,
}

impl RunReport {
    pub fn exact(&self) -> bool {
        self.live.exact() && self.offline.exact() && self.live_offline_equal
    }

    /// The per-event diff, for a failing test.
    pub fn explain(&self) -> String {
        let mut s = format!("run {} ({})\n", self.dir.display(), self.meta.scenario());
        let _ = writeln!(s, "  cut {:?} restore {:?}", self.meta.cut_ts.map(clock), self.meta.restore_ts.map(clock));
        if let Some(opts) = self.meta.raw["agent_opts"].as_str().filter(|o| !o.is_empty()) {
            let _ = writeln!(s, "  agent options: {opts}");
        }
        if self.meta.lost > 0 {
            let _ = writeln!(
                s,
                "  THE RUN MISSED {} PACKETS (capture.pcap or the records of what was sent): its truth may be incomplete",
                self.meta.lost
            );
        }
        s += "  stack moves (wire):\n";
        for m in &self.moves {
            let _ = writeln!(
                s,
                "    {} {} {:?}{} {} => {} (TSN {})",
                clock(m.ts),
                m.side.name(),
                m.kind,
                if m.blip { " (blip)" } else { "" },
                m.from,
                m.to,
                m.tsn
            );
        }
        for (what, j) in [("live", &self.live), ("offline", &self.offline)] {
            let _ = writeln!(s, "  {what}: {}", if j.exact() { "exact" } else { "WRONG" });
            for d in &j.diff {
                let _ = writeln!(s, "    {d}");
            }
        }
        let _ = writeln!(s, "  live = offline: {}", self.live_offline_equal);
        for d in &self.live_offline_diff {
            let _ = writeln!(s, "    {d}");
        }
        s
    }
}

/// Judges `events` (one monitor's) against the stack moves and path states.
/// `live`: the events come from an agent that watches its interfaces (a
/// replay of a capture cannot know that a link went down, nothing crosses
/// it: then the transitions of a link-down cut are not required of it).
pub fn judge(
    meta: &Meta,
    peers: &[(Side, &Peer)],
    moves: &[StackMove],
    events: &[MonEvent],
    hb: f64,
    live: bool,
) -> Judgement {
    let mut j = Judgement::default();
    // (time, line) of the diff, sorted by time at the end
    let mut timed: Vec<(f64, String)> = Vec::new();
    let reported: Vec<&MonEvent> = events.iter().filter(|e| e.move_kind().is_some()).collect();
    j.reported = reported.len() as u32;
    let mut used = vec![false; reported.len()];
    // real moves take their reports first; a blip only one on time
    let order = moves.iter().filter(|m| !m.blip).chain(moves.iter().filter(|m| m.blip));
    for m in order {
        let expected = !m.blip && meta.observed(m.ts);
        let window = if m.blip { MOVE_TOLERANCE_S } else { MOVE_MATCH_WINDOW_S };
        if expected {
            *j.stack.entry(m.kind).or_default() += 1;
        }
        let best = reported
            .iter()
            .enumerate()
            .filter(|(i, e)| {
                !used[*i]
                    && e.side == Some(m.side)
                    && e.to.is_some_and(|(_, d)| d == m.to)
                    && e.from.is_some_and(|(_, d)| d == m.from)
                    && (e.first_new_data.unwrap_or(e.ts) - m.ts).abs() <= window
            })
            // the nearest; of reports at one time, the one claiming the stack's kind
            .min_by(|a, b| {
                let wrong = |e: &MonEvent| e.move_kind().flatten().is_some_and(|k| k != m.kind);
                let off = |e: &MonEvent| (e.first_new_data.unwrap_or(e.ts) - m.ts).abs();
                off(a.1).total_cmp(&off(b.1)).then(wrong(a.1).cmp(&wrong(b.1)))
            });
        match best {
            Some((i, e)) => {
                used[i] = true;
                let delay = e.ts - m.ts;
                j.delays.push(delay);
                if delay.abs() > MOVE_TOLERANCE_S {
                    j.off_time += 1;
                    timed.push((
                        e.ts,
                        format!(
                            "OFF TIME  {} reported {:+.3} s from the stack's move {:?} {} {} => {} at {}",
                            e.short(),
                            delay,
                            m.kind,
                            m.side.name(),
                            m.from,
                            m.to,
                            clock(m.ts)
                        ),
                    ));
                }
                if let Some(f) = e.first_new_data
                    && (f - m.ts).abs() > LIVE_OFFLINE_TOLERANCE_S
                {
                    j.wrong_first += 1;
                    timed.push((
                        e.ts,
                        format!(
                            "FIRST NEW {} names first_new_data {} for the stack's first new DATA at {} (TSN {})",
                            e.short(),
                            clock(f),
                            clock(m.ts),
                            m.tsn
                        ),
                    ));
                }
                let claimed = e.move_kind().flatten();
                if e.schema >= 2 && claimed.is_some_and(|k| k != m.kind) {
                    j.wrong_kind += 1;
                    timed.push((
                        e.ts,
                        format!("WRONG KIND {} for the stack's {:?} at {}", e.short(), m.kind, clock(m.ts)),
                    ));
                }
            }
            None if expected => {
                j.missed += 1;
                timed.push((
                    m.ts,
                    format!(
                        "MISSED    {:?} {} {} => {} at {} (first new TSN {})",
                        m.kind,
                        m.side.name(),
                        m.from,
                        m.to,
                        clock(m.ts),
                        m.tsn
                    ),
                ));
            }
            None => {}
        }
    }
    for (i, e) in reported.iter().enumerate() {
        if !used[i] {
            j.false_moves += 1;
            let dup = reported.iter().enumerate().any(|(k, o)| {
                k != i && used[k] && o.side == e.side && o.to == e.to && o.from == e.from && o.ts == e.ts
            });
            j.second_reports += u32::from(dup);
            timed.push((
                e.ts,
                format!("FALSE     {}{}", e.short(), if dup { " (a second report of one move)" } else { "" }),
            ));
        }
    }

    // Path states: every stack transition to down, and back up from down,
    // is reported within a heartbeat interval; no path event contradicts
    // the stack then.
    for (side, peer) in peers {
        let mut prev: BTreeMap<IpAddr, PathState> = BTreeMap::new();
        for &(ts, dst, st) in &peer.states {
            let before = prev.insert(dst, st).unwrap_or(PathState::Up);
            let required = match st {
                PathState::Down => before != PathState::Down,
                PathState::Up => before == PathState::Down,
                PathState::Pf => false,
            };
            if !required || !meta.observed(ts) {
                continue;
            }
            let unseen_link = !live && meta.cut == "linkdown" && meta.cut_ts.is_some_and(|c| ts >= c);
            if unseen_link && (st == PathState::Down || meta.restore_ts.is_some_and(|r| ts < r + 2.0 * hb)) {
                continue;
            }
            j.path_expected += 1;
            // a link taken down is known at once: the report may come
            // before the stack gives up on the path
            let early = match (st, meta.cut.as_str(), meta.cut_ts) {
                (PathState::Down, "linkdown", Some(c)) if c < ts => ts - c + CUT_SLACK_S.max(hb),
                _ => hb,
            };
            let hit = events.iter().any(|e| {
                e.side == Some(*side)
                    && e.path_state() == Some(st)
                    && e.path.is_some_and(|(_, d)| d == dst)
                    && e.ts >= ts - early
                    && e.ts <= ts + hb
            });
            if hit {
                j.path_matched += 1;
            } else {
                timed.push((
                    ts,
                    format!("MISSED    path {:?}: {} path to {dst} at {} (stack)", st, side.name(), clock(ts)),
                ));
            }
        }
    }
    for e in events {
        let (Some(st), Some(side), Some((_, dst))) = (e.path_state(), e.side, e.path) else { continue };
        let Some((_, peer)) = peers.iter().find(|(s, _)| *s == side) else { continue };
        // link down: a path the stack gives up on during the cut is down
        // (or potentially failed) from the cut on
        let link_down = st != PathState::Up
            && meta.cut == "linkdown"
            && meta.in_cut(e.ts + CUT_SLACK_S)
            && peer.states.iter().any(|(ts, a, s)| *a == dst && *s == PathState::Down && meta.in_cut(*ts));
        if !link_down && !peer.state_within(dst, st, e.ts - hb, e.ts + hb) {
            j.path_false += 1;
            timed.push((
                e.ts,
                format!(
                    "FALSE     {} (stack: {:?} from {} to {})",
                    e.short(),
                    peer.state_at(dst, e.ts - hb),
                    clock(e.ts - hb),
                    clock(e.ts + hb)
                ),
            ));
        }
    }
    timed.sort_by(|a, b| a.0.total_cmp(&b.0));
    j.diff = timed.into_iter().map(|(_, l)| l).collect();
    j
}

/// Associations (by ports, tags and address sets) of a monitor's events.
fn associations(events: &[MonEvent]) -> Vec<String> {
    let mut by: BTreeMap<u64, String> = BTreeMap::new();
    for e in events {
        if let (Some(i), Some(r)) = (e.raw.get("initiator"), e.raw.get("responder")) {
            let ep = |v: &Value| {
                let mut a: Vec<&str> = v["addrs"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
                a.sort();
                format!("{}/{:#x}/[{}]", v["port"], v["vtag"].as_u64().unwrap_or(0), a.join(","))
            };
            by.insert(e.assoc, format!("{} <-> {}", ep(i), ep(r)));
        }
    }
    let mut v: Vec<String> = by.into_values().collect();
    v.sort();
    v
}

/// Live = offline within one agent's span: the same associations, moves and
/// path events, each within [`LIVE_OFFLINE_TOLERANCE_S`].
pub fn live_vs_offline(live: &[MonEvent], offline: &[MonEvent], diff: &mut Vec<String>, label: &str) -> bool {
    let mut equal = true;
    let (la, oa) = (associations(live), associations(offline));
    if la != oa {
        equal = false;
        diff.push(format!("{label}associations: live {la:?}, offline {oa:?}"));
    }
    let key = |e: &MonEvent| {
        let d = |x: Option<(IpAddr, IpAddr)>| x.map(|(s, d)| format!("{s}->{d}"));
        (e.name.clone(), e.side, d(e.from), d(e.to), d(e.path))
    };
    // what only a live agent can know (an interface going down: the event
    // names a cause with "link" in it) is no part of the comparison
    let link_caused =
        |e: &MonEvent| ["cause", "reason"].iter().any(|k| e.raw[*k].as_str().is_some_and(|c| c.contains("link")));
    let pick = |v: &[MonEvent]| -> Vec<MonEvent> {
        v.iter().filter(|e| (e.move_kind().is_some() || e.path_state().is_some()) && !link_caused(e)).cloned().collect()
    };
    let (l, o) = (pick(live), pick(offline));
    let mut used = vec![false; o.len()];
    for e in &l {
        let hit = o
            .iter()
            .enumerate()
            .find(|(i, x)| !used[*i] && key(x) == key(e) && (x.ts - e.ts).abs() <= LIVE_OFFLINE_TOLERANCE_S);
        match hit {
            Some((i, _)) => used[i] = true,
            None => {
                equal = false;
                let near = o
                    .iter()
                    .filter(|x| key(x) == key(e))
                    .map(|x| x.ts - e.ts)
                    .min_by(|a, b| a.abs().total_cmp(&b.abs()));
                diff.push(format!(
                    "{label}live only:    {}{}",
                    e.short(),
                    near.map_or(String::new(), |d| format!(" (offline has it {d:+.3} s away)"))
                ));
            }
        }
    }
    for (i, e) in o.iter().enumerate() {
        if !used[i] {
            equal = false;
            diff.push(format!("{label}offline only: {}", e.short()));
        }
    }
    equal
}

/// Compares one artifact directory. `agent` is the sctp-monitor binary
/// (for `replay`).
pub fn compare(dir: &Path, agent: &Path) -> RunReport {
    let mut meta = Meta::read(dir);
    let client = Peer::read(&dir.join("client.jsonl"));
    let server = Peer::read(&dir.join("server.jsonl"));
    let hb = client.hb_interval_s.or(meta.raw["hb_interval_ms"].as_f64().map(|ms| ms / 1000.0)).unwrap_or(0.5);
    let mut pkts = wire(&dir.join("capture.pcap"));
    pkts.sort_by(|a, b| a.ts.total_cmp(&b.ts));
    let mut moves = Vec::new();
    for (side, peer) in [(Side::Client, &client), (Side::Server, &server)] {
        // what the stack sent, in order, where the run recorded it
        let sent_file = dir.join(format!("{}-sent.pcap", side.name()));
        let mut sent = if sent_file.exists() { wire(&sent_file) } else { pkts.clone() };
        // a record of what was sent that misses DATA the capture has is no
        // record of the order: the capture's order then, the loss counted
        let tsns = |v: &[WirePacket]| -> std::collections::BTreeSet<u32> {
            v.iter().filter(|p| peer.laddrs.contains(&p.src)).flat_map(|p| p.tsns.iter().copied()).collect()
        };
        let missing = tsns(&pkts).difference(&tsns(&sent)).count() as u64;
        if missing > 0 {
            meta.lost += missing;
            sent = pkts.clone();
        }
        let mut m = stack_moves(&sent, &pkts, side, &peer.laddrs);
        classify(&meta, peer, &pkts, &mut m);
        moves.extend(m);
    }
    moves.sort_by(|a, b| a.ts.total_cmp(&b.ts));
    let mut live = events(&std::fs::read_to_string(dir.join("agent.jsonl")).unwrap_or_default());
    set_sides(&mut live, &client.laddrs, &server.laddrs);

    // Offline: replay of the capture over each agent's span; the events of a
    // killed agent's last second are left out of both (not flushed yet).
    let scratch = dir.join("replay");
    let _ = std::fs::create_dir_all(&scratch);
    let mut offline_all = Vec::new();
    let mut diff = Vec::new();
    let mut equal = true;
    for (i, span) in meta.agents.iter().enumerate() {
        let end = if span.killed { span.end - 1.0 } else { f64::MAX };
        // an agent that started before the association sees what replay of
        // the whole capture sees; a later one is compared with the capture
        // from its attach on
        let from = (meta.cut.starts_with("midflight") && span.attached > f64::MIN).then_some(span.attached);
        let to = span.killed.then_some(span.end);
        let mut off: Vec<MonEvent> =
            replay(agent, &dir.join("capture.pcap"), from, to, meta.raw["path_max_retrans"].as_u64(), &scratch)
                .into_iter()
                .filter(|e| e.ts <= end)
                .collect();
        set_sides(&mut off, &client.laddrs, &server.laddrs);
        let liv: Vec<MonEvent> =
            live.iter().filter(|e| e.ts >= span.attached - 1.0 && e.ts <= span.end && e.ts <= end).cloned().collect();
        let label = if meta.agents.len() > 1 { format!("agent {}: ", i + 1) } else { String::new() };
        equal &= live_vs_offline(&liv, &off, &mut diff, &label);
        offline_all.extend(off);
    }
    let peers = [(Side::Client, &client), (Side::Server, &server)];
    let live_j = judge(&meta, &peers, &moves, &live, hb, true);
    let offline_j = judge(&meta, &peers, &moves, &offline_all, hb, false);
    let report = RunReport {
        dir: dir.to_path_buf(),
        meta,
        moves,
        live: live_j,
        offline: offline_j,
        live_offline_equal: equal,
        live_offline_diff: diff,
    };
    // the verdict beside the artifacts, for reading later
    let _ = std::fs::write(dir.join("fidelity.txt"), report.explain());
    report
}

fn percentile(v: &[f64], p: f64) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    Some(s[((s.len() - 1) as f64 * p).round() as usize])
}

/// The FIDELITY.md table: one row per scenario over its runs.
pub fn table(reports: &[RunReport], command: &str) -> String {
    let mut rows: BTreeMap<String, Vec<&RunReport>> = BTreeMap::new();
    for r in reports {
        rows.entry(r.meta.scenario()).or_default().push(r);
    }
    let mut s = String::from(
        "# Fidelity: the monitor against the SCTP stack\n\n\
         Each run: a real multihomed association, the agent live on the server's two interfaces, a capture of \
         them, a failure of the primary path (or a primary change). The truth is the stack's: moves of the path \
         new DATA is sent on, read from the wire with tshark (a TSN above every earlier one of that endpoint), \
         classified failover / failback / switch (a move with no failure anywhere); path states from the stack's \
         own notifications. Live is the agent's events; offline is `sctp-monitor replay` of the capture. \
         A reported move must be within 50 ms of the stack's first new DATA; path events within a heartbeat \
         interval; live and offline within 5 ms. Missed and false events both count.\n\n",
    );
    let _ = writeln!(
        s,
        "Reproduce: {command} (artifacts of each run under target/fidelity/, its per-event diff in the output).\n"
    );
    s += "| scenario | runs | stack moves (failover/failback/switch) | reported | false | missed | off > 50 ms (first_new_data wrong) | \
          delay p50 / max (ms) | path states agree | offline false / missed | live = offline | exact runs |\n";
    s += "|---|---|---|---|---|---|---|---|---|---|---|---|\n";
    for (name, rs) in &rows {
        let sum = |f: &dyn Fn(&Judgement) -> u32| rs.iter().map(|r| f(&r.live)).sum::<u32>();
        let kind = |k: MoveKind| rs.iter().map(|r| r.live.stack.get(&k).copied().unwrap_or(0)).sum::<u32>();
        let delays: Vec<f64> = rs.iter().flat_map(|r| r.live.delays.iter().copied()).collect();
        let ms = |x: Option<f64>| x.map_or("-".into(), |v| format!("{}", (v * 1000.0).round() as i64));
        let maxabs = delays.iter().copied().max_by(|a, b| a.abs().total_cmp(&b.abs()));
        let _ = writeln!(
            s,
            "| {name} | {} | {} ({}/{}/{}) | {} ({} wrong kind) | {} ({} second) | {} | {} ({} first_new_data) | {} / {} | {}/{} transitions, {} contradicting | {} / {} | {}/{} | {}/{}{} |",
            rs.len(),
            kind(MoveKind::Failover) + kind(MoveKind::Failback) + kind(MoveKind::Switch),
            kind(MoveKind::Failover),
            kind(MoveKind::Failback),
            kind(MoveKind::Switch),
            sum(&|j| j.reported),
            sum(&|j| j.wrong_kind),
            sum(&|j| j.false_moves),
            sum(&|j| j.second_reports),
            sum(&|j| j.missed),
            sum(&|j| j.off_time),
            sum(&|j| j.wrong_first),
            ms(percentile(&delays, 0.5)),
            ms(maxabs),
            sum(&|j| j.path_matched),
            sum(&|j| j.path_expected),
            sum(&|j| j.path_false),
            rs.iter().map(|r| r.offline.false_moves + r.offline.path_false).sum::<u32>(),
            rs.iter().map(|r| r.offline.missed + r.offline.path_expected - r.offline.path_matched).sum::<u32>(),
            rs.iter().filter(|r| r.live_offline_equal).count(),
            rs.len(),
            rs.iter().filter(|r| r.exact()).count(),
            rs.len(),
            match rs.iter().filter(|r| r.meta.lost > 0).count() {
                0 => String::new(),
                n => format!(" ({n} with packets lost by a capture)"),
            },
        );
    }
    s += "\nColumns: *stack moves* are the observable moves the stacks made (blips, one packet of new DATA then \
          back, are neither required nor false); *reported* counts the agent's move events (failover, failback, \
          primary_changed with from/to), of them *wrong kind* those matched to a move of another kind (a failover \
          for a failback, a primary_changed for a failover: judged from schema 2 on); *false* are reported moves matching no stack move, of them *second* the \
          second report of one move (a failover and a primary_changed for it); *off > 50 ms* the matched reports \
          whose time is further from the stack's first new DATA (in parentheses: those whose `first_new_data` \
          is more than 5 ms from it); *delay* is the report's time (`ts`) minus the first new DATA (negative: \
          before the stack moved); *path states agree* counts the stack's transitions to unreachable, and back to \
          available, that the agent reported within a heartbeat interval, and the agent's path events the \
          stack's state contradicts.\n";
    s
}
