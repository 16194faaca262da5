//! The association tracker: pure state, events in, state and events out.
//!
//! Input is a decoded packet ([`PacketMeta`] + [`Chunk`]s, from a capture or a
//! kernel record), per-path kernel counters ([`Tracker::observe_path_stats`])
//! and the passage of time ([`Tracker::tick`]); time only ever comes from
//! those calls. Output is [`Event`]s appended to a caller's `Vec` and the
//! read-only views of [`view`].
//!
//! Rules (the protocol facts they rest on: `docs/protocol.md`), one file each:
//! - identity: an association is its two tags + ports (`table`, `lookup`);
//!   every address pair of a multihomed association maps to it;
//! - `handshake`: INIT/INIT-ACK address sets, COOKIE-ECHO/ACK, mid-flight
//!   pick-up, restart, INIT collision, ABORT (T flag), SHUTDOWN;
//! - `asconf`: changes apply on the matching ASCONF-ACK only;
//! - `heartbeat`: RTT by echoed Heartbeat Info, unanswered counts, PMTU
//!   probes, path up/down;
//! - `data`: counters, primary per direction, failover, retransmissions,
//!   stalled;
//! - bounded: `Config::max_assocs`, longest idle evicted first.

mod asconf;
mod assoc;
pub mod chunks;
mod closed;
mod data;
mod deadline;
mod errors;
mod handshake;
mod heartbeat;
mod inflight;
mod link;
mod live;
mod lookup;
mod merge;
mod prefetch;
mod quality;
pub mod rtt;
mod table;
pub mod view;

use std::collections::VecDeque;

use crate::decode::{Chunk, PacketMeta};
use crate::event::{DownReason, Endpoint, Event, EventKind, PathRef, Role};
use assoc::{A16, Assoc, ip};
pub use assoc::{AssocState, PathState};
pub use prefetch::{BATCH as PREFETCH_BATCH, Hint};
pub use view::{AssocView, Census, EndpointView, FirstCause, PathQuality, PathView};

/// Tracker settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Most associations tracked; beyond, the longest idle are evicted.
    /// At most 16,777,216 (2^24) whatever is asked.
    pub max_assocs: usize,
    /// An association without packets for this long is ended (`timeout`).
    pub idle_timeout_ns: u64,
    /// A path is down after this many errors in a row: unanswered
    /// heartbeats and retransmission timeouts of its DATA together, as a
    /// stack counts them (the stack's Path.Max.Retrans + 1).
    pub hb_down_after: u8,
    /// A heartbeat not answered within this time counts as unanswered.
    pub hb_answer_timeout_ns: u64,
    /// A path is down after this many retransmission events of its DATA
    /// alone (packets retransmitting it) without it showing life.
    pub retrans_down_after: u16,
    /// "stalled" after this long without cumulative ack progress while DATA
    /// is outstanding and heartbeats are answered.
    pub stall_after_ns: u64,
    /// Ended associations kept for reports (replay); 0 keeps none.
    pub keep_closed: usize,
    /// A failover this soon after the old path's first error, at the first
    /// new DATA after it, is a quick failover (RFC 7829): the old path is
    /// potentially failed, not down. Longer than a stack needs to send its
    /// next message, shorter than a second retransmission timeout.
    pub quick_failover_ns: u64,
    /// Keep every matched liveness heartbeat's RTT for
    /// [`Tracker::take_rtt_samples`] (the agent's histogram).
    pub rtt_samples: bool,
    /// Path quality is judged over windows of this length (`path_degraded`;
    /// 0: never).
    pub degraded_window_ns: u64,
    /// A path is degraded when, over a window, this share of the DATA
    /// chunks sent on it had to be sent again ...
    pub degraded_loss_ratio: f64,
    /// ... or this share of its heartbeats went unanswered; no longer once
    /// both are below half of that over a window.
    pub degraded_hb_loss_ratio: f64,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            max_assocs: 1 << 20,
            idle_timeout_ns: 300 * 1_000_000_000,
            // Path.Max.Retrans (RFC 9260 §16).
            hb_down_after: 5,
            hb_answer_timeout_ns: 3_000_000_000,
            retrans_down_after: 5,
            stall_after_ns: 10_000_000_000,
            keep_closed: 0,
            // Linux moves at its next new DATA after the first error (tens
            // of ms at signalling rates); usrsctp, without quick failover,
            // about half a second or more after it (RTO 100-400 ms).
            quick_failover_ns: 300_000_000,
            rtt_samples: false,
            degraded_window_ns: 30 * 1_000_000_000,
            degraded_loss_ratio: 0.05,
            degraded_hb_loss_ratio: 0.2,
        }
    }
}

/// Counters of what the tracker did or could not do.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TrackerStats {
    pub packets: u64,
    pub associations_created: u64,
    /// Associations dropped for the cap.
    pub evictions: u64,
    /// Associations ended by idle timeout.
    pub expired: u64,
    /// Packets that matched no association and started none (vtag 0
    /// without INIT, ABORT for an unknown association, ...).
    pub unmatched_packets: u64,
    /// HEARTBEAT-ACKs whose Heartbeat Info matched no HEARTBEAT seen.
    pub unmatched_heartbeat_acks: u64,
    /// Addresses beyond the per-association slots.
    pub address_overflow: u64,
    /// ASCONF-ACKs with no pending ASCONF of that serial.
    pub unmatched_asconf_acks: u64,
    /// INIT collisions seen.
    pub init_collisions: u64,
    /// New DATA bundled with a retransmission to another path while the
    /// next new DATA stayed on the primary: not a move.
    pub bundled_excursions: u64,
    /// ABORTs sent to an address the receiver never announced, in an
    /// association whose handshake was seen: out of the blue for the
    /// receiver's stack (RFC 9260 8.4), which drops them; not an end.
    pub stray_aborts: u64,
    /// Liveness heartbeats found unanswered: by their answer timeout, or
    /// when the path's next heartbeat went out first (the rule that makes a
    /// path suspect and down).
    pub heartbeats_unanswered: u64,
    /// Packets with the tag of an association the wire closed lately
    /// (`closed.rs`): matched to nothing, starting nothing (also counted
    /// in `unmatched_packets`).
    pub after_close_packets: u64,
    /// Associations found to share a tag and ports with another
    /// (told apart by address).
    pub shared_tags: u64,
    /// Error causes of the ABORTs that ended an association, by
    /// `crate::error_cause::label_index`.
    pub abort_causes: [u64; crate::error_cause::LABELS],
    /// Error causes of every ERROR chunk of an association (those held
    /// back from the event log too), by `crate::error_cause::label_index`.
    pub error_causes: [u64; crate::error_cause::LABELS],
    /// ERROR chunks held back from the event log (`errors.rs`).
    pub errors_held_back: u64,
}

/// The tracker. See the module documentation.
#[derive(Debug)]
pub struct Tracker {
    cfg: Config,
    slab: Vec<Assoc>,
    free: Vec<u32>,
    count: usize,
    /// (tag, sender port, receiver port) -> slot << 1 | sender.
    tags: table::SlotTable,
    /// Canonical first-address pair + ports -> slot (restart, collision,
    /// mid-flight reverse direction).
    ends: table::SlotTable,
    /// (association id, Heartbeat Info digest) -> the heartbeat.
    hb: inflight::InFlight,
    /// When `hb` is next cleared of heartbeats too old to be answered.
    hb_purge_ns: u64,
    /// Interfaces paths cross (`link.rs`), by slot.
    ifaces: Vec<u32>,
    /// Liveness heartbeat RTTs (ns) not yet taken, with `Config::rtt_samples`.
    rtt_samples: Vec<u64>,
    /// When to look at each association again (idle expiry, stalled).
    due: deadline::Deadlines,
    /// Liveness heartbeats by answer timeout.
    hb_due: deadline::HbTimeouts,
    /// `tick`'s list of slots due later in the same millisecond.
    due_again: Vec<(usize, u64)>,
    /// `tick`'s batch of due heartbeat timeouts.
    hb_due_batch: Vec<(usize, usize)>,
    /// Bit per slot: some path of the association has a liveness
    /// heartbeat unanswered. A due timeout of an association whose bit is
    /// clear (nearly all: answers come within milliseconds) is dropped
    /// without reading the association (a cache miss at 100,000 of them);
    /// the bitmap itself is 12.5 KB at 100,000 slots.
    hb_waiting: Vec<u64>,
    seed: u64,
    next_id: u32,
    stats: TrackerStats,
    closed: VecDeque<AssocView>,
    /// Tags of associations the wire closed lately (`closed.rs`).
    recently_closed: closed::RecentlyClosed,
    now_ns: u64,
    /// The path quality window the last tick was in (`quality.rs`).
    quality_epoch: u64,
}

impl Tracker {
    pub fn new(cfg: Config) -> Tracker {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(0x5c79);
        let seed = h.finish();
        Tracker {
            cfg,
            slab: Vec::new(),
            free: Vec::new(),
            count: 0,
            tags: table::SlotTable::default(),
            ends: table::SlotTable::default(),
            hb: inflight::InFlight::new(seed.rotate_left(29) ^ 0x4842),
            hb_purge_ns: 0,
            ifaces: Vec::new(),
            rtt_samples: Vec::new(),
            due: deadline::Deadlines::default(),
            hb_due: deadline::HbTimeouts::default(),
            due_again: Vec::new(),
            hb_due_batch: Vec::new(),
            hb_waiting: Vec::new(),
            seed,
            next_id: 1,
            stats: TrackerStats::default(),
            closed: VecDeque::new(),
            recently_closed: closed::RecentlyClosed::default(),
            now_ns: 0,
            quality_epoch: 0,
        }
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    pub fn stats(&self) -> TrackerStats {
        self.stats
    }

    /// The liveness heartbeat RTTs (ns) matched since the last call, with
    /// `Config::rtt_samples` (none otherwise). PMTU probes are left out.
    pub fn take_rtt_samples(&mut self) -> std::vec::Drain<'_, u64> {
        self.rtt_samples.drain(..)
    }

    /// Associations currently tracked.
    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Feeds one decoded packet; events go to `out`.
    pub fn process(&mut self, meta: &PacketMeta, chunks: &[Chunk], out: &mut Vec<Event>) {
        self.process_located(meta, chunks, out);
    }

    /// [`Tracker::process`], also saying which association (id) and which of
    /// its endpoints sent the packet; `None` when it matched none.
    pub fn process_located(
        &mut self,
        meta: &PacketMeta,
        chunks: &[Chunk],
        out: &mut Vec<Event>,
    ) -> Option<(u64, Role)> {
        self.stats.packets += 1;
        self.now_ns = self.now_ns.max(meta.ts_ns);
        // INIT travels with tag 0 and alone.
        if let Some(Chunk::Init(init)) = chunks.first() {
            let slot = self.on_init(meta, init, out)?;
            self.slab[slot].chunks.count(sctp_monitor_common::sctp::chunk::INIT);
            return Some((self.slab[slot].id as u64, Role::Initiator));
        }
        let Some((slot, e)) = self.find_or_create(meta, chunks, out) else {
            self.stats.unmatched_packets += 1;
            return None;
        };
        let located = Some((self.slab[slot].id as u64, Role::from_index(e)));
        for c in chunks {
            self.slab[slot].chunks.count(c.chunk_type());
        }
        let now = meta.ts_ns;
        self.slab[slot].last_seen_ns = now;
        let src = assoc::a16(meta.src);
        let dst = assoc::a16(meta.dst);
        let known = self.slab[slot].paths.len();
        let Some(mut pi) = self.slab[slot].path(e, src, dst) else {
            self.stats.address_overflow += 1;
            return located;
        };
        if self.slab[slot].paths.len() != known {
            self.merge_reverse(slot, e, src, dst, now, out);
            pi = self.slab[slot].path(e, src, dst).unwrap_or(pi);
        }
        if meta.record.is_some() {
            let iface = self.iface_slot(meta.interface);
            self.slab[slot].paths[pi].iface = iface;
        }
        self.apply(slot, e, pi, meta, chunks, out);
        // A rule that is now due sooner (DATA outstanding, heartbeats
        // answered on its path) brings the association's next look closer.
        if self.slab[slot].id != 0 {
            self.rearm(slot, now);
        }
        located
    }

    /// The chunks of one packet sent by endpoint `e` of `slot` on path `pi`.
    fn apply(&mut self, slot: usize, e: usize, pi: usize, meta: &PacketMeta, chunks: &[Chunk], out: &mut Vec<Event>) {
        let mut data_in_packet = data::DataInPacket::NEW;
        for c in chunks {
            // An ABORT or SHUTDOWN-COMPLETE frees the slot: stop there.
            if self.slab.get(slot).is_none_or(|a| a.id == 0) {
                return;
            }
            self.apply_chunk(slot, e, pi, meta, c, &mut data_in_packet, out);
        }
        if data_in_packet.seen && self.slab.get(slot).is_some_and(|a| a.id != 0) {
            self.data_packet(slot, e, pi, meta, &data_in_packet, out);
        }
    }

    /// One chunk of a packet (`apply`). Out of line: inlined in the loop,
    /// its handlers' loop-invariant set-up ran before every packet's first
    /// chunk, and most packets (every kernel record) have one.
    #[inline(never)]
    #[allow(clippy::too_many_arguments)]
    fn apply_chunk(
        &mut self,
        slot: usize,
        e: usize,
        pi: usize,
        meta: &PacketMeta,
        c: &Chunk,
        data_in_packet: &mut data::DataInPacket,
        out: &mut Vec<Event>,
    ) {
        let now = meta.ts_ns;
        match c {
            Chunk::Data(d) => self.on_data(slot, e, pi, meta, d, data_in_packet, out),
            Chunk::Sack(s) => {
                self.on_cum_ack(slot, e, s.cum_tsn, now, out);
                if self.slab[slot].id != 0 {
                    self.on_sack(slot, e, pi, meta, s, out);
                }
            }
            Chunk::Shutdown { cum_tsn } => {
                self.on_cum_ack(slot, e, *cum_tsn, now, out);
                self.on_shutdown(slot);
            }
            Chunk::Heartbeat { info } => self.on_heartbeat(slot, pi, meta, info, out),
            Chunk::HeartbeatAck { info } => self.on_heartbeat_ack(slot, e, meta, info, out),
            c => self.apply_rare(slot, e, pi, meta, c, out),
        }
    }

    /// The chunks an association sends a few times in its life: out of
    /// line, so that `apply` stays small for the frequent ones (inlined,
    /// these made its every call set up for all of them).
    #[inline(never)]
    fn apply_rare(&mut self, slot: usize, e: usize, pi: usize, meta: &PacketMeta, c: &Chunk, out: &mut Vec<Event>) {
        let now = meta.ts_ns;
        match c {
            Chunk::InitAck(init) => self.on_init_ack(slot, e, meta, init),
            Chunk::CookieEcho { .. } => self.on_cookie_echo(slot),
            Chunk::CookieAck => self.on_cookie_ack(slot, now, out),
            Chunk::Abort { .. } if self.stray_destination(slot, e, meta) => self.stats.stray_aborts += 1,
            Chunk::Abort { causes, .. } => self.on_abort(slot, e, causes, now, out),
            Chunk::Error { causes } => self.on_error(slot, pi, meta, causes, out),
            Chunk::ShutdownAck => self.on_shutdown_ack(slot),
            Chunk::ShutdownComplete { .. } => self.close(slot, DownReason::Shutdown, now, out),
            Chunk::Asconf(a) => self.on_asconf(slot, e, meta, a),
            Chunk::AsconfAck(a) => self.on_asconf_ack(slot, e, a, now, out),
            _ => {}
        }
    }

    /// Lets time pass: idle expiry, heartbeat timeouts, stalled detection.
    /// Costs what is due (see `deadline`), not what is tracked.
    pub fn tick(&mut self, now: u64, out: &mut Vec<Event>) {
        self.now_ns = self.now_ns.max(now);
        let mut due = std::mem::take(&mut self.hb_due_batch);
        loop {
            // Up to a batch of due timeouts, their associations' lines
            // prefetched together (`prefetch.rs`).
            due.clear();
            let mut popped = false;
            while due.len() < prefetch::BATCH {
                match self.hb_due.pop_due(now) {
                    Some(d) => {
                        popped = true;
                        if self.hb_waiting(d.0) {
                            due.push(d);
                        }
                    }
                    None => break,
                }
            }
            if !popped {
                break;
            }
            self.prefetch_timeouts(&due);
            for &(slot, pi) in &due {
                // The slot may have been freed or reused since: the check
                // only acts on what the association's state says. One that
                // expires now ends below without path events first.
                if self
                    .slab
                    .get(slot)
                    .is_some_and(|a| a.id != 0 && now.saturating_sub(a.last_seen_ns) < self.cfg.idle_timeout_ns)
                {
                    self.hb_timeout(slot, pi, now, out);
                }
            }
        }
        self.hb_due_batch = due;
        let mut again = std::mem::take(&mut self.due_again);
        while let Some(slot) = self.due.pop_due(now) {
            if self.slab[slot].id == 0 {
                continue;
            }
            if self.expire_if_idle(slot, now, out) {
                continue;
            }
            self.check_heartbeats(slot, now, out);
            self.check_stalled(slot, now, out);
            let next = self.next_due(slot, now);
            if self.due.is_due(next, now) {
                // Due later within this millisecond: back in the heap after
                // this tick's pops, for the next tick to look again.
                again.push((slot, next));
            } else {
                self.due.set(slot, next);
            }
        }
        for (slot, next) in again.drain(..) {
            self.due.set(slot, next);
        }
        self.due_again = again;
        self.quality_windows(now, out);
        if now >= self.hb_purge_ns {
            let keep = self.hb_keep_ns();
            self.hb.retain(|h| now.saturating_sub(h.sent_ns) < keep);
            self.hb_purge_ns = now.saturating_add(keep / 4);
        }
    }

    /// How long a heartbeat can still be matched to its answer.
    fn hb_keep_ns(&self) -> u64 {
        self.cfg.hb_answer_timeout_ns.saturating_mul(20).max(120_000_000_000)
    }

    /// The next time a timed rule could act on `slot`: idle expiry, or a
    /// direction's stall.
    fn next_due(&self, slot: usize, now: u64) -> u64 {
        let a = &self.slab[slot];
        let idle = a.last_seen_ns.saturating_add(self.cfg.idle_timeout_ns);
        [0, 1].into_iter().filter_map(|e| self.stall_due(slot, e, now)).fold(idle, u64::min)
    }

    /// Brings `slot`'s next look closer when a packet made a rule due
    /// sooner: a stall, or a path made active with heartbeats unanswered.
    fn rearm(&mut self, slot: usize, now: u64) {
        for e in 0..2 {
            if let Some(t) = self.stall_due(slot, e, now) {
                self.due.lower(slot, t);
            }
        }
        if self.hb_state_pending(slot, now) {
            self.due.lower(slot, now - now % 1_000_000);
        }
    }

    /// Associations currently tracked, as read-only views.
    pub fn associations(&self) -> impl Iterator<Item = AssocView> + '_ {
        self.slab.iter().filter(|a| a.id != 0).map(|a| view::assoc_view(a, None))
    }

    /// Counts by state over every association (cheap: no views built).
    pub fn census(&self) -> Census {
        view::census(self.slab.iter().filter(|a| a.id != 0))
    }

    /// Views of the `n` associations with the lowest ids, in id order
    /// (per-association metric series, capped).
    pub fn lowest_ids(&self, n: usize) -> Vec<AssocView> {
        let mut top: std::collections::BinaryHeap<(u32, usize)> = Default::default();
        for (slot, a) in self.slab.iter().enumerate() {
            if a.id == 0 || n == 0 {
                continue;
            }
            if top.len() < n {
                top.push((a.id, slot));
            } else if top.peek().is_some_and(|&(max, _)| a.id < max) {
                top.pop();
                top.push((a.id, slot));
            }
        }
        let mut v: Vec<AssocView> = top.into_iter().map(|(_, slot)| view::assoc_view(&self.slab[slot], None)).collect();
        v.sort_by_key(|a| a.id);
        v
    }

    /// Ended associations kept for reports (`Config::keep_closed`).
    pub fn closed(&self) -> impl Iterator<Item = &AssocView> + '_ {
        self.closed.iter()
    }

    /// Approximate memory in bytes: slab, indexes, per-association heap,
    /// heartbeats in flight.
    pub fn memory_bytes(&self) -> usize {
        self.slab.capacity() * size_of::<Assoc>()
            + self.free.capacity() * 4
            + self.tags.heap_bytes()
            + self.ends.heap_bytes()
            + self.hb.heap_bytes()
            + self.due.heap_bytes()
            + self.hb_due.heap_bytes()
            + self.recently_closed.heap_bytes()
            + self.slab.iter().map(Assoc::heap_bytes).sum::<usize>()
    }

    // ------------------------------------------------------------ helpers

    fn endpoint(a: &Assoc, e: usize) -> Endpoint {
        Endpoint { port: a.ports[e], vtag: a.tags[e], addrs: a.addrs_of(e).map(ip).collect() }
    }

    fn assoc_event(&self, slot: usize, kind: EventKind, now: u64) -> Event {
        let a = &self.slab[slot];
        let mut ev = Event::new(now, kind, a.id as u64);
        ev.initiator = Some(Self::endpoint(a, 0));
        ev.responder = Some(Self::endpoint(a, 1));
        ev.handshake_seen = Some(a.flags & assoc::aflag::HANDSHAKE_SEEN != 0);
        if a.ppids != 0 {
            ev.ppids = Some(view::ppids_of(a).into_iter().map(crate::ppid::Ppid).collect());
        }
        ev
    }

    fn path_ref(a: &Assoc, pi: usize) -> PathRef {
        let p = &a.paths[pi];
        PathRef { src: ip(&a.addrs[p.src as usize]), dst: ip(&a.addrs[p.dst as usize]) }
    }

    fn path_event(&self, slot: usize, pi: usize, kind: EventKind, now: u64) -> Event {
        let a = &self.slab[slot];
        let mut ev = Event::new(now, kind, a.id as u64);
        ev.path = Some(Self::path_ref(a, pi));
        ev.endpoint = Some(Role::from_index(a.paths[pi].dir()));
        ev
    }

    /// Ends an association: event, optional snapshot, index cleanup.
    /// Whether a packet of endpoint `e` goes to an address its receiver
    /// never announced, the handshake having been seen (`Ext::stray`).
    fn stray_destination(&self, slot: usize, e: usize, meta: &PacketMeta) -> bool {
        let a = &self.slab[slot];
        a.flags & assoc::aflag::HANDSHAKE_SEEN != 0 && !a.announced(1 - e, &assoc::a16(meta.dst))
    }

    fn close(&mut self, slot: usize, reason: DownReason, now: u64, out: &mut Vec<Event>) {
        if self.slab[slot].id == 0 {
            return;
        }
        let mut ev = self.assoc_event(slot, EventKind::AssociationDown, now);
        ev.reason = Some(reason);
        out.push(ev);
        if matches!(reason, DownReason::Shutdown | DownReason::Abort | DownReason::Restart) {
            self.remember_closed(slot, now);
        }
        if self.cfg.keep_closed > 0 {
            if self.closed.len() >= self.cfg.keep_closed {
                self.closed.pop_front();
            }
            self.closed.push_back(view::assoc_view(&self.slab[slot], Some(reason)));
        }
        self.free_slot(slot);
    }

    /// Frees an association's slot without an event (`close` reports one
    /// first; an association that never came up goes silently). Its
    /// heartbeats in flight stay in `hb` until they age out: ids are not
    /// reused, so they match nothing.
    pub(super) fn free_slot(&mut self, slot: usize) {
        self.set_hb_waiting(slot, false);
        self.unindex(slot);
        self.due.remove(slot);
        let a = &mut self.slab[slot];
        a.id = 0;
        a.addrs = Box::new([]);
        a.paths = Box::new([]);
        a.ext = None;
        a.flags = 0;
        self.free.push(slot as u32);
        self.count -= 1;
    }

    /// A fresh slot for `a`, evicting the longest idle first when full.
    fn alloc(&mut self, mut a: Assoc, out: &mut Vec<Event>) -> usize {
        if self.count >= self.max_assocs() {
            self.evict(out);
        }
        a.id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1).max(1);
        self.count += 1;
        self.stats.associations_created += 1;
        let idle_due = a.last_seen_ns.saturating_add(self.cfg.idle_timeout_ns);
        let slot = match self.free.pop() {
            Some(s) => {
                self.slab[s as usize] = a;
                s as usize
            }
            None => {
                self.slab.push(a);
                self.slab.len() - 1
            }
        };
        self.due.set(slot, idle_due);
        slot
    }

    /// Ends the association when it has been idle for `idle_timeout_ns`
    /// (a shutdown that never completed counts as a shutdown).
    fn expire_if_idle(&mut self, slot: usize, now: u64, out: &mut Vec<Event>) -> bool {
        let idle = now.saturating_sub(self.slab[slot].last_seen_ns);
        if idle < self.cfg.idle_timeout_ns {
            return false;
        }
        let reason = match self.slab[slot].state {
            AssocState::ShutdownPending | AssocState::ShutdownAckSent => DownReason::Shutdown,
            _ => DownReason::Timeout,
        };
        self.stats.expired += 1;
        self.close(slot, reason, now, out);
        true
    }

    fn max_assocs(&self) -> usize {
        self.cfg.max_assocs.clamp(1, deadline::MAX_SLOTS)
    }

    /// Evicts a batch (1/128 of the cap, at least one) per scan, so a full
    /// tracker does not scan per packet: one-sided associations first (a
    /// flood of INITs or of stray packets with random tags), then half-open
    /// ones, then established ones, the longest idle first within each.
    /// Every eviction is counted (`TrackerStats::evictions`).
    fn evict(&mut self, out: &mut Vec<Event>) {
        let batch = (self.max_assocs() / 128).max(1);
        let mut idle: Vec<(u8, u64, usize)> = self
            .slab
            .iter()
            .enumerate()
            .filter(|(_, a)| a.id != 0)
            .map(|(i, a)| (eviction_tier(a), a.last_seen_ns, i))
            .collect();
        let n = batch.min(idle.len());
        if n == 0 {
            return;
        }
        idle.select_nth_unstable(n - 1);
        let now = self.now_ns;
        for &(_, _, slot) in &idle[..n] {
            self.stats.evictions += 1;
            if self.slab[slot].flags & assoc::aflag::UP_REPORTED == 0 {
                // Never reported up, so no `association_down` either: an
                // INIT flood must not turn into an event flood.
                self.free_slot(slot);
            } else {
                self.close(slot, DownReason::Evicted, now, out);
            }
        }
    }
}

/// Eviction order: 0 = one side seen only (an INIT without its INIT-ACK, a
/// pick-up from one direction), 1 = both tags seen but not established,
/// 2 = established with both tags (both directions have spoken).
fn eviction_tier(a: &Assoc) -> u8 {
    let both = a.has_tag(0) && a.has_tag(1);
    let up = !matches!(a.state, AssocState::CookieWait | AssocState::CookieEchoed);
    both as u8 + (both && up) as u8
}

/// Source/destination addresses of a packet as slots.
fn addr_pair(meta: &PacketMeta) -> (A16, A16) {
    (assoc::a16(meta.src), assoc::a16(meta.dst))
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tick_tests;
