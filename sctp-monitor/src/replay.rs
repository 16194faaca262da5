//! Offline replay: a pcap or pcapng file (or standard input, either of them
//! gzip-compressed) through the decoder and the tracker, on the capture's
//! own timestamps. The capture is read as a stream (`replay/source.rs`):
//! memory is bounded by the reorder window below, not by the file.
//!
//! Copies of one packet that a Linux "any" capture holds (outgoing and
//! host copies, a bridge's ports) are folded into one and counted
//! (`replay/dedup.rs`).
//!
//! Link types: Ethernet, Linux cooked SLL / SLL2, raw IP (DLT_RAW, IPv4,
//! IPv6), BSD loopback; a pcapng may hold several interfaces with different
//! link types and timestamp resolutions. A damaged or truncated file stops
//! the read with an error naming the file and byte offset, and the outcome
//! still holds everything read before it. A packet that does not decode is
//! counted, never fatal.
//!
//! Packets go to the tracker in timestamp order: a pcapng written by dumpcap
//! from several interfaces is not (its blocks follow each interface's
//! buffer, up to hundreds of milliseconds apart), so a bounded reorder
//! buffer ([`REORDER_WINDOW_NS`], [`REORDER_MAX`]) sorts them first.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::io::{Read, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use pcap_file::pcapng::{Block, PcapNgParser};
use pcap_file::{DataLink, Endianness};
use sctp_monitor_common::config::DEFAULT_UDP_ENCAP_PORT;

use sctp_monitor_common::ip::Bounds;

use crate::decode::{DecodeError, DecodeStats, LinkType, parse_frame_in};
use crate::event::{Event, Role};
use crate::tracker::{AssocView, Config, Tracker, TrackerStats};
use source::ReadError;

mod arena;
mod dedup;
mod source;

/// A packet is handed to the tracker once the capture has reached this much
/// later time: packets written out of order by up to this much are sorted.
pub const REORDER_WINDOW_NS: u64 = 2_000_000_000;
/// At most this many packets wait in the reorder buffer (memory bound);
/// beyond, the earliest goes on regardless of the window.
pub const REORDER_MAX: usize = 1 << 16;
/// At most this many packet bytes wait in the reorder buffer.
pub const REORDER_MAX_BYTES: usize = 64 << 20;

/// Largest captured length of one pcap record: libpcap's bound for every
/// link type we read. A bigger one is damage, whatever the file header's
/// snap length says.
pub const MAX_RECORD_LEN: usize = 262_144;

/// Replay settings.
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    /// UDP port of SCTP over UDP (RFC 6951).
    pub udp_port: u16,
    pub tracker: Config,
    /// `Tracker::tick` every this much capture time.
    pub tick_ns: u64,
    /// Fold copies of one packet (`replay/dedup.rs`); off only to show
    /// what counting every copy does.
    pub fold_copies: bool,
}

impl Default for ReplayOptions {
    fn default() -> Self {
        ReplayOptions {
            udp_port: DEFAULT_UDP_ENCAP_PORT,
            tracker: Config { keep_closed: 100_000, ..Config::default() },
            tick_ns: 100_000_000,
            fold_copies: true,
        }
    }
}

/// Why a file could not be (fully) read.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("{file}: cannot read: {source}")]
    Io { file: PathBuf, source: std::io::Error },
    #[error("{file}: not a pcap or pcapng file")]
    Format { file: PathBuf },
    #[error("{file}: damaged or truncated at byte offset {offset}: {what}")]
    Damaged { file: PathBuf, offset: usize, what: String },
}

/// What a replay found.
#[derive(Debug)]
pub struct ReplayOutcome {
    pub file: PathBuf,
    pub events: Vec<Event>,
    /// Associations still open at the end, then the ended ones.
    pub associations: Vec<AssocView>,
    pub packets: u64,
    pub sctp_packets: u64,
    pub other_packets: u64,
    /// Packets whose headers did not decode.
    pub malformed_packets: u64,
    /// Non-first IP fragments (not reassembled).
    pub fragments: u64,
    /// Packets on interfaces with a link type we do not read.
    pub unsupported_link: u64,
    /// Copies of a packet already seen, folded into it (a Linux "any"
    /// capture: see `replay/dedup.rs`); counted in `packets` only.
    pub duplicates_folded: u64,
    pub decode: DecodeStats,
    pub tracker: TrackerStats,
    /// Chunks per association id, by chunk type, in total and per path.
    pub chunk_counts: BTreeMap<u64, ChunkCounts>,
    /// Packets handed to the tracker earlier than a packet before them in
    /// the file (sorted by the reorder buffer).
    pub reordered: u64,
    /// Set when the file was damaged: what was read is still reported.
    pub error: Option<ReplayError>,
}

/// Chunks of one association by chunk type (the wire's type number).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChunkCounts {
    pub total: BTreeMap<u8, u64>,
    /// Per path: (sending endpoint, source address, destination address).
    pub by_path: BTreeMap<(Role, IpAddr, IpAddr), BTreeMap<u8, u64>>,
}

/// The readable name of a chunk type (as tshark names them), or its
/// number.
pub fn chunk_name(t: u8) -> Cow<'static, str> {
    Cow::Borrowed(match t {
        0 => "DATA",
        1 => "INIT",
        2 => "INIT_ACK",
        3 => "SACK",
        4 => "HEARTBEAT",
        5 => "HEARTBEAT_ACK",
        6 => "ABORT",
        7 => "SHUTDOWN",
        8 => "SHUTDOWN_ACK",
        9 => "ERROR",
        10 => "COOKIE_ECHO",
        11 => "COOKIE_ACK",
        12 => "ECNE",
        13 => "CWR",
        14 => "SHUTDOWN_COMPLETE",
        15 => "AUTH",
        64 => "I_DATA",
        128 => "ASCONF_ACK",
        130 => "RE_CONFIG",
        132 => "PAD",
        192 => "FORWARD_TSN",
        193 => "ASCONF",
        194 => "I_FORWARD_TSN",
        _ => return Cow::Owned(t.to_string()),
    })
}

/// A packet waiting in the reorder buffer.
struct Pending {
    ts: u64,
    link: Option<LinkType>,
    interface: u32,
    pkt_type: u8,
    /// Cut by the capture's snap length (`source::Record::cut`).
    cut: bool,
    data: arena::Span,
}

/// Sorts packets by timestamp within [`REORDER_WINDOW_NS`] (stable: equal
/// times keep file order). In-order input costs a push and a pop.
#[derive(Default)]
struct Reorder {
    q: VecDeque<Pending>,
    max_ts: u64,
    /// Packet bytes waiting.
    bytes: usize,
}

impl Reorder {
    /// Adds a packet; returns whether it went before an earlier one.
    fn push(&mut self, p: Pending) -> bool {
        self.max_ts = self.max_ts.max(p.ts);
        self.bytes += p.data.len();
        match self.q.back() {
            Some(b) if b.ts > p.ts => {
                let at = self.q.partition_point(|x| x.ts <= p.ts);
                self.q.insert(at, p);
                true
            }
            _ => {
                self.q.push_back(p);
                false
            }
        }
    }

    /// The next packet due (all of them with `flush`).
    fn pop(&mut self, flush: bool) -> Option<Pending> {
        let f = self.q.front()?;
        if flush
            || self.q.len() > REORDER_MAX
            || self.bytes > REORDER_MAX_BYTES
            || f.ts.saturating_add(REORDER_WINDOW_NS) < self.max_ts
        {
            let p = self.q.pop_front()?;
            self.bytes -= p.data.len();
            Some(p)
        } else {
            None
        }
    }
}

fn link_type(dl: DataLink) -> Option<LinkType> {
    Some(match dl {
        DataLink::ETHERNET => LinkType::Ethernet,
        DataLink::LINUX_SLL => LinkType::LinuxSll,
        DataLink::LINUX_SLL2 => LinkType::LinuxSll2,
        DataLink::RAW | DataLink::IPV4 | DataLink::IPV6 => LinkType::RawIp,
        DataLink::NULL | DataLink::LOOP => LinkType::Null,
        _ => return None,
    })
}

struct Run {
    tracker: Tracker,
    out: ReplayOutcome,
    opts: ReplayOptions,
    next_tick: u64,
    dstats: DecodeStats,
    /// (association, sender, source, destination) -> index in `counts`.
    chunk_index: HashMap<PathKey, u32, BuildHasherDefault<Fx>>,
    counts: Vec<(PathKey, PathChunks)>,
    /// The last packet's path: runs of one path skip the hash.
    last: Option<(PathKey, u32)>,
    dedup: dedup::Dedup,
    /// The bytes of the packets held: in a steady state nothing is
    /// allocated per packet.
    arena: arena::Arena,
}

type PathKey = (u64, Role, IpAddr, IpAddr);

/// Chunk counts of one path: the common types in an array, the rest aside.
struct PathChunks {
    n: [u64; 23],
    other: Vec<(u8, u64)>,
}

/// Array slot of a chunk type (every type `chunk_name` names).
fn type_slot(t: u8) -> Option<usize> {
    Some(match t {
        0..=15 => t as usize,
        64 => 16,
        128 => 17,
        130 => 18,
        132 => 19,
        192 => 20,
        193 => 21,
        194 => 22,
        _ => return None,
    })
}

const SLOT_TYPES: [u8; 23] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 64, 128, 130, 132, 192, 193, 194];

/// A small multiplicative hasher (FxHash's): the keys are ours, not an
/// attacker's to collide, and SipHash cost a third of the replay time.
#[derive(Default)]
struct Fx(u64);

impl Fx {
    #[inline]
    fn add(&mut self, x: u64) {
        self.0 = (self.0.rotate_left(5) ^ x).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

impl Hasher for Fx {
    fn write(&mut self, bytes: &[u8]) {
        for c in bytes.chunks(8) {
            let mut w = [0u8; 8];
            w[..c.len()].copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
    }
    fn write_u8(&mut self, x: u8) {
        self.add(x as u64);
    }
    fn write_u16(&mut self, x: u16) {
        self.add(x as u64);
    }
    fn write_u32(&mut self, x: u32) {
        self.add(x as u64);
    }
    fn write_u64(&mut self, x: u64) {
        self.add(x);
    }
    fn write_usize(&mut self, x: usize) {
        self.add(x as u64);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

impl Run {
    /// Sorts `p` in and processes the packets now due.
    fn push(&mut self, q: &mut Reorder, p: Pending) {
        if q.push(p) {
            self.out.reordered += 1;
        }
        while let Some(p) = q.pop(false) {
            self.due(p);
        }
    }

    fn flush(&mut self, q: &mut Reorder) {
        while let Some(p) = q.pop(true) {
            self.due(p);
        }
        self.dedup.drain(&mut self.arena);
    }

    /// A packet in time order: folded when a copy, else processed; its
    /// bytes held while copies may match them, then let go.
    fn due(&mut self, p: Pending) {
        let data = self.arena.get(p.data);
        if self.opts.fold_copies
            && let Some(link) = p.link
            && let Some((l3, origin)) = dedup::locate(link, data, p.interface, p.pkt_type)
            && self.dedup.is_copy(p.ts, l3, origin, p.data, &mut self.arena)
        {
            self.out.packets += 1;
            self.out.duplicates_folded += 1;
            self.arena.release(p.data);
            return;
        }
        // Processed from a copy of the bytes' place: the arena stays free
        // to hold and release.
        let arena = std::mem::take(&mut self.arena);
        self.packet(p.link, arena.get(p.data), p.cut, p.ts, p.interface);
        self.arena = arena;
        self.dedup.keep(p.data, &mut self.arena);
    }

    fn count_chunks(&mut self, key: PathKey, chunks: &[crate::decode::Chunk]) {
        let i = match self.last {
            Some((k, i)) if k == key => i,
            _ => {
                let next = self.counts.len() as u32;
                let i = *self.chunk_index.entry(key).or_insert(next);
                if i == next {
                    self.counts.push((key, PathChunks { n: [0; 23], other: Vec::new() }));
                }
                self.last = Some((key, i));
                i
            }
        };
        let c = &mut self.counts[i as usize].1;
        for ch in chunks {
            let t = ch.chunk_type();
            match type_slot(t) {
                Some(s) => c.n[s] += 1,
                None => match c.other.iter_mut().find(|(x, _)| *x == t) {
                    Some((_, n)) => *n += 1,
                    None => c.other.push((t, 1)),
                },
            }
        }
    }

    fn packet(&mut self, link: Option<LinkType>, data: &[u8], cut: bool, ts_ns: u64, interface: u32) {
        self.out.packets += 1;
        if self.next_tick == 0 {
            self.next_tick = ts_ns.saturating_add(self.opts.tick_ns);
        } else if ts_ns >= self.next_tick {
            self.tracker.tick(ts_ns, &mut self.out.events);
            self.next_tick = ts_ns.saturating_add(self.opts.tick_ns);
        }
        let Some(link) = link else {
            self.out.unsupported_link += 1;
            return;
        };
        let bounds = if cut { Bounds::Cut } else { Bounds::Whole };
        match parse_frame_in(link, data, bounds, ts_ns, self.opts.udp_port, &mut self.dstats) {
            Ok(Some(mut p)) => {
                self.out.sctp_packets += 1;
                p.meta.interface = interface;
                let at = self.tracker.process_located(&p.meta, &p.chunks, &mut self.out.events);
                if let Some((id, sender)) = at {
                    self.count_chunks((id, sender, p.meta.src, p.meta.dst), &p.chunks);
                }
            }
            Ok(None) => self.out.other_packets += 1,
            Err(DecodeError::Fragment) => self.out.fragments += 1,
            Err(_) => self.out.malformed_packets += 1,
        }
    }
}

/// Replays `path` (`-`: standard input), read as a stream: plain or
/// gzip-compressed pcap or pcapng. `Err` only when nothing could be read
/// (missing file, not a capture); a damaged file gives `Ok` with `error`
/// set.
pub fn replay(path: &Path, opts: &ReplayOptions) -> Result<ReplayOutcome, ReplayError> {
    let io = |source| ReplayError::Io { file: path.to_path_buf(), source };
    if path.as_os_str() == "-" {
        return replay_reader(std::io::stdin().lock(), path, opts);
    }
    let f = std::fs::File::open(path).map_err(io)?;
    replay_reader(std::io::BufReader::with_capacity(64 << 10, f), path, opts)
}

/// [`replay`] on a capture already in memory; `path` names it in errors.
pub fn replay_bytes(bytes: &[u8], path: &Path, opts: &ReplayOptions) -> Result<ReplayOutcome, ReplayError> {
    replay_reader(bytes, path, opts)
}

/// [`replay`] on any byte source; `path` names it in errors. Memory: the
/// packets of the reorder window and the tracker's state, whatever the
/// capture's length; nothing is allocated from a length field of the file.
pub fn replay_reader(r: impl Read, path: &Path, opts: &ReplayOptions) -> Result<ReplayOutcome, ReplayError> {
    let file = || path.to_path_buf();
    let error = |e: ReadError, gzip: bool| match e {
        ReadError::Format => ReplayError::Format { file: file() },
        ReadError::Io(source) => ReplayError::Io { file: file(), source },
        ReadError::Damaged { offset, what } => {
            let what = if gzip { format!("{what} (offset in the decompressed capture)") } else { what };
            ReplayError::Damaged { file: file(), offset: offset as usize, what }
        }
    };
    let mut reader = source::Reader::open(r).map_err(|e| error(e, false))?;
    // Copies need two origins; a capture with one never holds any.
    let opts = &ReplayOptions { fold_copies: opts.fold_copies && reader.origins_vary(), ..opts.clone() };
    let mut run = Run {
        tracker: Tracker::new(opts.tracker.clone()),
        out: ReplayOutcome {
            file: file(),
            events: Vec::new(),
            associations: Vec::new(),
            packets: 0,
            sctp_packets: 0,
            other_packets: 0,
            malformed_packets: 0,
            fragments: 0,
            unsupported_link: 0,
            duplicates_folded: 0,
            decode: DecodeStats::default(),
            tracker: TrackerStats::default(),
            chunk_counts: BTreeMap::new(),
            reordered: 0,
            error: None,
        },
        opts: opts.clone(),
        next_tick: 0,
        dstats: DecodeStats::default(),
        chunk_index: HashMap::default(),
        counts: Vec::new(),
        last: None,
        dedup: dedup::Dedup::default(),
        arena: arena::Arena::default(),
    };
    let mut q = Reorder::default();
    let mut scratch = Vec::new();
    loop {
        match reader.next(&mut scratch) {
            Ok(Some(rec)) => {
                // A simple packet has no timestamp: handed on at the time
                // of the packet before it.
                let ts = rec.ts.unwrap_or(q.max_ts);
                let data = run.arena.push(&scratch);
                let p = Pending {
                    ts,
                    link: rec.link,
                    interface: rec.interface,
                    pkt_type: rec.pkt_type,
                    cut: rec.cut,
                    data,
                };
                run.push(&mut q, p);
            }
            Ok(None) => break,
            Err(e) => {
                run.out.error = Some(error(e, reader.gzip));
                break;
            }
        }
    }
    run.flush(&mut q);
    let mut out = run.out;
    for ((id, sender, src, dst), counts) in run.counts {
        let c = out.chunk_counts.entry(id).or_default();
        let p = c.by_path.entry((sender, src, dst)).or_default();
        let slots = SLOT_TYPES.iter().zip(counts.n).filter(|(_, n)| *n > 0);
        for (t, n) in slots.map(|(t, n)| (*t, n)).chain(counts.other) {
            *c.total.entry(t).or_default() += n;
            *p.entry(t).or_default() += n;
        }
    }
    out.decode = run.dstats;
    out.tracker = run.tracker.stats();
    out.associations = run.tracker.associations().collect();
    out.associations.extend(run.tracker.closed().cloned());
    out.associations.sort_by_key(|a| a.id);
    Ok(out)
}

/// The next pcapng block: the framing checked here (with messages that say
/// what is wrong), then only the blocks replay reads (enhanced and simple
/// packets) parsed into a [`Block`]. The parser itself takes in section
/// headers and interface descriptions; every other block is skipped
/// unparsed, so a damaged statistics or name resolution block (or one
/// pcap-file would refuse, such as a host name that is not UTF-8) does not
/// end the replay.
fn pcapng_block<'a>(parser: &mut PcapNgParser, rest: &'a [u8]) -> Result<(&'a [u8], Option<Block<'a>>), String> {
    const SECTION_HEADER: u32 = 0x0A0D_0D0A;
    const SIMPLE_PACKET: u32 = 3;
    const ENHANCED_PACKET: u32 = 6;
    let Some(hdr) = rest.get(..12) else {
        return Err(format!("truncated: block header has {} of 12 bytes", rest.len()));
    };
    let big = parser.section().endianness == Endianness::Big;
    let field = |b: &[u8], i: usize| {
        let w = [b[i], b[i + 1], b[i + 2], b[i + 3]];
        if big { u32::from_be_bytes(w) } else { u32::from_le_bytes(w) }
    };
    let kind = field(hdr, 0);
    // A new section header sets its own byte order: pcap-file reads it.
    if kind != SECTION_HEADER {
        let len = field(hdr, 4) as usize;
        if !len.is_multiple_of(4) || len < 12 {
            return Err(format!("block total length {len} is not a multiple of 4 of at least 12"));
        }
        let Some(block) = rest.get(..len) else {
            return Err(format!("truncated: block of {len} bytes, {} left in the file", rest.len()));
        };
        let trailer = field(block, len - 4) as usize;
        if trailer != len {
            return Err(format!("block trailer length {trailer} differs from its total length {len}"));
        }
        if kind != SIMPLE_PACKET && kind != ENHANCED_PACKET && kind != INTERFACE_DESCRIPTION {
            return Ok((&rest[len..], None));
        }
        if kind == INTERFACE_DESCRIPTION
            && let Some(fixed) = unterminated_options(block, IDB_FIXED_LEN, big)
        {
            // Options without the closing opt_endofopt (written so by some
            // capture tools; tshark reads them): pcap-file refuses the list,
            // so it gets this block with the terminator added. It keeps its
            // own copy of the interface; the block is not handed on.
            parser.next_block(&fixed).map_err(|e| e.to_string())?;
            return Ok((&rest[len..], None));
        }
    }
    let (r, b) = parser.next_block(rest).map_err(|e| e.to_string())?;
    Ok((r, Some(b)))
}

/// Interface description block type.
const INTERFACE_DESCRIPTION: u32 = 1;
/// Link type, reserved, snap length.
const IDB_FIXED_LEN: usize = 8;

/// `block` (a whole pcapng block: type, length, body, length) with an
/// opt_endofopt added when its options after `fixed` bytes of body run to
/// the end of the block without one; `None` when they end properly, there
/// are none, or they do not parse (pcap-file then says what is wrong).
fn unterminated_options(block: &[u8], fixed: usize, big: bool) -> Option<Vec<u8>> {
    let u16_at = |i: usize| {
        let w = [block[i], block[i + 1]];
        if big { u16::from_be_bytes(w) } else { u16::from_le_bytes(w) }
    };
    let end = block.len() - 4;
    let mut at = 8 + fixed;
    if at >= end {
        return None;
    }
    while at + 4 <= end {
        if u16_at(at) == 0 {
            return None;
        }
        at += 4 + usize::from(u16_at(at + 2)).div_ceil(4) * 4;
    }
    if at != end {
        return None;
    }
    let len = block.len() + 4;
    let len_bytes = if big { (len as u32).to_be_bytes() } else { (len as u32).to_le_bytes() };
    let mut v = Vec::with_capacity(len);
    v.extend_from_slice(&block[..4]);
    v.extend_from_slice(&len_bytes);
    v.extend_from_slice(&block[8..end]);
    v.extend_from_slice(&[0; 4]);
    v.extend_from_slice(&len_bytes);
    Some(v)
}

/// `sctp-monitor replay FILE [--json]`: events as JSON Lines (`json`, then
/// one summary line) or the readable report. A damaged file is reported
/// after what was read and turns into an error at the end. A closed output
/// (`replay F | head`) is the error `std::io::ErrorKind::BrokenPipe`, which
/// the CLI ends on quietly.
pub fn run_replay_cli(path: &Path, json: bool, opts: &ReplayOptions, out: &mut impl Write) -> anyhow::Result<()> {
    let outcome = replay(path, opts)?;
    if json {
        for e in &outcome.events {
            writeln!(out, "{}", e.to_json_line())?;
        }
        writeln!(out, "{}", summary_json(&outcome))?;
    } else {
        crate::report::write_report(&outcome, out)?;
    }
    out.flush()?;
    match outcome.error {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}

/// The last line of `replay --json`: `{"summary": {...}}`, the report's
/// counts (no `event` field, so it is never taken for an event).
pub fn summary_json(o: &ReplayOutcome) -> String {
    let v = serde_json::json!({
        "summary": {
            "file": o.file.display().to_string(),
            "packets": o.packets,
            "sctp_packets": o.sctp_packets,
            "other_packets": o.other_packets,
            "malformed_packets": o.malformed_packets,
            "fragments": o.fragments,
            "unsupported_link": o.unsupported_link,
            "duplicates_folded": o.duplicates_folded,
            "reordered": o.reordered,
            "associations": o.associations.len(),
            "events": o.events.len(),
            "error": o.error.as_ref().map(|e| e.to_string()),
        }
    });
    v.to_string()
}

#[cfg(test)]
mod tests;
