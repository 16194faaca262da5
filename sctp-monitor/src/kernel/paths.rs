//! Reading the per-path DATA/SACK summaries, merged over CPUs.

use anyhow::Context as _;
use aya::{Ebpf, maps::PerCpuHashMap};
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
pub fn read_all(ebpf: &Ebpf) -> anyhow::Result<Vec<(PathKey, PathStats)>> {
    let map: PerCpuHashMap<_, PathKey, PathStats> =
        PerCpuHashMap::try_from(ebpf.map(maps::PATHS).context("PATHS map missing")?)?;
    let mut out = Vec::new();
    for entry in map.iter() {
        let (k, v) = entry?;
        out.push((k, merge(v.iter())));
    }
    Ok(out)
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
