//! `cargo xtask test`: every test of the workspace. Kernel and namespace
//! tests need root; under CI they fail loudly without it. The agent is
//! built with its `otlp` feature, so the OTLP exporter's test runs too
//! (against the receiver `setup` installs). Ends with one summary line
//! over every test binary: `tests: N passed, M failed`.

use std::{
    io::{BufRead, BufReader, Write},
    process::Stdio,
};

use anyhow::bail;

use crate::run::cargo;

pub fn test(extra: &[String]) -> anyhow::Result<()> {
    // The eBPF crate is built (and checked) by sctp-monitor's build.rs; the
    // default members are the agent, the shared crate and xtask.
    let mut child = cargo()
        .args(["test", "--no-fail-fast", "--features", "sctp-monitor/otlp"])
        .args(extra)
        .stdout(Stdio::piped())
        .spawn()?;
    let (mut passed, mut failed, mut ignored) = (0u64, 0u64, 0u64);
    let stdout = child.stdout.take().expect("piped stdout");
    let mut out = std::io::stdout().lock();
    for line in BufReader::new(stdout).lines() {
        let line = line?;
        writeln!(out, "{line}")?;
        if let Some(rest) = line.strip_prefix("test result: ") {
            for part in rest.split(['.', ';']) {
                let mut it = part.split_whitespace();
                if let (Some(n), Some(what)) = (it.next(), it.next()) {
                    let n: u64 = n.parse().unwrap_or(0);
                    match what {
                        "passed" => passed += n,
                        "failed" => failed += n,
                        "ignored" => ignored += n,
                        _ => {}
                    }
                }
            }
        }
    }
    let status = child.wait()?;
    writeln!(out, "tests: {passed} passed, {failed} failed, {ignored} skipped")?;
    if !status.success() {
        bail!("tests failed");
    }
    Ok(())
}
