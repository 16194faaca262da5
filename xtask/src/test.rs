//! `cargo xtask test`: every test of the workspace. Kernel and namespace
//! tests need root; under CI they fail loudly without it.

use anyhow::bail;

use crate::run::cargo;

pub fn test(extra: &[String]) -> anyhow::Result<()> {
    // The eBPF crate is built (and checked) by sctp-monitor's build.rs; the
    // default members are the agent, the shared crate and xtask.
    let ok = cargo().args(["test", "--no-fail-fast"]).args(extra).status()?;
    if !ok.success() {
        bail!("tests failed");
    }
    Ok(())
}
