//! What one read of the per-path maps costs the agent each poll
//! (`kernel::paths::read_all`: the `PATH_SLOTS` slots marked used, of every
//! CPU, and the `PATHS` overflow map), at the default sizes, with no path
//! in them.
//!
//! `cargo run --release -p sctp-monitor --example paths_read_cost` (root).

use sctp_monitor::kernel::{LoadOptions, paths, testrun::TestBed};

fn main() -> anyhow::Result<()> {
    let bed = TestBed::new(LoadOptions::default())?;
    let mut times = Vec::new();
    for _ in 0..10 {
        let t = std::time::Instant::now();
        let n = paths::read_all(&bed.ebpf)?.len();
        times.push(t.elapsed());
        anyhow::ensure!(n == 0, "an empty map gave {n} paths");
    }
    times.sort();
    println!(
        "read_all of the empty per-path maps (default sizes, {} CPUs): median {:?}, min {:?}, max {:?}",
        aya::util::nr_cpus().map_err(|(w, e)| anyhow::anyhow!("{w}: {e}"))?,
        times[times.len() / 2],
        times[0],
        times[times.len() - 1]
    );
    Ok(())
}
