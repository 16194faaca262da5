use which::which;

/// The build needs `bpf-linker`; rebuild when it changes (aya-template's way
/// of declaring a dependency on a binary).
///
/// For the BPF target, bpf-linker (which generates the code) is told the
/// instruction set: v3 (32-bit jumps and ALU, kernel 5.1+) and misaligned
/// memory access, which lets LLVM read a packet's 2- and 4-byte fields with
/// one load instead of one load per byte. The kernel allows misaligned
/// access wherever the CPU does it efficiently (x86-64, arm64); see
/// BENCHMARKS.md for what it saves.
fn main() {
    match which("bpf-linker") {
        Ok(path) => println!("cargo:rerun-if-changed={}", path.display()),
        Err(err) => println!("cargo:warning=bpf-linker not found ({err}); run `cargo xtask setup`"),
    }
    if std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("bpf") {
        println!("cargo:rustc-link-arg=--cpu-features=+allows-misaligned-mem-access");
    }
}
