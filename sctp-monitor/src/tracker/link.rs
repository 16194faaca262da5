//! Interfaces under the paths: each path remembers the interface its last
//! packet crossed (a one-byte slot of [`Tracker::ifaces`]), so a monitored
//! interface going down takes every path through it down at once, before
//! any heartbeat or retransmission could tell. The path comes up again the
//! way any down path does: a heartbeat on it answered (acknowledged DATA
//! brings no down path back, as in the stacks).

use crate::event::{Cause, Event, EventKind};

use super::Tracker;
use super::assoc::PathState;

/// Most interfaces told apart; packets of others leave their path's
/// interface unknown.
const MAX_IFACES: usize = 254;

impl Tracker {
    /// The slot (+ 1) of interface `ifindex` in `ifaces`, added when new;
    /// 0 when the table is full or the packet has no interface.
    pub(super) fn iface_slot(&mut self, ifindex: u32) -> u8 {
        if ifindex == 0 {
            return 0;
        }
        if let Some(i) = self.ifaces.iter().position(|&x| x == ifindex) {
            return i as u8 + 1;
        }
        if self.ifaces.len() >= MAX_IFACES {
            return 0;
        }
        self.ifaces.push(ifindex);
        self.ifaces.len() as u8
    }

    /// The interface `ifindex` went down (its carrier or administrative
    /// state): every path whose last packet crossed it is down, with cause
    /// `link_down`.
    pub fn link_down(&mut self, ifindex: u32, now: u64, out: &mut Vec<Event>) {
        self.now_ns = self.now_ns.max(now);
        let Some(i) = self.ifaces.iter().position(|&x| x == ifindex) else {
            return;
        };
        let slot_id = i as u8 + 1;
        for slot in 0..self.slab.len() {
            if self.slab[slot].id == 0 {
                continue;
            }
            for pi in 0..self.slab[slot].paths.len() {
                let p = &mut self.slab[slot].paths[pi];
                if p.iface != slot_id || p.state == PathState::Down {
                    continue;
                }
                p.state = PathState::Down;
                let mut ev = self.path_event(slot, pi, EventKind::PathDown, now);
                ev.cause = Some(Cause::LinkDown);
                out.push(ev);
            }
        }
    }
}
