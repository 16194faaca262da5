//! The compact per-association state. Sizes matter (the budget: at most
//! 256 bytes per association with two paths, index included): addresses are
//! 16-byte slots shared by paths through 1-byte indices, times that only
//! feed timeouts are 32-bit milliseconds, rare state sits behind one
//! `Option<Box<_>>`.

use std::net::{IpAddr, Ipv6Addr};

use crate::decode::AsconfRequestKind;

/// An address slot: IPv6, or IPv4 mapped (`::ffff:a.b.c.d`).
pub(crate) type A16 = [u8; 16];

pub(crate) fn a16(a: IpAddr) -> A16 {
    match a {
        // `v.to_ipv6_mapped().octets()`, built as one word rather than
        // byte by byte.
        IpAddr::V4(v) => (0xffff_u128 << 32 | u32::from(v) as u128).to_be_bytes(),
        IpAddr::V6(v) => v.octets(),
    }
}

pub(crate) fn ip(a: &A16) -> IpAddr {
    Ipv6Addr::from(*a).to_canonical()
}

/// Most address slots per association (both endpoints together).
pub(crate) const MAX_ADDRS: usize = 16;
/// "No path".
pub(crate) const NO_PATH: u8 = u8::MAX;

/// Milliseconds, truncated to 32 bits: used only for ages (wrapping).
pub(crate) fn ms(ts_ns: u64) -> u32 {
    (ts_ns / 1_000_000) as u32
}

/// Age in ms of a 32-bit ms stamp at `now_ns` (valid for ages under 24 days).
pub(crate) fn age_ms(now_ns: u64, stamp: u32) -> u64 {
    ms(now_ns).wrapping_sub(stamp) as u64
}

/// Association state as the wire shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssocState {
    /// INIT seen.
    CookieWait,
    /// INIT-ACK seen.
    CookieEchoed,
    /// COOKIE-ACK seen, or picked up mid-flight.
    Established,
    /// SHUTDOWN seen.
    ShutdownPending,
    /// SHUTDOWN-ACK seen.
    ShutdownAckSent,
    /// Ended by the wire (SHUTDOWN-COMPLETE, ABORT, or replaced by a
    /// restart): reports of ended associations only, never a tracked one.
    Closed,
}

/// Path state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathState {
    /// Not yet confirmed by a heartbeat answer or acknowledged DATA.
    Unconfirmed,
    Active,
    /// Errors seen (an unanswered heartbeat, a retransmission of its DATA),
    /// not yet as many as make it down, and the sender still uses it: a
    /// stack without quick failover holds it active, and a stack with it
    /// shows it by moving away (then `PotentiallyFailed`). No event.
    Suspect,
    /// Potentially failed (RFC 7829): the sender moved new DATA away from it
    /// at its first error (a quick failover); not yet as many errors as
    /// make it down.
    PotentiallyFailed,
    /// Inactive: more errors in a row (unanswered heartbeats and T3-rtx
    /// expiries) than `Config::path_max_retrans`, or its link went down.
    Down,
}

pub(crate) mod aflag {
    pub const HANDSHAKE_SEEN: u8 = 1;
    pub const TAG0: u8 = 2;
    pub const TAG1: u8 = 4;
    pub const UP_REPORTED: u8 = 8;
    pub const COLLISION: u8 = 16;
    /// Another association has the same tag and ports for some direction:
    /// lookups check the addresses (`lookup.rs`).
    pub const SHARED_TAG: u8 = 32;
    /// Its DATA is I-DATA (RFC 8260).
    pub const I_DATA: u8 = 64;
}

pub(crate) mod pflag {
    /// Sent by the responder (endpoint 1).
    pub const DIR1: u8 = 1;
    /// A heartbeat on this path was answered at least once.
    pub const HB_ANSWERED: u8 = 2;
    /// A heartbeat answer timeout of this path is queued (`HbTimeouts`).
    pub const HB_QUEUED: u8 = 4;
    /// The path's last liveness heartbeat is counted in
    /// `TrackerStats::heartbeats_unanswered`.
    pub const HB_COUNTED: u8 = 8;
    /// The path came back up (from potentially failed or down) since new
    /// DATA last moved: a move back to it is a failback.
    pub const RECOVERED: u8 = 16;
    /// The path is degraded (`quality.rs`).
    pub const DEGRADED: u8 = 32;
}

pub(crate) mod dflag {
    pub const HAS_TSN: u8 = 1;
    pub const HAS_ACK: u8 = 2;
    pub const STALLED: u8 = 4;
    /// A retransmission of this direction went to another path than the one
    /// its DATA was on (see `DirHistory::away_path`).
    pub const AWAY: u8 = 8;
    /// The receiver of this direction's DATA advertises a zero window
    /// (`quality.rs`).
    pub const WINDOW_ZERO: u8 = 16;
    /// The receiver of this direction's DATA reports gaps (missing TSNs)
    /// in its last SACK seen: a retransmission now is a fast retransmit
    /// (`quality.rs`).
    pub const GAPS: u8 = 32;
}

/// One path of one direction.
#[derive(Debug, Clone)]
pub(crate) struct Path {
    pub src: u8,
    pub dst: u8,
    pub state: PathState,
    pub flags: u8,
    /// Liveness heartbeats sent since the last answer.
    pub hb_unacked: u8,
    /// Retransmission events (packets retransmitting DATA last sent on this
    /// path: a T3-rtx expiry or a fast retransmit) since the path last
    /// showed life. The wire's view of the stack's per-destination error
    /// counter (RFC 9260 §8.2).
    pub rtx_events: u8,
    /// Retransmitted DATA chunks last sent on this path since it last
    /// showed life (saturating).
    pub retrans_no_progress: u8,
    /// The interface its last packet crossed (`Tracker::ifaces` slot + 1;
    /// 0: none known).
    pub iface: u8,
    pub data_packets: u32,
    pub retransmissions: u32,
    /// Last heartbeat RTT (µs), 0 = none.
    pub rtt_us: u32,
    /// When the last liveness heartbeat was sent (ms stamp).
    pub last_hb_ms: u32,
    /// DATA user bytes.
    pub data_bytes: u64,
    /// Last DATA (ns), 0 = none.
    pub last_data_ns: u64,
    /// How the path carries DATA and SACKs (`quality.rs`).
    pub q: super::quality::PathQuality,
}

impl Path {
    pub fn new(src: u8, dst: u8, dir: usize) -> Path {
        Path {
            src,
            dst,
            state: PathState::Unconfirmed,
            flags: if dir == 1 { pflag::DIR1 } else { 0 },
            hb_unacked: 0,
            rtx_events: 0,
            retrans_no_progress: 0,
            iface: 0,
            data_packets: 0,
            retransmissions: 0,
            rtt_us: 0,
            last_hb_ms: 0,
            data_bytes: 0,
            last_data_ns: 0,
            q: super::quality::PathQuality::NEW,
        }
    }

    pub fn dir(&self) -> usize {
        (self.flags & pflag::DIR1 != 0) as usize
    }

    /// The path showed life: no heartbeat of it is unanswered.
    pub fn clear_hb_streak(&mut self) {
        self.hb_unacked = 0;
        self.flags &= !pflag::HB_COUNTED;
    }
}

/// DATA sent by one endpoint.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Dir {
    pub highest_tsn: u32,
    /// The peer's last cumulative TSN ack for this DATA.
    pub cum_ack: u32,
    /// When `cum_ack` last advanced, or DATA became outstanding (ms stamp).
    pub progress_ms: u32,
    /// Path index of the current primary.
    pub primary: u8,
    pub flags: u8,
    pub failovers: u16,
}

impl Dir {
    pub const NEW: Dir = Dir { highest_tsn: 0, cum_ack: 0, progress_ms: 0, primary: NO_PATH, flags: 0, failovers: 0 };

    /// DATA sent and not yet cumulatively acknowledged.
    pub fn outstanding(&self) -> bool {
        self.flags & dflag::HAS_TSN != 0
            && (self.flags & dflag::HAS_ACK == 0 || sctp_monitor_common::sctp::tsn_gt(self.highest_tsn, self.cum_ack))
    }
}

/// An ASCONF waiting for its ACK.
#[derive(Debug, Clone)]
pub(crate) struct PendingAsconf {
    pub sender: u8,
    pub serial: u32,
    /// Source address of the ASCONF packet (wildcards refer to it).
    pub src: A16,
    pub requests: Vec<(AsconfRequestKind, u32, A16)>,
}

/// Where a direction's DATA went: before its last primary change (new DATA
/// only goes to the primary), and the last range retransmitted elsewhere,
/// so that a retransmission is charged to the path its DATA was last sent
/// on. Allocated on the first primary move or
/// the first retransmission away from its path: rare, hence in `Ext`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DirHistory {
    /// First TSN sent new on the current primary (valid with `switched`).
    pub switch_tsn: u32,
    /// The last range of TSNs retransmitted on another path than the one
    /// they were on, and that path (valid with `dflag::AWAY`): the path
    /// whose timeout a later retransmission of them shows.
    pub away_low: u32,
    pub away_high: u32,
    pub away_path: u8,
    /// The last retransmission packet: its path, TSNs and time (with the
    /// packets that continued it: one timeout's batch).
    pub rtx_path: u8,
    pub rtx_low: u32,
    pub rtx_high: u32,
    pub rtx_ns: u64,
    /// The primary before the last change.
    pub prev_primary: u8,
    pub switched: bool,
    /// The path the last failover left (`NO_PATH` when none, or after the
    /// failback to it): a move back to it once it works is a failback.
    pub failed_from: u8,
    /// A move of new DATA to this path waits for the next new DATA
    /// (`NO_PATH`: none): its packet also carried retransmissions, and a
    /// stack may bundle new DATA with a retransmission to an alternate path
    /// without moving.
    pub unsettled_to: u8,
    /// The unsettled move's first new TSN and time.
    pub unsettled_tsn: u32,
    pub unsettled_ns: u64,
    /// When the primary showed its first error since it last showed life
    /// (0: it has none): a quick failover (RFC 7829) moves right after it.
    pub first_error_ns: u64,
    /// When the receiver's window closed (ms stamp; with
    /// `dflag::WINDOW_ZERO`).
    pub window_zero_ms: u32,
}

impl DirHistory {
    pub const NEW: DirHistory = DirHistory {
        switch_tsn: 0,
        away_low: 0,
        away_high: 0,
        away_path: NO_PATH,
        rtx_path: NO_PATH,
        rtx_low: 0,
        rtx_high: 0,
        rtx_ns: 0,
        prev_primary: NO_PATH,
        switched: false,
        failed_from: NO_PATH,
        unsettled_to: NO_PATH,
        unsettled_tsn: 0,
        unsettled_ns: 0,
        first_error_ns: 0,
        window_zero_ms: 0,
    };
}

impl Default for DirHistory {
    fn default() -> DirHistory {
        DirHistory::NEW
    }
}

/// Rarely used state, boxed.
#[derive(Debug, Clone, Default)]
pub(crate) struct Ext {
    /// Per sending endpoint.
    pub hist: [DirHistory; 2],
    pub pending_asconf: Vec<PendingAsconf>,
    /// The association this one restarts (id), reported when it comes up.
    pub restart_of: Option<u64>,
    /// Set Primary requested by endpoint i (address of endpoint i), confirmed.
    pub requested_primary: [Option<A16>; 2],
    /// PPIDs seen without a bit of their own (`crate::ppid::OTHER`), at
    /// most `crate::ppid::MAX_OTHER`.
    pub other_ppids: Vec<u32>,
    /// The request of endpoint i is not yet followed by a move of the
    /// peer's new DATA to it.
    pub primary_request_open: [bool; 2],
    /// Bit i: address slot i was only ever a packet's address, never
    /// announced (INIT, INIT-ACK, ASCONF Add IP), in an association whose
    /// handshake was seen: not one of the endpoint's addresses (RFC 9260
    /// 5.1.2), so the peer's stack treats packets from or to it as out of
    /// the blue (an ABORT to it ends nothing), and an ASCONF Add of it is
    /// an addition. Such a source shows up when a stack sends from an
    /// address it has not added yet (usrsctp with the lab's source rewrite).
    pub stray: u16,
    /// ERROR chunks by first cause, for coalescing (`errors.rs`); boxed:
    /// few associations send any.
    pub errors: Option<Box<super::errors::ErrorGate>>,
}

/// One association.
#[derive(Debug, Clone)]
pub(crate) struct Assoc {
    pub id: u32,
    /// `tags[e]`: the tag packets sent *to* endpoint `e` carry (its Initiate
    /// Tag). Endpoint 0 is the initiator.
    pub tags: [u32; 2],
    pub ports: [u16; 2],
    pub state: AssocState,
    pub flags: u8,
    /// Bit i: address slot i belongs to endpoint 1.
    pub owner: u16,
    /// Bit i: address slot i was removed (ASCONF Delete IP).
    pub gone: u16,
    /// PPIDs of the DATA seen (`crate::ppid::bit`; it fits in what was
    /// padding).
    pub ppids: u16,
    pub last_seen_ns: u64,
    pub addrs: Box<[A16]>,
    pub paths: Box<[Path]>,
    pub dirs: [Dir; 2],
    /// Control chunks by type (`chunks.rs`).
    pub chunks: super::chunks::ControlChunks,
    pub ext: Option<Box<Ext>>,
}

impl Assoc {
    /// A new association: endpoint 0 at `a0:p0`, endpoint 1 at `a1:p1`.
    pub fn new(id: u32, a0: A16, p0: u16, a1: A16, p1: u16, now: u64) -> Assoc {
        Assoc {
            id,
            tags: [0, 0],
            ports: [p0, p1],
            state: AssocState::Established,
            flags: 0,
            owner: 0b10,
            gone: 0,
            ppids: 0,
            last_seen_ns: now,
            addrs: vec![a0, a1].into_boxed_slice(),
            paths: Box::new([]),
            dirs: [Dir::NEW; 2],
            chunks: super::chunks::ControlChunks::default(),
            ext: None,
        }
    }

    pub fn has_tag(&self, e: usize) -> bool {
        self.flags & (if e == 0 { aflag::TAG0 } else { aflag::TAG1 }) != 0
    }

    pub fn set_tag(&mut self, e: usize, tag: u32) {
        self.tags[e] = tag;
        self.flags |= if e == 0 { aflag::TAG0 } else { aflag::TAG1 };
    }

    pub fn ext(&mut self) -> &mut Ext {
        self.ext.get_or_insert_with(Box::default)
    }

    fn owned_by(&self, i: usize, e: usize) -> bool {
        ((self.owner >> i) & 1) as usize == e
    }

    /// Slot of `a` in endpoint `e`'s set (including removed ones).
    pub fn find_addr(&self, e: usize, a: &A16) -> Option<usize> {
        self.addrs.iter().enumerate().position(|(i, x)| x == a && self.owned_by(i, e))
    }

    /// Whether `a` is a current address of endpoint `e`.
    pub fn has_addr(&self, e: usize, a: &A16) -> bool {
        self.find_addr(e, a).is_some_and(|i| self.gone & (1 << i) == 0)
    }

    /// Slot of `a` for endpoint `e`, adding it when new (`None` when the
    /// slots are full). Returns (slot, newly added or re-added).
    /// An address only seen on packets before (`Ext::stray`) counts as
    /// newly added.
    pub fn add_addr(&mut self, e: usize, a: A16) -> Option<(usize, bool)> {
        if let Some(i) = self.find_addr(e, &a) {
            let stray = self.ext.as_mut().is_some_and(|x| {
                let was = x.stray & (1 << i) != 0;
                x.stray &= !(1 << i);
                was
            });
            let was_gone = self.gone & (1 << i) != 0 || stray;
            self.gone &= !(1 << i);
            return Some((i, was_gone));
        }
        if self.addrs.len() >= MAX_ADDRS {
            return None;
        }
        let mut v = std::mem::take(&mut self.addrs).into_vec();
        v.push(a);
        let i = v.len() - 1;
        self.addrs = v.into_boxed_slice();
        if e == 1 {
            self.owner |= 1 << i;
        }
        Some((i, true))
    }

    /// Marks `a` removed from endpoint `e`'s set; true when it was present.
    pub fn remove_addr(&mut self, e: usize, a: &A16) -> bool {
        match self.find_addr(e, a) {
            Some(i) if self.gone & (1 << i) == 0 => {
                self.gone |= 1 << i;
                true
            }
            _ => false,
        }
    }

    /// Current addresses of endpoint `e`, in slot order. Stray ones
    /// (`Ext::stray`) are listed: a capture cut short (small snap length)
    /// loses the INIT's address parameters, and traffic is then the only
    /// source of the set.
    pub fn addrs_of(&self, e: usize) -> impl Iterator<Item = &A16> + '_ {
        self.addrs
            .iter()
            .enumerate()
            .filter(move |(i, _)| self.owned_by(*i, e) && self.gone & (1 << i) == 0)
            .map(|(_, a)| a)
    }

    /// Whether `a` is an announced, current address of endpoint `e`: false
    /// for one only seen on packets (`Ext::stray`) and for one never seen.
    pub fn announced(&self, e: usize, a: &A16) -> bool {
        let stray = self.ext.as_ref().map_or(0, |x| x.stray);
        self.find_addr(e, a).is_some_and(|i| (self.gone | stray) & (1 << i) == 0)
    }

    /// Slot of `a` for endpoint `e` (a removed one stays removed), added
    /// when never seen.
    fn slot_for(&mut self, e: usize, a: A16) -> Option<usize> {
        match self.find_addr(e, &a) {
            Some(i) => Some(i),
            None => {
                let i = self.add_addr(e, a).map(|(i, _)| i)?;
                if self.flags & aflag::HANDSHAKE_SEEN != 0 {
                    self.ext().stray |= 1 << i;
                }
                Some(i)
            }
        }
    }

    /// Index of the path `src -> dst` sent by endpoint `e`, created when new.
    #[inline]
    pub fn path(&mut self, e: usize, src: A16, dst: A16) -> Option<usize> {
        // A known path, by its addresses: a path of `e` has a source slot of
        // `e` and a destination slot of the peer (only `new_path` makes
        // paths), and an endpoint never holds an address twice (`add_addr`),
        // so this is the path `new_path`'s slot lookups would find.
        match self
            .paths
            .iter()
            .position(|p| p.dir() == e && self.addrs[p.src as usize] == src && self.addrs[p.dst as usize] == dst)
        {
            Some(i) => Some(i),
            None => self.new_path(e, src, dst),
        }
    }

    /// [`Assoc::path`] for a path not known yet (or one whose addresses
    /// are not known yet).
    #[inline(never)]
    fn new_path(&mut self, e: usize, src: A16, dst: A16) -> Option<usize> {
        let s = self.slot_for(e, src)?;
        let d = self.slot_for(1 - e, dst)?;
        let (s, d) = (s as u8, d as u8);
        if let Some(i) = self.paths.iter().position(|p| p.src == s && p.dst == d && p.dir() == e) {
            return Some(i);
        }
        if self.paths.len() >= NO_PATH as usize {
            return None;
        }
        let mut v = std::mem::take(&mut self.paths).into_vec();
        v.push(Path::new(s, d, e));
        self.paths = v.into_boxed_slice();
        Some(self.paths.len() - 1)
    }

    /// Heap bytes owned by this association.
    pub fn heap_bytes(&self) -> usize {
        self.addrs.len() * size_of::<A16>()
            + self.paths.len() * size_of::<Path>()
            + self.ext.as_ref().map_or(0, |x| {
                size_of::<Ext>()
                    + x.pending_asconf.capacity() * size_of::<PendingAsconf>()
                    + x.errors.as_ref().map_or(0, |g| {
                        size_of::<super::errors::ErrorGate>()
                            + g.entries.capacity() * size_of::<super::errors::GateEntry>()
                    })
                    + x.pending_asconf.iter().map(|p| p.requests.capacity() * 24).sum::<usize>()
                    + x.other_ppids.capacity() * 4
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_sizes() {
        // Path: 96 + the heartbeat RTT histogram (40, `rtt.rs`); Assoc:
        // 104 + the control chunks by type (64, `chunks.rs`).
        assert!(size_of::<Path>() <= 136, "Path is {} bytes", size_of::<Path>());
        assert!(size_of::<Assoc>() <= 168, "Assoc is {} bytes", size_of::<Assoc>());
    }

    #[test]
    fn a16_maps_ipv4_as_std_does() {
        for v in ["0.0.0.0", "10.1.2.3", "255.255.255.255", "192.0.2.200"] {
            let v: std::net::Ipv4Addr = v.parse().expect("address");
            assert_eq!(a16(v.into()), v.to_ipv6_mapped().octets());
            assert_eq!(ip(&a16(v.into())), IpAddr::from(v));
        }
        let v6: Ipv6Addr = "fd00::1".parse().expect("address");
        assert_eq!(a16(v6.into()), v6.octets());
    }

    #[test]
    fn same_address_on_both_endpoints_stays_apart() {
        let lo = a16("127.0.0.1".parse().expect("a"));
        let mut a = Assoc::new(1, lo, 1, lo, 2, 0);
        assert_eq!(a.find_addr(0, &lo), Some(0));
        assert_eq!(a.find_addr(1, &lo), Some(1));
        let p = a.path(0, lo, lo).expect("path");
        let q = a.path(1, lo, lo).expect("path");
        assert_ne!(p, q);
        assert_eq!(a.addrs.len(), 2);
    }

    #[test]
    fn path_by_addresses_is_the_path_by_slots() {
        // Random address changes and path lookups on one association; each
        // lookup is checked against `new_path`'s slot lookups on a copy.
        let pool: Vec<A16> = (1..=6u8).map(|i| a16(IpAddr::from([10, 0, 0, i]))).collect();
        let mut rng = crate::craft::XorShift::new(99);
        for round in 0..200 {
            let mut a = Assoc::new(1, pool[0], 1, pool[1], 2, 0);
            for _ in 0..60 {
                let e = rng.below(2);
                let (x, y) = (pool[rng.below(pool.len())], pool[rng.below(pool.len())]);
                match rng.below(4) {
                    0 => {
                        a.add_addr(e, x);
                    }
                    1 => {
                        a.remove_addr(e, &x);
                    }
                    _ => {
                        let mut by_slots = a.clone();
                        let want = by_slots.new_path(e, x, y);
                        assert_eq!(a.path(e, x, y), want, "round {round}: path {e} {x:?} -> {y:?}");
                        assert_eq!((&a.addrs, a.owner, a.gone), (&by_slots.addrs, by_slots.owner, by_slots.gone));
                        assert_eq!(a.paths.len(), by_slots.paths.len());
                    }
                }
            }
            assert!(a.paths.len() > 1, "round {round}: paths were made");
        }
    }

    #[test]
    fn removed_address_can_come_back() {
        let x = a16("10.0.0.1".parse().expect("a"));
        let y = a16("10.0.0.9".parse().expect("a"));
        let mut a = Assoc::new(1, x, 1, a16("10.0.0.2".parse().expect("a")), 2, 0);
        assert_eq!(a.add_addr(0, y), Some((2, true)));
        assert!(a.remove_addr(0, &y));
        assert!(!a.has_addr(0, &y));
        assert_eq!(a.addrs_of(0).count(), 1);
        assert_eq!(a.add_addr(0, y), Some((2, true)));
        assert!(a.has_addr(0, &y));
    }
}
