//! Frames per second across a veth pair between two namespaces, the monitor
//! attached to the receiving end against detached, alternating in one run.
//!
//! `cargo xtask bench` (or `cargo bench -p sctp-monitor --bench throughput`;
//! needs root; uses the namespaces `sctpmon-tpa` / `sctpmon-tpb`, so run it
//! under `flock /tmp/sctpmon-kernel.lock` beside the kernel tests). The
//! kernel here has no pktgen (`CONFIG_NET_PKTGEN` is not set), so the sender
//! is an AF_PACKET socket in `sctpmon-tpa` writing 64 frames per `sendmmsg`
//! as fast as one core allows: DATA-only SCTP frames (one DATA chunk, 100
//! payload bytes, a new TSN each) to `smtpB`'s address. The rate is what
//! `smtpB` received (its `rx_packets`) per second. Phases: nothing
//! attached; the empty XDP program (`xdp_pass_baseline`) alone, native and
//! SKB mode (what attaching any XDP program costs on veth); the empty TC
//! classifier (`tc_pass_baseline`) on tcx ingress (what the hook costs);
//! the monitor as `sctp-monitor run -i smtpB --xdp-mode native|skb`
//! attaches it (XDP and the TC egress program), and with `--xdp-mode tc` (a
//! TC classifier on ingress instead of XDP). Then, with the kernel's BPF
//! run-time statistics on, one phase each of the empty and the real ingress
//! programs gives their cost per frame where they run.
//!
//! Options (env): `SCTP_TP_SECS` (seconds per phase, default 1),
//! `SCTP_TP_ROUNDS` (default 15). The machine's speed drifts (other work on
//! it), so each phase's rate is divided by the detached rate of the same
//! round, and the median of those ratios is reported beside the median
//! rates.

mod agent_common;
#[path = "../tests/support/mod.rs"]
mod support;

use std::{
    fs::File,
    net::Ipv4Addr,
    os::fd::AsRawFd as _,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use agent_common::{env_u64, pin, root_or_exit};
use anyhow::Context as _;
use aya::{
    Ebpf,
    programs::{SchedClassifier, TcAttachType, Xdp, XdpMode, tc::SchedClassifierLinkId, xdp::XdpLinkId},
};
use sctp_monitor::{
    craft::{self, FrameBuilder},
    kernel::{
        AttachedIface, LoadOptions,
        attach::{XdpModeChoice, attach, detach},
        counters,
        load::load,
    },
};
use sctp_monitor_common::{counters as c, programs};
use support::{NetNs, veth};

const NS_A: &str = "sctpmon-tpa";
const NS_B: &str = "sctpmon-tpb";
const IF_A: &str = "smtpA";
const IF_B: &str = "smtpB";
/// Frames per `sendmmsg`.
const BATCH: usize = 64;

fn main() -> anyhow::Result<()> {
    if std::env::args().any(|a| a == "--list") {
        return Ok(());
    }
    root_or_exit("throughput");
    let secs = env_u64("SCTP_TP_SECS", 1);
    let rounds = env_u64("SCTP_TP_ROUNDS", 15).max(1);

    let a = NetNs::new(NS_A);
    let b = NetNs::new(NS_B);
    veth(&a, IF_A, &b, IF_B);
    a.ip(&["link", "set", IF_A, "address", "02:00:00:00:00:01"]);
    b.ip(&["link", "set", IF_B, "address", "02:00:00:00:00:02"]);
    a.ip(&["addr", "add", "10.251.0.1/24", "dev", IF_A]);
    b.ip(&["addr", "add", "10.251.0.2/24", "dev", IF_B]);

    // This thread's own namespace, to come back to after attaching in B.
    let host = File::open("/proc/thread-self/ns/net")?;
    let mut ebpf = load(&LoadOptions { load_baseline: true, ..LoadOptions::default() })?;
    // The phases, in the order of even rounds (odd rounds run them
    // backwards, so drift hits every phase alike).
    let phases: [(&str, Setup); 7] = [
        ("detached", Setup::Nothing),
        ("empty XDP program (native), nothing else", Setup::EmptyXdp(XdpMode::Driver)),
        ("monitor attached (XDP native + TC egress)", Setup::Monitor(XdpModeChoice::Native)),
        ("empty XDP program (skb mode), nothing else", Setup::EmptyXdp(XdpMode::Skb)),
        ("monitor attached (XDP skb mode + TC egress)", Setup::Monitor(XdpModeChoice::Skb)),
        ("empty TC classifier (tcx ingress), nothing else", Setup::EmptyTc),
        ("monitor attached (--xdp-mode tc: TC ingress + TC egress)", Setup::Monitor(XdpModeChoice::Tc)),
    ];
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); phases.len()];
    let mut seen_before = 0;
    for round in 0..rounds {
        let order: Vec<usize> =
            if round % 2 == 0 { (0..phases.len()).collect() } else { (0..phases.len()).rev().collect() };
        for i in order {
            let (name, setup) = phases[i];
            let (rx, sent) = attached_phase(&mut ebpf, &host, setup, secs)?;
            let seen = counters::read(&ebpf)?[0].get(c::SCTP_PACKETS);
            eprintln!(
                "{name}: {rx:.0} frames/s received, {sent:.0} sent/s; the monitor saw {} SCTP packets",
                seen - seen_before
            );
            seen_before = seen;
            rates[i].push(rx);
        }
    }
    // Per round, each phase against that round's detached rate.
    let ratio = |i: usize, against: usize| {
        let mut v: Vec<f64> = rates[i].iter().zip(&rates[against]).map(|(x, d)| x / d).collect();
        median(&mut v)
    };
    let ratios: Vec<f64> = (0..phases.len()).map(|i| ratio(i, 0)).collect();
    let empty: Vec<String> = phases
        .iter()
        .enumerate()
        .map(|(i, (_, setup))| match setup {
            Setup::Monitor(XdpModeChoice::Native) => format!("{:.3}", ratio(i, 1)),
            Setup::Monitor(XdpModeChoice::Skb) => format!("{:.3}", ratio(i, 3)),
            Setup::Monitor(XdpModeChoice::Tc) => format!("{:.3}", ratio(i, 5)),
            _ => String::new(),
        })
        .collect();
    let med: Vec<f64> = rates.clone().iter_mut().map(|r| median(r)).collect();
    println!("### Throughput: DATA frames per second across a veth pair\n");
    println!(
        "{secs} s per phase, {rounds} rounds, the phases alternating; medians of the rates and of the per-round ratios.\n"
    );
    println!("| on {IF_B} | frames/s received | x detached (same round) | x empty program, same hook and round |");
    println!("|---|---:|---:|---:|");
    for (i, (name, _)) in phases.iter().enumerate() {
        println!("| {name} | {:.0} | {:.3} | {} |", med[i], ratios[i], empty[i]);
    }
    let best = ratios[2].max(ratios[4]).max(ratios[6]);
    println!(
        "\nGoal: the monitor attached >= 95% of detached: {} ({:.1}%, best mode).",
        if best >= 0.95 { "met" } else { "NOT met" },
        100.0 * best
    );
    in_place(&mut ebpf, &host, secs)?;
    Ok(())
}

/// What the programs cost per frame where they run, not under
/// BPF_PROG_TEST_RUN: the kernel's run-time statistics (`BPF_ENABLE_STATS`,
/// on only for these phases: they time every run) over one phase each.
/// The empty program's figure is what the statistics themselves add.
fn in_place(ebpf: &mut Ebpf, host: &File, secs: u64) -> anyhow::Result<()> {
    let _stats = aya::sys::enable_stats(aya::sys::Stats::RunTime).context("BPF_ENABLE_STATS")?;
    let cases: [(&str, Setup, &str); 4] = [
        ("empty XDP program (native)", Setup::EmptyXdp(XdpMode::Driver), programs::XDP_BASELINE),
        ("monitor, XDP native ingress", Setup::Monitor(XdpModeChoice::Native), programs::XDP_INGRESS),
        ("empty TC classifier (tcx ingress)", Setup::EmptyTc, programs::TC_BASELINE),
        ("monitor, TC ingress (--xdp-mode tc)", Setup::Monitor(XdpModeChoice::Tc), programs::TC_INGRESS),
    ];
    println!("\nPer frame where the program runs (kernel run-time statistics, one {secs} s phase each):\n");
    println!("| program on {IF_B} | runs | ns per run | above the empty program (same hook) |");
    println!("|---|---:|---:|---:|");
    // The cases come in pairs: the empty program, then the monitor's.
    let mut empty_ns = None;
    for (name, setup, prog) in cases {
        let info = |ebpf: &Ebpf| -> anyhow::Result<(u64, u64)> {
            let i = ebpf.program(prog).context("program missing")?.info()?;
            Ok((i.run_count(), i.run_time().as_nanos() as u64))
        };
        let (n0, t0) = info(ebpf)?;
        attached_phase(ebpf, host, setup, secs)?;
        let (n1, t1) = info(ebpf)?;
        let runs = n1 - n0;
        let ns = (t1 - t0) as f64 / runs.max(1) as f64;
        let above = match empty_ns.take() {
            Some(e) => format!("{:.1}", ns - e),
            None => {
                empty_ns = Some(ns);
                String::new()
            }
        };
        println!("| {name} | {runs} | {ns:.1} | {above} |");
    }
    Ok(())
}

#[derive(Clone, Copy)]
enum Setup {
    Nothing,
    EmptyXdp(XdpMode),
    EmptyTc,
    Monitor(XdpModeChoice),
}

/// What a phase attached, to detach after it.
enum Attached {
    Nothing,
    EmptyXdp(XdpLinkId),
    EmptyTc(SchedClassifierLinkId),
    Monitor(AttachedIface),
}

impl Setup {
    /// Attaches in the calling thread's namespace.
    fn attach(self, ebpf: &mut Ebpf) -> anyhow::Result<Attached> {
        Ok(match self {
            Setup::Nothing => Attached::Nothing,
            Setup::EmptyXdp(mode) => {
                let p: &mut Xdp = ebpf.program_mut(programs::XDP_BASELINE).context("baseline")?.try_into()?;
                Attached::EmptyXdp(p.attach(IF_B, mode)?)
            }
            Setup::EmptyTc => {
                let p: &mut SchedClassifier =
                    ebpf.program_mut(programs::TC_BASELINE).context("TC baseline")?.try_into()?;
                Attached::EmptyTc(p.attach(IF_B, TcAttachType::Ingress)?)
            }
            Setup::Monitor(mode) => Attached::Monitor(attach(ebpf, IF_B, mode, 1)?),
        })
    }
}

impl Attached {
    fn detach(self, ebpf: &mut Ebpf) -> anyhow::Result<()> {
        match self {
            Attached::Nothing => {}
            Attached::EmptyXdp(link) => {
                let p: &mut Xdp = ebpf.program_mut(programs::XDP_BASELINE).context("baseline")?.try_into()?;
                p.detach(link)?;
            }
            Attached::EmptyTc(link) => {
                let p: &mut SchedClassifier =
                    ebpf.program_mut(programs::TC_BASELINE).context("TC baseline")?.try_into()?;
                p.detach(link)?;
            }
            Attached::Monitor(mut i) => detach(ebpf, &mut i)?,
        }
        Ok(())
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Moves the calling thread into a named namespace.
fn enter(name: &str) -> anyhow::Result<()> {
    setns(&File::open(format!("/run/netns/{name}"))?)
}

fn setns(ns: &File) -> anyhow::Result<()> {
    // SAFETY: a valid namespace fd; CLONE_NEWNET moves only this thread.
    if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        anyhow::bail!("setns: {}", std::io::Error::last_os_error());
    }
    Ok(())
}

/// One phase with `setup` attached in `sctpmon-tpb` (and detached after),
/// the calling thread back in `host` meanwhile: frames received and sent
/// per second.
fn attached_phase(ebpf: &mut Ebpf, host: &File, setup: Setup, secs: u64) -> anyhow::Result<(f64, f64)> {
    enter(NS_B)?;
    let on = setup.attach(ebpf)?;
    setns(host)?;
    let rates = phase(Duration::from_secs(secs))?;
    enter(NS_B)?;
    on.detach(ebpf)?;
    setns(host)?;
    Ok(rates)
}

/// `smtpB`'s received frames, from `ip -s -j link`.
fn rx_packets() -> anyhow::Result<u64> {
    let out = std::process::Command::new("ip").args(["-n", NS_B, "-s", "-j", "link", "show", IF_B]).output()?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    v[0]["stats64"]["rx"]["packets"].as_u64().ok_or_else(|| anyhow::anyhow!("no rx packets in `ip -s -j link`"))
}

/// One phase: the sender runs `len`; returns frames received and sent per
/// second.
fn phase(len: Duration) -> anyhow::Result<(f64, f64)> {
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let sender = {
        let (stop, sent) = (stop.clone(), sent.clone());
        std::thread::spawn(move || send(&stop, &sent))
    };
    // Let the sender reach its pace before counting.
    std::thread::sleep(Duration::from_millis(300));
    let (rx0, s0, t0) = (rx_packets()?, sent.load(Ordering::Relaxed), Instant::now());
    std::thread::sleep(len);
    let (rx1, s1, t1) = (rx_packets()?, sent.load(Ordering::Relaxed), Instant::now());
    stop.store(true, Ordering::Relaxed);
    sender.join().map_err(|_| anyhow::anyhow!("sender panicked"))??;
    let dt = (t1 - t0).as_secs_f64();
    Ok(((rx1 - rx0) as f64 / dt, (s1 - s0) as f64 / dt))
}

/// The sender: DATA frames out of `smtpA`, a new TSN each, until `stop`.
fn send(stop: &AtomicBool, sent: &AtomicU64) -> anyhow::Result<()> {
    enter(NS_A)?;
    pin(1);
    let frame = FrameBuilder::ipv4(Ipv4Addr::new(10, 251, 0, 1), Ipv4Addr::new(10, 251, 0, 2))
        .sctp(36412, 36412, 0xabcd)
        .chunk(craft::data(1, 0, 0, 18, &[0; 100]))
        .build();
    // The TSN: Ethernet 14 + IPv4 20 + SCTP common header 12 + chunk header 4.
    const TSN_AT: usize = 14 + 20 + 12 + 4;
    let mut frames = vec![frame; BATCH];
    // SAFETY: plain socket calls with valid arguments.
    let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0) };
    anyhow::ensure!(fd >= 0, "AF_PACKET socket: {}", std::io::Error::last_os_error());
    let c = std::ffi::CString::new(IF_A)?;
    // SAFETY: sockaddr_ll is plain data; valid C string.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_ifindex = unsafe { libc::if_nametoindex(c.as_ptr()) } as i32;
    sll.sll_halen = 6;
    let one: libc::c_int = 1;
    // SAFETY: valid option value. Bypassing the qdisc layer: veth has none.
    unsafe {
        libc::setsockopt(fd, libc::SOL_PACKET, libc::PACKET_QDISC_BYPASS, (&one as *const libc::c_int).cast(), 4);
    }
    let mut tsn = 1u32;
    let mut total = 0u64;
    while !stop.load(Ordering::Relaxed) {
        for f in frames.iter_mut() {
            f[TSN_AT..TSN_AT + 4].copy_from_slice(&tsn.to_be_bytes());
            tsn = tsn.wrapping_add(1);
        }
        let mut iov: Vec<libc::iovec> =
            frames.iter_mut().map(|f| libc::iovec { iov_base: f.as_mut_ptr().cast(), iov_len: f.len() }).collect();
        // SAFETY: mmsghdr is plain data; each points at one iovec and the address.
        let mut msgs: Vec<libc::mmsghdr> = iov
            .iter_mut()
            .map(|v| {
                let mut m: libc::mmsghdr = unsafe { std::mem::zeroed() };
                m.msg_hdr.msg_name = (&mut sll as *mut libc::sockaddr_ll).cast();
                m.msg_hdr.msg_namelen = size_of::<libc::sockaddr_ll>() as u32;
                m.msg_hdr.msg_iov = v;
                m.msg_hdr.msg_iovlen = 1;
                m
            })
            .collect();
        // SAFETY: the messages point at live buffers and the address.
        let n = unsafe { libc::sendmmsg(fd, msgs.as_mut_ptr(), BATCH as u32, 0) };
        if n > 0 {
            total += n as u64;
            sent.store(total, Ordering::Relaxed);
        } else {
            let e = std::io::Error::last_os_error();
            anyhow::ensure!(e.raw_os_error() == Some(libc::ENOBUFS), "sendmmsg: {e}");
            std::thread::yield_now();
        }
    }
    // SAFETY: our own descriptor.
    unsafe { libc::close(fd) };
    Ok(())
}
