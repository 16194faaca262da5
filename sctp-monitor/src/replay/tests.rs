//! Replay on pcap / pcapng files written here with the pcap-file crate.

use std::borrow::Cow;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use pcap_file::DataLink;
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use pcap_file::pcapng::PcapNgWriter;
use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
use pcap_file::pcapng::blocks::interface_description::{InterfaceDescriptionBlock, InterfaceDescriptionOption};

use super::*;
use crate::craft::{self, CookiePos, FrameBuilder, InitSpec};
use crate::event::EventKind;

const T0: u64 = 1_700_000_000_000_000_000;
const MS: u64 = 1_000_000;

/// A file under the system temp dir, removed on drop.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str) -> TempFile {
        TempFile(std::env::temp_dir().join(format!("sctp-monitor-replay-{}-{name}", std::process::id())))
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("addr")
}

/// (time ms, frame builder) of a multihomed association that fails over.
fn scenario() -> Vec<(u64, FrameBuilder)> {
    let (a0, a1, b0, b1) = (ip("10.0.0.1"), ip("10.0.1.1"), ip("10.0.0.2"), ip("10.0.1.2"));
    let (ta, tb) = (0x0A0A_0A0A, 0x0B0B_0B0B);
    let ab = |s, d, tag| FrameBuilder::ip(s, d).sctp(5000, 3868, tag);
    let ba = |s, d, tag| FrameBuilder::ip(s, d).sctp(3868, 5000, tag);
    vec![
        (0, ab(a0, b0, 0).chunk(craft::init(&InitSpec::new(ta, 1).addrs(&[a1])))),
        (1, ba(b0, a0, ta).chunk(craft::init_ack(&InitSpec::new(tb, 1).addrs(&[b1]).cookie(200, CookiePos::After)))),
        (2, ab(a0, b0, tb).chunk(craft::cookie_echo(&[0; 200]))),
        (3, ba(b0, a0, ta).chunk(craft::cookie_ack())),
        (10, ab(a0, b0, tb).chunk(craft::data(1, 0, 0, 46, &[1; 50]))),
        (20, ba(b0, a0, ta).chunk(craft::sack(1, 1000, &[], &[]))),
        (1000, ab(a0, b0, tb).chunk(craft::data(2, 0, 1, 46, &[1; 50]))),
        (2000, ab(a1, b1, tb).chunk(craft::data(2, 0, 1, 46, &[1; 50]))),
        (3000, ab(a1, b1, tb).chunk(craft::data(3, 0, 2, 46, &[1; 50]))),
        (3010, ba(b1, a1, ta).chunk(craft::sack(3, 1000, &[], &[]))),
    ]
}

fn write_pcap(path: &PathBuf, frames: &[(u64, Vec<u8>)], datalink: DataLink) {
    let file = std::fs::File::create(path).expect("create capture");
    let header = PcapHeader { datalink, ts_resolution: pcap_file::TsResolution::NanoSecond, ..PcapHeader::default() };
    let mut w = PcapWriter::with_header(file, header).expect("pcap header");
    for (ts, f) in frames {
        w.write_packet(&PcapPacket::new(Duration::from_nanos(*ts), f.len() as u32, f)).expect("write packet");
    }
}

#[test]
fn pcap_ethernet_replay_finds_association_and_failover() {
    let tmp = TempFile::new("eth.pcap");
    let mut frames: Vec<(u64, Vec<u8>)> = scenario().into_iter().map(|(t, b)| (T0 + t * MS, b.build())).collect();
    // A non-SCTP frame and a malformed one.
    frames.insert(1, (T0, FrameBuilder::ip(ip("1.1.1.1"), ip("2.2.2.2")).udp_encap(53, 53).build()));
    let mut bad = vec![0u8; 12];
    bad.extend_from_slice(&[0x08, 0x00, 0x45, 0, 0]);
    frames.insert(2, (T0, bad));
    write_pcap(&tmp.0, &frames, DataLink::ETHERNET);
    let o = replay(&tmp.0, &ReplayOptions::default()).expect("replay");
    assert!(o.error.is_none());
    assert_eq!(o.packets, 12);
    assert_eq!(o.sctp_packets, 10);
    assert_eq!(o.other_packets, 1);
    assert_eq!(o.malformed_packets, 1);
    assert_eq!(o.associations.len(), 1);
    let a = &o.associations[0];
    assert_eq!(a.initiator.addrs, vec![ip("10.0.0.1"), ip("10.0.1.1")]);
    assert_eq!(a.responder.addrs, vec![ip("10.0.0.2"), ip("10.0.1.2")]);
    let kinds: Vec<_> = o.events.iter().map(|e| e.event).collect();
    assert!(kinds.contains(&EventKind::AssociationUp));
    let f: Vec<_> = o.events.iter().filter(|e| e.event == EventKind::Failover).collect();
    assert_eq!(f.len(), 1, "the retransmission at 2000 ms is not the failover; TSN 3 at 3000 ms is");
    assert_eq!(f[0].ts, T0 + 3000 * MS);
    assert_eq!(f[0].last_old_data, Some(T0 + 1000 * MS));
    let mut text = Vec::new();
    crate::report::write_report(&o, &mut text).expect("report");
    let text = String::from_utf8(text).expect("utf-8");
    assert!(text.contains("failover at"), "{text}");
    assert!(text.contains("10.0.1.1 -> 10.0.1.2"), "{text}");
}

#[test]
fn pcapng_with_two_interfaces_and_link_types() {
    let tmp = TempFile::new("two.pcapng");
    let file = std::fs::File::create(&tmp.0).expect("create");
    let mut w = PcapNgWriter::new(file).expect("pcapng");
    let nano = vec![InterfaceDescriptionOption::IfTsResol(9)];
    w.write_pcapng_block(InterfaceDescriptionBlock {
        linktype: DataLink::ETHERNET,
        snaplen: 0xffff,
        options: nano.clone(),
    })
    .expect("idb");
    w.write_pcapng_block(InterfaceDescriptionBlock { linktype: DataLink::LINUX_SLL2, snaplen: 0xffff, options: nano })
        .expect("idb");
    for (i, (t, b)) in scenario().into_iter().enumerate() {
        // Odd packets on the SLL2 interface.
        let (iface, data) = if i % 2 == 1 {
            let mut d = 0x0800u16.to_be_bytes().to_vec();
            d.extend_from_slice(&[0; 18]);
            d.extend_from_slice(&b.build_ip());
            (1, d)
        } else {
            (0, b.build())
        };
        w.write_pcapng_block(EnhancedPacketBlock {
            interface_id: iface,
            timestamp: Duration::from_nanos(T0 + t * MS),
            original_len: data.len() as u32,
            data: Cow::Owned(data),
            options: vec![],
        })
        .expect("epb");
    }
    drop(w);
    let o = replay(&tmp.0, &ReplayOptions::default()).expect("replay");
    assert!(o.error.is_none(), "{:?}", o.error);
    assert_eq!(o.sctp_packets, 10);
    assert_eq!(o.associations.len(), 1);
    let up = o.events.iter().find(|e| e.event == EventKind::AssociationUp).expect("up");
    assert_eq!(up.ts, T0 + 3 * MS, "capture timestamps, nanosecond resolution");
}

#[test]
fn truncated_file_reports_offset_and_what_was_read() {
    let tmp = TempFile::new("cut.pcap");
    let frames: Vec<(u64, Vec<u8>)> = scenario().into_iter().map(|(t, b)| (T0 + t * MS, b.raw_ip().build())).collect();
    write_pcap(&tmp.0, &frames, DataLink::RAW);
    let full = std::fs::read(&tmp.0).expect("read");
    std::fs::write(&tmp.0, &full[..full.len() - 10]).expect("cut");
    let o = replay(&tmp.0, &ReplayOptions::default()).expect("replay");
    assert_eq!(o.sctp_packets, 9, "everything before the cut is read");
    assert_eq!(o.associations.len(), 1);
    let err = o.error.expect("damage reported");
    let msg = err.to_string();
    assert!(msg.contains("cut.pcap"), "{msg}");
    let last_len = frames.last().map(|f| f.1.len()).unwrap_or(0);
    let offset = full.len() - (16 + last_len);
    assert!(msg.contains(&format!("offset {offset}")), "{msg}");
    // The CLI prints what it read, then fails.
    let mut out = Vec::new();
    let r = run_replay_cli(&tmp.0, true, &ReplayOptions::default(), &mut out);
    assert!(r.is_err());
    assert!(String::from_utf8_lossy(&out).contains("\"event\":\"association_up\""));
}

#[test]
fn not_a_capture_is_an_error() {
    let tmp = TempFile::new("junk.pcap");
    std::fs::write(&tmp.0, b"hello world, not a capture").expect("write");
    let e = replay(&tmp.0, &ReplayOptions::default()).expect_err("must fail");
    assert!(e.to_string().contains("not a pcap or pcapng"), "{e}");
    let missing = replay(&tmp.0.with_extension("missing"), &ReplayOptions::default()).expect_err("must fail");
    assert!(missing.to_string().contains("cannot read"));
}

/// Regression (dumpcap's two-interface pcapng fixture): blocks are written
/// per interface buffer, not in time order. Replayed as written, the SACK
/// would come before its DATA and the last packets after SHUTDOWN-COMPLETE
/// (a closed association picked up again mid-flight); sorted, the result is
/// the pcap's.
#[test]
fn pcapng_blocks_out_of_time_order_are_sorted() {
    let tmp = TempFile::new("order.pcapng");
    let file = std::fs::File::create(&tmp.0).expect("create");
    let mut w = PcapNgWriter::new(file).expect("pcapng");
    for _ in 0..2 {
        w.write_pcapng_block(InterfaceDescriptionBlock {
            linktype: DataLink::ETHERNET,
            snaplen: 0xffff,
            options: vec![InterfaceDescriptionOption::IfTsResol(9)],
        })
        .expect("idb");
    }
    let frames = scenario();
    // Interface 0: path 0 (10.0.0.x); interface 1: path 1, written last.
    let on_path1 = |b: &Vec<u8>| b.windows(4).any(|w| w == [10, 0, 1, 1] || w == [10, 0, 1, 2]);
    let built: Vec<(u64, Vec<u8>)> = frames.into_iter().map(|(t, b)| (T0 + t * MS, b.build())).collect();
    let mut ordered: Vec<&(u64, Vec<u8>)> = built.iter().filter(|f| !on_path1(&f.1)).collect();
    ordered.extend(built.iter().filter(|f| on_path1(&f.1)));
    for (t, data) in ordered {
        w.write_pcapng_block(EnhancedPacketBlock {
            interface_id: on_path1(data) as u32,
            timestamp: Duration::from_nanos(*t),
            original_len: data.len() as u32,
            data: Cow::Owned(data.clone()),
            options: vec![],
        })
        .expect("epb");
    }
    drop(w);
    let o = replay(&tmp.0, &ReplayOptions::default()).expect("replay");
    assert!(o.error.is_none(), "{:?}", o.error);
    assert!(o.reordered > 0);
    let pcap = TempFile::new("order.pcap");
    write_pcap(&pcap.0, &built, DataLink::ETHERNET);
    let p = replay(&pcap.0, &ReplayOptions::default()).expect("replay");
    assert_eq!(p.reordered, 0);
    assert_eq!(o.events, p.events);
    assert_eq!(o.associations.len(), 1);
    assert_eq!(o.chunk_counts, p.chunk_counts);
    let f: Vec<_> = o.events.iter().filter(|e| e.event == EventKind::Failover).collect();
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].ts, T0 + 3000 * MS);
}

/// Interface options that run to the end of the block without the closing
/// opt_endofopt (magma's captures have them; tshark reads them): the file
/// is read, with the interface's name and time resolution taken into
/// account, not refused at the interface block.
#[test]
fn pcapng_interface_options_without_end_of_options_are_read() {
    let le32 = |v: u32| v.to_le_bytes();
    let mut f = Vec::new();
    // Section header: no options.
    f.extend_from_slice(&le32(0x0A0D_0D0A));
    f.extend_from_slice(&le32(28));
    f.extend_from_slice(&le32(0x1A2B_3C4D));
    f.extend_from_slice(&[1, 0, 0, 0]);
    f.extend_from_slice(&[0xff; 8]);
    f.extend_from_slice(&le32(28));
    // Interface: Ethernet, if_name "eth1" and if_tsresol 9, no opt_endofopt.
    let opts = [&[2u8, 0, 4, 0][..], b"eth1", &[9, 0, 1, 0, 9, 0, 0, 0]].concat();
    let idb_len = 8 + 8 + opts.len() as u32 + 4;
    f.extend_from_slice(&le32(1));
    f.extend_from_slice(&le32(idb_len));
    f.extend_from_slice(&[1, 0, 0, 0]);
    f.extend_from_slice(&le32(65535));
    f.extend_from_slice(&opts);
    f.extend_from_slice(&le32(idb_len));
    // One enhanced packet per frame of the scenario, in nanoseconds.
    for (t, b) in scenario() {
        let frame = b.build();
        let pad = (4 - frame.len() % 4) % 4;
        let len = 32 + (frame.len() + pad) as u32;
        let ts = T0 + t * MS;
        f.extend_from_slice(&le32(6));
        f.extend_from_slice(&le32(len));
        f.extend_from_slice(&le32(0));
        f.extend_from_slice(&le32((ts >> 32) as u32));
        f.extend_from_slice(&le32(ts as u32));
        f.extend_from_slice(&le32(frame.len() as u32));
        f.extend_from_slice(&le32(frame.len() as u32));
        f.extend_from_slice(&frame);
        f.extend_from_slice(&vec![0; pad]);
        f.extend_from_slice(&le32(len));
    }
    let o = replay_bytes(&f, Path::new("unterminated.pcapng"), &ReplayOptions::default()).expect("a pcapng");
    assert!(o.error.is_none(), "{:?}", o.error);
    assert_eq!(o.sctp_packets as usize, scenario().len());
    assert_eq!(o.associations.len(), 1);
    let fo: Vec<_> = o.events.iter().filter(|e| e.event == EventKind::Failover).collect();
    assert_eq!(fo.len(), 1);
    // Nanosecond timestamps: the failover's first new DATA at 3000 ms.
    assert_eq!(fo[0].first_new_data, Some(T0 + 3000 * MS));
}
