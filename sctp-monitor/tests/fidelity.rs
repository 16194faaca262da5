//! Fidelity: the monitor against real SCTP stacks, counted. Each run
//! (tests/peer/fidelity_run.sh) is a multihomed usrsctp association in the
//! lab's namespaces, the agent live on the server's two interfaces, a capture
//! of them and a failure of the primary path; the comparer
//! (support/fidelity.rs) judges the live events and `replay` of the capture
//! against the stack's moves of new DATA and its path states, both ways:
//! every missed and every false event fails.
//!
//! `FIDELITY` picks the matrix: unset or `one`, the raw IPv4 black-hole run
//! (the test `cargo xtask test` runs); `full`, usrsctp {raw4, udp4, raw6,
//! udp6} x {blackhole, linkdown}, the primary-change (ASCONF) run and the two
//! mid-flight runs; each `FIDELITY_RUNS` (3) times, then FIDELITY.md at the
//! repository root (`cargo xtask fidelity`). `FIDELITY_ONLY=TEXT` keeps the
//! scenarios whose name contains TEXT. `FIDELITY_COMPARE=DIR[,DIR...]` only
//! compares existing artifact directories (any stack; relative to the
//! repository root). Artifact directories
//! of other stacks (the Linux kernel's SCTP in a guest) found under
//! `FIDELITY_EXTRA` (default `target/fidelity/linux`), one per subdirectory
//! with a meta.json, are compared too. Artifacts go to `FIDELITY_OUT`
//! (default `target/fidelity/usrsctp`; `target/fidelity/usrsctp-one` for
//! the one scenario). `FIDELITY_AGENT` judges another build of the agent, and
//! `FIDELITY_TABLE` writes the table elsewhere than FIDELITY.md.
//!
//! Needs root, tcpdump, tshark, editcap, nftables, gcc + libusrsctp-dev
//! (`cargo xtask setup --tests`).

#[path = "support/fidelity.rs"]
mod fidelity;
mod support;

use std::path::{Path, PathBuf};

use support::{
    privileged,
    process::{have, peer_binary},
};

const MODES: [&str; 4] = ["raw4", "udp4", "raw6", "udp6"];

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_path_buf()
}

/// (mode, cut) of every usrsctp scenario of the matrix.
fn matrix(full: bool) -> Vec<(&'static str, &'static str)> {
    if !full {
        return vec![("raw4", "blackhole")];
    }
    let mut v = Vec::new();
    for cut in ["blackhole", "linkdown"] {
        for m in MODES {
            v.push((m, cut));
        }
    }
    v.extend([("raw4", "asconf"), ("raw4", "midflight-start"), ("raw4", "midflight-kill")]);
    v
}

/// The agent judged: this build's, or `FIDELITY_AGENT` (another build, for a
/// before/after table).
fn agent() -> PathBuf {
    std::env::var_os("FIDELITY_AGENT").map_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_sctp-monitor")), PathBuf::from)
}

/// The agent's options for run `i` of a scenario. The first run uses the
/// defaults; the others read the per-path counters every 20 ms instead of
/// every second, so that a poll often falls between a record waiting in the
/// ring (a retransmission does not wake the agent) and the ack of its DATA
/// that the counters already hold: the agent must handle them in the order
/// they happened. `AGENT_OPTS` set: used for every run.
fn agent_opts(i: u32) -> String {
    std::env::var("AGENT_OPTS").unwrap_or_else(|_| if i == 1 { String::new() } else { "--poll-interval-ms 20".into() })
}

fn run(out: &Path, mode: &str, cut: &str, i: u32) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peer/fidelity_run.sh");
    let st = std::process::Command::new(script)
        .arg(out)
        .args([mode, cut])
        .env("AGENT_OPTS", agent_opts(i))
        .env("SCTP_MONITOR", agent())
        .env("SCTP_PEER", peer_binary())
        // namespaces of this process alone
        .env("SCTPMON_NS_A", format!("fid{}-a", std::process::id()))
        .env("SCTPMON_NS_B", format!("fid{}-b", std::process::id()))
        .status()
        .expect("run fidelity_run.sh");
    assert!(st.success(), "fidelity_run.sh {} {mode} {cut} failed", out.display());
}

/// Artifact directories of other stacks: each subdirectory with a meta.json.
fn extra_dirs() -> Vec<PathBuf> {
    let root =
        std::env::var_os("FIDELITY_EXTRA").map_or_else(|| repo_root().join("target/fidelity/linux"), PathBuf::from);
    let mut v: Vec<PathBuf> = std::fs::read_dir(&root)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("meta.json").exists())
        .collect();
    v.sort();
    v
}

#[test]
fn fidelity_against_the_stack() {
    if !privileged("fidelity_against_the_stack") {
        return;
    }
    for tool in ["tcpdump", "tshark", "editcap", "nft", "gcc"] {
        assert!(have(tool), "{tool} not found: run `cargo xtask setup --tests`");
    }
    let agent = agent();
    let full = std::env::var("FIDELITY").is_ok_and(|v| v == "full");
    let runs: u32 = std::env::var("FIDELITY_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(3);
    let mut dirs: Vec<PathBuf> = Vec::new();
    if let Ok(list) = std::env::var("FIDELITY_COMPARE") {
        // cargo runs the test in the package's directory: relative paths
        // are the repository root's
        dirs.extend(list.split(',').filter(|d| !d.is_empty()).map(|d| repo_root().join(d)));
    } else {
        // Timing decides what a stack does: every scenario runs several times.
        let only = std::env::var("FIDELITY_ONLY").unwrap_or_default();
        let default_out = if full { "target/fidelity/usrsctp" } else { "target/fidelity/usrsctp-one" };
        let out = std::env::var_os("FIDELITY_OUT").map_or_else(|| repo_root().join(default_out), PathBuf::from);
        for (mode, cut) in matrix(full) {
            if !format!("{mode}-{cut}").contains(&only) {
                continue;
            }
            for i in 1..=runs {
                let d = out.join(format!("{mode}-{cut}-{i}"));
                eprintln!("fidelity: usrsctp {mode} {cut} run {i}/{runs} -> {}", d.display());
                run(&d, mode, cut, i);
                dirs.push(d);
            }
        }
        // Other stacks' runs (the Linux guest's, `cargo xtask fidelity`):
        // in the full matrix, or when named; the one-run test judges only
        // what it ran (`tests/linux_sctp.rs` makes its own Linux run).
        if full || std::env::var_os("FIDELITY_EXTRA").is_some() {
            dirs.extend(extra_dirs());
        }
    }
    assert!(!dirs.is_empty(), "no run to compare");
    let reports: Vec<fidelity::RunReport> = dirs.iter().map(|d| fidelity::compare(d, &agent)).collect();
    for r in &reports {
        eprintln!("{}", r.explain());
    }
    let command = if full {
        // What `cargo xtask fidelity` was given (it says so in the
        // environment): the table names the command that remakes it.
        match std::env::var("FIDELITY_GUEST_RUNS").ok().and_then(|g| g.parse::<u32>().ok()) {
            Some(0) => format!(
                "`cargo xtask fidelity --runs {runs} --guest-runs 0` (as root: the Linux runs already in target/fidelity/linux; the usrsctp runs, {runs} of each)"
            ),
            Some(g) => format!(
                "`cargo xtask fidelity --runs {runs} --guest-runs {g}` (as root: the Linux runs in the guest first, {g} of each; then the usrsctp runs, {runs} of each)"
            ),
            None => format!(
                "`cargo xtask fidelity --runs {runs}` (as root; the Linux runs judged are those in target/fidelity/linux)"
            ),
        }
    } else {
        "`cargo test -p sctp-monitor --test fidelity` (as root; FIDELITY_RUNS, default 3)".to_string()
    };
    let table = fidelity::table(&reports, &command);
    eprintln!("{table}");
    if full {
        let md = std::env::var_os("FIDELITY_TABLE").map_or_else(|| repo_root().join("FIDELITY.md"), PathBuf::from);
        std::fs::write(&md, &table).expect("write the table");
        eprintln!("fidelity: wrote {}", md.display());
    }
    let wrong: Vec<&fidelity::RunReport> = reports.iter().filter(|r| !r.exact()).collect();
    assert!(
        wrong.is_empty(),
        "{} of {} runs disagree with the stack or between live and offline:\n{}",
        wrong.len(),
        reports.len(),
        wrong.iter().map(|r| r.explain()).collect::<Vec<_>>().join("\n")
    );
}

/// The comparer itself, on made-up runs: a retransmission on the alternate
/// path is no move, one packet of new DATA there and back is a blip, a
/// report of the retransmission is false and a move nobody reported is
/// missed; a second report of one move is false.
#[test]
fn comparer_counts_moves_both_ways() {
    use fidelity::{AgentSpan, Meta, MoveKind, Peer, Side, WirePacket, events, judge, stack_moves};
    let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
    let (c1, c2, s1, s2) = (ip("10.0.1.1"), ip("10.0.2.1"), ip("10.0.1.2"), ip("10.0.2.2"));
    // TSNs from just below the wrap: serial arithmetic
    let p = |ts: f64, src, dst, tsns: &[u32]| WirePacket {
        ts,
        src,
        dst,
        tsns: tsns.iter().map(|t| (u32::MAX - 4).wrapping_add(*t)).collect(),
    };
    let wire = vec![
        p(100.0, c1, s1, &[1]),
        p(100.1, c1, s1, &[2]),
        p(100.2, c2, s2, &[2]), // retransmission on the alternate path
        p(100.3, c1, s1, &[3]),
        p(100.4, c2, s2, &[4]), // one new packet there, then back: a blip
        p(100.5, c1, s1, &[5]),
        p(101.0, c2, s2, &[5, 6]), // a retransmission bundled with new DATA: the move
        p(101.1, c2, s2, &[7]),
        p(103.0, c1, s1, &[8]), // back, past the wrap
        p(103.1, c1, s1, &[9]),
    ];
    let moves = stack_moves(&wire, &wire, Side::Client, &[c1, c2]);
    let got: Vec<(f64, bool)> = moves.iter().map(|m| (m.ts, m.blip)).collect();
    assert_eq!(got, vec![(100.4, true), (100.5, true), (101.0, false), (103.0, false)], "{moves:?}");

    let meta = Meta {
        raw: serde_json::Value::Null,
        stack: "made-up".into(),
        family: "ipv4".into(),
        encap: "raw".into(),
        cut: "blackhole".into(),
        cut_ts: Some(100.6),
        restore_ts: Some(102.5),
        agents: vec![AgentSpan { attached: 90.0, end: 110.0, killed: false }],
        lost: 0,
    };
    let client = Peer {
        laddrs: vec![c1, c2],
        primary: vec![(99.0, s1)],
        states: vec![(100.9, s1, fidelity::PathState::Down), (102.8, s1, fidelity::PathState::Up)],
        hb_interval_s: Some(0.5),
    };
    let server = Peer::default();
    let mut moves = moves;
    fidelity::classify(&meta, &client, &wire, &mut moves);
    let kinds: Vec<MoveKind> = moves.iter().filter(|m| !m.blip).map(|m| m.kind).collect();
    assert_eq!(kinds, vec![MoveKind::Failover, MoveKind::Failback]);

    let ev = |ts: &str, name: &str, from: (&str, &str), to: (&str, &str)| {
        format!(
            r#"{{"ts":"1970-01-01T00:01:{ts}Z","event":"{name}","schema":1,"assoc":1,"endpoint":"initiator","from":{{"src":"{}","dst":"{}"}},"to":{{"src":"{}","dst":"{}"}}}}"#,
            from.0, from.1, to.0, to.1
        )
    };
    let path = |ts: &str, name: &str| {
        format!(
            r#"{{"ts":"1970-01-01T00:01:{ts}Z","event":"{name}","schema":1,"assoc":1,"endpoint":"initiator","path":{{"src":"10.0.1.1","dst":"10.0.1.2"}}}}"#
        )
    };
    let (a, b) = (("10.0.1.1", "10.0.1.2"), ("10.0.2.1", "10.0.2.2"));
    let text = [
        ev("40.200000", "failover", a, b),        // the retransmission: false
        ev("41.010000", "failover", a, b),        // the failover, 10 ms late
        ev("41.010000", "primary_changed", a, b), // a second report of it: false
        path("41.000000", "path_down"),
        path("42.700000", "path_up"),
        // no report of the failback at 103.0: missed
    ]
    .join("\n");
    let peers = [(Side::Client, &client), (Side::Server, &server)];
    let j = judge(&meta, &peers, &moves, &events(&text), 0.5, true);
    assert_eq!((j.reported, j.false_moves, j.missed, j.off_time), (3, 2, 1, 0), "{:#?}", j.diff);
    assert_eq!((j.path_expected, j.path_matched, j.path_false), (2, 2, 0), "{:#?}", j.diff);
    assert!((j.delays[0] - 0.010).abs() < 1e-6, "{:?}", j.delays);
    assert!(!j.exact());
}
