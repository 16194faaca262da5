//! Two multihomed endpoints, A and B, exchanging crafted packets through
//! the real decoder into a [`Tracker`]: the tracker's unit tests and the
//! event-schema test drive it.

use std::net::IpAddr;

use crate::{
    craft::{self, CookiePos, FrameBuilder, InitSpec},
    decode::{DecodeStats, LinkType, parse_frame},
    event::{Event, EventKind},
    tracker::{Config, Tracker},
};

/// One millisecond in ns, and the scenarios' start (a plausible wall clock).
pub const MS: u64 = 1_000_000;
pub const T0: u64 = 1_700_000_000_000_000_000;
/// The tags A and B choose (each endpoint's own; packets to A carry `TA`).
pub const TA: u32 = 0xA0A0_A0A0;
pub const TB: u32 = 0xB0B0_B0B0;

/// A and B with two addresses each, their ports, the tracker and what it
/// has said so far.
pub struct Wire {
    pub t: Tracker,
    pub ev: Vec<Event>,
    pub a: [IpAddr; 2],
    pub b: [IpAddr; 2],
    pub pa: u16,
    pub pb: u16,
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("address")
}

impl Wire {
    /// A at 10.0.0.1 and 10.0.1.1, port 5000; B at 10.0.0.2 and 10.0.1.2,
    /// port 3868 (Diameter).
    pub fn new(cfg: Config) -> Wire {
        Wire {
            t: Tracker::new(cfg),
            ev: Vec::new(),
            a: [ip("10.0.0.1"), ip("10.0.1.1")],
            b: [ip("10.0.0.2"), ip("10.0.1.2")],
            pa: 5000,
            pb: 3868,
        }
    }

    /// Other addresses.
    pub fn ends(mut self, a: [IpAddr; 2], b: [IpAddr; 2]) -> Wire {
        (self.a, self.b) = (a, b);
        self
    }

    /// Other ports.
    pub fn ports(mut self, pa: u16, pb: u16) -> Wire {
        (self.pa, self.pb) = (pa, pb);
        self
    }

    /// One packet at `ms` after [`T0`], decoded as captured and tracked.
    #[allow(clippy::too_many_arguments)]
    pub fn send(&mut self, ms: u64, src: IpAddr, dst: IpAddr, sport: u16, dport: u16, vtag: u32, chunks: Vec<Vec<u8>>) {
        let f = FrameBuilder::ip(src, dst).sctp(sport, dport, vtag).chunks(chunks).build();
        let mut st = DecodeStats::default();
        let p = parse_frame(LinkType::Ethernet, &f, T0 + ms * MS, 9899, &mut st).expect("parses").expect("SCTP");
        self.t.process(&p.meta, &p.chunks, &mut self.ev);
    }

    /// A -> B on path `i` (0 or 1), with B's tag.
    pub fn a2b(&mut self, ms: u64, i: usize, chunks: Vec<Vec<u8>>) {
        self.send(ms, self.a[i], self.b[i], self.pa, self.pb, TB, chunks);
    }

    /// B -> A on path `i`, with A's tag.
    pub fn b2a(&mut self, ms: u64, i: usize, chunks: Vec<Vec<u8>>) {
        self.send(ms, self.b[i], self.a[i], self.pb, self.pa, TA, chunks);
    }

    /// INIT (A's second address), INIT-ACK (B's second address, a 300-byte
    /// cookie), COOKIE-ECHO and COOKIE-ACK on the first path, at 0-3 ms.
    pub fn handshake(&mut self) {
        let (a, b, pa, pb) = (self.a, self.b, self.pa, self.pb);
        self.send(0, a[0], b[0], pa, pb, 0, vec![craft::init(&InitSpec::new(TA, 100).addrs(&[a[1]]))]);
        let ack = craft::init_ack(&InitSpec::new(TB, 500).addrs(&[b[1]]).cookie(300, CookiePos::Before));
        self.send(1, b[0], a[0], pb, pa, TA, vec![ack]);
        self.a2b(2, 0, vec![craft::cookie_echo(&[7; 300])]);
        self.b2a(3, 0, vec![craft::cookie_ack()]);
    }

    /// The tracker's clock tick at `ms` after [`T0`].
    pub fn tick(&mut self, ms: u64) {
        self.t.tick(T0 + ms * MS, &mut self.ev);
    }

    /// The kinds of the events so far.
    pub fn kinds(&self) -> Vec<EventKind> {
        self.ev.iter().map(|e| e.event).collect()
    }

    /// The events of one kind so far.
    pub fn of(&self, k: EventKind) -> Vec<&Event> {
        self.ev.iter().filter(|e| e.event == k).collect()
    }

    /// The events so far as JSON lines.
    pub fn lines(&self) -> Vec<String> {
        self.ev.iter().map(Event::to_json_line).collect()
    }
}
