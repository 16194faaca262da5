//! Builds the eBPF crate for the BPF target (aya-build: the pinned nightly,
//! build-std) and leaves the object in OUT_DIR, where `src/kernel/load.rs`
//! embeds it. So `cargo build` always produces an agent whose kernel
//! programs match it.
//!
//! The toolchain is pinned (`sctp-monitor-common/src/toolchain.rs`): the
//! build stops, saying what to run, when the pinned nightly or bpf-linker
//! is not the one installed. What built the object is recorded in
//! `SCTP_MONITOR_EBPF_TOOLCHAIN` for the agent's messages.
//!
//! `AYA_BUILD_SKIP=1` skips the eBPF build (for `cargo check`/clippy or host
//! tests of the pure modules); the embedded object is then empty and loading
//! it fails with a clear message.

use std::{env, fs, path::PathBuf, process::Command};

use anyhow::{Context as _, anyhow, bail};
use sctp_monitor_common::toolchain::{BPF_LINKER, LLVM_MAJOR, NIGHTLY};

const SETUP: &str = "run `cargo xtask setup`, which installs the pinned toolchain";

fn main() -> anyhow::Result<()> {
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").ok_or_else(|| anyhow!("OUT_DIR not set"))?);
    let object = out_dir.join("sctp-monitor");
    println!("cargo:rerun-if-env-changed=AYA_BUILD_SKIP");
    let skip = env::var("AYA_BUILD_SKIP").is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"));
    if skip {
        println!("cargo:rustc-env=SCTP_MONITOR_EBPF_TOOLCHAIN=none (AYA_BUILD_SKIP)");
        fs::write(&object, []).with_context(|| format!("writing placeholder {}", object.display()))?;
    } else {
        let rustc = nightly_version()?;
        let linker = bpf_linker_version()?;
        println!("cargo:rustc-env=SCTP_MONITOR_EBPF_TOOLCHAIN={NIGHTLY} ({rustc}), {linker}, LLVM {LLVM_MAJOR}");
    }
    git_commit();
    let root = env::var("CARGO_MANIFEST_DIR")?;
    let ebpf_dir = PathBuf::from(root).join("../sctp-monitor-ebpf");
    let ebpf_dir =
        ebpf_dir.canonicalize().with_context(|| format!("eBPF crate not found at {}", ebpf_dir.display()))?;
    let ebpf_dir = ebpf_dir.to_str().ok_or_else(|| anyhow!("non-UTF-8 path"))?;
    aya_build::build_ebpf(
        [aya_build::Package { name: "sctp-monitor-ebpf", root_dir: ebpf_dir, ..Default::default() }],
        aya_build::Toolchain::Custom(NIGHTLY),
    )
    .with_context(|| {
        format!("building the eBPF programs with {NIGHTLY} failed; `cargo xtask setup` installs what it needs")
    })
}

/// `SCTP_MONITOR_GIT_COMMIT` for `sctp_monitor_build_info`: the variable
/// when set (a container build from a source archive passes it), else
/// `git rev-parse` of the checkout, rebuilt when HEAD moves; absent outside
/// a checkout (the agent says `unknown`).
fn git_commit() {
    println!("cargo:rerun-if-env-changed=SCTP_MONITOR_GIT_COMMIT");
    if let Ok(c) = env::var("SCTP_MONITOR_GIT_COMMIT") {
        println!("cargo:rustc-env=SCTP_MONITOR_GIT_COMMIT={c}");
        return;
    }
    let git = |args: &[&str]| -> Option<String> {
        let out = Command::new("git").args(args).output().ok()?;
        out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    };
    let Some(commit) = git(&["rev-parse", "--short=12", "HEAD"]) else { return };
    println!("cargo:rustc-env=SCTP_MONITOR_GIT_COMMIT={commit}");
    for path in ["HEAD".to_string()].into_iter().chain(git(&["symbolic-ref", "-q", "HEAD"])) {
        if let Some(p) = git(&["rev-parse", "--path-format=absolute", "--git-path", &path]) {
            println!("cargo:rerun-if-changed={p}");
        }
    }
}

/// `rustc --version` of the pinned nightly; an error saying how to get it.
fn nightly_version() -> anyhow::Result<String> {
    let out = Command::new("rustup")
        .args(["run", NIGHTLY, "rustc", "--version"])
        .env("RUSTUP_AUTO_INSTALL", "0")
        .output()
        .context("running rustup (the eBPF build needs rustup and the pinned nightly)")?;
    if !out.status.success() {
        bail!("the eBPF build needs the pinned toolchain {NIGHTLY} with rust-src; {SETUP}");
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// `bpf-linker --version`, which must be the pinned one.
fn bpf_linker_version() -> anyhow::Result<String> {
    let path = which::which("bpf-linker").map_err(|e| anyhow!("bpf-linker not found ({e}); {SETUP}"))?;
    // aya-template's way of declaring a dependency on a binary.
    println!("cargo:rerun-if-changed={}", path.display());
    let out = Command::new(&path).arg("--version").output().context("running bpf-linker --version")?;
    let version = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if version != format!("bpf-linker {BPF_LINKER}") {
        bail!("{} is `{version}`, the pin is bpf-linker {BPF_LINKER}; {SETUP}", path.display());
    }
    Ok(version)
}
