//! Builds the eBPF crate for the BPF target (aya-build: nightly, build-std)
//! and leaves the object in OUT_DIR, where `src/ebpf.rs` embeds it. So
//! `cargo build` always produces an agent whose kernel programs match it.
//!
//! `AYA_BUILD_SKIP=1` skips the eBPF build (for `cargo check`/clippy or host
//! tests of the pure modules); the embedded object is then empty and loading
//! it fails with a clear message.

use std::{env, fs, path::PathBuf};

use anyhow::{Context as _, anyhow};

fn main() -> anyhow::Result<()> {
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").ok_or_else(|| anyhow!("OUT_DIR not set"))?);
    let object = out_dir.join("sctp-monitor");
    let skip = env::var("AYA_BUILD_SKIP").is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"));
    if skip {
        fs::write(&object, []).with_context(|| format!("writing placeholder {}", object.display()))?;
    }
    let root = env::var("CARGO_MANIFEST_DIR")?;
    let ebpf_dir = PathBuf::from(root).join("../sctp-monitor-ebpf");
    let ebpf_dir =
        ebpf_dir.canonicalize().with_context(|| format!("eBPF crate not found at {}", ebpf_dir.display()))?;
    let ebpf_dir = ebpf_dir.to_str().ok_or_else(|| anyhow!("non-UTF-8 path"))?;
    aya_build::build_ebpf(
        [aya_build::Package { name: "sctp-monitor-ebpf", root_dir: ebpf_dir, ..Default::default() }],
        aya_build::Toolchain::default(),
    )
    .context(
        "building the eBPF programs failed; `cargo xtask setup` installs what it needs \
         (nightly rust-src, llvm-22-dev, bpf-linker)",
    )
}
