//! Damaged capture files through `replay` (what `sctp-monitor replay` runs):
//! a clear error naming the file and the byte offset, what was read before
//! the damage still reported, no panic, and no allocation that follows a
//! bogus length field. Memory is measured by a counting allocator
//! (`alloc/mod.rs`); `the_meter_sees_a_big_allocation` shows it can fail.
//!
//! `replay_fixtures.rs` already cuts the real captures at a spread of
//! offsets and sets a few huge lengths; this file adds every cut inside the
//! first records and blocks, the snap length, the pcapng block-level fields,
//! and the memory bound on all of them.

mod alloc;

mod support;

use std::path::Path;
use std::time::Duration;
use support::process::TempDir;

use pcap_file::DataLink;
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use sctp_monitor::replay::{ReplayError, ReplayOptions, ReplayOutcome, replay};

#[global_allocator]
static ALLOC: alloc::Counting = alloc::Counting;

const FIXTURE: &str = "usrsctp-multihomed-failover";

fn fixture(ext: &str) -> Vec<u8> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/{FIXTURE}.{ext}"));
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Replays `file` under the allocation meter and checks memory: at most a
/// few times the file (read whole, plus the tracker's state) and never a
/// single allocation much above the file's size.
fn replay_bounded(file: &Path) -> Result<ReplayOutcome, ReplayError> {
    let len = std::fs::metadata(file).expect("metadata").len() as usize;
    let (r, use_) = alloc::measure(|| replay(file, &ReplayOptions::default()));
    assert!(
        use_.largest <= len + (1 << 20),
        "{}: an allocation of {} bytes for a {len}-byte file",
        file.display(),
        use_.largest
    );
    assert!(
        use_.peak <= 8 * len + (4 << 20),
        "{}: {} bytes live at the peak for a {len}-byte file",
        file.display(),
        use_.peak
    );
    r
}

/// The damage error of `o`, checked to name the file and `offset`.
fn damaged_at(o: &ReplayOutcome, file: &Path, offset: usize) -> String {
    let e = o.error.as_ref().unwrap_or_else(|| panic!("{}: no error", file.display()));
    let msg = e.to_string();
    assert!(msg.contains(&file.display().to_string()), "{msg}");
    match e {
        ReplayError::Damaged { offset: at, .. } => assert_eq!(*at, offset, "{msg}"),
        _ => panic!("not a damage error: {msg}"),
    }
    msg
}

fn le32(b: &[u8], at: usize) -> usize {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4")) as usize
}

/// Offsets of the first `n` pcap records.
fn pcap_records(b: &[u8], n: usize) -> Vec<usize> {
    let mut v = vec![24];
    while v.len() < n {
        let at = *v.last().expect("one");
        v.push(at + 16 + le32(b, at + 8));
    }
    v
}

/// Offsets of the first `n` pcapng blocks.
fn pcapng_blocks(b: &[u8], n: usize) -> Vec<usize> {
    let mut v = vec![0];
    while v.len() < n {
        let at = *v.last().expect("one");
        v.push(at + le32(b, at + 4));
    }
    v
}

#[test]
fn the_meter_sees_a_big_allocation() {
    let (v, use_) = alloc::measure(|| vec![1u8; 64 << 20]);
    assert_eq!(v.len(), 64 << 20);
    assert!(use_.largest >= 64 << 20 && use_.peak >= 64 << 20, "{use_:?}");
    drop(v);
    let (_, use_) = alloc::measure(|| vec![0u8; 10]);
    assert!(use_.largest < 1024, "{use_:?}");
}

/// Every cut inside the file header and the first records (pcap) or blocks
/// (pcapng): an error at the record or block that was cut, naming the file,
/// with the packets before it read.
#[test]
fn every_cut_in_the_first_records_and_blocks() {
    let tmp = TempDir::new("cuts");
    for ext in ["pcap", "pcapng"] {
        let bytes = fixture(ext);
        let starts = if ext == "pcap" { pcap_records(&bytes, 6) } else { pcapng_blocks(&bytes, 8) };
        let end = *starts.last().expect("starts");
        for cut in 1..end {
            let file = tmp.write(&format!("cut.{ext}"), &bytes[..cut]);
            match replay_bounded(&file) {
                Err(e) => {
                    // Only a file too short for its header is refused whole.
                    let msg = e.to_string();
                    assert!(cut < starts[1], "cut {cut}: {msg}");
                    assert!(msg.contains(&file.display().to_string()), "{msg}");
                }
                Ok(o) if starts.contains(&cut) => {
                    assert!(o.error.is_none(), "cut {cut} at a boundary")
                }
                Ok(o) => {
                    // The record or block the cut fell in.
                    let at = *starts.iter().rev().find(|&&s| s < cut).expect("a start");
                    let msg = damaged_at(&o, &file, at);
                    assert!(msg.contains("truncated"), "cut {cut}: {msg}");
                }
            }
        }
    }
}

fn with_snaplen(pcap: &[u8], snaplen: u32) -> Vec<u8> {
    let mut b = pcap.to_vec();
    b[16..20].copy_from_slice(&snaplen.to_le_bytes());
    b
}

/// The snap length in the file header is not trusted for anything: a file
/// that says 0 or 4 GiB reads the same as the original. (libpcap and
/// Wireshark read such files too; nothing is ever allocated from it.)
#[test]
fn bogus_snaplen_is_not_trusted() {
    let tmp = TempDir::new("snaplen");
    let pcap = fixture("pcap");
    let good = replay_bounded(&tmp.write("good.pcap", &pcap)).expect("replay");
    assert!(good.error.is_none());
    for snaplen in [0u32, 1, 0xFFFF_FFFF] {
        let file = tmp.write("snap.pcap", &with_snaplen(&pcap, snaplen));
        let o = replay_bounded(&file).expect("header is fine");
        assert!(o.error.is_none(), "snaplen {snaplen:#x}: {:?}", o.error);
        assert_eq!(o.packets, good.packets, "snaplen {snaplen:#x}");
        assert_eq!(o.events, good.events, "snaplen {snaplen:#x}");
    }
}

/// A capture taken with a small snap length (`tcpdump -s 128`): records
/// shorter than the packets on the wire. They are read (chunks decoded as
/// far as the bytes go), not refused.
#[test]
fn snaplen_truncated_capture_is_read() {
    let tmp = TempDir::new("short");
    let full = replay_bounded(&tmp.write("full.pcap", &fixture("pcap"))).expect("replay");
    // Rewrite the fixture with every record cut to 128 bytes.
    let src = fixture("pcap");
    let header = PcapHeader { snaplen: 128, datalink: DataLink::ETHERNET, ..PcapHeader::default() };
    let mut w = PcapWriter::with_header(Vec::new(), header).expect("header");
    let mut at = 24;
    while at < src.len() {
        let (sec, usec) = (le32(&src, at) as u64, le32(&src, at + 4) as u64);
        let (caplen, orig) = (le32(&src, at + 8), le32(&src, at + 12));
        let data = &src[at + 16..at + 16 + caplen.min(128)];
        w.write_packet(&PcapPacket::new(Duration::from_micros(sec * 1_000_000 + usec), orig as u32, data))
            .expect("packet");
        at += 16 + caplen;
    }
    let file = tmp.write("snap128.pcap", &w.into_writer());
    let o = replay_bounded(&file).expect("replay");
    assert!(o.error.is_none(), "{:?}", o.error);
    assert_eq!(o.packets, full.packets);
    assert_eq!(o.associations.len(), 1, "the association is still found");
    assert_eq!(o.associations[0].initiator.addrs, full.associations[0].initiator.addrs);
}

/// pcap record lengths: over the largest a capture holds (libpcap's 256 KiB),
/// or past the end of the file.
#[test]
fn pcap_record_lengths() {
    let tmp = TempDir::new("pcaplen");
    let pcap = fixture("pcap");
    let recs = pcap_records(&pcap, 4);
    let at = recs[3];
    for (caplen, what) in [
        (0xFFFF_FFF0u32, "over the largest"),
        (0x0004_0001, "over the largest"),
        (0x0003_FFFF, "truncated"),
        (pcap.len() as u32, "truncated"),
    ] {
        let mut b = pcap.clone();
        b[at + 8..at + 12].copy_from_slice(&caplen.to_le_bytes());
        let file = tmp.write("len.pcap", &b);
        let o = replay_bounded(&file).expect("header is fine");
        assert_eq!(o.packets, 3, "the records before are read");
        let msg = damaged_at(&o, &file, at);
        assert!(msg.contains(what), "{caplen:#x}: {msg}");
        assert!(msg.contains(&caplen.to_string()), "the length is shown: {msg}");
    }
    // The same on a big-endian, nanosecond file header.
    let mut be = pcap[..24].to_vec();
    be[..4].copy_from_slice(&0xA1B2_3C4Du32.to_be_bytes());
    for f in [4, 6, 8, 12, 16, 20] {
        let v = u32::from_le_bytes(pcap[f..f + 4].try_into().expect("4"));
        let v = if f == 4 { u32::from_le_bytes([pcap[6], pcap[7], pcap[4], pcap[5]]) } else { v };
        be[f..f + 4].copy_from_slice(&v.to_be_bytes());
    }
    be[4..8].copy_from_slice(&[0, 2, 0, 4]);
    be.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0]);
    be.extend_from_slice(&0xFFFF_FFF0u32.to_be_bytes());
    be.extend_from_slice(&[0, 0, 0, 64]);
    let file = tmp.write("be.pcap", &be);
    let o = replay_bounded(&file).expect("header is fine");
    let msg = damaged_at(&o, &file, 24);
    assert!(msg.contains("4294967280"), "{msg}");
}

/// pcapng block fields: total length huge, not a multiple of 4, below 12,
/// trailer different; an enhanced packet whose captured length runs past
/// its block; a section header with a bad byte-order magic.
#[test]
fn pcapng_block_fields() {
    let tmp = TempDir::new("ng");
    let ng = fixture("pcapng");
    let blocks = pcapng_blocks(&ng, 6);
    // The fifth block: an enhanced packet, after the section header, two
    // interface descriptions and one packet.
    let at = blocks[4];
    assert_eq!(le32(&ng, at), 6, "an enhanced packet block");
    let before = blocks[..4].iter().filter(|&&b| le32(&ng, b) == 6).count() as u64;
    let len = le32(&ng, at + 4);
    // (name, where a u32 is written, its value, what the message says).
    let cases = [
        ("huge", at + 4, 0xFFFF_FFF0u32, "truncated"),
        ("odd", at + 4, len as u32 + 2, "length"),
        ("tiny", at + 4, 8, "length"),
        ("trailer", at + len - 4, 1, "trailer"),
        ("caplen", at + 20, 0xFFFF_FFF0, "captured"),
    ];
    for (name, field, value, what) in cases {
        let mut b = ng.clone();
        b[field..field + 4].copy_from_slice(&value.to_le_bytes());
        let file = tmp.write(&format!("{name}.pcapng"), &b);
        let o = replay_bounded(&file).expect("section header is fine");
        assert_eq!(o.packets, before, "{name}: the packets before are read");
        let msg = damaged_at(&o, &file, at);
        assert!(msg.to_lowercase().contains(what), "{name}: {msg}");
    }
    let mut b = ng.clone();
    b[8..12].copy_from_slice(&0xDEAD_BEEFu32.to_le_bytes());
    let file = tmp.write("bom.pcapng", &b);
    let e = replay_bounded(&file).expect_err("no section header");
    let msg = e.to_string();
    assert!(matches!(e, ReplayError::Damaged { offset: 0, .. }), "{msg}");
    assert!(msg.contains("bom.pcapng") && msg.to_lowercase().contains("magic"), "{msg}");
}

/// Blocks the reader has no use for are skipped without being parsed: a
/// name resolution block with a host name that is not UTF-8 (legal in
/// pcapng, which pcap-file refuses) no longer stops the replay.
#[test]
fn unused_pcapng_blocks_are_skipped() {
    let tmp = TempDir::new("nrb");
    let ng = fixture("pcapng");
    let blocks = pcapng_blocks(&ng, 5);
    let at = blocks[3];
    // An IPv4 record for 10.0.0.1 named "\xff\xfe" (Latin-1), then the end.
    let mut nrb = Vec::new();
    nrb.extend_from_slice(&4u32.to_le_bytes());
    nrb.extend_from_slice(&28u32.to_le_bytes());
    nrb.extend_from_slice(&1u16.to_le_bytes());
    nrb.extend_from_slice(&8u16.to_le_bytes());
    nrb.extend_from_slice(&[10, 0, 0, 1, 0xff, 0xfe, 0, 0]);
    nrb.extend_from_slice(&[0; 4]);
    nrb.extend_from_slice(&28u32.to_le_bytes());
    let mut b = ng[..at].to_vec();
    b.extend_from_slice(&nrb);
    b.extend_from_slice(&ng[at..]);
    let file = tmp.write("nrb.pcapng", &b);
    let o = replay_bounded(&file).expect("replay");
    assert!(o.error.is_none(), "{:?}", o.error);
    let good = replay_bounded(&tmp.write("good.pcapng", &ng)).expect("replay");
    assert_eq!(o.packets, good.packets);
    assert_eq!(o.events, good.events);
}
