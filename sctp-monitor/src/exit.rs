//! The exit codes of `sctp-monitor`, one place for the binary, `--help`,
//! the man page and the README.
//!
//! | code | meaning |
//! |---|---|
//! | 0 | done; `run` / `top` stopped on request (SIGINT, SIGTERM, `q`) after detaching every program |
//! | 1 | failure: the kernel refused the programs, an attach, the listener or the events file failed, the agent's loop failed, a capture could not be read (or was damaged: the report of what was read is printed first) |
//! | 2 | usage: an unknown flag or a bad value (clap), a bad `--metrics` address, a `--web-config` file that is not a valid web configuration, `-i` naming an interface that does not exist, `top --events -` |
//! | 3 | privileges: CAP_BPF, CAP_PERFMON or CAP_NET_ADMIN is missing (named in the message) |
//!
//! Errors other than usage and privileges exit 1; a supervisor can stop
//! restarting on 2 and 3 (systemd `RestartPreventExitStatus=2 3`).

/// The `--help` text (after the options) and the man page's EXTRA section.
pub const HELP: &str = "\
Exit codes:
  0  done; run/top stopped on request (SIGINT, SIGTERM, q) after detaching every program
  1  failure: the kernel refused the programs, attaching, the listener or the events file failed,
     or a capture could not be read (or was damaged: what was read is reported first)
  2  usage: unknown flag or bad value, bad --metrics address or --web-config file, -i naming a missing
     interface
  3  privileges: CAP_BPF, CAP_PERFMON or CAP_NET_ADMIN missing (named in the message)";

pub const FAILURE: u8 = 1;
pub const USAGE: u8 = 2;
pub const PRIVILEGES: u8 = 3;

/// An error that chooses the exit code; its message is the whole story.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Coded {
    pub code: u8,
    pub message: String,
}

/// `e` (its whole chain, on one line) as an error exiting with `code`.
pub fn with_code(code: u8, e: anyhow::Error) -> anyhow::Error {
    anyhow::Error::new(Coded { code, message: format!("{e:#}") })
}

/// The exit code for an error from `main`.
pub fn code_of(e: &anyhow::Error) -> u8 {
    e.chain().find_map(|c| c.downcast_ref::<Coded>()).map_or(FAILURE, |c| c.code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_survive_context_and_default_to_one() {
        let e = with_code(PRIVILEGES, anyhow::anyhow!("missing capabilities CAP_BPF"));
        assert_eq!(code_of(&e), 3);
        assert_eq!(e.to_string(), "missing capabilities CAP_BPF");
        assert_eq!(code_of(&e.context("starting the agent")), 3);
        assert_eq!(code_of(&anyhow::anyhow!("ring buffer")), 1);
        for c in [FAILURE, USAGE, PRIVILEGES] {
            assert!(HELP.contains(&format!("\n  {c}  ")), "{c} is documented in --help");
        }
    }
}
