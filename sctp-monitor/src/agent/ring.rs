//! The ring buffer as an async source of records: tokio `AsyncFd` wakes the
//! agent when the kernel submits, no busy polling.

use aya::maps::{MapData, RingBuf};
use sctp_monitor_common::{ChunkRecord, RecordKind, direction, sctp::chunk};
use tokio::io::unix::AsyncFd;

use crate::kernel::AttachedIface;

pub struct RingSource {
    fd: AsyncFd<RingBuf<MapData>>,
    /// Ring items too short to be a record (should stay 0).
    pub short_items: u64,
}

impl RingSource {
    pub fn new(ring: RingBuf<MapData>) -> anyhow::Result<RingSource> {
        // SAFETY: the RingBuf owns its map fd and keeps it open while the
        // AsyncFd holds it.
        let fd = unsafe { AsyncFd::register_with_interest(ring, tokio::io::Interest::READABLE)? };
        Ok(RingSource { fd, short_items: 0 })
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
                match ChunkRecord::from_bytes(&item) {
                    Some(r) => f(&r),
                    None => self.short_items += 1,
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
