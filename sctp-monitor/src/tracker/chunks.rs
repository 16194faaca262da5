//! An association's chunks by type, live as in a capture. The control
//! chunks are counted here as the tracker takes them (the kernel sends each
//! one as a record); DATA (or I-DATA) and SACK are the sums of the paths'
//! counters (`quality.rs`), which the kernel keeps live. What the kernel
//! only counts per interface (ECNE, CWR, AUTH, PAD, unknown types) is not
//! per association live; replay's report has it from every packet.

use sctp_monitor_common::sctp::chunk;

/// The control chunk types counted, in wire order: `ControlChunks::n[i]`
/// counts `TYPES[i]`.
pub const TYPES: [u8; 16] = [
    chunk::INIT,
    chunk::INIT_ACK,
    chunk::HEARTBEAT,
    chunk::HEARTBEAT_ACK,
    chunk::ABORT,
    chunk::SHUTDOWN,
    chunk::SHUTDOWN_ACK,
    chunk::ERROR,
    chunk::COOKIE_ECHO,
    chunk::COOKIE_ACK,
    chunk::SHUTDOWN_COMPLETE,
    chunk::ASCONF_ACK,
    chunk::RECONFIG,
    chunk::FORWARD_TSN,
    chunk::ASCONF,
    chunk::I_FORWARD_TSN,
];

/// Each chunk type's index in `TYPES` (`u8::MAX`: not counted here): one
/// load per chunk, DATA and SACK included, instead of a search.
const INDEX: [u8; 256] = {
    let mut t = [u8::MAX; 256];
    let mut i = 0;
    while i < TYPES.len() {
        t[TYPES[i] as usize] = i as u8;
        i += 1;
    }
    t
};

/// Control chunks of one association by type (saturating). 64 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ControlChunks {
    pub n: [u32; 16],
}

impl ControlChunks {
    /// Counts a chunk of type `t` (other types are not counted here).
    #[inline]
    pub fn count(&mut self, t: u8) {
        if let Some(n) = self.n.get_mut(INDEX[t as usize] as usize) {
            *n = n.saturating_add(1);
        }
    }

    /// The types seen and their counts.
    pub fn seen(&self) -> impl Iterator<Item = (u8, u64)> + '_ {
        TYPES.iter().zip(self.n).filter(|(_, n)| *n > 0).map(|(t, n)| (*t, n as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_types_count_and_others_do_not() {
        let mut c = ControlChunks::default();
        for t in [chunk::HEARTBEAT, chunk::HEARTBEAT, chunk::I_FORWARD_TSN, chunk::DATA, chunk::SACK, 12, 250] {
            c.count(t);
        }
        assert_eq!(c.seen().collect::<Vec<_>>(), [(chunk::HEARTBEAT, 2), (chunk::I_FORWARD_TSN, 1)]);
        let mut full = ControlChunks { n: [u32::MAX; 16] };
        full.count(chunk::INIT);
        assert_eq!(full.n[0], u32::MAX);
    }

    #[test]
    fn every_type_the_kernel_sends_as_a_record_is_counted() {
        use sctp_monitor_common::sctp::{ChunkClass, classify};
        for t in 0..=255u8 {
            let record = matches!(classify(t), ChunkClass::Control | ChunkClass::CookieEcho);
            assert_eq!(record, TYPES.contains(&t), "chunk type {t}");
        }
    }
}
