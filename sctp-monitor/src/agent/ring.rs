//! The ring buffer as an async source of records, no busy polling. The
//! kernel wakes the agent (tokio `AsyncFd`) for records that need a prompt
//! answer; heartbeats do not wake it (see the eBPF `emit::send`): they are
//! drained every `interval`, which adapts to the rate so that a drain finds
//! between [`BACKLOG_LOW`] and [`BACKLOG_HIGH`] bytes, within
//! [`MIN_INTERVAL`]..[`MAX_INTERVAL`]. 100,000 associations' heartbeats
//! (26,667 records/s, ~3 MB/s) then cost 5 wakeups a second instead of one
//! per record (a wakeup costs this VM's agent ~0.15 ms of CPU: 20 a second
//! were a quarter of its idle cost); a flood is drained every millisecond.
//! HEARTBEAT, HEARTBEAT-ACK and retransmission records wait: nothing
//! reports from them sooner than a heartbeat answer timeout or the tracker's
//! tick, and their times are the kernel's. The agent takes everything
//! waiting ([`RingSource::drain_ready`]) before it reads the per-path
//! counters and before each tick, so that nothing waiting is judged after
//! what happened later (an ack in the counters, a timeout on the tick).
//!
//! The ring's memory is read directly ([`RingReader`]), as aya's `RingBuf`
//! does, except that the consumer position is published once per drain
//! rather than once per record: the kernel reads that position on every
//! record it reserves, so publishing it per record moved its cache line
//! between the cores at every record. Records are handed out where the
//! kernel wrote them, in groups ([`RingSource::drain_batches`]): nothing is
//! copied on the way to the decoder.

use std::os::fd::{AsFd as _, AsRawFd as _};
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering, fence};
use std::time::Duration;

use aya::maps::{MapData, RingBuf};
use bytemuck::Zeroable;
use sctp_monitor_common::{ChunkRecord, RecordKind, direction, record::RECORD_HEADER_LEN, sctp::chunk};
use tokio::io::unix::AsyncFd;

use crate::kernel::AttachedIface;

/// Longest wait for records that do not wake the agent.
pub const MAX_INTERVAL: Duration = Duration::from_millis(200);
/// Shortest (under a flood of them).
pub const MIN_INTERVAL: Duration = Duration::from_millis(1);
/// A drain that finds more than this waits half as long next time...
pub const BACKLOG_HIGH: u64 = 1 << 20;
/// ... and one that finds less than this twice as long.
pub const BACKLOG_LOW: u64 = 256 << 10;

pub struct RingSource {
    fd: AsyncFd<RingReader>,
    /// Ring items too short to be a record (should stay 0).
    pub short_items: u64,
    /// Current wait for records that do not wake the agent.
    interval: Duration,
    /// When the records that do not wake the agent are drained next. Kept
    /// across calls: a `drain` dropped for another `select!` branch (an API
    /// query, a poll) must not start its wait over, or frequent queries
    /// would keep those records in the ring for good.
    due: Option<tokio::time::Instant>,
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

/// Ring items handed out together ([`RingSource::drain_batches`]).
pub const GROUP: usize = 32;

/// Up to `max` records from the ring to `f`, in groups of up to [`GROUP`]
/// read in place: (records, ring bytes). Items too short to be a record are
/// counted in `short_items` and left out. The consumer position is
/// published once, at the end.
fn take(ring: &mut RingReader, short_items: &mut u64, max: usize, f: &mut impl FnMut(&[&[u8]])) -> (usize, u64) {
    let (mut n, start) = (0, ring.pos);
    loop {
        while n < max {
            let mut items: [&[u8]; GROUP] = [&[]; GROUP];
            let got = ring.next_many(&mut items[..GROUP.min(max - n)]);
            if got == 0 {
                break;
            }
            n += got;
            let mut k = 0;
            for i in 0..got {
                if items[i].len() >= RECORD_HEADER_LEN {
                    items[k] = items[i];
                    k += 1;
                } else {
                    *short_items += 1;
                }
            }
            if k > 0 {
                f(&items[..k]);
            }
        }
        // Records committed between the last look at the producer position
        // and the publication found the consumer behind, so they woke
        // nobody: look again after publishing.
        if !ring.publish() || n >= max {
            break;
        }
    }
    (n, (ring.pos - start) as u64)
}

/// The kernel's ring buffer memory, mapped as the kernel lays it out: the
/// consumer page (read-write), then the producer page and the data pages
/// mapped twice in a row (so a record that wraps is contiguous).
pub struct RingReader {
    /// Keeps the map fd open.
    ring: RingBuf<MapData>,
    consumer: *mut u8,
    producer: *mut u8,
    page: usize,
    size: usize,
    /// Consumer position: what this reader has taken.
    pos: usize,
    /// Producer position last seen.
    prod: usize,
    /// Consumer position last published.
    published: usize,
}

// SAFETY: the mappings are owned by the reader and live as long as it does;
// `&RingReader` reads nothing (all access goes through `&mut self`).
unsafe impl Send for RingReader {}
// SAFETY: as above.
unsafe impl Sync for RingReader {}

const BUSY: u32 = 1 << 31;
const DISCARD: u32 = 1 << 30;
const HDR: usize = 8;

impl std::os::fd::AsRawFd for RingReader {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.ring.as_fd().as_raw_fd()
    }
}

/// The ring's data size (its `max_entries`), from the kernel.
fn ring_size(fd: i32) -> std::io::Result<usize> {
    #[repr(C)]
    struct InfoAttr {
        bpf_fd: u32,
        info_len: u32,
        info: u64,
    }
    let mut info = [0u32; 32];
    let mut attr = InfoAttr { bpf_fd: fd as u32, info_len: size_of_val(&info) as u32, info: info.as_mut_ptr() as u64 };
    const BPF_OBJ_GET_INFO_BY_FD: libc::c_long = 15;
    // SAFETY: the attr points at a buffer of info_len bytes.
    let r =
        unsafe { libc::syscall(libc::SYS_bpf, BPF_OBJ_GET_INFO_BY_FD, &raw mut attr, size_of::<InfoAttr>() as u32) };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // struct bpf_map_info: type, id, key_size, value_size, max_entries, ...
    Ok(info[4] as usize)
}

impl RingReader {
    pub fn new(ring: RingBuf<MapData>) -> anyhow::Result<RingReader> {
        let fd = ring.as_fd().as_raw_fd();
        let size = ring_size(fd)?;
        anyhow::ensure!(size.is_power_of_two() && size > 0, "ring buffer size {size} is not a power of two");
        // SAFETY: no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
        // SAFETY: mapping the ring's pages as the kernel documents
        // (kernel/bpf/ringbuf.c: consumer page writable, the rest read-only).
        let (consumer, producer) = unsafe {
            let c = libc::mmap(std::ptr::null_mut(), page, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_SHARED, fd, 0);
            if c == libc::MAP_FAILED {
                return Err(std::io::Error::last_os_error().into());
            }
            let p =
                libc::mmap(std::ptr::null_mut(), page + 2 * size, libc::PROT_READ, libc::MAP_SHARED, fd, page as i64);
            if p == libc::MAP_FAILED {
                let e = std::io::Error::last_os_error();
                libc::munmap(c, page);
                return Err(e.into());
            }
            (c.cast::<u8>(), p.cast::<u8>())
        };
        let mut r = RingReader { ring, consumer, producer, page, size, pos: 0, prod: 0, published: 0 };
        r.pos = r.consumer_pos().load(Ordering::Acquire);
        r.published = r.pos;
        r.prod = r.producer_pos().load(Ordering::Acquire);
        Ok(r)
    }

    fn consumer_pos(&self) -> &AtomicUsize {
        // SAFETY: the consumer page starts with the position, aligned.
        unsafe { &*self.consumer.cast::<AtomicUsize>() }
    }

    fn producer_pos(&self) -> &AtomicUsize {
        // SAFETY: the producer page starts with the position, aligned.
        unsafe { &*self.producer.cast::<AtomicUsize>() }
    }

    /// The next record's bytes (valid until `publish`), or `None` when the
    /// ring holds nothing committed. (Not an `Iterator`: each item borrows
    /// the reader.)
    #[allow(clippy::should_implement_trait)]
    #[inline]
    pub fn next(&mut self) -> Option<&[u8]> {
        let (off, len) = self.advance()?;
        // SAFETY: see `advance`.
        Some(unsafe { std::slice::from_raw_parts(self.producer.add(off), len) })
    }

    /// Up to `out.len()` next records, as `next` gives them, all valid
    /// together until `publish` (which needs the reader back). Returns how
    /// many.
    #[inline]
    pub fn next_many<'a>(&'a mut self, out: &mut [&'a [u8]]) -> usize {
        let mut n = 0;
        while n < out.len() {
            let Some((off, len)) = self.advance() else { break };
            // SAFETY: see `advance`; the bytes stay until `publish`, which
            // cannot run while `'a` borrows the reader.
            out[n] = unsafe { std::slice::from_raw_parts(self.producer.add(off), len) };
            n += 1;
        }
        n
    }

    /// Steps over the next committed record: its offset in the producer
    /// mapping and its length. The data pages are mapped twice, so
    /// `off + len` (len <= size) stays within the mapping, and the producer
    /// does not reuse these bytes before the position is published.
    #[inline]
    fn advance(&mut self) -> Option<(usize, usize)> {
        loop {
            if self.pos == self.prod {
                self.prod = self.producer_pos().load(Ordering::Acquire);
                if self.pos == self.prod {
                    return None;
                }
            }
            let off = self.page + (self.pos & (self.size - 1));
            // SAFETY: off + HDR is within the producer mapping (page + 2 x size).
            let hdr = unsafe { &*self.producer.add(off).cast::<AtomicU32>() }.load(Ordering::Acquire);
            if hdr & BUSY != 0 {
                return None;
            }
            let len = (hdr & !(BUSY | DISCARD)) as usize;
            if len > self.size {
                // Cannot happen with a sane kernel; stop rather than read
                // outside the mapping.
                return None;
            }
            self.pos += (len + HDR).next_multiple_of(8);
            if hdr & DISCARD != 0 {
                continue;
            }
            return Some((off + HDR, len));
        }
    }

    /// Hands the records taken so far back to the kernel. True when more
    /// are committed already.
    pub fn publish(&mut self) -> bool {
        if self.published != self.pos {
            self.consumer_pos().store(self.pos, Ordering::Release);
            self.published = self.pos;
        }
        // Pairs with the kernel's barrier between writing the producer
        // position and reading ours (see aya's RingBuf).
        fence(Ordering::SeqCst);
        self.prod = self.producer_pos().load(Ordering::Acquire);
        self.prod != self.pos
    }
}

impl Drop for RingReader {
    fn drop(&mut self) {
        // SAFETY: unmapping what `new` mapped.
        unsafe {
            libc::munmap(self.consumer.cast(), self.page);
            libc::munmap(self.producer.cast(), self.page + 2 * self.size);
        }
    }
}

impl RingSource {
    pub fn new(ring: RingBuf<MapData>) -> anyhow::Result<RingSource> {
        // SAFETY: the reader owns the map fd (its RingBuf) and keeps it open
        // while the AsyncFd holds it.
        let fd = unsafe { AsyncFd::register_with_interest(RingReader::new(ring)?, tokio::io::Interest::READABLE) }
            .map_err(|e| anyhow::anyhow!("registering the ring buffer with the event loop: {e}"))?;
        Ok(RingSource { fd, short_items: 0, interval: MAX_INTERVAL, due: None, backlog: 0, more: false })
    }

    /// Waits until records are available (a wakeup, or `interval` passed)
    /// and hands up to `max` of them to `f` in groups of up to [`GROUP`],
    /// each record's bytes where the kernel wrote them (valid during the
    /// call; `sctp_monitor_common::record::split_item` reads them). Returns
    /// how many. Cancel-safe: records not handed out stay in the ring.
    pub async fn drain_batches(&mut self, max: usize, mut f: impl FnMut(&[&[u8]])) -> anyhow::Result<usize> {
        loop {
            let (n, bytes) = if self.more {
                take(self.fd.get_mut(), &mut self.short_items, max, &mut f)
            } else {
                let due = *self.due.get_or_insert_with(|| tokio::time::Instant::now() + self.interval);
                let ready = tokio::time::timeout_at(due, self.fd.readable_mut()).await;
                self.due = None;
                match ready {
                    Ok(guard) => {
                        let mut guard = guard?;
                        let r = take(guard.get_inner_mut(), &mut self.short_items, max, &mut f);
                        if r.0 < max {
                            // Emptied: wait for the kernel's next wakeup (one
                            // that came meanwhile keeps the readiness set).
                            guard.clear_ready();
                        }
                        r
                    }
                    Err(_) => take(self.fd.get_mut(), &mut self.short_items, max, &mut f),
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

    /// Every record the kernel has committed, now, without waiting: those
    /// that did not wake the agent included. The agent calls it before it
    /// reads the per-path counters and before it lets time pass in the
    /// tracker, so that what the kernel wrote first is handled first: a
    /// retransmission waiting in the ring before the ack of its DATA that
    /// the counters already hold, a HEARTBEAT-ACK before the timeout of its
    /// HEARTBEAT. Returns how many.
    pub fn drain_ready(&mut self, mut f: impl FnMut(&[&[u8]])) -> usize {
        let (n, bytes) = take(self.fd.get_mut(), &mut self.short_items, usize::MAX, &mut f);
        self.backlog += bytes;
        n
    }

    /// [`RingSource::drain_batches`] one record at a time, each copied into
    /// a `ChunkRecord` (tests, tools; the agent reads in place).
    pub async fn drain(&mut self, max: usize, mut f: impl FnMut(&ChunkRecord)) -> anyhow::Result<usize> {
        let mut rec: Box<ChunkRecord> = Box::new(Zeroable::zeroed());
        self.drain_batches(max, |items| {
            for item in items {
                if fill(&mut rec, item) {
                    f(&rec);
                }
            }
        })
        .await
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
        Some(RecordKind::DataRetransmit) => " retransmission",
        Some(RecordKind::DataPathSettle) => " path-settle",
        Some(RecordKind::SackFirst) => " first-on-path",
        Some(RecordKind::SackChange) => " window",
        None => " ?",
    };
    let (src, dst) = match r.addrs() {
        Some((s, d)) => (s.to_string(), d.to_string()),
        None => ("?".into(), "?".into()),
    };
    format!(
        "{iface} {dir} {src}:{} -> {dst}:{} vtag={:#010x} {name}{kind} len={}",
        r.src_port, r.dst_port, r.vtag, r.chunk_len
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
        // 100,000 associations' heartbeats: ~3 MB/s, 600 KB per 200 ms.
        assert_eq!(next_interval(MAX_INTERVAL, 600_000), MAX_INTERVAL);
        // Four times that rate: half the wait.
        assert_eq!(next_interval(MAX_INTERVAL, 2_400_000), MAX_INTERVAL / 2);
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
