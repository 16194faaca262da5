//! Every map of the programs. All are bounded; the sizes here are defaults
//! that the agent overrides at load time.

use crate::packet::Scratch;
use aya_ebpf::{
    macros::map,
    maps::{Array, LruPerCpuHashMap, PerCpuArray, RingBuf},
};
use sctp_monitor_common::{
    AssocDirState, ChunkRecord, Config, PathKey, PathSlot, PathStats,
    config::{DEFAULT_ASSOC_DIR_ENTRIES, DEFAULT_PATH_SLOTS},
    counters::{CHUNK_COUNTER_SLOTS, SLOTS},
};

/// Control-chunk and DATA-notification records to userspace.
#[map]
pub static EVENTS: RingBuf = RingBuf::with_byte_size(4 << 20, 0);

/// Per-CPU counters, see `sctp_monitor_common::counters`.
#[map]
pub static COUNTERS: PerCpuArray<u64> = PerCpuArray::with_max_entries(SLOTS, 0);

/// Per-CPU chunk counts by interface slot, direction and chunk type.
#[map]
pub static CHUNK_COUNTERS: PerCpuArray<u64> = PerCpuArray::with_max_entries(CHUNK_COUNTER_SLOTS, 0);

/// DATA / SACK summaries per path, direct-mapped per CPU (slot =
/// `PathKey::slot`, the key in the slot): see `paths`.
#[map]
pub static PATH_SLOTS: PerCpuArray<PathSlot> = PerCpuArray::with_max_entries(DEFAULT_PATH_SLOTS, 0);

/// One byte per `PATH_SLOTS` slot, set to 1 when a path first takes the
/// slot on any CPU (never cleared), so the agent reads only the slots in
/// use instead of the whole array every poll. A byte, not a bit: a plain
/// store, so two CPUs marking neighbouring slots at once cannot undo each
/// other's mark.
#[map]
pub static PATH_SLOTS_USED: Array<[u8; 64]> = Array::with_max_entries(DEFAULT_PATH_SLOTS / 64, 0);

/// The totals of paths whose `PATH_SLOTS` slot another path took over (LRU:
/// the least recently used path goes first when full).
#[map]
pub static PATHS: LruPerCpuHashMap<PathKey, PathStats> = LruPerCpuHashMap::with_max_entries(65536, 0);

/// Highest TSN and last new-DATA path per association direction, in a
/// direct-mapped array (slot = `AssocDirKey::slot`): one inlined array
/// access per DATA packet instead of a hash-table lookup; a direction whose
/// slot is taken over starts again as on its first DATA (counted).
#[map]
pub static ASSOC_DIRS: Array<AssocDirState> = Array::with_max_entries(DEFAULT_ASSOC_DIR_ENTRIES, 0);

/// Interface slots for the chunk counters: entry `ifindex % IFACE_SLOT_TABLE`
/// holds `ifindex << 32 | slot`; a mismatch means "slot 0, unknown".
#[map]
pub static IFACE_SLOTS: Array<u64> = Array::with_max_entries(IFACE_SLOT_TABLE, 0);

pub const IFACE_SLOT_TABLE: u32 = 4096;

/// Per-CPU scratch space for the per-packet state: keeps the 512-byte BPF
/// stack free (the parser's state and map keys/values live here).
#[map]
pub static SCRATCH: PerCpuArray<Scratch> = PerCpuArray::with_max_entries(1, 0);

/// Per-CPU space where a ring-buffer record is built before it is sent with
/// its used length (records are variable-length on the ring).
#[map]
pub static SCRATCH_RECORD: PerCpuArray<ChunkRecord> = PerCpuArray::with_max_entries(1, 0);

/// Load-time settings (the agent rewrites this with `set_global`); read
/// with [`config!`](crate::config).
#[unsafe(no_mangle)]
pub static CONFIG: Config = Config::DEFAULT;

/// One setting of [`CONFIG`], read so the compiler cannot fold the default
/// in: a volatile load of that field alone (of the whole struct, it would be
/// one load per field, on every packet that needs one setting).
#[macro_export]
macro_rules! config {
    ($field:ident) => {{
        let field = &raw const $crate::maps::CONFIG.$field;
        // SAFETY: CONFIG is a plain static; the volatile read keeps the load.
        #[allow(unused_unsafe)]
        let value = unsafe { core::ptr::read_volatile(field) };
        value
    }};
}
