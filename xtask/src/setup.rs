//! Everything a fresh machine (stable Rust with rustup, nothing else) needs,
//! in one place. Idempotent: each step checks first and says nothing when
//! there is nothing to do. When a step cannot run (not root, no network) it
//! stops with the exact command to run by hand.
//!
//! The eBPF toolchain is pinned (`sctp-monitor-common/src/toolchain.rs`):
//! the dated nightly with rust-src, bpf-linker by exact version built with
//! `--locked` against Debian's LLVM of the pinned major. Each is checked on
//! every run and reinstalled when what is there differs.

use std::process::{Command, Stdio};

use anyhow::{Context as _, bail};
use sctp_monitor_common::toolchain::{BPF_LINKER, LLVM_MAJOR, NIGHTLY};

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    /// What building the agent needs.
    Build,
    /// Plus what the tests and benchmarks use.
    Tests,
}

/// Debian packages for building bpf-linker against LLVM (besides
/// `llvm-N-dev` and `libpolly-N-dev` of the pinned major).
const BUILD_PACKAGES: &[&str] = &["libzstd-dev", "zlib1g-dev", "libxml2-dev"];
/// Debian packages the tests use: namespaces and veths, nftables, the
/// userland SCTP stack, captures and tshark, Prometheus, tmux, curl (the
/// listener's TLS tests).
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
    "curl",
    "procps",
    // deploy: the man page check, the chart tools (tools.rs) and the image
    // test (podman with runc; debootstrap makes the base image).
    "man-db",
    "python3-venv",
    "podman",
    "buildah",
    "runc",
    "debootstrap",
];

/// The OTLP receiver of `tests/otlp_export.rs` (`tests/otlp/receiver.py`):
/// PyPI packages, pinned, in a virtualenv under `target/`.
const OTLP_RECEIVER_PIP: &[&str] = &["grpcio==1.85.1", "opentelemetry-proto==1.45.2", "protobuf==7.36.2"];

pub fn setup(scope: Scope) -> anyhow::Result<()> {
    pinned_nightly()?;
    let llvm = [format!("llvm-{LLVM_MAJOR}-dev"), format!("libpolly-{LLVM_MAJOR}-dev")];
    let mut pkgs: Vec<&str> = llvm.iter().map(String::as_str).chain(BUILD_PACKAGES.iter().copied()).collect();
    if scope >= Scope::Tests {
        pkgs.extend_from_slice(TEST_PACKAGES);
        // the Linux kernel's SCTP in a guest (guest.rs)
        pkgs.extend_from_slice(crate::guest::PACKAGES);
    }
    debian_packages(&pkgs)?;
    bpf_linker()?;
    if scope >= Scope::Tests {
        crate::tools::install()?;
        otlp_receiver()?;
        crate::guest::setup()?;
    }
    Ok(())
}

/// `target/otlp-receiver`: a virtualenv with [`OTLP_RECEIVER_PIP`] (the
/// OpenTelemetry Collector is not packaged by Debian; the test's receiver
/// is grpcio serving the official opentelemetry-proto services).
fn otlp_receiver() -> anyhow::Result<()> {
    let venv = crate::run::workspace_root().join("target/otlp-receiver");
    let python = venv.join("bin/python");
    let check = "import grpc, google.protobuf, opentelemetry.proto.collector.logs.v1.logs_service_pb2_grpc as m; \
                 import sys; sys.exit(0 if (grpc.__version__, google.protobuf.__version__) == (sys.argv[1], sys.argv[2]) else 1)";
    let want =
        |name: &str| OTLP_RECEIVER_PIP.iter().find_map(|p| p.strip_prefix(name)?.strip_prefix("==")).unwrap_or("");
    if quiet(Command::new(&python).args(["-c", check, want("grpcio"), want("protobuf")])) {
        return Ok(());
    }
    eprintln!("setup: making the OTLP test receiver's virtualenv {} ({})", venv.display(), OTLP_RECEIVER_PIP.join(" "));
    let ok = Command::new("python3").arg("-m").arg("venv").arg(&venv).status().context("python3 not found")?;
    if !ok.success() {
        bail!("python3 -m venv {} failed: install python3-venv", venv.display());
    }
    let ok = Command::new(venv.join("bin/pip"))
        .args(["install", "--disable-pip-version-check", "--quiet"])
        .args(OTLP_RECEIVER_PIP)
        .status()?;
    if !ok.success() {
        bail!("installing {} into {} failed (PyPI reachable?)", OTLP_RECEIVER_PIP.join(" "), venv.display());
    }
    Ok(())
}

fn quiet(cmd: &mut Command) -> bool {
    cmd.stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
}

/// The pinned nightly with rust-src (the eBPF build uses build-std).
fn pinned_nightly() -> anyhow::Result<()> {
    let out = Command::new("rustup")
        .args(["component", "list", "--toolchain", NIGHTLY, "--installed"])
        .env("RUSTUP_AUTO_INSTALL", "0")
        .output()
        .context("rustup not found: install Rust with rustup")?;
    if out.status.success() && String::from_utf8_lossy(&out.stdout).lines().any(|l| l.starts_with("rust-src")) {
        return Ok(());
    }
    eprintln!("setup: installing the pinned {NIGHTLY} with rust-src (the eBPF build)");
    let ok = Command::new("rustup")
        .args(["toolchain", "install", NIGHTLY, "--profile", "minimal", "--component", "rust-src"])
        .status()?;
    if !ok.success() {
        bail!("`rustup toolchain install {NIGHTLY} --profile minimal --component rust-src` failed; run it by hand");
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

pub fn debian_packages(pkgs: &[&str]) -> anyhow::Result<()> {
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

/// What `bpf-linker --version` prints, if it runs.
fn bpf_linker_version() -> Option<String> {
    let out = Command::new("bpf-linker").arg("--version").output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Whether the bpf-linker on PATH links the pinned LLVM major (it loads
/// Debian's `libLLVM.so.N`).
fn bpf_linker_llvm_ok() -> bool {
    let Ok(path) = Command::new("sh").args(["-c", "command -v bpf-linker"]).output() else { return false };
    let path = String::from_utf8_lossy(&path.stdout).trim().to_owned();
    Command::new("ldd")
        .arg(&path)
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains(&format!("libLLVM.so.{LLVM_MAJOR}")))
}

/// bpf-linker at the pinned version, built with `--locked` against the
/// pinned LLVM; reinstalled when the one on PATH differs.
fn bpf_linker() -> anyhow::Result<()> {
    let want = format!("bpf-linker {BPF_LINKER}");
    let have = bpf_linker_version();
    if have.as_deref() == Some(want.as_str()) && bpf_linker_llvm_ok() {
        return Ok(());
    }
    let home = std::env::var("CARGO_HOME")
        .or_else(|_| std::env::var("HOME").map(|h| format!("{h}/.cargo")))
        .unwrap_or_else(|_| "~/.cargo".into());
    if have.is_none() && std::path::Path::new(&format!("{home}/bin/bpf-linker")).exists() {
        bail!("bpf-linker is in {home}/bin but not on PATH: add {home}/bin to PATH");
    }
    match &have {
        Some(v) => eprintln!("setup: {v} is not the pinned {want} on LLVM {LLVM_MAJOR}; reinstalling (a few minutes)"),
        None => eprintln!("setup: building {want} against LLVM {LLVM_MAJOR} (a few minutes, once)"),
    }
    let prefix = format!("/usr/lib/llvm-{LLVM_MAJOR}");
    let feature = format!("llvm-{LLVM_MAJOR}");
    let args = [
        "install",
        "bpf-linker",
        "--version",
        &format!("={BPF_LINKER}"),
        "--locked",
        "--force",
        "--no-default-features",
        "--features",
        &feature,
    ];
    let status =
        Command::new("cargo").args(args).env("LLVM_PREFIX", &prefix).status().context("running cargo install")?;
    if !status.success() {
        bail!("installing bpf-linker failed; run by hand:\n  LLVM_PREFIX={prefix} cargo {}", args.join(" "));
    }
    if bpf_linker_version().as_deref() != Some(want.as_str()) {
        bail!("cargo installed bpf-linker, but `bpf-linker --version` on PATH is not {want}: check PATH");
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
