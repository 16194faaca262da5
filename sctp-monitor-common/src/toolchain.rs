//! The pinned inputs of the eBPF build, in one place: `cargo xtask setup`
//! installs exactly these, and sctp-monitor's build.rs refuses to build the
//! kernel programs with anything else. The verifier's verdict depends on the
//! code these produce, so a program that loads here loads on every machine
//! set up from the same pins.
//!
//! To move a pin: change it here, run `cargo xtask setup` (it installs the
//! new one), then `cargo xtask test` (the verifier-budget test reports each
//! program's processed instructions) and update BENCHMARKS.md's figures.

/// The nightly that builds the eBPF crate (`-Z build-std=core`), by date;
/// `rustup toolchain install` takes it as it is.
pub const NIGHTLY: &str = "nightly-2026-05-20";

/// bpf-linker, by exact version (`cargo install --locked`, so its own
/// dependencies are pinned by its lockfile too).
pub const BPF_LINKER: &str = "0.13.0";

/// The LLVM major bpf-linker is built against (Debian's `llvm-N-dev`,
/// bpf-linker's `llvm-N` feature).
pub const LLVM_MAJOR: u32 = 22;
