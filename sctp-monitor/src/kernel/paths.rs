//! Reading the per-path DATA/SACK summaries, merged over CPUs.

use std::os::fd::{AsFd as _, AsRawFd as _};

use anyhow::Context as _;
use aya::{
    Ebpf,
    maps::{Map, MapData, PerCpuHashMap},
};
use bytemuck::Zeroable as _;
use sctp_monitor_common::{
    PathKey, PathStats, maps,
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
        m.flags |= s.flags;
    }
    m
}

/// Every path in the map with its merged counters.
///
/// Read with `BPF_MAP_LOOKUP_BATCH`, [`BATCH`] keys per syscall: with the
/// map full (65,536 paths), reading it key by key took two syscalls and an
/// allocation per path, over a second of the agent's loop every poll (and
/// the ring overflowed meanwhile). Kernels without batch lookups (before
/// 5.6) are read key by key.
pub fn read_all(ebpf: &Ebpf) -> anyhow::Result<Vec<(PathKey, PathStats)>> {
    read_all_by(ebpf, BATCH)
}

/// [`read_all`] with `batch` keys per syscall.
pub fn read_all_by(ebpf: &Ebpf, batch: usize) -> anyhow::Result<Vec<(PathKey, PathStats)>> {
    let map = ebpf.map(maps::PATHS).context("PATHS map missing")?;
    if let Map::PerCpuLruHashMap(data) | Map::PerCpuHashMap(data) = map
        && let Some(out) = read_batched(data, batch.max(1))?
    {
        return Ok(out);
    }
    read_each(ebpf)
}

/// [`read_all`] key by key (two syscalls per path).
pub fn read_each(ebpf: &Ebpf) -> anyhow::Result<Vec<(PathKey, PathStats)>> {
    let map: PerCpuHashMap<_, PathKey, PathStats> =
        PerCpuHashMap::try_from(ebpf.map(maps::PATHS).context("PATHS map missing")?)?;
    let mut out = Vec::new();
    for entry in map.iter() {
        let (k, v) = entry?;
        out.push((k, merge(v.iter())));
    }
    Ok(out)
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

/// The whole map by batches; `None` when the kernel has no batch lookup.
fn read_batched(map: &MapData, mut batch: usize) -> anyhow::Result<Option<Vec<(PathKey, PathStats)>>> {
    let cpus = aya::util::nr_cpus().map_err(|(what, e)| anyhow::anyhow!("{what}: {e}"))?;
    // Per-CPU values come each rounded up to 8 bytes, all CPUs of a key together.
    let stride = size_of::<PathStats>().next_multiple_of(8);
    let mut keys = vec![PathKey::zeroed(); batch];
    let mut values = vec![0u8; batch * cpus * stride];
    let mut per_cpu = vec![PathStats::default(); cpus];
    let (mut token_in, mut token_out) = (0u32, 0u32);
    let mut first = true;
    let mut out = Vec::new();
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
        // that outlive the call.
        let r = unsafe {
            libc::syscall(libc::SYS_bpf, BPF_MAP_LOOKUP_BATCH, &raw mut attr, size_of::<BatchAttr>() as libc::c_uint)
        };
        let err = (r < 0).then(std::io::Error::last_os_error);
        match err.as_ref().and_then(|e| e.raw_os_error()) {
            None | Some(libc::ENOENT) => {}
            // A hash bucket holds more keys than fit: again, with room for more.
            Some(libc::ENOSPC) if batch < 1 << 20 => {
                batch *= 2;
                keys.resize(batch, PathKey::zeroed());
                values.resize(batch * cpus * stride, 0);
                continue;
            }
            Some(libc::EINVAL | libc::ENOTSUP | libc::EOPNOTSUPP) if first => return Ok(None),
            Some(_) => {
                return Err(anyhow::anyhow!("BPF_MAP_LOOKUP_BATCH on PATHS: {}", err.expect("an error")));
            }
        }
        let n = (attr.count as usize).min(batch);
        for (i, key) in keys.iter().enumerate().take(n) {
            for (c, v) in per_cpu.iter_mut().enumerate() {
                let at = (i * cpus + c) * stride;
                *v = bytemuck::pod_read_unaligned(&values[at..at + size_of::<PathStats>()]);
            }
            out.push((*key, merge(per_cpu.iter())));
        }
        if err.is_some() {
            // ENOENT: the end of the map.
            return Ok(Some(out));
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
}
