//! The ring buffer as an async source of records: tokio `AsyncFd` wakes the
//! agent when the kernel submits, no busy polling.

use aya::maps::{MapData, RingBuf};
use bytemuck::Zeroable;
use sctp_monitor_common::{ChunkRecord, RecordKind, direction, record::RECORD_HEADER_LEN, sctp::chunk};
use tokio::io::unix::AsyncFd;

use crate::kernel::AttachedIface;

pub struct RingSource {
    fd: AsyncFd<RingBuf<MapData>>,
    /// The record being handed out, reused: only the bytes a ring item
    /// holds are copied in (the header and the chunk bytes in use).
    rec: Box<ChunkRecord>,
    /// Ring items too short to be a record (should stay 0).
    pub short_items: u64,
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

impl RingSource {
    pub fn new(ring: RingBuf<MapData>) -> anyhow::Result<RingSource> {
        // SAFETY: the RingBuf owns its map fd and keeps it open while the
        // AsyncFd holds it.
        let fd = unsafe { AsyncFd::register_with_interest(ring, tokio::io::Interest::READABLE)? };
        Ok(RingSource { fd, rec: Box::new(Zeroable::zeroed()), short_items: 0 })
    }

    /// Waits until records are available and hands up to `max` of them to
    /// `f`, in place (no batch allocation). Returns how many.
    pub async fn drain(&mut self, max: usize, mut f: impl FnMut(&ChunkRecord)) -> anyhow::Result<usize> {
        loop {
            let mut guard = self.fd.readable_mut().await?;
            let ring = guard.get_inner_mut();
            let mut n = 0;
            while n < max {
                let Some(item) = ring.next() else { break };
                if fill(&mut self.rec, &item) {
                    f(&self.rec);
                } else {
                    self.short_items += 1;
                }
                n += 1;
            }
            if n < max {
                // Emptied: wait for the kernel's next wakeup.
                guard.clear_ready();
            }
            if n > 0 {
                return Ok(n);
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use sctp_monitor_common::record::SEGMENT_LEN;

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
