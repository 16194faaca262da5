//! `sctp-monitor run`: load the programs, attach them, drain the ring buffer
//! asynchronously, and hand every record to the sinks. Stops on SIGINT or
//! SIGTERM, detaching every program.

pub mod ifaces;
pub mod ring;

use std::time::Duration;

use anyhow::Context as _;
use aya::maps::RingBuf;
use sctp_monitor_common::{Config, config::CONFIG_FLAG_UDP_ENCAP, maps};
use tokio::signal::unix::{SignalKind, signal};

use crate::kernel::{self, AttachedIface, LoadOptions, XdpModeChoice};

/// What `run` needs, resolved from the command line.
#[derive(Clone, Debug)]
pub struct AgentOptions {
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
}

pub fn load_options(o: &AgentOptions) -> LoadOptions {
    LoadOptions {
        config: Config {
            udp_encap_port: o.udp_encap_port,
            _pad0: 0,
            flags: if o.udp_encap_port != 0 { CONFIG_FLAG_UDP_ENCAP } else { 0 },
            data_idle_ns: o.data_idle.as_nanos() as u64,
        },
        ring_bytes: o.ring_bytes,
        path_entries: o.path_entries,
        assoc_dir_entries: o.assoc_dir_entries,
        load_baseline: false,
    }
}

pub async fn run(o: AgentOptions) -> anyhow::Result<()> {
    let mut ebpf = kernel::load(&load_options(&o))?;
    if o.debug {
        match aya_log::EbpfLogger::init(&mut ebpf) {
            Ok(logger) => {
                // SAFETY: the logger owns its ring-buffer fd and keeps it open
                // while the AsyncFd holds it.
                let mut fd = unsafe {
                    tokio::io::unix::AsyncFd::register_with_interest(logger, tokio::io::Interest::READABLE)?
                };
                tokio::spawn(async move {
                    loop {
                        let Ok(mut guard) = fd.readable_mut().await else { break };
                        guard.get_inner_mut().flush();
                        guard.clear_ready();
                    }
                });
            }
            Err(e) => log::warn!("kernel log messages unavailable: {e}"),
        }
    }
    let names = if o.ifaces.is_empty() { ifaces::all_up_except_loopback()? } else { o.ifaces.clone() };
    if names.is_empty() {
        anyhow::bail!("no interface to monitor: none is up besides loopback; name one with -i");
    }
    let mut attached: Vec<AttachedIface> = Vec::new();
    for (i, name) in names.iter().enumerate() {
        match kernel::attach::attach(&mut ebpf, name, o.xdp_mode, i as u32 + 1) {
            Ok(a) => {
                log::info!("attached to {} (ifindex {}): XDP {} mode, TC egress", a.name, a.ifindex, a.xdp_mode);
                attached.push(a);
            }
            Err(e) => {
                for mut a in attached.drain(..) {
                    let _ = kernel::attach::detach(&mut ebpf, &mut a);
                }
                return Err(e);
            }
        }
    }
    let ring = RingBuf::try_from(ebpf.take_map(maps::EVENTS).context("EVENTS map missing")?)?;
    let mut source = ring::RingSource::new(ring)?;
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut records = 0u64;
    loop {
        tokio::select! {
            batch = source.next_batch() => {
                for r in batch? {
                    records += 1;
                    if o.print_records {
                        eprintln!("{}", ring::describe(&r, &attached));
                    }
                }
            }
            _ = sigint.recv() => break,
            _ = sigterm.recv() => break,
        }
    }
    for mut a in attached {
        kernel::attach::detach(&mut ebpf, &mut a)?;
        log::info!("detached from {}", a.name);
    }
    log::info!("stopped after {records} records");
    Ok(())
}
