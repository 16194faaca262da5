//! `cargo xtask bench`: every benchmark target of the agent crate, one after
//! the other (they share two cores; running them together would measure the
//! contention). Each prints a markdown table for BENCHMARKS.md.

use anyhow::bail;

use crate::run::{cargo, workspace_root};

pub fn bench(repeat: u32, runs: u32) -> anyhow::Result<()> {
    let dir = workspace_root().join("sctp-monitor/benches");
    let mut names: Vec<String> = std::fs::read_dir(&dir)?
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.strip_suffix(".rs")).map(str::to_string))
        .collect();
    names.sort();
    for name in names {
        eprintln!("== cargo bench -p sctp-monitor --bench {name}");
        let ok = cargo()
            .args(["bench", "--package", "sctp-monitor", "--bench", &name])
            .env("SCTP_BENCH_REPEAT", repeat.to_string())
            .env("SCTP_BENCH_ROUNDS", runs.to_string())
            .status()?;
        if !ok.success() {
            bail!("benchmark {name} failed");
        }
    }
    Ok(())
}
