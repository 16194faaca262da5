//! The `tracker_sequence` input: a byte script of steps for the tracker.
//!
//! One file, included three times: by the fuzz crate (reader), by
//! `tests/fuzz_regressions.rs` (reader, to replay committed inputs) and by
//! `examples/fuzz_seeds.rs` (writer, to turn the fixtures into seeds).
//!
//! Format (integers little-endian; a step cut short by the end of the input
//! reads zeros, so every byte string is a valid script):
//!
//! ```text
//! header  max_assocs-1 (& 7) | keep_closed (& 7) | hb_down_after-1 (& 7)
//!         | retrans_down_after-1 (& 7) | idle_timeout_s-1
//! step    op (% 4), then
//!   0 packet   dt_ms:i16 src dst sport:u16 dport:u16 vtag:u32 kind:u8
//!              len:u16 chunk-bytes[len]      (chunks go through walk_chunks)
//!   1 tick     dt_ms:u32
//!   2 counters src dst sport:u16 dport:u16 vtag:u32 packets:u32 bytes:u32
//!              retrans:u32 highest_tsn:u32 sack_cum:u32 flags:u8
//!   3 record   dt_ms:i16 len:u16 record-bytes[len]  (ChunkRecord::from_bytes
//!              + decode_record, as the agent's ring reader does)
//! address  version:u8 (odd: IPv6, 16 bytes; even: IPv4, 4 bytes)
//! kind     0: from a capture; 1..=5: a kernel record of RecordKind kind-1
//!          (bit 7: the packet carried a PAD chunk)
//! ```
//!
//! Time starts at [`T0_MS`] and moves by each step's `dt` (it may go back a
//! little, as records from several CPUs can).

#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Start of script time (ms since the epoch, 2023-11-14).
pub const T0_MS: u64 = 1_700_000_000_000;

pub const OP_PACKET: u8 = 0;
pub const OP_TICK: u8 = 1;
pub const OP_COUNTERS: u8 = 2;
pub const OP_RECORD: u8 = 3;

/// Reads a script; past the end every read gives zeros.
pub struct Reader<'a> {
    b: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(b: &'a [u8]) -> Reader<'a> {
        Reader { b }
    }

    pub fn is_empty(&self) -> bool {
        self.b.is_empty()
    }

    pub fn bytes(&mut self, n: usize) -> &'a [u8] {
        let n = n.min(self.b.len());
        let (h, t) = self.b.split_at(n);
        self.b = t;
        h
    }

    fn array<const N: usize>(&mut self) -> [u8; N] {
        let mut a = [0u8; N];
        let s = self.bytes(N);
        a[..s.len()].copy_from_slice(s);
        a
    }

    pub fn u8(&mut self) -> u8 {
        self.array::<1>()[0]
    }

    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes(self.array())
    }

    pub fn i16(&mut self) -> i16 {
        i16::from_le_bytes(self.array())
    }

    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.array())
    }

    pub fn addr(&mut self) -> IpAddr {
        if self.u8() & 1 == 1 {
            IpAddr::V6(Ipv6Addr::from(self.array::<16>()))
        } else {
            IpAddr::V4(Ipv4Addr::from(self.array::<4>()))
        }
    }
}

/// Writes a script (the seed generator).
#[derive(Default)]
pub struct Writer {
    pub buf: Vec<u8>,
}

impl Writer {
    /// A script with these settings: (max_assocs, keep_closed,
    /// hb_down_after, retrans_down_after, idle_timeout_s).
    pub fn new(max_assocs: u8, keep_closed: u8, hb_down: u8, retrans_down: u8, idle_s: u8) -> Writer {
        Writer {
            buf: vec![
                max_assocs.saturating_sub(1),
                keep_closed,
                hb_down.saturating_sub(1),
                retrans_down.saturating_sub(1),
                idle_s.saturating_sub(1),
            ],
        }
    }

    fn addr(&mut self, a: IpAddr) {
        match a {
            IpAddr::V4(a) => {
                self.buf.push(0);
                self.buf.extend_from_slice(&a.octets());
            }
            IpAddr::V6(a) => {
                self.buf.push(1);
                self.buf.extend_from_slice(&a.octets());
            }
        }
    }

    /// A packet: `chunks` are the SCTP chunks as on the wire (after the
    /// common header); at most 65535 bytes are kept.
    #[allow(clippy::too_many_arguments)]
    pub fn packet(
        &mut self,
        dt_ms: i16,
        src: IpAddr,
        dst: IpAddr,
        ports: (u16, u16),
        vtag: u32,
        kind: u8,
        chunks: &[u8],
    ) {
        self.buf.push(OP_PACKET);
        self.buf.extend_from_slice(&dt_ms.to_le_bytes());
        self.addr(src);
        self.addr(dst);
        self.buf.extend_from_slice(&ports.0.to_le_bytes());
        self.buf.extend_from_slice(&ports.1.to_le_bytes());
        self.buf.extend_from_slice(&vtag.to_le_bytes());
        self.buf.push(kind);
        let c = &chunks[..chunks.len().min(u16::MAX as usize)];
        self.buf.extend_from_slice(&(c.len() as u16).to_le_bytes());
        self.buf.extend_from_slice(c);
    }

    pub fn tick(&mut self, dt_ms: u32) {
        self.buf.push(OP_TICK);
        self.buf.extend_from_slice(&dt_ms.to_le_bytes());
    }

    /// Kernel per-path counters: (packets, bytes, retransmissions,
    /// highest TSN, SACK cumulative ack), flags.
    pub fn counters(&mut self, path: (IpAddr, IpAddr), ports: (u16, u16), vtag: u32, c: [u32; 5], flags: u8) {
        self.buf.push(OP_COUNTERS);
        self.addr(path.0);
        self.addr(path.1);
        self.buf.extend_from_slice(&ports.0.to_le_bytes());
        self.buf.extend_from_slice(&ports.1.to_le_bytes());
        self.buf.extend_from_slice(&vtag.to_le_bytes());
        for v in c {
            self.buf.extend_from_slice(&v.to_le_bytes());
        }
        self.buf.push(flags);
    }

    /// A kernel ring record, as the ring holds it.
    pub fn record(&mut self, dt_ms: i16, record: &[u8]) {
        self.buf.push(OP_RECORD);
        self.buf.extend_from_slice(&dt_ms.to_le_bytes());
        let r = &record[..record.len().min(u16::MAX as usize)];
        self.buf.extend_from_slice(&(r.len() as u16).to_le_bytes());
        self.buf.extend_from_slice(r);
    }
}
