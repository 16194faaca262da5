//! `cargo xtask bench`: every bench target of sctp-monitor (datapath,
//! replay, tracker_memory), each printing its markdown table for
//! BENCHMARKS.md.

use anyhow::bail;

use crate::run::cargo;

pub fn bench(repeat: u32, runs: u32) -> anyhow::Result<()> {
    let ok = cargo()
        .args(["bench", "-p", "sctp-monitor"])
        .env("SCTP_BENCH_REPEAT", repeat.to_string())
        .env("SCTP_BENCH_ROUNDS", runs.to_string())
        .status()?;
    if !ok.success() {
        bail!("benchmarks failed");
    }
    Ok(())
}
