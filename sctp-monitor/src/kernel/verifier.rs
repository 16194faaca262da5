//! The kernel verifier as the agent sees it: how much of its budget each
//! program took, and, when it refuses one, an error that says which program,
//! how far the verifier got, its last words, and what built and ran it.
//!
//! The verifier walks every path of a program, up to 1,000,000 processed
//! instructions (`BPF_COMPLEXITY_LIMIT_INSNS`). How many a program takes
//! moves with the kernel's pruning and the compiler's output, so the
//! programs are kept at no more than [`INSN_BUDGET`], a quarter of the limit,
//! and a kernel test fails when one grows past it.

use std::fmt;

use aya::{Ebpf, programs::ProgramError};

/// The kernel's limit on instructions processed while verifying one program
/// (`BPF_COMPLEXITY_LIMIT_INSNS`, the same since Linux 5.2).
pub const VERIFIER_INSN_LIMIT: u32 = 1_000_000;

/// What a program of ours may take: a quarter of the limit, so a kernel
/// whose verifier prunes less well, or a compiler that lays the code out
/// differently, still accepts it.
pub const INSN_BUDGET: u32 = VERIFIER_INSN_LIMIT / 4;

/// Verifier log lines kept in a rejection (its last ones: the reason, and
/// the statistics line).
const TAIL_LINES: usize = 12;

/// What built the embedded object: the pinned nightly and bpf-linker
/// (recorded by build.rs).
pub const EBPF_TOOLCHAIN: &str = env!("SCTP_MONITOR_EBPF_TOOLCHAIN");

/// The instructions the verifier processed for a loaded program (the
/// kernel's `verified_insns`, Linux 5.16+); `None` on older kernels or for a
/// program not loaded.
pub fn processed_insns(ebpf: &Ebpf, program: &str) -> Option<u32> {
    ebpf.program(program)?.info().ok()?.verified_instruction_count()
}

/// A program the kernel refused to load.
#[derive(Debug)]
pub struct Rejected {
    pub program: String,
    /// The syscall's error (E2BIG for "too large", EACCES/EINVAL for a
    /// proof the verifier could not make).
    pub error: String,
    /// `processed N insns` from the log, when the log got that far.
    pub processed: Option<u64>,
    /// The log's last lines.
    pub tail: Vec<String>,
    /// `uname -r` of the kernel that refused it.
    pub kernel: String,
    /// What built the object.
    pub toolchain: String,
}

impl Rejected {
    /// The rejection of `program`, from aya's load error; other load errors
    /// (no such program, wrong type) come back as they are.
    pub fn from_error(program: &str, err: ProgramError) -> anyhow::Error {
        match err {
            ProgramError::LoadError { io_error, verifier_log } => {
                let log = verifier_log.to_string();
                anyhow::Error::new(Rejected {
                    program: program.to_owned(),
                    error: io_error.to_string(),
                    processed: parse_processed(&log),
                    tail: tail(&log, TAIL_LINES),
                    kernel: kernel_release(),
                    toolchain: EBPF_TOOLCHAIN.to_owned(),
                })
            }
            other => anyhow::Error::new(other).context(format!("loading the {program} program")),
        }
    }
}

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the kernel verifier rejected the {} program ({})", self.program, self.error)?;
        match self.processed {
            Some(n) => write!(f, " after {n} processed instructions (limit {VERIFIER_INSN_LIMIT})")?,
            None => write!(f, " (the log has no processed-instruction count)")?,
        }
        write!(f, "; kernel {}, eBPF object built with {}", self.kernel, self.toolchain)?;
        if !self.tail.is_empty() {
            write!(f, "\nthe verifier's last lines:")?;
            for l in &self.tail {
                write!(f, "\n  {l}")?;
            }
        }
        write!(
            f,
            "\nPlease report this with the lines above; SCTP_MONITOR_VERIFIER_LOG=1 prints the verifier's \
             whole log"
        )
    }
}

impl std::error::Error for Rejected {}

/// `N` of the log's last `processed N insns` line.
pub fn parse_processed(log: &str) -> Option<u64> {
    log.lines().rev().find_map(|l| {
        let rest = l.trim_start().strip_prefix("processed ")?;
        let (n, after) = rest.split_once(' ')?;
        after.starts_with("insns").then(|| n.parse().ok()).flatten()
    })
}

/// The last `n` non-empty lines of the log.
fn tail(log: &str, n: usize) -> Vec<String> {
    let lines: Vec<&str> = log.lines().map(str::trim_end).filter(|l| !l.is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].iter().map(|l| (*l).to_owned()).collect()
}

/// The running kernel's release (`uname -r`).
pub fn kernel_release() -> String {
    // SAFETY: uname fills the struct it is given.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    if unsafe { libc::uname(&mut u) } != 0 {
        return "unknown".into();
    }
    // SAFETY: the kernel NUL-terminates release.
    unsafe { std::ffi::CStr::from_ptr(u.release.as_ptr()) }.to_string_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "\
func#0 @0
0: R1=ctx() R10=fp0
; let h = ptr_at(p, off) @ cursor.rs:20
1204: (61) r2 = *(u32 *)(r1 +4)
BPF program is too large. Processed 1000001 insn
processed 1000001 insns (limit 1000000) max_states_per_insn 70 total_states 42228 peak_states 60234 mark_read 12
";

    #[test]
    fn processed_count_is_read_from_the_statistics_line() {
        assert_eq!(parse_processed(LOG), Some(1_000_001));
        assert_eq!(parse_processed("processed 1534 insns (limit 1000000) max_states_per_insn 2"), Some(1534));
        assert_eq!(parse_processed("0: R1=ctx()\ninvalid access to map value\n"), None);
    }

    #[test]
    fn the_message_names_program_count_kernel_toolchain_and_last_lines() {
        let r = Rejected {
            program: "sctp_ingress".into(),
            error: "Argument list too long (os error 7)".into(),
            processed: parse_processed(LOG),
            tail: tail(LOG, 3),
            kernel: "6.18.1".into(),
            toolchain: "nightly-2026-05-20, bpf-linker 0.13.0".into(),
        };
        let msg = r.to_string();
        assert!(msg.starts_with("the kernel verifier rejected the sctp_ingress program"), "{msg}");
        assert!(msg.contains("after 1000001 processed instructions (limit 1000000)"), "{msg}");
        assert!(msg.contains("kernel 6.18.1, eBPF object built with nightly-2026-05-20, bpf-linker 0.13.0"), "{msg}");
        assert!(msg.contains("\n  BPF program is too large. Processed 1000001 insn\n"), "{msg}");
        assert!(!msg.contains("func#0"), "only the last lines: {msg}");
    }
}
