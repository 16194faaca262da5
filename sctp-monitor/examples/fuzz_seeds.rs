//! Seed corpora for the libFuzzer targets (`sctp-monitor/fuzz`), from the
//! committed captures (`tests/fixtures`) and from `craft` frames.
//!
//! `cargo run --example fuzz_seeds -- OUTDIR` writes `OUTDIR/TARGET/NAME`
//! for decode_record, decode_packet, capture_reader and tracker_sequence
//! (`cargo xtask fuzz` runs it). Ring records come from the real XDP program
//! (BPF_PROG_TEST_RUN) when it can be loaded (root); otherwise they are
//! built the way the kernel builds them, and it says so.

use std::borrow::Cow;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use pcap_file::DataLink;
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapReader, PcapWriter};
use pcap_file::pcapng::PcapNgWriter;
use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
use pcap_file::pcapng::blocks::interface_description::{InterfaceDescriptionBlock, InterfaceDescriptionOption};
use pcap_file::pcapng::blocks::simple_packet::SimplePacketBlock;
use sctp_monitor::craft::{self, AsconfReq, CookiePos, ExtHeader, FrameBuilder, InitSpec, ethertype};
use sctp_monitor::kernel::{
    LoadOptions,
    testrun::{Prog, TestBed},
};
use sctp_monitor_common::{ChunkRecord, RecordKind, sctp::param};

#[path = "../fuzz/src/script.rs"]
mod script;

const FIXTURES: &[&str] = &[
    "usrsctp-multihomed-failover",
    "usrsctp-multihomed-failover-ipv6",
    "usrsctp-multihomed-failover-mixed-v4v6",
    "usrsctp-multihomed-failover-udp",
    "usrsctp-multihomed-failover-wrong-source",
];

/// Packets per capture seed, and per tracker script window.
const CAPTURE_PACKETS: usize = 40;
const SCRIPT_PACKETS: usize = 300;

struct Out {
    dir: PathBuf,
    n: usize,
}

impl Out {
    fn put(&mut self, target: &str, name: &str, bytes: &[u8]) -> anyhow::Result<()> {
        let d = self.dir.join(target);
        std::fs::create_dir_all(&d)?;
        std::fs::write(d.join(name), bytes)?;
        self.n += 1;
        Ok(())
    }
}

/// (microsecond timestamp, Ethernet frame) of a fixture.
fn frames(path: &Path) -> anyhow::Result<Vec<(u64, Vec<u8>)>> {
    let f = std::fs::File::open(path).with_context(|| path.display().to_string())?;
    let mut r = PcapReader::new(f)?;
    let mut v = Vec::new();
    while let Some(p) = r.next_packet() {
        let p = p?;
        v.push((p.timestamp.as_micros() as u64, p.data.into_owned()));
    }
    Ok(v)
}

/// Where the SCTP common header starts in a plain Ethernet frame (the
/// fixtures: IPv4 or IPv6 without extension headers, maybe over UDP).
fn sctp_offset(f: &[u8]) -> Option<usize> {
    let et = u16::from_be_bytes([*f.get(12)?, *f.get(13)?]);
    let (l4, proto) = match et {
        0x0800 => (14 + (*f.get(14)? as usize & 0x0f) * 4, *f.get(23)?),
        0x86DD => (54, *f.get(20)?),
        _ => return None,
    };
    match proto {
        132 => Some(l4),
        17 => Some(l4 + 8),
        _ => None,
    }
}

fn ip_pair(f: &[u8]) -> Option<(IpAddr, IpAddr)> {
    match u16::from_be_bytes([*f.get(12)?, *f.get(13)?]) {
        0x0800 => {
            let s: [u8; 4] = f.get(26..30)?.try_into().ok()?;
            let d: [u8; 4] = f.get(30..34)?.try_into().ok()?;
            Some((Ipv4Addr::from(s).into(), Ipv4Addr::from(d).into()))
        }
        0x86DD => {
            let s: [u8; 16] = f.get(22..38)?.try_into().ok()?;
            let d: [u8; 16] = f.get(38..54)?.try_into().ok()?;
            Some((Ipv6Addr::from(s).into(), Ipv6Addr::from(d).into()))
        }
        _ => None,
    }
}

/// A tracker script from capture frames: one packet step each, a tick
/// whenever 100 ms of capture time passed (as replay does).
fn script_of(frames: &[(u64, Vec<u8>)], max_assocs: u8) -> Vec<u8> {
    let mut w = script::Writer::new(max_assocs, 2, 3, 3, 60);
    let mut prev = frames.first().map(|f| f.0).unwrap_or(0);
    for (ts, f) in frames {
        let (Some(off), Some((src, dst))) = (sctp_offset(f), ip_pair(f)) else {
            continue;
        };
        let Some(h) = f.get(off..off + 12) else {
            continue;
        };
        let dt_ms = (ts.saturating_sub(prev) / 1000) as u32;
        prev = *ts;
        let dt = if dt_ms > 100 {
            w.tick(dt_ms);
            0
        } else {
            dt_ms as i16
        };
        let ports = (u16::from_be_bytes([h[0], h[1]]), u16::from_be_bytes([h[2], h[3]]));
        let vtag = u32::from_be_bytes([h[4], h[5], h[6], h[7]]);
        w.packet(dt, src, dst, ports, vtag, 0, &f[off + 12..]);
    }
    w.buf
}

/// The kernel's record of a chunk, built in userspace (when the real
/// program cannot be run): segment 1 up to the State Cookie, segment 2
/// after it, DATA cut to its header.
fn user_record(src: IpAddr, dst: IpAddr, ports: (u16, u16), vtag: u32, kind: RecordKind, chunk: &[u8]) -> Vec<u8> {
    use bytemuck::Zeroable;
    let mut r = ChunkRecord::zeroed();
    r.kind = kind as u8;
    for (a, out) in [(src, &mut r.header.src_addr), (dst, &mut r.header.dst_addr)] {
        match a {
            IpAddr::V4(a) => out[..4].copy_from_slice(&a.octets()),
            IpAddr::V6(a) => out.copy_from_slice(&a.octets()),
        }
    }
    r.ip_version = if src.is_ipv4() { 4 } else { 6 };
    (r.src_port, r.dst_port, r.vtag) = (ports.0, ports.1, vtag);
    r.chunk_type = chunk[0];
    r.chunk_len = u16::from_be_bytes([chunk[2], chunk[3]]);
    let keep = match chunk[0] {
        0 => 16.min(chunk.len()),
        _ => chunk.len(),
    };
    // The cookie: cut out of INIT-ACK, as the kernel does.
    let mut seg = (chunk[..keep].to_vec(), Vec::new());
    if chunk[0] == 2 {
        let mut off = 20;
        while off + 4 <= chunk.len() {
            let t = u16::from_be_bytes([chunk[off], chunk[off + 1]]);
            let l = u16::from_be_bytes([chunk[off + 2], chunk[off + 3]]) as usize;
            if t == param::STATE_COOKIE {
                let end = (off + l.div_ceil(4) * 4).min(chunk.len());
                seg = (chunk[..off].to_vec(), chunk[end..].to_vec());
                break;
            }
            off += l.max(4).div_ceil(4) * 4;
        }
    }
    let n1 = seg.0.len().min(if seg.1.is_empty() { r.data.len() } else { r.data.len() / 2 });
    r.data[..n1].copy_from_slice(&seg.0[..n1]);
    r.seg1_len = n1 as u16;
    let half = r.data.len() / 2;
    let n2 = seg.1.len().min(half);
    r.data[half..half + n2].copy_from_slice(&seg.1[..n2]);
    r.seg2_len = n2 as u16;
    bytemuck::bytes_of(&r)[..ChunkRecord::wire_len(r.seg1_len, r.seg2_len)].to_vec()
}

/// Crafted frames: every chunk the decoder knows, v4 and v6, VLANs,
/// extension headers, UDP encapsulation.
fn crafted() -> Vec<Vec<u8>> {
    let a = Ipv4Addr::new(10, 0, 0, 1);
    let b = Ipv4Addr::new(10, 0, 0, 2);
    let a6 = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1);
    let b6 = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2);
    let addrs: Vec<IpAddr> = vec![a.into(), Ipv4Addr::new(10, 0, 1, 1).into(), a6.into()];
    let v4 = || FrameBuilder::ipv4(a, b).sctp(5000, 5000, 7);
    let chunks = vec![
        craft::data(1, 0, 0, 60, &[1; 64]),
        craft::i_data(3, 2, 1, 4, 5, &[2; 16]),
        craft::sack(5, 1000, &[(1, 2), (4, 5)], &[3]),
        craft::init(&InitSpec::new(9, 1).addrs(&addrs)),
        craft::init_ack(&InitSpec::new(9, 1).addrs(&addrs).cookie(100, CookiePos::Before)),
        craft::heartbeat(&craft::param(param::HEARTBEAT_INFO, &[5; 24])),
        craft::heartbeat_ack(&craft::param(param::HEARTBEAT_INFO, &[5; 24])),
        craft::abort(true, &[craft::error_cause(1, &[0, 1, 0, 0])]),
        craft::error(&[craft::error_cause(3, &[0; 4])]),
        craft::shutdown(9),
        craft::shutdown_ack(),
        craft::shutdown_complete(false),
        craft::cookie_echo(&[7; 40]),
        craft::cookie_ack(),
        craft::pad(16),
        craft::forward_tsn(4, &[(1, 2)]),
        craft::auth(1, 1, &[0; 20]),
        craft::asconf(
            1,
            a.into(),
            &[
                AsconfReq::Add { corr_id: 1, addr: Ipv4Addr::new(10, 0, 2, 1).into() },
                AsconfReq::Delete { corr_id: 2, addr: Ipv4Addr::new(10, 0, 1, 1).into() },
                AsconfReq::SetPrimary { corr_id: 3, addr: a.into() },
            ],
        ),
        craft::asconf_ack(
            1,
            &[
                craft::AsconfResult::Success { corr_id: 1 },
                craft::AsconfResult::Error { corr_id: 2, causes: vec![craft::error_cause(0xA0, &[])] },
            ],
        ),
    ];
    let mut v: Vec<Vec<u8>> = chunks.iter().map(|c| v4().chunk(c.clone()).build()).collect();
    v.push(v4().chunks(chunks.iter().take(3).cloned()).build());
    v.push(
        v4().vlan(ethertype::QINQ, 1)
            .vlan(ethertype::VLAN, 2)
            .udp_encap(9899, 9899)
            .chunk(craft::abort(true, &[]))
            .build(),
    );
    v.push(
        FrameBuilder::ipv6(a6, b6)
            .ext_header(ExtHeader::HopByHop(1))
            .ext_header(ExtHeader::Fragment { offset: 0, more: true, id: 1 })
            .sctp(1, 2, 3)
            .chunk(craft::heartbeat(&craft::param(param::HEARTBEAT_INFO, &[9; 8])))
            .chunk(craft::pad(64))
            .build(),
    );
    v.push(
        v4().ip_options(&[1; 12]).chunk(craft::cookie_echo(&[7; 100])).chunk(craft::data(3, 0, 0, 0, &[0; 4])).build(),
    );
    v
}

fn pcap_bytes(frames: &[(u64, Vec<u8>)], link: DataLink, nanos: bool, big: bool) -> anyhow::Result<Vec<u8>> {
    let header = PcapHeader {
        datalink: link,
        ts_resolution: if nanos { pcap_file::TsResolution::NanoSecond } else { pcap_file::TsResolution::MicroSecond },
        endianness: if big { pcap_file::Endianness::Big } else { pcap_file::Endianness::Little },
        ..PcapHeader::default()
    };
    let mut w = PcapWriter::with_header(Vec::new(), header)?;
    for (us, f) in frames {
        w.write_packet(&PcapPacket::new(Duration::from_micros(*us), f.len() as u32, f))?;
    }
    Ok(w.into_writer())
}

/// Strips the Ethernet header (for the other link types).
fn ip_of(f: &[u8]) -> &[u8] {
    f.get(14..).unwrap_or(&[])
}

fn main() -> anyhow::Result<()> {
    let dir = PathBuf::from(std::env::args().nth(1).context("usage: fuzz_seeds OUTDIR")?);
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut out = Out { dir, n: 0 };
    let crafted = crafted();

    // decode_packet: selector byte (link type) + frame.
    let mut sample: Vec<Vec<u8>> = Vec::new();
    for name in FIXTURES {
        let fr = frames(&fixtures.join(format!("{name}.pcap")))?;
        // Distinct first-chunk types and sizes: a few dozen per capture.
        let mut seen = std::collections::HashSet::new();
        for (_, f) in &fr {
            let Some(off) = sctp_offset(f) else { continue };
            let key = (f.get(off + 12).copied(), f.len() / 64);
            if seen.insert(key) {
                sample.push(f.clone());
            }
        }
    }
    for (i, f) in crafted.iter().chain(&sample).enumerate() {
        let mut v = vec![0u8];
        v.extend_from_slice(f);
        out.put("decode_packet", &format!("eth-{i:03}"), &v)?;
    }
    for (i, f) in crafted.iter().take(6).enumerate() {
        let ip = ip_of(f);
        let mut sll = vec![1u8];
        sll.extend_from_slice(&[0; 14]);
        sll.extend_from_slice(&f[12..14]);
        sll.extend_from_slice(ip);
        out.put("decode_packet", &format!("sll-{i:03}"), &sll)?;
        let mut sll2 = vec![2u8];
        sll2.extend_from_slice(&f[12..14]);
        sll2.extend_from_slice(&[0; 18]);
        sll2.extend_from_slice(ip);
        out.put("decode_packet", &format!("sll2-{i:03}"), &sll2)?;
        let mut raw = vec![3u8];
        raw.extend_from_slice(ip);
        out.put("decode_packet", &format!("raw-{i:03}"), &raw)?;
        let mut null = vec![4u8, 2, 0, 0, 0];
        null.extend_from_slice(ip);
        out.put("decode_packet", &format!("null-{i:03}"), &null)?;
    }

    // decode_record: ring records, from the kernel when it can be run.
    let mut records: Vec<Vec<u8>> = Vec::new();
    let real = unsafe { libc::geteuid() } == 0;
    match real.then(|| TestBed::new(LoadOptions::default())) {
        Some(Ok(mut bed)) => {
            for f in crafted.iter().chain(&sample) {
                bed.pass(Prog::Ingress, f)?;
                for r in bed.drain() {
                    records.push(bytemuck::bytes_of(&r)[..ChunkRecord::wire_len(r.seg1_len, r.seg2_len)].to_vec());
                }
            }
            println!("fuzz_seeds: {} ring records from the real XDP program", records.len());
        }
        other => {
            if let Some(Err(e)) = other {
                println!("fuzz_seeds: the XDP program cannot be run ({e:#}); records built in userspace");
            } else {
                println!("fuzz_seeds: not root; ring records built in userspace");
            }
            for f in crafted.iter().chain(&sample) {
                let (Some(off), Some((s, d))) = (sctp_offset(f), ip_pair(f)) else {
                    continue;
                };
                let h = &f[off..off + 12];
                let ports = (u16::from_be_bytes([h[0], h[1]]), u16::from_be_bytes([h[2], h[3]]));
                let vtag = u32::from_be_bytes([h[4], h[5], h[6], h[7]]);
                let c = &f[off + 12..];
                if c.len() < 4 {
                    continue;
                }
                let kind = match c[0] {
                    0 | 64 => RecordKind::DataFirst,
                    10 => RecordKind::CookieEcho,
                    _ => RecordKind::Control,
                };
                records.push(user_record(s, d, ports, vtag, kind, c));
            }
        }
    }
    records.sort();
    records.dedup();
    for (i, r) in records.iter().enumerate() {
        out.put("decode_record", &format!("rec-{i:03}"), r)?;
    }

    // capture_reader: small captures of every kind the reader takes.
    for name in FIXTURES {
        let fr = frames(&fixtures.join(format!("{name}.pcap")))?;
        let head: Vec<(u64, Vec<u8>)> = fr.iter().take(CAPTURE_PACKETS).cloned().collect();
        out.put("capture_reader", &format!("{name}.pcap"), &pcap_bytes(&head, DataLink::ETHERNET, false, false)?)?;
    }
    let ng = std::fs::read(fixtures.join("usrsctp-multihomed-failover.pcapng"))?;
    // The pcapng twin's first blocks (section, interfaces, packets).
    let mut at = 0;
    for _ in 0..CAPTURE_PACKETS {
        match ng.get(at + 4..at + 8) {
            Some(l) => at += u32::from_le_bytes(l.try_into()?) as usize,
            None => break,
        }
    }
    out.put("capture_reader", "fixture-head.pcapng", &ng[..at.min(ng.len())])?;
    let cf: Vec<(u64, Vec<u8>)> =
        crafted.iter().enumerate().map(|(i, f)| (1_700_000_000_000_000 + i as u64 * 1000, f.clone())).collect();
    out.put("capture_reader", "crafted-eth-ns-be.pcap", &pcap_bytes(&cf, DataLink::ETHERNET, true, true)?)?;
    let raw: Vec<(u64, Vec<u8>)> = cf.iter().map(|(t, f)| (*t, ip_of(f).to_vec())).collect();
    out.put("capture_reader", "crafted-raw.pcap", &pcap_bytes(&raw, DataLink::RAW, false, false)?)?;
    let sll: Vec<(u64, Vec<u8>)> = cf
        .iter()
        .map(|(t, f)| {
            let mut v = vec![0; 14];
            v.extend_from_slice(&f[12..]);
            (*t, v)
        })
        .collect();
    out.put("capture_reader", "crafted-sll.pcap", &pcap_bytes(&sll, DataLink::LINUX_SLL, false, false)?)?;
    // pcapng: two interfaces (Ethernet with ns timestamps, raw IP), an
    // enhanced packet on each, a simple packet.
    let mut w = PcapNgWriter::new(Vec::new())?;
    w.write_pcapng_block(InterfaceDescriptionBlock {
        linktype: DataLink::ETHERNET,
        snaplen: 0xffff,
        options: vec![InterfaceDescriptionOption::IfTsResol(9)],
    })?;
    w.write_pcapng_block(InterfaceDescriptionBlock { linktype: DataLink::RAW, snaplen: 0, options: vec![] })?;
    for (i, (t, f)) in cf.iter().enumerate().take(8) {
        let raw = i % 2 == 1;
        let data = if raw { ip_of(f).to_vec() } else { f.clone() };
        w.write_pcapng_block(EnhancedPacketBlock {
            interface_id: raw as u32,
            timestamp: Duration::from_micros(*t),
            original_len: data.len() as u32,
            data: Cow::Owned(data),
            options: vec![],
        })?;
    }
    w.write_pcapng_block(SimplePacketBlock { original_len: cf[0].1.len() as u32, data: Cow::Owned(cf[0].1.clone()) })?;
    out.put("capture_reader", "crafted-two-ifaces.pcapng", &w.into_inner())?;

    // tracker_sequence: fixture windows (handshake; around the cut) and a
    // crafted script with every step kind.
    for name in FIXTURES {
        let fr = frames(&fixtures.join(format!("{name}.pcap")))?;
        let sidecar: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(fixtures.join(format!("{name}.expect.json")))?)?;
        out.put("tracker_sequence", &format!("{name}-start"), &script_of(&fr[..fr.len().min(SCRIPT_PACKETS)], 4))?;
        if let Some(cut) = sidecar["lab"]["cut_at"].as_f64() {
            let from = ((cut - 1.0) * 1e6) as u64;
            let i = fr.iter().position(|f| f.0 >= from).unwrap_or(0);
            let w = &fr[i..(i + SCRIPT_PACKETS).min(fr.len())];
            out.put("tracker_sequence", &format!("{name}-cut"), &script_of(w, 2))?;
        }
    }
    let (a0, a1): (IpAddr, IpAddr) = ("10.0.0.1".parse()?, "10.0.1.1".parse()?);
    let (b0, b1): (IpAddr, IpAddr) = ("10.0.0.2".parse()?, "10.0.1.2".parse()?);
    let (ta, tb) = (0x0A0A_0A0A, 0x0B0B_0B0B);
    let hb = craft::heartbeat(&craft::param(param::HEARTBEAT_INFO, &[1; 8]));
    let hba = craft::heartbeat_ack(&craft::param(param::HEARTBEAT_INFO, &[1; 8]));
    let mut w = script::Writer::new(2, 2, 2, 2, 5);
    w.packet(0, a0, b0, (5000, 3868), 0, 0, &craft::init(&InitSpec::new(ta, 1).addrs(&[a1])));
    w.packet(
        1,
        b0,
        a0,
        (3868, 5000),
        ta,
        0,
        &craft::init_ack(&InitSpec::new(tb, 1).addrs(&[b1]).cookie(16, CookiePos::After)),
    );
    w.packet(1, a0, b0, (5000, 3868), tb, 0, &craft::cookie_echo(&[0; 16]));
    w.packet(1, b0, a0, (3868, 5000), ta, 0, &craft::cookie_ack());
    w.packet(5, a0, b0, (5000, 3868), tb, 1, &craft::data(1, 0, 0, 46, &[]));
    w.counters((a0, b0), (5000, 3868), tb, [1, 50, 0, 1, 0], 1);
    w.packet(5, b0, a0, (3868, 5000), ta, 0, &craft::sack(1, 1000, &[], &[]));
    w.packet(30, a1, b1, (5000, 3868), tb, 0, &hb);
    w.packet(1, b1, a1, (3868, 5000), ta, 0, &hba);
    w.packet(
        1,
        a0,
        b0,
        (5000, 3868),
        tb,
        0,
        &craft::asconf(1, a0, &[AsconfReq::Add { corr_id: 1, addr: "10.0.2.1".parse()? }]),
    );
    w.packet(1, b0, a0, (3868, 5000), ta, 0, &craft::asconf_ack(1, &[craft::AsconfResult::Success { corr_id: 1 }]));
    w.tick(4000);
    w.packet(0, a1, b1, (5000, 3868), tb, 3, &craft::data(2, 0, 1, 46, &[]));
    w.counters((a1, b1), (5000, 3868), tb, [1, 50, 1, 2, 0], 1);
    w.record(1, &user_record(b1, a1, (3868, 5000), ta, RecordKind::Control, &craft::sack(2, 1000, &[], &[])));
    w.tick(10_000);
    w.packet(1, a0, b0, (5000, 3868), tb, 0, &craft::shutdown(2));
    w.packet(1, b0, a0, (3868, 5000), ta, 0, &craft::shutdown_ack());
    w.packet(1, a0, b0, (5000, 3868), tb, 0, &craft::shutdown_complete(false));
    w.packet(1, a0, b0, (5001, 3868), 0, 0, &craft::init(&InitSpec::new(ta + 1, 1)));
    w.packet(1, b0, a0, (3868, 5001), 77, 0, &craft::abort(true, &[]));
    w.tick(70_000);
    out.put("tracker_sequence", "crafted-every-step", &w.buf)?;
    println!("fuzz_seeds: {} seeds in {}", out.n, out.dir.display());
    Ok(())
}
