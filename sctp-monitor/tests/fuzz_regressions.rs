//! Every input the libFuzzer targets (`sctp-monitor/fuzz`, `cargo xtask
//! fuzz`) found crashing, run through the same target code
//! (`fuzz/src/targets.rs`, included here) in the default test suite:
//! no panic, and the outcome each one is expected to have now.
//!
//! Inputs live in `tests/fuzz_regressions/TARGET/NAME`; each must have an
//! entry in [`EXPECT`] (an input without one fails the suite).

#[path = "../fuzz/src/script.rs"]
mod script;
#[path = "../fuzz/src/targets.rs"]
mod targets;

use std::path::Path;

/// What a committed input must give now. (Only the tracker target has
/// found inputs so far; a crash input of another target adds its variant:
/// for a capture, the damage offset and message, measured with
/// `alloc/mod.rs` as `bad_captures.rs` does.)
enum Expect {
    /// tracker_sequence: ran to the end (every invariant of
    /// `targets::tracker_sequence` held at every step), with this many
    /// associations created and this many tracked at the end.
    Tracked { created: u64, live: usize },
    /// tracker_sequence: ran to the end with every invariant holding at
    /// every step; the counts depend on tracker policy (eviction order) and
    /// are not pinned.
    Holds,
}

/// (target, file name, expectation, what the input found).
const EXPECT: &[(&str, &str, Expect, &str)] = &[
    (
        "tracker_sequence",
        "init-collision-drops-one-never-up",
        Expect::Holds,
        "found by the fuzzer against a first, too strict invariant (every \
         association created ends with association_down): an INIT whose \
         INIT-ACK carries the tag of an association already tracked is an \
         INIT collision, and the tracker drops the newer one silently, by \
         design, as it never came up. The invariant now allows that, only \
         for associations never reported up",
    ),
    (
        "tracker_sequence",
        "up-then-dropped-by-init-collision",
        Expect::Tracked { created: 2, live: 2 },
        "written from the case above (the fuzzer had not reached it in 5 \
         minutes): INIT, then COOKIE-ACK (association_up), then an INIT-ACK \
         whose tag another association holds. The collision rule dropped \
         the association without association_down, though it had been \
         reported up; fixed in tracker/handshake.rs (it stays)",
    ),
];

fn dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_regressions")
}

fn check(target: &str, name: &str, data: &[u8], want: &Expect) {
    let at = format!("{target}/{name}");
    match (target, want) {
        ("tracker_sequence", Expect::Tracked { created, live }) => {
            let run = targets::tracker_sequence(data);
            assert_eq!((run.created, run.associations), (*created, *live), "{at}: {run:?}");
        }
        ("tracker_sequence", Expect::Holds) => {
            let run = targets::tracker_sequence(data);
            assert!(run.steps > 0 && run.created > 0, "{at}: the input drives the tracker: {run:?}");
        }
        _ => panic!("{at}: no such target / expectation pair"),
    }
}

#[test]
fn every_committed_crash_input_has_its_expected_outcome() {
    let mut seen = 0;
    for target in ["decode_record", "decode_packet", "capture_reader", "tracker_sequence"] {
        let Ok(entries) = std::fs::read_dir(dir().join(target)) else {
            continue;
        };
        for e in entries {
            let path = e.expect("dir entry").path();
            let name = path.file_name().and_then(|n| n.to_str()).expect("name").to_string();
            let want = EXPECT
                .iter()
                .find(|(t, n, _, _)| *t == target && *n == name)
                .unwrap_or_else(|| panic!("{target}/{name}: add its expected outcome to EXPECT"));
            let data = std::fs::read(&path).expect("read");
            check(target, &name, &data, &want.2);
            seen += 1;
        }
    }
    assert_eq!(seen, EXPECT.len(), "every EXPECT entry has its input file");
}
