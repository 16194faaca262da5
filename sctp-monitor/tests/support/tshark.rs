//! tshark as the reference decoder of the capture tests: found (or the test
//! skipped outside CI), run for SCTP fields, its aggregates read.

use std::{path::Path, process::Command};

/// tshark, or `None` (skip) outside CI. Under CI a missing tshark fails.
pub fn find() -> Option<&'static str> {
    let ok = Command::new("tshark").arg("--version").output().is_ok_and(|o| o.status.success());
    if ok {
        return Some("tshark");
    }
    if std::env::var_os("CI").is_some() {
        panic!("tshark is missing: CI must have it (cargo xtask setup --tests installs it)");
    }
    eprintln!("SKIPPED tshark cross-check: tshark not installed (cargo xtask setup --tests)");
    None
}

/// `fields` of every SCTP packet of `file` (no ICMP quoting one), one line
/// a packet, tab-separated, every occurrence aggregated with commas.
pub fn sctp_fields(ts: &str, file: &Path, fields: &[&str]) -> String {
    let mut cmd = Command::new(ts);
    cmd.arg("-r").arg(file).arg("-n");
    cmd.args(["-Y", "sctp && !icmp && !icmpv6", "-T", "fields", "-E", "separator=\t"]);
    cmd.args(["-E", "occurrence=a", "-E", "aggregator=,"]);
    for f in fields {
        cmd.args(["-e", f]);
    }
    let out = cmd.output().expect("run tshark");
    assert!(out.status.success(), "tshark on {}: {}", file.display(), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A tshark aggregate (`a,b,c`) as its items.
pub fn list(s: &str) -> Vec<&str> {
    s.split(',').filter(|x| !x.is_empty()).collect()
}

/// A tshark number, decimal or `0x` hex.
pub fn num(s: &str) -> u64 {
    match s.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).expect("hex"),
        None => s.parse().unwrap_or_else(|_| panic!("number: {s:?}")),
    }
}
