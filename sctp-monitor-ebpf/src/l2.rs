//! Ethernet and VLAN tags, by the rule of `sctp_monitor_common::l2` (the
//! userspace decoder follows the same one): up to `MAX_VLAN_TAGS` tags of
//! any TPID in `VLAN_TPIDS`.

use sctp_monitor_common::{counters, l2};

use crate::{
    ctx::Packet,
    cursor::{Cursor, read},
};

pub use sctp_monitor_common::l2::{ETH_HLEN, ETH_P_IP, ETH_P_IPV6};

/// Parses the Ethernet header and VLAN tags; returns the ethertype of the
/// payload with the cursor on it. `Err` carries the counter to bump.
#[inline(always)]
pub fn parse<P: Packet>(p: &P, cur: &mut Cursor) -> Result<u16, u32> {
    let mut proto = read::<[u8; 2], P>(p, l2::ETH_TYPE_OFFSET).ok_or(counters::MALFORMED_TRUNCATED)?;
    cur.off = ETH_HLEN;
    // Untagged IP, the common frame: one comparison, not one per TPID.
    if l2::is_ip(u16::from_be_bytes(proto)) {
        return Ok(u16::from_be_bytes(proto));
    }
    for _ in 0..l2::MAX_VLAN_TAGS {
        if !l2::is_vlan_tpid(u16::from_be_bytes(proto)) {
            break;
        }
        // TCI (2 bytes), then the inner ethertype.
        proto = read::<[u8; 2], P>(p, cur.off + 2).ok_or(counters::MALFORMED_TRUNCATED)?;
        cur.off += l2::VLAN_TAG_LEN;
    }
    Ok(u16::from_be_bytes(proto))
}
