//! Read-only, owned views of tracker state for reports and the API.

use std::net::IpAddr;

use crate::event::{DownReason, PathRef, Role};

pub use super::quality::PathQuality;

use super::assoc::{Assoc, AssocState, PathState, aflag, dflag, ip};

/// One endpoint: port, the tag packets to it carry (`None` until seen),
/// current address set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointView {
    pub port: u16,
    pub vtag: Option<u32>,
    pub addrs: Vec<IpAddr>,
}

/// One path of one direction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathView {
    /// The endpoint sending on this path.
    pub sender: Role,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub state: PathState,
    /// Last heartbeat round-trip time.
    pub rtt_us: Option<u32>,
    pub unanswered_heartbeats: u8,
    pub data_packets: u32,
    pub data_bytes: u64,
    pub retransmissions: u32,
    pub last_data_ns: Option<u64>,
    /// The current primary of its direction.
    pub primary: bool,
    /// DATA chunks, SACK contents, receiver window and heartbeats.
    pub quality: PathQuality,
    /// `path_degraded` reported, not yet `path_degraded_end`.
    pub degraded: bool,
}

/// One association.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssocView {
    pub id: u64,
    pub state: AssocState,
    /// False when picked up mid-flight (roles then mean "first sender").
    pub handshake_seen: bool,
    /// An INIT collision was seen.
    pub init_collision: bool,
    pub initiator: EndpointView,
    pub responder: EndpointView,
    pub paths: Vec<PathView>,
    /// Primary path per sending endpoint (index 0: initiator's DATA).
    pub primary: [Option<PathRef>; 2],
    /// Failovers per sending endpoint.
    pub failovers: [u16; 2],
    /// Highest TSN sent and last cumulative ack, per sending endpoint.
    pub highest_tsn: [Option<u32>; 2],
    pub cum_ack: [Option<u32>; 2],
    /// Address requested as primary by each endpoint (ASCONF Set Primary).
    pub requested_primary: [Option<IpAddr>; 2],
    pub restart_of: Option<u64>,
    /// PPIDs of the DATA seen (the upper-layer protocols), ascending.
    pub ppids: Vec<u32>,
    pub last_seen_ns: u64,
    /// Why it ended (closed associations only).
    pub ended: Option<DownReason>,
    /// ERROR chunks sent, by their first cause, in the order first seen.
    pub errors: Vec<(FirstCause, u64)>,
    /// Per sending endpoint: its peer advertises a zero receive window.
    pub window_zero: [bool; 2],
    /// Chunks by type number, ascending, those seen only (`chunks.rs`):
    /// the control chunks, and DATA (or I-DATA) and SACK summed over the
    /// paths.
    pub chunks: Vec<(u8, u64)>,
}

/// What ERROR chunks are counted by (`AssocView::errors`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FirstCause {
    Code(u16),
    /// An ERROR without causes.
    None,
    /// Codes past the few an association keeps apart, together.
    OtherCodes,
}

pub(super) fn assoc_view(a: &Assoc, ended: Option<DownReason>) -> AssocView {
    let ep = |e: usize| EndpointView {
        port: a.ports[e],
        vtag: a.has_tag(e).then_some(a.tags[e]),
        addrs: a.addrs_of(e).map(ip).collect(),
    };
    let path_ref = |pi: usize| {
        a.paths.get(pi).map(|p| PathRef { src: ip(&a.addrs[p.src as usize]), dst: ip(&a.addrs[p.dst as usize]) })
    };
    let paths = a
        .paths
        .iter()
        .enumerate()
        .map(|(i, p)| PathView {
            sender: Role::from_index(p.dir()),
            src: ip(&a.addrs[p.src as usize]),
            dst: ip(&a.addrs[p.dst as usize]),
            state: p.state,
            rtt_us: (p.rtt_us != 0).then_some(p.rtt_us),
            unanswered_heartbeats: p.hb_unacked,
            data_packets: p.data_packets,
            data_bytes: p.data_bytes,
            retransmissions: p.retransmissions,
            last_data_ns: (p.last_data_ns != 0).then_some(p.last_data_ns),
            primary: a.dirs[p.dir()].primary as usize == i,
            quality: p.q,
            degraded: p.flags & super::assoc::pflag::DEGRADED != 0,
        })
        .collect();
    let x = a.ext.as_deref();
    AssocView {
        id: a.id as u64,
        // The wire closed it; after a timeout or an eviction the last
        // state seen stays.
        state: match ended {
            Some(DownReason::Shutdown | DownReason::Abort | DownReason::Restart) => AssocState::Closed,
            _ => a.state,
        },
        handshake_seen: a.flags & aflag::HANDSHAKE_SEEN != 0,
        init_collision: a.flags & aflag::COLLISION != 0,
        initiator: ep(0),
        responder: ep(1),
        paths,
        primary: [path_ref(a.dirs[0].primary as usize), path_ref(a.dirs[1].primary as usize)],
        failovers: [a.dirs[0].failovers, a.dirs[1].failovers],
        highest_tsn: [0, 1].map(|e| (a.dirs[e].flags & dflag::HAS_TSN != 0).then_some(a.dirs[e].highest_tsn)),
        cum_ack: [0, 1].map(|e| (a.dirs[e].flags & dflag::HAS_ACK != 0).then_some(a.dirs[e].cum_ack)),
        requested_primary: [0, 1].map(|e| x.and_then(|x| x.requested_primary[e]).map(|a| ip(&a))),
        restart_of: x.and_then(|x| x.restart_of),
        ppids: ppids_of(a),
        last_seen_ns: a.last_seen_ns,
        ended,
        errors: super::errors::error_tally(a),
        window_zero: [0, 1].map(|e| a.dirs[e].flags & dflag::WINDOW_ZERO != 0),
        chunks: chunks_of(a),
    }
}

/// The association's chunks by type (`AssocView::chunks`).
fn chunks_of(a: &Assoc) -> Vec<(u8, u64)> {
    use sctp_monitor_common::sctp::chunk;
    let (data, sacks) =
        a.paths.iter().fold((0u64, 0u64), |(d, s), p| (d + p.q.data_chunks as u64, s + p.q.sacks as u64));
    let data_type = if a.flags & aflag::I_DATA != 0 { chunk::I_DATA } else { chunk::DATA };
    let mut v: Vec<(u8, u64)> = a.chunks.seen().collect();
    v.extend([(data_type, data), (chunk::SACK, sacks)].into_iter().filter(|(_, n)| *n > 0));
    v.sort_unstable();
    v
}

/// The association's PPIDs, ascending.
pub(super) fn ppids_of(a: &Assoc) -> Vec<u32> {
    let mut v: Vec<u32> = crate::ppid::from_mask(a.ppids).collect();
    if a.ppids & crate::ppid::OTHER != 0 {
        v.extend(a.ext.as_deref().map_or(&[][..], |x| &x.other_ppids[..]));
        v.sort_unstable();
    }
    v
}

/// Counts over every tracked association, for gauges: no view is built.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Census {
    /// Associations by state, indexed by `AssocState as usize` (a tracked
    /// association is never `Closed`).
    pub associations: [u64; 6],
    /// Paths by state, indexed by `PathState as usize`.
    pub paths: [u64; 5],
    /// Consecutive unanswered heartbeats, summed over all paths.
    pub unanswered_heartbeats: u64,
    /// Receivers advertising a zero window now (one per association and
    /// direction of DATA).
    pub windows_zero: u64,
    /// Associations whose DATA carried each PPID, indexed by bit of
    /// `crate::ppid::bit` (bit 15: any PPID without a bit of its own).
    pub by_ppid_bit: [u64; 16],
}

impl Census {
    pub fn associations_in(&self, s: AssocState) -> u64 {
        self.associations[s as usize]
    }

    pub fn paths_in(&self, s: PathState) -> u64 {
        self.paths[s as usize]
    }
}

pub(super) fn census<'a>(assocs: impl Iterator<Item = &'a Assoc>) -> Census {
    let mut c = Census::default();
    for a in assocs {
        c.associations[a.state as usize] += 1;
        c.windows_zero += a.dirs.iter().filter(|d| d.flags & dflag::WINDOW_ZERO != 0).count() as u64;
        let mut m = a.ppids;
        while m != 0 {
            c.by_ppid_bit[m.trailing_zeros() as usize] += 1;
            m &= m - 1;
        }
        for p in a.paths.iter() {
            c.paths[p.state as usize] += 1;
            c.unanswered_heartbeats += p.hb_unacked as u64;
        }
    }
    c
}
