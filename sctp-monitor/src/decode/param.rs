//! TLV parameters (INIT, INIT-ACK, ASCONF, ASCONF-ACK, HEARTBEAT) and error
//! causes (ABORT, ERROR), which share the shape: type u16, length u16
//! (excluding padding), value, padding to 4.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use sctp_monitor_common::sctp::{padded, param};

use super::{DecodeStats, get16};

/// One TLV: its type and the value bytes present (may be shorter than the
/// length field says when the input was cut).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tlv<'a> {
    pub kind: u16,
    /// The length field (header + value, no padding).
    pub len: u16,
    pub value: &'a [u8],
}

/// Walks TLVs over `bytes`. A length below 4 or one running past the end
/// stops the walk and counts a malformed parameter (the last parameter may
/// miss its padding).
pub struct TlvIter<'a, 's> {
    bytes: &'a [u8],
    off: usize,
    stats: &'s mut DecodeStats,
}

impl<'a, 's> TlvIter<'a, 's> {
    pub fn new(bytes: &'a [u8], stats: &'s mut DecodeStats) -> Self {
        TlvIter { bytes, off: 0, stats }
    }

    /// Counts a parameter as unknown (for callers that skip it).
    pub fn count_unknown(&mut self) {
        self.stats.unknown_params += 1;
    }

    /// Counts a parameter as malformed (for callers that reject its value).
    pub fn count_malformed(&mut self) {
        self.stats.malformed_params += 1;
    }
}

impl<'a> Iterator for TlvIter<'a, '_> {
    type Item = Tlv<'a>;

    fn next(&mut self) -> Option<Tlv<'a>> {
        let rest = self.bytes.get(self.off..)?;
        if rest.is_empty() {
            return None;
        }
        let (Some(kind), Some(len)) = (get16(rest, 0), get16(rest, 2)) else {
            self.stats.malformed_params += 1;
            self.off = self.bytes.len();
            return None;
        };
        if (len as usize) < 4 || len as usize > rest.len() {
            self.stats.malformed_params += 1;
            self.off = self.bytes.len();
            return None;
        }
        let value = rest.get(4..len as usize)?;
        self.off = self.off.saturating_add(padded(len) as usize).min(self.bytes.len());
        Some(Tlv { kind, len, value })
    }
}

/// The address in an IPv4 / IPv6 Address parameter, `None` for other types
/// or a wrong length.
pub fn address(t: &Tlv) -> Option<IpAddr> {
    match (t.kind, t.value.len()) {
        (param::IPV4_ADDRESS, 4) => {
            let v: [u8; 4] = t.value.try_into().ok()?;
            Some(IpAddr::V4(Ipv4Addr::from(v)))
        }
        (param::IPV6_ADDRESS, 16) => {
            let v: [u8; 16] = t.value.try_into().ok()?;
            Some(IpAddr::V6(Ipv6Addr::from(v)))
        }
        _ => None,
    }
}

/// Whether a parameter type is an address parameter.
pub const fn is_address(kind: u16) -> bool {
    kind == param::IPV4_ADDRESS || kind == param::IPV6_ADDRESS
}

/// The first address parameter found at the start of `bytes` and the bytes
/// after it.
pub fn leading_address<'a>(bytes: &'a [u8], stats: &mut DecodeStats) -> Option<(IpAddr, &'a [u8])> {
    let mut it = TlvIter::new(bytes, stats);
    let t = it.next()?;
    let used = padded(t.len) as usize;
    match address(&t) {
        Some(a) => Some((a, bytes.get(used..).unwrap_or(&[]))),
        None => {
            it.count_malformed();
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::craft;

    #[test]
    fn walks_params_and_stops_on_bad_length() {
        let mut b = craft::addr_param("10.0.0.1".parse().expect("a"));
        b.extend_from_slice(&craft::param(0x1234, &[1, 2, 3]));
        b.extend_from_slice(&[0, 5, 0, 2]); // length 2: malformed
        b.extend_from_slice(&craft::addr_param("10.0.0.2".parse().expect("a")));
        let mut st = DecodeStats::default();
        let v: Vec<_> = TlvIter::new(&b, &mut st).collect();
        assert_eq!(v.len(), 2);
        assert_eq!(address(&v[0]), Some("10.0.0.1".parse().expect("a")));
        assert_eq!(v[1].value, &[1, 2, 3]);
        assert_eq!(st.malformed_params, 1);
    }

    #[test]
    fn address_rejects_wrong_lengths() {
        let t = Tlv { kind: param::IPV4_ADDRESS, len: 9, value: &[1, 2, 3, 4, 5] };
        assert_eq!(address(&t), None);
        let t = Tlv { kind: param::IPV6_ADDRESS, len: 8, value: &[1, 2, 3, 4] };
        assert_eq!(address(&t), None);
    }
}
