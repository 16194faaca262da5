//! Reading the per-path DATA/SACK summaries (the `PATH_SLOTS` array and
//! the `PATHS` overflow map), merged over CPUs.

use std::os::fd::{AsFd as _, AsRawFd as _};

use anyhow::Context as _;

use crate::fasthash::Seeded;
use std::collections::HashMap;

use aya::{
    Ebpf,
    maps::{Map, MapData, PerCpuArray, PerCpuHashMap},
};
use sctp_monitor_common::{
    PathKey, PathSlot, PathStats, maps,
    sctp::tsn_gt,
    stats::{PATH_FLAG_HAS_SACK, PATH_FLAG_HAS_TSN},
};

/// Merges one path's per-CPU values: counters add up, times and TSNs take
/// the latest (TSNs in serial-number order).
pub fn merge<'a>(per_cpu: impl IntoIterator<Item = &'a PathStats>) -> PathStats {
    let mut m = PathStats::default();
    let mut first = true;
    let mut sack_at = 0u64;
    for s in per_cpu {
        if s.packets == 0 && s.flags == 0 {
            continue;
        }
        m.packets += s.packets;
        m.bytes += s.bytes;
        m.data_chunks += s.data_chunks;
        m.payload_bytes += s.payload_bytes;
        m.retransmissions += s.retransmissions;
        m.sacks += s.sacks;
        m.gap_blocks += s.gap_blocks;
        m.dup_tsns += s.dup_tsns;
        if first || (s.first_ns != 0 && s.first_ns < m.first_ns) {
            m.first_ns = s.first_ns;
        }
        first = false;
        m.last_ns = m.last_ns.max(s.last_ns);
        m.last_data_ns = m.last_data_ns.max(s.last_data_ns);
        if s.flags & PATH_FLAG_HAS_TSN != 0
            && (m.flags & PATH_FLAG_HAS_TSN == 0 || tsn_gt(s.highest_tsn, m.highest_tsn))
        {
            m.highest_tsn = s.highest_tsn;
        }
        if s.flags & PATH_FLAG_HAS_SACK != 0 && s.last_ns >= sack_at {
            // The CPU that saw the latest packet holds the latest SACK.
            sack_at = s.last_ns;
            m.sack_cum_tsn = s.sack_cum_tsn;
            m.sack_a_rwnd = s.sack_a_rwnd;
        }
        if s.flags & PATH_FLAG_HAS_SACK != 0
            && (m.flags & PATH_FLAG_HAS_SACK == 0 || s.sack_a_rwnd_min < m.sack_a_rwnd_min)
        {
            m.sack_a_rwnd_min = s.sack_a_rwnd_min;
        }
        m.flags |= s.flags;
    }
    m
}

/// Of two summaries of one path on one CPU (its `PATH_SLOTS` slot and its
/// `PATHS` entry), the later: both only grow, and the slot starts from the
/// entry (see the eBPF crate's `paths.rs`).
fn later(a: &mut PathStats, b: &PathStats) {
    if b.packets > a.packets || (b.packets == a.packets && b.last_ns > a.last_ns) {
        *a = *b;
    }
}

/// A path's summary per CPU, gathered from both maps.
type PerCpu = HashMap<PathKey, Vec<PathStats>, Seeded>;

/// Every path with its counters merged over CPUs: per CPU the later of its
/// `PATH_SLOTS` slot and its `PATHS` entry, then [`merge`]d.
///
/// Both maps are read with `BPF_MAP_LOOKUP_BATCH`, [`BATCH`] keys per
/// syscall: with the map full (65,536 paths), reading it key by key took two
/// syscalls and an allocation per path, over a second of the agent's loop
/// every poll (and the ring overflowed meanwhile). Kernels without batch
/// lookups (before 5.6) are read key by key.
///
/// Only the slots marked in `PATH_SLOTS_USED` are read (the whole array in
/// batches when more than an eighth are): reading all of them took 15 ms
/// per poll at the default size, used or not. The slots are read before
/// `PATHS`: a path taken out of its slot between the two reads is then in
/// `PATHS` with at least what the slot showed, so no counter goes back.
pub fn read_all(ebpf: &Ebpf) -> anyhow::Result<Vec<(PathKey, PathStats)>> {
    read_all_by(ebpf, BATCH)
}

/// [`read_all`] with `batch` keys per syscall.
pub fn read_all_by(ebpf: &Ebpf, batch: usize) -> anyhow::Result<Vec<(PathKey, PathStats)>> {
    let cpus = cpus()?;
    let batch = batch.max(1);
    let mut per = PerCpu::with_hasher(Seeded::random());
    let slots = ebpf.map(maps::PATH_SLOTS).context("PATH_SLOTS map missing")?;
    let used = ebpf.map(maps::PATH_SLOTS_USED).context("PATH_SLOTS_USED map missing")?;
    let paths = ebpf.map(maps::PATHS).context("PATHS map missing")?;
    let (Map::PerCpuArray(slots_data), Map::Array(used), Map::PerCpuLruHashMap(paths) | Map::PerCpuHashMap(paths)) =
        (slots, used, paths)
    else {
        return read_each(ebpf);
    };
    // The slots some path has taken (on any CPU).
    let mut marked = Vec::new();
    if !lookup_batch::<u32, [u8; 64]>(used, batch, 1, |&k, v| {
        let base = k as usize * 64;
        marked.extend(v[0].iter().enumerate().filter(|(_, b)| **b != 0).map(|(i, _)| (base + i) as u32));
    })? {
        return read_each(ebpf);
    }
    let total = slots_data.info()?.max_entries() as usize;
    if marked.len() * 8 > total {
        // Many: the whole array in batches costs fewer syscalls.
        lookup_batch::<u32, PathSlot>(slots_data, batch, cpus, |_, v| add_slots(&mut per, v))?;
    } else {
        // Few: one lookup each.
        let slots: PerCpuArray<_, PathSlot> = PerCpuArray::try_from(slots)?;
        for i in marked {
            add_slots(&mut per, &slots.get(&i, 0)?);
        }
    }
    lookup_batch::<PathKey, PathStats>(paths, batch, cpus, |k, v| add_entry(&mut per, k, v))?;
    Ok(merged(per))
}

/// [`read_all`] key by key (a syscall per slot, every slot, marked or not;
/// two per `PATHS` entry).
pub fn read_each(ebpf: &Ebpf) -> anyhow::Result<Vec<(PathKey, PathStats)>> {
    let mut per = PerCpu::with_hasher(Seeded::random());
    let slots: PerCpuArray<_, PathSlot> =
        PerCpuArray::try_from(ebpf.map(maps::PATH_SLOTS).context("PATH_SLOTS map missing")?)?;
    for i in 0..slots.len() {
        add_slots(&mut per, &slots.get(&i, 0)?);
    }
    let map: PerCpuHashMap<_, PathKey, PathStats> =
        PerCpuHashMap::try_from(ebpf.map(maps::PATHS).context("PATHS map missing")?)?;
    for entry in map.iter() {
        let (k, v) = entry?;
        add_entry(&mut per, &k, &v);
    }
    Ok(merged(per))
}

fn add_slots(per: &mut PerCpu, per_cpu: &[PathSlot]) {
    let cpus = per_cpu.len();
    for (c, s) in per_cpu.iter().enumerate() {
        if s.stats.packets != 0 {
            later(&mut per.entry(s.key).or_insert_with(|| vec![PathStats::default(); cpus])[c], &s.stats);
        }
    }
}

fn add_entry(per: &mut PerCpu, key: &PathKey, per_cpu: &[PathStats]) {
    let cpus = per_cpu.len();
    let v = per.entry(*key).or_insert_with(|| vec![PathStats::default(); cpus]);
    for (c, s) in per_cpu.iter().enumerate() {
        later(&mut v[c], s);
    }
}

fn merged(per: PerCpu) -> Vec<(PathKey, PathStats)> {
    per.into_iter().map(|(k, v)| (k, merge(v.iter()))).collect()
}

fn cpus() -> anyhow::Result<usize> {
    aya::util::nr_cpus().map_err(|(what, e)| anyhow::anyhow!("{what}: {e}"))
}

/// Keys per `BPF_MAP_LOOKUP_BATCH` call.
pub const BATCH: usize = 1024;

/// `union bpf_attr` for the `BPF_MAP_*_BATCH` commands.
#[repr(C)]
#[derive(Default)]
struct BatchAttr {
    in_batch: u64,
    out_batch: u64,
    keys: u64,
    values: u64,
    count: u32,
    map_fd: u32,
    elem_flags: u64,
    flags: u64,
}

const BPF_MAP_LOOKUP_BATCH: libc::c_long = 24;

/// A whole per-CPU map by batches: `f(key, values of every CPU)` for each
/// key; false when the kernel has no batch lookup.
fn lookup_batch<K: bytemuck::Pod, V: bytemuck::Pod>(
    map: &MapData,
    mut batch: usize,
    cpus: usize,
    mut f: impl FnMut(&K, &[V]),
) -> anyhow::Result<bool> {
    // Per-CPU values come each rounded up to 8 bytes, all CPUs of a key together.
    let stride = size_of::<V>().next_multiple_of(8);
    let mut keys = vec![K::zeroed(); batch];
    let mut values = vec![0u8; batch * cpus * stride];
    let mut per_cpu = vec![V::zeroed(); cpus];
    let (mut token_in, mut token_out) = (0u64, 0u64);
    let mut first = true;
    loop {
        let mut attr = BatchAttr {
            in_batch: if first { 0 } else { &raw mut token_in as u64 },
            out_batch: &raw mut token_out as u64,
            keys: keys.as_mut_ptr() as u64,
            values: values.as_mut_ptr() as u64,
            count: batch as u32,
            map_fd: map.fd().as_fd().as_raw_fd() as u32,
            ..BatchAttr::default()
        };
        // SAFETY: the attr points at buffers of `count` keys and values
        // that outlive the call; the tokens have room for a key of either
        // map (a u32 index or the hash map's bucket number).
        let r = unsafe {
            libc::syscall(libc::SYS_bpf, BPF_MAP_LOOKUP_BATCH, &raw mut attr, size_of::<BatchAttr>() as libc::c_uint)
        };
        let err = (r < 0).then(std::io::Error::last_os_error);
        match err.as_ref().and_then(|e| e.raw_os_error()) {
            None | Some(libc::ENOENT) => {}
            // A hash bucket holds more keys than fit: again, with room for more.
            Some(libc::ENOSPC) if batch < 1 << 20 => {
                batch *= 2;
                keys.resize(batch, K::zeroed());
                values.resize(batch * cpus * stride, 0);
                continue;
            }
            Some(libc::EINVAL | libc::ENOTSUP | libc::EOPNOTSUPP) if first => return Ok(false),
            Some(_) => {
                return Err(anyhow::anyhow!("BPF_MAP_LOOKUP_BATCH: {}", err.expect("an error")));
            }
        }
        let n = (attr.count as usize).min(batch);
        for (i, key) in keys.iter().enumerate().take(n) {
            for (c, v) in per_cpu.iter_mut().enumerate() {
                let at = (i * cpus + c) * stride;
                *v = bytemuck::pod_read_unaligned(&values[at..at + size_of::<V>()]);
            }
            f(key, &per_cpu);
        }
        if err.is_some() {
            // ENOENT: the end of the map.
            return Ok(true);
        }
        token_in = token_out;
        first = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_sums_counters_and_keeps_latest() {
        let a = PathStats {
            packets: 2,
            data_chunks: 3,
            highest_tsn: u32::MAX,
            flags: PATH_FLAG_HAS_TSN,
            first_ns: 100,
            last_ns: 200,
            ..Default::default()
        };
        let b = PathStats {
            packets: 1,
            data_chunks: 1,
            highest_tsn: 2, // wrapped past u32::MAX: newer
            flags: PATH_FLAG_HAS_TSN | PATH_FLAG_HAS_SACK,
            sack_cum_tsn: 7,
            first_ns: 50,
            last_ns: 300,
            ..Default::default()
        };
        let idle = PathStats::default();
        let m = merge([&a, &idle, &b]);
        assert_eq!(m.packets, 3);
        assert_eq!(m.data_chunks, 4);
        assert_eq!(m.highest_tsn, 2);
        assert_eq!(m.first_ns, 50);
        assert_eq!(m.last_ns, 300);
        assert_eq!(m.sack_cum_tsn, 7);
        assert_eq!(m.flags, PATH_FLAG_HAS_TSN | PATH_FLAG_HAS_SACK);
    }

    #[test]
    fn the_window_is_the_latest_sacks_and_its_minimum_the_smallest_of_cpus_with_sacks() {
        let sack = |a_rwnd, min, last_ns| PathStats {
            packets: 1,
            flags: PATH_FLAG_HAS_SACK,
            sack_a_rwnd: a_rwnd,
            sack_a_rwnd_min: min,
            last_ns,
            ..Default::default()
        };
        // A CPU that saw only DATA has no window: its zero is no minimum.
        let data_only = PathStats { packets: 4, flags: PATH_FLAG_HAS_TSN, last_ns: 900, ..Default::default() };
        let m = merge([&data_only, &sack(65_000, 3_000, 100), &sack(50_000, 20_000, 500)]);
        assert_eq!((m.sack_a_rwnd, m.sack_a_rwnd_min), (50_000, 3_000));
        let m = merge([&sack(0, 0, 100), &data_only]);
        assert_eq!((m.sack_a_rwnd, m.sack_a_rwnd_min), (0, 0));
    }
}
