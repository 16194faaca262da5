//! The two directions of one association picked up mid-flight, first seen
//! on different paths (an agent started while a path is cut: one side's
//! packets on path 1, the other's on path 2), start as two associations,
//! one tag each: nothing ties their address pairs together yet. When one of
//! them learns a path whose reverse is the other's, they are one: the
//! younger is folded into the older, which keeps its number and takes the
//! younger's tag, addresses, paths and DATA state; the younger ends with
//! reason `merged`.

use crate::event::{DownReason, Event};

use super::Tracker;
use super::assoc::{A16, NO_PATH, aflag, pflag};

impl Tracker {
    /// Association `x`, picked up mid-flight with one tag, learned the path
    /// `src` -> `dst` of its sender `e`: folds in the association of the
    /// other direction that starts from its reverse, if there is one.
    pub(super) fn merge_reverse(&mut self, x: usize, e: usize, src: A16, dst: A16, now: u64, out: &mut Vec<Event>) {
        let a = &self.slab[x];
        if a.flags & aflag::HANDSHAKE_SEEN != 0 || !a.has_tag(1 - e) || a.has_tag(e) {
            return;
        }
        let (pe, po) = (a.ports[e], a.ports[1 - e]);
        let Some((y, f)) = self.find_ends(&dst, po, &src, pe, |y, f| {
            y.flags & aflag::HANDSHAKE_SEEN == 0 && y.has_tag(1 - f) && !y.has_tag(f)
        }) else {
            return;
        };
        if y == x {
            return;
        }
        // y's endpoint f is x's endpoint 1 - e.
        let side = |s: usize| if s == f { 1 - e } else { e };
        let yb = self.slab[y].clone();
        self.slab[x].set_tag(e, yb.tags[1 - f]);
        self.index_sender(x, 1 - e);
        let mut map = vec![NO_PATH; yb.paths.len()];
        for (i, p) in yb.paths.iter().enumerate() {
            let d = side(p.dir());
            let (s, t) = (yb.addrs[p.src as usize], yb.addrs[p.dst as usize]);
            let Some(pi) = self.slab[x].path(d, s, t) else { continue };
            map[i] = pi as u8;
            let q = &mut self.slab[x].paths[pi];
            let dir_bit = q.flags & pflag::DIR1;
            let (src_slot, dst_slot) = (q.src, q.dst);
            *q = p.clone();
            q.flags = (p.flags & !pflag::DIR1) | dir_bit;
            (q.src, q.dst) = (src_slot, dst_slot);
        }
        let d = side(f);
        let mut dir = yb.dirs[f];
        dir.primary = map.get(dir.primary as usize).copied().unwrap_or(NO_PATH);
        let ax = &mut self.slab[x];
        ax.dirs[d] = dir;
        ax.ppids |= yb.ppids;
        ax.flags |= yb.flags & aflag::I_DATA;
        for (n, m) in ax.chunks.n.iter_mut().zip(yb.chunks.n) {
            *n = n.saturating_add(m);
        }
        ax.last_seen_ns = ax.last_seen_ns.max(yb.last_seen_ns);
        self.close(y, DownReason::Merged, now, out);
    }
}
