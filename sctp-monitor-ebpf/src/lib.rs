// The eBPF programs live in the `sctp-monitor` binary target (src/main.rs),
// built for bpfel-unknown-none by sctp-monitor's build.rs. This empty library
// lets the agent name this crate as a build dependency, so cargo rebuilds the
// agent when the programs change.
#![no_std]
