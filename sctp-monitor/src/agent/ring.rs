//! The ring buffer as an async source of records, no busy polling. The
//! kernel wakes the agent (tokio `AsyncFd`) for records that need a prompt
//! answer; heartbeats do not wake it (see the eBPF `emit::send`): they are
//! drained every `interval`, which adapts to the rate so that a drain finds
//! between [`BACKLOG_LOW`] and [`BACKLOG_HIGH`] bytes, within
//! [`MIN_INTERVAL`]..[`MAX_INTERVAL`]. 100,000 associations' heartbeats
//! (26,667 records/s) then cost 20 wakeups a second instead of one per
//! record; a flood is drained every millisecond.

use std::time::Duration;

use aya::maps::{MapData, RingBuf};
use bytemuck::Zeroable;
use sctp_monitor_common::{ChunkRecord, RecordKind, direction, record::RECORD_HEADER_LEN, sctp::chunk};
use tokio::io::unix::AsyncFd;

use crate::kernel::AttachedIface;

/// Longest wait for records that do not wake the agent.
pub const MAX_INTERVAL: Duration = Duration::from_millis(50);
/// Shortest (under a flood of them).
pub const MIN_INTERVAL: Duration = Duration::from_millis(1);
/// A drain that finds more than this waits half as long next time...
pub const BACKLOG_HIGH: u64 = 256 << 10;
/// ... and one that finds less than this twice as long.
pub const BACKLOG_LOW: u64 = 64 << 10;

pub struct RingSource {
    fd: AsyncFd<RingBuf<MapData>>,
    /// The record being handed out, reused: only the bytes a ring item
    /// holds are copied in (the header and the chunk bytes in use).
    rec: Box<ChunkRecord>,
    /// Ring items too short to be a record (should stay 0).
    pub short_items: u64,
    /// Current wait for records that do not wake the agent.
    interval: Duration,
    /// Ring bytes taken since the ring was last found empty.
    backlog: u64,
    /// The last drain stopped at its budget: the next one goes on at once.
    more: bool,
}

/// Copies a ring item into `rec`: the header and the bytes in use. Bytes
/// the header says are in use but the item lacks are zeroed; bytes past
/// them are left from earlier records (nothing reads them: see
/// `ChunkRecord::segments`). False when the item is shorter than a header.
pub fn fill(rec: &mut ChunkRecord, item: &[u8]) -> bool {
    if item.len() < RECORD_HEADER_LEN {
        return false;
    }
    let size = size_of::<ChunkRecord>();
    let n = item.len().min(size);
    bytemuck::bytes_of_mut(rec)[..n].copy_from_slice(&item[..n]);
    let used = ChunkRecord::wire_len(rec.seg1_len, rec.seg2_len).min(size);
    if n < used {
        bytemuck::bytes_of_mut(rec)[n..used].fill(0);
    }
    true
}

/// Up to `max` records from the ring to `f`: (records, ring bytes).
fn take(
    ring: &mut RingBuf<MapData>,
    rec: &mut ChunkRecord,
    short_items: &mut u64,
    max: usize,
    f: &mut impl FnMut(&ChunkRecord),
) -> (usize, u64) {
    let (mut n, mut bytes) = (0, 0u64);
    while n < max {
        let Some(item) = ring.next() else { break };
        // The ring's own 8-byte header, records padded to 8.
        bytes += (item.len() as u64 + 8).next_multiple_of(8);
        if fill(rec, &item) {
            f(rec);
        } else {
            *short_items += 1;
        }
        n += 1;
    }
    (n, bytes)
}

impl RingSource {
    pub fn new(ring: RingBuf<MapData>) -> anyhow::Result<RingSource> {
        // SAFETY: the RingBuf owns its map fd and keeps it open while the
        // AsyncFd holds it.
        let fd = unsafe { AsyncFd::register_with_interest(ring, tokio::io::Interest::READABLE)? };
        Ok(RingSource {
            fd,
            rec: Box::new(Zeroable::zeroed()),
            short_items: 0,
            interval: MAX_INTERVAL,
            backlog: 0,
            more: false,
        })
    }

    /// Waits until records are available (a wakeup, or `interval` passed)
    /// and hands up to `max` of them to `f`, in place (no batch
    /// allocation). Returns how many. Cancel-safe: records not handed out
    /// stay in the ring.
    pub async fn drain(&mut self, max: usize, mut f: impl FnMut(&ChunkRecord)) -> anyhow::Result<usize> {
        loop {
            let (n, bytes) = if self.more {
                take(self.fd.get_mut(), &mut self.rec, &mut self.short_items, max, &mut f)
            } else {
                match tokio::time::timeout(self.interval, self.fd.readable_mut()).await {
                    Ok(guard) => {
                        let mut guard = guard?;
                        let r = take(guard.get_inner_mut(), &mut self.rec, &mut self.short_items, max, &mut f);
                        if r.0 < max {
                            // Emptied: wait for the kernel's next wakeup (one
                            // that came meanwhile keeps the readiness set).
                            guard.clear_ready();
                        }
                        r
                    }
                    Err(_) => take(self.fd.get_mut(), &mut self.rec, &mut self.short_items, max, &mut f),
                }
            };
            self.more = n == max;
            self.backlog += bytes;
            if !self.more {
                self.interval = next_interval(self.interval, self.backlog);
                self.backlog = 0;
            }
            if n > 0 {
                return Ok(n);
            }
        }
    }

    /// The current wait for records that do not wake the agent.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Waits until records are available and returns all of them.
    pub async fn next_batch(&mut self) -> anyhow::Result<Vec<ChunkRecord>> {
        let mut out = Vec::new();
        self.drain(usize::MAX, |r| out.push(*r)).await?;
        Ok(out)
    }
}

/// One line per record, for `--print-records`.
pub fn describe(r: &ChunkRecord, ifaces: &[AttachedIface]) -> String {
    let iface = ifaces.iter().find(|a| a.ifindex == r.ifindex).map(|a| a.name.as_str()).unwrap_or("?");
    let dir = if r.direction == direction::INGRESS { "in " } else { "out" };
    let name = chunk::name(r.chunk_type).map(str::to_string).unwrap_or_else(|| format!("type{}", r.chunk_type));
    let kind = match r.kind() {
        Some(RecordKind::Control) | Some(RecordKind::CookieEcho) => "",
        Some(RecordKind::DataFirst) => " first-on-path",
        Some(RecordKind::DataPathChange) => " new-path",
        Some(RecordKind::DataResumed) => " resumed",
        None => " ?",
    };
    let (src, dst) = match r.addrs() {
        Some((s, d)) => (s.to_string(), d.to_string()),
        None => ("?".into(), "?".into()),
    };
    format!(
        "{iface} {dir} {src}:{} -> {dst}:{} vtag={:#010x} {name}{kind} len={}",
        r.src_port,
        r.dst_port,
        r.vtag,
        r.chunk_len
    )
}

/// The next wait, from the bytes the ring held since it was last empty.
pub fn next_interval(interval: Duration, backlog: u64) -> Duration {
    if backlog > BACKLOG_HIGH {
        (interval / 2).max(MIN_INTERVAL)
    } else if backlog < BACKLOG_LOW {
        (interval * 2).min(MAX_INTERVAL)
    } else {
        interval
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sctp_monitor_common::record::SEGMENT_LEN;

    #[test]
    fn the_wait_follows_the_rate() {
        // 100,000 associations' heartbeats: ~3 MB/s, 150 KB per 50 ms.
        assert_eq!(next_interval(MAX_INTERVAL, 150_000), MAX_INTERVAL);
        // A flood: down to the floor, and back up when it ends.
        let mut i = MAX_INTERVAL;
        for _ in 0..10 {
            i = next_interval(i, 8 << 20);
        }
        assert_eq!(i, MIN_INTERVAL);
        for _ in 0..10 {
            i = next_interval(i, 1000);
        }
        assert_eq!(i, MAX_INTERVAL);
    }

    #[test]
    fn fill_copies_what_the_item_holds_and_zeroes_what_it_lacks() {
        let mut a: ChunkRecord = Zeroable::zeroed();
        a.vtag = 9;
        a.seg1_len = 8;
        a.data[..8].copy_from_slice(&[1; 8]);
        let mut rec: ChunkRecord = Zeroable::zeroed();
        rec.data.fill(0xee); // left from an earlier record
        let item = &bytemuck::bytes_of(&a)[..ChunkRecord::wire_len(8, 0)];
        assert!(fill(&mut rec, item));
        assert_eq!((rec.vtag, rec.segments()), (9, (&[1u8; 8][..], &[][..])));
        // An item cut short of what its header says: the rest reads as zero.
        a.seg1_len = 4;
        a.seg2_len = 4;
        let item = &bytemuck::bytes_of(&a)[..RECORD_HEADER_LEN + 2];
        assert!(fill(&mut rec, item));
        assert_eq!(rec.segments(), (&[1, 1, 0, 0][..], &[0u8; 4][..]));
        assert_eq!(rec.data[SEGMENT_LEN + 4], 0xee, "past the bytes in use: not read, not touched");
        assert!(!fill(&mut rec, &item[..RECORD_HEADER_LEN - 1]));
    }
}
