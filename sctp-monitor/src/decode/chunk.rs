//! Chunks: the typed view of one SCTP chunk, and the walk over a packet's
//! chunks.

use std::net::IpAddr;

use sctp_monitor_common::sctp::{
    ASCONF_FIXED_LEN, CHUNK_HEADER_LEN, DATA_HEADER_LEN, I_DATA_HEADER_LEN, INIT_FIXED_LEN, SACK_HEADER_LEN, chunk,
    padded, param,
};

use super::param::{TlvIter, address, leading_address};
use super::{DecodeError, DecodeStats, get16, get32};

/// DATA or I-DATA header fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataHeader {
    /// I-DATA (RFC 8260) rather than DATA.
    pub i_data: bool,
    /// Chunk flags (I, U, B, E).
    pub flags: u8,
    pub tsn: u32,
    pub stream: u16,
    /// Stream sequence number (DATA) or message id (I-DATA).
    pub seq: u32,
    /// PPID (DATA, I-DATA with B) or fragment sequence number (I-DATA).
    pub ppid: u32,
    /// User data bytes, from the length field (the bytes may be absent).
    pub payload_len: u16,
}

/// Heartbeat Info as the monitor uses it. The bytes are opaque (only their
/// sender reads them); all anyone here does is match a HEARTBEAT-ACK to its
/// HEARTBEAT by them. So the decoder keeps their length and a 64-bit digest
/// ([`crate::fasthash::digest`]) rather than a copy: no allocation per
/// heartbeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct HbInfo {
    /// Bytes of Heartbeat Info present.
    pub len: u16,
    pub digest: u64,
}

impl HbInfo {
    pub fn of(bytes: &[u8]) -> HbInfo {
        HbInfo { len: bytes.len().min(u16::MAX as usize) as u16, digest: crate::fasthash::digest(bytes) }
    }
}

/// INIT / INIT-ACK fixed fields and the address list.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Init {
    pub initiate_tag: u32,
    pub a_rwnd: u32,
    pub out_streams: u16,
    pub in_streams: u16,
    pub initial_tsn: u32,
    /// IPv4/IPv6 Address parameters, in order.
    pub addrs: Vec<IpAddr>,
    /// A State Cookie parameter was present.
    pub has_cookie: bool,
    /// A (deprecated) Host Name Address parameter was present.
    pub has_host_name: bool,
}

/// SACK fields.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Sack {
    pub cum_tsn: u32,
    pub a_rwnd: u32,
    /// Gap ack blocks (start, end offsets from `cum_tsn`) present in the bytes.
    pub gaps: Vec<(u16, u16)>,
    /// Duplicate TSNs present in the bytes.
    pub dups: Vec<u32>,
    /// Counts from the header (may exceed what is present).
    pub n_gaps: u16,
    pub n_dups: u16,
}

/// An error cause of ABORT / ERROR / Error Cause Indication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorCause {
    pub code: u16,
    pub info: Vec<u8>,
}

/// What an ASCONF request asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AsconfRequestKind {
    Add,
    Delete,
    SetPrimary,
}

/// One ASCONF request (the address may be a wildcard).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AsconfRequest {
    pub kind: AsconfRequestKind,
    pub corr_id: u32,
    pub addr: IpAddr,
}

/// ASCONF: serial, the sender's address parameter, requests.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Asconf {
    pub serial: u32,
    pub addr: Option<IpAddr>,
    pub requests: Vec<AsconfRequest>,
}

/// One response of an ASCONF-ACK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AsconfResult {
    pub corr_id: u32,
    /// Success Indication (true) or Error Cause Indication (false).
    pub success: bool,
    pub causes: Vec<ErrorCause>,
}

/// ASCONF-ACK: serial and the explicit responses (requests without a response
/// follow RFC 5061 §5.3 rules, applied by the tracker).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AsconfAck {
    pub serial: u32,
    pub results: Vec<AsconfResult>,
}

/// One decoded chunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chunk {
    Data(DataHeader),
    Init(Init),
    InitAck(Init),
    Sack(Sack),
    /// HEARTBEAT with its Heartbeat Info value.
    Heartbeat {
        info: HbInfo,
    },
    HeartbeatAck {
        info: HbInfo,
    },
    /// ABORT; `t` = T flag (the tag is the sender's own).
    Abort {
        t: bool,
        causes: Vec<ErrorCause>,
    },
    Shutdown {
        cum_tsn: u32,
    },
    ShutdownAck,
    ShutdownComplete {
        t: bool,
    },
    Error {
        causes: Vec<ErrorCause>,
    },
    CookieEcho {
        len: u16,
    },
    CookieAck,
    Asconf(Asconf),
    AsconfAck(AsconfAck),
    Pad {
        len: u16,
    },
    ForwardTsn {
        new_cum_tsn: u32,
    },
    ReConfig {
        len: u16,
    },
    Auth {
        key_id: u16,
        hmac_id: u16,
    },
    /// Any other type (ECNE, CWR, I-FORWARD-TSN, unknown): header only.
    Other {
        chunk_type: u8,
        flags: u8,
        len: u16,
    },
}

impl Chunk {
    /// The chunk type number.
    pub fn chunk_type(&self) -> u8 {
        match self {
            Chunk::Data(d) if d.i_data => chunk::I_DATA,
            Chunk::Data(_) => chunk::DATA,
            Chunk::Init(_) => chunk::INIT,
            Chunk::InitAck(_) => chunk::INIT_ACK,
            Chunk::Sack(_) => chunk::SACK,
            Chunk::Heartbeat { .. } => chunk::HEARTBEAT,
            Chunk::HeartbeatAck { .. } => chunk::HEARTBEAT_ACK,
            Chunk::Abort { .. } => chunk::ABORT,
            Chunk::Shutdown { .. } => chunk::SHUTDOWN,
            Chunk::ShutdownAck => chunk::SHUTDOWN_ACK,
            Chunk::ShutdownComplete { .. } => chunk::SHUTDOWN_COMPLETE,
            Chunk::Error { .. } => chunk::ERROR,
            Chunk::CookieEcho { .. } => chunk::COOKIE_ECHO,
            Chunk::CookieAck => chunk::COOKIE_ACK,
            Chunk::Asconf(_) => chunk::ASCONF,
            Chunk::AsconfAck(_) => chunk::ASCONF_ACK,
            Chunk::Pad { .. } => chunk::PAD,
            Chunk::ForwardTsn { .. } => chunk::FORWARD_TSN,
            Chunk::ReConfig { .. } => chunk::RECONFIG,
            Chunk::Auth { .. } => chunk::AUTH,
            Chunk::Other { chunk_type, .. } => *chunk_type,
        }
    }
}

impl Chunk {
    /// Drops the chunk, with no call for the variants that own no memory:
    /// `Chunk`'s drop glue is an out-of-line function that costs ~30
    /// instructions even for a heartbeat, a tenth of the agent's work on
    /// one. Every variant is listed, so a new one must say which it is.
    #[inline]
    pub fn discard(self) {
        match self {
            Chunk::Data(_)
            | Chunk::Heartbeat { .. }
            | Chunk::HeartbeatAck { .. }
            | Chunk::Shutdown { .. }
            | Chunk::ShutdownAck
            | Chunk::ShutdownComplete { .. }
            | Chunk::CookieEcho { .. }
            | Chunk::CookieAck
            | Chunk::Pad { .. }
            | Chunk::ForwardTsn { .. }
            | Chunk::ReConfig { .. }
            | Chunk::Auth { .. }
            | Chunk::Other { .. } => std::mem::forget(self),
            Chunk::Init(_)
            | Chunk::InitAck(_)
            | Chunk::Sack(_)
            | Chunk::Abort { .. }
            | Chunk::Error { .. }
            | Chunk::Asconf(_)
            | Chunk::AsconfAck(_) => drop(self),
        }
    }
}

/// Decodes one chunk from `bytes`, which start at the chunk header and hold
/// what is available (possibly fewer bytes than the length field says, or
/// more: bytes past the length are ignored). Returns the chunk and whether it
/// was cut short. Missing fixed fields are an error.
pub fn decode_chunk(bytes: &[u8], stats: &mut DecodeStats) -> Result<(Chunk, bool), DecodeError> {
    let (Some(&ctype), Some(&flags), Some(len)) = (bytes.first(), bytes.get(1), get16(bytes, 2)) else {
        return Err(DecodeError::TooShort { what: "chunk header", have: bytes.len(), need: CHUNK_HEADER_LEN });
    };
    if (len as usize) < CHUNK_HEADER_LEN {
        return Err(DecodeError::ChunkLength { offset: 0, len });
    }
    let truncated = (len as usize) > bytes.len();
    let avail = bytes.get(..(len as usize).min(bytes.len())).unwrap_or(&[]);
    let value = avail.get(CHUNK_HEADER_LEN..).unwrap_or(&[]);
    let need = |what: &'static str, n: usize| {
        if avail.len() < n { Err(DecodeError::TooShort { what, have: avail.len(), need: n }) } else { Ok(()) }
    };
    let c = match ctype {
        chunk::DATA | chunk::I_DATA => {
            let i = ctype == chunk::I_DATA;
            let hl = if i { I_DATA_HEADER_LEN } else { DATA_HEADER_LEN };
            need("DATA header", hl)?;
            let g32 = |o| get32(avail, o).unwrap_or(0);
            let g16 = |o| get16(avail, o).unwrap_or(0);
            Chunk::Data(DataHeader {
                i_data: i,
                flags,
                tsn: g32(4),
                stream: g16(8),
                seq: if i { g32(12) } else { g16(10) as u32 },
                ppid: if i { g32(16) } else { g32(12) },
                payload_len: len.saturating_sub(hl as u16),
            })
        }
        chunk::INIT | chunk::INIT_ACK => {
            need("INIT fixed fields", CHUNK_HEADER_LEN + INIT_FIXED_LEN)?;
            let mut init = Init {
                initiate_tag: get32(value, 0).unwrap_or(0),
                a_rwnd: get32(value, 4).unwrap_or(0),
                out_streams: get16(value, 8).unwrap_or(0),
                in_streams: get16(value, 10).unwrap_or(0),
                initial_tsn: get32(value, 12).unwrap_or(0),
                ..Init::default()
            };
            let mut it = TlvIter::new(value.get(INIT_FIXED_LEN..).unwrap_or(&[]), stats);
            while let Some(t) = it.next() {
                match t.kind {
                    param::IPV4_ADDRESS | param::IPV6_ADDRESS => match address(&t) {
                        Some(a) => init.addrs.push(a),
                        None => it.count_malformed(),
                    },
                    param::STATE_COOKIE => init.has_cookie = true,
                    param::HOST_NAME_ADDRESS => init.has_host_name = true,
                    param::COOKIE_PRESERVATIVE
                    | param::SUPPORTED_ADDRESS_TYPES
                    | param::ECN_CAPABLE
                    | param::RANDOM
                    | param::CHUNK_LIST
                    | param::HMAC_ALGORITHM
                    | param::SUPPORTED_EXTENSIONS
                    | param::FORWARD_TSN_SUPPORTED
                    | param::ADAPTATION_LAYER_INDICATION
                    | param::UNRECOGNIZED_PARAMETERS => {}
                    _ => it.count_unknown(),
                }
            }
            if ctype == chunk::INIT { Chunk::Init(init) } else { Chunk::InitAck(init) }
        }
        chunk::SACK => {
            need("SACK header", SACK_HEADER_LEN)?;
            let n_gaps = get16(value, 8).unwrap_or(0);
            let n_dups = get16(value, 10).unwrap_or(0);
            let mut gaps = Vec::new();
            let mut off = 12;
            for _ in 0..n_gaps {
                match (get16(value, off), get16(value, off + 2)) {
                    (Some(s), Some(e)) => gaps.push((s, e)),
                    _ => break,
                }
                off += 4;
            }
            let mut dups = Vec::new();
            for _ in 0..n_dups {
                match get32(value, off) {
                    Some(d) => dups.push(d),
                    None => break,
                }
                off += 4;
            }
            Chunk::Sack(Sack {
                cum_tsn: get32(value, 0).unwrap_or(0),
                a_rwnd: get32(value, 4).unwrap_or(0),
                gaps,
                dups,
                n_gaps,
                n_dups,
            })
        }
        chunk::HEARTBEAT | chunk::HEARTBEAT_ACK => {
            let info = heartbeat_info(value, stats);
            if ctype == chunk::HEARTBEAT { Chunk::Heartbeat { info } } else { Chunk::HeartbeatAck { info } }
        }
        chunk::ABORT => Chunk::Abort { t: flags & chunk::FLAG_T != 0, causes: causes(value, truncated, stats) },
        chunk::ERROR => Chunk::Error { causes: causes(value, truncated, stats) },
        chunk::SHUTDOWN => {
            need("SHUTDOWN", 8)?;
            Chunk::Shutdown { cum_tsn: get32(value, 0).unwrap_or(0) }
        }
        chunk::SHUTDOWN_ACK => Chunk::ShutdownAck,
        chunk::SHUTDOWN_COMPLETE => Chunk::ShutdownComplete { t: flags & chunk::FLAG_T != 0 },
        chunk::COOKIE_ECHO => Chunk::CookieEcho { len },
        chunk::COOKIE_ACK => Chunk::CookieAck,
        chunk::ASCONF => {
            need("ASCONF serial", CHUNK_HEADER_LEN + ASCONF_FIXED_LEN)?;
            Chunk::Asconf(asconf(value, stats))
        }
        chunk::ASCONF_ACK => {
            need("ASCONF-ACK serial", CHUNK_HEADER_LEN + ASCONF_FIXED_LEN)?;
            Chunk::AsconfAck(asconf_ack(value, stats))
        }
        chunk::PAD => Chunk::Pad { len },
        chunk::FORWARD_TSN => {
            need("FORWARD-TSN", 8)?;
            Chunk::ForwardTsn { new_cum_tsn: get32(value, 0).unwrap_or(0) }
        }
        chunk::RECONFIG => Chunk::ReConfig { len },
        chunk::AUTH => {
            need("AUTH", 8)?;
            Chunk::Auth { key_id: get16(value, 0).unwrap_or(0), hmac_id: get16(value, 2).unwrap_or(0) }
        }
        other => {
            if chunk::name(other).is_none() {
                stats.unknown_chunks += 1;
            }
            Chunk::Other { chunk_type: other, flags, len }
        }
    };
    Ok((c, truncated))
}

/// Walks the chunks after the common header, appending decoded chunks to
/// `out`. A length below 4 or a chunk that fails to decode is counted and
/// ends (length) or skips (decode) it; a chunk running past the end is
/// decoded from what is there and ends the walk.
pub fn walk_chunks(bytes: &[u8], stats: &mut DecodeStats, out: &mut Vec<Chunk>) {
    let mut off = 0usize;
    while off < bytes.len() {
        let rest = bytes.get(off..).unwrap_or(&[]);
        let Some(len) = get16(rest, 2) else {
            stats.malformed_chunks += 1;
            return;
        };
        if (len as usize) < CHUNK_HEADER_LEN {
            stats.malformed_chunks += 1;
            return;
        }
        match decode_chunk(rest, stats) {
            Ok((c, truncated)) => {
                stats.chunks += 1;
                if truncated {
                    stats.truncated_chunks += 1;
                }
                out.push(c);
            }
            Err(_) => stats.malformed_chunks += 1,
        }
        off = off.saturating_add(padded(len) as usize);
    }
}

/// A HEARTBEAT or HEARTBEAT-ACK, decoded as [`decode_chunk`] does (the
/// same [`Chunk`], the same counts) without its general dispatch; `None`
/// for any other chunk, and for a header `decode_chunk` rejects. Most of a
/// quiet network's records are heartbeats: the kernel record path tries
/// this first.
#[inline]
pub fn decode_heartbeat(bytes: &[u8], stats: &mut DecodeStats) -> Option<Chunk> {
    let &[ctype, _, l0, l1, ..] = bytes else { return None };
    if ctype != chunk::HEARTBEAT && ctype != chunk::HEARTBEAT_ACK {
        return None;
    }
    let len = u16::from_be_bytes([l0, l1]) as usize;
    if len < CHUNK_HEADER_LEN {
        return None;
    }
    let value = bytes.get(CHUNK_HEADER_LEN..len.min(bytes.len())).unwrap_or(&[]);
    let info = heartbeat_info(value, stats);
    Some(if ctype == chunk::HEARTBEAT { Chunk::Heartbeat { info } } else { Chunk::HeartbeatAck { info } })
}

#[inline]
fn heartbeat_info(value: &[u8], stats: &mut DecodeStats) -> HbInfo {
    // The Heartbeat Info parameter; when its length runs past the bytes
    // present, take what is there.
    match (get16(value, 0), get16(value, 2)) {
        (Some(param::HEARTBEAT_INFO), Some(len)) if len >= 4 => {
            let end = (len as usize).min(value.len());
            HbInfo::of(value.get(4..end).unwrap_or(&[]))
        }
        (Some(_), _) => {
            stats.malformed_params += 1;
            HbInfo::of(value)
        }
        _ => HbInfo::of(&[]),
    }
}

/// The error causes of an ABORT or ERROR. In a chunk cut short (a kernel
/// record keeps its first 512 bytes, a capture its snap length) the cause
/// the cut falls in is kept with the information present, as the rest of
/// a cut chunk is: a long user reason then still reads the same live as
/// from a full capture. In a whole chunk a cause running past it is
/// malformed and ends the list.
fn causes(value: &[u8], truncated: bool, stats: &mut DecodeStats) -> Vec<ErrorCause> {
    let mut out = Vec::new();
    let mut off = 0usize;
    while let Some(rest) = value.get(off..).filter(|r| !r.is_empty()) {
        let (Some(code), Some(len)) = (get16(rest, 0), get16(rest, 2)) else {
            if !truncated {
                stats.malformed_params += 1;
            }
            break;
        };
        let len = len as usize;
        if len < 4 || (len > rest.len() && !truncated) {
            stats.malformed_params += 1;
            break;
        }
        let info = rest.get(4..len.min(rest.len())).unwrap_or(&[]);
        out.push(ErrorCause { code, info: info.to_vec() });
        off = off.saturating_add(padded(len as u16) as usize);
    }
    out
}

fn asconf(value: &[u8], stats: &mut DecodeStats) -> Asconf {
    let mut a = Asconf { serial: get32(value, 0).unwrap_or(0), ..Asconf::default() };
    let rest = value.get(ASCONF_FIXED_LEN..).unwrap_or(&[]);
    let rest = match leading_address(rest, stats) {
        Some((addr, rest)) => {
            a.addr = Some(addr);
            rest
        }
        None => return a,
    };
    let mut it = TlvIter::new(rest, stats);
    while let Some(t) = it.next() {
        let kind = match t.kind {
            param::ADD_IP => AsconfRequestKind::Add,
            param::DELETE_IP => AsconfRequestKind::Delete,
            param::SET_PRIMARY => AsconfRequestKind::SetPrimary,
            _ => {
                it.count_unknown();
                continue;
            }
        };
        let corr = get32(t.value, 0);
        let inner = t.value.get(4..).unwrap_or(&[]);
        let addr = match (get16(inner, 0), get16(inner, 2)) {
            (Some(k), Some(l)) => {
                inner.get(4..l as usize).and_then(|v| address(&super::param::Tlv { kind: k, len: l, value: v }))
            }
            _ => None,
        };
        match (corr, addr) {
            (Some(corr_id), Some(addr)) => a.requests.push(AsconfRequest { kind, corr_id, addr }),
            _ => it.count_malformed(),
        }
    }
    a
}

fn asconf_ack(value: &[u8], stats: &mut DecodeStats) -> AsconfAck {
    let mut a = AsconfAck { serial: get32(value, 0).unwrap_or(0), ..AsconfAck::default() };
    let rest = value.get(ASCONF_FIXED_LEN..).unwrap_or(&[]);
    let mut it = TlvIter::new(rest, stats);
    let mut inner_stats = DecodeStats::default();
    while let Some(t) = it.next() {
        let Some(corr_id) = get32(t.value, 0) else {
            it.count_malformed();
            continue;
        };
        match t.kind {
            param::SUCCESS_INDICATION => a.results.push(AsconfResult { corr_id, success: true, causes: Vec::new() }),
            param::ERROR_CAUSE_INDICATION => {
                let causes = causes(t.value.get(4..).unwrap_or(&[]), false, &mut inner_stats);
                a.results.push(AsconfResult { corr_id, success: false, causes });
            }
            _ => it.count_unknown(),
        }
    }
    stats.malformed_params += inner_stats.malformed_params;
    a
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::craft::{self, AsconfReq, CookiePos, InitSpec};

    fn one(c: &[u8]) -> Chunk {
        let mut st = DecodeStats::default();
        decode_chunk(c, &mut st).expect("decodes").0
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("addr")
    }

    #[test]
    fn init_ack_addresses_with_cookie_anywhere() {
        for pos in [CookiePos::Before, CookiePos::After] {
            let spec = InitSpec::new(0xabc, 77).addrs(&[ip("10.0.0.1"), ip("fd00::2")]).cookie(400, pos);
            let Chunk::InitAck(i) = one(&craft::init_ack(&spec)) else { panic!("not an INIT-ACK") };
            assert_eq!(i.initiate_tag, 0xabc);
            assert_eq!(i.initial_tsn, 77);
            assert_eq!(i.out_streams, 10);
            assert_eq!(i.addrs, vec![ip("10.0.0.1"), ip("fd00::2")]);
            assert!(i.has_cookie);
        }
    }

    #[test]
    fn data_payload_length_comes_from_length_field() {
        let full = craft::data(5, 1, 2, 46, &[0u8; 100]);
        // Only the header present, as in a kernel record.
        let mut st = DecodeStats::default();
        let (c, truncated) = decode_chunk(&full[..16], &mut st).expect("decodes");
        assert!(truncated);
        let Chunk::Data(d) = c else { panic!("not DATA") };
        assert_eq!((d.tsn, d.stream, d.seq, d.ppid, d.payload_len), (5, 1, 2, 46, 100));
        let Chunk::Data(d) = one(&craft::i_data(3, 9, 4, 1000, 60, &[1; 10])) else { panic!("not I-DATA") };
        assert!(d.i_data);
        assert_eq!((d.tsn, d.stream, d.seq, d.ppid, d.payload_len), (9, 4, 1000, 60, 10));
    }

    #[test]
    fn sack_gaps_and_dups() {
        let Chunk::Sack(s) = one(&craft::sack(100, 4000, &[(2, 4)], &[98, 99])) else { panic!("not SACK") };
        assert_eq!(s.cum_tsn, 100);
        assert_eq!(s.a_rwnd, 4000);
        assert_eq!(s.gaps, vec![(2, 4)]);
        assert_eq!(s.dups, vec![98, 99]);
    }

    #[test]
    fn asconf_and_ack() {
        let c = craft::asconf(
            9,
            ip("10.0.0.1"),
            &[
                AsconfReq::Add { corr_id: 1, addr: ip("10.0.1.1") },
                AsconfReq::Delete { corr_id: 2, addr: ip("0.0.0.0") },
                AsconfReq::SetPrimary { corr_id: 3, addr: ip("fd00::9") },
            ],
        );
        let Chunk::Asconf(a) = one(&c) else { panic!("not ASCONF") };
        assert_eq!(a.serial, 9);
        assert_eq!(a.addr, Some(ip("10.0.0.1")));
        assert_eq!(a.requests.len(), 3);
        assert_eq!(a.requests[1], AsconfRequest { kind: AsconfRequestKind::Delete, corr_id: 2, addr: ip("0.0.0.0") });
        assert_eq!(a.requests[2].kind, AsconfRequestKind::SetPrimary);
        let ack = craft::asconf_ack(
            9,
            &[
                craft::AsconfResult::Success { corr_id: 1 },
                craft::AsconfResult::Error { corr_id: 2, causes: vec![craft::error_cause(0x00A2, &[1, 2, 3, 4])] },
            ],
        );
        let Chunk::AsconfAck(a) = one(&ack) else { panic!("not ASCONF-ACK") };
        assert_eq!(a.serial, 9);
        assert_eq!(a.results[0], AsconfResult { corr_id: 1, success: true, causes: vec![] });
        assert!(!a.results[1].success);
        assert_eq!(a.results[1].causes[0].code, 0x00A2);
    }

    #[test]
    fn heartbeat_abort_shutdown() {
        assert_eq!(one(&craft::heartbeat(b"abc")), Chunk::Heartbeat { info: HbInfo::of(b"abc") });
        assert_eq!(one(&craft::heartbeat_ack(b"xyz1")), Chunk::HeartbeatAck { info: HbInfo::of(b"xyz1") });
        let Chunk::Abort { t, causes } = one(&craft::abort(true, &[craft::error_cause(12, b"bye")])) else {
            panic!("not ABORT")
        };
        assert!(t);
        assert_eq!(causes, vec![ErrorCause { code: 12, info: b"bye".to_vec() }]);
        // Cut inside its second cause (a kernel record's 512 bytes): that
        // cause with what is there. Whole, a cause running past the chunk
        // is malformed and ends the list.
        let long = craft::abort(false, &[craft::error_cause(3, &[0, 0, 0, 9]), craft::error_cause(12, &[b'r'; 700])]);
        let mut st = DecodeStats::default();
        let (c, truncated) = decode_chunk(&long[..512], &mut st).expect("decodes");
        assert!(truncated);
        let Chunk::Abort { causes, .. } = c else { panic!("not ABORT") };
        assert_eq!(causes.iter().map(|c| (c.code, c.info.len())).collect::<Vec<_>>(), [(3, 4), (12, 512 - 16)]);
        assert_eq!(st.malformed_params, 0);
        let mut bad = craft::error(&[craft::error_cause(1, &[0, 1, 0, 0]), craft::error_cause(6, &[0; 8])]);
        bad[14..16].copy_from_slice(&200u16.to_be_bytes());
        let mut st = DecodeStats::default();
        let Chunk::Error { causes } = decode_chunk(&bad, &mut st).expect("decodes").0 else { panic!("not ERROR") };
        assert_eq!((causes.len(), st.malformed_params), (1, 1));
        // Every cut of a chunk of causes decodes without a panic.
        for n in 4..long.len() {
            let _ = decode_chunk(&long[..n], &mut DecodeStats::default());
        }
        assert_eq!(one(&craft::shutdown(42)), Chunk::Shutdown { cum_tsn: 42 });
        assert_eq!(one(&craft::shutdown_complete(true)), Chunk::ShutdownComplete { t: true });
        assert_eq!(one(&craft::forward_tsn(7, &[(1, 2)])), Chunk::ForwardTsn { new_cum_tsn: 7 });
    }

    #[test]
    fn walk_stops_on_short_length_and_counts() {
        let mut b = craft::cookie_ack();
        b.extend_from_slice(&craft::raw_chunk_with_len(0, 0, 2, &[0; 8]));
        b.extend_from_slice(&craft::cookie_ack());
        let mut st = DecodeStats::default();
        let mut out = Vec::new();
        walk_chunks(&b, &mut st, &mut out);
        assert_eq!(out, vec![Chunk::CookieAck]);
        assert_eq!(st.malformed_chunks, 1);
    }

    #[test]
    fn walk_counts_unknown_and_short_fixed_fields() {
        let mut b = craft::raw_chunk(0x3F, 0, &[1, 2]);
        b.extend_from_slice(&[0, 0]);
        b.extend_from_slice(&craft::raw_chunk(chunk::SACK, 0, &[0; 4]));
        b.extend_from_slice(&craft::cookie_ack());
        let mut st = DecodeStats::default();
        let mut out = Vec::new();
        walk_chunks(&b, &mut st, &mut out);
        assert_eq!(out.len(), 2, "unknown chunk kept as Other, short SACK skipped, COOKIE-ACK kept");
        assert_eq!(st.unknown_chunks, 1);
        assert_eq!(st.malformed_chunks, 1);
    }

    #[test]
    fn heartbeat_fast_path_gives_what_decode_chunk_gives() {
        let mut rng = crate::craft::XorShift::new(0x5eed_4b17);
        let mut rnd = || rng.next_u64();
        let (mut taken, mut declined) = (0, 0);
        for i in 0..50_000 {
            let mut b = match i % 4 {
                // Well-formed, with Heartbeat Info of every small length.
                0 => craft::heartbeat(&(0..rnd() % 70).map(|_| rnd() as u8).collect::<Vec<u8>>()),
                1 => craft::heartbeat_ack(&(0..rnd() % 70).map(|_| rnd() as u8).collect::<Vec<u8>>()),
                // Anything: random bytes, mostly of the two types.
                _ => (0..rnd() % 80).map(|_| rnd() as u8).collect(),
            };
            if b.len() >= 4 && rnd() % 4 != 0 {
                b[0] = [chunk::HEARTBEAT, chunk::HEARTBEAT_ACK][(rnd() % 2) as usize];
            }
            match rnd() % 5 {
                // A length field that lies (short, long, below 4), or a
                // parameter header that does.
                0 if b.len() >= 4 => b[2..4].copy_from_slice(&((rnd() % 90) as u16).to_be_bytes()),
                1 if b.len() >= 8 => b[4..8].copy_from_slice(&(rnd() as u32).to_be_bytes()),
                2 => b.truncate((rnd() % 40) as usize),
                _ => {}
            }
            let (mut fast_st, mut st) = (DecodeStats::default(), DecodeStats::default());
            let fast = decode_heartbeat(&b, &mut fast_st);
            let general = decode_chunk(&b, &mut st);
            match fast {
                Some(c) => {
                    taken += 1;
                    assert_eq!(Ok(c), general.map(|g| g.0), "{b:?}");
                    assert_eq!(fast_st, st, "{b:?}");
                }
                None => {
                    declined += 1;
                    assert_eq!(fast_st, DecodeStats::default(), "declined without counting: {b:?}");
                    assert!(
                        !matches!(general, Ok((Chunk::Heartbeat { .. } | Chunk::HeartbeatAck { .. }, _))),
                        "a heartbeat declined: {b:?}"
                    );
                }
            }
        }
        assert!(taken > 30_000 && declined > 5_000, "taken {taken}, declined {declined}");
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut rng = crate::craft::XorShift::new(0x9E37_79B9_7F4A_7C15);
        let mut rnd = || rng.next_u64();
        let mut st = DecodeStats::default();
        for _ in 0..20_000 {
            let n = (rnd() % 120) as usize;
            let mut b: Vec<u8> = (0..n).map(|_| rnd() as u8).collect();
            // Bias towards known chunk types and plausible lengths.
            if n >= 4 {
                b[0] = [0u8, 1, 2, 3, 4, 5, 6, 9, 128, 193, 64, 7][(rnd() % 12) as usize];
                if rnd() % 2 == 0 {
                    let l = (rnd() % (n as u64 + 8)) as u16;
                    b[2..4].copy_from_slice(&l.to_be_bytes());
                }
            }
            let mut out = Vec::new();
            walk_chunks(&b, &mut st, &mut out);
            let _ = decode_chunk(&b, &mut st);
        }
        assert!(st.malformed_chunks > 0, "random input must produce malformed chunks");
    }
}
