//! Kernel ring-buffer records ([`ChunkRecord`]) -> the same [`PacketMeta`] and
//! [`Chunk`] a capture produces, so live and capture share one decoder.
//!
//! A record's `data` holds the chunk as the kernel kept it: up to
//! `RECORD_DATA_LEN` bytes from its start; for an INIT-ACK two segments, the
//! bytes before and after its State Cookie (joined here, they are the chunk
//! without the cookie; the header keeps the wire length); for DATA / I-DATA
//! only the 16/20-byte header; for COOKIE-ECHO the chunk header. [`decode_chunk`] already decodes "what is there", so the
//! record path is the capture path on fewer bytes.

use sctp_monitor_common::record::{
    RECORD_FLAG_BUNDLED_PAD, RECORD_FLAG_NEW_DATA, RECORD_FLAG_UDP_ENCAP, RecordHeader, ip_addr,
};
use sctp_monitor_common::{ChunkRecord, RecordKind};

use super::chunk::{Chunk, decode_chunk, decode_heartbeat};
use super::packet::{KernelData, PacketMeta};
use super::{DecodeError, DecodeStats};

/// Decodes a kernel record. `ts_ns` is the record's time converted to the
/// wall clock by the caller (records carry CLOCK_MONOTONIC).
pub fn decode_record(
    rec: &ChunkRecord,
    ts_ns: u64,
    stats: &mut DecodeStats,
) -> Result<(PacketMeta, Chunk), DecodeError> {
    let (seg1, seg2) = rec.segments();
    decode_parts(rec.header(), seg1, seg2, ts_ns, stats)
}

/// [`decode_record`] on a record's parts: its header and its two segments,
/// wherever they are (a ring item is read in place:
/// `sctp_monitor_common::record::split_item`).
pub fn decode_parts(
    h: &RecordHeader,
    seg1: &[u8],
    seg2: &[u8],
    ts_ns: u64,
    stats: &mut DecodeStats,
) -> Result<(PacketMeta, Chunk), DecodeError> {
    let meta = record_meta(h, ts_ns)?;
    Ok((meta, record_chunk(h, seg1, seg2, stats)?))
}

/// The packet fields of a record (the first half of [`decode_parts`]).
#[inline(always)]
pub fn record_meta(h: &RecordHeader, ts_ns: u64) -> Result<PacketMeta, DecodeError> {
    let kind = RecordKind::from_u8(h.kind).ok_or(DecodeError::BadRecord("unknown record kind"))?;
    let (Some(src), Some(dst)) = (ip_addr(&h.src_addr, h.ip_version), ip_addr(&h.dst_addr, h.ip_version)) else {
        return Err(DecodeError::BadRecord("IP version"));
    };
    Ok(PacketMeta {
        ts_ns,
        src,
        dst,
        src_port: h.src_port,
        dst_port: h.dst_port,
        vtag: h.vtag,
        udp_ports: (h.flags & RECORD_FLAG_UDP_ENCAP != 0).then_some((h.udp_src_port, h.udp_dst_port)),
        ip_len: h.ip_len,
        bundled_pad: h.flags & RECORD_FLAG_BUNDLED_PAD != 0,
        record: Some(kind),
        interface: h.ifindex,
        kdata: is_data(kind).then_some(KernelData {
            new: h.flags & RECORD_FLAG_NEW_DATA != 0,
            rtx_chunks: h.rtx_chunks,
            high_rtx_tsn: h.high_rtx_tsn,
        }),
    })
}

/// The record kinds that carry a DATA chunk.
fn is_data(kind: RecordKind) -> bool {
    !matches!(kind, RecordKind::Control | RecordKind::CookieEcho | RecordKind::SackFirst | RecordKind::SackChange)
}

/// The chunk of a record whose [`record_meta`] decoded (the second half of
/// [`decode_parts`]).
#[inline(always)]
pub fn record_chunk(h: &RecordHeader, seg1: &[u8], seg2: &[u8], stats: &mut DecodeStats) -> Result<Chunk, DecodeError> {
    if h.kind == RecordKind::CookieEcho as u8 {
        stats.chunks += 1;
        return Ok(Chunk::CookieEcho { len: h.chunk_len });
    }
    // The chunk header in `data` carries the wire length; `decode_chunk`
    // reads the bytes present and takes DATA payload length from the field.
    let fast = if seg2.is_empty() { decode_heartbeat(seg1, stats) } else { None };
    let chunk = match fast {
        Some(c) => c,
        None => {
            let bytes: std::borrow::Cow<'_, [u8]> =
                if seg2.is_empty() { seg1.into() } else { [seg1, seg2].concat().into() };
            decode_chunk(&bytes, stats).inspect_err(|_| stats.malformed_chunks += 1)?.0
        }
    };
    stats.chunks += 1;
    Ok(chunk)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::craft::{self, CookiePos, InitSpec};
    use bytemuck::Zeroable;
    use sctp_monitor_common::{
        record::{SEGMENT_LEN, split_item},
        sctp::param,
    };
    use std::net::IpAddr;

    fn record(kind: RecordKind, data: &[u8], wire_len: u16) -> ChunkRecord {
        let mut r = ChunkRecord::zeroed();
        r.kind = kind as u8;
        r.ip_version = 4;
        r.src_addr[..4].copy_from_slice(&[10, 0, 0, 1]);
        r.dst_addr[..4].copy_from_slice(&[10, 0, 0, 2]);
        r.src_port = 36412;
        r.dst_port = 36412;
        r.vtag = 0x1234;
        r.chunk_type = data[0];
        r.chunk_len = wire_len;
        let n = data.len().min(r.data.len());
        r.data[..n].copy_from_slice(&data[..n]);
        r.seg1_len = n as u16;
        r
    }

    /// What the kernel does to an INIT-ACK: segment 1 is everything before
    /// the State Cookie, segment 2 everything after it.
    fn split(chunk: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let mut off = 20;
        while off + 4 <= chunk.len() {
            let t = u16::from_be_bytes([chunk[off], chunk[off + 1]]);
            let l = u16::from_be_bytes([chunk[off + 2], chunk[off + 3]]) as usize;
            let p = (l + 3) & !3;
            if t == param::STATE_COOKIE {
                return (chunk[..off].to_vec(), chunk[(off + p).min(chunk.len())..].to_vec());
            }
            off += p;
        }
        (chunk.to_vec(), Vec::new())
    }

    /// `decode_record` as it was before records were read in place: the
    /// reference both ways of reading are held to.
    fn reference(rec: &ChunkRecord, ts_ns: u64, stats: &mut DecodeStats) -> Result<(PacketMeta, Chunk), DecodeError> {
        if rec.kind().is_none() {
            return Err(DecodeError::BadRecord("unknown record kind"));
        }
        let (src, dst) = rec.addrs().ok_or(DecodeError::BadRecord("IP version"))?;
        let meta = PacketMeta {
            ts_ns,
            src,
            dst,
            src_port: rec.src_port,
            dst_port: rec.dst_port,
            vtag: rec.vtag,
            udp_ports: (rec.flags & RECORD_FLAG_UDP_ENCAP != 0).then_some((rec.udp_src_port, rec.udp_dst_port)),
            ip_len: rec.ip_len,
            bundled_pad: rec.flags & RECORD_FLAG_BUNDLED_PAD != 0,
            record: rec.kind(),
            interface: rec.ifindex,
            kdata: rec.kind().filter(|&k| is_data(k)).map(|_| KernelData {
                new: rec.flags & RECORD_FLAG_NEW_DATA != 0,
                rtx_chunks: rec.rtx_chunks,
                high_rtx_tsn: rec.high_rtx_tsn,
            }),
        };
        if rec.kind() == Some(RecordKind::CookieEcho) {
            stats.chunks += 1;
            return Ok((meta, Chunk::CookieEcho { len: rec.chunk_len }));
        }
        let (seg1, seg2) = rec.segments();
        let (chunk, _) = decode_chunk(&[seg1, seg2].concat(), stats).inspect_err(|_| stats.malformed_chunks += 1)?;
        stats.chunks += 1;
        Ok((meta, chunk))
    }

    #[test]
    fn records_read_in_place_or_copied_decode_as_before() {
        let mut rng = craft::XorShift::new(0xdec0de);
        let a: IpAddr = "10.0.0.1".parse().expect("a");
        let b: IpAddr = "fd00::2".parse().expect("a");
        let mut words = vec![0u64; size_of::<ChunkRecord>() / 8];
        let mut in_place_ok = 0;
        for i in 0..20_000u32 {
            let info: Vec<u8> = (0..rng.below(60)).map(|_| rng.next_u64() as u8).collect();
            let chunk = match i % 10 {
                0 => craft::heartbeat(&info),
                1 => craft::heartbeat_ack(&info),
                2 => craft::init(&InitSpec::new(i, 1).addrs(&[a, b])),
                3 => craft::init_ack(&InitSpec::new(i, 1).addrs(&[a]).cookie(40 + i as usize % 300, CookiePos::Before)),
                4 => craft::sack(i, 9, &[(2, 3)], &[i]),
                5 => craft::data(i, 1, 2, 3, &info)[..16].to_vec(),
                6 => craft::abort(i % 2 == 0, &[craft::error_cause(1, &info)]),
                7 => craft::shutdown(i),
                8 => craft::cookie_ack(),
                _ => info.clone(),
            };
            let (seg1, seg2) = if i % 10 == 3 { split(&chunk) } else { (chunk.clone(), Vec::new()) };
            let mut rec = record(RecordKind::Control, if seg1.is_empty() { &[0] } else { &seg1 }, chunk.len() as u16);
            rec.seg1_len = seg1.len() as u16;
            if !seg2.is_empty() {
                rec.data[SEGMENT_LEN..SEGMENT_LEN + seg2.len()].copy_from_slice(&seg2);
                rec.seg2_len = seg2.len() as u16;
            }
            // Header fields of every kind, some bogus.
            rec.kind = [0, 0, 0, 1, 2, 3, 4, 9][rng.below(8)];
            rec.ip_version = [4, 4, 6, 5][rng.below(4)];
            rec.flags = rng.next_u64() as u8;
            rec.udp_src_port = rng.next_u64() as u16;
            match rng.below(8) {
                0 => rec.seg1_len = rng.below(600) as u16,
                1 => rec.seg2_len = rng.below(300) as u16,
                _ => {}
            }
            let (mut st_ref, mut st_copy, mut st_in_place) = Default::default();
            let want = reference(&rec, 7, &mut st_ref);
            assert_eq!(decode_record(&rec, 7, &mut st_copy), want, "record {i}");
            assert_eq!(st_copy, st_ref, "record {i}");
            // The same record as a ring item: the header and the bytes in
            // use, 8-byte aligned, read where they lie.
            let n = ChunkRecord::wire_len(rec.seg1_len, rec.seg2_len).min(size_of::<ChunkRecord>());
            let item = &mut bytemuck::cast_slice_mut::<u64, u8>(&mut words)[..n];
            item.copy_from_slice(&bytemuck::bytes_of(&rec)[..n]);
            let (h, s1, s2) = split_item(item).expect("a whole item");
            let got = record_meta(h, 7).and_then(|m| Ok((m, record_chunk(h, s1, s2, &mut st_in_place)?)));
            assert_eq!(got, want, "record {i} in place");
            assert_eq!(st_in_place, st_ref, "record {i} in place");
            in_place_ok += want.is_ok() as u32;
        }
        assert!(in_place_ok > 5_000, "{in_place_ok} records decoded");
    }

    #[test]
    fn compacted_init_ack_gives_the_addresses() {
        let a: IpAddr = "10.0.0.1".parse().expect("a");
        let b: IpAddr = "10.0.1.1".parse().expect("a");
        let full = craft::init_ack(&InitSpec::new(0xaaaa, 1).addrs(&[a, b]).cookie(500, CookiePos::Before));
        let (seg1, seg2) = split(&full);
        assert!(seg1.len() + seg2.len() < 64, "the cookie is dropped");
        let mut rec = record(RecordKind::Control, &seg1, full.len() as u16);
        rec.data[SEGMENT_LEN..SEGMENT_LEN + seg2.len()].copy_from_slice(&seg2);
        rec.seg2_len = seg2.len() as u16;
        let mut st = DecodeStats::default();
        let (meta, c) = decode_record(&rec, 99, &mut st).expect("decodes");
        assert_eq!(meta.src, a);
        assert_eq!(meta.ts_ns, 99);
        assert_eq!(meta.record, Some(RecordKind::Control));
        let Chunk::InitAck(i) = c else { panic!("not INIT-ACK") };
        assert_eq!(i.initiate_tag, 0xaaaa);
        assert_eq!(i.addrs, vec![a, b]);
        assert!(!i.has_cookie);
        assert_eq!(st.malformed_params, 0, "a compacted chunk is not malformed");
        assert_eq!(param::STATE_COOKIE, 7);
    }

    #[test]
    fn data_record_header_only() {
        let full = craft::data(0xffff_fff0, 3, 4, 18, &[0u8; 1000]);
        let rec = record(RecordKind::DataPathChange, &full[..16], full.len() as u16);
        let mut st = DecodeStats::default();
        let (_, c) = decode_record(&rec, 0, &mut st).expect("decodes");
        let Chunk::Data(d) = c else { panic!("not DATA") };
        assert_eq!(d.tsn, 0xffff_fff0);
        assert_eq!(d.payload_len, 1000);
    }

    #[test]
    fn bad_records_are_errors_not_panics() {
        let mut rec = record(RecordKind::Control, &craft::cookie_ack(), 4);
        rec.kind = 77;
        let mut st = DecodeStats::default();
        assert!(decode_record(&rec, 0, &mut st).is_err());
        let mut rec = record(RecordKind::Control, &craft::cookie_ack(), 4);
        rec.ip_version = 5;
        assert!(decode_record(&rec, 0, &mut st).is_err());
        let mut rec = record(RecordKind::Control, &[0, 0, 0, 2], 2);
        rec.seg1_len = 4000;
        assert!(decode_record(&rec, 0, &mut st).is_err());
        let rec = record(RecordKind::CookieEcho, &craft::cookie_echo(&[1; 200])[..4], 204);
        assert_eq!(decode_record(&rec, 0, &mut st).expect("decodes").1, Chunk::CookieEcho { len: 204 });
    }
}
