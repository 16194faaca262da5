//! The HTTP JSON API's documents. The live view (`top`) and scripts
//! read these shapes; field names are an interface: add, never rename.
//!
//! All endpoints live on the `--metrics` listener next to `/metrics`.
//!
//! ## `GET /api/associations[?limit=N][&id=ID]`
//! Associations currently tracked (newest state, built on request).
//! `limit` (default 1000, at most 100000) bounds the list; `id` selects one.
//! ```json
//! {
//!   "generated": "2026-11-26T11:00:00.123456Z",
//!   "count": 2,                // associations tracked in total
//!   "truncated": false,        // true when `limit` cut the list
//!   "associations": [{
//!     "id": 7,
//!     "state": "established",  // cookie_wait | cookie_echoed | established
//!                              // | shutdown_pending | shutdown_ack_sent
//!     "handshake_seen": true,  // false: picked up mid-flight
//!     "init_collision": false,
//!     "initiator": {"port": 5000, "vtag": 3735928559, "addrs": ["10.0.0.1", "10.0.1.1"]},
//!     "responder": {"port": 5000, "vtag": null, "addrs": ["10.0.0.2"]},
//!                              // vtag: the tag packets TO that endpoint carry (null: not seen yet)
//!     "primary": {             // current primary path per sending endpoint (null: no DATA yet)
//!       "initiator": {"src": "10.0.0.1", "dst": "10.0.0.2"},
//!       "responder": null
//!     },
//!     "failovers": {"initiator": 1, "responder": 0},
//!     "highest_tsn": {"initiator": 1234, "responder": null},
//!     "cum_ack": {"initiator": 1230, "responder": null},
//!     "requested_primary": {"initiator": null, "responder": null},  // ASCONF Set Primary
//!     "restart_of": null,      // id of the association this one restarted
//!     "ppids": [{"id": 18, "name": "S1AP"}, {"id": 4242}],
//!                              // PPIDs of the DATA seen (upper-layer protocols), ascending;
//!                              // name left out when unknown (`crate::ppid`)
//!     "last_seen": "2026-11-26T11:00:00.100000Z",
//!     "window_zero": {"initiator": false, "responder": false},
//!                              // the peer of that sender advertises a zero window now
//!     "chunks": {"DATA": 853, "SACK": 820, "HEARTBEAT": 24, "HEARTBEAT_ACK": 24, "INIT": 1, ...},
//!                              // by type: control chunks, DATA/I_DATA and SACK (types the
//!                              // kernel only counts per interface are not here)
//!     "paths": [{
//!       "sender": "initiator", // the endpoint sending on this path
//!       "src": "10.0.0.1", "dst": "10.0.0.2",
//!       "state": "active",     // unconfirmed | active | suspect | potentially_failed | down
//!       "primary": true,       // the current primary of its direction
//!       "rtt_us": 210,         // last heartbeat RTT (null: none answered yet)
//!       "unanswered_heartbeats": 0,
//!       "data_packets": 420, "data_bytes": 42000, "retransmissions": 0,
//!       "last_data": "2026-11-26T11:00:00.090000Z",  // or null
//!       "data_chunks": 433,    // DATA chunks sent on the path, retransmissions included
//!       "sacks": 410, "gap_blocks": 3, "duplicate_tsns": 0,
//!                              // SACKs the sender sent on the path (for the peer's DATA)
//!                              // and the gap-ack blocks and duplicate TSNs they reported
//!       "a_rwnd": 131072, "a_rwnd_min": 65536,
//!                              // last and smallest window those SACKs advertised (null: none)
//!       "heartbeats": 12, "heartbeats_unanswered": 0,
//!       "lost_chunks": 2,      // DATA chunks last sent on this path that had to be sent again
//!                              // (wherever the retransmission went): the path's losses
//!       "rtt_histogram": {     // liveness heartbeats' RTTs: counts[i] at most bounds_us[i]
//!         "bounds_us": [250, 1000, 4000, 16000, 64000, 256000, 1024000],
//!         "counts": [11, 1, 0, 0, 0, 0, 0, 0],  // the last: above 1.024 s
//!         "sum_us": 2410 },
//!       "degraded": false      // path_degraded reported and not yet path_degraded_end
//!     }]
//!   }]
//! }
//! ```
//!
//! ## `GET /api/events?since=N[&limit=M]`
//! Events with a sequence number greater than or equal to `N` (default 0)
//! from a bounded in-memory log (`--event-log-size`), oldest first, at most
//! `limit` (default 1000). Each event is the JSON Lines object of
//! `crate::event` with a `seq` field added. Poll with `since=next`.
//! ```json
//! {
//!   "first": 40,       // oldest sequence number still in the log
//!   "next": 43,        // sequence number the next event will get
//!   "missed": 0,       // events with seq >= since already dropped from the log
//!   "events": [
//!     {"seq": 41, "ts": "...", "event": "failover", "assoc": 7,
//!      "from": {"src": "10.0.0.1", "dst": "10.0.0.2"}, "to": {"src": "10.0.1.1", "dst": "10.0.1.2"}, ...},
//!     {"seq": 42, ...}
//!   ]
//! }
//! ```
//!
//! ## `GET /api/status`
//! ```json
//! {"version": "0.1.0", "started": "...Z", "interfaces": [
//!   {"name": "eth0", "ifindex": 2, "xdp_mode": "native", "tc": "tcx"}],
//!  "associations": 2, "events": 43, "records": 1234, "records_lost": 0}
//! ```
//!
//! ## `GET /metrics`
//! OpenMetrics when the client asks for it (Prometheus does), Prometheus text
//! format 0.0.4 otherwise; see `super::metrics` for the names.

use std::net::IpAddr;

use serde::Serialize;

use crate::event::{PathRef, Role, rfc3339_micros};
use crate::ppid::Ppid;
use crate::tracker::{AssocState, AssocView, EndpointView, PathState, PathView};

/// Default and largest `limit` of `/api/associations`.
pub const ASSOC_LIMIT_DEFAULT: usize = 1000;
pub const ASSOC_LIMIT_MAX: usize = 100_000;
/// Default `limit` of `/api/events`.
pub const EVENTS_LIMIT_DEFAULT: usize = 1000;

pub fn assoc_state_name(s: AssocState) -> &'static str {
    match s {
        AssocState::CookieWait => "cookie_wait",
        AssocState::CookieEchoed => "cookie_echoed",
        AssocState::Established => "established",
        AssocState::ShutdownPending => "shutdown_pending",
        AssocState::ShutdownAckSent => "shutdown_ack_sent",
        AssocState::Closed => "closed",
    }
}

/// The states of tracked associations (`Closed` is for reports of ended
/// ones only).
pub const ASSOC_STATES: [AssocState; 5] = [
    AssocState::CookieWait,
    AssocState::CookieEchoed,
    AssocState::Established,
    AssocState::ShutdownPending,
    AssocState::ShutdownAckSent,
];

pub fn path_state_name(s: PathState) -> &'static str {
    match s {
        PathState::Unconfirmed => "unconfirmed",
        PathState::Active => "active",
        PathState::Suspect => "suspect",
        PathState::PotentiallyFailed => "potentially_failed",
        PathState::Down => "down",
    }
}

pub const PATH_STATES: [PathState; 5] =
    [PathState::Unconfirmed, PathState::Active, PathState::Suspect, PathState::PotentiallyFailed, PathState::Down];

#[derive(Serialize)]
pub struct AssociationsDoc {
    pub generated: String,
    pub count: usize,
    pub truncated: bool,
    pub associations: Vec<AssociationJson>,
}

/// A value per sending endpoint.
#[derive(Serialize)]
pub struct PerEndpoint<T> {
    pub initiator: T,
    pub responder: T,
}

impl<T: Clone> PerEndpoint<T> {
    fn of(v: &[T; 2]) -> Self {
        PerEndpoint { initiator: v[0].clone(), responder: v[1].clone() }
    }
}

#[derive(Serialize)]
pub struct EndpointJson {
    pub port: u16,
    pub vtag: Option<u32>,
    pub addrs: Vec<IpAddr>,
}

#[derive(Serialize)]
pub struct PathJson {
    pub sender: Role,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub state: &'static str,
    pub primary: bool,
    pub rtt_us: Option<u32>,
    pub unanswered_heartbeats: u8,
    pub data_packets: u32,
    pub data_bytes: u64,
    pub retransmissions: u32,
    pub last_data: Option<String>,
    pub data_chunks: u32,
    pub sacks: u32,
    pub gap_blocks: u32,
    pub duplicate_tsns: u32,
    pub a_rwnd: Option<u32>,
    pub a_rwnd_min: Option<u32>,
    pub heartbeats: u32,
    pub heartbeats_unanswered: u32,
    pub lost_chunks: u32,
    pub rtt_histogram: RttHistogramJson,
    pub degraded: bool,
}

/// A path's heartbeat RTTs (`tracker/rtt.rs`): `counts[i]` samples at most
/// `bounds_us[i]` (and above the bound before), the last above them all.
#[derive(Serialize)]
pub struct RttHistogramJson {
    pub bounds_us: &'static [u32],
    pub counts: [u32; 8],
    pub sum_us: u64,
}

#[derive(Serialize)]
pub struct AssociationJson {
    pub id: u64,
    pub state: &'static str,
    pub handshake_seen: bool,
    pub init_collision: bool,
    pub initiator: EndpointJson,
    pub responder: EndpointJson,
    pub primary: PerEndpoint<Option<PathRef>>,
    pub failovers: PerEndpoint<u16>,
    pub highest_tsn: PerEndpoint<Option<u32>>,
    pub cum_ack: PerEndpoint<Option<u32>>,
    pub requested_primary: PerEndpoint<Option<IpAddr>>,
    pub restart_of: Option<u64>,
    pub ppids: Vec<Ppid>,
    pub last_seen: String,
    pub window_zero: PerEndpoint<bool>,
    pub chunks: std::collections::BTreeMap<String, u64>,
    pub paths: Vec<PathJson>,
}

fn endpoint(e: &EndpointView) -> EndpointJson {
    EndpointJson { port: e.port, vtag: e.vtag, addrs: e.addrs.clone() }
}

fn path(p: &PathView) -> PathJson {
    let q = &p.quality;
    PathJson {
        sender: p.sender,
        src: p.src,
        dst: p.dst,
        state: path_state_name(p.state),
        primary: p.primary,
        rtt_us: p.rtt_us,
        unanswered_heartbeats: p.unanswered_heartbeats,
        data_packets: p.data_packets,
        data_bytes: p.data_bytes,
        retransmissions: p.retransmissions,
        last_data: p.last_data_ns.map(rfc3339_micros),
        data_chunks: q.data_chunks,
        sacks: q.sacks,
        gap_blocks: q.gap_blocks,
        duplicate_tsns: q.dup_tsns,
        a_rwnd: (q.sacks > 0).then_some(q.a_rwnd),
        a_rwnd_min: (q.sacks > 0).then_some(q.a_rwnd_min),
        heartbeats: q.heartbeats,
        heartbeats_unanswered: q.heartbeats_unanswered,
        lost_chunks: q.lost_chunks,
        rtt_histogram: RttHistogramJson {
            bounds_us: &crate::tracker::rtt::BOUNDS_US,
            counts: q.rtt.buckets,
            sum_us: q.rtt.sum_us,
        },
        degraded: p.degraded,
    }
}

impl From<&AssocView> for AssociationJson {
    fn from(a: &AssocView) -> Self {
        AssociationJson {
            id: a.id,
            state: assoc_state_name(a.state),
            handshake_seen: a.handshake_seen,
            init_collision: a.init_collision,
            initiator: endpoint(&a.initiator),
            responder: endpoint(&a.responder),
            primary: PerEndpoint::of(&a.primary),
            failovers: PerEndpoint::of(&a.failovers),
            highest_tsn: PerEndpoint::of(&a.highest_tsn),
            cum_ack: PerEndpoint::of(&a.cum_ack),
            requested_primary: PerEndpoint::of(&a.requested_primary),
            restart_of: a.restart_of,
            ppids: a.ppids.iter().copied().map(Ppid).collect(),
            last_seen: rfc3339_micros(a.last_seen_ns),
            window_zero: PerEndpoint::of(&a.window_zero),
            chunks: a.chunks.iter().map(|(t, n)| (crate::replay::chunk_name(*t).into_owned(), *n)).collect(),
            paths: a.paths.iter().map(path).collect(),
        }
    }
}

#[derive(Serialize)]
pub struct IfaceJson {
    pub name: String,
    pub ifindex: u32,
    pub xdp_mode: String,
    pub tc: &'static str,
}

#[derive(Serialize)]
pub struct StatusDoc {
    pub version: &'static str,
    pub started: String,
    pub interfaces: Vec<IfaceJson>,
    pub associations: usize,
    pub events: u64,
    pub records: u64,
    pub records_lost: u64,
}

/// Parses `a=1&b=2` into pairs (no percent-decoding needed for numbers).
pub fn query_param<'a>(query: Option<&'a str>, key: &str) -> Option<&'a str> {
    query?.split('&').filter_map(|kv| kv.split_once('=')).find(|(k, _)| *k == key).map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_params() {
        assert_eq!(query_param(Some("since=4&limit=2"), "limit"), Some("2"));
        assert_eq!(query_param(Some("since=4"), "limit"), None);
        assert_eq!(query_param(None, "since"), None);
    }
}
