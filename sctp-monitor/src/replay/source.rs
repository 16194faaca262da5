//! A capture as a stream of packets, read as it comes: never the whole file
//! in memory, so a capture of any size replays in bounded memory and
//! standard input works (`sctp-monitor replay -`).
//!
//! Formats, by the first bytes: pcap in every variant tshark reads by its
//! magic number (microsecond 0xa1b2c3d4, nanosecond 0xa1b23c4d and the
//! "modified" 0xa1b2cd34 of Kuznetzov's patches with 24-byte record headers;
//! each in either byte order), pcapng (several sections, several interfaces),
//! and either of them gzip-compressed (as tshark reads `.pcap.gz`). Offsets
//! in errors count bytes of the capture itself (after decompression).
//!
//! Memory: one reusable buffer per pcapng block (at most [`MAX_BLOCK_LEN`],
//! grown as bytes arrive, never from a length field alone) and the caller's
//! packet buffer (at most [`MAX_RECORD_LEN`]).

use std::io::{self, Read};

use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionOption;
use pcap_file::pcapng::{Block, PcapNgParser};
use pcap_file::{DataLink, Endianness};

use super::{MAX_RECORD_LEN, link_type};
use crate::decode::LinkType;

/// Largest pcapng block read (packet blocks hold at most [`MAX_RECORD_LEN`];
/// this leaves room for long comments and name tables). A bigger length is
/// damage.
pub const MAX_BLOCK_LEN: usize = 16 << 20;

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const PCAPNG_SHB: u32 = 0x0A0D_0D0A;

/// One packet's record: where its bytes came from and when.
#[derive(Debug, Clone, Copy)]
pub(super) struct Record {
    /// Nanoseconds since the epoch; `None` for a pcapng simple packet
    /// (no timestamp).
    pub ts: Option<u64>,
    pub link: Option<LinkType>,
    /// pcapng interface id; the ifindex of a "modified" pcap record.
    pub interface: u32,
    /// The "modified" pcap record's packet type (Linux PACKET_*), else 0.
    pub pkt_type: u8,
    /// The record holds less than its packet (the capture's snap length
    /// cut it): its lengths are read leniently (`ip::Bounds::Cut`).
    pub cut: bool,
}

/// Why a read stopped: the format is not one we read, or the file is
/// damaged at `offset` (`what` says how), or the source failed.
#[derive(Debug)]
pub(super) enum ReadError {
    Format,
    Damaged { offset: u64, what: String },
    Io(io::Error),
}

#[derive(Clone, Copy)]
struct PcapFormat {
    big: bool,
    nanos: bool,
    /// Record header length: 16, or a patched libpcap's (`layout`).
    hlen: usize,
    link: Option<LinkType>,
}

enum Format {
    Pcap(PcapFormat),
    PcapNg(Box<PcapNgParser>),
}

/// The packet reader over any byte source.
pub(super) struct Reader<R> {
    r: R,
    /// Bytes read ahead (a pcap's first records, to tell their layout),
    /// read again before `r`.
    back: io::Cursor<Vec<u8>>,
    /// Bytes of the capture consumed so far.
    offset: u64,
    format: Format,
    /// The current pcapng block (reused).
    block: Vec<u8>,
    /// Whether the source was gzip-compressed (named in errors).
    pub gzip: bool,
}

/// Reads until `buf` is full or the source ends; returns the bytes read.
fn fill(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// The bytes looked at first, then the rest of the source.
type Head<R> = io::Chain<io::Cursor<Vec<u8>>, R>;

/// Read-ahead bytes, then the source.
struct Both<'a, R> {
    back: &'a mut io::Cursor<Vec<u8>>,
    r: &'a mut R,
}

impl<R: Read> Read for Both<'_, R> {
    #[inline]
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if (self.back.position() as usize) < self.back.get_ref().len() {
            return self.back.read(buf);
        }
        self.r.read(buf)
    }
}

/// The source, decompressed when it starts with the gzip magic.
pub(super) enum Source<R: Read> {
    Plain(Head<R>),
    Gzip(Box<io::BufReader<flate2::read::MultiGzDecoder<Head<R>>>>),
}

impl<R: Read> Read for Source<R> {
    #[inline]
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Source::Plain(r) => r.read(buf),
            Source::Gzip(r) => r.read(buf),
        }
    }
}

impl<R: Read> Reader<Source<R>> {
    /// Looks at the first bytes of `r`: gzip, then pcap or pcapng.
    pub fn open(mut r: R) -> Result<Self, ReadError> {
        let mut head = [0u8; 2];
        let n = fill(&mut r, &mut head).map_err(ReadError::Io)?;
        let start = io::Cursor::new(head[..n].to_vec());
        let gzip = n == 2 && head == GZIP_MAGIC;
        let mut src = if gzip {
            let d = flate2::read::MultiGzDecoder::new(start.chain(r));
            Source::Gzip(Box::new(io::BufReader::with_capacity(64 << 10, d)))
        } else {
            Source::Plain(start.chain(r))
        };
        let mut hdr = [0u8; 24];
        let n = fill(&mut src, &mut hdr[..4]).map_err(|e| io_or_damage(e, 0, gzip))?;
        if n < 4 {
            return Err(ReadError::Format);
        }
        let magic = u32::from_le_bytes([hdr[0], hdr[1], hdr[2], hdr[3]]);
        let (big, nanos, modified) = match magic {
            PCAPNG_SHB => {
                let back = io::Cursor::new(Vec::new());
                let mut rd =
                    Reader { r: src, back, offset: 0, format: Format::Pcap(PCAP_NONE), block: Vec::new(), gzip };
                rd.block.extend_from_slice(&hdr[..4]);
                let parser = rd.first_section()?;
                rd.format = Format::PcapNg(Box::new(parser));
                return Ok(rd);
            }
            0xA1B2_C3D4 => (false, false, false),
            0xD4C3_B2A1 => (true, false, false),
            0xA1B2_3C4D => (false, true, false),
            0x4D3C_B2A1 => (true, true, false),
            0xA1B2_CD34 => (false, false, true),
            0x34CD_B2A1 => (true, false, true),
            _ => return Err(ReadError::Format),
        };
        let n = fill(&mut src, &mut hdr[4..]).map_err(|e| io_or_damage(e, 0, gzip))?;
        if n < 20 {
            return Err(ReadError::Damaged {
                offset: 0,
                what: format!("truncated: file header has {} of 24 bytes", 4 + n),
            });
        }
        let field = |i: usize| {
            let b = [hdr[i], hdr[i + 1], hdr[i + 2], hdr[i + 3]];
            if big { u32::from_be_bytes(b) } else { u32::from_le_bytes(b) }
        };
        // The link type's upper bits may carry FCS information (libpcap's
        // LT_LINKTYPE mask).
        let link = link_type(DataLink::from(field(20) & 0x03FF_FFFF));
        // The record layout: the first records decide (`layout`).
        let mut head = vec![0u8; LAYOUT_PEEK];
        let n = fill(&mut src, &mut head).map_err(|e| io_or_damage(e, 24, gzip))?;
        head.truncate(n);
        let candidates: &[usize] = if modified { &[24, 28] } else { &[16, 24, 20] };
        let hlen = layout(&head, big, nanos, candidates);
        let format = Format::Pcap(PcapFormat { big, nanos, hlen, link });
        let back = io::Cursor::new(head);
        Ok(Reader { r: src, back, offset: 24, format, block: Vec::new(), gzip })
    }
}

const PCAP_NONE: PcapFormat = PcapFormat { big: false, nanos: false, hlen: 16, link: None };

/// Bytes looked at to tell a pcap's record layout.
const LAYOUT_PEEK: usize = 4096;

/// The record header length of a pcap whose first records are `head`,
/// among `candidates` (in order of preference), as tshark tells them:
/// tcpdump's 16 bytes; 24 for Kuznetzov's patches (the "modified" magic, and
/// Red Hat 6.1's with the standard magic); 20 for Nokia's; 28 for SuSE 6.3's.
/// The first whose records chain plausibly through `head` (lengths within
/// bounds, captured at most original, sub-second field below a second) wins;
/// the first candidate when none does (a damaged first record is then
/// reported as tcpdump's layout would read it).
fn layout(head: &[u8], big: bool, nanos: bool, candidates: &[usize]) -> usize {
    let field = |b: &[u8]| {
        let w = [b[0], b[1], b[2], b[3]];
        if big { u32::from_be_bytes(w) } else { u32::from_le_bytes(w) }
    };
    let plausible = |hlen: usize| {
        let mut at = 0;
        let mut records = 0;
        while records < 16 {
            let Some(h) = head.get(at..at + hlen) else {
                // The head ends inside a header: plausible after a record
                // that was (a layout is never chosen on no record at all).
                return records > 0;
            };
            let (frac, caplen, origlen) = (field(&h[4..]), field(&h[8..]) as usize, field(&h[12..]) as usize);
            let sub_second = if nanos { 1_000_000_000 } else { 1_000_000 };
            if frac >= sub_second || caplen > MAX_RECORD_LEN || origlen > MAX_RECORD_LEN || caplen > origlen {
                return false;
            }
            at += hlen + caplen;
            records += 1;
            if at >= head.len() {
                return true;
            }
        }
        true
    };
    candidates.iter().copied().find(|&h| plausible(h)).unwrap_or(candidates[0])
}

/// An I/O error of the source: a damaged compressed stream is damage at
/// `offset`; anything else is the source's own failure.
fn io_or_damage(e: io::Error, offset: u64, gzip: bool) -> ReadError {
    if gzip
        && matches!(e.kind(), io::ErrorKind::InvalidData | io::ErrorKind::InvalidInput | io::ErrorKind::UnexpectedEof)
    {
        ReadError::Damaged { offset, what: format!("gzip: {e}") }
    } else {
        ReadError::Io(e)
    }
}

impl<R: Read> Reader<R> {
    /// Whether two records can come from different places (interfaces,
    /// packet types): pcapng, Linux cooked captures, "modified" pcap
    /// records. A classic pcap of Ethernet or IP has one origin for every
    /// record, so it holds no copies to fold (`dedup.rs`).
    pub fn origins_vary(&self) -> bool {
        match &self.format {
            Format::PcapNg(_) => true,
            Format::Pcap(f) => f.hlen >= 24 || matches!(f.link, Some(LinkType::LinuxSll | LinkType::LinuxSll2)),
        }
    }

    /// The next packet: its record, its bytes in `data` (replaced). `None`
    /// at the end of the capture.
    pub fn next(&mut self, data: &mut Vec<u8>) -> Result<Option<Record>, ReadError> {
        match self.format {
            Format::Pcap(f) => self.next_pcap(f, data),
            Format::PcapNg(_) => loop {
                let at = self.offset;
                if !self.read_block()? {
                    return Ok(None);
                }
                let Format::PcapNg(parser) = &mut self.format else { unreachable!("format is pcapng") };
                let damaged = |what| ReadError::Damaged { offset: at, what };
                let block = super::pcapng_block(parser, &self.block).map_err(damaged)?.1;
                match block {
                    Some(Block::EnhancedPacket(p)) => {
                        let (link, scale) = iface(parser, p.interface_id);
                        let ts = scale.ns(p.timestamp.as_nanos() as u64);
                        data.clear();
                        data.extend_from_slice(&p.data);
                        let cut = (p.original_len as usize) > p.data.len();
                        let r = Record { ts: Some(ts), link, interface: p.interface_id, pkt_type: 0, cut };
                        return Ok(Some(r));
                    }
                    Some(Block::SimplePacket(p)) => {
                        let (link, _) = iface(parser, 0);
                        data.clear();
                        data.extend_from_slice(&p.data);
                        let cut = (p.original_len as usize) > p.data.len();
                        return Ok(Some(Record { ts: None, link, interface: 0, pkt_type: 0, cut }));
                    }
                    _ => {}
                }
            },
        }
    }

    /// One pcap record. Neither the file header's snap length nor the
    /// record's original length is held against the record: files with a
    /// snap length of 0 exist, and a record shorter than its packet is what
    /// a snap length makes. Only the captured length is checked, against
    /// [`MAX_RECORD_LEN`] and the bytes left.
    fn next_pcap(&mut self, f: PcapFormat, data: &mut Vec<u8>) -> Result<Option<Record>, ReadError> {
        let at = self.offset;
        let hlen = f.hlen;
        let mut hdr = [0u8; 28];
        let mut src = Both { back: &mut self.back, r: &mut self.r };
        let n = fill(&mut src, &mut hdr[..hlen]).map_err(|e| io_or_damage(e, at, self.gzip))?;
        if n == 0 {
            return Ok(None);
        }
        let damaged = |what| ReadError::Damaged { offset: at, what };
        if n < hlen {
            return Err(damaged(format!("truncated: record header has {n} of {hlen} bytes")));
        }
        let field = |i: usize| {
            let b = [hdr[i], hdr[i + 1], hdr[i + 2], hdr[i + 3]];
            if f.big { u32::from_be_bytes(b) } else { u32::from_le_bytes(b) }
        };
        let caplen = field(8) as usize;
        if caplen > MAX_RECORD_LEN {
            return Err(damaged(format!(
                "captured length {caplen} is over the largest a capture holds ({MAX_RECORD_LEN})"
            )));
        }
        data.resize(caplen, 0);
        let got = fill(&mut src, data).map_err(|e| io_or_damage(e, at, self.gzip))?;
        if got < caplen {
            return Err(damaged(format!("truncated: record of {caplen} captured bytes, {got} left in the file")));
        }
        self.offset += (hlen + caplen) as u64;
        let frac = field(4) as u64;
        let frac_ns = if f.nanos { frac } else { frac * 1000 };
        let ts = field(0) as u64 * 1_000_000_000 + frac_ns;
        // Kuznetzov's fields (24 and 28 bytes): ifindex, protocol, type.
        let (interface, pkt_type) = if hlen >= 24 { (field(16), hdr[22]) } else { (0, 0) };
        let cut = field(12) as usize > caplen;
        Ok(Some(Record { ts: Some(ts), link: f.link, interface, pkt_type, cut }))
    }

    /// The first block, a section header (its first 4 bytes already in
    /// `block`): the pcapng parser.
    fn first_section(&mut self) -> Result<PcapNgParser, ReadError> {
        self.read_block_rest()?;
        let (_, parser) =
            PcapNgParser::new(&self.block).map_err(|e| ReadError::Damaged { offset: 0, what: e.to_string() })?;
        Ok(parser)
    }

    /// Reads the next pcapng block into `block`; false at the end.
    fn read_block(&mut self) -> Result<bool, ReadError> {
        self.block.clear();
        let mut first = [0u8; 4];
        let n = fill(&mut self.r, &mut first).map_err(|e| io_or_damage(e, self.offset, self.gzip))?;
        if n == 0 {
            return Ok(false);
        }
        self.block.extend_from_slice(&first[..n]);
        self.read_block_rest()?;
        Ok(true)
    }

    /// The rest of the block whose first bytes are in `block`: the framing
    /// checked (with messages that say what is wrong), the whole block read.
    fn read_block_rest(&mut self) -> Result<(), ReadError> {
        let at = self.offset;
        let gzip = self.gzip;
        let damaged = |what| ReadError::Damaged { offset: at, what };
        let mut hdr = [0u8; 12];
        let have = self.block.len();
        hdr[..have].copy_from_slice(&self.block);
        let n = have + fill(&mut self.r, &mut hdr[have..]).map_err(|e| io_or_damage(e, at, gzip))?;
        if n < 12 {
            return Err(damaged(format!("truncated: block header has {n} of 12 bytes")));
        }
        let kind = u32::from_le_bytes([hdr[0], hdr[1], hdr[2], hdr[3]]);
        // A section header sets its own byte order (its byte-order magic);
        // every other block has its section's.
        let big = if kind == PCAPNG_SHB {
            match [hdr[8], hdr[9], hdr[10], hdr[11]] {
                [0x1A, 0x2B, 0x3C, 0x4D] => true,
                [0x4D, 0x3C, 0x2B, 0x1A] => false,
                _ => return Err(damaged("section header without a byte-order magic".to_string())),
            }
        } else {
            match &self.format {
                Format::PcapNg(p) => p.section().endianness == Endianness::Big,
                Format::Pcap(_) => false,
            }
        };
        let w = [hdr[4], hdr[5], hdr[6], hdr[7]];
        let len = if big { u32::from_be_bytes(w) } else { u32::from_le_bytes(w) } as usize;
        if !len.is_multiple_of(4) || len < 12 {
            return Err(damaged(format!("block total length {len} is not a multiple of 4 of at least 12")));
        }
        if len > MAX_BLOCK_LEN {
            return Err(damaged(format!("block total length {len} is over the largest read ({MAX_BLOCK_LEN})")));
        }
        self.block.clear();
        self.block.extend_from_slice(&hdr);
        // Grown as bytes arrive: a bogus length allocates what the file
        // holds, not what the field says.
        let r = &mut self.r;
        r.take((len - 12) as u64).read_to_end(&mut self.block).map_err(|e| io_or_damage(e, at, gzip))?;
        if self.block.len() < len {
            return Err(damaged(format!("truncated: block of {len} bytes, {} left in the file", self.block.len())));
        }
        let trailer = &self.block[len - 4..];
        let t = [trailer[0], trailer[1], trailer[2], trailer[3]];
        let trailer = if big { u32::from_be_bytes(t) } else { u32::from_le_bytes(t) } as usize;
        if trailer != len {
            return Err(damaged(format!("block trailer length {trailer} differs from its total length {len}")));
        }
        self.offset += len as u64;
        Ok(())
    }
}

/// Timestamp units of a pcapng interface.
#[derive(Clone, Copy)]
enum Scale {
    Pow10(u8),
    Pow2(u8),
}

impl Scale {
    fn ns(self, raw: u64) -> u64 {
        match self {
            Scale::Pow10(r) if r <= 9 => raw.saturating_mul(10u64.pow(9 - r as u32)),
            Scale::Pow10(r) => raw / 10u64.saturating_pow(r as u32 - 9),
            Scale::Pow2(r) => ((raw as u128 * 1_000_000_000) >> r.min(127)) as u64,
        }
    }
}

fn iface(parser: &PcapNgParser, id: u32) -> (Option<LinkType>, Scale) {
    let Some(idb) = parser.interfaces().get(id as usize) else {
        return (None, Scale::Pow10(6));
    };
    let mut scale = Scale::Pow10(6);
    for o in &idb.options {
        if let InterfaceDescriptionOption::IfTsResol(r) = o {
            scale = if r & 0x80 != 0 { Scale::Pow2(r & 0x7f) } else { Scale::Pow10(*r) };
        }
    }
    (link_type(idb.linktype), scale)
}
