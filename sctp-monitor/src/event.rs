//! The JSON Lines event schema. Field names are an
//! interface: `ts` (RFC 3339 UTC, microseconds), `event`, `schema`
//! ([`SCHEMA_VERSION`]), `host`, `ifname`, `assoc`, `initiator` /
//! `responder` (`{"port","vtag","addrs"}`), `reason`, `path`
//! (`{"src","dst"}`), `from` / `to`, `endpoint`, `addr`, `ppid` / `ppids`
//! (`{"id","name"}`), `causes` (`[{"code","name","text","staleness_us"}]`),
//! `causes_omitted`, `repeated`. Optional fields are left out when empty;
//! more fields may be added, never renamed. The JSON Schema of every event
//! is `sctp-monitor/schema/events.schema.json` (tested against every kind).

use std::net::IpAddr;

use serde::{Serialize, Serializer};

use crate::error_cause::CauseEntry;
use crate::ppid::Ppid;

/// The `schema` field: the version of the event format. Raised when a
/// field changes meaning or goes away (adding one does not raise it).
pub const SCHEMA_VERSION: u32 = 2;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    AssociationUp,
    AssociationDown,
    Restart,
    AddressAdded,
    AddressRemoved,
    PrimaryChanged,
    PathUp,
    PathDown,
    Failover,
    Stalled,
    ProtocolSeen,
    PrimaryRequested,
    Failback,
    PathPotentiallyFailed,
    ErrorReported,
    WindowZero,
    WindowOpen,
    PathDegraded,
    PathDegradedEnd,
}

impl EventKind {
    /// Every kind, in declaration order (`kind as usize` indexes it).
    pub const ALL: [EventKind; 19] = [
        EventKind::AssociationUp,
        EventKind::AssociationDown,
        EventKind::Restart,
        EventKind::AddressAdded,
        EventKind::AddressRemoved,
        EventKind::PrimaryChanged,
        EventKind::PathUp,
        EventKind::PathDown,
        EventKind::Failover,
        EventKind::Stalled,
        EventKind::ProtocolSeen,
        EventKind::PrimaryRequested,
        EventKind::Failback,
        EventKind::PathPotentiallyFailed,
        EventKind::ErrorReported,
        EventKind::WindowZero,
        EventKind::WindowOpen,
        EventKind::PathDegraded,
        EventKind::PathDegradedEnd,
    ];

    /// The `event` field's value.
    pub fn name(self) -> &'static str {
        match self {
            EventKind::AssociationUp => "association_up",
            EventKind::AssociationDown => "association_down",
            EventKind::Restart => "restart",
            EventKind::AddressAdded => "address_added",
            EventKind::AddressRemoved => "address_removed",
            EventKind::PrimaryChanged => "primary_changed",
            EventKind::PathUp => "path_up",
            EventKind::PathDown => "path_down",
            EventKind::Failover => "failover",
            EventKind::Stalled => "stalled",
            EventKind::ProtocolSeen => "protocol_seen",
            EventKind::PrimaryRequested => "primary_requested",
            EventKind::Failback => "failback",
            EventKind::PathPotentiallyFailed => "path_potentially_failed",
            EventKind::ErrorReported => "error_reported",
            EventKind::WindowZero => "window_zero",
            EventKind::WindowOpen => "window_open",
            EventKind::PathDegraded => "path_degraded",
            EventKind::PathDegradedEnd => "path_degraded_end",
        }
    }
}

/// Why an association ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DownReason {
    Shutdown,
    Abort,
    Timeout,
    Restart,
    /// Dropped to respect the association cap (longest idle first).
    Evicted,
    /// Picked up mid-flight as one direction of an association whose other
    /// direction was tracked already: folded into that one.
    Merged,
}

/// One endpoint's role in the association.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Initiator,
    Responder,
}

impl Role {
    /// 0 for the initiator, 1 for the responder.
    pub fn index(self) -> usize {
        match self {
            Role::Initiator => 0,
            Role::Responder => 1,
        }
    }

    /// The role at index 0 (initiator) or 1 (responder).
    pub fn from_index(i: usize) -> Role {
        if i == 0 { Role::Initiator } else { Role::Responder }
    }
}

/// An endpoint: port, the tag packets *to* it carry (its own Initiate Tag;
/// 0 when not yet seen), its address set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Endpoint {
    pub port: u16,
    pub vtag: u32,
    pub addrs: Vec<IpAddr>,
}

/// A path: source and destination address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PathRef {
    pub src: IpAddr,
    pub dst: IpAddr,
}

/// Why a path changed state, or why the primary changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    /// primary_changed: the association's first new DATA.
    Initial,
    /// primary_changed: new DATA moved with no failure anywhere: the
    /// sender's own choice (e.g. `SCTP_PRIMARY_ADDR`).
    Sender,
    /// primary_changed: asked for by an acknowledged ASCONF (`asconf` says
    /// which request).
    Asconf,
    /// Path events: heartbeats to the path went unanswered.
    Heartbeats,
    /// Path events: DATA last sent on the path was retransmitted (its
    /// retransmission timer expired).
    Retransmissions,
    /// path_potentially_failed: the sender moved new DATA away from it.
    Failover,
    /// path_down: the monitored interface it crosses went down.
    LinkDown,
    /// path_up: a heartbeat on it was answered.
    HeartbeatAck,
    /// path_up: DATA sent on it was acknowledged.
    DataAck,
}

/// Why a failover happened, as seen on the old path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Evidence {
    pub unanswered_heartbeats: u32,
    pub retransmissions: u32,
}

/// One event. Build with [`Event::new`] and the setters the kind needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    #[serde(serialize_with = "ser_ts")]
    pub ts: u64,
    pub event: EventKind,
    /// [`SCHEMA_VERSION`].
    pub schema: u32,
    /// The monitoring host (the agent's `--host`; left out by `replay`
    /// unless asked).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// The interface the packet that decided the event was seen on (left
    /// out for events of the passage of time: timeouts, stalls, and of the
    /// per-path counters).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ifname: Option<String>,
    pub assoc: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub initiator: Option<Endpoint>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub responder: Option<Endpoint>,
    /// `false` for an association picked up mid-flight.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub handshake_seen: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<DownReason>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<PathRef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<PathRef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<PathRef>,
    /// For address events: whose address set changed. For path events and
    /// error_reported: the endpoint that sends on the path. For
    /// association_down by abort: the endpoint that sent the ABORT.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<Role>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub addr: Option<IpAddr>,
    /// failover, failback, primary_changed: first new DATA on the new path
    /// (`ts` is when the move was known: later when the first packet there
    /// also carried retransmissions and the next new DATA had to confirm it).
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "ser_opt_ts")]
    pub first_new_data: Option<u64>,
    /// Failover: last DATA on the old path.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "ser_opt_ts")]
    pub last_old_data: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evidence: Option<Evidence>,
    /// Restart: the association this one replaces.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_assoc: Option<u64>,
    /// Heartbeat RTT in microseconds (path_up by heartbeat).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rtt_us: Option<u32>,
    /// Stalled: milliseconds without cumulative TSN ack progress.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stalled_ms: Option<u64>,
    /// protocol_seen: the PPID first seen in the association's DATA.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ppid: Option<Ppid>,
    /// Association events: the PPIDs seen so far, ascending.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ppids: Option<Vec<Ppid>>,
    /// primary_changed: the acknowledged ASCONF request that asked for the
    /// move (then it is not a failover).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub asconf: Option<AsconfCause>,
    /// primary_changed and path state events: why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<Cause>,
    /// association_down by abort, error_reported: the chunk's error causes
    /// in its order (`crate::error_cause`), at most
    /// [`crate::error_cause::MAX_LISTED`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub causes: Option<Vec<CauseEntry>>,
    /// Causes of the chunk beyond those listed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub causes_omitted: Option<u32>,
    /// error_reported: ERROR chunks of the association whose first cause
    /// had the same code, held back since the last error_reported of that
    /// code (at most one a second is reported).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repeated: Option<u32>,
    /// window_zero, window_open: the receiver window the SACK advertised
    /// (bytes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub a_rwnd: Option<u32>,
    /// window_open: how long the window stayed closed (ms).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window_zero_ms: Option<u64>,
    /// path_degraded, path_degraded_end: the quality window that decided.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window: Option<QualityWindow>,
}

/// A path's losses over one quality window.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct QualityWindow {
    pub seconds: u32,
    /// DATA chunks sent on the path in the window.
    pub data_chunks: u32,
    /// Of those (and earlier ones), chunks the path lost: sent again.
    pub lost_chunks: u32,
    /// `lost_chunks / data_chunks`, when enough DATA went to judge.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loss_ratio: Option<f64>,
    pub heartbeats: u32,
    pub heartbeats_unanswered: u32,
    /// `heartbeats_unanswered / heartbeats`, when enough were sent to judge.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub heartbeat_loss_ratio: Option<f64>,
}

// The ratios are never NaN: a ratio exists only with a non-zero count
// under it.
impl Eq for QualityWindow {}

impl QualityWindow {
    /// A window of `window_ns` with these counts; a ratio only above its
    /// minimum count.
    pub fn new(window_ns: u64, data: u32, lost: u32, hb: u32, hb_lost: u32, min_data: u32, min_hb: u32) -> Self {
        // Four decimals: the log line stays short, the ratio exact enough.
        let ratio = |n: u32, d: u32, min: u32| (d >= min.max(1)).then(|| (n as f64 / d as f64 * 1e4).round() / 1e4);
        QualityWindow {
            seconds: (window_ns / 1_000_000_000) as u32,
            data_chunks: data,
            lost_chunks: lost,
            loss_ratio: ratio(lost, data, min_data),
            heartbeats: hb,
            heartbeats_unanswered: hb_lost,
            heartbeat_loss_ratio: ratio(hb_lost, hb, min_hb),
        }
    }
}

/// The ASCONF request (RFC 5061) behind a move of new DATA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AsconfCause {
    /// The receiver asked for the new destination (Set Primary Address).
    SetPrimary,
    /// The old path's address was deleted (Delete IP Address).
    DeleteIp,
}

impl Event {
    /// An event with only the mandatory fields.
    pub fn new(ts: u64, event: EventKind, assoc: u64) -> Event {
        Event {
            ts,
            event,
            schema: SCHEMA_VERSION,
            host: None,
            ifname: None,
            assoc,
            initiator: None,
            responder: None,
            handshake_seen: None,
            reason: None,
            path: None,
            from: None,
            to: None,
            endpoint: None,
            addr: None,
            first_new_data: None,
            last_old_data: None,
            evidence: None,
            previous_assoc: None,
            rtt_us: None,
            stalled_ms: None,
            ppid: None,
            ppids: None,
            asconf: None,
            cause: None,
            causes: None,
            causes_omitted: None,
            repeated: None,
            a_rwnd: None,
            window_zero_ms: None,
            window: None,
        }
    }

    /// A report that new DATA moved to another path: a failover, a
    /// failback, or a primary change with the path it left (not the first
    /// primary of a direction).
    pub fn is_move(&self) -> bool {
        match self.event {
            EventKind::Failover | EventKind::Failback => true,
            EventKind::PrimaryChanged => self.from.is_some(),
            _ => false,
        }
    }

    /// The event as one JSON line (no trailing newline).
    pub fn to_json_line(&self) -> String {
        // Serializing plain structs of strings and numbers cannot fail.
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}

fn ser_ts<S: Serializer>(ts: &u64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&rfc3339_micros(*ts))
}

fn ser_opt_ts<S: Serializer>(ts: &Option<u64>, s: S) -> Result<S::Ok, S::Error> {
    match ts {
        Some(t) => s.serialize_str(&rfc3339_micros(*t)),
        None => s.serialize_none(),
    }
}

/// Nanoseconds since the Unix epoch as `YYYY-MM-DDTHH:MM:SS.uuuuuuZ`.
pub fn rfc3339_micros(ts_ns: u64) -> String {
    let secs = ts_ns / 1_000_000_000;
    let micros = (ts_ns % 1_000_000_000) / 1_000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{micros:06}Z", rem / 3600, (rem % 3600) / 60, rem % 60)
}

/// Days since 1970-01-01 to (year, month, day) (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_names_are_the_json_values() {
        for (i, k) in EventKind::ALL.into_iter().enumerate() {
            assert_eq!(k as usize, i);
            assert_eq!(serde_json::to_value(k).expect("serializes"), k.name());
        }
    }

    #[test]
    fn timestamps_are_rfc3339_utc_micros() {
        assert_eq!(rfc3339_micros(0), "1970-01-01T00:00:00.000000Z");
        // 2024-02-29T12:34:56.789012Z
        assert_eq!(rfc3339_micros(1_709_210_096_789_012_345), "2024-02-29T12:34:56.789012Z");
        assert_eq!(rfc3339_micros(951_782_400_000_000_000), "2000-02-29T00:00:00.000000Z");
    }

    #[test]
    fn association_event_shape() {
        let mut e = Event::new(1_000_000, EventKind::AssociationUp, 7);
        e.initiator = Some(Endpoint { port: 36412, vtag: 0xabc, addrs: vec!["10.0.0.1".parse().expect("a")] });
        e.responder = Some(Endpoint { port: 36412, vtag: 5, addrs: vec!["fd00::1".parse().expect("a")] });
        let v: serde_json::Value = serde_json::from_str(&e.to_json_line()).expect("valid JSON");
        assert_eq!(v["ts"], "1970-01-01T00:00:00.001000Z");
        assert_eq!(v["event"], "association_up");
        assert_eq!(v["assoc"], 7);
        assert_eq!(v["initiator"]["port"], 36412);
        assert_eq!(v["initiator"]["vtag"], 0xabc);
        assert_eq!(v["initiator"]["addrs"][0], "10.0.0.1");
        assert_eq!(v["responder"]["addrs"][0], "fd00::1");
        assert!(v.get("path").is_none(), "empty fields are left out");
    }

    #[test]
    fn failover_and_down_shape() {
        let p = |s: &str, d: &str| PathRef { src: s.parse().expect("a"), dst: d.parse().expect("a") };
        let mut e = Event::new(0, EventKind::Failover, 1);
        e.from = Some(p("10.0.0.1", "10.0.0.2"));
        e.to = Some(p("10.0.1.1", "10.0.1.2"));
        e.last_old_data = Some(5_000);
        let v: serde_json::Value = serde_json::from_str(&e.to_json_line()).expect("valid JSON");
        assert_eq!(v["event"], "failover");
        assert_eq!(v["from"]["src"], "10.0.0.1");
        assert_eq!(v["to"]["dst"], "10.0.1.2");
        assert_eq!(v["last_old_data"], "1970-01-01T00:00:00.000005Z");
        let mut d = Event::new(0, EventKind::AssociationDown, 1);
        d.reason = Some(DownReason::Abort);
        d.endpoint = Some(Role::Responder);
        let v: serde_json::Value = serde_json::from_str(&d.to_json_line()).expect("valid JSON");
        assert_eq!(v["reason"], "abort");
        assert_eq!(v["endpoint"], "responder");
    }
}
