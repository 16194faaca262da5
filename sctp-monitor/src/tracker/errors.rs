//! Why an association ends and what its endpoints complain about: the error
//! causes of an ABORT go with its `association_down`, and an ERROR chunk is
//! an `error_reported` event.
//!
//! A stack answering every packet of a broken peer with an ERROR (an
//! unrecognized chunk type, say) sends thousands a second; the event log
//! must not carry them all. ERROR chunks are coalesced per association by
//! the code of their first cause: at most one `error_reported` per code a
//! second; the ones held back in between are counted, and the next one
//! reported carries the count (`repeated`). Held-back chunks after the last
//! report are in the metrics and the replay report, not in an event. An
//! association keeps at most [`GATE_KEYS`] codes apart; further codes share
//! one entry (reported with their own first cause).

use crate::decode::{ErrorCause, PacketMeta};
use crate::error_cause;
use crate::event::{DownReason, Event, EventKind, Role};

use super::Tracker;
use super::assoc::Assoc;
use super::view::FirstCause;

/// Codes one association keeps apart for coalescing (and the report).
pub(crate) const GATE_KEYS: usize = 8;

/// At most one `error_reported` per association and code in this time.
pub(crate) const ERROR_REPORT_INTERVAL_NS: u64 = 1_000_000_000;

/// The key of an ERROR chunk without causes.
pub(crate) const NO_CAUSE: u32 = 0x1_0000;
/// The key shared by codes past [`GATE_KEYS`].
pub(crate) const OTHER_CODES: u32 = 0x2_0000;

/// ERROR chunks of one association with one first-cause code.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct GateEntry {
    /// The cause code, [`NO_CAUSE`] or [`OTHER_CODES`].
    pub key: u32,
    /// When the last `error_reported` of this key was.
    pub reported_ns: u64,
    /// ERROR chunks held back since.
    pub held: u32,
    /// Every ERROR chunk of this key.
    pub chunks: u64,
}

/// Per-association ERROR coalescing (in `Ext`, so only associations that
/// sent ERRORs pay for it).
#[derive(Debug, Clone, Default)]
pub(crate) struct ErrorGate {
    pub entries: Vec<GateEntry>,
}

impl ErrorGate {
    /// Counts one ERROR chunk whose first cause has `key` at `now`: `Some`
    /// (the number held back before it) when it is to be reported.
    fn pass(&mut self, key: u32, now: u64) -> Option<u32> {
        let i = match self.entries.iter().position(|g| g.key == key) {
            Some(i) => i,
            None if self.entries.len() < GATE_KEYS - 1 || key == OTHER_CODES => {
                // The first of a key is reported, whatever the time.
                self.entries.push(GateEntry { key, reported_ns: now, held: 0, chunks: 1 });
                return Some(0);
            }
            None => return self.pass(OTHER_CODES, now),
        };
        let g = &mut self.entries[i];
        g.chunks += 1;
        if now.saturating_sub(g.reported_ns) < ERROR_REPORT_INTERVAL_NS {
            g.held = g.held.saturating_add(1);
            return None;
        }
        g.reported_ns = now;
        Some(std::mem::take(&mut g.held))
    }
}

impl Tracker {
    /// An ABORT from endpoint `e` ends the association: who sent it and
    /// why go with the `association_down`.
    pub(super) fn on_abort(&mut self, slot: usize, e: usize, causes: &[ErrorCause], now: u64, out: &mut Vec<Event>) {
        if self.slab[slot].id == 0 {
            return;
        }
        for c in causes {
            self.stats.abort_causes[error_cause::label_index(c.code)] += 1;
        }
        let (listed, omitted) = error_cause::entries(causes);
        let at = out.len();
        self.close(slot, DownReason::Abort, now, out);
        if let Some(ev) = out.get_mut(at) {
            ev.endpoint = Some(Role::from_index(e));
            ev.causes = (!listed.is_empty()).then_some(listed);
            ev.causes_omitted = (omitted > 0).then_some(omitted as u32);
        }
    }

    /// An ERROR chunk on path `pi` (its sender is the path's): counted
    /// always, reported as [`ErrorGate`] lets it.
    pub(super) fn on_error(
        &mut self,
        slot: usize,
        pi: usize,
        meta: &PacketMeta,
        causes: &[ErrorCause],
        out: &mut Vec<Event>,
    ) {
        for c in causes {
            self.stats.error_causes[error_cause::label_index(c.code)] += 1;
        }
        let key = causes.first().map_or(NO_CAUSE, |c| c.code as u32);
        let now = meta.ts_ns;
        let gate = self.slab[slot].ext().errors.get_or_insert_with(Box::default);
        let Some(held) = gate.pass(key, now) else {
            self.stats.errors_held_back += 1;
            return;
        };
        let mut ev = self.path_event(slot, pi, EventKind::ErrorReported, now);
        let (listed, omitted) = error_cause::entries(causes);
        ev.causes = (!listed.is_empty()).then_some(listed);
        ev.causes_omitted = (omitted > 0).then_some(omitted as u32);
        ev.repeated = (held > 0).then_some(held);
        out.push(ev);
    }
}

/// ERROR chunks of `a` by first cause, for views.
pub(super) fn error_tally(a: &Assoc) -> Vec<(FirstCause, u64)> {
    let key = |k: u32| match k {
        NO_CAUSE => FirstCause::None,
        OTHER_CODES => FirstCause::OtherCodes,
        c => FirstCause::Code(c as u16),
    };
    let gate = a.ext.as_ref().and_then(|x| x.errors.as_deref());
    gate.map_or_else(Vec::new, |g| g.entries.iter().map(|e| (key(e.key), e.chunks)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_report_per_code_a_second_with_the_count_held_back() {
        let mut g = ErrorGate::default();
        let (t, s) = (1_700_000_000_000_000_000, ERROR_REPORT_INTERVAL_NS);
        assert_eq!(g.pass(6, t + 10), Some(0));
        assert_eq!(g.pass(6, t + 20), None);
        assert_eq!(g.pass(6, t + 30), None);
        // Another code is reported on its own.
        assert_eq!(g.pass(7, t + 40), Some(0));
        assert_eq!(g.pass(6, t + 9 + s), None);
        assert_eq!(g.pass(6, t + 10 + s), Some(3));
        assert_eq!(g.pass(6, t + 11 + s), None);
        // Time going back (copies out of order) holds back.
        assert_eq!(g.pass(6, t), None);
        assert_eq!(g.entries.iter().find(|e| e.key == 6).map(|e| e.chunks), Some(7));
    }

    /// Random bytes as ABORT and ERROR causes (the peer's bytes, maybe an
    /// attacker's): no panic, and every event within its bounds.
    #[test]
    fn random_causes_give_bounded_events() {
        use crate::craft::{self, XorShift, wire::Wire};
        use crate::tracker::Config;
        let mut rng = XorShift::new(0xab0e7);
        let mut listed = 0;
        for round in 0..200u64 {
            let mut w = Wire::new(Config::default());
            w.handshake();
            let mut value = || -> Vec<u8> {
                let n = rng.below(1200);
                let mut v: Vec<u8> = (0..n).map(|_| rng.next_u64() as u8).collect();
                // Now and then well-formed causes with random information.
                if rng.below(2) == 0 {
                    v = (0..rng.below(40))
                        .flat_map(|_| craft::error_cause(rng.next_u64() as u16 % 20, &v[..rng.below(v.len() + 1)]))
                        .collect();
                }
                v
            };
            for i in 0..20 {
                let c = craft::raw_chunk(9, 0, &value());
                if i % 2 == 0 { w.a2b(10 + i, 0, vec![c]) } else { w.b2a(10 + i, 0, vec![c]) }
            }
            w.b2a(100, 0, vec![craft::raw_chunk(6, 0, &value())]);
            assert!(w.ev.iter().any(|e| e.event == EventKind::AssociationDown), "round {round}");
            for e in &w.ev {
                let line = e.to_json_line();
                let causes = e.causes.as_deref().unwrap_or_default();
                listed += causes.len();
                assert!(causes.len() <= error_cause::MAX_LISTED, "{line}");
                for c in causes {
                    let t = c.text.as_deref().unwrap_or("");
                    assert!(t.chars().count() <= error_cause::MAX_TEXT_CHARS + 1, "{line}");
                    assert!(!t.chars().any(char::is_control), "{line}");
                }
                assert!(line.len() < 16 * 1024, "{line}");
            }
        }
        assert!(listed > 1000, "causes decoded and listed: {listed}");
    }

    #[test]
    fn codes_past_the_cap_share_one_entry() {
        let mut g = ErrorGate::default();
        for code in 0..1000u32 {
            g.pass(code, 1_700_000_000_000_000_000);
        }
        assert_eq!(g.entries.len(), GATE_KEYS);
        let other = g.entries.iter().find(|e| e.key == OTHER_CODES).expect("shared entry");
        assert_eq!(other.chunks, 1000 - (GATE_KEYS as u64 - 1));
        assert_eq!(other.held as u64, other.chunks - 1);
    }
}
