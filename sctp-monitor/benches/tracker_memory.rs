//! Tracker memory at 131,072 associations with two paths each, measured
//! for real: a counting global allocator in this binary, bytes live after
//! building the state minus bytes live before (the floor: at most 512
//! bytes per association; 256 before the per-path quality counters, see
//! BENCHMARKS.md#tracker-memory).
//!
//! `cargo xtask bench` (or `cargo bench -p sctp-monitor --bench tracker_memory`).
//!
//! Two shapes, both through `Tracker::process` with decoded packets:
//! - picked up mid-flight: one DATA one way, one SACK back (two paths, one
//!   address per endpoint): the floor's case;
//! - seen from the handshake, multihomed: INIT with a second address,
//!   INIT-ACK with a second address, COOKIE-ECHO / COOKIE-ACK, DATA and
//!   SACK on the primary (two paths, four addresses): for information, the
//!   two extra 16-byte address slots put it above the first by 32 bytes.
//!
//! The events the tracker emits go to a buffer cleared after each packet,
//! allocated before the first measurement: they are the caller's, not the
//! tracker's state.

use std::alloc::{GlobalAlloc, Layout, System};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicIsize, Ordering};

use sctp_monitor::decode::{Chunk, DataHeader, Init, PacketMeta, Sack};
use sctp_monitor::event::Event;
use sctp_monitor::tracker::{Config, Tracker};

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards to the system allocator; only counts sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        // SAFETY: same layout contract as the caller's.
        unsafe { System.alloc(l) }
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
        // SAFETY: `p` was allocated by `System` with `l`.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        LIVE.fetch_add(new as isize - l.size() as isize, Ordering::Relaxed);
        // SAFETY: `p` was allocated by `System` with `l`.
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

const N: u32 = 131_072;
const FLOOR: f64 = 512.0;
const T0: u64 = 1_700_000_000_000_000_000;

fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

fn v4(x: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(x))
}

fn meta(ts: u64, src: IpAddr, dst: IpAddr, sp: u16, dp: u16, vtag: u32) -> PacketMeta {
    PacketMeta {
        ts_ns: ts,
        src,
        dst,
        src_port: sp,
        dst_port: dp,
        vtag,
        udp_ports: None,
        ip_len: 148,
        bundled_pad: false,
        record: None,
        kdata: None,
        interface: 0,
    }
}

fn data(tsn: u32) -> Chunk {
    Chunk::Data(DataHeader { i_data: false, flags: 3, tsn, stream: 0, seq: 0, ppid: 46, payload_len: 100 })
}

fn sack(cum: u32) -> Chunk {
    // An open window, as a SACK usually says (a closed one keeps its
    // start in the association's boxed rare state).
    Chunk::Sack(Sack { cum_tsn: cum, a_rwnd: 65_536, ..Sack::default() })
}

/// (bytes per association measured, tracker's own estimate, paths per
/// association).
fn measure(handshake: bool) -> (f64, f64, usize) {
    let mut ev: Vec<Event> = Vec::with_capacity(64);
    let before = live();
    let mut t = Tracker::new(Config::default());
    for i in 0..N {
        let ts = T0 + i as u64 * 1_000;
        let (a, b) = (v4(0x0a00_0000 + i * 2), v4(0x0a00_0000 + i * 2 + 1));
        let (ta, tb) = (i + 1, (i + 1) | 0x8000_0000);
        if handshake {
            let (a2, b2) = (v4(0x0b00_0000 + i * 2), v4(0x0b00_0000 + i * 2 + 1));
            let init = |tag, addr| Init {
                initiate_tag: tag,
                a_rwnd: 65_536,
                out_streams: 10,
                in_streams: 10,
                initial_tsn: 1,
                addrs: vec![addr],
                ..Init::default()
            };
            t.process(&meta(ts, a, b, 5000, 3868, 0), &[Chunk::Init(init(ta, a2))], &mut ev);
            t.process(&meta(ts + 1, b, a, 3868, 5000, ta), &[Chunk::InitAck(init(tb, b2))], &mut ev);
            t.process(&meta(ts + 2, a, b, 5000, 3868, tb), &[Chunk::CookieEcho { len: 200 }], &mut ev);
            t.process(&meta(ts + 3, b, a, 3868, 5000, ta), &[Chunk::CookieAck], &mut ev);
            ev.clear();
        }
        t.process(&meta(ts + 4, a, b, 5000, 3868, tb), &[data(i)], &mut ev);
        t.process(&meta(ts + 5, b, a, 3868, 5000, ta), &[sack(i)], &mut ev);
        ev.clear();
    }
    let after = live();
    assert_eq!(t.len(), N as usize);
    let paths = t.associations().next().map_or(0, |a| a.paths.len());
    assert!(t.associations().all(|a| a.paths.len() == paths));
    let per = (after - before) as f64 / N as f64;
    let est = t.memory_bytes() as f64 / N as f64;
    drop(t);
    (per, est, paths)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let (mid, mid_est, mid_paths) = measure(false);
    let (hs, hs_est, hs_paths) = measure(true);
    println!("### Tracker memory at {N} associations (counting global allocator)\n");
    println!("| associations | shape | paths each | bytes/association measured | tracker's estimate | floor |");
    println!("|---:|---|---:|---:|---:|---|");
    println!(
        "| {N} | picked up mid-flight (DATA + SACK) | {mid_paths} | {mid:.1} | {mid_est:.1} | ≤ {FLOOR}: {} |",
        if mid <= FLOOR { "met" } else { "NOT met" }
    );
    println!(
        "| {N} | handshake seen, multihomed (2 + 2 addresses) | {hs_paths} | {hs:.1} | {hs_est:.1} | (information) |"
    );
    println!(
        "\nBytes live after building the state minus before (requested sizes; the allocator's own rounding is not counted)."
    );
    println!("\nReproduce: `cargo xtask bench` or `cargo bench -p sctp-monitor --bench tracker_memory`.");
    println!("\nFloor met: {}", if mid <= FLOOR { "yes" } else { "NO" });
}
