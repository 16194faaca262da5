use which::which;

/// The build needs `bpf-linker`; rebuild when it changes (aya-template's way
/// of declaring a dependency on a binary).
fn main() {
    match which("bpf-linker") {
        Ok(path) => println!("cargo:rerun-if-changed={}", path.display()),
        Err(err) => println!("cargo:warning=bpf-linker not found ({err}); run `cargo xtask setup`"),
    }
}
