//! Dynamic addresses (RFC 5061): an ASCONF's requests take effect only when
//! the ASCONF-ACK with the same serial arrives. A request with an Error Cause
//! Indication failed; one without a response succeeded if it comes before
//! the first failed one, and failed after it (RFC 5061 §5.3). Wildcards: Add
//! 0.0.0.0/:: means the ASCONF's source address; Delete wildcard means all
//! but the source address.
//!
//! An acknowledged Set Primary is reported (`primary_requested`: who asked,
//! for which of its addresses). The rule for what follows (`data.rs`,
//! [`Tracker::asconf_cause`]): new DATA that moves because an acknowledged
//! ASCONF asked for it (to the address a Set Primary named, or away from an
//! address a Delete IP removed) is `primary_changed` with `asconf` saying
//! which request, never a `failover`: a failover is a move of new DATA to
//! another destination that nobody asked for.

use crate::decode::{Asconf, AsconfAck, AsconfRequestKind, PacketMeta};
use crate::event::{AsconfCause, Event, EventKind, Role};

use super::Tracker;
use super::assoc::{A16, PendingAsconf, a16, ip};

/// Pending ASCONFs kept per association.
const MAX_PENDING: usize = 4;

fn is_wildcard(a: &A16) -> bool {
    let v4_any = a16(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
    *a == [0; 16] || *a == v4_any
}

impl Tracker {
    pub(super) fn on_asconf(&mut self, slot: usize, e: usize, meta: &PacketMeta, c: &Asconf) {
        let pending = PendingAsconf {
            sender: e as u8,
            serial: c.serial,
            src: a16(meta.src),
            requests: c.requests.iter().map(|r| (r.kind, r.corr_id, a16(r.addr))).collect(),
        };
        let x = self.slab[slot].ext();
        x.pending_asconf.retain(|p| !(p.sender as usize == e && p.serial == c.serial));
        if x.pending_asconf.len() >= MAX_PENDING {
            x.pending_asconf.remove(0);
        }
        x.pending_asconf.push(pending);
    }

    pub(super) fn on_asconf_ack(&mut self, slot: usize, e: usize, ack: &AsconfAck, now: u64, out: &mut Vec<Event>) {
        let asker = 1 - e;
        let Some(x) = self.slab[slot].ext.as_mut() else {
            self.stats.unmatched_asconf_acks += 1;
            return;
        };
        let Some(i) = x.pending_asconf.iter().position(|p| p.sender as usize == asker && p.serial == ack.serial) else {
            self.stats.unmatched_asconf_acks += 1;
            return;
        };
        let p = x.pending_asconf.remove(i);
        let mut failed_before = false;
        for (kind, corr, addr) in p.requests {
            let ok = match ack.results.iter().find(|r| r.corr_id == corr) {
                Some(r) if r.success => true,
                Some(_) => {
                    failed_before = true;
                    false
                }
                None => !failed_before,
            };
            if !ok {
                continue;
            }
            match kind {
                AsconfRequestKind::Add => {
                    let addr = if is_wildcard(&addr) { p.src } else { addr };
                    match self.slab[slot].add_addr(asker, addr) {
                        Some((_, true)) => out.push(self.addr_event(slot, EventKind::AddressAdded, asker, &addr, now)),
                        Some((_, false)) => {}
                        None => self.stats.address_overflow += 1,
                    }
                }
                AsconfRequestKind::Delete => {
                    let targets: Vec<A16> = if is_wildcard(&addr) {
                        self.slab[slot].addrs_of(asker).filter(|a| **a != p.src).copied().collect()
                    } else {
                        vec![addr]
                    };
                    for t in targets {
                        if self.slab[slot].remove_addr(asker, &t) {
                            out.push(self.addr_event(slot, EventKind::AddressRemoved, asker, &t, now));
                        }
                    }
                }
                AsconfRequestKind::SetPrimary => {
                    let addr = if is_wildcard(&addr) { p.src } else { addr };
                    let x = self.slab[slot].ext();
                    x.requested_primary[asker] = Some(addr);
                    x.primary_request_open[asker] = true;
                    out.push(self.addr_event(slot, EventKind::PrimaryRequested, asker, &addr, now));
                }
            }
        }
    }

    /// The acknowledged ASCONF request behind new DATA of direction `e`
    /// moving from path `old` to `new`, if any: a Set Primary of the new
    /// destination by the receiver not yet followed (it is, from now on),
    /// or a Delete IP of the old destination (by the receiver) or of the
    /// old source (by the sender).
    pub(super) fn asconf_cause(&mut self, slot: usize, e: usize, old: usize, new: usize) -> Option<AsconfCause> {
        let a = &mut self.slab[slot];
        let (po, pn) = (&a.paths[old], &a.paths[new]);
        let (old_src, old_dst, new_dst) = (po.src as usize, po.dst as usize, a.addrs[pn.dst as usize]);
        let deleted = a.gone & (1 << old_dst | 1 << old_src) != 0;
        let x = a.ext.as_mut()?;
        if x.primary_request_open[1 - e] && x.requested_primary[1 - e] == Some(new_dst) {
            x.primary_request_open[1 - e] = false;
            return Some(AsconfCause::SetPrimary);
        }
        deleted.then_some(AsconfCause::DeleteIp)
    }

    fn addr_event(&self, slot: usize, kind: EventKind, e: usize, addr: &A16, now: u64) -> Event {
        let mut ev = Event::new(now, kind, self.slab[slot].id as u64);
        ev.endpoint = Some(Role::from_index(e));
        ev.addr = Some(ip(addr));
        ev
    }
}
