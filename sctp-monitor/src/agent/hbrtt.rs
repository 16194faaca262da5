//! Heartbeat round-trip times for the histogram: each HEARTBEAT-ACK matched
//! to its HEARTBEAT by the echoed Heartbeat Info bytes (several may be in
//! flight), on kernel timestamps. The tracker keeps the last RTT per path;
//! this keeps every sample for the metric. PMTU probes (HEARTBEAT bundled
//! with PAD) are left out.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};

/// HEARTBEATs waiting for their ACK.
#[derive(Debug)]
pub struct HbMatcher {
    /// (ports, info hash) -> monotonic send time.
    pending: HashMap<(u32, u64), u64>,
    cap: usize,
    /// Pending entries dropped for the cap.
    pub overflow: u64,
}

fn key(port_a: u16, port_b: u16, info: &[u8]) -> (u32, u64) {
    let (lo, hi) = if port_a <= port_b { (port_a, port_b) } else { (port_b, port_a) };
    let mut h = DefaultHasher::new();
    info.hash(&mut h);
    (((lo as u32) << 16) | hi as u32, h.finish())
}

impl HbMatcher {
    pub fn new(cap: usize) -> HbMatcher {
        HbMatcher { pending: HashMap::new(), cap: cap.max(1), overflow: 0 }
    }

    pub fn heartbeat(&mut self, src_port: u16, dst_port: u16, info: &[u8], mono_ns: u64) {
        if self.pending.len() >= self.cap {
            self.overflow += 1;
            return;
        }
        self.pending.insert(key(src_port, dst_port, info), mono_ns);
    }

    /// The RTT in seconds when the ACK matches a HEARTBEAT.
    pub fn ack(&mut self, src_port: u16, dst_port: u16, info: &[u8], mono_ns: u64) -> Option<f64> {
        let sent = self.pending.remove(&key(src_port, dst_port, info))?;
        Some(mono_ns.saturating_sub(sent) as f64 / 1e9)
    }

    /// Drops HEARTBEATs older than `timeout_ns`; returns how many (unanswered).
    pub fn expire(&mut self, now_mono: u64, timeout_ns: u64) -> u64 {
        let before = self.pending.len();
        self.pending.retain(|_, sent| now_mono.saturating_sub(*sent) < timeout_ns);
        (before - self.pending.len()) as u64
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
        let mut m = HbMatcher::new(16);
        m.heartbeat(5000, 6000, b"one", 1_000);
        m.heartbeat(5000, 6000, b"two", 2_000);
        assert_eq!(m.ack(6000, 5000, b"two", 2_500), Some(500e-9));
        assert_eq!(m.ack(6000, 5000, b"two", 2_600), None, "answered once");
        assert_eq!(m.expire(10_000, 5_000), 1, "`one` never answered");
        assert!(m.is_empty());
    }
}
