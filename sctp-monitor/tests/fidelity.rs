//! Fidelity: the monitor against real SCTP stacks, counted. Each run
//! (tests/peer/fidelity_run.sh) is a multihomed usrsctp association in the
//! lab's namespaces, the agent live on the server's two interfaces, a capture
//! of them and a failure of the primary path; the comparer
//! (support/fidelity.rs) judges the live events and `replay` of the capture
//! against the stack's moves of new DATA and its path states, both ways:
//! every missed and every false event fails.
//!
//! `FIDELITY` picks the matrix: unset or `one`, one raw IPv4 black-hole run
//! (the test `cargo xtask test` runs); `full`, usrsctp {raw4, udp4, raw6,
//! udp6} x {blackhole, linkdown}, the primary-change (ASCONF) run and the two
//! mid-flight runs, `FIDELITY_RUNS` (3) times each, then FIDELITY.md at the
//! repository root (`cargo xtask fidelity`). `FIDELITY_ONLY=TEXT` keeps the
//! scenarios whose name contains TEXT. `FIDELITY_COMPARE=DIR[,DIR...]` only
//! compares existing artifact directories (any stack). Artifact directories
//! of other stacks (the Linux kernel's SCTP in a guest) found under
//! `FIDELITY_EXTRA` (default `target/fidelity/linux`), one per subdirectory
//! with a meta.json, are compared too. Artifacts go to `FIDELITY_OUT`
//! (default `target/fidelity/usrsctp`).
//!
//! Needs root, tcpdump, tshark, editcap, nftables, gcc + libusrsctp-dev
//! (`cargo xtask setup --tests`).

mod support;
#[path = "support/fidelity.rs"]
mod fidelity;

use std::path::{Path, PathBuf};

use support::{privileged, process::{have, peer_binary}};

const MODES: [&str; 4] = ["raw4", "udp4", "raw6", "udp6"];

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_path_buf()
}

/// (mode, cut) of every usrsctp scenario of the matrix.
fn matrix(full: bool) -> Vec<(&'static str, &'static str)> {
    if !full {
        return vec![("raw4", "blackhole")];
    }
    let mut v = Vec::new();
    for cut in ["blackhole", "linkdown"] {
        for m in MODES {
            v.push((m, cut));
        }
    }
    v.extend([("raw4", "asconf"), ("raw4", "midflight-start"), ("raw4", "midflight-kill")]);
    v
}

fn run(out: &Path, mode: &str, cut: &str) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peer/fidelity_run.sh");
    let st = std::process::Command::new(script)
        .arg(out)
        .args([mode, cut])
        .env("SCTP_MONITOR", env!("CARGO_BIN_EXE_sctp-monitor"))
        .env("SCTP_PEER", peer_binary())
        .status()
        .expect("run fidelity_run.sh");
    assert!(st.success(), "fidelity_run.sh {} {mode} {cut} failed", out.display());
}

/// Artifact directories of other stacks: each subdirectory with a meta.json.
fn extra_dirs() -> Vec<PathBuf> {
    let root = std::env::var_os("FIDELITY_EXTRA").map_or_else(|| repo_root().join("target/fidelity/linux"), PathBuf::from);
    let mut v: Vec<PathBuf> = std::fs::read_dir(&root)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("meta.json").exists())
        .collect();
    v.sort();
    v
}

#[test]
fn fidelity_against_the_stack() {
    if !privileged("fidelity_against_the_stack") {
        return;
    }
    for tool in ["tcpdump", "tshark", "editcap", "nft", "gcc"] {
        assert!(have(tool), "{tool} not found: run `cargo xtask setup --tests`");
    }
    let agent = Path::new(env!("CARGO_BIN_EXE_sctp-monitor"));
    let full = std::env::var("FIDELITY").is_ok_and(|v| v == "full");
    let mut dirs: Vec<PathBuf> = Vec::new();
    if let Ok(list) = std::env::var("FIDELITY_COMPARE") {
        dirs.extend(list.split(',').filter(|d| !d.is_empty()).map(PathBuf::from));
    } else {
        let runs: u32 = if full { std::env::var("FIDELITY_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(3) } else { 1 };
        let only = std::env::var("FIDELITY_ONLY").unwrap_or_default();
        let out = std::env::var_os("FIDELITY_OUT")
            .map_or_else(|| repo_root().join("target/fidelity/usrsctp"), PathBuf::from);
        for (mode, cut) in matrix(full) {
            if !format!("{mode}-{cut}").contains(&only) {
                continue;
            }
            for i in 1..=runs {
                let d = out.join(format!("{mode}-{cut}-{i}"));
                eprintln!("fidelity: usrsctp {mode} {cut} run {i}/{runs} -> {}", d.display());
                run(&d, mode, cut);
                dirs.push(d);
            }
        }
        dirs.extend(extra_dirs());
    }
    assert!(!dirs.is_empty(), "no run to compare");
    let reports: Vec<fidelity::RunReport> = dirs.iter().map(|d| fidelity::compare(d, agent)).collect();
    for r in &reports {
        eprintln!("{}", r.explain());
    }
    let command = if full {
        "cargo xtask fidelity".to_string()
    } else {
        "cargo test -p sctp-monitor --test fidelity (as root)".to_string()
    };
    let table = fidelity::table(&reports, &command);
    eprintln!("{table}");
    if full {
        std::fs::write(repo_root().join("FIDELITY.md"), &table).expect("write FIDELITY.md");
        eprintln!("fidelity: wrote {}", repo_root().join("FIDELITY.md").display());
    }
    let wrong: Vec<&fidelity::RunReport> = reports.iter().filter(|r| !r.exact()).collect();
    assert!(
        wrong.is_empty(),
        "{} of {} runs disagree with the stack or between live and offline:\n{}",
        wrong.len(),
        reports.len(),
        wrong.iter().map(|r| r.explain()).collect::<Vec<_>>().join("\n")
    );
}
