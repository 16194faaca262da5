//! Heartbeat round-trip times for the histogram: each HEARTBEAT-ACK matched
//! to its HEARTBEAT by the echoed Heartbeat Info bytes (several may be in
//! flight), on kernel timestamps. The tracker keeps the last RTT per path;
//! this keeps every sample for the metric. PMTU probes (HEARTBEAT bundled
//! with PAD) are left out.

use std::collections::{HashMap, VecDeque, hash_map::Entry};

use crate::decode::HbInfo;
use crate::fasthash::Seeded;

type Key = (u32, u64);

/// HEARTBEATs waiting for their ACK.
#[derive(Debug)]
pub struct HbMatcher {
    /// (ports, info digest) -> monotonic send time.
    pending: HashMap<Key, u64, Seeded>,
    /// (send time, key) in sending order: the timeouts, oldest first, so
    /// that `expire` costs what expires.
    order: VecDeque<(u64, Key)>,
    cap: usize,
    /// Pending entries dropped for the cap.
    pub overflow: u64,
}

fn key(port_a: u16, port_b: u16, info: &HbInfo) -> Key {
    let (lo, hi) = if port_a <= port_b { (port_a, port_b) } else { (port_b, port_a) };
    (((lo as u32) << 16) | hi as u32, info.digest)
}

impl HbMatcher {
    pub fn new(cap: usize) -> HbMatcher {
        HbMatcher {
            pending: HashMap::with_hasher(Seeded::random()),
            order: VecDeque::new(),
            cap: cap.max(1),
            overflow: 0,
        }
    }

    pub fn heartbeat(&mut self, src_port: u16, dst_port: u16, info: &HbInfo, mono_ns: u64) {
        let k = key(src_port, dst_port, info);
        let full = self.pending.len() >= self.cap;
        match self.pending.entry(k) {
            // The same Heartbeat Info again: the timeout runs from the last
            // one (its queue entry moves back when the first one's is due).
            Entry::Occupied(mut o) => *o.get_mut() = mono_ns,
            Entry::Vacant(_) if full => self.overflow += 1,
            Entry::Vacant(v) => {
                v.insert(mono_ns);
                self.order.push_back((mono_ns, k));
            }
        }
    }

    /// The RTT in seconds when the ACK matches a HEARTBEAT.
    pub fn ack(&mut self, src_port: u16, dst_port: u16, info: &HbInfo, mono_ns: u64) -> Option<f64> {
        let sent = self.pending.remove(&key(src_port, dst_port, info))?;
        Some(mono_ns.saturating_sub(sent) as f64 / 1e9)
    }

    /// Drops HEARTBEATs older than `timeout_ns`; returns how many (unanswered).
    pub fn expire(&mut self, now_mono: u64, timeout_ns: u64) -> u64 {
        let mut lost = 0;
        while let Some(&(t, k)) = self.order.front() {
            if now_mono.saturating_sub(t) < timeout_ns {
                break;
            }
            self.order.pop_front();
            match self.pending.get(&k) {
                Some(&sent) if sent == t => {
                    self.pending.remove(&k);
                    lost += 1;
                }
                // Sent again since: wait for that one's timeout.
                Some(&sent) => self.order.push_back((sent, k)),
                // Answered.
                None => {}
            }
        }
        lost
    }

    pub fn len(&self) -> usize {
        self.pending.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_by_info_with_several_in_flight() {
        let i = |b: &[u8]| HbInfo::of(b);
        let mut m = HbMatcher::new(16);
        m.heartbeat(5000, 6000, &i(b"one"), 1_000);
        m.heartbeat(5000, 6000, &i(b"two"), 2_000);
        assert_eq!(m.ack(6000, 5000, &i(b"two"), 2_500), Some(500e-9));
        assert_eq!(m.ack(6000, 5000, &i(b"two"), 2_600), None, "answered once");
        assert_eq!(m.expire(10_000, 5_000), 1, "`one` never answered");
        assert!(m.is_empty());
    }

    #[test]
    fn a_heartbeat_sent_again_times_out_from_the_last_send() {
        let i = HbInfo::of(b"same");
        let mut m = HbMatcher::new(16);
        m.heartbeat(1, 2, &i, 1_000);
        m.heartbeat(1, 2, &i, 4_000);
        assert_eq!(m.expire(6_500, 5_000), 0, "the second is 2.5 us old");
        assert_eq!(m.len(), 1);
        assert_eq!(m.expire(9_000, 5_000), 1);
        assert!(m.is_empty());
    }
}
