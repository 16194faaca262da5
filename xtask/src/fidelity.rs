//! `cargo xtask fidelity`: the whole fidelity matrix (usrsctp {raw4, udp4,
//! raw6, udp6} x {black hole, link down}, the primary change, the two
//! mid-flight runs, each `--runs` times, plus the artifact directories of
//! other stacks found under target/fidelity/linux), judged by the comparer
//! of sctp-monitor/tests/support/fidelity.rs through its test binary
//! (`FIDELITY=full`), which writes FIDELITY.md at the repository root before
//! it says whether every run was exact.

use std::process::Command;

use anyhow::bail;

use crate::run::cargo;

pub fn fidelity(runs: u32, guest_runs: u32, only: Option<&str>) -> anyhow::Result<()> {
    let root = Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    if !root {
        bail!("`cargo xtask fidelity` needs root (network namespaces, XDP, tcpdump): run it as root");
    }
    let mut c = cargo();
    c.args(["test", "--package", "sctp-monitor", "--test", "fidelity", "--", "--nocapture"])
        .env("FIDELITY", "full")
        .env("FIDELITY_RUNS", runs.to_string())
        .env("FIDELITY_GUEST_RUNS", guest_runs.to_string());
    if let Some(o) = only {
        c.env("FIDELITY_ONLY", o);
    }
    let st = c.status()?;
    if !st.success() {
        bail!(
            "the monitor disagrees with the stack in some runs: FIDELITY.md has the table, the output above each run's per-event diff"
        );
    }
    println!("fidelity: every run exact; the table is in FIDELITY.md");
    Ok(())
}
