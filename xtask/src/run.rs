//! Building and running the agent.

use std::process::Command;

use anyhow::{Context as _, bail};

pub fn workspace_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask is in the workspace").to_path_buf()
}

pub fn cargo() -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(workspace_root());
    c
}

pub fn build_release() -> anyhow::Result<()> {
    let ok = cargo().args(["build", "--release", "--package", "sctp-monitor"]).status()?;
    if !ok.success() {
        bail!("cargo build --release --package sctp-monitor failed");
    }
    Ok(())
}

/// Builds, then runs `target/release/sctp-monitor ARGS` as root (through
/// sudo when not root already: loading BPF programs needs the privileges).
pub fn run(args: &[String]) -> anyhow::Result<()> {
    build_release()?;
    let bin = workspace_root().join("target/release/sctp-monitor");
    let root = Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    let mut cmd = if root {
        Command::new(&bin)
    } else {
        let mut c = Command::new("sudo");
        c.arg("-E").arg(&bin);
        c
    };
    let status = cmd.args(args).status().with_context(|| format!("starting {}", bin.display()))?;
    std::process::exit(status.code().unwrap_or(1));
}
