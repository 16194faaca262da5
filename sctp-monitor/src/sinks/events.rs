//! Events out: JSON Lines to stdout or a file (rotated by size when asked,
//! [`RotatingFile`]), and a bounded in-memory log with sequence numbers for
//! `/api/events?since=N`.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::event::Event;

/// The last `cap` events as JSON lines, each with its sequence number.
#[derive(Debug)]
pub struct EventLog {
    buf: VecDeque<(u64, String)>,
    cap: usize,
    next_seq: u64,
}

/// A page of the log.
#[derive(Debug, PartialEq, Eq)]
pub struct EventPage {
    pub first: u64,
    pub next: u64,
    /// Events at or after `since` that were already dropped.
    pub missed: u64,
    /// `(seq, json line)`.
    pub events: Vec<(u64, String)>,
}

impl EventLog {
    pub fn new(cap: usize) -> EventLog {
        EventLog { buf: VecDeque::with_capacity(cap.min(4096)), cap, next_seq: 0 }
    }

    /// Appends a JSON line; returns its sequence number.
    pub fn push(&mut self, line: String) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        if self.cap == 0 {
            return seq;
        }
        if self.buf.len() >= self.cap {
            self.buf.pop_front();
        }
        self.buf.push_back((seq, line));
        seq
    }

    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    pub fn first_seq(&self) -> u64 {
        self.buf.front().map_or(self.next_seq, |e| e.0)
    }

    /// Up to `limit` events with `seq >= since`.
    pub fn since(&self, since: u64, limit: usize) -> EventPage {
        let first = self.first_seq();
        let missed = first.saturating_sub(since).min(self.next_seq.saturating_sub(since));
        let start = since.saturating_sub(first) as usize;
        let events = self.buf.iter().skip(start).take(limit).cloned().collect();
        EventPage { first, next: self.next_seq, missed, events }
    }

    /// The page as the `/api/events` document (see `super::api`).
    pub fn page_json(&self, since: u64, limit: usize) -> String {
        let p = self.since(since, limit);
        let mut s = format!(r#"{{"first":{},"next":{},"missed":{},"events":["#, p.first, p.next, p.missed);
        for (i, (seq, line)) in p.events.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            // Every line is a JSON object `{...}`: splice the seq in front.
            s.push_str(&format!(r#"{{"seq":{seq}"#));
            if line.len() > 2 {
                s.push(',');
                s.push_str(&line[1..]);
            } else {
                s.push('}');
            }
        }
        s.push_str("]}");
        s
    }
}

/// Where JSON Lines go.
pub struct EventWriter {
    out: Option<Box<dyn Write + Send>>,
    /// Lines queued by `queue_event`, written by `flush`.
    pending: Vec<u8>,
    /// Write errors (a closed stdout must not stop the agent).
    pub errors: u64,
}

impl EventWriter {
    /// `None` discards events (benchmarks).
    pub fn new(out: Option<Box<dyn Write + Send>>) -> EventWriter {
        EventWriter { out, pending: Vec::new(), errors: 0 }
    }

    /// Stdout (`-`), nowhere (`off`) or a file, appended to; with
    /// `rotate`, the file is rotated by size ([`RotatingFile`]).
    pub fn open(target: &str, rotate: Option<Rotation>) -> anyhow::Result<EventWriter> {
        use anyhow::Context as _;
        if target == "off" {
            return Ok(EventWriter::new(None));
        }
        if target == "-" || target.is_empty() {
            anyhow::ensure!(rotate.is_none(), "--events-max-bytes rotates a file: give --events FILE, not stdout");
            return Ok(EventWriter::new(Some(Box::new(std::io::stdout()))));
        }
        let hint =
            || format!("cannot open the events file {target} (--events); check the directory exists and is writable");
        if let Some(r) = rotate {
            return Ok(EventWriter::new(Some(Box::new(RotatingFile::open(Path::new(target), r).with_context(hint)?))));
        }
        let f = OpenOptions::new().create(true).append(true).open(target).with_context(hint)?;
        Ok(EventWriter::new(Some(Box::new(f))))
    }

    /// Writes one line; events are rare, so each is written at once (no
    /// buffering that would delay a failover report).
    pub fn write_line(&mut self, line: &str) {
        if let Some(out) = self.out.as_mut() {
            let mut buf = Vec::with_capacity(line.len() + 1);
            buf.extend_from_slice(line.as_bytes());
            buf.push(b'\n');
            if out.write_all(&buf).and_then(|_| out.flush()).is_err() {
                self.errors += 1;
            }
        }
    }

    pub fn write_event(&mut self, ev: &Event) -> String {
        let line = ev.to_json_line();
        self.write_line(&line);
        line
    }

    /// Queues one line for the next `flush`: the events of one record, or
    /// of one burst (100,000 paths confirmed by one read of the kernel's
    /// path map), go out in one write.
    pub fn queue_event(&mut self, ev: &Event) -> String {
        let line = ev.to_json_line();
        if self.out.is_some() {
            self.pending.extend_from_slice(line.as_bytes());
            self.pending.push(b'\n');
        }
        line
    }

    /// Writes the queued lines.
    pub fn flush(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        if let Some(out) = self.out.as_mut()
            && out.write_all(&self.pending).and_then(|_| out.flush()).is_err()
        {
            self.errors += 1;
        }
        self.pending.clear();
        if self.pending.capacity() > 1 << 20 {
            self.pending.shrink_to(64 << 10);
        }
    }
}

/// Size-based rotation of the events file (`--events-max-bytes`,
/// `--events-keep`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rotation {
    /// A file is rotated before it would grow past this many bytes.
    pub max_bytes: u64,
    /// Rotated files kept: `FILE.1` (newest) .. `FILE.keep`; 0 keeps none.
    pub keep: usize,
}

/// The events file, rotated by size the way logrotate names files: when
/// the next lines would take `FILE` past `max_bytes`, `FILE.(keep-1)`
/// becomes `FILE.keep` (the oldest goes), ..., `FILE` becomes `FILE.1`, and
/// a new `FILE` is started. Files are cut between lines only, so each holds
/// whole JSON lines (a line longer than `max_bytes` gets a file to itself).
#[derive(Debug)]
pub struct RotatingFile {
    path: PathBuf,
    rot: Rotation,
    file: File,
    size: u64,
    /// Rotations done.
    pub rotations: u64,
}

impl RotatingFile {
    /// Opens (appends to) `path`; its present size counts.
    pub fn open(path: &Path, rot: Rotation) -> io::Result<RotatingFile> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let size = file.metadata()?.len();
        Ok(RotatingFile { path: path.to_path_buf(), rot, file, size, rotations: 0 })
    }

    fn numbered(&self, n: usize) -> PathBuf {
        let mut p = self.path.clone().into_os_string();
        p.push(format!(".{n}"));
        PathBuf::from(p)
    }

    fn rotate(&mut self) -> io::Result<()> {
        let ignore_missing = |r: io::Result<()>| match r {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            r => r,
        };
        if self.rot.keep == 0 {
            ignore_missing(std::fs::remove_file(&self.path))?;
        } else {
            for n in (1..self.rot.keep).rev() {
                ignore_missing(std::fs::rename(self.numbered(n), self.numbered(n + 1)))?;
            }
            ignore_missing(std::fs::rename(&self.path, self.numbered(1)))?;
        }
        self.file = OpenOptions::new().create(true).append(true).open(&self.path)?;
        self.size = self.file.metadata()?.len();
        self.rotations += 1;
        Ok(())
    }
}

impl Write for RotatingFile {
    /// Writes all of `buf` (whole lines, as the writer hands them over),
    /// rotating between lines where the next would not fit.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut rest = buf;
        while !rest.is_empty() {
            let room = self.rot.max_bytes.saturating_sub(self.size) as usize;
            let take = if rest.len() <= room {
                rest.len()
            } else {
                match rest[..room].iter().rposition(|&b| b == b'\n') {
                    Some(i) => i + 1,
                    // Not even one line fits: a fresh file, or a line
                    // longer than a whole file, alone in one.
                    None if self.size == 0 => rest.iter().position(|&b| b == b'\n').map_or(rest.len(), |i| i + 1),
                    None => 0,
                }
            };
            if take == 0 {
                self.rotate()?;
                continue;
            }
            self.file.write_all(&rest[..take])?;
            self.size += take as u64;
            rest = &rest[take..];
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_by_size_keeps_whole_lines_and_n_files() {
        let dir = std::env::temp_dir().join(format!("sctpmon-rot-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("events.jsonl");
        let rot = Rotation { max_bytes: 100, keep: 2 };
        let mut w = EventWriter::new(Some(Box::new(RotatingFile::open(&path, rot).expect("open"))));
        // 30 lines of 20 bytes: 5 per file (100 bytes), 6 files' worth.
        for i in 0..30 {
            w.write_line(&format!("{{\"n\":{i:05},\"pad\":0}}")[..19]);
        }
        let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
        let cur = read(&path);
        let one = read(&dir.join("events.jsonl.1"));
        let two = read(&dir.join("events.jsonl.2"));
        assert!(!dir.join("events.jsonl.3").exists(), "only --events-keep 2 rotated files");
        for (name, f) in [("current", &cur), (".1", &one), (".2", &two)] {
            assert!(f.len() <= 100, "{name} is {} bytes", f.len());
            assert!(f.ends_with('\n') && f.lines().all(|l| l.len() == 19), "{name}: whole lines: {f:?}");
        }
        // The newest lines are in FILE, the ones before in FILE.1, FILE.2.
        let nums = |f: &str| f.lines().map(|l| l[5..10].parse::<u32>().expect("n")).collect::<Vec<_>>();
        assert_eq!(nums(&cur), (25..30).collect::<Vec<_>>());
        assert_eq!(nums(&one), (20..25).collect::<Vec<_>>());
        assert_eq!(nums(&two), (15..20).collect::<Vec<_>>());
        assert_eq!(w.errors, 0);
        // A burst larger than a file is cut between lines too, and a line
        // longer than a file gets one of its own.
        let mut f = RotatingFile::open(&dir.join("burst"), Rotation { max_bytes: 50, keep: 5 }).expect("open");
        let burst: String = (0..10).map(|i| format!("{i:019}\n")).collect();
        f.write_all(burst.as_bytes()).expect("write");
        let long = format!("{}\n", "x".repeat(120));
        f.write_all(long.as_bytes()).expect("write");
        f.write_all(b"after\n").expect("write");
        assert_eq!(read(&dir.join("burst")), "after\n");
        assert_eq!(read(&dir.join("burst.1")), long);
        assert_eq!(read(&dir.join("burst.2")), burst[160..200]);
        assert_eq!(read(&dir.join("burst.5")), burst[40..80], "the oldest (lines 0, 1) went");
        assert_eq!(f.rotations, 6);
        // Rotation is of a file: stdout with a size is refused, and said so.
        let e = EventWriter::open("-", Some(rot)).err().expect("refused").to_string();
        assert!(e.contains("--events-max-bytes") && e.contains("--events FILE"), "{e}");
        // keep 0: the full file is started over.
        let mut z = RotatingFile::open(&dir.join("zero"), Rotation { max_bytes: 10, keep: 0 }).expect("open");
        z.write_all(b"0123456\nabcdef\n").expect("write");
        assert_eq!(read(&dir.join("zero")), "abcdef\n");
        assert!(!dir.join("zero.1").exists());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn log_is_bounded_and_pages_by_sequence() {
        let mut log = EventLog::new(3);
        for i in 0..5 {
            assert_eq!(log.push(format!(r#"{{"n":{i}}}"#)), i);
        }
        let p = log.since(0, 10);
        assert_eq!((p.first, p.next, p.missed), (2, 5, 2));
        assert_eq!(p.events.iter().map(|e| e.0).collect::<Vec<_>>(), vec![2, 3, 4]);
        let p = log.since(4, 10);
        assert_eq!(p.events.len(), 1);
        assert_eq!(p.missed, 0);
        let p = log.since(9, 10);
        assert!(p.events.is_empty());
        let p = log.since(2, 1);
        assert_eq!(p.events, vec![(2, r#"{"n":2}"#.to_string())]);
        let v: serde_json::Value = serde_json::from_str(&log.page_json(3, 10)).expect("valid JSON");
        assert_eq!(v["events"][0]["seq"], 3);
        assert_eq!(v["events"][0]["n"], 3);
        assert_eq!(v["next"], 5);
    }

    #[test]
    fn empty_log_page() {
        let log = EventLog::new(10);
        let v: serde_json::Value = serde_json::from_str(&log.page_json(0, 10)).expect("valid JSON");
        assert_eq!(v["first"], 0);
        assert_eq!(v["events"].as_array().map(Vec::len), Some(0));
    }
}
