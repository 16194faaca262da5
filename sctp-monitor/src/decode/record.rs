//! Kernel ring-buffer records ([`ChunkRecord`]) -> the same [`PacketMeta`] and
//! [`Chunk`] a capture produces, so live and capture share one decoder.
//!
//! A record's `data` holds the chunk as the kernel kept it: up to
//! `RECORD_DATA_LEN` bytes from its start; for an INIT-ACK two segments, the
//! bytes before and after its State Cookie (joined here, they are the chunk
//! without the cookie; the header keeps the wire length); for DATA / I-DATA
//! only the 16/20-byte header; for COOKIE-ECHO the chunk header. [`decode_chunk`] already decodes "what is there", so the
//! record path is the capture path on fewer bytes.

use sctp_monitor_common::record::{RECORD_FLAG_BUNDLED_PAD, RECORD_FLAG_UDP_ENCAP};
use sctp_monitor_common::{ChunkRecord, RecordKind};

use super::chunk::{Chunk, decode_chunk, decode_heartbeat};
use super::packet::PacketMeta;
use super::{DecodeError, DecodeStats};

/// Decodes a kernel record. `ts_ns` is the record's time converted to the
/// wall clock by the caller (records carry CLOCK_MONOTONIC).
pub fn decode_record(
    rec: &ChunkRecord,
    ts_ns: u64,
    stats: &mut DecodeStats,
) -> Result<(PacketMeta, Chunk), DecodeError> {
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
    };
    if rec.kind() == Some(RecordKind::CookieEcho) {
        stats.chunks += 1;
        return Ok((meta, Chunk::CookieEcho { len: rec.chunk_len }));
    }
    // The chunk header in `data` carries the wire length; `decode_chunk`
    // reads the bytes present and takes DATA payload length from the field.
    let (seg1, seg2) = rec.segments();
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
    Ok((meta, chunk))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::craft::{self, CookiePos, InitSpec};
    use bytemuck::Zeroable;
    use sctp_monitor_common::{record::SEGMENT_LEN, sctp::param};
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
