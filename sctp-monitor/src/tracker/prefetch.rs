//! Software prefetch for a batch of packets. At 100,000 associations each
//! packet's lookups miss the cache (the index bucket, then the slab entry it
//! names, then the entry's address and path arrays), and one packet's
//! misses depend on each other. Walking a batch once per stage, each stage
//! asking for the next stage's lines, overlaps the misses of the whole batch
//! instead of paying them one after another. Nothing here changes state:
//! a wrong guess costs a wasted prefetch.

use super::Tracker;

/// Items looked up together: enough for their misses to overlap, few
/// enough for their lines to stay cached until used.
pub const BATCH: usize = 32;

/// Asks the CPU to bring the line of `p` into its caches; no effect on
/// other architectures.
#[inline(always)]
fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint; it never faults, whatever the address.
    unsafe {
        core::arch::x86_64::_mm_prefetch(p.cast::<i8>(), core::arch::x86_64::_MM_HINT_T0)
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Every line of `len` bytes at `p`.
#[inline(always)]
fn prefetch_bytes(p: *const u8, len: usize) {
    if len == 0 {
        return;
    }
    let mut off = 0;
    while off < len {
        prefetch(p.wrapping_add(off));
        off += 64;
    }
    prefetch(p.wrapping_add(len - 1));
}

fn prefetch_slice<T>(s: &[T]) {
    prefetch_bytes(s.as_ptr().cast(), size_of_val(s));
}

/// What the stages learn about one packet, handed from one stage to the
/// next: the tag hash (computed once) and the index's candidate.
#[derive(Clone, Copy, Debug, Default)]
pub struct Hint {
    hash: u64,
    candidate: Option<u32>,
}

impl Tracker {
    /// Stage 1, from the packet's tag and ports (a kernel record's header):
    /// the index bucket of its tag.
    pub fn prefetch_index(&self, vtag: u32, src_port: u16, dst_port: u16) -> Hint {
        let hash = self.tag_hash(vtag, src_port, dst_port);
        if let Some(b) = self.tags.home(hash) {
            prefetch(b);
        }
        Hint { hash, candidate: None }
    }

    /// Stage 2: the slab entry that bucket most likely names.
    pub fn prefetch_entry(&self, hint: &mut Hint) {
        hint.candidate = self.tags.candidate(hint.hash);
        if let Some(a) = hint.candidate.and_then(|v| self.slab.get((v >> 1) as usize)) {
            prefetch_slice(std::slice::from_ref(a));
        }
    }

    /// Stage 3: that entry's address and path arrays (the candidate is
    /// not verified: a wrong guess wastes a prefetch).
    pub fn prefetch_arrays(&self, hint: &Hint) {
        if let Some(a) = hint.candidate.and_then(|v| self.slab.get((v >> 1) as usize)) {
            prefetch_slice(&a.addrs);
            prefetch_slice(&a.paths);
        }
    }

    /// For a batch of due heartbeat timeouts (slot, path): the slab entries,
    /// then their path arrays.
    pub(super) fn prefetch_timeouts(&self, due: &[(usize, usize)]) {
        for &(slot, _) in due {
            if let Some(a) = self.slab.get(slot) {
                prefetch_slice(std::slice::from_ref(a));
            }
        }
        for &(slot, pi) in due {
            if let Some(p) = self.slab.get(slot).and_then(|a| a.paths.get(pi)) {
                prefetch_slice(std::slice::from_ref(p));
            }
        }
    }
}
