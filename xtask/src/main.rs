//! `cargo xtask`: a thin driver over cargo. It installs what the build and
//! the tests need (`setup`), then builds, runs, tests and benchmarks. The eBPF
//! build itself is sctp-monitor's build.rs (aya-build), not reimplemented here.

mod bench;
mod deploy;
mod fidelity;
mod fuzz;
mod guest;
mod lab;
mod run;
mod setup;
mod soak;
mod test;
mod tools;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "Build, run, test and benchmark sctp-monitor")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Install the toolchain pieces and Debian packages the project needs
    /// (idempotent; quiet when everything is there).
    Setup {
        /// Also install what the tests need (netns tools, usrsctp, tshark...).
        #[arg(long)]
        tests: bool,
    },
    /// Build the agent (release), eBPF programs included.
    Build,
    /// Build and run the agent as root: `cargo xtask run -- run -i eth0`.
    Run {
        /// Arguments for `sctp-monitor`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Run every test (host, kernel BPF_PROG_TEST_RUN, network namespaces).
    Test {
        /// Extra arguments for `cargo test` (e.g. a test name filter).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// A two-host multihomed SCTP lab in network namespaces, the agent on it
    /// and the live view; the primary path is cut and restored periodically.
    /// Needs root. Ctrl-C (or `q` in the view) removes everything.
    Lab {
        /// Cut the primary path every this many seconds (restored half-way).
        #[arg(long, default_value_t = 20)]
        cut_every: u64,
        /// No live view: keep the lab running until Ctrl-C.
        #[arg(long)]
        no_view: bool,
        /// Only remove what an earlier run left, then exit.
        #[arg(long)]
        clean: bool,
    },
    /// Fuzzing: the kernel loop (random and mutated frames through the real
    /// programs with BPF_PROG_TEST_RUN, asserting PASS and that the counters
    /// add up), then each libFuzzer target (decoder, capture reader,
    /// tracker) for `--secs`. Prints executions and crash inputs per target.
    Fuzz {
        /// Kernel loop: frames (each runs through XDP and TC).
        #[arg(long, default_value_t = 2_000_000)]
        runs: u64,
        /// Kernel loop: random seed.
        #[arg(long, default_value_t = 0x5eed_cafe)]
        seed: u64,
        /// Seconds per libFuzzer target.
        #[arg(long, default_value_t = 60)]
        secs: u64,
        /// Only these (repeatable): kernel, decode_record, decode_packet,
        /// capture_reader, tracker_sequence. Default: all.
        #[arg(long = "target")]
        targets: Vec<String>,
    },
    /// Soak: the agent under a high record rate for N minutes, resident
    /// memory sampled; fails when it grows after warm-up. Needs root.
    Soak {
        #[arg(long, default_value_t = 10.0)]
        minutes: f64,
        /// Kernel records per second asked of the agent (the sender paces
        /// itself to this; on a 2-core machine it reaches about 55,000).
        #[arg(long, default_value_t = 50_000)]
        rate: u64,
        /// Seconds between memory samples.
        #[arg(long, default_value_t = 5)]
        sample_secs: u64,
        /// Growth allowed after warm-up, in percent of the level then.
        #[arg(long, default_value_t = 10.0)]
        tolerance_pct: f64,
    },
    /// The fidelity matrix: real stacks (usrsctp in the lab; the Linux
    /// kernel's SCTP where its artifacts are), failures cut and restored,
    /// the agent live and `replay` judged against each stack's own moves and
    /// path states; writes FIDELITY.md. Needs root.
    Fidelity {
        /// Runs of each scenario.
        #[arg(long, default_value_t = 3)]
        runs: u32,
        /// Only the scenarios whose name (e.g. `raw6-linkdown`) contains this.
        #[arg(long)]
        only: Option<String>,
        /// Runs of each Linux kernel SCTP scenario in the guest (booted from
        /// Debian's kernel packages), made first into target/fidelity/linux;
        /// 0 judges the runs already there.
        #[arg(long, default_value_t = 2)]
        guest_runs: u32,
    },
    /// Shell completions (bash, zsh, fish) from the agent's command line.
    Completions {
        #[arg(long, default_value = "target/completions")]
        out_dir: std::path::PathBuf,
    },
    /// Man pages (sctp-monitor.1 and one per subcommand).
    Man {
        #[arg(long, default_value = "target/man")]
        out_dir: std::path::PathBuf,
    },
    /// Regenerate deploy/kubernetes/daemonset.yaml from the Helm chart.
    Manifests,
    /// Build the container image from deploy/Dockerfile (buildah, no daemon).
    Image {
        #[arg(long, default_value = "localhost/sctp-monitor:dev")]
        tag: String,
        /// Builder base (default: the Dockerfile's, rust:1-bookworm).
        #[arg(long)]
        builder_image: Option<String>,
        /// Runtime base (default: the Dockerfile's, debian:bookworm-slim).
        #[arg(long)]
        runtime_image: Option<String>,
        /// Instead: run tests/image.rs (makes Debian bases with debootstrap,
        /// builds, starts the image in a namespace; root, under the kernel lock).
        #[arg(long)]
        test: bool,
    },
    /// One failover run of the Linux kernel's own SCTP in a guest (Debian's
    /// kernel package under QEMU): the agent live on the server's
    /// interfaces, path 1 cut and restored. Leaves client.jsonl,
    /// server.jsonl, agent.jsonl, capture.pcap, meta.json and agent.log in
    /// --out. Needs root.
    GuestRun {
        /// 6.1 (Debian 12), 6.12 (Debian 13) or 5.10 (Debian 11).
        #[arg(long, default_value = "6.1")]
        kernel: String,
        #[arg(long, default_value = "ipv4", value_parser = ["ipv4", "ipv6"])]
        family: String,
        /// blackhole: nftables drops at both ends of path 1; linkdown: the
        /// server's interface of path 1 down; stallread: no path cut, the
        /// server stops reading for 5 s with an 8 KiB receive buffer (its
        /// window closes and opens again).
        #[arg(long, default_value = "blackhole", value_parser = ["blackhole", "linkdown", "stallread"])]
        cut: String,
        /// on: the kernel's quick failover (pf_retrans 0); off: PF disabled.
        #[arg(long, default_value = "on", value_parser = ["on", "off"])]
        pf: String,
        #[arg(long, default_value = "target/guest-runs/last")]
        out: std::path::PathBuf,
        /// Also client-sent.pcap and server-sent.pcap (what each stack
        /// handed to a device).
        #[arg(long)]
        sent_captures: bool,
        /// Instead: only start the agent in the guest and print how it ends
        /// (its verifier counts, or why the kernel is refused).
        #[arg(long)]
        check: bool,
        /// Instead: the Linux runs of the fidelity matrix (6.1: IPv4 and
        /// IPv6, black hole and link down, PF on and off; 6.12: IPv4 black
        /// hole), this many times each, into --out/KERNEL-FAMILY-CUT-PF-N.
        #[arg(long, value_name = "RUNS")]
        matrix: Option<u32>,
    },
    /// Run the benchmarks and print the tables for BENCHMARKS.md.
    Bench {
        /// Repeats per BPF_PROG_TEST_RUN call (at least 10^7 for the table).
        #[arg(long, default_value_t = 10_000_000)]
        repeat: u32,
        /// Runs per case; the median is reported.
        #[arg(long, default_value_t = 5)]
        runs: u32,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Setup { tests } => setup::setup(if tests { setup::Scope::Tests } else { setup::Scope::Build }),
        Cmd::Build => {
            setup::setup(setup::Scope::Build)?;
            run::build_release()
        }
        Cmd::Run { args } => {
            setup::setup(setup::Scope::Build)?;
            run::run(&args)
        }
        Cmd::Test { args } => {
            setup::setup(setup::Scope::Tests)?;
            test::test(&args)
        }
        Cmd::Lab { cut_every, no_view, clean } => {
            if clean {
                lab::cleanup();
                return Ok(());
            }
            setup::setup(setup::Scope::Build)?;
            lab::lab_main(cut_every, no_view)
        }
        Cmd::Fuzz { runs, seed, secs, targets } => {
            setup::setup(setup::Scope::Build)?;
            setup::cargo_fuzz()?;
            fuzz::fuzz(&fuzz::Options { runs, seed, secs, targets })
        }
        Cmd::Soak { minutes, rate, sample_secs, tolerance_pct } => {
            setup::setup(setup::Scope::Build)?;
            soak::soak(&soak::SoakArgs { minutes, rate, sample_secs, tolerance_pct })
        }
        Cmd::Fidelity { runs, only, guest_runs } => {
            setup::setup(setup::Scope::Tests)?;
            if guest_runs > 0 && only.is_none() {
                let out = run::workspace_root().join("target/fidelity/linux");
                let _ = std::fs::remove_dir_all(&out);
                let agent = run::workspace_root().join("target/release/sctp-monitor");
                let r = guest::GuestRun {
                    kernel: "6.1".into(),
                    family: "ipv4".into(),
                    cut: "blackhole".into(),
                    pf: true,
                    out,
                    agent,
                    peer: Default::default(),
                    sent_captures: false,
                };
                guest::guest_run_main(r, guest::Mode::Matrix(guest_runs))?;
            }
            fidelity::fidelity(runs, guest_runs, only.as_deref())
        }
        Cmd::Completions { out_dir } => {
            setup::setup(setup::Scope::Build)?;
            deploy::generate("completions", &out_dir)
        }
        Cmd::Man { out_dir } => {
            setup::setup(setup::Scope::Build)?;
            deploy::generate("man", &out_dir)
        }
        Cmd::Manifests => {
            setup::setup(setup::Scope::Tests)?;
            deploy::manifests()
        }
        Cmd::Image { test: true, .. } => {
            setup::setup(setup::Scope::Tests)?;
            deploy::image_test()
        }
        Cmd::Image { tag, builder_image, runtime_image, .. } => {
            deploy::image(&tag, builder_image.as_deref(), runtime_image.as_deref())
        }
        Cmd::GuestRun { kernel, family, cut, pf, out, sent_captures, check, matrix } => {
            setup::setup(setup::Scope::Tests)?;
            let agent = run::workspace_root().join("target/release/sctp-monitor");
            let pf = pf == "on";
            let r = guest::GuestRun { kernel, family, cut, pf, out, agent, peer: Default::default(), sent_captures };
            let mode = match (check, matrix) {
                (true, _) => guest::Mode::Check,
                (false, Some(runs)) => guest::Mode::Matrix(runs),
                (false, None) => guest::Mode::One,
            };
            guest::guest_run_main(r, mode)
        }
        Cmd::Bench { repeat, runs } => {
            setup::setup(setup::Scope::Tests)?;
            bench::bench(repeat, runs)
        }
    }
}
