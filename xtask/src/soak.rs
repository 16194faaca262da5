//! `cargo xtask soak`: the agent (release build) for N minutes under a high
//! record rate on a veth, its resident memory sampled; fails when memory
//! grows beyond the tolerance after warm-up. The work is in
//! `sctp-monitor/examples/soak.rs`; this builds it and runs it as root.

use std::process::Command;

use anyhow::{Context as _, bail};

use crate::run::{cargo, workspace_root};

pub struct SoakArgs {
    pub minutes: f64,
    pub rate: u64,
    pub sample_secs: u64,
    pub tolerance_pct: f64,
}

pub fn soak(a: &SoakArgs) -> anyhow::Result<()> {
    let ok = cargo()
        .args(["build", "--release", "--package", "sctp-monitor", "--bin", "sctp-monitor", "--example", "soak"])
        .status()?;
    if !ok.success() {
        bail!("building the agent and the soak driver failed");
    }
    let root = workspace_root();
    let driver = root.join("target/release/examples/soak");
    let agent = root.join("target/release/sctp-monitor");
    let is_root = Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    let mut cmd = if is_root {
        Command::new(&driver)
    } else {
        let mut c = Command::new("sudo");
        c.arg(&driver);
        c
    };
    cmd.arg("--agent").arg(&agent).args(["--minutes", &a.minutes.to_string(), "--rate", &a.rate.to_string()]).args([
        "--sample-secs",
        &a.sample_secs.to_string(),
        "--tolerance-pct",
        &a.tolerance_pct.to_string(),
    ]);
    let st = cmd.status().with_context(|| format!("starting {}", driver.display()))?;
    if !st.success() {
        bail!("soak failed");
    }
    Ok(())
}
