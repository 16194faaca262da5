//! Upper-layer protocols by DATA Payload Protocol Identifier (PPID, IANA
//! "SCTP Payload Protocol Identifiers"): names, and the compact set an
//! association keeps of the PPIDs it carried.
//!
//! The set is a 16-bit mask in the association (it fits in padding the
//! association already had): one bit per common PPID, and [`OTHER`] for
//! any other value, whose numbers the association keeps in its rarely used
//! extension (at most [`MAX_OTHER`]). A DATA chunk with a PPID already in
//! the set costs one table lookup and one test.

use serde::{Serialize, Serializer, ser::SerializeStruct};

/// The PPIDs with a bit of their own, in bit order (bit 15 is [`OTHER`]).
const BITS: [u32; 15] = [0, 1, 2, 3, 4, 5, 7, 18, 27, 46, 47, 60, 61, 62, 64];
/// The bit of every PPID not in `BITS`.
pub const OTHER: u16 = 1 << 15;
/// Other PPIDs kept per association; more are not reported.
pub const MAX_OTHER: usize = 8;

/// The set bit for `ppid`: its own bit, or [`OTHER`].
#[inline]
pub fn bit(ppid: u32) -> u16 {
    // Most values are below 65: one comparison and one load.
    const TABLE: [u16; 65] = {
        let mut t = [OTHER; 65];
        let mut i = 0;
        while i < BITS.len() {
            t[BITS[i] as usize] = 1 << i;
            i += 1;
        }
        t
    };
    if ppid < 65 { TABLE[ppid as usize] } else { OTHER }
}

/// The PPIDs of the own bits set in `mask` (ascending), without [`OTHER`].
pub fn from_mask(mask: u16) -> impl Iterator<Item = u32> {
    BITS.into_iter().enumerate().filter(move |&(i, _)| mask & (1 << i) != 0).map(|(_, p)| p)
}

/// The `ppid` label of a set bit: the name of its PPID, or `other`.
pub fn bit_label(bit_index: usize) -> String {
    BITS.get(bit_index).map_or_else(|| "other".to_string(), |&p| label(p))
}

/// The IANA name of a PPID, where we know it. 0 is "no protocol given".
pub fn name(ppid: u32) -> Option<&'static str> {
    Some(match ppid {
        0 => "unspecified",
        1 => "IUA",
        2 => "M2UA",
        3 => "M3UA",
        4 => "SUA",
        5 => "M2PA",
        6 => "V5UA",
        7 => "H.248",
        8 => "BICC",
        18 => "S1AP",
        19 => "RUA",
        20 => "HNBAP",
        24 => "SBc-AP",
        25 => "NBAP",
        27 => "X2AP",
        29 => "LCS-AP",
        31 => "SABP",
        43 => "M2AP",
        44 => "M3AP",
        46 => "Diameter",
        47 => "Diameter-DTLS",
        50 => "WebRTC-DCEP",
        51 => "WebRTC-String",
        53 => "WebRTC-Binary",
        58 => "XwAP",
        60 => "NGAP",
        61 => "XnAP",
        62 => "F1AP",
        64 => "E1AP",
        _ => return None,
    })
}

/// The name of a PPID, or its number when it has none we know.
pub fn label(ppid: u32) -> String {
    name(ppid).map_or_else(|| ppid.to_string(), str::to_string)
}

/// Labels of a list of PPIDs joined with `,` (metrics, `top`).
pub fn labels(ppids: &[u32]) -> String {
    ppids.iter().map(|&p| label(p)).collect::<Vec<_>>().join(",")
}

/// A PPID in events and the API: `{"id": 18, "name": "S1AP"}`, `name`
/// left out when unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Ppid(pub u32);

impl Serialize for Ppid {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let n = name(self.0);
        let mut st = s.serialize_struct("Ppid", 1 + n.is_some() as usize)?;
        st.serialize_field("id", &self.0)?;
        if let Some(n) = n {
            st.serialize_field("name", n)?;
        }
        st.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_are_distinct_and_round_trip() {
        let mut all = 0u16;
        for p in BITS {
            let b = bit(p);
            assert_ne!(b, OTHER, "{p}");
            assert_eq!(all & b, 0, "{p} shares a bit");
            all |= b;
            assert_eq!(from_mask(b).collect::<Vec<_>>(), vec![p]);
        }
        assert_eq!(all, !OTHER);
        for p in [6, 19, 65, 1000, u32::MAX] {
            assert_eq!(bit(p), OTHER, "{p}");
        }
    }

    #[test]
    fn names_of_the_telecom_protocols_and_numbers_for_the_rest() {
        let known = [(18, "S1AP"), (3, "M3UA"), (60, "NGAP"), (46, "Diameter"), (47, "Diameter-DTLS")];
        for (p, n) in known {
            assert_eq!(label(p), n);
        }
        for (p, n) in [(27, "X2AP"), (4, "SUA"), (5, "M2PA"), (7, "H.248")] {
            assert_eq!(label(p), n);
        }
        assert_eq!(label(4242), "4242");
        assert_eq!(labels(&[3, 18, 4242]), "M3UA,S1AP,4242");
        assert_eq!(serde_json::to_string(&Ppid(18)).expect("json"), r#"{"id":18,"name":"S1AP"}"#);
        assert_eq!(serde_json::to_string(&Ppid(4242)).expect("json"), r#"{"id":4242}"#);
    }
}
