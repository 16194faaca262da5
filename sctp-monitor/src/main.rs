//! sctp-monitor: live eBPF/XDP monitor for SCTP associations, paths and
//! failovers.

use std::time::Duration;

use clap::{Args, CommandFactory, Parser, Subcommand};
use sctp_monitor::{agent, exit, kernel::XdpModeChoice};

#[derive(Parser)]
#[command(
    name = "sctp-monitor",
    version,
    about = "Live SCTP association, path and failover monitor (eBPF/XDP)",
    after_help = exit::HELP
)]
struct Cli {
    /// More log output: -v the agent's debug lines, -vv also its libraries' (aya's loader), -vvv trace; also RUST_LOG.
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
    /// Live view (terminal UI) of a running agent through its HTTP API (--connect), or of one it runs itself (--iface).
    Top(TopArgs),
    /// Write shell completions or man pages (used by `cargo xtask completions|man`).
    #[command(hide = true)]
    Generate {
        #[arg(value_parser = ["completions", "man"])]
        what: String,
        /// Directory to write into.
        #[arg(long)]
        out_dir: std::path::PathBuf,
    },
}

#[derive(Args)]
struct TopArgs {
    /// The agent's API (its --metrics address).
    #[arg(long, default_value = "http://127.0.0.1:9108", env = "SCTP_MONITOR_CONNECT", conflicts_with = "ifaces")]
    connect: String,
    /// Poll the agent this often, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    interval_ms: u64,
    /// Run the agent inside the view, on this interface (repeatable), instead of connecting to one.
    #[arg(short, long = "iface", value_delimiter = ',', help_heading = "In-process agent (--iface)")]
    ifaces: Vec<String>,
    /// With --iface: where the JSON Lines events go (a file, appended to), or `off`.
    #[arg(long, default_value = "off", help_heading = "In-process agent (--iface)")]
    events: String,
    /// With --iface: also serve /metrics and the API on ADDR:PORT; `off` serves nothing.
    #[arg(long, default_value = "off", help_heading = "In-process agent (--iface)")]
    metrics: String,
    /// With --iface: where the agent's log goes besides the view's event pane (a file, appended to).
    #[arg(long, help_heading = "In-process agent (--iface)")]
    log_file: Option<std::path::PathBuf>,
    #[command(flatten, next_help_heading = "In-process agent (--iface)")]
    agent: AgentArgs,
}

#[derive(Args)]
struct ReplayArgs {
    /// The capture file (pcap or pcapng, either gzip-compressed; Ethernet, Linux SLL/SLL2 or raw IP); `-` reads
    /// standard input.
    file: std::path::PathBuf,
    /// Write the events as JSON Lines (then one `{"summary": ...}` line) instead of the readable report.
    #[arg(long)]
    json: bool,
    /// The stacks' Path.Max.Retrans, as `run --path-max-retrans`.
    #[arg(long)]
    path_max_retrans: Option<u8>,
    /// As `run --hb-timeout-ms`.
    #[arg(long, default_value_t = 3000)]
    hb_timeout_ms: u64,
    #[command(flatten)]
    quality: QualityArgs,
}

/// How path quality is judged (`path_degraded`), for `run` and `replay`.
#[derive(Args)]
struct QualityArgs {
    /// Judge each path's losses over windows of this many seconds (path_degraded; 0: never).
    #[arg(long, default_value_t = 30, env = "SCTP_MONITOR_DEGRADED_WINDOW_S")]
    degraded_window_s: u64,
    /// path_degraded when this share of the DATA chunks sent on a path in a window (at least 50) had to be
    /// sent again...
    #[arg(long, default_value_t = 0.05, env = "SCTP_MONITOR_DEGRADED_LOSS_RATIO", value_parser = ratio)]
    degraded_loss_ratio: f64,
    /// ... or this share of its heartbeats (at least 5) went unanswered; path_degraded_end once both are below
    /// half of their threshold over a window.
    #[arg(long, default_value_t = 0.2, env = "SCTP_MONITOR_DEGRADED_HEARTBEAT_LOSS_RATIO", value_parser = ratio)]
    degraded_heartbeat_loss_ratio: f64,
}

/// A share: a number from 0 to 1.
fn ratio(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(r) if (0.0..=1.0).contains(&r) => Ok(r),
        _ => Err(format!("{s:?} is not a ratio from 0 to 1 (0.05 is 5%)")),
    }
}

impl QualityArgs {
    fn apply(&self, c: &mut sctp_monitor::tracker::Config) {
        c.degraded_window_ns = self.degraded_window_s.saturating_mul(1_000_000_000);
        c.degraded_loss_ratio = self.degraded_loss_ratio;
        c.degraded_hb_loss_ratio = self.degraded_heartbeat_loss_ratio;
    }
}

#[derive(Args)]
struct RunArgs {
    /// Interface to monitor (repeatable); re-attached if it disappears and comes back. Default: every
    /// interface that is up, except loopback, as they come and go.
    #[arg(short, long = "iface", env = "SCTP_MONITOR_IFACES", value_delimiter = ',')]
    ifaces: Vec<String>,
    /// Print one line per kernel record on stderr.
    #[arg(long, env = "SCTP_MONITOR_PRINT_RECORDS")]
    print_records: bool,
    /// Where the JSON Lines events go: `-` for stdout, a file (appended to), or `off`.
    #[arg(long, default_value = "-", env = "SCTP_MONITOR_EVENTS")]
    events: String,
    /// Listen address of /metrics (Prometheus/OpenMetrics) and the JSON API; `off` disables it.
    #[arg(long, default_value = "127.0.0.1:9108", env = "SCTP_MONITOR_METRICS")]
    metrics: String,
    /// TLS and basic authentication of that listener: a web configuration file in the Prometheus exporters'
    /// format (tls_server_config, basic_auth_users), as node-exporter's --web.config.file.
    #[arg(long, value_name = "FILE", env = "SCTP_MONITOR_WEB_CONFIG")]
    web_config: Option<std::path::PathBuf>,
    #[command(flatten)]
    agent: AgentArgs,
}

/// The agent's settings shared by `run` and `top --iface`.
#[derive(Args)]
struct AgentArgs {
    /// XDP attach mode: native where the driver has it (auto falls back to skb).
    #[arg(long, value_enum, default_value_t = XdpModeChoice::Auto, env = "SCTP_MONITOR_XDP_MODE")]
    xdp_mode: XdpModeChoice,
    /// UDP port of SCTP over UDP (RFC 6951); 0 disables UDP encapsulation.
    #[arg(long, default_value_t = 9899, env = "SCTP_MONITOR_UDP_PORT")]
    udp_port: u16,
    /// Ring buffer size in bytes (power of two).
    #[arg(long, default_value_t = 4 << 20, env = "SCTP_MONITOR_RING_BYTES")]
    ring_bytes: u32,
    /// Entries of the kernel per-path slot array (rounded up to a power of
    /// two) and of its overflow map (LRU).
    #[arg(long, default_value_t = 65536, env = "SCTP_MONITOR_PATH_ENTRIES")]
    path_entries: u32,
    /// Entries of the kernel per-association-direction array (direct-mapped,
    /// rounded up to a power of two).
    #[arg(long, default_value_t = 65536, env = "SCTP_MONITOR_ASSOC_ENTRIES")]
    assoc_entries: u32,
    /// DATA on a path after this many milliseconds of silence is reported again.
    #[arg(long, default_value_t = 1000, env = "SCTP_MONITOR_DATA_IDLE_MS")]
    data_idle_ms: u64,
    /// Show the kernel programs' diagnostic messages (aya-log).
    #[arg(long, env = "SCTP_MONITOR_DEBUG")]
    debug: bool,
    /// Read the per-CPU path maps (and look for new interfaces) this often, in milliseconds.
    #[arg(long, default_value_t = 1000, env = "SCTP_MONITOR_POLL_INTERVAL_MS")]
    poll_interval_ms: u64,
    /// Let the tracker check timeouts (heartbeats, idle, stalled) this often, in milliseconds (replay's
    /// cadence on capture time, so that live and replay agree).
    #[arg(long, default_value_t = 100, env = "SCTP_MONITOR_TICK_INTERVAL_MS")]
    tick_interval_ms: u64,
    /// The monitored stacks' Path.Max.Retrans: a path is down (inactive) after more errors in a row
    /// than this (unanswered heartbeats and retransmission timeouts of its DATA); a move of new DATA
    /// away from it at its first error makes it potentially failed. Sets --hb-down-after and
    /// --retrans-down-after to N + 1.
    #[arg(long, env = "SCTP_MONITOR_PATH_MAX_RETRANS")]
    path_max_retrans: Option<u8>,
    /// A path is down after this many errors in a row (unanswered heartbeats and retransmission
    /// timeouts of its DATA together).
    #[arg(long, default_value_t = 5, env = "SCTP_MONITOR_HB_DOWN_AFTER")]
    hb_down_after: u8,
    /// A heartbeat not answered within this many milliseconds counts as unanswered.
    #[arg(long, default_value_t = 3000, env = "SCTP_MONITOR_HB_TIMEOUT_MS")]
    hb_timeout_ms: u64,
    /// A path is down after this many retransmission timeouts of its DATA alone, without it showing life.
    #[arg(long, default_value_t = 5, env = "SCTP_MONITOR_RETRANS_DOWN_AFTER")]
    retrans_down_after: u16,
    /// Report "stalled" after this many milliseconds without cumulative ack progress.
    #[arg(long, default_value_t = 10_000, env = "SCTP_MONITOR_STALL_AFTER_MS")]
    stall_after_ms: u64,
    #[command(flatten)]
    quality: QualityArgs,
    /// An association without packets for this many seconds is ended (timeout).
    #[arg(long, default_value_t = 300, env = "SCTP_MONITOR_IDLE_TIMEOUT_S")]
    idle_timeout_s: u64,
    /// Most associations tracked; beyond, the longest idle are evicted.
    #[arg(long, default_value_t = 262_144, env = "SCTP_MONITOR_MAX_ASSOCS")]
    max_assocs: usize,
    /// Associations with their own metric series (per association / per path), at most.
    #[arg(long, default_value_t = 500, env = "SCTP_MONITOR_METRICS_SERIES_CAP")]
    metrics_series_cap: usize,
    /// Events kept in memory for /api/events.
    #[arg(long, default_value_t = 10_000, env = "SCTP_MONITOR_EVENT_LOG_SIZE")]
    event_log_size: usize,
    /// The `host` field of every event (default: this host's name).
    #[arg(long, env = "SCTP_MONITOR_HOST")]
    host: Option<String>,
    /// Rotate the --events FILE before it grows past this many bytes (0: never).
    #[arg(long, default_value_t = 0, env = "SCTP_MONITOR_EVENTS_MAX_BYTES")]
    events_max_bytes: u64,
    /// Rotated event files kept (FILE.1 newest .. FILE.N); 0 keeps none.
    #[arg(long, default_value_t = 5, env = "SCTP_MONITOR_EVENTS_KEEP")]
    events_keep: usize,
    /// Also export events (logs) and counts (metrics) over OTLP/gRPC to this collector, e.g.
    /// http://127.0.0.1:4317 (needs a build with `--features otlp`).
    #[arg(long, env = "SCTP_MONITOR_OTLP_ENDPOINT")]
    otlp_endpoint: Option<String>,
    /// Export OTLP metrics this often, in milliseconds.
    #[arg(long, default_value_t = 10_000, env = "SCTP_MONITOR_OTLP_INTERVAL_MS")]
    otlp_interval_ms: u64,
}

/// `--metrics ADDR:PORT|off`.
fn metrics_addr(m: &str) -> anyhow::Result<Option<std::net::SocketAddr>> {
    match m {
        "off" | "none" | "" => Ok(None),
        m => m.parse::<std::net::SocketAddr>().map(Some).map_err(|e| {
            exit::with_code(
                exit::USAGE,
                anyhow::anyhow!("--metrics {m:?}: {e}; give ADDR:PORT, e.g. 127.0.0.1:9108 or [::1]:9108, or off"),
            )
        }),
    }
}

impl AgentArgs {
    fn options(
        self,
        ifaces: Vec<String>,
        events: String,
        metrics: &str,
        print_records: bool,
        verbose: u8,
    ) -> anyhow::Result<agent::AgentOptions> {
        let a = self;
        let mut tracker = sctp_monitor::tracker::Config {
            max_assocs: a.max_assocs.max(1),
            idle_timeout_ns: a.idle_timeout_s.saturating_mul(1_000_000_000),
            hb_down_after: a.path_max_retrans.map_or(a.hb_down_after, |n| n.saturating_add(1)).max(1),
            hb_answer_timeout_ns: a.hb_timeout_ms.saturating_mul(1_000_000),
            retrans_down_after: a.path_max_retrans.map_or(a.retrans_down_after, |n| n.saturating_add(1) as u16).max(1),
            stall_after_ns: a.stall_after_ms.saturating_mul(1_000_000),
            // Ended associations and RTT samples: the pipeline's choice.
            ..sctp_monitor::tracker::Config::default()
        };
        a.quality.apply(&mut tracker);
        Ok(agent::AgentOptions {
            ifaces,
            xdp_mode: a.xdp_mode,
            udp_encap_port: a.udp_port,
            ring_bytes: a.ring_bytes,
            path_entries: a.path_entries,
            assoc_dir_entries: a.assoc_entries,
            data_idle: Duration::from_millis(a.data_idle_ms),
            debug: a.debug || verbose > 0,
            print_records,
            events_rotation: (a.events_max_bytes > 0).then_some(sctp_monitor::sinks::events::Rotation {
                max_bytes: a.events_max_bytes,
                keep: a.events_keep,
            }),
            events,
            host: a.host.filter(|h| !h.is_empty()).unwrap_or_else(agent::hostname),
            otlp_endpoint: a.otlp_endpoint,
            otlp_interval: Duration::from_millis(a.otlp_interval_ms.max(100)),
            metrics: metrics_addr(metrics)?,
            web_config: None,
            poll_interval: Duration::from_millis(a.poll_interval_ms),
            tick_interval: Duration::from_millis(a.tick_interval_ms),
            tracker,
            event_log: a.event_log_size,
            series_cap: a.metrics_series_cap,
        })
    }
}

/// Whether `e` is a write to a closed pipe.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe))
}

/// Exit codes: `sctp_monitor::exit` (also in `--help`).
fn main() -> std::process::ExitCode {
    match run(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // The format `fn main() -> anyhow::Result` used.
            eprintln!("Error: {e:?}");
            std::process::ExitCode::from(exit::code_of(&e))
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let level = match cli.verbose {
        0 => "info",
        // The agent's own debug lines; aya's loader logs every relocation at
        // debug, which would bury them.
        1 => "info,sctp_monitor=debug",
        2 => "debug",
        _ => "trace",
    };
    let env = env_logger::Env::default().default_filter_or(level);
    match cli.cmd {
        Cmd::Run(a) => {
            env_logger::Builder::from_env(env).init();
            let mut opts = a.agent.options(a.ifaces, a.events, &a.metrics, a.print_records, cli.verbose)?;
            opts.web_config = a.web_config;
            // One thread: the loop owns the kernel object and the tracker and
            // answers HTTP requests itself, so a second worker only added a
            // cross-thread wakeup (two futex calls) to every ring wakeup.
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            rt.block_on(agent::run(opts))
        }
        Cmd::Top(a) if !a.ifaces.is_empty() => {
            if a.events == "-" {
                return Err(exit::with_code(
                    exit::USAGE,
                    anyhow::anyhow!("--events -: stdout is the view; give a file, or off"),
                ));
            }
            // The agent's log goes to the view (and --log-file), not over it.
            sctp_monitor::top::logpipe::init(env_logger::Builder::from_env(env).build(), a.log_file.as_deref())?;
            let opts = a.agent.options(a.ifaces, a.events, &a.metrics, false, cli.verbose)?;
            sctp_monitor::top::run_with_agent(opts, Duration::from_millis(a.interval_ms))
        }
        Cmd::Top(a) => {
            env_logger::Builder::from_env(env).init();
            sctp_monitor::top::run(sctp_monitor::top::TopOptions {
                connect: a.connect,
                interval: Duration::from_millis(a.interval_ms),
            })
        }
        Cmd::Replay(a) => {
            env_logger::Builder::from_env(env).init();
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            let mut opts = sctp_monitor::replay::ReplayOptions::default();
            if let Some(n) = a.path_max_retrans {
                opts.tracker.hb_down_after = n.saturating_add(1);
                opts.tracker.retrans_down_after = n.saturating_add(1) as u16;
            }
            opts.tracker.hb_answer_timeout_ns = a.hb_timeout_ms.saturating_mul(1_000_000);
            a.quality.apply(&mut opts.tracker);
            let r = sctp_monitor::replay::run_replay_cli(&a.file, a.json, &opts, &mut out);
            // A reader that went away (`replay F | head`) ends the output,
            // quietly, as Unix tools do; what would not fit is dropped.
            if r.as_ref().is_err_and(is_broken_pipe) {
                std::mem::forget(out);
                std::process::exit(0);
            }
            r
        }
        Cmd::Generate { what, out_dir } => {
            let written = match what.as_str() {
                "man" => sctp_monitor::clidoc::man(Cli::command(), &out_dir)?,
                _ => sctp_monitor::clidoc::completions(Cli::command(), &out_dir)?,
            };
            for p in written {
                println!("{}", p.display());
            }
            Ok(())
        }
    }
}
