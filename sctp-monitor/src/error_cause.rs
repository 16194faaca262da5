//! Error causes of ABORT and ERROR chunks (RFC 9260 §3.3.10, RFC 5061 §5.1,
//! RFC 4895 §6.1) as events and metrics show them: code, a stable name
//! (the RFC's title in snake_case), and for the causes whose information
//! is meant for a person (User-Initiated Abort, Protocol Violation) that
//! text, for Stale Cookie the staleness.
//!
//! The bytes are the peer's, possibly an attacker's: the list, the text and
//! the label set are bounded here, whatever a chunk holds.

use serde::Serialize;

use crate::decode::ErrorCause;

/// Causes listed in one event; a chunk with more says how many were left
/// out (`causes_omitted`). A real stack sends one or two.
pub const MAX_LISTED: usize = 16;

/// Characters of a cause's text kept; a longer text ends in `…`.
pub const MAX_TEXT_CHARS: usize = 256;

/// Cause codes with a name, and the name (also the metric label).
pub const KNOWN: [(u16, &str); 19] = [
    (1, "invalid_stream_identifier"),
    (2, "missing_mandatory_parameter"),
    (3, "stale_cookie_error"),
    (4, "out_of_resource"),
    (5, "unresolvable_address"),
    (6, "unrecognized_chunk_type"),
    (7, "invalid_mandatory_parameter"),
    (8, "unrecognized_parameters"),
    (9, "no_user_data"),
    (10, "cookie_received_while_shutting_down"),
    (11, "restart_of_an_association_with_new_addresses"),
    (12, "user_initiated_abort"),
    (13, "protocol_violation"),
    (0x00A0, "request_to_delete_last_remaining_ip_address"),
    (0x00A1, "operation_refused_due_to_resource_shortage"),
    (0x00A2, "request_to_delete_source_ip_address"),
    (0x00A3, "association_aborted_due_to_illegal_asconf_ack"),
    (0x00A4, "request_refused_no_authorization"),
    (0x0105, "unsupported_hmac_identifier"),
];

/// The name of every code not in [`KNOWN`].
pub const UNKNOWN: &str = "unknown";

/// Label slots: one per [`KNOWN`] name, then [`UNKNOWN`].
pub const LABELS: usize = KNOWN.len() + 1;

/// Index of `code`'s name among the [`LABELS`] slots.
pub fn label_index(code: u16) -> usize {
    KNOWN.iter().position(|&(c, _)| c == code).unwrap_or(KNOWN.len())
}

/// The name of label slot `i` ([`label_index`]).
pub fn label(i: usize) -> &'static str {
    KNOWN.get(i).map_or(UNKNOWN, |&(_, n)| n)
}

/// The name of `code`.
pub fn name(code: u16) -> &'static str {
    label(label_index(code))
}

const STALE_COOKIE: u16 = 3;
const USER_INITIATED_ABORT: u16 = 12;
const PROTOCOL_VIOLATION: u16 = 13;

/// One error cause in an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CauseEntry {
    pub code: u16,
    pub name: &'static str,
    /// User-Initiated Abort (the upper layer's reason) and Protocol
    /// Violation (the stack's explanation): the information as text,
    /// control characters replaced, at most [`MAX_TEXT_CHARS`] characters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Stale Cookie: how late the cookie came, in microseconds (its Measure
    /// of Staleness).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub staleness_us: Option<u32>,
}

impl CauseEntry {
    pub fn of(c: &ErrorCause) -> CauseEntry {
        let (text, staleness_us) = match c.code {
            USER_INITIATED_ABORT | PROTOCOL_VIOLATION => (text(&c.info), None),
            STALE_COOKIE => (None, c.info.first_chunk::<4>().map(|b| u32::from_be_bytes(*b))),
            _ => (None, None),
        };
        CauseEntry { code: c.code, name: name(c.code), text, staleness_us }
    }
}

/// The entries of a chunk's causes (at most [`MAX_LISTED`]) and how many
/// were left out.
pub fn entries(causes: &[ErrorCause]) -> (Vec<CauseEntry>, usize) {
    let listed = causes.iter().take(MAX_LISTED).map(CauseEntry::of).collect();
    (listed, causes.len().saturating_sub(MAX_LISTED))
}

/// A cause's information as text a terminal or a log line can show: UTF-8
/// read lossily, trailing NULs (a C string's) dropped, control and
/// direction-changing characters replaced by U+FFFD so that a reason can
/// neither start a new log line nor reorder what a reader sees. `None` when
/// nothing is left or the bytes are mostly not text (a binary reason).
pub fn text(info: &[u8]) -> Option<String> {
    // Bytes beyond what the kept characters can take (4 a character) are
    // never read.
    let raw = &info[..info.len().min(MAX_TEXT_CHARS * 4 + 4)];
    let end = raw.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    let raw = &raw[..end];
    if raw.is_empty() {
        return None;
    }
    let lossy = String::from_utf8_lossy(raw);
    let mut out = String::new();
    let (mut n, mut bad) = (0usize, 0usize);
    for ch in lossy.chars() {
        if n == MAX_TEXT_CHARS {
            out.push('…');
            break;
        }
        let shown = if hidden(ch) { '\u{FFFD}' } else { ch };
        bad += (shown == '\u{FFFD}') as usize;
        out.push(shown);
        n += 1;
    }
    // More than a quarter unreadable: binary, not a reason for a person.
    (bad * 4 <= n).then_some(out)
}

/// Characters that would change a line's layout or reading order.
fn hidden(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200B}'..='\u{200F}' | '\u{2028}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cause(code: u16, info: &[u8]) -> ErrorCause {
        ErrorCause { code, info: info.to_vec() }
    }

    #[test]
    fn names_are_unique_and_unknown_codes_share_one() {
        let mut names: Vec<&str> = KNOWN.iter().map(|k| k.1).collect();
        names.push(UNKNOWN);
        let n = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), n);
        assert_eq!(name(12), "user_initiated_abort");
        assert_eq!(name(0x0105), "unsupported_hmac_identifier");
        for unknown in [0, 14, 0x00A5, 0xFFFF] {
            assert_eq!(name(unknown), UNKNOWN);
            assert_eq!(label_index(unknown), LABELS - 1);
        }
    }

    #[test]
    fn user_reasons_become_text_and_stale_cookies_their_staleness() {
        let e = CauseEntry::of(&cause(12, b"going down for maintenance\0\0"));
        assert_eq!(e.text.as_deref(), Some("going down for maintenance"));
        let e = CauseEntry::of(&cause(13, "bad\nline\u{202E}txt".as_bytes()));
        assert_eq!(e.text.as_deref(), Some("bad\u{FFFD}line\u{FFFD}txt"));
        let e = CauseEntry::of(&cause(3, &1_500_000u32.to_be_bytes()));
        assert_eq!((e.staleness_us, e.text), (Some(1_500_000), None));
        // Too short for a staleness; other causes carry neither.
        assert_eq!(CauseEntry::of(&cause(3, &[1, 2])).staleness_us, None);
        assert_eq!(CauseEntry::of(&cause(6, b"readable")).text, None);
    }

    #[test]
    fn binary_empty_and_long_reasons_are_bounded() {
        assert_eq!(text(&[]), None);
        assert_eq!(text(&[0; 8]), None);
        assert_eq!(text(&[0x01, 0x02, 0xff, 0xfe, 0x00, 0x10, b'a']), None);
        let long = text(&[b'x'; 70_000]).expect("text");
        assert_eq!(long.chars().count(), MAX_TEXT_CHARS + 1);
        assert!(long.ends_with('…'));
        // Multi-byte characters up to the bound.
        let wide = text("é".repeat(1000).as_bytes()).expect("text");
        assert_eq!(wide.chars().count(), MAX_TEXT_CHARS + 1);
    }

    #[test]
    fn a_chunk_of_many_causes_lists_a_bounded_number() {
        let many: Vec<ErrorCause> = (0..1000).map(|i| cause(i, &[])).collect();
        let (listed, omitted) = entries(&many);
        assert_eq!((listed.len(), omitted), (MAX_LISTED, 1000 - MAX_LISTED));
        let (listed, omitted) = entries(&many[..2]);
        assert_eq!((listed.len(), omitted), (2, 0));
    }
}
