//! Shared by the agent benchmarks (not a bench target of its own).
#![allow(dead_code)]

use std::net::Ipv4Addr;

use sctp_monitor::craft::{self, FrameBuilder, InitSpec};
use sctp_monitor_common::sctp::param;

pub fn root_or_exit(what: &str) {
    // SAFETY: no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("{what}: needs root (BPF, namespaces); skipped");
        std::process::exit(0);
    }
}

pub fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Pins the calling thread to `cpu` (modulo the CPUs online).
///
/// Not `available_parallelism`: it counts the CPUs the calling thread may
/// run on, so a thread spawned by a thread already pinned to CPU 0 saw one
/// CPU and "pinned itself to CPU 1" onto CPU 0 (the ingest bench's producer
/// and consumer shared a core from its second run on).
pub fn pin(cpu: usize) {
    // SAFETY: no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) }.max(1) as usize;
    // SAFETY: cpu_set_t is plain data; sched_setaffinity on this thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu % n, &mut set);
        libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set);
    }
}

/// CPU time of the calling thread, in nanoseconds.
pub fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: valid pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

pub fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// One association between `a` (initiator, addresses `a`, `a2`) and `b`
/// (`b`, `b2`), ports 5000 -> 3868: the four handshake frames, each as sent
/// by its endpoint. Tags: to b `tb`, to a `ta`.
pub struct Assoc {
    pub a: [Ipv4Addr; 2],
    pub b: [Ipv4Addr; 2],
    pub ta: u32,
    pub tb: u32,
    pub pa: u16,
    pub pb: u16,
}

impl Assoc {
    pub fn new(i: u32) -> Assoc {
        let base = 0x0a40_0000u32 + i * 4;
        Assoc {
            a: [Ipv4Addr::from(base), Ipv4Addr::from(base + 1)],
            b: [Ipv4Addr::from(base + 2), Ipv4Addr::from(base + 3)],
            ta: 0x1000_0000 | i,
            tb: 0x2000_0000 | i,
            pa: 5000,
            pb: 3868,
        }
    }

    pub fn handshake(&self) -> Vec<Vec<u8>> {
        let (a, b) = (self.a, self.b);
        vec![
            FrameBuilder::ipv4(a[0], b[0])
                .sctp(self.pa, self.pb, 0)
                .chunk(craft::init(&InitSpec::new(self.ta, 1).addrs(&[a[1].into()])))
                .build(),
            FrameBuilder::ipv4(b[0], a[0])
                .sctp(self.pb, self.pa, self.ta)
                .chunk(craft::init_ack(&InitSpec::new(self.tb, 1).addrs(&[b[1].into()])))
                .build(),
            FrameBuilder::ipv4(a[0], b[0]).sctp(self.pa, self.pb, self.tb).chunk(craft::cookie_echo(&[0; 16])).build(),
            FrameBuilder::ipv4(b[0], a[0]).sctp(self.pb, self.pa, self.ta).chunk(craft::cookie_ack()).build(),
        ]
    }

    /// HEARTBEAT from a on path `p` with a 16-byte info carrying `n`, and its ACK.
    pub fn heartbeat(&self, p: usize, n: u64) -> [Vec<u8>; 2] {
        let mut info = [0u8; 16];
        info[..8].copy_from_slice(&n.to_be_bytes());
        let info = craft::param(param::HEARTBEAT_INFO, &info);
        [
            FrameBuilder::ipv4(self.a[p], self.b[p])
                .sctp(self.pa, self.pb, self.tb)
                .chunk(craft::heartbeat(&info))
                .build(),
            FrameBuilder::ipv4(self.b[p], self.a[p])
                .sctp(self.pb, self.pa, self.ta)
                .chunk(craft::heartbeat_ack(&info))
                .build(),
        ]
    }

    /// New DATA from a on path `p`.
    pub fn data(&self, p: usize, tsn: u32) -> Vec<u8> {
        FrameBuilder::ipv4(self.a[p], self.b[p])
            .sctp(self.pa, self.pb, self.tb)
            .chunk(craft::data(tsn, 0, 0, 46, &[0; 64]))
            .build()
    }

    /// SACK from b on path `p`.
    pub fn sack(&self, p: usize, cum: u32) -> Vec<u8> {
        FrameBuilder::ipv4(self.b[p], self.a[p])
            .sctp(self.pb, self.pa, self.ta)
            .chunk(craft::sack(cum, 65536, &[], &[]))
            .build()
    }
}
