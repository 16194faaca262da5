//! tshark as the reference decoder of the capture tests: found (or the test
//! skipped outside CI), run for SCTP fields, its aggregates read.

use std::{net::IpAddr, path::Path, process::Command};

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
    sctp_fields_with(ts, file, &[], fields)
}

/// [`sctp_fields`] with more tshark options (preferences: `-o name:value`).
pub fn sctp_fields_with(ts: &str, file: &Path, options: &[&str], fields: &[&str]) -> String {
    let mut cmd = Command::new(ts);
    cmd.arg("-r").arg(file).arg("-n").args(options);
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

/// One SCTP packet as tshark decodes it (the capture tests' reference).
#[derive(Debug, Clone)]
pub struct Packet {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub sport: u16,
    pub dport: u16,
    pub vtag: u32,
    pub chunks: Vec<u8>,
    pub init_tag: Option<u32>,
    pub initack_tag: Option<u32>,
    /// IPv4 and IPv6 Address parameters (of its INIT or INIT-ACK).
    pub addr_params: Vec<IpAddr>,
    /// TSNs of its DATA chunks.
    pub tsns: Vec<u32>,
    /// An ABORT or SHUTDOWN-COMPLETE with the T bit: the tag is the
    /// sender's own.
    pub reflected: bool,
}

/// Every SCTP packet of `file` as tshark decodes it, in the file's order.
pub fn packets(ts: &str, file: &Path) -> Vec<Packet> {
    let fields = [
        "ip.src",
        "ip.dst",
        "ipv6.src",
        "ipv6.dst",
        "sctp.srcport",
        "sctp.dstport",
        "sctp.verification_tag",
        "sctp.chunk_type",
        "sctp.init_initiate_tag",
        "sctp.initack_initiate_tag",
        "sctp.parameter_ipv4_address",
        "sctp.parameter_ipv6_address",
        "sctp.data_tsn_raw",
        "sctp.abort_t_bit",
        "sctp.shutdown_complete_t_bit",
    ];
    let out = sctp_fields(ts, file, &fields);
    out.lines()
        .map(|l| {
            let v: Vec<&str> = l.split('\t').collect();
            assert_eq!(v.len(), fields.len(), "tshark line: {l:?}");
            let (src, dst) = if v[0].is_empty() { (v[2], v[3]) } else { (v[0], v[1]) };
            let first = |s: &str| list(s).first().map(|x| num(x) as u32);
            let t_bit = |s: &str| list(s).iter().any(|x| *x == "1" || *x == "True");
            Packet {
                src: src.parse().expect("src"),
                dst: dst.parse().expect("dst"),
                sport: num(v[4]) as u16,
                dport: num(v[5]) as u16,
                vtag: num(v[6]) as u32,
                chunks: list(v[7]).iter().map(|x| num(x) as u8).collect(),
                init_tag: first(v[8]),
                initack_tag: first(v[9]),
                addr_params: list(v[10])
                    .iter()
                    .chain(list(v[11]).iter())
                    .map(|a| a.parse().expect("address"))
                    .collect(),
                tsns: list(v[12]).iter().map(|x| num(x) as u32).collect(),
                reflected: t_bit(v[13]) || t_bit(v[14]),
            }
        })
        .collect()
}
