//! sctp-monitor: live eBPF/XDP monitor for SCTP associations, paths and
//! failovers.

use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use sctp_monitor::{agent, kernel::XdpModeChoice};

#[derive(Parser)]
#[command(name = "sctp-monitor", version, about = "Live SCTP association, path and failover monitor (eBPF/XDP)")]
struct Cli {
    /// More log output (-v debug, -vv trace); also RUST_LOG.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Attach to interfaces and monitor SCTP live.
    Run(RunArgs),
    /// Rebuild associations, paths and failovers from a pcap/pcapng file.
    Replay(ReplayArgs),
}

#[derive(Args)]
struct ReplayArgs {
    /// The capture file (pcap or pcapng; Ethernet, Linux SLL/SLL2 or raw IP).
    file: std::path::PathBuf,
    /// Write the events as JSON Lines instead of the readable report.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct RunArgs {
    /// Interface to monitor (repeatable). Default: every interface that is up, except loopback.
    #[arg(short, long = "iface", env = "SCTP_MONITOR_IFACES", value_delimiter = ',')]
    ifaces: Vec<String>,
    /// XDP attach mode: native where the driver has it (auto falls back to skb).
    #[arg(long, value_enum, default_value_t = XdpModeChoice::Auto, env = "SCTP_MONITOR_XDP_MODE")]
    xdp_mode: XdpModeChoice,
    /// UDP port of SCTP over UDP (RFC 6951); 0 disables UDP encapsulation.
    #[arg(long, default_value_t = 9899, env = "SCTP_MONITOR_UDP_PORT")]
    udp_port: u16,
    /// Ring buffer size in bytes (power of two).
    #[arg(long, default_value_t = 4 << 20, env = "SCTP_MONITOR_RING_BYTES")]
    ring_bytes: u32,
    /// Entries of the kernel per-path map (LRU).
    #[arg(long, default_value_t = 65536, env = "SCTP_MONITOR_PATH_ENTRIES")]
    path_entries: u32,
    /// Entries of the kernel per-association-direction map (LRU).
    #[arg(long, default_value_t = 65536, env = "SCTP_MONITOR_ASSOC_ENTRIES")]
    assoc_entries: u32,
    /// DATA on a path after this many milliseconds of silence is reported again.
    #[arg(long, default_value_t = 1000, env = "SCTP_MONITOR_DATA_IDLE_MS")]
    data_idle_ms: u64,
    /// Show the kernel programs' diagnostic messages (aya-log).
    #[arg(long, env = "SCTP_MONITOR_DEBUG")]
    debug: bool,
    /// Print one line per kernel record on stderr.
    #[arg(long)]
    print_records: bool,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let level = match cli.verbose {
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(level)).init();
    match cli.cmd {
        Cmd::Run(a) => {
            let opts = agent::AgentOptions {
                ifaces: a.ifaces,
                xdp_mode: a.xdp_mode,
                udp_encap_port: a.udp_port,
                ring_bytes: a.ring_bytes,
                path_entries: a.path_entries,
                assoc_dir_entries: a.assoc_entries,
                data_idle: Duration::from_millis(a.data_idle_ms),
                debug: a.debug || cli.verbose > 0,
                print_records: a.print_records,
            };
            let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
            rt.block_on(agent::run(opts))
        }
        Cmd::Replay(a) => {
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            sctp_monitor::replay::run_replay_cli(&a.file, a.json, &mut out)
        }
    }
}
