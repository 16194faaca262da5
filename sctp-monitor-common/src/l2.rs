//! The link-layer rule that the kernel programs (`sctp-monitor-ebpf/src/l2.rs`)
//! and the userspace decoder (`sctp-monitor/src/decode/packet.rs`) both
//! follow, so that what `replay` reads from a capture is what the live agent
//! reads from the same frames.
//!
//! An Ethernet frame is: 12 bytes of addresses, an EtherType; while that
//! EtherType is a VLAN TPID ([`is_vlan_tpid`]) and fewer than
//! [`MAX_VLAN_TAGS`] tags were stepped over, a 4-byte tag (TPID already read,
//! then the TCI) is skipped and the next EtherType read. The payload is IP
//! when the EtherType after the tags is [`ETH_P_IP`] or [`ETH_P_IPV6`];
//! anything else (including a TPID still there after [`MAX_VLAN_TAGS`] tags)
//! is not SCTP and is counted as such. A frame cut inside the tags is
//! truncated (malformed).

/// Ethernet header length (destination, source, EtherType).
pub const ETH_HLEN: usize = 14;
/// Offset of the (outer) EtherType in an Ethernet frame.
pub const ETH_TYPE_OFFSET: usize = 12;
/// One VLAN tag: TPID (2 bytes) then TCI (2 bytes).
pub const VLAN_TAG_LEN: usize = 4;
pub const ETH_P_IP: u16 = 0x0800;
pub const ETH_P_IPV6: u16 = 0x86DD;
/// IEEE 802.1Q customer VLAN tag.
pub const ETH_P_8021Q: u16 = 0x8100;
/// IEEE 802.1ad service VLAN tag (QinQ outer tag).
pub const ETH_P_8021AD: u16 = 0x88A8;
/// The pre-standard QinQ outer tag some switches still send.
pub const ETH_P_QINQ_9100: u16 = 0x9100;
/// Every TPID taken as a VLAN tag.
pub const VLAN_TPIDS: [u16; 3] = [ETH_P_8021Q, ETH_P_8021AD, ETH_P_QINQ_9100];
/// Tags stepped over at most: QinQ plus one (a provider tag on a QinQ
/// frame). A fourth tag leaves a TPID as the EtherType: not SCTP.
pub const MAX_VLAN_TAGS: usize = 3;

/// Whether `ethertype` is a VLAN TPID of [`VLAN_TPIDS`].
#[inline(always)]
pub const fn is_vlan_tpid(ethertype: u16) -> bool {
    matches!(ethertype, ETH_P_8021Q | ETH_P_8021AD | ETH_P_QINQ_9100)
}

/// Whether the EtherType after the tags carries IP.
#[inline(always)]
pub const fn is_ip(ethertype: u16) -> bool {
    matches!(ethertype, ETH_P_IP | ETH_P_IPV6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_tpid_is_a_tag_and_nothing_else_is() {
        for t in VLAN_TPIDS {
            assert!(is_vlan_tpid(t), "{t:#06x}");
        }
        for t in [ETH_P_IP, ETH_P_IPV6, 0x0806, 0x88CC, 0x9200, 0x8847] {
            assert!(!is_vlan_tpid(t), "{t:#06x}");
        }
        assert!(is_ip(ETH_P_IP) && is_ip(ETH_P_IPV6) && !is_ip(ETH_P_8021Q));
    }
}
