//! Everything a fresh machine (stable + nightly Rust, nothing else) needs,
//! in one place. Idempotent: each step checks first and says nothing when
//! there is nothing to do. When a step cannot run (not root, no network) it
//! stops with the exact command to run by hand.

use std::process::{Command, Stdio};

use anyhow::{Context as _, bail};

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    /// What building the agent needs.
    Build,
    /// Plus what the tests and benchmarks use.
    Tests,
}

/// Debian packages for building bpf-linker against LLVM 22.
const BUILD_PACKAGES: &[&str] = &["llvm-22-dev", "libpolly-22-dev", "libzstd-dev", "zlib1g-dev", "libxml2-dev"];
/// Debian packages the tests use: namespaces and veths, nftables, the
/// userland SCTP stack, captures and tshark, Prometheus, tmux.
const TEST_PACKAGES: &[&str] = &[
    "iproute2",
    "nftables",
    "tcpdump",
    "tshark",
    "libusrsctp-dev",
    "gcc",
    "libc6-dev",
    "prometheus",
    "tmux",
    "procps",
];

const LLVM_PREFIX: &str = "/usr/lib/llvm-22";

pub fn setup(scope: Scope) -> anyhow::Result<()> {
    nightly_rust_src()?;
    let mut pkgs: Vec<&str> = BUILD_PACKAGES.to_vec();
    if scope >= Scope::Tests {
        pkgs.extend_from_slice(TEST_PACKAGES);
    }
    debian_packages(&pkgs)?;
    bpf_linker()?;
    Ok(())
}

fn quiet(cmd: &mut Command) -> bool {
    cmd.stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
}

fn nightly_rust_src() -> anyhow::Result<()> {
    let out = Command::new("rustup")
        .args(["component", "list", "--toolchain", "nightly", "--installed"])
        .output()
        .context("rustup not found: install Rust with rustup (stable and nightly)")?;
    if !out.status.success() {
        bail!("no nightly toolchain: run `rustup toolchain install nightly --component rust-src`");
    }
    if String::from_utf8_lossy(&out.stdout).lines().any(|l| l.starts_with("rust-src")) {
        return Ok(());
    }
    eprintln!("setup: adding rust-src to the nightly toolchain (the eBPF build uses build-std)");
    let ok = Command::new("rustup").args(["component", "add", "rust-src", "--toolchain", "nightly"]).status()?;
    if !ok.success() {
        bail!("`rustup component add rust-src --toolchain nightly` failed; run it by hand");
    }
    Ok(())
}

fn installed(pkg: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", pkg])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn debian_packages(pkgs: &[&str]) -> anyhow::Result<()> {
    let missing: Vec<&str> = pkgs.iter().copied().filter(|p| !installed(p)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    let list = missing.join(" ");
    if !is_root() {
        bail!("missing Debian packages; install them with:\n  sudo apt-get update && sudo apt-get install -y {list}");
    }
    eprintln!("setup: installing Debian packages: {list}");
    let env = [("DEBIAN_FRONTEND", "noninteractive")];
    let update = Command::new("apt-get").args(["-qq", "update"]).envs(env).status()?;
    if !update.success() {
        bail!("`apt-get update` failed (no network to the Debian mirror?); then run:\n  apt-get install -y {list}");
    }
    let mut cmd = Command::new("apt-get");
    cmd.args(["-y", "-qq", "install", "--no-install-recommends"]).args(&missing).envs(env).stdout(Stdio::null());
    if !cmd.status()?.success() {
        bail!("`apt-get install -y {list}` failed; run it by hand");
    }
    Ok(())
}

fn bpf_linker() -> anyhow::Result<()> {
    if quiet(Command::new("bpf-linker").arg("--version")) {
        return Ok(());
    }
    let home = std::env::var("CARGO_HOME")
        .or_else(|_| std::env::var("HOME").map(|h| format!("{h}/.cargo")))
        .unwrap_or_else(|_| "~/.cargo".into());
    if std::path::Path::new(&format!("{home}/bin/bpf-linker")).exists() {
        bail!("bpf-linker is in {home}/bin but not on PATH: add {home}/bin to PATH");
    }
    eprintln!("setup: building bpf-linker against LLVM 22 (a few minutes, once)");
    let status = Command::new("cargo")
        .args(["install", "bpf-linker", "--no-default-features", "--features", "llvm-22"])
        .env("LLVM_PREFIX", LLVM_PREFIX)
        .status()
        .context("running cargo install")?;
    if !status.success() {
        bail!(
            "installing bpf-linker failed; run by hand:\n  LLVM_PREFIX={LLVM_PREFIX} cargo install bpf-linker \
             --no-default-features --features llvm-22"
        );
    }
    Ok(())
}

/// cargo-fuzz (libFuzzer driver) for `cargo xtask fuzz`.
pub fn cargo_fuzz() -> anyhow::Result<()> {
    if quiet(Command::new("cargo").args(["fuzz", "--version"])) {
        return Ok(());
    }
    eprintln!("setup: installing cargo-fuzz (once)");
    let status =
        Command::new("cargo").args(["install", "cargo-fuzz", "--locked"]).status().context("running cargo install")?;
    if !status.success() {
        bail!("installing cargo-fuzz failed; run by hand:\n  cargo install cargo-fuzz --locked");
    }
    Ok(())
}
