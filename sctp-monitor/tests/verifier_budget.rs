//! Every program of the object loads on this kernel, each within a quarter
//! of the verifier's 1,000,000 processed-instruction limit, and a program
//! the verifier refuses gives an error that says what happened.
//!
//! Needs root (or CAP_BPF + CAP_PERFMON). Under CI (`CI` set) a missing
//! privilege fails the test; elsewhere the test says it skipped.

use sctp_monitor::kernel::{
    LoadOptions,
    load::verifier_report,
    verifier::{INSN_BUDGET, Rejected, VERIFIER_INSN_LIMIT, kernel_release},
};
use sctp_monitor_common::programs;

fn root() -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("kernel tests need root (BPF program loading); CI must run them as root");
    }
    eprintln!("SKIPPED: kernel tests need root");
    false
}

#[test]
fn every_program_is_accepted_within_a_quarter_of_the_verifier_limit() {
    if !root() {
        return;
    }
    let report = verifier_report(&LoadOptions::default()).expect("open the eBPF object");
    assert_eq!(report.len(), programs::ALL.len());
    let mut problems = Vec::new();
    for p in &report {
        match &p.verdict {
            Ok(Some(n)) => {
                println!(
                    "{}: {n} instructions processed ({:.2}% of the limit)",
                    p.name,
                    f64::from(*n) * 100.0 / f64::from(VERIFIER_INSN_LIMIT)
                );
                if *n > INSN_BUDGET {
                    problems.push(format!("{}: {n} processed instructions, over the budget of {INSN_BUDGET}", p.name));
                }
            }
            Ok(None) => problems.push(format!(
                "{}: loaded, but kernel {} does not report verified_insns (5.16+ does)",
                p.name,
                kernel_release()
            )),
            Err(e) => problems.push(format!("{e:#}")),
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn a_refused_program_is_named_with_the_verifiers_count_last_lines_kernel_and_toolchain() {
    if !root() {
        return;
    }
    let err = sctp_monitor::kernel::load::load_one(&LoadOptions::default(), programs::MUST_REJECT)
        .expect_err("the verifier must refuse probe_rejected");
    let rejected = err.downcast_ref::<Rejected>().unwrap_or_else(|| panic!("not a verifier rejection: {err:#}"));
    assert_eq!(rejected.program, programs::MUST_REJECT);
    let processed = rejected.processed.expect("the log's processed count");
    assert!(processed > 0 && processed < 1000, "a short program: {processed}");
    assert_eq!(rejected.kernel, kernel_release());
    let msg = err.to_string();
    assert!(msg.starts_with("the kernel verifier rejected the probe_rejected program"), "{msg}");
    assert!(msg.contains(&format!("after {processed} processed instructions")), "{msg}");
    assert!(msg.contains(&format!("kernel {}", kernel_release())), "{msg}");
    assert!(msg.contains(sctp_monitor_common::toolchain::NIGHTLY), "{msg}");
    assert!(msg.contains(&format!("bpf-linker {}", sctp_monitor_common::toolchain::BPF_LINKER)), "{msg}");
    // The verifier's own words on the refusal are among the last lines.
    assert!(
        rejected.tail.iter().any(|l| l.contains("unbounded")
            || l.contains("invalid access")
            || l.contains("out of bounds")
            || l.contains("min value is negative")
            || l.contains("max value is outside")),
        "{msg}"
    );
}
