//! Kernel fuzz loop: random and mutated frames through the real XDP and TC
//! programs with BPF_PROG_TEST_RUN. Every run must return PASS / continue,
//! and the per-frame outcome counters must add up to the frames run.
//!
//! `cargo xtask fuzz` (or `cargo run --release --example kernel_fuzz -- RUNS SEED`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use anyhow::{bail, ensure};
use sctp_monitor::{
    craft::{self, AsconfReq, CookiePos, ExtHeader, FrameBuilder, InitSpec, XorShift, ethertype},
    kernel::{
        LoadOptions,
        testrun::{Prog, TC_ACT_UNSPEC, TestBed, XDP_PASS},
    },
};
use sctp_monitor_common::{counters as c, sctp::param};

fn seeds() -> Vec<Vec<u8>> {
    let a = Ipv4Addr::new(10, 0, 0, 1);
    let b = Ipv4Addr::new(10, 0, 0, 2);
    let a6 = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1);
    let b6 = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2);
    let addrs: Vec<IpAddr> = vec![a.into(), b.into(), a6.into()];
    let v4 = || FrameBuilder::ipv4(a, b).sctp(5000, 5000, 7);
    vec![
        v4().chunk(craft::data(1, 0, 0, 60, &[1; 64])).build(),
        v4().chunks((0..16).map(|i| craft::data(i, 0, 0, 60, &[2; 8]))).build(),
        v4().chunk(craft::sack(5, 1000, &[(1, 2), (4, 5)], &[3])).build(),
        v4().chunk(craft::init(&InitSpec::new(9, 1).addrs(&addrs))).build(),
        v4().chunk(craft::init_ack(&InitSpec::new(9, 1).addrs(&addrs).cookie(300, CookiePos::Before))).build(),
        v4().chunk(craft::heartbeat(&craft::param(param::HEARTBEAT_INFO, &[5; 48]))).chunk(craft::pad(100)).build(),
        v4().chunk(craft::asconf(1, a.into(), &[AsconfReq::Add { corr_id: 1, addr: b.into() }])).build(),
        v4().vlan(ethertype::QINQ, 1)
            .vlan(ethertype::VLAN, 2)
            .udp_encap(9899, 9899)
            .chunk(craft::abort(true, &[]))
            .build(),
        FrameBuilder::ipv6(a6, b6)
            .ext_header(ExtHeader::HopByHop(1))
            .ext_header(ExtHeader::Fragment { offset: 0, more: true, id: 1 })
            .sctp(1, 2, 3)
            .chunk(craft::shutdown(1))
            .build(),
        v4().ip_options(&[1; 12]).chunk(craft::cookie_echo(&[7; 100])).chunk(craft::data(3, 0, 0, 0, &[0; 4])).build(),
    ]
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let runs: u64 = args.next().map(|v| v.parse()).transpose()?.unwrap_or(2_000_000);
    let seed: u64 = args.next().map(|v| v.parse()).transpose()?.unwrap_or(0x5eed_cafe);
    // SAFETY: no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!("the kernel fuzz loop needs root (BPF_PROG_TEST_RUN)");
    }
    let mut bed = TestBed::new(LoadOptions::default())?;
    let seeds = seeds();
    let mut rng = XorShift::new(seed | 1);
    let (mut ingress, mut egress, mut refused) = (0u64, 0u64, 0u64);
    let t0 = std::time::Instant::now();
    for i in 0..runs {
        let mut f = if i % 8 == 0 {
            // Random bytes, with a plausible Ethernet type half the time.
            let mut f: Vec<u8> = (0..14 + rng.below(200)).map(|_| rng.next_u64() as u8).collect();
            if rng.next_u64() & 1 == 0 {
                let et: u16 = [0x0800, 0x86dd, 0x8100, 0x88a8][rng.below(4)];
                f[12..14].copy_from_slice(&et.to_be_bytes());
            }
            f
        } else {
            let mut f = seeds[rng.below(seeds.len())].clone();
            for _ in 0..1 + rng.below(6) {
                let at = rng.below(f.len());
                match rng.below(4) {
                    0 => f[at] = rng.next_u64() as u8,
                    1 => f[at] ^= 1 << rng.below(8),
                    2 => f[at] = [0, 0xff, 3, 4][rng.below(4)],
                    _ => {
                        let cut = 14 + rng.below(f.len() - 14);
                        f.truncate(cut);
                    }
                }
            }
            f
        };
        if f.len() < 14 {
            f.resize(14, 0);
        }
        let (ret, _) = bed.run(Prog::Ingress, &f, 1)?;
        ensure!(ret == XDP_PASS, "XDP returned {ret} on frame {f:02x?}");
        ingress += 1;
        match bed.run(Prog::Egress, &f, 1) {
            Ok((ret, _)) => {
                ensure!(ret == TC_ACT_UNSPEC, "TC returned {ret} on frame {f:02x?}");
                egress += 1;
            }
            // The kernel builds no skb for frames shorter than their IP header.
            Err(_) => refused += 1,
        }
        if i % 4096 == 0 {
            bed.drain();
        }
    }
    bed.drain();
    let k = bed.counters()?;
    for (dir, want) in [(0usize, ingress), (1, egress)] {
        let outcomes: u64 = c::PACKET_OUTCOMES.iter().map(|&o| k[dir].get(o)).sum();
        ensure!(outcomes == want, "direction {dir}: outcomes {outcomes} != frames run {want}: {:?}", k[dir]);
    }
    println!(
        "kernel fuzz: {ingress} XDP runs and {egress} TC runs ({refused} frames the kernel would not build an skb for), all PASS, \
         counters add up; {:.1} s; seed {seed:#x}",
        t0.elapsed().as_secs_f64()
    );
    for (dir, kd) in k.iter().enumerate() {
        let names: Vec<String> = c::PACKET_OUTCOMES
            .iter()
            .chain([c::MALFORMED_CHUNK_LEN, c::TOO_MANY_CHUNKS, c::RINGBUF_RECORDS, c::RINGBUF_LOST].iter())
            .map(|&o| format!("{}={}", c::NAMES[o as usize], kd.get(o)))
            .collect();
        println!("  {}: {}", if dir == 0 { "ingress" } else { "egress" }, names.join(" "));
    }
    Ok(())
}
