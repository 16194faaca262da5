//! `sctp-monitor run`: the host agent.
//!
//! A packet's way: kernel programs -> ring buffer (drained through tokio
//! `AsyncFd`, no busy polling) -> [`pipeline::Pipeline`] (decoder, tracker)
//! -> sinks (JSON Lines, event log, metrics). The per-path kernel maps are
//! read every `--poll-interval-ms`, the tracker ticks on a timer, and the
//! HTTP listener's requests are answered from the same loop, which owns the
//! kernel object and the tracker (no locks). SIGINT/SIGTERM detach every
//! program and return `Ok` (exit 0).

pub mod attach;
pub mod clock;
pub mod ifaces;
pub mod links;
pub mod netlink;
pub mod pipeline;
pub mod preflight;
pub mod readiness;
pub mod ring;

use std::{net::SocketAddr, time::Duration};

use anyhow::Context as _;
use aya::{
    Ebpf,
    maps::{PerCpuArray, RingBuf},
};
use sctp_monitor_common::{ChunkRecord, Config, config::CONFIG_FLAG_UDP_ENCAP, counters as kc, maps};
use tokio::{
    signal::unix::{SignalKind, signal},
    sync::mpsc,
};

use crate::kernel::{self, LoadOptions, XdpModeChoice};
use crate::sinks::{
    api::{AssociationJson, AssociationsDoc, IfaceJson, StatusDoc},
    events::EventWriter,
    http::{self, Answer, Asked, JSON, Query},
};
use crate::tracker;
use attach::Interfaces;
use pipeline::{Pipeline, PipelineOptions};

/// What `run` needs, resolved from the command line.
#[derive(Clone, Debug)]
pub struct AgentOptions {
    /// Interfaces named with -i; empty: every interface that is up except
    /// loopback, including those that appear later.
    pub ifaces: Vec<String>,
    pub xdp_mode: XdpModeChoice,
    pub udp_encap_port: u16,
    pub ring_bytes: u32,
    pub path_entries: u32,
    pub assoc_dir_entries: u32,
    pub data_idle: Duration,
    /// Forward the programs' aya-log messages.
    pub debug: bool,
    /// Print one line per kernel record (to stderr).
    pub print_records: bool,
    /// `-` for stdout, or a file (appended to).
    pub events: String,
    /// Size-based rotation of the events file.
    pub events_rotation: Option<crate::sinks::events::Rotation>,
    /// The `host` of every event.
    pub host: String,
    /// OTLP/gRPC collector to export events and counts to (feature `otlp`).
    pub otlp_endpoint: Option<String>,
    /// OTLP metrics are exported this often.
    pub otlp_interval: Duration,
    /// Where `/metrics` and the API listen; `None`: nowhere.
    pub metrics: Option<SocketAddr>,
    /// The listener's web configuration (TLS, basic authentication), in
    /// the Prometheus exporters' format; `None`: plain HTTP, no
    /// authentication.
    pub web_config: Option<std::path::PathBuf>,
    /// Per-path maps and the interface list (interfaces gone, back or new)
    /// are read this often.
    pub poll_interval: Duration,
    /// `Tracker::tick` this often.
    pub tick_interval: Duration,
    pub tracker: tracker::Config,
    /// Events kept for `/api/events`.
    pub event_log: usize,
    /// Associations with their own metric series, at most.
    pub series_cap: usize,
}

impl Default for AgentOptions {
    fn default() -> Self {
        AgentOptions {
            ifaces: Vec::new(),
            xdp_mode: XdpModeChoice::Auto,
            udp_encap_port: 9899,
            ring_bytes: 4 << 20,
            path_entries: 65536,
            assoc_dir_entries: 65536,
            data_idle: Duration::from_secs(1),
            debug: false,
            print_records: false,
            events: "-".into(),
            events_rotation: None,
            host: hostname(),
            otlp_endpoint: None,
            otlp_interval: Duration::from_secs(10),
            metrics: Some(SocketAddr::from(([127, 0, 0, 1], 9108))),
            web_config: None,
            poll_interval: Duration::from_secs(1),
            tick_interval: Duration::from_millis(100),
            tracker: tracker::Config::default(),
            event_log: 10_000,
            series_cap: 500,
        }
    }
}

/// `--otlp-endpoint`: the OTLP exporter on the pipeline.
#[cfg(feature = "otlp")]
fn start_otlp(pipeline: &mut Pipeline, endpoint: &str, o: &AgentOptions) -> anyhow::Result<()> {
    let opts = crate::sinks::otlp::OtlpOptions {
        endpoint: endpoint.to_string(),
        host: o.host.clone(),
        metrics_interval: o.otlp_interval,
    };
    pipeline.set_otlp(crate::sinks::otlp::OtlpExporter::start(&opts)?);
    log::info!("exporting events and counts over OTLP/gRPC to {endpoint}");
    Ok(())
}

#[cfg(not(feature = "otlp"))]
fn start_otlp(_: &mut Pipeline, _: &str, _: &AgentOptions) -> anyhow::Result<()> {
    anyhow::bail!("--otlp-endpoint: this sctp-monitor was built without OTLP; build it with `--features otlp`")
}

/// This host's name (`gethostname`), the default `--host`.
pub fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; the name is cut there.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    let n = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    if rc != 0 || n == 0 { "unknown".into() } else { String::from_utf8_lossy(&buf[..n]).into_owned() }
}

pub fn load_options(o: &AgentOptions) -> LoadOptions {
    LoadOptions {
        config: Config {
            udp_encap_port: o.udp_encap_port,
            _pad0: 0,
            flags: if o.udp_encap_port != 0 { CONFIG_FLAG_UDP_ENCAP } else { 0 },
            data_idle_ns: o.data_idle.as_nanos() as u64,
            ..Config::DEFAULT
        },
        ring_bytes: o.ring_bytes,
        path_entries: o.path_entries,
        path_slots: 0,
        assoc_dir_entries: o.assoc_dir_entries,
        load_baseline: false,
    }
}

/// Binds the metrics/API listener, with an actionable error.
pub async fn bind_listener(addr: SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        let hint = if e.kind() == std::io::ErrorKind::AddrInUse {
            "the port is already in use (another sctp-monitor, or another exporter); choose another with \
             --metrics ADDR:PORT (env SCTP_MONITOR_METRICS) or disable the listener with --metrics off"
        } else {
            "check the address (--metrics ADDR:PORT, env SCTP_MONITOR_METRICS)"
        };
        anyhow::anyhow!("cannot listen on {addr} for metrics and the API: {e}; {hint}")
    })
}

/// The listener's TLS and authentication from `--web-config`, and a
/// warning when the listener is open beyond this host without them.
fn listener_security(o: &AgentOptions) -> anyhow::Result<http::Security> {
    let Some(addr) = o.metrics else {
        if let Some(path) = &o.web_config {
            log::warn!("--web-config {} is not used: there is no listener (--metrics off)", path.display());
        }
        return Ok(http::Security::default());
    };
    let Some(path) = &o.web_config else {
        if !addr.ip().is_loopback() {
            log::warn!(
                "the listener on {addr} is not on loopback and has no --web-config: anyone who reaches this \
                 address reads /metrics and the JSON API (every association with its peers' addresses, ports and \
                 verification tags) in clear text, without a credential; give --web-config FILE (env \
                 SCTP_MONITOR_WEB_CONFIG) for TLS and basic authentication, or listen on 127.0.0.1"
            );
        }
        return Ok(http::Security::default());
    };
    let config =
        crate::sinks::webconfig::WebConfig::load(path).map_err(|e| crate::exit::with_code(crate::exit::USAGE, e))?;
    let security = http::Security::from_config(&config).with_context(|| format!("--web-config {}", path.display()))?;
    if security.tls.is_none() && !addr.ip().is_loopback() {
        log::warn!(
            "--web-config {} has no tls_server_config: the listener on {addr} serves plain HTTP, so metrics, the \
             API and any password cross the network readable",
            path.display()
        );
    }
    Ok(security)
}

/// Loads the object, with what to do when it fails.
fn load(o: &AgentOptions) -> anyhow::Result<Ebpf> {
    kernel::load(&load_options(o)).map_err(|e| match preflight::kernel_diagnosis() {
        Some(why) => e.context(format!("{why}; run the agent on a kernel with BTF and BPF ring buffers (5.8+)")),
        None => e,
    })
}

/// `((interface slot, direction, chunk type), count)`.
type ChunkCounts = Vec<((u32, u8, u8), u64)>;

/// Chunk counters of the slots in use (slot 0 = interfaces without a slot),
/// summed over CPUs: far fewer lookups than the whole array.
fn read_chunk_counters(ebpf: &Ebpf, slots: &[u32]) -> anyhow::Result<ChunkCounts> {
    let map: PerCpuArray<_, u64> =
        PerCpuArray::try_from(ebpf.map(maps::CHUNK_COUNTERS).context("CHUNK_COUNTERS map missing")?)?;
    let mut out = Vec::new();
    for &slot in slots {
        for dir in 0..2u8 {
            for t in 0..=255u8 {
                let n: u64 = map.get(&kc::chunk_counter_index(slot, dir, t), 0)?.iter().sum();
                if n != 0 {
                    out.push(((slot, dir, t), n));
                }
            }
        }
    }
    Ok(out)
}

/// The agent's state besides the pipeline.
struct Agent {
    ebpf: Ebpf,
    ifaces: Interfaces,
    pipeline: Pipeline,
    series_cap: usize,
    started: u64,
    /// Kernel counters of the last refresh: records lost.
    lost: u64,
}

impl Agent {
    fn on_items(&mut self, print: bool, items: &[&[u8]]) {
        if print {
            for r in items.iter().filter_map(|item| ChunkRecord::from_bytes(item)) {
                eprintln!("{}", ring::describe(&r, &self.ifaces.attached));
            }
        }
        self.pipeline.on_items(items);
    }

    fn refresh_metrics(&mut self) {
        let m = &self.pipeline.metrics;
        let mut slots: Vec<u32> = self.ifaces.attached.iter().map(|a| a.slot).collect();
        slots.push(0);
        match (kernel::counters::read(&self.ebpf), read_chunk_counters(&self.ebpf, &slots)) {
            (Ok(c), Ok(chunks)) => {
                self.lost = c[0].get(kc::RINGBUF_LOST) + c[1].get(kc::RINGBUF_LOST);
                m.set_kernel(&c, &chunks, |s| self.ifaces.slot_name(s));
            }
            (Err(e), _) | (_, Err(e)) => log::warn!("reading kernel counters: {e:#}"),
        }
        let attached: Vec<(String, &'static str, String)> = self
            .ifaces
            .attached
            .iter()
            .flat_map(|a| {
                [
                    (a.name.clone(), a.ingress_program(), a.xdp_mode.to_string()),
                    (a.name.clone(), sctp_monitor_common::programs::TC_EGRESS, "tcx".to_string()),
                ]
            })
            .collect();
        m.set_attached(&attached);
        m.set_tracker_stats(&self.pipeline.tracker.stats());
        m.set_associations(&self.pipeline.tracker, self.series_cap);
    }

    fn answer(&mut self, q: Query) -> Answer {
        match q {
            Query::Metrics { openmetrics } => {
                self.refresh_metrics();
                let mut doc = self.pipeline.metrics.encode(openmetrics);
                crate::sinks::process::append(&mut doc, openmetrics);
                (200, http::metrics_content_type(openmetrics), doc)
            }
            Query::Associations { limit, id } => {
                let t = &self.pipeline.tracker;
                let mut list: Vec<AssociationJson> = Vec::new();
                let mut truncated = false;
                for v in t.associations().filter(|v| id.is_none_or(|i| v.id == i)) {
                    if list.len() >= limit {
                        truncated = true;
                        break;
                    }
                    list.push(AssociationJson::from(&v));
                }
                list.sort_by_key(|a| a.id);
                let doc = AssociationsDoc {
                    generated: crate::event::rfc3339_micros(clock::wall_now()),
                    count: t.len(),
                    truncated,
                    associations: list,
                };
                (200, JSON, serde_json::to_string(&doc).unwrap_or_default())
            }
            Query::Events { since, limit } => (200, JSON, self.pipeline.log.page_json(since, limit)),
            Query::Ready => {
                let doc = self.ifaces.readiness(&self.ebpf);
                (doc.status(), JSON, serde_json::to_string(&doc).unwrap_or_default())
            }
            Query::Status => {
                let doc = StatusDoc {
                    version: env!("CARGO_PKG_VERSION"),
                    started: crate::event::rfc3339_micros(self.started),
                    interfaces: self
                        .ifaces
                        .attached
                        .iter()
                        .map(|a| IfaceJson {
                            name: a.name.clone(),
                            ifindex: a.ifindex,
                            xdp_mode: a.xdp_mode.to_string(),
                            tc: "tcx",
                        })
                        .collect(),
                    associations: self.pipeline.tracker.len(),
                    events: self.pipeline.events(),
                    records: self.pipeline.records,
                    records_lost: self.lost,
                };
                (200, JSON, serde_json::to_string(&doc).unwrap_or_default())
            }
        }
    }
}

fn start_kernel_logger(ebpf: &mut Ebpf) {
    match aya_log::EbpfLogger::init(ebpf) {
        Ok(logger) => {
            // SAFETY: the logger owns its ring-buffer fd and keeps it open
            // while the AsyncFd holds it.
            let fd = unsafe { tokio::io::unix::AsyncFd::register_with_interest(logger, tokio::io::Interest::READABLE) };
            match fd {
                Ok(mut fd) => {
                    tokio::spawn(async move {
                        loop {
                            let Ok(mut guard) = fd.readable_mut().await else {
                                break;
                            };
                            guard.get_inner_mut().flush();
                            guard.clear_ready();
                        }
                    });
                }
                Err(e) => log::warn!("kernel log messages unavailable: {e}"),
            }
        }
        Err(e) => log::warn!("kernel log messages unavailable: {e}"),
    }
}

/// Records handled per wakeup before the loop looks at timers and requests.
const DRAIN_BUDGET: usize = 4096;

/// What a program running the agent inside itself (the live view,
/// `sctp-monitor top --iface`) adds to [`run`]: the API without a socket,
/// and a way to stop it.
pub struct Embedding {
    /// Receives the agent's query channel once the programs are attached
    /// (the same [`Query`]s the HTTP listener sends); dropped unsent when the
    /// start fails, and `run_embedded` returns the error.
    pub ready: std::sync::mpsc::Sender<mpsc::Sender<Asked>>,
    /// The agent stops (detaching every program) when this fires or its
    /// sender is dropped, as on SIGTERM.
    pub stop: tokio::sync::oneshot::Receiver<()>,
}

pub async fn run(o: AgentOptions) -> anyhow::Result<()> {
    run_embedded(o, None).await
}

/// [`run`], optionally inside another program (see [`Embedding`]).
pub async fn run_embedded(o: AgentOptions, embedding: Option<Embedding>) -> anyhow::Result<()> {
    let (ready, mut stop) = match embedding {
        Some(e) => (Some(e.ready), Some(e.stop)),
        None => (None, None),
    };
    // Before the privilege checks: a configuration mistake is reported as
    // such wherever the agent runs.
    let security = listener_security(&o)?;
    preflight::check_privileges()?;
    preflight::check_kernel()?;
    for name in &o.ifaces {
        kernel::attach::ifindex(name)
            .with_context(|| format!("-i {name}: check the name with `ip -br link`"))
            .map_err(|e| crate::exit::with_code(crate::exit::USAGE, e))?;
    }
    let writer = EventWriter::open(&o.events, o.events_rotation)?;
    let listener = match o.metrics {
        Some(addr) => Some(bind_listener(addr).await?),
        None => None,
    };
    let mut ebpf = load(&o)?;
    if o.debug {
        start_kernel_logger(&mut ebpf);
    }
    let ring = RingBuf::try_from(ebpf.take_map(maps::EVENTS).context("EVENTS map missing")?)?;
    let mut source = ring::RingSource::new(ring)?;
    let mut ifaces = Interfaces::new(o.ifaces.clone(), o.xdp_mode);
    ifaces.start(&mut ebpf)?;
    let mut pipeline = Pipeline::new(
        PipelineOptions { tracker: o.tracker.clone(), event_log: o.event_log, record_delays: false },
        writer,
    );
    pipeline.set_host(&o.host);
    if let Some(endpoint) = &o.otlp_endpoint {
        start_otlp(&mut pipeline, endpoint, &o)?;
    }
    pipeline.set_ifnames(ifaces.attached.iter().map(|a| (a.ifindex, a.name.as_str())));
    let mut agent = Agent { ebpf, ifaces, pipeline, series_cap: o.series_cap, started: clock::wall_now(), lost: 0 };

    let (qtx, mut qrx) = mpsc::channel::<Asked>(64);
    let server = listener.map(|l| {
        let addr = l.local_addr().map_or_else(|_| "?".into(), |a| a.to_string());
        let scheme = if security.tls.is_some() { "https" } else { "http" };
        log::info!(
            "metrics on {scheme}://{addr}/metrics, API on /api/associations and /api/events ({})",
            security.describe()
        );
        tokio::spawn(http::serve(l, qtx.clone(), security))
    });
    if let Some(ready) = ready {
        let _ = ready.send(qtx.clone());
    }
    drop(qtx);

    let mut sigint = signal(SignalKind::interrupt())?;
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut poll = tokio::time::interval(o.poll_interval.max(Duration::from_millis(10)));
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut tick = tokio::time::interval(o.tick_interval.max(Duration::from_millis(10)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut lost_reported = 0u64;
    let mut links = match links::watch() {
        Ok(rx) => Some(rx),
        Err(e) => {
            log::warn!("not watching link state (rtnetlink: {e}): paths go down by heartbeats only");
            None
        }
    };
    let result: anyhow::Result<()> = loop {
        tokio::select! {
            n = source.drain_batches(DRAIN_BUDGET, |items| agent.on_items(o.print_records, items)) => {
                if let Err(e) = n {
                    break Err(e.context("reading the ring buffer"));
                }
            }
            _ = poll.tick() => {
                // The counters first, then every record written until now:
                // a record the kernel wrote before the counters (a
                // retransmission, which does not wake the agent) is handled
                // before the ack they may hold of its DATA, as it happened.
                let paths = kernel::paths::read_all(&agent.ebpf);
                source.drain_ready(|items| agent.on_items(o.print_records, items));
                match paths {
                    Ok(paths) => agent.pipeline.on_path_stats(&paths),
                    Err(e) => log::warn!("reading the per-path map: {e:#}"),
                }
                if let Err(e) = agent.ifaces.rescan(&mut agent.ebpf) {
                    log::warn!("scanning interfaces: {e:#}");
                }
                agent.pipeline.set_ifnames(agent.ifaces.attached.iter().map(|a| (a.ifindex, a.name.as_str())));
                if let Ok(c) = kernel::counters::read(&agent.ebpf) {
                    let lost = c[0].get(kc::RINGBUF_LOST) + c[1].get(kc::RINGBUF_LOST);
                    if lost > lost_reported {
                        log::warn!(
                            "{} ring-buffer records lost (total {lost}); raise --ring-bytes",
                            lost - lost_reported
                        );
                        lost_reported = lost;
                    }
                    agent.lost = lost;
                }
            }
            _ = tick.tick() => {
                // Answers waiting in the ring before the timeouts they stop.
                source.drain_ready(|items| agent.on_items(o.print_records, items));
                agent.pipeline.tick();
            }
            Some((ifindex, up)) = async {
                match links.as_mut() {
                    Some(l) => l.recv().await,
                    None => std::future::pending().await,
                }
            } => {
                if !up && agent.ifaces.attached.iter().any(|a| a.ifindex == ifindex) {
                    source.drain_ready(|items| agent.on_items(o.print_records, items));
                    agent.pipeline.link_down(ifindex);
                }
            }
            Some(asked) = qrx.recv() => {
                let answer = agent.answer(asked.query);
                let _ = asked.reply.send(answer);
            }
            _ = sigint.recv() => { log::info!("SIGINT: stopping"); break Ok(()) }
            _ = sigterm.recv() => { log::info!("SIGTERM: stopping"); break Ok(()) }
            _ = async {
                match stop.as_mut() {
                    Some(s) => { let _ = s.await; }
                    None => std::future::pending().await,
                }
            } => { log::info!("asked to stop: stopping"); break Ok(()) }
        }
    };
    if let Some(s) = server {
        s.abort();
    }
    agent.ifaces.detach_all(&mut agent.ebpf);
    agent.pipeline.shutdown_exporters();
    log::info!(
        "stopped after {} records, {} events, {} records lost",
        agent.pipeline.records,
        agent.pipeline.events(),
        agent.lost
    );
    result
}
