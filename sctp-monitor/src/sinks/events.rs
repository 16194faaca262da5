//! Events out: JSON Lines to stdout or a file, and a bounded in-memory log
//! with sequence numbers for `/api/events?since=N`.

use std::collections::VecDeque;
use std::io::Write;

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

    /// Stdout (`-`), nowhere (`off`) or a file, appended to.
    pub fn open(target: &str) -> anyhow::Result<EventWriter> {
        use anyhow::Context as _;
        if target == "off" {
            return Ok(EventWriter::new(None));
        }
        if target == "-" || target.is_empty() {
            return Ok(EventWriter::new(Some(Box::new(std::io::stdout()))));
        }
        let f = std::fs::OpenOptions::new().create(true).append(true).open(target).with_context(|| {
            format!("cannot open the events file {target} (--events); check the directory exists and is writable")
        })?;
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

#[cfg(test)]
mod tests {
    use super::*;

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
