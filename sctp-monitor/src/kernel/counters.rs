//! Reading the per-CPU counters back, summed over CPUs.

use anyhow::Context as _;
use aya::{Ebpf, maps::PerCpuArray};
use sctp_monitor_common::{counters, maps};

/// The `COUNTERS` array of one direction, summed over CPUs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    pub values: [u64; counters::COUNT as usize],
}

impl Counters {
    pub fn get(&self, counter: u32) -> u64 {
        self.values.get(counter as usize).copied().unwrap_or(0)
    }
}

/// Both directions: index 0 ingress, 1 egress.
pub fn read(ebpf: &Ebpf) -> anyhow::Result<[Counters; 2]> {
    let map: PerCpuArray<_, u64> = PerCpuArray::try_from(ebpf.map(maps::COUNTERS).context("COUNTERS map missing")?)?;
    let mut out = [Counters::default(), Counters::default()];
    for (dir, c) in out.iter_mut().enumerate() {
        for i in 0..counters::COUNT {
            let per_cpu = map.get(&(dir as u32 * counters::COUNT + i), 0)?;
            c.values[i as usize] = per_cpu.iter().sum();
        }
        c.values[counters::PACKETS as usize] = counters::PACKET_OUTCOMES.iter().map(|&o| c.values[o as usize]).sum();
    }
    Ok(out)
}

/// (interface slot, direction, chunk type).
pub type ChunkKey = (u32, u8, u8);

/// Chunk counts by [`ChunkKey`], summed over CPUs; only non-zero entries.
pub fn read_chunks(ebpf: &Ebpf) -> anyhow::Result<Vec<(ChunkKey, u64)>> {
    let map: PerCpuArray<_, u64> =
        PerCpuArray::try_from(ebpf.map(maps::CHUNK_COUNTERS).context("CHUNK_COUNTERS map missing")?)?;
    let mut out = Vec::new();
    for slot in 0..counters::MAX_IFACE_SLOTS {
        for dir in 0..2u8 {
            for t in 0..=255u8 {
                let idx = counters::chunk_counter_index(slot, dir, t);
                let n: u64 = map.get(&idx, 0)?.iter().sum();
                if n != 0 {
                    out.push(((slot, dir, t), n));
                }
            }
        }
    }
    Ok(out)
}
