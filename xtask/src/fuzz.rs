//! `cargo xtask fuzz`: the kernel fuzz loop (`examples/kernel_fuzz.rs`,
//! BPF_PROG_TEST_RUN), then each libFuzzer target of `sctp-monitor/fuzz` for
//! a fixed time, on seeds made from the fixtures (`examples/fuzz_seeds.rs`).
//! Ends with executions and crash inputs per target; fails if any crashed.
//!
//! Per target, by hand:
//! `AYA_BUILD_SKIP=1 cargo +nightly fuzz run --fuzz-dir sctp-monitor/fuzz --target-dir target/fuzz \
//!  TARGET target/fuzz/corpus/TARGET target/fuzz/seeds/TARGET -- -max_total_time=60`

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context as _, bail, ensure};

use crate::run::{cargo, workspace_root};

/// The libFuzzer targets (`sctp-monitor/fuzz/fuzz_targets`).
pub const TARGETS: &[&str] = &["decode_record", "decode_packet", "capture_reader", "tracker_sequence"];
/// The name `--target` gives the kernel loop.
pub const KERNEL: &str = "kernel";

/// Memory bounds for every libFuzzer run: one allocation above
/// `MALLOC_LIMIT_MB` or a resident size above `RSS_LIMIT_MB` is a crash. The
/// capture reader must never allocate from a length field, so the largest
/// legitimate allocation is about the input's size (at most 64 KiB).
const MALLOC_LIMIT_MB: u32 = 64;
const RSS_LIMIT_MB: u32 = 1024;
/// Largest input libFuzzer makes per target: a ring record is at most 592
/// bytes; a frame up to a jumbo one; a capture or a script (the biggest seed
/// is a 300-packet script) up to 64 KiB.
fn max_len(target: &str) -> u32 {
    match target {
        "decode_record" => 1024,
        "decode_packet" => 16 << 10,
        _ => 64 << 10,
    }
}
/// A target that crashes is started again (new corpus entries kept) until
/// its time is used, at most this many times.
const MAX_RESTARTS: u32 = 5;

pub struct Options {
    pub runs: u64,
    pub seed: u64,
    pub secs: u64,
    pub targets: Vec<String>,
}

struct Tally {
    name: String,
    secs: f64,
    execs: u64,
    corpus: usize,
    crashes: Vec<PathBuf>,
}

pub fn fuzz(o: &Options) -> anyhow::Result<()> {
    for t in &o.targets {
        ensure!(
            t == KERNEL || TARGETS.contains(&t.as_str()),
            "unknown fuzz target {t}; targets: {KERNEL} {}",
            TARGETS.join(" ")
        );
    }
    let want = |t: &str| o.targets.is_empty() || o.targets.iter().any(|x| x == t);
    if want(KERNEL) {
        let ok = cargo()
            .args(["run", "--release", "--package", "sctp-monitor", "--example", "kernel_fuzz", "--"])
            .args([o.runs.to_string(), o.seed.to_string()])
            .status()?;
        ensure!(ok.success(), "kernel fuzz loop failed");
    }
    let targets: Vec<&str> = TARGETS.iter().copied().filter(|t| want(t)).collect();
    if targets.is_empty() {
        return Ok(());
    }
    let root = workspace_root();
    let seeds = root.join("target/fuzz/seeds");
    let _ = std::fs::remove_dir_all(&seeds);
    let ok = cargo()
        .args(["run", "--quiet", "--package", "sctp-monitor", "--example", "fuzz_seeds", "--"])
        .arg(&seeds)
        .status()?;
    ensure!(ok.success(), "generating the seed corpora failed");
    let mut tallies = Vec::new();
    for t in targets {
        tallies.push(run_target(&root, t, o.secs)?);
    }
    println!(
        "\nlibFuzzer targets ({} s each; memory: malloc <= {MALLOC_LIMIT_MB} MB, rss <= {RSS_LIMIT_MB} MB)",
        o.secs
    );
    println!("| target | time (s) | executions | exec/s | corpus | crash inputs |");
    println!("|---|---:|---:|---:|---:|---:|");
    for t in &tallies {
        println!(
            "| {} | {:.0} | {} | {:.0} | {} | {} |",
            t.name,
            t.secs,
            t.execs,
            t.execs as f64 / t.secs.max(1e-9),
            t.corpus,
            t.crashes.len()
        );
    }
    let crashed: Vec<&Tally> = tallies.iter().filter(|t| !t.crashes.is_empty()).collect();
    if crashed.is_empty() {
        return Ok(());
    }
    for t in &crashed {
        for c in &t.crashes {
            println!(
                "crash: {}\n  reproduce: AYA_BUILD_SKIP=1 cargo +nightly fuzz run --fuzz-dir sctp-monitor/fuzz \
                 --target-dir target/fuzz {} {}\n  then fix it and commit the input under \
                 sctp-monitor/tests/fuzz_regressions/{}/ (tests/fuzz_regressions.rs runs it)",
                c.display(),
                t.name,
                c.display(),
                t.name
            );
        }
    }
    bail!("{} fuzz target(s) found crash inputs", crashed.len())
}

fn run_target(root: &Path, target: &str, secs: u64) -> anyhow::Result<Tally> {
    let corpus = root.join("target/fuzz/corpus").join(target);
    let artifacts = root.join("target/fuzz/artifacts").join(target);
    std::fs::create_dir_all(&corpus)?;
    std::fs::create_dir_all(&artifacts)?;
    let mut tally = Tally { name: target.to_string(), secs: 0.0, execs: 0, corpus: 0, crashes: Vec::new() };
    // Fuzzing time, from libFuzzer's start (the first run also builds).
    let mut fuzzed = 0.0f64;
    for _ in 0..=MAX_RESTARTS {
        let left = secs.saturating_sub(fuzzed as u64);
        if left == 0 {
            break;
        }
        eprintln!("== fuzz {target} for {left} s");
        let mut child = Command::new("cargo")
            .current_dir(root)
            .args(["+nightly", "fuzz", "run", "--fuzz-dir", "sctp-monitor/fuzz", "--target-dir", "target/fuzz", target])
            .arg(&corpus)
            .arg(root.join("target/fuzz/seeds").join(target))
            .arg("--")
            .arg(format!("-max_total_time={left}"))
            .arg(format!("-malloc_limit_mb={MALLOC_LIMIT_MB}"))
            .arg(format!("-rss_limit_mb={RSS_LIMIT_MB}"))
            .arg(format!("-max_len={}", max_len(target)))
            .arg(format!("-artifact_prefix={}/", artifacts.display()))
            .arg("-print_final_stats=1")
            // The targets never load BPF: no eBPF build under the sanitizers.
            .env("AYA_BUILD_SKIP", "1")
            .stderr(Stdio::piped())
            .spawn()
            .context("running cargo +nightly fuzz")?;
        let mut crashed = None;
        let mut started: Option<Instant> = None;
        let stderr = child.stderr.take().expect("piped stderr");
        for line in BufReader::new(stderr).lines() {
            let line = line?;
            eprintln!("{line}");
            if started.is_none() && line.starts_with("INFO: Seed:") {
                started = Some(Instant::now());
            }
            if let Some(n) = line.strip_prefix("stat::number_of_executed_units:") {
                tally.execs += n.trim().parse::<u64>().unwrap_or(0);
            }
            // "Test unit written to PATH" (crash, leak, oom, timeout).
            if let Some(p) = line.split("Test unit written to ").nth(1) {
                crashed = Some(PathBuf::from(p.trim()));
            }
        }
        let status = child.wait()?;
        fuzzed += started.map_or(0.0, |t| t.elapsed().as_secs_f64());
        match crashed {
            Some(p) => {
                if !tally.crashes.contains(&p) {
                    tally.crashes.push(p);
                }
            }
            None if status.success() => break,
            None => bail!("cargo fuzz run {target} failed without a crash input ({status})"),
        }
    }
    tally.secs = fuzzed;
    tally.corpus = std::fs::read_dir(&corpus)?.count();
    Ok(tally)
}
