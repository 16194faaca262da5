//! Ethernet and up to two VLAN tags (802.1Q, 802.1ad).

use sctp_monitor_common::counters;

use crate::{
    ctx::Packet,
    cursor::{Cursor, read},
};

pub const ETH_HLEN: usize = 14;
pub const ETH_P_IP: u16 = 0x0800;
pub const ETH_P_IPV6: u16 = 0x86DD;
const ETH_P_8021Q: u16 = 0x8100;
const ETH_P_8021AD: u16 = 0x88A8;
/// VLAN tags walked (QinQ).
pub const MAX_VLAN_TAGS: usize = 2;

/// Parses the Ethernet header and VLAN tags; returns the ethertype of the
/// payload with the cursor on it. `Err` carries the counter to bump.
#[inline(always)]
pub fn parse<P: Packet>(p: &P, cur: &mut Cursor) -> Result<u16, u32> {
    let mut proto = read::<[u8; 2], P>(p, 12).ok_or(counters::MALFORMED_TRUNCATED)?;
    cur.off = ETH_HLEN;
    for _ in 0..MAX_VLAN_TAGS {
        let et = u16::from_be_bytes(proto);
        if et != ETH_P_8021Q && et != ETH_P_8021AD {
            break;
        }
        // TCI (2 bytes), then the inner ethertype.
        proto = read::<[u8; 2], P>(p, cur.off + 2).ok_or(counters::MALFORMED_TRUNCATED)?;
        cur.off += 4;
    }
    Ok(u16::from_be_bytes(proto))
}
