//! `tick` by deadlines against the full scan it replaced: on random traffic
//! (handshakes, heartbeats answered or not, PMTU probes, DATA new and
//! retransmitted on both paths, SACKs with and without progress, silences
//! long enough to expire, slots reused), both trackers must report the same
//! events at every tick and end in the same state.

use std::net::{IpAddr, Ipv4Addr};

use crate::craft::{self, FrameBuilder, InitSpec, XorShift};
use crate::decode::{DecodeStats, LinkType, parse_frame};
use crate::event::Event;

use super::{Config, Tracker};

const MS: u64 = 1_000_000;
const T0: u64 = 1_700_000_000_000_000_000;

impl Tracker {
    /// The tick before deadlines: every association looked at every time.
    fn tick_scan_all(&mut self, now: u64, out: &mut Vec<Event>) {
        self.now_ns = self.now_ns.max(now);
        for slot in 0..self.slab.len() {
            if self.slab[slot].id == 0 {
                continue;
            }
            if self.expire_if_idle(slot, now, out) {
                continue;
            }
            self.check_heartbeats(slot, now, out);
            self.check_stalled(slot, now, out);
        }
        // A pass over every path already, once per window.
        self.quality_windows(now, out);
    }
}

struct Peer {
    a: [IpAddr; 2],
    b: [IpAddr; 2],
    ta: u32,
    tb: u32,
    tsn: u32,
    /// Heartbeat Infos sent and not yet answered, per direction.
    hb: [Vec<(usize, u64)>; 2],
}

fn frame(src: IpAddr, dst: IpAddr, sp: u16, dp: u16, vtag: u32, chunks: Vec<Vec<u8>>) -> Vec<u8> {
    FrameBuilder::ip(src, dst).sctp(sp, dp, vtag).chunks(chunks).build()
}

/// One random run; panics at the first tick where the two disagree.
fn run(seed: u64, steps: usize) {
    let cfg = Config {
        idle_timeout_ns: 12_000 * MS,
        hb_answer_timeout_ns: 700 * MS,
        hb_down_after: 2,
        stall_after_ns: 2_500 * MS,
        retrans_down_after: 3,
        ..Config::default()
    };
    let mut new = Tracker::new(cfg.clone());
    let mut old = Tracker::new(cfg);
    let (mut ev_new, mut ev_old) = (Vec::new(), Vec::new());
    let mut rng = XorShift::new(seed);
    let mut st = DecodeStats::default();
    let mut now = T0;
    let mut made = 0u32;
    let mut peers: Vec<Option<Peer>> = (0..6).map(|_| None).collect();
    let (pa, pb) = (5000u16, 3868u16);
    let mut ticks = 0;
    for step in 0..steps {
        // Sub-millisecond times too: deadlines round to whole milliseconds.
        now += rng.below(900) as u64 * MS + rng.below(1_000_000) as u64;
        let i = rng.below(peers.len());
        // Associations 4 and 5 are mostly silent: they expire and come back.
        if i >= 4 && rng.below(6) != 0 {
            continue;
        }
        let mut frames = Vec::new();
        match &mut peers[i] {
            None => {
                made += 1;
                let n = (i as u32) << 8 | 1;
                let v4 = |x: u32| IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | x));
                let p = Peer {
                    a: [v4(n << 4 | 1), v4(n << 4 | 2)],
                    b: [v4(n << 4 | 3), v4(n << 4 | 4)],
                    ta: 0x1000_0000 | made,
                    tb: 0x2000_0000 | made,
                    tsn: 100,
                    hb: [Vec::new(), Vec::new()],
                };
                frames.push(frame(
                    p.a[0],
                    p.b[0],
                    pa,
                    pb,
                    0,
                    vec![craft::init(&InitSpec::new(p.ta, 1).addrs(&[p.a[1]]))],
                ));
                frames.push(frame(
                    p.b[0],
                    p.a[0],
                    pb,
                    pa,
                    p.ta,
                    vec![craft::init_ack(&InitSpec::new(p.tb, p.tsn).addrs(&[p.b[1]]))],
                ));
                frames.push(frame(p.a[0], p.b[0], pa, pb, p.tb, vec![craft::cookie_echo(&[1; 8])]));
                frames.push(frame(p.b[0], p.a[0], pb, pa, p.ta, vec![craft::cookie_ack()]));
                peers[i] = Some(p);
            }
            Some(p) => {
                let path = rng.below(2);
                // Sender 0 is a, 1 is b.
                let s = rng.below(2);
                let (src, dst, sp, dp, tag) =
                    if s == 0 { (p.a[path], p.b[path], pa, pb, p.tb) } else { (p.b[path], p.a[path], pb, pa, p.ta) };
                match rng.below(10) {
                    0 | 1 => {
                        let info = rng.next_u64() % 16;
                        frames.push(frame(src, dst, sp, dp, tag, vec![craft::heartbeat(&info.to_be_bytes())]));
                        p.hb[s].push((path, info));
                    }
                    2 | 3 => {
                        // The answer to one of the peer's heartbeats (or a stray one).
                        let r = 1 - s;
                        let info = if p.hb[r].is_empty() || rng.below(5) == 0 {
                            rng.next_u64() % 16
                        } else {
                            let k = rng.below(p.hb[r].len());
                            p.hb[r].swap_remove(k).1
                        };
                        frames.push(frame(src, dst, sp, dp, tag, vec![craft::heartbeat_ack(&info.to_be_bytes())]));
                    }
                    4 => frames.push(frame(
                        src,
                        dst,
                        sp,
                        dp,
                        tag,
                        vec![craft::heartbeat(&rng.next_u64().to_be_bytes()), craft::pad(64)],
                    )),
                    5 | 6 => {
                        p.tsn = p.tsn.wrapping_add(1);
                        frames.push(frame(
                            p.a[path],
                            p.b[path],
                            pa,
                            pb,
                            p.tb,
                            vec![craft::data(p.tsn, 0, 0, 0, &[0; 8])],
                        ));
                    }
                    7 => frames.push(frame(
                        p.a[path],
                        p.b[path],
                        pa,
                        pb,
                        p.tb,
                        vec![craft::data(p.tsn.wrapping_sub(rng.below(3) as u32), 0, 0, 0, &[0; 8])],
                    )),
                    8 => {
                        let cum = if rng.below(2) == 0 { p.tsn } else { p.tsn.wrapping_sub(2) };
                        frames.push(frame(p.b[path], p.a[path], pb, pa, p.ta, vec![craft::sack(cum, 1000, &[], &[])]));
                    }
                    // Silence on this one.
                    _ => {}
                }
            }
        }
        for f in &frames {
            let pkt = parse_frame(LinkType::Ethernet, f, now, 9899, &mut st).expect("parses").expect("SCTP");
            new.process(&pkt.meta, &pkt.chunks, &mut ev_new);
            old.process(&pkt.meta, &pkt.chunks, &mut ev_old);
        }
        if ev_new != ev_old {
            let i = (0..ev_new.len().max(ev_old.len())).find(|&i| ev_new.get(i) != ev_old.get(i)).unwrap_or(0);
            panic!(
                "seed {seed} step {step}: packet events differ at {i}:\n deadline {:?}\n scan     {:?}",
                ev_new.get(i).map(Event::to_json_line),
                ev_old.get(i).map(Event::to_json_line)
            );
        }
        if rng.below(3) == 0 {
            let (n0, o0) = (ev_new.len(), ev_old.len());
            new.tick(now, &mut ev_new);
            old.tick_scan_all(now, &mut ev_old);
            ticks += 1;
            let mut a: Vec<String> = ev_new[n0..].iter().map(Event::to_json_line).collect();
            let mut b: Vec<String> = ev_old[o0..].iter().map(Event::to_json_line).collect();
            // Within one tick the order across associations may differ.
            a.sort();
            b.sort();
            assert_eq!(a, b, "seed {seed} step {step}: tick events differ");
            ev_new.truncate(n0);
            ev_new.extend(ev_old[o0..].iter().cloned());
            // Expired associations start again later with new tags.
            for p in peers.iter_mut() {
                if let Some(q) = p
                    && new.find_tag(q.tb, pa, pb).is_none()
                {
                    *p = None;
                }
            }
        }
    }
    assert!(ticks > steps / 5);
    let views = |t: &Tracker| {
        let mut v: Vec<_> = t.associations().collect();
        v.sort_by_key(|a| a.id);
        v
    };
    assert_eq!(views(&new), views(&old), "seed {seed}: end states differ");
    assert_eq!(new.stats(), old.stats(), "seed {seed}");
    let kinds: std::collections::BTreeSet<_> = ev_old.iter().map(|e| format!("{:?}", e.event)).collect();
    assert!(
        ["AssociationDown", "PathDown", "PathUp", "Failover", "Stalled"].iter().all(|k| kinds.contains(*k)),
        "seed {seed}: the traffic must exercise every timed rule, saw {kinds:?}"
    );
}

#[test]
fn deadline_tick_reports_what_the_full_scan_did() {
    for seed in 1..=12 {
        run(seed * 0x9E37_79B9, 4_000);
    }
}
